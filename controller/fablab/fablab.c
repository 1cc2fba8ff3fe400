/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "fablab.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "cardid.h"
#include "log.h"
#include "meter.h"
#include "netdev.h"
#include "planner.h"
#include "policy.h"
#include "util.h"

#define LOOKAHEAD (7 * 86400)       /* bookings and opening hours considered at a tap */
#define UPCOMING_MAX 32

/* What the fablab keeps beside each machine: its network devices, the energy of its session,
 * and a trainer's window at its reader. */
struct machine_extra {
    struct fablab *f;
    struct machine *m;
    struct netdev *power;           /* a network relay, or NULL */
    struct netdev *meter;           /* where its power readings come from, or NULL */
    bool energy_counting;           /* the session's energy start is known */
    int64_t energy_start_mwh;
    int64_t closing_session_id;     /* closed, but its power-off not yet confirmed */
    uint64_t tap_usec;              /* the granted tap waiting for its relay confirmation */
    int64_t trainer_id;             /* a trainer's window: who, ... */
    uint64_t trainer_until_usec;    /* ... until when (CLOCK_MONOTONIC) */
};

struct fablab {
    sd_event *loop;
    struct store *store;
    struct access_engine *engine;
    struct meter *meter;
    const struct config *cfg;
    unsigned n_machines;
    struct machine machines[CONFIG_MAX_MACHINES];
    struct machine_extra extra[CONFIG_MAX_MACHINES];
    struct netdev_hub *hub;         /* network relays and meters, NULL if none */
    struct fablab_tap last;
    void (*change_fn)(struct machine *m, void *userdata);
    void *change_userdata;
    int64_t tap_card_id;            /* the card of the tap being handled (0: unknown) */
};

void fablab_on_change(struct fablab *f, void (*fn)(struct machine *m, void *userdata),
                      void *userdata)
{
    f->change_fn = fn;
    f->change_userdata = userdata;
}

const struct fablab_tap *fablab_last_tap(const struct fablab *f)
{
    return &f->last;
}

static void remember(struct fablab *f, struct machine *m, int64_t member_id, bool granted,
                     const char *outcome, uint64_t t0_usec)
{
    f->last.seq++;
    strlcpy_checked(f->last.machine, m->cfg->name, sizeof(f->last.machine));
    f->last.member_id = member_id;
    f->last.granted = granted;
    f->last.outcome = outcome;
    f->last.latency_us = (uint32_t)(now_mono_usec() - t0_usec);
}

static struct machine *machine_by_name(struct fablab *f, const char *name)
{
    for (unsigned i = 0; i < f->n_machines; i++)
        if (strcmp(f->machines[i].cfg->name, name) == 0)
            return &f->machines[i];
    return NULL;
}

/* ---- the access log ---- */

static void record_card(struct fablab *f, struct machine *m, const char *kind, bool granted,
                        const char *reason, int64_t member_id, const char *detail,
                        int64_t card_id)
{
    struct store_event ev = { .at = now_utc(), .resource_id = m->resource_id,
                              .member_id = member_id, .card_id = card_id, .granted = granted };
    strlcpy_checked(ev.kind, kind, sizeof(ev.kind));
    strlcpy_checked(ev.reason, reason, sizeof(ev.reason));
    strlcpy_checked(ev.reader, m->cfg->reader, sizeof(ev.reader));
    strlcpy_checked(ev.detail, detail ? detail : "", sizeof(ev.detail));
    if (store_event_add(f->store, &ev, NULL) < 0)
        log_error("machine %s: cannot record %s event", m->cfg->name, kind);
}

static void record(struct fablab *f, struct machine *m, const char *kind, bool granted,
                   const char *reason, int64_t member_id, const char *detail)
{
    record_card(f, m, kind, granted, reason, member_id, detail, 0);
}

/* A card's entry: its detail also says when several cards answered, as a door tap's does. */
static void record_tap(struct fablab *f, struct machine *m, bool granted, const char *reason,
                       int64_t member_id, const char *detail, unsigned targets)
{
    char buf[sizeof(((struct store_event *)0)->detail)];

    /* The card too: the store keeps when each card was last used (the member's page). */
    record_card(f, m, "machine", granted, reason, member_id,
                access_tap_detail(buf, sizeof(buf), detail, targets), f->tap_card_id);
}

/* ---- machine events: keep the session record in step ---- */

static struct machine_extra *extra_of(struct fablab *f, const struct machine *m)
{
    return &f->extra[m - f->machines];
}

/* The energy of the running session so far (Wh), or -1 if nothing measures it. */
static int64_t session_energy_wh(struct fablab *f, const struct machine *m)
{
    struct machine_extra *x = extra_of(f, m);
    struct netdev_reading rd;

    if (!x->meter)
        return -1;
    netdev_reading(x->meter, &rd);
    if (!x->energy_counting || !rd.has_energy)
        return 0;       /* metered, but no reading yet */
    return (rd.energy_mwh - x->energy_start_mwh + 500) / 1000;
}

static void energy_start(struct fablab *f, struct machine *m)
{
    struct machine_extra *x = extra_of(f, m);
    struct netdev_reading rd;

    x->energy_counting = false;
    if (!x->meter)
        return;
    netdev_reading(x->meter, &rd);
    /* No reading yet: counting starts with the first one. */
    x->energy_counting = rd.has_energy;
    x->energy_start_mwh = rd.energy_mwh;
}

/* Close the session record and meter it; member_id/started_at: of the closed session. */
static void session_close(struct fablab *f, struct machine *m, const char *reason,
                          int64_t running_seconds, int64_t member_id, int64_t started_at)
{
    struct machine_extra *x = extra_of(f, m);
    int64_t now = now_utc(), energy = session_energy_wh(f, m);
    int r;

    if (!m->session_id)
        return;
    if (store_session_close(f->store, m->session_id, now, running_seconds, energy, reason) < 0)
        log_error("machine %s: cannot close session %" PRId64, m->cfg->name, m->session_id);
    /* A network relay's "off" is confirmed later: until then the session that ended is the
     * one an alarm would concern. */
    x->closing_session_id = relay_is_asynchronous(&m->relay) && m->relay.pending ? m->session_id : 0;
    m->session_id = 0;
    x->energy_counting = false;
    r = f->meter ? meter_machine(f->meter, member_id, m->cfg->name, started_at, now,
                                 running_seconds, energy, reason) : 0;
    if (r < 0)
        log_error("machine %s: cannot meter the session of member %" PRId64 ": %s", m->cfg->name,
                  member_id, strerror(-r));
}

static void session_open(struct fablab *f, struct machine *m)
{
    energy_start(f, m);
    if (store_session_open(f->store, m->resource_id, m->member_id, m->booking_id, m->started_at,
                           &m->session_id) < 0)
        log_error("machine %s: cannot record the session", m->cfg->name);
    else if (m->alarm && store_session_set_alarm(f->store, m->session_id, m->alarm) < 0)
        log_error("machine %s: cannot mark session %" PRId64 " with its alarm", m->cfg->name,
                  m->session_id);
}

/* The machine's alarm: in the access log (an MQTT event), on the session it concerns. */
static void alarm_record(struct fablab *f, struct machine *m, const char *detail)
{
    struct machine_extra *x = extra_of(f, m);
    int64_t session = m->session_id ? m->session_id : x->closing_session_id;

    record(f, m, "machine_alarm", false, m->alarm ? m->alarm : "relay_fault",
           m->state != MACHINE_OFF ? m->member_id : 0, detail);
    if (session && store_session_set_alarm(f->store, session, m->alarm ? m->alarm : "relay_fault") < 0)
        log_error("machine %s: cannot mark session %" PRId64 " with its alarm", m->cfg->name,
                  session);
}

static void on_machine_event(struct machine *m, enum machine_event ev, void *userdata)
{
    struct fablab *f = userdata;
    const char *name = m->cfg->name;
    char until[32];

    format_utc(m->max_until, until, sizeof(until));
    switch (ev) {
    case MACHINE_EV_ON:
        log_info("machine %s: power on for member %" PRId64 " until %s%s", name, m->member_id,
                 until, m->booking_id ? " (booking)" : " (walk-up)");
        session_open(f, m);
        break;
    case MACHINE_EV_TAKEOVER:
        log_info("machine %s: handed over from member %" PRId64 " to member %" PRId64 " until %s",
                 name, m->previous_member_id, m->member_id, until);
        session_close(f, m, "handover", m->previous_running_seconds, m->previous_member_id,
                      m->previous_started_at);
        session_open(f, m);
        break;
    case MACHINE_EV_EXTENDED:
        log_info("machine %s: session of member %" PRId64 " extended until %s", name,
                 m->member_id, until);
        break;
    case MACHINE_EV_WARNING:
        log_info("machine %s: session of member %" PRId64 " ends at %s, warning", name,
                 m->member_id, until);
        record(f, m, "machine_warning", true, "ending_soon", m->member_id, until);
        break;
    case MACHINE_EV_GRACE:
        log_info("machine %s: grace period, power off in %" PRId64 " min", name,
                 m->cfg->grace_minutes);
        break;
    case MACHINE_EV_OVERRUN:
        log_notice("machine %s: session ended but the machine is running; power stays on "
                   "until it stops (never cut while running)", name);
        record(f, m, "machine_overrun", true, "never_cut_while_running", m->member_id, NULL);
        break;
    case MACHINE_EV_HANDOVER:
        log_info("machine %s: member %" PRId64 " finished; power off in %" PRId64
                 " s unless someone takes over", name, m->member_id, m->cfg->handover_seconds);
        break;
    case MACHINE_EV_OFF:
        /* timer_fault: the machine cut power because it could not schedule the next step. */
        log_msg(strcmp(m->off_reason, "timer_fault") == 0 ? LOG_ERR : LOG_INFO,
                "machine %s: power off (%s)", name, m->off_reason);
        record(f, m, "machine_off", true, m->off_reason, m->member_id, NULL);
        session_close(f, m, m->off_reason, machine_running_seconds(m), m->member_id, m->started_at);
        break;
    case MACHINE_EV_RUNNING:
        log_debug("machine %s: %s", name, m->running ? "running" : "idle");
        break;
    case MACHINE_EV_RELAY_FAULT:
        if (!relay_is_asynchronous(&m->relay)) {
            log_error("machine %s: relay write failed: %s", name, strerror(-m->last_error));
            break;
        }
        log_error("machine %s: ALARM: network relay %s did not confirm power %s within %" PRId64
                  " ms: the machine may be %s; asking again until it answers", name,
                  m->relay.name, m->relay.requested ? "on" : "off", m->cfg->power_confirm_ms,
                  m->relay.requested ? "off" : "still powered");
        alarm_record(f, m, m->relay.requested ? "power on not confirmed" : "power off not confirmed");
        break;
    case MACHINE_EV_RELAY_CONFIRMED: {
        struct machine_extra *x = extra_of(f, m);
        log_debug("machine %s: network relay confirmed power %s in %" PRIu64 " us", name,
                  m->relay.energised ? "on" : "off", m->relay.confirm_usec);
        if (x->tap_usec && m->relay.energised) {
            f->last.confirm_us = (uint32_t)(now_mono_usec() - x->tap_usec);
            f->last.confirm_seq = f->last.seq;
        }
        x->tap_usec = 0;
        if (!m->relay.energised)
            x->closing_session_id = 0;
        break;
    }
    case MACHINE_EV_RELAY_DIVERGED:
        log_warning("machine %s: its network relay reported power %s while %s is wanted (its "
                    "button, or a reboot): switching it %s again", name,
                    m->relay.energised ? "on" : "off", m->relay.requested ? "on" : "off",
                    m->relay.requested ? "on" : "off");
        record(f, m, "machine_relay", false, "relay_diverged", m->state != MACHINE_OFF ? m->member_id : 0,
               m->relay.energised ? "device on, off wanted" : "device off, on wanted");
        break;
    case MACHINE_EV_DEVICE_OFFLINE:
        log_error("machine %s: ALARM: its network relay went offline%s", name,
                  m->state != MACHINE_OFF ? " during a session: the session stays open, its "
                                            "state is checked when the device returns" : "");
        alarm_record(f, m, "device offline");
        break;
    case MACHINE_EV_DEVICE_ONLINE:
        log_notice("machine %s: its network relay is back online; asking it for power %s", name,
                   m->relay.requested ? "on" : "off");
        break;
    case MACHINE_EV_ALARM_CLEARED:
        log_notice("machine %s: alarm cleared: the network relay confirms power %s", name,
                   m->relay.energised ? "on" : "off");
        record(f, m, "machine_alarm", true, "cleared", m->state != MACHINE_OFF ? m->member_id : 0,
               m->relay.energised ? "power on confirmed" : "power off confirmed");
        break;
    }
    if (f->change_fn)
        f->change_fn(m, f->change_userdata);
}

/* ---- deciding at a machine ---- */

struct machine_facts {
    struct store_resource res;
    struct store_machine_facts facts;       /* res as the policy sees it */
    struct policy_booking upcoming[UPCOMING_MAX];
    size_t n_upcoming;
};

static int gather(struct fablab *f, const char *name, int64_t now, struct machine_facts *mf)
{
    int r = store_resource_get(f->store, name, &mf->res);
    if (r < 0)
        return r;
    store_machine_facts(&mf->res, now, LOOKAHEAD, &mf->facts);
    r = store_bookings_upcoming(f->store, mf->res.id, now, now + LOOKAHEAD, mf->upcoming,
                                UPCOMING_MAX);
    mf->n_upcoming = r > 0 ? (size_t)r : 0;
    return r < 0 ? r : 0;
}

/* The verdict for the holder of a card (already looked up) at machine m. */
static struct policy_machine_verdict decide(struct fablab *f, struct machine *m,
                                            const struct store_subject *subj, bool known,
                                            enum policy_card_proof proof, int64_t now,
                                            struct machine_facts *mf)
{
    struct policy_machine_request req = { 0 };
    struct store_subject_facts facts = { 0 };
    struct policy_door zone = { .zone = m->cfg->zone,
                                .security = (enum card_security)m->cfg->card_security };
    struct policy_qualification qual;
    int64_t expires;

    req.base.now = now;
    local_time_at(now, &req.base.local);
    req.base.door = &zone;
    req.machine = &mf->facts.machine;
    req.bookings = mf->upcoming;
    req.n_bookings = mf->n_upcoming;
    req.base.proof = proof;
    if (known) {
        store_subject_facts(subj, &facts, &req.base);
        req.member_id = subj->member_id;
        if (mf->res.training_id &&
            store_qualification_best(f->store, subj->member_id, mf->res.training_id, &expires) == 0) {
            qual.expires_at = expires;
            qual.revoked = false;
            req.qualification = &qual;
        }
    }
    if (mf->facts.hours_unreadable)
        log_warning("machine %s: its opening hours cannot be read, so it stays closed: set them "
                    "again", m->cfg->name);
    if (facts.hours_unreadable)
        log_warning("machine %s: the hours of plan %" PRId64 " cannot be read, so it opens "
                    "nothing: set them again", m->cfg->name, subj->plan_id);
    return policy_decide_machine(&req);
}

/* ---- booking service: the same rules for every client ---- */

static void rules_from(const struct store_resource *res, const struct schedule *hours,
                       struct booking_rules *r)
{
    r->slot_minutes = res->slot_minutes;
    r->min_minutes = res->min_minutes;
    r->max_minutes = res->max_minutes;
    r->window_days = res->window_days;
    r->quota_day_minutes = res->quota_day_minutes;
    r->quota_week_minutes = res->quota_week_minutes;
    r->cancel_deadline_minutes = res->cancel_deadline_minutes;
    r->hours = hours;
}

/* Check a booking [start, end) for member on resource (replacing exclude_id when moving)
 * against every rule, through the planner the web page uses too. now_for_rules lets an
 * extension start at the end of a grace period. hide_names: the request comes from a member,
 * whose messages never name other members. */
struct booking_verdict fablab_check_booking(struct fablab *f, const struct store_resource *res,
                                            int64_t member_id, int64_t start, int64_t end,
                                            int64_t exclude_id, int64_t now_for_rules,
                                            bool hide_names, enum lang lang)
{
    struct fablab_planner_args args = { .member_id = member_id, .from = start, .to = end,
                                        .exclude_id = exclude_id, .now = now_for_rules,
                                        .hide_names = hide_names, .lang = lang };
    struct fablab_planner *p;
    struct booking_verdict v;
    int r = fablab_planner_new(f->store, res, &args, &p);

    if (r < 0) {
        /* Refused rather than let through: the store could not say what is booked. */
        v.error = BOOKING_OVERLAP;
        snprintf(v.message, sizeof(v.message), "%s: %s",
                 i18n_t(lang, "the bookings could not be read"), strerror(-r));
        return v;
    }
    v = fablab_planner_check(p, start, end);
    fablab_planner_free(p);
    return v;
}

/* Who did it, for records: "manager:uid=1000", "member:42". */
struct fablab_actor {
    bool manager;
    int64_t member_id;
    const char *who;
};

static void actor_text(const struct fablab_actor *a, char *buf, size_t n)
{
    if (a->manager)
        snprintf(buf, n, "manager:%s", a->who ? a->who : "?");
    else
        snprintf(buf, n, "member:%" PRId64, a->member_id);
}

/* ---- trainings: the rules of every way to grant one ---- */

static int refuse(struct fablab_refusal *ret, int error, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(struct fablab_refusal *ret, int error, const char *code, const char *fmt, ...)
{
    va_list ap;

    ret->error = error;
    ret->code = code;
    va_start(ap, fmt);
    vsnprintf(ret->message, sizeof(ret->message), fmt, ap);
    va_end(ap);
    return error;
}

int fablab_trainer_may(struct store *store, int64_t training_id, const char *training,
                       int64_t trainer_id, int64_t member_id, int64_t now,
                       struct fablab_refusal *ret)
{
    int64_t expires;
    int r;

    if (!trainer_id)
        return 0;
    if (member_id == trainer_id)
        return refuse(ret, -EPERM, "forbidden", "a trainer cannot grant or revoke their own "
                      "training; ask another trainer or a manager");
    r = store_trainer_is(store, training_id, trainer_id);
    if (r < 0)
        return refuse(ret, r, "store", "cannot check your trainer role: %s", strerror(-r));
    if (r == 0)
        return refuse(ret, -EPERM, "forbidden", "you are not named trainer for %s", training);
    r = store_qualification_best(store, trainer_id, training_id, &expires);
    if (r < 0 && r != -ENOENT)
        return refuse(ret, r, "store", "cannot read your own training: %s", strerror(-r));
    if (r == -ENOENT || (expires && expires <= now))
        return refuse(ret, -EPERM, "trainer_training_lapsed", "your own %s training has %s: "
                      "renew it before training others", training,
                      r == -ENOENT ? "been revoked" : "expired");
    return 0;
}

int fablab_training_grant(struct store *store, int64_t training_id, const char *training,
                          int64_t trainer_id, int64_t member_id, const char *by,
                          int64_t expires_at, int64_t now, int64_t *ret_id, bool *ret_renewed,
                          struct fablab_refusal *ret)
{
    struct store_member mb;
    int64_t held;
    int r = fablab_trainer_may(store, training_id, training, trainer_id, member_id, now, ret);

    if (r < 0)
        return r;
    if (trainer_id) {
        r = store_member_get(store, member_id, &mb);
        if (r == -ENOENT)
            return refuse(ret, r, "not_found", "no member %" PRId64, member_id);
        if (r < 0)
            return refuse(ret, r, "store", "cannot read member %" PRId64 ": %s", member_id,
                          strerror(-r));
        if (mb.status != MEMBER_ACTIVE || (mb.valid_from && now < mb.valid_from) ||
            (mb.valid_until && now >= mb.valid_until))
            return refuse(ret, -EPERM, "member_inactive", "%s is not an active member (%s)",
                          mb.name, mb.status != MEMBER_ACTIVE ? "suspended"
                          : mb.valid_from && now < mb.valid_from ? "not yet valid" : "expired");
    }
    r = store_qualification_best(store, member_id, training_id, &held);
    *ret_renewed = r == 0 && (!held || held > now);
    r = store_qualification_grant(store, member_id, training_id, by, expires_at, ret_id);
    if (r < 0)
        return refuse(ret, r, "store", "cannot grant: %s", strerror(-r));
    return 0;
}

/* ---- a card at a machine ---- */

/* A trainer's window at machine m: the next other card is the trainee's. */
static bool trainer_window_open(const struct machine_extra *x)
{
    return x->trainer_id && now_mono_usec() < x->trainer_until_usec;
}

/* The trainee's card, in a trainer's window: grant the machine's training. */
static void trainee_tap(struct fablab *f, struct machine *m, struct machine_facts *mf,
                        const struct store_subject *subj, bool known, unsigned targets,
                        uint64_t t0_usec)
{
    struct machine_extra *x = extra_of(f, m);
    struct fablab_refusal no = { 0 };
    int64_t trainer = x->trainer_id, id;
    char by[48], detail[96];
    bool renewed = false;
    int r;

    x->trainer_id = 0;
    snprintf(by, sizeof(by), "trainer:%" PRId64, trainer);
    if (!known)
        r = refuse(&no, -ENOENT, "unknown_card", "the card is nobody's");
    else
        r = fablab_training_grant(f->store, mf->res.training_id, mf->res.training, trainer,
                                  subj->member_id, by, 0, now_utc(), &id, &renewed, &no);
    if (r < 0) {
        log_notice("machine %s: trainer %" PRId64 " could not grant %s%s: %s", m->cfg->name,
                   trainer, mf->res.training, known ? "" : " (unknown card)", no.message);
        snprintf(detail, sizeof(detail), "by trainer %" PRId64 ": %.60s", trainer, no.message);
        record_tap(f, m, false, no.code, known ? subj->member_id : 0, detail, targets);
        remember(f, m, known ? subj->member_id : 0, false, no.code, t0_usec);
        machine_announce(m, MACHINE_SIGNAL_REFUSED);
        return;
    }
    log_info("machine %s: training %s %s to member %" PRId64 " by trainer %" PRId64
             " at the machine", m->cfg->name, mf->res.training, renewed ? "renewed" : "granted",
             subj->member_id, trainer);
    snprintf(detail, sizeof(detail), "%s by trainer %" PRId64, mf->res.training, trainer);
    record(f, m, "training", true, renewed ? "renewed" : "granted", subj->member_id, detail);
    remember(f, m, subj->member_id, true, renewed ? "training_renewed" : "training_granted", t0_usec);
    machine_announce(m, MACHINE_SIGNAL_OK);
}

/* A trainer of the machine's training taps (not to end their own session): open the window
 * for the trainee's card. Returns true if it did. */
static bool trainer_tap(struct fablab *f, struct machine *m, struct machine_facts *mf,
                        const struct store_subject *subj, unsigned targets, uint64_t t0_usec)
{
    struct machine_extra *x = extra_of(f, m);
    char detail[64];
    int r;

    if (!m->cfg->trainer_window_seconds || !mf->res.training_id)
        return false;
    if (trainer_window_open(x) && x->trainer_id == subj->member_id) {
        x->trainer_id = 0;      /* tapped twice: the trainer uses the machine */
        return false;
    }
    r = store_trainer_is(f->store, mf->res.training_id, subj->member_id);
    if (r <= 0)
        return false;
    x->trainer_id = subj->member_id;
    x->trainer_until_usec = now_mono_usec() + (uint64_t)m->cfg->trainer_window_seconds * 1000000u;
    log_info("machine %s: trainer %" PRId64 " waits for a trainee's card for %s (%" PRId64 " s)",
             m->cfg->name, subj->member_id, mf->res.training, m->cfg->trainer_window_seconds);
    snprintf(detail, sizeof(detail), "%s, %" PRId64 " s", mf->res.training,
             m->cfg->trainer_window_seconds);
    record_tap(f, m, true, "trainer_window", subj->member_id, detail, targets);
    remember(f, m, subj->member_id, true, "trainer_window", t0_usec);
    machine_announce(m, MACHINE_SIGNAL_WAIT);
    return true;
}

static void tap_refused_log(struct machine *m, int64_t member_id, enum policy_reason reason)
{
    if (member_id)
        log_notice("machine %s: refused to member %" PRId64 ": %s", m->cfg->name, member_id,
                   policy_reason_to_text(reason));
    else
        log_notice("machine %s: refused to an unknown card", m->cfg->name);
}

/* Same member tapping during warning or grace: extend into the next slot if they may.
 * Returns whether it extended. */
static bool try_extend(struct fablab *f, struct machine *m, const struct store_subject *subj,
                       int64_t now, struct machine_facts *mf, unsigned targets)
{
    struct policy_machine_verdict v;

    if (m->booking_id) {
        struct booking_verdict bv;
        /* One slot, or the shortest booking allowed if that is longer. */
        int64_t len = mf->res.slot_minutes > mf->res.min_minutes ? mf->res.slot_minutes
                                                                 : mf->res.min_minutes;
        int64_t start = m->max_until, end = m->max_until + len * 60, id;
        char by[80];
        struct fablab_actor actor = { .member_id = subj->member_id };

        bv = fablab_check_booking(f, &mf->res, subj->member_id, start, end, 0,
                                  now < start ? now : start, false, LANG_EN);
        if (bv.error != BOOKING_OK) {
            log_notice("machine %s: member %" PRId64 " cannot extend: %s", m->cfg->name,
                       subj->member_id, bv.message);
            record_tap(f, m, false, booking_error_to_string(bv.error), subj->member_id,
                       "extend refused", targets);
            return false;
        }
        actor_text(&actor, by, sizeof(by));
        if (store_booking_add(f->store, mf->res.id, subj->member_id, start, end, by, &id) < 0) {
            log_error("machine %s: cannot store the extension booking", m->cfg->name);
            return false;
        }
        machine_extend(m, id, end);
        record_tap(f, m, true, "extended", subj->member_id, "next slot booked", targets);
        return true;
    }
    /* Walk-up: extend as far as a fresh decision allows. */
    v = decide(f, m, subj, true, POLICY_PROOF_OK, now, mf);   /* the card passed proof_enough() */
    if (v.granted && (v.max_until < m->hard_until ? v.max_until : m->hard_until) > m->max_until) {
        machine_extend(m, 0, v.max_until);
        record_tap(f, m, true, "extended", subj->member_id, "walk-up", targets);
        return true;
    } else {
        record_tap(f, m, false, v.granted ? "no_free_time" : policy_reason_to_string(v.reason),
                   subj->member_id, "extend refused", targets);
        log_notice("machine %s: member %" PRId64 " cannot extend: %s", m->cfg->name,
                   subj->member_id, v.granted ? "no free time after this session"
                                              : policy_reason_to_text(v.reason));
    }
    return false;
}

/* Whether the card proved what the machine asks (policy.h), before any state changes. */
static bool proof_enough(const struct machine *m, bool desfire, enum policy_card_proof proof)
{
    struct policy_door zone = { .zone = m->cfg->zone,
                                .security = (enum card_security)m->cfg->card_security };
    struct policy_card card = { .enabled = true, .desfire = desfire };
    struct policy_request req = { .door = &zone, .card = &card, .proof = proof };

    return policy_card_proof_check(&req) == POLICY_GRANTED;
}

bool fablab_reader_tap(struct fablab *f, const char *reader, const struct reader_event *ev)
{
    const uint8_t *uid = ev->uid;
    size_t uid_len = ev->uid_len;
    unsigned targets = ev->targets;
    uint64_t t0_usec = ev->at_usec;
    enum policy_card_proof proof = access_card_proof(ev, false);
    struct machine *m = NULL;
    struct machine_facts mf;
    struct store_subject subj = { 0 };
    struct policy_machine_verdict v;
    uint8_t hash[STORE_HASH_LEN];
    int64_t now = now_utc();
    bool known, same;
    int r;

    for (unsigned i = 0; i < f->n_machines; i++)
        if (strcmp(f->machines[i].cfg->reader, reader) == 0)
            m = &f->machines[i];
    if (!m)
        return false;
    if (targets > 1)
        log_info("machine %s: %u cards presented at reader %s; first selected wins", m->cfg->name,
                 targets, reader);
    access_card_hash(f->engine, uid, uid_len, hash);
    known = store_subject_lookup(f->store, hash, &subj) == 0;
    f->tap_card_id = known ? subj.card_id : 0;
    /* The session's member ends or extends it only with a card that proves what a start
     * would need: a copy of the UID must not switch the machine off either. */
    same = known && subj.member_id == m->member_id && proof_enough(m, subj.card_desfire, proof);
    r = gather(f, m->cfg->name, now, &mf);
    if (r < 0) {
        log_error("machine %s: cannot read its rules: %s", m->cfg->name, strerror(-r));
        return true;
    }

    /* Training at the machine: a trainer's tap opens a window, the next other card in it
     * is the trainee's (never a power tap); the trainer's second tap uses the machine. */
    {
        struct machine_extra *x = extra_of(f, m);
        if (trainer_window_open(x) && !(known && subj.member_id == x->trainer_id)) {
            trainee_tap(f, m, &mf, &subj, known, targets, t0_usec);
            return true;
        }
        if (known && !(same && machine_powered(m)) && trainer_tap(f, m, &mf, &subj, targets, t0_usec))
            return true;
    }

    /* The member of the running session: finish, extend, or stop now. */
    if (same && machine_powered(m)) {
        switch (m->state) {
        case MACHINE_ON:
            machine_finish(m);
            record_tap(f, m, true, "finished", subj.member_id, NULL, targets);
            remember(f, m, subj.member_id, true, "finished", t0_usec);
            return true;
        case MACHINE_WARNING:
        case MACHINE_GRACE: {
            bool ok = try_extend(f, m, &subj, now, &mf, targets);
            remember(f, m, subj.member_id, ok, ok ? "extended" : "extend_refused", t0_usec);
            return true;
        }
        default:    /* handover or overrun: a second tap means off now */
            machine_power_off(m, "finished");
            remember(f, m, subj.member_id, true, "off", t0_usec);
            return true;
        }
    }

    v = decide(f, m, &subj, known, proof, now, &mf);
    if (v.granted) {
        bool takeover = machine_powered(m);
        r = machine_powered(m) && m->state != MACHINE_HANDOVER
                ? machine_takeover(m, subj.member_id, v.booking_id, v.max_until)
                : machine_power_on(m, subj.member_id, v.booking_id, v.max_until);
        uint32_t latency = (uint32_t)(now_mono_usec() - t0_usec);
        if (r < 0) {
            log_error("machine %s: granted to member %" PRId64
                      " but power could not be switched on: %s", m->cfg->name, subj.member_id,
                      strerror(-r));
            record_tap(f, m, false, "relay_fault", subj.member_id, NULL, targets);
            remember(f, m, subj.member_id, false, "relay_fault", t0_usec);
            return true;
        }
        remember(f, m, subj.member_id, true, takeover ? "takeover" : "on", t0_usec);
        if (relay_is_asynchronous(&m->relay) && m->relay.pending)
            extra_of(f, m)->tap_usec = t0_usec;     /* for the confirmation's latency */
        char detail[48];
        snprintf(detail, sizeof(detail), "%s, %u us", v.booking_id ? "booking" : "walk-up", latency);
        record_tap(f, m, true, "granted", subj.member_id, detail, targets);
    } else {
        remember(f, m, known ? subj.member_id : 0, false, policy_reason_to_string(v.reason), t0_usec);
        record_tap(f, m, false, policy_reason_to_string(v.reason), known ? subj.member_id : 0,
                   NULL, targets);
        tap_refused_log(m, known ? subj.member_id : 0, v.reason);
    }
    return true;
}

void fablab_clock_changed(struct fablab *f)
{
    for (unsigned i = 0; i < f->n_machines; i++)
        machine_clock_changed(&f->machines[i]);
    fablab_minute(f);
}

void fablab_minute(struct fablab *f)
{
    int64_t now = now_utc();
    for (unsigned i = 0; i < f->n_machines; i++) {
        struct machine *m = &f->machines[i];
        /* A crash closes the session at the last minute recorded here. */
        if (m->session_id && store_session_touch(f->store, m->session_id, now,
                                                 machine_running_seconds(m),
                                                 session_energy_wh(f, m)) < 0)
            log_error("machine %s: cannot record that session %" PRId64 " is still running",
                      m->cfg->name, m->session_id);
    }
}

json_t *fablab_machine_json(struct fablab *f, const struct store_resource *r)
{
    struct machine *m = machine_by_name(f, r->name);
    char until[32] = "";
    if (m && machine_powered(m))
        format_utc(m->max_until, until, sizeof(until));
    return json_pack(
        "{s:s, s:s, s:b, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:I, s:b, s:s, "
        "s:I, s:I, s:s, s:o?}",
        "name", r->name, "zone", r->zone, "out_of_order", r->out_of_order,
        "out_of_order_reason", r->out_of_order_reason, "training", r->training[0] ? r->training : NULL,
        "slot_minutes", (json_int_t)r->slot_minutes, "min_minutes", (json_int_t)r->min_minutes,
        "max_minutes", (json_int_t)r->max_minutes, "window_days", (json_int_t)r->window_days,
        "quota_day_minutes", (json_int_t)r->quota_day_minutes, "quota_week_minutes",
        (json_int_t)r->quota_week_minutes, "cancel_deadline_minutes",
        (json_int_t)r->cancel_deadline_minutes, "hours", r->hours, "booking_required",
        r->booking_required, "walkup_free_minutes", (json_int_t)r->walkup_free_minutes,
        "interlock", m != NULL, "state", m ? machine_state_to_string(m->state) : "none",
        "member_id", (json_int_t)(m && machine_powered(m) ? m->member_id : 0),
        "booking_id", (json_int_t)(m && machine_powered(m) ? m->booking_id : 0),
        "until", until, "running", m && machine_senses_running(m) ? json_boolean(m->running) : NULL);
}

bool fablab_cancel_allowed(const struct store_resource *res, int64_t start, int64_t now)
{
    struct booking_rules rules;
    rules_from(res, NULL, &rules);
    return booking_cancel_allowed(&rules, start, now);
}

const char *fablab_machine_of_reader(struct fablab *f, const char *reader)
{
    for (unsigned i = 0; f && i < f->n_machines; i++)
        if (strcmp(f->machines[i].cfg->reader, reader) == 0)
            return f->machines[i].cfg->name;
    return NULL;
}

void fablab_publish_all(struct fablab *f)
{
    for (unsigned i = 0; f->change_fn && i < f->n_machines; i++)
        f->change_fn(&f->machines[i], f->change_userdata);
}

int fablab_set_out_of_order(struct fablab *f, const char *name, bool on, bool after_session,
                            const char *reason, const char *by, bool *ret_finishing)
{
    struct store_resource res;
    struct machine *m;
    bool finishing = false;
    int r;

    if (store_resource_get(f->store, name, &res) < 0 || strcmp(res.kind, "machine") != 0)
        return -ENOENT;
    r = store_resource_set_out_of_order(f->store, res.id, on, reason);
    if (r < 0)
        return r;
    m = machine_by_name(f, res.name);
    if (on && m && machine_powered(m)) {
        /* A broken machine stops now. After the session: it runs to the end of the session
         * under way — the out-of-order flag already refuses extensions, takeovers and new
         * sessions, so no further check is needed when it ends. */
        if (after_session)
            finishing = true;
        else
            machine_power_off(m, "out_of_order");
    }
    if (m && f->change_fn)
        f->change_fn(m, f->change_userdata);
    log_notice("machine %s %s by %s%s%s%s", res.name, on ? "out of order" : "back in order", by,
               finishing ? " (after the current session)" : "", reason && *reason ? ": " : "",
               reason ? reason : "");
    if (ret_finishing)
        *ret_finishing = finishing;
    {
        struct store_event ev = { .at = now_utc(), .resource_id = res.id, .granted = true };
        snprintf(ev.kind, sizeof(ev.kind), "%s", on ? "out_of_order" : "in_order");
        snprintf(ev.reason, sizeof(ev.reason), finishing ? "after_session" : "manager");
        snprintf(ev.detail, sizeof(ev.detail), "by %.40s%s%.60s", by, reason && *reason ? ": " : "",
                 reason ? reason : "");
        /* The machine is out of order (or back) already; the access log says so, or the
         * caller hears that it could not. */
        r = store_event_add(f->store, &ev, NULL);
    }
    return r;
}

/* A machine's network relay and meter, for status: null for a GPIO relay without meter. */
static json_t *fablab_power_json(struct fablab *f, const struct machine *m)
{
    const struct machine_extra *x = extra_of(f, m);
    struct netdev_reading rd;
    char dev[128];
    json_t *o;

    if (!x->power && !x->meter)
        return json_null();
    o = json_object();
    if (x->power) {
        const struct relay *r = &m->relay;
        device_spec_format(netdev_spec(x->power), dev, sizeof(dev));
        json_object_set_new(o, "device", json_string(dev));
        json_object_set_new(o, "relay", json_string(r->offline ? "offline" : r->fault ? "fault" :
                                                    r->pending ? "pending" : "confirmed"));
        json_object_set_new(o, "requested", json_boolean(r->requested));
        json_object_set_new(o, "confirm_us", json_integer((json_int_t)r->confirm_usec));
        json_object_set_new(o, "requests", json_integer((json_int_t)r->writes));
        json_object_set_new(o, "faults", json_integer((json_int_t)r->faults));
    }
    if (x->meter) {
        netdev_reading(x->meter, &rd);
        device_spec_format(netdev_spec(x->meter), dev, sizeof(dev));
        json_object_set_new(o, "meter", json_string(dev));
        json_object_set_new(o, "online", rd.online_known ? json_boolean(rd.online) : json_null());
        json_object_set_new(o, "power_w", rd.has_power ? json_integer((json_int_t)((rd.power_mw + 500) / 1000))
                                                       : json_null());
        json_object_set_new(o, "session_energy_wh", m->session_id && rd.has_energy
                                ? json_integer((json_int_t)session_energy_wh(f, m)) : json_null());
        json_object_set_new(o, "counter_resets", json_integer((json_int_t)rd.counter_resets));
        /* What the meter counted since portierd started (its own total, through resets). */
        json_object_set_new(o, "energy_total_wh", rd.has_energy
                                ? json_integer((json_int_t)(rd.energy_mwh / 1000)) : json_null());
    }
    return o;
}

json_t *fablab_status(struct fablab *f)
{
    json_t *list = json_array();
    struct store_resource res;
    for (unsigned i = 0; i < f->n_machines; i++)
        if (store_resource_get(f->store, f->machines[i].cfg->name, &res) == 0) {
            json_t *o = fablab_machine_json(f, &res);
            const struct machine *m = &f->machines[i];
            json_object_set_new(o, "relay_energised", json_boolean(m->relay.energised));
            json_object_set_new(o, "warn_energised", json_boolean(m->warn.energised));
            json_object_set_new(o, "alarm", m->alarm ? json_string(m->alarm) : json_null());
            json_object_set_new(o, "power", fablab_power_json(f, m));
            json_array_append_new(list, o);
        }
    return list;
}

struct input *fablab_input_by_name(struct fablab *f, const char *name)
{
    for (unsigned i = 0; i < f->n_machines; i++)
        if (f->machines[i].running_in.is_open && strcmp(f->machines[i].running_in.name, name) == 0)
            return &f->machines[i].running_in;
    return NULL;
}

static int close_interrupted(const struct store_session *ss, void *userdata)
{
    struct fablab *f = userdata;
    int64_t energy = ss->has_energy ? ss->energy_wh : -1;
    int r = store_session_close(f->store, ss->id, ss->last_seen_at, ss->running_seconds, energy,
                                "interrupted");
    if (r == 0 && f->meter)
        r = meter_machine(f->meter, ss->member_id, ss->resource, ss->started_at, ss->last_seen_at,
                          ss->running_seconds, energy, "interrupted");
    if (r < 0)
        log_error("machine %s: cannot close interrupted session %" PRId64 ": %s", ss->resource,
                  ss->id, strerror(-r));
    return 0;
}

/* A new reading of a machine's meter: power as its running input, and status. */
static void meter_reading(struct netdev *d, void *userdata)
{
    struct machine_extra *x = userdata;
    struct netdev_reading rd;

    netdev_reading(d, &rd);
    if (rd.has_energy && x->m->session_id && !x->energy_counting) {
        x->energy_counting = true;          /* the session's first reading */
        x->energy_start_mwh = rd.energy_mwh;
    }
    if (rd.has_power)
        machine_power_reading(x->m, rd.power_mw);
}

/* The network devices of machine mc: its relay (into *net) and its meter. */
static int machine_devices(struct fablab *f, const struct machine_config *mc,
                           struct machine_extra *x, struct machine_net *net)
{
    const struct device_spec *meter = config_machine_meter_device(f->cfg, mc);
    char topic[160];
    int r;

    if (mc->power.kind == DEVICE_NONE && !meter)
        return 0;
    if (!f->hub) {
        snprintf(topic, sizeof(topic), "%s/%s/shelly", f->cfg->mqtt.prefix, f->cfg->site.id);
        if ((r = netdev_hub_new(f->loop, topic, &f->hub)) < 0)
            return r;
    }
    if (mc->power.kind != DEVICE_NONE) {
        if ((r = netdev_get(f->hub, &mc->power, &x->power)) < 0)
            return r;
        netdev_set_confirm_ms(x->power, (unsigned)mc->power_confirm_ms);
        net->ops = &relay_ops_netdev;
        net->device = x->power;
    }
    if (meter) {
        if ((r = netdev_get(f->hub, meter, &x->meter)) < 0 ||
            (r = netdev_listen(x->meter, meter_reading, x)) < 0)
            return r;
    }
    return 0;
}

void fablab_set_mqtt(struct fablab *f, struct mqtt *mqtt)
{
    if (f && f->hub)
        (void)netdev_hub_attach(f->hub, mqtt);
}

bool fablab_has_network_devices(const struct fablab *f)
{
    return f && netdev_hub_count(f->hub) > 0;
}

int fablab_new(sd_event *loop, struct store *store, struct access_engine *engine,
               struct meter *meter, const struct config *cfg, const struct door_hw *hw,
               struct fablab **ret)
{
    struct fablab *f = calloc(1, sizeof(*f));
    int r;

    if (!f)
        return -ENOMEM;
    f->loop = loop;
    f->store = store;
    f->engine = engine;
    f->meter = meter;
    f->cfg = cfg;
    /* A crash or power cut left sessions open: close them when they were last known. */
    r = store_sessions_foreach_open(store, close_interrupted, f);
    if (r > 0)
        log_notice("closed %d machine session(s) interrupted by a crash or power cut", r);
    for (unsigned i = 0; i < cfg->n_machines; i++) {
        const struct machine_config *mc = &cfg->machines[i];
        struct machine *m = &f->machines[i];
        struct machine_extra *x = &f->extra[i];
        struct machine_net net = { 0 };
        struct store_resource res;
        const char *what = "";
        x->f = f;
        x->m = m;
        r = machine_devices(f, mc, x, &net);
        if (r < 0) {
            log_error("machine %s: cannot set up its network devices: %s", mc->name, strerror(-r));
            goto fail;
        }
        r = machine_init(m, mc, loop, hw, &net, on_machine_event, f, &what);
        if (r < 0) {
            log_error("machine %s: cannot open %s line: %s", mc->name, what, strerror(-r));
            goto fail;
        }
        f->n_machines++;
        r = store_resource_ensure(store, "machine", mc->name, mc->zone, &m->resource_id);
        if (r == 0 && store_resource_get(store, mc->name, &res) == 0 && !res.has_rules)
            r = store_machine_rules_put(store, &res);   /* defaults, for managers to adjust */
        if (r < 0) {
            log_error("machine %s: cannot record it in the database: %s", mc->name, strerror(-r));
            goto fail;
        }
    }
    *ret = f;
    return 0;
fail:
    fablab_free(f);
    return r;
}

void fablab_reconfigure(struct fablab *f, const struct config *cfg)
{
    f->cfg = cfg;
    for (unsigned i = 0; i < f->n_machines; i++)
        machine_reconfigure(&f->machines[i], &cfg->machines[i]);
}

struct fablab *fablab_free(struct fablab *f)
{
    if (!f)
        return NULL;
    for (unsigned i = 0; i < f->n_machines; i++) {
        machine_power_off(&f->machines[i], "stopped");
        machine_fini(&f->machines[i]);
    }
    f->hub = netdev_hub_free(f->hub);
    free(f);
    return NULL;
}

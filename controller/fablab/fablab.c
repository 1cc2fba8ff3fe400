#include "fablab.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "cardid.h"
#include "log.h"
#include "meter.h"
#include "policy.h"
#include "util.h"

#define LOOKAHEAD (7 * 86400)       /* bookings and opening hours considered at a tap */
#define UPCOMING_MAX 32

struct fablab {
    sd_event *loop;
    struct store *store;
    struct access_engine *engine;
    struct meter *meter;
    const struct config *cfg;
    unsigned n_machines;
    struct machine machines[CONFIG_MAX_MACHINES];
    struct fablab_tap last;
    void (*change_fn)(struct machine *m, void *userdata);
    void *change_userdata;
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

static void record(struct fablab *f, struct machine *m, const char *kind, bool granted,
                   const char *reason, int64_t member_id, const char *detail)
{
    struct store_event ev = { .at = now_utc(), .resource_id = m->resource_id,
                              .member_id = member_id, .granted = granted };
    strlcpy_checked(ev.kind, kind, sizeof(ev.kind));
    strlcpy_checked(ev.reason, reason, sizeof(ev.reason));
    strlcpy_checked(ev.reader, m->cfg->reader, sizeof(ev.reader));
    strlcpy_checked(ev.detail, detail ? detail : "", sizeof(ev.detail));
    if (store_event_add(f->store, &ev, NULL) < 0)
        log_error("machine %s: cannot record %s event", m->cfg->name, kind);
}

/* A card's entry: its detail also says when several cards answered, as a door tap's does. */
static void record_tap(struct fablab *f, struct machine *m, bool granted, const char *reason,
                       int64_t member_id, const char *detail, unsigned targets)
{
    char buf[sizeof(((struct store_event *)0)->detail)];

    record(f, m, "machine", granted, reason, member_id,
           access_tap_detail(buf, sizeof(buf), detail, targets));
}

/* ---- machine events: keep the session record in step ---- */

/* Close the session record and meter it; member_id/started_at: of the closed session. */
static void session_close(struct fablab *f, struct machine *m, const char *reason,
                          int64_t running_seconds, int64_t member_id, int64_t started_at)
{
    int64_t now = now_utc();
    int r;

    if (!m->session_id)
        return;
    if (store_session_close(f->store, m->session_id, now, running_seconds, reason) < 0)
        log_error("machine %s: cannot close session %" PRId64, m->cfg->name, m->session_id);
    m->session_id = 0;
    r = f->meter ? meter_machine(f->meter, member_id, m->cfg->name, started_at, now,
                                 running_seconds, reason) : 0;
    if (r < 0)
        log_error("machine %s: cannot meter the session of member %" PRId64 ": %s", m->cfg->name,
                  member_id, strerror(-r));
}

static void session_open(struct fablab *f, struct machine *m)
{
    if (store_session_open(f->store, m->resource_id, m->member_id, m->booking_id, m->started_at,
                           &m->session_id) < 0)
        log_error("machine %s: cannot record the session", m->cfg->name);
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
        log_error("machine %s: relay write failed: %s", name, strerror(-m->last_error));
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
 * against every rule. now_for_rules lets an extension start at the end of a grace period. */
/* hide_names: the request comes from a member, whose messages never name other members. */
struct booking_verdict fablab_check_booking(struct fablab *f, const struct store_resource *res,
                                            int64_t member_id, int64_t start, int64_t end,
                                            int64_t exclude_id, int64_t now_for_rules,
                                            bool hide_names)
{
    struct booking_verdict v;
    struct booking_rules rules;
    struct booking_request req = { .hide_names = hide_names, .now = now_for_rules,
                                   .start = start, .end = end,
                                   .rules = &rules, .out_of_order = res->out_of_order };
    struct booking_ref overlapping[8];
    struct store_member m;
    struct store_machine_facts facts;
    int64_t from, to, expires;
    int n;

    store_machine_facts(res, now_for_rules, 0, &facts);
    rules_from(res, &facts.hours, &rules);
    if (store_member_get(f->store, member_id, &m) < 0) {
        v.error = BOOKING_MEMBER_INACTIVE;
        snprintf(v.message, sizeof(v.message), "no member %" PRId64, member_id);
        return v;
    }
    req.member_active = m.status == MEMBER_ACTIVE && (!m.valid_from || start >= m.valid_from) &&
                        (!m.valid_until || end <= m.valid_until);
    req.qualified = !res->training_id ||
                    (store_qualification_best(f->store, member_id, res->training_id, &expires) == 0 &&
                     (!expires || end <= expires));
    n = store_bookings_overlapping(f->store, res->id, start, end, exclude_id, overlapping,
                                   ARRAY_SIZE(overlapping));
    req.overlapping = overlapping;
    req.n_overlapping = n > 0 ? (size_t)n : 0;
    booking_day_bounds(start, &from, &to);
    req.member_day_minutes = store_booked_minutes(f->store, member_id, res->id, from, to, exclude_id);
    booking_week_bounds(start, &from, &to);
    req.member_week_minutes = store_booked_minutes(f->store, member_id, res->id, from, to, exclude_id);
    return booking_check(&req);
}

bool fablab_slot_check(struct fablab *f, const struct store_resource *res, int64_t member_id,
                       int64_t start, int64_t end, struct booking_verdict *ret)
{
    *ret = fablab_check_booking(f, res, member_id, start, end, 0, now_utc(), true);
    return ret->error == BOOKING_OK;
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

/* ---- a card at a machine ---- */

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

        bv = fablab_check_booking(f, &mf->res, subj->member_id, start, end, 0, now < start ? now : start,
                           false);
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
    /* The session's member ends or extends it only with a card that proves what a start
     * would need: a copy of the UID must not switch the machine off either. */
    same = known && subj.member_id == m->member_id && proof_enough(m, subj.card_desfire, proof);
    r = gather(f, m->cfg->name, now, &mf);
    if (r < 0) {
        log_error("machine %s: cannot read its rules: %s", m->cfg->name, strerror(-r));
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
                                                 machine_running_seconds(m)) < 0)
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
        "until", until, "running", m && m->running_in.is_open ? json_boolean(m->running) : NULL);
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

int fablab_set_out_of_order(struct fablab *f, const char *name, bool on, const char *reason,
                            const char *by)
{
    struct store_resource res;
    struct machine *m;
    int r;

    if (store_resource_get(f->store, name, &res) < 0 || strcmp(res.kind, "machine") != 0)
        return -ENOENT;
    r = store_resource_set_out_of_order(f->store, res.id, on, reason);
    if (r < 0)
        return r;
    m = machine_by_name(f, res.name);
    if (on && m && machine_powered(m))
        machine_power_off(m, "out_of_order");   /* a broken machine stops now */
    if (m && f->change_fn)
        f->change_fn(m, f->change_userdata);
    log_notice("machine %s %s by %s%s%s", res.name, on ? "out of order" : "back in order", by,
               reason && *reason ? ": " : "", reason ? reason : "");
    {
        struct store_event ev = { .at = now_utc(), .resource_id = res.id, .granted = true };
        snprintf(ev.kind, sizeof(ev.kind), "%s", on ? "out_of_order" : "in_order");
        snprintf(ev.reason, sizeof(ev.reason), "manager");
        snprintf(ev.detail, sizeof(ev.detail), "by %.40s%s%.60s", by, reason && *reason ? ": " : "",
                 reason ? reason : "");
        /* The machine is out of order (or back) already; the access log says so, or the
         * caller hears that it could not. */
        r = store_event_add(f->store, &ev, NULL);
    }
    return r;
}

json_t *fablab_status(struct fablab *f)
{
    json_t *list = json_array();
    struct store_resource res;
    for (unsigned i = 0; i < f->n_machines; i++)
        if (store_resource_get(f->store, f->machines[i].cfg->name, &res) == 0) {
            json_t *o = fablab_machine_json(f, &res);
            json_object_set_new(o, "relay_energised", json_boolean(f->machines[i].relay.energised));
            json_object_set_new(o, "warn_energised", json_boolean(f->machines[i].warn.energised));
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
    int r = store_session_close(f->store, ss->id, ss->last_seen_at, ss->running_seconds,
                                "interrupted");
    if (r == 0 && f->meter)
        r = meter_machine(f->meter, ss->member_id, ss->resource, ss->started_at, ss->last_seen_at,
                          ss->running_seconds, "interrupted");
    if (r < 0)
        log_error("machine %s: cannot close interrupted session %" PRId64 ": %s", ss->resource,
                  ss->id, strerror(-r));
    return 0;
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
        struct store_resource res;
        const char *what = "";
        r = machine_init(m, mc, loop, hw, on_machine_event, f, &what);
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
    free(f);
    return NULL;
}

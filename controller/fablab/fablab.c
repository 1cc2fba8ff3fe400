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
#include "request.h"
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
        log_info("machine %s: power off (%s)", name, m->off_reason);
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
                                            int64_t now, struct machine_facts *mf)
{
    struct policy_machine_request req = { 0 };
    struct store_subject_facts facts = { 0 };
    struct policy_door zone = { .zone = m->cfg->zone };
    struct policy_qualification qual;
    int64_t expires;

    req.base.now = now;
    local_time_at(now, &req.base.local);
    req.base.door = &zone;
    req.machine = &mf->facts.machine;
    req.bookings = mf->upcoming;
    req.n_bookings = mf->n_upcoming;
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
static struct booking_verdict check_booking(struct fablab *f, const struct store_resource *res,
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
    *ret = check_booking(f, res, member_id, start, end, 0, now_utc(), true);
    return ret->error == BOOKING_OK;
}

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

        bv = check_booking(f, &mf->res, subj->member_id, start, end, 0, now < start ? now : start,
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
    v = decide(f, m, subj, true, now, mf);
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

bool fablab_reader_tap(struct fablab *f, const char *reader, const uint8_t *uid, size_t uid_len,
                       unsigned targets, uint64_t t0_usec)
{
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
    same = known && subj.member_id == m->member_id;
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

    v = decide(f, m, &subj, known, now, &mf);
    if (v.granted) {
        bool takeover = machine_powered(m);
        r = machine_powered(m) && m->state != MACHINE_HANDOVER
                ? (machine_takeover(m, subj.member_id, v.booking_id, v.max_until), 0)
                : machine_power_on(m, subj.member_id, v.booking_id, v.max_until);
        uint32_t latency = (uint32_t)(now_mono_usec() - t0_usec);
        if (r < 0) {
            log_error("machine %s: granted to member %" PRId64 " but the relay write failed: %s",
                      m->cfg->name, subj.member_id, strerror(-r));
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
        if (m->session_id)
            store_session_touch(f->store, m->session_id, now, machine_running_seconds(m));
    }
}

/* ---- control commands ---- */

static bool req_machine(struct fablab *f, struct control_conn *c, json_t *req,
                        struct store_resource *ret)
{
    const char *name = req_str(req, "machine");
    if (!name || store_resource_get(f->store, name, ret) < 0 || strcmp(ret->kind, "machine") != 0) {
        control_reply_error(c, "not_found", "no machine '%.32s' (see portierctl machine list)",
                            name ? name : "");
        return false;
    }
    return true;
}

/* Apply the rule fields present in req onto r; reply and return false on a bad value. */
static bool rules_update(struct fablab *f, struct control_conn *c, json_t *req,
                         struct store_resource *r)
{
    static const struct { const char *key; size_t off; int64_t min, max; } ints[] = {
        { "slot_minutes", offsetof(struct store_resource, slot_minutes), 5, 1440 },
        { "min_minutes", offsetof(struct store_resource, min_minutes), 5, 10080 },
        { "max_minutes", offsetof(struct store_resource, max_minutes), 5, BOOKING_MAX_MINUTES },
        { "window_days", offsetof(struct store_resource, window_days), 0, 365 },
        { "quota_day_minutes", offsetof(struct store_resource, quota_day_minutes), 0, 1440 },
        { "quota_week_minutes", offsetof(struct store_resource, quota_week_minutes), 0, 10080 },
        { "cancel_deadline_minutes", offsetof(struct store_resource, cancel_deadline_minutes), 0, 10080 },
        { "walkup_free_minutes", offsetof(struct store_resource, walkup_free_minutes), 0, 1440 },
    };
    const char *training = req_str(req, "training"), *hours = req_str(req, "hours"), *err = "";
    json_t *v;
    struct schedule s;

    for (size_t i = 0; i < ARRAY_SIZE(ints); i++) {
        v = json_object_get(req, ints[i].key);
        if (!v)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < ints[i].min ||
            json_integer_value(v) > ints[i].max) {
            control_reply_error(c, "bad_request", "%s must be %" PRId64 " to %" PRId64,
                                ints[i].key, ints[i].min, ints[i].max);
            return false;
        }
        *(int64_t *)((char *)r + ints[i].off) = json_integer_value(v);
    }
    if (r->min_minutes > r->max_minutes || r->min_minutes % r->slot_minutes ||
        r->max_minutes % r->slot_minutes) {
        control_reply_error(c, "bad_request", "min and max length must be multiples of the slot "
                                              "(%" PRId64 " min) with min <= max", r->slot_minutes);
        return false;
    }
    if (training) {
        if (!*training || strcmp(training, "none") == 0) {
            r->training_id = 0;
        } else if (store_training_find(f->store, training, &r->training_id) < 0) {
            control_reply_error(c, "not_found", "no training '%.32s' (portierctl training add)",
                                training);
            return false;
        }
    }
    if (hours) {
        if (strlen(hours) >= sizeof(r->hours) || schedule_parse(hours, &s, &err) < 0) {
            control_reply_error(c, "bad_request", "hours: %s", err);
            return false;
        }
        strlcpy_checked(r->hours, hours, sizeof(r->hours));
    }
    v = json_object_get(req, "booking_required");
    if (v) {
        if (!json_is_boolean(v)) {
            control_reply_error(c, "bad_request", "booking_required must be true or false");
            return false;
        }
        r->booking_required = json_is_true(v);
    }
    return true;
}

static json_t *machine_json(struct fablab *f, const struct store_resource *r)
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

static int name_append(const char *name, void *userdata)
{
    json_array_append_new(userdata, json_string(name));
    return 0;
}

static json_t *booking_json(const struct store_booking *b)
{
    char s[32], e[32];
    format_utc(b->start, s, sizeof(s));
    format_utc(b->end, e, sizeof(e));
    return json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:s, s:s, s:s, s:b, s:s, s:b}",
                     "id", (json_int_t)b->id, "machine", b->resource, "member_id",
                     (json_int_t)b->member_id, "member", b->member, "start", (json_int_t)b->start,
                     "end", (json_int_t)b->end, "start_utc", s, "end_utc", e, "created_by",
                     b->created_by, "cancelled", b->cancelled_at != 0, "cancelled_by",
                     b->cancelled_by, "cancel_override", b->cancel_override);
}

static int booking_append(const struct store_booking *b, void *userdata)
{
    json_array_append_new(userdata, booking_json(b));
    return 0;
}

static int training_append(const struct store_training *t, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)t->id,
                                              "name", t->name, "description", t->description,
                                              "qualified_members", (json_int_t)t->qualified_members));
    return 0;
}

static int qualification_append(const struct store_qualification *q, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:I, s:s, s:I, s:I}", "id",
                                              (json_int_t)q->id, "training", q->training,
                                              "granted_at", (json_int_t)q->granted_at,
                                              "granted_by", q->granted_by, "expires_at",
                                              (json_int_t)q->expires_at, "revoked_at",
                                              (json_int_t)q->revoked_at));
    return 0;
}

static int session_append(const struct store_session *ss, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}",
                                              "id", (json_int_t)ss->id, "machine", ss->resource,
                                              "member_id", (json_int_t)ss->member_id,
                                              "booking_id", (json_int_t)ss->booking_id,
                                              "started_at", (json_int_t)ss->started_at,
                                              "ended_at", (json_int_t)ss->ended_at,
                                              "last_seen_at", (json_int_t)ss->last_seen_at,
                                              "running_seconds", (json_int_t)ss->running_seconds,
                                              "end_reason", ss->end_reason));
    return 0;
}

static void reply_booking_error(struct control_conn *c, const struct booking_verdict *v)
{
    control_reply_error(c, booking_error_to_string(v->error), "%s", v->message);
}

static void cmd_booking_add(struct fablab *f, struct control_conn *c, json_t *req)
{
    struct fablab_actor actor = { .manager = !json_is_true(json_object_get(req, "as_member")),
                                  .who = control_conn_who(c) };
    struct store_resource res;
    struct booking_verdict v;
    int64_t member, start, end, id;
    char by[80];
    int r;

    uint64_t t0 = now_mono_usec();
    if (!req_machine(f, c, req, &res) || !req_member(f->store, c, req, "member", &member) ||
        !req_time(c, req, "start", true, &start) || !req_time(c, req, "end", true, &end))
        return;
    actor.member_id = member;
    v = check_booking(f, &res, member, start, end, 0, now_utc(), !actor.manager);
    if (v.error != BOOKING_OK) {
        reply_booking_error(c, &v);
        return;
    }
    actor_text(&actor, by, sizeof(by));
    r = store_booking_add(f->store, res.id, member, start, end, by, &id);
    if (r < 0) {
        control_reply_error(c, "store", "cannot store the booking: %s", strerror(-r));
        return;
    }
    log_info("booking %" PRId64 ": %s for member %" PRId64 " by %s", id, res.name, member, by);
    /* check_us: time spent deciding and inserting (before the commit), for tools/bench. */
    control_reply_ok(c, json_pack("{s:I, s:I}", "id", (json_int_t)id, "check_us",
                                  (json_int_t)(now_mono_usec() - t0)));
}

/* Cancel or move: the deadline binds members; managers may override, and it is recorded. */
static void cmd_booking_change(struct fablab *f, struct control_conn *c, json_t *req, bool move)
{
    json_t *idv = json_object_get(req, "booking");
    bool override = json_is_true(json_object_get(req, "override"));
    bool as_member = json_is_true(json_object_get(req, "as_member"));
    struct fablab_actor actor = { .manager = !as_member, .who = control_conn_who(c) };
    struct store_booking b;
    struct store_resource res;
    struct booking_verdict v;
    int64_t now = now_utc(), start = 0, end = 0, new_id = 0;
    bool late;
    char by[80];
    int r;

    if (!json_is_integer(idv) || store_booking_get(f->store, json_integer_value(idv), &b) < 0) {
        control_reply_error(c, "not_found", "no booking %" JSON_INTEGER_FORMAT,
                            json_is_integer(idv) ? json_integer_value(idv) : 0);
        return;
    }
    if (b.cancelled_at) {
        control_reply_error(c, "cancelled", "booking %" PRId64 " is already cancelled", b.id);
        return;
    }
    if (b.end <= now) {
        control_reply_error(c, "in_past", "booking %" PRId64 " is over", b.id);
        return;
    }
    actor.member_id = b.member_id;
    store_resource_get(f->store, b.resource, &res);
    {
        struct booking_rules rules;
        rules_from(&res, NULL, &rules);
        late = !booking_cancel_allowed(&rules, b.start, now);
    }
    if (late && (!override || as_member)) {
        control_reply_error(c, "deadline_passed",
                            "booking %" PRId64 " starts in less than %" PRId64 " minutes; "
                            "%s", b.id, res.cancel_deadline_minutes,
                            as_member ? "only a manager can change it now"
                                      : "a manager may override with --override");
        return;
    }
    actor_text(&actor, by, sizeof(by));
    if (move) {
        if (!req_time(c, req, "start", true, &start) || !req_time(c, req, "end", true, &end))
            return;
        v = check_booking(f, &res, b.member_id, start, end, b.id, now, as_member);
        if (v.error != BOOKING_OK) {
            reply_booking_error(c, &v);
            return;
        }
        r = store_booking_add(f->store, res.id, b.member_id, start, end, by, &new_id);
        if (r < 0) {
            control_reply_error(c, "store", "cannot store the booking: %s", strerror(-r));
            return;
        }
    }
    r = store_booking_cancel(f->store, b.id, now, by, late && override, new_id);
    if (r < 0) {
        control_reply_error(c, "store", "cannot cancel booking: %s", strerror(-r));
        return;
    }
    log_info("booking %" PRId64 " %s by %s%s", b.id, move ? "moved" : "cancelled", by,
             late ? " (manager override of the deadline)" : "");
    control_reply_ok(c, json_pack("{s:I, s:I, s:b}", "id", (json_int_t)b.id, "new_id",
                                  (json_int_t)new_id, "override", late));
}

static void cmd_machine_add_set(struct fablab *f, struct control_conn *c, json_t *req, bool add)
{
    const char *name = req_str(req, "machine"), *zone = req_str(req, "zone");
    struct store_resource r;
    int64_t id;
    int ret;

    if (!name || !name_is_valid(name)) {
        control_reply_error(c, "bad_request", "a machine name is 1 to 31 letters, digits, '-', '_' or '.'");
        return;
    }
    ret = store_resource_get(f->store, name, &r);
    if (add && ret == 0 && r.has_rules) {
        control_reply_error(c, "exists", "machine '%s' exists; change it with machine set", name);
        return;
    }
    if (ret == 0 && strcmp(r.kind, "machine") != 0) {
        control_reply_error(c, "exists", "'%s' is a door", name);
        return;
    }
    if (!add && ret < 0) {
        control_reply_error(c, "not_found", "no machine '%.32s'", name);
        return;
    }
    if (zone && !add) {
        control_reply_error(c, "bad_request", "a machine's zone is set when it is added (or in "
                                              "its [machine] section for interlocked machines)");
        return;
    }
    if (zone && !name_is_valid(zone)) {
        control_reply_error(c, "bad_request", "bad zone name");
        return;
    }
    if (ret < 0) {
        if (store_resource_ensure(f->store, "machine", name, zone ? zone : "fablab", &id) < 0 ||
            store_resource_get(f->store, name, &r) < 0) {
            control_reply_error(c, "store", "cannot add machine");
            return;
        }
    }
    {
        const char *category = req_str(req, "category");
        if (category && *category && !name_is_valid(category)) {
            control_reply_error(c, "bad_request", "a category is 1 to 31 letters, digits, '-', '_' or '.'");
            return;
        }
    }
    if (!rules_update(f, c, req, &r))
        return;
    ret = store_machine_rules_put(f->store, &r);
    if (ret < 0) {
        control_reply_error(c, "store", "cannot save machine rules: %s", strerror(-ret));
        return;
    }
    {
        const char *category = req_str(req, "category");
        if (category && (ret = store_resource_set_category(f->store, r.id, category)) < 0) {
            control_reply_error(c, "store", "cannot set the category: %s", strerror(-ret));
            return;
        }
    }
    log_info("machine %s %s by %s", name, add ? "added" : "changed", control_conn_who(c));
    store_resource_get(f->store, name, &r);
    control_reply_ok(c, json_pack("{s:o}", "machine", machine_json(f, &r)));
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
        store_event_add(f->store, &ev, NULL);
    }
    return 0;
}

bool fablab_control(struct fablab *f, struct control_conn *c, const char *cmd, json_t *req)
{
    struct store_resource res;
    int64_t member, training, expires;
    int r;

    if (strcmp(cmd, "machine.add") == 0 || strcmp(cmd, "machine.set") == 0) {
        cmd_machine_add_set(f, c, req, strcmp(cmd, "machine.add") == 0);
    } else if (strcmp(cmd, "machine.list") == 0) {
        json_t *names = json_array(), *list = json_array(), *v;
        size_t i;
        store_resources_foreach(f->store, "machine", name_append, names);
        json_array_foreach(names, i, v)
            if (store_resource_get(f->store, json_string_value(v), &res) == 0)
                json_array_append_new(list, machine_json(f, &res));
        json_decref(names);
        control_reply_ok(c, json_pack("{s:o}", "machines", list));
    } else if (strcmp(cmd, "machine.show") == 0) {
        if (!req_machine(f, c, req, &res))
            return true;
        json_t *bookings = json_array(), *sessions = json_array();
        struct store_booking_filter flt = { .resource_id = res.id, .from = now_utc(), .limit = 50 };
        store_bookings_foreach(f->store, &flt, booking_append, bookings);
        store_sessions_foreach(f->store, now_utc() - 7 * 86400, session_append, sessions);
        json_t *mine = json_array(), *v;
        size_t i;
        json_array_foreach(sessions, i, v)
            if (strcmp(json_string_value(json_object_get(v, "machine")), res.name) == 0)
                json_array_append(mine, v);
        json_decref(sessions);
        json_t *obj = machine_json(f, &res);
        json_object_set_new(obj, "bookings", bookings);
        json_object_set_new(obj, "sessions", mine);
        control_reply_ok(c, json_pack("{s:o}", "machine", obj));
    } else if (strcmp(cmd, "machine.out_of_order") == 0) {
        json_t *on = json_object_get(req, "on");
        const char *reason = req_str(req, "reason");
        if (!req_machine(f, c, req, &res))
            return true;
        if (!json_is_boolean(on) || (reason && strlen(reason) > 127)) {
            control_reply_error(c, "bad_request", "\"on\" must be true or false; reason at most 127 characters");
            return true;
        }
        char by[80];
        snprintf(by, sizeof(by), "%s", control_conn_who(c));
        r = fablab_set_out_of_order(f, res.name, json_is_true(on), reason, by);
        if (r < 0) {
            control_reply_error(c, "store", "cannot change machine: %s", strerror(-r));
            return true;
        }
        control_reply_ok(c, json_pack("{s:s, s:b}", "machine", res.name, "out_of_order", json_is_true(on)));
    } else if (strcmp(cmd, "training.add") == 0) {
        const char *name = req_str(req, "name"), *desc = req_str(req, "description");
        if (!name || !name_is_valid(name) || (desc && strlen(desc) > 127)) {
            control_reply_error(c, "bad_request", "a training name is 1 to 31 letters, digits, '-', '_' or '.'; description at most 127 characters");
            return true;
        }
        r = store_training_add(f->store, name, desc, &training);
        if (r == -EEXIST)
            control_reply_error(c, "exists", "a training named '%s' already exists", name);
        else if (r < 0)
            control_reply_error(c, "store", "cannot add training: %s", strerror(-r));
        else
            control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)training));
    } else if (strcmp(cmd, "training.list") == 0) {
        json_t *list = json_array();
        store_trainings_foreach(f->store, now_utc(), training_append, list);
        control_reply_ok(c, json_pack("{s:o}", "trainings", list));
    } else if (strcmp(cmd, "training.grant") == 0 || strcmp(cmd, "training.revoke") == 0) {
        const char *name = req_str(req, "training");
        char by[80];
        struct fablab_actor actor = { .manager = true, .who = control_conn_who(c) };
        if (!req_member(f->store, c, req, "member", &member))
            return true;
        if (!name || store_training_find(f->store, name, &training) < 0) {
            control_reply_error(c, "not_found", "no training '%.32s'", name ? name : "");
            return true;
        }
        actor_text(&actor, by, sizeof(by));
        if (strcmp(cmd, "training.revoke") == 0) {
            r = store_qualification_revoke(f->store, member, training, by);
            if (r == -ENOENT)
                control_reply_error(c, "not_found", "member %" PRId64 " holds no %s training", member, name);
            else if (r < 0)
                control_reply_error(c, "store", "cannot revoke: %s", strerror(-r));
            else
                control_reply_ok(c, NULL);
            return true;
        }
        if (!req_time(c, req, "expires", false, &expires))
            return true;
        r = store_qualification_grant(f->store, member, training, by, expires, &training);
        if (r < 0)
            control_reply_error(c, "store", "cannot grant: %s", strerror(-r));
        else {
            log_info("training %s granted to member %" PRId64 " by %s", name, member, by);
            control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)training));
        }
    } else if (strcmp(cmd, "training.show") == 0) {
        json_t *list = json_array();
        if (!req_member(f->store, c, req, "member", &member)) {
            json_decref(list);
            return true;
        }
        store_qualifications_foreach(f->store, member, qualification_append, list);
        control_reply_ok(c, json_pack("{s:o}", "qualifications", list));
    } else if (strcmp(cmd, "booking.add") == 0) {
        cmd_booking_add(f, c, req);
    } else if (strcmp(cmd, "booking.cancel") == 0) {
        cmd_booking_change(f, c, req, false);
    } else if (strcmp(cmd, "booking.move") == 0) {
        cmd_booking_change(f, c, req, true);
    } else if (strcmp(cmd, "booking.list") == 0) {
        struct store_booking_filter flt = { .limit = 1000 };
        json_t *list;
        if (json_object_get(req, "machine")) {
            if (!req_machine(f, c, req, &res))
                return true;
            flt.resource_id = res.id;
        }
        if (json_object_get(req, "member") && !req_member(f->store, c, req, "member", &flt.member_id))
            return true;
        if (!req_time(c, req, "from", false, &flt.from) || !req_time(c, req, "to", false, &flt.to))
            return true;
        if (!json_object_get(req, "from"))
            flt.from = now_utc();
        flt.include_cancelled = json_is_true(json_object_get(req, "all"));
        list = json_array();
        store_bookings_foreach(f->store, &flt, booking_append, list);
        control_reply_ok(c, json_pack("{s:o}", "bookings", list));
    } else if (strcmp(cmd, "machine.sessions") == 0) {
        json_t *list = json_array();
        int64_t since;
        if (!req_time(c, req, "since", false, &since)) {
            json_decref(list);
            return true;
        }
        store_sessions_foreach(f->store, since, session_append, list);
        control_reply_ok(c, json_pack("{s:o}", "sessions", list));
    } else {
        return false;
    }
    return true;
}

json_t *fablab_status(struct fablab *f)
{
    json_t *list = json_array();
    struct store_resource res;
    for (unsigned i = 0; i < f->n_machines; i++)
        if (store_resource_get(f->store, f->machines[i].cfg->name, &res) == 0) {
            json_t *o = machine_json(f, &res);
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

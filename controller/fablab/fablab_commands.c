/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of the fablab: machines and their rules, trainings and trainers, bookings
 * and sessions. The booking rules are enforced by fablab_check_booking() for every caller;
 * what depends on who asks is here: members book, move and cancel only their own bookings,
 * within the rules and the cancellation deadline; trainers grant only the trainings they
 * are named for. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "booking.h"
#include "fablab.h"
#include "handlers.h"
#include "config.h"
#include "log.h"
#include "mail.h"
#include "schedule.h"
#include "services.h"
#include "store.h"
#include "util.h"

/* Who acts with a member's rights: member accounts, and staff who ask to (as_member, a
 * downgrade used to try the member's view; it can never add rights). */
static bool as_member(struct cmd_call *call, const struct cmd_args *a)
{
    const struct actor *who = cmd_actor(call);
    return !(who->role & ROLES_STAFF) || arg_bool(a, "as_member");
}

/* Records say who acted: "manager:uid=1000", "manager:web:boss", or "member:42". */
static void record_by(struct cmd_call *call, bool member_rights, int64_t member, char *buf,
                      size_t n)
{
    if (member_rights)
        snprintf(buf, n, "member:%" PRId64, member);
    else
        snprintf(buf, n, "manager:%s", cmd_who(call));
}

static int find_machine(struct cmd_call *call, const char *name, struct store_resource *ret)
{
    int r = store_resource_get(cmd_services(call)->store, name, ret);

    if (r == -ENOENT || (r == 0 && strcmp(ret->kind, "machine") != 0))
        return cmd_fail(call, -ENOENT, "not_found", "no machine '%.32s' (see portierctl machine "
                        "list)", name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read machine %.32s: %s", name, strerror(-r));
    return 0;
}

/* ---- listings ---- */

static int name_append(const char *name, void *userdata)
{
    return json_array_append_new(userdata, json_string(name)) == 0 ? 0 : -ENOMEM;
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
    return json_array_append_new(userdata, booking_json(b)) == 0 ? 0 : -ENOMEM;
}

static int training_append(const struct store_training *t, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:s, s:I}", "id", (json_int_t)t->id, "name", t->name, "description",
        t->description, "qualified_members", (json_int_t)t->qualified_members)) == 0 ? 0 : -ENOMEM;
}

static int qualification_append(const struct store_qualification *q, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:I, s:s, s:I, s:I}", "id", (json_int_t)q->id, "training", q->training,
        "granted_at", (json_int_t)q->granted_at, "granted_by", q->granted_by, "expires_at",
        (json_int_t)q->expires_at, "revoked_at", (json_int_t)q->revoked_at)) == 0 ? 0 : -ENOMEM;
}

static int session_append(const struct store_session *ss, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:s?}", "id", (json_int_t)ss->id,
        "machine", ss->resource, "member_id", (json_int_t)ss->member_id, "booking_id",
        (json_int_t)ss->booking_id, "started_at", (json_int_t)ss->started_at, "ended_at",
        (json_int_t)ss->ended_at, "last_seen_at", (json_int_t)ss->last_seen_at,
        "running_seconds", (json_int_t)ss->running_seconds, "end_reason", ss->end_reason,
        "energy_wh", ss->has_energy ? json_integer((json_int_t)ss->energy_wh) : json_null(),
        "alarm", ss->alarm[0] ? ss->alarm : NULL)) == 0 ? 0 : -ENOMEM;
}

/* ---- machines ---- */

/* Apply the rule arguments present onto r. */
static int rules_update(struct cmd_call *call, const struct cmd_args *a, struct store_resource *r)
{
    static const struct { const char *key; size_t off; } ints[] = {
        { "slot_minutes", offsetof(struct store_resource, slot_minutes) },
        { "min_minutes", offsetof(struct store_resource, min_minutes) },
        { "max_minutes", offsetof(struct store_resource, max_minutes) },
        { "window_days", offsetof(struct store_resource, window_days) },
        { "quota_day_minutes", offsetof(struct store_resource, quota_day_minutes) },
        { "quota_week_minutes", offsetof(struct store_resource, quota_week_minutes) },
        { "cancel_deadline_minutes", offsetof(struct store_resource, cancel_deadline_minutes) },
        { "walkup_free_minutes", offsetof(struct store_resource, walkup_free_minutes) },
    };
    const char *training = arg_str(a, "training"), *hours = arg_str(a, "hours"), *err = "";
    struct schedule s;

    for (size_t i = 0; i < ARRAY_SIZE(ints); i++)
        if (arg_has(a, ints[i].key))
            *(int64_t *)((char *)r + ints[i].off) = arg_int(a, ints[i].key, 0);
    if (r->min_minutes > r->max_minutes || r->min_minutes % r->slot_minutes ||
        r->max_minutes % r->slot_minutes)
        return cmd_fail(call, -EINVAL, "bad_request", "min and max length must be multiples of "
                        "the slot (%" PRId64 " min) with min <= max", r->slot_minutes);
    if (training) {
        int ret = 0;
        if (!*training || strcmp(training, "none") == 0)
            r->training_id = 0;
        else if ((ret = cmd_found(call, store_training_find(cmd_services(call)->store, training,
                                                            &r->training_id),
                                  "training", training, "(portierctl training add)")) < 0)
            return ret;
    }
    if (hours) {
        if (strlen(hours) >= sizeof(r->hours) || schedule_parse(hours, &s, &err) < 0)
            return cmd_fail(call, -EINVAL, "bad_request", "hours: %s", err);
        strlcpy_checked(r->hours, hours, sizeof(r->hours));
    }
    if (arg_has(a, "booking_required"))
        r->booking_required = arg_bool(a, "booking_required");
    return 0;
}

static int machine_add_set(struct cmd_call *call, const struct cmd_args *a, bool add)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "machine"), *zone = add ? arg_str(a, "zone") : NULL;
    const char *category = arg_str(a, "category");
    struct store_resource r;
    int64_t id;
    int ret;

    ret = store_resource_get(svc->store, name, &r);
    if (ret < 0 && ret != -ENOENT)
        return cmd_fail(call, ret, "store", "cannot read machine %s: %s", name, strerror(-ret));
    if (add && ret == 0 && r.has_rules)
        return cmd_fail(call, -EEXIST, "exists", "machine '%s' exists; change it with machine set",
                        name);
    if (ret == 0 && strcmp(r.kind, "machine") != 0)
        return cmd_fail(call, -EEXIST, "exists", "'%s' is a door", name);
    if (!add && ret < 0)
        return cmd_fail(call, -ENOENT, "not_found", "no machine '%.32s'", name);
    if (add && zone && ret == 0)
        return cmd_fail(call, -EINVAL, "bad_request", "a machine's zone is set when it is added "
                        "(or in its [machine] section for interlocked machines)");
    if (category && *category && !name_is_valid(category))
        return cmd_fail(call, -EINVAL, "bad_request", "a category is 1 to 31 letters, digits, "
                        "'-', '_' or '.'");
    if (ret < 0) {
        if ((ret = store_resource_ensure(svc->store, "machine", name, zone ? zone : "fablab", &id)) < 0 ||
            (ret = store_resource_get(svc->store, name, &r)) < 0)
            return cmd_fail(call, ret, "store", "cannot add machine: %s", strerror(-ret));
    }
    if ((ret = rules_update(call, a, &r)) < 0)
        return ret;
    ret = store_machine_rules_put(svc->store, &r);
    if (ret < 0)
        return cmd_fail(call, ret, "store", "cannot save machine rules: %s", strerror(-ret));
    if (category && (ret = store_resource_set_category(svc->store, r.id, category)) < 0)
        return cmd_fail(call, ret, "store", "cannot set the category: %s", strerror(-ret));
    log_info("machine %s %s by %s", name, add ? "added" : "changed", cmd_who(call));
    if ((ret = store_resource_get(svc->store, name, &r)) < 0)
        return cmd_fail(call, ret, "store", "cannot read machine %s: %s", name, strerror(-ret));
    return cmd_ok(call, json_pack("{s:o}", "machine", fablab_machine_json(svc->fablab, &r)));
}

int cmd_machine_add(struct cmd_call *call, const struct cmd_args *a)
{
    return machine_add_set(call, a, true);
}

int cmd_machine_set(struct cmd_call *call, const struct cmd_args *a)
{
    return machine_add_set(call, a, false);
}

int cmd_machine_list(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    json_t *names = json_array(), *list = json_array(), *v;
    struct store_resource res;
    size_t i;
    int r = store_resources_foreach(svc->store, "machine", name_append, names);

    json_array_foreach(names, i, v) {
        if (r >= 0 && (r = store_resource_get(svc->store, json_string_value(v), &res)) >= 0)
            json_array_append_new(list, fablab_machine_json(svc->fablab, &res));
    }
    json_decref(names);
    return cmd_ok_list(call, "machines", list, r);
}

int cmd_machine_show(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct store_resource res;
    struct store_booking_filter flt = { .from = now_utc(), .limit = 50 };
    json_t *bookings, *sessions, *mine, *obj, *v;
    size_t i;
    int r;

    if ((r = find_machine(call, arg_str(a, "machine"), &res)) < 0)
        return r;
    flt.resource_id = res.id;
    bookings = json_array();
    sessions = json_array();
    r = store_bookings_foreach(svc->store, &flt, booking_append, bookings);
    if (r >= 0)
        r = store_sessions_foreach(svc->store, now_utc() - 7 * 86400, session_append, sessions);
    if (r < 0) {
        json_decref(bookings);
        json_decref(sessions);
        return cmd_fail(call, r, "store", "cannot read machine %s: %s", res.name, strerror(-r));
    }
    mine = json_array();
    json_array_foreach(sessions, i, v)
        if (strcmp(json_string_value(json_object_get(v, "machine")), res.name) == 0)
            json_array_append(mine, v);
    json_decref(sessions);
    obj = fablab_machine_json(svc->fablab, &res);
    json_object_set_new(obj, "bookings", bookings);
    json_object_set_new(obj, "sessions", mine);
    return cmd_ok(call, json_pack("{s:o}", "machine", obj));
}

int cmd_machine_out_of_order(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct store_resource res;
    bool on = arg_bool(a, "on");
    const char *when = arg_str(a, "when");
    bool after_session = when && strcmp(when, "after_session") == 0;
    bool finishing = false;
    int r;

    /* "now" stays the default: portierctl and MQTT clients written before "when" existed
     * meant a power cut. The web page asks for after_session unless told otherwise. */
    if (when && strcmp(when, "now") != 0 && !after_session)
        return cmd_fail(call, -EINVAL, "bad_request", "\"when\" must be now or after_session");
    if ((r = find_machine(call, arg_str(a, "machine"), &res)) < 0)
        return r;
    r = fablab_set_out_of_order(svc->fablab, res.name, on, after_session, arg_str(a, "reason"),
                                cmd_who(call), &finishing);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change machine: %s", strerror(-r));
    return cmd_ok(call, json_pack("{s:s, s:b, s:s, s:b}", "machine", res.name, "out_of_order", on,
                                  "when", after_session ? "after_session" : "now", "finishing",
                                  finishing));
}

int cmd_machine_sessions(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "sessions", list,
                      store_sessions_foreach(cmd_services(call)->store, arg_int(a, "since", 0),
                                             session_append, list));
}

/* ---- trainings and trainers ---- */

static int find_training(struct cmd_call *call, const char *name, int64_t *ret)
{
    return cmd_found(call, store_training_find(cmd_services(call)->store, name, ret), "training",
                     name, NULL);
}

int cmd_training_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *name = arg_str(a, "name");
    int64_t id;
    int r = store_training_add(cmd_services(call)->store, name, arg_str(a, "description"), &id);

    if (r == -EEXIST)
        return cmd_fail(call, r, "exists", "a training named '%s' already exists", name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add training: %s", strerror(-r));
    log_info("training %s added by %s", name, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

static int trainer_append(int64_t member_id, const char *member, void *userdata)
{
    return json_array_append_new(userdata, json_pack("{s:I, s:s}", "member_id",
                                                     (json_int_t)member_id, "member", member))
               == 0 ? 0 : -ENOMEM;
}

int cmd_training_list(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    json_t *list = json_array(), *t;
    size_t i;
    int r = store_trainings_foreach(store, now_utc(), training_append, list);

    /* Trainers by name: who to ask for a training. */
    json_array_foreach(list, i, t) {
        json_t *trainers = json_array();
        if (r >= 0)
            r = store_trainers_foreach(store, json_integer_value(json_object_get(t, "id")),
                                       trainer_append, trainers);
        json_object_set_new(t, "trainers", trainers);
    }
    return cmd_ok_list(call, "trainings", list, r);
}

/* The trainer acting, or 0 for staff. */
static int64_t trainer_id_of(struct cmd_call *call)
{
    const struct actor *who = cmd_actor(call);
    return who->role == ROLE_TRAINER ? who->member_id : 0;
}

/* Before a grant or a revoke of training name to member: the training's id, and who to
 * record as doing it. Trainers grant and revoke only under the rules of
 * fablab_trainer_may(): the one place for them, shared with the training at a machine's
 * reader. 0 or the error the call was failed with. */
static int qualification_change(struct cmd_call *call, const char *name, int64_t member,
                                int64_t *training, char *by, size_t by_n)
{
    struct fablab_refusal no;
    int r;

    if ((r = find_training(call, name, training)) < 0)
        return r;
    record_by(call, false, 0, by, by_n);
    if (!trainer_id_of(call))
        return 0;
    snprintf(by, by_n, "trainer:%" PRId64, trainer_id_of(call));
    r = fablab_trainer_may(cmd_services(call)->store, *training, name, trainer_id_of(call),
                           member, now_utc(), &no);
    return r < 0 ? cmd_fail(call, no.error, no.code, "%s", no.message) : 0;
}

int cmd_training_grant(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const char *name = arg_str(a, "training");
    int64_t member = arg_int(a, "member", 0), training, id;
    struct fablab_refusal no;
    bool renewed;
    char by[96];
    int r;

    if ((r = qualification_change(call, name, member, &training, by, sizeof(by))) < 0)
        return r;
    /* The same function as a trainer's grant at the machine: it checks the trainer's rules
     * again (cheap) and the trainee's membership. */
    r = fablab_training_grant(store, training, name, trainer_id_of(call), member, by,
                              arg_int(a, "expires", 0), now_utc(), &id, &renewed, &no);
    if (r < 0)
        return cmd_fail(call, no.error, no.code, "%s", no.message);
    log_info("training %s %s to member %" PRId64 " by %s", name, renewed ? "renewed" : "granted",
             member, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:b}", "id", (json_int_t)id, "renewed", renewed));
}

int cmd_training_revoke(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const char *name = arg_str(a, "training");
    int64_t member = arg_int(a, "member", 0), training;
    char by[96];
    int r;

    if ((r = qualification_change(call, name, member, &training, by, sizeof(by))) < 0)
        return r;
    r = store_qualification_revoke(store, member, training, by);
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "member %" PRId64 " holds no %s training", member,
                        name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot revoke: %s", strerror(-r));
    log_info("training %s revoked from member %" PRId64 " by %s", name, member, cmd_who(call));
    return cmd_ok(call, NULL);
}

int cmd_training_show(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t member = arg_int(a, "member", 0);
    json_t *list;
    int r;

    if ((r = cmd_self_member(call, &member)) < 0)
        return r;
    list = json_array();
    return cmd_ok_list(call, "qualifications", list,
                      store_qualifications_foreach(cmd_services(call)->store, member,
                                                   qualification_append, list));
}

static int appoint(struct cmd_call *call, const struct cmd_args *a, bool on)
{
    const char *name = arg_str(a, "training");
    int64_t member = arg_int(a, "member", 0), training;
    int r;

    if ((r = find_training(call, name, &training)) < 0)
        return r;
    r = store_trainer_set(cmd_services(call)->store, training, member, on, cmd_who(call));
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "member %" PRId64 " is not a trainer for %s", member,
                        name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change the trainers of %s: %s", name,
                        strerror(-r));
    log_info("member %" PRId64 " %s trainer for %s by %s", member, on ? "named" : "no longer",
             name, cmd_who(call));
    return cmd_ok(call, json_pack("{s:s, s:I, s:b}", "training", name, "member",
                                  (json_int_t)member, "trainer", on));
}

int cmd_training_appoint(struct cmd_call *call, const struct cmd_args *a)
{
    return appoint(call, a, true);
}

int cmd_training_dismiss(struct cmd_call *call, const struct cmd_args *a)
{
    return appoint(call, a, false);
}

/* ---- bookings ---- */

/* A manager changed a member's booking, or a member booked: the member is told by e-mail
 * (the reply says). Members moving or cancelling their own bookings are not written to. */
static void tell_member(struct cmd_call *call, enum mail_booking_change what,
                        const struct store_booking *b, const char *machine, int64_t new_start,
                        int64_t new_end, json_t *reply)
{
    struct store_booking told = *b;
    struct mail_outcome mail;

    if (!cmd_services(call)->cfg->mail.enabled)
        return;
    if (!(cmd_actor(call)->role & ROLES_STAFF)) {
        if (what != MAIL_BOOKING_ADDED)
            return;
        what = MAIL_BOOKING_CONFIRMED;
    }
    snprintf(told.resource, sizeof(told.resource), "%s", machine);
    (void)mail_booking_changed(cmd_services(call), what, &told, new_start, new_end, &mail);
    json_object_set_new(reply, "mail", mail_outcome_json(&mail));
}

static int booking_refused(struct cmd_call *call, const struct booking_verdict *v)
{
    return cmd_fail(call, -EINVAL, booking_error_to_string(v->error), "%s", v->message);
}

int cmd_booking_add(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t member = arg_int(a, "member", 0), start = arg_int(a, "start", 0);
    int64_t end = arg_int(a, "end", 0), id;
    bool member_rights = as_member(call, a);
    uint64_t t0 = now_mono_usec();
    struct store_resource res;
    struct booking_verdict v;
    char by[96];
    int r;

    if ((r = cmd_self_member(call, &member)) < 0 || (r = find_machine(call, arg_str(a, "machine"), &res)) < 0)
        return r;
    if (!member)
        return cmd_fail(call, -EINVAL, "bad_request", "booking.add needs \"member\"");
    v = fablab_check_booking(svc->fablab, &res, member, start, end, 0, now_utc(), member_rights,
                             cmd_actor(call)->lang);
    if (v.error != BOOKING_OK)
        return booking_refused(call, &v);
    record_by(call, member_rights, member, by, sizeof(by));
    r = store_booking_add(svc->store, res.id, member, start, end, by, &id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot store the booking: %s", strerror(-r));
    log_info("booking %" PRId64 ": %s for member %" PRId64 " by %s", id, res.name, member, by);
    /* check_us: time spent deciding and inserting (before the commit), for tools/bench. */
    json_t *reply = json_pack("{s:I, s:I}", "id", (json_int_t)id, "check_us",
                              (json_int_t)(now_mono_usec() - t0));
    tell_member(call, MAIL_BOOKING_ADDED, &(struct store_booking){ .id = id, .member_id = member,
                .start = start, .end = end }, res.name, 0, 0, reply);
    return cmd_ok(call, reply);
}

/* Cancel or move: the deadline binds members; managers may override, and it is recorded. */
static int booking_change(struct cmd_call *call, const struct cmd_args *a, bool move)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "booking", 0), now = now_utc(), new_id = 0;
    bool member_rights = as_member(call, a), override = arg_bool(a, "override"), late;
    struct store_booking b;
    struct store_resource res;
    struct booking_verdict v;
    char by[96];
    int r;

    r = store_booking_get(svc->store, id, &b);
    /* A member is told of no booking but their own. */
    if (r == -ENOENT || (r == 0 && !(cmd_actor(call)->role & ROLES_STAFF) &&
                         b.member_id != cmd_actor(call)->member_id))
        return cmd_actor(call)->role & ROLES_STAFF
                   ? cmd_fail(call, -ENOENT, "not_found", "no booking %" PRId64, id)
                   : cmd_fail(call, -ENOENT, "not_found", "no booking %" PRId64 " of yours", id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read booking %" PRId64 ": %s", id, strerror(-r));
    if (b.cancelled_at)
        return cmd_fail(call, -EALREADY, "cancelled", "booking %" PRId64 " is already cancelled",
                        b.id);
    if (b.end <= now)
        return cmd_fail(call, -EINVAL, "in_past", "booking %" PRId64 " is over", b.id);
    if ((r = find_machine(call, b.resource, &res)) < 0)
        return r;
    late = !fablab_cancel_allowed(&res, b.start, now);
    if (late && (!override || member_rights))
        return member_rights
                   ? cmd_fail(call, -EPERM, "deadline_passed", "booking %" PRId64 " starts in less "
                              "than %" PRId64 " minutes; only a manager can change it now", b.id,
                              res.cancel_deadline_minutes)
                   : cmd_fail(call, -EPERM, "deadline_passed", "booking %" PRId64 " starts in less "
                              "than %" PRId64 " minutes; a manager may override with --override",
                              b.id, res.cancel_deadline_minutes);
    record_by(call, member_rights, b.member_id, by, sizeof(by));
    if (move) {
        int64_t start = arg_int(a, "start", 0), end = arg_int(a, "end", 0);
        v = fablab_check_booking(svc->fablab, &res, b.member_id, start, end, b.id, now,
                                 member_rights, cmd_actor(call)->lang);
        if (v.error != BOOKING_OK)
            return booking_refused(call, &v);
        r = store_booking_add(svc->store, res.id, b.member_id, start, end, by, &new_id);
        if (r < 0)
            return cmd_fail(call, r, "store", "cannot store the booking: %s", strerror(-r));
    }
    r = store_booking_cancel(svc->store, b.id, now, by, late && override, new_id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot cancel booking: %s", strerror(-r));
    log_info("booking %" PRId64 " %s by %s%s", b.id, move ? "moved" : "cancelled", by,
             late ? " (manager override of the deadline)" : "");
    json_t *reply = json_pack("{s:I, s:I, s:b}", "id", (json_int_t)b.id, "new_id",
                              (json_int_t)new_id, "override", late);
    /* booking.cancel declares no start and end: only a move has new ones to tell. */
    tell_member(call, move ? MAIL_BOOKING_MOVED : MAIL_BOOKING_CANCELLED, &b, b.resource,
                move ? arg_int(a, "start", 0) : 0, move ? arg_int(a, "end", 0) : 0, reply);
    return cmd_ok(call, reply);
}

int cmd_booking_cancel(struct cmd_call *call, const struct cmd_args *a)
{
    return booking_change(call, a, false);
}

int cmd_booking_move(struct cmd_call *call, const struct cmd_args *a)
{
    return booking_change(call, a, true);
}

int cmd_booking_list(struct cmd_call *call, const struct cmd_args *a)
{
    struct store_booking_filter flt = { .limit = 1000 };
    struct store_resource res;
    json_t *list;
    int r;

    flt.member_id = arg_int(a, "member", 0);
    if ((r = cmd_self_member(call, &flt.member_id)) < 0)
        return r;
    if (arg_has(a, "machine")) {
        if ((r = find_machine(call, arg_str(a, "machine"), &res)) < 0)
            return r;
        flt.resource_id = res.id;
    }
    flt.from = arg_has(a, "from") ? arg_int(a, "from", 0) : now_utc();
    flt.to = arg_int(a, "to", 0);
    flt.include_cancelled = arg_bool(a, "all");
    list = json_array();
    return cmd_ok_list(call, "bookings", list,
                      store_bookings_foreach(cmd_services(call)->store, &flt, booking_append, list));
}

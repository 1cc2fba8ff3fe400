/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of members over their whole life — added, edited, renewed, suspended,
 * removed, erased, exported — their cards and plans, and the retention pass. Every change
 * to a member is recorded in its history (who, when, old and new value). */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "billing.h"
#include "config.h"
#include "consortium.h"
#include "enroll.h"
#include "fablab.h"
#include "handlers.h"
#include "log.h"
#include "members.h"
#include "meter.h"
#include "passports.h"
#include "provision.h"
#include "retention.h"
#include "schedule.h"
#include "services.h"
#include "site.h"
#include "store.h"
#include "util.h"

#define HISTORY_SHOWN 100
#define EXPIRING_SECONDS (30 * 86400)

static int change_append(const struct store_member_change *c, void *userdata)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "by", c->by, "field", c->field, "old", c->old,
                          "new", c->new);

    members_json_time(o, "at", c->at);
    return json_array_append_new(userdata, o) == 0 ? 0 : -ENOMEM;
}

static int plan_append(const struct store_plan *p, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)p->id, "name", p->name, "zones", p->zones,
        "hours", p->hours, "members", (json_int_t)p->members)) == 0 ? 0 : -ENOMEM;
}

/* A time as the history shows it: UTC text, or "" for unbounded. */
static const char *history_time(int64_t t, char buf[32])
{
    if (!t)
        buf[0] = '\0';
    else
        format_utc(t, buf, 32);
    return buf;
}

/* The member as it is now; refused once removed or erased when what is asked needs a
 * member who may still come in. */
static int member_load(struct cmd_call *call, int64_t id, bool current, struct store_member *m)
{
    int r = store_member_get(cmd_services(call)->store, id, m);

    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no member %" PRId64, id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read member %" PRId64 ": %s", id, strerror(-r));
    if (m->erased_at)
        return cmd_fail(call, -EPERM, "erased", "member %" PRId64 " was erased: nothing of theirs "
                        "is left to change", id);
    if (current && m->removed_at)
        return cmd_fail(call, -EPERM, "removed", "member %" PRId64 " was removed: add them again "
                        "as a new member", id);
    return 0;
}

/* "--until DATE": a date alone means the end of that day (members.h). */
static int64_t until_arg(const struct cmd_args *a, const char *key)
{
    const char *text = arg_str(a, key);
    int64_t t = arg_int(a, key, 0);

    return text && strlen(text) == 10 && t ? members_day_end(t) : t;
}

static bool email_ok(const char *email)
{
    const char *at = strchr(email, '@');

    if (!*email)
        return true;            /* none */
    return at && at != email && at[1] && !strchr(at + 1, '@') && !strpbrk(email, " \t<>,;");
}

static bool name_ok(const char *name)
{
    for (const char *p = name; *p; p++)
        if (*p != ' ')
            return true;
    return false;
}

/* ---- members ---- */

int cmd_member_add(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "name"), *plan_name = arg_str(a, "plan");
    const char *email = arg_str(a, "email") ?: "", *note = arg_str(a, "note");
    int64_t from = arg_int(a, "valid_from", 0), until = until_arg(a, "valid_until"), id;
    struct store_plan plan = { 0 };
    struct store_member m;
    int r;

    if (!name_ok(name))
        return cmd_fail(call, -EINVAL, "bad_request", "a member needs a name of 1 to 95 characters");
    if (!email_ok(email))
        return cmd_fail(call, -EINVAL, "bad_request", "'%.64s' is not an e-mail address", email);
    if (until && from && until <= from)
        return cmd_fail(call, -EINVAL, "bad_request", "valid_until must come after valid_from");
    if (plan_name && (r = cmd_found(call, store_plan_find(svc->store, plan_name, &plan), "plan",
                                    plan_name, "(see `portierctl plan list`)")) < 0)
        return r;
    r = store_member_add(svc->store, name, email, plan.id, from, until, &id);
    if (r == 0 && note && *note && store_member_get(svc->store, id, &m) == 0) {
        snprintf(m.note, sizeof(m.note), "%s", note);
        r = store_member_update(svc->store, &m);
    }
    if (r == 0)
        r = members_record(svc, id, cmd_who(call), "member", "", "added");
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add member: %s", strerror(-r));
    log_info("member %" PRId64 " added (plan %s) by %s", id, plan_name ? plan_name : "none",
             cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

static const char *const filter_names[] = {
    [MEMBER_FILTER_ALL] = "all", [MEMBER_FILTER_ACTIVE] = "active",
    [MEMBER_FILTER_SUSPENDED] = "suspended", [MEMBER_FILTER_EXPIRED] = "expired",
    [MEMBER_FILTER_EXPIRING] = "expiring", [MEMBER_FILTER_REMOVED] = "removed",
    [MEMBER_FILTER_ERASED] = "erased",
};

int cmd_member_list(struct cmd_call *call, const struct cmd_args *a)
{
    const char *filter = arg_str(a, "filter") ?: "all";
    struct store_member_query q = {
        .text = arg_str(a, "query"), .filter = (enum store_member_filter)-1, .now = now_utc(),
        .expiring_seconds = EXPIRING_SECONDS, .offset = arg_int(a, "offset", 0),
        .limit = arg_int(a, "limit", 0),
    };
    json_t *info;
    int r;

    for (size_t i = 0; i < ARRAY_SIZE(filter_names); i++)
        if (strcmp(filter, filter_names[i]) == 0)
            q.filter = (enum store_member_filter)i;
    if ((int)q.filter < 0)
        return cmd_fail(call, -EINVAL, "bad_request", "filter is all, active, suspended, expired, "
                        "expiring (within 30 days), removed or erased");
    /* Searching, counting and sorting a site's members reads every one of them (a fifth of
     * a second at 100,000): a job process does it, as it does statements, and answers. */
    info = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I}", "query", q.text ? q.text : "", "filter",
                     (int)q.filter, "offset", (json_int_t)q.offset, "limit", (json_int_t)q.limit,
                     "now", (json_int_t)q.now, "expiring_seconds",
                     (json_int_t)q.expiring_seconds);
    if (!info)
        return cmd_fail(call, -ENOMEM, "internal", "out of memory");
    r = billing_start_job_info(call, "members", "", 0, info);
    json_decref(info);
    return r;
}

int cmd_member_show(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    int64_t id = arg_int(a, "member", 0);
    struct store_member m;
    json_t *cards, *changes, *obj;
    int r;

    r = store_member_get(store, id, &m);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read member %" PRId64 ": %s", id, strerror(-r));
    cards = members_cards_fields(store, id, &r);
    changes = json_array();
    if (r >= 0)
        r = store_member_changes_foreach(store, id, HISTORY_SHOWN, change_append, changes);
    if (r < 0) {
        json_decref(cards);
        json_decref(changes);
        return cmd_fail(call, r, "store", "cannot read the member's cards and history: %s",
                        strerror(-r));
    }
    obj = members_json(&m, now_utc());
    json_object_set(obj, "card_list", json_object_get(cards, "cards"));
    json_decref(cards);
    json_object_set_new(obj, "changes", changes);
    return cmd_ok(call, json_pack("{s:o}", "member", obj));
}

/* member set: each field given is compared, written, and recorded if it changed. */
struct edit {
    struct cmd_call *call;
    struct store_member *m;
    unsigned changed;
    int r;
};

static void edit_text(struct edit *e, const char *field, char *value, size_t n, const char *new)
{
    if (!new || strcmp(value, new) == 0 || e->r < 0)
        return;
    e->r = members_record(cmd_services(e->call), e->m->id, cmd_who(e->call), field, value, new);
    snprintf(value, n, "%s", new);
    e->changed++;
}

static void edit_time(struct edit *e, const char *field, int64_t *value, int64_t new)
{
    char a[32], b[32];

    if (*value == new || e->r < 0)
        return;
    e->r = members_record(cmd_services(e->call), e->m->id, cmd_who(e->call), field,
                          history_time(*value, a), history_time(new, b));
    *value = new;
    e->changed++;
}

/* The plan, now or from a date (a date alone: from the start of that billing day). */
static int edit_plan(struct edit *e, const struct cmd_args *a)
{
    struct services *svc = cmd_services(e->call);
    const char *name = arg_str(a, "plan"), *when = arg_str(a, "plan_from");
    int64_t at = arg_int(a, "plan_from", 0), now = now_utc();
    struct store_plan plan = { 0 };
    char at_text[32];

    if (!name)
        return arg_has(a, "plan_from")
                   ? cmd_fail(e->call, -EINVAL, "bad_request", "plan_from goes with plan")
                   : 0;
    if (strcmp(name, "none") != 0) {
        int r = cmd_found(e->call, store_plan_find(svc->store, name, &plan), "plan", name,
                          "(see `portierctl plan list`)");
        if (r < 0)
            return r;
    }
    if (when && strlen(when) == 10)
        at = members_billing_day_start(at, (int)svc->cfg->metering.day_starts);
    if (at > now) {
        /* Later: the minute timer applies it (members_minute()). A waiting change needs a
         * plan to change to: "none" is for now only. */
        if (!plan.id)
            return cmd_fail(e->call, -EINVAL, "bad_request", "a plan can be taken away now "
                            "only (without plan_from)");
        if (e->m->next_plan_id == plan.id && e->m->next_plan_at == at)
            return 0;
        e->r = members_record(svc, e->m->id, cmd_who(e->call), "next_plan", e->m->next_plan,
                              plan.name);
        if (e->r == 0)
            e->r = members_record(svc, e->m->id, cmd_who(e->call), "next_plan_at",
                                  history_time(e->m->next_plan_at, at_text),
                                  history_time(at, at_text));
        e->m->next_plan_id = plan.id;
        e->m->next_plan_at = at;
        snprintf(e->m->next_plan, sizeof(e->m->next_plan), "%s", plan.name);
        e->changed++;
        return e->r;
    }
    /* Now. A billing day already charged stays charged once: the day charge looks at the
     * day, not at the plan. */
    if (e->m->next_plan_id) {
        e->r = members_record(svc, e->m->id, cmd_who(e->call), "next_plan", e->m->next_plan, "");
        e->m->next_plan_id = 0;
        e->m->next_plan_at = 0;
        e->changed++;
    }
    if (plan.id != e->m->plan_id && e->r == 0) {
        e->r = members_record(svc, e->m->id, cmd_who(e->call), "plan", e->m->plan,
                              plan.id ? plan.name : "");
        e->m->plan_id = plan.id;
        snprintf(e->m->plan, sizeof(e->m->plan), "%s", plan.id ? plan.name : "");
        e->changed++;
    }
    return e->r;
}

int cmd_member_set(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "member", 0);
    const char *name = arg_str(a, "name"), *email = arg_str(a, "email");
    struct store_member m;
    struct edit e = { call, &m, 0, 0 };
    int r;

    if ((r = member_load(call, id, false, &m)) < 0)
        return r;
    if (name && !name_ok(name))
        return cmd_fail(call, -EINVAL, "bad_request", "a member needs a name of 1 to 95 characters");
    if (email && !email_ok(email))
        return cmd_fail(call, -EINVAL, "bad_request", "'%.64s' is not an e-mail address", email);
    int64_t from = arg_has(a, "valid_from") ? arg_int(a, "valid_from", 0) : m.valid_from;
    int64_t until = arg_has(a, "valid_until") ? until_arg(a, "valid_until") : m.valid_until;
    if (from && until && until <= from)
        return cmd_fail(call, -EINVAL, "bad_request", "the membership must end after it starts "
                        "(valid_until after valid_from)");
    if (!name && !email && !arg_has(a, "note") && !arg_has(a, "plan") && !arg_has(a, "plan_from") &&
        !arg_has(a, "valid_from") && !arg_has(a, "valid_until"))
        return cmd_fail(call, -EINVAL, "bad_request", "nothing to change: give name, email, plan, "
                        "valid_from, valid_until or note");
    edit_text(&e, "name", m.name, sizeof(m.name), name);
    edit_text(&e, "email", m.email, sizeof(m.email), email);
    edit_text(&e, "note", m.note, sizeof(m.note), arg_str(a, "note"));
    edit_time(&e, "valid_from", &m.valid_from, from);
    edit_time(&e, "valid_until", &m.valid_until, until);
    if (e.r == 0 && (r = edit_plan(&e, a)) < 0)
        return r;
    if (e.r == 0 && e.changed)
        e.r = store_member_update(svc->store, &m);
    if (e.r < 0)
        return cmd_fail(call, e.r, "store", "cannot change member %" PRId64 ": %s", id,
                        strerror(-e.r));
    if (e.changed)
        log_info("member %" PRId64 ": %u change(s) by %s", id, e.changed, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:I, s:o}", "id", (json_int_t)id, "changed",
                                  (json_int_t)e.changed, "member", members_json(&m, now_utc())));
}

int cmd_member_renew(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "member", 0), now = now_utc(), until;
    const char *duration = arg_str(a, "for");
    struct store_member m;
    char old[32], new[32];
    int r;

    if ((r = member_load(call, id, true, &m)) < 0)
        return r;
    if (arg_has(a, "until") == !!duration)
        return cmd_fail(call, -EINVAL, "bad_request", "renew needs either until (a date) or for "
                        "(a duration such as 1y, 6m, 2w or 30d)");
    if (duration) {
        /* From the end of the current membership, or from now if it has ended. */
        int64_t base = m.valid_until && m.valid_until > now ? m.valid_until : now;
        if (members_add_duration(base, duration, &until) < 0)
            return cmd_fail(call, -EINVAL, "bad_request", "for is a duration: 1 to 100 followed "
                            "by d, w, m or y (e.g. 1y, 6m)");
        if (!m.valid_until || m.valid_until <= now)
            until = members_day_end(until - 1);     /* a renewal from today runs to a day's end */
    } else {
        until = until_arg(a, "until");
    }
    if (until <= now)
        return cmd_fail(call, -EINVAL, "bad_request", "a renewal must end in the future");
    if (m.valid_from && until <= m.valid_from)
        return cmd_fail(call, -EINVAL, "bad_request", "a renewal must end after the membership "
                        "starts");
    r = members_record(svc, id, cmd_who(call), "valid_until", history_time(m.valid_until, old),
                       history_time(until, new));
    m.valid_until = until;
    if (r == 0)
        r = store_member_update(svc->store, &m);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot renew member %" PRId64 ": %s", id, strerror(-r));
    log_info("member %" PRId64 " renewed until %s by %s", id, new, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:o}", "id", (json_int_t)id, "member",
                                  members_json(&m, now)));
}

static int member_status(struct cmd_call *call, const struct cmd_args *a,
                         enum member_status status)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "member", 0);
    const char *word = status == MEMBER_SUSPENDED ? "suspended" : "active";
    struct store_member m;
    int r;

    if ((r = member_load(call, id, true, &m)) < 0)
        return r;
    r = store_member_set_status(svc->store, id, status);
    if (r == 0 && m.status != status)
        r = members_record(svc, id, cmd_who(call), "status",
                           m.status == MEMBER_SUSPENDED ? "suspended" : "active", word);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change member: %s", strerror(-r));
    log_info("member %" PRId64 " %s by %s", id,
             status == MEMBER_SUSPENDED ? "suspended" : "resumed", cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", word));
}

int cmd_member_suspend(struct cmd_call *call, const struct cmd_args *a)
{
    return member_status(call, a, MEMBER_SUSPENDED);
}

int cmd_member_resume(struct cmd_call *call, const struct cmd_args *a)
{
    return member_status(call, a, MEMBER_ACTIVE);
}

/* Access ends now; a member checked in is checked out. */
static int remove_member(struct cmd_call *call, struct store_member *m)
{
    struct services *svc = cmd_services(call);
    int64_t now = now_utc();
    int r;

    r = meter_check_out(svc->meter, m->id, now, "removed");
    if (r == 0)
        site_occupancy_changed(svc->site);
    else if (r != -ENOENT)
        log_warning("member %" PRId64 ": cannot check out on removal: %s", m->id, strerror(-r));
    r = store_member_remove(svc->store, m->id, now, cmd_who(call));
    if (r == 0)
        r = members_record(svc, m->id, cmd_who(call), "status",
                           store_member_state_name(store_member_state(m, now)), "removed");
    if (r == 0)
        passports_member_gone(consortium_passports(svc->consortium), m->id);
    return r;
}

int cmd_member_remove(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t id = arg_int(a, "member", 0);
    struct store_member m;
    int r;

    if ((r = member_load(call, id, true, &m)) < 0)
        return r;
    r = remove_member(call, &m);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot remove member %" PRId64 ": %s", id, strerror(-r));
    log_notice("member %" PRId64 " removed by %s: cards disabled, access ended", id, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status", "removed"));
}

int cmd_member_erase(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "member", 0), now = now_utc();
    struct store_member m;
    char first[11], pseudonym[32], tag[9];
    uint8_t random[4];
    int r;

    if ((r = member_load(call, id, false, &m)) < 0)
        return r;
    r = store_member_open_usage(svc->store, id, first);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read member %" PRId64 "'s usage: %s", id,
                        strerror(-r));
    if (first[0] && !arg_bool(a, "force"))
        return cmd_fail(call, -EBUSY, "open_period", "member %" PRId64 " has usage from %s in "
                        "period %.7s, which is not closed: close it (portierctl period close "
                        "%.7s) and invoice it first, or erase anyway with force (the statement "
                        "will then show the pseudonym)", id, first, first, first);
    if (!m.removed_at && (r = remove_member(call, &m)) < 0)
        return cmd_fail(call, r, "store", "cannot remove member %" PRId64 ": %s", id, strerror(-r));
    randombytes_buf(random, sizeof(random));
    sodium_bin2hex(tag, sizeof(tag), random, sizeof(random));
    snprintf(pseudonym, sizeof(pseudonym), "erased-%s", tag);
    r = store_member_erase(svc->store, id, pseudonym, now);
    if (r == 0)
        r = members_record(svc, id, cmd_who(call), "status", "removed", "erased");
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot erase member %" PRId64 ": %s", id, strerror(-r));
    passports_member_gone(consortium_passports(svc->consortium), id);
    log_notice("member %" PRId64 " erased by %s%s: now %s", id, cmd_who(call),
               first[0] ? " (with usage in an open period)" : "", pseudonym);
    json_t *fields = json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id, "pseudonym", pseudonym,
                               "forced", first[0] != '\0');
    if (!svc->retention) {
        /* No loop of our own (tests of the table): the whole log at once. */
        int64_t last = store_events_last_id(svc->store);
        int scrubbed = last < 0 ? (int)last : store_erase_scrub_step(svc->store, id, 0, last);
        int cards = scrubbed < 0 ? scrubbed : store_member_forget_cards(svc->store, id);
        if (cards < 0) {
            json_decref(fields);
            return cmd_fail(call, cards, "store", "cannot erase the cards: %s", strerror(-cards));
        }
        json_object_set_new(fields, "scrubbed", json_integer(scrubbed));
        json_object_set_new(fields, "cards", json_integer(cards));
        return cmd_ok(call, fields);
    }
    /* The access log's card hashes, in small steps off the doors' way; then the cards. */
    return retention_erase(svc->retention, id, call, fields);
}

int cmd_member_export(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const struct config *cfg = svc->cfg;
    int64_t id = arg_int(a, "member", 0);
    struct store_member m;
    json_t *info;
    int r;

    if ((r = cmd_self_member(call, &id)) < 0)
        return r;
    if ((r = member_load(call, id, false, &m)) < 0)
        return r;
    info = json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:I, s:I, s:I}}", "site", "id", cfg->site.id,
                     "name", cfg->site.name, "timezone", cfg->site.timezone, "privacy_contact",
                     cfg->site.privacy_contact, "retention", "access_log_days",
                     (json_int_t)cfg->privacy.access_log_days, "presence_days",
                     (json_int_t)cfg->privacy.presence_days, "account_inactive_days",
                     (json_int_t)cfg->privacy.account_inactive_days);
    log_info("member %" PRId64 ": export requested by %s", id, cmd_who(call));
    r = billing_start_job_info(call, "export", "", id, info);
    json_decref(info);
    return r;
}

/* ---- retention ---- */

int cmd_privacy_prune(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);

    if (!svc->retention)
        return cmd_fail(call, -ENOTSUP, "internal", "no retention here");
    log_info("retention: pass requested by %s", cmd_who(call));
    return retention_prune(svc->retention, call);
}

/* ---- cards ---- */

/* A card as its member's history names it: "card 12 (blue fob)". */
static void card_text(char *buf, size_t n, int64_t id, const char *label)
{
    if (label && *label)
        snprintf(buf, n, "card %" PRId64 " (%.63s)", id, label);
    else
        snprintf(buf, n, "card %" PRId64, id);
}

int cmd_card_add(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t member = arg_int(a, "member", 0), id, other;
    uint8_t hash[STORE_HASH_LEN];
    struct store_member m;
    size_t len = 0;
    const uint8_t *uid = arg_uid(a, "uid", &len);
    char what[96];
    int r;

    if ((r = member_load(call, member, true, &m)) < 0)
        return r;
    access_card_hash(svc->engine, uid, len, hash);
    r = store_card_add(svc->store, member, hash, arg_str(a, "label"), &id);
    if (r == -EEXIST) {
        if (store_card_find(svc->store, hash, &other) == 0)
            return cmd_fail(call, r, "exists", "this card is already enrolled as card %" PRId64,
                            other);
        return cmd_fail(call, r, "exists", "this card is already enrolled");
    }
    card_text(what, sizeof(what), id, arg_str(a, "label"));
    if (r == 0)
        r = members_record(svc, member, cmd_who(call), "card", "", what);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add card: %s", strerror(-r));
    passports_card_seen(consortium_passports(svc->consortium), id, uid, len);
    log_info("card %" PRId64 " added to member %" PRId64 " by %s", id, member, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:I}", "id", (json_int_t)id, "member", (json_int_t)member));
}

int cmd_card_remove(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "card", 0);
    struct store_card c;
    char what[96];
    int r;

    if (!id && arg_has(a, "uid")) {
        uint8_t hash[STORE_HASH_LEN];
        size_t len = 0;
        const uint8_t *uid = arg_uid(a, "uid", &len);
        access_card_hash(svc->engine, uid, len, hash);
        r = store_card_find(svc->store, hash, &id);
        if (r == -ENOENT)
            return cmd_fail(call, r, "not_found", "this card is not enrolled");
        if (r < 0)
            return cmd_fail(call, r, "store", "cannot look the card up: %s", strerror(-r));
    }
    if (!id)
        return cmd_fail(call, -EINVAL, "bad_request", "give a card id or a uid");
    r = store_card_get(svc->store, id, &c);
    if (r == 0)
        r = store_card_remove(svc->store, id);
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no card %" PRId64, id);
    card_text(what, sizeof(what), id, c.label);
    if (r == 0)
        r = members_record(svc, c.member_id, cmd_who(call), "card", what, "");
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot remove card: %s", strerror(-r));
    log_info("card %" PRId64 " removed by %s", id, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

static int card_enable(struct cmd_call *call, const struct cmd_args *a, bool on)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "card", 0);
    struct store_member m;
    struct store_card c;
    char what[96], was[112], now[112];
    int r = store_card_get(svc->store, id, &c);

    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no card %" PRId64, id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read card %" PRId64 ": %s", id, strerror(-r));
    if (on && (r = member_load(call, c.member_id, true, &m)) < 0)
        return r;
    if (c.enabled == on)
        return cmd_ok(call, json_pack("{s:I, s:b}", "id", (json_int_t)id, "enabled", on));
    r = store_card_set_enabled(svc->store, id, on);
    card_text(what, sizeof(what), id, c.label);
    snprintf(was, sizeof(was), "%s, %s", what, on ? "disabled" : "enabled");
    snprintf(now, sizeof(now), "%s, %s", what, on ? "enabled" : "disabled");
    if (r == 0)
        r = members_record(svc, c.member_id, cmd_who(call), "card", was, now);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change card %" PRId64 ": %s", id, strerror(-r));
    log_info("card %" PRId64 " %s by %s", id, on ? "enabled" : "disabled", cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:b}", "id", (json_int_t)id, "enabled", on));
}

int cmd_card_enable(struct cmd_call *call, const struct cmd_args *a)
{
    return card_enable(call, a, true);
}

int cmd_card_disable(struct cmd_call *call, const struct cmd_args *a)
{
    return card_enable(call, a, false);
}

int cmd_card_list(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t member = arg_int(a, "member", 0);
    json_t *fields;
    int r;

    /* Every card of the site (300,000 take seconds to list): a job process, as statements. */
    if (!member)
        return billing_start_job(call, "cards", "", 0);
    fields = members_cards_fields(cmd_services(call)->store, member, &r);
    if (!fields)
        return cmd_fail(call, r, "store", "cannot read the cards: %s", strerror(-r));
    return cmd_ok(call, fields);
}

/* A trainer enrols trainees at the reader of a machine whose training they are named for. */
static int trainer_may_enroll_at(struct cmd_call *call, struct reader *reader)
{
    struct services *svc = cmd_services(call);
    struct store_resource res;
    const char *machine = fablab_machine_of_reader(svc->fablab, reader->name);
    int r;

    if (!machine || store_resource_get(svc->store, machine, &res) < 0 || !res.training_id)
        return cmd_fail(call, -EPERM, "forbidden", "trainers enrol cards only at the reader of a "
                        "machine that requires a training; reader %s is not one", reader->name);
    r = store_trainer_is(svc->store, res.training_id, cmd_actor(call)->member_id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot check your trainer role: %s", strerror(-r));
    if (r == 0)
        return cmd_fail(call, -EPERM, "forbidden", "you are not named trainer for %s's training "
                        "(%s)", machine, res.training);
    return 0;
}

int cmd_card_enroll(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct reader *reader;
    struct store_member m;
    int r;

    if ((r = cmd_reader_arg(call, a, &reader)) < 0)
        return r;
    if (cmd_actor(call)->role == ROLE_TRAINER && (r = trainer_may_enroll_at(call, reader)) < 0)
        return r;
    if ((r = member_load(call, arg_int(a, "member", 0), true, &m)) < 0)
        return r;
    return enroll_start(svc->enroll, call, reader, arg_int(a, "member", 0), arg_str(a, "label"),
                        arg_int(a, "timeout", ENROLL_DEFAULT_SECONDS));
}

/* ---- DESFire cards ---- */

/* Make the card at the reader a member's Portier DESFire card, or undo it (provision.h);
 * the reader must be free of a waiting enrolment. */
static int provision(struct cmd_call *call, const struct cmd_args *a, bool deprovision)
{
    struct services *svc = cmd_services(call);
    struct provision_request req = { .deprovision = deprovision };
    struct reader *reader;
    struct store_member m;
    int r;

    if ((r = cmd_reader_arg(call, a, &reader)) < 0)
        return r;
    if (enroll_waiting_at(svc->enroll, reader))
        return cmd_fail(call, -EBUSY, "busy", "an enrolment is waiting at reader %s",
                        reader->name);
    if (!deprovision) {
        if ((r = member_load(call, arg_int(a, "member", 0), true, &m)) < 0)
            return r;
        req.member = arg_int(a, "member", 0);
        req.label = arg_str(a, "label");
    }
    req.seconds = arg_int(a, "timeout", PROVISION_DEFAULT_SECONDS);
    if (provision_parse_picc_key(arg_str(a, "picc_key"), &req.picc_type, req.picc_key) < 0)
        r = cmd_fail(call, -EINVAL, "bad_request", "picc_key is 'default', des:HEX16, "
                     "2k3des:HEX32 or aes:HEX32 (the card's master key)");
    else
        r = provision_start(svc->provision, call, reader, &req);
    sodium_memzero(&req, sizeof(req));
    return r;
}

int cmd_card_provision(struct cmd_call *call, const struct cmd_args *a)
{
    return provision(call, a, false);
}

int cmd_card_deprovision(struct cmd_call *call, const struct cmd_args *a)
{
    return provision(call, a, true);
}

/* Who still carries a card that opens by its UID alone: the migration's to-do list. The
 * whole site's, sorted by name: a job process reads it, as statements. */
int cmd_card_report(struct cmd_call *call, const struct cmd_args *a)
{
    return billing_start_job(call, "uid-only", "", 0);
}

/* ---- plans ---- */

int cmd_plan_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *name = arg_str(a, "name"), *err = "";
    const char *zones = arg_has(a, "zones") ? arg_str(a, "zones") : "*";
    const char *hours = arg_has(a, "hours") ? arg_str(a, "hours") : "always";
    struct schedule sched;
    int64_t id;
    int r;

    if (schedule_parse(hours, &sched, &err) < 0)
        return cmd_fail(call, -EINVAL, "bad_request", "hours: %s", err);
    r = store_plan_add(cmd_services(call)->store, name, zones, hours, &id);
    if (r == -EEXIST)
        return cmd_fail(call, r, "exists", "a plan named '%s' already exists", name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add plan: %s", strerror(-r));
    log_info("plan %s added (zones %s, hours %s) by %s", name, zones, hours, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

int cmd_plan_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "plans", list,
                      store_plans_foreach(cmd_services(call)->store, plan_append, list));
}

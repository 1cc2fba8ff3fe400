/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "members.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "services.h"
#include "util.h"

/* ---- dates ---- */

int64_t members_day_end(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += 1;
    tm.tm_isdst = -1;           /* the zone's own offset that day (DST) */
    return (int64_t)mktime(&tm);
}

int64_t members_billing_day_start(int64_t t, int day_starts_minutes)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_sec = 0;
    tm.tm_min = day_starts_minutes;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

int members_add_duration(int64_t t, const char *spec, int64_t *ret)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char unit;
    int n = 0, used = 0;

    if (!spec || sscanf(spec, "%d%c%n", &n, &unit, &used) != 2 || spec[used] || n < 1 || n > 100 ||
        !isdigit((unsigned char)spec[0]))
        return -EINVAL;
    localtime_r(&tt, &tm);
    switch (unit) {
    case 'd': tm.tm_mday += n; break;
    case 'w': tm.tm_mday += 7 * n; break;
    case 'm': tm.tm_mon += n; break;
    case 'y': tm.tm_year += n; break;
    default: return -EINVAL;
    }
    tm.tm_isdst = -1;
    *ret = (int64_t)mktime(&tm);
    return 0;
}

/* ---- JSON ---- */

void members_json_time(json_t *obj, const char *key, int64_t t)
{
    char text[32], utc_key[48];

    snprintf(utc_key, sizeof(utc_key), "%s_utc", key);
    json_object_set_new(obj, key, json_integer(t));
    if (t) {
        format_utc(t, text, sizeof(text));
        json_object_set_new(obj, utc_key, json_string(text));
    } else {
        json_object_set_new(obj, utc_key, json_null());
    }
}

struct member_list {
    json_t *list;
    int64_t now;            /* states as of then */
};

static int member_append(const struct store_member *m, void *userdata)
{
    struct member_list *x = userdata;
    return json_array_append_new(x->list, members_json(m, x->now)) == 0 ? 0 : -ENOMEM;
}

static int card_append(const struct store_card *c, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:I, s:s, s:s, s:b, s:I, s:s, s:b}", "id", (json_int_t)c->id, "member_id",
        (json_int_t)c->member_id, "member", c->member, "label", c->label, "enabled", c->enabled,
        "created_at", (json_int_t)c->created_at, "hash", c->hash_prefix, "desfire",
        c->desfire)) == 0 ? 0 : -ENOMEM;
}

json_t *members_list_fields(struct store *store, const struct store_member_query *q, int *ret_r)
{
    struct member_list x = { json_array(), q->now };
    int64_t total = 0;
    int r = x.list ? store_members_query(store, q, member_append, &x, &total) : -ENOMEM;

    *ret_r = r;
    if (r < 0) {
        json_decref(x.list);
        return NULL;
    }
    return json_pack("{s:o, s:I, s:I, s:I}", "members", x.list, "total", (json_int_t)total,
                     "offset", (json_int_t)q->offset, "limit", (json_int_t)q->limit);
}

static int uid_only_append(const struct store_uid_only_card *c, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:I, s:s, s:I}", "member_id", (json_int_t)c->member_id, "member", c->member,
        "card", (json_int_t)c->card_id, "label", c->label, "last_used",
        (json_int_t)c->last_used)) == 0 ? 0 : -ENOMEM;
}

json_t *members_uid_only_fields(struct store *store, int *ret_r)
{
    json_t *list = json_array();
    int r = list ? store_uid_only_cards_foreach(store, 0, uid_only_append, list) : -ENOMEM;

    *ret_r = r;
    if (r < 0) {
        json_decref(list);
        return NULL;
    }
    return json_pack("{s:o}", "uid_only", list);
}

json_t *members_cards_fields(struct store *store, int64_t member_id, int *ret_r)
{
    json_t *list = json_array();
    int r = list ? store_cards_foreach(store, member_id, card_append, list) : -ENOMEM;

    *ret_r = r;
    if (r < 0) {
        json_decref(list);
        return NULL;
    }
    return json_pack("{s:o}", "cards", list);
}

json_t *members_json(const struct store_member *m, int64_t now)
{
    enum store_member_state state = store_member_state(m, now);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s?, s:s, s:I, s:s, s:b}", "id", (json_int_t)m->id,
                          "name", m->name, "email", m->email, "plan",
                          m->plan[0] ? m->plan : NULL, "status",
                          store_member_state_name(state), "cards", (json_int_t)m->cards,
                          "note", m->note, "suspended", m->status == MEMBER_SUSPENDED);

    members_json_time(o, "valid_from", m->valid_from);
    members_json_time(o, "valid_until", m->valid_until);
    members_json_time(o, "created_at", m->created_at);
    members_json_time(o, "removed_at", m->removed_at);
    members_json_time(o, "erased_at", m->erased_at);
    json_object_set_new(o, "next_plan", m->next_plan_id ? json_string(m->next_plan) : json_null());
    members_json_time(o, "next_plan_at", m->next_plan_id ? m->next_plan_at : 0);
    return o;
}

/* ---- history ---- */

int members_record(struct services *svc, int64_t member, const char *by, const char *field,
                   const char *old, const char *new)
{
    return store_member_change_add(svc->store, member, now_utc(), by, field, old, new);
}

/* ---- plan changes that wait for their date ---- */

static int plan_changed(int64_t member_id, int64_t old_plan, int64_t new_plan, void *userdata)
{
    log_info("member %" PRId64 ": plan %" PRId64 " replaced by plan %" PRId64 " as scheduled",
             member_id, old_plan, new_plan);
    return 0;
}

void members_minute(struct services *svc)
{
    int r = store_member_plan_changes_apply(svc->store, now_utc(), plan_changed, NULL);

    if (r < 0)
        log_error("cannot apply the plan changes due now: %s (tried again in a minute)",
                  strerror(-r));
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* member_export: everything the site holds about one member, in one JSON document (the
 * right of access; docs/member-export.schema.json is its schema). Built in a job process
 * (billing.h's jobs) through its own connection: a member's taps are found by reading the
 * whole access log, which must not hold the doors up. Times are UTC, ISO 8601 with Z. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "members.h"
#include "util.h"

static json_t *utc(int64_t t)
{
    char text[32];

    if (!t)
        return json_null();
    format_utc(t, text, sizeof(text));
    return json_string(text);
}

static int push(json_t *list, json_t *item)
{
    return item && json_array_append_new(list, item) == 0 ? 0 : -ENOMEM;
}

static int change_row(const struct store_member_change *c, void *userdata)
{
    return push(userdata, json_pack("{s:o, s:s, s:s, s:s, s:s}", "at", utc(c->at), "by", c->by,
                                    "field", c->field, "old", c->old, "new", c->new));
}

static int card_row(const struct store_card *c, void *userdata)
{
    return push(userdata, json_pack("{s:I, s:s, s:b, s:o, s:s}", "id", (json_int_t)c->id,
                                    "label", c->label, "enabled", c->enabled, "created_at",
                                    utc(c->created_at), "hash_prefix", c->hash_prefix));
}

static int account_row(const struct store_account *a, void *userdata)
{
    return push(userdata, json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:b, s:b}", "name", a->name,
                                    "role", a->role, "created_at", utc(a->created_at),
                                    "created_by", a->created_by, "last_login_at",
                                    utc(a->last_login_at), "disabled_at", utc(a->disabled_at),
                                    "password_set", a->password[0] != '\0', "calendar_address",
                                    a->has_calendar));
}

static int qualification_row(const struct store_qualification *q, void *userdata)
{
    return push(userdata, json_pack("{s:s, s:o, s:s, s:o, s:o}", "training", q->training,
                                    "granted_at", utc(q->granted_at), "granted_by", q->granted_by,
                                    "expires_at", utc(q->expires_at), "revoked_at",
                                    utc(q->revoked_at)));
}

struct trainer_ctx {
    struct store *store;
    int64_t member;
    json_t *list;
};

static int trainer_row(const struct store_training *t, void *userdata)
{
    struct trainer_ctx *x = userdata;
    int r = store_trainer_is(x->store, t->id, x->member);

    if (r < 0)
        return r;
    return r ? push(x->list, json_string(t->name)) : 0;
}

static int booking_row(const struct store_booking *b, void *userdata)
{
    return push(userdata, json_pack("{s:I, s:s, s:o, s:o, s:s, s:o, s:s}", "id", (json_int_t)b->id,
                                    "machine", b->resource, "start", utc(b->start), "end",
                                    utc(b->end), "created_by", b->created_by, "cancelled_at",
                                    utc(b->cancelled_at), "cancelled_by", b->cancelled_by));
}

static int pass_row(const struct store_pass *p, void *userdata)
{
    return push(userdata, json_pack("{s:I, s:s, s:s, s:I, s:I, s:o, s:o, s:I}", "id",
                                    (json_int_t)p->id, "kind", p->kind, "target", p->target,
                                    "quantity", (json_int_t)p->quantity, "remaining",
                                    (json_int_t)p->remaining, "valid_from", utc(p->valid_from),
                                    "valid_until", utc(p->valid_until), "price_cents",
                                    (json_int_t)p->price_cents));
}

static int presence_row(const struct store_presence *p, void *userdata)
{
    return push(userdata, json_pack("{s:s, s:o, s:o, s:s}", "door", p->resource, "check_in_at",
                                    utc(p->check_in_at), "check_out_at", utc(p->check_out_at),
                                    "end_reason", p->end_reason));
}

static int session_row(const struct store_session *ss, void *userdata)
{
    return push(userdata, json_pack("{s:s, s:o, s:o, s:I, s:s}", "machine", ss->resource,
                                    "started_at", utc(ss->started_at), "ended_at",
                                    utc(ss->ended_at), "running_seconds",
                                    (json_int_t)ss->running_seconds, "end_reason",
                                    ss->end_reason));
}

static int usage_row(const struct store_usage *u, void *userdata)
{
    return push(userdata, json_pack(
        "{s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:s, s:s, s:I, s:s, s:s}", "ledger_seq",
        (json_int_t)u->ledger_seq, "kind", u->kind, "resource", u->resource, "billing_day",
        u->billing_day, "started_at", utc(u->started_at), "ended_at", utc(u->ended_at),
        "quantity", (json_int_t)u->quantity, "unit", u->unit, "allowance", u->allowance,
        "amount_cents", (json_int_t)u->amount_cents, "end_reason", u->end_reason, "note",
        u->note));
}

static int event_row(const struct store_event *ev, void *userdata)
{
    return push(userdata, json_pack("{s:o, s:s, s:s, s:s, s:b, s:s, s:s}", "at", utc(ev->at),
                                    "where", ev->resource, "reader", ev->reader, "kind", ev->kind,
                                    "granted", ev->granted, "reason", ev->reason, "detail",
                                    ev->detail));
}

/* Each section: a list filled by one store call. */
static int section(json_t *doc, const char *key, json_t **ret_list)
{
    *ret_list = json_array();
    return *ret_list && json_object_set_new(doc, key, *ret_list) == 0 ? 0 : -ENOMEM;
}

json_t *members_export(struct store *store, int64_t member_id, json_t *info,
                       const char **ret_code, const char **ret_error)
{
    struct store_member m;
    struct store_booking_filter bf = { .member_id = member_id, .include_cancelled = true };
    struct trainer_ctx tx = { store, member_id, NULL };
    json_t *doc, *member, *list;
    int r;

    r = store_member_get(store, member_id, &m);
    if (r < 0) {
        *ret_code = r == -ENOENT ? "not_found" : "store";
        *ret_error = r == -ENOENT ? "no such member" : "cannot read the member";
        return NULL;
    }
    if (m.erased_at) {
        *ret_code = "erased";
        *ret_error = "this member was erased: nothing personal is left to export";
        return NULL;
    }
    member = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:b, s:o, s:o, s:o, s:o, s:s?, s:o}",
                       "id", (json_int_t)m.id, "name", m.name, "email", m.email, "note", m.note,
                       "plan", m.plan[0] ? m.plan : NULL, "status",
                       store_member_state_name(store_member_state(&m, now_utc())), "suspended",
                       m.status == MEMBER_SUSPENDED, "valid_from", utc(m.valid_from),
                       "valid_until", utc(m.valid_until), "created_at", utc(m.created_at),
                       "removed_at", utc(m.removed_at), "next_plan",
                       m.next_plan_id ? m.next_plan : NULL, "next_plan_at",
                       utc(m.next_plan_id ? m.next_plan_at : 0));
    doc = json_pack("{s:s, s:o, s:O, s:O, s:o}", "format", "portier-member-export-v1",
                    "generated_at", utc(now_utc()), "site", json_object_get(info, "site"),
                    "retention", json_object_get(info, "retention"), "member", member);
    if (!doc) {
        *ret_code = "internal";
        *ret_error = "out of memory";
        return NULL;
    }
    r = section(doc, "history", &list);
    if (r == 0)
        r = store_member_changes_foreach(store, member_id, 0, change_row, list);
    if (r >= 0 && (r = section(doc, "cards", &list)) == 0)
        r = store_cards_foreach(store, member_id, card_row, list);
    if (r >= 0 && (r = section(doc, "accounts", &list)) == 0)
        r = store_member_accounts_foreach(store, member_id, account_row, list);
    if (r >= 0 && (r = section(doc, "trainings", &list)) == 0)
        r = store_qualifications_foreach(store, member_id, qualification_row, list);
    if (r >= 0 && (r = section(doc, "trainer_of", &tx.list)) == 0)
        r = store_trainings_foreach(store, now_utc(), trainer_row, &tx);
    if (r >= 0 && (r = section(doc, "bookings", &list)) == 0)
        r = store_bookings_foreach(store, &bf, booking_row, list);
    if (r >= 0 && (r = section(doc, "passes", &list)) == 0)
        r = store_passes_foreach(store, member_id, pass_row, list);
    if (r >= 0 && (r = section(doc, "presences", &list)) == 0)
        r = store_member_presences_foreach(store, member_id, presence_row, list);
    if (r >= 0 && (r = section(doc, "machine_sessions", &list)) == 0)
        r = store_member_sessions_foreach(store, member_id, session_row, list);
    if (r >= 0 && (r = section(doc, "usage", &list)) == 0)
        r = store_usage_foreach(store, "0000-00-00", "9999-12-31", member_id, usage_row, list);
    if (r >= 0 && (r = section(doc, "access_events", &list)) == 0)
        r = store_member_events_foreach(store, member_id, event_row, list);
    if (r < 0) {
        json_decref(doc);
        *ret_code = r == -ENOMEM ? "internal" : "store";
        *ret_error = r == -ENOMEM ? "out of memory" : "cannot read the database";
        return NULL;
    }
    return doc;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web_api: the JSON API under /api/v1/. Reads come from the store; every change is a control
 * command sent through http_command(), so the API gives the same checks and messages as
 * portierctl. Answers are {"ok": true, ...} or {"ok": false, "code": ..., "error": ...}. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "fablab.h"
#include "http_internal.h"
#include "util.h"

#define API_BOOKINGS_MAX 5000

/* The control server's reply as the API's answer: ok -> 200 (or 201), else by code. */
static void api_relay(struct http_req *rq, json_t *reply)
{
    const char *code = json_string_value(json_object_get(reply, "code"));

    if (json_is_true(json_object_get(reply, "ok"))) {
        http_reply_json(rq, rq->note_id ? 201 : 200, json_incref(reply));
        return;
    }
    if (!code)
        code = "internal";
    http_error(rq, http_status_of(code), code, "%s",
               json_string_value(json_object_get(reply, "error")) ?: "refused");
}

/* Forward to the controller: req is stolen; created: answer 201 on success. */
static void api_call(struct http_req *rq, json_t *req, bool created)
{
    rq->note_id = created;
    http_command(rq, req, api_relay);
}

/* Copy the listed string/integer/boolean arguments from the body into req. */
static void copy_args(struct http_req *rq, json_t *req, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(rq->args, *keys);
        if (json_is_string(v) || json_is_integer(v) || json_is_boolean(v))
            json_object_set(req, *keys, v);
    }
}

static json_t *machine_json(const struct store_resource *m)
{
    return json_pack("{s:s, s:s, s:b, s:s, s:s?, s:I, s:I, s:I, s:I, s:s}", "name", m->name, "zone",
                     m->zone, "out_of_order", m->out_of_order, "out_of_order_reason",
                     m->out_of_order_reason, "training", m->training[0] ? m->training : NULL,
                     "slot_minutes", (json_int_t)m->slot_minutes, "min_minutes",
                     (json_int_t)m->min_minutes, "max_minutes", (json_int_t)m->max_minutes,
                     "window_days", (json_int_t)m->window_days, "hours", m->hours);
}

struct machines_ctx {
    struct http_req *rq;
    json_t *list, *status;
};

static int machine_add(const char *name, void *userdata)
{
    struct machines_ctx *x = userdata;
    struct store_resource m;
    json_t *o;

    if (store_resource_get(x->rq->h->env.svc->store, name, &m) < 0)
        return 0;
    o = machine_json(&m);
    json_object_set_new(o, "state", json_string(web_machine_state(&m, x->status)));
    json_array_append_new(x->list, o);
    return 0;
}

static void get_machines(struct http_req *rq)
{
    struct machines_ctx x = { rq, json_array(), rq->h->env.svc->status(rq->h->env.svc) };
    http_store_ok(rq, store_resources_foreach(rq->h->env.svc->store, "machine", machine_add, &x));
    json_decref(x.status);
    http_reply_json(rq, 200, json_pack("{s:b, s:o}", "ok", 1, "machines", x.list));
}

struct bookings_ctx {
    struct http_req *rq;
    json_t *list;
};

static int booking_add(const struct store_booking *b, void *userdata)
{
    struct bookings_ctx *x = userdata;
    bool named = x->rq->role == ROLE_MANAGER ||
                 (web_is_member(x->rq) && x->rq->account.member_id == b->member_id);
    char s[32], e[32];

    format_utc(b->start, s, sizeof(s));
    format_utc(b->end, e, sizeof(e));
    json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:s, s:s, s:b}", "id", (json_int_t)b->id, "machine",
                          b->resource, "start", (json_int_t)b->start, "end", (json_int_t)b->end,
                          "start_utc", s, "end_utc", e, "mine",
                          web_is_member(x->rq) && x->rq->account.member_id == b->member_id);
    if (named) {
        json_object_set_new(o, "member_id", json_integer(b->member_id));
        json_object_set_new(o, "member", json_string(b->member));
    }
    json_array_append_new(x->list, o);
    return 0;
}

/* GET /api/v1/bookings?machine=&from=&to=&mine=1: names only for managers and one's own. */
static void get_bookings(struct http_req *rq)
{
    const char *machine = http_query(rq, "machine"), *from = http_query(rq, "from");
    const char *to = http_query(rq, "to"), *mine = http_query(rq, "mine");
    struct store_booking_filter f = { .limit = API_BOOKINGS_MAX };
    struct bookings_ctx x = { rq, NULL };
    struct store_resource m;

    if (machine) {
        if (store_resource_get(rq->h->env.svc->store, machine, &m) < 0 || strcmp(m.kind, "machine") != 0) {
            http_error(rq, 404, "not_found", "no machine '%.32s'", machine);
            return;
        }
        f.resource_id = m.id;
    }
    if ((from && parse_time(from, &f.from) < 0) || (to && parse_time(to, &f.to) < 0)) {
        http_error(rq, 400, "bad_request", "from and to must be times (YYYY-MM-DD[THH:MM], local) or @epoch");
        return;
    }
    if (!from)
        f.from = now_utc();
    if (mine && strcmp(mine, "1") == 0) {
        if (!web_is_member(rq) || !rq->account.member_id) {
            http_error(rq, 401, "unauthorized", "mine=1 needs a member's login or token");
            return;
        }
        f.member_id = rq->account.member_id;
    }
    x.list = json_array();
    http_store_ok(rq, store_bookings_foreach(rq->h->env.svc->store, &f, booking_add, &x));
    http_reply_json(rq, 200, json_pack("{s:b, s:o}", "ok", 1, "bookings", x.list));
}

/* POST /api/v1/bookings {machine, start, end[, member]}: members book for themselves. */
static void api_post_booking(struct http_req *rq)
{
    static const char *const keys[] = { "machine", "start", "end", NULL };
    json_t *req;

    if (!http_require(rq, WEB_MEMBERS))
        return;
    req = json_pack("{s:s}", "cmd", "booking.add");
    copy_args(rq, req, keys);
    if (rq->role == ROLE_MANAGER) {
        json_t *member = json_object_get(rq->args, "member");
        if (json_is_integer(member))
            json_object_set_new(req, "member", json_sprintf("%" JSON_INTEGER_FORMAT,
                                                            json_integer_value(member)));
        else if (json_is_string(member))
            json_object_set(req, "member", member);
    }
    /* A member books for themself: the command fills in (and insists on) their member. */
    api_call(rq, req, true);
}

/* POST /api/v1/bookings/ID/cancel and .../move {start, end}. */
static void api_booking_change(struct http_req *rq, int64_t id, bool move)
{
    static const char *const keys[] = { "start", "end", "override", NULL };
    json_t *req;

    if (!http_require(rq, WEB_MEMBERS))
        return;
    /* Whose booking it is, and what the deadline allows, the command decides. */
    req = json_pack("{s:s, s:I}", "cmd", move ? "booking.move" : "booking.cancel", "booking",
                    (json_int_t)id);
    copy_args(rq, req, keys);
    api_call(rq, req, false);
}

static void get_me(struct http_req *rq)
{
    /* Any account may ask who it is. */
    if (!http_require(rq, WEB_ANY))
        return;
    http_reply_json(rq, 200, json_pack("{s:b, s:o}", "ok", 1, "account", account_json(&rq->account)));
}

/* Commands a role may send with the body's fields (and fixed ones from the path). */
struct api_route {
    const char *method, *path;      /* path: exact, or a prefix ending in '/' then NAME/verb */
    const char *verb;               /* for "/api/v1/doors/" + NAME + "/" + verb */
    const char *cmd;
    const char *path_key;           /* the NAME from the path goes into this field */
    const char *keys[8];
    bool created;
};

static const struct api_route routes[] = {
    { "GET", "/api/v1/members", NULL, "member.list", NULL, { NULL }, false },
    { "POST", "/api/v1/members", NULL, "member.add", NULL,
      { "name", "email", "plan", "valid_from", "valid_until", NULL }, true },
    { "GET", "/api/v1/doors", NULL, "status", NULL, { NULL }, false },
    { "POST", "/api/v1/doors/", "unlock", "door.unlock", "door", { "seconds", NULL }, false },
    { "POST", "/api/v1/doors/", "lock", "door.lock", "door", { NULL }, false },
    { "POST", "/api/v1/machines/", "out-of-order", "machine.out_of_order", "machine",
      { "on", "reason", "when", NULL }, false },
    { "POST", "/api/v1/trainings/grant", NULL, "training.grant", NULL,
      { "member", "training", "expires", NULL }, false },
    { "POST", "/api/v1/cards/enroll", NULL, "card.enroll", NULL,
      { "member", "reader", "label", "timeout", NULL }, true },
    { "POST", "/api/v1/accounts", NULL, "account.add", NULL,
      { "name", "role", "member", NULL }, true },
    { "POST", "/api/v1/accounts/", "invite", "account.invite", "name", { "hours", NULL }, true },
    { "GET", "/api/v1/usage", NULL, "statement", NULL, { NULL }, false },
    { "GET", "/api/v1/statements", NULL, "statement", NULL, { NULL }, false },
    { "GET", "/api/v1/ledger", NULL, "ledger.verify", NULL, { NULL }, false },
    { "GET", "/api/v1/periods", NULL, "period.list", NULL, { NULL }, false },
};

/* "/api/v1/doors/front/unlock" against prefix "/api/v1/doors/" and verb "unlock": "front". */
static bool match_named(const char *path, const char *prefix, const char *verb, char *name, size_t n)
{
    size_t plen = strlen(prefix), vlen = strlen(verb);
    const char *rest = path + plen, *slash;

    if (strncmp(path, prefix, plen) != 0 || !(slash = strchr(rest, '/')) || slash == rest ||
        strcmp(slash + 1, verb) != 0 || (size_t)(slash - rest) >= n || vlen == 0)
        return false;
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = '\0';
    return true;
}

#define API_MEMBERS_PAGE 1000

/* GET /api/v1/members?q=TEXT&filter=active&offset=N&limit=N: the command's arguments.
 * False (answered) if a number is not one. */
static bool member_list_query(struct http_req *rq, json_t *req)
{
    static const char *const texts[] = { "q", "query", "filter", "filter" };
    static const char *const ints[] = { "offset", "limit" };

    for (size_t i = 0; i < 4; i += 2) {
        const char *v = http_query(rq, texts[i]);
        if (v)
            json_object_set_new(req, texts[i + 1], json_string(v));
    }
    for (size_t i = 0; i < 2; i++) {
        const char *v = http_query(rq, ints[i]);
        int64_t n;
        if (!v)
            continue;
        if (parse_int64(v, 0, INT64_MAX / 2, &n) < 0) {
            json_decref(req);
            http_error(rq, 400, "bad_request", "%s must be a whole number", ints[i]);
            return false;
        }
        json_object_set_new(req, ints[i], json_integer(n));
    }
    /* A page at a time: the loop reads a job's answer whole (CMD_JOB_REPLY_MAX), and a site's
     * whole list is tens of megabytes. */
    if (!json_object_get(req, "limit"))
        json_object_set_new(req, "limit", json_integer(API_MEMBERS_PAGE));
    return true;
}

static bool table_route(struct http_req *rq, const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct api_route *r = &routes[i];
        char name[64] = "";
        json_t *req;

        if (strcmp(rq->is_post ? "POST" : "GET", r->method) != 0)
            continue;
        if (r->verb ? !match_named(path, r->path, r->verb, name, sizeof(name))
                    : strcmp(path, r->path) != 0)
            continue;
        /* Any account may try: the command table says who may do what. */
        if (!http_require(rq, WEB_ANY))
            return true;
        req = json_pack("{s:s}", "cmd", r->cmd);
        copy_args(rq, req, r->keys);
        if (r->path_key)
            json_object_set_new(req, r->path_key, json_string(name));
        if (strcmp(r->cmd, "statement") == 0) {
            const char *period = http_query(rq, "period"), *member = http_query(rq, "member");
            if (!period) {
                json_decref(req);
                http_error(rq, 400, "bad_request", "add ?period=YYYY-MM");
                return true;
            }
            json_object_set_new(req, "period", json_string(period));
            if (member)
                json_object_set_new(req, "member", json_string(member));
        }
        if (strcmp(r->cmd, "member.list") == 0 && !member_list_query(rq, req))
            return true;
        api_call(rq, req, r->created);
        return true;
    }
    return false;
}

bool web_api_route(struct http_req *rq, const char *path)
{
    int64_t id;
    char *end;

    if (strncmp(path, "/api/", 5) != 0)
        return false;
    if (strncmp(path, "/api/v1/", 8) != 0) {
        http_error(rq, 404, "not_found", "this server speaks /api/v1/");
        return true;
    }
    if (rq->is_get && strcmp(path, "/api/v1/machines") == 0) {
        get_machines(rq);
    } else if (rq->is_get && strcmp(path, "/api/v1/bookings") == 0) {
        get_bookings(rq);
    } else if (rq->is_get && strcmp(path, "/api/v1/me") == 0) {
        get_me(rq);
    } else if (rq->is_post && strcmp(path, "/api/v1/bookings") == 0) {
        api_post_booking(rq);
    } else if (rq->is_post && strncmp(path, "/api/v1/bookings/", 17) == 0 &&
               (id = strtoll(path + 17, &end, 10)) > 0 &&
               (strcmp(end, "/cancel") == 0 || strcmp(end, "/move") == 0)) {
        api_booking_change(rq, id, strcmp(end, "/move") == 0);
    } else if (!table_route(rq, path)) {
        http_error(rq, 404, "not_found", "no API route %s %.64s", rq->method, path);
    }
    return true;
}

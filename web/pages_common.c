/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_common: what several pages show the same way — machines and their state, who may see
 * a name, the controller's refusals, a booking's cancel button, form helpers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "util.h"

struct machines_ctx {
    struct store *store;
    struct web_machines *list;
};

static int machine_fill(const char *name, void *userdata)
{
    struct machines_ctx *x = userdata;
    if (x->list->n < sizeof(x->list->m) / sizeof(x->list->m[0]) &&
        store_resource_get(x->store, name, &x->list->m[x->list->n]) == 0)
        x->list->n++;
    return 0;
}

struct web_machines *web_machines_load(struct http_req *rq)
{
    struct web_machines *l = calloc(1, sizeof(*l));
    struct machines_ctx x = { rq->h->env.svc->store, l };

    if (l)
        http_store_ok(rq, store_resources_foreach(rq->h->env.svc->store, "machine", machine_fill,
                                                  &x));
    return l;
}

static json_t *machine_status(const char *name, json_t *status)
{
    json_t *o;
    size_t i;

    json_array_foreach(json_object_get(status, "machines"), i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}

bool web_machine_powered(const char *name, json_t *status)
{
    const char *state = json_string_value(json_object_get(machine_status(name, status), "state"));
    return state && strcmp(state, "off") != 0 && strcmp(state, "none") != 0;
}

const char *web_machine_state(const struct store_resource *m, json_t *status)
{
    if (m->out_of_order)
        return "out_of_order";
    return web_machine_powered(m->name, status) ? "in_use" : "free";
}

const char *web_machine_state_text(struct http_req *rq, const char *state)
{
    if (strcmp(state, "free") == 0)
        return L(rq, "free");
    if (strcmp(state, "in_use") == 0)
        return L(rq, "in use");
    return L(rq, "out of order");
}

bool web_site_open(json_t *status)
{
    json_t *o;
    size_t i;

    if (json_integer_value(json_object_get(status, "present")) > 0)
        return true;
    json_array_foreach(json_object_get(status, "doors"), i, o)
        if (json_is_true(json_object_get(o, "free_entry")))
            return true;
    return false;
}

bool web_may_see_name(const struct http_req *rq, int64_t member_id)
{
    return rq->role == ROLE_MANAGER ||
           (web_is_member(rq) && rq->account.member_id == member_id);
}

bool web_reply_ok(json_t *reply)
{
    return json_is_true(json_object_get(reply, "ok"));
}

void web_reply_refused(struct http_req *rq, json_t *reply)
{
    const char *code = json_string_value(json_object_get(reply, "code"));
    const char *msg = json_string_value(json_object_get(reply, "error"));

    if (!code)
        code = "internal";
    http_error(rq, http_status_of(code), code, "%s", msg ? msg : L(rq, "refused"));
}

void web_cancel_form(struct http_req *rq, struct buf *b, int64_t id, const char *back)
{
    buf_printf(b, "<form method=\"post\" action=\"/bookings/%" PRId64 "/cancel\" class=\"inline\" "
               "data-confirm=\"", id);
    buf_html(b, L(rq, "Cancel this booking?"));
    buf_put(b, "\">");
    web_csrf_field(rq, b);
    if (back) {
        buf_put(b, "<input type=\"hidden\" name=\"back\" value=\"");
        buf_html(b, back);
        buf_put(b, "\">");
    }
    buf_printf(b, "<button type=\"submit\" class=\"secondary\" aria-label=\"%s %" PRId64 "\">%s"
               "</button></form>", L(rq, "Cancel booking"), id, L(rq, "Cancel"));
}

void web_option(struct buf *b, const char *value, const char *label, bool selected)
{
    buf_put(b, "<option value=\"");
    buf_html(b, value);
    buf_put(b, selected ? "\" selected>" : "\">");
    buf_html(b, label);
    buf_put(b, "</option>");
}

const char *web_arg_or(struct http_req *rq, const char *key, const char *def)
{
    const char *v = rq->is_post ? http_arg(rq, key) : NULL;
    return v ? v : def;
}

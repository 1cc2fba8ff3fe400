/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web_pages: the server-rendered HTML pages. They work without JavaScript: every action is
 * a form; app.js only adds comfort. Everything that comes from a person or the database is
 * escaped with buf_html(); state changes go through http_command(), so they get the
 * controller's own rule checks and messages. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "booking.h"
#include "csv.h"
#include "delivery.h"
#include "fablab.h"
#include "http_internal.h"
#include "log.h"
#include "schedule.h"
#include "util.h"

#define WEEK_BOOKINGS_MAX 200000
#define GRID_ROWS_MAX 288               /* 5-minute slots over a day */

/* ---- time helpers (the daemon runs in the site's time zone) ---- */

static int64_t local_midnight(int64_t t, int add_days)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += add_days;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

static int64_t local_at(int64_t midnight, int minutes)
{
    struct tm tm;
    time_t tt = (time_t)midnight;

    localtime_r(&tt, &tm);
    tm.tm_hour = 0;
    tm.tm_min = minutes;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

/* Monday 00:00 of the week holding t. */
static int64_t week_start(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    return local_midnight(t, -((tm.tm_wday + 6) % 7));
}

__attribute__((format(strftime, 2, 0)))
static void fmt_local(int64_t t, const char *fmt, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    /* Callers pass literals; the attribute above checks them at each call. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    strftime(buf, n, fmt, &tm);
#pragma GCC diagnostic pop
}

/* The week asked for (?week=YYYY-MM-DD, any day of it), or this week. */
static int64_t asked_week(struct http_req *rq)
{
    const char *w = http_query(rq, "week");
    int64_t t;

    if (w && strlen(w) == 10 && parse_time(w, &t) == 0)
        return week_start(t);
    return week_start(now_utc());
}

/* ---- layout ---- */

static void csrf_field(struct http_req *rq, struct buf *b)
{
    buf_put(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    buf_html(b, rq->csrf);
    buf_put(b, "\">");
}

static void page_begin(struct http_req *rq, struct buf *b, const char *title)
{
    buf_printf(b, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<link rel=\"stylesheet\" href=\"/static/style.css\">"
                  "<link rel=\"icon\" href=\"/static/icon.svg\">"
                  "<script src=\"/static/app.js\" defer></script><title>", i18n_code(rq->lang));
    buf_html(b, title);
    buf_put(b, " · ");
    buf_html(b, rq->h->cfg->site.name);
    buf_put(b, "</title></head><body><header><a class=\"brand\" href=\"/\">");
    buf_html(b, rq->h->cfg->site.name);
    buf_printf(b, "</a><nav aria-label=\"%s\"><a href=\"/bookings\">%s</a>", L(rq, "Main"),
               L(rq, "Bookings"));
    if (web_is_member(rq))
        buf_printf(b, "<a href=\"/me\">%s</a>", L(rq, "My page"));
    if (rq->role == ROLE_MANAGER)
        buf_printf(b, "<a href=\"/manage\">%s</a>", L(rq, "Manage"));
    if (rq->role & WEB_READERS)
        buf_printf(b, "<a href=\"/usage\">%s</a><a href=\"/ledger\">%s</a>", L(rq, "Usage"),
                   L(rq, "Ledger"));
    if (rq->account.id) {
        buf_put(b, "<form method=\"post\" action=\"/logout\" class=\"inline\">");
        csrf_field(rq, b);
        buf_printf(b, "<button type=\"submit\">%s ", L(rq, "Log out"));
        buf_html(b, rq->account.name);
        buf_put(b, "</button></form>");
    } else {
        buf_printf(b, "<a href=\"/login\">%s</a>", L(rq, "Log in"));
    }
    buf_put(b, "</nav></header><main>");
}

static void page_end(struct http_req *rq, struct buf *b)
{
    buf_printf(b, "</main><footer>Portier " PORTIER_VERSION " · <a href=\"/spaceapi.json\">SpaceAPI</a>"
               " · <a href=\"/privacy\">%s</a></footer></body></html>\n", L(rq, "Privacy"));
    http_reply(rq, 200, "text/html; charset=utf-8", b);
}

/* A page that says what was done, with a way back. */
static void page_done(struct http_req *rq, const char *title, const char *back, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void page_done(struct http_req *rq, const char *title, const char *back, const char *fmt, ...)
{
    struct buf b = { 0 }, msg = { 0 };
    va_list ap;

    va_start(ap, fmt);
    {
        char text[512];
        vsnprintf(text, sizeof(text), fmt, ap);
        buf_put(&msg, text);
    }
    va_end(ap);
    page_begin(rq, &b, title);
    buf_put(&b, "<h1>");
    buf_html(&b, title);
    buf_put(&b, "</h1><p role=\"status\" class=\"ok\">");
    buf_html(&b, msg.data ? msg.data : "");
    buf_put(&b, "</p><p><a href=\"");
    buf_html(&b, back);
    buf_put(&b, "\">Back</a></p>");
    buf_free(&msg);
    page_end(rq, &b);
}

/* The controller said no: its message, with the status its code deserves. (A member's
 * commands run with the member's role, so their messages name no other member.) */
static void reply_refused(struct http_req *rq, json_t *reply)
{
    const char *code = json_string_value(json_object_get(reply, "code"));
    const char *msg = json_string_value(json_object_get(reply, "error"));

    if (!code)
        code = "internal";
    http_error(rq, http_status_of(code), code, "%s", msg ? msg : "refused");
}

static bool reply_ok(json_t *reply)
{
    return json_is_true(json_object_get(reply, "ok"));
}

/* ---- machines and bookings, read from the store ---- */

struct machine_list {
    unsigned n;
    struct store_resource m[CONFIG_MAX_MACHINES * 4];
};

struct machine_collect_ctx {
    struct store *store;
    struct machine_list *list;
};

static int machine_fill(const char *name, void *userdata)
{
    struct machine_collect_ctx *x = userdata;
    if (x->list->n < sizeof(x->list->m) / sizeof(x->list->m[0]) &&
        store_resource_get(x->store, name, &x->list->m[x->list->n]) == 0)
        x->list->n++;
    return 0;
}

static struct machine_list *machines_load(struct http_req *rq)
{
    struct machine_list *l = calloc(1, sizeof(*l));
    struct machine_collect_ctx x = { rq->h->env.svc->store, l };

    if (l)
        http_store_ok(rq, store_resources_foreach(rq->h->env.svc->store, "machine", machine_fill,
                                                  &x));
    return l;
}

/* "free", "in use" or "out of order", from the store and the interlocks' state. */
const char *web_machine_state(const struct store_resource *m, json_t *status)
{
    json_t *list = json_object_get(status, "machines"), *o;
    size_t i;

    if (m->out_of_order)
        return "out_of_order";
    json_array_foreach(list, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *state = json_string_value(json_object_get(o, "state"));
        if (name && strcmp(name, m->name) == 0 && state && strcmp(state, "off") != 0 &&
            strcmp(state, "none") != 0)
            return "in_use";
    }
    return "free";
}

/* Who may see a booking's member name: managers, and the member themselves. */
static bool may_see_name(const struct http_req *rq, int64_t member_id)
{
    return rq->role == ROLE_MANAGER ||
           (web_is_member(rq) && rq->account.member_id == member_id);
}

/* ---- home ---- */

struct today_ctx {
    struct buf *b;
    unsigned n;
};

static int today_append(const struct store_booking *bk, void *userdata)
{
    struct today_ctx *x = userdata;
    char a[8], e[8];

    fmt_local(bk->start, "%H:%M", a, sizeof(a));
    fmt_local(bk->end, "%H:%M", e, sizeof(e));
    buf_printf(x->b, "%s<time>%s</time>–<time>%s</time>", x->n++ ? ", " : "", a, e);
    return 0;
}

static void page_home(struct http_req *rq)
{
    struct http *h = rq->h;
    json_t *status = h->env.svc->status(h->env.svc);
    struct machine_list *ml = machines_load(rq);
    int64_t today = local_midnight(now_utc(), 0);
    json_int_t present = json_integer_value(json_object_get(status, "present"));
    struct buf b = { 0 };
    bool open = present > 0;
    json_t *o;
    size_t i;

    json_array_foreach(json_object_get(status, "doors"), i, o)
        if (json_is_true(json_object_get(o, "free_entry")))
            open = true;
    page_begin(rq, &b, "Home");
    buf_put(&b, "<h1>");
    buf_html(&b, h->cfg->site.name);
    buf_printf(&b, "</h1><p class=\"state %s\" id=\"open-state\"><strong>%s</strong> · "
               "<span id=\"present\">%lld</span> %s in</p>",
               open ? "open" : "closed", open ? "Open" : "Closed", (long long)present,
               present == 1 ? "person" : "people");
    buf_put(&b, "<h2>Machines</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">Machine</th>"
                "<th scope=\"col\">State</th><th scope=\"col\">Booked today</th></tr></thead><tbody>");
    for (unsigned k = 0; ml && k < ml->n; k++) {
        const struct store_resource *m = &ml->m[k];
        struct store_booking_filter f = { .resource_id = m->id, .from = today,
                                          .to = local_midnight(today, 1), .limit = 200 };
        struct today_ctx x = { &b, 0 };
        const char *state = web_machine_state(m, status);

        buf_put(&b, "<tr><th scope=\"row\"><a href=\"/machines/");
        buf_html(&b, m->name);
        buf_put(&b, "\">");
        buf_html(&b, m->name);
        buf_printf(&b, "</a></th><td class=\"m-%s\">%s", state[0] == 'f' ? "free"
                   : state[0] == 'i' ? "busy" : "ooo", state[0] == 'f' ? "free"
                   : state[0] == 'i' ? "in use" : "out of order");
        if (m->out_of_order && m->out_of_order_reason[0]) {
            buf_put(&b, " (");
            buf_html(&b, m->out_of_order_reason);
            buf_put(&b, ")");
        }
        buf_put(&b, "</td><td>");
        http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, today_append, &x));
        if (!x.n)
            buf_put(&b, "none");
        buf_put(&b, "</td></tr>");
    }
    if (!ml || !ml->n)
        buf_put(&b, "<tr><td colspan=\"3\">No machines yet.</td></tr>");
    buf_put(&b, "</tbody></table></div><p>Calendar feeds (no names): ");
    for (unsigned k = 0; ml && k < ml->n; k++) {
        buf_printf(&b, "%s<a href=\"/calendar/", k ? ", " : "");
        buf_html(&b, ml->m[k].name);
        buf_put(&b, ".ics\">");
        buf_html(&b, ml->m[k].name);
        buf_put(&b, "</a>");
    }
    buf_put(&b, "</p>");
    free(ml);
    json_decref(status);
    page_end(rq, &b);
}

/* ---- the week overview: every machine, every day, the booked times ---- */

struct week_ctx {
    struct http_req *rq;
    struct machine_list *ml;
    int64_t days[8];                /* midnights: [0] Monday ... [7] next Monday */
    struct buf cell[CONFIG_MAX_MACHINES * 4][7];
};

static int week_append(const struct store_booking *bk, void *userdata)
{
    struct week_ctx *x = userdata;
    unsigned k;
    char a[8], e[8];

    for (k = 0; k < x->ml->n && x->ml->m[k].id != bk->resource_id; k++)
        ;
    if (k == x->ml->n)
        return 0;
    fmt_local(bk->start, "%H:%M", a, sizeof(a));
    fmt_local(bk->end, "%H:%M", e, sizeof(e));
    for (int d = 0; d < 7; d++) {
        if (bk->start >= x->days[d + 1] || bk->end <= x->days[d])
            continue;
        struct buf *c = &x->cell[k][d];
        buf_printf(c, "<li>%s–%s", a, e);
        if (may_see_name(x->rq, bk->member_id)) {
            buf_put(c, " ");
            buf_html(c, bk->member);
        }
        buf_put(c, "</li>");
    }
    return 0;
}

static void week_nav(struct buf *b, const char *base, int64_t monday)
{
    char prev[11], next[11], label[32];

    fmt_local(local_midnight(monday, -7), "%Y-%m-%d", prev, sizeof(prev));
    fmt_local(local_midnight(monday, 7), "%Y-%m-%d", next, sizeof(next));
    fmt_local(monday, "%d %b %Y", label, sizeof(label));
    buf_put(b, "<p class=\"weeknav\"><a href=\"");
    buf_html(b, base);
    buf_printf(b, "?week=%s\" rel=\"prev\">← Previous week</a> <span>Week of %s</span> <a href=\"", prev,
               label);
    buf_html(b, base);
    buf_printf(b, "?week=%s\" rel=\"next\">Next week →</a></p>", next);
}

static void page_week(struct http_req *rq)
{
    struct http *h = rq->h;
    int64_t monday = asked_week(rq);
    struct week_ctx *x = calloc(1, sizeof(*x));
    struct buf b = { 0 };
    char key[48];
    struct page_cache *slot = NULL;

    /* Anyone's view of a week is the same bytes until a booking or machine changes. */
    snprintf(key, sizeof(key), "week:%" PRId64, monday);
    if (!rq->role) {
        for (size_t i = 0; i < sizeof(h->cache) / sizeof(h->cache[0]); i++) {
            struct page_cache *c = &h->cache[i];
            if (c->response && strcmp(c->key, key) == 0) {
                if (c->gen == store_generation(h->env.svc->store)) {
                    free(x);
                    http_reply_shared(rq, 200, c->response);
                    return;
                }
                slot = c;
                break;
            }
            if (!slot || (!c->response && slot->response))
                slot = c;
        }
    }
    if (!x || !(x->ml = machines_load(rq))) {
        free(x);
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    x->rq = rq;
    for (int d = 0; d <= 7; d++)
        x->days[d] = local_midnight(monday, d);
    struct store_booking_filter f = { .from = x->days[0], .to = x->days[7],
                                      .limit = WEEK_BOOKINGS_MAX };
    http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, week_append, x));

    page_begin(rq, &b, "Bookings");
    buf_put(&b, "<h1>Bookings</h1>");
    week_nav(&b, "/bookings", monday);
    buf_put(&b, "<div class=\"table\"><table class=\"week\"><thead><tr><th scope=\"col\">Machine</th>");
    for (int d = 0; d < 7; d++) {
        char label[24];
        fmt_local(x->days[d], "%a %d", label, sizeof(label));
        buf_printf(&b, "<th scope=\"col\">%s</th>", label);
    }
    buf_put(&b, "</tr></thead><tbody>");
    for (unsigned k = 0; k < x->ml->n; k++) {
        buf_put(&b, "<tr><th scope=\"row\"><a href=\"/machines/");
        buf_html(&b, x->ml->m[k].name);
        buf_put(&b, "\">");
        buf_html(&b, x->ml->m[k].name);
        buf_put(&b, "</a></th>");
        for (int d = 0; d < 7; d++) {
            struct buf *c = &x->cell[k][d];
            if (c->len) {
                buf_put(&b, "<td><ul>");
                buf_putn(&b, c->data, c->len);
                buf_put(&b, "</ul></td>");
            } else {
                buf_put(&b, "<td></td>");
            }
            buf_free(c);
        }
        buf_put(&b, "</tr>");
    }
    buf_put(&b, "</tbody></table></div>");
    free(x->ml);
    free(x);
    page_end(rq, &b);
    if (slot && rq->response) {
        if (slot->response)
            MHD_destroy_response(slot->response);
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->gen = store_generation(h->env.svc->store);
        slot->response = rq->response;     /* the cache owns it from now on */
        rq->response_shared = true;
    }
}

void web_cache_clear(struct http *h)
{
    for (size_t i = 0; i < sizeof(h->cache) / sizeof(h->cache[0]); i++) {
        if (h->cache[i].response)
            MHD_destroy_response(h->cache[i].response);
        memset(&h->cache[i], 0, sizeof(h->cache[i]));
    }
}

/* ---- one machine's week grid ---- */

struct grid_booking {
    int64_t id, member_id, start, end;
    char member[96];
};

struct grid_ctx {
    unsigned n;
    struct grid_booking b[2048];
};

static int grid_append(const struct store_booking *bk, void *userdata)
{
    struct grid_ctx *g = userdata;
    if (g->n == sizeof(g->b) / sizeof(g->b[0]))
        return -E2BIG;
    g->b[g->n] = (struct grid_booking){ bk->id, bk->member_id, bk->start, bk->end, "" };
    snprintf(g->b[g->n].member, sizeof(g->b[g->n].member), "%s", bk->member);
    g->n++;
    return 0;
}

static void cancel_form(struct http_req *rq, struct buf *b, int64_t id, const char *label)
{
    buf_printf(b, "<form method=\"post\" action=\"/bookings/%" PRId64 "/cancel\" class=\"inline\" "
               "data-confirm=\"Cancel this booking?\">", id);
    csrf_field(rq, b);
    buf_put(b, "<button type=\"submit\" class=\"secondary\">");
    buf_html(b, label);
    buf_put(b, "</button></form>");
}

static void page_machine(struct http_req *rq, const char *name)
{
    struct http *h = rq->h;
    struct store_resource m;
    struct store_machine_facts facts;
    const struct schedule *hours = &facts.hours;
    int64_t monday = asked_week(rq), now = now_utc(), days[8];
    struct grid_ctx *g;
    struct buf b = { 0 };
    char base[64], title[64];
    bool can_book = web_is_member(rq) && rq->account.member_id;
    int slot;

    if (store_resource_get(h->env.svc->store, name, &m) < 0 || strcmp(m.kind, "machine") != 0) {
        http_error(rq, 404, "not_found", "no machine '%.32s'", name);
        return;
    }
    /* The hours the interlock and the booking rules use: unreadable ones show closed. */
    store_machine_facts(&m, now, 0, &facts);
    slot = m.slot_minutes > 0 && m.slot_minutes <= 1440 ? (int)m.slot_minutes : 30;
    if (1440 / slot > GRID_ROWS_MAX)
        slot = 1440 / GRID_ROWS_MAX;
    g = calloc(1, sizeof(*g));
    if (!g) {
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    for (int d = 0; d <= 7; d++)
        days[d] = local_midnight(monday, d);
    struct store_booking_filter f = { .resource_id = m.id, .from = days[0], .to = days[7],
                                      .limit = 2048 };
    http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, grid_append, g));

    snprintf(title, sizeof(title), "%s", m.name);
    page_begin(rq, &b, title);
    buf_put(&b, "<h1>");
    buf_html(&b, m.name);
    buf_put(&b, "</h1>");
    if (m.out_of_order) {
        buf_put(&b, "<p class=\"error\" role=\"status\">Out of order");
        if (m.out_of_order_reason[0]) {
            buf_put(&b, ": ");
            buf_html(&b, m.out_of_order_reason);
        }
        buf_put(&b, ".</p>");
    }
    buf_printf(&b, "<p>Slots of %d minutes", slot);
    if (m.training[0]) {
        buf_put(&b, "; training required: ");
        buf_html(&b, m.training);
    }
    if (!facts.hours_unreadable && m.hours[0] && strcmp(m.hours, "always") != 0) {
        buf_put(&b, "; open ");
        buf_html(&b, m.hours);
    }
    buf_put(&b, ".</p>");
    if (facts.hours_unreadable)
        buf_put(&b, "<p class=\"error\" role=\"status\">Closed: its opening hours cannot be "
                    "read. A manager can set them again.</p>");
    if (!rq->account.id)
        buf_put(&b, "<p><a href=\"/login\">Log in</a> to book.</p>");
    snprintf(base, sizeof(base), "/machines/%s", m.name);
    week_nav(&b, base, monday);
    buf_put(&b, "<div class=\"table\"><table class=\"grid\"><caption>Free and booked slots</caption>"
                "<thead><tr><th scope=\"col\">Time</th>");
    for (int d = 0; d < 7; d++) {
        char label[24];
        fmt_local(days[d], "%a %d", label, sizeof(label));
        buf_printf(&b, "<th scope=\"col\">%s</th>", label);
    }
    buf_put(&b, "</tr></thead><tbody>");
    for (int row = 0; row < 1440 / slot; row++) {
        bool any_open = false;
        int64_t starts[7];

        for (int d = 0; d < 7; d++) {
            struct local_time lt;
            starts[d] = local_at(days[d], row * slot);
            local_time_at(starts[d], &lt);
            if (schedule_contains(hours, &lt))
                any_open = true;
        }
        if (!any_open)
            continue;
        buf_printf(&b, "<tr><th scope=\"row\">%02d:%02d</th>", row * slot / 60, row * slot % 60);
        for (int d = 0; d < 7; d++) {
            int64_t s0 = starts[d], e0 = s0 + slot * 60;
            const struct grid_booking *hit = NULL;
            struct local_time lt;
            char when[32];

            for (unsigned i = 0; i < g->n && !hit; i++)
                if (g->b[i].start < e0 && g->b[i].end > s0)
                    hit = &g->b[i];
            local_time_at(s0, &lt);
            fmt_local(s0, "%a %d %H:%M", when, sizeof(when));
            if (hit) {
                bool mine = may_see_name(rq, hit->member_id);
                buf_printf(&b, "<td class=\"busy%s\">", mine ? " mine" : "");
                if (mine) {
                    buf_html(&b, rq->role == ROLE_MANAGER ? hit->member : "Yours");
                    if (hit->start == s0 && hit->end > now)
                        cancel_form(rq, &b, hit->id, "Cancel");
                } else {
                    buf_put(&b, "Booked");
                }
                buf_put(&b, "</td>");
            } else if (!schedule_contains(hours, &lt)) {
                buf_put(&b, "<td class=\"closed\">Closed</td>");
            } else if (e0 <= now) {
                buf_put(&b, "<td class=\"past\">–</td>");
            } else if (can_book) {
                struct booking_verdict v;
                if (fablab_slot_check(h->env.svc->fablab, &m, rq->account.member_id, s0, e0, &v)) {
                    char start[20], end[20];
                    fmt_local(s0, "%Y-%m-%dT%H:%M", start, sizeof(start));
                    fmt_local(e0, "%Y-%m-%dT%H:%M", end, sizeof(end));
                    buf_put(&b, "<td class=\"free\"><form method=\"post\" action=\"/bookings\">");
                    csrf_field(rq, &b);
                    buf_put(&b, "<input type=\"hidden\" name=\"machine\" value=\"");
                    buf_html(&b, m.name);
                    buf_printf(&b, "\"><input type=\"hidden\" name=\"start\" value=\"%s\">"
                               "<input type=\"hidden\" name=\"end\" value=\"%s\">"
                               "<button type=\"submit\" aria-label=\"Book %s\">Book</button></form></td>",
                               start, end, when);
                } else {
                    buf_put(&b, "<td class=\"na\" title=\"");
                    buf_html(&b, v.message);     /* names no member: fablab_slot_check */
                    buf_put(&b, "\">–</td>");
                }
            } else {
                buf_put(&b, "<td class=\"free\">Free</td>");
            }
        }
        buf_put(&b, "</tr>");
    }
    buf_put(&b, "</tbody></table></div>");
    if (can_book) {
        char start[20];
        fmt_local(now_utc() + 3600 - now_utc() % 3600, "%Y-%m-%dT%H:%M", start, sizeof(start));
        buf_put(&b, "<h2>Book a longer slot</h2><form method=\"post\" action=\"/bookings\" class=\"stack\">");
        csrf_field(rq, &b);
        buf_put(&b, "<input type=\"hidden\" name=\"machine\" value=\"");
        buf_html(&b, m.name);
        buf_printf(&b, "\"><label>Start <input type=\"datetime-local\" name=\"start\" required value=\"%s\" "
                   "step=\"%d\"></label><label>Minutes <input type=\"number\" name=\"minutes\" "
                   "required min=\"%d\" max=\"1440\" step=\"%d\" value=\"%d\"></label>"
                   "<button type=\"submit\">Book</button></form>", start, slot * 60, slot, slot,
                   slot * 2);
    }
    free(g);
    page_end(rq, &b);
}

/* POST /bookings: a member books for themselves. */
static void booked(struct http_req *rq, json_t *reply)
{
    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    page_done(rq, "Booked", rq->note, "Booking %" JSON_INTEGER_FORMAT " is yours. It is on your page "
              "and in your calendar feed.", json_integer_value(json_object_get(reply, "id")));
}

static void post_booking(struct http_req *rq)
{
    const char *machine = http_arg(rq, "machine"), *start = http_arg(rq, "start");
    const char *end = http_arg(rq, "end"), *minutes = http_arg(rq, "minutes");
    char member[24], end_text[20];
    int64_t t0, mins;

    if (!http_require(rq, WEB_MEMBERS))
        return;
    if (!rq->account.member_id) {
        http_error(rq, 403, "forbidden", "managers assign slots from the Manage page");
        return;
    }
    if (!machine || !start || strlen(machine) > 31) {
        http_error(rq, 400, "bad_request", "choose a machine and a start time");
        return;
    }
    if (!end && minutes) {
        /* From the "longer slot" form: start + minutes. */
        if (parse_time(start, &t0) < 0 || parse_int64(minutes, 1, 1440, &mins) < 0) {
            http_error(rq, 400, "bad_request", "give a start time and 1 to 1440 minutes");
            return;
        }
        fmt_local(t0 + mins * 60, "%Y-%m-%dT%H:%M", end_text, sizeof(end_text));
        end = end_text;
    }
    if (!end) {
        http_error(rq, 400, "bad_request", "give an end time or a number of minutes");
        return;
    }
    snprintf(member, sizeof(member), "%" PRId64, rq->account.member_id);
    /* Back to the week of the booking, where it shows. */
    char week[11] = "";
    if (parse_time(start, &t0) == 0)
        fmt_local(t0, "%Y-%m-%d", week, sizeof(week));
    snprintf(rq->note, sizeof(rq->note), "/machines/%s%s%s", machine, week[0] ? "?week=" : "", week);
    http_command(rq, json_pack("{s:s, s:s, s:s, s:s, s:s}", "cmd", "booking.add", "machine",
                               machine, "member", member, "start", start, "end", end), booked);
}

static void cancelled(struct http_req *rq, json_t *reply)
{
    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    page_done(rq, "Cancelled", rq->role == ROLE_MANAGER ? "/manage" : "/me",
              "Booking %" JSON_INTEGER_FORMAT " is cancelled.%s",
              json_integer_value(json_object_get(reply, "id")),
              json_is_true(json_object_get(reply, "override"))
                  ? " (After the cancellation deadline: recorded as a manager's override.)" : "");
}

static void post_cancel(struct http_req *rq, int64_t id)
{
    if (!http_require(rq, WEB_MEMBERS))
        return;
    /* The command says whether this account may cancel it (members: their own, before the
     * deadline; a manager's cancellation after it is recorded as an override). */
    http_command(rq, json_pack("{s:s, s:I, s:b}", "cmd", "booking.cancel", "booking",
                               (json_int_t)id, "override", rq->role == ROLE_MANAGER), cancelled);
}

/* ---- login and first password ---- */

static void page_login(struct http_req *rq, const char *error)
{
    struct buf b = { 0 };

    page_begin(rq, &b, "Log in");
    buf_put(&b, "<h1>Log in</h1>");
    if (error) {
        buf_put(&b, "<p role=\"alert\" class=\"error\">");
        buf_html(&b, error);
        buf_put(&b, "</p>");
    } else if (http_query(rq, "welcome")) {
        buf_put(&b, "<p role=\"status\" class=\"ok\">Your password is set. Log in with it.</p>");
    }
    buf_put(&b, "<form method=\"post\" action=\"/login\" class=\"stack\">");
    csrf_field(rq, &b);
    buf_put(&b, "<label>Account name <input name=\"name\" autocomplete=\"username\" required "
                "maxlength=\"32\" autocapitalize=\"none\"></label>"
                "<label>Password <input type=\"password\" name=\"password\" "
                "autocomplete=\"current-password\" required maxlength=\"256\"></label>"
                "<button type=\"submit\">Log in</button></form>"
                "<p>No password yet? Ask a manager for a one-time link.</p>");
    page_end(rq, &b);
}

void web_page_login_done(struct http_req *rq, bool ok, const char *why)
{
    if (ok) {
        struct store_account a;
        const char *to = "/me";
        if (store_account_get(rq->h->env.svc->store, rq->note_id, &a) == 0 &&
            strcmp(a.role, "member") != 0)
            to = strcmp(a.role, "manager") == 0 ? "/manage" : "/usage";
        http_redirect(rq, to);
        return;
    }
    /* Show the form again with a fresh pre-session token (the cookie stays valid). */
    const char *pre = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, "portier_pre");
    snprintf(rq->csrf, sizeof(rq->csrf), "%s", pre ? pre : "");
    page_login(rq, why);
    if (rq->response)
        rq->status = 401;
}

static void page_welcome(struct http_req *rq, const char *token)
{
    struct buf b = { 0 };

    page_begin(rq, &b, "Set your password");
    buf_put(&b, "<h1>Set your password</h1><form method=\"post\" action=\"/welcome/");
    buf_html(&b, token);
    buf_put(&b, "\" class=\"stack\">");
    csrf_field(rq, &b);
    buf_put(&b, "<label>New password (at least 10 characters) <input type=\"password\" "
                "name=\"password\" autocomplete=\"new-password\" required minlength=\"10\" "
                "maxlength=\"256\"></label><label>The same again <input type=\"password\" "
                "name=\"password2\" autocomplete=\"new-password\" required minlength=\"10\" "
                "maxlength=\"256\"></label><button type=\"submit\">Set password</button></form>");
    page_end(rq, &b);
}

/* ---- a member's own page ---- */

struct me_ctx {
    struct http_req *rq;
    struct buf *b;
    unsigned n;
};

static int me_booking(const struct store_booking *bk, void *userdata)
{
    struct me_ctx *x = userdata;
    char a[32], e[8];

    fmt_local(bk->start, "%a %d %b %H:%M", a, sizeof(a));
    fmt_local(bk->end, "%H:%M", e, sizeof(e));
    buf_put(x->b, "<li><a href=\"/machines/");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "\">");
    buf_html(x->b, bk->resource);
    buf_printf(x->b, "</a> %s–%s ", a, e);
    cancel_form(x->rq, x->b, bk->id, "Cancel");
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static int me_pass(const struct store_pass *p, void *userdata)
{
    struct me_ctx *x = userdata;
    char until[16] = "";

    if (p->valid_until && p->valid_until < now_utc())
        return 0;
    if (p->valid_until)
        fmt_local(p->valid_until, " until %d %b", until, sizeof(until));
    buf_printf(x->b, "<li>%" PRId64 " of %" PRId64 " %s", p->remaining, p->quantity,
               strcmp(p->kind, "days") == 0 ? "days" : "minutes");
    if (strcmp(p->kind, "minutes") == 0) {
        buf_put(x->b, " on ");
        buf_html(x->b, p->target);
    }
    buf_printf(x->b, "%s</li>", until);
    x->n++;
    return 0;
}

static void me_render(struct http_req *rq, json_t *reply)
{
    struct http *h = rq->h;
    struct buf b = { 0 };
    struct me_ctx x = { rq, &b, 0 };
    json_t *members = json_object_get(json_object_get(reply, "statement"), "members");
    json_t *totals = json_object_get(json_array_get(members, 0), "totals");
    char base[160], month[16];

    fmt_local(now_utc(), "%B %Y", month, sizeof(month));
    page_begin(rq, &b, "My page");
    buf_put(&b, "<h1>");
    buf_html(&b, rq->account.member[0] ? rq->account.member : rq->account.name);
    buf_put(&b, "</h1><h2>My bookings</h2><ul class=\"list\">");
    struct store_booking_filter f = { .member_id = rq->account.member_id, .from = now_utc(),
                                      .limit = 200 };
    http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, me_booking, &x));
    if (!x.n)
        buf_put(&b, "<li>None. <a href=\"/bookings\">Book a machine</a>.</li>");
    buf_printf(&b, "</ul><h2>Usage in %s</h2>", month);
    if (totals) {
        char amount[32];
        buf_printf(&b, "<dl class=\"usage\"><dt>Days</dt><dd id=\"usage-days\">%" JSON_INTEGER_FORMAT
                   "</dd><dt>Presence</dt><dd>%" JSON_INTEGER_FORMAT " min</dd><dt>Machines</dt>"
                   "<dd>%" JSON_INTEGER_FORMAT " min</dd><dt>Amount</dt><dd>%s EUR</dd></dl>",
                   json_integer_value(json_object_get(totals, "days")),
                   json_integer_value(json_object_get(totals, "presence_minutes")),
                   json_integer_value(json_object_get(totals, "machine_minutes")),
                   format_cents(json_integer_value(json_object_get(totals, "amount_cents")), '.',
                                amount, sizeof(amount)));
    } else {
        buf_put(&b, "<p>Nothing used yet this month.</p>");
    }
    buf_put(&b, "<h2>My passes</h2><ul class=\"list\">");
    x.n = 0;
    http_store_ok(rq, store_passes_foreach(h->env.svc->store, rq->account.member_id, me_pass, &x));
    if (!x.n)
        buf_put(&b, "<li>No passes.</li>");
    buf_put(&b, "</ul><h2>My calendar</h2>");
    if (rq->account.calendar_token[0]) {
        http_base_url(rq, base, sizeof(base));
        buf_put(&b, "<p>Add this address to your calendar app (keep it private: anyone with it "
                    "sees your bookings):</p><p><input readonly class=\"copy\" id=\"calendar-url\" "
                    "aria-label=\"Calendar address\" value=\"");
        buf_html(&b, base);
        buf_put(&b, "/calendar/me/");
        buf_html(&b, rq->account.calendar_token);
        buf_put(&b, ".ics\"></p>");
    }
    buf_put(&b, "<form method=\"post\" action=\"/me/calendar\">");
    csrf_field(rq, &b);
    buf_printf(&b, "<button type=\"submit\" class=\"secondary\">%s</button></form>",
               rq->account.calendar_token[0] ? "Replace the address (the old one stops working)"
                                             : "Create my calendar address");
    web_me_privacy(rq, &b);
    page_end(rq, &b);
}

static void page_me(struct http_req *rq)
{
    char period[8], member[24];

    /* A custodian has no page of its own here: it is sent to /usage below, not refused. */
    if (!http_require(rq, WEB_ANY))
        return;
    if (!rq->account.member_id) {
        http_redirect(rq, rq->role == ROLE_MANAGER ? "/manage" : "/usage");
        return;
    }
    fmt_local(now_utc(), "%Y-%m", period, sizeof(period));
    snprintf(member, sizeof(member), "%" PRId64, rq->account.member_id);
    http_command(rq, json_pack("{s:s, s:s, s:s}", "cmd", "statement", "period", period, "member",
                              member), me_render);
}

static void post_calendar(struct http_req *rq)
{
    char token[STORE_TOKEN_TEXT_MAX + 1];
    uint8_t unused[STORE_HASH_LEN];

    if (!http_require(rq, WEB_MEMBERS))
        return;
    account_token_new(token, unused);
    if (store_account_set_calendar(rq->h->env.svc->store, rq->account.id, token) < 0) {
        http_error(rq, 500, "store", "cannot store the calendar address");
        return;
    }
    http_redirect(rq, "/me");
}

/* ---- managers ---- */

struct select_ctx {
    struct buf *b;
};

static int member_option(const struct store_member *m, void *userdata)
{
    struct buf *b = userdata;
    buf_printf(b, "<option value=\"%" PRId64 "\">", m->id);
    buf_html(b, m->name);
    buf_printf(b, " (#%" PRId64 ")</option>", m->id);
    return 0;
}

static void member_select(struct http_req *rq, struct buf *b, const char *name)
{
    if (store_member_count(rq->h->env.svc->store) > 500) {
        /* A list of thousands helps nobody: the controller resolves an id or exact name. */
        buf_put(b, "<label>Member (number or exact name) <input name=\"");
        buf_put(b, name);
        buf_put(b, "\" required maxlength=\"95\"></label>");
        return;
    }
    buf_put(b, "<label>Member <select name=\"");
    buf_put(b, name);
    buf_put(b, "\" required>");
    http_store_ok(rq, store_members_foreach(rq->h->env.svc->store, member_option, b));
    buf_put(b, "</select></label>");
}

static int name_option(const char *name, void *userdata)
{
    struct buf *b = userdata;
    buf_put(b, "<option>");
    buf_html(b, name);
    buf_put(b, "</option>");
    return 0;
}

static void resource_select(struct http_req *rq, struct buf *b, const char *kind, const char *label)
{
    buf_printf(b, "<label>%s <select name=\"%s\" required>", label, kind);
    http_store_ok(rq, store_resources_foreach(rq->h->env.svc->store, kind, name_option, b));
    buf_put(b, "</select></label>");
}

static int training_option(const struct store_training *t, void *userdata)
{
    return name_option(t->name, userdata);
}

static int upcoming_row(const struct store_booking *bk, void *userdata)
{
    struct me_ctx *x = userdata;
    char a[32], e[8];

    fmt_local(bk->start, "%a %d %b %H:%M", a, sizeof(a));
    fmt_local(bk->end, "%H:%M", e, sizeof(e));
    buf_printf(x->b, "<tr><td>%" PRId64 "</td><td>", bk->id);
    buf_html(x->b, bk->resource);
    buf_printf(x->b, "</td><td>%s–%s</td><td>", a, e);
    buf_html(x->b, bk->member);
    buf_put(x->b, "</td><td>");
    cancel_form(x->rq, x->b, bk->id, "Cancel");
    buf_put(x->b, "</td></tr>");
    return 0;
}

static int uid_only_row(const struct store_uid_only_card *c, void *userdata)
{
    struct me_ctx *x = userdata;
    char last[32] = "never";

    if (c->last_used)
        fmt_local(c->last_used, "%d %b %Y", last, sizeof(last));
    buf_put(x->b, "<tr><td>");
    buf_html(x->b, c->member);
    buf_printf(x->b, "</td><td>%" PRId64 "</td><td>", c->card_id);
    buf_html(x->b, c->label[0] ? c->label : "-");
    buf_printf(x->b, "</td><td>%s</td></tr>", last);
    return 0;
}

static void form_begin(struct http_req *rq, struct buf *b, const char *action, const char *title)
{
    buf_put(b, "<section><h2>");
    buf_html(b, title);
    buf_put(b, "</h2><form method=\"post\" class=\"stack\" action=\"/manage/");
    buf_put(b, action);
    buf_put(b, "\">");
    csrf_field(rq, b);
}

static void form_end(struct buf *b, const char *button)
{
    buf_put(b, "<button type=\"submit\">");
    buf_html(b, button);
    buf_put(b, "</button></form></section>");
}

/* ---- deliveries on /manage: e-mails and webhooks, as portierctl mail list / webhook list ---- */

static const char *delivery_state_text(struct http_req *rq, const char *state)
{
    static const char *const states[][2] = {
        { "queued", N_("waiting") }, { "sending", N_("sending") }, { "sent", N_("sent") },
        { "failed", N_("failed") },
    };
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(state, states[i][0]) == 0)
            return L(rq, states[i][1]);
    return state;
}

static int mail_row(const struct store_mail *m, void *userdata)
{
    struct me_ctx *x = userdata;
    struct services *svc = x->rq->h->env.svc;
    char when[32];

    fmt_local(m->state == STORE_MAIL_SENT ? m->sent_at : m->created_at, "%d %b %H:%M", when,
              sizeof(when));
    buf_printf(x->b, "<tr><td>%" PRId64 "</td><td><code>", m->id);
    buf_html(x->b, m->kind);
    buf_put(x->b, "</code></td><td>");
    buf_html(x->b, delivery_state_text(x->rq, delivery_mail_sending(svc->delivery, m->id)
                                                  ? "sending" : store_mail_state_name(m->state)));
    buf_printf(x->b, "</td><td>%s</td><td>%" PRId64 "</td><td>", when, m->attempts);
    buf_html(x->b, m->to_addr);
    buf_put(x->b, "</td><td>");
    buf_html(x->b, m->state != STORE_MAIL_SENT && m->last_error[0] ? m->last_error : m->subject);
    buf_put(x->b, "</td></tr>");
    x->n++;
    return 0;
}

static void manage_deliveries(struct http_req *rq, struct buf *b, json_t *status)
{
    json_t *mail = json_object_get(status, "mail"), *hooks = json_object_get(status, "webhooks");
    json_t *o;
    size_t i;

    buf_printf(b, "<h2>%s</h2>", L(rq, "E-mail"));
    if (!json_is_true(json_object_get(mail, "enabled"))) {
        buf_printf(b, "<p>%s</p>", L(rq, "E-mail is off ([mail] enabled = false)."));
    } else {
        struct me_ctx x = { rq, b, 0 };
        struct store_mail_filter f = { .state = -1, .limit = 20 };

        buf_put(b, "<p>");
        buf_printf(b, L(rq, "Waiting: %lld. Sent in the last hour: %lld (at most %lld). Not "
                            "queued since the start (queue full): %lld."),
                   (long long)json_integer_value(json_object_get(mail, "queued")),
                   (long long)json_integer_value(json_object_get(mail, "sent_last_hour")),
                   (long long)json_integer_value(json_object_get(mail, "per_hour")),
                   (long long)json_integer_value(json_object_get(mail, "dropped")));
        buf_printf(b, "</p><div class=\"table\"><table><caption>%s</caption><thead><tr>"
                      "<th scope=\"col\">#</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                      "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                      "<th scope=\"col\">%s</th></tr></thead><tbody>",
                   L(rq, "The last 20 messages"), L(rq, "Kind"), L(rq, "State"), L(rq, "When"),
                   L(rq, "Attempts"), L(rq, "To"), L(rq, "Subject or last error"));
        http_store_ok(rq, store_mails_foreach(rq->h->env.svc->store, &f, mail_row, &x));
        buf_put(b, "</tbody></table></div>");
    }
    if (json_array_size(hooks) == 0)
        return;
    buf_printf(b, "<h2>%s</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                  "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
               L(rq, "Webhooks"), L(rq, "Name"), L(rq, "Receiver"), L(rq, "Delivered"),
               L(rq, "Waiting"), L(rq, "Refused"), L(rq, "Last answer"));
    json_array_foreach(hooks, i, o) {
        const char *err = json_string_value(json_object_get(o, "last_error"));
        long long st = json_integer_value(json_object_get(o, "last_status"));

        buf_put(b, "<tr><td>");
        buf_html(b, json_string_value(json_object_get(o, "name")));
        buf_put(b, "</td><td>");
        buf_html(b, json_string_value(json_object_get(o, "receiver")));
        buf_printf(b, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>",
                   (long long)json_integer_value(json_object_get(o, "delivered")),
                   (long long)json_integer_value(json_object_get(o, "behind")),
                   (long long)json_integer_value(json_object_get(o, "refused")));
        if (err && *err)
            buf_html(b, err);
        else if (st)
            buf_printf(b, "HTTP %lld", st);
        else
            buf_put(b, "-");
        buf_put(b, "</td></tr>");
    }
    buf_put(b, "</tbody></table></div>");
}

static void page_manage(struct http_req *rq)
{
    struct http *h = rq->h;
    struct buf b = { 0 };
    struct me_ctx x = { rq, &b, 0 };
    json_t *status, *o;
    size_t i;

    if (!http_require(rq, WEB_STAFF))
        return;
    status = h->env.svc->status(h->env.svc);
    page_begin(rq, &b, "Manage");
    buf_put(&b, "<h1>Manage</h1>");
    web_members_manage_link(rq, &b);
    buf_put(&b, "<div class=\"cards\">");

    form_begin(rq, &b, "assign", "Assign a slot");
    member_select(rq, &b, "member");
    resource_select(rq, &b, "machine", "Machine");
    buf_put(&b, "<label>Start <input type=\"datetime-local\" name=\"start\" required></label>"
                "<label>End <input type=\"datetime-local\" name=\"end\" required></label>");
    form_end(&b, "Assign");

    form_begin(rq, &b, "move", "Move a booking");
    buf_put(&b, "<label>Booking number <input type=\"number\" name=\"booking\" min=\"1\" required></label>"
                "<label>New start <input type=\"datetime-local\" name=\"start\" required></label>"
                "<label>New end <input type=\"datetime-local\" name=\"end\" required></label>");
    form_end(&b, "Move");

    form_begin(rq, &b, "member", "Add a member");
    buf_put(&b, "<label>Name <input name=\"name\" required maxlength=\"95\"></label>"
                "<label>E-mail <input type=\"email\" name=\"email\" maxlength=\"127\"></label>"
                "<label>Plan (optional) <input name=\"plan\" maxlength=\"31\"></label>"
                "<label>Web account name (optional: creates a one-time password link) "
                "<input name=\"account\" maxlength=\"32\" pattern=\"[A-Za-z0-9._@-]+\" "
                "autocapitalize=\"none\"></label>");
    form_end(&b, "Add member");

    form_begin(rq, &b, "enroll", "Enroll a card");
    member_select(rq, &b, "member");
    buf_put(&b, "<label>Reader <select name=\"reader\" required>");
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &b);
    buf_put(&b, "</select></label><p class=\"hint\">After you press the button, tap the card on "
                "that reader within 30 seconds.</p>");
    form_end(&b, "Wait for the card");

    form_begin(rq, &b, "provision", "Make a card a DESFire card");
    member_select(rq, &b, "member");
    buf_put(&b, "<label>Reader <select name=\"reader\" required>");
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &b);
    buf_put(&b, "</select></label><label>Card's master key, if not the factory's (optional: "
                "aes:HEX32, 2k3des:HEX32 or des:HEX16) <input type=\"password\" name=\"picc_key\" "
                "autocomplete=\"off\" maxlength=\"64\"></label><p class=\"hint\">Place the card on "
                "that reader, press the button and hold the card there until the page answers "
                "(a few seconds). Its keys become its own, diversified from the site's master "
                "key: a copy of its number opens nothing. If the card was taken away too soon, "
                "do it again: it picks up where it stopped.</p>");
    form_end(&b, "Provision the card");

    form_begin(rq, &b, "deprovision", "Take a DESFire card back");
    buf_put(&b, "<label>Reader <select name=\"reader\" required>");
    json_array_foreach(json_object_get(status, "readers"), i, o)
        name_option(json_string_value(json_object_get(o, "name")), &b);
    buf_put(&b, "</select></label><p class=\"hint\">Removes Portier's applications from the "
                "card placed on the reader, and the card from its member.</p>");
    form_end(&b, "Remove");

    form_begin(rq, &b, "training", "Grant a training");
    member_select(rq, &b, "member");
    buf_put(&b, "<label>Training <select name=\"training\" required>");
    http_store_ok(rq, store_trainings_foreach(h->env.svc->store, now_utc(), training_option, &b));
    buf_put(&b, "</select></label><label>Valid until (optional) <input type=\"date\" name=\"expires\"></label>");
    form_end(&b, "Grant");

    form_begin(rq, &b, "out-of-order", "Out of order");
    resource_select(rq, &b, "machine", "Machine");
    buf_put(&b, "<fieldset><legend>State</legend><label><input type=\"radio\" name=\"on\" value=\"true\" "
                "checked> Out of order (power cut now)</label><label><input type=\"radio\" name=\"on\" "
                "value=\"false\"> Back in order</label></fieldset><label>Reason "
                "<input name=\"reason\" maxlength=\"127\"></label>");
    form_end(&b, "Set");

    form_begin(rq, &b, "unlock", "Unlock a door");
    resource_select(rq, &b, "door", "Door");
    buf_put(&b, "<label>Seconds <input type=\"number\" name=\"seconds\" min=\"1\" max=\"86400\" "
                "value=\"10\" required></label>");
    form_end(&b, "Unlock");

    form_begin(rq, &b, "invite", "One-time password link");
    buf_put(&b, "<label>Account name <input name=\"name\" required maxlength=\"32\" "
                "autocapitalize=\"none\"></label>");
    form_end(&b, "Create link");
    buf_put(&b, "</div>");

    buf_put(&b, "<h2>Doors</h2><ul class=\"list\">");
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        buf_put(&b, "<li>");
        buf_html(&b, json_string_value(json_object_get(o, "name")));
        buf_put(&b, ": ");
        buf_html(&b, json_string_value(json_object_get(o, "state")));
        buf_put(&b, ", contact ");
        buf_html(&b, json_string_value(json_object_get(o, "contact")));
        buf_put(&b, "</li>");
    }
    buf_put(&b, "</ul><h2>Recent taps</h2><div class=\"table\"><table><thead><tr>"
                "<th scope=\"col\">When</th><th scope=\"col\">Door</th><th scope=\"col\">Member</th>"
                "<th scope=\"col\">Outcome</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(status, "recent_taps"), i, o) {
        char when[32];
        bool granted = json_is_true(json_object_get(o, "granted"));

        fmt_local(json_integer_value(json_object_get(o, "at")), "%a %d %b %H:%M:%S", when,
                  sizeof(when));
        buf_printf(&b, "<tr><td>%s</td><td>", when);
        buf_html(&b, json_string_value(json_object_get(o, "door")));
        buf_put(&b, "</td><td>");
        buf_html(&b, json_string_value(json_object_get(o, "member")) ?
                     json_string_value(json_object_get(o, "member")) : "unknown card");
        buf_put(&b, granted ? "</td><td>granted" : "</td><td>refused: ");
        if (!granted) {
            buf_html(&b, json_string_value(json_object_get(o, "text")));
            buf_put(&b, " (<code>");
            buf_html(&b, json_string_value(json_object_get(o, "reason")));
            buf_put(&b, "</code>)");
        }
        buf_put(&b, "</td></tr>");
    }
    buf_put(&b, "</tbody></table></div><h2>Cards that still open by their number</h2>"
                "<p class=\"hint\">A card's number can be copied; a DESFire card's key cannot. "
                "Provision these members' cards, then set <code>card_security = desfire</code>.</p>"
                "<div class=\"table\"><table><thead><tr><th scope=\"col\">Member</th>"
                "<th scope=\"col\">Card</th><th scope=\"col\">Label</th><th scope=\"col\">Last used</th>"
                "</tr></thead><tbody>");
    http_store_ok(rq, store_uid_only_cards_foreach(h->env.svc->store, uid_only_row, &x));
    buf_put(&b, "</tbody></table></div>");

    buf_put(&b, "<h2>Upcoming bookings</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">#</th>"
                "<th scope=\"col\">Machine</th><th scope=\"col\">When</th><th scope=\"col\">Member</th>"
                "<th scope=\"col\">Cancel</th></tr></thead><tbody>");
    struct store_booking_filter f = { .from = now_utc(), .limit = 100 };
    http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, upcoming_row, &x));
    buf_put(&b, "</tbody></table></div>");
    manage_deliveries(rq, &b, status);
    json_decref(status);
    page_end(rq, &b);
}

/* A manager's form field, converted to what the control command expects. */
enum field_type { F_STR, F_INT, F_BOOL };
struct field_map {
    const char *form, *cmd_key;
    enum field_type type;
    bool required;
};

struct manage_action {
    const char *name, *cmd, *done;
    struct field_map fields[6];
};

static const struct manage_action manage_actions[] = {
    { "assign", "booking.add", "Slot assigned: booking",
      { { "member", "member", F_STR, true }, { "machine", "machine", F_STR, true },
        { "start", "start", F_STR, true }, { "end", "end", F_STR, true } } },
    { "move", "booking.move", "Booking moved: new booking",
      { { "booking", "booking", F_INT, true }, { "start", "start", F_STR, true },
        { "end", "end", F_STR, true } } },
    { "member", "member.add", "Member added: number",
      { { "name", "name", F_STR, true }, { "email", "email", F_STR, false },
        { "plan", "plan", F_STR, false } } },
    { "enroll", "card.enroll", "Card enrolled: card",
      { { "member", "member", F_STR, true }, { "reader", "reader", F_STR, true } } },
    { "provision", "card.provision", "DESFire card ready: card",
      { { "member", "member", F_STR, true }, { "reader", "reader", F_STR, true },
        { "picc_key", "picc_key", F_STR, false } } },
    { "deprovision", "card.deprovision", "Portier's applications removed from the card",
      { { "reader", "reader", F_STR, true } } },
    { "training", "training.grant", "Training granted",
      { { "member", "member", F_STR, true }, { "training", "training", F_STR, true },
        { "expires", "expires", F_STR, false } } },
    { "out-of-order", "machine.out_of_order", "Machine state changed",
      { { "machine", "machine", F_STR, true }, { "on", "on", F_BOOL, true },
        { "reason", "reason", F_STR, false } } },
    { "unlock", "door.unlock", "Door unlocked",
      { { "door", "door", F_STR, true }, { "seconds", "seconds", F_INT, true } } },
    { "invite", "account.invite", "",
      { { "name", "name", F_STR, true } } },
};

static void invite_done(struct http_req *rq, json_t *reply)
{
    char base[160];

    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    http_base_url(rq, base, sizeof(base));
    page_done(rq, "One-time link", "/manage",
              "Give this link to %s (valid 3 days, once): %s%s",
              json_string_value(json_object_get(reply, "name")), base,
              json_string_value(json_object_get(reply, "path")));
}

static void account_added(struct http_req *rq, json_t *reply)
{
    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    http_command(rq, json_pack("{s:s, s:s}", "cmd", "account.invite", "name", rq->note), invite_done);
}

static void manage_done(struct http_req *rq, json_t *reply)
{
    const struct manage_action *a = &manage_actions[rq->note_id];
    char id[32] = "";
    json_t *v;

    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    if (strcmp(a->name, "invite") == 0) {
        invite_done(rq, reply);
        return;
    }
    v = json_object_get(reply, strcmp(a->name, "move") == 0 ? "new_id"
                               : strncmp(a->name, "provision", 9) == 0 ? "card" : "id");
    if (json_is_integer(v))
        snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (strcmp(a->name, "member") == 0 && rq->note[0]) {
        /* Then its web account, and the link to set its password. */
        http_command(rq, json_pack("{s:s, s:s, s:s, s:s}", "cmd", "account.add", "name", rq->note,
                                  "role", "member", "member", id), account_added);
        return;
    }
    page_done(rq, "Done", "/manage", "%s%s%s.", a->done, id[0] ? " " : "", id);
}

static void post_manage(struct http_req *rq, const char *action)
{
    const struct manage_action *a = NULL;
    json_t *req;

    if (!http_require(rq, WEB_STAFF))
        return;
    for (size_t i = 0; i < sizeof(manage_actions) / sizeof(manage_actions[0]); i++)
        if (strcmp(manage_actions[i].name, action) == 0) {
            a = &manage_actions[i];
            rq->note_id = (int64_t)i;
        }
    if (!a) {
        http_error(rq, 404, "not_found", "no such action");
        return;
    }
    req = json_pack("{s:s}", "cmd", a->cmd);
    for (const struct field_map *f = a->fields; f->form; f++) {
        const char *v = http_arg(rq, f->form);
        int64_t n;
        if (!v || !*v) {
            if (f->required) {
                json_decref(req);
                http_error(rq, 400, "bad_request", "fill in \"%s\"", f->form);
                return;
            }
            continue;
        }
        if (f->type == F_INT) {
            if (parse_int64(v, 0, INT64_MAX / 2, &n) < 0) {
                json_decref(req);
                http_error(rq, 400, "bad_request", "\"%s\" must be a whole number", f->form);
                return;
            }
            json_object_set_new(req, f->cmd_key, json_integer(n));
        } else if (f->type == F_BOOL) {
            json_object_set_new(req, f->cmd_key, json_boolean(strcmp(v, "true") == 0));
        } else {
            json_object_set_new(req, f->cmd_key, json_string(v));
        }
    }
    if (strcmp(a->name, "move") == 0)
        json_object_set_new(req, "override", json_true());
    /* The page waits for the card: within a connection's idle timeout. */
    if (strcmp(a->name, "provision") == 0 || strcmp(a->name, "deprovision") == 0)
        json_object_set_new(req, "timeout", json_integer(20));
    if (strcmp(a->name, "member") == 0) {
        const char *account = http_arg(rq, "account");
        snprintf(rq->note, sizeof(rq->note), "%s", account && strlen(account) <= 32 ? account : "");
    }
    http_command(rq, req, manage_done);
}

/* ---- usage and the ledger: managers and the custodian ---- */

static void usage_render(struct http_req *rq, json_t *reply)
{
    json_t *st = json_object_get(reply, "statement"), *m;
    struct buf b = { 0 };
    size_t i;

    if (!reply_ok(reply)) {
        reply_refused(rq, reply);
        return;
    }
    if (strcmp(rq->note, "csv") == 0) {
        static const char *const cols[] = { "period", "member_id", "member", "days",
                                            "presence_minutes", "machine_minutes", "amount",
                                            "currency" };
        struct csv c;
        size_t len = 0;
        char *text;

        csv_init(&c, CSV_RFC4180);
        csv_row(&c, cols, ARRAY_SIZE(cols));
        json_array_foreach(json_object_get(st, "members"), i, m) {
            json_t *t = json_object_get(m, "totals");
            csv_text(&c, json_string_value(json_object_get(st, "period")));
            csv_int(&c, json_integer_value(json_object_get(m, "member_id")));
            csv_text(&c, json_string_value(json_object_get(m, "member")));
            csv_int(&c, json_integer_value(json_object_get(t, "days")));
            csv_int(&c, json_integer_value(json_object_get(t, "presence_minutes")));
            csv_int(&c, json_integer_value(json_object_get(t, "machine_minutes")));
            csv_cents(&c, json_integer_value(json_object_get(t, "amount_cents")));
            csv_text(&c, "EUR");
            csv_end_row(&c);
        }
        text = csv_take(&c, &len);
        if (!text) {
            http_error(rq, 500, "internal", "out of memory");
            return;
        }
        buf_putn(&b, text, len);
        free(text);
        http_reply(rq, 200, "text/csv; charset=utf-8", &b);
        if (rq->response) {
            char cd[96];
            snprintf(cd, sizeof(cd), "attachment; filename=\"usage-%s.csv\"",
                     json_string_value(json_object_get(st, "period")));
            MHD_add_response_header(rq->response, "Content-Disposition", cd);
        }
        return;
    }
    const char *period = json_string_value(json_object_get(st, "period"));
    json_t *tot = json_object_get(st, "totals");
    json_int_t cents = json_integer_value(json_object_get(tot, "amount_cents"));
    page_begin(rq, &b, "Usage");
    buf_put(&b, "<h1>Usage</h1><form method=\"get\" action=\"/usage\" class=\"inline\"><label>Month "
                "<input type=\"month\" name=\"period\" value=\"");
    buf_html(&b, period);
    buf_put(&b, "\"></label> <button type=\"submit\">Show</button></form> <a href=\"/usage.csv?period=");
    buf_html(&b, period);
    char amount[32];
    buf_printf(&b, "\" download>Download CSV</a><p>%" JSON_INTEGER_FORMAT " records, total %s EUR.</p>",
               json_integer_value(json_object_get(tot, "records")),
               format_cents(cents, '.', amount, sizeof(amount)));
    buf_put(&b, "<div class=\"table\"><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Member</th>"
                "<th scope=\"col\">Days</th><th scope=\"col\">Presence (min)</th><th scope=\"col\">"
                "Machines (min)</th><th scope=\"col\">Amount (EUR)</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(st, "members"), i, m) {
        json_t *t = json_object_get(m, "totals");
        json_int_t c = json_integer_value(json_object_get(t, "amount_cents"));
        buf_printf(&b, "<tr><td>%" JSON_INTEGER_FORMAT "</td><td>",
                   json_integer_value(json_object_get(m, "member_id")));
        buf_html(&b, json_string_value(json_object_get(m, "member")));
        buf_printf(&b, "</td><td>%" JSON_INTEGER_FORMAT "</td><td>%" JSON_INTEGER_FORMAT "</td><td>%"
                   JSON_INTEGER_FORMAT "</td><td>%s</td></tr>",
                   json_integer_value(json_object_get(t, "days")),
                   json_integer_value(json_object_get(t, "presence_minutes")),
                   json_integer_value(json_object_get(t, "machine_minutes")),
                   format_cents(c, '.', amount, sizeof(amount)));
    }
    buf_put(&b, "</tbody></table></div>");
    page_end(rq, &b);
}

static void page_usage(struct http_req *rq, bool csv)
{
    const char *period = http_query(rq, "period");
    char now_period[8];

    if (!http_require(rq, WEB_READERS))
        return;
    if (!period || !*period) {
        fmt_local(now_utc(), "%Y-%m", now_period, sizeof(now_period));
        period = now_period;
    }
    if (strlen(period) != 7) {
        http_error(rq, 400, "bad_request", "period must be YYYY-MM");
        return;
    }
    snprintf(rq->note, sizeof(rq->note), "%s", csv ? "csv" : "html");
    http_command(rq, json_pack("{s:s, s:s}", "cmd", "statement", "period", period), usage_render);
}

static void ledger_periods(struct http_req *rq, json_t *reply)
{
    struct buf b = { 0 };
    json_t *p;
    size_t i;

    page_begin(rq, &b, "Ledger");
    buf_put(&b, "<h1>Ledger</h1><p role=\"status\" id=\"ledger-state\" class=\"");
    buf_put(&b, rq->note_id ? "ok\">" : "error\">");
    buf_html(&b, rq->note);
    buf_put(&b, "</p><h2>Closed periods</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">"
                "Period</th><th scope=\"col\">Closed</th><th scope=\"col\">Last entry</th>"
                "<th scope=\"col\">Archive</th></tr></thead><tbody>");
    json_array_foreach(json_object_get(reply, "periods"), i, p) {
        char closed[32];
        fmt_local(json_integer_value(json_object_get(p, "closed_at")), "%Y-%m-%d %H:%M", closed,
                  sizeof(closed));
        buf_put(&b, "<tr><td>");
        buf_html(&b, json_string_value(json_object_get(p, "period")));
        buf_printf(&b, "</td><td>%s</td><td>%" JSON_INTEGER_FORMAT "</td><td>", closed,
                   json_integer_value(json_object_get(p, "last_seq")));
        for (const char *const *ext = (const char *const[]){ "", ".sig", ".sha256", NULL }; *ext;
             ext++) {
            buf_put(&b, "<a download href=\"/ledger/archive/");
            buf_html(&b, json_string_value(json_object_get(p, "period")));
            buf_put(&b, *ext);
            buf_put(&b, "\">");
            buf_put(&b, **ext ? *ext + 1 : "archive");
            buf_put(&b, "</a> ");
        }
        buf_put(&b, "</td></tr>");
    }
    buf_put(&b, "</tbody></table></div>");
    page_end(rq, &b);
}

static void ledger_verified(struct http_req *rq, json_t *reply)
{
    if (reply_ok(reply) && json_is_true(json_object_get(reply, "intact"))) {
        snprintf(rq->note, sizeof(rq->note), "Verified: %" JSON_INTEGER_FORMAT " entries, chain and "
                 "signatures intact.", json_integer_value(json_object_get(reply, "entries")));
        rq->note_id = 1;
    } else if (reply_ok(reply)) {
        snprintf(rq->note, sizeof(rq->note), "BROKEN at entry %" JSON_INTEGER_FORMAT ": %s",
                 json_integer_value(json_object_get(reply, "first_broken_seq")),
                 json_string_value(json_object_get(reply, "problem")) ?: "unknown problem");
        rq->note_id = 0;
    } else {
        snprintf(rq->note, sizeof(rq->note), "Verification failed: %s",
                 json_string_value(json_object_get(reply, "error")) ?: "unknown error");
        rq->note_id = 0;
    }
    http_command(rq, json_pack("{s:s}", "cmd", "period.list"), ledger_periods);
}

/* GET /ledger/archive/PERIOD[.sig|.sha256]: the sealed archive of a closed period, as
 * period.list names it (the path comes from the controller, never from the request). */
static void archive_send(struct http_req *rq, json_t *reply)
{
    const char *want = rq->note, *ext = strchr(rq->note, '.');
    size_t plen = ext ? (size_t)(ext - want) : strlen(want);
    json_t *p;
    size_t i;

    json_array_foreach(json_object_get(reply, "periods"), i, p) {
        const char *period = json_string_value(json_object_get(p, "period"));
        const char *archive = json_string_value(json_object_get(p, "archive"));
        char path[PATH_MAX];
        struct buf b = { 0 };
        FILE *f;

        if (!period || !archive || strlen(period) != plen || strncmp(period, want, plen) != 0)
            continue;
        snprintf(path, sizeof(path), "%s%s", archive, ext ? ext : "");
        f = fopen(path, "re");
        if (!f) {
            http_error(rq, 404, "not_found", "the archive of %s is not on this controller", period);
            return;
        }
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (64u << 20))
            buf_putn(&b, chunk, n);
        fclose(f);
        const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
        http_reply(rq, 200, ext ? "text/plain; charset=utf-8" : "application/octet-stream", &b);
        if (rq->response) {
            char cd[PATH_MAX + 32];
            snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", name);
            MHD_add_response_header(rq->response, "Content-Disposition", cd);
        }
        return;
    }
    http_error(rq, 404, "not_found", "no closed period '%.16s'", want);
}

static void page_archive(struct http_req *rq, const char *what)
{
    if (!http_require(rq, WEB_READERS))
        return;
    if (strlen(what) > 16 || (strlen(what) != 7 && strcmp(what + (strlen(what) > 7 ? 7 : 0), ".sig") != 0 &&
                              strcmp(what + (strlen(what) > 7 ? 7 : 0), ".sha256") != 0)) {
        http_error(rq, 404, "not_found", "archives are /ledger/archive/YYYY-MM[.sig|.sha256]");
        return;
    }
    snprintf(rq->note, sizeof(rq->note), "%s", what);
    http_command(rq, json_pack("{s:s}", "cmd", "period.list"), archive_send);
}

static void page_ledger(struct http_req *rq)
{
    if (!http_require(rq, WEB_READERS))
        return;
    http_command(rq, json_pack("{s:s}", "cmd", "ledger.verify"), ledger_verified);
}

/* ---- the layout, for the other page files (http_internal.h) ---- */

void web_page_begin(struct http_req *rq, struct buf *b, const char *title)
{
    page_begin(rq, b, title);
}

void web_page_end(struct http_req *rq, struct buf *b)
{
    page_end(rq, b);
}

void web_csrf_field(struct http_req *rq, struct buf *b)
{
    csrf_field(rq, b);
}

void web_reply_refused(struct http_req *rq, json_t *reply)
{
    reply_refused(rq, reply);
}

/* ---- routing ---- */

bool web_pages_route(struct http_req *rq, const char *path)
{
    if (rq->is_post) {
        int64_t id;
        char *end;
        if (strcmp(path, "/bookings") == 0) {
            post_booking(rq);
        } else if (strncmp(path, "/bookings/", 10) == 0 && (id = strtoll(path + 10, &end, 10)) > 0 &&
                   strcmp(end, "/cancel") == 0) {
            post_cancel(rq, id);
        } else if (strcmp(path, "/me/calendar") == 0) {
            post_calendar(rq);
        } else if (strncmp(path, "/manage/", 8) == 0) {
            post_manage(rq, path + 8);
        } else {
            return false;
        }
        return true;
    }
    if (strcmp(path, "/") == 0)
        page_home(rq);
    else if (strcmp(path, "/bookings") == 0)
        page_week(rq);
    else if (strncmp(path, "/machines/", 10) == 0 && path[10])
        page_machine(rq, path + 10);
    else if (strcmp(path, "/login") == 0)
        page_login(rq, NULL);
    else if (strncmp(path, "/welcome/", 9) == 0)
        page_welcome(rq, path + 9);
    else if (strcmp(path, "/me") == 0)
        page_me(rq);
    else if (strcmp(path, "/manage") == 0)
        page_manage(rq);
    else if (strcmp(path, "/usage") == 0)
        page_usage(rq, false);
    else if (strcmp(path, "/usage.csv") == 0)
        page_usage(rq, true);
    else if (strcmp(path, "/ledger") == 0)
        page_ledger(rq);
    else if (strncmp(path, "/ledger/archive/", 16) == 0)
        page_archive(rq, path + 16);
    else
        return false;
    return true;
}

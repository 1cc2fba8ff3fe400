/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_public: what anyone sees — the home page (open or closed, people in, machines and
 * today's booked times, and a signed-in member's next bookings) and the week's overview of
 * every machine. Names only for managers and one's own bookings. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "util.h"

#define WEEK_BOOKINGS_MAX 200000
#define NEXT_BOOKINGS 3

/* ---- home ---- */

struct today_ctx {
    struct buf *b;
    unsigned n;
};

static int today_append(const struct store_booking *bk, void *userdata)
{
    struct today_ctx *x = userdata;
    char a[8], e[8];

    i18n_time(LANG_EN, bk->start, I18N_TIME, a, sizeof(a));
    i18n_time(LANG_EN, bk->end, I18N_TIME, e, sizeof(e));
    buf_printf(x->b, "%s<time>%s</time>–<time>%s</time>", x->n++ ? ", " : "", a, e);
    return 0;
}

struct next_ctx {
    struct http_req *rq;
    struct buf *b;
    unsigned n;
};

static int next_append(const struct store_booking *bk, void *userdata)
{
    struct next_ctx *x = userdata;
    char a[48], e[8];

    web_time(x->rq, bk->start, I18N_WEEKDAY_SHORT, a, sizeof(a));
    buf_put(x->b, "<li><a href=\"/machines/");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "\">");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "</a> <span class=\"when\">");
    buf_html(x->b, a);
    buf_put(x->b, " ");
    buf_html(x->b, web_time(x->rq, bk->start, I18N_TIME, a, sizeof(a)));
    buf_put(x->b, "–");
    buf_html(x->b, web_time(x->rq, bk->end, I18N_TIME, e, sizeof(e)));
    buf_put(x->b, "</span></li>");
    x->n++;
    return 0;
}

/* A member's next bookings, first thing on the home page. */
static void next_bookings(struct http_req *rq, struct buf *b)
{
    struct next_ctx x = { rq, b, 0 };
    struct store_booking_filter f = { .member_id = rq->account.member_id, .from = now_utc(),
                                      .limit = NEXT_BOOKINGS };

    buf_printf(b, "<section class=\"next\" aria-labelledby=\"next-h\"><h2 id=\"next-h\">%s</h2>"
                  "<ul class=\"strip\">", L(rq, "My next bookings"));
    http_store_ok(rq, store_bookings_foreach(rq->h->env.svc->store, &f, next_append, &x));
    if (!x.n)
        buf_printf(b, "<li>%s</li>", L(rq, "None yet: choose a machine below to book it."));
    buf_printf(b, "</ul><p><a href=\"/me\">%s</a></p></section>", L(rq, "All my bookings"));
}

void page_home(struct http_req *rq, const char *rest)
{
    struct http *h = rq->h;
    json_t *status = h->env.svc->status(h->env.svc);
    struct web_machines *ml = web_machines_load(rq);
    int64_t today = web_midnight(now_utc(), 0);
    json_int_t present = json_integer_value(json_object_get(status, "present"));
    bool open = web_site_open(status);
    struct buf b = { 0 };

    web_page_begin(rq, &b, L(rq, "Home"));
    buf_put(&b, "<h1>");
    buf_html(&b, h->cfg->site.name);
    buf_printf(&b, "</h1><p class=\"state %s\" id=\"open-state\"><strong>%s</strong> · "
               "<span id=\"present\">%lld</span> %s</p>", open ? "open" : "closed",
               open ? L(rq, "Open") : L(rq, "Closed"), (long long)present,
               LN(rq, "person in", "people in", present));
    if (web_is_member(rq) && rq->account.member_id)
        next_bookings(rq, &b);
    buf_printf(&b, "<h2>%s</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">%s</th>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th></tr></thead><tbody>",
               L(rq, "Machines"), L(rq, "Machine"), L(rq, "State"), L(rq, "Booked today"));
    for (unsigned k = 0; ml && k < ml->n; k++) {
        const struct store_resource *m = &ml->m[k];
        struct store_booking_filter f = { .resource_id = m->id, .from = today,
                                          .to = web_midnight(today, 1), .limit = 200 };
        struct today_ctx x = { &b, 0 };
        const char *state = web_machine_state(m, status);

        buf_put(&b, "<tr><th scope=\"row\"><a href=\"/machines/");
        buf_html(&b, m->name);
        buf_put(&b, "\">");
        buf_html(&b, m->name);
        buf_printf(&b, "</a></th><td class=\"m-%s\">%s", state[0] == 'f' ? "free"
                   : state[0] == 'i' ? "busy" : "ooo", web_machine_state_text(rq, state));
        if (m->out_of_order && m->out_of_order_reason[0]) {
            buf_put(&b, " (");
            buf_html(&b, m->out_of_order_reason);
            buf_put(&b, ")");
        }
        buf_put(&b, "</td><td>");
        http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, today_append, &x));
        if (!x.n)
            buf_html(&b, L(rq, "none"));
        buf_put(&b, "</td></tr>");
    }
    if (!ml || !ml->n)
        buf_printf(&b, "<tr><td colspan=\"3\">%s</td></tr>", L(rq, "No machines yet."));
    buf_printf(&b, "</tbody></table></div><p>%s ", L(rq, "Calendar feeds (no names):"));
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
    web_page_end(rq, &b, 200);
}

/* ---- the week overview: every machine, every day, the booked times ----
 *
 * A busy site's week is long to read (10,000 bookings: about 11 ms): it is read
 * WEEK_STEP_ROWS bookings per step (http_steps()), a door's tap waiting behind one step at
 * most, and built once for every viewer as a template. */

#define WEEK_STEP_ROWS 400
/* A booking or machine changed while the week was read: read it again, from the start, so
 * that the page shows one moment; at most this many times (a site changing faster than
 * that gets a page read over a few moments, not kept as the template). */
#define WEEK_RESTARTS_MAX 3

struct week_ctx {
    struct http_req *rq;
    struct web_machines *ml;
    int64_t monday, expires_at;
    int64_t days[8];                /* midnights: [0] Monday ... [7] next Monday */
    int64_t after_start, after_id;  /* the last booking read */
    size_t read;                    /* bookings read */
    bool read_all;
    uint64_t gen;                   /* store_generation() when the reading began */
    unsigned restarts;
    struct buf cell[CONFIG_MAX_MACHINES * 4][7];
};

/* A booking's member, for whom may see it (a place of the week's template). */
static void private_name(struct http_req *rq, struct buf *b, const char *name, int64_t member_id)
{
    if (web_may_see_name(rq, member_id)) {
        buf_put(b, " ");
        buf_html(b, name);
    }
}

static int week_append(const struct store_booking *bk, void *userdata)
{
    struct week_ctx *x = userdata;
    unsigned k;
    char a[8], e[8];

    x->after_start = bk->start;
    x->after_id = bk->id;
    x->read++;
    for (k = 0; k < x->ml->n && x->ml->m[k].id != bk->resource_id; k++)
        ;
    if (k == x->ml->n)
        return 0;
    i18n_time(LANG_EN, bk->start, I18N_TIME, a, sizeof(a));
    i18n_time(LANG_EN, bk->end, I18N_TIME, e, sizeof(e));
    for (int d = 0; d < 7; d++) {
        if (bk->start >= x->days[d + 1] || bk->end <= x->days[d])
            continue;
        struct buf *c = &x->cell[k][d];
        /* Pieces, not buf_printf(): a busy week writes this ten thousand times. */
        buf_put(c, "<li>");
        buf_put(c, a);
        buf_put(c, "–");
        buf_put(c, e);
        http_place(x->rq, c, private_name, bk->member, bk->member_id);
        buf_put(c, "</li>");
    }
    return 0;
}

/* Monday 00:00 of the week holding t. */
static int64_t week_start(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    return web_midnight(t, -((tm.tm_wday + 6) % 7));
}

static void week_nav(struct http_req *rq, struct buf *b, int64_t monday)
{
    char prev[11], next[11], label[48], text[96];

    web_date_text(web_midnight(monday, -7), prev);
    web_date_text(web_midnight(monday, 7), next);
    web_time(rq, monday, I18N_DATE, label, sizeof(label));
    buf_printf(b, "<nav class=\"weeknav\" aria-label=\"%s\"><a href=\"/bookings?week=%s\" "
               "rel=\"prev\">← %s</a> <span>", L(rq, "Weeks"), prev, L(rq, "Previous week"));
    buf_html(b, web_format(text, sizeof(text), L(rq, "Week of %s"), label));
    buf_printf(b, "</span> <a href=\"/bookings?week=%s\" rel=\"next\">%s →</a></nav>", next,
               L(rq, "Next week"));
}

static void week_cells_free(struct week_ctx *x)
{
    for (size_t k = 0; k < CONFIG_MAX_MACHINES * 4; k++)
        for (int d = 0; d < 7; d++)
            buf_free(&x->cell[k][d]);
}

static void week_free(void *ctx)
{
    struct week_ctx *x = ctx;

    if (!x)
        return;
    week_cells_free(x);
    free(x->ml);
    free(x);
}

/* From the first booking of the week, with the machines as they are now. */
static bool week_begin(struct week_ctx *x)
{
    struct http_req *rq = x->rq;

    week_cells_free(x);
    free(x->ml);
    x->ml = web_machines_load(rq);
    x->after_start = INT64_MIN;
    x->after_id = 0;
    x->read = 0;
    x->read_all = false;
    x->gen = store_generation(rq->h->env.svc->store);
    http_template_cancel(rq);           /* the places of the reading before */
    http_template_begin(rq, x->expires_at);
    return x->ml != NULL;
}

/* The page, once every booking is in its cell. */
static void week_page(struct http_req *rq, struct week_ctx *x)
{
    struct buf b = { 0 };

    web_page_begin(rq, &b, L(rq, "Bookings"));
    buf_printf(&b, "<h1>%s</h1>", L(rq, "Bookings"));
    week_nav(rq, &b, x->monday);
    buf_printf(&b, "<div class=\"table\"><table class=\"week\"><thead><tr><th scope=\"col\">%s</th>",
               L(rq, "Machine"));
    for (int d = 0; d < 7; d++) {
        char label[24];
        buf_printf(&b, "<th scope=\"col\">%s</th>",
                   web_time(rq, x->days[d], I18N_WEEKDAY_SHORT, label, sizeof(label)));
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
    web_page_end(rq, &b, 200);
}

/* One step: the next WEEK_STEP_ROWS bookings, and the page once they are all read. true
 * while there is more to do. */
static bool week_step(struct http_req *rq, void *ctx)
{
    struct week_ctx *x = ctx;
    struct store *store = rq->h->env.svc->store;

    if (store_generation(store) != x->gen && x->restarts < WEEK_RESTARTS_MAX) {
        x->restarts++;
        if (!week_begin(x)) {
            http_template_cancel(rq);
            http_error(rq, 500, "internal", "out of memory");
            return false;
        }
    }
    size_t before = x->read;
    struct store_booking_filter f = { .from = x->days[0], .to = x->days[7],
                                      .limit = WEEK_STEP_ROWS, .after = true,
                                      .after_start = x->after_start, .after_id = x->after_id };
    if (http_store_ok(rq, store_bookings_foreach(store, &f, week_append, x)) < 0 ||
        x->read - before < WEEK_STEP_ROWS || x->read >= WEEK_BOOKINGS_MAX)
        x->read_all = true;
    if (!x->read_all)
        return true;
    week_page(rq, x);
    return false;
}

void page_week(struct http_req *rq, const char *rest)
{
    const char *w = http_query(rq, "week");
    int64_t t;
    bool asked = w && web_parse_local(w, true, &t) == 0;
    struct week_ctx *x;

    /* The week is built once for everyone (per address and language, until a booking or a
     * machine changes, or, for "this week", until the next one begins); each view fills in
     * its header and the names its viewer may see. A view while it is built waits for it. */
    if (http_template_reply(rq))
        return;
    x = calloc(1, sizeof(*x));
    if (!x) {
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    x->rq = rq;
    x->monday = asked ? week_start(t) : week_start(now_utc());
    x->expires_at = asked ? 0 : web_midnight(x->monday, 7);
    for (int d = 0; d <= 7; d++)
        x->days[d] = web_midnight(x->monday, d);
    if (!week_begin(x)) {
        http_template_cancel(rq);
        week_free(x);
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    /* A week of a few hundred bookings is built at once; a longer one in steps. */
    if (week_step(rq, x))
        http_steps(rq, week_step, week_free, x);
    else
        week_free(x);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_booking: a machine's page — its free and booked times over a rolling window that
 * starts today (one day on a phone, seven on a wider screen: the same page, CSS shows the
 * first column only on narrow screens), only the hours the machine can be booked (its
 * opening hours, and the signed-in member's plan hours), booked times as blocks with their
 * length, and a booking form that takes a start and one of the lengths the rules allow there.
 * The controller's planner (planner.h) says what may be booked, with exactly the rules the
 * booking command applies; the command stays the judge. Works without JavaScript: every
 * choice is a link or a form; app.js fetches the same pages without reloading. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fablab.h"
#include "http_internal.h"
#include "planner.h"
#include "schedule.h"
#include "util.h"

#define DAYS 7
#define ROWS_MAX 288                /* 5-minute slots over a day */
#define LENGTHS_MAX 96              /* lengths offered at one start */

/* What the page shows besides the grid. */
struct machine_view {
    int64_t first_day;              /* local midnight of the first day shown */
    int64_t start;                  /* a chosen start: the booking form; 0: none */
    const char *error;              /* a refusal to show (translated) */
    int64_t booked_id, cancelled_id;
    unsigned status;
};

enum cell_kind { CELL_FREE, CELL_BOOKED, CELL_CLOSED, CELL_PAST };

struct cell {
    uint8_t kind;
    uint16_t span;                  /* rows the cell covers (0: covered by the one above) */
    int32_t booking;                /* CELL_BOOKED: index into the planner's bookings */
};

struct grid {
    int slot;                       /* minutes */
    int n_rows;
    int minutes[ROWS_MAX];          /* each visible row's minute of the day */
    int64_t days[DAYS + 1];
    bool plain[DAYS];               /* a day of 24 hours: no daylight-saving change in it */
    struct cell cells[DAYS][ROWS_MAX];
};

/* The slot of day d at minute of the wall clock (mktime only on a day with a DST change). */
static int64_t slot_at(const struct grid *g, int d, int minute)
{
    return g->plain[d] ? g->days[d] + (int64_t)minute * 60 : web_local_at(g->days[d], minute);
}

static void day_link(struct buf *b, const char *machine, int64_t day, const char *extra)
{
    char d[11];

    web_date_text(day, d);
    buf_put(b, "/machines/");
    buf_html(b, machine);
    buf_printf(b, "?day=%s%s", d, extra);
}

/* The same page's address with other query arguments: short, for the many slot links. */
static void here_link(struct buf *b, int64_t day)
{
    char d[11];

    web_date_text(day, d);
    buf_printf(b, "?day=%s", d);
}

static bool open_at(const struct fablab_planner *p, int64_t t)
{
    struct local_time lt;
    const struct schedule *plan = fablab_planner_plan_hours(p);

    local_time_at(t, &lt);
    return schedule_contains(fablab_planner_hours(p), &lt) && (!plan || schedule_contains(plan, &lt));
}

/* The rows: every slot of the day that is open on one of the days shown, or holds a
 * booking; then each day's cells, runs of the same booking, closed or past time merged. */
static void grid_build(struct grid *g, const struct fablab_planner *p, int64_t now)
{
    size_t nb;
    const struct fablab_planner_booking *bk = fablab_planner_bookings(p, &nb);

    g->n_rows = 0;
    for (int minute = 0; minute < 1440 && g->n_rows < ROWS_MAX; minute += g->slot) {
        bool show = false;
        for (int d = 0; d < DAYS && !show; d++) {
            int64_t s0 = slot_at(g, d, minute), e0 = s0 + g->slot * 60;
            show = open_at(p, s0);
            for (size_t i = 0; i < nb && !show; i++)
                show = bk[i].start < e0 && bk[i].end > s0;
        }
        if (show)
            g->minutes[g->n_rows++] = minute;
    }
    for (int d = 0; d < DAYS; d++) {
        for (int r = 0; r < g->n_rows; r++) {
            int64_t s0 = slot_at(g, d, g->minutes[r]), e0 = s0 + g->slot * 60;
            struct cell *c = &g->cells[d][r];
            c->booking = -1;
            c->kind = CELL_FREE;
            for (size_t i = 0; i < nb; i++)
                if (bk[i].start < e0 && bk[i].end > s0) {
                    c->kind = CELL_BOOKED;
                    c->booking = (int32_t)i;
                    break;
                }
            if (c->kind == CELL_FREE && !open_at(p, s0))
                c->kind = CELL_CLOSED;
            else if (c->kind == CELL_FREE && e0 <= now)
                c->kind = CELL_PAST;
            c->span = 1;
            if (r > 0 && c->kind != CELL_FREE) {
                /* Merge with the run above (find its head). */
                int h = r - 1;
                while (h > 0 && g->cells[d][h].span == 0)
                    h--;
                struct cell *head = &g->cells[d][h];
                if (head->kind == c->kind && head->booking == c->booking) {
                    head->span++;
                    c->span = 0;
                }
            }
        }
    }
}

static void booking_block(struct http_req *rq, struct buf *b, const char *machine,
                          const struct fablab_planner_booking *bk, int64_t now, int64_t first_day)
{
    char a[16], e[16], len[32], back[96];
    bool named = web_may_see_name(rq, bk->member_id);
    bool own = web_is_member(rq) && bk->member_id == rq->account.member_id;

    buf_printf(b, "<span class=\"bk-time\">%s–%s</span> <span class=\"bk-len\">%s</span>",
               web_time(rq, bk->start, I18N_TIME, a, sizeof(a)),
               web_time(rq, bk->end, I18N_TIME, e, sizeof(e)),
               web_duration(rq, (bk->end - bk->start) / 60, len, sizeof(len)));
    buf_put(b, "<span class=\"bk-who\">");
    if (own)
        buf_html(b, L(rq, "Yours"));
    else if (named)
        buf_html(b, bk->member);
    else
        buf_html(b, L(rq, "Booked"));
    buf_put(b, "</span>");
    if (named && bk->end > now) {
        char d[11];
        web_date_text(first_day, d);
        snprintf(back, sizeof(back), "/machines/%s?day=%s", machine, d);
        web_cancel_form(rq, b, bk->id, back);
    }
}

static void free_cell(struct http_req *rq, struct buf *b, const struct fablab_planner *p,
                      const char *machine, int64_t s0, int d, const struct machine_view *v,
                      bool can_book)
{
    char when[64], at[16], label[128], start[17];

    web_datetime_text(s0, start);
    if (can_book) {
        int64_t len = fablab_planner_shortest(p);
        struct booking_verdict verdict = fablab_planner_check(p, s0, s0 + len * 60);
        if (verdict.error == BOOKING_OK) {
            bool chosen = v->start == s0;
            web_time(rq, s0, I18N_WEEKDAY_SHORT, when, sizeof(when));
            web_time(rq, s0, I18N_TIME, at, sizeof(at));
            buf_printf(b, "<td class=\"free%s d%d\"><a class=\"slot\" data-pjax href=\"",
                       chosen ? " chosen" : "", d);
            here_link(b, v->first_day);
            buf_printf(b, "&amp;start=%s#book\"%s aria-label=\"", start,
                       chosen ? " aria-current=\"true\"" : "");
            buf_html(b, web_format(label, sizeof(label), L(rq, "Book %s %s"), when, at));
            buf_printf(b, "\">%s</a></td>", L(rq, "Book"));
        } else {
            buf_printf(b, "<td class=\"na d%d\"><span aria-hidden=\"true\" title=\"", d);
            buf_html(b, verdict.message);      /* names no member: hide_names */
            buf_put(b, "\">–</span><span class=\"sr\">");
            buf_html(b, verdict.message);
            buf_put(b, "</span></td>");
        }
        return;
    }
    if (rq->role == ROLE_MANAGER && s0 > now_utc()) {
        buf_printf(b, "<td class=\"free d%d\"><a href=\"/manage/bookings?machine=", d);
        buf_html(b, machine);
        buf_printf(b, "&amp;start=%s#assign\">%s</a></td>", start, L(rq, "Assign"));
        return;
    }
    buf_printf(b, "<td class=\"free d%d\">%s</td>", d, L(rq, "Free"));
}

/* The booking form for the chosen start: the lengths the rules allow there. */
static void book_panel(struct http_req *rq, struct buf *b, const struct fablab_planner *p,
                       const char *machine, const struct machine_view *v)
{
    int64_t lengths[LENGTHS_MAX];
    size_t n = fablab_planner_lengths(p, v->start, lengths, LENGTHS_MAX);
    char when[64], at[16], text[160], start[17], zone[16];

    web_datetime_text(v->start, start);
    buf_put(b, "<section id=\"book\" class=\"panel\" aria-labelledby=\"book-h\" tabindex=\"-1\">"
               "<h2 id=\"book-h\">");
    buf_html(b, web_format(text, sizeof(text), L(rq, "Book %s"), machine));
    buf_put(b, "</h2><p>");
    web_time(rq, v->start, I18N_DATE_LONG, when, sizeof(when));
    web_time(rq, v->start, I18N_TIME, at, sizeof(at));
    buf_html(b, web_format(text, sizeof(text), L(rq, "From %s at %s %s"), when, at,
                           web_zone(v->start, zone, sizeof(zone))));
    buf_put(b, "</p>");
    if (v->error)
        web_notice(b, false, v->error);
    if (!n) {
        struct booking_verdict why = fablab_planner_check(p, v->start,
                                                          v->start + fablab_planner_shortest(p) * 60);
        if (!v->error)
            web_notice(b, false, why.error == BOOKING_OK ? L(rq, "This time cannot be booked.")
                                                         : why.message);
    } else {
        buf_put(b, "<form method=\"post\" action=\"/bookings\" class=\"stack\" data-pjax>");
        web_csrf_field(rq, b);
        buf_put(b, "<input type=\"hidden\" name=\"machine\" value=\"");
        buf_html(b, machine);
        buf_printf(b, "\"><input type=\"hidden\" name=\"start\" value=\"%s\"><label>%s "
                   "<select name=\"minutes\" id=\"book-minutes\">", start, L(rq, "How long"));
        for (size_t i = 0; i < n; i++) {
            char len[32], until[16], label[96], value[24];
            web_duration(rq, lengths[i], len, sizeof(len));
            web_time(rq, v->start + lengths[i] * 60, I18N_TIME, until, sizeof(until));
            web_format(label, sizeof(label), L(rq, "%s (until %s)"), len, until);
            snprintf(value, sizeof(value), "%" PRId64, lengths[i]);
            web_option(b, value, label, i == 0);
        }
        buf_printf(b, "</select></label><div class=\"actions\"><button type=\"submit\">%s</button> ",
                   L(rq, "Book"));
        buf_put(b, "<a data-pjax href=\"");
        day_link(b, machine, v->first_day, "");
        buf_printf(b, "\">%s</a></div></form>", L(rq, "Choose another time"));
        buf_put(b, "</section>");
        return;
    }
    buf_put(b, "<p><a data-pjax href=\"");
    day_link(b, machine, v->first_day, "");
    buf_printf(b, "\">%s</a></p></section>", L(rq, "Choose another time"));
}

/* A notice about a booking the visitor may see (their own, or any for a manager). */
static void booking_notice(struct http_req *rq, struct buf *b, int64_t id, bool cancelled)
{
    struct store_booking bk;
    char day[64], a[16], e[16], zone[16], text[320];

    if (!id || store_booking_get(rq->h->env.svc->store, id, &bk) < 0 ||
        !web_may_see_name(rq, bk.member_id))
        return;
    web_time(rq, bk.start, I18N_DATE_LONG, day, sizeof(day));
    web_time(rq, bk.start, I18N_TIME, a, sizeof(a));
    web_time(rq, bk.end, I18N_TIME, e, sizeof(e));
    web_zone(bk.start, zone, sizeof(zone));
    if (cancelled)
        web_format(text, sizeof(text), L(rq, "Cancelled: %s, %s, %s–%s %s."), bk.resource, day,
                   a, e, zone);
    else
        web_format(text, sizeof(text), L(rq, "Booked: %s, %s, %s–%s %s. It is on your page and "
                                             "in your calendar feed."), bk.resource, day, a, e,
                   zone);
    web_notice(b, true, text);
}

static void day_nav(struct http_req *rq, struct buf *b, const char *machine, int64_t first)
{
    int64_t today = web_midnight(now_utc(), 0);
    char a[64], e[64], text[160], d[11];

    buf_printf(b, "<nav class=\"daynav\" aria-label=\"%s\">", L(rq, "Days"));
    buf_put(b, "<a class=\"narrow\" data-pjax rel=\"prev\" href=\"");
    day_link(b, machine, web_midnight(first, -1), "");
    buf_printf(b, "\">← %s</a><a class=\"wide\" data-pjax href=\"", L(rq, "Previous day"));
    day_link(b, machine, web_midnight(first, -DAYS), "");
    buf_printf(b, "\">← %s</a>", L(rq, "Previous week"));
    if (first != today) {
        buf_put(b, "<a data-pjax href=\"");
        day_link(b, machine, today, "");
        buf_printf(b, "\">%s</a>", L(rq, "Today"));
    }
    web_time(rq, first, I18N_DATE_LONG, a, sizeof(a));
    web_time(rq, web_midnight(first, DAYS - 1), I18N_DATE_LONG, e, sizeof(e));
    buf_put(b, "<span class=\"narrow\">");
    buf_html(b, a);
    buf_put(b, "</span><span class=\"wide\">");
    buf_html(b, web_format(text, sizeof(text), L(rq, "%s to %s"), a, e));
    buf_put(b, "</span><a class=\"narrow\" data-pjax rel=\"next\" href=\"");
    day_link(b, machine, web_midnight(first, 1), "");
    buf_printf(b, "\">%s →</a><a class=\"wide\" data-pjax href=\"", L(rq, "Next day"));
    day_link(b, machine, web_midnight(first, DAYS), "");
    buf_printf(b, "\">%s →</a></nav>", L(rq, "Next week"));
    /* Any day, from a date field (the browser's date picker). */
    web_date_text(first, d);
    buf_put(b, "<form method=\"get\" class=\"inline goto\" action=\"/machines/");
    buf_html(b, machine);
    buf_printf(b, "\" data-pjax><label>%s <input type=\"date\" name=\"day\" value=\"%s\" required>"
               "</label> <button type=\"submit\" class=\"secondary\">%s</button></form>",
               L(rq, "Go to"), d, L(rq, "Show"));
}

static void render_machine(struct http_req *rq, const struct store_resource *m,
                           const struct machine_view *v)
{
    struct http *h = rq->h;
    int64_t now = now_utc();
    bool can_book = web_is_member(rq) && rq->account.member_id;
    struct fablab_planner_args args = { .member_id = can_book ? rq->account.member_id : 0,
                                        .now = now, .hide_names = true, .lang = rq->lang };
    struct fablab_planner *p = NULL;
    struct grid *g = calloc(1, sizeof(*g));
    struct buf b = { 0 };
    char text[256], num[32];
    int r;

    if (!g) {
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    for (int d = 0; d <= DAYS; d++)
        g->days[d] = web_midnight(v->first_day, d);
    for (int d = 0; d < DAYS; d++)
        g->plain[d] = g->days[d + 1] - g->days[d] == 86400;
    g->slot = m->slot_minutes >= 5 && m->slot_minutes <= 1440 ? (int)m->slot_minutes : 30;
    if (1440 / g->slot > ROWS_MAX)
        g->slot = 1440 / ROWS_MAX;
    args.from = g->days[0];
    args.to = g->days[DAYS];
    r = fablab_planner_new(h->env.svc->store, m, &args, &p);
    if (r < 0) {
        free(g);
        http_store_ok(rq, r);
        http_error(rq, 500, "store", "the bookings could not be read");
        return;
    }
    grid_build(g, p, now);

    web_page_begin(rq, &b, m->name);
    buf_put(&b, "<h1>");
    buf_html(&b, m->name);
    buf_put(&b, "</h1>");
    booking_notice(rq, &b, v->booked_id, false);
    booking_notice(rq, &b, v->cancelled_id, true);
    if (v->error && !v->start)
        web_notice(&b, false, v->error);
    if (m->out_of_order)
        web_notice(&b, false, m->out_of_order_reason[0]
                                  ? web_format(text, sizeof(text), L(rq, "Out of order: %s."),
                                               m->out_of_order_reason)
                                  : L(rq, "Out of order."));
    buf_put(&b, "<p class=\"rules\">");
    buf_html(&b, web_format(text, sizeof(text), L(rq, "Slots of %s"),
                            web_duration(rq, g->slot, num, sizeof(num))));
    if (m->training[0]) {
        buf_put(&b, " · ");
        buf_html(&b, web_format(text, sizeof(text), L(rq, "training required: %s"), m->training));
    }
    if (!fablab_planner_hours_unreadable(p) && m->hours[0] && strcmp(m->hours, "always") != 0) {
        buf_put(&b, " · ");
        buf_html(&b, web_format(text, sizeof(text), L(rq, "open %s"), m->hours));
    }
    buf_put(&b, "</p>");
    if (fablab_planner_hours_unreadable(p))
        web_notice(&b, false, L(rq, "Closed: its opening hours cannot be read. A manager can set "
                                    "them again."));
    if (!rq->account.id)
        buf_printf(&b, "<p><a href=\"/login\">%s</a></p>", L(rq, "Log in to book."));
    if (can_book && v->start)
        book_panel(rq, &b, p, m->name, v);
    day_nav(rq, &b, m->name, v->first_day);

    if (!g->n_rows) {
        web_notice(&b, true, L(rq, "No bookable time on these days."));
    } else {
        size_t nb;
        const struct fablab_planner_booking *bk = fablab_planner_bookings(p, &nb);
        char zone[16];
        buf_put(&b, "<div class=\"table\"><table class=\"grid\"><caption>");
        buf_html(&b, web_format(text, sizeof(text), L(rq, "%s: free and booked times (%s)"),
                                m->name, web_zone(g->days[0], zone, sizeof(zone))));
        buf_printf(&b, "</caption><thead><tr><th scope=\"col\">%s</th>", L(rq, "Time"));
        for (int d = 0; d < DAYS; d++) {
            char label[48];
            buf_printf(&b, "<th scope=\"col\" class=\"d%d\">%s</th>", d,
                       web_time(rq, g->days[d], I18N_WEEKDAY_SHORT, label, sizeof(label)));
        }
        buf_put(&b, "</tr></thead><tbody>");
        for (int row = 0; row < g->n_rows; row++) {
            buf_printf(&b, "<tr><th scope=\"row\">%02d:%02d</th>", g->minutes[row] / 60,
                       g->minutes[row] % 60);
            for (int d = 0; d < DAYS; d++) {
                const struct cell *c = &g->cells[d][row];
                int64_t s0 = slot_at(g, d, g->minutes[row]);
                if (!c->span)
                    continue;
                char span[24] = "";
                if (c->span > 1)
                    snprintf(span, sizeof(span), " rowspan=\"%u\"", c->span);
                switch (c->kind) {
                case CELL_BOOKED: {
                    const struct fablab_planner_booking *x = &bk[c->booking];
                    bool mine = web_may_see_name(rq, x->member_id);
                    buf_printf(&b, "<td class=\"busy%s d%d\"%s>", mine ? " mine" : "", d, span);
                    booking_block(rq, &b, m->name, x, now, v->first_day);
                    buf_put(&b, "</td>");
                    break;
                }
                case CELL_CLOSED:
                    buf_printf(&b, "<td class=\"closed d%d\"%s>%s</td>", d, span, L(rq, "Closed"));
                    break;
                case CELL_PAST:
                    buf_printf(&b, "<td class=\"past d%d\"%s></td>", d, span);
                    break;
                default:
                    free_cell(rq, &b, p, m->name, s0, d, v, can_book);
                    break;
                }
            }
            buf_put(&b, "</tr>");
        }
        buf_put(&b, "</tbody></table></div>");
    }
    fablab_planner_free(p);
    free(g);
    web_page_end(rq, &b, v->status ? v->status : 200);
}

static int find_machine(struct http_req *rq, const char *name, struct store_resource *m)
{
    if (strlen(name) > 31 || store_resource_get(rq->h->env.svc->store, name, m) < 0 ||
        strcmp(m->kind, "machine") != 0) {
        http_error(rq, 404, "not_found", "no machine '%.32s'", name);
        return -ENOENT;
    }
    return 0;
}

/* GET /machines/NAME?day=YYYY-MM-DD[&start=YYYY-MM-DDTHH:MM][&booked=ID][&cancelled=ID]
 * (?week= of the former week grid is read as its first day). */
void page_machine(struct http_req *rq, const char *name)
{
    struct machine_view v = { 0 };
    struct store_resource m;
    const char *day = http_query(rq, "day"), *start = http_query(rq, "start");
    const char *booked = http_query(rq, "booked"), *cancelled = http_query(rq, "cancelled");
    int64_t t;

    if (find_machine(rq, name, &m) < 0)
        return;
    if (!day)
        day = http_query(rq, "week");
    if (start && web_parse_local(start, false, &t) == 0)
        v.start = t;
    /* From the day asked for; else the chosen start's day; else today. */
    v.first_day = day && web_parse_local(day, true, &t) == 0 ? web_midnight(t, 0)
                  : v.start ? web_midnight(v.start, 0) : web_midnight(now_utc(), 0);
    if (booked)
        (void)parse_int64(booked, 1, INT64_MAX, &v.booked_id);
    if (cancelled)
        (void)parse_int64(cancelled, 1, INT64_MAX, &v.cancelled_id);
    render_machine(rq, &m, &v);
}

/* POST /bookings: a member books for themselves (machine, start, and minutes or end). */
static void booked(struct http_req *rq, json_t *reply)
{
    struct store_resource m;
    char location[160], d[11];
    const char *machine = http_arg(rq, "machine");

    if (web_reply_ok(reply)) {
        web_date_text(rq->note_id, d);
        snprintf(location, sizeof(location), "/machines/%s?day=%s&booked=%" JSON_INTEGER_FORMAT,
                 machine, d, json_integer_value(json_object_get(reply, "id")));
        http_redirect(rq, location);
        return;
    }
    /* Refused: the machine's page again, the chosen start and why. */
    const char *code = json_string_value(json_object_get(reply, "code"));
    struct machine_view v = { .first_day = web_midnight(rq->note_id, 0), .start = rq->note_id,
                              .error = json_string_value(json_object_get(reply, "error")),
                              .status = http_status_of(code ? code : "internal") };
    if (store_resource_get(rq->h->env.svc->store, machine, &m) < 0) {
        web_reply_refused(rq, reply);
        return;
    }
    render_machine(rq, &m, &v);
}

void post_booking(struct http_req *rq, const char *rest)
{
    const char *machine = http_arg(rq, "machine"), *start = http_arg(rq, "start");
    const char *end = http_arg(rq, "end"), *minutes = http_arg(rq, "minutes");
    int64_t t0, t1, mins;
    json_t *req;

    if (!http_require(rq, WEB_MEMBERS))
        return;
    if (!rq->account.member_id) {
        http_error(rq, 403, "forbidden", "managers assign slots from the Manage page");
        return;
    }
    if (!machine || !start || strlen(machine) > 31 || parse_time(start, &t0) < 0) {
        http_error(rq, 400, "bad_request", "choose a machine and a start time");
        return;
    }
    if (minutes) {
        if (parse_int64(minutes, 1, BOOKING_MAX_MINUTES, &mins) < 0) {
            http_error(rq, 400, "bad_request", "choose how long, in minutes");
            return;
        }
        t1 = t0 + mins * 60;
    } else if (!end || parse_time(end, &t1) < 0) {
        http_error(rq, 400, "bad_request", "give an end time or a number of minutes");
        return;
    }
    rq->note_id = t0;
    req = json_pack("{s:s, s:s, s:I, s:I, s:I}", "cmd", "booking.add", "machine", machine,
                    "member", (json_int_t)rq->account.member_id, "start", (json_int_t)t0,
                    "end", (json_int_t)t1);
    http_command(rq, req, booked);
}

/* POST /bookings/ID/cancel [back=PATH]: the owner, or a manager (past the deadline, as a
 * recorded override). Back to where it came from, which says it is cancelled. */
static void cancelled(struct http_req *rq, json_t *reply)
{
    const char *back = web_local_path(http_arg(rq, "back"));
    char location[300];

    if (!web_reply_ok(reply)) {
        web_reply_refused(rq, reply);
        return;
    }
    if (!back)
        back = rq->role == ROLE_MANAGER ? "/manage/bookings" : "/me";
    snprintf(location, sizeof(location), "%s%scancelled=%" JSON_INTEGER_FORMAT, back,
             strchr(back, '?') ? "&" : "?", json_integer_value(json_object_get(reply, "id")));
    http_redirect(rq, location);
}

void post_booking_change(struct http_req *rq, const char *rest)
{
    int64_t id;
    char *end;

    id = strtoll(rest, &end, 10);
    if (id <= 0 || strcmp(end, "/cancel") != 0) {
        http_error(rq, 404, "not_found", "nothing here");
        return;
    }
    if (!http_require(rq, WEB_MEMBERS))
        return;
    /* The command says whether this account may cancel it (members: their own, before the
     * deadline; a manager's cancellation after it is recorded as an override). */
    http_command(rq, json_pack("{s:s, s:I, s:b}", "cmd", "booking.cancel", "booking",
                               (json_int_t)id, "override", rq->role == ROLE_MANAGER), cancelled);
}

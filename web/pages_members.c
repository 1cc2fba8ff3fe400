/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_members: members for managers — the list (/manage/members: search by name, e-mail
 * or card label, filters, a page at a time for sites with thousands of members) and a
 * member's page (plan, validity, cards, trainings, bookings, usage this month, history)
 * with every action of the member commands — and the exports of personal data: a
 * manager's for any member, a member's own from /me ("Download my data").
 *
 * Reads go through the store's read API, but for the list, which reads every member (a
 * search, a count, a sort) and so asks member.list, whose job process reads it off the
 * event loop; every change is a command (http_command()), so it gets the controller's role
 * checks, rules and messages, and the answer waits until it is on disk. Times are on the
 * site's clock, with the zone. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "meter.h"
#include "util.h"

#define PAGE_ROWS 50
#define HISTORY_ROWS 50
#define EXPIRING_SECONDS (30 * 86400)

/* ---- words and times ---- */

static const char *state_label(struct http_req *rq, enum store_member_state state)
{
    switch (state) {
    case MEMBER_STATE_ACTIVE: return L(rq, "active");
    case MEMBER_STATE_NOT_YET_VALID: return L(rq, "not yet valid");
    case MEMBER_STATE_EXPIRED: return L(rq, "expired");
    case MEMBER_STATE_SUSPENDED: return L(rq, "suspended");
    case MEMBER_STATE_REMOVED: return L(rq, "removed");
    case MEMBER_STATE_ERASED: return L(rq, "erased");
    }
    return "?";
}

static void state_badge(struct http_req *rq, struct buf *b, enum store_member_state state)
{
    buf_printf(b, "<span class=\"badge s-%s\">%s</span>", store_member_state_name(state),
               state_label(rq, state));
}

static const char *when(struct http_req *rq, int64_t t, char *buf, size_t n)
{
    if (!t)
        return "—";
    return i18n_time(rq->lang, t, I18N_DATETIME_ZONE, buf, n);
}

/* The end of a validity (exclusive): a local midnight reads as the end of the day before,
 * as a date given alone means ("1 Jan 2026 24:00 CET"). */
static const char *until_text(struct http_req *rq, int64_t t, char *buf, size_t n)
{
    char day[48];
    struct tm tm;
    time_t tt = (time_t)t;

    if (!t)
        return L(rq, "no end");
    localtime_r(&tt, &tm);
    if (tm.tm_hour || tm.tm_min || tm.tm_sec)
        return when(rq, t, buf, n);
    tt -= 1;
    localtime_r(&tt, &tm);
    i18n_time(rq->lang, t - 1, I18N_DATE, day, sizeof(day));
    snprintf(buf, n, "%s 24:00 %s", day, tm.tm_zone ? tm.tm_zone : "");
    return buf;
}

/* The date an input of type date shows for a bound (the day a validity ends on). */
static void date_value(int64_t t, bool until, char buf[16])
{
    struct tm tm;
    time_t tt = (time_t)(until ? t - 1 : t);

    buf[0] = '\0';
    if (!t)
        return;
    localtime_r(&tt, &tm);
    strftime(buf, 16, "%Y-%m-%d", &tm);
}

/* A history value: times are kept in UTC text; shown on the site's clock. */
static const char *change_value(struct http_req *rq, const char *field, const char *v,
                                char *buf, size_t n)
{
    struct tm tm = { 0 };
    char z = 0;

    if (!*v)
        return "—";
    if ((strncmp(field, "valid_", 6) != 0 && strcmp(field, "next_plan_at") != 0) ||
        sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &z) != 7 || z != 'Z')
        return v;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    if (strcmp(field, "valid_until") == 0)
        return until_text(rq, (int64_t)timegm(&tm), buf, n);
    return when(rq, (int64_t)timegm(&tm), buf, n);
}

static const char *field_label(struct http_req *rq, const char *field)
{
    static const char *const fields[][2] = {
        { "member", N_("record") }, { "name", N_("name") }, { "email", N_("e-mail") },
        { "note", N_("note") }, { "plan", N_("plan") }, { "next_plan", N_("next plan") },
        { "next_plan_at", N_("next plan from") }, { "valid_from", N_("valid from") },
        { "valid_until", N_("valid until") }, { "status", N_("status") }, { "card", N_("card") },
    };
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
        if (strcmp(field, fields[i][0]) == 0)
            return i18n_t(rq->lang, fields[i][1]);
    return field;
}

/* Query-string text: letters, digits and -._~ as they are, the rest %XX. */
static void buf_urlenc(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            buf_putn(b, s, 1);
        else
            buf_printf(b, "%%%02X", c);
    }
}

static bool reply_ok(json_t *reply)
{
    return json_is_true(json_object_get(reply, "ok"));
}

/* ---- the list ---- */

static const char *const filters[][2] = {
    { "all", N_("All") }, { "active", N_("Active") }, { "suspended", N_("Suspended") },
    { "expired", N_("Expired") }, { "expiring", N_("Expiring within 30 days") },
    { "removed", N_("Removed") }, { "erased", N_("Erased") },
};

/* A row of the list, from member.list's answer (members_json()). */
static void list_row(struct http_req *rq, struct buf *b, json_t *m)
{
    const char *status = json_string_value(json_object_get(m, "status")) ?: "";
    const char *plan = json_string_value(json_object_get(m, "plan"));
    json_int_t id = json_integer_value(json_object_get(m, "id"));
    enum store_member_state state = MEMBER_STATE_ACTIVE;
    char until[64];

    for (int st = MEMBER_STATE_ACTIVE; st <= MEMBER_STATE_ERASED; st++)
        if (strcmp(status, store_member_state_name((enum store_member_state)st)) == 0)
            state = (enum store_member_state)st;
    buf_printf(b, "<tr><th scope=\"row\"><a href=\"/manage/members/%" JSON_INTEGER_FORMAT "\">",
               id);
    buf_html(b, json_string_value(json_object_get(m, "name")) ?: "");
    buf_printf(b, "</a> <span class=\"hint\">#%" JSON_INTEGER_FORMAT "</span></th><td>", id);
    buf_html(b, plan && *plan ? plan : "—");
    buf_put(b, "</td><td>");
    state_badge(rq, b, state);
    buf_printf(b, "</td><td>%s</td><td class=\"wide\">%" JSON_INTEGER_FORMAT "</td><td class=\"wide\">",
               until_text(rq, json_integer_value(json_object_get(m, "valid_until")), until,
                          sizeof(until)),
               json_integer_value(json_object_get(m, "cards")));
    buf_html(b, json_string_value(json_object_get(m, "email")) ?: "");
    buf_put(b, "</td></tr>");
}

static int plan_option(const struct store_plan *p, void *userdata)
{
    struct buf *b = userdata;
    buf_put(b, "<option>");
    buf_html(b, p->name);
    buf_put(b, "</option>");
    return 0;
}

/* The list's search, filter and page, between the request and member.list's answer. */
#define LIST_PAGE(rq) ((rq)->note_id >> 4)
#define LIST_FILTER(rq) ((size_t)((rq)->note_id & 15))

static void list_render(struct http_req *rq, json_t *reply);

/* Searching, counting and sorting a site's members reads every one of them (a fifth of a
 * second at 100,000): member.list has a job process do it, and the page is rendered from
 * its answer, off the doors' way. */
static void page_list(struct http_req *rq)
{
    const char *q = http_query(rq, "q"), *filter = http_query(rq, "filter"), *page = http_query(rq, "page");
    int64_t n_page = 1;
    size_t f = 0;

    if (!http_require(rq, WEB_STAFF))
        return;
    if (q && strlen(q) > 95) {
        http_error(rq, 400, "bad_request", "%s", L(rq, "the search may have at most 95 characters"));
        return;
    }
    for (size_t i = 0; filter && i < ARRAY_SIZE(filters); i++)
        if (strcmp(filter, filters[i][0]) == 0)
            f = i;
    if (page && parse_int64(page, 1, 1000000, &n_page) < 0)
        n_page = 1;
    snprintf(rq->note, sizeof(rq->note), "%s", q ? q : "");
    rq->note_id = n_page << 4 | (int64_t)f;
    http_command(rq, json_pack("{s:s, s:s, s:s, s:I, s:I}", "cmd", "member.list", "query",
                               rq->note, "filter", filters[f][0], "offset",
                               (json_int_t)((n_page - 1) * PAGE_ROWS), "limit",
                               (json_int_t)PAGE_ROWS),
                 list_render);
}

static void list_render(struct http_req *rq, json_t *reply)
{
    struct store *store = rq->h->env.svc->store;
    const char *q = rq->note;
    int64_t n_page = LIST_PAGE(rq), total, pages;
    size_t f = LIST_FILTER(rq), i;
    json_t *members = json_object_get(reply, "members"), *m;
    struct buf b = { 0 };

    if (!reply_ok(reply) || !json_is_array(members)) {
        web_reply_refused(rq, reply);
        return;
    }
    total = json_integer_value(json_object_get(reply, "total"));
    web_page_begin(rq, &b, L(rq, "Members"));
    buf_printf(&b, "<h1>%s</h1>", L(rq, "Members"));
    web_manage_nav(rq, &b, "members");        /* the managers' tasks (pages_manage.c) */
    buf_printf(&b, "<form method=\"get\" action=\"/manage/members\" class=\"search\" "
               "role=\"search\"><label>%s <input type=\"search\" name=\"q\" maxlength=\"95\" "
               "value=\"", L(rq, "Name, e-mail or card label"));
    buf_html(&b, q);
    buf_printf(&b, "\"></label><label>%s <select name=\"filter\">", L(rq, "Show"));
    for (i = 0; i < ARRAY_SIZE(filters); i++)
        buf_printf(&b, "<option value=\"%s\"%s>%s</option>", filters[i][0],
                   i == f ? " selected" : "", i18n_t(rq->lang, filters[i][1]));
    buf_printf(&b, "</select></label><button type=\"submit\">%s</button></form>", L(rq, "Search"));

    buf_printf(&b, "<div class=\"table\"><table id=\"members\"><thead><tr><th scope=\"col\">%s</th>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
               "<th scope=\"col\" class=\"wide\">%s</th><th scope=\"col\" class=\"wide\">%s</th>"
               "</tr></thead><tbody>", L(rq, "Name"), L(rq, "Plan"), L(rq, "Status"),
               L(rq, "Valid until"), L(rq, "Cards"), L(rq, "E-mail"));
    json_array_foreach(members, i, m)
        list_row(rq, &b, m);
    if (total == 0)
        buf_printf(&b, "<tr><td colspan=\"6\">%s</td></tr>", L(rq, "No member matches."));
    buf_put(&b, "</tbody></table></div>");

    pages = total ? (total + PAGE_ROWS - 1) / PAGE_ROWS : 1;
    buf_printf(&b, "<nav class=\"pager\" aria-label=\"%s\"><span id=\"member-count\">%" PRId64
               " %s</span>", L(rq, "Pages"), total,
               i18n_nt(rq->lang, "member", "members", total));
    for (int dir = -1; dir <= 1; dir += 2) {
        int64_t to = n_page + dir;
        if (dir > 0)
            buf_printf(&b, " <span class=\"hint\">%s %" PRId64 " / %" PRId64 "</span>",
                       L(rq, "page"), n_page, pages);
        if (to < 1 || to > pages)
            continue;
        buf_printf(&b, " <a rel=\"%s\" href=\"/manage/members?page=%" PRId64 "&amp;filter=%s&amp;q=",
                   dir < 0 ? "prev" : "next", to, filters[f][0]);
        buf_urlenc(&b, q);
        buf_printf(&b, "\">%s</a>", dir < 0 ? L(rq, "Previous") : L(rq, "Next"));
    }
    buf_put(&b, "</nav>");

    buf_printf(&b, "<section><h2>%s</h2><form method=\"post\" action=\"/manage/members/add\" "
               "class=\"stack\">", L(rq, "Add a member"));
    web_csrf_field(rq, &b);
    buf_printf(&b, "<label>%s <input name=\"name\" required maxlength=\"95\"></label>"
               "<label>%s <input type=\"email\" name=\"email\" maxlength=\"127\"></label>"
               "<label>%s <select name=\"plan\"><option value=\"\">%s</option>",
               L(rq, "Name"), L(rq, "E-mail"), L(rq, "Plan"), L(rq, "no plan"));
    http_store_ok(rq, store_plans_foreach(store, plan_option, &b));
    buf_printf(&b, "</select></label><label>%s <input type=\"date\" name=\"valid_until\"></label>"
               "<p class=\"hint\">%s</p><button type=\"submit\">%s</button></form></section>",
               L(rq, "Valid until (optional)"),
               L(rq, "A date alone means the end of that day."), L(rq, "Add member"));
    web_page_end(rq, &b, 200);
}

/* ---- plans: zones, hours, billing settings and rates ---- */

struct plans_ctx {
    struct http_req *rq;
    struct buf *b;
    const char *plan;
    unsigned n;
};

static int rate_row(const char *plan, const struct store_rate *r, void *userdata)
{
    struct plans_ctx *x = userdata;
    char ph[32], mc[32];

    if (strcmp(plan, x->plan) != 0)
        return 0;
    i18n_money(x->rq->lang, r->per_hour_cents, ph, sizeof(ph));
    i18n_money(x->rq->lang, r->min_charge_cents, mc, sizeof(mc));
    buf_put(x->b, "<tr><td>");
    buf_html(x->b, r->target);
    buf_printf(x->b, "</td><td>%s</td><td>%" PRId64 " min</td><td>%" PRId64 " min</td><td>%s</td>"
               "<td>%" PRId64 " min</td></tr>", ph, r->block_minutes, r->free_minutes, mc,
               r->monthly_minutes);
    x->n++;
    return 0;
}

static int plan_section(const struct store_plan *p, void *userdata)
{
    struct plans_ctx *x = userdata;
    struct http_req *rq = x->rq;
    struct buf *b = x->b;
    struct store_member_plan bill;
    char rate[32];
    int r = store_plan_billing_get(rq->h->env.svc->store, p->id, &bill);

    if (r < 0)
        return r;
    i18n_money(rq->lang, bill.day_rate_cents, rate, sizeof(rate));
    buf_put(b, "<section id=\"plan-");
    buf_html(b, p->name);
    buf_put(b, "\"><h2>");
    buf_html(b, p->name);
    buf_printf(b, " <span class=\"hint\">%" PRId64 " %s</span></h2><dl class=\"usage\"><dt>%s</dt>"
               "<dd>", p->members, i18n_nt(rq->lang, "member", "members", p->members),
               L(rq, "Zones"));
    buf_html(b, p->zones);
    buf_printf(b, "</dd><dt>%s</dt><dd>", L(rq, "Hours"));
    buf_html(b, p->hours);
    buf_printf(b, "</dd><dt>%s</dt><dd>%" PRId64 "</dd><dt>%s</dt><dd>%s</dd><dt>%s</dt><dd>",
               L(rq, "Days included a month"), bill.monthly_days, L(rq, "Day rate"), rate,
               L(rq, "Order of use"));
    buf_html(b, bill.allowance_order);
    buf_printf(b, "</dd><dt>%s</dt><dd>%" PRId64 "</dd></dl>",
               L(rq, "Visit days a month at other sites"), bill.visit_days);
    buf_printf(b, "<div class=\"table\"><table><caption>%s</caption><thead><tr>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
               "</tr></thead><tbody>", L(rq, "Machine rates"), L(rq, "Machines"),
               L(rq, "Per hour"), L(rq, "Charged per block of"), L(rq, "Free minutes"),
               L(rq, "Minimum charge"), L(rq, "Included a month"));
    x->plan = p->name;
    x->n = 0;
    r = store_rates_foreach(rq->h->env.svc->store, rate_row, x);
    if (!x->n)
        buf_printf(b, "<tr><td colspan=\"6\">%s</td></tr>", L(rq, "None."));
    buf_put(b, "</tbody></table></div></section>");
    return r < 0 ? r : 0;
}

static void page_plans(struct http_req *rq)
{
    struct buf b = { 0 };
    struct plans_ctx x = { rq, &b, "", 0 };

    if (!http_require(rq, WEB_STAFF))
        return;
    web_page_begin(rq, &b, L(rq, "Plans"));
    buf_printf(&b, "<h1>%s</h1>", L(rq, "Plans"));
    web_manage_nav(rq, &b, "plans");
    http_store_ok(rq, store_plans_foreach(rq->h->env.svc->store, plan_section, &x));
    buf_printf(&b, "<p class=\"hint\">%s</p>", L(rq, "Plans and rates are set with portierctl "
                                                     "(plan add, plan billing, rate set)."));
    web_page_end(rq, &b, 200);
}

/* ---- a member's page ---- */

struct page_ctx {
    struct http_req *rq;
    struct buf *b;
    int64_t member;
    unsigned n;
};

static int card_row(const struct store_card *c, void *userdata)
{
    struct page_ctx *x = userdata;
    struct http_req *rq = x->rq;
    struct buf *b = x->b;
    char added[64];
    static const char *const verbs[] = { "enable", "disable", "remove" };

    buf_printf(b, "<tr><td>%" PRId64 "</td><td>", c->id);
    buf_html(b, c->label[0] ? c->label : "—");
    buf_printf(b, "</td><td>%s</td><td>%s</td><td><code>%.8s</code></td><td>",
               c->enabled ? L(rq, "enabled") : L(rq, "disabled"),
               when(rq, c->created_at, added, sizeof(added)), c->hash_prefix);
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
        if ((i == 0 && c->enabled) || (i == 1 && !c->enabled))
            continue;
        buf_printf(b, "<form method=\"post\" class=\"inline\" action=\"/manage/members/%" PRId64
                   "/cards/%" PRId64 "/%s\"%s%s%s>", x->member, c->id, verbs[i],
                   i == 2 ? " data-confirm=\"" : "", i == 2 ? L(rq, "Remove this card?") : "",
                   i == 2 ? "\"" : "");
        web_csrf_field(rq, b);
        buf_printf(b, "<button type=\"submit\" class=\"secondary\">%s</button></form> ",
                   i == 0 ? L(rq, "Enable") : i == 1 ? L(rq, "Disable") : L(rq, "Remove"));
    }
    buf_put(b, "</td></tr>");
    x->n++;
    return 0;
}

static int qualification_row(const struct store_qualification *q, void *userdata)
{
    struct page_ctx *x = userdata;
    char a[64], e[64];

    buf_put(x->b, "<li>");
    buf_html(x->b, q->training);
    buf_printf(x->b, " — %s %s", L(x->rq, "granted"), when(x->rq, q->granted_at, a, sizeof(a)));
    if (q->revoked_at)
        buf_printf(x->b, ", %s", L(x->rq, "revoked"));
    else if (q->expires_at)
        buf_printf(x->b, ", %s %s", L(x->rq, "until"), when(x->rq, q->expires_at, e, sizeof(e)));
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static int booking_row(const struct store_booking *bk, void *userdata)
{
    struct page_ctx *x = userdata;
    char a[64], e[16];

    i18n_time(x->rq->lang, bk->start, I18N_DATETIME_ZONE, a, sizeof(a));
    i18n_time(x->rq->lang, bk->end, I18N_TIME, e, sizeof(e));
    buf_put(x->b, "<li>");
    buf_html(x->b, bk->resource);
    buf_printf(x->b, " %s → %s</li>", a, e);
    x->n++;
    return 0;
}

static int change_row(const struct store_member_change *c, void *userdata)
{
    struct page_ctx *x = userdata;
    char at[64], o[64], n[64];

    buf_printf(x->b, "<tr><td>%s</td><td>", when(x->rq, c->at, at, sizeof(at)));
    buf_html(x->b, c->by);
    buf_printf(x->b, "</td><td>%s</td><td>", field_label(x->rq, c->field));
    buf_html(x->b, change_value(x->rq, c->field, c->old, o, sizeof(o)));
    buf_put(x->b, " → ");
    buf_html(x->b, change_value(x->rq, c->field, c->new, n, sizeof(n)));
    buf_put(x->b, "</td></tr>");
    return 0;
}

static int plan_choice(const struct store_plan *p, void *userdata)
{
    struct page_ctx *x = userdata;
    buf_put(x->b, "<option");
    if (x->n == (unsigned)p->id)
        buf_put(x->b, " selected");
    buf_put(x->b, ">");
    buf_html(x->b, p->name);
    buf_put(x->b, "</option>");
    return 0;
}

static void action_form(struct http_req *rq, struct buf *b, int64_t id, const char *verb,
                        const char *confirm)
{
    buf_printf(b, "<form method=\"post\" class=\"stack\" action=\"/manage/members/%" PRId64 "/%s\"",
               id, verb);
    if (confirm) {
        buf_put(b, " data-confirm=\"");
        buf_html(b, confirm);
        buf_put(b, "\"");
    }
    buf_put(b, ">");
    web_csrf_field(rq, b);
}

static void facts(struct http_req *rq, struct buf *b, const struct store_member *m)
{
    char t[64];

    buf_printf(b, "<dl class=\"usage\" id=\"member-facts\"><dt>%s</dt><dd>", L(rq, "Plan"));
    if (m->plan[0]) {
        buf_put(b, "<a href=\"/manage/plans#plan-");
        buf_html(b, m->plan);
        buf_put(b, "\">");
        buf_html(b, m->plan);
        buf_put(b, "</a>");
    } else {
        buf_html(b, L(rq, "no plan"));
    }
    buf_put(b, "</dd>");
    if (m->next_plan_id) {
        buf_printf(b, "<dt>%s</dt><dd>", L(rq, "Next plan"));
        buf_html(b, m->next_plan);
        buf_printf(b, " (%s %s)</dd>", L(rq, "from"), when(rq, m->next_plan_at, t, sizeof(t)));
    }
    buf_printf(b, "<dt>%s</dt><dd>%s</dd>", L(rq, "Valid from"),
               m->valid_from ? when(rq, m->valid_from, t, sizeof(t)) : L(rq, "the start"));
    buf_printf(b, "<dt>%s</dt><dd id=\"valid-until\">%s</dd><dt>%s</dt><dd>", L(rq, "Valid until"),
               until_text(rq, m->valid_until, t, sizeof(t)), L(rq, "E-mail"));
    buf_html(b, m->email[0] ? m->email : "—");
    buf_printf(b, "</dd><dt>%s</dt><dd>", L(rq, "Note"));
    buf_html(b, m->note[0] ? m->note : "—");
    buf_printf(b, "</dd><dt>%s</dt><dd>%s</dd></dl>", L(rq, "Member since"),
               when(rq, m->created_at, t, sizeof(t)));
}

static void usage_this_month(struct http_req *rq, struct buf *b, json_t *reply)
{
    json_t *members = json_object_get(json_object_get(reply, "statement"), "members");
    json_t *totals = json_object_get(json_array_get(members, 0), "totals");
    char amount[32];

    buf_printf(b, "<section><h2>%s</h2>", L(rq, "Usage this month"));
    if (!reply_ok(reply)) {
        buf_printf(b, "<p class=\"error\">%s</p></section>", L(rq, "The usage could not be read."));
        return;
    }
    i18n_money(rq->lang, json_integer_value(json_object_get(totals, "amount_cents")), amount,
               sizeof(amount));
    buf_printf(b, "<dl class=\"usage\" id=\"member-usage\"><dt>%s</dt><dd>%" JSON_INTEGER_FORMAT
               "</dd><dt>%s</dt><dd>%" JSON_INTEGER_FORMAT " min</dd><dt>%s</dt><dd>%"
               JSON_INTEGER_FORMAT " min</dd><dt>%s</dt><dd>%s</dd></dl></section>",
               L(rq, "Days"), json_integer_value(json_object_get(totals, "days")),
               L(rq, "Presence"), json_integer_value(json_object_get(totals, "presence_minutes")),
               L(rq, "Machines"), json_integer_value(json_object_get(totals, "machine_minutes")),
               L(rq, "Amount"), amount);
}

static void edit_forms(struct http_req *rq, struct buf *b, const struct store_member *m)
{
    struct page_ctx x = { rq, b, m->id, (unsigned)m->plan_id };
    char from[16], until[16];

    date_value(m->valid_from, false, from);
    date_value(m->valid_until, true, until);
    buf_printf(b, "<div class=\"cards\"><section><h2>%s</h2>", L(rq, "Edit"));
    action_form(rq, b, m->id, "set", NULL);
    /* What the form showed, so that only what was changed is sent. */
    buf_put(b, "<input type=\"hidden\" name=\"orig_name\" value=\"");
    buf_html(b, m->name);
    buf_put(b, "\"><input type=\"hidden\" name=\"orig_email\" value=\"");
    buf_html(b, m->email);
    buf_put(b, "\"><input type=\"hidden\" name=\"orig_note\" value=\"");
    buf_html(b, m->note);
    buf_printf(b, "\"><input type=\"hidden\" name=\"orig_plan\" value=\"");
    buf_html(b, m->plan[0] ? m->plan : "none");
    buf_printf(b, "\"><input type=\"hidden\" name=\"orig_valid_from\" value=\"%s\">"
               "<input type=\"hidden\" name=\"orig_valid_until\" value=\"%s\">", from, until);
    buf_printf(b, "<label>%s <input name=\"name\" required maxlength=\"95\" value=\"", L(rq, "Name"));
    buf_html(b, m->name);
    buf_printf(b, "\"></label><label>%s <input type=\"email\" name=\"email\" maxlength=\"127\" "
               "value=\"", L(rq, "E-mail"));
    buf_html(b, m->email);
    buf_printf(b, "\"></label><label>%s <select name=\"plan\"><option value=\"none\">%s</option>",
               L(rq, "Plan"), L(rq, "no plan"));
    http_store_ok(rq, store_plans_foreach(rq->h->env.svc->store, plan_choice, &x));
    buf_printf(b, "</select></label><label>%s <input type=\"date\" name=\"plan_from\"></label>"
               "<p class=\"hint\">%s</p>", L(rq, "New plan from (optional)"),
               L(rq, "Empty: the plan changes now. A date: from the start of that billing day."));
    buf_printf(b, "<label>%s <input type=\"date\" name=\"valid_from\" value=\"%s\"></label>"
               "<label>%s <input type=\"date\" name=\"valid_until\" value=\"%s\"></label>"
               "<p class=\"hint\">%s</p><label>%s <textarea name=\"note\" maxlength=\"255\" "
               "rows=\"2\">", L(rq, "Valid from"), from, L(rq, "Valid until"), until,
               L(rq, "The membership ends at the end of that day. Empty: no end."), L(rq, "Note"));
    buf_html(b, m->note);
    buf_printf(b, "</textarea></label><button type=\"submit\">%s</button></form></section>",
               L(rq, "Save"));

    buf_printf(b, "<section><h2>%s</h2>", L(rq, "Renew"));
    action_form(rq, b, m->id, "renew", NULL);
    buf_printf(b, "<label>%s <select name=\"for\"><option value=\"\">—</option>"
               "<option value=\"1m\">%s</option><option value=\"3m\">%s</option>"
               "<option value=\"6m\">%s</option><option value=\"1y\" selected>%s</option>"
               "</select></label><label>%s <input type=\"date\" name=\"until\"></label>"
               "<p class=\"hint\">%s</p><button type=\"submit\">%s</button></form></section>",
               L(rq, "For"), L(rq, "1 month"), L(rq, "3 months"), L(rq, "6 months"),
               L(rq, "1 year"), L(rq, "or until"),
               L(rq, "A duration runs from the current end (or from today if it has passed)."),
               L(rq, "Renew"));

    buf_printf(b, "<section><h2>%s</h2>", L(rq, "Access"));
    action_form(rq, b, m->id, m->status == MEMBER_SUSPENDED ? "resume" : "suspend", NULL);
    buf_printf(b, "<button type=\"submit\" class=\"secondary\">%s</button></form>",
               m->status == MEMBER_SUSPENDED ? L(rq, "Resume") : L(rq, "Suspend"));
    action_form(rq, b, m->id, "remove", L(rq, "Remove this member? Their cards stop working."));
    buf_printf(b, "<p class=\"hint\">%s</p><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" "
               "value=\"yes\" required> %s</label><button type=\"submit\" class=\"secondary\">%s"
               "</button></form></section>",
               L(rq, "Removing ends access for good: cards are disabled, future bookings "
                     "cancelled, web accounts disabled. The history is kept."),
               L(rq, "I confirm"), L(rq, "Remove"));

    buf_printf(b, "<section><h2>%s</h2><p><a href=\"/manage/members/%" PRId64 "/export.json\" "
               "download>%s</a></p>", L(rq, "Personal data"), m->id,
               L(rq, "Download everything about this member (JSON)"));
    action_form(rq, b, m->id, "erase", L(rq, "Erase this member's personal data? This cannot be "
                                            "undone."));
    buf_printf(b, "<p class=\"hint\">%s</p><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" "
               "value=\"yes\" required> %s</label><label class=\"check\"><input type=\"checkbox\" name=\"force\" "
               "value=\"yes\"> %s</label><button type=\"submit\" class=\"secondary\">%s</button>"
               "</form></section></div>",
               L(rq, "Erasure (right to erasure): the name, e-mail, note, web accounts, cards and "
                     "calendar address are deleted; billing and the signed ledger keep the "
                     "member's number under a pseudonym."),
               L(rq, "I confirm"), L(rq, "Even with usage in a period not yet closed"),
               L(rq, "Erase"));
}

static void member_render(struct http_req *rq, json_t *reply)
{
    struct services *svc = rq->h->env.svc;
    struct store *store = svc->store;
    int64_t id = rq->note_id, now = now_utc();
    struct store_member m;
    struct buf b = { 0 };
    struct page_ctx x = { rq, &b, id, 0 };
    enum store_member_state state;
    char title[128], t[64];
    json_t *status, *o;
    size_t i;
    int r = store_member_get(store, id, &m);

    if (r == -ENOENT) {
        http_error(rq, 404, "not_found", "%s %" PRId64, L(rq, "no such member:"), id);
        return;
    }
    if (http_store_ok(rq, r) < 0)
        return;
    state = store_member_state(&m, now);
    snprintf(title, sizeof(title), "%s", m.name);
    web_page_begin(rq, &b, title);
    buf_printf(&b, "<p><a href=\"/manage/members\">← %s</a></p><h1>", L(rq, "Members"));
    buf_html(&b, m.name);
    buf_printf(&b, " <span class=\"hint\">#%" PRId64 "</span> ", m.id);
    state_badge(rq, &b, state);
    buf_put(&b, "</h1>");
    if (state == MEMBER_STATE_ERASED) {
        buf_printf(&b, "<p class=\"ok\" id=\"erased\">%s %s. %s</p>", L(rq, "Erased on"),
                   when(rq, m.erased_at, t, sizeof(t)),
                   L(rq, "Only what billing needs is kept, under this pseudonym."));
    } else {
        facts(rq, &b, &m);
        usage_this_month(rq, &b, reply);

        buf_printf(&b, "<section><h2>%s</h2><div class=\"table\"><table id=\"cards\"><thead><tr>"
                   "<th scope=\"col\">#</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                   "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                   "</tr></thead><tbody>", L(rq, "Cards"), L(rq, "Label"), L(rq, "State"),
                   L(rq, "Added"), L(rq, "Hash"), L(rq, "Actions"));
        http_store_ok(rq, store_cards_foreach(store, id, card_row, &x));
        if (!x.n)
            buf_printf(&b, "<tr><td colspan=\"6\">%s</td></tr>", L(rq, "No card."));
        buf_put(&b, "</tbody></table></div>");
        if (state != MEMBER_STATE_REMOVED) {
            status = svc->status(svc);
            action_form(rq, &b, id, "enroll", NULL);
            buf_printf(&b, "<label>%s <select name=\"reader\" required>", L(rq, "Enrol a card at reader"));
            json_array_foreach(json_object_get(status, "readers"), i, o) {
                buf_put(&b, "<option>");
                buf_html(&b, json_string_value(json_object_get(o, "name")));
                buf_put(&b, "</option>");
            }
            buf_printf(&b, "</select></label><label>%s <input name=\"label\" maxlength=\"63\">"
                       "</label><p class=\"hint\">%s</p><button type=\"submit\">%s</button></form>",
                       L(rq, "Label (optional)"),
                       L(rq, "After you press the button, tap the card on that reader within 30 "
                             "seconds."), L(rq, "Wait for the card"));
            json_decref(status);
        }
        buf_put(&b, "</section>");

        buf_printf(&b, "<section><h2>%s</h2><ul class=\"list\" id=\"trainings\">", L(rq, "Trainings"));
        x.n = 0;
        http_store_ok(rq, store_qualifications_foreach(store, id, qualification_row, &x));
        if (!x.n)
            buf_printf(&b, "<li>%s</li>", L(rq, "None."));
        buf_printf(&b, "</ul></section><section><h2>%s</h2><ul class=\"list\" id=\"bookings\">",
                   L(rq, "Upcoming bookings"));
        struct store_booking_filter f = { .member_id = id, .from = now, .limit = 50 };
        x.n = 0;
        http_store_ok(rq, store_bookings_foreach(store, &f, booking_row, &x));
        if (!x.n)
            buf_printf(&b, "<li>%s</li>", L(rq, "None."));
        buf_put(&b, "</ul></section>");
        edit_forms(rq, &b, &m);
    }
    buf_printf(&b, "<section><h2>%s</h2><div class=\"table\"><table id=\"history\"><thead><tr>"
               "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
               "<th scope=\"col\">%s</th></tr></thead><tbody>", L(rq, "History"), L(rq, "When"),
               L(rq, "By"), L(rq, "What"), L(rq, "Before → after"));
    http_store_ok(rq, store_member_changes_foreach(store, id, HISTORY_ROWS, change_row, &x));
    buf_put(&b, "</tbody></table></div></section>");
    web_page_end(rq, &b, 200);
}

static void page_member(struct http_req *rq, int64_t id)
{
    struct services *svc = rq->h->env.svc;
    char day[11], period[8], member[24];

    if (!http_require(rq, WEB_STAFF))
        return;
    rq->note_id = id;
    /* This month's usage comes from a statement job: the page is written when it answers. */
    meter_billing_day(svc->meter, now_utc(), day);
    snprintf(period, sizeof(period), "%.7s", day);
    snprintf(member, sizeof(member), "%" PRId64, id);
    http_command(rq, json_pack("{s:s, s:s, s:s}", "cmd", "statement", "period", period, "member",
                              member), member_render);
}

/* ---- actions ---- */

static void back_to_member(struct http_req *rq, json_t *reply)
{
    char location[64];
    json_int_t id = rq->note_id;

    if (!reply_ok(reply)) {
        web_reply_refused(rq, reply);
        return;
    }
    if (!id)    /* a member just added */
        id = json_integer_value(json_object_get(reply, "id"));
    snprintf(location, sizeof(location), "/manage/members/%" JSON_INTEGER_FORMAT, id);
    http_redirect(rq, location);
}

static void copy_field(struct http_req *rq, json_t *req, const char *form, const char *key)
{
    const char *v = http_arg(rq, form);
    if (v && *v)
        json_object_set_new(req, key, json_string(v));
}

/* The edit form: only what differs from what it showed. An emptied date takes the bound
 * away. */
static json_t *set_request(struct http_req *rq, int64_t id)
{
    static const char *const texts[] = { "name", "email", "note", "plan" };
    static const char *const dates[] = { "valid_from", "valid_until" };
    json_t *req = json_pack("{s:s, s:I}", "cmd", "member.set", "member", (json_int_t)id);
    char orig[32];

    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        const char *v = http_arg(rq, texts[i]), *was;
        snprintf(orig, sizeof(orig), "orig_%s", texts[i]);
        was = http_arg(rq, orig);
        if (v && (!was || strcmp(v, was) != 0))
            json_object_set_new(req, texts[i], json_string(v));
    }
    for (size_t i = 0; i < ARRAY_SIZE(dates); i++) {
        const char *v = http_arg(rq, dates[i]) ?: "", *was;
        snprintf(orig, sizeof(orig), "orig_%s", dates[i]);
        was = http_arg(rq, orig) ?: "";
        if (strcmp(v, was) == 0)
            continue;
        json_object_set_new(req, dates[i], *v ? json_string(v) : json_integer(0));
    }
    if (http_arg(rq, "plan_from") && *http_arg(rq, "plan_from")) {
        json_object_set_new(req, "plan_from", json_string(http_arg(rq, "plan_from")));
        if (!json_object_get(req, "plan"))
            copy_field(rq, req, "plan", "plan");
    }
    return req;
}

static void member_action(struct http_req *rq, int64_t id, const char *verb)
{
    json_t *req = NULL;

    rq->note_id = id;
    if (strcmp(verb, "set") == 0) {
        req = set_request(rq, id);
        if (json_object_size(req) == 2) {
            /* The form sent back as it was shown: nothing to do. */
            char location[64];
            json_decref(req);
            snprintf(location, sizeof(location), "/manage/members/%" PRId64, id);
            http_redirect(rq, location);
            return;
        }
    } else if (strcmp(verb, "renew") == 0) {
        req = json_pack("{s:s, s:I}", "cmd", "member.renew", "member", (json_int_t)id);
        if (http_arg(rq, "until") && *http_arg(rq, "until"))
            copy_field(rq, req, "until", "until");
        else
            copy_field(rq, req, "for", "for");
    } else if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0 ||
               strcmp(verb, "remove") == 0 || strcmp(verb, "erase") == 0) {
        char cmd[32];
        bool confirmed = http_arg(rq, "confirm") && strcmp(http_arg(rq, "confirm"), "yes") == 0;
        if ((verb[0] == 'r' && verb[2] == 'm') || verb[0] == 'e') {
            if (!confirmed) {
                http_error(rq, 400, "bad_request", "%s", L(rq, "tick the box to confirm"));
                return;
            }
        }
        snprintf(cmd, sizeof(cmd), "member.%s", verb);
        req = json_pack("{s:s, s:I}", "cmd", cmd, "member", (json_int_t)id);
        if (verb[0] == 'e' && http_arg(rq, "force") && strcmp(http_arg(rq, "force"), "yes") == 0)
            json_object_set_new(req, "force", json_true());
    } else if (strcmp(verb, "enroll") == 0) {
        req = json_pack("{s:s, s:I, s:i}", "cmd", "card.enroll", "member", (json_int_t)id,
                        "timeout", 30);
        copy_field(rq, req, "reader", "reader");
        copy_field(rq, req, "label", "label");
    } else {
        http_error(rq, 404, "not_found", "%s", L(rq, "no such action"));
        return;
    }
    http_command(rq, req, back_to_member);
}

static void card_action(struct http_req *rq, int64_t member, int64_t card, const char *verb)
{
    char cmd[32];

    if (strcmp(verb, "enable") != 0 && strcmp(verb, "disable") != 0 && strcmp(verb, "remove") != 0) {
        http_error(rq, 404, "not_found", "%s", L(rq, "no such action"));
        return;
    }
    rq->note_id = member;
    snprintf(cmd, sizeof(cmd), "card.%s", verb);
    http_command(rq, json_pack("{s:s, s:I}", "cmd", cmd, "card", (json_int_t)card), back_to_member);
}

static void post_add(struct http_req *rq)
{
    json_t *req = json_pack("{s:s}", "cmd", "member.add");

    rq->note_id = 0;
    copy_field(rq, req, "name", "name");
    copy_field(rq, req, "email", "email");
    copy_field(rq, req, "plan", "plan");
    copy_field(rq, req, "valid_until", "valid_until");
    http_command(rq, req, back_to_member);
}

/* ---- exports ---- */

static void export_send(struct http_req *rq, json_t *reply)
{
    json_t *doc = json_object_get(reply, "export");
    struct buf b = { 0 };
    char *text, cd[96];

    if (!reply_ok(reply) || !doc) {
        web_reply_refused(rq, reply);
        return;
    }
    text = json_dumps(doc, JSON_INDENT(2));
    if (!text) {
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    buf_put(&b, text);
    buf_put(&b, "\n");
    free(text);
    http_reply(rq, 200, "application/json; charset=utf-8", &b);
    if (rq->response) {
        snprintf(cd, sizeof(cd), "attachment; filename=\"portier-member-%" JSON_INTEGER_FORMAT
                 ".json\"", json_integer_value(json_object_get(json_object_get(doc, "member"), "id")));
        MHD_add_response_header(rq->response, "Content-Disposition", cd);
        MHD_add_response_header(rq->response, "Cache-Control", "no-store");
    }
}

static void page_export(struct http_req *rq, int64_t id)
{
    json_t *req;

    if (!http_require(rq, id ? WEB_STAFF : WEB_MEMBERS))
        return;
    req = json_pack("{s:s}", "cmd", "member.export");
    if (id)
        json_object_set_new(req, "member", json_integer(id));
    else if (rq->account.member_id)
        json_object_set_new(req, "member", json_integer(rq->account.member_id));
    http_command(rq, req, export_send);
}

void web_me_privacy(struct http_req *rq, struct buf *b)
{
    buf_printf(b, "<h2>%s</h2><p>%s</p><p><a href=\"/me/export.json\" download id=\"my-data\">%s</a>"
               " · <a href=\"/privacy\">%s</a></p>", L(rq, "My data"),
               L(rq, "Everything this site holds about you, in one file you can keep or take "
                     "elsewhere."), L(rq, "Download my data"), L(rq, "How your data is used"));
}

/* ---- routing ---- */

bool web_members_route(struct http_req *rq, const char *path)
{
    const char *rest;
    int64_t id = 0, card = 0;
    char *end;

    if (rq->is_get && strcmp(path, "/me/export.json") == 0) {
        page_export(rq, 0);
        return true;
    }
    if (rq->is_get && strcmp(path, "/manage/plans") == 0) {
        page_plans(rq);
        return true;
    }
    if (strncmp(path, "/manage/members", 15) != 0 || (path[15] && path[15] != '/'))
        return false;
    rest = path[15] ? path + 16 : "";
    if (!*rest) {
        if (rq->is_post)
            return false;
        page_list(rq);
        return true;
    }
    if (rq->is_post && strcmp(rest, "add") == 0) {
        if (http_require(rq, WEB_STAFF))
            post_add(rq);
        return true;
    }
    id = strtoll(rest, &end, 10);
    if (id <= 0 || (*end && *end != '/')) {
        http_error(rq, 404, "not_found", "%s", L(rq, "no such member page"));
        return true;
    }
    if (!http_require(rq, WEB_STAFF))
        return true;
    if (rq->is_get && !*end) {
        page_member(rq, id);
    } else if (rq->is_get && strcmp(end, "/export.json") == 0) {
        page_export(rq, id);
    } else if (rq->is_post && strncmp(end, "/cards/", 7) == 0 &&
               (card = strtoll(end + 7, &end, 10)) > 0 && *end == '/') {
        card_action(rq, id, card, end + 1);
    } else if (rq->is_post && *end == '/' && !strchr(end + 1, '/')) {
        member_action(rq, id, end + 1);
    } else {
        http_error(rq, 404, "not_found", "%s", L(rq, "no such member page"));
    }
    return true;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_me: a person's own pages — logging in, the first password (one-time link), and /me:
 * a member's world (bookings, membership, this month's usage and passes, trainings, cards,
 * calendar address) and every account's language. */
#include <errno.h>
#include <sodium.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "http_internal.h"
#include "util.h"

/* ---- login and first password ---- */

void web_login_form(struct http_req *rq, const char *error)
{
    struct buf b = { 0 };

    web_page_begin(rq, &b, L(rq, "Log in"));
    buf_printf(&b, "<h1>%s</h1>", L(rq, "Log in"));
    if (error)
        web_notice(&b, false, error);
    else if (http_query(rq, "welcome"))
        web_notice(&b, true, L(rq, "Your password is set. Log in with it."));
    buf_put(&b, "<form method=\"post\" action=\"/login\" class=\"stack\">");
    web_csrf_field(rq, &b);
    buf_printf(&b, "<label>%s <input name=\"name\" autocomplete=\"username\" required "
                   "maxlength=\"32\" autocapitalize=\"none\"></label>"
                   "<label>%s <input type=\"password\" name=\"password\" "
                   "autocomplete=\"current-password\" required maxlength=\"256\"></label>"
                   "<button type=\"submit\">%s</button></form><p>%s</p>",
               L(rq, "Account name"), L(rq, "Password"), L(rq, "Log in"),
               L(rq, "No password yet? Ask a manager for a one-time link."));
    web_page_end(rq, &b, 200);
}

void page_login(struct http_req *rq, const char *rest)
{
    web_login_form(rq, NULL);
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
    web_login_form(rq, why);
    if (rq->response)
        rq->status = 401;
}

void page_welcome(struct http_req *rq, const char *token)
{
    struct buf b = { 0 };

    web_page_begin(rq, &b, L(rq, "Set your password"));
    buf_printf(&b, "<h1>%s</h1><form method=\"post\" action=\"/welcome/", L(rq, "Set your password"));
    buf_html(&b, token);
    buf_put(&b, "\" class=\"stack\">");
    web_csrf_field(rq, &b);
    buf_printf(&b, "<label>%s <input type=\"password\" name=\"password\" "
                   "autocomplete=\"new-password\" required minlength=\"10\" maxlength=\"256\">"
                   "</label><label>%s <input type=\"password\" name=\"password2\" "
                   "autocomplete=\"new-password\" required minlength=\"10\" maxlength=\"256\">"
                   "</label><button type=\"submit\">%s</button></form><p>%s</p>",
               L(rq, "New password (at least 10 characters)"), L(rq, "The same again"),
               L(rq, "Set password and log in"),
               L(rq, "Once it is set, you are logged in on this device."));
    web_page_end(rq, &b, 200);
}

/* ---- /me ---- */

struct me_ctx {
    struct http_req *rq;
    struct buf *b;
    unsigned n;
};

static int me_booking(const struct store_booking *bk, void *userdata)
{
    struct me_ctx *x = userdata;
    char a[64], t[16], e[16];

    buf_put(x->b, "<li><a href=\"/machines/");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "\">");
    buf_html(x->b, bk->resource);
    buf_put(x->b, "</a> ");
    buf_html(x->b, web_time(x->rq, bk->start, I18N_DATE_LONG, a, sizeof(a)));
    buf_printf(x->b, " %s–%s ", web_time(x->rq, bk->start, I18N_TIME, t, sizeof(t)),
               web_time(x->rq, bk->end, I18N_TIME, e, sizeof(e)));
    web_cancel_form(x->rq, x->b, bk->id, "/me");
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static int me_pass(const struct store_pass *p, void *userdata)
{
    struct me_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char until[48], text[160];

    if (p->valid_until && p->valid_until < now_utc())
        return 0;
    buf_put(x->b, "<li>");
    buf_html(x->b, web_format(text, sizeof(text),
                              strcmp(p->kind, "days") == 0
                                  ? LN(rq, "%lld of %lld day", "%lld of %lld days", p->quantity)
                                  : LN(rq, "%lld of %lld minute", "%lld of %lld minutes",
                                       p->quantity),
                              (long long)p->remaining, (long long)p->quantity));
    if (strcmp(p->kind, "minutes") == 0) {
        buf_put(x->b, " ");
        buf_html(x->b, web_format(text, sizeof(text), L(rq, "on %s"),
                                  strcmp(p->target, "*") == 0 ? L(rq, "any machine") : p->target));
    }
    if (p->valid_until) {
        buf_put(x->b, ", ");
        buf_html(x->b, web_format(text, sizeof(text), L(rq, "until %s"),
                                  web_time(rq, p->valid_until, I18N_DATE, until, sizeof(until))));
    }
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static int me_training(const struct store_qualification *q, void *userdata)
{
    struct me_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char when[48], text[160];
    int64_t now = now_utc();

    if (q->revoked_at)
        return 0;
    buf_put(x->b, "<li><strong>");
    buf_html(x->b, q->training);
    buf_put(x->b, "</strong> — ");
    if (!q->expires_at)
        buf_html(x->b, L(rq, "no expiry"));
    else
        buf_html(x->b, web_format(text, sizeof(text), q->expires_at < now
                                                          ? L(rq, "expired on %s")
                                                          : L(rq, "valid until %s"),
                                  web_time(rq, q->expires_at, I18N_DATE, when, sizeof(when))));
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static int me_card(const struct store_card *c, void *userdata)
{
    struct me_ctx *x = userdata;
    struct http_req *rq = x->rq;
    char when[48], text[160];

    buf_put(x->b, "<li><strong>");
    if (c->label[0])
        buf_html(x->b, c->label);
    else
        buf_html(x->b, web_format(text, sizeof(text), L(rq, "Card %s"), c->hash_prefix));
    buf_put(x->b, "</strong> — ");
    buf_html(x->b, web_format(text, sizeof(text), L(rq, "enrolled on %s"),
                              web_time(rq, c->created_at, I18N_DATE, when, sizeof(when))));
    buf_put(x->b, ", ");
    if (c->last_used_at)
        buf_html(x->b, web_format(text, sizeof(text), L(rq, "last used on %s"),
                                  web_time(rq, c->last_used_at, I18N_DATETIME_ZONE, when,
                                           sizeof(when))));
    else
        buf_html(x->b, L(rq, "not used yet"));
    if (!c->enabled) {
        buf_put(x->b, " (");
        buf_html(x->b, L(rq, "disabled"));
        buf_put(x->b, ")");
    }
    buf_put(x->b, "</li>");
    x->n++;
    return 0;
}

static void language_form(struct http_req *rq, struct buf *b)
{
    const char *pref = rq->account.language;

    buf_printf(b, "<section aria-labelledby=\"lang-h\"><h2 id=\"lang-h\">%s</h2>"
                  "<form method=\"post\" action=\"/me/language\" class=\"stack\">",
               L(rq, "Language"));
    web_csrf_field(rq, b);
    buf_printf(b, "<label>%s <select name=\"language\">", L(rq, "Language of these pages"));
    web_option(b, "auto", L(rq, "As my browser asks"), !pref[0]);
    web_option(b, "en", "English", strcmp(pref, "en") == 0);
    web_option(b, "fr", "Français", strcmp(pref, "fr") == 0);
    buf_printf(b, "</select></label><button type=\"submit\" class=\"secondary\">%s</button>"
                  "</form></section>", L(rq, "Save"));
}

static void membership(struct http_req *rq, struct buf *b)
{
    struct store_member m;
    char a[48], e[48], text[256];

    if (http_store_ok(rq, store_member_get(rq->h->env.svc->store, rq->account.member_id, &m)) < 0)
        return;
    buf_printf(b, "<section aria-labelledby=\"plan-h\"><h2 id=\"plan-h\">%s</h2><dl class=\"facts\">"
                  "<dt>%s</dt><dd id=\"plan\">", L(rq, "Membership"), L(rq, "Plan"));
    buf_html(b, m.plan[0] ? m.plan : L(rq, "none"));
    buf_printf(b, "</dd><dt>%s</dt><dd id=\"validity\">", L(rq, "Valid"));
    if (m.valid_from && m.valid_until)
        web_format(text, sizeof(text), L(rq, "from %s to %s"),
                   web_time(rq, m.valid_from, I18N_DATE, a, sizeof(a)),
                   web_time(rq, m.valid_until, I18N_DATE, e, sizeof(e)));
    else if (m.valid_until)
        web_format(text, sizeof(text), L(rq, "until %s"),
                   web_time(rq, m.valid_until, I18N_DATE, e, sizeof(e)));
    else if (m.valid_from)
        web_format(text, sizeof(text), L(rq, "from %s, no end date"),
                   web_time(rq, m.valid_from, I18N_DATE, a, sizeof(a)));
    else
        snprintf(text, sizeof(text), "%s", L(rq, "no end date"));
    buf_html(b, text);
    buf_put(b, "</dd>");
    if (m.status != MEMBER_ACTIVE)
        buf_printf(b, "<dt>%s</dt><dd>%s</dd>", L(rq, "State"),
                   L(rq, "suspended: ask a manager"));
    buf_put(b, "</dl></section>");
}

static void me_render(struct http_req *rq, json_t *reply)
{
    struct http *h = rq->h;
    struct buf b = { 0 };
    struct me_ctx x = { rq, &b, 0 };
    json_t *members = json_object_get(json_object_get(reply, "statement"), "members");
    json_t *totals = json_object_get(json_array_get(members, 0), "totals");
    const char *cancelled = http_query(rq, "cancelled");
    char text[200];
    int64_t id;

    web_page_begin(rq, &b, L(rq, "My page"));
    buf_put(&b, "<h1>");
    buf_html(&b, rq->account.member[0] ? rq->account.member : rq->account.name);
    buf_put(&b, "</h1>");
    if (cancelled && parse_int64(cancelled, 1, INT64_MAX, &id) == 0) {
        struct store_booking bk;
        if (store_booking_get(h->env.svc->store, id, &bk) == 0 &&
            bk.member_id == rq->account.member_id) {
            char day[64], a[16];
            web_format(text, sizeof(text), L(rq, "Cancelled: %s, %s %s."), bk.resource,
                       web_time(rq, bk.start, I18N_DATE_LONG, day, sizeof(day)),
                       web_time(rq, bk.start, I18N_TIME, a, sizeof(a)));
            web_notice(&b, true, text);
        }
    }
    if (http_query(rq, "language"))
        web_notice(&b, true, L(rq, "Your language is saved."));

    buf_printf(&b, "<section aria-labelledby=\"bk-h\"><h2 id=\"bk-h\">%s</h2><ul class=\"list\">",
               L(rq, "My bookings"));
    struct store_booking_filter f = { .member_id = rq->account.member_id, .from = now_utc(),
                                      .limit = 200 };
    http_store_ok(rq, store_bookings_foreach(h->env.svc->store, &f, me_booking, &x));
    if (!x.n)
        buf_printf(&b, "<li>%s <a href=\"/\">%s</a></li>", L(rq, "None."),
                   L(rq, "Book a machine"));
    buf_put(&b, "</ul></section>");

    membership(rq, &b);

    buf_printf(&b, "<section aria-labelledby=\"use-h\"><h2 id=\"use-h\">%s</h2>",
               L(rq, "This month"));
    if (totals) {
        char amount[32], num[32];
        buf_printf(&b, "<dl class=\"facts\"><dt>%s</dt><dd id=\"usage-days\">%" JSON_INTEGER_FORMAT
                   "</dd><dt>%s</dt><dd>%s</dd>", L(rq, "Days"),
                   json_integer_value(json_object_get(totals, "days")), L(rq, "Presence"),
                   web_duration(rq, json_integer_value(json_object_get(totals, "presence_minutes")),
                                num, sizeof(num)));
        buf_printf(&b, "<dt>%s</dt><dd>%s</dd>", L(rq, "Machines"),
                   web_duration(rq, json_integer_value(json_object_get(totals, "machine_minutes")),
                                num, sizeof(num)));
        buf_printf(&b, "<dt>%s</dt><dd id=\"usage-amount\">%s</dd></dl>", L(rq, "Amount"),
                   i18n_money(rq->lang, json_integer_value(json_object_get(totals, "amount_cents")),
                              amount, sizeof(amount)));
    } else {
        buf_printf(&b, "<p>%s</p>", L(rq, "Nothing used yet this month."));
    }
    buf_printf(&b, "<h3>%s</h3><ul class=\"list\">", L(rq, "My passes"));
    x.n = 0;
    http_store_ok(rq, store_passes_foreach(h->env.svc->store, rq->account.member_id, me_pass, &x));
    if (!x.n)
        buf_printf(&b, "<li>%s</li>", L(rq, "No passes."));
    buf_put(&b, "</ul></section>");

    buf_printf(&b, "<section aria-labelledby=\"tr-h\"><h2 id=\"tr-h\">%s</h2><ul class=\"list\">",
               L(rq, "My trainings"));
    x.n = 0;
    http_store_ok(rq, store_qualifications_foreach(h->env.svc->store, rq->account.member_id,
                                                   me_training, &x));
    if (!x.n)
        buf_printf(&b, "<li>%s</li>", L(rq, "None yet."));
    buf_printf(&b, "</ul></section><section aria-labelledby=\"card-h\"><h2 id=\"card-h\">%s</h2>"
                   "<ul class=\"list\">", L(rq, "My cards"));
    x.n = 0;
    http_store_ok(rq, store_cards_foreach(h->env.svc->store, rq->account.member_id, me_card, &x));
    if (!x.n)
        buf_printf(&b, "<li>%s</li>", L(rq, "No card yet: a manager enrols one at a reader."));
    buf_put(&b, "</ul></section>");

    buf_printf(&b, "<section aria-labelledby=\"cal-h\"><h2 id=\"cal-h\">%s</h2>", L(rq, "My calendar"));
    if (rq->account.has_calendar)
        buf_printf(&b, "<p>%s</p>",
                   L(rq, "You have a private calendar address. It is shown only when it is made: "
                         "if you lost it, make a new one (the old one stops working)."));
    buf_put(&b, "<form method=\"post\" action=\"/me/calendar\">");
    web_csrf_field(rq, &b);
    buf_printf(&b, "<button type=\"submit\" class=\"secondary\">%s</button></form></section>",
               rq->account.has_calendar
                   ? L(rq, "Replace the address (the old one stops working)")
                   : L(rq, "Create my calendar address"));
    web_me_privacy(rq, &b);                 /* pages_members.c: my data, the privacy page */
    language_form(rq, &b);
    web_page_end(rq, &b, 200);
}

/* The page of an account that acts for no member: who it is, and its language. */
static void account_page(struct http_req *rq)
{
    struct buf b = { 0 };
    char text[160];

    web_page_begin(rq, &b, L(rq, "My account"));
    buf_put(&b, "<h1>");
    buf_html(&b, rq->account.name);
    buf_put(&b, "</h1>");
    if (http_query(rq, "language"))
        web_notice(&b, true, L(rq, "Your language is saved."));
    buf_put(&b, "<p>");
    buf_html(&b, web_format(text, sizeof(text), L(rq, "Account %s, role: %s."), rq->account.name,
                            strcmp(rq->account.role, "manager") == 0 ? L(rq, "manager")
                                                                     : L(rq, "custodian")));
    buf_printf(&b, " <a href=\"%s\">%s</a></p>", rq->role == ROLE_MANAGER ? "/manage" : "/usage",
               rq->role == ROLE_MANAGER ? L(rq, "Manage the site") : L(rq, "Usage"));
    language_form(rq, &b);
    web_page_end(rq, &b, 200);
}

void page_me(struct http_req *rq, const char *rest)
{
    char period[8], member[24];

    if (!http_require(rq, WEB_ANY))
        return;
    if (!rq->account.member_id) {
        account_page(rq);
        return;
    }
    char d[11];
    web_date_text(now_utc(), d);
    snprintf(period, sizeof(period), "%.7s", d);
    snprintf(member, sizeof(member), "%" PRId64, rq->account.member_id);
    http_command(rq, json_pack("{s:s, s:s, s:s}", "cmd", "statement", "period", period, "member",
                              member), me_render);
}

void post_me_calendar(struct http_req *rq, const char *rest)
{
    char token[STORE_TOKEN_TEXT_MAX + 1], base[256];
    uint8_t hash[STORE_HASH_LEN];
    struct buf b = { 0 };

    if (!http_require(rq, WEB_MEMBERS))
        return;
    account_token_new(token, hash);
    if (store_account_set_calendar(rq->h->env.svc->store, rq->account.id, hash) < 0) {
        sodium_memzero(token, sizeof(token));
        http_error(rq, 500, "store", "cannot store the calendar address");
        return;
    }
    /* The only time the address is shown: the site keeps its hash, as for sessions. */
    http_base_url(rq, base, sizeof(base));
    web_page_begin(rq, &b, L(rq, "My calendar"));
    buf_printf(&b, "<p>%s</p><p><input readonly class=\"copy\" id=\"calendar-url\" "
                   "aria-label=\"%s\" value=\"",
               L(rq, "Add this address to your calendar app now: it is shown only this once. "
                     "Keep it private: anyone with it sees your bookings."),
               L(rq, "Calendar address"));
    buf_html(&b, base);
    buf_put(&b, "/calendar/me/");
    buf_html(&b, token);
    buf_printf(&b, ".ics\"></p><p><a href=\"/me\">%s</a></p>", L(rq, "Back to my page"));
    sodium_memzero(token, sizeof(token));
    web_page_end(rq, &b, 200);
}

static void language_set(struct http_req *rq, json_t *reply)
{
    if (!web_reply_ok(reply)) {
        web_reply_refused(rq, reply);
        return;
    }
    http_redirect(rq, "/me?language=1");
}

/* POST /me/language: the account's own language (account.language acts on the caller's). */
void post_me_language(struct http_req *rq, const char *rest)
{
    const char *language = http_arg(rq, "language");

    if (!http_require(rq, WEB_ANY))
        return;
    if (!language) {
        http_error(rq, 400, "bad_request", "choose a language");
        return;
    }
    http_command(rq, json_pack("{s:s, s:s}", "cmd", "account.language", "language", language),
                 language_set);
}

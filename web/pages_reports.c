/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pages_reports: usage of a period (HTML, and CSV for spreadsheets: comma or, for French
 * spreadsheets, semicolon with a decimal comma), the ledger's verification and the sealed
 * archives of closed periods — for the custodian and managers. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "http_internal.h"
#include "util.h"

static void usage_csv(struct http_req *rq, json_t *st, bool fr)
{
    static const char *const cols[] = { "period", "member_id", "member", "days",
                                        "presence_minutes", "machine_minutes", "amount",
                                        "currency" };
    struct buf b = { 0 };
    struct csv c;
    size_t len = 0;
    char *text;
    json_t *m;
    size_t i;

    /* The one CSV writer (csv.h): comma and decimal point, or for French spreadsheets
     * semicolon, decimal comma and a byte order mark. */
    csv_init(&c, fr ? CSV_FRENCH : CSV_RFC4180);
    csv_row(&c, cols, sizeof(cols) / sizeof(cols[0]));
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
        snprintf(cd, sizeof(cd), "attachment; filename=\"usage-%s%s.csv\"",
                 json_string_value(json_object_get(st, "period")), fr ? "-fr" : "");
        MHD_add_response_header(rq->response, "Content-Disposition", cd);
    }
}

static void usage_render(struct http_req *rq, json_t *reply)
{
    json_t *st = json_object_get(reply, "statement"), *m;
    struct buf b = { 0 };
    char amount[32], text[160];
    size_t i;

    if (!web_reply_ok(reply)) {
        web_reply_refused(rq, reply);
        return;
    }
    if (rq->note[0] == 'c') {
        usage_csv(rq, st, strcmp(rq->note, "csv-fr") == 0);
        return;
    }
    const char *period = json_string_value(json_object_get(st, "period"));
    json_t *tot = json_object_get(st, "totals");
    json_int_t cents = json_integer_value(json_object_get(tot, "amount_cents"));
    web_page_begin(rq, &b, L(rq, "Usage"));
    buf_printf(&b, "<h1>%s</h1><form method=\"get\" action=\"/usage\" class=\"inline\"><label>%s "
                   "<input type=\"month\" name=\"period\" value=\"", L(rq, "Usage"), L(rq, "Month"));
    buf_html(&b, period);
    buf_printf(&b, "\"></label> <button type=\"submit\">%s</button></form><p class=\"downloads\">",
               L(rq, "Show"));
    buf_put(&b, "<a download href=\"/usage.csv?period=");
    buf_html(&b, period);
    buf_printf(&b, "\">%s</a> · <a download href=\"/usage.csv?period=", L(rq, "Download CSV"));
    buf_html(&b, period);
    buf_printf(&b, "&amp;format=csv-fr\">%s</a></p><p>",
               L(rq, "CSV for a French spreadsheet (; and decimal comma)"));
    buf_html(&b, web_format(text, sizeof(text), LN(rq, "%lld record, total %s.",
                                                   "%lld records, total %s.",
                                                   json_integer_value(json_object_get(tot, "records"))),
                            (long long)json_integer_value(json_object_get(tot, "records")),
                            i18n_money(rq->lang, cents, amount, sizeof(amount))));
    /* On a phone each row becomes a small card: its cells carry their column's name. */
    const char *h_member = L(rq, "Member"), *h_days = L(rq, "Days");
    const char *h_presence = L(rq, "Presence"), *h_machines = L(rq, "Machines");
    const char *h_amount = L(rq, "Amount");
    buf_printf(&b, "</p><div class=\"table\"><table class=\"cards-narrow\"><thead><tr>"
                   "<th scope=\"col\">#</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                   "<th scope=\"col\">%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                   "</tr></thead><tbody>", h_member, h_days, h_presence, h_machines, h_amount);
    json_array_foreach(json_object_get(st, "members"), i, m) {
        json_t *t = json_object_get(m, "totals");
        char p[32], q[32];
        buf_printf(&b, "<tr><td data-label=\"#\">%" JSON_INTEGER_FORMAT "</td><td data-label=\"",
                   json_integer_value(json_object_get(m, "member_id")));
        buf_html(&b, h_member);
        buf_put(&b, "\">");
        buf_html(&b, json_string_value(json_object_get(m, "member")) ?: "");
        buf_put(&b, "</td><td data-label=\"");
        buf_html(&b, h_days);
        buf_printf(&b, "\">%" JSON_INTEGER_FORMAT "</td><td data-label=\"",
                   json_integer_value(json_object_get(t, "days")));
        buf_html(&b, h_presence);
        buf_printf(&b, "\">%s</td><td data-label=\"",
                   web_duration(rq, json_integer_value(json_object_get(t, "presence_minutes")), p,
                                sizeof(p)));
        buf_html(&b, h_machines);
        buf_printf(&b, "\">%s</td><td data-label=\"",
                   web_duration(rq, json_integer_value(json_object_get(t, "machine_minutes")), q,
                                sizeof(q)));
        buf_html(&b, h_amount);
        buf_printf(&b, "\" class=\"num\">%s</td></tr>",
                   i18n_money(rq->lang, json_integer_value(json_object_get(t, "amount_cents")),
                              amount, sizeof(amount)));
    }
    buf_put(&b, "</tbody></table></div>");
    web_page_end(rq, &b, 200);
}

static void usage(struct http_req *rq, bool csv)
{
    const char *period = http_query(rq, "period"), *format = http_query(rq, "format");
    char now_period[11];

    if (!http_require(rq, WEB_READERS))
        return;
    if (!period || !*period) {
        web_date_text(now_utc(), now_period);
        now_period[7] = '\0';
        period = now_period;
    }
    if (strlen(period) != 7) {
        http_error(rq, 400, "bad_request", "period must be YYYY-MM");
        return;
    }
    if (csv && format && strcmp(format, "csv") != 0 && strcmp(format, "csv-fr") != 0) {
        http_error(rq, 400, "bad_request", "format must be csv or csv-fr");
        return;
    }
    snprintf(rq->note, sizeof(rq->note), "%s", !csv ? "html" : format ? format : "csv");
    http_command(rq, json_pack("{s:s, s:s}", "cmd", "statement", "period", period), usage_render);
}

void page_usage(struct http_req *rq, const char *rest)
{
    usage(rq, false);
}

void page_usage_csv(struct http_req *rq, const char *rest)
{
    usage(rq, true);
}

static void ledger_periods(struct http_req *rq, json_t *reply)
{
    struct buf b = { 0 };
    json_t *p;
    size_t i;

    web_page_begin(rq, &b, L(rq, "Ledger"));
    buf_printf(&b, "<h1>%s</h1><p role=\"status\" id=\"ledger-state\" class=\"", L(rq, "Ledger"));
    buf_put(&b, rq->note_id ? "ok\">" : "error\">");
    buf_html(&b, rq->note);
    buf_printf(&b, "</p><h2>%s</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">"
                   "%s</th><th scope=\"col\">%s</th><th scope=\"col\">%s</th>"
                   "<th scope=\"col\">%s</th></tr></thead><tbody>", L(rq, "Closed periods"),
               L(rq, "Period"), L(rq, "Closed"), L(rq, "Last entry"), L(rq, "Archive"));
    json_array_foreach(json_object_get(reply, "periods"), i, p) {
        char closed[48];
        web_time(rq, json_integer_value(json_object_get(p, "closed_at")), I18N_DATETIME_ZONE,
                 closed, sizeof(closed));
        buf_put(&b, "<tr><td>");
        buf_html(&b, json_string_value(json_object_get(p, "period")));
        buf_put(&b, "</td><td>");
        buf_html(&b, closed);
        buf_printf(&b, "</td><td>%" JSON_INTEGER_FORMAT "</td><td>",
                   json_integer_value(json_object_get(p, "last_seq")));
        for (const char *const *ext = (const char *const[]){ "", ".sig", ".sha256", NULL }; *ext;
             ext++) {
            buf_put(&b, "<a download href=\"/ledger/archive/");
            buf_html(&b, json_string_value(json_object_get(p, "period")));
            buf_put(&b, *ext);
            buf_put(&b, "\">");
            buf_html(&b, **ext ? *ext + 1 : L(rq, "archive"));
            buf_put(&b, "</a> ");
        }
        buf_put(&b, "</td></tr>");
    }
    buf_put(&b, "</tbody></table></div>");
    web_page_end(rq, &b, 200);
}

static void ledger_verified(struct http_req *rq, json_t *reply)
{
    if (web_reply_ok(reply) && json_is_true(json_object_get(reply, "intact"))) {
        json_int_t n = json_integer_value(json_object_get(reply, "entries"));
        web_format(rq->note, sizeof(rq->note),
                   LN(rq, "Verified: %lld entry, chain and signatures intact.",
                      "Verified: %lld entries, chain and signatures intact.", n), (long long)n);
        rq->note_id = 1;
    } else if (web_reply_ok(reply)) {
        web_format(rq->note, sizeof(rq->note), L(rq, "BROKEN at entry %lld: %s"),
                   (long long)json_integer_value(json_object_get(reply, "first_broken_seq")),
                   json_string_value(json_object_get(reply, "problem")) ?: "?");
        rq->note_id = 0;
    } else {
        web_format(rq->note, sizeof(rq->note), L(rq, "Verification failed: %s"),
                   json_string_value(json_object_get(reply, "error")) ?: "?");
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

void page_archive(struct http_req *rq, const char *what)
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

void page_ledger(struct http_req *rq, const char *rest)
{
    if (!http_require(rq, WEB_READERS))
        return;
    http_command(rq, json_pack("{s:s}", "cmd", "ledger.verify"), ledger_verified);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "jfield.h"
#include "log.h"
#include "opendata_web.h"
#include "report.h"
#include "util.h"

/* Pages are built on the core's growing buffer: literal markup with buf_put() (our own
 * strings), every value through buf_html() or buf_htmlf(). */

static void cell_money(struct buf *h, json_int_t cents)
{
    char amount[32];

    buf_put(h, "<td class=n>");
    buf_html(h, format_cents(cents, '.', amount, sizeof(amount)));
    buf_put(h, "</td>");
}

static void cell_int(struct buf *h, json_int_t v)
{
    buf_put(h, "<td class=n>");
    buf_htmlf(h, "%" JSON_INTEGER_FORMAT, v);
    buf_put(h, "</td>");
}

static void cell(struct buf *h, const char *s)
{
    buf_put(h, "<td>");
    buf_html(h, s);
    buf_put(h, "</td>");
}

static void cell_code(struct buf *h, const char *s)
{
    buf_put(h, "<td><code>");
    buf_html(h, s);
    buf_put(h, "</code></td>");
}

/* A table of the report: one row per element of its array, one cell per column. */
enum column_kind { COLUMN_TEXT, COLUMN_INT, COLUMN_MONEY, COLUMN_CODE };

struct column {
    const char *key;
    enum column_kind kind;
};

struct report_table {
    const char *heading;            /* markup: the <h3> and the table's header row */
    const char *array;
    struct column columns[5];       /* up to the first without a key */
};

static const struct report_table report_tables[] = {
    { "<h3>Visits (home site → host site)</h3>\n<table><tr><th>home</th><th>host</th>"
      "<th>visits</th><th>amount (EUR)</th></tr>\n", "visits",
      { { "home", COLUMN_TEXT }, { "host", COLUMN_TEXT }, { "visits", COLUMN_INT },
        { "amount_cents", COLUMN_MONEY } } },
    { "<h3>Balances (who pays whom, net)</h3>\n<table><tr><th>pays</th><th>to</th>"
      "<th>amount (EUR)</th></tr>\n", "balances",
      { { "from", COLUMN_TEXT }, { "to", COLUMN_TEXT }, { "amount_cents", COLUMN_MONEY } } },
    { "<h3>Positions</h3>\n<table><tr><th>site</th><th>earned as host</th>"
      "<th>owed as home</th><th>net</th></tr>\n", "positions",
      { { "site", COLUMN_TEXT }, { "earned_cents", COLUMN_MONEY },
        { "owed_cents", COLUMN_MONEY }, { "net_cents", COLUMN_MONEY } } },
    { "<h3>Period seals</h3>\n<table><tr><th>site</th><th>ledger up to entry</th>"
      "<th>state</th><th>archive SHA-256</th></tr>\n", "seals",
      { { "site", COLUMN_TEXT }, { "last_seq", COLUMN_INT }, { "state", COLUMN_TEXT },
        { "archive_sha256", COLUMN_CODE } } },
};

static void report_table(struct buf *h, const json_t *rep, const struct report_table *t)
{
    size_t i;
    json_t *row;

    buf_put(h, t->heading);
    json_array_foreach(json_object_get(rep, t->array), i, row) {
        buf_put(h, "<tr>");
        for (const struct column *c = t->columns; c < t->columns + 5 && c->key; c++) {
            switch (c->kind) {
            case COLUMN_TEXT: cell(h, jstr(row, c->key)); break;
            case COLUMN_INT: cell_int(h, jint(row, c->key)); break;
            case COLUMN_MONEY: cell_money(h, jint(row, c->key)); break;
            case COLUMN_CODE: cell_code(h, jstr(row, c->key)); break;
            }
        }
        buf_put(h, "</tr>\n");
    }
    buf_put(h, "</table>\n");
}

static int site_row(const struct cdb_site *s, void *userdata)
{
    struct buf *h = userdata;
    char at[32] = "never", pk[17];

    if (s->last_batch_at)
        format_utc(s->last_batch_at, at, sizeof(at));
    sodium_bin2hex(pk, sizeof(pk), s->public_key, 8);
    buf_put(h, "<tr>");
    cell(h, s->name);
    cell_int(h, s->verified_seq);
    cell(h, at);
    cell_int(h, s->open_problems);
    cell_int(h, s->replays);
    buf_put(h, "<td><code>");
    buf_html(h, pk);
    buf_put(h, "…</code></td></tr>\n");
    return 0;
}

static int problem_row(const struct cdb_problem *p, void *userdata)
{
    struct buf *h = userdata;
    char at[32];

    format_utc(p->at, at, sizeof(at));
    buf_put(h, "<tr>");
    cell(h, at);
    cell(h, p->site);
    cell(h, p->kind);
    buf_put(h, "<td class=n>");
    buf_htmlf(h, "%" PRId64 "–%" PRId64, p->first_seq, p->last_seq);
    buf_put(h, "</td>");
    cell(h, p->detail);
    cell(h, p->resolved_at ? "resolved" : strcmp(p->kind, "replay") == 0 ? "ignored" : "open");
    buf_put(h, "</tr>\n");
    return 0;
}

char *web_page(struct cdb *db, const char *period)
{
    struct buf h = { 0 };
    json_t *rep, *s, *k;
    size_t i, j;
    int err;

    buf_put(&h, "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width\">"
            "<title>Portier custodian</title><style>"
            "body{font-family:sans-serif;margin:1.5em;max-width:70em}"
            "table{border-collapse:collapse;margin:.5em 0 1.5em}"
            "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
            "td.n{text-align:right;font-variant-numeric:tabular-nums}"
            "</style></head><body>\n<h1>Portier custodian</h1>\n");
    buf_put(&h, "<h2>Sites</h2>\n<table><tr><th>site</th><th>verified up to entry</th>"
            "<th>last batch (UTC)</th><th>open problems</th><th>replays</th>"
            "<th>public key</th></tr>\n");
    cdb_sites_foreach(db, site_row, &h);
    buf_put(&h, "</table>\n");

    buf_put(&h, "<form method=get action=\"/\"><label>Period <input name=period value=\"");
    buf_html(&h, period);
    buf_put(&h, "\" pattern=\"[0-9]{4}-[0-9]{2}\" size=8></label> <button>Show</button> "
            "<a href=\"/report.csv?period=");
    buf_html(&h, period);
    buf_put(&h, "\">CSV</a> <a href=\"/report.json?period=");
    buf_html(&h, period);
    buf_put(&h, "\">JSON</a></form>\n");

    rep = report_build(db, period, &err);
    if (!rep) {
        buf_put(&h, "<p>No report: ");
        buf_html(&h, err == -EINVAL ? "the period must be YYYY-MM" : strerror(-err));
        buf_put(&h, "</p>\n");
    } else {
        buf_put(&h, "<h2>Report ");
        buf_html(&h, jstr(rep, "period"));
        buf_put(&h, "</h2>\n<h3>Usage per site</h3>\n<table><tr><th>site</th><th>kind</th>"
                "<th>records</th><th>quantity</th><th>amount (EUR)</th></tr>\n");
        json_array_foreach(json_object_get(rep, "sites"), i, s)
            json_array_foreach(json_object_get(s, "by_kind"), j, k) {
                buf_put(&h, "<tr>");
                cell(&h, jstr(s, "site"));
                cell(&h, jstr(k, "kind"));
                cell_int(&h, jint(k, "records"));
                cell_int(&h, jint(k, "quantity"));
                cell_money(&h, jint(k, "amount_cents"));
                buf_put(&h, "</tr>\n");
            }
        buf_put(&h, "</table>\n");
        for (size_t t = 0; t < sizeof(report_tables) / sizeof(report_tables[0]); t++)
            report_table(&h, rep, &report_tables[t]);
        json_decref(rep);
    }
    buf_put(&h, "<h2>Problems (latest 100)</h2>\n<table><tr><th>at (UTC)</th><th>site</th>"
            "<th>kind</th><th>entries</th><th>detail</th><th>status</th></tr>\n");
    cdb_problems_foreach(db, NULL, 0, 100, problem_row, &h);
    buf_put(&h, "</table>\n</body></html>\n");
    return buf_take(&h, NULL);
}

/* ---- the server ---- */

static void current_period(char out[8])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 8, "%Y-%m", &tm);
}

/* Queue resp with the headers every answer carries, and let it go. */
static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp, const char *cache_control,
                             const char *csp)
{
    enum MHD_Result r;

    MHD_add_response_header(resp, "Cache-Control", cache_control);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    return queue(conn, status, resp, "no-store",
                 "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
}

struct server {
    struct cdb *db;
    const char *opendata_dir;       /* NULL: no /opendata/ */
};

/* /opendata/: public data, so any origin may read it, and clients revalidate (ETag). */
static enum MHD_Result reply_opendata(struct MHD_Connection *conn, const char *root,
                                      const char *url)
{
    struct opendata_web_reply r;
    struct MHD_Response *resp;
    char date[40];

    opendata_web_answer(root, url,
                        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match"),
                        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Modified-Since"),
                        &r);
    if (r.status != 304 && !r.body)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(r.len, r.body ? r.body : (void *)"",
                                           r.body ? MHD_RESPMEM_MUST_FREE
                                                  : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r.body);
        return MHD_NO;
    }
    if (r.type && r.status != 304)
        MHD_add_response_header(resp, "Content-Type", r.type);
    if (r.etag[0])
        MHD_add_response_header(resp, "ETag", r.etag);
    if (r.last_modified) {
        time_t t = (time_t)r.last_modified;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        MHD_add_response_header(resp, "Last-Modified", date);
    }
    if (r.location[0])
        MHD_add_response_header(resp, "Location", r.location);
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    return queue(conn, r.status, resp, "no-cache", "default-src 'none'; style-src 'unsafe-inline'");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct server *srv = cls;
    struct cdb *db = srv->db;
    const char *arg;
    char period[8], first[11], last[11];
    char *body;
    json_t *rep;
    int err;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                     strdup("only GET\n"));
    if (*upload_data_size)
        return reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", strdup("no body\n"));
    if (strcmp(url, "/opendata") == 0 || strncmp(url, "/opendata/", 10) == 0) {
        if (!srv->opendata_dir)
            return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                         strdup("no open data here (serve --opendata DIR)\n"));
        return reply_opendata(conn, srv->opendata_dir, url);
    }
    arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "period");
    if (arg && (strlen(arg) != 7 || period_days(arg, first, last) < 0))
        return reply(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8",
                     strdup("period must be YYYY-MM\n"));
    if (arg)
        snprintf(period, sizeof(period), "%s", arg);
    else
        current_period(period);
    if (strcmp(url, "/") == 0) {
        body = web_page(db, period);
        return body ? reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", body) : MHD_NO;
    }
    if (strcmp(url, "/report.json") == 0 || strcmp(url, "/report.csv") == 0) {
        bool csv = strcmp(url, "/report.csv") == 0;
        rep = report_build(db, period, &err);
        if (!rep)
            return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                         strdup("cannot build the report\n"));
        body = report_render(rep, csv ? "csv" : "json");
        json_decref(rep);
        return body ? reply(conn, MHD_HTTP_OK, csv ? "text/csv; charset=utf-8"
                                                   : "application/json", body) : MHD_NO;
    }
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", strdup("not found\n"));
}

int web_serve(struct cdb *db, const char *listen, const char *opendata_dir,
              volatile sig_atomic_t *stopping)
{
    struct server srv = { db, opendata_dir };
    struct sockaddr_in addr = { .sin_family = AF_INET };
    struct MHD_Daemon *d;
    char host[64];
    const char *colon = strrchr(listen, ':');
    int64_t port;

    if (!colon || (size_t)(colon - listen) >= sizeof(host) ||
        parse_int64(colon + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -EINVAL;
    addr.sin_port = htons((uint16_t)port);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                         NULL, NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
    if (!d)
        return -EADDRNOTAVAIL;
    log_info("portier-custodian: serving http://%s/", listen);
    while (!*stopping)
        poll(NULL, 0, 200);
    MHD_stop_daemon(d);
    return 0;
}

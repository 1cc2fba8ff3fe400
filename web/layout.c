/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* layout: what every page shares — the head, the header with the site's navigation, the
 * footer (the time zone times are in), notices, error pages inside the same layout, and the
 * small helpers for times, durations and local dates the pages write. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "util.h"

/* ---- text helpers ---- */

char *web_format(char *buf, size_t n, const char *translated_fmt, ...)
{
    va_list ap;

    va_start(ap, translated_fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(buf, n, translated_fmt, ap);  /* same specifiers as the msgid: check_i18n.py */
#pragma GCC diagnostic pop
    va_end(ap);
    return buf;
}

char *web_time(const struct http_req *rq, int64_t t, enum i18n_time_style style, char *buf,
               size_t n)
{
    return i18n_time(rq->lang, t, style, buf, n);
}

char *web_zone(int64_t t, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    snprintf(buf, n, "%s", tm.tm_zone ? tm.tm_zone : "");
    return buf;
}

char *web_duration(const struct http_req *rq, int64_t minutes, char *buf, size_t n)
{
    int64_t h = minutes / 60, m = minutes % 60;

    if (minutes >= 1440 && minutes % 1440 == 0)
        snprintf(buf, n, "%" PRId64 " %s", minutes / 1440,
                 LN(rq, "day", "days", minutes / 1440));
    else if (h && m)
        snprintf(buf, n, "%" PRId64 " h %02" PRId64, h, m);
    else if (h)
        snprintf(buf, n, "%" PRId64 " h", h);
    else
        snprintf(buf, n, "%" PRId64 " min", m);
    return buf;
}

const char *web_local_path(const char *path)
{
    if (!path || path[0] != '/' || path[1] == '/' || path[1] == '\\' || strlen(path) > 200)
        return NULL;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    return path;
}

int web_parse_local(const char *text, bool date_only, int64_t *ret)
{
    size_t len = text ? strlen(text) : 0;

    if (date_only ? len != 10 : len != 16)
        return -EINVAL;
    return parse_time(text, ret) < 0 ? -EINVAL : 0;
}

void web_date_text(int64_t t, char buf[11])
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    snprintf(buf, 11, "%04u-%02u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u);
}

void web_datetime_text(int64_t t, char buf[17])
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    snprintf(buf, 17, "%04u-%02u-%02uT%02u:%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u);
}

int64_t web_midnight(int64_t t, int add_days)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += add_days;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

int64_t web_local_at(int64_t midnight, int minutes)
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

/* ---- the page around the page ---- */

void web_csrf_field(struct http_req *rq, struct buf *b)
{
    buf_put(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    buf_html(b, rq->csrf);
    buf_put(b, "\">");
}

static void nav_link(struct http_req *rq, struct buf *b, const char *href, const char *label)
{
    size_t n = strlen(href);
    /* The link of the section the page is in says so (aria-current). */
    bool here = strncmp(rq->url, href, n) == 0 && (rq->url[n] == '\0' || rq->url[n] == '/' ||
                                                   rq->url[n] == '?' || n == 1);
    if (n == 1)
        here = strcmp(rq->url, "/") == 0;
    buf_put(b, "<a href=\"");
    buf_put(b, href);
    buf_put(b, here ? "\" aria-current=\"page\">" : "\">");
    buf_html(b, label);
    buf_put(b, "</a>");
}

void web_page_begin(struct http_req *rq, struct buf *b, const char *title)
{
    const char *site = rq->h->cfg->site.name;

    buf_printf(b, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<link rel=\"stylesheet\" href=\"/static/style.css\">"
                  "<link rel=\"icon\" href=\"/static/icon.svg\">"
                  "<script src=\"/static/app.js\" defer></script><title>", i18n_code(rq->lang));
    buf_html(b, title);
    buf_put(b, " · ");
    buf_html(b, site);
    buf_printf(b, "</title></head><body><a class=\"skip\" href=\"#main\">%s</a><header>"
                  "<a class=\"brand\" href=\"/\">", L(rq, "Skip to the content"));
    buf_html(b, site);
    buf_printf(b, "</a><nav aria-label=\"%s\">", L(rq, "Main"));
    nav_link(rq, b, "/bookings", L(rq, "Bookings"));
    if (web_is_member(rq))
        nav_link(rq, b, "/me", L(rq, "My page"));
    else if (rq->account.id)
        nav_link(rq, b, "/me", L(rq, "My account"));
    if (rq->role == ROLE_MANAGER)
        nav_link(rq, b, "/manage", L(rq, "Manage"));
    if (rq->role & WEB_READERS) {
        nav_link(rq, b, "/usage", L(rq, "Usage"));
        nav_link(rq, b, "/ledger", L(rq, "Ledger"));
    }
    if (rq->account.id) {
        buf_put(b, "<form method=\"post\" action=\"/logout\" class=\"inline\">");
        web_csrf_field(rq, b);
        buf_printf(b, "<button type=\"submit\">%s ", L(rq, "Log out"));
        buf_html(b, rq->account.name);
        buf_put(b, "</button></form>");
    } else {
        nav_link(rq, b, "/login", L(rq, "Log in"));
    }
    buf_put(b, "</nav></header><main id=\"main\" tabindex=\"-1\">");
}

void web_page_end(struct http_req *rq, struct buf *b, unsigned status)
{
    char zone[16], text[96];

    buf_put(b, "</main><footer><p>");
    buf_html(b, web_format(text, sizeof(text), L(rq, "Times in %s (%s)"),
                           rq->h->cfg->site.timezone, web_zone(now_utc(), zone, sizeof(zone))));
    buf_printf(b, " · Portier " PORTIER_VERSION " · <a href=\"/spaceapi.json\">SpaceAPI</a> · "
                  "<a href=\"/privacy\">%s</a></p></footer></body></html>\n", L(rq, "Privacy"));
    http_reply(rq, status, "text/html; charset=utf-8", b);
}

void web_notice(struct buf *b, bool ok, const char *text)
{
    size_t len = strlen(text);

    buf_put(b, ok ? "<p role=\"status\" class=\"ok notice\">"
                  : "<p role=\"alert\" class=\"error notice\">");
    if (!ok && len && text[0] >= 'a' && text[0] <= 'z') {
        /* The controller's refusals read as clauses ("this time is already booked"); on a
         * page they stand alone as a sentence. */
        char first[2] = { (char)(text[0] - 'a' + 'A'), '\0' };
        buf_put(b, first);
        buf_html(b, text + 1);
        if (!strchr(".!?:", text[len - 1]))
            buf_put(b, ".");
    } else {
        buf_html(b, text);
    }
    buf_put(b, "</p>");
}

void web_error_page(struct http_req *rq, unsigned status, const char *message)
{
    struct buf b = { 0 };
    const char *title = status == 404 ? L(rq, "Not found")
                        : status == 403 ? L(rq, "Not allowed")
                        : status == 401 ? L(rq, "Please log in")
                        : status == 429 ? L(rq, "Too many attempts")
                        : status >= 500 ? L(rq, "Something went wrong")
                        : L(rq, "That did not work");

    web_page_begin(rq, &b, title);
    buf_put(&b, "<h1>");
    buf_html(&b, title);
    buf_put(&b, "</h1>");
    web_notice(&b, false, message);
    buf_printf(&b, "<p><a href=\"/\">%s</a>", L(rq, "Home"));
    if (status == 401 || (status == 403 && !rq->account.id))
        buf_printf(&b, " · <a href=\"/login\">%s</a>", L(rq, "Log in"));
    buf_put(&b, "</p>");
    web_page_end(rq, &b, status);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* web_feeds: what machines and other programs read — iCalendar feeds (RFC 5545), the
 * SpaceAPI v15 document, /healthz and /metrics (Prometheus text format 0.0.4). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts.h"
#include "fablab.h"
#include "http_internal.h"
#include "util.h"

#define ICS_PAST_DAYS 30
#define ICS_FUTURE_DAYS 180
#define ICS_EVENTS_MAX 5000

/* ---- iCalendar ---- */

static void ics_time(struct buf *b, const char *name, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char text[20];

    gmtime_r(&tt, &tm);
    strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &tm);
    buf_printf(b, "%s:%s\r\n", name, text);
}

/* One content line, folded (RFC 5545 3.1): at most 75 octets a physical line, the next
 * ones starting with a space, and never a break inside a UTF-8 sequence. */
static void ics_line(struct buf *b, const char *line, size_t len)
{
    size_t room = 75;

    while (len > room) {
        size_t cut = room;
        /* Back to the first byte of the character the limit falls in. */
        while (cut > 0 && ((unsigned char)line[cut] & 0xc0) == 0x80)
            cut--;
        buf_putn(b, line, cut);
        buf_put(b, "\r\n ");
        line += cut;
        len -= cut;
        room = 74;          /* the leading space counts */
    }
    buf_putn(b, line, len);
    buf_put(b, "\r\n");
}

/* A property with a TEXT value, escaped (RFC 5545 3.3.11) and folded. */
static void ics_text(struct buf *b, const char *name, const char *s)
{
    struct buf line = { 0 };

    buf_printf(&line, "%s:", name);
    for (; *s; s++) {
        if (*s == '\\' || *s == ';' || *s == ',')
            buf_printf(&line, "\\%c", *s);
        else if (*s == '\n')
            buf_put(&line, "\\n");
        else if ((unsigned char)*s >= 0x20)
            buf_putn(&line, s, 1);
    }
    if (line.failed)
        b->failed = true;
    else
        ics_line(b, line.data, line.len);
    buf_free(&line);
}

struct ics_ctx {
    struct http_req *rq;
    struct buf *b;
    bool named;
    int64_t stamp;
};

static int ics_event(const struct store_booking *bk, void *userdata)
{
    struct ics_ctx *x = userdata;
    char text[160];

    buf_put(x->b, "BEGIN:VEVENT\r\n");
    /* Stable across requests: the booking's number and the site. */
    buf_printf(x->b, "UID:booking-%" PRId64 "@", bk->id);
    buf_put(x->b, x->rq->h->cfg->site.id);
    buf_put(x->b, ".portier\r\n");
    ics_time(x->b, "DTSTAMP", x->stamp);
    ics_time(x->b, "DTSTART", bk->start);
    ics_time(x->b, "DTEND", bk->end);
    if (x->named)
        snprintf(text, sizeof(text), "%s (booking %" PRId64 ")", bk->resource, bk->id);
    else
        snprintf(text, sizeof(text), "%s: booked", bk->resource);
    ics_text(x->b, "SUMMARY", text);
    ics_text(x->b, "LOCATION", x->rq->h->cfg->site.name);
    buf_put(x->b, "TRANSP:OPAQUE\r\nEND:VEVENT\r\n");
    return 0;
}

static void calendar(struct http_req *rq, const char *title, int64_t resource_id, int64_t member_id,
                     bool named)
{
    struct buf b = { 0 };
    int64_t now = now_utc();
    struct ics_ctx x = { rq, &b, named, now - now % 60 };
    struct store_booking_filter f = { .resource_id = resource_id, .member_id = member_id,
                                      .from = now - ICS_PAST_DAYS * 86400,
                                      .to = now + ICS_FUTURE_DAYS * 86400, .limit = ICS_EVENTS_MAX };

    buf_put(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Portier//Portier " PORTIER_VERSION
                "//EN\r\nCALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\n");
    ics_text(&b, "X-WR-CALNAME", title);
    http_store_ok(rq, store_bookings_foreach(rq->h->env.svc->store, &f, ics_event, &x));
    buf_put(&b, "END:VCALENDAR\r\n");
    http_reply(rq, 200, "text/calendar; charset=utf-8", &b);
    /* A machine's feed has no names: the same for every calendar app that polls it, until a
     * booking changes or its DTSTAMP minute ends. */
    if (!named)
        http_cache_put(rq, x.stamp + 60);
}

static void calendar_route(struct http_req *rq, const char *rest)
{
    size_t len = strlen(rest);
    char name[64], title[160];

    if (len < 5 || len - 4 >= sizeof(name) || strcmp(rest + len - 4, ".ics") != 0) {
        http_error(rq, 404, "not_found", "calendar feeds end in .ics");
        return;
    }
    memcpy(name, rest, len - 4);
    name[len - 4] = '\0';
    if (strncmp(name, "me/", 3) == 0) {
        struct store_account a;
        uint8_t hash[STORE_HASH_LEN];
        /* A private feed: the token is the only credential, kept as its hash. */
        if (!account_token_hash(name + 3, hash) ||
            store_account_by_calendar(rq->h->env.svc->store, hash, &a) < 0 || a.disabled_at ||
            !a.member_id) {
            http_error(rq, 404, "not_found", "no such calendar");
            return;
        }
        snprintf(title, sizeof(title), "%s: my bookings", rq->h->cfg->site.name);
        calendar(rq, title, 0, a.member_id, true);
        if (rq->response)
            MHD_add_response_header(rq->response, "Cache-Control", "private, no-store");
        return;
    }
    struct store_resource m;
    if (store_resource_get(rq->h->env.svc->store, name, &m) < 0 || strcmp(m.kind, "machine") != 0) {
        http_error(rq, 404, "not_found", "no machine '%.32s'", name);
        return;
    }
    snprintf(title, sizeof(title), "%s: %s", rq->h->cfg->site.name, m.name);
    calendar(rq, title, m.id, 0, false);
}

/* ---- SpaceAPI ---- */

/* Degrees (checked by the config) rounded to 6 decimals, about 0.1 m: printed by
 * http_reply_json() as 48.8686, not as the binary neighbour 48.868600000000001. */
static json_t *degrees_json(const char *text)
{
    double deg = strtod(text, NULL);
    long long micro = (long long)(deg * 1e6 + (deg < 0 ? -0.5 : 0.5));

    return json_real(micro == 0 ? 0.0 : (double)micro / 1e6);     /* never -0.0 */
}

static void spaceapi(struct http_req *rq)
{
    const struct config *cfg = rq->h->cfg;
    json_t *status = rq->h->env.svc->status(rq->h->env.svc), *doors, *o, *doc;
    json_int_t present = json_integer_value(json_object_get(status, "present"));
    char base[160], url[200], logo[200];
    bool open = false;
    size_t i;

    if (!cfg->spaceapi.enabled) {
        json_decref(status);
        http_error(rq, 404, "not_found", "SpaceAPI is off ([spaceapi] enabled = false)");
        return;
    }
    http_base_url(rq, base, sizeof(base));
    snprintf(url, sizeof(url), "%s", cfg->spaceapi.url[0] ? cfg->spaceapi.url : base);
    if (cfg->spaceapi.logo[0])
        snprintf(logo, sizeof(logo), "%s", cfg->spaceapi.logo);
    else
        snprintf(logo, sizeof(logo), "%s/static/icon.svg", base);
    doors = json_object_get(status, "doors");
    if (cfg->spaceapi.open_from == SPACEAPI_OPEN_DOORS) {
        json_array_foreach(doors, i, o)
            if (json_is_true(json_object_get(o, "free_entry")))
                open = true;
    } else {
        open = present > 0;
    }
    doc = json_pack("{s:[s], s:s, s:s, s:s, s:{s:b, s:s}, s:{}}",
                    "api_compatibility", "15", "space", cfg->site.name, "logo", logo, "url", url,
                    "state", "open", open, "message", open ? "open" : "closed", "contact");
    /* How many are in says when the place is empty: published only if the site says so. */
    if (cfg->spaceapi.publish_people)
        json_object_set_new(doc, "sensors", json_pack("{s:[{s:I, s:s}]}", "people_now_present",
                                                      "value", (json_int_t)present, "location",
                                                      cfg->site.name));
    if (cfg->spaceapi.email[0])
        json_object_set_new(json_object_get(doc, "contact"), "email",
                            json_string(cfg->spaceapi.email));
    if (cfg->spaceapi.address[0] || cfg->spaceapi.lat[0]) {
        json_t *loc = json_pack("{s:s}", "timezone", cfg->site.timezone);
        if (cfg->spaceapi.address[0])
            json_object_set_new(loc, "address", json_string(cfg->spaceapi.address));
        if (cfg->spaceapi.lat[0]) {
            json_object_set_new(loc, "lat", degrees_json(cfg->spaceapi.lat));
            json_object_set_new(loc, "lon", degrees_json(cfg->spaceapi.lon));
        }
        json_object_set_new(doc, "location", loc);
    }
    json_decref(status);
    http_reply_json(rq, 200, doc);
    if (rq->response)
        MHD_add_response_header(rq->response, "Access-Control-Allow-Origin", "*");
}

/* ---- health and metrics ---- */

static void healthz(struct http_req *rq)
{
    json_t *status = rq->h->env.svc->status(rq->h->env.svc), *o, *problems = json_array();
    size_t i;
    int64_t members = store_member_count(rq->h->env.svc->store);

    json_array_foreach(json_object_get(status, "readers"), i, o) {
        const char *health = json_string_value(json_object_get(o, "health"));
        if (health && strcmp(health, "up") != 0)
            json_array_append_new(problems, json_sprintf("reader %s is %s",
                                  json_string_value(json_object_get(o, "name")), health));
    }
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        json_t *relay = json_object_get(o, "relay");
        if (json_is_string(json_object_get(relay, "error")))
            json_array_append_new(problems, json_sprintf("door %s: relay error %s",
                                  json_string_value(json_object_get(o, "name")),
                                  json_string_value(json_object_get(relay, "error"))));
    }
    if (members < 0)
        json_array_append_new(problems, json_string("the database cannot be read"));
    json_t *storage = json_object_get(status, "storage");
    if (storage && !json_is_true(json_object_get(storage, "ok")))
        json_array_append_new(problems, json_sprintf(
            "the database cannot record (%s): %" JSON_INTEGER_FORMAT " access events held",
            json_string_value(json_object_get(storage, "error")) ?: "unknown error",
            json_integer_value(json_object_get(storage, "held_events"))));
    if (json_integer_value(json_object_get(json_object_get(status, "stats"), "store_errors")) > 0)
        json_array_append_new(problems, json_string("taps could not be recorded (store errors)"));
    bool ok = json_array_size(problems) == 0;
    /* The loop answered this request: it is running. */
    http_reply_json(rq, ok ? 200 : 503,
                    json_pack("{s:b, s:s, s:o, s:o, s:o, s:b}", "ok", ok, "status",
                              ok ? "healthy" : "degraded", "problems", problems, "readers",
                              json_incref(json_object_get(status, "readers")), "store",
                              json_pack("{s:b, s:O?}", "ok", members >= 0 &&
                                        (!storage || json_is_true(json_object_get(storage, "ok"))),
                                        "storage", storage), "loop", 1));
    json_decref(status);
    if (rq->response)
        MHD_add_response_header(rq->response, "Cache-Control", "no-store");
}

static void metric_label(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            buf_put(b, "\\n");
        else
            buf_putn(b, s, 1);
    }
}

static void metrics(struct http_req *rq)
{
    struct http *h = rq->h;
    json_t *status = h->env.svc->status(h->env.svc), *o;
    json_t *stats = json_object_get(status, "stats");
    struct buf b = { 0 };
    size_t i;

    buf_put(&b, "# HELP portier_taps_total Card taps at doors, by result.\n"
                "# TYPE portier_taps_total counter\n");
    buf_printf(&b, "portier_taps_total{result=\"granted\"} %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(stats, "granted")));
    buf_printf(&b, "portier_taps_total{result=\"denied\"} %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(stats, "denied")));
    buf_put(&b, "# HELP portier_store_errors_total Taps whose record could not be written.\n"
                "# TYPE portier_store_errors_total counter\n");
    buf_printf(&b, "portier_store_errors_total %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(stats, "store_errors")));
    buf_put(&b, "# HELP portier_door_unlocked Whether the door is unlocked (1) or locked (0).\n"
                "# TYPE portier_door_unlocked gauge\n");
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        buf_put(&b, "portier_door_unlocked{door=\"");
        metric_label(&b, json_string_value(json_object_get(o, "name")));
        buf_printf(&b, "\"} %d\n", strcmp(json_string_value(json_object_get(o, "state")) ?: "", "unlocked") == 0);
    }
    buf_put(&b, "# HELP portier_door_open Whether the door's contact reads open (1), closed (0); "
                "absent without a contact.\n# TYPE portier_door_open gauge\n");
    json_array_foreach(json_object_get(status, "doors"), i, o) {
        const char *contact = json_string_value(json_object_get(o, "contact"));
        if (!contact || strcmp(contact, "none") == 0)
            continue;
        buf_put(&b, "portier_door_open{door=\"");
        metric_label(&b, json_string_value(json_object_get(o, "name")));
        buf_printf(&b, "\"} %d\n", strcmp(contact, "open") == 0);
    }
    buf_put(&b, "# HELP portier_reader_restarts_total Reader worker restarts.\n"
                "# TYPE portier_reader_restarts_total counter\n");
    json_array_foreach(json_object_get(status, "readers"), i, o) {
        buf_put(&b, "portier_reader_restarts_total{reader=\"");
        metric_label(&b, json_string_value(json_object_get(o, "name")));
        buf_printf(&b, "\"} %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(o, "restarts")));
    }
    buf_put(&b, "# HELP portier_reader_up Whether the reader is up (1).\n# TYPE portier_reader_up gauge\n");
    json_array_foreach(json_object_get(status, "readers"), i, o) {
        buf_put(&b, "portier_reader_up{reader=\"");
        metric_label(&b, json_string_value(json_object_get(o, "name")));
        buf_printf(&b, "\"} %d\n", strcmp(json_string_value(json_object_get(o, "health")) ?: "", "up") == 0);
    }
    buf_printf(&b, "# HELP portier_people_present People checked in.\n# TYPE portier_people_present gauge\n"
               "portier_people_present %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(status, "present")));
    buf_put(&b, "# HELP portier_http_requests_total HTTP requests answered, by status class.\n"
                "# TYPE portier_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        buf_printf(&b, "portier_http_requests_total{code=\"%dxx\"} %" PRIu64 "\n", c,
                   __atomic_load_n(&h->requests[c], __ATOMIC_RELAXED));
    buf_put(&b, "# HELP portier_http_request_duration_seconds Time from a request's arrival to its "
                "completion.\n# TYPE portier_http_request_duration_seconds histogram\n");
    static const char *const edges[HTTP_LATENCY_BUCKETS] = { "0.001", "0.005", "0.01", "0.05",
                                                             "0.1", "0.5", "1", "5" };
    /* Counted by the web thread too: read one by one, the total is the buckets' sum. */
    uint64_t cum = 0, sum_us = __atomic_load_n(&h->latency_sum_us, __ATOMIC_RELAXED);
    for (int k = 0; k < HTTP_LATENCY_BUCKETS; k++) {
        cum += __atomic_load_n(&h->latency_buckets[k], __ATOMIC_RELAXED);
        buf_printf(&b, "portier_http_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                   edges[k], cum);
    }
    cum += __atomic_load_n(&h->latency_buckets[HTTP_LATENCY_BUCKETS], __ATOMIC_RELAXED);
    buf_printf(&b, "portier_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
               "portier_http_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n"
               "portier_http_request_duration_seconds_count %" PRIu64 "\n", cum,
               sum_us / 1000000, sum_us % 1000000, cum);
    json_decref(status);
    http_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

bool web_feeds_route(struct http_req *rq, const char *path)
{
    if (!rq->is_get)
        return false;
    if (strncmp(path, "/calendar/", 10) == 0)
        calendar_route(rq, path + 10);
    else if (strcmp(path, "/spaceapi.json") == 0)
        spaceapi(rq);
    else if (strcmp(path, "/healthz") == 0)
        healthz(rq);
    else if (strcmp(path, "/metrics") == 0)
        metrics(rq);
    else
        return false;
    return true;
}

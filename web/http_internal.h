/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* http_internal: what the web server's files share (http.c: server, sessions, routing;
 * pages.c: HTML; pages_members.c: members; privacy.c: the privacy page; api.c: JSON API;
 * feeds.c: calendars, SpaceAPI, health, metrics). Not for use outside them. */
#pragma once
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "command.h"
#include "commit.h"
#include "http.h"
#include "i18n.h"
#include "services.h"
#include "store.h"
#include "timer.h"

#define HTTP_FORM_FIELDS_MAX 64
#define HTTP_LATENCY_BUCKETS 8


/* Who may see a page (commands check roles themselves, in the command table). A role is
 * one bit of enum role (command.h); 0 is an anonymous visitor. */
#define WEB_MEMBERS (ROLE_MEMBER | ROLE_TRAINER | ROLE_MANAGER)
#define WEB_READERS (ROLE_CUSTODIAN | ROLE_MANAGER)
#define WEB_STAFF ROLE_MANAGER
#define WEB_ANY (ROLE_MEMBER | ROLE_TRAINER | ROLE_CUSTODIAN | ROLE_MANAGER)

struct http_req;
typedef void (*http_command_fn)(struct http_req *rq, json_t *reply);

/* An open connection: when its current request began, so that one whose headers dribble
 * in (slowloris) is cut off after [http] header_timeout_seconds. */
struct http_conn {
    struct http_conn *next;
    struct MHD_Connection *conn;
    uint64_t waiting_since;         /* CLOCK_MONOTONIC usec; 0: a request is being served */
    bool cut;
};

struct http_req {
    struct http *h;
    struct MHD_Connection *conn;
    struct http_req *next_suspended;
    const char *method, *url;       /* valid for the whole request (MHD's) */
    uint64_t started_usec;
    bool is_get, is_post, is_api;
    /* the body */
    struct buf body;
    bool body_too_large;
    json_t *args;                   /* form fields or JSON object; never NULL after parsing */
    /* who */
    struct store_account account;   /* id 0: anonymous */
    enum role role;                 /* 0: anonymous */
    enum lang lang;                 /* of the answer: Accept-Language, else [site] language */
    bool via_token;                 /* API token: no cookie, no CSRF */
    char csrf[STORE_TOKEN_TEXT_MAX + 1];
    /* the answer, once known */
    struct MHD_Response *response;
    bool response_shared;           /* owned by a cache, not by the request */
    unsigned status;
    /* waiting on a command, its commit, or a password job */
    bool suspended;
    struct cmd_call *call;          /* a command still running (an enrolment, a job) */
    struct commit_wait durable;     /* the answer waits until what it reports is on disk */
    json_t *reply;
    http_command_fn command_done;
    bool in_dispatch, answer_now;
    bool durable_checked;           /* a POST's answer waited for its writes to be on disk */
    int store_error;                /* a read for the page failed: the answer becomes a 500 */
    char note[256];                 /* scratch for handlers across a suspension */
    int64_t note_id;
};

/* ---- server (http.c) ---- */
struct http {
    struct http_env env;
    const struct config *cfg;
    struct MHD_Daemon *mhd;
    sd_event_source *io;
    struct timer *timer;                /* libmicrohttpd's next timeout */
    struct timer *watch;                /* the connections' header deadline (slowloris) */
    struct http_conn *conns;            /* every open connection */
    unsigned n_conns;
    struct http_req *suspended;
    bool tls;
    uint64_t bookings_gen_seen;
    /* login rate limits (http.c) */
    struct login_slot {
        char key[72];               /* "a:NAME" (names without an account) or "ip:ADDRESS" */
        int64_t window_start;
        int64_t last_failure;
        unsigned failures;
    } login_slots[256];
    /* /metrics */
    uint64_t requests[6];           /* by status class: 1xx..5xx, [0] unused */
    uint64_t latency_buckets[HTTP_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_us, latency_count;
    /* cached public pages (pages.c) */
    struct page_cache {
        char key[48];
        uint64_t gen;
        int64_t built_minute;
        struct MHD_Response *response;
    } cache[16];
};

/* Answers: each queues one response on rq (the last one wins if called twice). */
void http_reply(struct http_req *rq, unsigned status, const char *content_type, struct buf *body);
void http_reply_static(struct http_req *rq, unsigned status, const char *content_type,
                       const void *data, size_t len);
void http_reply_response(struct http_req *rq, unsigned status, struct MHD_Response *response);
/* The same with a response a cache keeps (it stays the cache's). */
void http_reply_shared(struct http_req *rq, unsigned status, struct MHD_Response *response);
/* JSON body (reference stolen). */
void http_reply_json(struct http_req *rq, unsigned status, json_t *body);
/* {"ok": false, "code": code, "error": message} for the API; an HTML page otherwise. */
void http_error(struct http_req *rq, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_redirect(struct http_req *rq, const char *location);
/* The HTTP status for a control error code ("not_found" -> 404, "overlap" -> 409, ...). */
unsigned http_status_of(const char *code);

/* Run the command req (stolen) through the command table as this request's account (its
 * role, account and member); done is called with the reply (borrowed) once what it reports
 * is on disk — now, or later with the connection suspended meanwhile. done may send
 * another command. */
void http_command(struct http_req *rq, json_t *req, http_command_fn done);

/* application/x-www-form-urlencoded (decoded in place) into a JSON object of strings: at
 * most HTTP_FORM_FIELDS_MAX fields, names of 1 to 64 bytes, names and values valid UTF-8,
 * no field twice. NULL and *why (static text) on anything else. */
json_t *http_parse_form(char *body, size_t len, const char **why);

/* Note a store read the answer depends on: a failure (r < 0) turns the whole answer into
 * "500, the database could not be read" rather than a page that silently lacks rows.
 * Returns r. */
int http_store_ok(struct http_req *rq, int r);

/* A query-string argument, or NULL. */
const char *http_query(struct http_req *rq, const char *key);
/* A form/JSON argument as a string, or NULL. */
const char *http_arg(struct http_req *rq, const char *key);
/* Whether rq's account may see what is for roles (a mask of WEB_* or ROLE_* bits); if not,
 * answers 401 (anonymous) or 403. Pages only: commands are checked by the command table. */
bool http_require(struct http_req *rq, unsigned roles);
/* Translate msgid into the request's language (marked for xgettext as i18n_t). */
#define L(rq, msgid) i18n_t((rq)->lang, (msgid))

/* A member's own account (member or trainer). */
static inline bool web_is_member(const struct http_req *rq)
{
    return rq->role & (ROLE_MEMBER | ROLE_TRAINER);
}
/* The base URL for links ("https://host"), from [http] base_url or the Host header. */
void http_base_url(struct http_req *rq, char *buf, size_t n);
void http_log_request(struct http_req *rq);
/* A URL (or a message quoting one) fit for a log: token-like runs replaced by "…". */
void http_redact(const char *in, char *out, size_t n);

/* ---- pages (pages.c) ---- */
bool web_pages_route(struct http_req *rq, const char *path);
/* The layout every page shares: begin writes the head and navigation, end the footer and
 * sends b as a 200 page. */
void web_page_begin(struct http_req *rq, struct buf *b, const char *title);
void web_page_end(struct http_req *rq, struct buf *b);
void web_csrf_field(struct http_req *rq, struct buf *b);
/* A command's refusal as an error page with the status its code deserves. */
void web_reply_refused(struct http_req *rq, json_t *reply);

/* ---- members (pages_members.c): /manage/members, a member's page, exports ---- */
bool web_members_route(struct http_req *rq, const char *path);
/* The way to the member list, for /manage. */
void web_members_manage_link(struct http_req *rq, struct buf *b);
/* /me's part: "Download my data" and the privacy page. */
void web_me_privacy(struct http_req *rq, struct buf *b);

/* ---- the privacy page (privacy.c): /privacy ---- */
bool web_privacy_route(struct http_req *rq, const char *path);
void web_page_login_done(struct http_req *rq, bool ok, const char *why);
void web_cache_clear(struct http *h);
/* "free", "in_use" or "out_of_order", from the store and the interlocks' state in status
 * (the `portierctl status` object). */
const char *web_machine_state(const struct store_resource *m, json_t *status);

/* ---- API (api.c) ---- */
bool web_api_route(struct http_req *rq, const char *path);

/* ---- feeds (feeds.c) ---- */
bool web_feeds_route(struct http_req *rq, const char *path);

/* ---- static assets (generated from web/ at build time) ---- */
struct web_asset {
    const char *path;               /* "/static/style.css" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};
extern const struct web_asset web_assets[];
extern const size_t web_assets_count;
const struct web_asset *web_asset_find(const char *path);

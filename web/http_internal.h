/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* http_internal: what the web server's files share. Not for use outside them.
 *
 *   http.c           the server: libmicrohttpd glue, sessions, CSRF, login, answers
 *   routes.c         the one table of the pages' routes
 *   layout.c         the page around every page (header, navigation, footer, error pages)
 *   pages_public.c   /, /bookings: what anyone sees
 *   pages_booking.c  /machines/NAME: the slots, booking and cancelling
 *   pages_me.c       /me, /login, /welcome: a person's own pages
 *   pages_manage.c   /manage and its tasks (a table: add a task there)
 *   pages_reports.c  /usage, /usage.csv, /ledger and the period archives
 *   kiosk.c          /kiosk/TOKEN: the entrance screen and its event stream
 *   pages_members.c  /manage/members, a member's page, exports; /manage/plans
 *   privacy.c        /privacy
 *   api.c            the JSON API; feeds.c: calendars, SpaceAPI, health, metrics */
#pragma once
#include <jansson.h>
#include <pthread.h>
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
#include "wakeup.h"

#define HTTP_FORM_FIELDS_MAX 64
#define HTTP_CACHE_KEY_MAX 192
#define HTTP_LATENCY_BUCKETS 8


/* Who may see a page (commands check roles themselves, in the command table). A role is
 * one bit of enum role (command.h); 0 is an anonymous visitor. */
#define WEB_MEMBERS (ROLE_MEMBER | ROLE_TRAINER | ROLE_MANAGER)
#define WEB_READERS (ROLE_CUSTODIAN | ROLE_MANAGER)
#define WEB_STAFF ROLE_MANAGER
#define WEB_ANY (ROLE_MEMBER | ROLE_TRAINER | ROLE_CUSTODIAN | ROLE_MANAGER)

struct http_req;
typedef void (*http_command_fn)(struct http_req *rq, json_t *reply);
typedef bool (*http_step_fn)(struct http_req *rq, void *ctx);

/* A place of a template (see http_template_begin()): 16 bytes, a week of 10,000 bookings
 * has as many. */
#define HTTP_FILLS_MAX 15
struct http_place {
    uint32_t at;                    /* offset in the template's body */
    uint32_t text : 28;             /* offset of its text in the template's text */
    uint32_t fill : 4;              /* its fill function: fills[fill - 1]; 0 when used */
    int64_t id;
};
typedef void (*http_fill_fn)(struct http_req *rq, struct buf *b, const char *text, int64_t id);

/* An open connection: when its current request began, so that one whose headers dribble
 * in (slowloris) is cut off after [http] header_timeout_seconds, and one whose body does
 * after timeout_seconds. Kept by the web thread; the list and the two deadlines' times are
 * read by the loop (on_watch), under struct http's lock and with atomic loads. */
struct http_conn {
    struct http_conn *next;
    struct MHD_Connection *conn;
    uint64_t waiting_since;         /* CLOCK_MONOTONIC usec: awaiting headers since; 0: in */
    uint64_t reading_since;         /* the headers are in, the body is awaited; 0: all in */
    uint64_t cached_since;          /* its request is answered from the page cache: since */
    char cached_key[HTTP_CACHE_KEY_MAX]; /* that answer's key, from on_access()'s first call
                                          * to its second */
    bool cut;
};

/* The cache of anonymous pages (http.c). A page that is the same for every visitor until a
 * booking or machine changes (or until expires_at) is kept as a ready response, and a later
 * anonymous GET of the same address, in the same language, is answered from it before
 * anything else is done: no session lookup, no routing, no building. */
#define HTTP_CACHE_SLOTS 16
#define HTTP_TEMPLATE_SLOTS 4
struct http_cached {
    char key[HTTP_CACHE_KEY_MAX];   /* "LANG path?query" */
    uint64_t gen;                   /* store_generation() when it was built */
    int64_t expires_at;             /* UTC seconds; 0: until the generation changes */
    struct MHD_Response *response;
};

struct http_req {
    struct http *h;
    struct MHD_Connection *conn;
    struct http_req *next_suspended;    /* in struct http's suspended list */
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
    char cache_key[HTTP_CACHE_KEY_MAX];    /* anonymous GET: where the cache would keep it */
    char template_key[HTTP_CACHE_KEY_MAX]; /* GET: where a template of its page would be */
    bool templating;                /* building a template: places are left open */
    int64_t template_expires;       /* of the template being built (UTC; 0: none) */
    struct http_place *places;      /* while templating: what each place is */
    unsigned n_places, cap_places;
    http_fill_fn fills[HTTP_FILLS_MAX];
    unsigned n_fills;
    struct buf place_text;          /* their texts, each '\0'-terminated */
    /* where it is: read by the web thread (libmicrohttpd's) until its whole is in, then the
     * loop's (with_loop: its connection suspended meanwhile) until answered, then the web
     * thread's again until it ends; the loop frees it (http.c) */
    bool with_loop, answered;
    bool stream;                    /* its answer is a stream (kiosk.c): let go of at its end */
    struct http_req *next_queued;   /* in the loop's queue, the "ended" list, or the spares */
    uint64_t ended_usec;            /* how long it took */
    char ended_method[16];          /* for the loop's log line, once libmicrohttpd let go */
    char ended_url[160];            /* redacted */
    /* the answer, once known */
    struct MHD_Response *response;
    const char *reply_data;         /* the body of response when http_reply() or
                                     * http_reply_static() made it (MHD's) */
    size_t reply_len;
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
    const void *note_ptr;
    /* a page built in steps (http_steps()), and the requests for the same template that
     * wait for it rather than build it again */
    http_step_fn step;
    void (*step_free)(void *ctx);
    void *step_ctx;
    unsigned steps;                     /* taken so far, the page's first one included */
    uint64_t step_max_usec;             /* the longest of those after the first */
    struct http_req *next_stepping;     /* in struct http's stepping list */
    struct http_req *template_waiters, *next_waiter;
    uint64_t template_gen;              /* store_generation() when its template began */
};

/* ---- server (http.c) ---- */
struct http {
    struct http_env env;
    const struct config *cfg;
    struct MHD_Daemon *mhd;
    struct timer *watch;                /* the connections' header deadline (slowloris) */
    struct timer *trim;                 /* quiet after a burst: memory given back */
    struct http_conn *conns;            /* every open connection (under lock) */
    unsigned n_conns;
    unsigned cuts_unlogged;             /* slow clients cut since the last log line */
    uint64_t cuts_logged_usec;
    struct http_req *suspended;
    struct http_req *stepping;          /* pages built in steps, in turn (http_steps()) */
    sd_event_source *next_step;
    bool tls;
    bool sendfile;                  /* cached pages go out with sendfile(2) (http_cache_put) */
    uint64_t bookings_gen_seen;
    /* login rate limits (http.c) */
    struct login_slot {
        char key[72];               /* "a:NAME" (names without an account) or "ip:ADDRESS" */
        int64_t window_start;
        int64_t last_failure;
        unsigned failures;
    } login_slots[256];
    /* /metrics (counted by both threads: atomic adds) */
    uint64_t requests[6];           /* by status class: 1xx..5xx, [0] unused */
    uint64_t latency_buckets[HTTP_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_us;
    /* What the web thread shares with the loop, under lock: the requests it hands over
     * (inbox) and those that ended (ended), the connections (conns), the page cache. The
     * loop serves its queue one request per pass (next_turn). */
    pthread_mutex_t lock;
    struct wakeup *wake;                /* the web thread wakes the loop */
    bool woken;                         /* a wake-up is on its way (no second write) */
    bool stopping;                      /* the web thread hands nothing over any more */
    bool conns_changed;                 /* the first opened or the last closed */
    struct http_req *inbox_head, *inbox_tail, *ended;
    /* Ended requests the web thread takes again: in the steady state nothing is allocated
     * in one thread and freed in the other (see request_end()). The loop gives them back a
     * batch at a time (spare, under lock); the web thread takes them all at once into its
     * own list (web_spare: libmicrohttpd runs one thread). */
    struct http_req *spare, *web_spare;
    unsigned n_spare;
    struct http_req *queue_head, *queue_tail;   /* the loop's, oldest first */
    sd_event_source *next_turn;
    /* The answer the loop built last, while the web thread sends it (serve_one()) */
    struct http_req *sending;
    uint64_t sending_since;             /* CLOCK_MONOTONIC usec */
    struct timer *turn_timer;           /* a slow reader is waited for no longer */
    int web_nice;                       /* the web thread's nice, below the loop's */
    bool web_started;                   /* the web thread's: web_thread_start() ran */
    /* [site] language and [http] max_body_kib, as the web thread reads them (a reload
     * replaces cfg under it) */
    int site_language;
    size_t max_body;
    struct http_cached cache[HTTP_CACHE_SLOTS];
    struct http_template {
        char key[HTTP_CACHE_KEY_MAX];
        uint64_t gen;
        int64_t expires_at;         /* UTC seconds; 0: until the generation changes */
        char content_type[48];
        struct buf body;            /* the page without its places */
        struct http_place *places;  /* in the order of their offsets */
        unsigned n_places;
        http_fill_fn fills[HTTP_FILLS_MAX];
        struct buf text;
    } templates[HTTP_TEMPLATE_SLOTS];
    struct kiosk_hub *kiosk;            /* entrance screens (kiosk.c) */
};

/* Answers: each queues one response on rq (the last one wins if called twice). */
void http_reply(struct http_req *rq, unsigned status, const char *content_type, struct buf *body);
void http_reply_static(struct http_req *rq, unsigned status, const char *content_type,
                       const void *data, size_t len);
void http_reply_response(struct http_req *rq, unsigned status, struct MHD_Response *response);
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
/* The singular or plural of a message for n, in the request's language. */
#define LN(rq, singular, plural, n) i18n_nt((rq)->lang, (singular), (plural), (n))
/* printf into a buffer with a translated format (the translation keeps its specifiers:
 * check_i18n.py). Returns buf. */
char *web_format(char *buf, size_t n, const char *translated_fmt, ...);
/* A time in the site's zone, in the request's language (i18n_time). Returns buf. */
char *web_time(const struct http_req *rq, int64_t t, enum i18n_time_style style, char *buf,
               size_t n);
/* The abbreviation of the site's zone at t ("CET", "CEST"). Returns buf. */
char *web_zone(int64_t t, char *buf, size_t n);
/* "30 min", "1 h", "1 h 30", "2 days" (i18n). */
char *web_duration(const struct http_req *rq, int64_t minutes, char *buf, size_t n);
/* A path the page may send the browser back to (a local absolute path), else NULL. */
const char *web_local_path(const char *path);
/* Parse "YYYY-MM-DD" (local midnight) or "YYYY-MM-DDTHH:MM" (local); -EINVAL. */
int web_parse_local(const char *text, bool date_only, int64_t *ret);
/* "YYYY-MM-DD" / "YYYY-MM-DDTHH:MM" of t, local: as forms and links write them. */
void web_date_text(int64_t t, char buf[11]);
void web_datetime_text(int64_t t, char buf[17]);
/* Local midnight of the day holding t, add_days later; a local time on that day. */
int64_t web_midnight(int64_t t, int add_days);
int64_t web_local_at(int64_t midnight, int minutes);

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

/* ---- pages built once, filled in for each viewer ----
 *
 * A page that is the same for every viewer but for a few places — the header (the viewer's
 * account, a log-out form with its CSRF token), the names a viewer may see — is built once
 * per store generation and language as a template, with those places left open; each view
 * then costs copying the template and filling the places for its viewer, whatever the size
 * of the page (the bookings week of 10,000 bookings: about 0.1 ms instead of 35 ms).
 *
 * A page does:
 *     if (http_template_reply(rq)) return;        (a current template answered rq)
 *     http_template_begin(rq, expires_at);
 *     ... build into b; where the text depends on the viewer, http_place(rq, b, fill, ...)
 *     http_template_put(rq, &b, content_type);   (keeps it, and answers rq from it)
 * Outside a template, http_place() fills the place at once, so a page's code is the same
 * either way. The template must not depend on the viewer anywhere else: everything from
 * people or the database goes through buf_html() (a place is marked in the bytes with
 * "<\x01", which escaped text cannot contain). */
/* Where fill(rq, b, text, id) writes for each viewer; text (copied) and id are the page's. */
void http_place(struct http_req *rq, struct buf *b, http_fill_fn fill, const char *text,
                int64_t id);
bool http_template_reply(struct http_req *rq);
/* expires_at: UTC seconds when the page would read differently without any change in the
 * store (a new week begins); 0: only a change in the store. */
void http_template_begin(struct http_req *rq, int64_t expires_at);
/* Leave a template being built (an error page is answered instead): places fill at once. */
void http_template_cancel(struct http_req *rq);
/* Takes b. Answers rq (200) from the template; an anonymous answer also goes to the page
 * cache. If the template cannot be kept (memory), rq is answered all the same. */
void http_template_put(struct http_req *rq, struct buf *b, const char *content_type);
/* True between http_template_begin() and http_template_put(). */
static inline bool http_templating(const struct http_req *rq) { return rq->templating; }

/* ---- pages built in steps ----
 *
 * A page whose building grows with the site (the bookings week of a busy site: 10,000
 * bookings, 11 ms) is built one bounded step per turn, its request suspended in between, so
 * that a door's tap waits behind one step at most, never behind the whole page. The page
 * does its first step at once; if there is more to do, it calls
 *     http_steps(rq, step, free_ctx, ctx);
 * and step(rq, ctx) is called again, one call per turn of the loop (after the doors, the
 * commits and the replies; pages in steps take turns), until it returns false, by then
 * having answered rq (an error page is an answer). free_ctx(ctx) is called after the last
 * step, or when the request ends otherwise (the controller stopping). A step that reads the
 * store sees what changed since the step before: a page that must be read at one moment
 * compares store_generation() between steps and starts again.
 *
 * While a page in steps builds a template (http_template_begin()), other requests for the
 * same template wait for it (http_template_reply() takes them), then are served again from
 * the template once it is kept. */
void http_steps(struct http_req *rq, http_step_fn step, void (*free_ctx)(void *ctx), void *ctx);

/* Keep rq's answer (a 200 to an anonymous GET) in the page cache, until a booking or a
 * machine changes or until expires_at (UTC seconds; 0: no other limit): later visitors of the
 * same address in the same language get it without anything being built. Does nothing for
 * other requests. The page must not depend on anything but its address, its language, the
 * store's bookings and machines and the time before expires_at. */
void http_cache_put(struct http_req *rq, int64_t expires_at);
/* Forget every cached page (a new configuration). */
void http_cache_clear(struct http *h);

/* ---- the layout (layout.c) ---- */
/* The page's head, header and navigation; then the page writes its <main> content. */
void web_page_begin(struct http_req *rq, struct buf *b, const char *title);
/* Close the page and answer it with status. */
void web_page_end(struct http_req *rq, struct buf *b, unsigned status);
void web_csrf_field(struct http_req *rq, struct buf *b);
/* A notice at the top of a page: role=status (done) or role=alert (refused). */
void web_notice(struct buf *b, bool ok, const char *text);
/* An error page inside the site's layout (http_error uses it for HTML). */
void web_error_page(struct http_req *rq, unsigned status, const char *message);

/* ---- pages (routes.c and the pages_*.c) ---- */
bool web_pages_route(struct http_req *rq, const char *path);

/* The managers' tasks as a navigation (pages_manage.c), current (a task's name) marked. */
void web_manage_nav(struct http_req *rq, struct buf *b, const char *current);

/* ---- members (pages_members.c): /manage/members, a member's page, exports ---- */
bool web_members_route(struct http_req *rq, const char *path);
/* /me's part: "Download my data" and the privacy page. */
void web_me_privacy(struct http_req *rq, struct buf *b);

/* ---- the privacy page (privacy.c): /privacy ---- */
bool web_privacy_route(struct http_req *rq, const char *path);
void web_page_login_done(struct http_req *rq, bool ok, const char *why);
/* The login form, with an error (translated) or NULL. */
void web_login_form(struct http_req *rq, const char *error);
/* "free", "in_use" or "out_of_order", from the store and the interlocks' state in status
 * (the `portierctl status` object). */
const char *web_machine_state(const struct store_resource *m, json_t *status);
/* The same in the request's language, as people read it. */
const char *web_machine_state_text(struct http_req *rq, const char *state);
/* Whether the machine is powered for a session (its interlock's state in status). */
bool web_machine_powered(const char *name, json_t *status);
/* Whether the space counts as open: someone is in, or a door lets anyone in. */
bool web_site_open(json_t *status);
/* Who may see a booking's member name: managers, and the member themselves. */
bool web_may_see_name(const struct http_req *rq, int64_t member_id);
/* The controller said no: its message (already in the request's language), with the status
 * its code deserves. */
void web_reply_refused(struct http_req *rq, json_t *reply);
bool web_reply_ok(json_t *reply);
/* A cancel button for a booking (asks first with JavaScript); back: where to return. */
void web_cancel_form(struct http_req *rq, struct buf *b, int64_t id, const char *back);

/* The machines, read from the store (pages_common.c); free() it. NULL: out of memory. */
struct web_machines {
    unsigned n;
    struct store_resource m[CONFIG_MAX_MACHINES * 4];
};
struct web_machines *web_machines_load(struct http_req *rq);
/* <option>s of names (resources of kind, trainings, readers...), one selected. */
void web_option(struct buf *b, const char *value, const char *label, bool selected);
/* A form field's value sent back after a refusal, else def: forms keep what was typed. */
const char *web_arg_or(struct http_req *rq, const char *key, const char *def);

/* The route handlers (routes.c's table). rest: what follows the route's prefix. */
void page_home(struct http_req *rq, const char *rest);
void page_week(struct http_req *rq, const char *rest);
void page_machine(struct http_req *rq, const char *rest);
void post_booking(struct http_req *rq, const char *rest);
void post_booking_change(struct http_req *rq, const char *rest);
void page_login(struct http_req *rq, const char *rest);
void page_welcome(struct http_req *rq, const char *rest);
void page_me(struct http_req *rq, const char *rest);
void post_me_calendar(struct http_req *rq, const char *rest);
void post_me_language(struct http_req *rq, const char *rest);
void page_manage(struct http_req *rq, const char *rest);
void post_manage(struct http_req *rq, const char *rest);
void page_usage(struct http_req *rq, const char *rest);
void page_usage_csv(struct http_req *rq, const char *rest);
void page_ledger(struct http_req *rq, const char *rest);
void page_archive(struct http_req *rq, const char *rest);
void page_kiosk(struct http_req *rq, const char *rest);

/* ---- entrance screens (kiosk.c) ---- */
int web_kiosk_new(struct http *h);
/* Before libmicrohttpd stops: no more news, every stream resumed to end. */
void web_kiosk_stop(struct http *h);
/* After it stopped. */
void web_kiosk_free(struct http *h);
/* Something a screen shows changed (enum services_news bits): screens hear it soon. */
void web_kiosk_news(struct http *h, unsigned what);

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

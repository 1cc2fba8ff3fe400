/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "accounts.h"
#include "fablab.h"
#include "fileio.h"
#include "http_internal.h"
#include "log.h"
#include "password.h"
#include "priorities.h"
#include "realtime.h"
#include "util.h"
#include "wakeup.h"

/* The loop's side of the web (requests the web thread hands over): after readers, inputs (0)
 * and the commit (10); level with control replies, so a busy web page neither starves
 * portierctl nor is starved by it. */
#define HTTP_PRIORITY PRIORITY_REPLIES
#define SESSION_COOKIE "portier_session"
#define PRE_COOKIE "portier_pre"        /* login and first-password forms: double submit */
#define LOGIN_WINDOW_SEC (15 * 60)
#define LOGIN_FAILURES_PER_ADDRESS 20   /* then the address waits out the window */
#define LOGIN_FREE_FAILURES 3           /* an account's failures before it must wait */
#define LOGIN_DELAY_MAX_SEC 60          /* the longest an account's owner ever waits */
#define TRIM_AFTER_IDLE_USEC (2 * 1000000ull)
/* The web thread's nice above the loop's (a higher nice, a lower priority). */
#define WEB_THREAD_NICE_ABOVE 5
/* Ended requests kept for the web thread to take again, and the largest body buffer kept
 * with one. */
#define HTTP_SPARE_MAX 64
#define HTTP_SPARE_BODY_MAX (16 * 1024)
/* How long the loop waits for the web thread to send its last page before it builds the
 * next one anyway (serve_one()). */
#define HTTP_SENDING_WAIT_USEC 2000

static const char security_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/* ---- answers ---- */

static void add_security_headers(struct http *h, struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", security_csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (h->tls)
        MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
}

void http_reply_response(struct http_req *rq, unsigned status, struct MHD_Response *response)
{
    if (rq->response)
        MHD_destroy_response(rq->response);
    rq->response = response;
    rq->reply_data = NULL;
    rq->reply_len = 0;
    rq->status = status;
}

static struct MHD_Response *response_new(struct http *h, const char *content_type,
                                         const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return NULL;
    add_security_headers(h, r);
    if (content_type)
        MHD_add_response_header(r, "Content-Type", content_type);
    return r;
}

void http_reply(struct http_req *rq, unsigned status, const char *content_type, struct buf *body)
{
    struct MHD_Response *r;

    if (body->failed) {
        buf_free(body);
        http_reply_static(rq, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
        return;
    }
    r = response_new(rq->h, content_type, body->data ? body->data : "", body->len,
                      body->data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        buf_free(body);
        return;
    }
    if (rq->account.id)
        MHD_add_response_header(r, "Cache-Control", "no-store");
    http_reply_response(rq, status, r);
    rq->reply_data = body->data;        /* for the cache, while the response lives */
    rq->reply_len = body->len;
    memset(body, 0, sizeof(*body));     /* MHD frees it */
}

void http_reply_static(struct http_req *rq, unsigned status, const char *content_type,
                       const void *data, size_t len)
{
    struct MHD_Response *r = response_new(rq->h, content_type, data, len, MHD_RESPMEM_PERSISTENT);
    if (r) {
        http_reply_response(rq, status, r);
        rq->reply_data = data;
        rq->reply_len = len;
    }
}

void http_reply_json(struct http_req *rq, unsigned status, json_t *body)
{
    struct buf b = { 0 };
    /* Reals with 15 significant digits, which print a value rounded to a few decimals as
     * written; jansson's default 17 show its binary noise. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

    json_decref(body);
    if (!text) {
        static const char fallback[] =
            "{\"ok\":false,\"code\":\"internal\",\"error\":\"cannot encode the reply\"}\n";
        http_reply_static(rq, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    buf_put(&b, text);
    buf_put(&b, "\n");
    free(text);
    http_reply(rq, status, "application/json", &b);
}

int http_store_ok(struct http_req *rq, int r)
{
    if (r < 0 && !rq->store_error)
        rq->store_error = r;
    return r;
}

unsigned http_status_of(const char *code)
{
    static const struct { const char *code; unsigned status; } map[] = {
        { "bad_request", 400 }, { "invalid_times", 400 }, { "too_large", 413 }, { "not_found", 404 }, { "ambiguous", 409 },
        { "exists", 409 }, { "overlap", 409 }, { "cancelled", 409 }, { "in_past", 409 },
        { "deadline_passed", 409 }, { "disabled", 409 }, { "forbidden", 403 },
        { "unauthorized", 401 }, { "busy", 503 }, { "timeout", 504 }, { "store", 500 },
        { "internal", 500 }, { "unknown_command", 404 }, { "not_recorded", 503 },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].code, code) == 0)
            return map[i].status;
    return 409;     /* a rule said no: booking_*, period_closed, ... */
}

void http_error(struct http_req *rq, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    /* In the request's language: fmt is a msgid (po/fr.po keeps its specifiers). */
    fmt = L(rq, fmt);
    va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
    va_end(ap);
    utf8_sanitize(msg);
    if (rq->is_api) {
        http_reply_json(rq, status, json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", msg));
        return;
    }
    /* Inside the site's layout: its header lets the visitor go on from here (not a template
     * the page had begun). */
    http_template_cancel(rq);
    web_error_page(rq, status, msg);
}

void http_redirect(struct http_req *rq, const char *location)
{
    struct MHD_Response *r = response_new(rq->h, "text/plain; charset=utf-8", "", 0,
                                          MHD_RESPMEM_PERSISTENT);
    if (!r)
        return;
    MHD_add_response_header(r, "Location", location);
    http_reply_response(rq, 303, r);
}

static void set_cookie(struct http_req *rq, const char *name, const char *value, int64_t max_age)
{
    char c[256];

    snprintf(c, sizeof(c), "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%" PRId64 "%s",
             name, value, max_age, rq->h->tls ? "; Secure" : "");
    if (rq->response)
        MHD_add_response_header(rq->response, "Set-Cookie", c);
}

/* ---- the cache of anonymous pages ---- */

struct key_ctx {
    char *buf;
    size_t len, cap;
    bool overflow;
};

static enum MHD_Result key_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct key_ctx *k = cls;
    int n = snprintf(k->buf + k->len, k->cap - k->len, "%s%s=%s", k->len ? "&" : "", key,
                     value ? value : "");
    if (n < 0 || (size_t)n >= k->cap - k->len) {
        k->overflow = true;
        return MHD_NO;
    }
    k->len += (size_t)n;
    return MHD_YES;
}

/* The cache key of an anonymous GET: "LANG path?a=1&b=2" (arguments in the order sent).
 * false if it does not fit (not cached). */
static bool cache_key(struct MHD_Connection *conn, const char *url, enum lang lang, char *buf,
                      size_t n)
{
    char args[HTTP_CACHE_KEY_MAX];
    struct key_ctx k = { args, 0, sizeof(args), false };
    int len;

    args[0] = '\0';
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, key_arg, &k);
    len = snprintf(buf, n, "%s %s?%s", i18n_code(lang), url, args);
    return !k.overflow && len > 0 && (size_t)len < n;
}

static bool cache_fresh(struct http *h, const struct http_cached *c, int64_t now)
{
    return c->response && c->gen == store_generation(h->env.svc->store) &&
           (c->expires_at == 0 || now < c->expires_at);
}

/* The cache's page at key, or NULL. The caller holds h->lock: the web thread looks pages up
 * and queues them, the loop puts and clears them. */
static struct MHD_Response *cache_find(struct http *h, const char *key)
{
    int64_t now = now_utc();

    for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++)
        if (cache_fresh(h, &h->cache[i], now) && strcmp(h->cache[i].key, key) == 0)
            return h->cache[i].response;
    return NULL;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    return MHD_add_response_header(cls, key, value) == MHD_YES ? MHD_YES : MHD_NO;
}

/* The cache's own copy of r (the request's answer, whose body is len bytes at data), with
 * the same headers; NULL if it cannot be had. The request keeps its own: the loop may replace
 * the cache's page before the web thread has queued the request's answer.
 * Without TLS, the body is kept in a sealed memfd: libmicrohttpd sends a cached page to
 * each client with sendfile(2), from the page cache and with no copy through portierd (as
 * nginx serves a static file), and the cache's pages are not heap. */
static struct MHD_Response *response_copy(struct http *h, struct MHD_Response *r,
                                          const char *data, size_t len)
{
    struct MHD_Response *m = NULL;
    int fd = h->sendfile ? memfd_create("portier-page", MFD_CLOEXEC | MFD_ALLOW_SEALING) : -1;

    if (fd >= 0 &&
        (file_write_full(fd, data, len) < 0 ||
         fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 ||
         !(m = MHD_create_response_from_fd64(len, fd)))) {
        close(fd);
        return NULL;
    }
    if (!m && !(m = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY)))
        return NULL;
    if (MHD_get_response_headers(r, copy_header, m) < 0) {
        MHD_destroy_response(m);        /* closes fd */
        return NULL;
    }
    return m;
}

/* rq's answer in the page cache, as read at generation gen. */
static void cache_put(struct http_req *rq, int64_t expires_at, uint64_t gen)
{
    struct http *h = rq->h;
    struct http_cached *slot = NULL;
    struct MHD_Response *page, *old;
    int64_t now = now_utc();

    if (!rq->cache_key[0] || rq->role || rq->status != 200 || !rq->response ||
        !rq->reply_data || rq->store_error)
        return;
    page = response_copy(h, rq->response, rq->reply_data, rq->reply_len);
    if (!page)
        return;                         /* not cached: built again next time */
    pthread_mutex_lock(&h->lock);
    /* The same key, else a free or stale slot, else the first. */
    for (size_t i = 0; i < HTTP_CACHE_SLOTS && !slot; i++)
        if (h->cache[i].response && strcmp(h->cache[i].key, rq->cache_key) == 0)
            slot = &h->cache[i];
    for (size_t i = 0; i < HTTP_CACHE_SLOTS && !slot; i++)
        if (!cache_fresh(h, &h->cache[i], now))
            slot = &h->cache[i];
    if (!slot)
        slot = &h->cache[0];
    old = slot->response;
    snprintf(slot->key, sizeof(slot->key), "%s", rq->cache_key);
    slot->gen = gen;
    slot->expires_at = expires_at;
    slot->response = page;
    pthread_mutex_unlock(&h->lock);
    if (old)
        MHD_destroy_response(old);  /* connections sending it keep their reference */
}

void http_cache_put(struct http_req *rq, int64_t expires_at)
{
    cache_put(rq, expires_at, store_generation(rq->h->env.svc->store));
}

static void templates_clear(struct http *h);
static void suspend(struct http_req *rq);

void http_cache_clear(struct http *h)
{
    struct MHD_Response *old[HTTP_CACHE_SLOTS];

    templates_clear(h);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
        old[i] = h->cache[i].response;
        memset(&h->cache[i], 0, sizeof(h->cache[i]));
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++)
        if (old[i])
            MHD_destroy_response(old[i]);
}

/* ---- templates: pages built once, filled in for each viewer ---- */

#define PLACE_MARK "<\x01"

void http_place(struct http_req *rq, struct buf *b, http_fill_fn fill, const char *text,
                int64_t id)
{
    struct http_place *p;
    unsigned f;

    if (!rq->templating) {
        fill(rq, b, text ? text : "", id);
        return;
    }
    for (f = 0; f < rq->n_fills && rq->fills[f] != fill; f++)
        ;
    if (f == rq->n_fills) {
        if (f == HTTP_FILLS_MAX) {
            b->failed = true;
            return;
        }
        rq->fills[rq->n_fills++] = fill;
    }
    if (rq->place_text.len >= (1u << 28) || b->len >= UINT32_MAX / 2) {
        b->failed = true;
        return;
    }
    if (rq->n_places == rq->cap_places) {
        unsigned cap = rq->cap_places ? rq->cap_places * 2 : 256;
        struct http_place *more = realloc(rq->places, cap * sizeof(*more));
        if (!more) {
            b->failed = true;           /* the page is answered "out of memory" */
            return;
        }
        rq->places = more;
        rq->cap_places = cap;
    }
    p = &rq->places[rq->n_places];
    p->fill = f + 1;
    p->id = id;
    p->text = (uint32_t)rq->place_text.len;
    buf_put(&rq->place_text, text ? text : "");
    buf_putn(&rq->place_text, "", 1);
    buf_printf(b, PLACE_MARK "%u>", rq->n_places++);
}

static bool template_key(struct http_req *rq)
{
    if (!rq->template_key[0] && !cache_key(rq->conn, rq->url, rq->lang, rq->template_key,
                                           sizeof(rq->template_key)))
        rq->template_key[0] = '\0';
    return rq->template_key[0] != '\0';
}

/* rq's page from template t: its bytes with the places filled for rq's viewer. */
static void template_answer(struct http_req *rq, const struct http_template *t)
{
    struct buf out = { 0 };
    size_t from = 0;

    buf_reserve(&out, t->body.len + t->body.len / 16);
    for (unsigned i = 0; i < t->n_places; i++) {
        const struct http_place *p = &t->places[i];
        buf_putn(&out, t->body.data + from, p->at - from);
        t->fills[p->fill - 1](rq, &out, t->text.data + p->text, p->id);
        from = p->at;
    }
    buf_putn(&out, t->body.data + from, t->body.len - from);
    http_reply(rq, 200, t->content_type, &out);
    if (!rq->role)
        cache_put(rq, t->expires_at, t->gen);  /* read at the template's generation */
}

bool http_template_reply(struct http_req *rq)
{
    struct http *h = rq->h;

    if (!rq->is_get || !template_key(rq))
        return false;
    for (size_t i = 0; i < HTTP_TEMPLATE_SLOTS; i++) {
        struct http_template *t = &h->templates[i];
        if (t->body.data && t->gen == store_generation(h->env.svc->store) &&
            (t->expires_at == 0 || now_utc() < t->expires_at) &&
            strcmp(t->key, rq->template_key) == 0) {
            template_answer(rq, t);
            return true;
        }
    }
    /* Being built in steps: wait for it rather than build it a second time. */
    for (struct http_req *b = h->stepping; b; b = b->next_stepping)
        if (b->templating && b->template_gen == store_generation(h->env.svc->store) &&
            strcmp(b->template_key, rq->template_key) == 0) {
            rq->next_waiter = b->template_waiters;
            b->template_waiters = rq;
            suspend(rq);
            return true;
        }
    return false;
}

void http_template_begin(struct http_req *rq, int64_t expires_at)
{
    rq->templating = rq->is_get && template_key(rq);
    rq->template_expires = expires_at;
    /* What it is built from: a change while it builds (in steps) leaves it stale at once. */
    rq->template_gen = store_generation(rq->h->env.svc->store);
}

void http_template_cancel(struct http_req *rq)
{
    rq->templating = false;
    free(rq->places);
    rq->places = NULL;
    rq->n_places = rq->cap_places = 0;
    rq->n_fills = 0;
    buf_free(&rq->place_text);
}

static void template_free(struct http_template *t)
{
    buf_free(&t->body);
    buf_free(&t->text);
    free(t->places);
    memset(t, 0, sizeof(*t));
}

void http_template_put(struct http_req *rq, struct buf *b, const char *content_type)
{
    struct http *h = rq->h;
    struct http_template t = { 0 }, *slot = NULL;
    size_t from = 0;
    const char *mark;

    if (!rq->templating) {
        http_reply(rq, 200, content_type, b);
        return;
    }
    rq->templating = false;
    /* The places out of the bytes: the body without their marks, and the places in the
     * order they appear (a page may assemble its parts in another order than it made them). */
    t.text = rq->place_text;
    memset(&rq->place_text, 0, sizeof(rq->place_text));
    t.places = rq->n_places ? calloc(rq->n_places, sizeof(*t.places)) : NULL;
    if (rq->n_places && !t.places)
        b->failed = true;
    memcpy(t.fills, rq->fills, sizeof(t.fills));
    /* The output of a view is about as long as the template: one allocation. */
    if (!buf_reserve(&t.body, b->len))
        b->failed = true;
    while (!b->failed && (mark = memmem(b->data + from, b->len - from, PLACE_MARK, 2))) {
        char *end;
        unsigned long k = strtoul(mark + 2, &end, 10);
        if (*end != '>' || k >= rq->n_places || !rq->places[k].fill || t.n_places == rq->n_places) {
            b->failed = true;           /* a mark the page did not make: never answered */
            break;
        }
        buf_putn(&t.body, b->data + from, (size_t)(mark - (b->data + from)));
        t.places[t.n_places] = rq->places[k];
        t.places[t.n_places++].at = (uint32_t)t.body.len;
        rq->places[k].fill = 0;         /* each place once */
        from = (size_t)(end + 1 - b->data);
    }
    free(rq->places);
    rq->places = NULL;
    rq->n_places = rq->cap_places = 0;
    if (!b->failed)
        buf_putn(&t.body, b->data + from, b->len - from);
    snprintf(t.key, sizeof(t.key), "%s", rq->template_key);
    snprintf(t.content_type, sizeof(t.content_type), "%s", content_type);
    t.gen = rq->template_gen;
    t.expires_at = rq->template_expires;
    if (b->failed || t.body.failed || t.text.failed || rq->store_error) {
        buf_free(b);
        template_free(&t);
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    buf_free(b);
    /* The same key, else an empty or stale slot, else the first. */
    for (size_t i = 0; i < HTTP_TEMPLATE_SLOTS && !slot; i++)
        if (h->templates[i].body.data && strcmp(h->templates[i].key, t.key) == 0)
            slot = &h->templates[i];
    for (size_t i = 0; i < HTTP_TEMPLATE_SLOTS && !slot; i++)
        if (!h->templates[i].body.data || h->templates[i].gen != t.gen)
            slot = &h->templates[i];
    if (!slot)
        slot = &h->templates[0];
    template_free(slot);
    *slot = t;
    template_answer(rq, slot);
}

static void templates_clear(struct http *h)
{
    for (size_t i = 0; i < HTTP_TEMPLATE_SLOTS; i++)
        template_free(&h->templates[i]);
}

/* ---- reading requests ---- */

const char *http_query(struct http_req *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_arg(struct http_req *rq, const char *key)
{
    json_t *v = rq->args ? json_object_get(rq->args, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Decode a form component in place ('+' is a space, %XX a byte): its new length, or -1. */
static long form_decode(char *s, size_t n)
{
    char *w = s;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *w++ = ' ';
        } else if (s[i] == '%') {
            uint8_t byte;
            if (i + 2 >= n || !hex_decode(s + i + 1, 2, &byte, 1))
                return -1;
            *w++ = (char)byte;
            i += 2;
        } else {
            *w++ = s[i];
        }
    }
    return (long)(w - s);
}

/* application/x-www-form-urlencoded into a JSON object of strings. NULL + why on error. */
json_t *http_parse_form(char *body, size_t len, const char **why)
{
    json_t *o = json_object();
    char *p = body, *end = body + len;
    unsigned fields = 0;

    while (p < end) {
        char *stop = memchr(p, '&', (size_t)(end - p));
        char *eq, key[65];
        long klen, vlen = 0;
        json_t *val;

        if (!stop)
            stop = end;
        if (stop == p) {        /* "a=1&&b=2": an empty component */
            p = stop + 1;
            continue;
        }
        if (++fields > HTTP_FORM_FIELDS_MAX) {
            *why = N_("too many form fields");
            goto fail;
        }
        eq = memchr(p, '=', (size_t)(stop - p));
        klen = form_decode(p, (size_t)((eq ? eq : stop) - p));
        if (eq)
            vlen = form_decode(eq + 1, (size_t)(stop - eq - 1));
        if (klen < 0 || vlen < 0) {
            *why = N_("malformed percent-encoding in the form");
            goto fail;
        }
        if (klen == 0 || klen > 64 || memchr(p, '\0', (size_t)klen)) {
            *why = N_("a form field name is empty or too long");
            goto fail;
        }
        memcpy(key, p, (size_t)klen);
        key[klen] = '\0';
        val = json_stringn(eq ? eq + 1 : "", (size_t)vlen);
        if (!val) {
            *why = N_("form fields must be UTF-8 text");
            goto fail;
        }
        if (json_object_get(o, key)) {
            json_decref(val);
            *why = N_("a form field appears twice");
            goto fail;
        }
        if (json_object_set_new(o, key, val) < 0) {    /* a name that is not UTF-8 */
            *why = N_("form fields must be UTF-8 text");
            goto fail;
        }
        p = stop + 1;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* Parse the body into rq->args. false: replied with a 4xx. */
static bool parse_body(struct http_req *rq)
{
    const char *ct = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Content-Type");
    const char *why = NULL;

    if (rq->body.failed) {
        http_error(rq, 500, "internal", "out of memory");
        return false;
    }
    if (rq->body.len == 0) {
        rq->args = json_object();
        return true;
    }
    if (ct && strncasecmp(ct, "application/json", 16) == 0) {
        json_error_t err;
        rq->args = json_loadb(rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &err);
        if (!rq->args) {
            http_error(rq, 400, "bad_request", "the body is not valid JSON: %s", err.text);
            return false;
        }
        if (!json_is_object(rq->args)) {
            http_error(rq, 400, "bad_request", "the body must be a JSON object");
            return false;
        }
        return true;
    }
    if (ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
        rq->args = http_parse_form(rq->body.data, rq->body.len, &why);
        if (!rq->args) {
            http_error(rq, 400, "bad_request", "%s", L(rq, why));     /* why: N_() below */
            return false;
        }
        return true;
    }
    http_error(rq, 415, "bad_request",
               "send application/json or application/x-www-form-urlencoded");
    return false;
}

/* ---- who is asking ---- */

/* An account's role; a member account whose member is named trainer acts as a trainer. */
static enum role role_of(struct http *h, const struct store_account *a)
{
    enum role role = role_from_string(a->role);

    if (role == ROLE_MEMBER && a->member_id && store_trainer_count(h->env.svc->store, a->member_id) > 0)
        role = ROLE_TRAINER;
    return role;
}

static void authenticate(struct http_req *rq)
{
    struct http *h = rq->h;
    const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
    const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
    uint8_t hash[STORE_HASH_LEN];
    int64_t account = 0;
    int64_t now = now_utc();

    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        if (account_token_hash(auth + 7, hash) &&
            store_account_token_check(h->env.svc->store, hash, "api", now, &account) == 0)
            rq->via_token = true;
    } else if (cookie && account_token_hash(cookie, hash)) {
        if (store_websession_get(h->env.svc->store, hash, now, &account, rq->csrf) < 0)
            account = 0;
    }
    if (account && store_account_get(h->env.svc->store, account, &rq->account) == 0 &&
        !rq->account.disabled_at) {
        rq->role = role_of(h, &rq->account);
        /* The account's own choice wins over the browser's. */
        if (rq->account.language[0])
            rq->lang = i18n_parse(rq->account.language, rq->lang);
        return;
    }
    memset(&rq->account, 0, sizeof(rq->account));
    rq->role = 0;
    rq->csrf[0] = '\0';
}

bool http_require(struct http_req *rq, unsigned roles)
{
    if (!rq->role) {
        if (rq->is_api)
            http_error(rq, 401, "unauthorized", "log in or send an API token (Authorization: Bearer)");
        else
            http_redirect(rq, "/login");
        return false;
    }
    if (rq->role & roles)
        return true;
    http_error(rq, 403, "forbidden", "your account (%s) may not see this page",
               rq->account.name);
    return false;
}

/* A state-changing request from a browser session must carry the session's CSRF token;
 * the anonymous forms (login, first password) the pre-session cookie's. */
static bool csrf_ok(struct http_req *rq, bool anonymous_form)
{
    const char *sent = http_arg(rq, "csrf");
    if (!sent)
        sent = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-CSRF-Token");
    if (rq->via_token && !anonymous_form)
        return true;
    if (anonymous_form || !rq->account.id) {
        /* Anonymous forms (login, first password): the pre-session cookie must match. */
        const char *pre = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, PRE_COOKIE);
        return sent && pre && strlen(sent) == strlen(pre) && strlen(pre) == 43 &&
               sodium_memcmp(sent, pre, 43) == 0;
    }
    return sent && strlen(sent) == strlen(rq->csrf) && rq->csrf[0] &&
           sodium_memcmp(sent, rq->csrf, strlen(sent)) == 0;
}


void http_base_url(struct http_req *rq, char *buf, size_t n)
{
    const char *host = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Host");
    bool ok = host && *host && strlen(host) < 100;

    if (rq->h->cfg->http.base_url[0]) {
        snprintf(buf, n, "%s", rq->h->cfg->http.base_url);
        size_t len = strlen(buf);
        if (len && buf[len - 1] == '/')
            buf[len - 1] = '\0';
        return;
    }
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']';
    snprintf(buf, n, "%s://%s", rq->h->tls ? "https" : "http", ok ? host : "localhost");
}

/* ---- login rate limits ---- */

static struct login_slot *login_slot(struct http *h, const char *key, bool create)
{
    struct login_slot *oldest = &h->login_slots[0];
    int64_t now = now_utc();

    for (size_t i = 0; i < sizeof(h->login_slots) / sizeof(h->login_slots[0]); i++) {
        struct login_slot *s = &h->login_slots[i];
        if (s->key[0] && strcmp(s->key, key) == 0) {
            if (now - s->window_start >= LOGIN_WINDOW_SEC) {
                s->window_start = now;
                s->failures = 0;
            }
            return s;
        }
        if (s->window_start < oldest->window_start)
            oldest = s;
    }
    if (!create)
        return NULL;
    snprintf(oldest->key, sizeof(oldest->key), "%s", key);
    oldest->window_start = now;
    oldest->failures = 0;
    return oldest;
}

static void client_address(struct http_req *rq, char *buf, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr, ci->client_addr->sa_family == AF_INET6
                                         ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                    buf, (socklen_t)n, NULL, 0, NI_NUMERICHOST);
}

/* The rate-limit keys of a login attempt: the name ("a:name", without case; used only for
 * names without an account, so that an unknown name behaves as a known one) and the
 * client's address ("ip:addr"). */
static void login_keys(struct http_req *rq, const char *name, char account[72], char address[72])
{
    char addr[64];

    snprintf(account, 72, "a:%.32s", name);     /* names have at most 32 bytes */
    for (char *p = account; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    client_address(rq, addr, sizeof(addr));
    snprintf(address, 72, "ip:%s", addr);
}

/* How long an account waits after its failures: nothing for the first few, then 1, 2, 4...
 * seconds, never more than a minute. Guessing is slowed to a crawl; the owner is never
 * locked out (an address that fails too often is). */
static int64_t account_delay(int64_t failures)
{
    int64_t d;

    if (failures < LOGIN_FREE_FAILURES)
        return 0;
    d = (int64_t)1 << (failures - LOGIN_FREE_FAILURES > 6 ? 6 : failures - LOGIN_FREE_FAILURES);
    return d > LOGIN_DELAY_MAX_SEC ? LOGIN_DELAY_MAX_SEC : d;
}

/* Seconds the attempt must wait (0: go on), and why. a: the account (NULL for a name
 * without one). */
static int64_t login_wait(struct http_req *rq, const char *name, const struct store_account *a,
                          bool *ret_address)
{
    char account[72], address[72];
    struct login_slot *ip, *n;
    int64_t now = now_utc(), failures = 0, at = 0, wait;

    login_keys(rq, name, account, address);
    ip = login_slot(rq->h, address, false);
    *ret_address = false;
    if (ip && ip->failures >= LOGIN_FAILURES_PER_ADDRESS) {
        *ret_address = true;
        return ip->window_start + LOGIN_WINDOW_SEC - now;
    }
    if (a) {
        failures = a->login_failures;
        at = a->login_failed_at;
    } else if ((n = login_slot(rq->h, account, false))) {
        failures = n->failures;
        at = n->last_failure;
    }
    wait = at + account_delay(failures) - now;
    /* A clock set back (NTP on a Pi without RTC) must not stretch the wait. */
    if (wait > account_delay(failures))
        wait = account_delay(failures);
    return wait > 0 ? wait : 0;
}

static void login_failed(struct http_req *rq, const char *name, int64_t account_id)
{
    char account[72], address[72];
    int64_t now = now_utc();
    struct login_slot *n;

    login_keys(rq, name, account, address);
    login_slot(rq->h, address, true)->failures++;
    if (account_id) {
        if (store_account_login_noted(rq->h->env.svc->store, account_id, false, now) < 0)
            log_warning("http: cannot record a failed login of account %s", name);
    } else {
        n = login_slot(rq->h, account, true);
        n->failures++;
        n->last_failure = now;
    }
}

/* ---- suspension ----
 *
 * A request is the loop's from when the web thread hands it over (its connection suspended)
 * to when finish() hands the answer back. Meanwhile it may wait for a command, its commit or
 * a password job: it is then "suspended", in h->suspended, and resume() finishes it. */

static void finish(struct http_req *rq);

static void suspend(struct http_req *rq)
{
    rq->suspended = true;
    rq->next_suspended = rq->h->suspended;
    rq->h->suspended = rq;
}

static void unlink_suspended(struct http_req *rq)
{
    for (struct http_req **pp = &rq->h->suspended; *pp; pp = &(*pp)->next_suspended)
        if (*pp == rq) {
            *pp = rq->next_suspended;
            break;
        }
    rq->suspended = false;
}

static void resume(struct http_req *rq)
{
    unlink_suspended(rq);
    finish(rq);
}

/* ---- pages built in steps ---- */

static void queue_prepend(struct http *h, struct http_req *chain);

/* The requests waiting for rq's template, served again (first in the queue, in the order
 * they came): from the template if rq kept it, else each builds its own. */
static void waiters_again(struct http_req *rq)
{
    struct http_req *w = rq->template_waiters, *chain = NULL;

    rq->template_waiters = NULL;
    while (w) {                         /* newest first: reversed into arrival order */
        struct http_req *next = w->next_waiter;
        w->next_waiter = NULL;
        if (w->answered) {              /* the controller stopping answered it already */
            w = next;
            continue;
        }
        unlink_suspended(w);
        w->next_queued = chain;
        chain = w;
        w = next;
    }
    if (chain)
        queue_prepend(rq->h, chain);
}

static void stepping_unlink(struct http_req *rq)
{
    for (struct http_req **pp = &rq->h->stepping; *pp; pp = &(*pp)->next_stepping)
        if (*pp == rq) {
            *pp = rq->next_stepping;
            break;
        }
    rq->next_stepping = NULL;
}

static void stepping_append(struct http_req *rq)
{
    struct http_req **pp = &rq->h->stepping;

    while (*pp)
        pp = &(*pp)->next_stepping;
    *pp = rq;
    rq->next_stepping = NULL;
    sd_event_source_set_enabled(rq->h->next_step, SD_EVENT_ONESHOT);
}

/* rq's steps are over (done, or the request ends otherwise): its context freed, and the
 * requests that waited for its template served again. */
static void steps_end(struct http_req *rq)
{
    if (!rq->step)
        return;
    stepping_unlink(rq);
    if (rq->step_free)
        rq->step_free(rq->step_ctx);
    rq->step = NULL;
    rq->step_free = NULL;
    rq->step_ctx = NULL;
    waiters_again(rq);
}

void http_steps(struct http_req *rq, http_step_fn step, void (*free_ctx)(void *ctx), void *ctx)
{
    rq->step = step;
    rq->step_free = free_ctx;
    rq->step_ctx = ctx;
    rq->steps = 1;                      /* the page's own, before it called this */
    if (!rq->suspended)
        suspend(rq);
    stepping_append(rq);
}

/* One step of the first page in steps; it then goes to the back, behind the others. */
static int step_next(sd_event_source *s, void *userdata)
{
    struct http *h = userdata;
    struct http_req *rq = h->stepping;

    if (!rq)
        return 0;
    stepping_unlink(rq);
    rq->steps++;
    uint64_t t0 = now_mono_usec();
    bool more = rq->step(rq, rq->step_ctx);
    uint64_t took = now_mono_usec() - t0;
    if (took > rq->step_max_usec)
        rq->step_max_usec = took;
    if (more) {
        stepping_append(rq);
        return 0;
    }
    if (log_get_level() >= LOG_DEBUG) {
        char safe[160];
        http_redact(rq->url, safe, sizeof(safe));
        log_debug("http: %s %.128s built in %u steps (the longest after the first: %" PRIu64
                  " us)", rq->method, safe, rq->steps, rq->step_max_usec);
    }
    steps_end(rq);
    if (!rq->response)
        http_error(rq, 500, "internal", "the page was not built");
    resume(rq);
    if (h->stepping)
        sd_event_source_set_enabled(h->next_step, SD_EVENT_ONESHOT);
    return 0;
}

/* ---- commands ---- */

/* What the request was waiting for is over: the command is not ours to cancel any more. */
static void command_forget(struct http_req *rq)
{
    commit_wait_cancel(rq->h->env.svc->commit, &rq->durable);
    if (rq->call) {
        struct cmd_call *call = rq->call;
        rq->call = NULL;
        cmd_call_cancel(call);
    }
    json_decref(rq->reply);
    rq->reply = NULL;
}

static void command_answer(struct http_req *rq, int durable)
{
    json_t *reply = rq->reply;
    http_command_fn done = rq->command_done;

    rq->reply = NULL;
    rq->command_done = NULL;
    if (durable < 0) {
        char msg[200];
        json_decref(reply);
        web_format(msg, sizeof(msg), L(rq, "not recorded: the database could not write it (%s); "
                                           "try again later"), strerror(-durable));
        reply = cmd_error_object("not_recorded", msg);
    }
    done(rq, reply);        /* it may send another command */
    json_decref(reply);
    if (!rq->command_done)
        resume(rq);
}

static void on_durable(struct commit_wait *w, int result)
{
    command_answer(container_of(w, struct http_req, durable), result);
}

static void on_command_done(struct cmd_call *call, void *ctx)
{
    struct http_req *rq = ctx;

    rq->call = NULL;
    rq->reply = cmd_call_reply(call);
    /* Answered once what it reports is on disk, as portierctl is. */
    if (rq->in_dispatch)
        rq->answer_now = true;
    else if (commit_wait(rq->h->env.svc->commit, &rq->durable, on_durable))
        command_answer(rq, 0);
}

static const struct cmd_transport web_transport = { .done = on_command_done };

void http_command(struct http_req *rq, json_t *req, http_command_fn done)
{
    struct actor actor = { .role = rq->role, .channel = CHANNEL_WEB, .lang = rq->lang,
                           .account_id = rq->account.id, .member_id = rq->account.member_id };
    struct cmd_call *call;

    snprintf(actor.who, sizeof(actor.who), "web:%s",
             rq->account.name[0] ? rq->account.name : "anonymous");
    rq->command_done = done;
    rq->answer_now = false;
    rq->in_dispatch = true;
    call = cmd_dispatch(rq->h->env.svc, &actor, req, &web_transport, rq);
    rq->in_dispatch = false;
    json_decref(req);
    if (call) {
        rq->call = call;
        if (!rq->suspended)
            suspend(rq);
        return;
    }
    if (!rq->answer_now && !rq->reply) {
        rq->command_done = NULL;
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    if (commit_wait(rq->h->env.svc->commit, &rq->durable, on_durable)) {
        /* Nothing to wait for: answer now, without a suspension. */
        json_t *reply = rq->reply;
        rq->reply = NULL;
        rq->command_done = NULL;
        done(rq, reply);
        json_decref(reply);
        if (rq->command_done && !rq->suspended)
            suspend(rq);
        return;
    }
    if (!rq->suspended)
        suspend(rq);
}

/* ---- login, logout, first password ---- */

static void new_pre_cookie(struct http_req *rq, char token[STORE_TOKEN_TEXT_MAX + 1])
{
    uint8_t unused[STORE_HASH_LEN];
    account_token_new(token, unused);
}

/* An argon2id hash of a secret nobody knows, checked for names without a usable account. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$f5gPTdxz3zDr3WSyNsKpAA$vw7QlJDwNxtMWrxZmwXeTHvz2F658KbOmr90JTWfKas";

/* A new session for account: its cookie on the answer, the pre-session cookie gone, and the
 * answer the login's (web_page_login_done: to the account's landing page). 0 or -errno. */
static int start_session(struct http_req *rq, int64_t account)
{
    struct http *h = rq->h;
    char token[STORE_TOKEN_TEXT_MAX + 1], csrf[STORE_TOKEN_TEXT_MAX + 1];
    uint8_t hash[STORE_HASH_LEN], unused[STORE_HASH_LEN];
    int64_t now = now_utc(), life = h->cfg->http.session_hours * 3600;
    int r;

    account_token_new(token, hash);
    account_token_new(csrf, unused);
    r = store_account_login_noted(h->env.svc->store, account, true, now);  /* failures: 0 */
    if (r == 0)
        r = store_websession_add(h->env.svc->store, hash, account, csrf, now, now + life);
    if (r == 0)
        r = store_websessions_end(h->env.svc->store, 0, now);   /* sweep expired ones */
    if (r < 0) {
        log_error("http: cannot store a session: %s", strerror(-r));
    } else {
        rq->note_id = account;
        web_page_login_done(rq, true, NULL);
        set_cookie(rq, SESSION_COOKIE, token, life);
        set_cookie(rq, PRE_COOKIE, "", 0);
    }
    sodium_memzero(token, sizeof(token));
    sodium_memzero(csrf, sizeof(csrf));
    return r;
}

static void on_password_checked(bool ok, bool error, void *userdata)
{
    struct http_req *rq = userdata;

    if (error) {
        web_page_login_done(rq, false, L(rq, "the password could not be checked; try again"));
    } else if (!ok || rq->note_id == 0) {
        login_failed(rq, rq->note, rq->note_id);
        log_notice("http: failed login for account %s", rq->note);
        web_page_login_done(rq, false, L(rq, "wrong account name or password"));
    } else if (start_session(rq, rq->note_id) < 0) {
        web_page_login_done(rq, false, L(rq, "cannot log in now (storage error)"));
    } else {
        log_info("http: account %s logged in", rq->note);
    }
    resume(rq);
}

static void do_login(struct http_req *rq)
{
    const char *name = http_arg(rq, "name"), *password = http_arg(rq, "password");
    struct store_account a;
    int r;

    if (!name || !password || !account_name_valid(name) || strlen(password) > PASSWORD_MAX) {
        web_page_login_done(rq, false, L(rq, "enter your account name and password"));
        return;
    }
    r = store_account_find(rq->h->env.svc->store, name, &a);
    bool by_address;
    int64_t wait = login_wait(rq, name, r == 0 ? &a : NULL, &by_address);
    if (wait > 0) {
        char seconds[24];
        log_warning("http: login for account %s refused: too many failures %s", name,
                    by_address ? "from this address" : "for this account");
        if (by_address)
            http_error(rq, 429, "too_many_attempts", "too many failed logins from your "
                       "address; try again in %" PRId64 " minutes", (wait + 59) / 60);
        else
            http_error(rq, 429, "too_many_attempts", "too many failed logins for this account; "
                       "try again in %" PRId64 " seconds", wait);
        snprintf(seconds, sizeof(seconds), "%" PRId64, wait);
        if (rq->response)
            MHD_add_response_header(rq->response, "Retry-After", seconds);
        return;
    }
    if (r < 0 || a.disabled_at || !a.password[0]) {
        /* Same answer, after the same wait, as a wrong password: whether an account exists
         * shows neither in the page nor in the time it takes. note_id 0 never logs in. */
        snprintf(rq->note, sizeof(rq->note), "%s", name);
        rq->note_id = 0;
        r = password_check_async(rq->h->env.loop, dummy_hash, password, on_password_checked, rq);
    } else {
        snprintf(rq->note, sizeof(rq->note), "%s", a.name);
        rq->note_id = a.id;
        r = password_check_async(rq->h->env.loop, a.password, password, on_password_checked, rq);
    }
    if (r < 0) {
        http_error(rq, 503, "busy", "too many logins at once; try again in a moment");
        return;
    }
    suspend(rq);
}

static void do_logout(struct http_req *rq)
{
    const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
    uint8_t hash[STORE_HASH_LEN];

    /* A session that cannot be ended here still ends with its cookie, and expires. */
    if (cookie && account_token_hash(cookie, hash) &&
        store_websession_delete(rq->h->env.svc->store, hash) < 0)
        log_warning("http: cannot delete a session at logout");
    http_redirect(rq, "/");
    set_cookie(rq, SESSION_COOKIE, "", 0);
}

static void on_password_hashed(const char *hash, void *userdata)
{
    struct http_req *rq = userdata;
    struct http *h = rq->h;
    uint8_t token_hash[STORE_HASH_LEN];
    int r = -EIO;

    if (hash && account_token_hash(rq->note, token_hash)) {
        struct store *store = h->env.svc->store;
        /* One unit: the link is spent only if the password is set (and sessions ended). */
        r = store_step_begin(store);
        if (r == 0) {
            r = store_account_token_use(store, token_hash, now_utc());
            if (r == 0)
                r = store_account_set_password(store, rq->note_id, hash);
            if (r == 0)
                r = store_websessions_end(store, rq->note_id, now_utc());
            int end = store_step_end(store, r == 0);
            if (r == 0)
                r = end;
        }
    }
    if (r == -ENOENT) {
        http_error(rq, 410, "gone", "this link was already used");
    } else if (r < 0) {
        http_error(rq, 500, "internal", "cannot set the password now; try the link again");
    } else {
        log_info("http: account %" PRId64 " set its password through a one-time link", rq->note_id);
        /* Signed in at once, with the password just chosen: no second form to fill in. The
         * password is set either way; without a session the login page says so. */
        if (start_session(rq, rq->note_id) < 0)
            http_redirect(rq, "/login?welcome=1");
    }
    sodium_memzero(rq->note, sizeof(rq->note));
    resume(rq);
}

/* POST /welcome/TOKEN: the one-time link sets the first password. */
static void do_welcome(struct http_req *rq, const char *token)
{
    const char *pw = http_arg(rq, "password"), *again = http_arg(rq, "password2");
    uint8_t hash[STORE_HASH_LEN];
    const char *weak;
    int64_t account;
    int r;

    if (!account_token_hash(token, hash) ||
        store_account_token_check(rq->h->env.svc->store, hash, "invite", now_utc(), &account) < 0) {
        http_error(rq, 404, "not_found", "this link is unknown, used or expired; ask a manager "
                   "for a new one");
        return;
    }
    if (!pw || !again || strcmp(pw, again) != 0) {
        http_error(rq, 400, "bad_request", "the two passwords differ");
        return;
    }
    if ((weak = password_weakness(pw))) {
        http_error(rq, 400, "bad_request", "%s", weak);
        return;
    }
    snprintf(rq->note, sizeof(rq->note), "%s", token);
    rq->note_id = account;
    r = password_hash_async(rq->h->env.loop, pw, on_password_hashed, rq);
    if (r < 0) {
        http_error(rq, 503, "busy", "too many password changes at once; try again in a moment");
        return;
    }
    suspend(rq);
}

/* ---- routing ---- */

/* The login and first-password forms are answered as to a visitor without a session: their
 * token is the pre-session one, so a header with the session's log-out form (which needs the
 * session's token) would carry the wrong one. */
static void as_anonymous(struct http_req *rq)
{
    memset(&rq->account, 0, sizeof(rq->account));
    rq->role = 0;
    rq->csrf[0] = '\0';
}

static void route(struct http_req *rq)
{
    const char *path = rq->url;
    const struct web_asset *asset;

    if (!rq->is_get && !rq->is_post) {
        http_error(rq, 405, "bad_request", "method %.16s is not allowed here", rq->method);
        if (rq->response)
            MHD_add_response_header(rq->response, "Allow", "GET, HEAD, POST");
        return;
    }
    if (strlen(path) > 512 || path[0] != '/') {
        http_error(rq, 414, "bad_request", "the address is too long");
        return;
    }
    if ((asset = web_asset_find(path))) {
        const char *inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "If-None-Match");
        char etag[48];
        uint8_t d[8];
        crypto_generichash(d, sizeof(d), asset->data, asset->len, NULL, 0);
        snprintf(etag, sizeof(etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", d[0], d[1], d[2],
                 d[3], d[4], d[5], d[6], d[7]);
        if (inm && strcmp(inm, etag) == 0)
            http_reply_static(rq, 304, NULL, "", 0);
        else
            http_reply_static(rq, 200, asset->content_type, asset->data, asset->len);
        if (rq->response) {
            MHD_add_response_header(rq->response, "ETag", etag);
            MHD_add_response_header(rq->response, "Cache-Control", "public, max-age=3600");
        }
        return;
    }
    authenticate(rq);
    if (rq->is_post) {
        if (!parse_body(rq))
            return;
        bool anonymous_form = strcmp(path, "/login") == 0 || strncmp(path, "/welcome/", 9) == 0;
        /* An API call without credentials carries no authority to forge: let its route say
         * 401, which a script understands, rather than ask it to reload a form. */
        bool anonymous_api = rq->is_api && !rq->account.id;
        if (!anonymous_api && !csrf_ok(rq, anonymous_form)) {
            http_error(rq, 403, "csrf", "this form has expired or did not come from this site; "
                       "reload the page and try again");
            return;
        }
        if (anonymous_form)
            as_anonymous(rq);
        if (strcmp(path, "/login") == 0) {
            do_login(rq);
            return;
        }
        if (strcmp(path, "/logout") == 0) {
            do_logout(rq);
            return;
        }
        if (strncmp(path, "/welcome/", 9) == 0) {
            do_welcome(rq, path + 9);
            return;
        }
    } else {
        rq->args = json_object();
        if (strcmp(path, "/login") == 0 || strncmp(path, "/welcome/", 9) == 0) {
            /* The page carries a fresh pre-session token, and sets it as a cookie. */
            as_anonymous(rq);
            new_pre_cookie(rq, rq->csrf);
            if (web_pages_route(rq, path))
                set_cookie(rq, PRE_COOKIE, rq->csrf, 3600);
            return;
        }
    }
    if (web_api_route(rq, path) || web_feeds_route(rq, path) || web_privacy_route(rq, path) ||
        web_members_route(rq, path) || web_pages_route(rq, path))
        return;
    http_error(rq, 404, "not_found", "nothing here");
}

/* ---- libmicrohttpd glue ---- */

/* ---- the web thread and the loop ----
 *
 * libmicrohttpd runs in a thread of its own (the web thread), at a nice below the loop's:
 * it accepts, reads requests, does TLS, and answers from the page cache by itself. A
 * request the cache cannot answer is handed to the loop once it is all in, its connection
 * suspended meanwhile; the loop builds the answer (routing, sessions, the store, commands,
 * all of which stay the loop's alone), one request per pass, and hands it back. So the
 * loop, and a door's tap on it, never waits for a client, TLS or the sending of a page. */

static struct http_conn *conn_of(struct MHD_Connection *conn);

static inline uint64_t relaxed_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void relaxed_store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Wake the loop (on_wake()), once until it has looked. The caller holds h->lock. */
static void wake_locked(struct http *h)
{
    if (h->woken)
        return;
    h->woken = true;
    wakeup_signal(h->wake);
}

/* The web thread runs below the loop: under load, a door's tap gets a CPU first. Once, in
 * its first callback (libmicrohttpd runs one thread). */
static void web_thread_start(struct http *h)
{
    if (h->web_started)
        return;
    h->web_started = true;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), h->web_nice) < 0)
        log_debug("http: the web thread stays at the loop's nice: %s", strerror(errno));
}

static void on_post_durable(struct commit_wait *w, int result)
{
    struct http_req *rq = container_of(w, struct http_req, durable);

    if (result < 0)
        http_error(rq, 503, "not_recorded", "not recorded: the database could not write it (%s); "
                   "try again later", strerror(-result));
    resume(rq);
}

/* The con_cls of a request answered from the page cache: it has no request state. */
static char cached_mark;
#define CACHED_REQUEST ((void *)&cached_mark)

/* Whether the page cache may answer this request: an anonymous GET or HEAD without a body
 * (nor "Expect", see on_access()). Its cache key is left in key (n bytes). Web thread. */
static bool cacheable(struct http *h, struct MHD_Connection *conn, const char *url,
                      const char *method, char *key, size_t n)
{
    if ((strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization") ||
        MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, SESSION_COOKIE) ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length") ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect"))
        return false;
    return cache_key(conn, url,
                     i18n_accept(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                             "Accept-Language"),
                                 (enum lang)__atomic_load_n(&h->site_language, __ATOMIC_RELAXED)),
                     key, n);
}

/* Queue the cache's page at key: false if there is none (gone since, or never there). */
static bool queue_cached(struct http *h, struct MHD_Connection *conn, const char *key,
                         enum MHD_Result *ret)
{
    struct MHD_Response *r;

    pthread_mutex_lock(&h->lock);
    r = cache_find(h, key);
    if (r)
        *ret = MHD_queue_response(conn, 200, r);   /* the connection's reference */
    pthread_mutex_unlock(&h->lock);
    return r != NULL;
}

/* A request's state, once its headers are in (web thread). key: its cache key if known. */
static struct http_req *request_new(struct http *h, struct MHD_Connection *conn,
                                    const char *url, const char *method, const char *key)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    struct http_req *rq;
    struct buf body = { 0 };

    if (!h->web_spare) {
        pthread_mutex_lock(&h->lock);
        h->web_spare = h->spare;
        h->spare = NULL;
        h->n_spare = 0;
        pthread_mutex_unlock(&h->lock);
    }
    rq = h->web_spare;
    if (rq) {
        h->web_spare = rq->next_queued;
        body = rq->body;                /* wiped by the loop; this thread's to reuse */
        memset(rq, 0, sizeof(*rq));
        if (body.cap <= HTTP_SPARE_BODY_MAX) {
            rq->body.data = body.data;
            rq->body.cap = body.cap;
        } else {
            buf_free(&body);
        }
    } else if (!(rq = calloc(1, sizeof(*rq)))) {
        return NULL;
    }
    rq->h = h;
    rq->conn = conn;
    rq->method = method;
    rq->url = url;
    rq->started_usec = now_mono_usec();
    rq->is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    rq->is_post = strcmp(method, "POST") == 0;
    rq->is_api = strncmp(url, "/api/", 5) == 0;
    rq->lang = i18n_accept(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Language"),
                           (enum lang)__atomic_load_n(&h->site_language, __ATOMIC_RELAXED));
    /* Where the answer would be cached, should it be a page anyone gets the same. */
    if (key && key[0])
        snprintf(rq->cache_key, sizeof(rq->cache_key), "%s", key);
    else if (rq->is_get &&
             !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization") &&
             !cache_key(conn, url, rq->lang, rq->cache_key, sizeof(rq->cache_key)))
        rq->cache_key[0] = '\0';
    if (cl && strtoull(cl, NULL, 10) > __atomic_load_n(&h->max_body, __ATOMIC_RELAXED))
        rq->body_too_large = true;
    return rq;
}

/* The web thread's answer while the controller stops, in the request's language: nothing is
 * handed over any more. */
static enum MHD_Result answer_stopping(struct http_req *rq)
{
    const char *text = L(rq, "the controller is stopping");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    struct MHD_Connection *conn = rq->conn;
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    ret = MHD_queue_response(conn, 503, r);
    MHD_destroy_response(r);
    return ret;
}

/* Hand the whole request to the loop: its connection waits, suspended, for the answer
 * (finish()). Web thread. */
static enum MHD_Result hand_over(struct http *h, struct http_req *rq)
{
    pthread_mutex_lock(&h->lock);
    if (h->stopping) {
        pthread_mutex_unlock(&h->lock);
        return answer_stopping(rq);
    }
    rq->with_loop = true;
    MHD_suspend_connection(rq->conn);
    rq->next_queued = NULL;
    if (h->inbox_tail)
        h->inbox_tail->next_queued = rq;
    else
        h->inbox_head = rq;
    h->inbox_tail = rq;
    wake_locked(h);
    pthread_mutex_unlock(&h->lock);
    return MHD_YES;
}

/* libmicrohttpd's calls for a request (web thread): first with its headers, then with each
 * piece of its body, then once more with nothing; and again after a resumption. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct http *h = cls;
    struct http_req *rq = *con_cls;
    struct http_conn *hc = conn_of(conn);
    enum MHD_Result ret = MHD_NO;

    if (rq == CACHED_REQUEST) {
        /* Its second call: the whole request is in. The page queued now, and not at the
         * first call: one queued then makes libmicrohttpd (0.9.75) "discard the request"
         * and close the connection, so a browser keeping it alive would open a new one for
         * each page. Not in the cache after all (or not any more): the loop builds it. */
        if (queue_cached(h, conn, hc->cached_key, &ret))
            return ret;
        hc->cached_since = 0;
        rq = request_new(h, conn, url, method, hc->cached_key);
        *con_cls = rq;
        if (!rq)
            return MHD_NO;
        return hand_over(h, rq);
    }
    if (!rq) {
        if (hc) {
            relaxed_store(&hc->waiting_since, 0);   /* the headers are in: not a slow client */
            /* A page any visitor would get the same: from the cache at the next call, with
             * nothing else done for it (no request state, no session, not the loop). */
            if (cacheable(h, conn, url, method, hc->cached_key, sizeof(hc->cached_key))) {
                hc->cached_since = now_mono_usec();
                *con_cls = CACHED_REQUEST;
                return MHD_YES;
            }
            relaxed_store(&hc->reading_since, now_mono_usec());  /* the body's deadline */
        }
        rq = request_new(h, conn, url, method, NULL);
        *con_cls = rq;
        if (!rq)
            return MHD_NO;
        if (!rq->body_too_large &&
            (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length") ||
             MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") ||
             !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect")))
            return MHD_YES;     /* the body, if any, comes with the next calls */
        /* Too large, or "Expect: 100-continue" on a request without a body: answered before
         * any body, from this first call (resumed, libmicrohttpd calls it again, and the
         * answer is queued then). Waiting would make it send "100 Continue" and then, if
         * more bytes followed, refuse our answer and close without any. */
        if (hc)
            relaxed_store(&hc->reading_since, 0);
        return hand_over(h, rq);
    }
    if (rq->with_loop)          /* resumed: the loop's answer (none: the connection closes) */
        return rq->answered && rq->response ? MHD_queue_response(conn, rq->status, rq->response)
                                            : MHD_NO;
    if (*upload_data_size) {
        if (!rq->body_too_large &&
            rq->body.len + *upload_data_size > __atomic_load_n(&h->max_body, __ATOMIC_RELAXED))
            rq->body_too_large = true;
        if (!rq->body_too_large)
            buf_putn(&rq->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        /* Found too large while reading (chunked, no Content-Length): libmicrohttpd takes an
         * answer only before the body or after all of it, so the rest is read and dropped
         * (memory stays bounded) and the 413 goes out at the end. */
        return MHD_YES;
    }
    if (hc)
        relaxed_store(&hc->reading_since, 0);   /* the whole request is in */
    return hand_over(h, rq);
}

/* /metrics: requests by status class, and their latency. Either thread. */
static void count_request(struct http *h, unsigned status, uint64_t us)
{
    /* buckets: 1, 5, 10, 50, 100, 500 ms, 1 s, 5 s, +Inf */
    static const uint64_t edges[HTTP_LATENCY_BUCKETS] = { 1000, 5000, 10000, 50000, 100000,
                                                          500000, 1000000, 5000000 };
    unsigned b;

    __atomic_fetch_add(&h->requests[status / 100], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->latency_sum_us, us, __ATOMIC_RELAXED);
    for (b = 0; b < HTTP_LATENCY_BUCKETS && us > edges[b]; b++)
        ;
    __atomic_fetch_add(&h->latency_buckets[b], 1, __ATOMIC_RELAXED);
}

/* A request ended (answered, or its client gone): web thread. What libmicrohttpd owns (the
 * URL, the connection) is let go of here; the rest of the request is the loop's to end
 * (request_end()). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http *h = cls;
    struct http_req *rq = *con_cls;
    struct http_conn *hc = conn_of(conn);
    uint64_t now = now_mono_usec();

    *con_cls = NULL;
    if (hc) {
        relaxed_store(&hc->waiting_since, now);     /* the next request on it starts now */
        relaxed_store(&hc->reading_since, 0);
    }
    if (!rq || rq == CACHED_REQUEST) {
        /* Answered from the page cache (or refused before anything was read). */
        if (hc && hc->cached_since) {
            count_request(h, 200, now - hc->cached_since);
            hc->cached_since = 0;
        }
        return;
    }
    rq->ended_usec = now - rq->started_usec;
    snprintf(rq->ended_method, sizeof(rq->ended_method), "%s", rq->method);
    http_redact(rq->url, rq->ended_url, sizeof(rq->ended_url));  /* no one-time link in a log */
    rq->method = rq->url = NULL;
    rq->conn = NULL;
    /* The loop lets go of the answer (request_end()): made there, it is freed there, and no
     * thread waits for the other's allocator. But a stream's is let go of here, while the
     * connection lives: its end (kiosk.c) must not outlive the connection. */
    if (rq->stream && rq->response) {
        MHD_destroy_response(rq->response);
        rq->response = NULL;
    }
    pthread_mutex_lock(&h->lock);
    rq->next_queued = h->ended;
    h->ended = rq;
    wake_locked(h);
    pthread_mutex_unlock(&h->lock);
}

static void leave_queue(struct http_req *rq)
{
    struct http *h = rq->h;

    h->queue_tail = NULL;
    for (struct http_req **pp = &h->queue_head; *pp;) {
        if (*pp == rq)
            *pp = rq->next_queued;
        else {
            h->queue_tail = *pp;
            pp = &(*pp)->next_queued;
        }
    }
}

/* The loop's end of a request libmicrohttpd has let go of: it goes to *spares (for the
 * web thread to take again, see give_spares()). */
static void request_end(struct http_req *rq, struct http_req **spares)
{
    struct http *h = rq->h;

    if (h->sending == rq) {
        h->sending = NULL;              /* sent: the next page may be built */
        timer_disarm(h->turn_timer);
        if (h->queue_head)
            sd_event_source_set_enabled(h->next_turn, SD_EVENT_ONESHOT);
    }
    if (!rq->answered) {
        /* Ended while the loop still had it (not expected: libmicrohttpd ends no suspended
         * connection): out of the loop's lists before it is freed. */
        leave_queue(rq);
        unlink_suspended(rq);
        steps_end(rq);
    }
    /* A request that ended without an answer of ours (the client left, or libmicrohttpd
     * refused it) has no status class: as a 5xx it would read as the server's fault. */
    if (rq->status >= 100 && rq->status < 600)
        count_request(h, rq->status, rq->ended_usec);
    if (rq->status >= 500)
        log_warning("http: %s %.128s -> %u", rq->ended_method, rq->ended_url, rq->status);
    else
        log_debug("http: %s %.128s -> %u (%" PRIu64 " us)", rq->ended_method, rq->ended_url,
                  rq->status, rq->ended_usec);
    password_cancel(rq);
    command_forget(rq);
    if (rq->response)
        MHD_destroy_response(rq->response);
    buf_free(&rq->place_text);
    free(rq->places);
    json_decref(rq->args);
    /* What the request carried (a password in a form, a session's token) is wiped; the body's
     * buffer, the web thread's, goes back to it with the request, as a spare. */
    struct buf body = rq->body;
    if (body.data)
        sodium_memzero(body.data, body.cap);
    sodium_memzero(rq, sizeof(*rq));
    rq->h = h;
    rq->body = body;
    rq->next_queued = *spares;
    *spares = rq;
}

static void free_requests(struct http_req *list)
{
    while (list) {
        struct http_req *rq = list;
        list = rq->next_queued;
        buf_free(&rq->body);
        free(rq);
    }
}

/* Ended requests back to the web thread, up to HTTP_SPARE_MAX kept; the others freed. */
static void give_spares(struct http *h, struct http_req *spares)
{
    pthread_mutex_lock(&h->lock);
    while (spares && h->n_spare < HTTP_SPARE_MAX && !h->stopping) {
        struct http_req *rq = spares;
        spares = rq->next_queued;
        rq->next_queued = h->spare;
        h->spare = rq;
        h->n_spare++;
    }
    pthread_mutex_unlock(&h->lock);
    free_requests(spares);
}

/* The loop's end of every request in the list the web thread gave (h->ended). */
static void end_requests(struct http *h, struct http_req *ended)
{
    struct http_req *spares = NULL;

    while (ended) {
        struct http_req *next = ended->next_queued;
        request_end(ended, &spares);
        ended = next;
    }
    if (spares)
        give_spares(h, spares);
}

/* Requests to serve before the others (a chain, oldest first), at the head of the queue. */
static void queue_prepend(struct http *h, struct http_req *chain)
{
    struct http_req *tail = chain;

    while (tail->next_queued)
        tail = tail->next_queued;
    tail->next_queued = h->queue_head;
    h->queue_head = chain;
    if (!h->queue_tail)
        h->queue_tail = tail;
    sd_event_source_set_enabled(h->next_turn, SD_EVENT_ONESHOT);
}

/* Requests handed over (a chain, oldest first) at the end of the loop's queue. */
static void queue_append(struct http *h, struct http_req *chain)
{
    if (h->queue_tail)
        h->queue_tail->next_queued = chain;
    else
        h->queue_head = chain;
    for (h->queue_tail = chain; h->queue_tail->next_queued;)
        h->queue_tail = h->queue_tail->next_queued;
}

/* rq's answer (or none: the connection closes) to the web thread, which queues it. */
static void hand_back(struct http_req *rq)
{
    rq->answered = true;
    MHD_resume_connection(rq->conn);
}

/* The answer is known: checked, on disk for a POST, and handed back to the web thread. */
static void finish(struct http_req *rq)
{
    struct http *h = rq->h;

    if (rq->answered)
        return;
    if (rq->store_error && rq->status < 400) {
        char safe[160];
        http_redact(rq->url, safe, sizeof(safe));
        log_error("http: %s %.128s: the database could not be read: %s", rq->method, safe,
                  strerror(-rq->store_error));
        http_error(rq, 500, "store", "the database could not be read; try again in a moment");
    }
    /* What a POST wrote by itself (a login's session, a first password) is on disk before
     * the answer says so, as a command's is. */
    if (rq->response && rq->is_post && !rq->durable_checked) {
        rq->durable_checked = true;
        if (!commit_wait(h->env.svc->commit, &rq->durable, on_post_durable)) {
            suspend(rq);
            return;
        }
    }
    if (rq->response && !rq->stream) {
        h->sending = rq;
        h->sending_since = now_mono_usec();
    }
    hand_back(rq);
}

/* One request's work per pass of the loop: a door's tap waits behind one page at most. The
 * others wait their turn in arrival order (next_turn, after the replies and the doors).
 * And one built page at a time: the next is built once the web thread has sent the last
 * (or HTTP_SENDING_WAIT_USEC after, for a client slow to read it). Building one page while
 * sending another would use every core of a small machine for the web, and a door's tap
 * (the reader's process, the kernel's work for it) would then wait for a CPU; cached pages,
 * which cost the loop nothing, do not wait for this. */
static void serve_one(struct http *h)
{
    struct http_req *rq = h->queue_head;

    if (!rq)
        return;
    if (h->sending) {
        uint64_t now = now_mono_usec(), since = now - h->sending_since;
        if (since < HTTP_SENDING_WAIT_USEC) {
            if (!timer_armed(h->turn_timer))
                timer_arm_in(h->turn_timer, HTTP_SENDING_WAIT_USEC - since);
            return;                     /* request_end() serves it, or the timer */
        }
        h->sending = NULL;
    }
    h->queue_head = rq->next_queued;
    if (!h->queue_head)
        h->queue_tail = NULL;
    rq->next_queued = NULL;
    if (rq->body_too_large)
        http_error(rq, 413, "too_large", "the request body is larger than %" PRId64 " KiB",
                   h->cfg->http.max_body_kib);
    else
        route(rq);
    if (!rq->suspended)
        finish(rq);
    if (h->queue_head)
        sd_event_source_set_enabled(h->next_turn, SD_EVENT_ONESHOT);
}

static int serve_next(sd_event_source *s, void *userdata)
{
    serve_one(userdata);
    return 0;
}

static void on_turn_timer(void *userdata)
{
    serve_one(userdata);
}

/* What the web thread has for the loop: requests handed over and ended, and connections. */
static void on_wake(void *userdata)
{
    struct http *h = userdata;
    struct http_req *in, *ended;
    bool changed, any;

    pthread_mutex_lock(&h->lock);
    in = h->inbox_head;
    h->inbox_head = h->inbox_tail = NULL;
    ended = h->ended;
    h->ended = NULL;
    changed = h->conns_changed;
    h->conns_changed = false;
    any = h->conns != NULL;
    h->woken = false;
    pthread_mutex_unlock(&h->lock);
    end_requests(h, ended);
    if (changed && any && !timer_armed(h->watch))
        timer_arm_in(h->watch, 1000000);
    else if (changed && !any)
        /* The last connection gone: once things stay quiet, give back the memory a burst
         * of requests left free in the middle of the heap (pages, buffers, pools). */
        timer_arm_in(h->trim, TRIM_AFTER_IDLE_USEC);
    if (in) {
        queue_append(h, in);
        serve_one(h);
    }
}

/* ---- slow clients ---- */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http *h = cls;
    struct http_conn *c = *socket_context, **pp;

    web_thread_start(h);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return;         /* untracked: only libmicrohttpd's idle timeout applies */
        c->conn = conn;
        c->waiting_since = now_mono_usec();
        *socket_context = c;
        pthread_mutex_lock(&h->lock);
        c->next = h->conns;
        if (!h->conns) {
            h->conns_changed = true;            /* the loop starts watching */
            wake_locked(h);
        }
        h->conns = c;
        h->n_conns++;
        pthread_mutex_unlock(&h->lock);
        return;
    }
    pthread_mutex_lock(&h->lock);
    for (pp = &h->conns; c && *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            h->n_conns--;
            break;
        }
    if (!h->conns) {
        h->conns_changed = true;
        wake_locked(h);
    }
    pthread_mutex_unlock(&h->lock);
    free(c);
    *socket_context = NULL;
}

static void on_idle(void *userdata)
{
    struct http *h = userdata;

    pthread_mutex_lock(&h->lock);
    bool none = !h->conns;
    pthread_mutex_unlock(&h->lock);
    if (none)
        malloc_trim(0);
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* A client that closed its side of the connection before its request was all in: the
 * request can never complete, yet libmicrohttpd would keep waiting for it until its idle
 * timeout. Peeking reads nothing: the bytes still queued stay for libmicrohttpd. */
static bool client_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char b;

    return info && recv(info->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Cut a connection for good: shut its socket down, so that libmicrohttpd's next read ends it.
 * (An idle timeout does not do: every byte resets it, and a client dribbling a byte a second
 * would keep its connection for good.) The descriptor stays libmicrohttpd's to close: it
 * closes it only after telling on_connection(), which waits for h->lock, held here. */
static void cut(struct http_conn *c)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

    if (info)
        shutdown(info->connect_fd, SHUT_RDWR);
    c->cut = true;
}

/* While connections are open: a request whose headers have not all come within
 * header_timeout_seconds, or whose body has not within timeout_seconds after them, is cut;
 * so is one whose client closed its side before finishing it. When the server is full
 * (max_connections), everyone else waits in the kernel's queue: then a request not all in
 * after HTTP_FULL_GRACE_USEC is cut too — a browser sends one in a packet or two — so that
 * clients holding slots with half requests (a slowloris from more addresses than
 * per_address_connections separates) give way in seconds, not after the header timeout. */
#define HTTP_FULL_GRACE_USEC 2000000u
#define HTTP_WATCH_USEC 1000000u
#define HTTP_WATCH_FULL_USEC 250000u
#define HTTP_CUT_LOG_USEC 60000000u

static void on_watch(void *userdata)
{
    struct http *h = userdata;
    uint64_t now = now_mono_usec();
    uint64_t headers = (uint64_t)h->cfg->http.header_timeout_seconds * 1000000u;
    uint64_t body = (uint64_t)h->cfg->http.timeout_seconds * 1000000u;
    unsigned cuts = 0;
    bool full, any;

    pthread_mutex_lock(&h->lock);
    full = h->n_conns >= (unsigned)h->cfg->http.max_connections;
    if (full) {
        headers = headers < HTTP_FULL_GRACE_USEC ? headers : HTTP_FULL_GRACE_USEC;
        body = body < HTTP_FULL_GRACE_USEC ? body : HTTP_FULL_GRACE_USEC;
    }
    for (struct http_conn *c = h->conns; c; c = c->next) {
        uint64_t waiting = relaxed_load(&c->waiting_since);
        uint64_t reading = relaxed_load(&c->reading_since);
        if (c->cut || (!waiting && !reading))
            continue;
        /* The web thread may have moved them on since: a deadline read as past is past. */
        if ((waiting && waiting < now && now - waiting > headers) ||
            (reading && reading < now && now - reading > body) || client_gone(c->conn)) {
            cut(c);
            cuts++;
        }
    }
    any = h->conns != NULL;
    pthread_mutex_unlock(&h->lock);
    h->cuts_unlogged += cuts;
    /* Once a minute at most: an attack must not flood the journal. */
    if (h->cuts_unlogged && now - h->cuts_logged_usec >= HTTP_CUT_LOG_USEC) {
        log_notice("http: cut off %u clients too slow to send their requests, or gone before "
                   "finishing them%s", h->cuts_unlogged,
                   full ? " (the server is at max_connections)" : "");
        h->cuts_unlogged = 0;
        h->cuts_logged_usec = now;
    }
    if (any)
        timer_arm_in(h->watch, full ? HTTP_WATCH_FULL_USEC : HTTP_WATCH_USEC);
}

/* What may be logged of a URL or a message quoting one: every run of 40 or more token
 * characters (base64url: one-time links, calendar and kiosk tokens are 43) becomes "…".
 * out has n bytes; always terminated. */
void http_redact(const char *in, char *out, size_t n)
{
    size_t o = 0;

    if (n == 0)
        return;
    while (*in && o + 1 < n) {
        size_t run = 0;
        while (in[run] && ((in[run] >= 'A' && in[run] <= 'Z') || (in[run] >= 'a' && in[run] <= 'z') ||
                           (in[run] >= '0' && in[run] <= '9') || in[run] == '-' || in[run] == '_'))
            run++;
        if (run >= 40) {
            if (o + sizeof("…") > n)
                break;
            memcpy(out + o, "…", sizeof("…") - 1);
            o += sizeof("…") - 1;
            in += run;
        } else if (run > 0) {
            size_t k = run < n - 1 - o ? run : n - 1 - o;
            memcpy(out + o, in, k);
            o += k;
            in += run;
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
}

/* fmt is libmicrohttpd's own literal (MHD_OPTION_EXTERNAL_LOGGER). */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256], safe[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    http_redact(msg, safe, sizeof(safe));
    log_warning("http: %s", safe);
}

/* Whether this thread (the event loop's, where libmicrohttpd runs) has SIGPIPE blocked or
 * ignored. */
static bool sigpipe_blocked(void)
{
    sigset_t mask;
    struct sigaction sa;

    return (pthread_sigmask(SIG_BLOCK, NULL, &mask) == 0 && sigismember(&mask, SIGPIPE) == 1) ||
           (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
}

/* A PEM file as a string: NULL if unreadable, empty or over max bytes. */
static char *read_pem(const char *path, size_t max)
{
    char *data = malloc(max + 1);
    size_t n = 0;

    if (data && (file_read_small(path, data, max + 1, &n, NULL) < 0 || n == 0)) {
        sodium_memzero(data, n);
        free(data);
        return NULL;
    }
    return data;
}

int http_new(const struct http_env *env, const struct config *cfg, struct http **ret)
{
    struct sockaddr_storage sa = { 0 };
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM }, *ai = NULL;
    char port[8], *cert = NULL, *key = NULL;
    const char *host = cfg->http.host;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct http *h;
    int r;

    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    snprintf(port, sizeof(port), "%" PRId64, cfg->http.port);
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        log_error("http: listen = %s: the host must be an IP address", cfg->http.listen);
        return -EINVAL;
    }
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    freeaddrinfo(ai);
    if (cfg->http.tls_cert[0]) {
        cert = read_pem(cfg->http.tls_cert, 1 << 20);
        key = read_pem(cfg->http.tls_key, 1 << 20);
        if (!cert || !key) {
            log_error("http: cannot read tls_cert %s or tls_key %s", cfg->http.tls_cert,
                      cfg->http.tls_key);
            r = -ENOENT;
            goto fail_files;
        }
        flags |= MHD_USE_TLS;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        r = -ENOMEM;
        goto fail_files;
    }
    h->env = *env;
    h->cfg = cfg;
    h->tls = cert != NULL;
    h->site_language = (int)cfg->site.language;
    h->max_body = (size_t)cfg->http.max_body_kib * 1024;
    errno = 0;
    h->web_nice = getpriority(PRIO_PROCESS, 0);
    h->web_nice = errno ? 0 : h->web_nice + WEB_THREAD_NICE_ABOVE;
    if (h->web_nice > 19)
        h->web_nice = 19;
    r = realtime_mutex_init(&h->lock);
    if (r < 0) {
        free(h);
        goto fail_files;
    }
    /* Everything the web thread's callbacks use exists before libmicrohttpd starts it. */
    r = wakeup_new(env->loop, HTTP_PRIORITY, on_wake, h, &h->wake);
    if (r >= 0)
        r = timer_new(env->loop, CLOCK_MONOTONIC, 100000, on_watch, h, &h->watch);
    if (r >= 0)
        r = sd_event_add_defer(env->loop, &h->next_turn, serve_next, h);
    if (r >= 0)
        r = sd_event_add_defer(env->loop, &h->next_step, step_next, h);
    if (r >= 0)
        r = timer_new(env->loop, CLOCK_MONOTONIC, 100000, on_idle, h, &h->trim);
    if (r >= 0)
        r = timer_new(env->loop, CLOCK_MONOTONIC, 1, on_turn_timer, h, &h->turn_timer);
    if (r >= 0)
        r = web_kiosk_new(h);
    if (r < 0) {
        http_free(h);
        goto fail_files;
    }
    /* After the replies (control socket and web, HTTP_PRIORITY): a queue of pages to build
     * must not hold back an answer that is ready. */
    sd_event_source_set_priority(h->next_turn, HTTP_PRIORITY + 1);
    sd_event_source_set_enabled(h->next_turn, SD_EVENT_OFF);
    sd_event_source_set_priority(h->next_step, HTTP_PRIORITY + 1);
    sd_event_source_set_enabled(h->next_step, SD_EVENT_OFF);
    timer_set_priority(h->turn_timer, HTTP_PRIORITY + 1);
    /* libmicrohttpd sends a file with sendfile(2) only when told that a write to a closed
     * connection cannot kill the process with SIGPIPE: portierd blocks it (daemon.c). Over
     * TLS the bytes go through GnuTLS anyway: cached pages stay in memory. */
    h->sendfile = !h->tls && sigpipe_blocked();
    /* TLS adds its two options; without it the array starts at the third. */
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, key },
        { h->sendfile ? MHD_OPTION_SIGPIPE_HANDLED_BY_APP : MHD_OPTION_END, 1, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    h->mhd = MHD_start_daemon(flags, (uint16_t)cfg->http.port, NULL, NULL, on_access, h,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,     /* first, or MHD warns */
                              MHD_OPTION_SOCK_ADDR, &sa,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http.max_connections,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)cfg->http.per_address_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http.timeout_seconds,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                              MHD_OPTION_ARRAY, cert ? tls_opts : &tls_opts[2],
                              MHD_OPTION_END);
    if (cert) {
        sodium_memzero(key, strlen(key));
        free(cert);
        free(key);
        cert = key = NULL;
    }
    if (!h->mhd) {
        log_error("http: cannot listen on %s (in use, or not an address of this machine?)",
                  cfg->http.listen);
        http_free(h);
        return -EADDRNOTAVAIL;
    }
    log_info("http: serving on %s%s", cfg->http.listen, h->tls ? " (TLS)" : "");
    *ret = h;
    return 0;
fail_files:
    if (key)
        sodium_memzero(key, strlen(key));
    free(cert);
    free(key);
    return r;
}

void http_reconfigure(struct http *h, const struct config *cfg)
{
    if (!h)
        return;
    h->cfg = cfg;
    __atomic_store_n(&h->site_language, (int)cfg->site.language, __ATOMIC_RELAXED);
    __atomic_store_n(&h->max_body, (size_t)cfg->http.max_body_kib * 1024, __ATOMIC_RELAXED);
    http_cache_clear(h);
}

/* Answer every request the loop holds: libmicrohttpd stops only with no connection
 * suspended. */
static void answer_all_stopping(struct http *h)
{
    struct http_req *in;

    pthread_mutex_lock(&h->lock);
    h->stopping = true;         /* from now on, the web thread answers by itself */
    in = h->inbox_head;
    h->inbox_head = h->inbox_tail = NULL;
    pthread_mutex_unlock(&h->lock);
    if (in)
        queue_append(h, in);
    /* The suspended first: a page in steps puts the requests waiting for it back in the
     * queue. */
    while (h->suspended) {
        struct http_req *rq = h->suspended;
        password_cancel(rq);
        command_forget(rq);
        steps_end(rq);
        unlink_suspended(rq);
        if (!rq->response)
            http_error(rq, 503, "busy", "the controller is stopping");
        hand_back(rq);
    }
    while (h->queue_head) {
        struct http_req *rq = h->queue_head;
        h->queue_head = rq->next_queued;
        rq->next_queued = NULL;
        http_error(rq, 503, "busy", "the controller is stopping");
        hand_back(rq);
    }
    h->queue_tail = NULL;
}

struct http *http_free(struct http *h)
{
    if (!h)
        return NULL;
    if (h->mhd) {
        web_kiosk_stop(h);      /* its streams resumed to end: none may stay suspended */
        answer_all_stopping(h);
        MHD_stop_daemon(h->mhd);    /* joins the web thread: every request ended */
    }
    /* The web thread is gone: what it ended is the loop's to end (stopping: freed, not
     * kept as spares). */
    end_requests(h, h->ended);
    h->ended = NULL;
    h->next_turn = sd_event_source_disable_unref(h->next_turn);
    h->next_step = sd_event_source_disable_unref(h->next_step);
    h->wake = wakeup_free(h->wake);
    h->watch = timer_free(h->watch);
    h->trim = timer_free(h->trim);
    h->turn_timer = timer_free(h->turn_timer);
    web_kiosk_free(h);
    http_cache_clear(h);
    free_requests(h->spare);
    free_requests(h->web_spare);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}

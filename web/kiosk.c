/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* kiosk: the entrance screen — a page for a screen by the door, reached by a secret address
 * a manager creates (kiosk.add; only its hash is stored), with no login: open or closed, how
 * many people are in, each machine's state and next booking, today's bookings (names only
 * with [web] kiosk_names). It stays current through one Server-Sent Events stream per
 * screen, /kiosk/TOKEN/events, fed from the event loop:
 *
 * - the daemon's news (services_news: presence, machines, doors, bookings) only sets a bit
 *   and arms a short timer, so a tap pays nothing for the screens;
 * - when the timer fires, the board is rendered once per language in use and, if it
 *   changed, handed to every screen as one shared, reference-counted message;
 * - each stream is a libmicrohttpd response whose reader copies what its screen has not
 *   sent yet and, when there is nothing, suspends the connection; news resumes it. A slow
 *   screen keeps at most the message it is sending and the newest one (older news is
 *   replaced, never queued; its socket's send buffer is small, so old boards do not wait in
 *   the kernel either), libmicrohttpd writes without blocking, and a screen that takes
 *   nothing for KIOSK_TIMEOUT seconds is closed by its connection timeout;
 * - at most [web] kiosk_max_screens streams at once, one per screen (a screen that reloads
 *   replaces its older stream); every KIOSK_KEEPALIVE seconds a comment (or the board, when
 *   the time has changed what it shows) keeps proxies from closing idle streams and finds
 *   screens that went away. Without JavaScript the page reloads itself every minute. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "accounts.h"
#include "http_internal.h"
#include "log.h"
#include "priorities.h"
#include "realtime.h"
#include "util.h"

#define KIOSK_COALESCE_USEC 100000      /* news within 100 ms makes one update */
#define KIOSK_KEEPALIVE_USEC (20 * 1000000ull)
#define KIOSK_TIMEOUT 60                /* seconds without progress: the screen is gone */
#define KIOSK_BOOKINGS_MAX 40
#define KIOSK_SNDBUF 16384             /* the kernel doubles it: 32 KiB per screen */

struct kiosk_msg {
    unsigned refs;
    size_t len;
    char data[];
};

struct kiosk_screen {
    struct kiosk_hub *hub;
    struct kiosk_screen *next;
    struct MHD_Connection *conn;
    int64_t kiosk_id;
    enum lang lang;
    bool suspended, doomed;
    bool alive;                             /* scratch: its screen is still in the store */
    struct kiosk_msg *sending, *newest;     /* sending: offset bytes of it are out */
    size_t offset;
};

/* The screens are the loop's (it renders boards and hands them out) and the web thread's
 * (libmicrohttpd reads each stream in screen_read(), and frees it): the list and each
 * screen's stream state are under lock. */
struct kiosk_hub {
    struct http *h;
    pthread_mutex_t lock;
    struct kiosk_screen *screens;
    unsigned n;
    unsigned news;
    struct timer *coalesce, *keepalive;
    struct kiosk_msg *last[LANG__MAX];      /* the board last sent, per language */
    struct kiosk_msg *ping;
    uint64_t sent_boards;                   /* for the log and tests */
};

static struct kiosk_msg *msg_new(const char *data, size_t len)
{
    struct kiosk_msg *m = malloc(sizeof(*m) + len + 1);

    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    return m;
}

static struct kiosk_msg *msg_ref(struct kiosk_msg *m)
{
    if (m)
        __atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

static struct kiosk_msg *msg_unref(struct kiosk_msg *m)
{
    if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(m);
    return NULL;
}

/* ---- the board ---- */

struct board_ctx {
    struct http *h;
    enum lang lang;
    struct buf *b;
    unsigned n;
};

static int board_booking(const struct store_booking *bk, void *userdata)
{
    struct board_ctx *x = userdata;
    char a[16], e[16];

    if (x->n++ >= KIOSK_BOOKINGS_MAX)
        return 0;
    buf_printf(x->b, "<li%s><span class=\"k-time\">%s–%s</span> <span class=\"k-machine\">",
               bk->end <= now_utc() ? " class=\"over\"" : "",
               i18n_time(x->lang, bk->start, I18N_TIME, a, sizeof(a)),
               i18n_time(x->lang, bk->end, I18N_TIME, e, sizeof(e)));
    buf_html(x->b, bk->resource);
    buf_put(x->b, "</span>");
    if (x->h->cfg->web.kiosk_names) {
        buf_put(x->b, " <span class=\"k-who\">");
        buf_html(x->b, bk->member);
        buf_put(x->b, "</span>");
    }
    buf_put(x->b, "</li>");
    return 0;
}

struct next_ctx {
    int64_t start;
};

static int next_booking(const struct store_booking *bk, void *userdata)
{
    struct next_ctx *x = userdata;
    if (!x->start)
        x->start = bk->start;
    return 0;
}

/* The board's HTML (one line: it travels as one SSE data line). */
static void board_render(struct http *h, enum lang lang, struct buf *b)
{
    struct store *store = h->env.svc->store;
    json_t *status = h->env.svc->status(h->env.svc);
    struct http_req reader = { .h = h, .lang = lang };   /* for the shared page helpers */
    struct web_machines *ml = web_machines_load(&reader);
    int64_t now = now_utc(), today = web_midnight(now, 0);
    size_t from = b->len;
    json_int_t present = json_integer_value(json_object_get(status, "present"));
    bool open = web_site_open(status);
    char clock[16], text[160];

    buf_put(b, "<header class=\"k-head\"><h1>");
    buf_html(b, h->cfg->site.name);
    buf_printf(b, "</h1><p class=\"k-clock\">%s</p></header>",
               i18n_time(lang, now, I18N_TIME, clock, sizeof(clock)));
    buf_printf(b, "<div class=\"k-now\"><p class=\"state %s\" id=\"k-state\"><strong>%s</strong>"
                  "</p><p class=\"k-people\"><span id=\"k-present\">%lld</span> %s</p></div>",
               open ? "open" : "closed", open ? i18n_t(lang, "Open") : i18n_t(lang, "Closed"),
               (long long)present, i18n_nt(lang, "person in", "people in", present));

    buf_printf(b, "<section class=\"k-machines\" aria-labelledby=\"k-m\"><h2 id=\"k-m\">%s</h2>"
                  "<ul>", i18n_t(lang, "Machines"));
    for (unsigned k = 0; ml && k < ml->n; k++) {
        const struct store_resource *m = &ml->m[k];
        const char *state = web_machine_state(m, status);
        struct next_ctx nx = { 0 };
        struct store_booking_filter f = { .resource_id = m->id, .from = now,
                                          .to = web_midnight(now, 1), .limit = 1 };
        if (store_bookings_foreach(store, &f, next_booking, &nx) < 0)
            nx.start = 0;       /* shown without its next booking; the next update retries */
        buf_printf(b, "<li class=\"m-%s\"><span class=\"k-name\">",
                   state[0] == 'f' ? "free" : state[0] == 'i' ? "busy" : "ooo");
        buf_html(b, m->name);
        buf_printf(b, "</span> <span class=\"k-st\">%s</span>",
                   strcmp(state, "free") == 0 ? i18n_t(lang, "free")
                   : strcmp(state, "in_use") == 0 ? i18n_t(lang, "in use")
                                                  : i18n_t(lang, "out of order"));
        if (nx.start) {
            char at[16];
            if (nx.start > now)
                web_format(text, sizeof(text), i18n_t(lang, "next booking at %s"),
                           i18n_time(lang, nx.start, I18N_TIME, at, sizeof(at)));
            else
                snprintf(text, sizeof(text), "%s", i18n_t(lang, "booked now"));
            buf_put(b, " <span class=\"k-next\">");
            buf_html(b, text);
            buf_put(b, "</span>");
        }
        buf_put(b, "</li>");
    }
    if (!ml || !ml->n)
        buf_printf(b, "<li>%s</li>", i18n_t(lang, "No machines yet."));
    buf_put(b, "</ul></section>");
    free(ml);

    struct board_ctx x = { h, lang, b, 0 };
    struct store_booking_filter f = { .from = today, .to = web_midnight(today, 1),
                                      .limit = KIOSK_BOOKINGS_MAX + 1 };
    buf_printf(b, "<section class=\"k-bookings\" aria-labelledby=\"k-b\"><h2 id=\"k-b\">%s</h2><ul>",
               i18n_t(lang, "Today's bookings"));
    if (store_bookings_foreach(store, &f, board_booking, &x) < 0)
        log_warning("kiosk: cannot read today's bookings");
    if (!x.n)
        buf_printf(b, "<li>%s</li>", i18n_t(lang, "None today."));
    buf_put(b, "</ul></section>");
    json_decref(status);
    for (size_t i = from; b->data && i < b->len; i++)
        if (b->data[i] == '\n' || b->data[i] == '\r')
            b->data[i] = ' ';
}

/* ---- streams ---- */

/* The caller holds the hub's lock (as for every function on a screen below). */
static void screen_resume(struct kiosk_screen *s)
{
    if (!s->suspended)
        return;
    s->suspended = false;
    MHD_resume_connection(s->conn);     /* the web thread reads it again */
}

/* Hand m to s: after what it is sending, replacing anything older that waits. */
static void screen_give(struct kiosk_screen *s, struct kiosk_msg *m)
{
    if (s->sending && s->offset == 0) {
        msg_unref(s->sending);
        s->sending = NULL;
    }
    msg_unref(s->newest);
    s->newest = msg_ref(m);
    screen_resume(s);
}

static ssize_t screen_read_locked(struct kiosk_screen *s, char *buf, size_t max)
{
    size_t n;

    if (s->doomed)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (!s->sending && s->newest) {
        s->sending = s->newest;
        s->newest = NULL;
        s->offset = 0;
    }
    if (!s->sending) {
        /* Nothing new: park the connection until there is (news or keepalive resume it). */
        MHD_suspend_connection(s->conn);
        s->suspended = true;
        return 0;
    }
    n = s->sending->len - s->offset;
    if (n > max)
        n = max;
    memcpy(buf, s->sending->data + s->offset, n);
    s->offset += n;
    if (s->offset == s->sending->len) {
        s->sending = msg_unref(s->sending);
        s->offset = 0;
    }
    return (ssize_t)n;
}

/* libmicrohttpd's reader of a stream (web thread). */
static ssize_t screen_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct kiosk_screen *s = cls;
    ssize_t n;

    pthread_mutex_lock(&s->hub->lock);
    n = screen_read_locked(s, buf, max);
    pthread_mutex_unlock(&s->hub->lock);
    return n;
}

/* The stream's response is gone (either thread; never with the lock held). */
static void screen_free(void *cls)
{
    struct kiosk_screen *s = cls;
    struct kiosk_hub *hub = s->hub;

    if (hub)
        pthread_mutex_lock(&hub->lock);
    for (struct kiosk_screen **pp = hub ? &hub->screens : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            hub->n--;
            log_debug("kiosk: screen %" PRId64 " left (%u connected)", s->kiosk_id, hub->n);
            break;
        }
    if (hub)
        pthread_mutex_unlock(&hub->lock);
    msg_unref(s->sending);
    msg_unref(s->newest);
    free(s);
}

/* An SSE event carrying the board: "event: board", one data line. */
static struct kiosk_msg *board_event(struct http *h, enum lang lang)
{
    struct buf b = { 0 };
    struct kiosk_msg *m = NULL;

    buf_put(&b, "event: board\ndata: ");
    board_render(h, lang, &b);
    buf_put(&b, "\n\n");
    if (!b.failed)
        m = msg_new(b.data, b.len);
    buf_free(&b);
    return m;
}

/* Render the board for every language a screen reads and send it where it changed; with
 * keepalive, the others get a comment. */
static void kiosk_update(struct kiosk_hub *hub, bool keepalive)
{
    struct kiosk_msg *fresh[LANG__MAX] = { 0 };
    bool used[LANG__MAX] = { 0 }, changed[LANG__MAX] = { 0 };

    pthread_mutex_lock(&hub->lock);
    for (struct kiosk_screen *s = hub->screens; s; s = s->next)
        used[s->lang] = true;
    pthread_mutex_unlock(&hub->lock);
    for (int l = 0; l < LANG__MAX; l++) {
        if (!used[l])
            continue;
        fresh[l] = board_event(hub->h, (enum lang)l);
        if (!fresh[l])
            continue;
        changed[l] = !hub->last[l] || hub->last[l]->len != fresh[l]->len ||
                     memcmp(hub->last[l]->data, fresh[l]->data, fresh[l]->len) != 0;
        if (changed[l]) {
            msg_unref(hub->last[l]);
            hub->last[l] = msg_ref(fresh[l]);
            hub->sent_boards++;
        }
    }
    pthread_mutex_lock(&hub->lock);
    for (struct kiosk_screen *s = hub->screens; s; s = s->next) {
        if (changed[s->lang] && fresh[s->lang])
            screen_give(s, fresh[s->lang]);
        else if (keepalive && !s->sending && !s->newest)
            screen_give(s, hub->ping);
    }
    pthread_mutex_unlock(&hub->lock);
    for (int l = 0; l < LANG__MAX; l++)
        msg_unref(fresh[l]);
}

struct alive_ctx {
    struct kiosk_hub *hub;
};

static int kiosk_alive(const struct store_kiosk *k, void *userdata)
{
    struct alive_ctx *x = userdata;
    for (struct kiosk_screen *s = x->hub->screens; s; s = s->next)
        if (s->kiosk_id == k->id)
            s->alive = true;
    return 0;
}

/* A removed screen's address stops working for its open stream too. */
static void end_removed(struct kiosk_hub *hub)
{
    struct alive_ctx x = { hub };

    /* Held through the (short) read: the web thread waits for it only in a screen's read. */
    pthread_mutex_lock(&hub->lock);
    for (struct kiosk_screen *s = hub->screens; s; s = s->next)
        s->alive = false;
    if (store_kiosks_foreach(hub->h->env.svc->store, kiosk_alive, &x) < 0) {
        pthread_mutex_unlock(&hub->lock);
        return;         /* cannot tell: keep them, the next news tries again */
    }
    for (struct kiosk_screen *s = hub->screens; s; s = s->next)
        if (!s->alive && !s->doomed) {
            log_info("kiosk: screen %" PRId64 " was removed: its stream ends", s->kiosk_id);
            s->doomed = true;
            screen_resume(s);
        }
    pthread_mutex_unlock(&hub->lock);
}

static void on_coalesce(void *userdata)
{
    struct kiosk_hub *hub = userdata;
    unsigned news = hub->news;

    hub->news = 0;
    if (news & NEWS_KIOSKS)
        end_removed(hub);
    kiosk_update(hub, false);
}

static bool kiosk_watched(struct kiosk_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    bool any = hub->screens != NULL;
    pthread_mutex_unlock(&hub->lock);
    return any;
}

static void on_keepalive(void *userdata)
{
    struct kiosk_hub *hub = userdata;

    kiosk_update(hub, true);
    if (kiosk_watched(hub))
        timer_arm_in(hub->keepalive, KIOSK_KEEPALIVE_USEC);
}

static void on_news(void *ctx, unsigned what)
{
    web_kiosk_news(ctx, what);
}

void web_kiosk_news(struct http *h, unsigned what)
{
    struct kiosk_hub *hub = h->kiosk;

    if (!hub || !kiosk_watched(hub))
        return;                 /* nobody watches: nothing to do on the door's path */
    if (!hub->news)
        timer_arm_in(hub->coalesce, KIOSK_COALESCE_USEC);
    hub->news |= what;
}

int web_kiosk_new(struct http *h)
{
    struct kiosk_hub *hub = calloc(1, sizeof(*hub));
    static const char ping[] = ": keepalive\n\n";
    int r;

    if (!hub)
        return -ENOMEM;
    if (realtime_mutex_init(&hub->lock) < 0) {
        free(hub);
        return -ENOMEM;
    }
    hub->h = h;
    hub->ping = msg_new(ping, sizeof(ping) - 1);
    r = hub->ping ? 0 : -ENOMEM;
    if (r == 0)
        r = timer_new(h->env.loop, CLOCK_MONOTONIC, 10000, on_coalesce, hub, &hub->coalesce);
    if (r == 0)
        r = timer_new(h->env.loop, CLOCK_MONOTONIC, 0, on_keepalive, hub, &hub->keepalive);
    if (r < 0) {
        timer_free(hub->coalesce);
        msg_unref(hub->ping);
        pthread_mutex_destroy(&hub->lock);
        free(hub);
        return r;
    }
    timer_set_priority(hub->coalesce, PRIORITY_REPLIES);
    timer_set_priority(hub->keepalive, PRIORITY_REPLIES);
    h->kiosk = hub;
    h->env.svc->news = on_news;
    h->env.svc->news_ctx = h;
    return 0;
}

void web_kiosk_stop(struct http *h)
{
    struct kiosk_hub *hub = h->kiosk;

    if (!hub)
        return;
    if (h->env.svc->news == on_news) {
        h->env.svc->news = NULL;
        h->env.svc->news_ctx = NULL;
    }
    hub->coalesce = timer_free(hub->coalesce);
    hub->keepalive = timer_free(hub->keepalive);
    /* libmicrohttpd wants every connection resumed before it stops. */
    pthread_mutex_lock(&hub->lock);
    for (struct kiosk_screen *s = hub->screens; s; s = s->next) {
        s->doomed = true;
        screen_resume(s);
    }
    pthread_mutex_unlock(&hub->lock);
}

void web_kiosk_free(struct http *h)
{
    struct kiosk_hub *hub = h->kiosk;

    if (!hub)
        return;
    /* After libmicrohttpd stopped: every stream's response is gone, and its screen. */
    for (struct kiosk_screen *s = hub->screens; s; s = s->next)
        s->hub = NULL;
    for (int l = 0; l < LANG__MAX; l++)
        msg_unref(hub->last[l]);
    msg_unref(hub->ping);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
    h->kiosk = NULL;
}

/* ---- the pages ---- */

static bool kiosk_token(struct http_req *rq, const char *token, struct store_kiosk *k)
{
    uint8_t hash[STORE_HASH_LEN];

    if (!account_token_hash(token, hash) ||
        store_kiosk_check(rq->h->env.svc->store, hash, k) < 0) {
        http_error(rq, 404, "not_found", "this screen address is unknown or was removed; ask a "
                   "manager for a new one");
        return false;
    }
    return true;
}

static void kiosk_events(struct http_req *rq, const struct store_kiosk *k)
{
    struct kiosk_hub *hub = rq->h->kiosk;
    struct kiosk_screen *s;
    struct MHD_Response *r;
    const union MHD_ConnectionInfo *ci;
    static const char hello[] = "retry: 5000\n\n";
    struct kiosk_msg *first;
    unsigned live = 0, n;

    /* One stream per screen: a screen that reloads replaces its older stream. */
    pthread_mutex_lock(&hub->lock);
    for (s = hub->screens; s; s = s->next)
        if (s->kiosk_id == k->id && !s->doomed) {
            s->doomed = true;
            screen_resume(s);
        }
    for (s = hub->screens; s; s = s->next)
        live += !s->doomed;
    if (live >= (unsigned)rq->h->cfg->web.kiosk_max_screens) {
        /* Screens that went away are found when something is written to them: write to the
         * idle ones now, so that the retry finds their places free. */
        for (s = hub->screens; s; s = s->next)
            if (!s->sending && !s->newest)
                screen_give(s, hub->ping);
        pthread_mutex_unlock(&hub->lock);
        http_error(rq, 503, "busy", "too many entrance screens are connected ([web] "
                   "kiosk_max_screens)");
        if (rq->response)
            MHD_add_response_header(rq->response, "Retry-After", "5");
        return;
    }
    pthread_mutex_unlock(&hub->lock);
    s = calloc(1, sizeof(*s));
    first = board_event(rq->h, rq->lang);
    if (!s || !first) {
        free(s);
        msg_unref(first);
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    s->hub = hub;
    s->conn = rq->conn;
    s->kiosk_id = k->id;
    s->lang = rq->lang;
    s->sending = msg_new(hello, sizeof(hello) - 1);
    s->newest = first;
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, screen_read, s, screen_free);
    if (!r) {
        msg_unref(s->sending);
        msg_unref(s->newest);
        free(s);
        http_error(rq, 500, "internal", "out of memory");
        return;
    }
    pthread_mutex_lock(&hub->lock);
    s->next = hub->screens;
    hub->screens = s;
    n = ++hub->n;
    pthread_mutex_unlock(&hub->lock);
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");    /* nginx: pass events on */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    http_reply_response(rq, 200, r);
    rq->stream = true;
    /* A screen that takes nothing for this long (its socket full) is closed. */
    MHD_set_connection_option(rq->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)KIOSK_TIMEOUT);
    /* And what it leaves in the kernel is bounded too: a small send buffer, so that old boards
     * wait nowhere (the kernel would grow it to megabytes for a screen that stopped reading). */
    ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &(int){ KIOSK_SNDBUF },
                         sizeof(int)) < 0)
        log_warning("kiosk: screen %" PRId64 ": cannot bound its send buffer: %s", k->id,
                    strerror(errno));
    if (!timer_armed(hub->keepalive))
        timer_arm_in(hub->keepalive, KIOSK_KEEPALIVE_USEC);
    log_info("kiosk: screen %" PRId64 " (%s) connected (%u of at most %" PRId64 ")", k->id,
             k->label, n, rq->h->cfg->web.kiosk_max_screens);
}

static void kiosk_page(struct http_req *rq, const struct store_kiosk *k)
{
    struct buf b = { 0 };

    buf_printf(&b, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                   "<meta name=\"robots\" content=\"noindex\">"
                   "<link rel=\"stylesheet\" href=\"/static/style.css\">"
                   "<link rel=\"icon\" href=\"/static/icon.svg\">"
                   "<script src=\"/static/kiosk.js\" defer></script>"
                   "<noscript><meta http-equiv=\"refresh\" content=\"60\"></noscript><title>",
               i18n_code(rq->lang));
    buf_html(&b, rq->h->cfg->site.name);
    buf_printf(&b, " · %s</title></head><body class=\"kiosk\"><main id=\"board\">",
               L(rq, "Entrance"));
    board_render(rq->h, rq->lang, &b);
    buf_put(&b, "</main></body></html>\n");
    http_reply(rq, 200, "text/html; charset=utf-8", &b);
    if (rq->response)
        MHD_add_response_header(rq->response, "Cache-Control", "no-store");
}

/* GET /kiosk/TOKEN (the page) and /kiosk/TOKEN/events (its stream). No login: the address
 * is the credential, as a private calendar feed's is. */
void page_kiosk(struct http_req *rq, const char *rest)
{
    char token[STORE_TOKEN_TEXT_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
    struct store_kiosk k;

    if (len > STORE_TOKEN_TEXT_MAX || (slash && strcmp(slash, "/events") != 0)) {
        http_error(rq, 404, "not_found", "nothing here");
        return;
    }
    memcpy(token, rest, len);
    token[len] = '\0';
    if (!kiosk_token(rq, token, &k))
        return;
    if (slash)
        kiosk_events(rq, &k);
    else
        kiosk_page(rq, &k);
    sodium_memzero(token, sizeof(token));
}

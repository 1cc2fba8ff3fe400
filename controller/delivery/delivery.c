/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "mail.h"
#include "mime.h"
#include "priorities.h"
#include "services.h"
#include "store.h"
#include "timer.h"
#include "transport.h"
#include "util.h"
#include "webhook.h"

#define MAIL_IN_FLIGHT 2
#define MAIL_BACKOFF_MIN_S 30
#define MAIL_BACKOFF_MAX_S 3600
#define HOOK_WINDOW_MAX 32
#define HOOK_READ 64
#define HOOK_BACKOFF_MIN_MS 1000u
#define HOOK_BACKOFF_MAX_MS 300000u
#define HOOK_READS_PER_PUMP 8       /* 512 messages looked at, then the loop goes on */
#define CURSOR_SAVE_USEC 1000000u   /* cursors are written at most once a second */
#define PRUNE_EVERY_S 3600
#define REMIND_USEC (60 * 1000000ull)

/* A transfer's tag: what it is, which webhook, which row. */
enum { TAG_MAIL = 1, TAG_HOOK = 2, TAG_HOOK_TEST = 3 };
#define TAG(type, index, id) \
    (((uint64_t)(type) << 56) | ((uint64_t)(index) << 48) | ((uint64_t)(id) & 0xffffffffffffull))
#define TAG_TYPE(tag) ((unsigned)((tag) >> 56))
#define TAG_INDEX(tag) ((unsigned)(((tag) >> 48) & 0xff))
#define TAG_ID(tag) ((int64_t)((tag) & 0xffffffffffffull))

enum event_state { EV_WAITING, EV_SENDING, EV_DONE };

struct hook_event {
    int64_t seq;
    char kind[32];
    char id[WEBHOOK_ID_MAX];
    char *body;
    unsigned attempts;
    enum event_state state;
};

struct hook {
    struct delivery *d;
    unsigned index;
    struct webhook_config conf;         /* a copy: the configuration may be replaced */
    char secret[256];
    int64_t cursor;                     /* every event <= it delivered or not for us */
    int64_t saved;                      /* the cursor as last written to the store */
    int64_t fetched;                    /* the last outbox message looked at */
    struct hook_event win[HOOK_WINDOW_MAX];
    unsigned n, sending;
    unsigned failures;                  /* in a row */
    uint64_t retry_at_usec;             /* CLOCK_MONOTONIC; 0: now */
    struct timer *retry;
    uint64_t delivered, failed, rejected;
    long last_status;
    char last_error[160];
    int64_t last_delivered_at, failing_since;
    uint64_t last_reminder_usec;
};

struct watch {
    struct watch *next;
    uint64_t tag;
    delivery_watch_fn fn;
    void *userdata;
};

struct delivery {
    struct services *svc;
    struct transport *transport;
    char stream[16];                    /* this database's event stream, for event ids */
    struct watch *watches;
    uint64_t tests;

    /* e-mail */
    bool mail_on;
    struct mail_config mail;            /* a copy */
    char smtp_password[256];
    int64_t sending[MAIL_IN_FLIGHT];
    unsigned n_sending;
    int64_t *ring;                      /* send times of the last hour, oldest first */
    unsigned ring_head, ring_len, ring_cap;
    struct timer *mail_timer;
    uint64_t mail_sent, mail_failed, mail_dropped;
    uint64_t dropped_logged_usec, error_logged_usec;
    int64_t limited_until;              /* the hourly limit holds messages until then */
    int64_t last_prune;

    /* webhooks */
    struct hook *hooks;
    unsigned n_hooks;
    uint64_t outbox_dropped_seen;
    uint64_t outbox_logged_usec;
    struct timer *save_timer;
};

static void mail_tick(struct delivery *d);
static void hook_pump(struct hook *h);

static int read_first_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "re");

    if (!f)
        return -errno;
    if (!fgets(buf, (int)n, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* ---- watches ---- */

static int watch_add(struct delivery *d, uint64_t tag, delivery_watch_fn fn, void *userdata)
{
    struct watch *w = calloc(1, sizeof(*w));

    if (!w)
        return -ENOMEM;
    w->tag = tag;
    w->fn = fn;
    w->userdata = userdata;
    w->next = d->watches;
    d->watches = w;
    return 0;
}

static void watch_fire(struct delivery *d, uint64_t tag, const struct transport_result *r)
{
    struct delivery_outcome o = { .ok = !r->error[0], .answered = r->answered, .code = r->code,
                                  .usec = r->usec };
    struct watch **pp = &d->watches;

    snprintf(o.error, sizeof(o.error), "%s", r->error);
    while (*pp) {
        struct watch *w = *pp;
        if (w->tag != tag) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->fn(&o, w->userdata);
        free(w);
    }
}

void delivery_unwatch(struct delivery *d, void *userdata)
{
    if (!d)
        return;
    for (struct watch **pp = &d->watches; *pp;) {
        struct watch *w = *pp;
        if (w->userdata == userdata) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

/* ---- e-mail ---- */

/* Send times older than an hour leave the ring. */
static void ring_trim(struct delivery *d, int64_t now)
{
    while (d->ring_len > 0 && d->ring[d->ring_head] <= now - 3600) {
        d->ring_head = (d->ring_head + 1) % d->ring_cap;
        d->ring_len--;
    }
}

static void ring_push(struct delivery *d, int64_t at)
{
    if (d->ring_len == d->ring_cap) {       /* full: the oldest goes */
        d->ring_head = (d->ring_head + 1) % d->ring_cap;
        d->ring_len--;
    }
    d->ring[(d->ring_head + d->ring_len) % d->ring_cap] = at;
    d->ring_len++;
}

static int ring_load(int64_t at, void *userdata)
{
    ring_push(userdata, at);
    return 0;
}

static bool smtp_requires_tls(const struct mail_config *mc)
{
    return mc->starttls && strncmp(mc->smtp_url, "smtp://", 7) == 0;
}

static int utc_offset_minutes(int64_t at)
{
    time_t t = (time_t)at;
    struct tm tm;
    return localtime_r(&t, &tm) ? (int)(tm.tm_gmtoff / 60) : 0;
}

static void mail_give_up(struct delivery *d, const struct store_mail *m, const char *why)
{
    int r = store_mail_failed(d->svc->store, m->id, m->attempts + 1, 0, why);
    if (r < 0)
        log_error("mail %" PRId64 ": cannot record its failure: %s", m->id, strerror(-r));
    log_warning("mail %" PRId64 " (%s): not sent: %s", m->id, m->kind, why);
}

static int mail_send_one(const struct store_mail *m, void *userdata)
{
    struct delivery *d = userdata;
    const struct config *cfg = d->svc->cfg;
    struct mime_message msg = {
        .from_addr = d->mail.from, .from_name = cfg->site.name,
        .to_addr = m->to_addr, .to_name = m->to_name,
        .reply_to = d->mail.reply_to, .subject = m->subject, .message_id = m->message_id,
        .date = m->created_at, .utc_offset_minutes = utc_offset_minutes(m->created_at),
        .lang = m->lang, .text = m->body_text, .html = m->body_html,
    };
    struct transport_request req = {
        .kind = TRANSPORT_SMTP, .tag = TAG(TAG_MAIL, 0, m->id), .url = d->mail.smtp_url,
        .ca_file = d->mail.tls_ca, .timeout_ms = (long)d->mail.timeout_seconds * 1000,
        .require_tls = smtp_requires_tls(&d->mail),
        .username = d->mail.username[0] ? d->mail.username : NULL,
        .password = d->smtp_password, .mail_from = d->mail.from, .rcpt_to = m->to_addr,
    };
    char *text = NULL;
    size_t len = 0;
    int r = mime_build(&msg, &text, &len);

    if (r == -EINVAL) {
        mail_give_up(d, m, "invalid address or message id");
        return 0;
    }
    if (r < 0)
        return r;
    req.body = text;
    req.body_len = len;
    r = transport_submit(d->transport, &req);
    sodium_memzero(text, len);
    free(text);
    if (r < 0)
        return r;
    d->sending[d->n_sending++] = m->id;
    log_debug("mail %" PRId64 " (%s): sending, attempt %" PRId64, m->id, m->kind, m->attempts + 1);
    return 0;
}

static void mail_arm(struct delivery *d, int64_t seconds)
{
    int r;

    if (seconds < 1)
        seconds = 1;
    if (seconds > 3600)
        seconds = 3600;
    r = timer_arm_in(d->mail_timer, (uint64_t)seconds * 1000000u);
    if (r < 0)
        log_error("mail: cannot schedule the next attempt: %s", strerror(-r));
}

static void mail_tick(struct delivery *d)
{
    int64_t now = now_utc(), at;
    unsigned room;
    int r;

    if (!d->mail_on || d->n_sending >= MAIL_IN_FLIGHT)
        return;
    ring_trim(d, now);
    room = MAIL_IN_FLIGHT - d->n_sending;
    if (d->ring_len + d->n_sending >= (uint64_t)d->mail.per_hour) {
        /* The hourly limit: wait until the oldest send of the hour is an hour old. */
        d->limited_until = d->ring_len ? d->ring[d->ring_head] + 3600 : now + 60;
        mail_arm(d, d->limited_until - now);
        return;
    }
    if (room > d->mail.per_hour - d->ring_len - d->n_sending)
        room = (unsigned)(d->mail.per_hour - d->ring_len - d->n_sending);
    d->limited_until = 0;
    r = store_mail_due(d->svc->store, now, (int)room, d->sending, d->n_sending, mail_send_one, d);
    if (r < 0) {
        if (now_mono_usec() - d->error_logged_usec > REMIND_USEC) {
            log_error("mail: cannot read the queue: %s", strerror(-r));
            d->error_logged_usec = now_mono_usec();
        }
        mail_arm(d, 10);
        return;
    }
    r = store_mail_next_due(d->svc->store, &at);
    if (r == 0)
        mail_arm(d, at - now);
    else if (r != -ENOENT)
        mail_arm(d, 10);
}

static void mail_due(void *userdata)
{
    mail_tick(userdata);
}

static int64_t mail_backoff(int64_t attempts)
{
    int64_t s = MAIL_BACKOFF_MIN_S;
    for (int64_t i = 1; i < attempts && s < MAIL_BACKOFF_MAX_S; i++)
        s *= 2;
    return s < MAIL_BACKOFF_MAX_S ? s : MAIL_BACKOFF_MAX_S;
}

static void mail_result(struct delivery *d, int64_t id, const struct transport_result *res)
{
    struct store *store = d->svc->store;
    int64_t now = now_utc();
    struct store_mail m;
    char why[200];
    int r;

    for (unsigned i = 0; i < d->n_sending; i++)
        if (d->sending[i] == id) {
            d->sending[i] = d->sending[--d->n_sending];
            break;
        }
    if (!res->error[0]) {
        ring_push(d, now);
        d->mail_sent++;
        r = store_mail_sent(store, id, now);
        if (r < 0)
            log_error("mail %" PRId64 ": sent, but cannot record it (it may be sent again): %s",
                      id, strerror(-r));
        else
            log_info("mail %" PRId64 ": sent (%.0f ms)", id, res->usec / 1000.0);
        return;
    }
    d->mail_failed++;
    if (res->answered)
        snprintf(why, sizeof(why), "SMTP %ld: %s", res->code, res->error);
    else
        snprintf(why, sizeof(why), "%s", res->error);
    r = store_mail_get(store, id, &m);
    if (r < 0) {
        log_error("mail %" PRId64 ": cannot read it back: %s", id, strerror(-r));
        return;
    }
    m.attempts++;
    /* A permanent refusal (5xx: no such mailbox, authentication refused) is not repeated. */
    if ((res->answered && res->code >= 500 && res->code < 600) ||
        m.attempts >= d->mail.max_attempts) {
        r = store_mail_failed(store, id, m.attempts, 0, why);
        log_warning("mail %" PRId64 " (%s): failed after %" PRId64 " attempt%s: %s "
                    "(portierctl mail retry %" PRId64 " sends it again)", id, m.kind, m.attempts,
                    m.attempts == 1 ? "" : "s", why, id);
    } else {
        int64_t next = now + mail_backoff(m.attempts);
        r = store_mail_failed(store, id, m.attempts, next, why);
        log_notice("mail %" PRId64 " (%s): attempt %" PRId64 " failed: %s; trying again in %"
                   PRId64 " s", id, m.kind, m.attempts, why, next - now);
    }
    if (r < 0)
        log_error("mail %" PRId64 ": cannot record the failed attempt: %s", id, strerror(-r));
}

void delivery_mail_dropped(struct delivery *d, const char *kind)
{
    if (!d)
        return;
    d->mail_dropped++;
    if (now_mono_usec() - d->dropped_logged_usec > REMIND_USEC) {
        log_warning("mail: the queue is full ([mail] queue_max = %" PRId64 "): a %s message "
                    "was not queued (%" PRIu64 " so far)", d->mail.queue_max, kind,
                    d->mail_dropped);
        d->dropped_logged_usec = now_mono_usec();
    }
}

int64_t delivery_mail_held_until(struct delivery *d)
{
    if (!d || !d->mail_on)
        return 0;
    ring_trim(d, now_utc());
    if (d->ring_len + d->n_sending < (uint64_t)d->mail.per_hour)
        return 0;
    return d->ring_len ? d->ring[d->ring_head] + 3600 : now_utc() + 60;
}

bool delivery_mail_sending(const struct delivery *d, int64_t id)
{
    for (unsigned i = 0; d && i < d->n_sending; i++)
        if (d->sending[i] == id)
            return true;
    return false;
}

int delivery_watch_mail(struct delivery *d, int64_t id, delivery_watch_fn fn, void *userdata)
{
    return d ? watch_add(d, TAG(TAG_MAIL, 0, id), fn, userdata) : -ENOENT;
}

/* ---- webhooks ---- */

static int hook_take(int64_t seq, const char *kind, const char *payload, void *userdata)
{
    struct hook *h = userdata;
    struct hook_event *e;

    if (!config_events_match(h->conf.events, kind)) {
        h->fetched = seq;           /* not for this receiver: the cursor passes it */
        return 0;
    }
    if (h->n == (unsigned)h->conf.in_flight * 2 || h->n == HOOK_WINDOW_MAX)
        return -ENOBUFS;
    e = &h->win[h->n];
    memset(e, 0, sizeof(*e));
    e->seq = seq;
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    webhook_event_id(h->d->stream, seq, e->id, sizeof(e->id));
    e->body = webhook_body(h->d->svc->cfg->site.id, e->id, seq, kind, payload);
    if (!e->body)
        return -ENOMEM;
    h->n++;
    h->fetched = seq;
    return 0;
}

/* Read events after what was looked at, into the window. A long run of events that are
 * not for this receiver is read a few pages at a time, the loop serving others between. */
static void hook_fill(struct hook *h)
{
    unsigned window = (unsigned)h->conf.in_flight * 2;

    if (window > HOOK_WINDOW_MAX)
        window = HOOK_WINDOW_MAX;
    for (unsigned reads = 0; h->n < window; reads++) {
        if (reads == HOOK_READS_PER_PUMP) {
            if (!timer_armed(h->retry))
                (void)timer_arm_in(h->retry, 1000);     /* 1 ms: go on right after */
            break;
        }
        int r = store_outbox_read(h->d->svc->store, h->fetched, HOOK_READ, hook_take, h);
        if (r < 0 && r != -ENOBUFS)
            log_error("webhook %s: cannot read the outbox: %s", h->conf.name, strerror(-r));
        if (r < HOOK_READ)
            break;
    }
}

static void cursors_save(void *userdata)
{
    struct delivery *d = userdata;

    for (unsigned i = 0; i < d->n_hooks; i++) {
        struct hook *h = &d->hooks[i];
        if (h->cursor <= h->saved)
            continue;
        int r = store_outbox_advance(d->svc->store, h->conf.name, h->cursor);
        if (r < 0)
            log_error("webhook %s: cannot record what was delivered (it may be sent again): %s",
                      h->conf.name, strerror(-r));
        else
            h->saved = h->cursor;
    }
}

/* Delivered events leave the window and the cursor follows; it is written to the store at
 * most once a second (after a crash, what followed is sent again), where the outbox then
 * forgets what every consumer has. */
static void hook_advance(struct hook *h)
{
    unsigned k = 0;
    int64_t cursor;

    while (k < h->n && h->win[k].state == EV_DONE) {
        free(h->win[k].body);
        k++;
    }
    if (k) {
        memmove(h->win, h->win + k, (h->n - k) * sizeof(h->win[0]));
        h->n -= k;
    }
    cursor = h->n ? h->win[0].seq - 1 : h->fetched;
    if (cursor > h->cursor) {
        h->cursor = cursor;
        if (!timer_armed(h->d->save_timer)) {
            int r = timer_arm_in(h->d->save_timer, CURSOR_SAVE_USEC);
            if (r < 0)
                cursors_save(h->d);
        }
    }
}

static int hook_post(struct hook *h, uint64_t tag, const char *kind, const char *id,
                     const char *body)
{
    char sig[WEBHOOK_SIGNATURE_MAX], h_sig[WEBHOOK_SIGNATURE_MAX + 32], h_kind[64], h_id[80];
    const char *headers[] = { "Content-Type: application/json", h_kind, h_id, h_sig, NULL };
    struct transport_request req = {
        .kind = TRANSPORT_HTTP_POST, .tag = tag, .url = h->conf.url, .ca_file = h->conf.tls_ca,
        .timeout_ms = (long)h->conf.timeout_seconds * 1000, .body = body,
        .body_len = strlen(body), .headers = headers,
    };

    webhook_sign(h->secret, now_utc(), body, req.body_len, sig);
    snprintf(h_sig, sizeof(h_sig), "Portier-Signature: %s", sig);
    snprintf(h_kind, sizeof(h_kind), "Portier-Event: %s", kind);
    snprintf(h_id, sizeof(h_id), "Portier-Event-Id: %s", id);
    return transport_submit(h->d->transport, &req);
}

static void hook_send(struct hook *h)
{
    if (h->retry_at_usec > now_mono_usec())
        return;                     /* backing off: the retry timer comes back */
    for (unsigned i = 0; i < h->n && h->sending < (unsigned)h->conf.in_flight; i++) {
        struct hook_event *e = &h->win[i];
        if (e->state != EV_WAITING)
            continue;
        int r = hook_post(h, TAG(TAG_HOOK, h->index, e->seq), e->kind, e->id, e->body);
        if (r < 0) {
            log_error("webhook %s: cannot send: %s", h->conf.name, strerror(-r));
            break;
        }
        e->state = EV_SENDING;
        e->attempts++;
        h->sending++;
    }
}

static void hook_pump(struct hook *h)
{
    hook_advance(h);
    hook_fill(h);
    hook_send(h);
}

static void hook_retry_due(void *userdata)
{
    struct hook *h = userdata;
    if (h->retry_at_usec <= now_mono_usec())
        h->retry_at_usec = 0;
    hook_pump(h);
}

static void hook_result(struct hook *h, int64_t seq, const struct transport_result *res)
{
    struct hook_event *e = NULL;
    uint64_t now = now_mono_usec();

    for (unsigned i = 0; i < h->n; i++)
        if (h->win[i].seq == seq && h->win[i].state == EV_SENDING)
            e = &h->win[i];
    if (!e)
        return;
    h->sending--;
    h->last_status = res->code;
    if (!res->error[0]) {
        e->state = EV_DONE;
        h->delivered++;
        h->last_delivered_at = now_utc();
        if (h->failures)
            log_notice("webhook %s: delivering again after %u failed attempts", h->conf.name,
                       h->failures);
        h->failures = 0;
        h->failing_since = 0;
        h->last_error[0] = '\0';
    } else if (res->answered && res->code >= 400 && res->code < 500 && res->code != 408 &&
               res->code != 429) {
        /* The receiver refuses this event: sending it again would not change its mind. */
        e->state = EV_DONE;
        h->rejected++;
        snprintf(h->last_error, sizeof(h->last_error), "%s", res->error);
        log_warning("webhook %s: event %s (%s) refused with HTTP %ld; it is not sent again",
                    h->conf.name, e->id, e->kind, res->code);
    } else {
        unsigned delay = HOOK_BACKOFF_MIN_MS;
        e->state = EV_WAITING;
        h->failed++;
        h->failures++;
        for (unsigned i = 1; i < h->failures && delay < HOOK_BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > HOOK_BACKOFF_MAX_MS)
            delay = HOOK_BACKOFF_MAX_MS;
        snprintf(h->last_error, sizeof(h->last_error), "%s", res->error);
        if (!h->failing_since) {
            h->failing_since = now_utc();
            h->last_reminder_usec = now;
            log_warning("webhook %s: cannot deliver (%s); trying again, backing off up to %u s",
                        h->conf.name, res->error, HOOK_BACKOFF_MAX_MS / 1000);
        } else if (now - h->last_reminder_usec > 10 * REMIND_USEC) {
            h->last_reminder_usec = now;
            log_warning("webhook %s: still failing (%s), %u attempts in a row", h->conf.name,
                        res->error, h->failures);
        }
        h->retry_at_usec = now + delay * 1000ull;
        int r = timer_arm_in(h->retry, delay * 1000ull);
        if (r < 0) {
            log_error("webhook %s: cannot schedule the retry: %s", h->conf.name, strerror(-r));
            h->retry_at_usec = 0;
        }
    }
    hook_pump(h);
}

static json_t *event_json(const struct delivery *d, const char *id)
{
    char at[32];
    format_utc(now_utc(), at, sizeof(at));
    return json_pack("{s:s, s:i, s:s, s:s, s:s}", "id", id, "v", 1, "site",
                     d->svc->cfg->site.id, "kind", "test", "at", at);
}

int delivery_webhook_test(struct delivery *d, const char *name, delivery_watch_fn fn,
                          void *userdata)
{
    struct hook *h = NULL;
    char id[WEBHOOK_ID_MAX], *body;
    json_t *obj;
    uint64_t tag;
    int r;

    for (unsigned i = 0; d && i < d->n_hooks; i++)
        if (strcmp(d->hooks[i].conf.name, name) == 0)
            h = &d->hooks[i];
    if (!h)
        return -ENOENT;
    snprintf(id, sizeof(id), "%s-test-%" PRIu64, d->stream, ++d->tests);
    obj = event_json(d, id);
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!body)
        return -ENOMEM;
    tag = TAG(TAG_HOOK_TEST, h->index, d->tests);
    r = watch_add(d, tag, fn, userdata);
    if (r == 0) {
        r = hook_post(h, tag, "test", id, body);
        if (r < 0)
            delivery_unwatch(d, userdata);
    }
    free(body);
    return r;
}

static void log_outbox_drops(struct delivery *d)
{
    uint64_t dropped = store_outbox_dropped(d->svc->store);

    if (dropped == d->outbox_dropped_seen || now_mono_usec() - d->outbox_logged_usec < REMIND_USEC)
        return;
    log_warning("webhooks: the outbox is full ([mqtt] outbox_max = %" PRId64 "): %" PRIu64
                " oldest events dropped before every webhook had them", d->svc->cfg->mqtt.outbox_max,
                dropped);
    d->outbox_dropped_seen = dropped;
    d->outbox_logged_usec = now_mono_usec();
}

/* ---- outcomes ---- */

static void on_result(const struct transport_result *res, void *userdata)
{
    struct delivery *d = userdata;
    unsigned index = TAG_INDEX(res->tag);

    switch (TAG_TYPE(res->tag)) {
    case TAG_MAIL:
        mail_result(d, TAG_ID(res->tag), res);
        watch_fire(d, res->tag, res);
        mail_tick(d);
        break;
    case TAG_HOOK:
        if (index < d->n_hooks)
            hook_result(&d->hooks[index], TAG_ID(res->tag), res);
        break;
    case TAG_HOOK_TEST:
        if (index < d->n_hooks) {
            struct hook *h = &d->hooks[index];
            h->last_status = res->code;
            log_info("webhook %s: test event %s (HTTP %ld%s%s)", h->conf.name,
                     res->error[0] ? "failed" : "delivered", res->code,
                     res->error[0] ? ", " : "", res->error);
        }
        watch_fire(d, res->tag, res);
        break;
    }
}

/* ---- life cycle ---- */

void delivery_kick(struct delivery *d)
{
    if (!d)
        return;
    mail_tick(d);
    if (d->n_hooks)
        log_outbox_drops(d);
    for (unsigned i = 0; i < d->n_hooks; i++)
        hook_pump(&d->hooks[i]);
}

void delivery_minute(struct delivery *d)
{
    int64_t now = now_utc();
    int r;

    if (!d || !d->mail_on)
        return;
    mail_schedule(d->svc, now);
    if (now - d->last_prune >= PRUNE_EVERY_S) {
        d->last_prune = now;
        r = store_mail_prune(d->svc->store, now - d->mail.keep_days * 86400, now);
        if (r < 0)
            log_error("mail: cannot forget old messages: %s", strerror(-r));
        else if (r > 0)
            log_debug("mail: %d old messages forgotten", r);
    }
    mail_tick(d);
}

static int hook_start(struct delivery *d, struct hook *h, const struct webhook_config *wc,
                      unsigned index)
{
    int r;

    h->d = d;
    h->index = index;
    h->conf = *wc;
    if (wc->secret_file[0]) {
        r = read_first_line(wc->secret_file, h->secret, sizeof(h->secret));
        if (r < 0) {
            log_error("webhook %s: cannot read secret_file %s: %s", wc->name, wc->secret_file,
                      strerror(-r));
            return r;
        }
        if (strlen(h->secret) < 16) {
            log_error("webhook %s: the secret in %s must have at least 16 characters", wc->name,
                      wc->secret_file);
            return -EINVAL;
        }
    } else {
        snprintf(h->secret, sizeof(h->secret), "%s", wc->secret);
    }
    sodium_memzero(h->conf.secret, sizeof(h->conf.secret));     /* kept once, in h->secret */
    r = store_outbox_cursor(d->svc->store, wc->name, &h->cursor);
    if (r < 0) {
        log_error("webhook %s: cannot read its cursor: %s", wc->name, strerror(-r));
        return r;
    }
    h->fetched = h->saved = h->cursor;
    r = timer_new(d->svc->loop, CLOCK_MONOTONIC, 10000, hook_retry_due, h, &h->retry);
    if (r < 0)
        return r;
    log_info("webhook %s: events %s, from event %" PRId64, wc->name, wc->events, h->cursor + 1);
    return 0;
}

static int mail_start(struct delivery *d)
{
    const struct mail_config *mc = &d->svc->cfg->mail;
    int r;

    d->mail_on = true;
    d->mail = *mc;
    if (mc->password_file[0]) {
        r = read_first_line(mc->password_file, d->smtp_password, sizeof(d->smtp_password));
        if (r < 0) {
            log_error("mail: cannot read password_file %s: %s", mc->password_file, strerror(-r));
            return r;
        }
    }
    d->ring_cap = (unsigned)mc->per_hour;
    d->ring = calloc(d->ring_cap, sizeof(*d->ring));
    if (!d->ring)
        return -ENOMEM;
    r = store_mail_sent_since(d->svc->store, now_utc() - 3600, ring_load, d);
    if (r < 0) {
        log_error("mail: cannot read what was sent in the last hour: %s", strerror(-r));
        return r;
    }
    r = timer_new(d->svc->loop, CLOCK_MONOTONIC, 100000, mail_due, d, &d->mail_timer);
    if (r < 0)
        return r;
    log_info("mail: sending through %.*s as %s, at most %" PRId64 " an hour",
             (int)strcspn(mc->smtp_url, "?#"), mc->smtp_url, mc->from, mc->per_hour);
    return 0;
}

int delivery_new(struct services *svc, struct delivery **ret)
{
    const struct config *cfg = svc->cfg;
    uint8_t stream[6];
    struct delivery *d;
    int r;

    *ret = NULL;
    if (!cfg->mail.enabled && cfg->n_webhooks == 0)
        return 0;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->svc = svc;
    r = store_secret(svc->store, "event_stream", stream, sizeof(stream));
    if (r < 0) {
        log_error("delivery: cannot read or create the event stream's name: %s", strerror(-r));
        goto fail;
    }
    sodium_bin2hex(d->stream, sizeof(d->stream), stream, sizeof(stream));
    r = transport_new(svc->loop, on_result, d, &d->transport);
    if (r < 0)
        goto fail;
    if (cfg->mail.enabled && (r = mail_start(d)) < 0)
        goto fail;
    if (cfg->n_webhooks) {
        r = timer_new(svc->loop, CLOCK_MONOTONIC, 100000, cursors_save, d, &d->save_timer);
        if (r < 0)
            goto fail;
        d->hooks = calloc(cfg->n_webhooks, sizeof(*d->hooks));
        if (!d->hooks) {
            r = -ENOMEM;
            goto fail;
        }
        for (unsigned i = 0; i < cfg->n_webhooks; i++) {
            r = hook_start(d, &d->hooks[i], &cfg->webhooks[i], i);
            if (r < 0)
                goto fail;
            d->n_hooks++;
        }
        d->outbox_dropped_seen = store_outbox_dropped(svc->store);
    }
    *ret = d;
    delivery_kick(d);
    return 0;
fail:
    delivery_free(d);
    return r;
}

struct delivery *delivery_free(struct delivery *d)
{
    if (!d)
        return NULL;
    d->transport = transport_free(d->transport);    /* the thread first: no more outcomes */
    if (d->save_timer)
        cursors_save(d);        /* into the open batch, committed by the owner */
    timer_free(d->save_timer);
    while (d->watches) {
        struct watch *w = d->watches;
        d->watches = w->next;
        free(w);
    }
    for (unsigned i = 0; i < d->n_hooks; i++) {
        struct hook *h = &d->hooks[i];
        for (unsigned k = 0; k < h->n; k++)
            free(h->win[k].body);
        timer_free(h->retry);
        sodium_memzero(h->secret, sizeof(h->secret));
    }
    free(d->hooks);
    timer_free(d->mail_timer);
    sodium_memzero(d->smtp_password, sizeof(d->smtp_password));
    free(d->ring);
    free(d);
    return NULL;
}

/* ---- state, for people ---- */

json_t *delivery_mail_json(struct delivery *d)
{
    json_t *o, *sending;
    int64_t queued;

    if (!d || !d->mail_on)
        return json_pack("{s:b}", "enabled", 0);
    ring_trim(d, now_utc());
    queued = store_mail_queued_count(d->svc->store);
    sending = json_array();
    for (unsigned i = 0; i < d->n_sending; i++)
        json_array_append_new(sending, json_integer(d->sending[i]));
    o = json_pack("{s:b, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled", 1,
                  "queued", (json_int_t)(queued < 0 ? 0 : queued), "sending", sending,
                  "sent_last_hour", (json_int_t)d->ring_len, "per_hour",
                  (json_int_t)d->mail.per_hour, "queue_max", (json_int_t)d->mail.queue_max,
                  "sent", (json_int_t)d->mail_sent, "failed_attempts", (json_int_t)d->mail_failed,
                  "dropped", (json_int_t)d->mail_dropped);
    if (d->limited_until)
        json_object_set_new(o, "held_until", json_integer(d->limited_until));
    return o;
}

/* The receiver's address without its path or query (which may hold a token). */
static void url_origin(const char *url, char *buf, size_t n)
{
    const char *host = strstr(url, "://");
    size_t len = host ? (size_t)(host + 3 - url) + strcspn(host + 3, "/?#") : strlen(url);
    snprintf(buf, n, "%.*s", (int)len, url);
}

json_t *delivery_webhooks_json(struct delivery *d)
{
    json_t *list = json_array();
    int64_t last = d ? store_outbox_durable_seq(d->svc->store) : 0;

    for (unsigned i = 0; d && i < d->n_hooks; i++) {
        const struct hook *h = &d->hooks[i];
        char origin[256];
        uint64_t now = now_mono_usec();
        url_origin(h->conf.url, origin, sizeof(origin));
        json_array_append_new(list, json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:I}",
            "name", h->conf.name, "receiver", origin, "events", h->conf.events,
            "cursor", (json_int_t)h->cursor,
            "behind", (json_int_t)(last > h->cursor ? last - h->cursor : 0),
            "sending", (json_int_t)h->sending, "delivered", (json_int_t)h->delivered,
            "failed_attempts", (json_int_t)h->failed, "refused", (json_int_t)h->rejected,
            "last_status", (json_int_t)h->last_status, "last_error", h->last_error,
            "failing_since", (json_int_t)h->failing_since,
            "last_delivered_at", (json_int_t)h->last_delivered_at,
            "retry_in_ms", (json_int_t)(h->retry_at_usec > now ? (h->retry_at_usec - now) / 1000 : 0)));
    }
    return list;
}

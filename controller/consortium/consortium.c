/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "consortium.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_batch.h"
#include "ledger_batch_json.h"
#include "log.h"
#include "passports.h"
#include "period_seal.h"
#include "period_seal_json.h"
#include "store_consortium.h"
#include "timer.h"
#include "util.h"

#define CONTROL_PAYLOAD_MAX 512     /* acks and resend requests are small */

struct consortium {
    sd_event *loop;
    struct store *store;
    struct meter *meter;
    struct mqtt *mqtt;
    const struct config *cfg;
    struct store_consortium *sc;
    sd_event_source *pump;
    struct timer *tick;
    bool connected;
    bool inflight;                  /* a batch handed to the broker, not yet acknowledged */
    int inflight_mid;
    int64_t acked;
    int64_t sent_up_to;
    uint64_t last_progress_usec;
    struct ledger_batch *batch;     /* large: allocated once */
    struct passports *passports;    /* NULL unless [consortium] card_key_file is set */
    char ack_topic[320], resend_topic[320];
    struct consortium_stats stats;
};

void consortium_kick(struct consortium *c)
{
    if (c && c->pump)
        sd_event_source_set_enabled(c->pump, SD_EVENT_ONESHOT);
}

/* ---- sending batches ---- */

struct collect {
    struct ledger_batch *b;
    unsigned want;
};

static int collect_entry(const struct ledger_entry *e, void *userdata)
{
    struct collect *cx = userdata;

    cx->b->entries[cx->b->n++] = *e;
    return cx->b->n < cx->want ? 0 : -ECANCELED;     /* enough: stop reading */
}

static int head_seq(struct consortium *c, int64_t *ret)
{
    uint8_t hash[LEDGER_HASH_LEN], sig[LEDGER_SIG_LEN];
    return store_ledger_head(c->store, ret, hash, sig);
}

/* One batch per call, at idle priority: the loop handles taps, timers and the broker first. */
static int pump_due(sd_event_source *s, void *userdata)
{
    struct consortium *c = userdata;
    struct ledger_batch *b = c->batch;
    struct collect cx = { .b = b };
    uint8_t msg[160];
    size_t msg_len, len;
    int64_t head;
    char *text;
    int mid = 0, r;

    /* Only durable entries leave: an open batch could still be rolled back, and a commit
     * not yet on disk lost to a power cut, and their sequence numbers reused. The commit
     * module kicks us again once the next one is durable. */
    if (!c->connected || c->inflight)
        return 0;
    if (head_seq(c, &head) < 0)
        return 0;
    {
        struct store_marks durable;
        store_marks_durable(c->store, &durable);
        if (head > durable.ledger_seq)
            head = durable.ledger_seq;
    }
    if (c->sent_up_to >= head ||
        c->sent_up_to - c->acked >= c->cfg->consortium.window_entries)
        return 0;
    memset(b, 0, sizeof(*b));
    cx.want = (unsigned)(head - c->sent_up_to < c->cfg->consortium.batch_entries
                             ? head - c->sent_up_to
                             : c->cfg->consortium.batch_entries);
    r = store_ledger_foreach(c->store, c->sent_up_to + 1, collect_entry, &cx);
    if ((r < 0 && r != -ECANCELED) || b->n == 0) {
        log_error("consortium: cannot read the ledger from entry %" PRId64 ": %s",
                  c->sent_up_to + 1, strerror(r < 0 ? -r : EIO));
        return 0;
    }
    snprintf(b->site, sizeof(b->site), "%s", meter_site(c->meter));
    b->first = b->entries[0].seq;
    b->last = b->entries[b->n - 1].seq;
    if (b->first != c->sent_up_to + 1 || b->last - b->first + 1 != (int64_t)b->n) {
        log_error("consortium: the ledger has a gap after entry %" PRId64 "; not sending it "
                  "(run portierctl ledger verify)", c->sent_up_to);
        return 0;
    }
    msg_len = ledger_batch_message(b->site, b->first, b->last, b->entries[b->n - 1].hash, msg,
                                   sizeof(msg));
    meter_sign(c->meter, msg, msg_len, b->sig);
    text = ledger_batch_to_json(b, &len);
    if (!text) {
        log_error("consortium: cannot encode entries %" PRId64 "-%" PRId64, b->first, b->last);
        return 0;
    }
    r = mqtt_publish_raw(c->mqtt, "ledger/batch", text, len, false, &mid);
    free(text);
    if (r < 0) {
        log_warning("consortium: cannot publish entries %" PRId64 "-%" PRId64 ": %s", b->first,
                    b->last, strerror(-r));
        return 0;
    }
    log_debug("consortium: sent ledger entries %" PRId64 "-%" PRId64, b->first, b->last);
    c->inflight = true;
    c->inflight_mid = mid;
    c->sent_up_to = b->last;
    c->stats.batches_sent++;
    return 0;
}

/* ---- the custodian's messages ---- */

static int entry_hash(const struct ledger_entry *e, void *userdata)
{
    memcpy(userdata, e->hash, LEDGER_HASH_LEN);
    return -ECANCELED;
}

static void on_ack(struct consortium *c, const void *payload, int len)
{
    json_error_t err;
    json_t *o;
    json_int_t v = 0, seq = -1;
    const char *site = NULL, *hex = NULL;
    uint8_t want[LEDGER_HASH_LEN], have[LEDGER_HASH_LEN] = { 0 };
    int64_t head = 0, prev;
    int r;

    if (len <= 0)
        return;             /* a cleared retained ack: nothing to learn */
    o = len <= CONTROL_PAYLOAD_MAX ? json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES, &err)
                                   : NULL;
    if (!o || json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:s, s:I, s?s}", "v", &v, "site",
                             &site, "seq", &seq, "hash", &hex) < 0 ||
        v != 1 || strcmp(site, c->cfg->site.id) != 0 || seq < 0 ||
        (hex && !hex_decode(hex, strlen(hex), want, sizeof(want)))) {
        log_warning("consortium: ignoring a malformed acknowledgement on %s", c->ack_topic);
        c->stats.acks_refused++;
        json_decref(o);
        return;
    }
    json_decref(o);
    head_seq(c, &head);
    if (seq > head) {
        log_warning("consortium: the custodian acknowledges entry %" JSON_INTEGER_FORMAT
                    " but the ledger ends at %" PRId64 " (another database under this site id?); "
                    "ignored", seq, head);
        c->stats.acks_refused++;
        return;
    }
    if (seq > 0 && hex) {
        r = store_ledger_foreach(c->store, seq, entry_hash, have);
        if ((r < 0 && r != -ECANCELED) || memcmp(have, want, LEDGER_HASH_LEN) != 0) {
            log_error("consortium: the custodian holds another entry %" JSON_INTEGER_FORMAT
                      " than this ledger (its hash differs); acknowledgement ignored", seq);
            c->stats.acks_refused++;
            return;
        }
    }
    prev = c->acked;
    if (seq != c->acked) {
        r = store_consortium_set_acked(c->sc, seq, now_utc());
        if (r < 0) {
            log_error("consortium: cannot record the acknowledgement: %s", strerror(-r));
            return;
        }
        if (seq < c->acked)
            log_notice("consortium: the custodian now acknowledges entry %" JSON_INTEGER_FORMAT
                       " only (was %" PRId64 "): sending again from there", seq, c->acked);
        c->acked = seq;
    }
    c->last_progress_usec = now_mono_usec();
    c->stats.acked_seq = c->acked;
    /* An acknowledgement that does not advance while entries are out: the custodian has
     * just (re)connected, or received an old batch again. What was sent after it did not
     * reach it: go on from the acknowledgement now rather than after resend_seconds. */
    if (c->sent_up_to > c->acked && seq == prev)
        c->sent_up_to = c->acked;
    if (c->sent_up_to < c->acked)
        c->sent_up_to = c->acked;
    consortium_kick(c);
}

static void on_resend(struct consortium *c, const void *payload, int len, bool retain)
{
    json_error_t err;
    json_t *o;
    json_int_t v = 0, from = 0, to = 0;
    int64_t head = 0;

    if (retain) {
        log_warning("consortium: ignoring a retained resend request on %s", c->resend_topic);
        return;
    }
    o = len > 0 && len <= CONTROL_PAYLOAD_MAX
            ? json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES, &err) : NULL;
    head_seq(c, &head);
    if (!o || json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:I, s:I}", "v", &v, "from", &from,
                             "to", &to) < 0 ||
        v != 1 || from < 1 || to < from || from > head) {
        log_warning("consortium: ignoring a malformed resend request on %s", c->resend_topic);
        json_decref(o);
        return;
    }
    json_decref(o);
    log_info("consortium: the custodian asks again for entries %" JSON_INTEGER_FORMAT "-%"
             JSON_INTEGER_FORMAT, from, to);
    if (c->sent_up_to > from - 1)
        c->sent_up_to = from - 1;
    c->last_progress_usec = now_mono_usec();
    c->stats.resends_answered++;
    consortium_kick(c);
}

/* ---- period seals ---- */

static int publish_seal(const struct store_period *p, void *userdata)
{
    struct consortium *c = userdata;
    struct period_seal s = { .last_seq = p->last_seq, .closed_at = p->closed_at };
    char text[PERIOD_SEAL_TEXT_MAX + 1], suffix[64], *payload;
    uint8_t sig[PERIOD_SEAL_SIG_LEN];
    size_t len;
    int n, r;

    if (!p->has_archive_sha256) {
        log_warning("consortium: period %s was closed before its archive's hash was kept; "
                    "no seal sent for it", p->period);
        return 0;
    }
    snprintf(s.site, sizeof(s.site), "%s", meter_site(c->meter));
    snprintf(s.period, sizeof(s.period), "%s", p->period);
    snprintf(s.first_day, sizeof(s.first_day), "%s", p->first_day);
    snprintf(s.last_day, sizeof(s.last_day), "%s", p->last_day);
    memcpy(s.last_hash, p->last_hash, sizeof(s.last_hash));
    memcpy(s.archive_sha256, p->archive_sha256, sizeof(s.archive_sha256));
    n = period_seal_encode(&s, text, sizeof(text));
    if (n < 0) {
        log_error("consortium: cannot encode the seal of period %s: %s", p->period, strerror(-n));
        return 0;
    }
    /* Ed25519 is deterministic: the seal published again is the same bytes. */
    meter_sign(c->meter, text, (size_t)n, sig);
    payload = period_seal_to_json(text, sig, &len);
    if (!payload)
        return -ENOMEM;
    snprintf(suffix, sizeof(suffix), "ledger/period/%s", p->period);
    r = mqtt_publish_raw(c->mqtt, suffix, payload, len, true, NULL);
    free(payload);
    if (r < 0)
        log_warning("consortium: cannot publish the seal of period %s: %s", p->period,
                    strerror(-r));
    else
        log_debug("consortium: published the seal of period %s (ledger up to %" PRId64 ")",
                  p->period, p->last_seq);
    return 0;
}

void consortium_publish_seals(struct consortium *c)
{
    int r;

    if (!c || !c->connected)
        return;         /* the next connection publishes them all */
    r = store_periods_foreach(c->store, publish_seal, c);
    if (r < 0)
        log_error("consortium: cannot read the closed periods to publish their seals: %s",
                  strerror(-r));
}

/* ---- MQTT attachment ---- */

static void on_connected(void *userdata)
{
    struct consortium *c = userdata;

    c->connected = true;
    c->inflight = false;
    c->sent_up_to = c->acked;       /* resume after the last acknowledged entry */
    c->last_progress_usec = now_mono_usec();
    mqtt_subscribe_suffix(c->mqtt, "ledger/ack");
    mqtt_subscribe_suffix(c->mqtt, "ledger/resend");
    if (c->passports)
        passports_connected(c->passports);
    consortium_publish_seals(c);
    consortium_kick(c);
}

static void on_disconnected(void *userdata)
{
    struct consortium *c = userdata;
    c->connected = false;
    c->inflight = false;
}

static bool on_message(const char *topic, const void *payload, int len, bool retain,
                       void *userdata)
{
    struct consortium *c = userdata;

    if (strcmp(topic, c->ack_topic) == 0)
        on_ack(c, payload, len);
    else if (strcmp(topic, c->resend_topic) == 0)
        on_resend(c, payload, len, retain);
    else if (!c->passports || !passports_message(c->passports, topic, payload, len))
        return false;
    return true;
}

static void on_published(int mid, void *userdata)
{
    struct consortium *c = userdata;

    if (c->inflight && mid == c->inflight_mid) {
        c->inflight = false;
        consortium_kick(c);
    }
}

static const struct mqtt_attachment_ops attachment_ops = {
    .connected = on_connected,
    .disconnected = on_disconnected,
    .message = on_message,
    .published = on_published,
};

static void tick_due(void *userdata)
{
    struct consortium *c = userdata;
    uint64_t quiet = (uint64_t)c->cfg->consortium.resend_seconds * 1000000u;
    int r;

    /* Go back to the acknowledgement when the custodian has been silent too long: lost
     * batches, a custodian that was away, an acknowledgement that never came. */
    if (c->connected && c->sent_up_to > c->acked && now_mono_usec() - c->last_progress_usec > quiet) {
        log_info("consortium: no acknowledgement beyond entry %" PRId64 " for %" PRId64
                 " s: sending again from there", c->acked, c->cfg->consortium.resend_seconds);
        c->sent_up_to = c->acked;
        c->inflight = false;
        c->last_progress_usec = now_mono_usec();
        consortium_kick(c);
    }
    r = timer_arm_in(c->tick, 1000000u);
    if (r < 0)
        log_error("consortium: cannot arm the resend timer: %s", strerror(-r));
}

int consortium_new(sd_event *loop, struct store *store, struct meter *meter, struct mqtt *mqtt,
                   const struct config *cfg, struct consortium **ret)
{
    struct consortium *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->store = store;
    c->meter = meter;
    c->mqtt = mqtt;
    c->cfg = cfg;
    c->batch = calloc(1, sizeof(*c->batch));
    if (!c->batch) {
        r = -ENOMEM;
        goto fail;
    }
    mqtt_topic(mqtt, "ledger/ack", c->ack_topic, sizeof(c->ack_topic));
    mqtt_topic(mqtt, "ledger/resend", c->resend_topic, sizeof(c->resend_topic));
    r = store_consortium_open(store, &c->sc);
    if (r < 0)
        goto fail;
    r = store_consortium_acked(c->sc, &c->acked);
    if (r < 0)
        goto fail;
    c->sent_up_to = c->acked;
    c->stats.acked_seq = c->acked;
    if (cfg->consortium.card_key_file[0]) {
        r = passports_new(loop, store, c->sc, meter, mqtt, cfg, &c->passports);
        if (r < 0)
            goto fail;
    }
    r = sd_event_add_defer(loop, &c->pump, pump_due, c);
    if (r < 0)
        goto fail;
    sd_event_source_set_priority(c->pump, SD_EVENT_PRIORITY_IDLE);
    sd_event_source_set_enabled(c->pump, SD_EVENT_OFF);
    if ((r = timer_new(loop, CLOCK_MONOTONIC, 100000, tick_due, c, &c->tick)) < 0 ||
        (r = timer_arm_in(c->tick, 1000000u)) < 0)
        goto fail;
    if ((r = mqtt_attach(mqtt, &attachment_ops, c)) < 0)
        goto fail;
    *ret = c;
    return 0;
fail:
    consortium_free(c);
    return r;
}

void consortium_reconfigure(struct consortium *c, const struct config *cfg)
{
    if (!c)
        return;
    c->cfg = cfg;
    passports_reconfigure(c->passports, cfg);
}

struct consortium *consortium_free(struct consortium *c)
{
    if (!c)
        return NULL;
    if (c->mqtt)
        mqtt_attach(c->mqtt, NULL, c);
    sd_event_source_disable_unref(c->pump);
    timer_free(c->tick);
    passports_free(c->passports);
    store_consortium_free(c->sc);
    free(c->batch);
    free(c);
    return NULL;
}

void consortium_get_stats(struct consortium *c, struct consortium_stats *ret)
{
    *ret = c->stats;
    ret->acked_seq = c->acked;
    ret->sent_up_to = c->sent_up_to;
    head_seq(c, &ret->head_seq);
}

struct passports *consortium_passports(struct consortium *c)
{
    return c ? c->passports : NULL;
}

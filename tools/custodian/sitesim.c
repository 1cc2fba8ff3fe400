/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portier-sitesim: many simulated sites sending signed ledgers to a custodian, for
 * tools/bench. Each site speaks the real protocol (ledger_batch.h, the windowed sending
 * of controller/consortium/consortium.c, acknowledgements, resend requests) through a real broker.
 *
 *   portier-sitesim keys --sites N                   "site-NNN HEXKEY" per line
 *   portier-sitesim run --broker HOST:PORT --sites N --entries E [--window W] [--batch B]
 *                       [--month YYYY-MM]
 *
 * run exits when the custodian has acknowledged every entry of every site and prints
 * {"sites":N,"entries":TOTAL,"seconds":S,"entries_per_second":R}. Site i's key comes from
 * the seed bytes (i+1)*32; its entries are synthetic day charges, or, with --month, a
 * month of a busy site (days, presences, machine sessions, visits from the other sites,
 * spread over the month's days, UTC) and, once all are acknowledged, the site's signed seal
 * of that month (retained), as for tools/bench --only opendata. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <mosquitto.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger_batch.h"
#include "ledger_batch_json.h"
#include "period_seal.h"
#include "period_seal_json.h"
#include "util.h"

#define SITES_MAX 1000
#define RESEND_USEC 30000000u

struct site {
    char name[32];
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
    uint8_t (*hashes)[LEDGER_HASH_LEN];     /* of entries 1..generated */
    int64_t generated, sent_up_to, acked;
    uint64_t last_progress;
};

static struct site sites[SITES_MAX];
static int n_sites;
static int64_t n_entries, window = 1024, batch_size = 256;
static int done_sites;
static const char *month;               /* --month: its period, else NULL */
static int64_t month_start, month_seconds;
static int seals_published;
static int seal_mids[SITES_MAX];

static uint64_t mix(uint64_t x)          /* splitmix64: the same entry at every resend */
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Entry seq of a busy site over the month: 8 in 20 day charges, 6 presences, 4 machine
 * sessions on 5 machines, 2 visits of members of other sites; 400 members. */
static void month_entry(struct site *s, int64_t seq, struct ledger_entry *e)
{
    static const char *const machines[] = { "laser", "printer-1", "printer-2", "cnc", "sewing" };
    int i = (int)(s - sites);
    uint64_t h = mix((uint64_t)i << 40 | (uint64_t)seq);
    int64_t t = month_start + 6 * 3600 + (seq - 1) * (month_seconds - 8 * 3600) / n_entries;
    unsigned k = (unsigned)(h % 20);

    e->member_id = 1 + (int64_t)((h >> 8) % 400);
    e->started_at = e->ended_at = t;
    snprintf(e->resource, sizeof(e->resource), "front");
    if (k < 8) {
        snprintf(e->kind, sizeof(e->kind), "day");
        e->quantity = 1;
        snprintf(e->unit, sizeof(e->unit), "day");
        e->amount_cents = 1500;
        snprintf(e->allowance, sizeof(e->allowance), "rate");
    } else if (k < 14 || (k >= 18 && n_sites < 2)) {
        snprintf(e->kind, sizeof(e->kind), "presence");
        e->ended_at = t + 1800 + (int64_t)((h >> 20) % (8 * 3600));
        e->quantity = (e->ended_at - t + 59) / 60;
        snprintf(e->unit, sizeof(e->unit), "minute");
        snprintf(e->allowance, sizeof(e->allowance), "none");
    } else if (k < 18) {
        snprintf(e->kind, sizeof(e->kind), "machine");
        snprintf(e->resource, sizeof(e->resource), "%s", machines[(h >> 16) % 5]);
        e->ended_at = t + 600 + (int64_t)((h >> 24) % (3 * 3600));
        e->quantity = (e->ended_at - t + 59) / 60;
        snprintf(e->unit, sizeof(e->unit), "minute");
        e->amount_cents = 900;
        snprintf(e->allowance, sizeof(e->allowance), "rate");
    } else {
        int home = (i + 1 + (int)((h >> 12) % (uint64_t)(n_sites - 1))) % n_sites;
        uint64_t v[2] = { mix((uint64_t)home << 32 | (uint64_t)e->member_id), 0 };
        v[1] = mix(v[0]);
        snprintf(e->kind, sizeof(e->kind), "visit");
        e->member_id = 0;
        e->quantity = 1;
        snprintf(e->unit, sizeof(e->unit), "day");
        e->amount_cents = 1200;
        snprintf(e->allowance, sizeof(e->allowance), "visit");
        strlcpy_checked(e->home, sites[home].name, sizeof(e->home));
        snprintf(e->visitor, sizeof(e->visitor), "%016" PRIx64 "%016" PRIx64, v[0], v[1]);
    }
}

static void site_init(struct site *s, int i)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, (i + 1) & 0xff, sizeof(seed));
    seed[1] = (uint8_t)((i + 1) >> 8);
    crypto_sign_seed_keypair(s->pk, s->sk, seed);
    snprintf(s->name, sizeof(s->name), "site-%03d", i);
}

static void entry(struct site *s, int64_t seq, struct ledger_entry *e)
{
    memset(e, 0, sizeof(*e));
    strlcpy_checked(e->site, s->name, sizeof(e->site));
    e->seq = seq;
    if (seq > 1)
        memcpy(e->prev_hash, s->hashes[seq - 2], LEDGER_HASH_LEN);
    e->usage_id = seq;
    if (month) {
        month_entry(s, seq, e);
    } else {
        snprintf(e->kind, sizeof(e->kind), "day");
        e->member_id = 1 + seq % 500;
        snprintf(e->resource, sizeof(e->resource), "front");
        e->started_at = e->ended_at = 1790000000 + seq * 2;     /* within a month */
        e->quantity = 1;
        snprintf(e->unit, sizeof(e->unit), "day");
        e->amount_cents = 1500;
        snprintf(e->allowance, sizeof(e->allowance), "rate");
    }
    e->recorded_at = e->ended_at;
    ledger_hash(e);
    if (ledger_is_checkpoint(seq))
        ledger_sign(e, s->sk);
    if (seq > s->generated) {
        memcpy(s->hashes[seq - 1], e->hash, LEDGER_HASH_LEN);
        s->generated = seq;
    }
}

static int send_batch(struct mosquitto *mosq, struct site *s, struct ledger_batch *b)
{
    char topic[96];
    uint8_t msg[160];
    size_t len;
    char *text;
    int64_t first = s->sent_up_to + 1, last = first + batch_size - 1;

    if (last > n_entries)
        last = n_entries;
    memset(b, 0, sizeof(*b));
    strlcpy_checked(b->site, s->name, sizeof(b->site));
    b->first = first;
    b->last = last;
    b->n = (unsigned)(last - first + 1);
    for (int64_t seq = first; seq <= last; seq++)
        entry(s, seq, &b->entries[seq - first]);
    len = ledger_batch_message(s->name, first, last, b->entries[b->n - 1].hash, msg, sizeof(msg));
    crypto_sign_detached(b->sig, NULL, msg, len, s->sk);
    text = ledger_batch_to_json(b, &len);
    if (!text)
        return -ENOMEM;
    snprintf(topic, sizeof(topic), "portier/%.31s/ledger/batch", s->name);
    int r = mosquitto_publish(mosq, NULL, topic, (int)len, text, 1, false);
    free(text);
    if (r != MOSQ_ERR_SUCCESS)
        return -EIO;
    s->sent_up_to = last;
    return 0;
}

static struct site *site_of(const char *topic, const char *suffix)
{
    const char *p = strchr(topic, '/'), *q;
    if (!p)
        return NULL;
    q = strchr(p + 1, '/');
    if (!q || strcmp(q, suffix) != 0)
        return NULL;
    for (int i = 0; i < n_sites; i++)
        if ((size_t)(q - p - 1) == strlen(sites[i].name) &&
            strncmp(p + 1, sites[i].name, (size_t)(q - p - 1)) == 0)
            return &sites[i];
    return NULL;
}

static void on_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *m)
{
    struct site *s;
    json_t *o = m->payloadlen > 0 ? json_loadb(m->payload, (size_t)m->payloadlen, 0, NULL) : NULL;

    if (!o)
        return;
    if ((s = site_of(m->topic, "/ledger/ack"))) {
        int64_t seq = json_integer_value(json_object_get(o, "seq"));
        if (seq > s->acked) {
            if (s->acked < n_entries && seq >= n_entries)
                done_sites++;
            s->acked = seq;
            s->last_progress = now_mono_usec();
        }
        if (s->sent_up_to < s->acked)
            s->sent_up_to = s->acked;
    } else if ((s = site_of(m->topic, "/ledger/resend"))) {
        int64_t from = json_integer_value(json_object_get(o, "from"));
        if (from >= 1 && s->sent_up_to > from - 1)
            s->sent_up_to = from - 1;
    }
    json_decref(o);
}

static void on_publish(struct mosquitto *mosq, void *ud, int mid)
{
    (void)mosq;
    (void)ud;
    for (int i = 0; i < n_sites; i++)
        if (seal_mids[i] == mid) {
            seal_mids[i] = -1;
            seals_published++;
        }
}

/* Every site's seal of the month: its last entry, retained, as `period close` does. */
static int publish_seals(struct mosquitto *mosq)
{
    for (int i = 0; i < n_sites; i++) {
        struct period_seal ps = { .last_seq = n_entries, .closed_at = now_utc() };
        char text[PERIOD_SEAL_TEXT_MAX + 1], topic[96], *payload;
        uint8_t sig[LEDGER_SIG_LEN];
        size_t len;
        int n;

        strlcpy_checked(ps.site, sites[i].name, sizeof(ps.site));
        snprintf(ps.period, sizeof(ps.period), "%s", month);
        period_days(month, ps.first_day, ps.last_day);
        memcpy(ps.last_hash, sites[i].hashes[n_entries - 1], LEDGER_HASH_LEN);
        memset(ps.archive_sha256, 0x5a, sizeof(ps.archive_sha256));
        n = period_seal_encode(&ps, text, sizeof(text));
        if (n < 0)
            return n;
        crypto_sign_detached(sig, NULL, (const uint8_t *)text, (size_t)n, sites[i].sk);
        payload = period_seal_to_json(text, sig, &len);
        if (!payload)
            return -ENOMEM;
        snprintf(topic, sizeof(topic), "portier/%.31s/ledger/period/%s", sites[i].name, month);
        if (mosquitto_publish(mosq, &seal_mids[i], topic, (int)len, payload, 1, true) !=
            MOSQ_ERR_SUCCESS) {
            free(payload);
            return -EIO;
        }
        free(payload);
    }
    /* Until the broker has them all (QoS 1 acknowledgements). */
    for (int tries = 0; seals_published < n_sites && tries < 6000; tries++)
        if (mosquitto_loop(mosq, 10, 1) != MOSQ_ERR_SUCCESS)
            return -EIO;
    return seals_published >= n_sites ? 0 : -ETIMEDOUT;
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    mosquitto_subscribe(mosq, NULL, "portier/+/ledger/ack", 1);
    mosquitto_subscribe(mosq, NULL, "portier/+/ledger/resend", 1);
    *(bool *)ud = rc == 0;
}

static int run(const char *host, int port)
{
    struct ledger_batch *b = malloc(sizeof(*b));
    struct mosquitto *mosq;
    bool connected = false;
    uint64_t t0 = 0, t1;

    for (int i = 0; i < n_sites; i++) {
        site_init(&sites[i], i);
        sites[i].hashes = calloc((size_t)n_entries, LEDGER_HASH_LEN);
        if (!sites[i].hashes)
            return 1;
    }
    mosquitto_lib_init();
    mosq = mosquitto_new("portier-sitesim", true, &connected);
    mosquitto_max_inflight_messages_set(mosq, 100);
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_message_callback_set(mosq, on_message);
    if (mosquitto_connect(mosq, host, port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "portier-sitesim: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    while (!connected)
        mosquitto_loop(mosq, 100, 1);
    /* Let the retained acknowledgements arrive first: the sites resume from them. */
    for (int i = 0; i < 20; i++)
        mosquitto_loop(mosq, 10, 1);
    t0 = now_mono_usec();
    for (int i = 0; i < n_sites; i++)
        sites[i].last_progress = t0;
    while (done_sites < n_sites) {
        for (int i = 0; i < n_sites; i++) {
            struct site *s = &sites[i];
            if (s->sent_up_to > s->acked && now_mono_usec() - s->last_progress > RESEND_USEC) {
                s->sent_up_to = s->acked;       /* as a site does after resend_seconds */
                s->last_progress = now_mono_usec();
            }
            /* One batch per site per round: round robin, as 50 sites would interleave. */
            if (s->sent_up_to < n_entries && s->sent_up_to - s->acked < window &&
                send_batch(mosq, s, b) < 0)
                return 1;
        }
        if (mosquitto_loop(mosq, 5, 1) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "portier-sitesim: connection lost\n");
            return 1;
        }
    }
    t1 = now_mono_usec();
    if (month) {
        seals_published = 0;
        mosquitto_publish_callback_set(mosq, on_publish);
        if (publish_seals(mosq) < 0) {
            fprintf(stderr, "portier-sitesim: cannot publish the seals\n");
            return 1;
        }
    }
    printf("{\"sites\":%d,\"entries\":%" PRId64 ",\"seconds\":%.3f,\"entries_per_second\":%.0f}\n",
           n_sites, n_entries * n_sites, (double)(t1 - t0) / 1e6,
           (double)(n_entries * n_sites) / ((double)(t1 - t0) / 1e6));
    mosquitto_disconnect(mosq);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    const char *broker = NULL;
    char first[11], last[11];
    int64_t v;

    if (sodium_init() < 0)
        return 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sites") == 0 && parse_int64(argv[i + 1], 1, SITES_MAX, &v) == 0)
            n_sites = (int)v;
        else if (strcmp(argv[i], "--entries") == 0 &&
                 parse_int64(argv[i + 1], 1, 100000000, &v) == 0)
            n_entries = v;
        else if (strcmp(argv[i], "--window") == 0 && parse_int64(argv[i + 1], 1, 1 << 20, &v) == 0)
            window = v;
        else if (strcmp(argv[i], "--batch") == 0 &&
                 parse_int64(argv[i + 1], 1, LEDGER_BATCH_MAX, &v) == 0)
            batch_size = v;
        else if (strcmp(argv[i], "--broker") == 0)
            broker = argv[i + 1];
        else if (strcmp(argv[i], "--month") == 0 && strlen(argv[i + 1]) == 7 &&
                 period_days(argv[i + 1], first, last) == 0) {
            struct tm tm = { .tm_year = atoi(argv[i + 1]) - 1900,
                             .tm_mon = atoi(argv[i + 1] + 5) - 1, .tm_mday = 1 };
            month = argv[i + 1];
            month_start = (int64_t)timegm(&tm);
            month_seconds = atoi(last + 8) * 86400;
        }
        else
            goto usage;
    }
    if (argc >= 2 && strcmp(argv[1], "keys") == 0 && n_sites > 0) {
        char hex[LEDGER_PK_LEN * 2 + 1];
        for (int i = 0; i < n_sites; i++) {
            site_init(&sites[i], i);
            sodium_bin2hex(hex, sizeof(hex), sites[i].pk, LEDGER_PK_LEN);
            printf("%s %s\n", sites[i].name, hex);
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "run") == 0 && n_sites > 0 && n_entries > 0 && broker) {
        const char *colon = strrchr(broker, ':');
        char host[128];
        if (!colon || parse_int64(colon + 1, 1, 65535, &v) < 0)
            goto usage;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - broker), broker);
        return run(host, (int)v);
    }
usage:
    fprintf(stderr, "usage: portier-sitesim keys --sites N\n"
                    "       portier-sitesim run --broker HOST:PORT --sites N --entries E "
                    "[--window W] [--batch B] [--month YYYY-MM]\n");
    return 2;
}

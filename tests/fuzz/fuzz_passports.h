/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_passports: a host site's passports module (controller/consortium/passports.c) for
 * fuzz_passport and fuzz_visit_notice.
 *
 * The site is "nantes", on an in-memory store, with the consortium's card key and a sites
 * file in a temporary directory that list "lyon", "paris" and "nantes" with keys whose
 * secret halves the harness holds, so it can sign what the fuzzer writes as any of them —
 * or as "rogue", a site the file does not list. Messages go to passports_message(), the
 * entry point the consortium's MQTT attachment calls with every message on PREFIX/+/passport/#
 * and PREFIX/+/visits/#.
 *
 * A message in a harness's input: one flags byte (its low three bits: '0' to '7' in the
 * seeds), the topic after "portier/" up to a newline, then the text. Flags (low two bits): 0 signed by the site the topic names (lyon
 * when the topic names no site the harness knows), 1 signed by another listed site, 2 by
 * "rogue", 3 the rest is the payload as it is, no envelope added (for the envelope's own
 * parser); flag 4: an empty payload (a retained message cleared). Messages of one input are
 * separated by NUL bytes (no signed text may hold one). */
#pragma once
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "meter.h"
#include "passport.h"
#include "passport_json.h"
#include "passports.h"
#include "store.h"
#include "store_consortium.h"
#include "util.h"

#define FUZZ_HOME "nantes"                      /* the site under test */
#define FUZZ_MESSAGES_MAX 4

enum fuzz_signer { SIGNER_TOPIC = 0, SIGNER_OTHER = 1, SIGNER_ROGUE = 2, SIGNER_RAW = 3 };
#define FUZZ_EMPTY_PAYLOAD 4

struct fuzz_key {
    const char *name;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
};

static struct fuzz_site {
    struct config cfg;
    struct store *store;
    struct store_consortium *sc;
    struct meter *meter;
    sd_event *loop;
    struct passports *p;
    uint8_t card_key[PASSPORT_KEY_LEN];
    struct fuzz_key keys[4];                    /* lyon, paris, nantes (listed), rogue */
    char dir[64];
} fz;

/* A message of the input, taken apart. */
struct fuzz_message {
    unsigned flags;
    char topic[256];                            /* "portier/..." */
    const char *text;
    size_t text_len;
};

static inline void fuzz_site_teardown(void)
{
    char path[128];

    fz.p = passports_free(fz.p);
    fz.meter = meter_free(fz.meter);
    fz.sc = store_consortium_free(fz.sc);
    fz.store = store_free(fz.store);
    fz.loop = sd_event_unref(fz.loop);
    snprintf(path, sizeof(path), "%s/card.key", fz.dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sites", fz.dir);
    unlink(path);
    rmdir(fz.dir);
}

static inline void fuzz_site_setup(void)
{
    static const char *const names[] = { "lyon", "paris", FUZZ_HOME, "rogue" };
    char path[128], hex[2 * PASSPORT_PK_LEN + 1];
    FILE *f;
    int r;

    if (fz.p)
        return;
    if (sodium_init() < 0)
        abort();
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    for (unsigned i = 0; i < 4; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES] = { 0 };
        snprintf((char *)seed, sizeof(seed), "fuzz key of %s", names[i]);
        fz.keys[i].name = names[i];
        crypto_sign_seed_keypair(fz.keys[i].pk, fz.keys[i].sk, seed);
    }
    for (unsigned i = 0; i < PASSPORT_KEY_LEN; i++)
        fz.card_key[i] = (uint8_t)i;
    snprintf(fz.dir, sizeof(fz.dir), "/tmp/portier-fuzz-passports-XXXXXX");
    if (!mkdtemp(fz.dir))
        abort();
    atexit(fuzz_site_teardown);
    snprintf(path, sizeof(path), "%s/card.key", fz.dir);
    if (!(f = fopen(path, "w")))
        abort();
    sodium_bin2hex(hex, sizeof(hex), fz.card_key, sizeof(fz.card_key));
    fprintf(f, "%s\n", hex);
    fclose(f);
    snprintf(fz.cfg.consortium.card_key_file, sizeof(fz.cfg.consortium.card_key_file), "%s", path);
    snprintf(path, sizeof(path), "%s/sites", fz.dir);
    if (!(f = fopen(path, "w")))
        abort();
    fprintf(f, "# the consortium\n");
    for (unsigned i = 0; i < 3; i++) {
        sodium_bin2hex(hex, sizeof(hex), fz.keys[i].pk, PASSPORT_PK_LEN);
        fprintf(f, "%s %s\n", fz.keys[i].name, hex);
    }
    fclose(f);
    snprintf(fz.cfg.consortium.sites_file, sizeof(fz.cfg.consortium.sites_file), "%s", path);
    snprintf(fz.cfg.site.id, sizeof(fz.cfg.site.id), "%s", FUZZ_HOME);
    snprintf(fz.cfg.mqtt.prefix, sizeof(fz.cfg.mqtt.prefix), "portier");
    fz.cfg.consortium.passports_max = 1000;
    fz.cfg.consortium.passport_scan_seconds = 60;
    fz.cfg.consortium.visit_price_cents = 1200;
    if ((r = sd_event_new(&fz.loop)) < 0 || (r = store_open(":memory:", &fz.store)) < 0 ||
        (r = store_consortium_open(fz.store, &fz.sc)) < 0 ||
        (r = meter_new(fz.store, FUZZ_HOME, 240, &fz.meter)) < 0 ||
        (r = store_commit(fz.store)) < 0 ||
        /* No MQTT: nothing is published while the loop does not run. */
        (r = passports_new(fz.loop, fz.store, fz.sc, fz.meter, NULL, &fz.cfg, &fz.p)) < 0) {
        fprintf(stderr, "fuzz passports: cannot set the site up: %s\n", strerror(-r));
        abort();
    }
}

static inline const struct fuzz_key *fuzz_key_of(const char *name)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(fz.keys[i].name, name) == 0)
            return &fz.keys[i];
    return NULL;
}

/* The next message of data[0..size) (advanced past it and its NUL). false: none left. */
static inline bool fuzz_next_message(const uint8_t **data, size_t *size, struct fuzz_message *m)
{
    const uint8_t *p = *data, *end = p + *size, *nul, *nl;
    size_t tlen;

    if (p >= end)
        return false;
    nul = memchr(p, '\0', (size_t)(end - p));
    if (!nul)
        nul = end;
    *data = nul < end ? nul + 1 : end;
    *size = (size_t)(end - *data);
    memset(m, 0, sizeof(*m));
    memcpy(m->topic, "portier/", 9);
    m->text = (const char *)nul;
    if (p == nul)
        return true;                            /* an empty message: an empty topic */
    m->flags = p[0] & 7;                        /* '0'..'7' in the seeds */
    p++;
    nl = memchr(p, '\n', (size_t)(nul - p));
    if (!nl)
        nl = nul;
    tlen = (size_t)(nl - p);
    if (tlen > sizeof(m->topic) - 9)
        tlen = sizeof(m->topic) - 9;
    memcpy(m->topic + 8, p, tlen);
    m->topic[8 + tlen] = '\0';
    m->text = (const char *)(nl < nul ? nl + 1 : nul);
    m->text_len = (size_t)(nul - (const uint8_t *)m->text);
    return true;
}

/* The site a topic "portier/SITE/..." names ("" if none). */
static inline void fuzz_topic_site(const char *topic, char site[32])
{
    const char *s = topic + 8, *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : 0;

    site[0] = '\0';
    if (n > 0 && n < 32) {
        memcpy(site, s, n);
        site[n] = '\0';
    }
}

/* Deliver m as the broker would: signed and wrapped as its flags say. Returns what
 * passports_message() returned (1 or 0), or -1 if the text cannot travel in the JSON
 * envelope (not UTF-8: no site can send it); *ret_signer is the key that signed (NULL:
 * unsigned). */
static inline int fuzz_deliver(const struct fuzz_message *m, const struct fuzz_key **ret_signer)
{
    char site[32];
    const struct fuzz_key *k = NULL;
    uint8_t sig[PASSPORT_SIG_LEN];
    char *payload = NULL;
    size_t plen = 0;
    int r;

    fuzz_topic_site(m->topic, site);
    switch (m->flags & 3) {
    case SIGNER_TOPIC:
        k = fuzz_key_of(site);
        if (!k || strcmp(k->name, "rogue") == 0)
            k = fuzz_key_of("lyon");
        break;
    case SIGNER_OTHER:
        k = fuzz_key_of(strcmp(site, "paris") == 0 ? "lyon" : "paris");
        break;
    case SIGNER_ROGUE:
        k = fuzz_key_of("rogue");
        break;
    }
    *ret_signer = (m->flags & FUZZ_EMPTY_PAYLOAD) ? NULL : k;
    if (m->flags & FUZZ_EMPTY_PAYLOAD)
        return passports_message(fz.p, m->topic, "", 0);
    if (!k)
        return passports_message(fz.p, m->topic, m->text, (int)m->text_len);
    crypto_sign_detached(sig, NULL, (const uint8_t *)m->text, m->text_len, k->sk);
    payload = passport_wrap(m->text, m->text_len, sig, &plen);
    if (!payload)
        return -1;
    r = passports_message(fz.p, m->topic, payload, (int)plen);
    free(payload);
    return r;
}

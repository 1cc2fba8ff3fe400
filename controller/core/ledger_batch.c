#include "ledger_batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- one entry ---- */

/* The next line must be "key=VALUE\n": copy VALUE (at most n-1 bytes) into buf. */
static bool take_field(const char **p, const char *end, const char *key, char *buf, size_t n)
{
    size_t klen = strlen(key);
    const char *nl;

    if ((size_t)(end - *p) <= klen || memcmp(*p, key, klen) != 0 || (*p)[klen] != '=')
        return false;
    *p += klen + 1;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) >= n)
        return false;
    memcpy(buf, *p, (size_t)(nl - *p));
    buf[nl - *p] = '\0';
    *p = nl + 1;
    return true;
}

static bool take_int(const char **p, const char *end, const char *key, int64_t *ret)
{
    char buf[24];
    return take_field(p, end, key, buf, sizeof(buf)) &&
           parse_int64(buf, INT64_MIN, INT64_MAX, ret) == 0;
}

int ledger_decode(const char *text, size_t len, struct ledger_entry *ret)
{
    static const char header[] = "portier-ledger-v1\n";
    struct ledger_entry e = { 0 };
    char prev[LEDGER_HASH_LEN * 2 + 1], again[LEDGER_ENCODING_MAX];
    const char *p = text, *end = text + len;
    size_t bin_len = 0;
    int n;

    if (len >= LEDGER_ENCODING_MAX || len < sizeof(header) - 1 ||
        memcmp(p, header, sizeof(header) - 1) != 0)
        return -EBADMSG;
    p += sizeof(header) - 1;
    if (!take_field(&p, end, "site", e.site, sizeof(e.site)) ||
        !take_int(&p, end, "seq", &e.seq) ||
        !take_field(&p, end, "prev", prev, sizeof(prev)) ||
        !take_int(&p, end, "usage", &e.usage_id) ||
        !take_field(&p, end, "kind", e.kind, sizeof(e.kind)) ||
        !take_int(&p, end, "member", &e.member_id) ||
        !take_field(&p, end, "resource", e.resource, sizeof(e.resource)) ||
        !take_int(&p, end, "start", &e.started_at) ||
        !take_int(&p, end, "end", &e.ended_at) ||
        !take_int(&p, end, "quantity", &e.quantity) ||
        !take_field(&p, end, "unit", e.unit, sizeof(e.unit)) ||
        !take_int(&p, end, "amount_cents", &e.amount_cents) ||
        !take_field(&p, end, "allowance", e.allowance, sizeof(e.allowance)) ||
        !take_int(&p, end, "corrects", &e.corrects_seq) ||
        !take_int(&p, end, "recorded", &e.recorded_at))
        return -EBADMSG;
    if (ledger_is_visit(&e) && (!take_field(&p, end, "home", e.home, sizeof(e.home)) ||
                                !take_field(&p, end, "visitor", e.visitor, sizeof(e.visitor)) ||
                                !name_is_valid(e.home)))
        return -EBADMSG;
    if (p != end && (size_t)(end - p) > 10 && memcmp(p, "energy_wh=", 10) == 0) {
        if (!take_int(&p, end, "energy_wh", &e.energy_wh) || e.energy_wh < 0)
            return -EBADMSG;
        e.has_energy = true;
    }
    if (p != end)
        return -EBADMSG;
    if (strlen(prev) != LEDGER_HASH_LEN * 2 ||
        sodium_hex2bin(e.prev_hash, LEDGER_HASH_LEN, prev, strlen(prev), NULL, &bin_len,
                       NULL) != 0 || bin_len != LEDGER_HASH_LEN)
        return -EBADMSG;
    if (e.seq < 1 || !name_is_valid(e.site))
        return -EBADMSG;
    /* Canonical only: the bytes must be exactly what ledger_encode() writes (no "+1", no
     * leading zeros, lower-case hex), so one entry has one encoding and one hash. */
    n = ledger_encode(&e, again, sizeof(again));
    if (n < 0 || (size_t)n != len || memcmp(again, text, len) != 0)
        return -EBADMSG;
    crypto_generichash(e.hash, LEDGER_HASH_LEN, (const uint8_t *)text, len, NULL, 0);
    *ret = e;
    return 0;
}

/* ---- the batch signature ---- */

size_t ledger_batch_message(const char *site, int64_t first, int64_t last,
                            const uint8_t last_hash[LEDGER_HASH_LEN], uint8_t *buf, size_t n)
{
    int len = snprintf((char *)buf, n,
                       "portier-ledger-v1 batch\nsite=%s\nfirst=%" PRId64 "\nlast=%" PRId64 "\n",
                       site, first, last);
    if (len < 0 || (size_t)len + LEDGER_HASH_LEN > n)
        return 0;
    memcpy(buf + len, last_hash, LEDGER_HASH_LEN);
    return (size_t)len + LEDGER_HASH_LEN;
}

bool ledger_batch_signature_ok(const struct ledger_batch *b, const uint8_t pk[LEDGER_PK_LEN])
{
    uint8_t msg[160];
    size_t len;

    if (b->n == 0)
        return false;
    len = ledger_batch_message(b->site, b->first, b->last, b->entries[b->n - 1].hash, msg,
                               sizeof(msg));
    return len > 0 && crypto_sign_verify_detached(b->sig, msg, len, pk) == 0;
}

bool ledger_batch_check(const struct ledger_batch *b, const uint8_t pk[LEDGER_PK_LEN],
                        struct ledger_verifier *v)
{
    ledger_verifier_init(v, b->site, pk);
    if (b->n == 0) {
        v->bad_seq = b->first;
        snprintf(v->problem, sizeof(v->problem), "empty batch");
        return false;
    }
    v->expected_seq = b->first;
    memcpy(v->prev_hash, b->entries[0].prev_hash, LEDGER_HASH_LEN);
    for (unsigned i = 0; i < b->n; i++)
        if (!ledger_verifier_feed(v, &b->entries[i]))
            return false;
    v->signatures_checked++;
    if (!ledger_batch_signature_ok(b, pk)) {
        v->bad_seq = b->last;
        snprintf(v->problem, sizeof(v->problem),
                 "batch signature invalid (an entry was altered or forged, or signed by "
                 "another key)");
        return false;
    }
    return true;
}

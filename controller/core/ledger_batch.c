/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "ledger_batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvtext.h"
#include "util.h"

/* ---- one entry ---- */

int ledger_decode(const char *text, size_t len, struct ledger_entry *ret)
{
    struct ledger_entry e = { 0 };
    char again[LEDGER_ENCODING_MAX];
    struct kv_reader r;

    kv_begin(&r, text, len, LEDGER_ENCODING_MAX - 1, "portier-ledger-v1");
    kv_text(&r, "site", e.site, sizeof(e.site));
    kv_int(&r, "seq", 1, INT64_MAX, &e.seq);
    kv_hex(&r, "prev", e.prev_hash, LEDGER_HASH_LEN);
    kv_int(&r, "usage", INT64_MIN, INT64_MAX, &e.usage_id);
    kv_text(&r, "kind", e.kind, sizeof(e.kind));
    kv_int(&r, "member", INT64_MIN, INT64_MAX, &e.member_id);
    kv_text(&r, "resource", e.resource, sizeof(e.resource));
    kv_int(&r, "start", INT64_MIN, INT64_MAX, &e.started_at);
    kv_int(&r, "end", INT64_MIN, INT64_MAX, &e.ended_at);
    kv_int(&r, "quantity", INT64_MIN, INT64_MAX, &e.quantity);
    kv_text(&r, "unit", e.unit, sizeof(e.unit));
    kv_int(&r, "amount_cents", INT64_MIN, INT64_MAX, &e.amount_cents);
    kv_text(&r, "allowance", e.allowance, sizeof(e.allowance));
    kv_int(&r, "corrects", INT64_MIN, INT64_MAX, &e.corrects_seq);
    kv_int(&r, "recorded", INT64_MIN, INT64_MAX, &e.recorded_at);
    if (ledger_is_visit(&e)) {
        kv_text(&r, "home", e.home, sizeof(e.home));
        kv_text(&r, "visitor", e.visitor, sizeof(e.visitor));
        if (!name_is_valid(e.home))
            return -EBADMSG;
    }
    /* Energy, the optional last line of a metered machine session (ledger.h). */
    if (kv_more(&r)) {
        kv_int(&r, "energy_wh", 0, INT64_MAX, &e.energy_wh);
        e.has_energy = true;
    }
    if (!kv_end(&r) || !name_is_valid(e.site))
        return -EBADMSG;
    /* Canonical only: the bytes must be exactly what ledger_encode() writes, so one entry
     * has one encoding and one hash. */
    if (!kv_same(text, len, again, ledger_encode(&e, again, sizeof(again))))
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

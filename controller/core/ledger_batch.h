/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ledger_batch: ledger entries on the wire, from a site to the consortium's custodian.
 *
 * A batch is a run of consecutive entries first..last of one site, each as its canonical
 * encoding (ledger.h), the checkpoint signatures among them, and a batch signature by the
 * site over (site, first, last, hash of the last entry) in a domain of its own ("batch"),
 * so that neither a checkpoint's nor the head's signature can stand in for it. Through the
 * chain, the batch signature vouches for every entry of the batch; a receiver that holds
 * entry first-1 also knows the batch continues its chain.
 *
 * JSON, at most LEDGER_BATCH_PAYLOAD_MAX bytes:
 *
 *   {"v":1,"site":"lyon","first":257,"last":512,
 *    "entries":["portier-ledger-v1\nsite=lyon\nseq=257\n...", ...],
 *    "checkpoints":[[512,"<128 hex>"]],
 *    "sig":"<128 hex>"}
 *
 * Pure functions: no I/O, no clock. The parser is strict (duplicate keys, unknown keys,
 * non-canonical entries, counts and sizes beyond the limits are refused) because its input
 * comes from the network. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

#define LEDGER_BATCH_MAX 256                    /* entries per batch */
#define LEDGER_BATCH_PAYLOAD_MAX (256 * 1024)   /* bytes of JSON */
#define LEDGER_BATCH_VERSION 1

struct ledger_batch {
    char site[32];
    int64_t first, last;
    unsigned n;                                 /* last - first + 1 */
    struct ledger_entry entries[LEDGER_BATCH_MAX];  /* hash filled; checkpoints signed */
    uint8_t sig[LEDGER_SIG_LEN];
};

/* Parse a canonical encoding back into *ret (hash computed from the bytes). Anything that
 * ledger_encode() would not have written byte for byte is refused: -EBADMSG. */
int ledger_decode(const char *text, size_t len, struct ledger_entry *ret);

/* The message the batch signature covers. Returns its length (0 if n is too small). */
size_t ledger_batch_message(const char *site, int64_t first, int64_t last,
                            const uint8_t last_hash[LEDGER_HASH_LEN], uint8_t *buf, size_t n);
bool ledger_batch_signature_ok(const struct ledger_batch *b, const uint8_t pk[LEDGER_PK_LEN]);

/* Check the batch on its own with the site's key: every hash, every link inside the batch
 * (the first entry's prev_hash is taken as given), checkpoint signatures and the batch
 * signature. On failure v->bad_seq and v->problem say where and what. */
bool ledger_batch_check(const struct ledger_batch *b, const uint8_t pk[LEDGER_PK_LEN],
                        struct ledger_verifier *v);

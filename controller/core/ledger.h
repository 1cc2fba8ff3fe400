/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ledger: the site's tamper-evident record of closed usage, for the consortium custodian.
 *
 * Each entry is one closed usage record in a canonical text encoding that holds no personal
 * data (members appear as their numeric id). Entries are numbered without gaps per site and
 * chained: hash(n) = BLAKE2b-256(encoding(n)), and encoding(n) contains hash(n-1). The site
 * signs with Ed25519 every LEDGER_CHECKPOINT-th entry and always the newest one (the head),
 * so a verifier recomputes every hash (cheap) but checks only N/LEDGER_CHECKPOINT + 1
 * signatures: a signature over hash(n) vouches for every entry up to n through the chain.
 * Pure functions here; the store keeps the rows. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_HASH_LEN 32
#define LEDGER_SIG_LEN 64
#define LEDGER_PK_LEN 32
#define LEDGER_SK_LEN 64
#define LEDGER_CHECKPOINT 256
#define LEDGER_ENCODING_MAX 640
#define LEDGER_VISITOR_MAX 33               /* a pseudonym: 32 hex digits and the NUL */

struct ledger_entry {
    char site[32];
    int64_t seq;                        /* 1, 2, 3, ... */
    uint8_t prev_hash[LEDGER_HASH_LEN]; /* zeros for seq 1 */
    int64_t usage_id;
    char kind[16];                      /* "presence", "day", "machine", "correction", "visit" */
    int64_t member_id;
    char resource[32];
    int64_t started_at, ended_at;       /* UTC */
    int64_t quantity;                   /* in unit */
    char unit[8];                       /* "day", "minute" */
    int64_t amount_cents;
    char allowance[16];                 /* "pass", "plan", "rate", "free", "none" */
    int64_t corrects_seq;               /* corrections: the entry they correct; else 0 */
    int64_t recorded_at;
    /* Visits only (kind "visit": a member of another site let in here under its passport):
     * the visitor's home site and pseudonym (passport.h). member_id is 0. Other kinds leave
     * both empty and their encoding does not mention them. */
    char home[32];
    char visitor[LEDGER_VISITOR_MAX];
    /* Energy (machine sessions measured by a meter): integer Wh. Entries without it (every
     * entry before energy was metered, and unmetered ones) do not mention it in their
     * encoding, which stays byte for byte what it was. */
    bool has_energy;
    int64_t energy_wh;
    uint8_t hash[LEDGER_HASH_LEN];
    bool has_signature;
    uint8_t signature[LEDGER_SIG_LEN];
};

/* The canonical encoding (text, one "key=value" per line). Returns its length, or -E2BIG.
 * A visit's encoding has two more lines after "recorded=": "home=" and "visitor=". An entry
 * with energy has one more last line, "energy_wh=". Every other entry's encoding (and so
 * its hash) is exactly what it was before visits and energy existed. */
int ledger_encode(const struct ledger_entry *e, char *buf, size_t n);
bool ledger_is_visit(const struct ledger_entry *e);
/* Fill e->hash from the encoding. */
void ledger_hash(struct ledger_entry *e);
/* The signed message binds the site, the sequence number and the hash. */
void ledger_sign(struct ledger_entry *e, const uint8_t sk[LEDGER_SK_LEN]);
/* The head's signature: same inputs, another domain, so a checkpoint's signature can never
 * pass for the head's (which would let entries after it be cut off unnoticed). */
void ledger_sign_head(const struct ledger_entry *e, const uint8_t sk[LEDGER_SK_LEN],
                      uint8_t sig[LEDGER_SIG_LEN]);
bool ledger_signature_ok(const struct ledger_entry *e, const uint8_t pk[LEDGER_PK_LEN]);
/* Whether entry seq carries a signature (checkpoints; the head is signed separately). */
bool ledger_is_checkpoint(int64_t seq);

/* Streaming verification: feed entries in seq order. The first problem is kept. */
struct ledger_verifier {
    uint8_t pk[LEDGER_PK_LEN];
    char site[32];
    int64_t expected_seq;
    uint8_t prev_hash[LEDGER_HASH_LEN];
    int64_t entries;
    int64_t signatures_checked;
    int64_t bad_seq;                    /* first broken entry, 0 if none */
    char problem[160];
};
void ledger_verifier_init(struct ledger_verifier *v, const char *site,
                          const uint8_t pk[LEDGER_PK_LEN]);
/* Returns false once a problem has been found (and stays false). */
bool ledger_verifier_feed(struct ledger_verifier *v, const struct ledger_entry *e);
/* Check the head signature (seq, hash of the newest entry). */
bool ledger_verifier_finish(struct ledger_verifier *v, int64_t head_seq,
                            const uint8_t head_hash[LEDGER_HASH_LEN],
                            const uint8_t head_sig[LEDGER_SIG_LEN]);

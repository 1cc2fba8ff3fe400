/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* period_seal: a site's signed statement that a period is closed, for the custodian.
 * Pure: no I/O, no clock.
 *
 * When `portierctl period close` seals a period, the site publishes (retained, QoS 1, on
 * PREFIX/SITE/ledger/period/YYYY-MM) this canonical text, signed (Ed25519) with its ledger
 * key over the text's bytes:
 *
 *   portier-period-v1
 *   site=lyon
 *   period=2026-10
 *   first_day=2026-10-01
 *   last_day=2026-10-31
 *   last_seq=1482                (the ledger head at closing: the last entry it seals)
 *   last_hash=<64 hex>           (that entry's hash)
 *   archive_sha256=<64 hex>      (SHA-256 of the archive file the site wrote)
 *   closed_at=1793713802
 *
 * as {"v":1,"text":TEXT,"sig":"<128 hex>"}. The header is the signing domain: the text can
 * pass neither for a ledger entry, batch or head nor for a passport. The parser is strict:
 * anything period_seal_encode() would not have written byte for byte is refused. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERIOD_SEAL_HASH_LEN 32
#define PERIOD_SEAL_SIG_LEN 64
#define PERIOD_SEAL_PK_LEN 32
#define PERIOD_SEAL_TEXT_MAX 512
#define PERIOD_SEAL_PAYLOAD_MAX 1024        /* MQTT payload, JSON */

struct period_seal {
    char site[32];
    char period[8];                         /* YYYY-MM */
    char first_day[11], last_day[11];       /* YYYY-MM-DD */
    int64_t last_seq;                       /* >= 0 (0: an empty ledger) */
    uint8_t last_hash[PERIOD_SEAL_HASH_LEN];
    uint8_t archive_sha256[PERIOD_SEAL_HASH_LEN];
    int64_t closed_at;
};

/* The canonical text into buf (NUL-terminated). Returns its length, or -E2BIG / -EINVAL
 * (a field period_seal_parse() would refuse). */
int period_seal_encode(const struct period_seal *s, char *buf, size_t n);
/* Parse a canonical text of len bytes (not necessarily NUL-terminated). -EBADMSG if it is
 * not exactly what period_seal_encode() writes; ret is untouched on failure. */
int period_seal_parse(const char *text, size_t len, struct period_seal *ret);

/* The signature over the text's bytes with the site's key. */
bool period_seal_signature_ok(const char *text, size_t len, const uint8_t sig[PERIOD_SEAL_SIG_LEN],
                              const uint8_t pk[PERIOD_SEAL_PK_LEN]);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* passport: a member's visiting rights at the consortium's other sites, and the notices of
 * visits that let the home site count them. Pure: no I/O, no clock.
 *
 * A passport is a canonical text signed (Ed25519) by the member's home site:
 *
 *   portier-passport-v1
 *   home=lyon
 *   id=<32 hex: the member's pseudonym, a keyed hash of the member id>
 *   status=active                (or "revoked")
 *   issued=1793713802
 *   expires=1794318602           (UTC, exclusive)
 *   visit_days=3                 (per calendar month, at any other site)
 *   month=2026-10                (the month "used" counts)
 *   used=nantes:1,paris:2        (visit days the home heard of this month; may be empty)
 *   cards=<64 hex>,<64 hex>      (card hashes under the consortium's card key; may be empty)
 *   desfire=0,1                  (only when some card is a provisioned DESFire: their
 *                                 places in cards; such a card must prove the consortium's
 *                                 DESFire key wherever UIDs alone are not enough)
 *
 * A visit notice is signed by the host site:
 *
 *   portier-visits-v1
 *   host=paris
 *   home=lyon
 *   id=<32 hex>
 *   month=2026-10
 *   days=2                       (visit days recorded at the host this month, in all)
 *
 * On MQTT either text travels as {"v":1,"text":TEXT,"sig":"<128 hex>"}; the signature is
 * over TEXT's bytes. Both texts start with a header of their own, so neither can pass for
 * the other or for anything the ledger signs ("portier-ledger-v1 ..."). Parsers are strict:
 * anything passport_encode() / passport_notice_encode() would not have written byte for
 * byte is refused. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSPORT_ID_LEN 16                  /* bytes of a pseudonym */
#define PASSPORT_ID_HEX (2 * PASSPORT_ID_LEN + 1)
#define PASSPORT_CARD_LEN 32
#define PASSPORT_CARDS_MAX 8
#define PASSPORT_HOSTS_MAX 16
#define PASSPORT_TEXT_MAX 2048
#define PASSPORT_PAYLOAD_MAX 4096           /* MQTT payload, JSON */
#define PASSPORT_PK_LEN 32
#define PASSPORT_SK_LEN 64
#define PASSPORT_SIG_LEN 64
#define PASSPORT_KEY_LEN 32                 /* the consortium's card key */

struct passport_use {
    char host[32];
    int64_t days;
};

struct passport {
    char home[32];
    char id[PASSPORT_ID_HEX];
    bool revoked;
    int64_t issued, expires;
    int64_t visit_days;
    char month[8];
    unsigned n_used;
    struct passport_use used[PASSPORT_HOSTS_MAX];   /* sorted by host, each once */
    unsigned n_cards;
    uint8_t cards[PASSPORT_CARDS_MAX][PASSPORT_CARD_LEN];
    bool card_desfire[PASSPORT_CARDS_MAX];  /* cards[i] is a provisioned DESFire */
};

struct passport_notice {
    char host[32];
    char home[32];
    char id[PASSPORT_ID_HEX];
    char month[8];
    int64_t days;
};

/* Canonical texts: their length, or -E2BIG / -EINVAL (a field out of its form). */
int passport_encode(const struct passport *p, char *buf, size_t n);
int passport_notice_encode(const struct passport_notice *v, char *buf, size_t n);
/* Strict parsers: 0 or -EBADMSG. */
int passport_decode(const char *text, size_t len, struct passport *ret);
int passport_notice_decode(const char *text, size_t len, struct passport_notice *ret);

bool passport_signature_ok(const char *text, size_t len, const uint8_t sig[PASSPORT_SIG_LEN],
                           const uint8_t pk[PASSPORT_PK_LEN]);

/* The visit days p says were used at sites other than host in month (0 if p's counts are
 * of another month). */
int64_t passport_used_elsewhere(const struct passport *p, const char *host, const char *month);

/* The consortium-wide card hash: BLAKE2b-256 of the UID keyed with the consortium's key. */
void passport_card_hash(const uint8_t key[PASSPORT_KEY_LEN], const uint8_t *uid, size_t len,
                        uint8_t out[PASSPORT_CARD_LEN]);
/* A member's pseudonym: BLAKE2b-128 of "portier-member\n" and the decimal id, keyed with
 * the home site's own secret: stable, and no other site can tell which member it is. */
void passport_pseudonym(const uint8_t key[PASSPORT_KEY_LEN], int64_t member_id,
                        char out[PASSPORT_ID_HEX]);

/* The registry of the consortium's sites: lines "NAME HEXKEY" (64 hex digits, the site's
 * `portierctl site key`), separated by spaces or tabs; '#' starts a comment (of any length);
 * blank lines and CRLF line ends are fine. */
struct passport_site {
    char name[32];
    uint8_t pk[PASSPORT_PK_LEN];
};
/* Parse text[0..len) (the whole file; it need not end in NUL) into out. Returns the count
 * of sites, or an error with the 1-based number of the first bad line in *ret_line:
 * -EINVAL (not "NAME HEXKEY", or a NUL byte), -EEXIST (a name listed again: one of its
 * keys would be dead), -E2BIG (more than max sites). */
int passport_sites_parse(const char *text, size_t len, struct passport_site *out, size_t max,
                         unsigned *ret_line);

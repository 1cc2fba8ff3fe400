/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cardid: card UIDs in and out of text, and their keyed hash.
 *
 * A UID is hashed with BLAKE2b-256 keyed by the site's card key (created at first start,
 * kept in the database). Only the hash is stored; nothing in Portier logs a UID. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CARDID_KEY_LEN 32
#define CARDID_UID_MAX 10           /* ISO 14443A: 4, 7 or 10 bytes */
#define CARDID_HASH_LEN 32

/* Parse hex ("04A1B2C3", "04:a1:b2:c3"): 4, 7 or 10 bytes. 0 or -EINVAL. */
int cardid_parse(const char *text, uint8_t uid[CARDID_UID_MAX], size_t *ret_len);

void cardid_hash(const uint8_t key[CARDID_KEY_LEN], const uint8_t *uid, size_t len,
                 uint8_t out[CARDID_HASH_LEN]);

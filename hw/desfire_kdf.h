/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* desfire_kdf: the keys Portier puts on a MIFARE DESFire card, diversified per card.
 *
 * desfire_kdf_an10922() is NXP AN10922 section 2.2 (AES-128 key diversification with
 * AES-CMAC), on nettle's AES and CMAC. The others say which input Portier feeds it; they
 * are the contract between a site's cards and its readers, so they never change (a new
 * scheme would be a new key version on the card).
 *
 * Only the reader worker (portier-reader) derives keys: the daemon hands it the master key
 * at start and never sees a card key. Nothing here allocates or logs; callers wipe what
 * they derive when they are done with it.
 *
 * The card layout (docs/security.md, "Card layout"):
 *   site application        AID 0xF52701, AES, 3 keys
 *     key 0 (application master key)  AN10922(site master, UID || AID || "Portier" || 00)
 *     key 1 (tap key)                 AN10922(site master, UID || AID || "Portier" || 01)
 *     key 2 (UID key, random-UID cards) AN10922(site master, "PortierUID" || AID)
 *   consortium application  AID 0xF52702, AES, 3 keys
 *     key 0                           AN10922(site master, UID || AID || "Portier" || 00)
 *                                     (the home site's: only it changes or removes the app)
 *     key 1                           AN10922(consortium key, UID || AID || "Portier" || 01)
 *     key 2                           AN10922(consortium key, "PortierUID" || AID)
 * UID is the card's 7-byte UID as GetCardUID returns it; AID is sent least significant
 * byte first, as the card stores it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define DESFIRE_KEY_LEN 16
#define DESFIRE_UID_LEN 7                   /* NXP DESFire: a 7-byte UID */
#define DESFIRE_KDF_INPUT_MAX 31            /* AN10922: 1 to 31 bytes of input */

#define DESFIRE_AID_SITE 0xF52701u
#define DESFIRE_AID_CONSORTIUM 0xF52702u
#define DESFIRE_KEY_AMK 0                   /* application master key */
#define DESFIRE_KEY_TAP 1
#define DESFIRE_KEY_UID 2
#define DESFIRE_APP_KEYS 3

/* out = AN10922 AES-128 diversification of master with input (len 1..31). 0 or -EINVAL. */
int desfire_kdf_an10922(const uint8_t master[DESFIRE_KEY_LEN], const uint8_t *input, size_t len,
                        uint8_t out[DESFIRE_KEY_LEN]);

/* Key key_no (DESFIRE_KEY_AMK or DESFIRE_KEY_TAP) of application aid on the card uid. */
void desfire_kdf_card_key(const uint8_t master[DESFIRE_KEY_LEN], const uint8_t uid[DESFIRE_UID_LEN],
                          uint32_t aid, uint8_t key_no, uint8_t out[DESFIRE_KEY_LEN]);

/* Key DESFIRE_KEY_UID of application aid: the same on every card, it only lets a reader
 * read a random-UID card's real UID (which the per-card keys need). */
void desfire_kdf_uid_key(const uint8_t master[DESFIRE_KEY_LEN], uint32_t aid,
                         uint8_t out[DESFIRE_KEY_LEN]);

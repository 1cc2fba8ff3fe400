/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "cardid.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int cardid_parse(const char *text, uint8_t uid[CARDID_UID_MAX], size_t *ret_len)
{
    uint8_t buf[CARDID_UID_MAX];
    size_t n = 0;

    /* Colons between bytes, not before the first; libsodium refuses a byte cut in two. */
    if (text[0] == ':' ||
        sodium_hex2bin(buf, sizeof(buf), text, strlen(text), ":", &n, NULL) != 0 ||
        (n != 4 && n != 7 && n != 10))
        return -EINVAL;
    memcpy(uid, buf, n);
    *ret_len = n;
    return 0;
}

void cardid_hash(const uint8_t key[CARDID_KEY_LEN], const uint8_t *uid, size_t len,
                 uint8_t out[CARDID_HASH_LEN])
{
    crypto_generichash(out, CARDID_HASH_LEN, uid, len, key, CARDID_KEY_LEN);
}

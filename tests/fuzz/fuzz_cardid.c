/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_cardid: cardid_parse() on arbitrary text.
 *
 * Card UIDs in text come from the control socket (card.add, card.remove, sim.tap) and
 * from portierctl's command line. A parse either fails with -EINVAL and leaves *ret_len
 * alone, or yields 4, 7 or 10 bytes that are exactly the hex digits of the text, that
 * print and parse back to themselves, and whose keyed hash is stable. */
#include <ctype.h>
#include <errno.h>
#include <sodium.h>

#include "cardid.h"
#include "control.h"
#include "fuzz.h"

#define FUZZ_CARDID_MAX CONTROL_REQUEST_MAX

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[CARDID_KEY_LEN] = { 0x42 };
    uint8_t uid[CARDID_UID_MAX], again[CARDID_UID_MAX];
    uint8_t hash1[CARDID_HASH_LEN], hash2[CARDID_HASH_LEN];
    size_t len = SIZE_MAX, len2 = SIZE_MAX, n_digits = 0;
    char *text, printed[3 * CARDID_UID_MAX + 1];
    int r;

    if (size > FUZZ_CARDID_MAX)
        return 0;
    if (sodium_init() < 0)      /* as store_open() does before any hash */
        abort();
    text = fuzz_cstring(data, size);
    r = cardid_parse(text, uid, &len);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(len == SIZE_MAX);        /* ret_len untouched */
        free(text);
        return 0;
    }
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(len == 4 || len == 7 || len == 10);

    /* The bytes are the text's hex digits, pairwise, separators ignored. */
    for (const char *p = text; *p; p++) {
        if (*p == ':')
            continue;
        FUZZ_CHECK(isxdigit((unsigned char)*p));
        FUZZ_CHECK(n_digits / 2 < len);
        if (n_digits % 2 == 0)
            FUZZ_CHECK(hexval(*p) == uid[n_digits / 2] >> 4);
        else
            FUZZ_CHECK(hexval(*p) == (uid[n_digits / 2] & 0xf));
        n_digits++;
    }
    FUZZ_CHECK(n_digits == 2 * len);

    /* Canonical forms parse back: "04A1B2C3" and "04:a1:b2:c3". */
    for (size_t i = 0; i < len; i++)
        snprintf(printed + 2 * i, 3, "%02X", uid[i]);
    FUZZ_CHECK(cardid_parse(printed, again, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(again, uid, len) == 0);
    size_t at = 0;
    for (size_t i = 0; i < len; i++)
        at += (size_t)snprintf(printed + at, sizeof(printed) - at, i ? ":%02x" : "%02x", uid[i]);
    FUZZ_CHECK(cardid_parse(printed, again, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(again, uid, len) == 0);

    cardid_hash(key, uid, len, hash1);
    cardid_hash(key, again, len2, hash2);
    FUZZ_CHECK(memcmp(hash1, hash2, sizeof(hash1)) == 0);
    free(text);
    return 0;
}

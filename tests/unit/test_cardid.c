/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cardid: UIDs from text (4, 7 or 10 bytes; colons optional; any case) and their keyed
 * hash. Enrolled cards are found by hash only, so the hash must not change between builds:
 * a known-answer test pins it to keyed BLAKE2b-256. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cardid.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static void test_parse_good(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        uint8_t uid[CARDID_UID_MAX];
    } good[] = {
        { "04A1B2C3", 4, { 0x04, 0xa1, 0xb2, 0xc3 } },
        { "04a1b2c3", 4, { 0x04, 0xa1, 0xb2, 0xc3 } },
        { "04:a1:b2:c3", 4, { 0x04, 0xa1, 0xb2, 0xc3 } },
        { "04:A1:B2:C3", 4, { 0x04, 0xa1, 0xb2, 0xc3 } },
        { "04:a1:B2:c3", 4, { 0x04, 0xa1, 0xb2, 0xc3 } },
        { "00000000", 4, { 0, 0, 0, 0 } },
        { "ffFFffFF", 4, { 0xff, 0xff, 0xff, 0xff } },
        { "04D2E3F4A5B680", 7, { 0x04, 0xd2, 0xe3, 0xf4, 0xa5, 0xb6, 0x80 } },
        { "04:d2:e3:f4:a5:b6:80", 7, { 0x04, 0xd2, 0xe3, 0xf4, 0xa5, 0xb6, 0x80 } },
        { "0123456789abcdef0123", 10,
          { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23 } },
        { "01:23:45:67:89:AB:CD:EF:01:23", 10,
          { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23 } },
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(good); i++) {
        uint8_t uid[CARDID_UID_MAX];
        size_t len = 0;
        int r;

        memset(uid, 0x5a, sizeof(uid));
        r = cardid_parse(good[i].text, uid, &len);
        if (r != 0)
            fail_msg("'%s' should parse, got %d", good[i].text, r);
        assert_int_equal(len, good[i].len);
        assert_memory_equal(uid, good[i].uid, good[i].len);
    }
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "04A1B2",                               /* 3 bytes */
        "04A1B2C3D4",                           /* 5 bytes */
        "04:a1:b2:c3:d4",
        "04A1B2C3D4E5",                         /* 6 */
        "04A1B2C3D4E5F607",                     /* 8 */
        "04A1B2C3D4E5F60718",                   /* 9 */
        "0123456789abcdef012345",               /* 11 bytes */
        "0123456789abcdef0123456789abcdef",     /* 16 */
        "04A1B2C",                              /* odd number of digits */
        "4A1B2C3D4",
        "04A1B2C3D4E5F6A",
        "0:4A1B2C3",                            /* a colon inside a byte */
        ":04A1B2C3",                            /* leading colon */
        "04A1B2G3",                             /* not hex */
        "04A1B2C3 ",
        " 04A1B2C3",
        "04-A1-B2-C3",
        "0x04A1B2C3",
        "04A1B2C\xc3\xa9",
        "zzzzzzzz",
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        uint8_t uid[CARDID_UID_MAX], before[CARDID_UID_MAX];
        size_t len = 777;
        int r;

        memset(uid, 0x5a, sizeof(uid));
        memcpy(before, uid, sizeof(uid));
        r = cardid_parse(bad[i], uid, &len);
        if (r != -EINVAL)
            fail_msg("'%s' should be refused with -EINVAL, got %d (len %zu)", bad[i], r, len);
        /* outputs untouched on error */
        assert_int_equal(len, 777);
        assert_memory_equal(uid, before, sizeof(uid));
    }
}

static void hash_text(const uint8_t key[CARDID_KEY_LEN], const char *text,
                      uint8_t out[CARDID_HASH_LEN])
{
    uint8_t uid[CARDID_UID_MAX];
    size_t len = 0;

    assert_int_equal(cardid_parse(text, uid, &len), 0);
    cardid_hash(key, uid, len, out);
}

static void test_hash_known_answer(void **state)
{
    /* hashlib.blake2b(bytes.fromhex(uid), key=bytes(range(32)), digest_size=32) */
    static const struct {
        const char *uid;
        const char *hex;
    } kat[] = {
        { "04a1b2c3", "4846307c5c608cb3a03fcfd44bb1ab81679e000bc44dbabbf1426d0f546f20ef" },
        { "04a1b2c3d4e5f6", "43b5dd7be6dfbadeb25a678865383ab3829633ffed1211a928cc94bc7639d65c" },
        { "04a1b2c3d4e5f6071829",
          "c7262b1b437fe9f8c20969b30c466f0423decc3305f1a3a3ce0e07ec59918ec8" },
    };
    uint8_t key[CARDID_KEY_LEN];

    (void)state;
    for (int i = 0; i < CARDID_KEY_LEN; i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < N_ELEMS(kat); i++) {
        uint8_t out[CARDID_HASH_LEN];
        char hex[2 * CARDID_HASH_LEN + 1];

        hash_text(key, kat[i].uid, out);
        for (int b = 0; b < CARDID_HASH_LEN; b++)
            snprintf(hex + 2 * b, 3, "%02x", out[b]);
        assert_string_equal(hex, kat[i].hex);
    }
}

static void test_hash_properties(void **state)
{
    uint8_t k1[CARDID_KEY_LEN], k2[CARDID_KEY_LEN];
    uint8_t a[CARDID_HASH_LEN], a_again[CARDID_HASH_LEN], a_colons[CARDID_HASH_LEN];
    uint8_t a_k2[CARDID_HASH_LEN], b[CARDID_HASH_LEN], a7[CARDID_HASH_LEN];
    uint8_t uid[4] = { 0x04, 0xa1, 0xb2, 0xc3 };
    uint8_t zero[CARDID_HASH_LEN] = { 0 };

    (void)state;
    memset(k1, 0x11, sizeof(k1));
    memcpy(k2, k1, sizeof(k2));
    k2[31] ^= 0x01;                             /* one bit apart */

    hash_text(k1, "04A1B2C3", a);
    hash_text(k1, "04A1B2C3", a_again);
    hash_text(k1, "04:a1:b2:c3", a_colons);
    hash_text(k2, "04A1B2C3", a_k2);
    hash_text(k1, "04A1B2C4", b);
    hash_text(k1, "04A1B2C3000000", a7);        /* same prefix, longer UID */

    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_equal(a, a_again, sizeof(a));     /* deterministic */
    assert_memory_equal(a, a_colons, sizeof(a));    /* spelling does not matter */
    assert_memory_not_equal(a, a_k2, sizeof(a));    /* keyed: another site, another hash */
    assert_memory_not_equal(a, b, sizeof(a));       /* another card */
    assert_memory_not_equal(a, a7, sizeof(a));      /* the length counts */

    /* the raw-bytes entry point agrees with the text path */
    memset(b, 0, sizeof(b));
    cardid_hash(k1, uid, sizeof(uid), b);
    assert_memory_equal(a, b, sizeof(a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_hash_known_answer),
        cmocka_unit_test(test_hash_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

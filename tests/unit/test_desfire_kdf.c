/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* desfire_kdf: AN10922 AES-128 key diversification against the application notes' own
 * examples, the unpadded case against an independent CMAC, and Portier's inputs pinned (a
 * change would lock every provisioned card out). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "desfire_kdf.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void check(const char *master_hex, const char *input_hex, const char *want_hex)
{
    uint8_t master[16], input[31], want[16], got[16];
    size_t len = strlen(input_hex) / 2;

    unhex(master_hex, master, 16);
    unhex(input_hex, input, len);
    unhex(want_hex, want, 16);
    assert_int_equal(desfire_kdf_an10922(master, input, len, got), 0);
    assert_memory_equal(got, want, 16);
}

/* AN10922 rev. 2.3, section 2.2.1 "AES-128 key diversification example": UID 04782E21801D80,
 * AID 3042F5, system identifier "NXP Abu". The input is 17 bytes, so the CMAC input is
 * padded: the K2 path. */
static void test_an10922_example(void **state)
{
    (void)state;
    check("00112233445566778899AABBCCDDEEFF", "04782E21801D803042F54E585020416275",
          "A8DD63A3B89D54B37CA802473FDA9175");
}

/* AN10957, pages 13-14: a 7-byte input (just a UID), one padded block. */
static void test_an10957_example(void **state)
{
    (void)state;
    check("F3F9377698707B688EAF84ABE39E3791", "04DEADBEEFFEED",
          "0BB408BAFF98B6EE9F2E1585777F6A51");
}

/* 31 bytes of input fill the two blocks: no padding, K1, which is plain AES-CMAC of
 * 0x01 || input. The expected value is OpenSSL 3's CMAC of that (`openssl mac -cipher
 * AES-128-CBC -macopt hexkey:... CMAC`), an implementation independent of nettle. */
static void test_unpadded_input_is_plain_cmac(void **state)
{
    (void)state;
    check("00112233445566778899AABBCCDDEEFF",
          "101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E",
          "992A74231D781A5CDEAA4D5E510D5092");
}

static void test_input_length_limits(void **state)
{
    uint8_t master[16] = { 0 }, in[32] = { 0 }, out[16];
    (void)state;
    assert_int_equal(desfire_kdf_an10922(master, in, 0, out), -EINVAL);
    assert_int_equal(desfire_kdf_an10922(master, in, 32, out), -EINVAL);
    assert_int_equal(desfire_kdf_an10922(master, in, 1, out), 0);
    assert_int_equal(desfire_kdf_an10922(master, in, 31, out), 0);
}

/* Portier's inputs: UID || AID (LSB first) || "Portier" || key number, and "PortierUID" ||
 * AID. The pinned key was computed by a separate AN10922 written in Python on the
 * `cryptography` package's AES; it must never change, or every card provisioned before
 * would be locked out. */
static void test_portier_keys_are_stable(void **state)
{
    uint8_t master[16], uid[7], got[16], manual[16], want[16];
    uint8_t in[18];
    (void)state;

    unhex("00112233445566778899AABBCCDDEEFF", master, 16);
    unhex("04A1B2C3D4E5F6", uid, 7);
    /* The card key is AN10922 over exactly the documented bytes. */
    memcpy(in, uid, 7);
    in[7] = 0x01, in[8] = 0x27, in[9] = 0xF5;
    memcpy(in + 10, "Portier", 7);
    in[17] = DESFIRE_KEY_TAP;
    assert_int_equal(desfire_kdf_an10922(master, in, sizeof(in), manual), 0);
    desfire_kdf_card_key(master, uid, DESFIRE_AID_SITE, DESFIRE_KEY_TAP, got);
    assert_memory_equal(got, manual, 16);
    unhex("DADDE0D5AC7D6220B54C42625BA3BAEF", want, 16);
    assert_memory_equal(got, want, 16);

    /* Other key number, other application: other keys. */
    desfire_kdf_card_key(master, uid, DESFIRE_AID_SITE, DESFIRE_KEY_AMK, manual);
    assert_memory_not_equal(got, manual, 16);
    desfire_kdf_card_key(master, uid, DESFIRE_AID_CONSORTIUM, DESFIRE_KEY_TAP, manual);
    assert_memory_not_equal(got, manual, 16);

    desfire_kdf_uid_key(master, DESFIRE_AID_SITE, got);
    memcpy(in, "PortierUID", 10);
    in[10] = 0x01, in[11] = 0x27, in[12] = 0xF5;
    assert_int_equal(desfire_kdf_an10922(master, in, 13, manual), 0);
    assert_memory_equal(got, manual, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an10922_example),
        cmocka_unit_test(test_an10957_example),
        cmocka_unit_test(test_unpadded_input_is_plain_cmac),
        cmocka_unit_test(test_input_length_limits),
        cmocka_unit_test(test_portier_keys_are_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

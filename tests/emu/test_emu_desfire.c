/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The emulator's DESFire card, checked against published examples: ISO/IEC 14443-3's
 * CRC_A examples (Annex B), the CRC32 check value ("123456789"), NIST SP 800-38B's AES-CMAC
 * examples, the DES known answer a factory card's first authentication step shows, and the
 * answers of a card to commands it must refuse. The protocol itself is checked by real
 * libfreefare (desfire_client) and, byte for byte, by an independent reader written in
 * Python (test_desfire_emu.py). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "desfire.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void test_crc_a_annex_b(void **state)
{
    (void)state;
    /* ISO/IEC 14443-3 Annex B: 00 00 -> CRC_A A0 1E, 12 34 -> 26 CF (sent LSB first). */
    assert_int_equal(df_crc16((const uint8_t *)"\x00\x00", 2), 0x1EA0);
    assert_int_equal(df_crc16((const uint8_t *)"\x12\x34", 2), 0xCF26);
}

static void test_crc32_check_value(void **state)
{
    (void)state;
    /* CRC-32 of "123456789" is CBF43926; DESFire leaves out the final XOR. */
    assert_int_equal(df_crc32((const uint8_t *)"123456789", 9), 0x340BC6D9u);
}

static void test_cmac_nist(void **state)
{
    static const struct {
        size_t n;
        const char *mac;
    } v[] = {
        { 0, "bb1d6929e95937287fa37d129b756746" },
        { 16, "070a16b46b4d4144f79bdd9dd04a287c" },
        { 40, "dfa66747de9ae63030ca32611497c827" },
        { 64, "51f0bebf7e3b9d92fc49741779363cfe" },
    };
    uint8_t key[16], msg[64], want[16], iv[16];
    (void)state;

    unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
    unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
          "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", msg, 64);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        memset(iv, 0, sizeof(iv));      /* a fresh session's IV: plain CMAC */
        df_cmac_aes(key, iv, msg, v[i].n);
        unhex(v[i].mac, want, 16);
        assert_memory_equal(iv, want, 16);
    }
}

/* A factory card (PICC key DES 00..00) asked to authenticate, with RndB = 00..00, answers
 * E(RndB) = DES_0(0) = 8CA64DE9C1B123A7, the value public DESFire traces show. */
static void test_legacy_first_step(void **state)
{
    static const uint8_t uid[7] = { 0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06 };
    static const uint8_t zero[8];
    struct df_card *c = df_new(uid);
    uint8_t out[DF_ANSWER_MAX], want[8], ins;
    bool changed;
    size_t n;
    (void)state;

    df_set_next_random(c, zero, 8);
    n = df_command(c, (const uint8_t *)"\x0A\x00", 2, out, &ins, &changed);
    unhex("8CA64DE9C1B123A7", want, 8);
    assert_int_equal(n, 9);
    assert_int_equal(out[0], DF_ADDITIONAL_FRAME);  /* native framing: status first */
    assert_memory_equal(out + 1, want, 8);
    assert_int_equal(ins, 0x0A);
    assert_false(changed);
    df_free(c);
}

static size_t wrapped(struct df_card *c, const char *hex, uint8_t *out)
{
    uint8_t in[64], ins;
    size_t n = strlen(hex) / 2;
    bool changed;

    unhex(hex, in, n);
    return df_command(c, in, n, out, &ins, &changed);
}

static void test_refusals(void **state)
{
    static const uint8_t uid[7] = { 0x04, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07 };
    struct df_card *c = df_new(uid);
    uint8_t out[DF_ANSWER_MAX];
    size_t n;
    (void)state;

    /* Unknown application, GetCardUID without authentication, AES on a DES key, key 1 of
     * the PICC, an unknown command, a wrong ISO length, and an ISO SELECT. */
    n = wrapped(c, "905A00000301020300", out);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x91\xA0", 2);
    n = wrapped(c, "9051000000", out);
    assert_memory_equal(out, "\x91\xAE", 2);
    n = wrapped(c, "90AA0000010000", out);
    assert_memory_equal(out, "\x91\xAE", 2);
    n = wrapped(c, "900A0000010100", out);
    assert_memory_equal(out, "\x91\x40", 2);
    n = wrapped(c, "9099000000", out);
    assert_memory_equal(out, "\x91\x1C", 2);
    n = wrapped(c, "905A0000030102", out);
    assert_memory_equal(out, "\x67\x00", 2);
    n = wrapped(c, "00A4040007D276000085010100", out);
    assert_memory_equal(out, "\x6A\x82", 2);
    assert_int_equal(n, 2);
    df_free(c);
}

/* An image written and read back is the same card. */
static void test_image_round_trip(void **state)
{
    static const uint8_t uid[7] = { 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
    static const uint8_t key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    struct df_card *c = df_new(uid), *back = NULL;
    char text[4096], again[4096], err[96];
    FILE *f;
    (void)state;

    assert_int_equal(df_forge_app(c, 0xF52701, key, 3), 0);
    df_set_random_uid(c, true);
    f = fmemopen(text, sizeof(text), "w");
    assert_int_equal(df_save(c, f), 0);
    fclose(f);
    f = fmemopen(text, strlen(text), "r");
    assert_int_equal(df_load(f, &back, err, sizeof(err)), 0);
    fclose(f);
    f = fmemopen(again, sizeof(again), "w");
    assert_int_equal(df_save(back, f), 0);
    fclose(f);
    assert_string_equal(text, again);
    assert_true(df_random_uid(back));
    assert_memory_equal(df_uid(back), uid, 7);
    df_free(back);
    back = NULL;

    /* A damaged image is refused, with its line. */
    memcpy(strstr(text, "app F52701"), "app ZZ", 6);
    f = fmemopen(text, strlen(text), "r");
    assert_int_not_equal(df_load(f, &back, err, sizeof(err)), 0);
    fclose(f);
    assert_non_null(strstr(err, "line 5"));
    df_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_a_annex_b),
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_cmac_nist),
        cmocka_unit_test(test_legacy_first_step),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_image_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

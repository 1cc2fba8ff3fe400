/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* kvtext: the one reader of the signed "key=value" texts (ledger entries, passports, visit
 * notices, period seals). What it refuses, it refuses for all four formats, so the checks
 * here are the strictest any of them made before they shared it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "kvtext.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Read "fmt-v1 / name=TEXT / n=INT / h=HEX(2 bytes)" from text[0..len). */
static bool read_sample(const char *text, size_t len, char name[8], int64_t *n, uint8_t h[2])
{
    struct kv_reader r;

    kv_begin(&r, text, len, 64, "fmt-v1");
    kv_text(&r, "name", name, 8);
    kv_int(&r, "n", -100, 100, n);
    kv_hex(&r, "h", h, 2);
    return kv_end(&r);
}

static bool accepts(const char *text)
{
    char name[8];
    int64_t n;
    uint8_t h[2];
    return read_sample(text, strlen(text), name, &n, h);
}

static void test_reads_a_valid_text(void **state)
{
    static const char text[] = "fmt-v1\nname=lyon\nn=-42\nh=0aff\n";
    char name[8] = "";
    int64_t n = 0;
    uint8_t h[2] = { 0 };

    (void)state;
    assert_true(read_sample(text, strlen(text), name, &n, h));
    assert_string_equal(name, "lyon");
    assert_int_equal(n, -42);
    assert_int_equal(h[0], 0x0a);
    assert_int_equal(h[1], 0xff);
    /* Empty values and the edges of the range are values like others. */
    assert_true(accepts("fmt-v1\nname=\nn=0\nh=0000\n"));
    assert_true(accepts("fmt-v1\nname=1234567\nn=100\nh=0000\n"));
    assert_true(accepts("fmt-v1\nname=a b\nn=-100\nh=0000\n"));
}

static void test_refuses_what_is_not_the_format(void **state)
{
    static const char *const bad[] = {
        /* header */
        "fmt-v2\nname=lyon\nn=1\nh=0000\n",
        "fmt-v1 \nname=lyon\nn=1\nh=0000\n",
        "\nfmt-v1\nname=lyon\nn=1\nh=0000\n",
        "fmt-v1",
        "",
        /* keys: missing, repeated, out of order, unknown, misspelt */
        "fmt-v1\nn=1\nh=0000\n",
        "fmt-v1\nname=lyon\nname=lyon\nn=1\nh=0000\n",
        "fmt-v1\nname=lyon\nn=1\nn=1\nh=0000\n",
        "fmt-v1\nn=1\nname=lyon\nh=0000\n",
        "fmt-v1\nname=lyon\nextra=1\nn=1\nh=0000\n",
        "fmt-v1\nnam=lyon\nn=1\nh=0000\n",
        "fmt-v1\nnamex=lyon\nn=1\nh=0000\n",
        "fmt-v1\nname lyon\nn=1\nh=0000\n",
        "fmt-v1\n name=lyon\nn=1\nh=0000\n",
        /* line ends and control bytes */
        "fmt-v1\nname=lyon\r\nn=1\nh=0000\n",
        "fmt-v1\r\nname=lyon\nn=1\nh=0000\n",
        "fmt-v1\nname=ly\ron\nn=1\nh=0000\n",
        "fmt-v1\nname=ly\ton\nn=1\nh=0000\n",
        "fmt-v1\nname=ly\x7fon\nn=1\nh=0000\n",
        "fmt-v1\nname=ly\x1bon\nn=1\nh=0000\n",
        "fmt-v1\nname=lyon\nn=1\nh=0000",
        /* over-long value: refused, not cut */
        "fmt-v1\nname=12345678\nn=1\nh=0000\n",
        /* numbers: only canonical decimal in range */
        "fmt-v1\nname=lyon\nn=+1\nh=0000\n",
        "fmt-v1\nname=lyon\nn=01\nh=0000\n",
        "fmt-v1\nname=lyon\nn=-0\nh=0000\n",
        "fmt-v1\nname=lyon\nn=-01\nh=0000\n",
        "fmt-v1\nname=lyon\nn= 1\nh=0000\n",
        "fmt-v1\nname=lyon\nn=1 \nh=0000\n",
        "fmt-v1\nname=lyon\nn=\nh=0000\n",
        "fmt-v1\nname=lyon\nn=-\nh=0000\n",
        "fmt-v1\nname=lyon\nn=1e2\nh=0000\n",
        "fmt-v1\nname=lyon\nn=0x10\nh=0000\n",
        "fmt-v1\nname=lyon\nn=101\nh=0000\n",
        "fmt-v1\nname=lyon\nn=-101\nh=0000\n",
        "fmt-v1\nname=lyon\nn=99999999999999999999999\nh=0000\n",
        /* hex: exactly 2 * n lower-case digits */
        "fmt-v1\nname=lyon\nn=1\nh=0AFF\n",
        "fmt-v1\nname=lyon\nn=1\nh=000\n",
        "fmt-v1\nname=lyon\nn=1\nh=000000\n",
        "fmt-v1\nname=lyon\nn=1\nh=00g0\n",
        "fmt-v1\nname=lyon\nn=1\nh=00:00\n",
        "fmt-v1\nname=lyon\nn=1\nh=\n",
        /* nothing after the last line */
        "fmt-v1\nname=lyon\nn=1\nh=0000\n\n",
        "fmt-v1\nname=lyon\nn=1\nh=0000\nx",
        "fmt-v1\nname=lyon\nn=1\nh=0000\nextra=1\n",
    };

    (void)state;
    assert_true(accepts("fmt-v1\nname=lyon\nn=1\nh=0000\n"));
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        if (accepts(bad[i]))
            fail_msg("accepted: \"%s\"", bad[i]);
    }
}

static void test_nul_bytes_and_the_length_limit(void **state)
{
    static const char good[] = "fmt-v1\nname=lyon\nn=1\nh=0000\n";
    char text[sizeof(good)], name[8];
    int64_t n;
    uint8_t h[2];
    size_t len = sizeof(good) - 1;

    (void)state;
    /* A NUL anywhere, in a value, a key or the header, is refused; so is a text cut short
     * or one byte longer than the format allows. */
    for (size_t i = 0; i < len; i++) {
        memcpy(text, good, sizeof(good));
        text[i] = '\0';
        assert_false(read_sample(text, len, name, &n, h));
    }
    for (size_t cut = 0; cut < len; cut++)
        assert_false(read_sample(good, cut, name, &n, h));
    struct kv_reader r;
    assert_true(kv_begin(&r, good, len, len, "fmt-v1"));
    assert_false(kv_begin(&r, good, len, len - 1, "fmt-v1"));
}

static void test_refusal_is_sticky_and_leaves_outputs_alone(void **state)
{
    static const char text[] = "fmt-v1\nname=lyon\nbad=1\nn=5\n";
    struct kv_reader r;
    char name[8] = "", other[16] = "untouched";
    int64_t n = 7;

    (void)state;
    assert_true(kv_begin(&r, text, strlen(text), 64, "fmt-v1"));
    assert_true(kv_text(&r, "name", name, sizeof(name)));
    assert_false(kv_int(&r, "n", 0, 10, &n));       /* "bad" stands where "n" should */
    assert_int_equal(n, 7);
    /* Even a line that would fit now: the reader stays refused. */
    assert_false(kv_text(&r, "bad", other, sizeof(other)));
    assert_string_equal(other, "untouched");
    assert_false(kv_end(&r));
}

static void test_same(void **state)
{
    (void)state;
    assert_true(kv_same("abc", 3, "abc", 3));
    assert_false(kv_same("abc", 3, "abd", 3));
    assert_false(kv_same("abc", 3, "abcd", 4));
    assert_false(kv_same("abc", 3, "ab", 2));
    assert_false(kv_same("", 0, "", -7));           /* the encoder failed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_a_valid_text),
        cmocka_unit_test(test_refuses_what_is_not_the_format),
        cmocka_unit_test(test_nul_bytes_and_the_length_limit),
        cmocka_unit_test(test_refusal_is_sticky_and_leaves_outputs_alone),
        cmocka_unit_test(test_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

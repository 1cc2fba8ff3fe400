/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* util: the small helpers every module shares (growing arrays, exact hex, amounts). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

struct item {
    int64_t id;
    char name[12];
};

static void test_array_reserve(void **state)
{
    struct item *v = NULL;
    size_t n = 0, cap = 0;

    (void)state;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(ARRAY_RESERVE(v, n, cap, 4), 0);
        assert_true(n < cap);
        v[n].id = i;
        memset(v[n].name, 'a' + i % 26, sizeof(v[n].name));
        n++;
    }
    assert_int_equal(cap, 1024);                /* 4, 8, ... doubled */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(v[i].id, i);
        assert_int_equal(v[i].name[11], 'a' + i % 26);
    }
    /* Room left: nothing moves. */
    struct item *before = v;
    assert_int_equal(ARRAY_RESERVE(v, n, cap, 4), 0);
    assert_ptr_equal(v, before);
    /* A size that cannot be allocated: refused, the array as it was. */
    size_t huge = SIZE_MAX / sizeof(*v) / 2 + 1;
    assert_int_equal(array_reserve(&v, huge, &huge, sizeof(*v), 4), -ENOMEM);
    assert_ptr_equal(v, before);
    free(v);
}

static void test_hex_decode(void **state)
{
    uint8_t out[4];

    (void)state;
    assert_true(hex_decode("0aFf10ab", 8, out, 4));
    assert_memory_equal(out, "\x0a\xff\x10\xab", 4);
    assert_false(hex_decode("0aff10a", 7, out, 4));         /* too short */
    assert_false(hex_decode("0aff10abcd", 10, out, 4));     /* too long */
    assert_false(hex_decode("0aff10ag", 8, out, 4));        /* not hex */
    assert_false(hex_decode("0a:f10ab", 8, out, 4));
    assert_false(hex_decode("0aff\00010", 8, out, 4));      /* a NUL inside */
}

static void test_format_cents(void **state)
{
    char b[32];

    (void)state;
    assert_string_equal(format_cents(1250, '.', b, sizeof(b)), "12.50");
    assert_string_equal(format_cents(-5, '.', b, sizeof(b)), "-0.05");
    assert_string_equal(format_cents(0, ',', b, sizeof(b)), "0,00");
    assert_string_equal(format_cents(-123456, ',', b, sizeof(b)), "-1234,56");
    assert_string_equal(format_cents(INT64_MIN, '.', b, sizeof(b)), "-92233720368547758.08");
}

/* Found by fuzz_mqtt_command: a client name with F4 BC BC BC (beyond U+10FFFF) came out
 * of utf8_sanitize() unchanged, and jansson refused it: the command's result event could
 * not be built. Overlong forms and surrogates passed too (a config name with them was taken
 * as valid UTF-8, then broke the status and SpaceAPI JSON). */
static void test_utf8_sanitize(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "plain ascii", "plain ascii" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91" },
        { "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
          "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf" },
        { "au\xf4\xbc\xbc\xbc", "au????" },            /* beyond U+10FFFF */
        { "\xf4\x90\x80\x80", "????" },
        { "\xf5\x80\x80\x80", "????" },
        { "\xed\xa0\x80", "???" },                     /* a surrogate */
        { "\xe0\x80\xaf", "???" },                     /* overlong '/' */
        { "\xf0\x80\x80\xaf", "????" },
        { "\xc0\xaf", "??" },
        { "cut \xc3", "cut ?" },
        { "cut \xe2\x82", "cut ??" },
        { "\x80\xbf", "??" },
        { "\xf8\x88\x80\x80\x80", "?????" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];
        json_t *j;
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        utf8_sanitize(buf);
        assert_string_equal(buf, cases[i].out);
        j = json_string(buf);
        assert_non_null(j);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_reserve),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_format_cents),
        cmocka_unit_test(test_utf8_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

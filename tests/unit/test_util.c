/* util: the small helpers every module shares (growing arrays, exact hex, amounts). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array_reserve),
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_format_cents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

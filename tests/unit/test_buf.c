/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* buf: the growing text buffer of web pages, CSV and the custodian's report and page. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_put_printf_take(void **state)
{
    struct buf b = { 0 };
    size_t len = 0;
    char *text;

    (void)state;
    assert_null(b.data);
    buf_put(&b, "a");
    buf_putn(&b, "bcd", 2);
    buf_printf(&b, "-%d-%s", 42, "x");
    assert_string_equal(b.data, "abc-42-x");
    assert_int_equal(b.len, 8);
    text = buf_take(&b, &len);
    assert_string_equal(text, "abc-42-x");
    assert_int_equal(len, 8);
    assert_null(b.data);                    /* taken: b is empty again */
    assert_int_equal(b.len, 0);
    free(text);
    /* Nothing written: an empty string, not NULL. */
    text = buf_take(&b, NULL);
    assert_string_equal(text, "");
    free(text);
}

static void test_grows_past_its_first_block(void **state)
{
    struct buf b = { 0 };
    char chunk[1000];

    (void)state;
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 100; i++)
        buf_putn(&b, chunk, sizeof(chunk));
    buf_printf(&b, "%5000s", "end");
    assert_false(b.failed);
    assert_int_equal(b.len, 100 * 1000 + 5000);
    assert_int_equal(strlen(b.data), b.len);
    assert_string_equal(b.data + b.len - 3, "end");
    buf_free(&b);
    assert_null(b.data);
}

static void test_html(void **state)
{
    struct buf b = { 0 };

    (void)state;
    buf_html(&b, "<a href=\"x\">Tom & Jerry's</a>");
    assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
    buf_free(&b);
    buf_htmlf(&b, "%d < %s", 1, "<2>");
    assert_string_equal(b.data, "1 &lt; &lt;2&gt;");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_printf_take),
        cmocka_unit_test(test_grows_past_its_first_block),
        cmocka_unit_test(test_html),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

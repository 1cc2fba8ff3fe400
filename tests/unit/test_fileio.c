/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fileio: the small-file readers every module shares (password, key and certificate
 * files) and the atomic writer, on real files in the test's temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

static char path[512];

static int setup(void **state)
{
    const char *tmp = getenv("PORTIER_TEST_TMP");

    (void)state;
    if (!tmp)
        tmp = "/tmp";
    mkdir(tmp, 0700);
    snprintf(path, sizeof(path), "%s/fileio-%d", tmp, (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void put(const char *data, size_t len)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_first_line(void **state)
{
    static const struct { const char *file; const char *line; } cases[] = {
        { "secret\n", "secret" },
        { "secret\r\n", "secret" },
        { "secret", "secret" },                 /* no line end */
        { "secret\n# a comment\nmore\n", "secret" },
        { "", "" },
        { "\nsecret\n", "" },
        { "1234567\n", "1234567" },             /* exactly fills buf */
        { "1234567", "1234567" },
        { "1234567\r\n", "1234567" },
    };
    char buf[8];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put(cases[i].file, strlen(cases[i].file));
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(file_read_first_line(path, buf, sizeof(buf)), 0);
        assert_string_equal(buf, cases[i].line);
    }
}

static void test_first_line_too_long_is_refused_and_wiped(void **state)
{
    char buf[8];

    (void)state;
    put("12345678\n", 9);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(file_read_first_line(path, buf, sizeof(buf)), -EFBIG);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    put("123456789012345678901234567890", 30);
    assert_int_equal(file_read_first_line(path, buf, sizeof(buf)), -EFBIG);
    unlink(path);
    assert_int_equal(file_read_first_line(path, buf, sizeof(buf)), -ENOENT);
}

static void test_read_small(void **state)
{
    char buf[8];
    size_t len = 99;

    (void)state;
    put("ab\0cd", 5);                           /* binary content: the length tells */
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "ab\0cd\0", 6);
    put("1234567", 7);                          /* fits with its NUL */
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), 0);
    assert_string_equal(buf, "1234567");
    put("12345678", 8);                         /* does not */
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), -EFBIG);
    put("", 0);
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), 0);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    unlink(path);
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), -ENOENT);
    assert_int_equal(len, 0);
}

static void test_write_atomic_then_read(void **state)
{
    char buf[32];
    size_t len = 0;
    struct stat st;

    (void)state;
    assert_int_equal(file_write_atomic(path, "first\n", 6, 0600), 0);
    assert_int_equal(file_write_atomic(path, "second\n", 7, 0640), 0);
    assert_int_equal(file_read_small(path, buf, sizeof(buf), &len, NULL), 0);
    assert_string_equal(buf, "second\n");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_line_too_long_is_refused_and_wiped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_then_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

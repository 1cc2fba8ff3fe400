/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* csv: the one CSV writer (portierctl statements, the web's usage.csv, the custodian's
 * report): RFC 4180 quoting, the French dialect, and the formula guard. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* One row of one text field, as written. */
static char *one(enum csv_dialect d, const char *field)
{
    struct csv c;
    char *text;

    csv_init(&c, d);
    csv_text(&c, field);
    csv_end_row(&c);
    text = csv_take(&c, NULL);
    assert_non_null(text);
    return text;
}

static void expect(enum csv_dialect d, const char *field, const char *want)
{
    char *got = one(d, field);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\": got \"%s\", want \"%s\"", field, got, want);
    free(got);
}

static void test_quoting(void **state)
{
    (void)state;
    expect(CSV_RFC4180, "plain", "plain\r\n");
    expect(CSV_RFC4180, "", "\r\n");
    expect(CSV_RFC4180, NULL, "\r\n");
    expect(CSV_RFC4180, "a,b", "\"a,b\"\r\n");
    expect(CSV_RFC4180, "say \"hi\"", "\"say \"\"hi\"\"\"\r\n");
    expect(CSV_RFC4180, "\"", "\"\"\"\"\r\n");
    expect(CSV_RFC4180, "two\nlines", "\"two\nlines\"\r\n");
    expect(CSV_RFC4180, "cr\rin", "\"cr\rin\"\r\n");
    expect(CSV_RFC4180, "a;b", "a;b\r\n");              /* not the separator here */
    expect(CSV_RFC4180, "Zoë", "Zoë\r\n");               /* UTF-8 as it is */
    expect(CSV_RFC4180, "2026-10-01 10:00", "2026-10-01 10:00\r\n");
}

static void test_formula_guard(void **state)
{
    (void)state;
    /* OWASP's list: = + - @ TAB CR at the start make a formula; each is written as text. */
    expect(CSV_RFC4180, "=HYPERLINK(\"http://x\",\"y\")",
           "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n");
    expect(CSV_RFC4180, "=1+2", "\"'=1+2\"\r\n");
    expect(CSV_RFC4180, "+33 6 12", "\"'+33 6 12\"\r\n");
    expect(CSV_RFC4180, "-2+3", "\"'-2+3\"\r\n");
    expect(CSV_RFC4180, "@SUM(A1)", "\"'@SUM(A1)\"\r\n");
    expect(CSV_RFC4180, "\t=1", "\"'\t=1\"\r\n");
    expect(CSV_RFC4180, "\r=1", "\"'\r=1\"\r\n");
    expect(CSV_FRENCH, "=1;2", "\xef\xbb\xbf\"'=1;2\"\r\n");
    /* Inside a field they are plain text. */
    expect(CSV_RFC4180, "a=b", "a=b\r\n");
    expect(CSV_RFC4180, "Jean-Luc", "Jean-Luc\r\n");
}

static void test_rows_numbers_and_dialects(void **state)
{
    static const char *const head[] = { "member", "n", "amount", "note" };
    struct csv c;
    size_t len = 0;
    char *text;

    (void)state;
    csv_init(&c, CSV_RFC4180);
    csv_row(&c, head, 4);
    csv_text(&c, "Alice, B.");
    csv_int(&c, -3);
    csv_cents(&c, -5);                  /* a number: never guarded */
    csv_text(&c, "");
    csv_end_row(&c);
    csv_text(&c, "Bob");
    csv_int(&c, 0);
    csv_cents(&c, 123456);
    csv_text(&c, "x");
    csv_end_row(&c);
    text = csv_take(&c, &len);
    assert_string_equal(text, "member,n,amount,note\r\n"
                              "\"Alice, B.\",-3,-0.05,\r\n"
                              "Bob,0,1234.56,x\r\n");
    assert_int_equal(len, strlen(text));
    free(text);

    csv_init(&c, CSV_FRENCH);
    csv_row(&c, head, 4);
    csv_text(&c, "Alice; B.");
    csv_int(&c, 7);
    csv_cents(&c, -1250);
    csv_text(&c, "a,b");
    csv_end_row(&c);
    csv_cents(&c, INT64_MIN);           /* the extremes do not overflow */
    csv_cents(&c, INT64_MAX);
    csv_end_row(&c);
    text = csv_take(&c, NULL);
    assert_string_equal(text, "\xef\xbb\xbfmember;n;amount;note\r\n"
                              "\"Alice; B.\";7;-12,50;a,b\r\n"
                              "-92233720368547758,08;92233720368547758,07\r\n");
    free(text);

    /* Empty, and a writer that grows past its first buffer. */
    csv_init(&c, CSV_RFC4180);
    text = csv_take(&c, &len);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
    csv_init(&c, CSV_RFC4180);
    for (int i = 0; i < 10000; i++)
        csv_text(&c, "field \"quoted\"");
    csv_end_row(&c);
    text = csv_take(&c, &len);
    assert_int_equal(len, 10000 * strlen("\"field \"\"quoted\"\"\"") + 9999 + 2);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_formula_guard),
        cmocka_unit_test(test_rows_numbers_and_dialects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

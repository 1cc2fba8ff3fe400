/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* log.c: one line per message, safe for a terminal and for journald, whatever it quotes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What log_msg() writes to stderr for one message. */
static void logged(const char *text, char *out, size_t n)
{
    FILE *f = tmpfile();
    int saved = dup(2);
    size_t len;

    assert_non_null(f);
    fflush(stderr);
    assert_true(dup2(fileno(f), 2) >= 0);
    setenv("JOURNAL_STREAM", "8:1", 1);     /* the journald format: "<N>MESSAGE\n" */
    log_msg(LOG_WARNING, "http: %s -> 404", text);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    len = fread(out, 1, n - 1, f);
    out[len] = '\0';
    fclose(f);
}

/* Found by fuzz_http_request: a request's URL is logged as sent, and libmicrohttpd takes
 * control bytes in it, so a client could write terminal escapes (or a fake line, were a
 * newline ever let through) into the daemon's log. */
static void test_control_characters_never_reach_the_log(void **state)
{
    char out[256];

    (void)state;
    logged("/a\x1b[31mred\x07\r\nfake: line\x7f\tend", out, sizeof(out));
    assert_string_equal(out, "<4>http: /a?[31mred???fake: line??end -> 404\n");
    /* UTF-8 text is kept as it is. */
    logged("/caf\xc3\xa9", out, sizeof(out));
    assert_string_equal(out, "<4>http: /caf\xc3\xa9 -> 404\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_characters_never_reach_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* access_tap_detail(): what the access log (and so the MQTT event) says about a tap at which
 * several cards answered the reader. One card says nothing, so single-card taps keep an empty
 * detail; the note is joined to a machine tap's own detail; nothing overflows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "access.h"

static void test_one_card_says_nothing(void **state)
{
    char buf[128];

    (void)state;
    assert_string_equal(access_tap_detail(buf, sizeof(buf), NULL, 1), "");
    assert_string_equal(access_tap_detail(buf, sizeof(buf), "", 1), "");
    /* 0: a back-end that could not count; treated as one card. */
    assert_string_equal(access_tap_detail(buf, sizeof(buf), NULL, 0), "");
    assert_string_equal(access_tap_detail(buf, sizeof(buf), "walk-up, 538 us", 1),
                        "walk-up, 538 us");
}

static void test_several_cards_say_so(void **state)
{
    char buf[128];

    (void)state;
    assert_ptr_equal(access_tap_detail(buf, sizeof(buf), NULL, 2), buf);
    assert_string_equal(buf, "2 cards presented; first selected wins");
    assert_string_equal(access_tap_detail(buf, sizeof(buf), "", 2),
                        "2 cards presented; first selected wins");
    assert_string_equal(access_tap_detail(buf, sizeof(buf), "walk-up, 538 us", 2),
                        "walk-up, 538 us; 2 cards presented; first selected wins");
    assert_string_equal(access_tap_detail(buf, sizeof(buf), "extend refused", 3),
                        "extend refused; 3 cards presented; first selected wins");
}

static void test_truncates_safely(void **state)
{
    char buf[16], big[300];

    (void)state;
    memset(buf, 'x', sizeof(buf));
    access_tap_detail(buf, 10, NULL, 2);
    assert_string_equal(buf, "2 cards p");
    assert_int_equal(buf[10], 'x');                 /* nothing written past size */
    access_tap_detail(buf, 1, "walk-up", 2);
    assert_string_equal(buf, "");
    buf[0] = 'y';
    access_tap_detail(buf, 0, "walk-up", 2);        /* size 0: buf untouched */
    assert_int_equal(buf[0], 'y');
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    access_tap_detail(buf, sizeof(buf), big, 2);
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_card_says_nothing),
        cmocka_unit_test(test_several_cards_say_so),
        cmocka_unit_test(test_truncates_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

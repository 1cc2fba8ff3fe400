/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Dates past 2038 and at the edges of the accepted range, on every platform.
 *
 * Debian 12 armhf has a 32-bit time_t: before Portier was built with _TIME_BITS=64,
 * parse_time("2040-06-01T00:00Z") succeeded with t = -1, a member valid until 2040 was
 * expired, and 2100 printed as 1963. tools/cross runs this test on armhf and arm64 under
 * qemu; it passes there only with a 64-bit time_t. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "booking.h"
#include "policy.h"
#include "schedule.h"
#include "util.h"

#define T_2040_06_01 INT64_C(2222121600)        /* 2040-06-01T00:00:00Z */
#define T_2100_01_01 INT64_C(4102444800)        /* 2100-01-01T00:00:00Z */
#define T_2038_01_19_03_14_08 INT64_C(2147483648)   /* one second past INT32_MAX */

static void test_time_t_is_64_bit(void **state)
{
    assert_true(sizeof(time_t) >= 8);
}

static void test_parse_after_2038(void **state)
{
    int64_t t = 0;

    assert_int_equal(parse_time("2040-06-01T00:00Z", &t), 0);
    assert_true(t == T_2040_06_01);
    assert_int_equal(parse_time("2038-01-19T03:14:08Z", &t), 0);
    assert_true(t == T_2038_01_19_03_14_08);
    assert_int_equal(parse_time("2100-01-01T00:00:00Z", &t), 0);
    assert_true(t == T_2100_01_01);
    /* Local time: Paris is UTC+2 in June 2040. */
    assert_int_equal(parse_time("2040-06-01T02:00", &t), 0);
    assert_true(t == T_2040_06_01);
    assert_int_equal(parse_time("@2222121600", &t), 0);
    assert_true(t == T_2040_06_01);
}

static void test_format_after_2038(void **state)
{
    char buf[32];

    format_utc(T_2100_01_01, buf, sizeof(buf));
    assert_string_equal(buf, "2100-01-01T00:00:00Z");
    format_utc(T_2038_01_19_03_14_08, buf, sizeof(buf));
    assert_string_equal(buf, "2038-01-19T03:14:08Z");
    format_utc(INT64_C(253402300799), buf, sizeof(buf));
    assert_string_equal(buf, "9999-12-31T23:59:59Z");
}

static void test_range_is_refused_clearly(void **state)
{
    int64_t t = 42;

    assert_true(parse_time("10000-01-01", &t) < 0);      /* five digits: not YYYY */
    assert_int_equal(parse_time("1969-12-31T23:00Z", &t), -ERANGE);
    assert_int_equal(parse_time("@253402300800", &t), -ERANGE);
    assert_int_equal(parse_time("2040-13-01", &t), -EINVAL);
    assert_true(t == 42);           /* untouched on error */
    assert_int_equal(parse_time("9999-12-31T23:59:59Z", &t), 0);
    assert_true(t == TIME_MAX_UTC);
}

/* A member valid until 2040 is let in in 2039 and refused after. */
static void test_member_validity_after_2038(void **state)
{
    struct schedule always;
    struct policy_card card = { .enabled = true };
    struct policy_member member = { .status = MEMBER_ACTIVE, .valid_from = 0,
                                    .valid_until = T_2040_06_01 };
    struct policy_plan plan = { .zones = "*", .hours = &always };
    struct policy_door door = { .zone = "main" };
    struct policy_request req = { .card = &card, .member = &member, .plan = &plan,
                                  .door = &door };
    struct policy_verdict v;

    assert_int_equal(schedule_parse("always", &always, NULL), 0);
    req.now = T_2040_06_01 - 86400;
    local_time_at(req.now, &req.local);
    v = policy_decide(&req);
    assert_true(v.granted);
    req.now = T_2040_06_01 + 60;
    local_time_at(req.now, &req.local);
    v = policy_decide(&req);
    assert_false(v.granted);
    assert_int_equal(v.reason, POLICY_MEMBER_EXPIRED);
}

/* Wall-clock rules after 2038: a weekday window, and a local day across the 2040 spring
 * change (Sunday 25 March 2040 in Paris: 23 hours). */
static void test_local_days_after_2038(void **state)
{
    struct schedule weekdays;
    struct local_time lt;
    int64_t start, end, t;

    assert_int_equal(schedule_parse("Mon-Fri 09:00-18:00", &weekdays, NULL), 0);
    assert_int_equal(parse_time("2040-06-01T10:00", &t), 0);      /* a Friday */
    local_time_at(t, &lt);
    assert_int_equal(lt.wday, 5);
    assert_int_equal(lt.minute, 600);
    assert_true(schedule_contains(&weekdays, &lt));

    assert_int_equal(parse_time("2040-03-25T12:00", &t), 0);
    booking_day_bounds(t, &start, &end);
    assert_true(end - start == 23 * 3600);
    assert_int_equal(parse_time("2040-03-25", &t), 0);
    assert_true(start == t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_t_is_64_bit),
        cmocka_unit_test(test_parse_after_2038),
        cmocka_unit_test(test_format_after_2038),
        cmocka_unit_test(test_range_is_refused_clearly),
        cmocka_unit_test(test_member_validity_after_2038),
        cmocka_unit_test(test_local_days_after_2038),
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

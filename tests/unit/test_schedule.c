/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* schedule: the parser (what it accepts, what it refuses, and with a message),
 * schedule_contains() at the edges of windows, and schedule_window_end() across the
 * daylight-saving nights. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum { SUN, MON, TUE, WED, THU, FRI, SAT };
#define HM(h, m) ((h) * 60 + (m))
#define DAY(d) (1u << (d))

static struct schedule parse_ok(const char *text)
{
    struct schedule s;
    const char *err = "untouched";
    int r = schedule_parse(text, &s, &err);
    if (r != 0)
        fail_msg("'%s' should parse, got %d: %s", text, r, err);
    return s;
}

static bool at(const struct schedule *s, int wday, int minute)
{
    struct local_time lt = { .wday = wday, .minute = minute };
    return schedule_contains(s, &lt);
}

/* Every (day, minute) of the week, as a 7x1440 bitmap, to compare schedules exhaustively. */
static void week_of(const struct schedule *s, bool out[7][1440])
{
    for (int d = 0; d < 7; d++)
        for (int m = 0; m < 1440; m++)
            out[d][m] = at(s, d, m);
}

static void test_parse_two_rules(void **state)
{
    struct schedule s = parse_ok("Mon-Fri 08:00-20:00, Sat 10:00-13:00");

    (void)state;
    assert_false(s.always);
    assert_int_equal(s.n_rules, 2);
    assert_int_equal(s.rules[0].days, DAY(MON) | DAY(TUE) | DAY(WED) | DAY(THU) | DAY(FRI));
    assert_int_equal(s.rules[0].start, HM(8, 0));
    assert_int_equal(s.rules[0].end, HM(20, 0));
    assert_int_equal(s.rules[1].days, DAY(SAT));
    assert_int_equal(s.rules[1].start, HM(10, 0));
    assert_int_equal(s.rules[1].end, HM(13, 0));

    assert_true(at(&s, MON, HM(8, 0)));
    assert_true(at(&s, FRI, HM(19, 59)));
    assert_false(at(&s, FRI, HM(20, 0)));
    assert_false(at(&s, MON, HM(7, 59)));
    assert_true(at(&s, SAT, HM(10, 0)));
    assert_true(at(&s, SAT, HM(12, 59)));
    assert_false(at(&s, SAT, HM(13, 0)));
    assert_false(at(&s, SAT, HM(9, 59)));
    assert_false(at(&s, SUN, HM(11, 0)));
}

static void test_parse_daily_full_day(void **state)
{
    struct schedule s = parse_ok("daily 00:00-24:00");

    (void)state;
    assert_int_equal(s.n_rules, 1);
    assert_int_equal(s.rules[0].days, 0x7f);
    assert_int_equal(s.rules[0].start, 0);
    assert_int_equal(s.rules[0].end, 1440);
    for (int d = 0; d < 7; d++) {
        assert_true(at(&s, d, 0));
        assert_true(at(&s, d, 720));
        assert_true(at(&s, d, 1439));
    }
}

static void test_parse_words(void **state)
{
    struct schedule wd = parse_ok("weekdays 09:00-17:00");
    struct schedule we = parse_ok("weekends 10:00-12:00");
    struct schedule caps = parse_ok("WEEKDAYS 09:00-17:00");

    (void)state;
    assert_int_equal(wd.rules[0].days, DAY(MON) | DAY(TUE) | DAY(WED) | DAY(THU) | DAY(FRI));
    assert_int_equal(we.rules[0].days, DAY(SAT) | DAY(SUN));
    assert_int_equal(caps.rules[0].days, wd.rules[0].days);
    assert_true(at(&wd, WED, HM(9, 0)));
    assert_false(at(&wd, SAT, HM(9, 0)));
    assert_false(at(&wd, SUN, HM(9, 0)));
    assert_true(at(&we, SUN, HM(11, 0)));
    assert_true(at(&we, SAT, HM(11, 0)));
    assert_false(at(&we, FRI, HM(11, 0)));
}

static void test_parse_always_never(void **state)
{
    struct schedule a = parse_ok("always");
    struct schedule n = parse_ok("never");
    struct schedule a2 = parse_ok("  Always");

    (void)state;
    assert_true(a.always);
    assert_true(a2.always);
    assert_false(n.always);
    assert_int_equal(n.n_rules, 0);
    for (int d = 0; d < 7; d++) {
        assert_true(at(&a, d, 0));
        assert_true(at(&a, d, 1439));
        assert_false(at(&n, d, 0));
        assert_false(at(&n, d, 720));
    }
}

static void test_parse_day_ranges(void **state)
{
    struct schedule wrap = parse_ok("Sat-Mon 10:00-11:00");
    struct schedule plus = parse_ok("Mon+Wed+Fri 10:00-11:00");
    struct schedule mixed = parse_ok("Mon-Tue+Thu+Sat-Sun 10:00-11:00");
    struct schedule one = parse_ok("sun 10:00-11:00");
    struct schedule full_wrap = parse_ok("Wed-Tue 10:00-11:00");

    (void)state;
    assert_int_equal(wrap.rules[0].days, DAY(SAT) | DAY(SUN) | DAY(MON));
    assert_int_equal(plus.rules[0].days, DAY(MON) | DAY(WED) | DAY(FRI));
    assert_int_equal(mixed.rules[0].days, DAY(MON) | DAY(TUE) | DAY(THU) | DAY(SAT) | DAY(SUN));
    assert_int_equal(one.rules[0].days, DAY(SUN));
    assert_int_equal(full_wrap.rules[0].days, 0x7f);

    assert_true(at(&wrap, SAT, HM(10, 30)));
    assert_true(at(&wrap, SUN, HM(10, 30)));
    assert_true(at(&wrap, MON, HM(10, 30)));
    assert_false(at(&wrap, TUE, HM(10, 30)));
    assert_false(at(&wrap, FRI, HM(10, 30)));
    assert_true(at(&plus, WED, HM(10, 30)));
    assert_false(at(&plus, TUE, HM(10, 30)));
    assert_false(at(&plus, THU, HM(10, 30)));
}

static void test_parse_24_only_as_end(void **state)
{
    struct schedule s;
    const char *err = NULL;

    (void)state;
    s = parse_ok("Mon 20:00-24:00");
    assert_int_equal(s.rules[0].end, 1440);
    assert_true(at(&s, MON, HM(23, 59)));
    assert_false(at(&s, TUE, 0));       /* 24:00 ends at midnight; nothing spills over */
    assert_false(at(&s, MON, HM(19, 59)));

    assert_int_equal(schedule_parse("Mon 24:00-02:00", &s, &err), -EINVAL);
    assert_non_null(err);
    err = NULL;
    assert_int_equal(schedule_parse("Mon 10:00-24:01", &s, &err), -EINVAL);
    assert_non_null(err);
}

static void test_parse_spaces_and_no_space_after_comma(void **state)
{
    bool a[7][1440], b[7][1440];
    struct schedule s1 = parse_ok("Mon-Fri 08:00-20:00,Sat 10:00-13:00");
    struct schedule s2 = parse_ok("  Mon-Fri   08:00-20:00 ,   Sat 10:00-13:00  ");
    struct schedule s3 = parse_ok("Mon-Fri 08:00-20:00, Sat 10:00-13:00");

    (void)state;
    week_of(&s1, a);
    week_of(&s3, b);
    assert_memory_equal(a, b, sizeof(a));
    week_of(&s2, a);
    assert_memory_equal(a, b, sizeof(a));
}

static void test_parse_sixteen_windows(void **state)
{
    /* Sixteen is the documented maximum; the shortest rule form fits in the text limit. */
    char text[SCHEDULE_MAX_TEXT];
    struct schedule s;
    size_t used = 0;

    (void)state;
    for (int i = 0; i < SCHEDULE_MAX_RULES; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%sMon %02d:00-%02d:30",
                                 i ? "," : "", i, i);
    assert_true(used < sizeof(text));
    s = parse_ok(text);
    assert_int_equal(s.n_rules, SCHEDULE_MAX_RULES);
    assert_true(at(&s, MON, HM(15, 29)));
    assert_false(at(&s, MON, HM(15, 30)));
}

static void test_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "weekdays",                 /* days without hours */
        "Mon",
        "Mon 08:00",                /* no end */
        "Mon 08:00-",
        "Mon 25:00-26:00",
        "Mon 08:00-25:00",
        "Mon 08:60-09:00",
        "Mon 08:00-08:00",          /* empty window */
        "Mon 00:00-00:00",
        "Mon 24:00-24:00",
        "Mon 8:00-9:00",            /* HH:MM, two digits */
        "Mon 08.00-09.00",
        "Mon 08:00 - 09:00",
        "Mon08:00-09:00",
        "Mon 08:00-09:00,",         /* trailing comma */
        "Mon 08:00-09:00, ",
        ",Mon 08:00-09:00",
        "Mon 08:00-09:00;Tue 08:00-09:00",
        "Mon 08:00-09:00 Tue 08:00-09:00",
        "Mon 08:00-09:00 junk",
        "Monday 08:00-09:00",
        "Mon- 08:00-09:00",
        "Mon+ 08:00-09:00",
        "Mon-Xyz 08:00-09:00",
        "Xyz 08:00-09:00",
        "daily08:00-09:00",
        "sometimes",
        "always please",
        "never ever",
        "-1",
        "\xff\xfe",
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct schedule s;
        const char *err = NULL;
        int r;

        memset(&s, 0xa5, sizeof(s));
        r = schedule_parse(bad[i], &s, &err);
        if (r != -EINVAL || !err || !*err)
            fail_msg("'%s': expected -EINVAL with a message, got %d (%s)", bad[i], r,
                     err ? err : "no message");
        /* *ret is untouched on error */
        for (size_t b = 0; b < sizeof(s); b++)
            assert_int_equal(((unsigned char *)&s)[b], 0xa5);
    }
}

static void test_parse_error_messages(void **state)
{
    struct schedule s;
    const char *err = NULL;

    (void)state;
    assert_int_equal(schedule_parse("Mon 08:00-08:00", &s, &err), -EINVAL);
    assert_string_equal(err, "a window must not start and end at the same time");
    assert_int_equal(schedule_parse("Mon 25:00-26:00", &s, &err), -EINVAL);
    assert_string_equal(err, "expected hours as HH:MM-HH:MM (00:00 to 24:00)");
    assert_int_equal(schedule_parse("Mon 08:00-09:00,", &s, &err), -EINVAL);
    assert_non_null(strstr(err, "expected days"));
    assert_int_equal(schedule_parse("Mon 08:00-09:00 junk", &s, &err), -EINVAL);
    assert_string_equal(err, "expected ',' between windows");
    /* ret_error may be NULL */
    assert_int_equal(schedule_parse("garbage", &s, NULL), -EINVAL);
}

static void test_parse_too_many_windows(void **state)
{
    /* 17 windows: refused, whatever limit (rule count or text length) trips first. */
    char text[512];
    struct schedule s;
    const char *err = NULL;
    size_t used = 0;

    (void)state;
    for (int i = 0; i <= SCHEDULE_MAX_RULES; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%sMon %02d:00-%02d:30",
                                 i ? "," : "", i, i);
    assert_int_equal(schedule_parse(text, &s, &err), -EINVAL);
    assert_non_null(err);
}

static void test_parse_too_long(void **state)
{
    char text[SCHEDULE_MAX_TEXT + 10];
    struct schedule s;
    const char *err = NULL;

    (void)state;
    /* "always" padded with leading spaces past the limit */
    memset(text, ' ', sizeof(text));
    strcpy(text + SCHEDULE_MAX_TEXT - 2, "always");
    assert_int_equal(schedule_parse(text, &s, &err), -EINVAL);
    assert_string_equal(err, "schedule too long");
}

static void test_contains_overnight(void **state)
{
    struct schedule s = parse_ok("Fri 22:00-02:00");

    (void)state;
    assert_int_equal(s.rules[0].start, HM(22, 0));
    assert_int_equal(s.rules[0].end, HM(2, 0));
    assert_false(at(&s, FRI, HM(21, 59)));
    assert_true(at(&s, FRI, HM(22, 0)));
    assert_true(at(&s, FRI, HM(23, 59)));
    assert_true(at(&s, SAT, HM(0, 0)));
    assert_true(at(&s, SAT, HM(1, 59)));
    assert_false(at(&s, SAT, HM(2, 0)));
    assert_false(at(&s, SAT, HM(22, 0)));    /* starts on Fridays only */
    assert_false(at(&s, SUN, HM(1, 0)));
    assert_false(at(&s, FRI, HM(1, 0)));     /* Thursday night is not covered */
}

static void test_contains_overnight_across_week_end(void **state)
{
    struct schedule sat = parse_ok("Sat 23:00-01:00");
    struct schedule sun = parse_ok("Sun 23:00-01:00");

    (void)state;
    assert_true(at(&sat, SAT, HM(23, 0)));
    assert_true(at(&sat, SUN, HM(0, 59)));
    assert_false(at(&sat, SUN, HM(1, 0)));
    assert_false(at(&sat, SUN, HM(23, 0)));
    assert_true(at(&sun, SUN, HM(23, 30)));
    assert_true(at(&sun, MON, HM(0, 30)));
    assert_false(at(&sun, MON, HM(1, 0)));
    assert_false(at(&sun, SAT, HM(23, 30)));
}

static void test_contains_start_at_midnight_end_24(void **state)
{
    struct schedule s = parse_ok("Tue 00:00-00:01, Wed 23:59-24:00");

    (void)state;
    assert_true(at(&s, TUE, 0));
    assert_false(at(&s, TUE, 1));
    assert_false(at(&s, MON, 1439));
    assert_true(at(&s, WED, 1439));
    assert_false(at(&s, WED, 1438));
    assert_false(at(&s, THU, 0));
}

static void test_contains_exhaustive_week(void **state)
{
    /* Against a direct model: a minute is in if it is in [start, end) on a listed day. */
    struct schedule s = parse_ok("Mon-Fri 08:00-20:00, Sat 10:00-13:00");
    bool week[7][1440];

    (void)state;
    week_of(&s, week);
    for (int d = 0; d < 7; d++)
        for (int m = 0; m < 1440; m++) {
            bool want = (d >= MON && d <= FRI && m >= 480 && m < 1200) ||
                        (d == SAT && m >= 600 && m < 780);
            if (week[d][m] != want)
                fail_msg("day %d minute %d: expected %d", d, m, want);
        }
}

static void test_local_time_at(void **state)
{
    struct local_time lt;

    (void)state;
    /* 2026-01-05 07:00:00 UTC = Monday 08:00 CET */
    local_time_at(1767596400, &lt);
    assert_int_equal(lt.wday, MON);
    assert_int_equal(lt.minute, HM(8, 0));
    /* 2026-03-29 01:00:00 UTC = Sunday 03:00 CEST (02:00-03:00 skipped) */
    local_time_at(1774746000, &lt);
    assert_int_equal(lt.wday, SUN);
    assert_int_equal(lt.minute, HM(3, 0));
    local_time_at(1774746000 - 60, &lt);
    assert_int_equal(lt.minute, HM(1, 59));
    /* 2026-10-25 00:30 and 01:30 UTC: both Sunday 02:30 on the wall */
    local_time_at(1792888200, &lt);
    assert_int_equal(lt.wday, SUN);
    assert_int_equal(lt.minute, HM(2, 30));
    local_time_at(1792888200 + 3600, &lt);
    assert_int_equal(lt.wday, SUN);
    assert_int_equal(lt.minute, HM(2, 30));
}

/* 2026 in Europe/Paris: clocks go forward on Sunday 29 March at 02:00 CET (01:00Z) and back
 * on Sunday 25 October at 03:00 CEST (01:00Z). Instants are UTC seconds, not mktime() of a
 * wall time, which is ambiguous on the fall-back night. */
#define SUN_29_MARCH_0000_CET   INT64_C(1774738800)    /* 2026-03-28 23:00Z */
#define SUN_25_OCT_0000_CEST    INT64_C(1792879200)    /* 2026-10-24 22:00Z */
#define SUN_22_NOV_0000_CET     INT64_C(1795302000)    /* 2026-11-21 23:00Z */

static bool contains_at(const struct schedule *s, int64_t utc)
{
    struct local_time lt;
    local_time_at(utc, &lt);
    return schedule_contains(s, &lt);
}

/* What schedule_window_end() must return, found the slow way: the first whole minute after
 * utc outside the schedule, at most utc + horizon. */
static int64_t window_end_by_minutes(const struct schedule *s, int64_t utc, int64_t horizon)
{
    if (!contains_at(s, utc))
        return utc;
    for (int64_t u = utc - utc % 60 + 60; u < utc + horizon; u += 60)
        if (!contains_at(s, u))
            return u;
    return utc + horizon;
}

/* The bug: machine hours "Sat 22:00-02:00", a walk-up at 01:30 CEST on the fall-back night
 * was powered until 02:00 CET (01:00Z), an hour late: mktime() of the ambiguous 02:00
 * picked the second one. The window ends the first time the wall clock reads 02:00. */
static void test_window_end_fall_back_ambiguous_end(void **state)
{
    struct schedule night = parse_ok("Sat 22:00-02:00");
    struct schedule sunday = parse_ok("Sun 00:00-02:00");
    int64_t at_0130_cest = SUN_25_OCT_0000_CEST + HM(1, 30) * 60;
    int64_t at_0200_cest = SUN_25_OCT_0000_CEST + HM(2, 0) * 60;   /* 00:00Z */

    (void)state;
    assert_int_equal(schedule_window_end(&night, at_0130_cest, 7 * 86400), at_0200_cest);
    assert_int_equal(schedule_window_end(&sunday, at_0130_cest, 7 * 86400), at_0200_cest);
    /* From the evening before, too. */
    assert_int_equal(schedule_window_end(&night, SUN_25_OCT_0000_CEST - 3600, 7 * 86400),
                     at_0200_cest);
    /* A window that spans the change lasts an hour longer in real time:
     * 01:00 CEST to 04:00 CET is 4 hours. */
    struct schedule across = parse_ok("Sun 01:00-04:00");
    assert_int_equal(schedule_window_end(&across, SUN_25_OCT_0000_CEST + HM(1, 0) * 60, 86400),
                     SUN_25_OCT_0000_CEST + HM(5, 0) * 60);
    /* The repeated hour matches twice: 02:00-03:00 lasts two real hours. */
    struct schedule repeated = parse_ok("Sun 02:00-03:00");
    assert_int_equal(schedule_window_end(&repeated, at_0200_cest, 86400),
                     at_0200_cest + 2 * 3600);
}

static void test_window_end_spring_forward(void **state)
{
    struct schedule sunday = parse_ok("Sun 00:30-02:30");       /* 02:30 never happens */
    struct schedule across = parse_ok("Sat 22:00-04:00");
    int64_t at_0130_cet = SUN_29_MARCH_0000_CET + HM(1, 30) * 60;
    int64_t at_0300_cest = SUN_29_MARCH_0000_CET + HM(2, 0) * 60;  /* 01:00Z */

    (void)state;
    assert_int_equal(schedule_window_end(&sunday, at_0130_cet, 86400), at_0300_cest);
    /* 22:00 CET (21:00Z) to 04:00 CEST (02:00Z) is 5 real hours. */
    assert_int_equal(schedule_window_end(&across, SUN_29_MARCH_0000_CET - 2 * 3600, 86400),
                     SUN_29_MARCH_0000_CET + 3 * 3600);
}

/* The fuzzer's finding: on the spring-forward night the end found by the scan over the
 * skipped hour was returned even when it lay beyond utc + horizon. */
static void test_window_end_never_beyond_horizon(void **state)
{
    struct schedule sunday = parse_ok("Sun 00:30-02:30");
    int64_t start = SUN_29_MARCH_0000_CET + HM(0, 30) * 60 + 59;

    (void)state;
    assert_int_equal(schedule_window_end(&sunday, start, 3600), start + 3600);
    assert_int_equal(schedule_window_end(&sunday, start, 60), start + 60);
}

/* Every 7 minutes and 13 seconds of the two DST nights and an ordinary night, for
 * schedules that end, start or chain around the changes: the result is exactly the first
 * minute outside the schedule, capped at the horizon. */
static void test_window_end_matches_minute_scan(void **state)
{
    static const char *const texts[] = {
        "Sat 22:00-02:00", "Sun 00:00-02:00", "Sun 00:30-02:30", "Sun 02:00-03:00",
        "Sun 02:30-03:30", "Sat 23:00-03:00", "Sun 01:00-04:00",
        "Sat 20:00-24:00, Sun 00:00-02:15, Sun 02:15-03:00", "daily 01:59-02:01",
    };
    static const int64_t nights[] = { SUN_29_MARCH_0000_CET, SUN_25_OCT_0000_CEST,
                                      SUN_22_NOV_0000_CET };
    static const int64_t horizons[] = { 60, 3600, 6 * 3600 };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(texts); i++) {
        struct schedule s = parse_ok(texts[i]);
        for (size_t n = 0; n < N_ELEMS(nights); n++)
            for (int64_t utc = nights[n] - 3 * 3600; utc < nights[n] + 5 * 3600; utc += 433)
                for (size_t h = 0; h < N_ELEMS(horizons); h++) {
                    int64_t got = schedule_window_end(&s, utc, horizons[h]);
                    int64_t want = window_end_by_minutes(&s, utc, horizons[h]);
                    if (got != want)
                        fail_msg("'%s' from %" PRId64 " (horizon %" PRId64 "): got %" PRId64
                                 ", want %" PRId64, texts[i], utc, horizons[h], got, want);
                }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_two_rules),
        cmocka_unit_test(test_parse_daily_full_day),
        cmocka_unit_test(test_parse_words),
        cmocka_unit_test(test_parse_always_never),
        cmocka_unit_test(test_parse_day_ranges),
        cmocka_unit_test(test_parse_24_only_as_end),
        cmocka_unit_test(test_parse_spaces_and_no_space_after_comma),
        cmocka_unit_test(test_parse_sixteen_windows),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_error_messages),
        cmocka_unit_test(test_parse_too_many_windows),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_contains_overnight),
        cmocka_unit_test(test_contains_overnight_across_week_end),
        cmocka_unit_test(test_contains_start_at_midnight_end_24),
        cmocka_unit_test(test_contains_exhaustive_week),
        cmocka_unit_test(test_local_time_at),
        cmocka_unit_test(test_window_end_fall_back_ambiguous_end),
        cmocka_unit_test(test_window_end_spring_forward),
        cmocka_unit_test(test_window_end_never_beyond_horizon),
        cmocka_unit_test(test_window_end_matches_minute_scan),
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

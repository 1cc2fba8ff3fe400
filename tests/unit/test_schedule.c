/* schedule: the parser (what it accepts, what it refuses, and with a message) and
 * schedule_contains() at the edges of windows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
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
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

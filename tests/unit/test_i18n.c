/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* i18n: catalog lookup, plurals, Accept-Language, and dates and amounts as each language
 * writes them, in the site's zone. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "i18n.h"

static void test_lookup(void **state)
{
    (void)state;
    assert_string_equal(i18n_t(LANG_FR, "Bookings"), "Réservations");
    assert_string_equal(i18n_t(LANG_EN, "Bookings"), "Bookings");
    /* Not in the catalog: the English text, never NULL. */
    assert_string_equal(i18n_t(LANG_FR, "Not a translated message"), "Not a translated message");
    assert_string_equal(i18n_code(LANG_FR), "fr");
    assert_string_equal(i18n_code(LANG_EN), "en");
}

static void test_plurals(void **state)
{
    (void)state;
    /* English: 1 is singular; French: 0 and 1 are. */
    assert_string_equal(i18n_nt(LANG_EN, "%d booking", "%d bookings", 1), "%d booking");
    assert_string_equal(i18n_nt(LANG_EN, "%d booking", "%d bookings", 0), "%d bookings");
    assert_string_equal(i18n_nt(LANG_FR, "%d booking", "%d bookings", 0), "%d booking");
    assert_string_equal(i18n_nt(LANG_FR, "%d booking", "%d bookings", 2), "%d bookings");
}

static void test_accept_language(void **state)
{
    (void)state;
    assert_int_equal(i18n_accept("fr-FR,fr;q=0.9,en;q=0.8", LANG_EN), LANG_FR);
    assert_int_equal(i18n_accept("en-GB,en;q=0.9,fr;q=0.8", LANG_FR), LANG_EN);
    assert_int_equal(i18n_accept("de-DE, fr;q=0.3", LANG_EN), LANG_FR);
    assert_int_equal(i18n_accept("de-DE", LANG_FR), LANG_FR);           /* none of ours */
    assert_int_equal(i18n_accept("fr;q=0, en", LANG_FR), LANG_EN);     /* q=0: not wanted */
    assert_int_equal(i18n_accept("en;q=0.5, fr;q=0.7", LANG_EN), LANG_FR);
    assert_int_equal(i18n_accept(NULL, LANG_FR), LANG_FR);
    assert_int_equal(i18n_accept("", LANG_EN), LANG_EN);
    assert_int_equal(i18n_accept(";;;,,,q=1", LANG_EN), LANG_EN);
    assert_int_equal(i18n_parse("fr_FR.UTF-8", LANG_EN), LANG_FR);
    assert_int_equal(i18n_parse("french", LANG_EN), LANG_EN);
}

static void test_times_and_money(void **state)
{
    char buf[64];
    (void)state;
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    /* 2026-12-09 13:00 UTC is 14:00 in Paris (CET). */
    int64_t t = 1796821200;
    assert_string_equal(i18n_time(LANG_FR, t, I18N_DATETIME, buf, sizeof(buf)), "9 déc. 2026 14:00");
    assert_string_equal(i18n_time(LANG_EN, t, I18N_DATETIME, buf, sizeof(buf)), "9 Dec 2026 14:00");
    assert_string_equal(i18n_time(LANG_FR, t, I18N_DATETIME_ZONE, buf, sizeof(buf)),
                        "9 déc. 2026 14:00 CET");
    assert_string_equal(i18n_time(LANG_FR, t, I18N_DATE_LONG, buf, sizeof(buf)),
                        "mercredi 9 décembre 2026");
    assert_string_equal(i18n_time(LANG_EN, t, I18N_WEEKDAY_SHORT, buf, sizeof(buf)), "Wed 9");
    assert_string_equal(i18n_time(LANG_FR, t, I18N_TIME, buf, sizeof(buf)), "14:00");
    assert_string_equal(i18n_time(LANG_EN, t + 3900 + 59, I18N_TIME, buf, sizeof(buf)), "15:05");
    assert_string_equal(i18n_time(LANG_EN, t - 14 * 3600, I18N_TIME, buf, sizeof(buf)), "00:00");
    assert_string_equal(i18n_time(LANG_EN, t, I18N_TIME, buf, 5), "14:0");
    /* Summer time: CEST. */
    assert_string_equal(i18n_time(LANG_EN, 1782640800, I18N_DATETIME_ZONE, buf, sizeof(buf)),
                        "28 Jun 2026 12:00 CEST");
    assert_string_equal(i18n_money(LANG_FR, 300, buf, sizeof(buf)), "3,00\u202f€");
    assert_string_equal(i18n_money(LANG_EN, 300, buf, sizeof(buf)), "€3.00");
    assert_string_equal(i18n_money(LANG_EN, -1505, buf, sizeof(buf)), "-€15.05");
    assert_string_equal(i18n_money(LANG_FR, INT64_MIN + 1, buf, sizeof(buf)),
                        "-92233720368547758,07\u202f€");
    assert_string_equal(i18n_decimal(LANG_FR, 150, buf, sizeof(buf)), "1,5");
    assert_string_equal(i18n_decimal(LANG_EN, 125, buf, sizeof(buf)), "1.25");
    assert_string_equal(i18n_decimal(LANG_EN, 200, buf, sizeof(buf)), "2");
    /* Cut short, never in the middle of a character. */
    assert_string_equal(i18n_time(LANG_FR, t, I18N_DATETIME, buf, 5), "9 d");
    assert_string_equal(i18n_time(LANG_FR, t, I18N_DATETIME, buf, 6), "9 dé");
    assert_string_equal(i18n_money(LANG_EN, 300, buf, 3), "");
}

/* i18n_time() keeps the local time of the quarter-hours it converted last: it must say what
 * localtime_r() says, second by second, across daylight-saving changes (an hour, and Lord
 * Howe's half hour), in zones a quarter-hour or a half-hour off the hour, in a zone with
 * leap seconds, and when TZ changes between two calls; and where a change fell inside a
 * quarter-hour (St John's changed at 00:01 local time until 2011). */
static void test_times_match_localtime_everywhere(void **state)
{
    static const char *const zones[] = {
        "Europe/Paris", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "UTC",
        "right/Europe/Paris", "Europe/Paris",
    };
    /* Each range crosses a change of offset in at least one of the zones. */
    static const int64_t starts[] = {
        1774746000 - 4000,      /* 2026-03-29 01:00 UTC: Paris springs forward */
        1792890000 - 4000,      /* 2026-10-25 01:00 UTC: Paris falls back */
        1775318400 - 4000,      /* 2026-04-04 15:00 UTC: Lord Howe +11 -> +10:30 */
        1796821200,             /* an ordinary December afternoon */
        1268537460 - 4000,      /* 2010-03-14 03:31 UTC: St John's, at 00:01 local then */
    };
    char got[64], want[64];
    (void)state;

    for (unsigned z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        for (unsigned i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
            for (int64_t t = starts[i]; t < starts[i] + 8000; t += 7) {
                time_t tt = (time_t)t;
                struct tm tm;
                assert_non_null(localtime_r(&tt, &tm));
                snprintf(want, sizeof(want), "%d %s %d %02d:%02d %s",
                         tm.tm_mday, (const char *[]){ "Jan", "Feb", "Mar", "Apr", "May",
                         "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }[tm.tm_mon],
                         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_zone);
                i18n_time(LANG_EN, t, I18N_DATETIME_ZONE, got, sizeof(got));
                if (strcmp(got, want) != 0)
                    fail_msg("%s at %lld: \"%s\", localtime_r says \"%s\"", zones[z],
                             (long long)t, got, want);
                snprintf(want, sizeof(want), "%02d:%02d", tm.tm_hour, tm.tm_min);
                i18n_time(LANG_FR, t, I18N_TIME, got, sizeof(got));
                if (strcmp(got, want) != 0)
                    fail_msg("%s at %lld: \"%s\", localtime_r says \"%s\"", zones[z],
                             (long long)t, got, want);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_plurals),
        cmocka_unit_test(test_accept_language),
        cmocka_unit_test(test_times_and_money),
        cmocka_unit_test(test_times_match_localtime_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

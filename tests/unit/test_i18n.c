/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* i18n: catalog lookup, plurals, Accept-Language, and dates and amounts as each language
 * writes them, in the site's zone. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_plurals),
        cmocka_unit_test(test_accept_language),
        cmocka_unit_test(test_times_and_money),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* i18n: French and English for everything people read on the web page and in e-mails.
 *
 * Messages are written in English in the sources, marked for extraction, and translated by
 * the gettext catalogs in po/ (po/fr.po: the format translators' tools speak), which the
 * build compiles into a table (tools/po2c.py -> i18n_catalog.c). Nothing depends on the
 * system's locales: the language is chosen per request or per e-mail, and dates and
 * amounts are formatted here. ctest i18n.catalog fails when a marked message has no French
 * translation or a translation drops a format specifier.
 *
 * Marking, for xgettext (the keywords tests/check_i18n.py passes):
 *   i18n_t(lang, "Book")          translate now (the web's L(rq, "Book") is the same);
 *   N_("Book")                    mark a string for a table, translate it later with i18n_t;
 *   i18n_nt(lang, "%d booking", "%d bookings", n)   plurals (French: one for 0 and 1).
 * Format specifiers in a translation must match the English ones, in the same order. */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum lang {
    LANG_EN,
    LANG_FR,
    LANG__MAX,
};

#define N_(text) (text)

/* "en", "fr". */
const char *i18n_code(enum lang lang);
/* A language tag ("fr", "fr-FR", "en_GB.UTF-8"): its language, or fallback. */
enum lang i18n_parse(const char *tag, enum lang fallback);
/* The best of our languages for an Accept-Language header (q-values honoured), or
 * fallback when it names none of them (or is NULL). */
enum lang i18n_accept(const char *header, enum lang fallback);

/* msgid in lang: the translation, or msgid itself (English, or not translated). Returns a
 * pointer to static storage. */
const char *i18n_t(enum lang lang, const char *msgid) __attribute__((format_arg(2)));
/* The singular or plural form for n. */
const char *i18n_nt(enum lang lang, const char *singular, const char *plural, int64_t n);

/* Times in the site's zone (the TZ environment variable the daemon sets), as people read
 * them: "9 déc. 2026 14:00" / "9 Dec 2026 14:00". Each writes at most n bytes (always
 * terminated) and returns buf. */
enum i18n_time_style {
    I18N_DATE,              /* 9 déc. 2026 */
    I18N_DATE_LONG,         /* mercredi 9 décembre 2026 / Wednesday 9 December 2026 */
    I18N_TIME,              /* 14:00 */
    I18N_DATETIME,          /* 9 déc. 2026 14:00 */
    I18N_DATETIME_ZONE,     /* 9 déc. 2026 14:00 CET */
    I18N_WEEKDAY_SHORT,     /* mer. 9 / Wed 9 */
};
char *i18n_time(enum lang lang, int64_t utc, enum i18n_time_style style, char *buf, size_t n);
/* Money in integer cents: "3,00 €" / "€3.00"; negative amounts with a minus sign. */
char *i18n_money(enum lang lang, int64_t cents, char *buf, size_t n);
/* A decimal with one or two digits after the point, in the language's way ("1,5" / "1.5"). */
char *i18n_decimal(enum lang lang, int64_t hundredths, char *buf, size_t n);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "i18n.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "i18n_catalog.h"
#include "util.h"

static const char *const codes[LANG__MAX] = { "en", "fr" };

const char *i18n_code(enum lang lang)
{
    return lang < LANG__MAX ? codes[lang] : "en";
}

enum lang i18n_parse(const char *tag, enum lang fallback)
{
    if (!tag)
        return fallback;
    for (unsigned i = 0; i < LANG__MAX; i++) {
        size_t n = strlen(codes[i]);
        if (strncasecmp(tag, codes[i], n) == 0 &&
            (tag[n] == '\0' || tag[n] == '-' || tag[n] == '_' || tag[n] == '.'))
            return (enum lang)i;
    }
    return fallback;
}

/* Accept-Language: "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5" — the highest q among ours wins;
 * at equal q, the first listed. */
enum lang i18n_accept(const char *header, enum lang fallback)
{
    enum lang best = fallback;
    int best_q = -1;
    const char *p = header;

    while (p && *p) {
        char tag[32];
        size_t len = 0;
        int q = 1000;

        while (*p == ' ' || *p == ',')
            p++;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && len + 1 < sizeof(tag))
            tag[len++] = *p++;
        tag[len] = '\0';
        while (*p && *p != ',') {
            if (*p == ';') {
                const char *v = strstr(p, "q=");
                const char *end = strchr(p, ',');
                if (v && (!end || v < end)) {
                    double d = strtod(v + 2, NULL);
                    q = d < 0 ? 0 : d > 1 ? 1000 : (int)(d * 1000 + 0.5);
                }
            }
            p++;
        }
        if (len == 0 || q == 0)
            continue;
        enum lang l = i18n_parse(tag, LANG__MAX);
        if (l != LANG__MAX && q > best_q) {
            best = l;
            best_q = q;
        }
    }
    return best;
}

_Static_assert(offsetof(struct i18n_entry, msgid) == 0, "name_first_cmp() needs msgid first");

static const struct i18n_entry *lookup(enum lang lang, const char *msgid)
{
    if (lang != LANG_FR || !msgid)
        return NULL;
    return bsearch(msgid, i18n_catalog_fr, i18n_catalog_fr_count, sizeof(i18n_catalog_fr[0]),
                   name_first_cmp);
}

const char *i18n_t(enum lang lang, const char *msgid)
{
    const struct i18n_entry *e = lookup(lang, msgid);
    return e && e->msgstr[0] && *e->msgstr[0] ? e->msgstr[0] : msgid;
}

const char *i18n_nt(enum lang lang, const char *singular, const char *plural, int64_t n)
{
    const struct i18n_entry *e = lookup(lang, singular);

    if (lang == LANG_FR) {
        int form = n > 1 ? 1 : 0;      /* French: 0 and 1 are singular */
        if (e && e->msgstr[form] && *e->msgstr[form])
            return e->msgstr[form];
        return form ? plural : singular;
    }
    return n == 1 ? singular : plural;
}

/* A text cut to fit must not end in half a character: drop an incomplete UTF-8 sequence
 * at the end. */
static char *utf8_trim(char *buf)
{
    size_t len = strlen(buf), start = len;
    unsigned char c;

    while (start > 0 && ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
        start--;
    if (start == 0)
        return buf;
    c = (unsigned char)buf[start - 1];
    size_t want = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    if (len - (start - 1) < want)
        buf[start - 1] = '\0';
    return buf;
}

/* ---- dates ---- */

static const char *const months_short[LANG__MAX][12] = {
    { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" },
    { "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
      "nov.", "déc." },
};
static const char *const months_long[LANG__MAX][12] = {
    { "January", "February", "March", "April", "May", "June", "July", "August", "September",
      "October", "November", "December" },
    { "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
      "octobre", "novembre", "décembre" },
};
static const char *const days_short[LANG__MAX][7] = {
    { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" },
    { "dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam." },
};
static const char *const days_long[LANG__MAX][7] = {
    { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" },
    { "dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi" },
};

/* localtime_r() walks the zone's rules at every call (about 4,700 instructions here), and
 * a week's page shows thousands of times that fall in a few hundred quarter-hours. So each
 * thread keeps the local time of the quarter-hours it converted last, for the TZ it had:
 * where the zone's offset is a whole number of quarter-hours and the same at both ends of
 * the (UTC) quarter-hour, a time inside it is its start plus the seconds. A quarter-hour
 * whose offset changes inside it is never kept. */
#define QUARTER 900
#define LOCAL_SLOTS 32

static __thread struct {
    char tz[64];
    int64_t quarter[LOCAL_SLOTS];       /* UTC quarter-hour + 1 (0: empty slot) */
    struct tm start[LOCAL_SLOTS];       /* the local time when it begins */
} local_cache;

static bool local_time(int64_t utc, struct tm *ret)
{
    const char *tz = getenv("TZ");
    int64_t q = utc >= 0 ? utc / QUARTER : -((-utc + QUARTER - 1) / QUARTER);
    unsigned slot = (unsigned)((uint64_t)q % LOCAL_SLOTS);
    time_t t = (time_t)utc, b = (time_t)(q * QUARTER), e = b + QUARTER - 1;
    struct tm end;

    if (!tz)
        tz = "";
    if (strlen(tz) >= sizeof(local_cache.tz))
        return localtime_r(&t, ret) != NULL;
    if (strcmp(local_cache.tz, tz) != 0) {
        memset(&local_cache, 0, sizeof(local_cache));
        strcpy(local_cache.tz, tz);
    }
    if (local_cache.quarter[slot] != q + 1) {
        struct tm *start = &local_cache.start[slot];

        local_cache.quarter[slot] = 0;
        if (!localtime_r(&b, start) || !localtime_r(&e, &end) ||
            end.tm_gmtoff != start->tm_gmtoff || end.tm_isdst != start->tm_isdst ||
            start->tm_gmtoff % QUARTER != 0 ||
            start->tm_sec != 0)                 /* a zone with leap seconds */
            return localtime_r(&t, ret) != NULL;
        local_cache.quarter[slot] = q + 1;
    }
    *ret = local_cache.start[slot];             /* at :00, :15, :30 or :45, 0 seconds */
    ret->tm_min += (int)((utc - q * QUARTER) / 60);
    ret->tm_sec = (int)((utc - q * QUARTER) % 60);
    return true;
}

char *i18n_time(enum lang lang, int64_t utc, enum i18n_time_style style, char *buf, size_t n)
{
    struct tm tm;

    if (lang >= LANG__MAX)
        lang = LANG_EN;
    if (n == 0)
        return buf;
    if (!local_time(utc, &tm)) {
        snprintf(buf, n, "?");
        return buf;
    }
    switch (style) {
    case I18N_DATE:
        snprintf(buf, n, "%d %s %d", tm.tm_mday, months_short[lang][tm.tm_mon], tm.tm_year + 1900);
        break;
    case I18N_DATE_LONG:
        snprintf(buf, n, "%s %d %s %d", days_long[lang][tm.tm_wday], tm.tm_mday,
                 months_long[lang][tm.tm_mon], tm.tm_year + 1900);
        break;
    case I18N_TIME:         /* by hand: a week's page writes thousands (snprintf: ~1k insns) */
        if (n >= 6 && tm.tm_hour >= 0 && tm.tm_hour < 100 && tm.tm_min >= 0 && tm.tm_min < 60) {
            buf[0] = (char)('0' + tm.tm_hour / 10);
            buf[1] = (char)('0' + tm.tm_hour % 10);
            buf[2] = ':';
            buf[3] = (char)('0' + tm.tm_min / 10);
            buf[4] = (char)('0' + tm.tm_min % 10);
            buf[5] = '\0';
        } else {
            snprintf(buf, n, "%02d:%02d", tm.tm_hour, tm.tm_min);
        }
        break;
    case I18N_DATETIME:
        snprintf(buf, n, "%d %s %d %02d:%02d", tm.tm_mday, months_short[lang][tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
        break;
    case I18N_DATETIME_ZONE:
        snprintf(buf, n, "%d %s %d %02d:%02d %s", tm.tm_mday, months_short[lang][tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_zone ? tm.tm_zone : "");
        break;
    case I18N_WEEKDAY_SHORT:
        snprintf(buf, n, "%s %d", days_short[lang][tm.tm_wday], tm.tm_mday);
        break;
    }
    return utf8_trim(buf);
}

/* ---- amounts ---- */

char *i18n_money(enum lang lang, int64_t cents, char *buf, size_t n)
{
    uint64_t a = cents < 0 ? (uint64_t)(-(cents + 1)) + 1 : (uint64_t)cents;
    const char *sign = cents < 0 ? "-" : "";

    if (lang == LANG_FR)
        /* A narrow no-break space before the euro sign, as French typography wants. */
        snprintf(buf, n, "%s%" PRIu64 ",%02u\u202f€", sign, a / 100, (unsigned)(a % 100));
    else
        snprintf(buf, n, "%s€%" PRIu64 ".%02u", sign, a / 100, (unsigned)(a % 100));
    return utf8_trim(buf);
}

char *i18n_decimal(enum lang lang, int64_t hundredths, char *buf, size_t n)
{
    uint64_t a = hundredths < 0 ? (uint64_t)(-(hundredths + 1)) + 1 : (uint64_t)hundredths;
    const char *sign = hundredths < 0 ? "-" : "";
    char point = lang == LANG_FR ? ',' : '.';

    if (a % 100 == 0)
        snprintf(buf, n, "%s%" PRIu64, sign, a / 100);
    else if (a % 10 == 0)
        snprintf(buf, n, "%s%" PRIu64 "%c%u", sign, a / 100, point, (unsigned)(a % 100 / 10));
    else
        snprintf(buf, n, "%s%" PRIu64 "%c%02u", sign, a / 100, point, (unsigned)(a % 100));
    return buf;
}

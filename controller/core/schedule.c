/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const day_names[7] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

static int parse_day(const char **p)
{
    for (int d = 0; d < 7; d++) {
        if (strncasecmp(*p, day_names[d], 3) == 0) {
            *p += 3;
            return d;
        }
    }
    return -1;
}

static int parse_days(const char **p, uint8_t *ret_days)
{
    static const struct { const char *word; uint8_t days; } words[] = {
        { "daily", 0x7f }, { "weekdays", 0x3e }, { "weekends", 0x41 },
    };
    uint8_t days = 0;

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i].word);
        if (strncasecmp(*p, words[i].word, n) == 0 && (*p)[n] == ' ') {
            *p += n;
            *ret_days = words[i].days;
            return 0;
        }
    }
    for (;;) {
        int from = parse_day(p), to;
        if (from < 0)
            return -EINVAL;
        to = from;
        if (**p == '-') {
            (*p)++;
            to = parse_day(p);
            if (to < 0)
                return -EINVAL;
        }
        /* Ranges wrap around the week: "Sat-Mon" is Sat, Sun, Mon. */
        for (int d = from;; d = (d + 1) % 7) {
            days |= (uint8_t)(1u << d);
            if (d == to)
                break;
        }
        if (**p != '+')
            break;
        (*p)++;
    }
    *ret_days = days;
    return 0;
}

static int parse_hhmm(const char **p, bool allow_24, uint16_t *ret)
{
    const char *s = *p;
    int h, m;

    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -EINVAL;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
        return -EINVAL;
    *p += 5;
    *ret = (uint16_t)(h * 60 + m);
    return 0;
}

int schedule_parse(const char *text, struct schedule *ret, const char **ret_error)
{
    struct schedule s = { 0 };
    const char *p = text;
    const char *err = NULL;

    if (strlen(text) >= SCHEDULE_MAX_TEXT) {
        err = "schedule too long";
        goto fail;
    }
    while (*p == ' ')
        p++;
    if (strcasecmp(p, "always") == 0) {
        s.always = true;
        *ret = s;
        return 0;
    }
    if (strcasecmp(p, "never") == 0) {
        *ret = s;
        return 0;
    }
    for (;;) {
        struct schedule_rule r;
        while (*p == ' ')
            p++;
        if (s.n_rules == SCHEDULE_MAX_RULES) {
            err = "too many windows (at most 16)";
            goto fail;
        }
        if (parse_days(&p, &r.days) < 0) {
            err = "expected days such as Mon, Mon-Fri, Sat+Sun, daily, weekdays or weekends";
            goto fail;
        }
        if (*p != ' ') {
            err = "expected a space between days and hours";
            goto fail;
        }
        while (*p == ' ')
            p++;
        if (parse_hhmm(&p, false, &r.start) < 0 || *p++ != '-' ||
            parse_hhmm(&p, true, &r.end) < 0) {
            err = "expected hours as HH:MM-HH:MM (00:00 to 24:00)";
            goto fail;
        }
        if (r.start == r.end) {
            err = "a window must not start and end at the same time";
            goto fail;
        }
        s.rules[s.n_rules++] = r;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (*p != ',') {
            err = "expected ',' between windows";
            goto fail;
        }
        p++;
    }
    *ret = s;
    return 0;
fail:
    if (ret_error)
        *ret_error = err;
    return -EINVAL;
}

bool schedule_contains(const struct schedule *s, const struct local_time *lt)
{
    if (s->always)
        return true;
    for (unsigned i = 0; i < s->n_rules; i++) {
        const struct schedule_rule *r = &s->rules[i];
        int yesterday = (lt->wday + 6) % 7;
        if (r->start < r->end) {
            if ((r->days & (1u << lt->wday)) && lt->minute >= r->start && lt->minute < r->end)
                return true;
        } else {
            /* Overnight: from start to midnight on the day, then to end on the next day. */
            if ((r->days & (1u << lt->wday)) && lt->minute >= r->start)
                return true;
            if ((r->days & (1u << yesterday)) && lt->minute < r->end)
                return true;
        }
    }
    return false;
}

void local_time_at(int64_t utc, struct local_time *ret)
{
    struct tm tm;
    time_t t = (time_t)utc;
    localtime_r(&t, &tm);
    ret->wday = tm.tm_wday;
    ret->minute = tm.tm_hour * 60 + tm.tm_min;
}

static long utc_offset_at(int64_t utc)
{
    struct tm tm;
    time_t t = (time_t)utc;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

int64_t schedule_window_end(const struct schedule *s, int64_t utc, int64_t horizon)
{
    struct local_time lt;
    int64_t t = utc - utc % 60, limit = utc + horizon;

    local_time_at(utc, &lt);
    if (!schedule_contains(s, &lt))
        return utc;
    if (s->always)
        return limit;
    /* Jump to the end of the latest window containing t, then look again: adjacent and
     * overlapping windows chain. Each jump is made in real minutes and checked against the
     * real local time, so a DST change inside a window costs one more loop. */
    while (t < limit) {
        int best = 0;   /* wall-clock minutes from t to the end of the containing window */
        local_time_at(t, &lt);
        for (unsigned i = 0; i < s->n_rules; i++) {
            const struct schedule_rule *r = &s->rules[i];
            int yesterday = (lt.wday + 6) % 7, left = 0;
            if (r->start < r->end) {
                if ((r->days & (1u << lt.wday)) && lt.minute >= r->start && lt.minute < r->end)
                    left = r->end - lt.minute;
            } else {
                if ((r->days & (1u << lt.wday)) && lt.minute >= r->start)
                    left = 1440 - lt.minute + r->end;
                else if ((r->days & (1u << yesterday)) && lt.minute < r->end)
                    left = r->end - lt.minute;
            }
            if (left > best)
                best = left;
        }
        if (best == 0)
            return t;       /* not inside any window at t: the window ended here */
        /* Without a change of UTC offset, wall minutes are real minutes. Not mktime() of
         * the wall-clock end: on the fall-back night 02:30 happens twice and glibc picks
         * either, so a window ending at 02:00 would close an hour late. */
        int64_t next = t + (int64_t)best * 60;
        if (utc_offset_at(next) != utc_offset_at(t)) {
            /* The wall clock skips or repeats an hour in between (two nights a year).
             * Springing forward, the wall end comes sooner than next, or is skipped
             * altogether: the first minute outside the schedule is the end. Falling back,
             * next is still inside (the wall clock went back) and the loop goes on from
             * there. */
            int64_t stop = next < limit ? next : limit;
            for (int64_t u = t + 60; u < stop; u += 60) {
                local_time_at(u, &lt);
                if (!schedule_contains(s, &lt))
                    return u;
            }
        }
        t = next;
    }
    return limit;
}

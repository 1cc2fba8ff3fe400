/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_schedule: schedule_parse() on arbitrary text, then what is built on it.
 *
 * Schedules come from the config (free_entry) and from the control socket (plan.add
 * "hours", machine opening hours), where any local user with access to the socket writes
 * them. A parse either fails with -EINVAL, a message and *ret untouched, or yields windows
 * that keep the promises of schedule.h: schedule_contains() honours every window's edges,
 * and schedule_window_end() finds where the window around an instant ends, also across
 * the daylight-saving nights of Europe/Paris. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "control.h"
#include "fuzz.h"
#include "schedule.h"

/* The longest carrier of a schedule is a control request line. */
#define FUZZ_SCHEDULE_MAX CONTROL_REQUEST_MAX

static bool contains_at(const struct schedule *s, int64_t utc)
{
    struct local_time lt;
    local_time_at(utc, &lt);
    return schedule_contains(s, &lt);
}

/* What schedule.h promises of schedule_window_end(s, utc, horizon). */
static void check_window_end(const struct schedule *s, int64_t utc, int64_t horizon)
{
    int64_t end = schedule_window_end(s, utc, horizon);

    if (!contains_at(s, utc)) {
        FUZZ_CHECK(end == utc);
        return;
    }
    FUZZ_CHECK(end > utc && end <= utc + horizon);
    if (end < utc + horizon) {
        FUZZ_CHECK(end % 60 == 0);                          /* to the minute */
        FUZZ_CHECK_MSG(!contains_at(s, end), "the window has not ended at the end returned");
    }
    /* No gap in between: the window holds from utc up to its end. */
    for (int k = 0; k < 16; k++) {
        int64_t t = utc + (end - utc) * k / 16;
        FUZZ_CHECK_MSG(contains_at(s, t), "outside the schedule before the end returned");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct schedule s, untouched;
    const char *err = NULL;
    char *text;
    int r;

    if (size > FUZZ_SCHEDULE_MAX)
        return 0;
    if (!getenv("TZ") || strcmp(getenv("TZ"), "Europe/Paris") != 0) {
        setenv("TZ", "Europe/Paris", 1);    /* the daemon sets the site's zone the same way */
        tzset();
    }
    text = fuzz_cstring(data, size);
    memset(&s, 0x5A, sizeof(s));
    untouched = s;
    r = schedule_parse(text, &s, &err);
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(err != NULL && err[0] != '\0');
        FUZZ_CHECK(memcmp(&s, &untouched, sizeof(s)) == 0);
        /* A NULL ret_error is allowed. */
        FUZZ_CHECK(schedule_parse(text, &s, NULL) == -EINVAL);
        free(text);
        return 0;
    }
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(strlen(text) < SCHEDULE_MAX_TEXT);
    fuzz_check_schedule(&s);

    /* Parsing is a function of the text. */
    struct schedule again;
    FUZZ_CHECK(schedule_parse(text, &again, NULL) == 0);
    FUZZ_CHECK(fuzz_schedule_equal(&s, &again));

    /* A few local times, every day of the week, including midnight and the last minute. */
    static const int minutes[] = { 0, 1, 59, 479, 480, 719, 720, 1199, 1200, 1438, 1439 };
    for (int d = 0; d < 7; d++)
        for (size_t i = 0; i < sizeof(minutes) / sizeof(minutes[0]); i++) {
            struct local_time lt = { .wday = d, .minute = minutes[i] };
            (void)schedule_contains(&s, &lt);
        }

    /* Window ends, from around each window's start and last minute, in an ordinary week
     * and in the weeks of the 2026 DST changes in Paris. The instants are fixed UTC times
     * (local Sunday 00:00 plus real minutes, and an hour earlier, which is the same wall
     * time once the clocks have gone forward), not mktime() of a wall time: glibc resolves
     * an ambiguous wall time according to its previous calls, and a harness must not
     * depend on its history. */
    static const int64_t sundays[] = {
        1795302000,     /* 2026-11-22 00:00 CET */
        1774738800,     /* 2026-03-29 00:00 CET, clocks go forward at 02:00 */
        1792879200,     /* 2026-10-25 00:00 CEST, clocks go back at 03:00 */
    };
    for (size_t w = 0; w < sizeof(sundays) / sizeof(sundays[0]); w++) {
        check_window_end(&s, sundays[w] + 150 * 60, 7 * 86400);
        for (unsigned i = 0; i < s.n_rules && i < 4; i++) {
            const struct schedule_rule *rule = &s.rules[i];
            int d = 0;
            while (d < 6 && !(rule->days & (1u << d)))
                d++;
            int64_t start = sundays[w] + ((int64_t)d * 1440 + rule->start) * 60;
            int64_t last = sundays[w] + ((int64_t)d * 1440 + rule->end - 1) * 60;
            if (rule->end <= rule->start)
                last += 1440 * 60;                          /* ends the next day */
            for (int64_t shift = 0; shift >= -3600; shift -= 3600) {
                check_window_end(&s, start + shift, 7 * 86400);
                check_window_end(&s, last + shift, 7 * 86400);
            }
            check_window_end(&s, start + 59, 3600);
        }
    }
    free(text);
    return 0;
}

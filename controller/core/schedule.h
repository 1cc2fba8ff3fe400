/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* schedule: weekly time windows in the site's local time ("Mon-Fri 08:00-20:00, Sat 10:00-13:00").
 *
 * Windows are evaluated on the local wall clock, so they follow daylight saving changes:
 * "08:00" means 08:00 on the wall, whatever the UTC offset that day. On the spring-forward
 * night the skipped hour simply never happens; on the fall-back night the repeated hour
 * happens twice and matches twice.
 *
 * Grammar:  schedule := "always" | "never" | rule { "," rule }
 *           rule     := days " " HH:MM "-" HH:MM
 *           days     := "daily" | "weekdays" | "weekends" | day [ "-" day ] { "+" day [ "-" day ] }
 *           day      := Mon | Tue | Wed | Thu | Fri | Sat | Sun
 * An end of 24:00 means midnight; an end before the start runs past midnight into the next
 * day ("Fri 22:00-02:00" covers Friday night until Saturday 02:00). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHEDULE_MAX_RULES 16
#define SCHEDULE_MAX_TEXT 256

struct schedule_rule {
    uint8_t days;       /* bit d set: the window starts on weekday d (0 = Sunday, as tm_wday) */
    uint16_t start;     /* minutes after local midnight, 0..1439 */
    uint16_t end;       /* 1..1440; end <= start means the window ends the next day */
};

struct schedule {
    bool always;
    uint8_t n_rules;
    struct schedule_rule rules[SCHEDULE_MAX_RULES];
};

/* Local wall-clock time at an instant, in the process's time zone (TZ). */
struct local_time {
    int wday;           /* 0 = Sunday */
    int minute;         /* minutes since local midnight, 0..1439 */
};

/* Parse text into *ret. On error returns -EINVAL and points *ret_error (if not NULL) at a
 * static message; *ret is then untouched. */
int schedule_parse(const char *text, struct schedule *ret, const char **ret_error);

bool schedule_contains(const struct schedule *s, const struct local_time *lt);

/* Convert a UTC instant to local wall time using the current TZ. */
void local_time_at(int64_t utc, struct local_time *ret);

/* If utc is inside s, the UTC instant (to the minute) at which the window containing it
 * ends, following adjacent windows ("Mon 08:00-12:00, Mon 12:00-18:00" ends at 18:00) and
 * daylight-saving changes; at most horizon seconds ahead (returned if s stays open that
 * long, as "always" does). If utc is outside s, returns utc. */
int64_t schedule_window_end(const struct schedule *s, int64_t utc, int64_t horizon);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Table-driven tests of the real booking rules (booking.c) under TZ=Europe/Paris.
 *
 * Every row of the booking_check() table is one request as the booking service builds it
 * from the store, and the error a member should get. Times in rows are written on the
 * site's wall clock (LT) unless a row needs an instant the wall clock cannot name (the
 * repeated hour of the fall-back night), which it writes in UTC (UT). The helpers that turn
 * rows into instants are themselves checked against hand-computed UTC values, so the rows
 * mean what they say. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "booking.h"
#include "schedule.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- instants ---- */

struct when {
    int year, month, day, hour, minute, second;
    bool utc;               /* false: local wall clock (Europe/Paris) */
};

#define LT(y, mo, d, h, mi) { y, mo, d, h, mi, 0, false }
#define LTS(y, mo, d, h, mi, s) { y, mo, d, h, mi, s, false }
#define UT(y, mo, d, h, mi) { y, mo, d, h, mi, 0, true }
#define UTS(y, mo, d, h, mi, s) { y, mo, d, h, mi, s, true }

static int64_t utc_of(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
        .tm_hour = h, .tm_min = mi, .tm_sec = s,
    };
    return (int64_t)timegm(&tm);
}

/* A row's instant. Local times must exist and be unambiguous: a row naming 02:30 on the
 * spring-forward day (which never happens) is a mistake in the table, caught here. */
static int64_t instant(const struct when *w)
{
    struct tm tm = {
        .tm_year = w->year - 1900, .tm_mon = w->month - 1, .tm_mday = w->day,
        .tm_hour = w->hour, .tm_min = w->minute, .tm_sec = w->second, .tm_isdst = -1,
    };
    struct tm back;
    time_t t;

    if (w->utc)
        return utc_of(w->year, w->month, w->day, w->hour, w->minute, w->second);
    t = mktime(&tm);
    localtime_r(&t, &back);
    if (back.tm_hour != w->hour || back.tm_min != w->minute || back.tm_mday != w->day)
        fail_msg("local time %04d-%02d-%02d %02d:%02d does not exist in Europe/Paris", w->year,
                 w->month, w->day, w->hour, w->minute);
    return (int64_t)t;
}

/* ---- rules ---- */

struct rules_spec {
    int64_t slot, min, max, window_days, quota_day, quota_week, cancel_deadline;
    const char *hours;      /* NULL: no opening hours */
};

static const struct rules_spec R_STD = { 30, 30, 240, 14, 0, 0, 60, NULL };
static const struct rules_spec R_ALWAYS = { 30, 30, 240, 14, 0, 0, 60, "always" };
static const struct rules_spec R_MINUTE = { 1, 1, 240, 14, 0, 0, 60, NULL };
static const struct rules_spec R_SLOT0 = { 0, 1, 240, 14, 0, 0, 60, NULL };
static const struct rules_spec R_SLOT90 = { 90, 30, 240, 14, 0, 0, 60, NULL };
static const struct rules_spec R_SLOT180 = { 180, 30, 480, 14, 0, 0, 60, NULL };
static const struct rules_spec R_MIN60 = { 30, 60, 120, 14, 0, 0, 60, NULL };
static const struct rules_spec R_MAX180 = { 30, 30, 180, 14, 0, 0, 60, NULL };
static const struct rules_spec R_NO_MAX = { 30, 30, 0, 14, 0, 0, 60, NULL };
static const struct rules_spec R_MAX_20000 = { 30, 30, 20000, 14, 0, 0, 60, NULL };
static const struct rules_spec R_QUOTA = { 30, 30, 240, 14, 120, 300, 60, NULL };
static const struct rules_spec R_HOURS = { 30, 30, 240, 14, 0, 0, 60,
                                           "Mon-Fri 08:00-20:00, Sat 10:00-13:00" };
static const struct rules_spec R_LUNCH = { 30, 30, 480, 14, 0, 0, 60,
                                           "Mon-Fri 08:00-12:00, Mon-Fri 14:00-20:00" };

/* ---- other bookings the store would report as intersecting ---- */

struct ref_spec {
    int64_t id, member_id;
    const char *member;
    struct when start, end;
};

/* Tuesday 6 January 2026 (CET), 14:00-15:00 on the wall clock. */
static const struct ref_spec OV_ALICE[] = {
    { 42, 7, "Alice Martin", LT(2026, 1, 6, 14, 0), LT(2026, 1, 6, 15, 0) },
};
/* Monday 30 March 2026, the day after spring-forward (CEST = UTC+2). */
static const struct ref_spec OV_ALICE_SUMMER[] = {
    { 43, 7, "Alice Martin", LT(2026, 3, 30, 14, 0), LT(2026, 3, 30, 15, 0) },
};
/* Bob's booking does not intersect the rows that use this list; Alice's does. */
static const struct ref_spec OV_BOB_ALICE[] = {
    { 41, 8, "Bob", LT(2026, 1, 6, 10, 0), LT(2026, 1, 6, 11, 0) },
    { 42, 7, "Alice Martin", LT(2026, 1, 6, 14, 0), LT(2026, 1, 6, 15, 0) },
};

#define OV(a) a, N_ELEMS(a)
#define NO_OV NULL, 0

/* ---- facts about the member ---- */
enum { F_NONE = 0, F_OUT_OF_ORDER = 1, F_INACTIVE = 2, F_UNQUALIFIED = 4 };

struct check_case {
    const char *what;
    struct when now, start, end;
    const struct rules_spec *rules;
    unsigned flags;
    const struct ref_spec *ov;
    size_t n_ov;
    int64_t day_minutes, week_minutes;
    enum booking_error expect;
    const char *message;        /* NULL: not checked (but never empty for an error) */
};

/* Monday 5 January 2026, 08:00 CET: "now" for most rows. Tuesday 6 January is "tomorrow". */
#define NOW LT(2026, 1, 5, 8, 0)
#define TUE(h, m) LT(2026, 1, 6, h, m)
#define SAT(h, m) LT(2026, 1, 10, h, m)
#define SUN(h, m) LT(2026, 1, 11, h, m)
/* A few days before the 2026 DST changes (29 March, 25 October). */
#define NOW_SPRING LT(2026, 3, 20, 8, 0)
#define NOW_FALL LT(2026, 10, 20, 8, 0)
#define SPRING(h, m) LT(2026, 3, 29, h, m)
#define FALL_UT(h, m) UT(2026, 10, 25, h, m)

#define OK BOOKING_OK

static const struct check_case cases[] = {
    /* ---- the plain case ---- */
    { "one hour tomorrow", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_NONE, NO_OV, 0, 0, OK, "" },
    { "opening hours 'always'", NOW, TUE(14, 0), TUE(15, 0), &R_ALWAYS, F_NONE, NO_OV, 0, 0,
      OK, "" },
    { "starting exactly now", NOW, LT(2026, 1, 5, 8, 0), LT(2026, 1, 5, 8, 30), &R_STD, F_NONE,
      NO_OV, 0, 0, OK, "" },

    /* ---- bad times: checked before anything else ---- */
    { "end == start", NOW, TUE(14, 0), TUE(14, 0), &R_STD, F_NONE, NO_OV, 0, 0,
      BOOKING_BAD_TIMES, "a booking must end after it starts, on whole minutes" },
    { "end before start", NOW, TUE(15, 0), TUE(14, 0), &R_STD, F_NONE, NO_OV, 0, 0,
      BOOKING_BAD_TIMES, NULL },
    { "start not on a whole minute", NOW, LTS(2026, 1, 6, 14, 0, 30), TUE(15, 0), &R_MINUTE,
      F_NONE, NO_OV, 0, 0, BOOKING_BAD_TIMES, NULL },
    { "end not on a whole minute", NOW, TUE(14, 0), LTS(2026, 1, 6, 15, 0, 1), &R_MINUTE,
      F_NONE, NO_OV, 0, 0, BOOKING_BAD_TIMES, NULL },
    { "bad times beat every fact", NOW, TUE(15, 0), TUE(14, 0), &R_STD,
      F_OUT_OF_ORDER | F_INACTIVE | F_UNQUALIFIED, NO_OV, 0, 0, BOOKING_BAD_TIMES, NULL },

    /* ---- the machine and the member ---- */
    { "machine out of order", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_OUT_OF_ORDER, NO_OV, 0, 0,
      BOOKING_OUT_OF_ORDER, "the machine is out of order" },
    { "out of order beats inactive member", NOW, TUE(14, 0), TUE(15, 0), &R_STD,
      F_OUT_OF_ORDER | F_INACTIVE, NO_OV, 0, 0, BOOKING_OUT_OF_ORDER, NULL },
    { "member inactive", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_INACTIVE, NO_OV, 0, 0,
      BOOKING_MEMBER_INACTIVE, NULL },
    { "inactive beats unqualified", NOW, TUE(14, 0), TUE(15, 0), &R_STD,
      F_INACTIVE | F_UNQUALIFIED, NO_OV, 0, 0, BOOKING_MEMBER_INACTIVE, NULL },
    { "not qualified", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_UNQUALIFIED, NO_OV, 0, 0,
      BOOKING_NOT_QUALIFIED, NULL },
    { "unqualified beats in the past", NOW, LT(2026, 1, 5, 7, 0), LT(2026, 1, 5, 7, 30), &R_STD,
      F_UNQUALIFIED, NO_OV, 0, 0, BOOKING_NOT_QUALIFIED, NULL },

    /* ---- when: past and window ---- */
    { "one slot in the past", NOW, LT(2026, 1, 5, 7, 30), LT(2026, 1, 5, 8, 30), &R_STD,
      F_NONE, NO_OV, 0, 0, BOOKING_IN_PAST, "the booking would start in the past" },
    { "one minute in the past", NOW, LT(2026, 1, 5, 7, 59), LT(2026, 1, 5, 8, 30), &R_MINUTE,
      F_NONE, NO_OV, 0, 0, BOOKING_IN_PAST, NULL },
    { "starting exactly window_days (14) ahead", NOW, LT(2026, 1, 19, 8, 0),
      LT(2026, 1, 19, 8, 30), &R_STD, F_NONE, NO_OV, 0, 0, OK, "" },
    { "one slot beyond the window", NOW, LT(2026, 1, 19, 8, 30), LT(2026, 1, 19, 9, 0), &R_STD,
      F_NONE, NO_OV, 0, 0, BOOKING_TOO_FAR, "bookings open 14 days ahead at most" },
    { "one minute beyond the window", NOW, LT(2026, 1, 19, 8, 1), LT(2026, 1, 19, 9, 0),
      &R_MINUTE, F_NONE, NO_OV, 0, 0, BOOKING_TOO_FAR, NULL },

    /* ---- slots: on the local wall clock ---- */
    { "slot 30: 10:15 start", NOW, TUE(10, 15), TUE(11, 15), &R_STD, F_NONE, NO_OV, 0, 0,
      BOOKING_NOT_ALIGNED, "bookings start and end on 30-minute slots" },
    { "slot 30: 10:45 end", NOW, TUE(10, 0), TUE(10, 45), &R_STD, F_NONE, NO_OV, 0, 0,
      BOOKING_NOT_ALIGNED, NULL },
    { "slot 0 means any whole minute", NOW, TUE(10, 7), TUE(10, 8), &R_SLOT0, F_NONE, NO_OV, 0,
      0, OK, "" },
    /* 09:00 CET is 08:00 UTC: aligned on the wall clock (540 % 180 == 0), not in UTC. */
    { "slot 180: 09:00-12:00 CET is aligned locally", NOW, TUE(9, 0), TUE(12, 0), &R_SLOT180,
      F_NONE, NO_OV, 0, 0, OK, "" },
    { "slot 180: 10:00-13:00 CET is aligned in UTC only", NOW, TUE(10, 0), TUE(13, 0),
      &R_SLOT180, F_NONE, NO_OV, 0, 0, BOOKING_NOT_ALIGNED, NULL },
    { "spring day, slot 30: 10:15 CEST start", NOW_SPRING, SPRING(10, 15), SPRING(11, 0),
      &R_STD, F_NONE, NO_OV, 0, 0, BOOKING_NOT_ALIGNED, NULL },
    { "spring day, slot 30: 10:00-11:00 CEST", NOW_SPRING, SPRING(10, 0), SPRING(11, 0),
      &R_STD, F_NONE, NO_OV, 0, 0, OK, "" },
    /* 01:30 CET -> 03:00 CEST is 00:30 -> 01:00 UTC: wall clock 90 and 180 minutes. */
    { "spring day, slot 90: 01:30 CET to 03:00 CEST across the jump", NOW_SPRING,
      SPRING(1, 30), SPRING(3, 0), &R_SLOT90, F_NONE, NO_OV, 0, 0, OK, "" },
    /* 01:30 -> 03:00 UTC is 03:30 -> 05:00 CEST: aligned in UTC, not on the wall. */
    { "spring day, slot 90: 03:30-05:00 CEST", NOW_SPRING, UT(2026, 3, 29, 1, 30),
      UT(2026, 3, 29, 3, 0), &R_SLOT90, F_NONE, NO_OV, 0, 0, BOOKING_NOT_ALIGNED, NULL },
    { "spring day, slot 180: 09:00-12:00 CEST", NOW_SPRING, SPRING(9, 0), SPRING(12, 0),
      &R_SLOT180, F_NONE, NO_OV, 0, 0, OK, "" },
    /* 23:30 UTC Saturday is 01:30 CEST; 02:00 UTC is 03:00 CET after the fall-back. */
    { "fall day, slot 90: 01:30 CEST to 03:00 CET across the repeated hour", NOW_FALL,
      UT(2026, 10, 24, 23, 30), FALL_UT(2, 0), &R_SLOT90, F_NONE, NO_OV, 0, 0, OK, "" },
    /* 01:30 -> 03:00 UTC is 02:30 (second time) -> 04:00 CET. */
    { "fall day, slot 90: 02:30 CET (again) to 04:00 CET", NOW_FALL, FALL_UT(1, 30),
      FALL_UT(3, 0), &R_SLOT90, F_NONE, NO_OV, 0, 0, BOOKING_NOT_ALIGNED, NULL },

    /* ---- length: real minutes, not wall-clock minutes ---- */
    { "min 60: 30 minutes is too short", NOW, TUE(10, 0), TUE(10, 30), &R_MIN60, F_NONE, NO_OV,
      0, 0, BOOKING_TOO_SHORT, "a booking lasts at least 60 minutes" },
    { "min 60: exactly 60 minutes", NOW, TUE(10, 0), TUE(11, 0), &R_MIN60, F_NONE, NO_OV, 0, 0,
      OK, "" },
    { "max 240: exactly 240 minutes", NOW, TUE(10, 0), TUE(14, 0), &R_STD, F_NONE, NO_OV, 0, 0,
      OK, "" },
    { "max 240: 270 minutes is too long", NOW, TUE(10, 0), TUE(14, 30), &R_STD, F_NONE, NO_OV,
      0, 0, BOOKING_TOO_LONG, "a booking lasts at most 240 minutes" },
    { "max 120: 150 minutes is too long", NOW, TUE(10, 0), TUE(12, 30), &R_MIN60, F_NONE, NO_OV,
      0, 0, BOOKING_TOO_LONG, NULL },
    /* whatever the machine allows, no booking lasts more than a week (BOOKING_MAX_MINUTES) */
    { "no machine maximum: exactly a week", NOW, TUE(10, 0), LT(2026, 1, 13, 10, 0), &R_NO_MAX,
      F_NONE, NO_OV, 0, 0, OK, "" },
    { "no machine maximum: a week and a slot", NOW, TUE(10, 0), LT(2026, 1, 13, 10, 30),
      &R_NO_MAX, F_NONE, NO_OV, 0, 0, BOOKING_TOO_LONG, "a booking lasts at most 10080 minutes" },
    { "machine maximum above a week: a week and a slot", NOW, TUE(10, 0),
      LT(2026, 1, 13, 10, 30), &R_MAX_20000, F_NONE, NO_OV, 0, 0, BOOKING_TOO_LONG,
      "a booking lasts at most 10080 minutes" },
    { "spring day: 01:00 CET-05:00 CEST is 180 real minutes", NOW_SPRING, SPRING(1, 0),
      SPRING(5, 0), &R_MAX180, F_NONE, NO_OV, 0, 0, OK, "" },
    { "fall day: 01:00 CEST-04:00 CET is 240 real minutes", NOW_FALL, UT(2026, 10, 24, 23, 0),
      FALL_UT(3, 0), &R_MAX180, F_NONE, NO_OV, 0, 0, BOOKING_TOO_LONG, NULL },

    /* ---- opening hours (Mon-Fri 08:00-20:00, Sat 10:00-13:00) ---- */
    { "hours: Tuesday 08:00-09:00", NOW, TUE(8, 0), TUE(9, 0), &R_HOURS, F_NONE, NO_OV, 0, 0, OK,
      "" },
    { "hours: Tuesday 19:00-20:00 ends at closing", NOW, TUE(19, 0), TUE(20, 0), &R_HOURS,
      F_NONE, NO_OV, 0, 0, OK, "" },
    { "hours: Tuesday 07:30-08:30 starts before opening", NOW, TUE(7, 30), TUE(8, 30), &R_HOURS,
      F_NONE, NO_OV, 0, 0, BOOKING_OUTSIDE_HOURS,
      "the machine is closed during part of that time" },
    { "hours: Tuesday 19:30-20:30 starts inside, ends outside", NOW, TUE(19, 30), TUE(20, 30),
      &R_HOURS, F_NONE, NO_OV, 0, 0, BOOKING_OUTSIDE_HOURS, NULL },
    { "hours: Tuesday 20:00-21:00 after closing", NOW, TUE(20, 0), TUE(21, 0), &R_HOURS, F_NONE,
      NO_OV, 0, 0, BOOKING_OUTSIDE_HOURS, NULL },
    { "hours: Saturday 12:00-13:00", NOW, SAT(12, 0), SAT(13, 0), &R_HOURS, F_NONE, NO_OV, 0, 0,
      OK, "" },
    { "hours: Saturday 12:30-13:30", NOW, SAT(12, 30), SAT(13, 30), &R_HOURS, F_NONE, NO_OV, 0,
      0, BOOKING_OUTSIDE_HOURS, NULL },
    { "hours: Sunday is closed", NOW, SUN(10, 0), SUN(11, 0), &R_HOURS, F_NONE, NO_OV, 0, 0,
      BOOKING_OUTSIDE_HOURS, NULL },
    { "hours: across the lunch break", NOW, TUE(11, 0), TUE(15, 0), &R_LUNCH, F_NONE, NO_OV, 0,
      0, BOOKING_OUTSIDE_HOURS, NULL },
    { "hours: afternoon after the lunch break", NOW, TUE(14, 0), TUE(18, 0), &R_LUNCH, F_NONE,
      NO_OV, 0, 0, OK, "" },
    { "hours are checked before overlaps", NOW, TUE(19, 30), TUE(20, 30), &R_HOURS, F_NONE,
      OV(OV_ALICE), 0, 0, BOOKING_OUTSIDE_HOURS, NULL },

    /* ---- overlaps: [start, end) is half-open (Alice: booking 42, Tuesday 14:00-15:00) ---- */
    { "ends exactly when Alice starts", NOW, TUE(13, 0), TUE(14, 0), &R_STD, F_NONE,
      OV(OV_ALICE), 0, 0, OK, "" },
    { "starts exactly when Alice ends", NOW, TUE(15, 0), TUE(16, 0), &R_STD, F_NONE,
      OV(OV_ALICE), 0, 0, OK, "" },
    { "same slot as Alice", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_NONE, OV(OV_ALICE), 0, 0,
      BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "half an hour into Alice's", NOW, TUE(13, 30), TUE(14, 30), &R_STD, F_NONE, OV(OV_ALICE),
      0, 0, BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "around Alice's", NOW, TUE(12, 0), TUE(16, 0), &R_STD, F_NONE, OV(OV_ALICE), 0, 0,
      BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "one minute into Alice's start", NOW, TUE(13, 0), TUE(14, 1), &R_MINUTE, F_NONE,
      OV(OV_ALICE), 0, 0, BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "one minute before Alice's end", NOW, TUE(14, 59), TUE(16, 0), &R_MINUTE, F_NONE,
      OV(OV_ALICE), 0, 0, BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "minute slots, back to back", NOW, TUE(13, 1), TUE(14, 0), &R_MINUTE, F_NONE,
      OV(OV_ALICE), 0, 0, OK, "" },
    { "the one that really intersects is named", NOW, TUE(11, 0), TUE(14, 30), &R_STD, F_NONE,
      OV(OV_BOB_ALICE), 0, 0, BOOKING_OVERLAP, "overlaps booking 42 by Alice Martin 14:00–15:00" },
    { "summer time: the message shows CEST wall-clock times", LT(2026, 3, 25, 8, 0),
      LT(2026, 3, 30, 14, 30), LT(2026, 3, 30, 15, 30), &R_STD, F_NONE, OV(OV_ALICE_SUMMER), 0,
      0, BOOKING_OVERLAP, "overlaps booking 43 by Alice Martin 14:00–15:00" },
    { "overlap is checked before quotas", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE,
      OV(OV_ALICE), 1000, 1000, BOOKING_OVERLAP, NULL },

    /* ---- quotas: day 120, week 300 minutes; this booking is 60 ---- */
    { "exactly at the day quota", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE, NO_OV, 60, 60,
      OK, "" },
    { "one slot over the day quota", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE, NO_OV, 90,
      90, BOOKING_QUOTA_DAY,
      "over the daily quota of 120 minutes (90 already booked that day)" },
    { "alone over the day quota", NOW, TUE(10, 0), TUE(12, 30), &R_QUOTA, F_NONE, NO_OV, 0, 0,
      BOOKING_QUOTA_DAY, NULL },
    { "exactly at the week quota", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE, NO_OV, 0, 240,
      OK, "" },
    { "one slot over the week quota", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE, NO_OV, 0,
      270, BOOKING_QUOTA_WEEK,
      "over the weekly quota of 300 minutes (270 already booked that week)" },
    { "day quota is checked before week quota", NOW, TUE(14, 0), TUE(15, 0), &R_QUOTA, F_NONE,
      NO_OV, 90, 270, BOOKING_QUOTA_DAY, NULL },
    { "quota 0 means none", NOW, TUE(14, 0), TUE(15, 0), &R_STD, F_NONE, NO_OV, 100000, 100000,
      OK, "" },
};

struct built {
    struct booking_rules rules;
    struct schedule hours;
    struct booking_ref refs[4];
    struct booking_request req;
};

static void build(const struct check_case *c, struct built *b)
{
    const struct rules_spec *r = c->rules;
    const char *err = NULL;

    memset(b, 0, sizeof(*b));
    b->rules = (struct booking_rules){
        .slot_minutes = r->slot, .min_minutes = r->min, .max_minutes = r->max,
        .window_days = r->window_days, .quota_day_minutes = r->quota_day,
        .quota_week_minutes = r->quota_week, .cancel_deadline_minutes = r->cancel_deadline,
    };
    if (r->hours) {
        if (schedule_parse(r->hours, &b->hours, &err) != 0)
            fail_msg("'%s': hours '%s' do not parse: %s", c->what, r->hours, err ? err : "?");
        b->rules.hours = &b->hours;
    }
    assert_true(c->n_ov <= N_ELEMS(b->refs));
    for (size_t i = 0; i < c->n_ov; i++) {
        b->refs[i].id = c->ov[i].id;
        b->refs[i].member_id = c->ov[i].member_id;
        snprintf(b->refs[i].member, sizeof(b->refs[i].member), "%s", c->ov[i].member);
        b->refs[i].start = instant(&c->ov[i].start);
        b->refs[i].end = instant(&c->ov[i].end);
    }
    b->req = (struct booking_request){
        .now = instant(&c->now),
        .start = instant(&c->start),
        .end = instant(&c->end),
        .rules = &b->rules,
        .out_of_order = c->flags & F_OUT_OF_ORDER,
        .member_active = !(c->flags & F_INACTIVE),
        .qualified = !(c->flags & F_UNQUALIFIED),
        .overlapping = c->n_ov ? b->refs : NULL,
        .n_overlapping = c->n_ov,
        .member_day_minutes = c->day_minutes,
        .member_week_minutes = c->week_minutes,
    };
}

static void test_check_table(void **state)
{
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const struct check_case *c = &cases[i];
        struct built b;
        struct booking_verdict v;

        build(c, &b);
        v = booking_check(&b.req);
        if (v.error != c->expect) {
            print_error("case %zu '%s': expected %s, got %s (\"%s\")\n", i, c->what,
                        booking_error_to_string(c->expect), booking_error_to_string(v.error),
                        v.message);
            failures++;
            continue;
        }
        if (memchr(v.message, '\0', sizeof(v.message)) == NULL) {
            print_error("case %zu '%s': message not terminated\n", i, c->what);
            failures++;
            continue;
        }
        if (c->message && strcmp(v.message, c->message) != 0) {
            print_error("case %zu '%s': expected message \"%s\", got \"%s\"\n", i, c->what,
                        c->message, v.message);
            failures++;
        }
        if ((v.error == BOOKING_OK) != (v.message[0] == '\0')) {
            print_error("case %zu '%s': an error needs a message and OK none: \"%s\"\n", i,
                        c->what, v.message);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Opening hours need not fall on slot boundaries (machine.set accepts slot 30 with hours
 * ending at 17:45): a booking that runs past closing, or across a closed gap shorter than a
 * slot, is outside the hours all the same. */
static void test_check_hours_between_slot_boundaries(void **state)
{
    static const struct rules_spec closes_1745 = { 30, 30, 240, 14, 0, 0, 60,
                                                   "Mon-Fri 08:00-17:45" };
    static const struct rules_spec short_break = { 60, 60, 240, 14, 0, 0, 60,
                                                   "Mon-Fri 08:00-12:10, Mon-Fri 12:20-20:00" };
    static const struct check_case rows[] = {
        { "17:00-17:30 before closing", NOW, TUE(17, 0), TUE(17, 30), &closes_1745, F_NONE,
          NO_OV, 0, 0, OK, "" },
        { "17:30-18:00 runs 15 minutes past closing", NOW, TUE(17, 30), TUE(18, 0),
          &closes_1745, F_NONE, NO_OV, 0, 0, BOOKING_OUTSIDE_HOURS, NULL },
        { "12:00-13:00 spans the 12:10-12:20 break", NOW, TUE(12, 0), TUE(13, 0), &short_break,
          F_NONE, NO_OV, 0, 0, BOOKING_OUTSIDE_HOURS, NULL },
    };
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        struct built b;
        struct booking_verdict v;

        build(&rows[i], &b);
        v = booking_check(&b.req);
        if (v.error != rows[i].expect) {
            print_error("'%s': expected %s, got %s\n", rows[i].what,
                        booking_error_to_string(rows[i].expect),
                        booking_error_to_string(v.error));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A booking across midnight counts against the start day's quota only for its part in
 * that day, as the member's other bookings are counted (a bug fixed on 2026-11-22: it was
 * counted whole). */
static void test_quota_counts_the_part_in_the_start_day(void **state)
{
    static const struct rules_spec quota_120 = { 30, 30, 240, 14, 120, 0, 60, NULL };
    static const struct check_case rows[] = {
        { "23:00-01:00 with 60 min already booked: 60 + 60 in the day", NOW, TUE(23, 0),
          LT(2026, 1, 7, 1, 0), &quota_120, F_NONE, NO_OV, 60, 0, OK, "" },
        { "22:00-01:00 with 60 min already booked: 60 + 120 in the day", NOW, TUE(22, 0),
          LT(2026, 1, 7, 1, 0), &quota_120, F_NONE, NO_OV, 60, 0, BOOKING_QUOTA_DAY, NULL },
    };
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        struct built b;
        struct booking_verdict v;

        build(&rows[i], &b);
        v = booking_check(&b.req);
        if (v.error != rows[i].expect) {
            print_error("'%s': expected %s, got %s\n", rows[i].what,
                        booking_error_to_string(rows[i].expect),
                        booking_error_to_string(v.error));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A member's request: an overlap says when, never who. */
static void test_overlap_hides_names_from_members(void **state)
{
    static const struct check_case row = { "same slot as Alice", NOW, TUE(14, 0), TUE(15, 0),
                                           &R_STD, F_NONE, OV(OV_ALICE), 0, 0, BOOKING_OVERLAP,
                                           NULL };
    struct booking_verdict v;
    struct built b;

    (void)state;
    build(&row, &b);
    b.req.hide_names = true;
    v = booking_check(&b.req);
    assert_int_equal(v.error, BOOKING_OVERLAP);
    assert_string_equal(v.message, "this time is already booked");
}

/* A caller that knows the day and week holding the start (the planner: a page checks
 * hundreds of slots of the same days) gets the same verdict, row for row, as one that lets
 * booking_check() find them. */
static void test_given_bounds_change_nothing(void **state)
{
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct built b;
        struct booking_verdict found, given;

        build(&cases[i], &b);
        found = booking_check(&b.req);
        booking_day_bounds(b.req.start, &b.req.day_start, &b.req.day_end);
        booking_week_bounds(b.req.start, &b.req.week_start, &b.req.week_end);
        given = booking_check(&b.req);
        if (found.error != given.error || strcmp(found.message, given.message) != 0) {
            print_error("case %zu '%s': %s without bounds, %s with\n", i, cases[i].what,
                        booking_error_to_string(found.error), booking_error_to_string(given.error));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The verdict's message comes through the caller's translation, specifiers kept. */
static const char *shout(const char *msgid, const void *ctx)
{
    (void)ctx;
    return strcmp(msgid, "a booking lasts at most %lld minutes") == 0
               ? "AT MOST %lld MINUTES" : msgid;
}

static void test_message_is_translated(void **state)
{
    static const struct check_case row = { "5 hours", NOW, TUE(10, 0), TUE(15, 0), &R_STD,
                                           F_NONE, NO_OV, 0, 0, BOOKING_TOO_LONG, NULL };
    struct built b;
    struct booking_verdict v;

    (void)state;
    build(&row, &b);
    b.req.translate = shout;
    v = booking_check(&b.req);
    assert_int_equal(v.error, BOOKING_TOO_LONG);
    assert_string_equal(v.message, "AT MOST 240 MINUTES");
}

/* Every error booking_check() can give has a row that produces it, and an OK row exists.
 * BOOKING_DEADLINE_PASSED belongs to cancelling and moving (booking_cancel_allowed), not to
 * booking_check(): it must never come out of the table. */
static void test_check_table_covers_every_error(void **state)
{
    bool seen[BOOKING_ERROR__MAX] = { false };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        assert_true((unsigned)cases[i].expect < BOOKING_ERROR__MAX);
        seen[cases[i].expect] = true;
    }
    for (int e = 0; e < BOOKING_ERROR__MAX; e++) {
        if (e == BOOKING_DEADLINE_PASSED) {
            assert_false(seen[e]);
            continue;
        }
        if (!seen[e])
            fail_msg("no row for %s", booking_error_to_string((enum booking_error)e));
    }
}

/* The helpers the table relies on, against hand-computed UTC. */
static void test_instants(void **state)
{
    static const struct {
        struct when w;
        int64_t expect;
    } rows[] = {
        { LT(2026, 1, 5, 8, 0), 1767596400 },           /* 2026-01-05 07:00 UTC */
        { LT(2026, 1, 6, 14, 0), 1767704400 },          /* 2026-01-06 13:00 UTC */
        { LT(2026, 3, 29, 1, 30), 1774744200 },         /* 00:30 UTC, CET */
        { LT(2026, 3, 29, 3, 0), 1774746000 },          /* 01:00 UTC, CEST */
        { LT(2026, 3, 30, 14, 0), 1774872000 },         /* 12:00 UTC */
        { UT(2026, 10, 25, 1, 30), 1792891800 },
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rows); i++)
        assert_int_equal(instant(&rows[i].w), rows[i].expect);
}

/* ---- cancelling ---- */

static void test_cancel_allowed(void **state)
{
    const struct when start_w = TUE(14, 0);
    struct booking_rules rules = { .slot_minutes = 30, .cancel_deadline_minutes = 60 };
    int64_t start = instant(&start_w);

    (void)state;
    assert_true(booking_cancel_allowed(&rules, start, start - 86400));
    assert_true(booking_cancel_allowed(&rules, start, start - 3601));
    assert_true(booking_cancel_allowed(&rules, start, start - 3600));     /* at the deadline */
    assert_false(booking_cancel_allowed(&rules, start, start - 3599));    /* one second late */
    assert_false(booking_cancel_allowed(&rules, start, start - 60));
    assert_false(booking_cancel_allowed(&rules, start, start));
    assert_false(booking_cancel_allowed(&rules, start, start + 3600));

    /* no deadline: until the start itself */
    rules.cancel_deadline_minutes = 0;
    assert_true(booking_cancel_allowed(&rules, start, start - 1));
    assert_true(booking_cancel_allowed(&rules, start, start));
    assert_false(booking_cancel_allowed(&rules, start, start + 1));

    /* a day's deadline */
    rules.cancel_deadline_minutes = 24 * 60;
    assert_true(booking_cancel_allowed(&rules, start, start - 86400));
    assert_false(booking_cancel_allowed(&rules, start, start - 86399));
}

/* ---- days and weeks on the wall clock ---- */

struct bounds_case {
    const char *what;
    struct when at;
    int64_t start, end;         /* UTC */
    int hours;                  /* end - start, in hours */
};

#define U(y, mo, d, h) utc_const(y, mo, d, h)

static int64_t utc_const(int y, int mo, int d, int h)
{
    return utc_of(y, mo, d, h, 0, 0);
}

static void check_bounds(const char *kind, void (*fn)(int64_t, int64_t *, int64_t *),
                         const struct bounds_case *rows, size_t n)
{
    unsigned failures = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t t = instant(&rows[i].at), s = -1, e = -1;
        fn(t, &s, &e);
        if (s != rows[i].start || e != rows[i].end || e - s != rows[i].hours * 3600LL) {
            print_error("%s '%s': t=%lld expected [%lld, %lld) (%d h), got [%lld, %lld) "
                        "(%lld s)\n", kind, rows[i].what, (long long)t,
                        (long long)rows[i].start, (long long)rows[i].end, rows[i].hours,
                        (long long)s, (long long)e, (long long)(e - s));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_day_bounds(void **state)
{
    const struct bounds_case rows[] = {
        { "winter noon", LT(2026, 1, 5, 12, 0), U(2026, 1, 4, 23), U(2026, 1, 5, 23), 24 },
        { "winter midnight belongs to the day it starts", LT(2026, 1, 5, 0, 0),
          U(2026, 1, 4, 23), U(2026, 1, 5, 23), 24 },
        { "winter last second", LTS(2026, 1, 4, 23, 59, 59), U(2026, 1, 3, 23),
          U(2026, 1, 4, 23), 24 },
        { "summer noon", LT(2026, 7, 1, 12, 0), U(2026, 6, 30, 22), U(2026, 7, 1, 22), 24 },
        { "29 March noon (23 h)", LT(2026, 3, 29, 12, 0), U(2026, 3, 28, 23),
          U(2026, 3, 29, 22), 23 },
        { "29 March 01:59 CET, before the jump", LT(2026, 3, 29, 1, 59), U(2026, 3, 28, 23),
          U(2026, 3, 29, 22), 23 },
        { "29 March 03:00 CEST, after the jump", LT(2026, 3, 29, 3, 0), U(2026, 3, 28, 23),
          U(2026, 3, 29, 22), 23 },
        { "30 March 00:00 CEST", LT(2026, 3, 30, 0, 0), U(2026, 3, 29, 22), U(2026, 3, 30, 22),
          24 },
        { "28 March 23:59 CET", LT(2026, 3, 28, 23, 59), U(2026, 3, 27, 23), U(2026, 3, 28, 23),
          24 },
        { "25 October noon (25 h)", LT(2026, 10, 25, 12, 0), U(2026, 10, 24, 22),
          U(2026, 10, 25, 23), 25 },
        { "25 October 02:30 CEST (first time)", UT(2026, 10, 25, 0, 30), U(2026, 10, 24, 22),
          U(2026, 10, 25, 23), 25 },
        { "25 October 02:30 CET (second time)", UT(2026, 10, 25, 1, 30), U(2026, 10, 24, 22),
          U(2026, 10, 25, 23), 25 },
        { "25 October 23:59:59 CET", LTS(2026, 10, 25, 23, 59, 59), U(2026, 10, 24, 22),
          U(2026, 10, 25, 23), 25 },
        { "26 October 00:00 CET", LT(2026, 10, 26, 0, 0), U(2026, 10, 25, 23),
          U(2026, 10, 26, 23), 24 },
    };
    (void)state;
    check_bounds("day", booking_day_bounds, rows, N_ELEMS(rows));
}

static void test_week_bounds(void **state)
{
    const struct bounds_case rows[] = {
        { "winter Wednesday", LT(2026, 1, 7, 12, 0), U(2026, 1, 4, 23), U(2026, 1, 11, 23),
          168 },
        { "Monday 00:00 starts the week", LT(2026, 1, 5, 0, 0), U(2026, 1, 4, 23),
          U(2026, 1, 11, 23), 168 },
        { "Sunday 23:59:59 ends it", LTS(2026, 1, 11, 23, 59, 59), U(2026, 1, 4, 23),
          U(2026, 1, 11, 23), 168 },
        { "Sunday 4 January: the week began in 2025", LT(2026, 1, 4, 12, 0),
          U(2025, 12, 28, 23), U(2026, 1, 4, 23), 168 },
        { "Monday 23 March: the short week", LT(2026, 3, 23, 9, 0), U(2026, 3, 22, 23),
          U(2026, 3, 29, 22), 167 },
        { "Sunday 29 March 12:00 CEST", LT(2026, 3, 29, 12, 0), U(2026, 3, 22, 23),
          U(2026, 3, 29, 22), 167 },
        { "Sunday 29 March 01:30 CET", LT(2026, 3, 29, 1, 30), U(2026, 3, 22, 23),
          U(2026, 3, 29, 22), 167 },
        { "Monday 30 March 00:00 CEST", LT(2026, 3, 30, 0, 0), U(2026, 3, 29, 22),
          U(2026, 4, 5, 22), 168 },
        { "Wednesday 21 October: the long week", LT(2026, 10, 21, 9, 0), U(2026, 10, 18, 22),
          U(2026, 10, 25, 23), 169 },
        { "Sunday 25 October 02:30 CET (second time)", UT(2026, 10, 25, 1, 30),
          U(2026, 10, 18, 22), U(2026, 10, 25, 23), 169 },
        { "Sunday 25 October 23:59 CET", LT(2026, 10, 25, 23, 59), U(2026, 10, 18, 22),
          U(2026, 10, 25, 23), 169 },
        { "Monday 26 October 00:00 CET", LT(2026, 10, 26, 0, 0), U(2026, 10, 25, 23),
          U(2026, 11, 1, 23), 168 },
    };
    (void)state;
    check_bounds("week", booking_week_bounds, rows, N_ELEMS(rows));
}

/* Every quarter hour of 2026: the day and week contain t, start and end at local midnight,
 * and the week starts on a Monday; consecutive days and weeks tile the year. */
static void test_bounds_whole_year(void **state)
{
    const int64_t from = utc_of(2026, 1, 1, 0, 0, 0), to = utc_of(2027, 1, 1, 0, 0, 0);
    unsigned failures = 0;

    (void)state;
    for (int64_t t = from; t < to && failures < 5; t += 900) {
        int64_t ds, de, ws, we, next_s, next_e;
        struct tm a, b;
        time_t tt;

        booking_day_bounds(t, &ds, &de);
        booking_week_bounds(t, &ws, &we);
        tt = (time_t)ds;
        localtime_r(&tt, &a);
        tt = (time_t)de;
        localtime_r(&tt, &b);
        booking_day_bounds(de, &next_s, &next_e);
        if (!(ds <= t && t < de) || a.tm_hour || a.tm_min || b.tm_hour || b.tm_min ||
            de - ds < 23 * 3600 || de - ds > 25 * 3600 || next_s != de) {
            print_error("day bounds of %lld: [%lld, %lld)\n", (long long)t, (long long)ds,
                        (long long)de);
            failures++;
        }
        tt = (time_t)ws;
        localtime_r(&tt, &a);
        tt = (time_t)we;
        localtime_r(&tt, &b);
        if (!(ws <= t && t < we) || a.tm_wday != 1 || b.tm_wday != 1 || a.tm_hour || a.tm_min ||
            b.tm_hour || b.tm_min || we - ws < 167 * 3600 || we - ws > 169 * 3600 ||
            ws > ds || we < de) {
            print_error("week bounds of %lld: [%lld, %lld)\n", (long long)t, (long long)ws,
                        (long long)we);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* ---- identifiers ---- */

static void test_error_strings(void **state)
{
    (void)state;
    for (int e = 0; e < BOOKING_ERROR__MAX; e++) {
        const char *id = booking_error_to_string((enum booking_error)e);
        assert_non_null(id);
        assert_true(strlen(id) > 0);
        assert_string_not_equal(id, "invalid");
        for (int q = 0; q < e; q++)
            assert_string_not_equal(id, booking_error_to_string((enum booking_error)q));
    }
    /* the ones the API documents by example */
    assert_string_equal(booking_error_to_string(BOOKING_OK), "ok");
    assert_string_equal(booking_error_to_string(BOOKING_BAD_TIMES), "invalid_times");
    assert_string_equal(booking_error_to_string(BOOKING_OVERLAP), "overlap");
    assert_string_equal(booking_error_to_string(BOOKING_ERROR__MAX), "invalid");
    assert_string_equal(booking_error_to_string((enum booking_error)-1), "invalid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instants),
        cmocka_unit_test(test_check_table_covers_every_error),
        cmocka_unit_test(test_check_table),
        cmocka_unit_test(test_overlap_hides_names_from_members),
        cmocka_unit_test(test_given_bounds_change_nothing),
        cmocka_unit_test(test_message_is_translated),
        cmocka_unit_test(test_check_hours_between_slot_boundaries),
        cmocka_unit_test(test_quota_counts_the_part_in_the_start_day),
        cmocka_unit_test(test_cancel_allowed),
        cmocka_unit_test(test_day_bounds),
        cmocka_unit_test(test_week_bounds),
        cmocka_unit_test(test_bounds_whole_year),
        cmocka_unit_test(test_error_strings),
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

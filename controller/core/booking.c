/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "booking.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const error_ids[BOOKING_ERROR__MAX] = {
    [BOOKING_OK] = "ok",
    [BOOKING_BAD_TIMES] = "invalid_times",
    [BOOKING_OUT_OF_ORDER] = "machine_out_of_order",
    [BOOKING_MEMBER_INACTIVE] = "member_inactive",
    [BOOKING_NOT_QUALIFIED] = "not_qualified",
    [BOOKING_IN_PAST] = "in_past",
    [BOOKING_TOO_FAR] = "too_far_ahead",
    [BOOKING_NOT_ALIGNED] = "not_aligned",
    [BOOKING_TOO_SHORT] = "too_short",
    [BOOKING_TOO_LONG] = "too_long",
    [BOOKING_OUTSIDE_HOURS] = "outside_opening_hours",
    [BOOKING_OVERLAP] = "overlap",
    [BOOKING_QUOTA_DAY] = "quota_day",
    [BOOKING_QUOTA_WEEK] = "quota_week",
    [BOOKING_DEADLINE_PASSED] = "deadline_passed",
};

const char *booking_error_to_string(enum booking_error e)
{
    return (unsigned)e < BOOKING_ERROR__MAX ? error_ids[e] : "invalid";
}

static void hhmm(int64_t t, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    localtime_r(&tt, &tm);
    strftime(buf, n, "%H:%M", &tm);
}


static int minute_of_day(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    localtime_r(&tt, &tm);
    return tm.tm_hour * 60 + tm.tm_min;     /* whole minutes: checked before */
}

void booking_day_bounds(int64_t t, int64_t *ret_start, int64_t *ret_end)
{
    struct tm tm;
    time_t tt = (time_t)t;
    localtime_r(&tt, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *ret_start = mktime(&tm);
    tm.tm_mday++;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *ret_end = mktime(&tm);
}

void booking_week_bounds(int64_t t, int64_t *ret_start, int64_t *ret_end)
{
    struct tm tm;
    time_t tt = (time_t)t;
    localtime_r(&tt, &tm);
    tm.tm_mday -= (tm.tm_wday + 6) % 7;    /* back to Monday */
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *ret_start = mktime(&tm);
    tm.tm_mday += 7;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *ret_end = mktime(&tm);
}

bool booking_cancel_allowed(const struct booking_rules *rules, int64_t start, int64_t now)
{
    return now <= start - rules->cancel_deadline_minutes * 60;
}

/* Marks a message for po/fr.po (the keyword tests/check_i18n.py extracts); the caller's
 * translate function turns it into the reader's language. */
#define N_(text) (text)

static struct booking_verdict fail(const struct booking_request *req, enum booking_error e,
                                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static struct booking_verdict fail(const struct booking_request *req, enum booking_error e,
                                   const char *fmt, ...)
{
    struct booking_verdict v = { .error = e };
    va_list ap;

    if (req->translate)
        fmt = req->translate(fmt, req->translate_ctx);
    va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(v.message, sizeof(v.message), fmt, ap);   /* same specifiers: check_i18n.py */
#pragma GCC diagnostic pop
    va_end(ap);
    return v;
}

/* The whole of [start, end) must be inside the opening hours: the window that contains the
 * start (chaining adjacent windows) must reach the end. */
static bool inside_hours(const struct schedule *hours, int64_t start, int64_t end)
{
    struct local_time lt;
    local_time_at(start, &lt);
    return schedule_contains(hours, &lt) && schedule_window_end(hours, start, end - start) >= end;
}

struct booking_verdict booking_check(const struct booking_request *req)
{
    const struct booking_rules *r = req->rules;
    const int64_t minutes = (req->end - req->start) / 60;
    int64_t slot = r->slot_minutes > 0 ? r->slot_minutes : 1;
    char a[32], b[32];

    if (req->end <= req->start || req->start % 60 || req->end % 60)
        return fail(req, BOOKING_BAD_TIMES, N_("a booking must end after it starts, on whole minutes"));
    if (req->out_of_order)
        return fail(req, BOOKING_OUT_OF_ORDER, N_("the machine is out of order"));
    if (!req->member_active)
        return fail(req, BOOKING_MEMBER_INACTIVE, 
                    N_("the member is suspended or not a member at that time"));
    if (!req->qualified)
        return fail(req, BOOKING_NOT_QUALIFIED, N_("the member lacks the training this machine requires "
                                                   "(or it expires before the booking ends)"));
    if (req->start < req->now)
        return fail(req, BOOKING_IN_PAST, N_("the booking would start in the past"));
    if (req->start > req->now + r->window_days * 86400)
        return fail(req, BOOKING_TOO_FAR, N_("bookings open %lld days ahead at most"),
                    (long long)r->window_days);
    if (minute_of_day(req->start) % slot || minute_of_day(req->end) % slot)
        return fail(req, BOOKING_NOT_ALIGNED, N_("bookings start and end on %lld-minute slots"),
                    (long long)slot);
    if (minutes < r->min_minutes)
        return fail(req, BOOKING_TOO_SHORT, N_("a booking lasts at least %lld minutes"),
                    (long long)r->min_minutes);
    if ((r->max_minutes && minutes > r->max_minutes) || minutes > BOOKING_MAX_MINUTES)
        return fail(req, BOOKING_TOO_LONG, N_("a booking lasts at most %lld minutes"),
                    (long long)(r->max_minutes && r->max_minutes < BOOKING_MAX_MINUTES
                                    ? r->max_minutes : BOOKING_MAX_MINUTES));
    if (r->hours && !inside_hours(r->hours, req->start, req->end))
        return fail(req, BOOKING_OUTSIDE_HOURS, 
                    N_("the machine is closed during part of that time"));
    for (size_t i = 0; i < req->n_overlapping; i++) {
        const struct booking_ref *o = &req->overlapping[i];
        if (o->start < req->end && req->start < o->end) {
            hhmm(o->start, a, sizeof(a));
            hhmm(o->end, b, sizeof(b));
            if (req->hide_names)
                return fail(req, BOOKING_OVERLAP, N_("this time is already booked"));
            return fail(req, BOOKING_OVERLAP, N_("overlaps booking %lld by %s %s–%s"),
                        (long long)o->id,
                        o->member, a, b);
        }
    }
    /* Quotas count the part of the booking inside the day (week) it starts in, the same
     * way the member's other bookings are counted by the store. */
    int64_t d0 = req->day_start, d1 = req->day_end, w0 = req->week_start, w1 = req->week_end;
    if (!d1)
        booking_day_bounds(req->start, &d0, &d1);
    if (!w1)
        booking_week_bounds(req->start, &w0, &w1);
    int64_t day_minutes = ((req->end < d1 ? req->end : d1) - req->start) / 60;
    int64_t week_minutes = ((req->end < w1 ? req->end : w1) - req->start) / 60;
    if (r->quota_day_minutes && req->member_day_minutes + day_minutes > r->quota_day_minutes)
        return fail(req, BOOKING_QUOTA_DAY, N_("over the daily quota of %lld minutes (%lld already "
                                                      "booked that day)"),
                    (long long)r->quota_day_minutes,
                    (long long)req->member_day_minutes);
    if (r->quota_week_minutes && req->member_week_minutes + week_minutes > r->quota_week_minutes)
        return fail(req, BOOKING_QUOTA_WEEK, N_("over the weekly quota of %lld minutes (%lld already "
                                                       "booked that week)"),
                    (long long)r->quota_week_minutes,
                    (long long)req->member_week_minutes);
    return (struct booking_verdict){ .error = BOOKING_OK };
}

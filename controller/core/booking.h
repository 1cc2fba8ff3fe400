/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* booking: the rules a machine booking must follow, checked the same way for every client
 * (portierctl, the web page, the API). Pure: the caller gathers the facts (overlapping
 * bookings, the member's booked minutes that day and week, qualification) from the store.
 *
 * Times are UTC seconds; [start, end) is half-open, so back-to-back bookings do not
 * overlap. Alignment, days and weeks are on the site's wall clock (TZ). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule.h"

/* No booking lasts longer than this; the store relies on it to bound its range scans. */
#define BOOKING_MAX_MINUTES 10080  /* store_fablab.c's booking range queries rely on it */

struct booking_rules {
    int64_t slot_minutes;           /* start and end on multiples of this (local time) */
    int64_t min_minutes, max_minutes;
    int64_t window_days;            /* how far ahead a booking may start */
    int64_t quota_day_minutes;      /* per member, per local day; 0: no quota */
    int64_t quota_week_minutes;     /* per member, per local week (Monday to Sunday) */
    int64_t cancel_deadline_minutes;/* a member may cancel until this long before start */
    const struct schedule *hours;   /* opening hours: the booking must lie inside */
};

/* A booking as the rules and messages need it. */
struct booking_ref {
    int64_t id;
    int64_t member_id;
    char member[96];
    int64_t start, end;
};

enum booking_error {
    BOOKING_OK,
    BOOKING_BAD_TIMES,
    BOOKING_OUT_OF_ORDER,
    BOOKING_MEMBER_INACTIVE,
    BOOKING_NOT_QUALIFIED,
    BOOKING_IN_PAST,
    BOOKING_TOO_FAR,
    BOOKING_NOT_ALIGNED,
    BOOKING_TOO_SHORT,
    BOOKING_TOO_LONG,
    BOOKING_OUTSIDE_HOURS,
    BOOKING_OVERLAP,
    BOOKING_QUOTA_DAY,
    BOOKING_QUOTA_WEEK,
    BOOKING_DEADLINE_PASSED,
    BOOKING_ERROR__MAX,
};

struct booking_request {
    bool hide_names;                /* a member asks: an overlap does not name who booked */
    int64_t now;
    int64_t start, end;
    const struct booking_rules *rules;
    bool out_of_order;
    bool member_active;             /* not suspended, within validity at start */
    bool qualified;                 /* has the required training, valid at start and end */
    const struct booking_ref *overlapping;  /* others' or own bookings intersecting [start,end) */
    size_t n_overlapping;
    int64_t member_day_minutes;     /* already booked on this machine that local day */
    int64_t member_week_minutes;    /* ... that local week */
    /* The local day and week holding start (booking_day_bounds, booking_week_bounds), if
     * the caller knows them already (it checks many bookings of the same days); 0: found
     * here. */
    int64_t day_start, day_end, week_start, week_end;
    /* The verdict's message in the reader's language: translate(msgid, ctx) returns the
     * translation of a message format (po/fr.po), with the same format specifiers. NULL:
     * English. */
    const char *(*translate)(const char *msgid, const void *ctx);
    const void *translate_ctx;
};

struct booking_verdict {
    enum booking_error error;
    char message[200];              /* for people: "overlaps booking 42 by ... 14:00–15:00" */
};

struct booking_verdict booking_check(const struct booking_request *req);

/* Whether a booking starting at start may still be cancelled (or moved) at now without a
 * manager's override. */
bool booking_cancel_allowed(const struct booking_rules *rules, int64_t start, int64_t now);

/* Local day and week (Monday 00:00) containing t, as UTC [start, end). */
void booking_day_bounds(int64_t t, int64_t *ret_start, int64_t *ret_end);
void booking_week_bounds(int64_t t, int64_t *ret_start, int64_t *ret_end);

/* "invalid_times", "overlap", ...: stable identifiers for scripts and the API. */
const char *booking_error_to_string(enum booking_error e);

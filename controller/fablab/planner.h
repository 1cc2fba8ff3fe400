/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* planner: what a member may book on one machine over a stretch of time.
 *
 * fablab_planner_new() reads the facts once — the machine's rules and hours, the member's
 * status, validity, plan hours and training, and the machine's bookings around the stretch —
 * and fablab_planner_check() then applies the pure rules of core/booking.c to any booking
 * starting in it, in memory. The booking service checks every booking through it
 * (fablab_check_booking), and the web page asks it about each slot it shows and which
 * lengths may start at a slot, so the page offers exactly what the service accepts. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "booking.h"
#include "i18n.h"
#include "store.h"

struct fablab_planner;

struct fablab_planner_args {
    int64_t member_id;
    int64_t from, to;           /* bookings starting in [from, to) will be checked */
    int64_t exclude_id;         /* a booking being moved: left out (0: none) */
    int64_t now;                /* "now" for the rules */
    bool hide_names;            /* the verdicts go to a member: no other member named */
    enum lang lang;             /* of the verdicts' messages */
};

/* 0, or -errno from the store (-E2BIG beyond 20,000 bookings in the stretch). */
int fablab_planner_new(struct store *store, const struct store_resource *res,
                       const struct fablab_planner_args *args, struct fablab_planner **ret);
/* NULL-safe; returns NULL. */
struct fablab_planner *fablab_planner_free(struct fablab_planner *p);

/* Every rule for the booking [start, end), start within the stretch. */
struct booking_verdict fablab_planner_check(const struct fablab_planner *p, int64_t start,
                                            int64_t end);
/* The shortest booking the rules allow, in minutes (a whole number of slots). */
int64_t fablab_planner_shortest(const struct fablab_planner *p);
/* The lengths (minutes, shortest first) a booking starting at start may have: at most n are
 * written to minutes; returns how many. None when start itself cannot be booked. */
size_t fablab_planner_lengths(const struct fablab_planner *p, int64_t start, int64_t *minutes,
                              size_t n);

/* The machine as read, its opening hours (closed if unreadable), and the member's plan
 * hours (NULL without a plan; closed if unreadable). Valid while p lives. */
const struct store_resource *fablab_planner_resource(const struct fablab_planner *p);
const struct schedule *fablab_planner_hours(const struct fablab_planner *p);
bool fablab_planner_hours_unreadable(const struct fablab_planner *p);
const struct schedule *fablab_planner_plan_hours(const struct fablab_planner *p);

/* The machine's bookings read (not cancelled, the one being moved left out), by start:
 * those that end after the week holding from begins and start before to + 7 days. */
struct fablab_planner_booking {
    int64_t id, member_id, start, end;
    char member[96];
};
const struct fablab_planner_booking *fablab_planner_bookings(const struct fablab_planner *p,
                                                             size_t *ret_n);

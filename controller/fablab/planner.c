/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* planner: a member's booking rules on one machine over a stretch of time, with the facts
 * read from the store once. The booking service (fablab_check_booking) and the web page's
 * slots ask the same questions through it, so the page offers exactly what the service
 * accepts — and a page of a week of slots costs one read of the store, not one per slot. */
#include "planner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "util.h"

#define PLANNER_BOOKINGS_MAX 20000          /* one machine, a few weeks: far above real use */
#define PLANNER_DAYS_MAX 16                 /* days whose bounds are kept (a page shows 7) */

struct fablab_planner {
    struct store_resource res;
    struct store_machine_facts facts;
    struct booking_rules rules;
    int64_t member_id;
    bool member_known, member_active_always;
    int64_t valid_from, valid_until;        /* 0: unbounded */
    bool qualified_ever;                    /* has the training (if one is needed) */
    int64_t qualified_until;                /* 0: never expires */
    int64_t exclude_id, now;
    bool hide_names;
    enum lang lang;
    bool has_plan_hours;
    struct schedule plan_hours;
    size_t n, cap;
    struct fablab_planner_booking *b;              /* the machine's bookings, by start */
    /* The local days of the stretch, each with its week and what the member has booked on
     * the machine in them: a page checks hundreds of slots of the same few days. */
    struct planner_day {
        int64_t start, end, week_start, week_end;
        int64_t day_minutes, week_minutes;
    } days[PLANNER_DAYS_MAX];
    unsigned n_days;
};

static int64_t booked_minutes(const struct fablab_planner *p, int64_t from, int64_t to);

static const char *translate(const char *msgid, const void *ctx)
{
    return i18n_t(*(const enum lang *)ctx, msgid);
}

static int collect(const struct store_booking *bk, void *userdata)
{
    struct fablab_planner *p = userdata;
    struct fablab_planner_booking *nb;

    if (bk->id == p->exclude_id)
        return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        if (cap > PLANNER_BOOKINGS_MAX)
            return -E2BIG;
        nb = realloc(p->b, cap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        p->b = nb;
        p->cap = cap;
    }
    nb = &p->b[p->n++];
    nb->id = bk->id;
    nb->member_id = bk->member_id;
    nb->start = bk->start;
    nb->end = bk->end;
    strlcpy_checked(nb->member, bk->member, sizeof(nb->member));
    return 0;
}

int fablab_planner_new(struct store *store, const struct store_resource *res,
                       const struct fablab_planner_args *args, struct fablab_planner **ret)
{
    struct fablab_planner *p = calloc(1, sizeof(*p));
    struct store_member m;
    int64_t lo, hi, unused, expires;
    int r;

    if (!p)
        return -ENOMEM;
    p->res = *res;
    p->member_id = args->member_id;
    p->exclude_id = args->exclude_id;
    p->now = args->now;
    p->hide_names = args->hide_names;
    p->lang = args->lang;
    store_machine_facts(&p->res, args->now, 0, &p->facts);
    p->rules.slot_minutes = res->slot_minutes;
    p->rules.min_minutes = res->min_minutes;
    p->rules.max_minutes = res->max_minutes;
    p->rules.window_days = res->window_days;
    p->rules.quota_day_minutes = res->quota_day_minutes;
    p->rules.quota_week_minutes = res->quota_week_minutes;
    p->rules.cancel_deadline_minutes = res->cancel_deadline_minutes;
    p->rules.hours = &p->facts.hours;

    if (args->member_id && store_member_get(store, args->member_id, &m) == 0) {
        struct store_plan plan;
        p->member_known = true;
        p->member_active_always = m.status == MEMBER_ACTIVE;
        p->valid_from = m.valid_from;
        p->valid_until = m.valid_until;
        if (m.plan_id && store_plan_get(store, m.plan_id, &plan) == 0) {
            p->has_plan_hours = true;
            if (schedule_parse(plan.hours, &p->plan_hours, NULL) < 0)
                memset(&p->plan_hours, 0, sizeof(p->plan_hours));      /* unreadable: closed */
        }
        p->qualified_ever = !res->training_id ||
            store_qualification_best(store, args->member_id, res->training_id, &expires) == 0;
        p->qualified_until = res->training_id && p->qualified_ever ? expires : 0;
    }

    /* Bookings that can overlap a booking starting in [from, to), and the weeks whose
     * quotas such a booking counts against. */
    booking_week_bounds(args->from, &lo, &unused);
    booking_week_bounds(args->to, &unused, &hi);
    if (args->to + BOOKING_MAX_MINUTES * 60 > hi)
        hi = args->to + BOOKING_MAX_MINUTES * 60;
    struct store_booking_filter f = { .resource_id = res->id, .from = lo, .to = hi,
                                      .limit = PLANNER_BOOKINGS_MAX };
    r = store_bookings_foreach(store, &f, collect, p);
    if (r < 0) {
        fablab_planner_free(p);
        return r;
    }
    for (int64_t t = args->from; t < args->to && p->n_days < PLANNER_DAYS_MAX;) {
        struct planner_day *d = &p->days[p->n_days++];
        booking_day_bounds(t, &d->start, &d->end);
        booking_week_bounds(t, &d->week_start, &d->week_end);
        d->day_minutes = booked_minutes(p, d->start, d->end);
        d->week_minutes = booked_minutes(p, d->week_start, d->week_end);
        t = d->end;
    }
    *ret = p;
    return 0;
}

struct fablab_planner *fablab_planner_free(struct fablab_planner *p)
{
    if (p) {
        free(p->b);
        free(p);
    }
    return NULL;
}

const struct schedule *fablab_planner_hours(const struct fablab_planner *p)
{
    return &p->facts.hours;
}

bool fablab_planner_hours_unreadable(const struct fablab_planner *p)
{
    return p->facts.hours_unreadable;
}

const struct schedule *fablab_planner_plan_hours(const struct fablab_planner *p)
{
    return p->has_plan_hours ? &p->plan_hours : NULL;
}

/* Minutes the member has booked on the machine within [from, to), as
 * store_booked_minutes() counts them. */
static int64_t booked_minutes(const struct fablab_planner *p, int64_t from, int64_t to)
{
    int64_t sum = 0;

    for (size_t i = 0; i < p->n; i++) {
        const struct fablab_planner_booking *b = &p->b[i];
        if (b->member_id != p->member_id || b->start >= to || b->end <= from ||
            b->start <= from - 604800)
            continue;
        sum += (b->end < to ? b->end : to) - (b->start > from ? b->start : from);
    }
    return sum / 60;
}

struct booking_verdict fablab_planner_check(const struct fablab_planner *p, int64_t start,
                                            int64_t end)
{
    struct booking_ref overlapping[8];
    struct booking_request req = { .hide_names = p->hide_names, .now = p->now,
                                   .start = start, .end = end, .rules = &p->rules,
                                   .out_of_order = p->res.out_of_order,
                                   .translate = translate, .translate_ctx = &p->lang };
    struct booking_verdict v;
    int64_t from, to;
    size_t n = 0;

    if (!p->member_known) {
        v.error = BOOKING_MEMBER_INACTIVE;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(v.message, sizeof(v.message), i18n_t(p->lang, "no member %" PRId64),
                 p->member_id);     /* same specifier in French: check_i18n.py */
#pragma GCC diagnostic pop
        return v;
    }
    req.member_active = p->member_active_always && (!p->valid_from || start >= p->valid_from) &&
                        (!p->valid_until || end <= p->valid_until);
    req.qualified = p->qualified_ever && (!p->qualified_until || end <= p->qualified_until);
    for (size_t i = 0; i < p->n && n < ARRAY_SIZE(overlapping); i++) {
        const struct fablab_planner_booking *b = &p->b[i];
        if (b->start < end && b->end > start) {
            overlapping[n] = (struct booking_ref){ .id = b->id, .member_id = b->member_id,
                                                   .start = b->start, .end = b->end };
            strlcpy_checked(overlapping[n].member, b->member, sizeof(overlapping[n].member));
            n++;
        }
    }
    req.overlapping = overlapping;
    req.n_overlapping = n;
    for (unsigned i = 0; i < p->n_days; i++) {
        const struct planner_day *d = &p->days[i];
        if (start >= d->start && start < d->end) {
            req.day_start = d->start;
            req.day_end = d->end;
            req.week_start = d->week_start;
            req.week_end = d->week_end;
            req.member_day_minutes = d->day_minutes;
            req.member_week_minutes = d->week_minutes;
            return booking_check(&req);
        }
    }
    booking_day_bounds(start, &from, &to);
    req.member_day_minutes = booked_minutes(p, from, to);
    booking_week_bounds(start, &from, &to);
    req.member_week_minutes = booked_minutes(p, from, to);
    return booking_check(&req);
}

int64_t fablab_planner_shortest(const struct fablab_planner *p)
{
    int64_t slot = p->res.slot_minutes > 0 ? p->res.slot_minutes : 1;
    int64_t len = p->res.min_minutes > slot ? p->res.min_minutes : slot;

    return (len + slot - 1) / slot * slot;
}

/* Refusals that a longer booking from the same start cannot escape. */
static bool longer_fails_too(enum booking_error e)
{
    switch (e) {
    case BOOKING_NOT_ALIGNED:
    case BOOKING_TOO_SHORT:
        return false;
    default:
        return true;
    }
}

size_t fablab_planner_lengths(const struct fablab_planner *p, int64_t start, int64_t *minutes,
                              size_t n)
{
    int64_t slot = p->res.slot_minutes > 0 ? p->res.slot_minutes : 1;
    int64_t longest = p->res.max_minutes && p->res.max_minutes < BOOKING_MAX_MINUTES
                          ? p->res.max_minutes : BOOKING_MAX_MINUTES;
    size_t count = 0;

    for (int64_t len = fablab_planner_shortest(p); len <= longest && count < n; len += slot) {
        struct booking_verdict v = fablab_planner_check(p, start, start + len * 60);
        if (v.error == BOOKING_OK)
            minutes[count++] = len;
        else if (longer_fails_too(v.error))
            break;
    }
    return count;
}

const struct store_resource *fablab_planner_resource(const struct fablab_planner *p)
{
    return &p->res;
}

const struct fablab_planner_booking *fablab_planner_bookings(const struct fablab_planner *p,
                                                             size_t *ret_n)
{
    *ret_n = p->n;
    return p->b;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

struct timer {
    sd_event_source *source;
    timer_fn fn;
    void *userdata;
};

static int timer_due(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct timer *t = userdata;

    /* sd-event has already turned a oneshot source off: the callback sees it disarmed. */
    t->fn(t->userdata);
    return 0;
}

int timer_new(sd_event *loop, clockid_t clock, uint64_t accuracy_usec, timer_fn fn,
              void *userdata, struct timer **ret)
{
    struct timer *t;
    int r;

    if (!loop || !fn || !ret)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->userdata = userdata;
    /* Created now (the clock's timerfd too), armed later: arming cannot run out of anything. */
    r = sd_event_add_time(loop, &t->source, clock, UINT64_MAX, accuracy_usec, timer_due, t);
    if (r < 0)
        goto fail;
    r = sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
    if (r < 0)
        goto fail;
    *ret = t;
    return 0;
fail:
    timer_free(t);
    return r;
}

int timer_set_priority(struct timer *t, int64_t priority)
{
    if (!t)
        return -EINVAL;
    return sd_event_source_set_priority(t->source, priority);
}

/* Both set the time first: if that fails nothing changed. Enabling a time source that
 * exists cannot fail for want of memory or descriptors (both were taken at timer_new).
 * sd-event takes UINT64_MAX as "never" and would report such a timer enabled: refused, so
 * that an armed timer always fires. */
int timer_arm_in(struct timer *t, uint64_t usec)
{
    int r;

    if (!t)
        return -EINVAL;
    if (usec == UINT64_MAX)
        return -EOVERFLOW;
    r = sd_event_source_set_time_relative(t->source, usec);
    if (r < 0)
        return r;
    return sd_event_source_set_enabled(t->source, SD_EVENT_ONESHOT);
}

int timer_arm_at(struct timer *t, uint64_t usec)
{
    int r;

    if (!t || usec == UINT64_MAX)
        return -EINVAL;
    r = sd_event_source_set_time(t->source, usec);
    if (r < 0)
        return r;
    return sd_event_source_set_enabled(t->source, SD_EVENT_ONESHOT);
}

void timer_disarm(struct timer *t)
{
    if (t)
        sd_event_source_set_enabled(t->source, SD_EVENT_OFF);
}

bool timer_armed(const struct timer *t)
{
    return t && sd_event_source_get_enabled(t->source, NULL) > 0;
}

int timer_get_due(const struct timer *t, uint64_t *ret)
{
    if (!t)
        return -EINVAL;
    if (!timer_armed(t))
        return -ENODATA;
    return sd_event_source_get_time(t->source, ret);
}

struct timer *timer_free(struct timer *t)
{
    if (t) {
        sd_event_source_disable_unref(t->source);
        free(t);
    }
    return NULL;
}

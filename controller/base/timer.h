/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* timer: a one-shot timer on the sd-event loop, in the spirit of OpenWrt's uloop_timeout.
 *
 * A module creates its timers once, when it starts: that is where running out of memory or
 * of descriptors shows, and is reported. Arming a created timer allocates nothing and
 * replaces any earlier arming; the callback runs once per arming, with the timer already
 * disarmed, so it may arm the timer again (a periodic task) or leave it. Disarming a timer
 * that is not armed does nothing.
 *
 * Times are microseconds on the timer's clock: CLOCK_MONOTONIC for durations (relock in
 * 5 s), CLOCK_REALTIME for wall-clock deadlines (a booking's end). timer_arm_in() counts
 * from the loop's "now": the time the current loop iteration woke (sd_event_now), or the
 * current time before the loop first ran. So two timers armed in one iteration for the
 * same duration fire together, and a deadline is not pushed back by the work done so far.
 *
 * Failures: every function takes NULL. timer_free() and timer_disarm() then do nothing;
 * timer_arm_*() return -EINVAL, timer_armed() false. A failed arming leaves the timer as
 * it was (still armed for its earlier time, or disarmed): the caller decides what is safe,
 * e.g. a door locks again rather than stay unlocked with no relock armed. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <systemd/sd-event.h>

struct timer;

/* Called from the loop when the timer is due; the timer is already disarmed. The callback
 * may arm it again, or free it (and its owner): the timer is not touched afterwards. */
typedef void (*timer_fn)(void *userdata);

/* Create a disarmed timer on loop. clock: CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME
 * (or their _ALARM variants). accuracy_usec: how late it may fire so that the loop can
 * wake once for several timers; 0 takes sd-event's default (250 ms), 1 is "on time".
 * 0 and *ret set, or -errno (-ENOMEM, -EMFILE: no descriptor for the clock's timerfd) and
 * *ret untouched. fn and userdata must stay valid until timer_free(). */
int timer_new(sd_event *loop, clockid_t clock, uint64_t accuracy_usec, timer_fn fn,
              void *userdata, struct timer **ret);

/* Run before other event sources due in the same iteration if priority is lower (more
 * urgent); sd-event's default is 0. 0 or -errno. */
int timer_set_priority(struct timer *t, int64_t priority);

/* Fire once, usec after the loop's now. 0, or -errno (-EOVERFLOW if now + usec does not
 * fit, -ESTALE once the loop has finished, -ECHILD in a forked child). */
int timer_arm_in(struct timer *t, uint64_t usec);
/* Fire once at usec, an absolute time on the timer's clock; a time already past fires on
 * the next loop iteration. 0 or -errno (-EINVAL for UINT64_MAX, sd-event's "never": an
 * armed timer always fires). */
int timer_arm_at(struct timer *t, uint64_t usec);
/* Do not fire (until armed again). */
void timer_disarm(struct timer *t);

/* Armed and not yet fired. */
bool timer_armed(const struct timer *t);
/* When an armed timer fires, on its clock: 0 and *ret, or -ENODATA if it is not armed. */
int timer_get_due(const struct timer *t, uint64_t *ret);

/* Disarm and release. Returns NULL: t = timer_free(t). */
struct timer *timer_free(struct timer *t);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* timer: the one-shot timer every module arms on the loop. Runs a real sd-event loop; the
 * timers under test are due at once (or never), and each loop run is bounded, so nothing
 * waits on the clock: a timer that does not fire when it should fails the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include "timer.h"

#define RUN_BOUND_USEC (5 * 1000000ull)     /* a loop pass that should never take this long */

struct counter {
    struct timer *t;
    unsigned fired;
    unsigned again;         /* arm again from the callback this many times */
    bool free_self;
    unsigned *order;        /* shared sequence, to see which fired first */
    unsigned seq;
};

static void count(void *userdata)
{
    struct counter *c = userdata;

    c->fired++;
    if (c->order)
        c->seq = ++*c->order;
    assert_false(timer_armed(c->t));    /* disarmed before the callback runs */
    if (c->again) {
        c->again--;
        assert_int_equal(timer_arm_in(c->t, 0), 0);
    }
    if (c->free_self)
        c->t = timer_free(c->t);
}

static int setup(void **state)
{
    sd_event *loop;

    if (sd_event_new(&loop) < 0)
        return -1;
    *state = loop;
    return 0;
}

static int teardown(void **state)
{
    sd_event_unref(*state);
    return 0;
}

/* One bounded loop pass: 1 if something was dispatched, 0 if the bound passed. */
static int run_once(sd_event *loop)
{
    int r = sd_event_run(loop, RUN_BOUND_USEC);
    assert_true(r >= 0);
    return r;
}

static void test_fires_once(void **state)
{
    sd_event *loop = *state;
    struct counter c = { 0 };

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &c, &c.t), 0);
    assert_false(timer_armed(c.t));
    assert_int_equal(timer_arm_in(c.t, 0), 0);
    assert_true(timer_armed(c.t));
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(c.fired, 1);
    assert_false(timer_armed(c.t));
    /* Arming again after it fired works the same. */
    assert_int_equal(timer_arm_in(c.t, 0), 0);
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(c.fired, 2);
    timer_free(c.t);
}

static void test_rearm_from_callback(void **state)
{
    sd_event *loop = *state;
    struct counter c = { .again = 2 };

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &c, &c.t), 0);
    assert_int_equal(timer_arm_in(c.t, 0), 0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(run_once(loop), 1);
    assert_int_equal(c.fired, 3);
    assert_false(timer_armed(c.t));
    timer_free(c.t);
}

/* A disarmed timer does not fire; a control timer armed alongside shows the loop ran. */
static void test_disarm(void **state)
{
    sd_event *loop = *state;
    struct counter c = { 0 }, control = { 0 };

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &c, &c.t), 0);
    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &control, &control.t), 0);
    assert_int_equal(timer_arm_in(c.t, 0), 0);
    assert_int_equal(timer_arm_in(control.t, 0), 0);
    timer_disarm(c.t);
    assert_false(timer_armed(c.t));
    timer_disarm(c.t);                  /* twice: nothing */
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(control.fired, 1);
    assert_int_equal(c.fired, 0);
    timer_free(control.t);
    timer_free(c.t);
}

/* Relative arming counts from the loop's now; each arming replaces the last. */
static void test_due_times(void **state)
{
    sd_event *loop = *state;
    struct counter c = { 0 };
    uint64_t now, due;

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 0, count, &c, &c.t), 0);
    assert_int_equal(timer_get_due(c.t, &due), -ENODATA);
    assert_true(sd_event_now(loop, CLOCK_MONOTONIC, &now) >= 0);
    assert_int_equal(timer_arm_in(c.t, 3600 * 1000000ull), 0);
    assert_int_equal(timer_get_due(c.t, &due), 0);
    assert_true(due >= now + 3600 * 1000000ull);
    assert_true(due < now + 3601 * 1000000ull);
    assert_int_equal(timer_arm_at(c.t, now + 5), 0);
    assert_int_equal(timer_get_due(c.t, &due), 0);
    assert_int_equal(due, now + 5);
    timer_free(c.t);
}

/* A wall-clock deadline already past fires on the next pass. */
static void test_realtime_deadline_in_the_past(void **state)
{
    sd_event *loop = *state;
    struct counter c = { 0 };

    assert_int_equal(timer_new(loop, CLOCK_REALTIME, 0, count, &c, &c.t), 0);
    assert_int_equal(timer_arm_at(c.t, 1), 0);
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(c.fired, 1);
    timer_free(c.t);
}

/* The more urgent of two timers due together runs first. */
static void test_priority(void **state)
{
    sd_event *loop = *state;
    unsigned order = 0;
    struct counter normal = { .order = &order }, urgent = { .order = &order };

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &normal, &normal.t), 0);
    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &urgent, &urgent.t), 0);
    assert_int_equal(timer_set_priority(urgent.t, -100), 0);
    assert_int_equal(timer_arm_at(normal.t, 1), 0);
    assert_int_equal(timer_arm_at(urgent.t, 1), 0);
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(urgent.seq, 1);
    assert_int_equal(normal.seq, 2);
    timer_free(normal.t);
    timer_free(urgent.t);
}

/* The callback may free the timer (its owner going away). */
static void test_free_from_callback(void **state)
{
    sd_event *loop = *state;
    struct counter c = { .free_self = true };

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 1, count, &c, &c.t), 0);
    assert_int_equal(timer_arm_in(c.t, 0), 0);
    assert_int_equal(run_once(loop), 1);
    assert_int_equal(c.fired, 1);
    assert_null(c.t);
}

/* A failed arming leaves the timer as it was. */
static void test_failed_arming_changes_nothing(void **state)
{
    sd_event *loop = *state;
    struct counter c = { 0 };
    uint64_t due, again;

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 0, count, &c, &c.t), 0);
    assert_int_equal(timer_arm_in(c.t, UINT64_MAX - 1), -EOVERFLOW);
    assert_false(timer_armed(c.t));
    /* sd-event's "never" is no arming: a door must not think its relock is armed. */
    assert_int_equal(timer_arm_in(c.t, UINT64_MAX), -EOVERFLOW);
    assert_false(timer_armed(c.t));
    assert_int_equal(timer_arm_at(c.t, UINT64_MAX), -EINVAL);
    assert_false(timer_armed(c.t));
    assert_int_equal(timer_arm_in(c.t, 60 * 1000000ull), 0);
    assert_int_equal(timer_get_due(c.t, &due), 0);
    assert_int_equal(timer_arm_in(c.t, UINT64_MAX), -EOVERFLOW);
    assert_true(timer_armed(c.t));
    assert_int_equal(timer_get_due(c.t, &again), 0);
    assert_int_equal(again, due);
    timer_free(c.t);
}

static void test_null(void **state)
{
    sd_event *loop = *state;
    struct timer *t = (struct timer *)&t;     /* must stay untouched */
    uint64_t due;

    assert_int_equal(timer_new(loop, CLOCK_MONOTONIC, 0, NULL, NULL, &t), -EINVAL);
    assert_ptr_equal(t, (struct timer *)&t);
    assert_int_equal(timer_new(NULL, CLOCK_MONOTONIC, 0, count, NULL, &t), -EINVAL);
    assert_int_equal(timer_new(loop, 12345, 0, count, NULL, &t), -EOPNOTSUPP);
    assert_ptr_equal(t, (struct timer *)&t);
    assert_int_equal(timer_arm_in(NULL, 0), -EINVAL);
    assert_int_equal(timer_arm_at(NULL, 0), -EINVAL);
    assert_int_equal(timer_set_priority(NULL, 0), -EINVAL);
    assert_int_equal(timer_get_due(NULL, &due), -EINVAL);
    assert_false(timer_armed(NULL));
    timer_disarm(NULL);
    assert_null(timer_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fires_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rearm_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_realtime_deadline_in_the_past, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_arming_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

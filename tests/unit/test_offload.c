/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* offload: disk work off the loop. Runs a real sd-event loop and the real thread; each loop
 * run is bounded, so a done() that never comes fails the test instead of hanging it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "offload.h"

#define RUN_BOUND_USEC (5 * 1000000ull)
#define JOBS 16

struct job {
    struct offload *o;
    int n;
    pthread_t worked_on;
    bool worked, done;
    int result;
    unsigned *order;        /* the done() sequence */
    unsigned seq;
    struct job *then;       /* given by done(), as the period close gives its second step */
};

static int work(void *arg)
{
    struct job *j = arg;

    j->worked_on = pthread_self();
    j->worked = true;
    return j->n % 3 == 0 ? -EIO : j->n;
}

static void done(int result, void *arg)
{
    struct job *j = arg;

    assert_true(j->worked);         /* the work is over before done() */
    assert_false(j->done);          /* once */
    j->done = true;
    j->result = result;
    j->seq = ++*j->order;
    if (j->then)
        assert_int_equal(offload_run(j->o, work, done, j->then), 0);
}

static void run_until(sd_event *loop, bool *flag)
{
    while (!*flag)
        assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
}

/* Jobs run off the loop's thread, in the order given; done() comes back on the loop with
 * the work's result, in the same order. */
static void test_jobs_in_order_off_the_loop(void **state)
{
    sd_event *loop;
    struct offload *o;
    struct job jobs[JOBS] = { 0 };
    unsigned order = 0;

    assert_int_equal(sd_event_new(&loop), 0);
    assert_int_equal(offload_new(loop, &o), 0);
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){ .o = o, .n = i + 1, .order = &order };
        assert_int_equal(offload_run(o, work, done, &jobs[i]), 0);
    }
    run_until(loop, &jobs[JOBS - 1].done);
    for (int i = 0; i < JOBS; i++) {
        assert_true(jobs[i].done);
        assert_int_equal(jobs[i].seq, i + 1);
        assert_int_equal(jobs[i].result, (i + 1) % 3 == 0 ? -EIO : i + 1);
        assert_false(pthread_equal(jobs[i].worked_on, pthread_self()));
    }
    assert_null(offload_free(o));
    sd_event_unref(loop);
}

/* offload_free() finishes what it was given, and a done() that gives another job (the
 * period close's second step) has it run too: every job accepted hears its result. */
static void test_free_finishes_every_job(void **state)
{
    sd_event *loop;
    struct offload *o;
    struct job second = { .n = 2 }, first = { .n = 1, .then = &second };
    unsigned order = 0;

    assert_int_equal(sd_event_new(&loop), 0);
    assert_int_equal(offload_new(loop, &o), 0);
    first.o = second.o = o;
    first.order = second.order = &order;
    assert_int_equal(offload_run(o, work, done, &first), 0);
    assert_null(offload_free(o));           /* the loop never ran */
    assert_true(first.done && second.done);
    assert_int_equal(first.result, 1);
    assert_int_equal(second.result, 2);
    assert_int_equal(second.seq, 2);
    sd_event_unref(loop);
}

/* Without an offload (a test wiring only some services) the work is done in place. */
static void test_without_an_offload_in_place(void **state)
{
    struct job second = { .n = 3 }, first = { .n = 4, .then = &second };
    unsigned order = 0;

    first.order = second.order = &order;
    assert_int_equal(offload_run(NULL, work, done, &first), 0);
    assert_true(first.done && second.done);
    assert_true(pthread_equal(first.worked_on, pthread_self()));
    assert_int_equal(first.result, 4);
    assert_int_equal(second.result, -EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_in_order_off_the_loop),
        cmocka_unit_test(test_free_finishes_every_job),
        cmocka_unit_test(test_without_an_offload_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* wakeup: a thread has the loop run a callback. Runs a real sd-event loop and real threads;
 * each loop run is bounded, so a callback that never comes fails the test instead of
 * hanging it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>

#include "wakeup.h"

#define RUN_BOUND_USEC (5 * 1000000ull)

struct state {
    struct wakeup *w;
    pthread_t loop_thread, ran_on;
    unsigned runs;
    bool free_itself;
};

static void on_wakeup(void *userdata)
{
    struct state *st = userdata;

    st->ran_on = pthread_self();
    st->runs++;
    if (st->free_itself)
        st->w = wakeup_free(st->w);
}

static void *signal_from_thread(void *userdata)
{
    wakeup_signal(userdata);
    return NULL;
}

/* A signal from another thread runs the callback on the loop's thread, once. */
static void test_signal_from_a_thread(void **state)
{
    struct state st = { .loop_thread = pthread_self() };
    sd_event *loop;
    pthread_t th;

    assert_int_equal(sd_event_new(&loop), 0);
    assert_int_equal(wakeup_new(loop, 0, on_wakeup, &st, &st.w), 0);
    assert_int_equal(sd_event_run(loop, 0), 0);     /* nothing signalled: nothing runs */
    assert_int_equal(st.runs, 0);

    assert_int_equal(pthread_create(&th, NULL, signal_from_thread, st.w), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(st.runs, 1);
    assert_true(pthread_equal(st.ran_on, st.loop_thread));
    assert_int_equal(sd_event_run(loop, 0), 0);     /* the signal was taken */
    assert_int_equal(st.runs, 1);

    wakeup_free(st.w);
    sd_event_unref(loop);
}

/* Signals given before the loop wakes run the callback once: it takes all that is ready. */
static void test_signals_coalesce(void **state)
{
    struct state st = { .loop_thread = pthread_self() };
    sd_event *loop;

    assert_int_equal(sd_event_new(&loop), 0);
    assert_int_equal(wakeup_new(loop, -5, on_wakeup, &st, &st.w), 0);
    for (int i = 0; i < 3; i++)
        wakeup_signal(st.w);
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(st.runs, 1);
    assert_int_equal(sd_event_run(loop, 0), 0);
    assert_int_equal(st.runs, 1);
    wakeup_signal(st.w);                            /* and again after that */
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(st.runs, 2);

    wakeup_free(st.w);
    sd_event_unref(loop);
}

/* The callback may free its own wakeup (its owner going away); a freed one is silent. */
static void test_freeing(void **state)
{
    struct state st = { .free_itself = true };
    sd_event *loop;

    assert_null(wakeup_free(NULL));
    assert_int_equal(sd_event_new(&loop), 0);
    assert_int_equal(wakeup_new(loop, 0, on_wakeup, &st, &st.w), 0);
    wakeup_signal(st.w);
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(st.runs, 1);
    assert_null(st.w);

    /* Freed with a signal pending: the callback does not run. */
    st.free_itself = false;
    assert_int_equal(wakeup_new(loop, 0, on_wakeup, &st, &st.w), 0);
    wakeup_signal(st.w);
    st.w = wakeup_free(st.w);
    assert_int_equal(sd_event_run(loop, 0), 0);
    assert_int_equal(st.runs, 1);
    sd_event_unref(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_from_a_thread),
        cmocka_unit_test(test_signals_coalesce),
        cmocka_unit_test(test_freeing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

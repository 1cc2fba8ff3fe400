/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* machine: power never stays on without its next deadline armed. When the deadline timer
 * cannot be armed, a power-on fails with the relay off and no session started; a running
 * session (takeover, extension, clock change) ends with power off and the reason
 * "timer_fault"; a handover window that cannot be timed is skipped. The loop's timers are
 * made to fail through the linker seam of timer_fault.h; relays are the simulated
 * back-end. Nothing waits for a timer to fire. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpio_backend.h"
#include "machine.h"
#include "timer_fault.h"
#include "util.h"

#define FAULT (-ENOMEM)
#define EVENTS_MAX 16

struct fixture {
    sd_event *loop;
    struct machine_config cfg;
    struct machine m;
    enum machine_event events[EVENTS_MAX];
    int64_t event_member[EVENTS_MAX];       /* m->member_id when the event was emitted */
    unsigned n_events;
};

static void on_event(struct machine *m, enum machine_event ev, void *userdata)
{
    struct fixture *f = userdata;

    if (f->n_events < EVENTS_MAX) {
        f->events[f->n_events] = ev;
        f->event_member[f->n_events] = m->member_id;
    }
    f->n_events++;
}

static struct fixture *fixture_new(void)
{
    static const struct door_hw hw = { .relay_ops = &relay_ops_sim, .input_ops = &input_ops_sim };
    struct fixture *f = calloc(1, sizeof(*f));
    const char *what = NULL;

    assert_non_null(f);
    assert_int_equal(sd_event_new(&f->loop), 0);
    snprintf(f->cfg.name, sizeof(f->cfg.name), "laser");
    f->cfg.relay.set = true;
    snprintf(f->cfg.relay.chip, sizeof(f->cfg.relay.chip), "gpiochip0");
    f->cfg.relay.offset = 20;
    f->cfg.warn_minutes = 5;
    f->cfg.grace_minutes = 2;
    f->cfg.handover_seconds = 60;
    f->cfg.hard_max_minutes = 240;
    assert_int_equal(machine_init(&f->m, &f->cfg, f->loop, &hw, on_event, f, &what), 0);
    return f;
}

static void fixture_free(struct fixture *f)
{
    timer_fault_set(0);
    machine_fini(&f->m);
    sd_event_unref(f->loop);
    free(f);
}

static int64_t in_minutes(int64_t minutes)
{
    return now_utc() + minutes * 60;
}

static void assert_off(const struct fixture *f)
{
    assert_int_equal(f->m.state, MACHINE_OFF);
    assert_false(machine_powered(&f->m));
    assert_false(f->m.relay.energised);
}

static void test_power_on_arms_deadline(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    assert_int_equal(f->m.state, MACHINE_ON);
    assert_true(f->m.relay.energised);
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->events[0], MACHINE_EV_ON);
    fixture_free(f);
}

/* From off: the relay goes back off, and no session was started (no event to record). */
static void test_power_on_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    timer_fault_set(FAULT);
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), FAULT);
    assert_true(timer_fault_count() > 0);
    assert_off(f);
    assert_int_equal(f->n_events, 0);
    /* Timers work again: so does the machine. */
    timer_fault_set(0);
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    assert_true(f->m.relay.energised);
    fixture_free(f);
}

/* Inside the warning period: the first deadline is the end itself. */
static void test_power_on_near_the_end_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    timer_fault_set(FAULT);
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(2)), FAULT);
    assert_off(f);
    assert_int_equal(f->n_events, 0);
    fixture_free(f);
}

/* From a handover window: the next member's session does not start, the finished member's
 * window ends now, and the session closed is the finished member's. */
static void test_power_on_from_handover_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    machine_finish(&f->m);
    assert_int_equal(f->m.state, MACHINE_HANDOVER);
    assert_true(f->m.relay.energised);
    f->n_events = 0;
    timer_fault_set(FAULT);
    assert_int_equal(machine_power_on(&f->m, 8, 0, in_minutes(60)), FAULT);
    assert_off(f);
    assert_string_equal(f->m.off_reason, "timer_fault");
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->events[0], MACHINE_EV_OFF);
    assert_int_equal(f->event_member[0], 7);
    fixture_free(f);
}

/* A takeover with power on: it cannot be timed, so power goes off, ending the session of
 * the member who was using the machine (the one the owner closes). */
static void test_takeover_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    f->n_events = 0;
    timer_fault_set(FAULT);
    assert_int_equal(machine_takeover(&f->m, 8, 0, in_minutes(60)), FAULT);
    assert_off(f);
    assert_string_equal(f->m.off_reason, "timer_fault");
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->events[0], MACHINE_EV_OFF);
    assert_int_equal(f->event_member[0], 7);
    fixture_free(f);
}

static void test_extension_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(3)), 0);
    assert_int_equal(f->m.state, MACHINE_WARNING);
    timer_fault_set(FAULT);
    machine_extend(&f->m, 0, in_minutes(60));
    assert_off(f);
    assert_string_equal(f->m.off_reason, "timer_fault");
    fixture_free(f);
}

/* The daemon's clock moved: the deadline is armed again, or power goes off. */
static void test_clock_change_fails_closed(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    timer_fault_set(FAULT);
    machine_clock_changed(&f->m);
    assert_off(f);
    assert_string_equal(f->m.off_reason, "timer_fault");
    fixture_free(f);
}

/* A handover window whose end cannot be armed is skipped: off now, as with no window. */
static void test_untimed_handover_is_skipped(void **state)
{
    struct fixture *f = fixture_new();

    (void)state;
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    timer_fault_set(FAULT);
    machine_finish(&f->m);
    assert_off(f);
    assert_string_equal(f->m.off_reason, "finished");
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_on_arms_deadline),
        cmocka_unit_test(test_power_on_fails_closed),
        cmocka_unit_test(test_power_on_near_the_end_fails_closed),
        cmocka_unit_test(test_power_on_from_handover_fails_closed),
        cmocka_unit_test(test_takeover_fails_closed),
        cmocka_unit_test(test_extension_fails_closed),
        cmocka_unit_test(test_clock_change_fails_closed),
        cmocka_unit_test(test_untimed_handover_is_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

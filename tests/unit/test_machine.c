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
    assert_int_equal(machine_init(&f->m, &f->cfg, f->loop, &hw, NULL, on_event, f, &what), 0);
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

/* ---- an asynchronous (network) relay: a test double that only records its requests ---- */

static int async_open(struct relay *r) { return 0; }
static int async_write(struct relay *r, bool on) { (*(int *)r->priv)++; return 0; }
static void async_close(struct relay *r) { }
static const struct relay_ops async_ops = {
    .backend = "test-async", .asynchronous = true,
    .open = async_open, .write = async_write, .close = async_close,
};
static int async_sent;

static struct fixture *fixture_async(int64_t running_power_w)
{
    static const struct door_hw hw = { .relay_ops = &relay_ops_sim, .input_ops = &input_ops_sim };
    struct machine_net net = { .ops = &async_ops, .device = &async_sent };
    struct fixture *f = calloc(1, sizeof(*f));
    const char *what = NULL;

    assert_non_null(f);
    assert_int_equal(sd_event_new(&f->loop), 0);
    snprintf(f->cfg.name, sizeof(f->cfg.name), "kiln");
    f->cfg.warn_minutes = 5;
    f->cfg.grace_minutes = 2;
    f->cfg.hard_max_minutes = 240;
    f->cfg.idle_off_minutes = 10;
    f->cfg.running_power_w = running_power_w;
    f->cfg.running_power_seconds = 0;
    async_sent = 0;
    assert_int_equal(machine_init(&f->m, &f->cfg, f->loop, &hw, &net, on_event, f, &what), 0);
    return f;
}

static bool saw(const struct fixture *f, enum machine_event ev)
{
    for (unsigned i = 0; i < f->n_events && i < EVENTS_MAX; i++)
        if (f->events[i] == ev)
            return true;
    return false;
}

/* The session starts with the request; the device's report confirms it; a missing answer
 * raises the alarm without ending the session, and its answer clears it. */
static void test_network_relay_confirmation_and_alarm(void **state)
{
    struct fixture *f = fixture_async(0);

    (void)state;
    assert_int_equal(async_sent, 1);            /* "off" asked at start */
    relay_report_state(&f->m.relay, false);
    assert_false(f->m.relay.pending);
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    assert_int_equal(f->m.state, MACHINE_ON);
    assert_true(f->m.relay.pending);
    assert_false(f->m.relay.energised);
    assert_int_equal(async_sent, 2);
    relay_report_overdue(&f->m.relay);
    assert_string_equal(f->m.alarm, "relay_fault");
    assert_string_equal(f->m.session_alarm, "relay_fault");
    assert_true(saw(f, MACHINE_EV_RELAY_FAULT));
    assert_int_equal(f->m.state, MACHINE_ON);    /* never a silent "off" */
    assert_int_equal(async_sent, 3);            /* asked again */
    relay_report_state(&f->m.relay, true);
    assert_null(f->m.alarm);
    assert_true(saw(f, MACHINE_EV_ALARM_CLEARED));
    assert_true(f->m.relay.energised);
    /* Offline: an alarm; back: asked again, confirmed, cleared. */
    f->n_events = 0;
    relay_report_online(&f->m.relay, false);
    assert_string_equal(f->m.alarm, "device_offline");
    assert_true(saw(f, MACHINE_EV_DEVICE_OFFLINE));
    relay_report_online(&f->m.relay, true);
    assert_true(saw(f, MACHINE_EV_DEVICE_ONLINE));
    assert_true(f->m.relay.pending);
    assert_string_equal(f->m.alarm, "device_offline");     /* until it confirms */
    relay_report_state(&f->m.relay, true);
    assert_null(f->m.alarm);
    /* Off is asked; the machine is off at once, the relay pending until confirmed. */
    machine_power_off(&f->m, "finished");
    assert_int_equal(f->m.state, MACHINE_OFF);
    assert_false(f->m.relay.requested);
    assert_true(f->m.relay.pending);
    assert_true(f->m.relay.energised);         /* as far as anyone knows, until confirmed */
    relay_report_state(&f->m.relay, false);
    assert_false(f->m.relay.energised);
    fixture_free(f);
}

/* Running from power readings: above the threshold is running, below is idle. */
static void test_running_from_power(void **state)
{
    struct fixture *f = fixture_async(50);

    (void)state;
    assert_true(machine_senses_running(&f->m));
    assert_int_equal(machine_power_on(&f->m, 7, 0, in_minutes(60)), 0);
    assert_true(f->m.idle_until > 0);           /* idle from the start: counting */
    machine_power_reading(&f->m, 120000);
    assert_true(f->m.running);
    assert_int_equal(f->m.idle_until, 0);
    machine_power_reading(&f->m, 49999);
    assert_false(f->m.running);
    assert_true(f->m.idle_until > 0);
    machine_power_reading(&f->m, 50000);
    assert_true(f->m.running);
    fixture_free(f);
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
        cmocka_unit_test(test_network_relay_confirmation_and_alarm),
        cmocka_unit_test(test_running_from_power),
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

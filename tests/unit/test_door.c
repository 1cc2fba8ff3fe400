/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* door: an unlock never outlives its relock. When the relock timer cannot be armed, the door
 * locks again at once and the unlock fails: a fail-secure strike's relay is de-energised, a
 * fail-safe maglock's energised (locked is "energised" for a maglock). The access engine
 * then records a relay fault, not a grant. The loop's timers are made to fail through the
 * linker seam of timer_fault.h; relays and inputs are the simulated back-end. Nothing
 * waits for a timer to fire. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "door.h"
#include "gpio_backend.h"
#include "store.h"
#include "timer_fault.h"

#define FAULT (-ENOMEM)
#define EVENTS_MAX 16

struct fixture {
    sd_event *loop;
    struct door_config cfg;
    struct door door;
    enum door_event events[EVENTS_MAX];
    unsigned n_events;
};

static void on_event(struct door *d, enum door_event ev, void *userdata)
{
    struct fixture *f = userdata;

    (void)d;
    if (f->n_events < EVENTS_MAX)
        f->events[f->n_events] = ev;
    f->n_events++;
}

static void line(struct line_spec *l, unsigned offset)
{
    l->set = true;
    snprintf(l->chip, sizeof(l->chip), "gpiochip0");
    l->offset = offset;
}

static struct fixture *fixture_new(enum door_fail_mode fail)
{
    static const struct door_hw hw = {
        .relay_ops = &relay_ops_sim, .input_ops = &input_ops_sim, .debounce_ms = 0,
    };
    struct fixture *f = calloc(1, sizeof(*f));
    const char *what = NULL;

    assert_non_null(f);
    assert_int_equal(sd_event_new(&f->loop), 0);
    snprintf(f->cfg.name, sizeof(f->cfg.name), "front");
    snprintf(f->cfg.zone, sizeof(f->cfg.zone), "main");
    line(&f->cfg.relay, 5);
    line(&f->cfg.exit_button, 6);
    f->cfg.unlock_seconds = 5;
    f->cfg.fail = fail;
    assert_int_equal(door_init(&f->door, &f->cfg, f->loop, &hw, on_event, f, &what), 0);
    f->n_events = 0;
    return f;
}

static void fixture_free(struct fixture *f)
{
    timer_fault_set(0);
    door_fini(&f->door);
    sd_event_unref(f->loop);
    free(f);
}

/* The relay's electrical state for a door that is locked. */
static bool locked_energised(const struct fixture *f)
{
    return f->cfg.fail == DOOR_FAIL_SAFE;
}

static void assert_locked(const struct fixture *f)
{
    assert_false(f->door.unlocked);
    assert_int_equal(f->door.relay.energised, locked_energised(f));
    assert_int_equal(f->door.unlock_until, 0);
    assert_int_equal(door_unlock_remaining(&f->door), 0);
}

static void test_unlock_arms_relock(void **state)
{
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);

    (void)state;
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), 0);
    assert_true(f->door.unlocked);
    assert_true(f->door.relay.energised);
    assert_in_range(door_unlock_remaining(&f->door), 4, 5);
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->events[0], DOOR_EV_UNLOCKED);
    fixture_free(f);
}

static void unlock_fails_closed(enum door_fail_mode fail)
{
    struct fixture *f = fixture_new(fail);

    assert_locked(f);
    timer_fault_set(FAULT);
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), FAULT);
    assert_true(timer_fault_count() > 0);
    assert_locked(f);
    /* What listeners heard matches the relay: it moved, then moved back. */
    assert_int_equal(f->n_events, 2);
    assert_int_equal(f->events[0], DOOR_EV_UNLOCKED);
    assert_int_equal(f->events[1], DOOR_EV_LOCKED);
    /* Timers work again: so does the door. */
    timer_fault_set(0);
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), 0);
    assert_true(f->door.unlocked);
    assert_int_equal(f->door.relay.energised, !locked_energised(f));
    fixture_free(f);
}

static void test_fail_secure_unlock_fails_closed(void **state)
{
    (void)state;
    unlock_fails_closed(DOOR_FAIL_SECURE);      /* strike: relay de-energised */
}

static void test_fail_safe_unlock_fails_closed(void **state)
{
    (void)state;
    unlock_fails_closed(DOOR_FAIL_SAFE);        /* maglock: relay energised, magnet holds */
}

/* A longer unlock over a running one: its relock cannot be armed, so the door locks rather
 * than trust a relock it could not move. */
static void test_extension_fails_closed(void **state)
{
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);

    (void)state;
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), 0);
    timer_fault_set(FAULT);
    assert_int_equal(door_unlock_for(&f->door, 60, DOOR_CAUSE_MANUAL), FAULT);
    assert_locked(f);
    fixture_free(f);
}

/* A shorter unlock inside a running one needs no timer: it succeeds, the relock stays. */
static void test_shorter_unlock_needs_no_timer(void **state)
{
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);

    (void)state;
    assert_int_equal(door_unlock_for(&f->door, 60, DOOR_CAUSE_MANUAL), 0);
    timer_fault_set(FAULT);
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), 0);
    assert_int_equal(timer_fault_count(), 0);
    assert_true(f->door.relay.energised);
    assert_in_range(door_unlock_remaining(&f->door), 59, 60);
    fixture_free(f);
}

/* In a free-entry window the door stays open (the window, not the tap, holds it), but the
 * tap's own unlock failed: when the window ends, the door locks. */
static void test_free_entry_window_keeps_door_open(void **state)
{
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);

    (void)state;
    door_set_free_entry(&f->door, true);
    assert_true(f->door.relay.energised);
    timer_fault_set(FAULT);
    assert_int_equal(door_unlock_for(&f->door, 5, DOOR_CAUSE_TAP), FAULT);
    assert_true(f->door.unlocked);
    assert_true(f->door.relay.energised);
    assert_int_equal(f->door.unlock_until, 0);
    door_set_free_entry(&f->door, false);
    assert_locked(f);
    fixture_free(f);
}

/* The exit button goes through the same unlock. */
static void test_exit_button_fails_closed(void **state)
{
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);

    (void)state;
    timer_fault_set(FAULT);
    assert_int_equal(input_sim_set(&f->door.exit_button, true), 0);
    assert_true(timer_fault_count() > 0);
    assert_locked(f);
    fixture_free(f);
}

/* ---- the access engine: a granted tap whose unlock failed is a relay fault ---- */

static char db_dir[PATH_MAX], db_path[PATH_MAX + 16];

static int store_setup(void **state)
{
    const char *tmp = getenv("PORTIER_TEST_TMP");
    char cmd[PATH_MAX + 16];
    struct store *s;

    snprintf(cmd, sizeof(cmd), "mkdir -p %s", tmp && *tmp ? tmp : "/tmp");
    if (system(cmd) != 0)
        return -1;
    snprintf(db_dir, sizeof(db_dir), "%s/door-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(db_dir))
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/portier.db", db_dir);
    if (store_open(db_path, &s) < 0)
        return -1;
    *state = s;
    return 0;
}

static int store_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    store_free(*state);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", db_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int last_event(const struct store_event *ev, void *userdata)
{
    *(struct store_event *)userdata = *ev;
    return 0;
}

static void test_access_records_relay_fault(void **state)
{
    static const uint8_t key[CARDID_KEY_LEN] = { 1, 2, 3 };
    static const uint8_t uid[4] = { 0x04, 0xa1, 0xb2, 0xc3 };
    struct store *s = *state;
    struct fixture *f = fixture_new(DOOR_FAIL_SECURE);
    struct access_engine *e;
    struct access_tap tap;
    struct store_event ev = { 0 };
    struct reader_event card_ev = { .kind = READER_CARD_ARRIVED, .uid_len = 4, .targets = 1 };
    uint8_t hash[STORE_HASH_LEN];
    int64_t plan, member, card;

    assert_int_equal(store_plan_add(s, "open", "*", "always", &plan), 0);
    assert_int_equal(store_member_add(s, "Alice", "", plan, 0, 0, &member), 0);
    assert_int_equal(access_engine_new(s, key, 0, &e), 0);
    access_card_hash(e, uid, sizeof(uid), hash);
    assert_int_equal(store_card_add(s, member, hash, "", &card), 0);
    assert_int_equal(store_resource_ensure(s, "door", "front", "main", &f->door.resource_id), 0);
    memcpy(card_ev.uid, uid, sizeof(uid));

    /* Granted and opened while timers work... */
    assert_int_equal(access_handle_tap(e, &f->door, "front", &card_ev, &tap), 0);
    assert_true(tap.granted);
    assert_int_equal(tap.relay_error, 0);
    assert_true(store_events_foreach(s, 0, 0, last_event, &ev) > 0);
    assert_true(ev.granted);
    assert_string_equal(ev.reason, "granted");
    assert_int_equal(door_lock_now(&f->door), 0);

    /* ... a relay fault, and a locked door, when the relock cannot be armed. */
    timer_fault_set(FAULT);
    assert_int_equal(access_handle_tap(e, &f->door, "front", &card_ev, &tap), 0);
    assert_int_equal(tap.relay_error, FAULT);
    assert_true(store_events_foreach(s, 0, 0, last_event, &ev) > 0);
    assert_int_equal(ev.member_id, member);
    assert_false(ev.granted);
    assert_string_equal(ev.reason, "relay_fault");
    assert_locked(f);

    access_engine_free(e);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlock_arms_relock),
        cmocka_unit_test(test_fail_secure_unlock_fails_closed),
        cmocka_unit_test(test_fail_safe_unlock_fails_closed),
        cmocka_unit_test(test_extension_fails_closed),
        cmocka_unit_test(test_shorter_unlock_needs_no_timer),
        cmocka_unit_test(test_free_entry_window_keeps_door_open),
        cmocka_unit_test(test_exit_button_fails_closed),
        cmocka_unit_test_setup_teardown(test_access_records_relay_fault, store_setup,
                                        store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

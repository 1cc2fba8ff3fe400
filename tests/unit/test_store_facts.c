/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_facts: rows as the policy sees them. Hours that do not parse mean closed, for the
 * door (plan hours), the machine (plan and opening hours) and the booking rules the web page
 * shows — never open. The plan rows are real: written and read back through the store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "booking.h"
#include "store_fixture.h"

#define NOW 1767704400LL    /* Tuesday 6 January 2026, 14:00 CET */
#define DAY 86400

/* A member with a card on a plan with these hours; returns the subject of the card. */
static void subject_on_plan(struct store *s, const char *hours, uint8_t seed,
                            struct store_subject *ret)
{
    char name[16];
    uint8_t hash[STORE_HASH_LEN];
    int64_t plan = 0, member = 0;

    snprintf(name, sizeof(name), "plan%u", seed);
    /* The store keeps what it is given: the daemon checks hours before, but a file edited by
     * hand or by another version may hold anything. */
    assert_int_equal(store_plan_add(s, name, "*", hours, &plan), 0);
    assert_int_equal(store_member_add(s, name, NULL, plan, 0, 0, &member), 0);
    hash_of(seed, hash);
    assert_int_equal(store_card_add(s, member, hash, NULL, NULL), 0);
    assert_int_equal(store_subject_lookup(s, hash, ret), 0);
}

static struct policy_verdict door_verdict(const struct store_subject *subj,
                                          struct store_subject_facts *facts)
{
    struct policy_door door = { .zone = "main" };
    struct policy_request req = { .now = NOW, .door = &door };

    local_time_at(NOW, &req.local);
    store_subject_facts(subj, facts, &req);
    return policy_decide(&req);
}

static void test_readable_plan_hours_open_the_door(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    struct store_subject_facts facts;
    struct policy_verdict v;

    subject_on_plan(s, "always", 1, &subj);
    v = door_verdict(&subj, &facts);
    assert_true(v.granted);
    assert_false(facts.hours_unreadable);
    assert_string_equal(facts.plan.zones, "*");

    subject_on_plan(s, "Tue 13:00-15:00", 2, &subj);
    assert_true(door_verdict(&subj, &facts).granted);
    subject_on_plan(s, "Tue 15:00-16:00", 3, &subj);
    v = door_verdict(&subj, &facts);
    assert_false(v.granted);
    assert_int_equal(v.reason, POLICY_OUTSIDE_PLAN_HOURS);
    assert_false(facts.hours_unreadable);
    store_free(s);
}

static void test_unreadable_plan_hours_keep_the_door_closed(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    static const char *const unreadable[] = {
        "whenever", "Tue 13:00-25:00", "Mon-Fri", "Tue 14:00-15:00,", "",
    };

    for (size_t i = 0; i < N_ELEMS(unreadable); i++) {
        struct store_subject subj;
        struct store_subject_facts facts;
        struct policy_verdict v;

        subject_on_plan(s, unreadable[i], (uint8_t)(10 + i), &subj);
        assert_string_equal(subj.hours, unreadable[i]);     /* the text, as stored */
        v = door_verdict(&subj, &facts);
        if (v.granted)
            fail_msg("hours '%s' opened the door", unreadable[i]);
        assert_int_equal(v.reason, POLICY_OUTSIDE_PLAN_HOURS);
        assert_true(facts.hours_unreadable);
    }
    store_free(s);
}

static void test_subject_facts_carry_card_member_and_no_plan(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    struct store_subject_facts facts;
    uint8_t hash[STORE_HASH_LEN];
    int64_t member = 0;

    assert_int_equal(store_member_add(s, "Nobody", NULL, 0, 0, NOW + DAY, &member), 0);
    hash_of(40, hash);
    assert_int_equal(store_card_add(s, member, hash, NULL, NULL), 0);
    assert_int_equal(store_subject_lookup(s, hash, &subj), 0);
    assert_int_equal(door_verdict(&subj, &facts).reason, POLICY_NO_PLAN);
    assert_false(facts.hours_unreadable);       /* no plan: no hours to read */
    assert_true(facts.card.enabled);
    assert_int_equal(facts.member.valid_until, NOW + DAY);

    subj.card_enabled = false;
    assert_int_equal(door_verdict(&subj, &facts).reason, POLICY_CARD_DISABLED);
    subj.card_enabled = true;
    subj.status = MEMBER_SUSPENDED;
    assert_int_equal(door_verdict(&subj, &facts).reason, POLICY_MEMBER_SUSPENDED);
    store_free(s);
}

/* A machine with these opening hours, as the store reads it back. */
static void machine_with_hours(struct store *s, const char *name, const char *hours,
                               struct store_resource *ret)
{
    int64_t id = 0;

    assert_int_equal(store_resource_ensure(s, "machine", name, "fablab", &id), 0);
    assert_int_equal(store_resource_get(s, name, ret), 0);
    snprintf(ret->hours, sizeof(ret->hours), "%s", hours);
    assert_int_equal(store_machine_rules_put(s, ret), 0);
    assert_int_equal(store_resource_get(s, name, ret), 0);
    assert_string_equal(ret->hours, hours);
}

static struct policy_machine_verdict machine_verdict(const struct store_subject *subj,
                                                     const struct store_machine_facts *mf)
{
    struct policy_door zone = { .zone = "fablab" };
    struct store_subject_facts facts;
    struct policy_machine_request req = { .base = { .now = NOW, .door = &zone },
                                          .member_id = subj->member_id,
                                          .machine = &mf->machine };

    local_time_at(NOW, &req.base.local);
    store_subject_facts(subj, &facts, &req.base);
    return policy_decide_machine(&req);
}

/* What the web page and the booking service ask: may a slot of the next hour be booked? */
static enum booking_error next_hour_bookable(const struct store_machine_facts *mf)
{
    struct booking_rules rules = { .slot_minutes = 30, .min_minutes = 30, .max_minutes = 240,
                                   .window_days = 14, .hours = &mf->hours };
    struct booking_request req = { .now = NOW, .start = NOW + 3600, .end = NOW + 5400,
                                   .rules = &rules, .member_active = true, .qualified = true };

    return booking_check(&req).error;
}

static void test_machine_hours(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_resource open, closed, broken;
    struct store_machine_facts mf;
    struct store_subject subj;
    struct policy_machine_verdict v;
    struct local_time lt;

    subject_on_plan(s, "always", 50, &subj);
    machine_with_hours(s, "laser", "always", &open);
    machine_with_hours(s, "lathe", "Wed 08:00-20:00", &closed);
    machine_with_hours(s, "mill", "Tue 08:00-20:00 and more", &broken);

    store_machine_facts(&open, NOW, DAY, &mf);
    assert_false(mf.hours_unreadable);
    assert_int_equal(mf.machine.closing_at, NOW + DAY);
    assert_true(machine_verdict(&subj, &mf).granted);
    assert_int_equal(next_hour_bookable(&mf), BOOKING_OK);

    store_machine_facts(&closed, NOW, DAY, &mf);
    assert_false(mf.hours_unreadable);
    v = machine_verdict(&subj, &mf);
    assert_false(v.granted);
    assert_int_equal(v.reason, POLICY_OUTSIDE_OPENING_HOURS);

    /* Unreadable: closed at the interlock, in the booking rules and on the page's grid. */
    store_machine_facts(&broken, NOW, DAY, &mf);
    assert_true(mf.hours_unreadable);
    assert_true(mf.machine.closing_at <= NOW);
    v = machine_verdict(&subj, &mf);
    assert_false(v.granted);
    assert_int_equal(v.reason, POLICY_OUTSIDE_OPENING_HOURS);
    assert_int_equal(next_hour_bookable(&mf), BOOKING_OUTSIDE_HOURS);
    for (int64_t t = NOW; t < NOW + 7 * DAY; t += 1800) {
        local_time_at(t, &lt);
        assert_false(schedule_contains(&mf.hours, &lt));
    }
    store_free(s);
}

/* The plan's hours bind at the machine too: unreadable ones refuse power. */
static void test_unreadable_plan_hours_refuse_the_machine(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_resource laser;
    struct store_machine_facts mf;
    struct store_subject subj;
    struct policy_machine_verdict v;

    subject_on_plan(s, "daily 25:00-26:00", 60, &subj);
    machine_with_hours(s, "laser", "always", &laser);
    store_machine_facts(&laser, NOW, DAY, &mf);
    v = machine_verdict(&subj, &mf);
    assert_false(v.granted);
    assert_int_equal(v.reason, POLICY_OUTSIDE_PLAN_HOURS);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_readable_plan_hours_open_the_door),
        STORE_TEST(test_unreadable_plan_hours_keep_the_door_closed),
        STORE_TEST(test_subject_facts_carry_card_member_and_no_plan),
        STORE_TEST(test_machine_hours),
        STORE_TEST(test_unreadable_plan_hours_refuse_the_machine),
    };
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

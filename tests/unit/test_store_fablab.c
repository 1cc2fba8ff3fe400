/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_fablab.c: resources and machine rules, trainings and qualifications, bookings and
 * machine sessions, on real SQLite files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"

/* ---- resources ---- */

static void test_resources(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    int64_t a = 0, b = 0, again = 0;
    sqlite3 *db;

    assert_int_equal(store_resource_ensure(s, "door", "front", "main", &a), 0);
    assert_int_equal(store_resource_ensure(s, "door", "back", NULL, &b), 0);
    assert_true(a > 0 && b > 0 && a != b);
    assert_int_equal(store_resource_ensure(s, "door", "front", "fablab", &again), 0);
    assert_int_equal(again, a);         /* same name, same id; the zone follows the config */
    assert_int_equal(store_resource_ensure(s, "elevator", "lift", "main", &again), -EINVAL);
    assert_int_equal(store_commit(s), 0);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM resources"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM resources WHERE name = 'front' AND "
                                 "zone = 'fablab'"),
                     1);
    sqlite3_close(db);
    store_free(s);
}

/* ---- machines: rules, out of order ---- */

static int64_t add_machine(struct store *s, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_resource_ensure(s, "machine", name, "fablab", &id), 0);
    assert_true(id > 0);
    return id;
}

static int64_t add_member(struct store *s, const char *name)
{
    int64_t id = 0;
    assert_int_equal(store_member_add(s, name, NULL, 0, 0, 0, &id), 0);
    return id;
}

static int collect_name(const char *name, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8)
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
    c->n++;
    return 0;
}

static void test_resource_defaults_without_rules(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_resource r;
    int64_t laser = add_machine(s, "laser");

    memset(&r, 0x5a, sizeof(r));
    assert_int_equal(store_resource_get(s, "laser", &r), 0);
    assert_int_equal(r.id, laser);
    assert_string_equal(r.kind, "machine");
    assert_string_equal(r.name, "laser");
    assert_string_equal(r.zone, "fablab");
    assert_false(r.out_of_order);
    assert_string_equal(r.out_of_order_reason, "");
    assert_false(r.has_rules);
    assert_int_equal(r.training_id, 0);
    assert_string_equal(r.training, "");
    assert_int_equal(r.slot_minutes, 30);
    assert_int_equal(r.min_minutes, 30);
    assert_int_equal(r.max_minutes, 240);
    assert_int_equal(r.window_days, 14);
    assert_int_equal(r.quota_day_minutes, 0);
    assert_int_equal(r.quota_week_minutes, 0);
    assert_int_equal(r.cancel_deadline_minutes, 60);
    assert_string_equal(r.hours, "always");
    assert_false(r.booking_required);
    assert_int_equal(r.walkup_free_minutes, 15);

    assert_int_equal(store_resource_get(s, "Laser", &r), -ENOENT);
    assert_int_equal(store_resource_get(s, "nothing", &r), -ENOENT);
    store_free(s);
}

static void test_machine_rules_round_trip(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_resource r, back;
    struct names seen = { 0 };
    int64_t laser, training = 0, door = 0;

    laser = add_machine(s, "laser");
    add_machine(s, "cnc");
    assert_int_equal(store_resource_ensure(s, "door", "front", "main", &door), 0);
    assert_int_equal(store_training_add(s, "laser-basics", NULL, &training), 0);

    assert_int_equal(store_resource_get(s, "laser", &r), 0);
    r.training_id = training;
    r.slot_minutes = 15;
    r.min_minutes = 45;
    r.max_minutes = 180;
    r.window_days = 7;
    r.quota_day_minutes = 120;
    r.quota_week_minutes = 360;
    r.cancel_deadline_minutes = 1440;
    snprintf(r.hours, sizeof(r.hours), "Mon-Fri 09:00-18:00, Sat 10:00-13:00");
    r.booking_required = true;
    r.walkup_free_minutes = 20;
    assert_int_equal(store_machine_rules_put(s, &r), 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    s = open_ok(f->path);       /* durable */
    assert_int_equal(store_resource_get(s, "laser", &back), 0);
    assert_int_equal(back.id, laser);
    assert_true(back.has_rules);
    assert_int_equal(back.training_id, training);
    assert_string_equal(back.training, "laser-basics");
    assert_int_equal(back.slot_minutes, 15);
    assert_int_equal(back.min_minutes, 45);
    assert_int_equal(back.max_minutes, 180);
    assert_int_equal(back.window_days, 7);
    assert_int_equal(back.quota_day_minutes, 120);
    assert_int_equal(back.quota_week_minutes, 360);
    assert_int_equal(back.cancel_deadline_minutes, 1440);
    assert_string_equal(back.hours, "Mon-Fri 09:00-18:00, Sat 10:00-13:00");
    assert_true(back.booking_required);
    assert_int_equal(back.walkup_free_minutes, 20);
    /* the other machine is untouched */
    assert_int_equal(store_resource_get(s, "cnc", &r), 0);
    assert_false(r.has_rules);

    /* writing again updates in place; training 0 means none */
    back.training_id = 0;
    back.booking_required = false;
    back.slot_minutes = 60;
    assert_int_equal(store_machine_rules_put(s, &back), 0);
    assert_int_equal(store_resource_get(s, "laser", &r), 0);
    assert_true(r.has_rules);
    assert_int_equal(r.training_id, 0);
    assert_string_equal(r.training, "");
    assert_false(r.booking_required);
    assert_int_equal(r.slot_minutes, 60);
    assert_int_equal(r.max_minutes, 180);
    assert_int_equal(store_commit(s), 0);
    {
        sqlite3 *db = raw_open(f->path);
        assert_int_equal(raw_int(db, "SELECT count(*) FROM machine_rules"), 1);
        sqlite3_close(db);
    }

    /* listing by kind, by name */
    assert_int_equal(store_resources_foreach(s, "machine", collect_name, &seen), 2);
    assert_string_equal(seen.name[0], "cnc");
    assert_string_equal(seen.name[1], "laser");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_resources_foreach(s, "door", collect_name, &seen), 1);
    assert_string_equal(seen.name[0], "front");
    store_free(s);
}

static void test_out_of_order(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_resource r;
    int64_t laser = add_machine(s, "laser"), cnc = add_machine(s, "cnc");

    assert_int_equal(store_resource_set_out_of_order(s, laser, true, "tube replaced"), 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    s = open_ok(f->path);
    assert_int_equal(store_resource_get(s, "laser", &r), 0);
    assert_true(r.out_of_order);
    assert_string_equal(r.out_of_order_reason, "tube replaced");
    assert_int_equal(store_resource_get(s, "cnc", &r), 0);
    assert_false(r.out_of_order);

    /* back in order: the reason goes too */
    assert_int_equal(store_resource_set_out_of_order(s, laser, false, "ignored"), 0);
    assert_int_equal(store_resource_get(s, "laser", &r), 0);
    assert_false(r.out_of_order);
    assert_string_equal(r.out_of_order_reason, "");
    /* no reason given */
    assert_int_equal(store_resource_set_out_of_order(s, cnc, true, NULL), 0);
    assert_int_equal(store_resource_get(s, "cnc", &r), 0);
    assert_true(r.out_of_order);
    assert_string_equal(r.out_of_order_reason, "");
    assert_int_equal(store_resource_set_out_of_order(s, 424242, true, "x"), -ENOENT);
    /* re-ensuring the resource from the config keeps the flag */
    assert_int_equal(store_resource_ensure(s, "machine", "cnc", "workshop", &laser), 0);
    assert_int_equal(store_resource_get(s, "cnc", &r), 0);
    assert_true(r.out_of_order);
    assert_string_equal(r.zone, "workshop");
    store_free(s);
}

/* ---- trainings and qualifications ---- */

struct trainings_seen {
    unsigned n;
    struct store_training t[8];
};

static int collect_training(const struct store_training *t, void *userdata)
{
    struct trainings_seen *seen = userdata;
    if (seen->n < 8)
        seen->t[seen->n] = *t;
    seen->n++;
    return 0;
}

struct quals_seen {
    unsigned n;
    struct store_qualification q[8];
};

static int collect_qualification(const struct store_qualification *q, void *userdata)
{
    struct quals_seen *seen = userdata;
    if (seen->n < 8)
        seen->q[seen->n] = *q;
    seen->n++;
    return 0;
}

static void test_trainings(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct trainings_seen seen = { 0 };
    int64_t laser = 0, cnc = 0, again = -1, id = -1, ada, bob, cy;
    const int64_t now = 2000000000;

    assert_int_equal(store_training_add(s, "laser-basics", "safety and focus", &laser), 0);
    assert_int_equal(store_training_add(s, "cnc", NULL, &cnc), 0);
    assert_true(laser > 0 && cnc > 0 && laser != cnc);
    assert_int_equal(store_training_add(s, "cnc", "again", &again), -EEXIST);
    assert_int_equal(again, -1);
    assert_int_equal(store_training_find(s, "cnc", &id), 0);
    assert_int_equal(id, cnc);
    assert_int_equal(store_training_find(s, "CNC", &id), -ENOENT);
    assert_int_equal(id, cnc);

    ada = add_member(s, "Ada");
    bob = add_member(s, "Bob");
    cy = add_member(s, "Cy");
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", 0, NULL), 0);
    assert_int_equal(store_qualification_grant(s, bob, laser, "manager", now + 1, NULL), 0);
    /* expired at now (exclusive) and revoked grants do not count */
    assert_int_equal(store_qualification_grant(s, cy, laser, "manager", now, NULL), 0);
    assert_int_equal(store_qualification_grant(s, cy, cnc, "manager", 0, NULL), 0);
    assert_int_equal(store_qualification_revoke(s, cy, cnc, "manager"), 0);

    assert_int_equal(store_trainings_foreach(s, now, collect_training, &seen), 2);
    assert_string_equal(seen.t[0].name, "cnc");             /* by name */
    assert_int_equal(seen.t[0].id, cnc);
    assert_string_equal(seen.t[0].description, "");
    assert_int_equal(seen.t[0].qualified_members, 0);
    assert_string_equal(seen.t[1].name, "laser-basics");
    assert_string_equal(seen.t[1].description, "safety and focus");
    assert_int_equal(seen.t[1].qualified_members, 2);
    /* a second earlier, Cy's grant still counts */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_trainings_foreach(s, now - 1, collect_training, &seen), 2);
    assert_int_equal(seen.t[1].qualified_members, 3);
    store_free(s);
}

/* A renewed qualification is a second grant to the same member; the member is still one
 * qualified member. */
static void test_trainings_count_members_not_grants(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct trainings_seen seen = { 0 };
    int64_t laser = 0, ada, bob;
    const int64_t now = 2000000000;

    assert_int_equal(store_training_add(s, "laser-basics", NULL, &laser), 0);
    ada = add_member(s, "Ada");
    bob = add_member(s, "Bob");
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", now + 86400, NULL), 0);
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", now + 400 * 86400,
                                               NULL),
                     0);                                    /* renewal */
    assert_int_equal(store_qualification_grant(s, bob, laser, "manager", 0, NULL), 0);
    assert_int_equal(store_trainings_foreach(s, now, collect_training, &seen), 1);
    store_free(s);                  /* before the check, so a failure leaks nothing */
    assert_int_equal(seen.t[0].qualified_members, 2);
}

struct trainers_seen {
    unsigned n;
    int64_t id[4];
    char name[4][96];
};

static int collect_trainer(int64_t member_id, const char *member, void *userdata)
{
    struct trainers_seen *seen = userdata;
    if (seen->n < 4) {
        seen->id[seen->n] = member_id;
        snprintf(seen->name[seen->n], sizeof(seen->name[0]), "%s", member);
    }
    seen->n++;
    return 0;
}

static void test_trainers(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct trainers_seen seen = { 0 };
    int64_t laser = 0, lathe = 0, ada, bob;
    sqlite3 *db;

    assert_int_equal(store_training_add(s, "laser-basics", NULL, &laser), 0);
    assert_int_equal(store_training_add(s, "lathe-basics", NULL, &lathe), 0);
    ada = add_member(s, "Ada");
    bob = add_member(s, "Bob");
    assert_int_equal(store_trainer_is(s, laser, ada), 0);
    assert_int_equal(store_trainer_count(s, ada), 0);
    assert_int_equal(store_trainer_set(s, laser, ada, true, "manager:uid=0"), 0);
    assert_int_equal(store_trainer_set(s, laser, ada, true, "manager:uid=0"), 0);  /* again */
    assert_int_equal(store_trainer_set(s, lathe, ada, true, "manager:uid=0"), 0);
    assert_int_equal(store_trainer_set(s, laser, bob, true, "manager:uid=0"), 0);
    assert_int_equal(store_trainer_is(s, laser, ada), 1);
    assert_int_equal(store_trainer_is(s, lathe, bob), 0);
    assert_int_equal(store_trainer_count(s, ada), 2);
    assert_int_equal(store_trainers_foreach(s, laser, collect_trainer, &seen), 2);
    assert_int_equal(seen.id[0], ada);
    assert_string_equal(seen.name[0], "Ada");
    assert_string_equal(seen.name[1], "Bob");

    assert_int_equal(store_trainer_set(s, laser, ada, false, NULL), 0);
    assert_int_equal(store_trainer_set(s, laser, ada, false, NULL), -ENOENT);
    assert_int_equal(store_trainer_is(s, laser, ada), 0);
    assert_int_equal(store_trainer_count(s, ada), 1);
    /* A member or training that does not exist: the foreign keys refuse it. */
    assert_int_equal(store_trainer_set(s, laser, ada + 100, true, "manager:uid=0"), -EINVAL);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM trainers"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM trainers WHERE named_by = 'manager:uid=0'"),
                     2);
    sqlite3_close(db);
}

static void test_qualifications(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct quals_seen seen = { 0 };
    int64_t laser = 0, cnc = 0, ada, bob, q1 = 0, q2 = 0, expires = -1;

    assert_int_equal(store_training_add(s, "laser", NULL, &laser), 0);
    assert_int_equal(store_training_add(s, "cnc", NULL, &cnc), 0);
    ada = add_member(s, "Ada");
    bob = add_member(s, "Bob");

    /* nothing yet; unknown member or training refused */
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), -ENOENT);
    assert_int_equal(expires, -1);
    assert_int_equal(store_qualification_grant(s, 424242, laser, "manager", 0, NULL), -ENOENT);
    assert_int_equal(store_qualification_grant(s, ada, 424242, "manager", 0, NULL), -ENOENT);
    assert_int_equal(store_qualification_revoke(s, ada, laser, "manager"), -ENOENT);

    /* the longest-lasting grant wins; expired ones are returned too (policy decides) */
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", 2000, &q1), 0);
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), 0);
    assert_int_equal(expires, 2000);
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", 3000, &q2), 0);
    assert_true(q2 > q1);
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), 0);
    assert_int_equal(expires, 3000);
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", 2500, NULL), 0);
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), 0);
    assert_int_equal(expires, 3000);
    /* no expiry beats any expiry, however far */
    assert_int_equal(store_qualification_grant(s, ada, laser, "trainer", 0, NULL), 0);
    assert_int_equal(store_qualification_grant(s, ada, laser, "manager", INT64_MAX, NULL), 0);
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), 0);
    assert_int_equal(expires, 0);
    /* per member and per training */
    assert_int_equal(store_qualification_best(s, ada, cnc, &expires), -ENOENT);
    assert_int_equal(store_qualification_best(s, bob, laser, &expires), -ENOENT);

    /* revoking revokes every active grant */
    assert_int_equal(store_qualification_revoke(s, ada, laser, "manager"), 0);
    expires = -1;
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), -ENOENT);
    assert_int_equal(expires, -1);
    assert_int_equal(store_qualification_revoke(s, ada, laser, "manager"), -ENOENT);
    /* a new grant after a revoked no-expiry one: the revoked one is ignored */
    assert_int_equal(store_qualification_grant(s, ada, laser, "trainer", 1000, NULL), 0);
    assert_int_equal(store_qualification_best(s, ada, laser, &expires), 0);
    assert_int_equal(expires, 1000);
    assert_int_equal(store_qualification_grant(s, bob, cnc, "trainer", 0, NULL), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_qualifications_foreach(s, ada, collect_qualification, &seen), 6);
    assert_int_equal(seen.q[0].id, q1);
    assert_int_equal(seen.q[0].member_id, ada);
    assert_string_equal(seen.q[0].training, "laser");
    assert_string_equal(seen.q[0].granted_by, "manager");
    assert_int_equal(seen.q[0].expires_at, 2000);
    assert_true(seen.q[0].granted_at > 1700000000);
    assert_true(seen.q[0].revoked_at >= seen.q[0].granted_at);
    assert_int_equal(seen.q[1].id, q2);
    assert_string_equal(seen.q[3].granted_by, "trainer");
    assert_int_equal(seen.q[3].expires_at, 0);
    assert_true(seen.q[3].revoked_at > 0);
    assert_int_equal(seen.q[5].expires_at, 1000);
    assert_int_equal(seen.q[5].revoked_at, 0);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_qualifications_foreach(s, bob, collect_qualification, &seen), 1);
    assert_string_equal(seen.q[0].training, "cnc");
    store_free(s);
}

/* ---- bookings ---- */

/* Tuesday 6 January 2026, 14:00 CET. */
#define T0 1767704400LL
#define HOUR 3600LL

struct bookings_seen {
    unsigned n;
    struct store_booking b[8];
};

static int collect_booking(const struct store_booking *b, void *userdata)
{
    struct bookings_seen *seen = userdata;
    if (seen->n < 8)
        seen->b[seen->n] = *b;
    seen->n++;
    return 0;
}

static void test_booking_add_get_cancel(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_booking b;
    int64_t laser = add_machine(s, "laser"), ada = add_member(s, "Ada Lovelace");
    int64_t id = 0, moved = 0, bad = -1;
    sqlite3 *db;
    char sql[128];

    assert_int_equal(store_booking_add(s, laser, ada, T0, T0 + HOUR, "member:1", &id), 0);
    assert_true(id > 0);
    assert_int_equal(store_booking_add(s, laser, ada, T0 + 2 * HOUR, T0 + 3 * HOUR, "manager",
                                       &moved),
                     0);
    /* a booking must end after it starts; the resource and member must exist */
    assert_true(store_booking_add(s, laser, ada, T0, T0, "x", &bad) < 0);
    assert_true(store_booking_add(s, laser, ada, T0, T0 - 60, "x", &bad) < 0);
    assert_true(store_booking_add(s, laser, 424242, T0, T0 + HOUR, "x", &bad) < 0);
    assert_true(store_booking_add(s, 424242, ada, T0, T0 + HOUR, "x", &bad) < 0);
    assert_int_equal(bad, -1);
    assert_int_equal(store_commit(s), 0);

    memset(&b, 0x5a, sizeof(b));
    assert_int_equal(store_booking_get(s, id, &b), 0);
    assert_int_equal(b.id, id);
    assert_int_equal(b.resource_id, laser);
    assert_string_equal(b.resource, "laser");
    assert_int_equal(b.member_id, ada);
    assert_string_equal(b.member, "Ada Lovelace");
    assert_int_equal(b.start, T0);
    assert_int_equal(b.end, T0 + HOUR);
    assert_string_equal(b.created_by, "member:1");
    assert_int_equal(b.cancelled_at, 0);
    assert_string_equal(b.cancelled_by, "");
    assert_false(b.cancel_override);
    assert_int_equal(store_booking_get(s, 424242, &b), -ENOENT);

    /* cancel, as a move to another booking, with a manager's override */
    assert_int_equal(store_booking_cancel(s, id, T0 - 600, "manager", true, moved), 0);
    assert_int_equal(store_booking_get(s, id, &b), 0);
    assert_int_equal(b.cancelled_at, T0 - 600);
    assert_string_equal(b.cancelled_by, "manager");
    assert_true(b.cancel_override);
    /* already cancelled: refused, and the first cancellation stands */
    assert_int_equal(store_booking_cancel(s, id, T0, "member:1", false, 0), -ENOENT);
    assert_int_equal(store_booking_get(s, id, &b), 0);
    assert_int_equal(b.cancelled_at, T0 - 600);
    assert_string_equal(b.cancelled_by, "manager");
    assert_int_equal(store_booking_cancel(s, 424242, T0, "x", false, 0), -ENOENT);
    /* a plain cancel */
    assert_int_equal(store_booking_cancel(s, moved, T0, "member:1", false, 0), 0);
    assert_int_equal(store_booking_get(s, moved, &b), 0);
    assert_int_equal(b.cancelled_at, T0);
    assert_false(b.cancel_override);
    assert_int_equal(store_commit(s), 0);

    db = raw_open(f->path);
    snprintf(sql, sizeof(sql), "SELECT moved_to FROM bookings WHERE id = %lld", (long long)id);
    assert_int_equal(raw_int(db, sql), moved);
    snprintf(sql, sizeof(sql), "SELECT moved_to IS NULL FROM bookings WHERE id = %lld",
             (long long)moved);
    assert_int_equal(raw_int(db, sql), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM bookings"), 2);
    sqlite3_close(db);
    store_free(s);
}

/* Ada: [T0, T0+1h) and [T0+2h, T0+3h) on the laser; Bob: [T0+1h, T0+2h); a cancelled Bob
 * booking [T0+3h, T0+4h); Ada on the cnc [T0, T0+4h). */
struct booking_fixture {
    int64_t laser, cnc, ada, bob;
    int64_t a1, a2, b1, b_cancelled, a_cnc;
};

static void add_bookings(struct store *s, struct booking_fixture *bf)
{
    bf->laser = add_machine(s, "laser");
    bf->cnc = add_machine(s, "cnc");
    bf->ada = add_member(s, "Ada");
    bf->bob = add_member(s, "Bob");
    /* inserted out of order: listings sort by start */
    assert_int_equal(store_booking_add(s, bf->laser, bf->ada, T0 + 2 * HOUR, T0 + 3 * HOUR, "t",
                                       &bf->a2),
                     0);
    assert_int_equal(store_booking_add(s, bf->laser, bf->bob, T0 + HOUR, T0 + 2 * HOUR, "t",
                                       &bf->b1),
                     0);
    assert_int_equal(store_booking_add(s, bf->laser, bf->ada, T0, T0 + HOUR, "t", &bf->a1), 0);
    assert_int_equal(store_booking_add(s, bf->laser, bf->bob, T0 + 3 * HOUR, T0 + 4 * HOUR, "t",
                                       &bf->b_cancelled),
                     0);
    assert_int_equal(store_booking_cancel(s, bf->b_cancelled, T0 - HOUR, "t", false, 0), 0);
    assert_int_equal(store_booking_add(s, bf->cnc, bf->ada, T0, T0 + 4 * HOUR, "t", &bf->a_cnc),
                     0);
    assert_int_equal(store_commit(s), 0);
}

static void test_bookings_overlapping(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_fixture bf;
    struct booking_ref out[8];

    add_bookings(s, &bf);
    /* half-open: touching at either edge is not intersecting */
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0 - HOUR, T0, 0, out, 8), 0);
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0 + 3 * HOUR, T0 + 5 * HOUR, 0,
                                                out, 8),
                     0);                            /* Bob's cancelled one does not count */
    /* one second in */
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0 - HOUR, T0 + 1, 0, out, 8), 1);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0 + 3 * HOUR - 1, T0 + 5 * HOUR,
                                                0, out, 8),
                     1);
    assert_int_equal(out[0].id, bf.a2);
    /* sorted by start, with the member's name for messages */
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0 + HOUR - 60, T0 + 2 * HOUR + 60,
                                                0, out, 8),
                     3);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(out[1].id, bf.b1);
    assert_int_equal(out[1].member_id, bf.bob);
    assert_string_equal(out[1].member, "Bob");
    assert_int_equal(out[1].start, T0 + HOUR);
    assert_int_equal(out[1].end, T0 + 2 * HOUR);
    assert_int_equal(out[2].id, bf.a2);
    /* exclude_id: moving a booking does not collide with itself */
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0, T0 + 2 * HOUR, bf.a1, out, 8),
                     1);
    assert_int_equal(out[0].id, bf.b1);
    /* at most n */
    assert_int_equal(store_bookings_overlapping(s, bf.laser, T0, T0 + 4 * HOUR, 0, out, 2), 2);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(out[1].id, bf.b1);
    /* other machine */
    assert_int_equal(store_bookings_overlapping(s, bf.cnc, T0, T0 + 4 * HOUR, 0, out, 8), 1);
    assert_int_equal(out[0].id, bf.a_cnc);
    store_free(s);
}

static void test_booked_minutes(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_fixture bf;

    add_bookings(s, &bf);
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.laser, T0 - 86400, T0 + 86400, 0), 120);
    /* clipped to [from, to): half of each of Ada's bookings */
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.laser, T0 + HOUR / 2,
                                          T0 + 2 * HOUR + HOUR / 2, 0),
                     60);
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.laser, T0 - HOUR, T0 + 15 * 60, 0), 15);
    /* touching only */
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.laser, T0 + HOUR, T0 + 2 * HOUR, 0), 0);
    /* excluding the booking being moved */
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.laser, T0 - 86400, T0 + 86400, bf.a1),
                     60);
    /* cancelled ones do not count; per member, per machine */
    assert_int_equal(store_booked_minutes(s, bf.bob, bf.laser, T0 - 86400, T0 + 86400, 0), 60);
    assert_int_equal(store_booked_minutes(s, bf.ada, bf.cnc, T0 + HOUR, T0 + 86400, 0), 180);
    assert_int_equal(store_booked_minutes(s, bf.bob, bf.cnc, T0 - 86400, T0 + 86400, 0), 0);
    store_free(s);
}

static void test_bookings_upcoming(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_fixture bf;
    struct policy_booking out[8];

    add_bookings(s, &bf);
    /* now inside Ada's first booking: it is still upcoming (end > now) */
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 + 60, T0 + 86400, out, 8), 3);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(out[0].member_id, bf.ada);
    assert_int_equal(out[0].start, T0);
    assert_int_equal(out[0].end, T0 + HOUR);
    assert_int_equal(out[1].id, bf.b1);
    assert_int_equal(out[1].member_id, bf.bob);
    assert_int_equal(out[2].id, bf.a2);
    /* a booking ending exactly now is over */
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 + HOUR, T0 + 86400, out, 8), 2);
    assert_int_equal(out[0].id, bf.b1);
    /* until is exclusive on start */
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 - HOUR, T0 + HOUR, out, 8), 1);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 - HOUR, T0, out, 8), 0);
    /* at most n, the earliest */
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 - HOUR, T0 + 86400, out, 2), 2);
    assert_int_equal(out[0].id, bf.a1);
    assert_int_equal(out[1].id, bf.b1);
    /* nothing after the last one (the cancelled one is not listed) */
    assert_int_equal(store_bookings_upcoming(s, bf.laser, T0 + 3 * HOUR, T0 + 86400, out, 8), 0);
    store_free(s);
}

static void test_bookings_foreach(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_fixture bf;
    struct bookings_seen seen = { 0 };
    struct store_booking_filter flt = { 0 };

    add_bookings(s, &bf);
    /* no filter: every live booking, by start then id */
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 4);
    assert_int_equal(seen.b[0].id, bf.a1 < bf.a_cnc ? bf.a1 : bf.a_cnc);
    assert_int_equal(seen.b[1].id, bf.a1 < bf.a_cnc ? bf.a_cnc : bf.a1);
    assert_int_equal(seen.b[2].id, bf.b1);
    assert_int_equal(seen.b[3].id, bf.a2);
    /* with the cancelled ones */
    memset(&seen, 0, sizeof(seen));
    flt.include_cancelled = true;
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 5);
    assert_int_equal(seen.b[4].id, bf.b_cancelled);
    assert_true(seen.b[4].cancelled_at > 0);
    /* by machine and member */
    memset(&seen, 0, sizeof(seen));
    flt = (struct store_booking_filter){ .resource_id = bf.laser, .member_id = bf.ada };
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 2);
    assert_int_equal(seen.b[0].id, bf.a1);
    assert_string_equal(seen.b[0].resource, "laser");
    assert_string_equal(seen.b[0].member, "Ada");
    assert_int_equal(seen.b[1].id, bf.a2);
    memset(&seen, 0, sizeof(seen));
    flt = (struct store_booking_filter){ .member_id = bf.bob, .include_cancelled = true };
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 2);
    assert_int_equal(seen.b[0].id, bf.b1);
    assert_int_equal(seen.b[1].id, bf.b_cancelled);
    /* intersecting [from, to), half-open */
    memset(&seen, 0, sizeof(seen));
    flt = (struct store_booking_filter){ .resource_id = bf.laser, .from = T0 + HOUR,
                                         .to = T0 + 2 * HOUR };
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 1);
    assert_int_equal(seen.b[0].id, bf.b1);
    memset(&seen, 0, sizeof(seen));
    flt = (struct store_booking_filter){ .resource_id = bf.laser, .from = T0 + 2 * HOUR };
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 1);   /* to 0: open */
    assert_int_equal(seen.b[0].id, bf.a2);
    /* limit */
    memset(&seen, 0, sizeof(seen));
    flt = (struct store_booking_filter){ .resource_id = bf.laser, .limit = 2 };
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &seen), 2);
    assert_int_equal(seen.b[0].id, bf.a1);
    assert_int_equal(seen.b[1].id, bf.b1);
    store_free(s);
}

/* A long list read a step at a time (the bookings week, web/pages_public.c): from a cursor
 * on (start, id), each step goes on where the last stopped, two bookings starting at the
 * same moment included, and together they are the list read at once. */
static void test_bookings_foreach_after(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_fixture bf;
    struct bookings_seen all = { 0 }, step = { 0 };
    struct store_booking_filter flt = { 0 };
    int64_t ids[8];
    unsigned n = 0;

    add_bookings(s, &bf);
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &all), 4);
    flt = (struct store_booking_filter){ .limit = 1, .after = true, .after_start = INT64_MIN };
    for (;;) {
        memset(&step, 0, sizeof(step));
        int r = store_bookings_foreach(s, &flt, collect_booking, &step);
        assert_true(r >= 0);
        if (r == 0)
            break;
        assert_int_equal(r, 1);
        assert_true(n < 8);
        ids[n++] = step.b[0].id;
        flt.after_start = step.b[0].start;
        flt.after_id = step.b[0].id;
    }
    assert_int_equal(n, 4);             /* the cancelled one is not listed */
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(ids[i], all.b[i].id);
    /* The site's list only. */
    flt.resource_id = bf.laser;
    assert_int_equal(store_bookings_foreach(s, &flt, collect_booking, &step), -EINVAL);
    store_free(s);
}

/* Range queries bound starts_at from below by a week (the longest booking): a booking of
 * exactly BOOKING_MAX_MINUTES must still be seen in its last minute. */
static void test_bookings_week_long_seen_to_its_end(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct booking_ref refs[4];
    struct policy_booking up[4];
    const int64_t week = BOOKING_MAX_MINUTES * 60, end = T0 + week;
    int64_t laser = add_machine(s, "laser"), ada = add_member(s, "Ada"), id = 0;

    assert_int_equal(week, 7 * 86400);
    assert_int_equal(store_booking_add(s, laser, ada, T0, end, "manager", &id), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_bookings_overlapping(s, laser, end - 60, end + HOUR, 0, refs, 4), 1);
    assert_int_equal(refs[0].id, id);
    assert_int_equal(store_bookings_overlapping(s, laser, end - 1, end, 0, refs, 4), 1);
    assert_int_equal(store_bookings_overlapping(s, laser, end, end + HOUR, 0, refs, 4), 0);
    assert_int_equal(store_booked_minutes(s, ada, laser, end - 60, end + HOUR, 0), 1);
    assert_int_equal(store_booked_minutes(s, ada, laser, T0, end, 0), BOOKING_MAX_MINUTES);
    assert_int_equal(store_bookings_upcoming(s, laser, end - 1, end + HOUR, up, 4), 1);
    assert_int_equal(up[0].id, id);
    assert_int_equal(store_bookings_upcoming(s, laser, end, end + HOUR, up, 4), 0);
    store_free(s);
}

/* ---- machine sessions ---- */

struct sessions_seen {
    unsigned n;
    struct store_session ss[8];
};

static int collect_session(const struct store_session *ss, void *userdata)
{
    struct sessions_seen *seen = userdata;
    if (seen->n < 8)
        seen->ss[seen->n] = *ss;
    seen->n++;
    return 0;
}

static void test_sessions(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct sessions_seen seen = { 0 };
    int64_t laser = add_machine(s, "laser"), ada = add_member(s, "Ada"), booking = 0;
    int64_t s1 = 0, s2 = 0;

    assert_int_equal(store_booking_add(s, laser, ada, T0, T0 + HOUR, "t", &booking), 0);
    assert_int_equal(store_session_open(s, laser, ada, booking, T0 + 60, &s1), 0);
    assert_int_equal(store_session_open(s, laser, ada, 0, T0 + 2 * HOUR, &s2), 0);
    assert_true(s1 > 0 && s2 > s1);
    assert_int_equal(store_session_touch(s, s1, T0 + 600, 500, -1), 0);
    assert_int_equal(store_session_close(s, s1, T0 + 900, 780, -1, "released"), 0);
    /* a closed session stays closed */
    assert_int_equal(store_session_touch(s, s1, T0 + 1000, 900, -1), -ENOENT);
    assert_int_equal(store_session_close(s, s1, T0 + 1000, 900, -1, "again"), -ENOENT);
    assert_int_equal(store_session_touch(s, 424242, T0, 0, -1), -ENOENT);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_sessions_foreach(s, 0, collect_session, &seen), 2);
    assert_int_equal(seen.ss[0].id, s1);
    assert_string_equal(seen.ss[0].resource, "laser");
    assert_int_equal(seen.ss[0].member_id, ada);
    assert_int_equal(seen.ss[0].booking_id, booking);
    assert_int_equal(seen.ss[0].started_at, T0 + 60);
    assert_int_equal(seen.ss[0].ended_at, T0 + 900);
    assert_int_equal(seen.ss[0].last_seen_at, T0 + 900);
    assert_int_equal(seen.ss[0].running_seconds, 780);
    assert_string_equal(seen.ss[0].end_reason, "released");
    assert_int_equal(seen.ss[1].id, s2);
    assert_int_equal(seen.ss[1].booking_id, 0);             /* walk-up */
    assert_int_equal(seen.ss[1].ended_at, 0);
    assert_int_equal(seen.ss[1].last_seen_at, T0 + 2 * HOUR);
    assert_string_equal(seen.ss[1].end_reason, "");
    /* since: started_at >= since */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_sessions_foreach(s, T0 + 61, collect_session, &seen), 1);
    assert_int_equal(seen.ss[0].id, s2);
    store_free(s);
}

static void test_sessions_close_interrupted(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct sessions_seen seen = { 0 };
    int64_t laser = add_machine(s, "laser"), cnc = add_machine(s, "cnc");
    int64_t ada = add_member(s, "Ada"), bob = add_member(s, "Bob");
    int64_t s1 = 0, s2 = 0, s3 = 0;

    assert_int_equal(store_session_open(s, laser, ada, 0, T0, &s1), 0);
    assert_int_equal(store_session_open(s, cnc, bob, 0, T0 + 60, &s2), 0);
    assert_int_equal(store_session_open(s, laser, bob, 0, T0 - HOUR, &s3), 0);
    assert_int_equal(store_session_touch(s, s1, T0 + 300, 240, -1), 0);
    assert_int_equal(store_session_touch(s, s1, T0 + 600, 540, -1), 0);
    assert_int_equal(store_session_close(s, s3, T0 - 60, 3000, -1, "released"), 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    /* the daemon restarts after a power cut */
    s = open_ok(f->path);
    assert_int_equal(store_sessions_close_interrupted(s), 2);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_sessions_close_interrupted(s), 0);
    assert_int_equal(store_sessions_foreach(s, 0, collect_session, &seen), 3);
    for (unsigned i = 0; i < 3; i++) {
        const struct store_session *ss = &seen.ss[i];
        if (ss->id == s1) {
            assert_int_equal(ss->ended_at, T0 + 600);       /* its last known moment */
            assert_int_equal(ss->last_seen_at, T0 + 600);
            assert_int_equal(ss->running_seconds, 540);
            assert_string_equal(ss->end_reason, "interrupted");
        } else if (ss->id == s2) {
            assert_int_equal(ss->ended_at, T0 + 60);        /* never touched: its start */
            assert_string_equal(ss->end_reason, "interrupted");
        } else {
            assert_int_equal(ss->id, s3);                   /* closed normally: untouched */
            assert_int_equal(ss->ended_at, T0 - 60);
            assert_int_equal(ss->running_seconds, 3000);
            assert_string_equal(ss->end_reason, "released");
        }
    }
    /* closed sessions cannot be touched any more */
    assert_int_equal(store_session_touch(s, s1, T0 + 700, 600, -1), -ENOENT);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_resources),
        STORE_TEST(test_resource_defaults_without_rules),
        STORE_TEST(test_machine_rules_round_trip),
        STORE_TEST(test_out_of_order),
        STORE_TEST(test_trainings),
        STORE_TEST(test_trainings_count_members_not_grants),
        STORE_TEST(test_trainers),
        STORE_TEST(test_qualifications),
        STORE_TEST(test_booking_add_get_cancel),
        STORE_TEST(test_bookings_overlapping),
        STORE_TEST(test_booked_minutes),
        STORE_TEST(test_bookings_upcoming),
        STORE_TEST(test_bookings_foreach),
        STORE_TEST(test_bookings_foreach_after),
        STORE_TEST(test_bookings_week_long_seen_to_its_end),
        STORE_TEST(test_sessions),
        STORE_TEST(test_sessions_close_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

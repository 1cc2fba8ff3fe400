/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store.c: opening and migrating, secrets, batches and their failures — real SQLite files in
 * a fresh directory per test (store_fixture.h). The tables' own functions are tested next to
 * their files: test_store_members.c, test_store_events.c, test_store_fablab.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"
#include "store_internal.h"       /* the store's connection: a batch SQLite rolled back */

/* ---- opening and migrating ---- */

/* The tables and columns version 3 (fablab machines) adds. */
static const char *const v3_tables[] = {
    "trainings", "machine_rules", "qualifications", "bookings", "machine_sessions",
};

static void test_open_empty_file(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    sqlite3 *db;
    int fd = open(f->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    close(fd);
    s = open_ok(f->path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    assert_false(store_in_batch(s));
    assert_int_equal(store_member_count(s), 0);
    assert_int_equal(store_card_count(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_true(raw_table_exists(db, "plans"));
    assert_true(raw_table_exists(db, "access_events"));
    for (size_t i = 0; i < N_ELEMS(v3_tables); i++)
        assert_true(raw_table_exists(db, v3_tables[i]));
    assert_true(raw_column_exists(db, "resources", "out_of_order"));
    sqlite3_close(db);
}

static void test_open_creates_file_and_reopens(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);

    assert_int_equal(access(f->path, F_OK), 0);
    store_free(s);
    s = open_ok(f->path);       /* already at the current version: nothing to migrate */
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    store_free(s);
    assert_null(store_free(NULL));
}

static void test_wal_mode(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    sqlite3 *db;
    char mode[16];

    db = raw_open(f->path);
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
    sqlite3_close(db);
    store_free(s);
}

static void raw_insert_card(sqlite3 *db, int64_t id, int64_t member_id, const uint8_t *hash,
                            const char *label)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO cards (id, member_id, uid_hash, "
                                            "label, enabled, created_at) VALUES "
                                            "(?1, ?2, ?3, ?4, 1, 1700000000)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, member_id);
    sqlite3_bind_blob(st, 3, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, label, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* A site that never upgraded past the first release: no access log yet. */
static void test_migrate_from_version_1(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    struct store_subject subj;
    struct store_plan plan;
    struct store_member m;
    struct store_resource res;
    struct store_event ev = { .at = 1767600000, .granted = true };
    uint8_t hash[STORE_HASH_LEN];
    int64_t event_id = 0, card_id = 0;
    sqlite3 *db;

    assert_int_equal(store_create_at_version(f->path, 1), 0);
    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
    assert_true(raw_table_exists(db, "members"));
    assert_false(raw_table_exists(db, "access_events"));
    assert_false(raw_table_exists(db, "bookings"));
    raw_exec(db, "INSERT INTO plans (id, name, zones, hours, created_at) "
                 "VALUES (7, 'old-plan', 'main,fablab', 'Mon-Fri 08:00-20:00', 1700000000)");
    raw_exec(db, "INSERT INTO members (id, name, email, plan_id, status, valid_from, "
                 "valid_until, created_at) VALUES (3, 'Ada', 'ada@example.org', 7, 'active', "
                 "1700000000, 1900000000, 1700000000)");
    raw_exec(db, "INSERT INTO resources (id, kind, name, zone, created_at) "
                 "VALUES (5, 'door', 'front', 'main', 1700000000)");
    hash_of(9, hash);
    raw_insert_card(db, 11, 3, hash, "blue fob");
    sqlite3_close(db);

    s = open_ok(f->path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);

    /* the old rows survived, with their ids */
    assert_int_equal(store_plan_find(s, "old-plan", &plan), 0);
    assert_int_equal(plan.id, 7);
    assert_string_equal(plan.zones, "main,fablab");
    assert_string_equal(plan.hours, "Mon-Fri 08:00-20:00");
    assert_int_equal(plan.members, 1);
    assert_int_equal(store_member_get(s, 3, &m), 0);
    assert_string_equal(m.name, "Ada");
    assert_string_equal(m.email, "ada@example.org");
    assert_string_equal(m.plan, "old-plan");
    assert_int_equal(m.valid_until, 1900000000);
    assert_int_equal(m.cards, 1);
    assert_int_equal(store_card_find(s, hash, &card_id), 0);
    assert_int_equal(card_id, 11);
    assert_int_equal(store_subject_lookup(s, hash, &subj), 0);
    assert_int_equal(subj.member_id, 3);
    assert_int_equal(subj.plan_id, 7);
    assert_string_equal(subj.zones, "main,fablab");
    /* the door gained the v3 columns with their defaults */
    assert_int_equal(store_resource_get(s, "front", &res), 0);
    assert_int_equal(res.id, 5);
    assert_string_equal(res.kind, "door");
    assert_false(res.out_of_order);

    /* and the access log (v2) works */
    strcpy(ev.kind, "tap");
    strcpy(ev.reason, "granted");
    strcpy(ev.reader, "front");
    ev.resource_id = 5;
    ev.member_id = 3;
    ev.card_id = 11;
    assert_int_equal(store_event_add(s, &ev, &event_id), 0);
    assert_true(event_id > 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events WHERE member_id = 3 "
                                 "AND card_id = 11 AND kind = 'tap' AND granted = 1"),
                     1);
    for (size_t i = 0; i < N_ELEMS(v3_tables); i++)
        assert_true(raw_table_exists(db, v3_tables[i]));
    sqlite3_close(db);
}

/* The release before the fablab machines: members, doors and a filled access log. */
static void test_migrate_from_version_2(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    struct store_member m;
    struct store_resource res;
    struct store_booking b;
    struct events_seen seen = { 0 };
    uint8_t hash[STORE_HASH_LEN];
    int64_t training = 0, booking = 0, session = 0, expires = -1;
    sqlite3 *db;
    char *err = NULL;

    /* From version 2 (before machines) all the way to the current schema. */
    assert_int_equal(store_create_at_version(f->path, 2), 0);
    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 2);
    assert_true(raw_table_exists(db, "access_events"));
    for (size_t i = 0; i < N_ELEMS(v3_tables); i++)
        assert_false(raw_table_exists(db, v3_tables[i]));
    assert_false(raw_column_exists(db, "resources", "out_of_order"));
    raw_exec(db, "INSERT INTO plans (id, name, zones, hours, created_at) "
                 "VALUES (7, 'fablab', 'main,fablab', 'always', 1700000000)");
    raw_exec(db, "INSERT INTO members (id, name, email, plan_id, status, valid_from, "
                 "valid_until, created_at) VALUES "
                 "(3, 'Ada', 'ada@example.org', 7, 'active', 0, 0, 1700000000), "
                 "(4, 'Bob', '', 7, 'suspended', 0, 0, 1700000001)");
    raw_exec(db, "INSERT INTO resources (id, kind, name, zone, created_at) VALUES "
                 "(5, 'door', 'front', 'main', 1700000000), "
                 "(6, 'machine', 'laser', 'fablab', 1700000000)");
    hash_of(9, hash);
    raw_insert_card(db, 11, 3, hash, "blue fob");
    raw_exec(db, "INSERT INTO access_events (id, at, resource_id, reader, member_id, card_id, "
                 "kind, granted, reason, detail) VALUES "
                 "(100, 1767600000, 5, 'front', 3, 11, 'tap', 1, 'granted', ''), "
                 "(101, 1767600060, 5, 'front', 4, NULL, 'tap', 0, 'member_suspended', 'x'), "
                 "(102, 1767600120, NULL, '', NULL, NULL, 'alarm', 0, 'door_forced', '')");
    sqlite3_close(db);

    s = open_ok(f->path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);

    /* old rows: members, cards, the access log in order */
    assert_int_equal(store_member_count(s), 2);
    assert_int_equal(store_member_get(s, 4, &m), 0);
    assert_string_equal(m.name, "Bob");
    assert_int_equal(m.status, MEMBER_SUSPENDED);
    assert_int_equal(store_member_get(s, 3, &m), 0);
    assert_int_equal(m.cards, 1);
    assert_int_equal(store_events_foreach(s, 0, 0, collect_event, &seen), 3);
    assert_int_equal(seen.ev[0].id, 100);
    assert_string_equal(seen.ev[0].resource, "front");
    assert_true(seen.ev[0].granted);
    assert_int_equal(seen.ev[1].member_id, 4);
    assert_string_equal(seen.ev[1].reason, "member_suspended");
    assert_string_equal(seen.ev[1].detail, "x");
    assert_string_equal(seen.ev[2].kind, "alarm");
    assert_int_equal(seen.ev[2].resource_id, 0);

    /* the old machine reads with default rules and is in order */
    assert_int_equal(store_resource_get(s, "laser", &res), 0);
    assert_int_equal(res.id, 6);
    assert_string_equal(res.kind, "machine");
    assert_string_equal(res.zone, "fablab");
    assert_false(res.out_of_order);
    assert_false(res.has_rules);
    assert_int_equal(res.slot_minutes, 30);

    /* the new functions work on the migrated file */
    assert_int_equal(store_training_add(s, "laser-basics", "safety", &training), 0);
    res.training_id = training;
    snprintf(res.hours, sizeof(res.hours), "Mon-Fri 08:00-20:00");
    assert_int_equal(store_machine_rules_put(s, &res), 0);
    assert_int_equal(store_resource_set_out_of_order(s, 6, true, "lens cracked"), 0);
    assert_int_equal(store_qualification_grant(s, 3, training, "manager", 0, NULL), 0);
    assert_int_equal(store_qualification_best(s, 3, training, &expires), 0);
    assert_int_equal(expires, 0);
    assert_int_equal(store_booking_add(s, 6, 3, 1767704400, 1767708000, "member:3", &booking), 0);
    assert_int_equal(store_booking_get(s, booking, &b), 0);
    assert_string_equal(b.resource, "laser");
    assert_string_equal(b.member, "Ada");
    assert_int_equal(store_session_open(s, 6, 3, booking, 1767704400, &session), 0);
    assert_true(session > 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_resource_get(s, "laser", &res), 0);
    assert_true(res.has_rules);
    assert_int_equal(res.training_id, training);
    assert_string_equal(res.training, "laser-basics");
    assert_true(res.out_of_order);
    assert_string_equal(res.out_of_order_reason, "lens cracked");
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    for (size_t i = 0; i < N_ELEMS(v3_tables); i++)
        assert_true(raw_table_exists(db, v3_tables[i]));
    assert_true(raw_column_exists(db, "resources", "out_of_order"));
    assert_true(raw_column_exists(db, "resources", "out_of_order_reason"));
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events"), 3);
    /* the access log is still append-only after the migration */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM access_events", NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    sqlite3_free(err);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events"), 3);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct store *s = (struct store *)(uintptr_t)0x1;   /* must stay untouched */
    sqlite3 *db;
    char sql[48];

    assert_int_equal(store_create_at_version(f->path, STORE_SCHEMA_VERSION), 0);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
    db = raw_open(f->path);
    raw_exec(db, sql);
    raw_exec(db, "CREATE TABLE from_the_future (x)");
    sqlite3_close(db);

    assert_int_equal(store_open(f->path, &s), -EPROTO);
    assert_ptr_equal(s, (struct store *)(uintptr_t)0x1);

    db = raw_open(f->path);         /* not downgraded, not damaged */
    assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
    assert_true(raw_table_exists(db, "from_the_future"));
    sqlite3_close(db);
}

static void test_open_refuses_other_files(void **state)
{
    struct fixture *f = *state;
    struct store *s = (struct store *)(uintptr_t)0x1;
    char missing[PATH_MAX + 32];
    FILE *junk = fopen(f->path, "we");

    /* not a database: refused, and the file is left alone */
    assert_non_null(junk);
    for (int i = 0; i < 512; i++)
        fputs("not a database. ", junk);
    assert_int_equal(fclose(junk), 0);
    assert_int_equal(store_open(f->path, &s), -EBADMSG);
    assert_ptr_equal(s, (struct store *)(uintptr_t)0x1);

    /* a directory that does not exist */
    snprintf(missing, sizeof(missing), "%s/no/such/dir/portier.db", f->dir);
    assert_int_equal(store_open(missing, &s), -ENOENT);
    assert_ptr_equal(s, (struct store *)(uintptr_t)0x1);
}

static void test_create_at_version_bounds(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db;

    assert_int_equal(store_create_at_version(f->path, -1), -EINVAL);
    assert_int_equal(store_create_at_version(f->path, STORE_SCHEMA_VERSION + 1), -EINVAL);
    assert_int_equal(store_create_at_version(f->path, 0), 0);
    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 0);
    assert_false(raw_table_exists(db, "plans"));
    sqlite3_close(db);
}

/* ---- secrets ---- */

static void test_secret(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    uint8_t a[32], a2[32], b[32], zero[32] = { 0 }, small[16];

    assert_int_equal(store_secret(s, "card_key", a, sizeof(a)), 0);
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_false(store_in_batch(s));            /* durable before anything uses it */
    assert_int_equal(store_secret(s, "other", b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(store_secret(s, "card_key", a2, sizeof(a2)), 0);
    assert_memory_equal(a, a2, sizeof(a));
    assert_int_equal(store_secret(s, "card_key", small, sizeof(small)), -EBADMSG);
    store_free(s);

    memset(a2, 0, sizeof(a2));
    s = open_ok(f->path);
    assert_int_equal(store_secret(s, "card_key", a2, sizeof(a2)), 0);
    assert_memory_equal(a, a2, sizeof(a));
    store_free(s);
}

/* ---- batches ---- */

static void count_calls(void *userdata)
{
    (*(int *)userdata)++;
}

static void test_batch_commit(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;
    sqlite3 *other;
    int dirty = 0;

    struct store_hooks hooks = { .dirty = count_calls, .userdata = &dirty };
    store_set_hooks(s, &hooks);
    assert_false(store_in_batch(s));
    assert_int_equal(store_commit(s), 0);       /* nothing to commit */
    assert_int_equal(dirty, 0);

    assert_int_equal(store_plan_add(s, "a", "*", "always", NULL), 0);
    assert_true(store_in_batch(s));
    assert_int_equal(dirty, 1);
    assert_int_equal(store_plan_add(s, "b", "*", "always", NULL), 0);
    assert_int_equal(store_member_add(s, "M", NULL, 0, 0, 0, NULL), 0);
    assert_int_equal(dirty, 1);                 /* once per batch */
    /* reads inside the batch see its writes */
    assert_int_equal(store_plan_find(s, "b", &p), 0);

    /* another connection does not see the batch until it is committed */
    other = raw_open(f->path);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM plans"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_false(store_in_batch(s));
    assert_int_equal(raw_int(other, "SELECT count(*) FROM plans"), 2);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM members"), 1);

    /* the next write starts a new batch */
    assert_int_equal(store_plan_add(s, "c", "*", "always", NULL), 0);
    assert_true(store_in_batch(s));
    assert_int_equal(dirty, 2);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM plans"), 3);
    sqlite3_close(other);
    store_free(s);

    s = open_ok(f->path);
    assert_int_equal(store_plan_find(s, "a", &p), 0);
    assert_int_equal(store_plan_find(s, "c", &p), 0);
    store_free(s);
}

static void test_failed_write_keeps_batch(void **state)
{
    /* A refused write (duplicate) must not roll back the writes before it in the batch. */
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;

    assert_int_equal(store_plan_add(s, "a", "*", "always", NULL), 0);
    assert_int_equal(store_plan_add(s, "a", "*", "never", NULL), -EEXIST);
    assert_int_equal(store_plan_add(s, "b", "*", "always", NULL), 0);
    assert_true(store_in_batch(s));
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    s = open_ok(f->path);
    assert_int_equal(store_plan_find(s, "a", &p), 0);
    assert_string_equal(p.hours, "always");
    assert_int_equal(store_plan_find(s, "b", &p), 0);
    store_free(s);
}

static void test_write_while_locked_elsewhere(void **state)
{
    /* Another writer holds the database past the busy timeout: the write is refused with
     * -EBUSY, no batch is left open, and the store works again once the lock is gone. */
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;
    sqlite3 *other = raw_open(f->path);
    int dirty = 0;

    struct store_hooks hooks = { .dirty = count_calls, .userdata = &dirty };
    store_set_hooks(s, &hooks);
    raw_exec(other, "BEGIN IMMEDIATE");
    assert_int_equal(store_plan_add(s, "a", "*", "always", NULL), -EBUSY);
    assert_false(store_in_batch(s));
    assert_int_equal(dirty, 0);
    raw_exec(other, "COMMIT");
    sqlite3_close(other);

    assert_int_equal(store_plan_add(s, "a", "*", "always", NULL), 0);
    assert_int_equal(dirty, 1);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_plan_find(s, "a", &p), 0);
    store_free(s);
}

static void test_free_commits_open_batch(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;

    assert_int_equal(store_plan_add(s, "pending", "*", "always", NULL), 0);
    assert_true(store_in_batch(s));
    assert_null(store_free(s));
    s = open_ok(f->path);
    assert_int_equal(store_plan_find(s, "pending", &p), 0);
    store_free(s);
}


static void note_failure(uint64_t batch, int error, void *userdata)
{
    (void)batch;
    *(int *)userdata = error;
}

/* The access events of a batch that is gone are held, then written again with their times
 * and new ids; what does not fit is counted as dropped. */
static void test_failed_batch_holds_its_events(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_event ev = { .at = 1790000000, .granted = true };
    int failed = 0;
    sqlite3 *other;

    struct store_hooks hooks = { .failed = note_failure, .userdata = &failed };
    store_set_hooks(s, &hooks);
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reader, sizeof(ev.reader), "front");
    for (int i = 0; i < 3; i++) {
        ev.at++;
        assert_int_equal(store_event_add(s, &ev, NULL), 0);
    }
    /* SQLite rolls the batch back by itself (as on a full disk). */
    assert_int_equal(sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(store_commit(s), -ENOSPC);
    assert_int_equal(failed, -ENOSPC);
    assert_int_equal(store_held_count(s), 3);
    assert_int_equal(store_held_dropped(s), 0);

    assert_int_equal(store_held_flush(s), 3);
    assert_int_equal(store_held_count(s), 0);
    assert_int_equal(store_commit(s), 0);
    other = raw_open(f->path);
    assert_int_equal(raw_int(other, "SELECT count(*) FROM access_events"), 3);
    assert_int_equal(raw_int(other, "SELECT min(at) FROM access_events"), 1790000001);
    assert_int_equal(raw_int(other, "SELECT max(at) FROM access_events"), 1790000003);
    sqlite3_close(other);

    /* At most STORE_HELD_MAX are held. */
    for (int i = 0; i < STORE_HELD_MAX + 2; i++)
        store_hold_event(s, &ev);
    assert_int_equal(store_held_count(s), STORE_HELD_MAX);
    assert_int_equal(store_held_dropped(s), 2);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_open_empty_file),
        STORE_TEST(test_open_creates_file_and_reopens),
        STORE_TEST(test_wal_mode),
        STORE_TEST(test_migrate_from_version_1),
        STORE_TEST(test_migrate_from_version_2),
        STORE_TEST(test_newer_schema_refused),
        STORE_TEST(test_open_refuses_other_files),
        STORE_TEST(test_create_at_version_bounds),
        STORE_TEST(test_secret),
        STORE_TEST(test_batch_commit),
        STORE_TEST(test_failed_write_keeps_batch),
        STORE_TEST(test_write_while_locked_elsewhere),
        STORE_TEST(test_free_commits_open_batch),
        STORE_TEST(test_failed_batch_holds_its_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

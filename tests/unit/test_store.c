/* store: real SQLite files in a fresh directory per test. Where the store's own API cannot
 * show an outcome (schema version on disk, journal mode, triggers, what another connection
 * sees) the test opens the file with the raw sqlite3 API. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
};

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int setup(void **state)
{
    const char *tmp = getenv("PORTIER_TEST_TMP");
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (make_dirs(tmp) < 0) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/store-XXXXXX", tmp);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/portier.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char p[PATH_MAX + 32];

    for (size_t i = 0; i < N_ELEMS(suffixes); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- raw SQLite helpers ---- */

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        print_error("%s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        fail();
    }
}

/* The single integer a query returns. */
static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *buf, size_t n)
{
    sqlite3_stmt *st;
    const unsigned char *t;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    t = sqlite3_column_text(st, 0);
    snprintf(buf, n, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
}

static bool raw_table_exists(sqlite3 *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return raw_int(db, sql) == 1;
}

static struct store *open_ok(const char *path)
{
    struct store *s = NULL;
    int r = store_open(path, &s);
    if (r != 0)
        fail_msg("store_open(%s) = %d", path, r);
    assert_non_null(s);
    return s;
}

static void hash_of(uint8_t seed, uint8_t out[STORE_HASH_LEN])
{
    for (int i = 0; i < STORE_HASH_LEN; i++)
        out[i] = (uint8_t)(seed * 31 + i);
}

struct events_seen {
    unsigned n;
    struct store_event ev[8];
};

static int collect_event(const struct store_event *ev, void *userdata)
{
    struct events_seen *seen = userdata;
    if (seen->n < 8)
        seen->ev[seen->n] = *ev;
    seen->n++;
    return 0;
}

/* The tables and columns version 3 (fablab machines) adds. */
static const char *const v3_tables[] = {
    "trainings", "machine_rules", "qualifications", "bookings", "machine_sessions",
};

static bool raw_column_exists(sqlite3 *db, const char *table, const char *column)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, column);
    return raw_int(db, sql) == 1;
}

/* ---- opening and migrating ---- */

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

/* ---- plans ---- */

struct names {
    unsigned n;
    char name[8][96];
    int64_t count[8];
    int stop_after;     /* 0: never */
};

static int collect_plan(const struct store_plan *p, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8) {
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", p->name);
        c->count[c->n] = p->members;
    }
    c->n++;
    return c->stop_after && (int)c->n >= c->stop_after ? -ECANCELED : 0;
}

static void test_plans(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;
    struct names seen = { 0 };
    int64_t basic = 0, again = -1, night = 0;

    assert_int_equal(store_plan_add(s, "basic", "main", "Mon-Fri 08:00-20:00", &basic), 0);
    assert_true(basic > 0);
    assert_int_equal(store_plan_add(s, "night", "*", "daily 20:00-06:00", &night), 0);
    assert_int_equal(store_plan_add(s, "basic", "other", "always", &again), -EEXIST);
    assert_int_equal(again, -1);

    assert_int_equal(store_plan_find(s, "basic", &p), 0);
    assert_int_equal(p.id, basic);
    assert_string_equal(p.name, "basic");
    assert_string_equal(p.zones, "main");
    assert_string_equal(p.hours, "Mon-Fri 08:00-20:00");
    assert_int_equal(p.members, 0);
    assert_int_equal(store_plan_find(s, "Basic", &p), -ENOENT);
    assert_int_equal(store_plan_find(s, "none", &p), -ENOENT);

    assert_int_equal(store_member_add(s, "A", NULL, night, 0, 0, NULL), 0);
    assert_int_equal(store_member_add(s, "B", NULL, night, 0, 0, NULL), 0);
    assert_int_equal(store_plans_foreach(s, collect_plan, &seen), 2);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.name[0], "basic");     /* by name */
    assert_string_equal(seen.name[1], "night");
    assert_int_equal(seen.count[0], 0);
    assert_int_equal(seen.count[1], 2);

    /* a callback error stops the walk and is returned */
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 1;
    assert_int_equal(store_plans_foreach(s, collect_plan, &seen), -ECANCELED);
    assert_int_equal(seen.n, 1);
    store_free(s);
}

/* ---- members ---- */

static int collect_member(const struct store_member *m, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8) {
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", m->name);
        c->count[c->n] = m->cards;
    }
    c->n++;
    return 0;
}

static void test_members(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct names seen = { 0 };
    int64_t plan = 0, ada = 0, bob = 0, bob2 = 0, id = -1, none = -1;

    assert_int_equal(store_plan_add(s, "basic", "*", "always", &plan), 0);
    assert_int_equal(store_member_add(s, "Ada Lovelace", "ada@example.org", plan, 1000, 2000,
                                      &ada),
                     0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_member_add(s, "Bob", "bob2@example.org", 0, 0, 0, &bob2), 0);
    assert_int_equal(store_member_add(s, "Eve", NULL, 9999, 0, 0, &none), -ENOENT);
    assert_int_equal(none, -1);
    assert_int_equal(store_member_count(s), 3);

    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.id, ada);
    assert_string_equal(m.name, "Ada Lovelace");
    assert_string_equal(m.email, "ada@example.org");
    assert_int_equal(m.plan_id, plan);
    assert_string_equal(m.plan, "basic");
    assert_int_equal(m.status, MEMBER_ACTIVE);
    assert_int_equal(m.valid_from, 1000);
    assert_int_equal(m.valid_until, 2000);
    assert_true(m.created_at > 1700000000);
    assert_int_equal(m.cards, 0);
    assert_int_equal(store_member_get(s, bob, &m), 0);
    assert_int_equal(m.plan_id, 0);
    assert_string_equal(m.plan, "");
    assert_string_equal(m.email, "");
    assert_int_equal(store_member_get(s, 424242, &m), -ENOENT);

    assert_int_equal(store_member_set_status(s, ada, MEMBER_SUSPENDED), 0);
    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.status, MEMBER_SUSPENDED);
    assert_int_equal(store_member_set_status(s, ada, MEMBER_ACTIVE), 0);
    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.status, MEMBER_ACTIVE);
    assert_int_equal(store_member_set_status(s, 424242, MEMBER_SUSPENDED), -ENOENT);

    /* resolve: by id, by exact name, ambiguous name, unknown */
    {
        char ref[32];
        snprintf(ref, sizeof(ref), "%lld", (long long)bob2);
        assert_int_equal(store_member_resolve(s, ref, &id), 0);
        assert_int_equal(id, bob2);
    }
    id = -1;
    assert_int_equal(store_member_resolve(s, "Ada Lovelace", &id), 0);
    assert_int_equal(id, ada);
    id = -1;
    assert_int_equal(store_member_resolve(s, "Bob", &id), -ENOTUNIQ);
    assert_int_equal(id, -1);
    assert_int_equal(store_member_resolve(s, "ada lovelace", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "Ada", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "424242", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "", &id), -ENOENT);
    assert_int_equal(id, -1);

    assert_int_equal(store_members_foreach(s, collect_member, &seen), 3);
    assert_string_equal(seen.name[0], "Ada Lovelace");      /* by id */
    assert_string_equal(seen.name[1], "Bob");
    assert_string_equal(seen.name[2], "Bob");
    store_free(s);
}

/* ---- cards ---- */

struct cards_seen {
    unsigned n;
    struct store_card c[8];
};

static int collect_card(const struct store_card *c, void *userdata)
{
    struct cards_seen *seen = userdata;
    if (seen->n < 8)
        seen->c[seen->n] = *c;
    seen->n++;
    return 0;
}

static void test_cards(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct cards_seen seen = { 0 };
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN];
    int64_t ada = 0, bob = 0, c1 = 0, c2 = 0, id = -1;

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    h1[0] = 0xab;
    h1[7] = 0x0f;
    assert_int_equal(store_member_add(s, "Ada", NULL, 0, 0, 0, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_card_add(s, ada, h1, "blue fob", &c1), 0);
    assert_int_equal(store_card_add(s, ada, h2, NULL, &c2), 0);
    assert_true(c1 > 0 && c2 > c1);
    /* a card is enrolled once, to anyone */
    assert_int_equal(store_card_add(s, bob, h1, "stolen", &id), -EEXIST);
    assert_int_equal(store_card_add(s, ada, h1, "again", &id), -EEXIST);
    assert_int_equal(store_card_add(s, 424242, h3, "nobody", &id), -ENOENT);
    assert_int_equal(id, -1);
    assert_int_equal(store_card_count(s), 2);

    assert_int_equal(store_card_find(s, h1, &id), 0);
    assert_int_equal(id, c1);
    assert_int_equal(store_card_find(s, h2, &id), 0);
    assert_int_equal(id, c2);
    assert_int_equal(store_card_find(s, h3, &id), -ENOENT);

    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.cards, 2);

    assert_int_equal(store_cards_foreach(s, 0, collect_card, &seen), 2);
    assert_int_equal(seen.c[0].id, c1);
    assert_int_equal(seen.c[0].member_id, ada);
    assert_string_equal(seen.c[0].member, "Ada");
    assert_string_equal(seen.c[0].label, "blue fob");
    assert_true(seen.c[0].enabled);
    {
        char want[17];
        for (int i = 0; i < 8; i++)
            snprintf(want + 2 * i, 3, "%02X", h1[i]);
        assert_string_equal(seen.c[0].hash_prefix, want);
    }
    assert_string_equal(seen.c[1].label, "");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_cards_foreach(s, bob, collect_card, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_cards_foreach(s, ada, collect_card, &seen), 2);

    assert_int_equal(store_card_remove(s, c1), 0);
    assert_int_equal(store_card_remove(s, c1), -ENOENT);
    assert_int_equal(store_card_find(s, h1, &id), -ENOENT);
    assert_int_equal(store_card_count(s), 1);
    /* once removed, the card can be enrolled again (to someone else) */
    assert_int_equal(store_card_add(s, bob, h1, "reissued", &id), 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);
}

static void test_subject_lookup(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN];
    int64_t plan = 0, ada = 0, bob = 0, c1 = 0, c2 = 0;
    sqlite3 *db;
    char sql[128];

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    assert_int_equal(store_plan_add(s, "fablab", "main,fablab", "Sat 10:00-13:00", &plan), 0);
    assert_int_equal(store_member_add(s, "Ada", NULL, plan, 100, 200, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_card_add(s, ada, h1, NULL, &c1), 0);
    assert_int_equal(store_card_add(s, bob, h2, NULL, &c2), 0);
    assert_int_equal(store_member_set_status(s, bob, MEMBER_SUSPENDED), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_int_equal(subj.card_id, c1);
    assert_true(subj.card_enabled);
    assert_int_equal(subj.member_id, ada);
    assert_int_equal(subj.status, MEMBER_ACTIVE);
    assert_int_equal(subj.valid_from, 100);
    assert_int_equal(subj.valid_until, 200);
    assert_int_equal(subj.plan_id, plan);
    assert_string_equal(subj.zones, "main,fablab");
    assert_string_equal(subj.hours, "Sat 10:00-13:00");

    /* no plan: plan_id 0 and hours that grant nothing */
    assert_int_equal(store_subject_lookup(s, h2, &subj), 0);
    assert_int_equal(subj.card_id, c2);
    assert_int_equal(subj.member_id, bob);
    assert_int_equal(subj.status, MEMBER_SUSPENDED);
    assert_int_equal(subj.plan_id, 0);
    assert_string_equal(subj.hours, "never");

    assert_int_equal(store_subject_lookup(s, h3, &subj), -ENOENT);

    /* a card disabled in the database reads as disabled */
    db = raw_open(f->path);
    snprintf(sql, sizeof(sql), "UPDATE cards SET enabled = 0 WHERE id = %lld", (long long)c1);
    raw_exec(db, sql);
    sqlite3_close(db);
    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_false(subj.card_enabled);
    store_free(s);
}

/* DESFire cards: the flag reads back in the subject and the listing, and the migration
 * report lists exactly the enabled UID-only cards of active members, with their last tap. */
static int collect_uid_only(const struct store_uid_only_card *c, void *userdata)
{
    struct store_uid_only_card *out = userdata;
    unsigned *n = (unsigned *)&out[8];

    if (*n < 8)
        out[*n] = *c;
    (*n)++;
    return 0;
}

static int card_desfire_of(const struct store_card *c, void *userdata)
{
    if (c->desfire)
        (*(int *)userdata)++;
    return 0;
}

static void test_desfire_cards(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    struct store_event ev = { .at = 5000, .granted = true };
    struct {
        struct store_uid_only_card c[8];
        unsigned n;
    } seen = { .n = 0 };
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN], h4[STORE_HASH_LEN];
    int64_t ada = 0, bob = 0, cleo = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    int desfire = 0;

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    hash_of(4, h4);
    assert_int_equal(store_member_add(s, "Ada", NULL, 0, 0, 0, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_member_add(s, "Cleo", NULL, 0, 0, 0, &cleo), 0);
    assert_int_equal(store_card_add(s, ada, h1, "fob", &c1), 0);
    assert_int_equal(store_card_add(s, ada, h2, "badge", &c2), 0);
    assert_int_equal(store_card_add(s, bob, h3, NULL, &c3), 0);
    assert_int_equal(store_card_add(s, cleo, h4, NULL, &c4), 0);
    assert_int_equal(store_card_set_desfire(s, c2, true), 0);
    assert_int_equal(store_card_set_desfire(s, 999, true), -ENOENT);
    assert_int_equal(store_member_set_status(s, cleo, MEMBER_SUSPENDED), 0);
    ev.card_id = c1;
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reason, sizeof(ev.reason), "granted");
    assert_int_equal(store_event_add(s, &ev, NULL), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_subject_lookup(s, h2, &subj), 0);
    assert_true(subj.card_desfire);
    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_false(subj.card_desfire);
    assert_true(store_cards_foreach(s, 0, card_desfire_of, &desfire) >= 0);
    assert_int_equal(desfire, 1);

    /* Ada's fob (used at 5000) and Bob's card; not Ada's DESFire badge, not suspended Cleo. */
    assert_true(store_uid_only_cards_foreach(s, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.c[0].card_id, c1);
    assert_string_equal(seen.c[0].member, "Ada");
    assert_string_equal(seen.c[0].label, "fob");
    assert_int_equal(seen.c[0].last_used, 5000);
    assert_int_equal(seen.c[1].card_id, c3);
    assert_int_equal(seen.c[1].last_used, 0);

    /* Provisioned: off the report. */
    assert_int_equal(store_card_set_desfire(s, c1, true), 0);
    assert_int_equal(store_card_set_desfire(s, c3, true), 0);
    assert_int_equal(store_commit(s), 0);
    seen.n = 0;
    assert_true(store_uid_only_cards_foreach(s, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 0);
    (void)c4;
    store_free(s);
}

/* ---- resources and events ---- */

static void add_event(struct store *s, int64_t at, int64_t resource, const char *reason,
                      int64_t *ret_id)
{
    struct store_event ev = { .at = at, .resource_id = resource, .granted = false };
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    snprintf(ev.reader, sizeof(ev.reader), "front");
    snprintf(ev.detail, sizeof(ev.detail), "detail %lld", (long long)at);
    hash_of((uint8_t)at, ev.card_hash);
    ev.has_card_hash = true;
    assert_int_equal(store_event_add(s, &ev, ret_id), 0);
}

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

static void test_events(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct events_seen seen = { 0 };
    int64_t door = 0, ids[5];

    assert_int_equal(store_resource_ensure(s, "door", "front", "main", &door), 0);
    for (int i = 0; i < 5; i++)
        add_event(s, 1000 + i * 10, i == 2 ? 0 : door, i == 4 ? "granted" : "unknown_card",
                  &ids[i]);
    for (int i = 1; i < 5; i++)
        assert_true(ids[i] > ids[i - 1]);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_events_foreach(s, 0, 0, collect_event, &seen), 5);
    assert_int_equal(seen.ev[0].id, ids[0]);
    assert_int_equal(seen.ev[0].at, 1000);
    assert_int_equal(seen.ev[0].resource_id, door);
    assert_string_equal(seen.ev[0].resource, "front");
    assert_string_equal(seen.ev[0].reader, "front");
    assert_string_equal(seen.ev[0].kind, "tap");
    assert_string_equal(seen.ev[0].reason, "unknown_card");
    assert_string_equal(seen.ev[0].detail, "detail 1000");
    assert_false(seen.ev[0].granted);
    assert_int_equal(seen.ev[2].resource_id, 0);
    assert_string_equal(seen.ev[2].resource, "");
    assert_string_equal(seen.ev[4].reason, "granted");

    /* since: at >= since */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_events_foreach(s, 1020, 0, collect_event, &seen), 3);
    assert_int_equal(seen.ev[0].at, 1020);
    assert_int_equal(seen.ev[2].at, 1040);

    /* limit: the newest ones, oldest first */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_events_foreach(s, 0, 2, collect_event, &seen), 2);
    assert_int_equal(seen.ev[0].id, ids[3]);
    assert_int_equal(seen.ev[1].id, ids[4]);
    store_free(s);
}

static void test_events_append_only(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    sqlite3 *db;
    char *err = NULL;
    int64_t id = 0;

    add_event(s, 5000, 0, "unknown_card", &id);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(sqlite3_exec(db, "UPDATE access_events SET granted = 1, reason = 'granted'",
                                  NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    assert_non_null(err);
    assert_non_null(strstr(err, "append-only"));
    sqlite3_free(err);
    err = NULL;
    assert_int_equal(sqlite3_exec(db, "DELETE FROM access_events", NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    assert_non_null(err);
    assert_non_null(strstr(err, "append-only"));
    sqlite3_free(err);
    /* the row is still there, unchanged */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events WHERE granted = 0 AND "
                                 "reason = 'unknown_card' AND at = 5000"),
                     1);
    sqlite3_close(db);
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
    assert_int_equal(store_session_touch(s, s1, T0 + 600, 500), 0);
    assert_int_equal(store_session_close(s, s1, T0 + 900, 780, "released"), 0);
    /* a closed session stays closed */
    assert_int_equal(store_session_touch(s, s1, T0 + 1000, 900), -ENOENT);
    assert_int_equal(store_session_close(s, s1, T0 + 1000, 900, "again"), -ENOENT);
    assert_int_equal(store_session_touch(s, 424242, T0, 0), -ENOENT);
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
    assert_int_equal(store_session_touch(s, s1, T0 + 300, 240), 0);
    assert_int_equal(store_session_touch(s, s1, T0 + 600, 540), 0);
    assert_int_equal(store_session_close(s, s3, T0 - 60, 3000, "released"), 0);
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
    assert_int_equal(store_session_touch(s, s1, T0 + 700, 600), -ENOENT);
    store_free(s);
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

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_empty_file),
        T(test_open_creates_file_and_reopens),
        T(test_wal_mode),
        T(test_migrate_from_version_1),
        T(test_migrate_from_version_2),
        T(test_newer_schema_refused),
        T(test_open_refuses_other_files),
        T(test_create_at_version_bounds),
        T(test_plans),
        T(test_members),
        T(test_cards),
        T(test_subject_lookup),
        T(test_desfire_cards),
        T(test_resources),
        T(test_events),
        T(test_events_append_only),
        T(test_resource_defaults_without_rules),
        T(test_machine_rules_round_trip),
        T(test_out_of_order),
        T(test_trainings),
        T(test_trainings_count_members_not_grants),
        T(test_qualifications),
        T(test_booking_add_get_cancel),
        T(test_bookings_overlapping),
        T(test_booked_minutes),
        T(test_bookings_upcoming),
        T(test_bookings_foreach),
        T(test_bookings_week_long_seen_to_its_end),
        T(test_sessions),
        T(test_sessions_close_interrupted),
        T(test_secret),
        T(test_batch_commit),
        T(test_failed_write_keeps_batch),
        T(test_write_while_locked_elsewhere),
        T(test_free_commits_open_batch),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

static void test_migrate_from_previous_version(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    struct store_subject subj;
    struct store_plan plan;
    struct store_member m;
    struct store_event ev = { .at = 1767600000, .granted = true };
    uint8_t hash[STORE_HASH_LEN];
    int64_t event_id = 0, card_id = 0;
    sqlite3 *db;

    assert_int_equal(store_create_at_version(f->path, STORE_SCHEMA_VERSION - 1), 0);
    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION - 1);
    assert_false(raw_table_exists(db, "access_events"));
    raw_exec(db, "INSERT INTO plans (id, name, zones, hours, created_at) "
                 "VALUES (7, 'old-plan', 'main,fablab', 'Mon-Fri 08:00-20:00', 1700000000)");
    raw_exec(db, "INSERT INTO members (id, name, email, plan_id, status, valid_from, "
                 "valid_until, created_at) VALUES (3, 'Ada', 'ada@example.org', 7, 'active', "
                 "1700000000, 1900000000, 1700000000)");
    hash_of(9, hash);
    {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO cards (id, member_id, uid_hash, "
                                                "label, enabled, created_at) VALUES "
                                                "(11, 3, ?1, 'blue fob', 1, 1700000000)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
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

    /* and the new table works */
    strcpy(ev.kind, "tap");
    strcpy(ev.reason, "granted");
    strcpy(ev.reader, "front");
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
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct store *s = (struct store *)(uintptr_t)0x1;   /* must stay untouched */
    sqlite3 *db;

    assert_int_equal(store_create_at_version(f->path, STORE_SCHEMA_VERSION), 0);
    db = raw_open(f->path);
    raw_exec(db, "PRAGMA user_version = 3");
    raw_exec(db, "CREATE TABLE from_the_future (x)");
    sqlite3_close(db);
    assert_true(3 > STORE_SCHEMA_VERSION);

    assert_int_equal(store_open(f->path, &s), -EPROTO);
    assert_ptr_equal(s, (struct store *)(uintptr_t)0x1);

    db = raw_open(f->path);         /* not downgraded, not damaged */
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 3);
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

/* ---- resources and events ---- */

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

    store_set_dirty_callback(s, count_calls, &dirty);
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

    store_set_dirty_callback(s, count_calls, &dirty);
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
        T(test_migrate_from_previous_version),
        T(test_newer_schema_refused),
        T(test_open_refuses_other_files),
        T(test_create_at_version_bounds),
        T(test_plans),
        T(test_members),
        T(test_cards),
        T(test_subject_lookup),
        T(test_resources),
        T(test_events),
        T(test_events_append_only),
        T(test_secret),
        T(test_batch_commit),
        T(test_failed_write_keeps_batch),
        T(test_write_while_locked_elsewhere),
        T(test_free_commits_open_batch),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

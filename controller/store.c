#include "store.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Migration N brings user_version from N-1 to N. Never edit a released migration: add one. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 1: people, plans, cards, doors */
    "CREATE TABLE site_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE plans ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  zones TEXT NOT NULL DEFAULT '*',"
    "  hours TEXT NOT NULL DEFAULT 'always',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE members ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  email TEXT NOT NULL DEFAULT '',"
    "  plan_id INTEGER REFERENCES plans(id),"
    "  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),"
    "  valid_from INTEGER NOT NULL DEFAULT 0,"
    "  valid_until INTEGER NOT NULL DEFAULT 0,"
    "  home_site TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX members_name ON members(name);"
    "CREATE TABLE cards ("
    "  id INTEGER PRIMARY KEY,"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  uid_hash BLOB NOT NULL UNIQUE CHECK (length(uid_hash) = 32),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX cards_member ON cards(member_id);"
    "CREATE TABLE resources ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('door', 'machine')),"
    "  name TEXT NOT NULL UNIQUE,"
    "  zone TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);",

    /* 2: the access log. Append-only: rows are evidence, triggers refuse edits. No index on
     * `at`: ids grow with time, and every index would cost a page write per tap. */
    "CREATE TABLE access_events ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  resource_id INTEGER REFERENCES resources(id),"
    "  reader TEXT NOT NULL DEFAULT '',"
    "  member_id INTEGER,"
    "  card_id INTEGER,"
    "  card_hash BLOB,"
    "  kind TEXT NOT NULL,"
    "  granted INTEGER NOT NULL CHECK (granted IN (0, 1)),"
    "  reason TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '');"
    "CREATE TRIGGER access_events_no_update BEFORE UPDATE ON access_events"
    "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only'); END;"
    "CREATE TRIGGER access_events_no_delete BEFORE DELETE ON access_events"
    "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only'); END;",
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SECRET_GET,
    ST_SECRET_PUT,
    ST_PLAN_ADD,
    ST_PLAN_FIND,
    ST_PLAN_LIST,
    ST_MEMBER_ADD,
    ST_MEMBER_GET,
    ST_MEMBER_BY_NAME,
    ST_MEMBER_STATUS,
    ST_MEMBER_LIST,
    ST_MEMBER_COUNT,
    ST_CARD_ADD,
    ST_CARD_REMOVE,
    ST_CARD_FIND,
    ST_CARD_LIST,
    ST_CARD_LIST_MEMBER,
    ST_CARD_COUNT,
    ST_SUBJECT,
    ST_RESOURCE_UPSERT,
    ST_EVENT_ADD,
    ST_EVENT_LIST,
    ST__MAX
};

#define MEMBER_COLUMNS \
    "m.id, m.name, m.email, coalesce(m.plan_id, 0), coalesce(p.name, ''), m.status, " \
    "m.valid_from, m.valid_until, m.created_at, " \
    "(SELECT count(*) FROM cards c WHERE c.member_id = m.id) "
#define CARD_COLUMNS \
    "c.id, c.member_id, m.name, c.label, c.enabled, c.created_at, hex(substr(c.uid_hash, 1, 8)) "

static const char *const stmt_sql[ST__MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SECRET_GET] = "SELECT value FROM site_secrets WHERE name = ?1",
    [ST_SECRET_PUT] = "INSERT INTO site_secrets (name, value) VALUES (?1, ?2)",
    [ST_PLAN_ADD] = "INSERT INTO plans (name, zones, hours, created_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_PLAN_FIND] = "SELECT id, name, zones, hours, "
                     "(SELECT count(*) FROM members m WHERE m.plan_id = plans.id) "
                     "FROM plans WHERE name = ?1",
    [ST_PLAN_LIST] = "SELECT id, name, zones, hours, "
                     "(SELECT count(*) FROM members m WHERE m.plan_id = plans.id) "
                     "FROM plans ORDER BY name",
    [ST_MEMBER_ADD] = "INSERT INTO members (name, email, plan_id, valid_from, valid_until, "
                      "created_at) VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6)",
    [ST_MEMBER_GET] = "SELECT " MEMBER_COLUMNS
                      "FROM members m LEFT JOIN plans p ON p.id = m.plan_id WHERE m.id = ?1",
    [ST_MEMBER_BY_NAME] = "SELECT id FROM members WHERE name = ?1 LIMIT 2",
    [ST_MEMBER_STATUS] = "UPDATE members SET status = ?2 WHERE id = ?1",
    [ST_MEMBER_LIST] = "SELECT " MEMBER_COLUMNS
                       "FROM members m LEFT JOIN plans p ON p.id = m.plan_id ORDER BY m.id",
    [ST_MEMBER_COUNT] = "SELECT count(*) FROM members",
    [ST_CARD_ADD] = "INSERT INTO cards (member_id, uid_hash, label, created_at) "
                    "VALUES (?1, ?2, ?3, ?4)",
    [ST_CARD_REMOVE] = "DELETE FROM cards WHERE id = ?1",
    [ST_CARD_FIND] = "SELECT id FROM cards WHERE uid_hash = ?1",
    [ST_CARD_LIST] = "SELECT " CARD_COLUMNS
                     "FROM cards c JOIN members m ON m.id = c.member_id ORDER BY c.id",
    [ST_CARD_LIST_MEMBER] = "SELECT " CARD_COLUMNS
                            "FROM cards c JOIN members m ON m.id = c.member_id "
                            "WHERE c.member_id = ?1 ORDER BY c.id",
    [ST_CARD_COUNT] = "SELECT count(*) FROM cards",
    [ST_SUBJECT] = "SELECT c.id, c.enabled, m.id, m.status, m.valid_from, m.valid_until, "
                   "coalesce(p.id, 0), coalesce(p.zones, ''), coalesce(p.hours, 'never') "
                   "FROM cards c JOIN members m ON m.id = c.member_id "
                   "LEFT JOIN plans p ON p.id = m.plan_id WHERE c.uid_hash = ?1",
    [ST_RESOURCE_UPSERT] = "INSERT INTO resources (kind, name, zone, created_at) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
                           "zone = excluded.zone, kind = excluded.kind RETURNING id",
    [ST_EVENT_ADD] = "INSERT INTO access_events (at, resource_id, reader, member_id, card_id, "
                     "card_hash, kind, granted, reason, detail) VALUES "
                     "(?1, nullif(?2, 0), ?3, nullif(?4, 0), nullif(?5, 0), ?6, ?7, ?8, ?9, ?10)",
    [ST_EVENT_LIST] = "SELECT * FROM (SELECT e.id, e.at, coalesce(e.resource_id, 0), "
                      "coalesce(r.name, ''), e.reader, coalesce(e.member_id, 0), "
                      "coalesce(e.card_id, 0), e.kind, e.granted, e.reason, e.detail "
                      "FROM access_events e LEFT JOIN resources r ON r.id = e.resource_id "
                      "WHERE e.at >= ?1 ORDER BY e.id DESC LIMIT ?2) ORDER BY 1",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST__MAX];
    bool in_batch;
    void (*dirty_fn)(void *userdata);
    void *dirty_userdata;
};

/* Map SQLite result codes to -errno at the module boundary. */
static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:        return 0;
    case SQLITE_NOMEM:      return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:     return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:       return -EACCES;
    case SQLITE_FULL:       return -ENOSPC;
    case SQLITE_CANTOPEN:   return -ENOENT;
    case SQLITE_CONSTRAINT:
        return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? -EEXIST
                                                                                      : -EINVAL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:     return -EBADMSG;
    case SQLITE_TOOBIG:     return -E2BIG;
    default:                return -EIO;
    }
}

static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Step a statement that returns no rows (or whose rows we ignore). */
static int stmt_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);      /* extended result codes are on */
    int r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
    sqlite3_reset(st);
    return r < 0 || rc == SQLITE_DONE || rc == SQLITE_ROW ? r : -EIO;
}

static void column_text(sqlite3_stmt *st, int col, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, n, "%s", t ? (const char *)t : "");
}

/* Writes join the open batch, starting one if needed. */
static int batch_ensure(struct store *s)
{
    int r;

    if (s->in_batch)
        return 0;
    r = stmt_exec(stmt_get(s, ST_BEGIN));
    if (r < 0)
        return r;
    s->in_batch = true;
    if (s->dirty_fn)
        s->dirty_fn(s->dirty_userdata);
    return 0;
}

int store_commit(struct store *s)
{
    int r;

    if (!s->in_batch)
        return 0;
    r = stmt_exec(stmt_get(s, ST_COMMIT));
    if (r < 0) {
        stmt_exec(stmt_get(s, ST_ROLLBACK));
        r = r == 0 ? -EIO : r;
    }
    s->in_batch = false;
    return r;
}

bool store_in_batch(struct store *s) { return s->in_batch; }

void store_set_dirty_callback(struct store *s, void (*fn)(void *userdata), void *userdata)
{
    s->dirty_fn = fn;
    s->dirty_userdata = userdata;
}

static int user_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_to_errno(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

/* Apply migrations up to target, each in its own transaction with its version bump. */
static int migrate(sqlite3 *db, int target)
{
    int version, r;

    r = user_version(db, &version);
    if (r < 0)
        return r;
    if (version > STORE_SCHEMA_VERSION)
        return -EPROTO;
    for (int v = version; v < target; v++) {
        char bump[48];
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            r = sqlite_to_errno(sqlite3_extended_errcode(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r < 0 ? r : -EIO;
        }
    }
    return 0;
}

static int db_open(const char *path, sqlite3 **ret)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = sqlite_to_errno(rc);
        sqlite3_close(db);
        return r < 0 ? r : -EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    /* page_size (effective only when the file is created): a tap appends one row, and with
     * WAL each commit writes the changed page twice (WAL frame, then checkpoint). 1 KiB
     * pages keep that near 2 KiB per tap on an SD card instead of 8 KiB; lookups stay a
     * few page reads deep even with hundreds of thousands of cards.
     * WAL: readers (sqlite3 CLI, backups) never block the daemon. synchronous=FULL: a commit
     * is on disk when COMMIT returns, so a power cut never loses a committed event. */
    rc = sqlite3_exec(db,
                      "PRAGMA page_size = 1024;"
                      "PRAGMA journal_mode = WAL;"
                      "PRAGMA synchronous = FULL;"
                      "PRAGMA foreign_keys = ON;"
                      "PRAGMA busy_timeout = 2000;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int r = sqlite_to_errno(sqlite3_extended_errcode(db));
        sqlite3_close(db);
        return r < 0 ? r : -EIO;
    }
    *ret = db;
    return 0;
}

int store_create_at_version(const char *path, int version)
{
    sqlite3 *db;
    int r;

    if (version < 0 || version > STORE_SCHEMA_VERSION)
        return -EINVAL;
    r = db_open(path, &db);
    if (r < 0)
        return r;
    r = migrate(db, version);
    sqlite3_close(db);
    return r;
}

int store_open(const char *path, struct store **ret)
{
    struct store *s;
    int r;

    if (sodium_init() < 0)
        return -EIO;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    r = db_open(path, &s->db);
    if (r < 0)
        goto fail;
    r = migrate(s->db, STORE_SCHEMA_VERSION);
    if (r < 0)
        goto fail;
    for (int i = 0; i < ST__MAX; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            r = sqlite_to_errno(rc);
            r = r < 0 ? r : -EIO;
            goto fail;
        }
    }
    *ret = s;
    return 0;
fail:
    store_free(s);
    return r;
}

struct store *store_free(struct store *s)
{
    if (!s)
        return NULL;
    if (s->stmt[ST_COMMIT])
        store_commit(s);
    for (int i = 0; i < ST__MAX; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    free(s);
    return NULL;
}

int store_schema_version(struct store *s)
{
    int v = -1;
    user_version(s->db, &v);
    return v;
}

int store_secret(struct store *s, const char *name, uint8_t *buf, size_t len)
{
    sqlite3_stmt *st = stmt_get(s, ST_SECRET_GET);
    int rc, r;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        if ((size_t)n != len) {
            sqlite3_reset(st);
            return -EBADMSG;
        }
        memcpy(buf, sqlite3_column_blob(st, 0), len);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(rc);
    r = batch_ensure(s);
    if (r < 0)
        return r;
    randombytes_buf(buf, len);
    st = stmt_get(s, ST_SECRET_PUT);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    r = stmt_exec(st);
    if (r < 0)
        return r;
    /* A new secret must be durable before anything is hashed with it. */
    return store_commit(s);
}

/* ---- plans ---- */

static void plan_from_row(sqlite3_stmt *st, struct store_plan *p)
{
    p->id = sqlite3_column_int64(st, 0);
    column_text(st, 1, p->name, sizeof(p->name));
    column_text(st, 2, p->zones, sizeof(p->zones));
    column_text(st, 3, p->hours, sizeof(p->hours));
    p->members = sqlite3_column_int64(st, 4);
}

int store_plan_add(struct store *s, const char *name, const char *zones, const char *hours,
                   int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PLAN_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zones, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hours, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_plan_find(struct store *s, const char *name, struct store_plan *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_FIND);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        plan_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_plans_foreach(struct store *s, store_plan_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_LIST);
    struct store_plan p;
    int rc, n = 0, r = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        plan_from_row(st, &p);
        n++;
        r = fn(&p, userdata);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

/* ---- members ---- */

static void member_from_row(sqlite3_stmt *st, struct store_member *m)
{
    char status[16];
    m->id = sqlite3_column_int64(st, 0);
    column_text(st, 1, m->name, sizeof(m->name));
    column_text(st, 2, m->email, sizeof(m->email));
    m->plan_id = sqlite3_column_int64(st, 3);
    column_text(st, 4, m->plan, sizeof(m->plan));
    column_text(st, 5, status, sizeof(status));
    m->status = strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
    m->valid_from = sqlite3_column_int64(st, 6);
    m->valid_until = sqlite3_column_int64(st, 7);
    m->created_at = sqlite3_column_int64(st, 8);
    m->cards = sqlite3_column_int64(st, 9);
}

int store_member_add(struct store *s, const char *name, const char *email, int64_t plan_id,
                     int64_t valid_from, int64_t valid_until, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_MEMBER_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email ? email : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, plan_id);
    sqlite3_bind_int64(st, 4, valid_from);
    sqlite3_bind_int64(st, 5, valid_until);
    sqlite3_bind_int64(st, 6, now_utc());
    r = stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;    /* the only constraint that can fail here is the plan reference */
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_member_get(struct store *s, int64_t id, struct store_member *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_MEMBER_GET);
    int rc;

    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        member_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_member_resolve(struct store *s, const char *ref, int64_t *ret_id)
{
    struct store_member m;
    sqlite3_stmt *st;
    int64_t id, found = 0;
    int rc, n = 0;

    if (parse_int64(ref, 1, INT64_MAX, &id) == 0) {
        int r = store_member_get(s, id, &m);
        if (r == 0)
            *ret_id = id;
        return r;
    }
    st = stmt_get(s, ST_MEMBER_BY_NAME);
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        found = sqlite3_column_int64(st, 0);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(rc);
    if (n == 0)
        return -ENOENT;
    if (n > 1)
        return -ENOTUNIQ;
    *ret_id = found;
    return 0;
}

int store_member_set_status(struct store *s, int64_t id, enum member_status status)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_MEMBER_STATUS);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status == MEMBER_SUSPENDED ? "suspended" : "active", -1,
                      SQLITE_STATIC);
    r = stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return r;
}

int store_members_foreach(struct store *s, store_member_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_MEMBER_LIST);
    struct store_member m;
    int rc, n = 0, r = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        member_from_row(st, &m);
        n++;
        r = fn(&m, userdata);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

static int64_t count_of(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = stmt_get(s, id);
    int64_t n = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

int64_t store_member_count(struct store *s) { return count_of(s, ST_MEMBER_COUNT); }
int64_t store_card_count(struct store *s) { return count_of(s, ST_CARD_COUNT); }

/* ---- cards ---- */

int store_card_add(struct store *s, int64_t member_id, const uint8_t hash[STORE_HASH_LEN],
                   const char *label, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_CARD_ADD);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_blob(st, 2, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label ? label : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;    /* foreign key: no such member */
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_card_remove(struct store *s, int64_t card_id)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_CARD_REMOVE);
    sqlite3_bind_int64(st, 1, card_id);
    r = stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return r;
}

int store_card_find(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t *ret_id)
{
    sqlite3_stmt *st = stmt_get(s, ST_CARD_FIND);
    int rc;

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_cards_foreach(struct store *s, int64_t member_id, store_card_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, member_id ? ST_CARD_LIST_MEMBER : ST_CARD_LIST);
    struct store_card c;
    int rc, n = 0, r = 0;

    if (member_id)
        sqlite3_bind_int64(st, 1, member_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        c.id = sqlite3_column_int64(st, 0);
        c.member_id = sqlite3_column_int64(st, 1);
        column_text(st, 2, c.member, sizeof(c.member));
        column_text(st, 3, c.label, sizeof(c.label));
        c.enabled = sqlite3_column_int(st, 4) != 0;
        c.created_at = sqlite3_column_int64(st, 5);
        column_text(st, 6, c.hash_prefix, sizeof(c.hash_prefix));
        n++;
        r = fn(&c, userdata);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

int store_subject_lookup(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                         struct store_subject *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_SUBJECT);
    char status[16];
    int rc;

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->card_id = sqlite3_column_int64(st, 0);
        ret->card_enabled = sqlite3_column_int(st, 1) != 0;
        ret->member_id = sqlite3_column_int64(st, 2);
        column_text(st, 3, status, sizeof(status));
        ret->status = strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
        ret->valid_from = sqlite3_column_int64(st, 4);
        ret->valid_until = sqlite3_column_int64(st, 5);
        ret->plan_id = sqlite3_column_int64(st, 6);
        column_text(st, 7, ret->zones, sizeof(ret->zones));
        column_text(st, 8, ret->hours, sizeof(ret->hours));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

/* ---- resources ---- */

int store_resource_ensure(struct store *s, const char *kind, const char *name, const char *zone,
                          int64_t *ret_id)
{
    sqlite3_stmt *st;
    int rc, r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RESOURCE_UPSERT);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, zone ? zone : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && ret_id)
        *ret_id = sqlite3_column_int64(st, 0);
    r = rc == SQLITE_ROW ? 0 : sqlite_to_errno(sqlite3_extended_errcode(s->db));
    sqlite3_reset(st);
    return r < 0 ? r : 0;
}

/* ---- access events ---- */

int store_event_add(struct store *s, const struct store_event *ev, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_EVENT_ADD);
    sqlite3_bind_int64(st, 1, ev->at);
    sqlite3_bind_int64(st, 2, ev->resource_id);
    sqlite3_bind_text(st, 3, ev->reader, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ev->member_id);
    sqlite3_bind_int64(st, 5, ev->card_id);
    if (ev->has_card_hash)
        sqlite3_bind_blob(st, 6, ev->card_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, ev->granted ? 1 : 0);
    sqlite3_bind_text(st, 9, ev->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, ev->detail, -1, SQLITE_STATIC);
    r = stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_events_foreach(struct store *s, int64_t since, int64_t limit, store_event_fn fn,
                         void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_EVENT_LIST);
    struct store_event ev;
    int rc, n = 0, r = 0;

    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&ev, 0, sizeof(ev));
        ev.id = sqlite3_column_int64(st, 0);
        ev.at = sqlite3_column_int64(st, 1);
        ev.resource_id = sqlite3_column_int64(st, 2);
        column_text(st, 3, ev.resource, sizeof(ev.resource));
        column_text(st, 4, ev.reader, sizeof(ev.reader));
        ev.member_id = sqlite3_column_int64(st, 5);
        ev.card_id = sqlite3_column_int64(st, 6);
        column_text(st, 7, ev.kind, sizeof(ev.kind));
        ev.granted = sqlite3_column_int(st, 8) != 0;
        column_text(st, 9, ev.reason, sizeof(ev.reason));
        column_text(st, 10, ev.detail, sizeof(ev.detail));
        n++;
        r = fn(&ev, userdata);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

#include "store_consortium.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_internal.h"
#include "util.h"

/* Migration N brings the consortium's version from N-1 to N. Never edit a released one. */
static const char *const migrations[STORE_CONSORTIUM_SCHEMA_VERSION] = {
    /* 1: ledger transport — where the custodian's acknowledgements stand. */
    "CREATE TABLE consortium_transport ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  acked_seq INTEGER NOT NULL,"
    "  acked_at INTEGER NOT NULL);"
    "INSERT INTO consortium_transport (id, acked_seq, acked_at) VALUES (1, 0, 0);",
};

enum {
    SC_ACKED_GET,
    SC_ACKED_PUT,
    SC__MAX
};

static const char *const stmt_sql[SC__MAX] = {
    [SC_ACKED_GET] = "SELECT acked_seq FROM consortium_transport WHERE id = 1",
    [SC_ACKED_PUT] = "UPDATE consortium_transport SET acked_seq = ?1, acked_at = ?2 WHERE id = 1",
};

struct store_consortium {
    struct store *store;
    sqlite3 *db;
    sqlite3_stmt *stmt[SC__MAX];
};

static int exec_sql(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    int r = store_errno(rc);
    return rc == SQLITE_OK ? 0 : r < 0 ? r : -EIO;
}

static int module_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM module_schema WHERE module = 'consortium'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_errno(rc) < 0 ? store_errno(rc) : -EIO;
    rc = sqlite3_step(st);
    *ret = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int migrate(struct store *s, sqlite3 *db)
{
    char bump[192];
    int version, r;

    /* Our transaction, not the daemon's batch: commit what is pending first. */
    r = store_commit(s);
    if (r < 0)
        return r;
    r = exec_sql(db, "CREATE TABLE IF NOT EXISTS module_schema ("
                     "  module TEXT PRIMARY KEY, version INTEGER NOT NULL)");
    if (r < 0)
        return r;
    r = module_version(db, &version);
    if (r < 0)
        return r;
    if (version > STORE_CONSORTIUM_SCHEMA_VERSION)
        return -EPROTO;
    for (int v = version; v < STORE_CONSORTIUM_SCHEMA_VERSION; v++) {
        r = exec_sql(db, "BEGIN IMMEDIATE");
        if (r < 0)
            return r;
        snprintf(bump, sizeof(bump), "INSERT INTO module_schema (module, version) VALUES "
                 "('consortium', %d) ON CONFLICT (module) DO UPDATE SET version = excluded.version",
                 v + 1);
        r = exec_sql(db, migrations[v]);
        if (r == 0)
            r = exec_sql(db, bump);
        if (r < 0) {
            exec_sql(db, "ROLLBACK");
            return r;
        }
        r = exec_sql(db, "COMMIT");
        if (r < 0)
            return r;
    }
    return 0;
}

int store_consortium_open(struct store *s, struct store_consortium **ret)
{
    struct store_consortium *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return -ENOMEM;
    c->store = s;
    c->db = store_db(s);
    r = migrate(s, c->db);
    if (r < 0)
        goto fail;
    for (int i = 0; i < SC__MAX; i++) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            r = store_errno(rc) < 0 ? store_errno(rc) : -EIO;
            goto fail;
        }
    }
    *ret = c;
    return 0;
fail:
    store_consortium_free(c);
    return r;
}

struct store_consortium *store_consortium_free(struct store_consortium *c)
{
    if (!c)
        return NULL;
    for (int i = 0; i < SC__MAX; i++)
        sqlite3_finalize(c->stmt[i]);
    free(c);
    return NULL;
}

int store_consortium_schema_version(struct store_consortium *c)
{
    int v = -1;
    module_version(c->db, &v);
    return v;
}

static sqlite3_stmt *stmt(struct store_consortium *c, int id)
{
    sqlite3_reset(c->stmt[id]);
    sqlite3_clear_bindings(c->stmt[id]);
    return c->stmt[id];
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_errno(rc) < 0 ? store_errno(rc) : -EIO;
}

int store_consortium_acked(struct store_consortium *c, int64_t *ret_seq)
{
    sqlite3_stmt *st = stmt(c, SC_ACKED_GET);
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        *ret_seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int store_consortium_set_acked(struct store_consortium *c, int64_t seq, int64_t at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(c->store);

    if (r < 0)
        return r;
    st = stmt(c, SC_ACKED_PUT);
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, at);
    return step_done(st);
}

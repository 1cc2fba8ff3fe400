/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_sql: the SQLite helpers every database of Portier uses (the store's files and the
 * custodian's), on a real SQLite file: the statement registry, the row helpers, blobs, the
 * migrations and the error mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_fixture.h"
#include "store_sql.h"

static sqlite3 *db_with_rows(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    raw_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, b BLOB);"
                 "INSERT INTO t (id, name, b) VALUES (1, 'one', x'0102'), (2, 'two', NULL),"
                 " (3, 'three', x'010203');");
    return db;
}

static const char sql_by_id[] = "SELECT id, name FROM t WHERE id = ?1";
static const char sql_by_name[] = "SELECT id FROM t WHERE name = ?1";
static const char sql_all[] = "SELECT id, name FROM t ORDER BY id";
static const char sql_count[] = "SELECT count(*) FROM t";
static const char sql_insert[] = "INSERT INTO t (name) VALUES (?1)";
static const char sql_broken[] = "SELECT nothing FROM nowhere";
/* An error at step time: integer overflow in abs(). */
static const char sql_fails[] = "SELECT abs(-9223372036854775807 - 1)";

struct row {
    int64_t id;
    char name[16];
};

static void row_fill(sqlite3_stmt *st, void *ret)
{
    struct row *r = ret;

    r->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, r->name, sizeof(r->name));
}

static void test_registry_prepares_once_and_hands_back_reset(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    struct store_stmts *r = NULL;
    sqlite3_stmt *st, *again;

    assert_int_equal(store_stmts_new(db, &r), 0);
    st = store_stmts_get(r, sql_by_id);
    assert_non_null(st);
    assert_int_equal(sqlite3_bind_int64(st, 1, 2), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);       /* left mid-way, bound */

    again = store_stmts_get(r, sql_by_id);
    assert_ptr_equal(again, st);                          /* the same statement ... */
    assert_int_equal(sqlite3_stmt_busy(again), 0);        /* ... reset ... */
    assert_int_equal(sqlite3_step(again), SQLITE_DONE);   /* ... and unbound: id = NULL */
    assert_ptr_not_equal(store_stmts_get(r, sql_by_name), st);
    assert_null(store_stmts_free(r));
    sqlite3_close(db);
}

/* The registry grows past its first table: every statement stays its own. */
static void test_registry_holds_many_statements(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    static char sql[300][40];
    sqlite3_stmt *st[300];
    struct store_stmts *r = NULL;

    assert_int_equal(store_stmts_new(db, &r), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i);
        st[i] = store_stmts_get(r, sql[i]);
        assert_non_null(st[i]);
    }
    for (int i = 0; i < 300; i++) {
        assert_ptr_equal(store_stmts_get(r, sql[i]), st[i]);
        assert_int_equal(store_row_value(st[i]), i);
    }
    store_stmts_free(r);
    sqlite3_close(db);
}

/* A statement that cannot be prepared is NULL; binding it is harmless and every helper says
 * -EIO, so callers need no check of their own. */
static void test_unpreparable_statement_is_an_error_not_a_crash(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    struct store_stmts *r = NULL;
    struct row row = { 7, "seven" };
    sqlite3_stmt *st;
    int64_t v = 42;

    assert_int_equal(store_stmts_new(db, &r), 0);
    st = store_stmts_get(r, sql_broken);
    assert_null(st);
    assert_int_not_equal(sqlite3_bind_int64(st, 1, 1), SQLITE_OK);
    assert_int_equal(store_stmt_exec(st), -EIO);
    assert_int_equal(store_row_get(st, row_fill, &row), -EIO);
    assert_int_equal(row.id, 7);                          /* untouched */
    assert_int_equal(store_row_int64(st, &v), -EIO);
    assert_int_equal(v, 42);
    assert_int_equal(store_row_value(st), -EIO);
    assert_int_equal(store_rows_each(st, NULL, NULL), -EIO);
    store_stmts_free(r);
    sqlite3_close(db);
}

static void test_row_get(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    struct store_stmts *r = NULL;
    struct row row = { 0 };
    sqlite3_stmt *st;
    int64_t id = -1;

    assert_int_equal(store_stmts_new(db, &r), 0);
    st = store_stmts_get(r, sql_by_id);
    sqlite3_bind_int64(st, 1, 3);
    assert_int_equal(store_row_get(st, row_fill, &row), 0);
    assert_int_equal(row.id, 3);
    assert_string_equal(row.name, "three");
    assert_int_equal(sqlite3_stmt_busy(st), 0);           /* reset after use */

    st = store_stmts_get(r, sql_by_id);
    sqlite3_bind_int64(st, 1, 99);
    row.id = -1;
    assert_int_equal(store_row_get(st, row_fill, &row), -ENOENT);
    assert_int_equal(row.id, -1);                         /* untouched */

    st = store_stmts_get(r, sql_by_id);                   /* NULL fill: is there a row? */
    sqlite3_bind_int64(st, 1, 1);
    assert_int_equal(store_row_get(st, NULL, NULL), 0);

    st = store_stmts_get(r, sql_by_name);
    sqlite3_bind_text(st, 1, "two", -1, SQLITE_STATIC);
    assert_int_equal(store_row_int64(st, &id), 0);
    assert_int_equal(id, 2);
    st = store_stmts_get(r, sql_by_name);
    sqlite3_bind_text(st, 1, "none", -1, SQLITE_STATIC);
    assert_int_equal(store_row_int64(st, &id), -ENOENT);
    assert_int_equal(id, 2);
    assert_int_equal(store_row_value(store_stmts_get(r, sql_by_name)), -ENOENT);
    assert_int_equal(store_row_value(store_stmts_get(r, sql_count)), 3);

    /* An error while stepping is an error, not "no row". */
    assert_int_equal(store_row_get(store_stmts_get(r, sql_fails), row_fill, &row), -EIO);
    assert_int_equal(store_row_value(store_stmts_get(r, sql_fails)), -EIO);
    store_stmts_free(r);
    sqlite3_close(db);
}

struct seen {
    int n, stop_at;
    int64_t ids[8];
};

static int each_row(sqlite3_stmt *st, void *ctx)
{
    struct seen *s = ctx;

    s->ids[s->n++] = sqlite3_column_int64(st, 0);
    return s->n == s->stop_at ? -ECANCELED : 0;
}

static void test_rows_each_and_exec(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    struct store_stmts *r = NULL;
    struct seen seen = { 0 };
    sqlite3_stmt *st;

    assert_int_equal(store_stmts_new(db, &r), 0);
    assert_int_equal(store_rows_each(store_stmts_get(r, sql_all), each_row, &seen), 3);
    assert_int_equal(seen.ids[0], 1);
    assert_int_equal(seen.ids[2], 3);
    seen = (struct seen){ .stop_at = 2 };
    assert_int_equal(store_rows_each(store_stmts_get(r, sql_all), each_row, &seen), -ECANCELED);
    assert_int_equal(seen.n, 2);

    st = store_stmts_get(r, sql_insert);
    sqlite3_bind_text(st, 1, "four", -1, SQLITE_STATIC);
    assert_int_equal(store_stmt_exec(st), 0);
    st = store_stmts_get(r, sql_insert);
    sqlite3_bind_text(st, 1, "four", -1, SQLITE_STATIC);
    assert_int_equal(store_stmt_exec(st), -EEXIST);       /* UNIQUE */
    st = store_stmts_get(r, sql_insert);                  /* NOT NULL: another constraint */
    assert_int_equal(store_stmt_exec(st), -EINVAL);
    assert_int_equal(store_row_value(store_stmts_get(r, sql_count)), 4);
    store_stmts_free(r);
    sqlite3_close(db);
}

static void test_column_blob_takes_exact_sizes_only(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);
    sqlite3_stmt *st;
    uint8_t buf[3] = { 9, 9, 9 };

    assert_int_equal(sqlite3_prepare_v2(db, "SELECT b FROM t ORDER BY id", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);       /* 2 bytes */
    assert_false(store_column_blob(st, 0, buf, sizeof(buf)));
    assert_int_equal(buf[0], 9);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);       /* NULL */
    assert_false(store_column_blob(st, 0, buf, sizeof(buf)));
    assert_int_equal(buf[0], 9);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);       /* 3 bytes */
    assert_true(store_column_blob(st, 0, buf, sizeof(buf)));
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[2], 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static const char *const test_migrations[] = {
    "CREATE TABLE a (x INTEGER);",
    "CREATE TABLE b (y INTEGER);",
    "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);",     /* fails */
};

static void test_migrate(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = NULL;
    int v = -1;

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     NULL), SQLITE_OK);
    assert_int_equal(store_migrate(db, test_migrations, 3, 1), 0);
    assert_int_equal(store_user_version(db, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(store_migrate(db, test_migrations, 3, 2), 0);
    assert_int_equal(store_user_version(db, &v), 0);
    assert_int_equal(v, 2);
    assert_true(raw_table_exists(db, "a") && raw_table_exists(db, "b"));

    /* A migration that fails leaves nothing of itself, and the version where it was. */
    assert_int_equal(store_migrate(db, test_migrations, 3, 3), -EIO);
    assert_int_equal(store_user_version(db, &v), 0);
    assert_int_equal(v, 2);
    assert_false(raw_table_exists(db, "c"));

    /* A file newer than this build knows is refused. */
    assert_int_equal(store_migrate(db, test_migrations, 1, 1), -EPROTO);
    sqlite3_close(db);
}

static void test_errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(store_errno(SQLITE_OK), 0);
    assert_int_equal(store_errno(SQLITE_ROW), 0);
    assert_int_equal(store_errno(SQLITE_DONE), 0);
    assert_int_equal(store_errno(SQLITE_FULL), -ENOSPC);
    assert_int_equal(store_errno(SQLITE_IOERR_FSYNC), -EIO);
    assert_int_equal(store_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY);
    assert_int_equal(store_errno(SQLITE_CONSTRAINT_PRIMARYKEY), -EEXIST);
    assert_int_equal(store_errno(SQLITE_CONSTRAINT_FOREIGNKEY), -EINVAL);
    assert_int_equal(store_errno(SQLITE_NOTADB), -EBADMSG);
    assert_int_equal(store_errno(SQLITE_READONLY), -EACCES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_registry_prepares_once_and_hands_back_reset),
        STORE_TEST(test_registry_holds_many_statements),
        STORE_TEST(test_unpreparable_statement_is_an_error_not_a_crash),
        STORE_TEST(test_row_get),
        STORE_TEST(test_rows_each_and_exec),
        STORE_TEST(test_column_blob_takes_exact_sizes_only),
        STORE_TEST(test_migrate),
        STORE_TEST(test_errno_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

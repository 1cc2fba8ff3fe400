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
#include <stdlib.h>
#include <string.h>

#include "store_fixture.h"
#include "store_sql.h"

/* A connection to path, created if needed, with extended result codes (as the store's). */
static sqlite3 *db_new(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    return db;
}

static sqlite3 *db_with_rows(const char *path)
{
    sqlite3 *db = db_new(path);

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

/* ---- parameters and columns (STORE_ARGS, STORE_COL) ----
 *
 * These tests run on the rows of db_with_rows() through a registry made by their setup;
 * stmt() hands out its statements. */

struct rows_fixture {
    void *fixture;
    sqlite3 *db;
    struct store_stmts *r;
};

static int rows_setup(void **state)
{
    struct rows_fixture *rf = calloc(1, sizeof(*rf));

    if (!rf || fixture_setup(state) != 0)
        return -1;
    rf->fixture = *state;
    rf->db = db_with_rows(((struct fixture *)rf->fixture)->path);
    if (store_stmts_new(rf->db, &rf->r) < 0)
        return -1;
    *state = rf;
    return 0;
}

static int rows_teardown(void **state)
{
    struct rows_fixture *rf = *state;

    store_stmts_free(rf->r);
    sqlite3_close(rf->db);
    *state = rf->fixture;
    free(rf);
    return fixture_teardown(state);
}

#define ROWS_TEST(fn) cmocka_unit_test_setup_teardown(fn, rows_setup, rows_teardown)

static sqlite3_stmt *stmt(void **state, const char *sql)
{
    return store_stmts_get(((struct rows_fixture *)*state)->r, sql);
}

/* Every kind of column, and a NULL of each. */
static const char sql_kinds[] =
    "SELECT ?1, ?2, ?3, ?4, ?5, 'suspended'";
static const char sql_kind_rows[] =
    "SELECT id, name, b FROM t ORDER BY id";
static const char sql_typeof[] = "SELECT typeof(?1), typeof(?2), typeof(?3), typeof(?4), "
                                 "typeof(?5), typeof(?6), ?1, ?2, hex(?3), ?4";

enum colour { RED, GREEN };
struct kinds {
    int64_t i64;
    int i;
    bool flag;
    char text[6];
    uint8_t blob[2];
    enum colour colour;
    int64_t untouched_by_columns;
};

static void colour_read(sqlite3_stmt *st, int col, void *row)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    ((struct kinds *)row)->colour = t && strcmp((const char *)t, "suspended") == 0 ? GREEN : RED;
}

#define COL(field) STORE_COL(struct kinds, field)
static const struct store_cols kinds_cols = STORE_COLS(struct kinds,
    COL(i64), COL(i), COL(flag), COL(text), COL(blob), STORE_COL_READ(colour_read));
#undef COL

/* The table's kinds come from the fields' types. */
static void test_col_kinds_follow_field_types(void **state)
{
    (void)state;
    assert_int_equal(kinds_cols.col[0].kind, STORE_COL_INT64);
    assert_int_equal(kinds_cols.col[1].kind, STORE_COL_INT);
    assert_int_equal(kinds_cols.col[2].kind, STORE_COL_BOOL);
    assert_int_equal(kinds_cols.col[3].kind, STORE_COL_TEXT);
    assert_int_equal(kinds_cols.col[3].size, 6);
    assert_int_equal(kinds_cols.col[4].kind, STORE_COL_BLOB);
    assert_int_equal(kinds_cols.col[4].size, 2);
    assert_int_equal(kinds_cols.col[4].offset, offsetof(struct kinds, blob));
    assert_int_equal(kinds_cols.col[5].kind, STORE_COL_FN);
    assert_int_equal(kinds_cols.n, 6);
    assert_int_equal(kinds_cols.size, sizeof(struct kinds));
}

static void test_get_reads_each_kind(void **state)
{
    struct kinds k = { .untouched_by_columns = 99 };
    const uint8_t two[2] = { 0xab, 0xcd };

    assert_int_equal(store_stmt_get(stmt(state, sql_kinds),
                                     STORE_ARGS(STORE_INT(INT64_MAX), STORE_INT(-7), STORE_INT(2),
                                                STORE_TEXT("hello"), STORE_BLOB(two, 2)),
                                     &kinds_cols, &k), 0);
    assert_true(k.i64 == INT64_MAX);
    assert_int_equal(k.i, -7);
    assert_true(k.flag);                                  /* any non-zero */
    assert_string_equal(k.text, "hello");
    assert_memory_equal(k.blob, two, 2);
    assert_int_equal(k.colour, GREEN);
    assert_int_equal(k.untouched_by_columns, 0);          /* a row is zeroed first */
}

/* NULL reads as 0, false, "" and zeros; a blob of another size as zeros too. */
static void test_null_columns(void **state)
{
    const uint8_t three[3] = { 1, 2, 3 };
    struct kinds k;

    memset(&k, 0x55, sizeof(k));
    assert_int_equal(store_stmt_get(stmt(state, sql_kinds),
                                     STORE_ARGS(STORE_INT_OR_NULL(false, 5), STORE_TEXT(NULL),
                                                STORE_BLOB(NULL, 4), STORE_TEXT(NULL),
                                                STORE_BLOB(three, 3)),
                                     &kinds_cols, &k), 0);
    assert_int_equal(k.i64, 0);
    assert_int_equal(k.i, 0);
    assert_false(k.flag);
    assert_string_equal(k.text, "");
    assert_int_equal(k.blob[0], 0);
    assert_int_equal(k.blob[1], 0);
}

/* Text longer than its field is cut to fit, and always terminated. */
static void test_text_too_long_is_truncated(void **state)
{
    struct kinds k;

    assert_int_equal(store_stmt_get(stmt(state, sql_kinds),
                                     STORE_ARGS(STORE_INT(1), STORE_INT(1), STORE_INT(0),
                                                STORE_TEXT("a text far too long"),
                                                STORE_BLOB("xy", 2)),
                                     &kinds_cols, &k), 0);
    assert_string_equal(k.text, "a tex");                 /* sizeof(text) - 1 bytes */
    assert_false(k.flag);
    assert_memory_equal(k.blob, "xy", 2);
}

/* What each parameter binds, as SQLite sees it. */
static void test_args_bind_their_types(void **state)
{
    sqlite3_stmt *st;

    st = stmt(state, sql_typeof);
    assert_int_equal(store_bind(st, STORE_ARGS(STORE_INT(-3), STORE_TEXT("é"),
                                               STORE_BLOB("\x01\x02", 2), STORE_INT(true),
                                               STORE_INT_OR_NULL(false, 8), STORE_TEXT(NULL))),
                     0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "integer");
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "text");
    assert_string_equal((const char *)sqlite3_column_text(st, 2), "blob");
    assert_string_equal((const char *)sqlite3_column_text(st, 3), "integer");
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "null");
    assert_string_equal((const char *)sqlite3_column_text(st, 5), "null");
    assert_int_equal(sqlite3_column_int64(st, 6), -3);
    assert_string_equal((const char *)sqlite3_column_text(st, 7), "é");
    assert_string_equal((const char *)sqlite3_column_text(st, 8), "0102");
    assert_int_equal(sqlite3_column_int64(st, 9), 1);
    sqlite3_reset(st);

    st = stmt(state, sql_typeof);                  /* and INT_OR_NULL with a value */
    assert_int_equal(store_bind(st, STORE_ARGS(STORE_INT(0), STORE_INT(0), STORE_INT(0),
                                               STORE_INT(0), STORE_INT_OR_NULL(true, 8),
                                               STORE_BLOB(NULL, 0))), 0);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "integer");
    assert_string_equal((const char *)sqlite3_column_text(st, 5), "null");
    sqlite3_reset(st);
}

/* A parameter list or a column table that does not match its statement is refused before
 * anything runs: -ERANGE, nothing written, the row untouched. */
static void test_wrong_counts_are_refused(void **state)
{
    struct kinds k = { .i64 = 42 };
    struct row row = { 7, "seven" };
    const struct store_cols two = STORE_COLS(struct row, STORE_COL(struct row, id),
                                             STORE_COL(struct row, name));
    const struct store_cols one = STORE_COLS(struct row, STORE_COL(struct row, id));
    int64_t v = 5;

    /* too few and too many parameters */
    assert_int_equal(store_stmt_run(stmt(state, sql_insert), STORE_NO_ARGS), -ERANGE);
    assert_int_equal(store_stmt_run(stmt(state, sql_insert),
                                    STORE_ARGS(STORE_TEXT("x"), STORE_TEXT("y"))), -ERANGE);
    assert_int_equal(store_row_value(stmt(state, sql_count)), 3);      /* none written */
    assert_int_equal(store_stmt_get(stmt(state, sql_kinds), STORE_ARGS(STORE_INT(1)),
                                    &kinds_cols, &k), -ERANGE);
    assert_int_equal(k.i64, 42);
    assert_int_equal(store_stmt_get_int64(stmt(state, sql_by_id), STORE_NO_ARGS, &v),
                     -ERANGE);
    assert_int_equal(v, 5);

    /* a table with fewer or more entries than the statement's columns */
    assert_int_equal(store_stmt_get(stmt(state, sql_by_id), STORE_ARGS(STORE_INT(1)),
                                    &one, &row), -ERANGE);
    assert_int_equal(row.id, 7);
    assert_int_equal(store_stmt_each(stmt(state, sql_by_name), STORE_ARGS(STORE_TEXT("one")),
                                     &two, NULL, NULL), -ERANGE);
    assert_int_equal(store_stmt_collect(stmt(state, sql_all), STORE_NO_ARGS, &one, &row, 1),
                     -ERANGE);
    /* the statement is usable again at once */
    assert_int_equal(store_stmt_get(stmt(state, sql_by_id), STORE_ARGS(STORE_INT(1)),
                                    &two, &row), 0);
    assert_string_equal(row.name, "one");
    /* and a statement that could not be prepared is still -EIO */
    assert_int_equal(store_stmt_get(stmt(state, sql_broken), STORE_NO_ARGS, &two, &row),
                     -EIO);
}

struct kind_rows {
    int n, stop_at;
    int64_t ids[4];
    char names[4][8];
    bool blob_zero[4];
};

struct id_name_blob {
    int64_t id;
    char name[8];
    uint8_t b[2];
};
#define COL(field) STORE_COL(struct id_name_blob, field)
static const struct store_cols inb_cols = STORE_COLS(struct id_name_blob, COL(id), COL(name), COL(b));
#undef COL

static int kind_row(const void *row, void *ctx)
{
    const struct id_name_blob *x = row;
    struct kind_rows *k = ctx;

    k->ids[k->n] = x->id;
    snprintf(k->names[k->n], sizeof(k->names[0]), "%s", x->name);
    k->blob_zero[k->n] = x->b[0] == 0 && x->b[1] == 0;
    return ++k->n == k->stop_at ? -ECANCELED : 0;
}

static void test_each_and_collect(void **state)
{
    struct kind_rows k = { 0 };
    struct id_name_blob out[2];

    assert_int_equal(store_stmt_each(stmt(state, sql_kind_rows), STORE_NO_ARGS, &inb_cols,
                                     kind_row, &k), 3);
    assert_int_equal(k.ids[0], 1);
    assert_string_equal(k.names[2], "three");
    assert_false(k.blob_zero[0]);                         /* x'0102' */
    assert_true(k.blob_zero[1]);                          /* NULL */
    assert_true(k.blob_zero[2]);                          /* 3 bytes: not a b[2] */
    k = (struct kind_rows){ .stop_at = 2 };
    assert_int_equal(store_stmt_each(stmt(state, sql_kind_rows), STORE_NO_ARGS, &inb_cols,
                                     kind_row, &k), -ECANCELED);
    assert_int_equal(k.n, 2);

    /* collect keeps the first n rows and steps over the rest */
    assert_int_equal(store_stmt_collect(stmt(state, sql_kind_rows), STORE_NO_ARGS,
                                        &inb_cols, out, 2), 2);
    assert_int_equal(out[0].id, 1);
    assert_string_equal(out[1].name, "two");
    assert_int_equal(store_stmt_collect(stmt(state, sql_kind_rows), STORE_NO_ARGS,
                                        &inb_cols, out, 0), 0);
}

static void test_scalar_helpers(void **state)
{
    char name[4] = "old";
    int64_t id = -1;

    assert_int_equal(store_stmt_get_int64(stmt(state, sql_by_name),
                                          STORE_ARGS(STORE_TEXT("three")), &id), 0);
    assert_int_equal(id, 3);
    assert_int_equal(store_stmt_get_int64(stmt(state, sql_by_name),
                                          STORE_ARGS(STORE_TEXT("none")), &id), -ENOENT);
    assert_int_equal(id, 3);
    assert_int_equal(store_stmt_value(stmt(state, sql_count), STORE_NO_ARGS), 3);
    assert_int_equal(store_stmt_get_text(stmt(state, "SELECT name FROM t WHERE id = ?1"),
                                         STORE_ARGS(STORE_INT(99)), name, sizeof(name)),
                     -ENOENT);
    assert_string_equal(name, "old");                     /* untouched */
    assert_int_equal(store_stmt_get_text(stmt(state, "SELECT 'three'"), STORE_NO_ARGS,
                                         name, sizeof(name)), 0);
    assert_string_equal(name, "thr");
    assert_int_equal(store_stmt_exists(stmt(state, sql_by_name),
                                       STORE_ARGS(STORE_TEXT("two"))), 1);
    assert_int_equal(store_stmt_exists(stmt(state, sql_by_name),
                                       STORE_ARGS(STORE_TEXT("six"))), 0);
    assert_int_equal(store_stmt_exists(stmt(state, sql_fails), STORE_NO_ARGS), -EIO);
    assert_int_equal(store_stmt_run(stmt(state, sql_insert),
                                    STORE_ARGS(STORE_TEXT("two"))), -EEXIST);
}

static void test_exec(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_with_rows(f->path);

    assert_int_equal(store_exec(db, "CREATE TABLE u (x INTEGER UNIQUE); INSERT INTO u VALUES (1)"),
                     0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM u"), 1);
    assert_int_equal(store_exec(db, "INSERT INTO u VALUES (1)"), -EEXIST);
    assert_int_equal(store_exec(db, "SELEKT"), -EIO);
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
    sqlite3 *db = db_new(f->path);
    int v = -1;

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

/* A module's migrations: recorded in module_schema, beside user_version and the other
 * modules, with the same all-or-nothing steps and the same refusal of a newer schema. */
static void test_migrate_module(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = db_new(f->path);
    int v = -1;

    assert_int_equal(store_migrate_module(db, "mod", test_migrations, 3, 2), 0);
    assert_int_equal(store_module_version(db, "mod", &v), 0);
    assert_int_equal(v, 2);
    assert_true(raw_table_exists(db, "a") && raw_table_exists(db, "b"));
    assert_int_equal(store_user_version(db, &v), 0);
    assert_int_equal(v, 0);                             /* the file's own is untouched */
    assert_int_equal(store_module_version(db, "other", &v), 0);
    assert_int_equal(v, 0);                             /* never migrated */
    assert_int_equal(store_migrate_module(db, "mod", test_migrations, 3, 2), 0);   /* again */

    assert_int_equal(store_migrate_module(db, "mod", test_migrations, 3, 3), -EIO);
    assert_int_equal(store_module_version(db, "mod", &v), 0);
    assert_int_equal(v, 2);
    assert_false(raw_table_exists(db, "c"));

    assert_int_equal(store_migrate_module(db, "mod", test_migrations, 1, 1), -EPROTO);
    sqlite3_close(db);
}

/* A file from a newer build is refused before the connection's pragmas write to it. */
static void test_db_open(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = (sqlite3 *)(uintptr_t)0x1;
    sqlite3 *raw;
    char mode[16];

    raw = db_new(f->path);
    raw_exec(raw, "PRAGMA user_version = 5");
    raw_text(raw, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "delete");
    sqlite3_close(raw);

    assert_int_equal(store_db_open(f->path, 4, "PRAGMA journal_mode = WAL;", &db), -EPROTO);
    assert_ptr_equal(db, (sqlite3 *)(uintptr_t)0x1);
    raw = raw_open(f->path);
    raw_text(raw, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "delete");
    sqlite3_close(raw);

    assert_int_equal(store_db_open(f->path, 5, "PRAGMA no_such_thing = 1; SELEKT;", &db), -EIO);
    assert_ptr_equal(db, (sqlite3 *)(uintptr_t)0x1);
    assert_int_equal(store_db_open(f->path, 5, "PRAGMA journal_mode = WAL;", &db), 0);
    raw_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
    assert_string_equal(mode, "wal");
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
        STORE_TEST(test_col_kinds_follow_field_types),
        ROWS_TEST(test_get_reads_each_kind),
        ROWS_TEST(test_null_columns),
        ROWS_TEST(test_text_too_long_is_truncated),
        ROWS_TEST(test_args_bind_their_types),
        ROWS_TEST(test_wrong_counts_are_refused),
        ROWS_TEST(test_each_and_collect),
        ROWS_TEST(test_scalar_helpers),
        STORE_TEST(test_exec),
        STORE_TEST(test_migrate),
        STORE_TEST(test_migrate_module),
        STORE_TEST(test_db_open),
        STORE_TEST(test_errno_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

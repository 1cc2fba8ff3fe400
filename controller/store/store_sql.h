/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_sql: the SQLite helpers every database of Portier uses — the store's files
 * (store*.c) and the custodian's own database (tools/custodian/custodian_db.c). Nothing here
 * knows a table or a connection's purpose; the daemon's SQL stays in store*.c.
 *
 * Statements: a registry per connection, keyed by the address of the statement's SQL text
 * (a string with static storage, e.g. `static const char sql_x[] = "SELECT ..."`). Each is
 * prepared on first use, kept until the registry is freed, and handed back reset with no
 * bindings. A statement that cannot be prepared comes back NULL: binding to NULL is a
 * harmless no-op in SQLite (SQLITE_MISUSE), and every helper here that runs a statement
 * returns -EIO for NULL, so callers bind and run without a check of their own.
 *
 * Functions return 0 (or a count, or a value) or -errno, SQLite's codes translated once by
 * store_errno(). */
#pragma once
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An SQLite result code (extended or not) as 0 (OK, ROW, DONE) or -errno: -ENOMEM, -EBUSY,
 * -EACCES, -ENOSPC, -ENOENT (cannot open), -EEXIST (UNIQUE or PRIMARY KEY), -EINVAL (other
 * constraints), -EBADMSG (corrupt), -E2BIG, else -EIO. */
int store_errno(int sqlite_rc);

/* ---- the statement registry ---- */
struct store_stmts;
/* For db, which must outlive the registry. 0 or -ENOMEM. */
int store_stmts_new(sqlite3 *db, struct store_stmts **ret);
/* Finalize every statement. NULL-safe; returns NULL. */
struct store_stmts *store_stmts_free(struct store_stmts *r);
/* The statement for sql, reset and unbound; NULL if it cannot be prepared. */
sqlite3_stmt *store_stmts_get(struct store_stmts *r, const char *sql);

/* ---- running statements (each resets st when done) ---- */

/* Step a statement whose rows are ignored. 0 or -errno. */
int store_stmt_exec(sqlite3_stmt *st);

/* Get one row: step st once; on a row, fill(st, ret) copies it out (fill may be NULL: only
 * whether there is one). 0, -ENOENT if there is no row, or -errno. */
typedef void (*store_row_fill)(sqlite3_stmt *st, void *ret);
int store_row_get(sqlite3_stmt *st, store_row_fill fill, void *ret);
/* The first column of the one row as an integer: 0, -ENOENT or -errno. */
int store_row_int64(sqlite3_stmt *st, int64_t *ret);
/* The same as a value (a count, a sum): the value, or -errno (-ENOENT: no row). */
int64_t store_row_value(sqlite3_stmt *st);

/* Row loops: step st to its end, calling each(st, ctx) per row; the first negative return
 * stops the loop and is returned. Returns the number of rows seen or -errno. */
int store_rows_each(sqlite3_stmt *st, int (*each)(sqlite3_stmt *st, void *ctx), void *ctx);

/* The usual context of a row loop: the caller's typed callback (cast to store_rows_cb and
 * back to its own type before the call) and its userdata. */
typedef void (*store_rows_cb)(void);
struct store_rows {
    store_rows_cb fn;
    void *userdata;
};
#define STORE_ROWS(fn, userdata) (&(struct store_rows){ (store_rows_cb)(fn), (userdata) })

/* Defines `static int name(sqlite3_stmt *st, void *ctx)` for store_rows_each() with a
 * STORE_ROWS context: each row is filled into a zeroed `type` by fill (a store_row_fill) and
 * handed to the caller's callback, of type `int (*)(const type *, void *userdata)`. */
#define STORE_ROWS_DELIVER(name, type, fill)                                           \
    static int name(sqlite3_stmt *st, void *ctx)                                       \
    {                                                                                  \
        const struct store_rows *rows_ = ctx;                                          \
        type row_ = { 0 };                                                             \
        fill(st, &row_);                                                               \
        return ((int (*)(const type *, void *))rows_->fn)(&row_, rows_->userdata);     \
    }

/* ---- columns ---- */

/* Copy text into buf (truncated to n - 1 bytes; NULL reads as ""). */
void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t n);
/* Copy a blob of exactly n bytes into buf and return true; otherwise leave buf untouched and
 * return false. */
bool store_column_blob(sqlite3_stmt *st, int col, void *buf, size_t n);

/* ---- schema ---- */

/* PRAGMA user_version. 0 or -errno. */
int store_user_version(sqlite3 *db, int *ret);
/* Bring user_version up to target by applying migrations[v] for v from the file's version
 * to target - 1, each in its own transaction with its version bump. -EPROTO if the file is
 * newer than the known migrations. 0 or -errno. */
int store_migrate(sqlite3 *db, const char *const *migrations, int known, int target);

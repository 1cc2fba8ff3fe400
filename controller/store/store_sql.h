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

/* Every statement prepared so far, in no particular order (tests read their plans and
 * counters: sqlite3_stmt_status(), EXPLAIN QUERY PLAN). */
void store_stmts_foreach(struct store_stmts *r, void (*fn)(sqlite3_stmt *st, void *ctx), void *ctx);

/* ---- running statements (each resets st when done) ----
 *
 * The primitives the helpers further down are made of; use them directly only for a row a
 * column table cannot describe (a text handed out without a copy, a blob of a size known at
 * run time). */

/* Step a statement whose rows are ignored. 0 or -errno. */
int store_stmt_exec(sqlite3_stmt *st);
/* Run sql (statements without parameters: pragmas, DDL, BEGIN...; rows are ignored) on db
 * without preparing it for later. 0 or -errno. */
int store_exec(sqlite3 *db, const char *sql);

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

/* ---- parameters: what a statement binds, as a typed list ----
 *
 * A store function says its parameters in the order of ?1, ?2, ...:
 *
 *     STORE_ARGS(STORE_INT(member_id), STORE_TEXT(name), STORE_BLOB(hash, STORE_HASH_LEN))
 *
 * STORE_INT(v)              an integer (int64_t; a bool binds 0 or 1)
 * STORE_TEXT(s)             a NUL-terminated string; NULL binds NULL
 * STORE_BLOB(p, n)          n bytes at p; NULL binds NULL
 * STORE_INT_OR_NULL(has, v) v if has, else NULL
 *
 * The values are not copied (SQLITE_STATIC): they must live until the statement has run,
 * which the helpers below do before they return. Each macro builds a typed value, so the
 * compiler refuses a pointer given as an integer or an integer given as text. The number
 * of values must be the statement's parameter count (its highest ?N): the helpers check it
 * and return -ERANGE for a list that does not match, before running anything. */
enum store_arg_kind { STORE_ARG_NULL, STORE_ARG_INT, STORE_ARG_TEXT, STORE_ARG_BLOB };
struct store_arg {
    enum store_arg_kind kind;
    int64_t i;
    const char *text;
    const void *blob;
    size_t len;
};
struct store_args {
    const struct store_arg *v;
    unsigned n;
};
#define STORE_INT(v) ((struct store_arg){ .kind = STORE_ARG_INT, .i = (v) })
#define STORE_TEXT(s) ((struct store_arg){ .kind = STORE_ARG_TEXT, .text = (s) })
#define STORE_BLOB(p, n) ((struct store_arg){ .kind = STORE_ARG_BLOB, .blob = (p), .len = (n) })
#define STORE_INT_OR_NULL(has, v) \
    ((struct store_arg){ .kind = (has) ? STORE_ARG_INT : STORE_ARG_NULL, .i = (v) })
#define STORE_ARGS(...)                                                                 \
    ((struct store_args){ (const struct store_arg[]){ __VA_ARGS__ },                    \
                          sizeof((const struct store_arg[]){ __VA_ARGS__ }) /           \
                              sizeof(struct store_arg) })
#define STORE_NO_ARGS ((struct store_args){ NULL, 0 })

/* Bind args to st (reset and unbound, as store_stmts_get() hands it out). 0, -EIO for a
 * NULL st, -ERANGE if args.n is not st's parameter count, or -errno (SQLite refused a
 * value: -ENOMEM, -E2BIG). */
int store_bind(sqlite3_stmt *st, struct store_args args);

/* ---- columns: what a row is read into, as a table ----
 *
 * A row struct's layout lists, in the order of the SELECT's columns, where each column
 * goes:
 *
 *     static const struct store_cols plan_cols = STORE_COLS(struct store_plan,
 *         STORE_COL(struct store_plan, id), STORE_COL(struct store_plan, name), ...);
 *
 * (a file with a long table defines `COL(field)` as `STORE_COL(its type, field)` around it).
 *
 * STORE_COL(type, field) reads the column by the field's own type, chosen at compile time
 * (any other type does not compile):
 *   int64_t     sqlite3_column_int64() (NULL reads 0)
 *   int         sqlite3_column_int()
 *   bool        sqlite3_column_int() != 0
 *   char[N]     text, truncated to N - 1 bytes and always terminated (NULL reads "")
 *   uint8_t[N]  a blob of exactly N bytes; NULL or any other size reads as N zeros
 * STORE_COL_READ(fn) reads it with fn(st, col, row), for what a type cannot say (text
 * that names an enum value).
 * A column that may be NULL is selected with a flag column of its own (`x IS NOT NULL`)
 * read into a bool: the SQL says what "has a value" means.
 *
 * The helpers check that the table has as many entries as the statement has columns
 * (-ERANGE otherwise). A row is zeroed before its columns are read: fields that no column
 * names read as 0. */
enum store_col_kind {
    STORE_COL_INT64, STORE_COL_INT, STORE_COL_BOOL, STORE_COL_TEXT, STORE_COL_BLOB,
    STORE_COL_FN,
};
struct store_col {
    enum store_col_kind kind;
    size_t offset, size;
    void (*read)(sqlite3_stmt *st, int col, void *row);
};
struct store_cols {
    const struct store_col *col;
    unsigned n;
    size_t size;                /* of the row struct */
};
#define STORE_COL_KIND_(field)                                                          \
    _Generic(&(field), int64_t *: STORE_COL_INT64, int *: STORE_COL_INT,                \
             bool *: STORE_COL_BOOL, char (*)[sizeof(field)]: STORE_COL_TEXT,           \
             uint8_t (*)[sizeof(field)]: STORE_COL_BLOB)
#define STORE_COL(type, field)                                                          \
    { .kind = STORE_COL_KIND_(((type *)0)->field), .offset = offsetof(type, field),     \
      .size = sizeof(((type *)0)->field) }
#define STORE_COL_READ(fn) { .kind = STORE_COL_FN, .read = (fn) }
#define STORE_COLS(type, ...)                                                           \
    { (const struct store_col[]){ __VA_ARGS__ },                                        \
      sizeof((const struct store_col[]){ __VA_ARGS__ }) / sizeof(struct store_col),     \
      sizeof(type) }

/* Read the current row of st into row (cols->size bytes, zeroed first). 0, or -ERANGE if
 * cols does not match st's columns. */
int store_columns_read(sqlite3_stmt *st, const struct store_cols *cols, void *row);

/* ---- running a statement with its parameters (each resets st when done) ----
 *
 * What a store function does is one of these: its SQL, its parameters, its columns. Each
 * returns -EIO for a NULL st (a statement that could not be prepared) and -ERANGE for
 * parameters or columns that do not match the statement, before stepping it. */

/* Run st; rows are ignored. 0 or -errno. */
int store_stmt_run(sqlite3_stmt *st, struct store_args args);
/* One row into ret (by cols; ret is untouched unless there is a row). 0, -ENOENT, -errno. */
int store_stmt_get(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                   void *ret);
/* The first column of the one row: as an integer into *ret (0, -ENOENT, -errno); as a
 * value (the value, or -errno: a count, a sum); as text into buf of n bytes (0, -ENOENT,
 * -errno; buf is untouched unless there is a row). */
int store_stmt_get_int64(sqlite3_stmt *st, struct store_args args, int64_t *ret);
int64_t store_stmt_value(sqlite3_stmt *st, struct store_args args);
int store_stmt_get_text(sqlite3_stmt *st, struct store_args args, char *buf, size_t n);
/* Whether there is a row: 1, 0 or -errno. */
int store_stmt_exists(sqlite3_stmt *st, struct store_args args);

/* Each row, read into a zeroed row by cols, handed to each(row, ctx); the first negative
 * return stops the loop and is returned. The number of rows, or -errno (-ENOMEM: no room
 * for the row). */
typedef int (*store_row_fn)(const void *row, void *ctx);
int store_stmt_each(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                    store_row_fn each, void *ctx);
/* The first n rows into the array out (of n rows of cols->size bytes); the rest are
 * stepped over. The number of rows stored, or -errno. For lists read before they are
 * acted on (a callback that writes must not run under the cursor). */
int store_stmt_collect(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                       void *out, size_t n);

/* Defines `static int name(const void *row, void *ctx)` for store_stmt_each() with a
 * STORE_ROWS context: it hands the row to the caller's callback, of type fn_type
 * (`int (*)(const struct X *row, void *userdata)`). */
#define STORE_ROWS_TO(name, fn_type)                                                    \
    static int name(const void *row, void *ctx)                                        \
    {                                                                                  \
        const struct store_rows *rows_ = ctx;                                          \
        return ((fn_type)rows_->fn)(row, rows_->userdata);                             \
    }

/* ---- columns ---- */

/* Copy text into buf (truncated to n - 1 bytes; NULL reads as ""). */
void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t n);
/* Copy a blob of exactly n bytes into buf and return true; otherwise leave buf untouched and
 * return false. */
bool store_column_blob(sqlite3_stmt *st, int col, void *buf, size_t n);

/* ---- schema ---- */

/* Open (or create) the database at path for one thread's use (SQLITE_OPEN_NOMUTEX), with
 * extended result codes, then run pragmas (may be NULL): the connection's settings. A file
 * whose user_version is above known (written by a newer build: a downgraded package) is
 * refused with -EPROTO before the pragmas touch it (some, like auto_vacuum, rewrite its
 * header). 0 or -errno; *ret is set only on success. */
int store_db_open(const char *path, int known, const char *pragmas, sqlite3 **ret);

/* PRAGMA user_version. 0 or -errno. */
int store_user_version(sqlite3 *db, int *ret);
/* Bring user_version up to target by applying migrations[v] for v from the file's version
 * to target - 1, each in its own transaction with its version bump. -EPROTO if the file is
 * newer than the known migrations. 0 or -errno. */
int store_migrate(sqlite3 *db, const char *const *migrations, int known, int target);

/* Modules: parts of a database with numbered migrations of their own (the consortium's
 * tables in the daemon's store), their versions kept in module_schema(module, version)
 * rather than in user_version, so that a module's schema and the file's evolve without
 * renumbering each other. */
/* The module's version: 0 if it never migrated. 0 or -errno (module_schema must exist:
 * store_migrate_module() creates it). */
int store_module_version(sqlite3 *db, const char *module, int *ret);
/* store_migrate() for module: creates module_schema if needed, and records the module's
 * version in it, in each migration's transaction. */
int store_migrate_module(sqlite3 *db, const char *module, const char *const *migrations,
                         int known, int target);

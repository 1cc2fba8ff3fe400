/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "store_sql.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_errno(int rc)
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

/* A failure's -errno, never 0 (for codes that only mean "not what was expected"). */
static int failure(int rc)
{
    int r = store_errno(rc);
    return r < 0 ? r : -EIO;
}

/* ---- the statement registry: open addressing on the SQL text's address ---- */

struct stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
};

struct store_stmts {
    sqlite3 *db;
    unsigned cap, n;            /* cap: a power of two, at least twice n */
    struct stmt_slot *slot;
};

#define STMTS_FIRST_CAP 64

static unsigned slot_of(const struct stmt_slot *slot, unsigned cap, const char *sql)
{
    /* Fibonacci hashing of the address: string constants sit close together. */
    unsigned i = (unsigned)(((uint64_t)(uintptr_t)sql * 0x9E3779B97F4A7C15ull) >> 40) & (cap - 1);

    while (slot[i].sql && slot[i].sql != sql)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(struct store_stmts *r)
{
    unsigned cap = r->cap * 2;
    struct stmt_slot *slot = calloc(cap, sizeof(*slot));

    if (!slot)
        return -ENOMEM;
    for (unsigned i = 0; i < r->cap; i++)
        if (r->slot[i].sql)
            slot[slot_of(slot, cap, r->slot[i].sql)] = r->slot[i];
    free(r->slot);
    r->slot = slot;
    r->cap = cap;
    return 0;
}

int store_stmts_new(sqlite3 *db, struct store_stmts **ret)
{
    struct store_stmts *r = calloc(1, sizeof(*r));

    if (!r)
        return -ENOMEM;
    r->slot = calloc(STMTS_FIRST_CAP, sizeof(*r->slot));
    if (!r->slot) {
        free(r);
        return -ENOMEM;
    }
    r->db = db;
    r->cap = STMTS_FIRST_CAP;
    *ret = r;
    return 0;
}

struct store_stmts *store_stmts_free(struct store_stmts *r)
{
    if (!r)
        return NULL;
    for (unsigned i = 0; i < r->cap; i++)
        sqlite3_finalize(r->slot[i].st);
    free(r->slot);
    free(r);
    return NULL;
}

sqlite3_stmt *store_stmts_get(struct store_stmts *r, const char *sql)
{
    unsigned i = slot_of(r->slot, r->cap, sql);
    sqlite3_stmt *st;

    if (r->slot[i].sql) {
        st = r->slot[i].st;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if ((r->n + 1) * 2 > r->cap) {
        if (grow(r) < 0)
            return NULL;
        i = slot_of(r->slot, r->cap, sql);
    }
    if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    r->slot[i] = (struct stmt_slot){ sql, st };
    r->n++;
    return st;
}

void store_stmts_foreach(struct store_stmts *r, void (*fn)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    for (unsigned i = 0; i < r->cap; i++)
        if (r->slot[i].st)
            fn(r->slot[i].st, ctx);
}

/* ---- running statements ---- */

int store_stmt_exec(sqlite3_stmt *st)
{
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);      /* extended result codes are on */
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : failure(rc);
}

int store_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0 : failure(sqlite3_extended_errcode(db));
}

int store_row_get(sqlite3_stmt *st, store_row_fill fill, void *ret)
{
    int rc;

    if (!st)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && fill)
        fill(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : failure(rc);
}

static void fill_int64(sqlite3_stmt *st, void *ret)
{
    *(int64_t *)ret = sqlite3_column_int64(st, 0);
}

int store_row_int64(sqlite3_stmt *st, int64_t *ret)
{
    return store_row_get(st, fill_int64, ret);
}

int64_t store_row_value(sqlite3_stmt *st)
{
    int64_t v = 0;
    int r = store_row_int64(st, &v);
    return r < 0 ? r : v;
}

int store_rows_each(sqlite3_stmt *st, int (*each)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    int rc, n = 0, r = 0;

    if (!st)
        return -EIO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        r = each(st, ctx);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : failure(rc);
}

/* ---- parameters and columns ---- */

int store_bind(sqlite3_stmt *st, struct store_args args)
{
    if (!st)
        return -EIO;
    if ((int)args.n != sqlite3_bind_parameter_count(st))
        return -ERANGE;
    for (unsigned i = 0; i < args.n; i++) {
        const struct store_arg *a = &args.v[i];
        int col = (int)i + 1, rc;

        switch (a->kind) {
        case STORE_ARG_INT:
            rc = sqlite3_bind_int64(st, col, a->i);
            break;
        case STORE_ARG_TEXT:
            rc = sqlite3_bind_text(st, col, a->text, -1, SQLITE_STATIC);
            break;
        case STORE_ARG_BLOB:
            if (a->len > INT32_MAX)
                return -E2BIG;
            rc = sqlite3_bind_blob(st, col, a->blob, (int)a->len, SQLITE_STATIC);
            break;
        default:
            rc = sqlite3_bind_null(st, col);
            break;
        }
        if (rc != SQLITE_OK)
            return failure(rc);
    }
    return 0;
}

static void column_read(sqlite3_stmt *st, int col, const struct store_col *c, void *row)
{
    char *field = (char *)row + c->offset;

    switch (c->kind) {
    case STORE_COL_INT64: {
        int64_t v = sqlite3_column_int64(st, col);
        memcpy(field, &v, sizeof(v));
        break;
    }
    case STORE_COL_INT: {
        int v = sqlite3_column_int(st, col);
        memcpy(field, &v, sizeof(v));
        break;
    }
    case STORE_COL_BOOL: {
        bool v = sqlite3_column_int(st, col) != 0;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case STORE_COL_TEXT:
        store_column_text(st, col, field, c->size);
        break;
    case STORE_COL_BLOB:
        if (!store_column_blob(st, col, field, c->size))
            memset(field, 0, c->size);
        break;
    case STORE_COL_FN:
        c->read(st, col, row);
        break;
    }
}

static int columns_check(sqlite3_stmt *st, const struct store_cols *cols)
{
    return (int)cols->n == sqlite3_column_count(st) ? 0 : -ERANGE;
}

int store_columns_read(sqlite3_stmt *st, const struct store_cols *cols, void *row)
{
    int r = columns_check(st, cols);

    if (r < 0)
        return r;
    memset(row, 0, cols->size);
    for (unsigned i = 0; i < cols->n; i++)
        column_read(st, (int)i, &cols->col[i], row);
    return 0;
}

/* Bind, and check cols against st (may be NULL): what every helper does before stepping.
 * On failure st is reset (its bindings are cleared by the next store_stmts_get()). */
static int prepare_run(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols)
{
    int r = store_bind(st, args);

    if (r == 0 && cols)
        r = columns_check(st, cols);
    if (r < 0 && st)
        sqlite3_reset(st);
    return r;
}

int store_stmt_run(sqlite3_stmt *st, struct store_args args)
{
    int r = prepare_run(st, args, NULL);
    return r < 0 ? r : store_stmt_exec(st);
}

struct get_row {
    const struct store_cols *cols;
    void *ret;
};

static void get_fill(sqlite3_stmt *st, void *ret)
{
    struct get_row *g = ret;
    store_columns_read(st, g->cols, g->ret);    /* checked by prepare_run() */
}

int store_stmt_get(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                   void *ret)
{
    int r = prepare_run(st, args, cols);
    return r < 0 ? r : store_row_get(st, get_fill, &(struct get_row){ cols, ret });
}

int store_stmt_get_int64(sqlite3_stmt *st, struct store_args args, int64_t *ret)
{
    int r = prepare_run(st, args, NULL);
    return r < 0 ? r : store_row_int64(st, ret);
}

int64_t store_stmt_value(sqlite3_stmt *st, struct store_args args)
{
    int r = prepare_run(st, args, NULL);
    return r < 0 ? r : store_row_value(st);
}

struct text_out {
    char *buf;
    size_t n;
};

static void text_fill(sqlite3_stmt *st, void *ret)
{
    struct text_out *t = ret;
    store_column_text(st, 0, t->buf, t->n);
}

int store_stmt_get_text(sqlite3_stmt *st, struct store_args args, char *buf, size_t n)
{
    int r = prepare_run(st, args, NULL);
    return r < 0 ? r : store_row_get(st, text_fill, &(struct text_out){ buf, n });
}

int store_stmt_exists(sqlite3_stmt *st, struct store_args args)
{
    int r = prepare_run(st, args, NULL);

    if (r < 0)
        return r;
    r = store_row_get(st, NULL, NULL);
    return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

struct each_ctx {
    const struct store_cols *cols;
    void *row;
    store_row_fn each;
    void *ctx;
};

static int each_row(sqlite3_stmt *st, void *ctx)
{
    struct each_ctx *x = ctx;

    store_columns_read(st, x->cols, x->row);
    return x->each(x->row, x->ctx);
}

int store_stmt_each(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                    store_row_fn each, void *ctx)
{
    struct each_ctx x = { cols, NULL, each, ctx };
    int r = prepare_run(st, args, cols);

    if (r < 0)
        return r;
    x.row = malloc(cols->size);
    if (!x.row) {
        sqlite3_reset(st);
        return -ENOMEM;
    }
    r = store_rows_each(st, each_row, &x);
    free(x.row);
    return r;
}

struct collect_ctx {
    const struct store_cols *cols;
    char *out;
    size_t n, count;
};

static int collect_row(sqlite3_stmt *st, void *ctx)
{
    struct collect_ctx *x = ctx;

    if (x->count < x->n)
        store_columns_read(st, x->cols, x->out + x->count++ * x->cols->size);
    return 0;
}

int store_stmt_collect(sqlite3_stmt *st, struct store_args args, const struct store_cols *cols,
                       void *out, size_t n)
{
    struct collect_ctx x = { cols, out, n, 0 };
    int r = prepare_run(st, args, cols);

    if (r < 0)
        return r;
    r = store_rows_each(st, collect_row, &x);
    return r < 0 ? r : (int)x.count;
}

/* ---- columns ---- */

void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, col) : 0;   /* after _text(): its length */

    if (n == 0)
        return;
    if (len > n - 1)
        len = n - 1;        /* cut as snprintf would, at n - 1 bytes */
    if (len)
        memcpy(buf, t, len);
    buf[len] = '\0';
}

bool store_column_blob(sqlite3_stmt *st, int col, void *buf, size_t n)
{
    const void *b = sqlite3_column_blob(st, col);

    if (!b || (size_t)sqlite3_column_bytes(st, col) != n)
        return false;
    memcpy(buf, b, n);
    return true;
}

/* ---- schema ---- */

int store_db_open(const char *path, int known, const char *pragmas, sqlite3 **ret)
{
    sqlite3 *db = NULL;
    int version = 0, r;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return failure(rc);
    }
    sqlite3_extended_result_codes(db, 1);
    r = store_user_version(db, &version);
    if (r == 0 && version > known)
        r = -EPROTO;
    if (r == 0 && pragmas)
        r = store_exec(db, pragmas);
    if (r < 0) {
        sqlite3_close(db);
        return r;
    }
    *ret = db;
    return 0;
}

int store_user_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return failure(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : failure(rc);
}

int store_module_version(sqlite3 *db, const char *module, int *ret)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    int r;

    sqlite3_prepare_v2(db, "SELECT version FROM module_schema WHERE module = ?1", -1, &st, NULL);
    r = store_stmt_get_int64(st, STORE_ARGS(STORE_TEXT(module)), &v);
    sqlite3_finalize(st);
    if (r == -ENOENT)               /* never migrated */
        r = 0;
    if (r == 0)
        *ret = (int)v;
    return r;
}

/* Record version as the schema's: module's row of module_schema, or user_version for NULL. */
static int version_set(sqlite3 *db, const char *module, int version)
{
    sqlite3_stmt *st = NULL;
    int r;

    if (!module) {
        char sql[48];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
        return store_exec(db, sql);
    }
    sqlite3_prepare_v2(db, "INSERT INTO module_schema (module, version) VALUES (?1, ?2) "
                           "ON CONFLICT (module) DO UPDATE SET version = excluded.version",
                       -1, &st, NULL);
    r = store_stmt_run(st, STORE_ARGS(STORE_TEXT(module), STORE_INT(version)));
    sqlite3_finalize(st);
    return r;
}

/* store_migrate() for module's version, or the file's (user_version) for NULL. */
static int migrate(sqlite3 *db, const char *module, const char *const *migrations, int known,
                   int target)
{
    int version, r;

    r = module ? store_module_version(db, module, &version) : store_user_version(db, &version);
    if (r < 0)
        return r;
    if (version > known)
        return -EPROTO;
    for (int v = version; v < target; v++) {
        r = store_exec(db, "BEGIN IMMEDIATE");
        if (r == 0)
            r = store_exec(db, migrations[v]);
        if (r == 0)
            r = version_set(db, module, v + 1);
        if (r == 0)
            r = store_exec(db, "COMMIT");
        if (r < 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    return 0;
}

int store_migrate(sqlite3 *db, const char *const *migrations, int known, int target)
{
    return migrate(db, NULL, migrations, known, target);
}

int store_migrate_module(sqlite3 *db, const char *module, const char *const *migrations,
                         int known, int target)
{
    int r = store_exec(db, "CREATE TABLE IF NOT EXISTS module_schema ("
                     "  module TEXT PRIMARY KEY, version INTEGER NOT NULL)");

    return r < 0 ? r : migrate(db, module, migrations, known, target);
}

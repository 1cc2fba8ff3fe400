/* store_internal: what the store's domain files (store_*.c) share with store.c.
 *
 * Not for use outside the store: every byte of the daemon's SQL stays in store*.c. The
 * connection-free helpers (store_errno, store_stmt_exec, store_column_text,
 * store_rows_each) also serve the custodian's own database (tools/custodian), so both map
 * SQLite's errors and walk rows the same way. A domain file keeps
 * its SQL in static const strings and gets each statement through store_prepared(), which
 * prepares it once per connection (keyed by the string's address) and hands it back reset,
 * with no bindings. */
#pragma once
#include <sqlite3.h>
#include <stddef.h>

#include "store.h"

#define STORE_EXTRA_STMTS 96

sqlite3 *store_db(struct store *s);
/* The prepared statement for sql (a string with static storage), or NULL. */
sqlite3_stmt *store_prepared(struct store *s, const char *sql);
/* Writes join the open batch, starting one if needed. 0 or -errno. */
int store_batch_ensure(struct store *s);
/* Step a statement whose rows are ignored, then reset it. 0 or -errno. */
int store_stmt_exec(sqlite3_stmt *st);
int store_errno(int sqlite_rc);
void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t n);

/* Row loops: step st to its end, calling each(st, ctx) per row; the first negative return
 * stops the loop and is returned. Returns the number of rows seen or -errno. */
typedef void (*row_cb)(void);
struct row_ctx {
    row_cb fn;              /* the caller's store_*_fn, cast back by the converter */
    void *userdata;
};
int store_rows_each(sqlite3_stmt *st, int (*each)(sqlite3_stmt *st, void *ctx), void *ctx);

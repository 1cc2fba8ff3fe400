/* store_companion: what store.c lends to its companion files (store_consortium.c), which
 * keep their own SQL and tables but share the daemon's one connection and its batches.
 * Not for other modules: they go through store.h. */
#pragma once
#include <sqlite3.h>

#include "store.h"

/* The connection (owned by the store; valid until store_free()). */
sqlite3 *store_companion_db(struct store *s);
/* Join the open batch, starting one (and telling the owner) if needed. 0 or -errno. */
int store_companion_join_batch(struct store *s);
/* SQLITE_* to -errno, as the store maps them. */
int store_companion_errno(int sqlite_rc);

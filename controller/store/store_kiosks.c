/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_kiosks: the entrance screens (schema migration 11). A screen is reached by a secret
 * address; only the BLAKE2b hash of its token is kept, as for web sessions. */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

static const char sql_add[] =
    "INSERT INTO kiosks (label, token_hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4)";
static const char sql_check[] =
    "SELECT id, label, created_at, created_by FROM kiosks "
    "WHERE token_hash = ?1 AND removed_at IS NULL";
static const char sql_remove[] =
    "UPDATE kiosks SET removed_at = ?2 WHERE id = ?1 AND removed_at IS NULL";
static const char sql_list[] =
    "SELECT id, label, created_at, created_by FROM kiosks WHERE removed_at IS NULL ORDER BY id";

static void kiosk_fill(sqlite3_stmt *st, void *ret)
{
    struct store_kiosk *k = ret;

    memset(k, 0, sizeof(*k));
    k->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, k->label, sizeof(k->label));
    k->created_at = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, k->created_by, sizeof(k->created_by));
}

int store_kiosk_add(struct store *s, const char *label, const uint8_t hash[STORE_HASH_LEN],
                    const char *by, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_add);
    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    return store_write_insert(s, st, ret_id);
}

int store_kiosk_check(struct store *s, const uint8_t hash[STORE_HASH_LEN], struct store_kiosk *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_check);

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return store_row_get(st, kiosk_fill, ret);
}

int store_kiosk_remove(struct store *s, int64_t id, int64_t at)
{
    return store_write_ints(s, sql_remove, id, at);
}

STORE_ROWS_DELIVER(kiosks_row, struct store_kiosk, kiosk_fill)

int store_kiosks_foreach(struct store *s, store_kiosk_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_list), kiosks_row, STORE_ROWS(fn, userdata));
}

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

#define COL(field) STORE_COL(struct store_kiosk, field)
static const struct store_cols kiosk_cols = STORE_COLS(struct store_kiosk,
    COL(id), COL(label), COL(created_at), COL(created_by));
#undef COL

int store_kiosk_add(struct store *s, const char *label, const uint8_t hash[STORE_HASH_LEN],
                    const char *by, int64_t *ret_id)
{
    return store_insert(s, sql_add,
                        STORE_ARGS(STORE_TEXT(label), STORE_BLOB(hash, STORE_HASH_LEN),
                                   STORE_INT(now_utc()), STORE_TEXT(by)), ret_id);
}

int store_kiosk_check(struct store *s, const uint8_t hash[STORE_HASH_LEN], struct store_kiosk *ret)
{
    return store_get(s, sql_check, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN)), &kiosk_cols, ret);
}

int store_kiosk_remove(struct store *s, int64_t id, int64_t at)
{
    return store_update(s, sql_remove, STORE_ARGS(STORE_INT(id), STORE_INT(at)));
}

STORE_ROWS_TO(kiosks_row, store_kiosk_fn)

int store_kiosks_foreach(struct store *s, store_kiosk_fn fn, void *userdata)
{
    return store_each(s, sql_list, STORE_NO_ARGS, &kiosk_cols, kiosks_row,
                      STORE_ROWS(fn, userdata));
}

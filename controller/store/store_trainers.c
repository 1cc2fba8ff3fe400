/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_trainers: who may grant a training besides managers (schema migration 10). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

static const char sql_name[] =
    "INSERT INTO trainers (training_id, member_id, named_at, named_by) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT DO NOTHING";
static const char sql_end[] = "DELETE FROM trainers WHERE training_id = ?1 AND member_id = ?2";
static const char sql_is[] = "SELECT 1 FROM trainers WHERE training_id = ?1 AND member_id = ?2";
static const char sql_count[] = "SELECT count(*) FROM trainers WHERE member_id = ?1";
static const char sql_list[] =
    "SELECT t.member_id, m.name FROM trainers t JOIN members m ON m.id = t.member_id "
    "WHERE t.training_id = ?1 ORDER BY m.name";

int store_trainer_set(struct store *s, int64_t training_id, int64_t member_id, bool on,
                      const char *by)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, on ? sql_name : sql_end);
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int64(st, 2, member_id);
    if (!on)
        return store_write_changed(s, st);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    return store_stmt_exec(st);         /* naming a trainer twice is no error */
}

int store_trainer_is(struct store *s, int64_t training_id, int64_t member_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_is);
    int r;

    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int64(st, 2, member_id);
    r = store_row_get(st, NULL, NULL);
    return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

int store_trainer_count(struct store *s, int64_t member_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_count);

    sqlite3_bind_int64(st, 1, member_id);
    return (int)store_row_value(st);
}

static int list_row(sqlite3_stmt *st, void *ctx)
{
    const struct store_rows *rows = ctx;
    char name[96];

    store_column_text(st, 1, name, sizeof(name));
    return ((store_trainer_fn)rows->fn)(sqlite3_column_int64(st, 0), name, rows->userdata);
}

int store_trainers_foreach(struct store *s, int64_t training_id, store_trainer_fn fn,
                           void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_list);

    sqlite3_bind_int64(st, 1, training_id);
    return store_rows_each(st, list_row, STORE_ROWS(fn, userdata));
}

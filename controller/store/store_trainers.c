/* store_trainers: who may grant a training besides managers (schema migration 10). */
#include <errno.h>
#include <string.h>

#include "store.h"
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
    sqlite3_stmt *st = store_prepared(s, on ? sql_name : sql_end);
    int r;

    if (!st)
        return -ENOMEM;
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int64(st, 2, member_id);
    if (on) {
        sqlite3_bind_int64(st, 3, now_utc());
        sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    }
    r = store_stmt_exec(st);
    if (r == 0 && !on && sqlite3_changes(store_db(s)) == 0)
        return -ENOENT;
    return r;
}

int store_trainer_is(struct store *s, int64_t training_id, int64_t member_id)
{
    sqlite3_stmt *st = store_prepared(s, sql_is);
    int rc;

    if (!st)
        return -ENOMEM;
    sqlite3_bind_int64(st, 1, training_id);
    sqlite3_bind_int64(st, 2, member_id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int store_trainer_count(struct store *s, int64_t member_id)
{
    sqlite3_stmt *st = store_prepared(s, sql_count);
    int rc, n = 0;

    if (!st)
        return -ENOMEM;
    sqlite3_bind_int64(st, 1, member_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? n : store_errno(rc);
}

struct list_ctx {
    store_trainer_fn fn;
    void *userdata;
};

static int list_row(sqlite3_stmt *st, void *ctx)
{
    struct list_ctx *cx = ctx;
    char name[96];

    store_column_text(st, 1, name, sizeof(name));
    return cx->fn(sqlite3_column_int64(st, 0), name, cx->userdata);
}

int store_trainers_foreach(struct store *s, int64_t training_id, store_trainer_fn fn,
                           void *userdata)
{
    sqlite3_stmt *st = store_prepared(s, sql_list);
    struct list_ctx cx = { fn, userdata };

    if (!st)
        return -ENOMEM;
    sqlite3_bind_int64(st, 1, training_id);
    return store_rows_each(st, list_row, &cx);
}

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
    if (!on)
        return store_update(s, sql_end, STORE_ARGS(STORE_INT(training_id), STORE_INT(member_id)));
    /* naming a trainer twice is no error */
    return store_write(s, sql_name, STORE_ARGS(STORE_INT(training_id), STORE_INT(member_id),
                                               STORE_INT(now_utc()), STORE_TEXT(by)));
}

int store_trainer_is(struct store *s, int64_t training_id, int64_t member_id)
{
    return store_exists(s, sql_is, STORE_ARGS(STORE_INT(training_id), STORE_INT(member_id)));
}

int store_trainer_count(struct store *s, int64_t member_id)
{
    return (int)store_value(s, sql_count, STORE_ARGS(STORE_INT(member_id)));
}

struct trainer_row {
    int64_t member_id;
    char name[96];
};
static const struct store_cols trainer_cols = STORE_COLS(struct trainer_row,
    STORE_COL(struct trainer_row, member_id), STORE_COL(struct trainer_row, name));

static int list_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct trainer_row *t = row;

    return ((store_trainer_fn)rows->fn)(t->member_id, t->name, rows->userdata);
}

int store_trainers_foreach(struct store *s, int64_t training_id, store_trainer_fn fn,
                           void *userdata)
{
    return store_each(s, sql_list, STORE_ARGS(STORE_INT(training_id)), &trainer_cols, list_row,
                      STORE_ROWS(fn, userdata));
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_privacy: a member's history, plan changes that wait for their date, removal and
 * erasure, and the retention of the access log, presences, machine sessions, bookings and
 * idle accounts (schema migration 11; docs/privacy.md says what is kept, and how long). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* A write of a member's rows (?1): how many it changed, or its error. */
static int exec_member(struct store *s, const char *sql, int64_t member_id)
{
    return store_write_count(s, sql, STORE_ARGS(STORE_INT(member_id)));
}

/* The writes sql[0..n-1] of a member's rows, in order, up to the first error. */
static int exec_member_all(struct store *s, const char *const *sql, size_t n, int64_t member_id)
{
    int r = 0;

    for (size_t i = 0; r >= 0 && i < n; i++)
        r = exec_member(s, sql[i], member_id);
    return r < 0 ? r : 0;
}

/* ---- history ---- */

static const char sql_change_add[] =
    "INSERT INTO member_changes (member_id, at, by, field, old, new) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_change_list[] =
    "SELECT id, member_id, at, by, field, old, new FROM member_changes WHERE member_id = ?1 "
    "ORDER BY id DESC LIMIT ?2";

int store_member_change_add(struct store *s, int64_t member_id, int64_t at, const char *by,
                            const char *field, const char *old, const char *new)
{
    return store_insert(s, sql_change_add,
                        STORE_ARGS(STORE_INT(member_id), STORE_INT(at), STORE_TEXT(by),
                                   STORE_TEXT(field), STORE_TEXT(old ? old : ""),
                                   STORE_TEXT(new ? new : "")), NULL);
}

#define COL(field) STORE_COL(struct store_member_change, field)
static const struct store_cols change_cols = STORE_COLS(struct store_member_change,
    COL(id), COL(member_id), COL(at), COL(by), COL(field), COL(old), COL(new));
#undef COL

STORE_ROWS_TO(changes_row, store_member_change_fn)

int store_member_changes_foreach(struct store *s, int64_t member_id, int64_t limit,
                                 store_member_change_fn fn, void *userdata)
{
    return store_each(s, sql_change_list,
                      STORE_ARGS(STORE_INT(member_id), STORE_INT(limit > 0 ? limit : -1)),
                      &change_cols, changes_row, STORE_ROWS(fn, userdata));
}

/* ---- plan changes that wait for their date ---- */

static const char sql_plan_due[] =
    "SELECT m.id, coalesce(m.plan_id, 0), m.next_plan_id, coalesce(p.name, ''), "
    "coalesce(np.name, '') FROM members m LEFT JOIN plans p ON p.id = m.plan_id "
    "LEFT JOIN plans np ON np.id = m.next_plan_id "
    "WHERE m.next_plan_at != 0 AND m.next_plan_at <= ?1 ORDER BY m.next_plan_at LIMIT 256";
static const char sql_plan_apply[] =
    "UPDATE members SET plan_id = next_plan_id, next_plan_id = NULL, next_plan_at = 0 "
    "WHERE id = ?1";

#define PLAN_DUE_MAX 256                /* sql_plan_due's LIMIT */

struct plan_due {
    int64_t member, old_plan, new_plan;
    char old_name[32], new_name[32];
};
#define COL(field) STORE_COL(struct plan_due, field)
static const struct store_cols plan_due_cols = STORE_COLS(struct plan_due,
    COL(member), COL(old_plan), COL(new_plan), COL(old_name), COL(new_name));
#undef COL

int store_member_plan_changes_apply(struct store *s, int64_t now, store_plan_change_fn fn,
                                    void *userdata)
{
    struct plan_due *due = calloc(PLAN_DUE_MAX, sizeof(*due));
    int r, n;

    if (!due)
        return -ENOMEM;
    /* read first: then write */
    n = store_collect(s, sql_plan_due, STORE_ARGS(STORE_INT(now)), &plan_due_cols, due,
                      PLAN_DUE_MAX);
    r = n;
    for (int i = 0; r >= 0 && i < n; i++) {
        struct plan_due *d = &due[i];
        r = exec_member(s, sql_plan_apply, d->member);
        if (r >= 0)
            r = store_member_change_add(s, d->member, now, "schedule", "plan", d->old_name,
                                        d->new_name);
        if (r >= 0 && fn)
            r = fn(d->member, d->old_plan, d->new_plan, userdata);
    }
    free(due);
    return r < 0 ? r : n;
}

/* ---- removal ---- */

static const char sql_remove_member[] =
    "UPDATE members SET removed_at = ?2, valid_until = CASE WHEN valid_until = 0 OR "
    "valid_until > ?2 THEN ?2 ELSE valid_until END, next_plan_id = NULL, next_plan_at = 0 "
    "WHERE id = ?1";
static const char sql_remove_cards[] = "UPDATE cards SET enabled = 0 WHERE member_id = ?1";
static const char sql_remove_sessions[] =
    "DELETE FROM web_sessions WHERE account_id IN (SELECT id FROM accounts WHERE member_id = ?1)";
static const char sql_remove_accounts[] =
    "UPDATE accounts SET disabled_at = ?2 WHERE member_id = ?1 AND disabled_at IS NULL";
static const char sql_remove_bookings[] =
    "UPDATE bookings SET cancelled_at = ?2, cancelled_by = ?3 "
    "WHERE member_id = ?1 AND cancelled_at = 0 AND starts_at > ?2";
static const char sql_remove_trainers[] = "DELETE FROM trainers WHERE member_id = ?1";

int store_member_remove(struct store *s, int64_t id, int64_t now, const char *by)
{
    static const char *const sql[] = { sql_remove_cards, sql_remove_sessions };
    int r = store_update(s, sql_remove_member, STORE_ARGS(STORE_INT(id), STORE_INT(now)));

    if (r == 0)
        r = exec_member_all(s, sql, ARRAY_SIZE(sql), id);
    if (r >= 0)
        r = store_write(s, sql_remove_accounts, STORE_ARGS(STORE_INT(id), STORE_INT(now)));
    if (r >= 0)
        r = store_write(s, sql_remove_bookings,
                        STORE_ARGS(STORE_INT(id), STORE_INT(now), STORE_TEXT(by)));
    if (r >= 0)
        r = exec_member(s, sql_remove_trainers, id);
    if (r >= 0)
        store_generation_bump(s);        /* bookings changed */
    return r < 0 ? r : 0;
}

/* ---- erasure ---- */

/* The first billing day of the member's usage in no closed period (usage_member index). */
static const char sql_open_usage[] =
    "SELECT coalesce(min(u.billing_day), '') FROM usage u WHERE u.member_id = ?1 AND NOT "
    "EXISTS (SELECT 1 FROM periods p WHERE u.billing_day BETWEEN p.first_day AND p.last_day)";

int store_member_open_usage(struct store *s, int64_t id, char first_day[11])
{
    first_day[0] = '\0';
    return store_get_text(s, sql_open_usage, STORE_ARGS(STORE_INT(id)), first_day, 11);
}

static const char sql_erase_member[] =
    "UPDATE members SET name = ?2, email = '', note = '', erased_at = ?3 WHERE id = ?1";
static const char sql_erase_card_labels[] =
    "UPDATE cards SET label = '', enabled = 0 WHERE member_id = ?1";
static const char sql_erase_tokens[] =
    "DELETE FROM account_tokens WHERE account_id IN "
    "(SELECT id FROM accounts WHERE member_id = ?1)";
static const char sql_erase_accounts[] = "DELETE FROM accounts WHERE member_id = ?1";
static const char sql_erase_qualifications[] = "DELETE FROM qualifications WHERE member_id = ?1";
static const char sql_erase_history[] =
    "DELETE FROM member_changes WHERE member_id = ?1 AND field IN ('name', 'email', 'note', "
    "'card')";
/* Their e-mails: addresses, names and what was written to them. */
static const char sql_erase_mail[] = "DELETE FROM mail_outbox WHERE member_id = ?1";
static const char sql_erase_account_names[] =
    "SELECT name FROM accounts WHERE member_id = ?1 LIMIT 16";

/* Where an account's name stands as the author of a record ("web:NAME"). */
static const char *const sql_authors[] = {
    "UPDATE bookings SET created_by = ?2 WHERE created_by = ?1",
    "UPDATE bookings SET cancelled_by = ?2 WHERE cancelled_by = ?1",
    "UPDATE qualifications SET granted_by = ?2 WHERE granted_by = ?1",
    "UPDATE qualifications SET revoked_by = ?2 WHERE revoked_by = ?1",
    "UPDATE trainers SET named_by = ?2 WHERE named_by = ?1",
    "UPDATE passes SET created_by = ?2 WHERE created_by = ?1",
    "UPDATE accounts SET created_by = ?2 WHERE created_by = ?1",
    "UPDATE member_changes SET by = ?2 WHERE by = ?1",
};

#define ACCOUNT_NAMES_MAX 16            /* sql_erase_account_names's LIMIT */

struct account_name {
    char name[STORE_ACCOUNT_NAME_MAX + 1];
};
static const struct store_cols account_name_cols = STORE_COLS(struct account_name,
    STORE_COL(struct account_name, name));

/* The erased member's accounts no longer name anyone as authors of records. */
static int erase_authors(struct store *s, int64_t id, const char *pseudonym)
{
    struct account_name names[ACCOUNT_NAMES_MAX];
    char from[80], to[80];
    int r, n;

    n = store_collect(s, sql_erase_account_names, STORE_ARGS(STORE_INT(id)), &account_name_cols,
                      names, ACCOUNT_NAMES_MAX);
    r = n;
    snprintf(to, sizeof(to), "web:%s", pseudonym);
    for (int i = 0; r >= 0 && i < n; i++) {
        snprintf(from, sizeof(from), "web:%.*s", (int)sizeof(names[i].name), names[i].name);
        for (size_t k = 0; r >= 0 && k < ARRAY_SIZE(sql_authors); k++)
            r = store_write(s, sql_authors[k], STORE_ARGS(STORE_TEXT(from), STORE_TEXT(to)));
    }
    return r < 0 ? r : 0;
}

int store_member_erase(struct store *s, int64_t id, const char *pseudonym, int64_t now)
{
    static const char *const sql[] = {
        sql_erase_card_labels, sql_remove_sessions, sql_erase_tokens, sql_erase_accounts,
        sql_remove_trainers, sql_erase_qualifications, sql_erase_history, sql_erase_mail,
    };
    int r = store_update(s, sql_erase_member,
                         STORE_ARGS(STORE_INT(id), STORE_TEXT(pseudonym), STORE_INT(now)));

    if (r == 0)
        r = erase_authors(s, id, pseudonym);
    if (r >= 0)
        r = exec_member_all(s, sql, ARRAY_SIZE(sql), id);
    if (r >= 0)
        store_generation_bump(s);        /* names on bookings changed */
    return r < 0 ? r : 0;
}

static const char sql_scrub[] =
    "UPDATE access_events SET card_hash = NULL WHERE id BETWEEN ?2 AND ?3 AND card_hash IS "
    "NOT NULL AND (member_id = ?1 OR card_id IN (SELECT id FROM cards WHERE member_id = ?1) OR "
    "card_hash IN (SELECT uid_hash FROM cards WHERE member_id = ?1))";
static const char sql_member_card_ids[] = "SELECT id FROM cards WHERE member_id = ?1";
static const char sql_forget_cards[] = "DELETE FROM cards WHERE member_id = ?1";
static const char sql_erasures_pending[] =
    "SELECT DISTINCT m.id FROM members m JOIN cards c ON c.member_id = m.id "
    "WHERE m.erased_at != 0 ORDER BY m.id LIMIT ?1";

int store_erase_scrub_step(struct store *s, int64_t member_id, int64_t from, int64_t to)
{
    return store_write_count(s, sql_scrub,
                             STORE_ARGS(STORE_INT(member_id), STORE_INT(from), STORE_INT(to)));
}

/* Ids collected into an int64_t array: a row is one int64_t. */
struct id_row {
    int64_t id;
};
_Static_assert(sizeof(struct id_row) == sizeof(int64_t), "an id row is an int64_t");
static const struct store_cols id_cols = STORE_COLS(struct id_row, STORE_COL(struct id_row, id));

int store_member_forget_cards(struct store *s, int64_t member_id)
{
    int64_t ids[64];
    int r = store_batch_ensure(s), n;

    if (r < 0)
        return r;
    n = store_collect(s, sql_member_card_ids, STORE_ARGS(STORE_INT(member_id)), &id_cols, ids,
                      ARRAY_SIZE(ids));
    r = n;
    for (int i = 0; r >= 0 && i < n; i++)
        r = store_card_forget_consortium(s, ids[i]);
    return r < 0 ? r : exec_member(s, sql_forget_cards, member_id);
}

int store_erasures_pending(struct store *s, int64_t *ids, int n)
{
    return store_collect(s, sql_erasures_pending, STORE_ARGS(STORE_INT(n)), &id_cols, ids,
                         n > 0 ? (size_t)n : 0);
}

/* ---- retention ---- */

struct retention_sql {
    const char *name;
    const char *peek;       /* ?1 cursor, ?2 limit: the last id and the oldest time */
    const char *del;        /* ?1 cursor, ?2 last id, ?3 cutoff */
};

static const struct retention_sql retention_sql[RETENTION__MAX] = {
    [RETENTION_ACCESS_EVENTS] = { "access_events",
        "SELECT coalesce(max(id), 0), coalesce(min(at), 0), count(*) FROM "
        "(SELECT id, at FROM access_events WHERE id > ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM access_events WHERE id > ?1 AND id <= ?2 AND at < ?3" },
    [RETENTION_PRESENCE] = { "presence",
        "SELECT coalesce(max(id), 0), coalesce(min(check_in_at), 0), count(*) FROM "
        "(SELECT id, check_in_at FROM presence WHERE id > ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM presence WHERE id > ?1 AND id <= ?2 AND check_out_at != 0 AND "
        "check_out_at < ?3" },
    [RETENTION_SESSIONS] = { "machine_sessions",
        "SELECT coalesce(max(id), 0), coalesce(min(started_at), 0), count(*) FROM "
        "(SELECT id, started_at FROM machine_sessions WHERE id > ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM machine_sessions WHERE id > ?1 AND id <= ?2 AND ended_at != 0 AND "
        "ended_at < ?3" },
    [RETENTION_BOOKINGS] = { "bookings",
        "SELECT coalesce(max(id), 0), coalesce(min(ends_at), 0), count(*) FROM "
        "(SELECT id, ends_at FROM bookings WHERE id > ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM bookings WHERE id > ?1 AND id <= ?2 AND ends_at < ?3" },
};

/* The access log's triggers let rows older than this horizon go (migration 11). */
static const char sql_horizon_set[] =
    "INSERT INTO retention_horizons (name, horizon) VALUES (?1, ?2) "
    "ON CONFLICT (name) DO UPDATE SET horizon = excluded.horizon";

const char *store_retention_table_name(enum store_retention_table t)
{
    return (unsigned)t < RETENTION__MAX ? retention_sql[t].name : "unknown";
}

struct peek {
    int64_t last_id, oldest, count;
};
static const struct store_cols peek_cols = STORE_COLS(struct peek,
    STORE_COL(struct peek, last_id), STORE_COL(struct peek, oldest), STORE_COL(struct peek, count));

int store_retention_step(struct store *s, enum store_retention_table t, int64_t cutoff,
                         int64_t limit, int64_t *cursor, bool *ret_more)
{
    struct peek p = { 0 };
    int r;

    *ret_more = false;
    if ((unsigned)t >= RETENTION__MAX || limit <= 0)
        return -EINVAL;
    r = store_get(s, retention_sql[t].peek, STORE_ARGS(STORE_INT(*cursor), STORE_INT(limit)),
                  &peek_cols, &p);
    if (r < 0)
        return r;
    if (p.count == 0 || p.oldest >= cutoff)
        return 0;               /* the end, or only newer rows from here on */
    if (t == RETENTION_ACCESS_EVENTS) {
        r = store_write(s, sql_horizon_set,
                        STORE_ARGS(STORE_TEXT(retention_sql[t].name), STORE_INT(cutoff)));
        if (r < 0)
            return r;
    }
    r = store_write_count(s, retention_sql[t].del,
                          STORE_ARGS(STORE_INT(*cursor), STORE_INT(p.last_id), STORE_INT(cutoff)));
    if (r < 0)
        return r;
    *cursor = p.last_id;
    *ret_more = p.count == limit;
    if (t == RETENTION_BOOKINGS || t == RETENTION_SESSIONS)
        store_generation_bump(s);
    return r;
}

static const char sql_idle_sessions[] =
    "DELETE FROM web_sessions WHERE account_id IN (SELECT id FROM accounts WHERE "
    "role = 'member' AND max(created_at, last_login_at) < ?1)";
static const char sql_idle_tokens[] =
    "DELETE FROM account_tokens WHERE account_id IN (SELECT id FROM accounts WHERE "
    "role = 'member' AND max(created_at, last_login_at) < ?1)";
static const char sql_idle_accounts[] =
    "DELETE FROM accounts WHERE role = 'member' AND max(created_at, last_login_at) < ?1";

int store_accounts_prune_inactive(struct store *s, int64_t before)
{
    const char *const sql[] = { sql_idle_sessions, sql_idle_tokens, sql_idle_accounts };
    int r = 0;

    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(sql); i++)
        r = exec_member(s, sql[i], before);         /* ?1 is the date here */
    return r;
}

/* ---- giving space back ---- */

static const char sql_auto_vacuum[] = "PRAGMA auto_vacuum";
static const char sql_freelist[] = "PRAGMA freelist_count";
static const char *const sql_vacuum[] = {
    "PRAGMA incremental_vacuum(16)", "PRAGMA incremental_vacuum(64)",
    "PRAGMA incremental_vacuum(256)", "PRAGMA incremental_vacuum(1024)",
};

int store_auto_vacuum(struct store *s)
{
    return (int)store_value(s, sql_auto_vacuum, STORE_NO_ARGS);
}

int64_t store_free_pages(struct store *s)
{
    return store_value(s, sql_freelist, STORE_NO_ARGS);
}

static int ignore_row(sqlite3_stmt *st, void *ctx)
{
    return 0;
}

int64_t store_vacuum_step(struct store *s, int pages)
{
    unsigned k = pages <= 16 ? 0 : pages <= 64 ? 1 : pages <= 256 ? 2 : 3;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    /* every step of the pragma frees a page: step it to its end */
    r = store_rows_each(store_stmt(s, sql_vacuum[k]), ignore_row, NULL);
    if (r < 0)
        return r;
    return store_free_pages(s);
}

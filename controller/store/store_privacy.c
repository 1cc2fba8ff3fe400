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

/* Rows a statement changed (a delete or update of many rows), or its error. */
static int exec_count(struct store *s, sqlite3_stmt *st)
{
    int r = store_stmt_exec(st);
    return r < 0 ? r : sqlite3_changes(s->db);
}

static int exec_member(struct store *s, const char *sql, int64_t member_id)
{
    sqlite3_stmt *st = store_stmt(s, sql);

    sqlite3_bind_int64(st, 1, member_id);
    return exec_count(s, st);
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
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_change_add);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, field, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, old ? old : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, new ? new : "", -1, SQLITE_STATIC);
    return store_write_insert(s, st, NULL);
}

static void change_fill(sqlite3_stmt *st, void *ret)
{
    struct store_member_change *c = ret;

    c->id = sqlite3_column_int64(st, 0);
    c->member_id = sqlite3_column_int64(st, 1);
    c->at = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, c->by, sizeof(c->by));
    store_column_text(st, 4, c->field, sizeof(c->field));
    store_column_text(st, 5, c->old, sizeof(c->old));
    store_column_text(st, 6, c->new, sizeof(c->new));
}

STORE_ROWS_DELIVER(changes_row, struct store_member_change, change_fill)

int store_member_changes_foreach(struct store *s, int64_t member_id, int64_t limit,
                                 store_member_change_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_change_list);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    return store_rows_each(st, changes_row, STORE_ROWS(fn, userdata));
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

struct plan_due {
    int64_t member, old_plan, new_plan;
    char old_name[32], new_name[32];
};

struct plan_due_list {
    struct plan_due v[256];
    unsigned n;
};

static int plan_due_row(sqlite3_stmt *st, void *ctx)
{
    struct plan_due_list *l = ctx;
    struct plan_due *d = &l->v[l->n++];

    d->member = sqlite3_column_int64(st, 0);
    d->old_plan = sqlite3_column_int64(st, 1);
    d->new_plan = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, d->old_name, sizeof(d->old_name));
    store_column_text(st, 4, d->new_name, sizeof(d->new_name));
    return 0;
}

int store_member_plan_changes_apply(struct store *s, int64_t now, store_plan_change_fn fn,
                                    void *userdata)
{
    struct plan_due_list *l = calloc(1, sizeof(*l));
    sqlite3_stmt *st = store_stmt(s, sql_plan_due);
    int r;

    if (!l)
        return -ENOMEM;
    sqlite3_bind_int64(st, 1, now);
    r = store_rows_each(st, plan_due_row, l);     /* read first: then write */
    for (unsigned i = 0; r >= 0 && i < l->n; i++) {
        struct plan_due *d = &l->v[i];
        r = store_batch_ensure(s);
        if (r == 0)
            r = exec_member(s, sql_plan_apply, d->member);
        if (r >= 0)
            r = store_member_change_add(s, d->member, now, "schedule", "plan", d->old_name,
                                        d->new_name);
        if (r >= 0 && fn)
            r = fn(d->member, d->old_plan, d->new_plan, userdata);
    }
    r = r < 0 ? r : (int)l->n;
    free(l);
    return r;
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
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_remove_member);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    r = store_write_changed(s, st);
    if (r == 0)
        r = exec_member(s, sql_remove_cards, id);
    if (r >= 0)
        r = exec_member(s, sql_remove_sessions, id);
    if (r >= 0) {
        st = store_stmt(s, sql_remove_accounts);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        r = exec_count(s, st);
    }
    if (r >= 0) {
        st = store_stmt(s, sql_remove_bookings);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
        r = exec_count(s, st);
    }
    if (r >= 0)
        r = exec_member(s, sql_remove_trainers, id);
    if (r >= 0)
        s->generation++;        /* bookings changed */
    return r < 0 ? r : 0;
}

/* ---- erasure ---- */

/* The first billing day of the member's usage in no closed period (usage_member index). */
static const char sql_open_usage[] =
    "SELECT coalesce(min(u.billing_day), '') FROM usage u WHERE u.member_id = ?1 AND NOT "
    "EXISTS (SELECT 1 FROM periods p WHERE u.billing_day BETWEEN p.first_day AND p.last_day)";

static void text_fill(sqlite3_stmt *st, void *ret)
{
    store_column_text(st, 0, ret, 11);
}

int store_member_open_usage(struct store *s, int64_t id, char first_day[11])
{
    sqlite3_stmt *st = store_stmt(s, sql_open_usage);

    first_day[0] = '\0';
    sqlite3_bind_int64(st, 1, id);
    return store_row_get(st, text_fill, first_day);
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

struct names16 {
    char v[16][STORE_ACCOUNT_NAME_MAX + 1];
    unsigned n;
};

static int account_name_row(sqlite3_stmt *st, void *ctx)
{
    struct names16 *names = ctx;

    store_column_text(st, 0, names->v[names->n++], sizeof(names->v[0]));
    return 0;
}

/* The erased member's accounts no longer name anyone as authors of records. */
static int erase_authors(struct store *s, int64_t id, const char *pseudonym)
{
    struct names16 names = { .n = 0 };
    sqlite3_stmt *st = store_stmt(s, sql_erase_account_names);
    char from[80], to[80];
    int r;

    sqlite3_bind_int64(st, 1, id);
    r = store_rows_each(st, account_name_row, &names);
    snprintf(to, sizeof(to), "web:%s", pseudonym);
    for (unsigned i = 0; r >= 0 && i < names.n; i++) {
        snprintf(from, sizeof(from), "web:%s", names.v[i]);
        for (size_t k = 0; r >= 0 && k < ARRAY_SIZE(sql_authors); k++) {
            st = store_stmt(s, sql_authors[k]);
            sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
            r = store_stmt_exec(st);
        }
    }
    return r < 0 ? r : 0;
}

int store_member_erase(struct store *s, int64_t id, const char *pseudonym, int64_t now)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_erase_member);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, pseudonym, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    r = store_write_changed(s, st);
    if (r == 0)
        r = erase_authors(s, id, pseudonym);
    if (r >= 0)
        r = exec_member(s, sql_erase_card_labels, id);
    if (r >= 0)
        r = exec_member(s, sql_remove_sessions, id);
    if (r >= 0)
        r = exec_member(s, sql_erase_tokens, id);
    if (r >= 0)
        r = exec_member(s, sql_erase_accounts, id);
    if (r >= 0)
        r = exec_member(s, sql_remove_trainers, id);
    if (r >= 0)
        r = exec_member(s, sql_erase_qualifications, id);
    if (r >= 0)
        r = exec_member(s, sql_erase_history, id);
    if (r >= 0)
        r = exec_member(s, sql_erase_mail, id);
    if (r >= 0)
        s->generation++;        /* names on bookings changed */
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
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_scrub);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    return exec_count(s, st);
}

struct id_list {
    int64_t *v;
    int n, max;
};

static int id_row(sqlite3_stmt *st, void *ctx)
{
    struct id_list *l = ctx;

    if (l->n < l->max)
        l->v[l->n++] = sqlite3_column_int64(st, 0);
    return 0;
}

int store_member_forget_cards(struct store *s, int64_t member_id)
{
    int64_t ids[64];
    struct id_list l = { ids, 0, 64 };
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_member_card_ids);
    sqlite3_bind_int64(st, 1, member_id);
    r = store_rows_each(st, id_row, &l);
    for (int i = 0; r >= 0 && i < l.n; i++)
        r = store_card_forget_consortium(s, ids[i]);
    return r < 0 ? r : exec_member(s, sql_forget_cards, member_id);
}

int store_erasures_pending(struct store *s, int64_t *ids, int n)
{
    struct id_list l = { ids, 0, n };
    sqlite3_stmt *st = store_stmt(s, sql_erasures_pending);
    int r;

    sqlite3_bind_int64(st, 1, n);
    r = store_rows_each(st, id_row, &l);
    return r < 0 ? r : l.n;
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

static void peek_fill(sqlite3_stmt *st, void *ret)
{
    struct peek *p = ret;

    p->last_id = sqlite3_column_int64(st, 0);
    p->oldest = sqlite3_column_int64(st, 1);
    p->count = sqlite3_column_int64(st, 2);
}

int store_retention_step(struct store *s, enum store_retention_table t, int64_t cutoff,
                         int64_t limit, int64_t *cursor, bool *ret_more)
{
    struct peek p = { 0 };
    sqlite3_stmt *st;
    int r;

    *ret_more = false;
    if ((unsigned)t >= RETENTION__MAX || limit <= 0)
        return -EINVAL;
    st = store_stmt(s, retention_sql[t].peek);
    sqlite3_bind_int64(st, 1, *cursor);
    sqlite3_bind_int64(st, 2, limit);
    r = store_row_get(st, peek_fill, &p);
    if (r < 0)
        return r;
    if (p.count == 0 || p.oldest >= cutoff)
        return 0;               /* the end, or only newer rows from here on */
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    if (t == RETENTION_ACCESS_EVENTS) {
        st = store_stmt(s, sql_horizon_set);
        sqlite3_bind_text(st, 1, retention_sql[t].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cutoff);
        r = store_stmt_exec(st);
        if (r < 0)
            return r;
    }
    st = store_stmt(s, retention_sql[t].del);
    sqlite3_bind_int64(st, 1, *cursor);
    sqlite3_bind_int64(st, 2, p.last_id);
    sqlite3_bind_int64(st, 3, cutoff);
    r = exec_count(s, st);
    if (r < 0)
        return r;
    *cursor = p.last_id;
    *ret_more = p.count == limit;
    if (t == RETENTION_BOOKINGS || t == RETENTION_SESSIONS)
        s->generation++;
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
    int r = store_batch_ensure(s);

    for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(sql); i++) {
        sqlite3_stmt *st = store_stmt(s, sql[i]);
        sqlite3_bind_int64(st, 1, before);
        r = exec_count(s, st);
    }
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
    return (int)store_row_value(store_stmt(s, sql_auto_vacuum));
}

int64_t store_free_pages(struct store *s)
{
    return store_row_value(store_stmt(s, sql_freelist));
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
    r = store_rows_each(store_stmt(s, sql_vacuum[k]), ignore_row, NULL);
    if (r < 0)
        return r;
    return store_free_pages(s);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_mail: the e-mail outbox — messages queued in the batch of the change they tell of,
 * their delivery state, and the queries behind the notices the scheduler queues (reminders,
 * trainings and memberships that end). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

#define NOTICES_MAX 200     /* per query: what is left comes at the next pass */

static const char *const state_names[] = { "queued", "sent", "failed" };

static const char sql_mail_add[] =
    "INSERT INTO mail_outbox (kind, member_id, to_addr, to_name, lang, subject, body_text, "
    "body_html, message_id, dedup, dedup_until, next_try_at, created_at) VALUES "
    "(?1, nullif(?2, 0), ?3, ?4, ?5, ?6, ?7, ?8, ?9, nullif(?10, ''), ?11, ?12, ?13)";
#define MAIL_COLUMNS \
    "id, kind, coalesce(member_id, 0), to_addr, to_name, lang, subject, message_id, " \
    "coalesce(dedup, ''), dedup_until, state, attempts, next_try_at, created_at, sent_at, " \
    "last_error, body_text, body_html"
static const char sql_mail_get[] = "SELECT " MAIL_COLUMNS " FROM mail_outbox WHERE id = ?1";
static const char sql_mail_due[] =
    "SELECT " MAIL_COLUMNS " FROM mail_outbox WHERE state = 'queued' AND next_try_at <= ?1 "
    "AND id <= ?2 ORDER BY next_try_at, id LIMIT ?3";
static const char sql_mail_next_due[] =
    "SELECT coalesce(min(next_try_at), -1) FROM mail_outbox WHERE state = 'queued' AND id <= ?1";
static const char sql_mail_queued[] = "SELECT count(*) FROM mail_outbox WHERE state = 'queued'";
static const char sql_mail_sent[] =
    "UPDATE mail_outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, "
    "body_text = '', body_html = '', last_error = '' WHERE id = ?1";
static const char sql_mail_failed[] =
    "UPDATE mail_outbox SET attempts = ?2, last_error = ?4, "
    "state = CASE WHEN ?3 > 0 THEN 'queued' ELSE 'failed' END, "
    "next_try_at = CASE WHEN ?3 > 0 THEN ?3 ELSE next_try_at END WHERE id = ?1";
static const char sql_mail_requeue[] =
    "UPDATE mail_outbox SET state = 'queued', attempts = 0, next_try_at = ?2, last_error = '' "
    "WHERE id = ?1 AND (state = 'queued' OR (state = 'failed' AND body_text != ''))";
static const char sql_mail_list[] =
    "SELECT " MAIL_COLUMNS " FROM mail_outbox WHERE (?1 < 0 OR state = ?2) "
    "AND (?3 = 0 OR member_id = ?3) ORDER BY id DESC LIMIT ?4";
static const char sql_mail_sent_since[] =
    "SELECT sent_at FROM mail_outbox WHERE sent_at > 0 AND sent_at > ?1 ORDER BY sent_at";
static const char sql_mail_prune[] =
    "DELETE FROM mail_outbox WHERE state != 'queued' AND created_at < ?1 AND dedup_until < ?2";

static const char sql_reminders_due[] =
    "SELECT b.id, b.member_id, m.name, m.email, r.name, b.starts_at, b.ends_at "
    "FROM bookings b JOIN members m ON m.id = b.member_id "
    "JOIN resources r ON r.id = b.resource_id "
    "WHERE b.starts_at >= ?1 AND b.starts_at < ?2 AND b.cancelled_at = 0 "
    "AND m.email != '' AND m.status = 'active' AND m.removed_at = 0 "
    "AND b.created_at <= b.starts_at - ?3 "
    "AND NOT EXISTS (SELECT 1 FROM mail_outbox WHERE dedup = 'reminder:' || b.id) "
    "ORDER BY b.starts_at LIMIT ?4";
static const char sql_trainings_ending[] =
    "SELECT q.id, q.member_id, m.name, m.email, t.name, 0, q.expires_at "
    "FROM qualifications q JOIN members m ON m.id = q.member_id "
    "JOIN trainings t ON t.id = q.training_id "
    "WHERE q.expires_at > 0 AND q.revoked_at = 0 AND q.expires_at >= ?1 AND q.expires_at < ?2 "
    "AND m.email != '' AND m.status = 'active' AND m.removed_at = 0 "
    "AND NOT EXISTS (SELECT 1 FROM qualifications o WHERE o.member_id = q.member_id "
    "  AND o.training_id = q.training_id AND o.revoked_at = 0 AND o.id != q.id "
    "  AND (o.expires_at = 0 OR o.expires_at > q.expires_at)) "
    "AND NOT EXISTS (SELECT 1 FROM mail_outbox WHERE dedup = 'training:' || q.id) "
    "ORDER BY q.expires_at LIMIT ?3";
static const char sql_memberships_ending[] =
    "SELECT m.id, m.id, m.name, m.email, '', 0, m.valid_until FROM members m "
    "WHERE m.valid_until > 0 AND m.valid_until >= ?1 AND m.valid_until < ?2 "
    "AND m.status = 'active' AND m.removed_at = 0 AND m.email != '' "
    "AND NOT EXISTS (SELECT 1 FROM mail_outbox "
    "  WHERE dedup = 'membership:' || m.id || ':' || m.valid_until) "
    "ORDER BY m.valid_until LIMIT ?3";

const char *store_mail_state_name(enum store_mail_state state)
{
    return (unsigned)state < ARRAY_SIZE(state_names) ? state_names[state] : "unknown";
}

static enum store_mail_state state_parse(const char *text)
{
    for (unsigned i = 0; text && i < ARRAY_SIZE(state_names); i++)
        if (strcmp(text, state_names[i]) == 0)
            return (enum store_mail_state)i;
    return STORE_MAIL_FAILED;
}

int store_mail_add(struct store *s, const struct store_mail *m, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int64_t id;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_mail_add);
    sqlite3_bind_text(st, 1, m->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, m->member_id);
    sqlite3_bind_text(st, 3, m->to_addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->to_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, m->lang, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, m->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, m->body_text ? m->body_text : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, m->body_html ? m->body_html : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, m->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, m->dedup, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, m->dedup_until);
    sqlite3_bind_int64(st, 12, m->next_try_at);
    sqlite3_bind_int64(st, 13, m->created_at);
    r = store_write_insert(s, st, &id);
    if (r < 0)
        return r;
    s->mail_last = id;          /* AUTOINCREMENT: ids only grow */
    if (ret_id)
        *ret_id = id;
    return 0;
}

/* Columns of MAIL_COLUMNS; the bodies point into the statement (valid until its next step). */
static void mail_fill(sqlite3_stmt *st, void *ret)
{
    struct store_mail *m = ret;

    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, m->kind, sizeof(m->kind));
    m->member_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, m->to_addr, sizeof(m->to_addr));
    store_column_text(st, 4, m->to_name, sizeof(m->to_name));
    store_column_text(st, 5, m->lang, sizeof(m->lang));
    store_column_text(st, 6, m->subject, sizeof(m->subject));
    store_column_text(st, 7, m->message_id, sizeof(m->message_id));
    store_column_text(st, 8, m->dedup, sizeof(m->dedup));
    m->dedup_until = sqlite3_column_int64(st, 9);
    m->state = state_parse((const char *)sqlite3_column_text(st, 10));
    m->attempts = sqlite3_column_int64(st, 11);
    m->next_try_at = sqlite3_column_int64(st, 12);
    m->created_at = sqlite3_column_int64(st, 13);
    m->sent_at = sqlite3_column_int64(st, 14);
    store_column_text(st, 15, m->last_error, sizeof(m->last_error));
}

static void mail_fill_bodies(sqlite3_stmt *st, struct store_mail *m)
{
    const char *text = (const char *)sqlite3_column_text(st, 16);
    const char *html = (const char *)sqlite3_column_text(st, 17);
    m->body_text = text ? text : "";
    m->body_html = html ? html : "";
}

int store_mail_get(struct store *s, int64_t id, struct store_mail *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_mail_get);

    sqlite3_bind_int64(st, 1, id);
    return store_row_get(st, mail_fill, ret);
}

struct due_ctx {
    store_mail_fn fn;
    void *userdata;
    const int64_t *except;
    unsigned n_except;
    int wanted, given;
};

static int due_row(sqlite3_stmt *st, void *ctx)
{
    struct due_ctx *x = ctx;
    struct store_mail m;

    mail_fill(st, &m);
    for (unsigned i = 0; i < x->n_except; i++)
        if (x->except[i] == m.id)
            return 0;
    if (x->given == x->wanted)
        return -ENOBUFS;
    mail_fill_bodies(st, &m);
    x->given++;
    return x->fn(&m, x->userdata);
}

int store_mail_due(struct store *s, int64_t now, int n, const int64_t *except_id,
                   unsigned n_except, store_mail_fn fn, void *userdata)
{
    struct due_ctx x = { fn, userdata, except_id, n_except, n, 0 };
    sqlite3_stmt *st = store_stmt(s, sql_mail_due);
    int r;

    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, s->durable.mail_id);     /* only what is on disk leaves */
    sqlite3_bind_int64(st, 3, (int64_t)n + n_except);
    r = store_rows_each(st, due_row, &x);
    return r == -ENOBUFS || r >= 0 ? x.given : r;
}

int store_mail_next_due(struct store *s, int64_t *ret_at)
{
    sqlite3_stmt *st = store_stmt(s, sql_mail_next_due);
    int64_t at = -1;
    int r;

    sqlite3_bind_int64(st, 1, s->durable.mail_id);
    r = store_row_int64(st, &at);
    if (r < 0)
        return r;
    if (at < 0)
        return -ENOENT;
    *ret_at = at;
    return 0;
}

int64_t store_mail_queued_count(struct store *s)
{
    return store_row_value(store_stmt(s, sql_mail_queued));
}

int store_mail_sent(struct store *s, int64_t id, int64_t at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_mail_sent);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    return store_write_changed(s, st);
}

int store_mail_failed(struct store *s, int64_t id, int64_t attempts, int64_t next_try_at,
                      const char *error)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_mail_failed);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, attempts);
    sqlite3_bind_int64(st, 3, next_try_at);
    sqlite3_bind_text(st, 4, error ? error : "", -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_mail_requeue(struct store *s, int64_t id, int64_t now)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_mail_requeue);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return store_write_changed(s, st);
}

STORE_ROWS_DELIVER(mail_row, struct store_mail, mail_fill)

int store_mails_foreach(struct store *s, const struct store_mail_filter *f, store_mail_fn fn,
                        void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_mail_list);

    sqlite3_bind_int(st, 1, f->state);
    sqlite3_bind_text(st, 2, f->state >= 0 ? store_mail_state_name(f->state) : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->member_id);
    sqlite3_bind_int64(st, 4, f->limit > 0 ? f->limit : 100);
    return store_rows_each(st, mail_row, STORE_ROWS(fn, userdata));
}

static int time_row(sqlite3_stmt *st, void *ctx)
{
    const struct store_rows *rows = ctx;
    return ((store_time_fn)rows->fn)(sqlite3_column_int64(st, 0), rows->userdata);
}

int store_mail_sent_since(struct store *s, int64_t since, store_time_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_mail_sent_since);

    sqlite3_bind_int64(st, 1, since);
    return store_rows_each(st, time_row, STORE_ROWS(fn, userdata));
}

int store_mail_prune(struct store *s, int64_t before, int64_t now)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_mail_prune);
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, now);
    r = store_stmt_exec(st);
    return r < 0 ? r : sqlite3_changes(s->db);
}

/* ---- notices ---- */

static void notice_fill(sqlite3_stmt *st, void *ret)
{
    struct store_mail_notice *n = ret;

    n->ref_id = sqlite3_column_int64(st, 0);
    n->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, n->name, sizeof(n->name));
    store_column_text(st, 3, n->email, sizeof(n->email));
    store_column_text(st, 4, n->what, sizeof(n->what));
    n->start = sqlite3_column_int64(st, 5);
    n->end = sqlite3_column_int64(st, 6);
}

STORE_ROWS_DELIVER(notice_row, struct store_mail_notice, notice_fill)

int store_mail_reminders_due(struct store *s, int64_t from, int64_t to, int64_t lead,
                             store_mail_notice_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_reminders_due);

    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    sqlite3_bind_int64(st, 3, lead);
    sqlite3_bind_int(st, 4, NOTICES_MAX);
    return store_rows_each(st, notice_row, STORE_ROWS(fn, userdata));
}

static int ending(struct store *s, const char *sql, int64_t from, int64_t to,
                  store_mail_notice_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql);

    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    sqlite3_bind_int(st, 3, NOTICES_MAX);
    return store_rows_each(st, notice_row, STORE_ROWS(fn, userdata));
}

int store_mail_trainings_ending(struct store *s, int64_t from, int64_t to,
                                store_mail_notice_fn fn, void *userdata)
{
    return ending(s, sql_trainings_ending, from, to, fn, userdata);
}

int store_mail_memberships_ending(struct store *s, int64_t from, int64_t to,
                                  store_mail_notice_fn fn, void *userdata)
{
    return ending(s, sql_memberships_ending, from, to, fn, userdata);
}

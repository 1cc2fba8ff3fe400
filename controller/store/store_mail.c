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
    "last_error"
static const char sql_mail_get[] = "SELECT " MAIL_COLUMNS " FROM mail_outbox WHERE id = ?1";
static const char sql_mail_due[] =
    "SELECT " MAIL_COLUMNS ", body_text, body_html FROM mail_outbox WHERE state = 'queued' AND next_try_at <= ?1 "
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
    int64_t id;
    int r = store_insert(s, sql_mail_add,
                         STORE_ARGS(STORE_TEXT(m->kind), STORE_INT(m->member_id),
                                    STORE_TEXT(m->to_addr), STORE_TEXT(m->to_name),
                                    STORE_TEXT(m->lang), STORE_TEXT(m->subject),
                                    STORE_TEXT(m->body_text ? m->body_text : ""),
                                    STORE_TEXT(m->body_html ? m->body_html : ""),
                                    STORE_TEXT(m->message_id), STORE_TEXT(m->dedup),
                                    STORE_INT(m->dedup_until), STORE_INT(m->next_try_at),
                                    STORE_INT(m->created_at)),
                         &id);

    if (r < 0)
        return r;
    s->mail_last = id;          /* AUTOINCREMENT: ids only grow */
    if (ret_id)
        *ret_id = id;
    return 0;
}

static void state_read(sqlite3_stmt *st, int col, void *row)
{
    ((struct store_mail *)row)->state = state_parse((const char *)sqlite3_column_text(st, col));
}

/* The bodies point into the statement: valid during the row's callback only. */
static void body_text_read(sqlite3_stmt *st, int col, void *row)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    ((struct store_mail *)row)->body_text = text ? text : "";
}

static void body_html_read(sqlite3_stmt *st, int col, void *row)
{
    const char *html = (const char *)sqlite3_column_text(st, col);
    ((struct store_mail *)row)->body_html = html ? html : "";
}

/* MAIL_COLUMNS; the due messages' also their bodies (listings leave them NULL). */
#define COL(field) STORE_COL(struct store_mail, field)
#define MAIL_COLS                                                                           \
    COL(id), COL(kind), COL(member_id), COL(to_addr), COL(to_name), COL(lang), COL(subject),  \
    COL(message_id), COL(dedup), COL(dedup_until), STORE_COL_READ(state_read), COL(attempts), \
    COL(next_try_at), COL(created_at), COL(sent_at), COL(last_error)
static const struct store_cols mail_cols = STORE_COLS(struct store_mail, MAIL_COLS);
static const struct store_cols mail_due_cols = STORE_COLS(struct store_mail, MAIL_COLS,
    STORE_COL_READ(body_text_read), STORE_COL_READ(body_html_read));
#undef MAIL_COLS
#undef COL

int store_mail_get(struct store *s, int64_t id, struct store_mail *ret)
{
    return store_get(s, sql_mail_get, STORE_ARGS(STORE_INT(id)), &mail_cols, ret);
}

struct due_ctx {
    store_mail_fn fn;
    void *userdata;
    const int64_t *except;
    unsigned n_except;
    int wanted, given;
};

static int due_row(const void *row, void *ctx)
{
    const struct store_mail *m = row;
    struct due_ctx *x = ctx;

    for (unsigned i = 0; i < x->n_except; i++)
        if (x->except[i] == m->id)
            return 0;
    if (x->given == x->wanted)
        return -ENOBUFS;
    x->given++;
    return x->fn(m, x->userdata);
}

int store_mail_due(struct store *s, int64_t now, int n, const int64_t *except_id,
                   unsigned n_except, store_mail_fn fn, void *userdata)
{
    struct due_ctx x = { fn, userdata, except_id, n_except, n, 0 };
    /* only what is on disk leaves */
    int r = store_each(s, sql_mail_due, STORE_ARGS(STORE_INT(now), STORE_INT(s->durable.mail_id),
                                                   STORE_INT((int64_t)n + n_except)),
                       &mail_due_cols, due_row, &x);

    return r == -ENOBUFS || r >= 0 ? x.given : r;
}

int store_mail_next_due(struct store *s, int64_t *ret_at)
{
    int64_t at = -1;
    int r = store_get_int64(s, sql_mail_next_due, STORE_ARGS(STORE_INT(s->durable.mail_id)), &at);

    if (r < 0)
        return r;
    if (at < 0)
        return -ENOENT;
    *ret_at = at;
    return 0;
}

int64_t store_mail_queued_count(struct store *s)
{
    return store_value(s, sql_mail_queued, STORE_NO_ARGS);
}

int store_mail_sent(struct store *s, int64_t id, int64_t at)
{
    return store_update(s, sql_mail_sent, STORE_ARGS(STORE_INT(id), STORE_INT(at)));
}

int store_mail_failed(struct store *s, int64_t id, int64_t attempts, int64_t next_try_at,
                      const char *error)
{
    return store_update(s, sql_mail_failed, STORE_ARGS(STORE_INT(id), STORE_INT(attempts),
                                                       STORE_INT(next_try_at),
                                                       STORE_TEXT(error ? error : "")));
}

int store_mail_requeue(struct store *s, int64_t id, int64_t now)
{
    return store_update(s, sql_mail_requeue, STORE_ARGS(STORE_INT(id), STORE_INT(now)));
}

STORE_ROWS_TO(mail_row, store_mail_fn)

int store_mails_foreach(struct store *s, const struct store_mail_filter *f, store_mail_fn fn,
                        void *userdata)
{
    return store_each(s, sql_mail_list,
                      STORE_ARGS(STORE_INT(f->state),
                                 STORE_TEXT(f->state >= 0 ? store_mail_state_name(f->state) : ""),
                                 STORE_INT(f->member_id), STORE_INT(f->limit > 0 ? f->limit : 100)),
                      &mail_cols, mail_row, STORE_ROWS(fn, userdata));
}

struct time_row {
    int64_t at;
};

static const struct store_cols time_cols =
    STORE_COLS(struct time_row, STORE_COL(struct time_row, at));

static int time_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    return ((store_time_fn)rows->fn)(((const struct time_row *)row)->at, rows->userdata);
}

int store_mail_sent_since(struct store *s, int64_t since, store_time_fn fn, void *userdata)
{
    return store_each(s, sql_mail_sent_since, STORE_ARGS(STORE_INT(since)), &time_cols, time_row,
                      STORE_ROWS(fn, userdata));
}

int store_mail_prune(struct store *s, int64_t before, int64_t now)
{
    return store_write_count(s, sql_mail_prune, STORE_ARGS(STORE_INT(before), STORE_INT(now)));
}

/* ---- notices ---- */

#define COL(field) STORE_COL(struct store_mail_notice, field)
static const struct store_cols notice_cols = STORE_COLS(struct store_mail_notice,
    COL(ref_id), COL(member_id), COL(name), COL(email), COL(what), COL(start), COL(end));
#undef COL

STORE_ROWS_TO(notice_row, store_mail_notice_fn)

int store_mail_reminders_due(struct store *s, int64_t from, int64_t to, int64_t lead,
                             store_mail_notice_fn fn, void *userdata)
{
    return store_each(s, sql_reminders_due, STORE_ARGS(STORE_INT(from), STORE_INT(to),
                                                       STORE_INT(lead), STORE_INT(NOTICES_MAX)),
                      &notice_cols, notice_row, STORE_ROWS(fn, userdata));
}

static int ending(struct store *s, const char *sql, int64_t from, int64_t to,
                  store_mail_notice_fn fn, void *userdata)
{
    return store_each(s, sql, STORE_ARGS(STORE_INT(from), STORE_INT(to), STORE_INT(NOTICES_MAX)),
                      &notice_cols, notice_row, STORE_ROWS(fn, userdata));
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

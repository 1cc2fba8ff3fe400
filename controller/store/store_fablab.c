/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_fablab: resources (doors and machines) and machine rules, trainings and
 * qualifications, bookings, and the sessions of the power interlock. */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* ---- resources ---- */

static const char sql_resource_upsert[] =
    "INSERT INTO resources (kind, name, zone, created_at) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (name) DO UPDATE SET zone = excluded.zone, kind = excluded.kind RETURNING id";
static const char sql_resource_get[] =
    "SELECT r.id, r.kind, r.name, r.zone, r.out_of_order, r.out_of_order_reason, "
    "coalesce(t.id, 0), coalesce(t.name, ''), coalesce(m.slot_minutes, 30), "
    "coalesce(m.min_minutes, 30), coalesce(m.max_minutes, 240), "
    "coalesce(m.window_days, 14), coalesce(m.quota_day_minutes, 0), "
    "coalesce(m.quota_week_minutes, 0), coalesce(m.cancel_deadline_minutes, 60), "
    "coalesce(m.hours, 'always'), coalesce(m.booking_required, 0), "
    "coalesce(m.walkup_free_minutes, 15), m.resource_id IS NOT NULL "
    "FROM resources r LEFT JOIN machine_rules m ON m.resource_id = r.id "
    "LEFT JOIN trainings t ON t.id = m.training_id WHERE r.name = ?1";
static const char sql_resource_list[] = "SELECT name FROM resources WHERE kind = ?1 ORDER BY name";
static const char sql_resource_ooo[] =
    "UPDATE resources SET out_of_order = ?2, out_of_order_reason = ?3 WHERE id = ?1";
static const char sql_rules_put[] =
    "INSERT INTO machine_rules (resource_id, training_id, slot_minutes, min_minutes, "
    "max_minutes, window_days, quota_day_minutes, quota_week_minutes, "
    "cancel_deadline_minutes, hours, booking_required, walkup_free_minutes) "
    "VALUES (?1, nullif(?2, 0), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
    "ON CONFLICT (resource_id) DO UPDATE SET training_id = excluded.training_id, "
    "slot_minutes = excluded.slot_minutes, min_minutes = excluded.min_minutes, "
    "max_minutes = excluded.max_minutes, window_days = excluded.window_days, "
    "quota_day_minutes = excluded.quota_day_minutes, "
    "quota_week_minutes = excluded.quota_week_minutes, "
    "cancel_deadline_minutes = excluded.cancel_deadline_minutes, "
    "hours = excluded.hours, booking_required = excluded.booking_required, "
    "walkup_free_minutes = excluded.walkup_free_minutes";
static const char sql_resource_category[] = "SELECT category FROM resources WHERE name = ?1";
static const char sql_resource_set_category[] = "UPDATE resources SET category = ?2 WHERE id = ?1";

int store_resource_ensure(struct store *s, const char *kind, const char *name, const char *zone,
                          int64_t *ret_id)
{
    sqlite3_stmt *st;
    int64_t id;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_resource_upsert);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, zone ? zone : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = store_row_int64(st, &id);           /* RETURNING id */
    if (r == 0 && ret_id)
        *ret_id = id;
    return r == -ENOENT ? -EIO : r;
}

static void resource_fill(sqlite3_stmt *st, void *ret)
{
    struct store_resource *r = ret;

    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, r->kind, sizeof(r->kind));
    store_column_text(st, 2, r->name, sizeof(r->name));
    store_column_text(st, 3, r->zone, sizeof(r->zone));
    r->out_of_order = sqlite3_column_int(st, 4) != 0;
    store_column_text(st, 5, r->out_of_order_reason, sizeof(r->out_of_order_reason));
    r->training_id = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, r->training, sizeof(r->training));
    r->slot_minutes = sqlite3_column_int64(st, 8);
    r->min_minutes = sqlite3_column_int64(st, 9);
    r->max_minutes = sqlite3_column_int64(st, 10);
    r->window_days = sqlite3_column_int64(st, 11);
    r->quota_day_minutes = sqlite3_column_int64(st, 12);
    r->quota_week_minutes = sqlite3_column_int64(st, 13);
    r->cancel_deadline_minutes = sqlite3_column_int64(st, 14);
    store_column_text(st, 15, r->hours, sizeof(r->hours));
    r->booking_required = sqlite3_column_int(st, 16) != 0;
    r->walkup_free_minutes = sqlite3_column_int64(st, 17);
    r->has_rules = sqlite3_column_int(st, 18) != 0;
}

int store_resource_get(struct store *s, const char *name, struct store_resource *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_resource_get);

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_get(st, resource_fill, ret);
}

static int resources_row(sqlite3_stmt *st, void *ctx)
{
    const struct store_rows *rows = ctx;
    char name[32];

    store_column_text(st, 0, name, sizeof(name));
    return ((store_name_fn)rows->fn)(name, rows->userdata);
}

int store_resources_foreach(struct store *s, const char *kind, store_name_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_resource_list);

    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    return store_rows_each(st, resources_row, STORE_ROWS(fn, userdata));
}

int store_resource_set_out_of_order(struct store *s, int64_t id, bool on, const char *reason)
{
    sqlite3_stmt *st;
    int r;

    s->generation++;     /* what the web page shows may have changed */
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_resource_ooo);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, on ? 1 : 0);
    sqlite3_bind_text(st, 3, on && reason ? reason : "", -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_machine_rules_put(struct store *s, const struct store_resource *m)
{
    sqlite3_stmt *st;
    int r;

    s->generation++;     /* what the web page shows may have changed */
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_rules_put);
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_int64(st, 2, m->training_id);
    sqlite3_bind_int64(st, 3, m->slot_minutes);
    sqlite3_bind_int64(st, 4, m->min_minutes);
    sqlite3_bind_int64(st, 5, m->max_minutes);
    sqlite3_bind_int64(st, 6, m->window_days);
    sqlite3_bind_int64(st, 7, m->quota_day_minutes);
    sqlite3_bind_int64(st, 8, m->quota_week_minutes);
    sqlite3_bind_int64(st, 9, m->cancel_deadline_minutes);
    sqlite3_bind_text(st, 10, m->hours, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, m->booking_required ? 1 : 0);
    sqlite3_bind_int64(st, 12, m->walkup_free_minutes);
    return store_stmt_exec(st);
}

struct text_out {
    char *buf;
    size_t n;
};

static void text_fill(sqlite3_stmt *st, void *ret)
{
    struct text_out *t = ret;
    store_column_text(st, 0, t->buf, t->n);
}

int store_resource_category(struct store *s, const char *name, char *buf, size_t n)
{
    sqlite3_stmt *st = store_stmt(s, sql_resource_category);

    buf[0] = '\0';
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_get(st, text_fill, &(struct text_out){ buf, n });
}

int store_resource_set_category(struct store *s, int64_t id, const char *category)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_resource_set_category);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, category, -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

/* ---- trainings and qualifications ---- */

static const char sql_training_add[] =
    "INSERT INTO trainings (name, description, created_at) VALUES (?1, ?2, ?3)";
static const char sql_training_find[] = "SELECT id FROM trainings WHERE name = ?1";
static const char sql_training_list[] =
    "SELECT t.id, t.name, t.description, (SELECT count(DISTINCT q.member_id) "
    "FROM qualifications q WHERE q.training_id = t.id AND q.revoked_at = 0 AND "
    "(q.expires_at = 0 OR q.expires_at > ?1)) FROM trainings t ORDER BY t.name";
static const char sql_qual_grant[] =
    "INSERT INTO qualifications (member_id, training_id, granted_at, granted_by, expires_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_qual_revoke[] =
    "UPDATE qualifications SET revoked_at = ?3, revoked_by = ?4 "
    "WHERE member_id = ?1 AND training_id = ?2 AND revoked_at = 0";
/* The qualification that lasts longest: one without expiry beats any other. */
static const char sql_qual_best[] =
    "SELECT expires_at FROM qualifications WHERE member_id = ?1 AND training_id = ?2 AND "
    "revoked_at = 0 ORDER BY expires_at = 0 DESC, expires_at DESC LIMIT 1";
static const char sql_qual_list[] =
    "SELECT q.id, q.member_id, t.name, q.granted_at, q.granted_by, q.expires_at, q.revoked_at "
    "FROM qualifications q JOIN trainings t ON t.id = q.training_id "
    "WHERE q.member_id = ?1 ORDER BY q.id";

int store_training_add(struct store *s, const char *name, const char *description, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_training_add);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_utc());
    return store_write_insert(s, st, ret_id);
}

int store_training_find(struct store *s, const char *name, int64_t *ret_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_training_find);

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_int64(st, ret_id);
}

static void training_fill(sqlite3_stmt *st, void *ret)
{
    struct store_training *t = ret;

    t->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, t->name, sizeof(t->name));
    store_column_text(st, 2, t->description, sizeof(t->description));
    t->qualified_members = sqlite3_column_int64(st, 3);
}

STORE_ROWS_DELIVER(trainings_row, struct store_training, training_fill)

int store_trainings_foreach(struct store *s, int64_t now, store_training_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_training_list);

    sqlite3_bind_int64(st, 1, now);
    return store_rows_each(st, trainings_row, STORE_ROWS(fn, userdata));
}

int store_qualification_grant(struct store *s, int64_t member_id, int64_t training_id,
                              const char *by, int64_t expires_at, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_qual_grant);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, expires_at);
    r = store_write_insert(s, st, ret_id);
    return r == -EINVAL ? -ENOENT : r;      /* foreign keys: no such member or training */
}

int store_qualification_revoke(struct store *s, int64_t member_id, int64_t training_id,
                               const char *by)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_qual_revoke);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_qualification_best(struct store *s, int64_t member_id, int64_t training_id,
                             int64_t *ret_expires_at)
{
    sqlite3_stmt *st = store_stmt(s, sql_qual_best);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    return store_row_int64(st, ret_expires_at);
}

static void qualification_fill(sqlite3_stmt *st, void *ret)
{
    struct store_qualification *q = ret;

    q->id = sqlite3_column_int64(st, 0);
    q->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, q->training, sizeof(q->training));
    q->granted_at = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, q->granted_by, sizeof(q->granted_by));
    q->expires_at = sqlite3_column_int64(st, 5);
    q->revoked_at = sqlite3_column_int64(st, 6);
}

STORE_ROWS_DELIVER(qualifications_row, struct store_qualification, qualification_fill)

int store_qualifications_foreach(struct store *s, int64_t member_id, store_qualification_fn fn,
                                 void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_qual_list);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, qualifications_row, STORE_ROWS(fn, userdata));
}

/* ---- bookings ---- */

#define BOOKING_COLUMNS \
    "b.id, b.resource_id, r.name, b.member_id, m.name, b.starts_at, b.ends_at, b.created_by, " \
    "b.cancelled_at, b.cancelled_by, b.cancel_override FROM bookings b " \
    "JOIN resources r ON r.id = b.resource_id JOIN members m ON m.id = b.member_id "

static const char sql_booking_add[] =
    "INSERT INTO bookings (resource_id, member_id, starts_at, ends_at, created_at, created_by) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_booking_get[] = "SELECT " BOOKING_COLUMNS "WHERE b.id = ?1";
static const char sql_booking_cancel[] =
    "UPDATE bookings SET cancelled_at = ?2, cancelled_by = ?3, cancel_override = ?4, "
    "moved_to = nullif(?5, 0) WHERE id = ?1 AND cancelled_at = 0";
/* Bookings last at most a week (machine rules cap max_minutes at 10080, BOOKING_MAX_MINUTES),
 * so every range query on starts_at is bounded below too: the index scan stays short however
 * many past bookings a machine has. */
static const char sql_booking_overlap[] =
    "SELECT b.id, b.member_id, m.name, b.starts_at, b.ends_at FROM bookings b "
    "JOIN members m ON m.id = b.member_id WHERE b.resource_id = ?1 AND "
    "b.cancelled_at = 0 AND b.starts_at < ?3 AND b.starts_at > ?2 - 604800 "
    "AND b.ends_at > ?2 AND b.id != ?4 ORDER BY b.starts_at LIMIT 8";
static const char sql_booking_minutes[] =
    "SELECT coalesce(sum(min(ends_at, ?4) - max(starts_at, ?3)), 0) / 60 "
    "FROM bookings WHERE member_id = ?1 AND resource_id = ?2 AND "
    "cancelled_at = 0 AND starts_at < ?4 AND starts_at > ?3 - 604800 AND ends_at > ?3 "
    "AND id != ?5";
static const char sql_booking_upcoming[] =
    "SELECT id, member_id, starts_at, ends_at FROM bookings "
    "WHERE resource_id = ?1 AND cancelled_at = 0 AND ends_at > ?2 "
    "AND starts_at < ?3 AND starts_at > ?2 - 604800 ORDER BY starts_at LIMIT ?4";
static const char sql_booking_list[] =
    "SELECT " BOOKING_COLUMNS "WHERE (?1 = 0 OR b.resource_id = ?1) "
    "AND (?2 = 0 OR b.member_id = ?2) AND b.ends_at > ?3 AND b.starts_at < ?4 "
    "AND b.starts_at > ?3 - 604800 "
    "AND (?5 OR b.cancelled_at = 0) ORDER BY b.starts_at, b.id LIMIT ?6";

static void booking_fill(sqlite3_stmt *st, void *ret)
{
    struct store_booking *b = ret;

    b->id = sqlite3_column_int64(st, 0);
    b->resource_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, b->resource, sizeof(b->resource));
    b->member_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, b->member, sizeof(b->member));
    b->start = sqlite3_column_int64(st, 5);
    b->end = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, b->created_by, sizeof(b->created_by));
    b->cancelled_at = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, b->cancelled_by, sizeof(b->cancelled_by));
    b->cancel_override = sqlite3_column_int(st, 10) != 0;
}

int store_booking_add(struct store *s, int64_t resource_id, int64_t member_id, int64_t start,
                      int64_t end, const char *by, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r;

    s->generation++;     /* what the web page shows may have changed */
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_booking_add);
    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, member_id);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    sqlite3_bind_int64(st, 5, now_utc());
    sqlite3_bind_text(st, 6, by, -1, SQLITE_STATIC);
    return store_write_insert(s, st, ret_id);
}

int store_booking_get(struct store *s, int64_t id, struct store_booking *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_booking_get);

    sqlite3_bind_int64(st, 1, id);
    return store_row_get(st, booking_fill, ret);
}

int store_booking_cancel(struct store *s, int64_t id, int64_t at, const char *by, bool override,
                         int64_t moved_to)
{
    sqlite3_stmt *st;
    int r;

    s->generation++;     /* what the web page shows may have changed */
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_booking_cancel);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, override ? 1 : 0);
    sqlite3_bind_int64(st, 5, moved_to);
    return store_write_changed(s, st);
}

/* Rows copied into an array of at most n. */
struct into_array {
    void *out;
    size_t n, count;
};

static int overlap_row(sqlite3_stmt *st, void *ctx)
{
    struct into_array *a = ctx;
    struct booking_ref *b = (struct booking_ref *)a->out + a->count;

    if (a->count == a->n)
        return 0;
    b->id = sqlite3_column_int64(st, 0);
    b->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, b->member, sizeof(b->member));
    b->start = sqlite3_column_int64(st, 3);
    b->end = sqlite3_column_int64(st, 4);
    a->count++;
    return 0;
}

int store_bookings_overlapping(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                               int64_t exclude_id, struct booking_ref *out, size_t n)
{
    sqlite3_stmt *st = store_stmt(s, sql_booking_overlap);
    struct into_array a = { out, n, 0 };
    int r;

    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, start);
    sqlite3_bind_int64(st, 3, end);
    sqlite3_bind_int64(st, 4, exclude_id);
    r = store_rows_each(st, overlap_row, &a);
    return r < 0 ? r : (int)a.count;
}

int64_t store_booked_minutes(struct store *s, int64_t member_id, int64_t resource_id,
                             int64_t from, int64_t to, int64_t exclude_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_booking_minutes);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, resource_id);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to);
    sqlite3_bind_int64(st, 5, exclude_id);
    return store_row_value(st);
}

static int upcoming_row(sqlite3_stmt *st, void *ctx)
{
    struct into_array *a = ctx;
    struct policy_booking *b = (struct policy_booking *)a->out + a->count;

    if (a->count == a->n)
        return 0;
    b->id = sqlite3_column_int64(st, 0);
    b->member_id = sqlite3_column_int64(st, 1);
    b->start = sqlite3_column_int64(st, 2);
    b->end = sqlite3_column_int64(st, 3);
    a->count++;
    return 0;
}

int store_bookings_upcoming(struct store *s, int64_t resource_id, int64_t now, int64_t until,
                            struct policy_booking *out, size_t n)
{
    sqlite3_stmt *st = store_stmt(s, sql_booking_upcoming);
    struct into_array a = { out, n, 0 };
    int r;

    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, until);
    sqlite3_bind_int64(st, 4, (int64_t)n);
    r = store_rows_each(st, upcoming_row, &a);
    return r < 0 ? r : (int)a.count;
}

STORE_ROWS_DELIVER(bookings_row, struct store_booking, booking_fill)

int store_bookings_foreach(struct store *s, const struct store_booking_filter *f,
                           store_booking_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_booking_list);

    sqlite3_bind_int64(st, 1, f->resource_id);
    sqlite3_bind_int64(st, 2, f->member_id);
    sqlite3_bind_int64(st, 3, f->from);
    sqlite3_bind_int64(st, 4, f->to ? f->to : INT64_MAX);
    sqlite3_bind_int(st, 5, f->include_cancelled ? 1 : 0);
    sqlite3_bind_int64(st, 6, f->limit > 0 ? f->limit : -1);
    return store_rows_each(st, bookings_row, STORE_ROWS(fn, userdata));
}

/* ---- machine sessions ---- */

#define SESSION_COLUMNS \
    "s.id, r.name, s.member_id, coalesce(s.booking_id, 0), s.started_at, s.ended_at, " \
    "s.last_seen_at, s.running_seconds, s.end_reason, s.energy_wh, s.alarm " \
    "FROM machine_sessions s JOIN resources r ON r.id = s.resource_id "

static const char sql_session_open[] =
    "INSERT INTO machine_sessions (resource_id, member_id, booking_id, started_at, last_seen_at) "
    "VALUES (?1, ?2, nullif(?3, 0), ?4, ?4)";
static const char sql_session_touch[] =
    "UPDATE machine_sessions SET last_seen_at = ?2, running_seconds = ?3, "
    "energy_wh = CASE WHEN ?4 < 0 THEN NULL ELSE ?4 END WHERE id = ?1 AND ended_at = 0";
static const char sql_session_close[] =
    "UPDATE machine_sessions SET ended_at = ?2, last_seen_at = ?2, running_seconds = ?3, "
    "end_reason = ?4, energy_wh = CASE WHEN ?5 < 0 THEN NULL ELSE ?5 END "
    "WHERE id = ?1 AND ended_at = 0";
static const char sql_session_alarm[] =
    "UPDATE machine_sessions SET alarm = ?2 WHERE id = ?1";
/* After a crash or power cut: close what was open at the last moment it was known. */
static const char sql_session_interrupted[] =
    "UPDATE machine_sessions SET ended_at = last_seen_at, end_reason = 'interrupted' "
    "WHERE ended_at = 0";
static const char sql_session_list[] =
    "SELECT " SESSION_COLUMNS "WHERE s.started_at >= ?1 ORDER BY s.id";
static const char sql_session_member[] =
    "SELECT " SESSION_COLUMNS "WHERE s.member_id = ?1 ORDER BY s.id";
static const char sql_session_open_list[] =
    "SELECT " SESSION_COLUMNS "WHERE s.ended_at = 0 ORDER BY s.id LIMIT ?1";

int store_session_open(struct store *s, int64_t resource_id, int64_t member_id,
                       int64_t booking_id, int64_t at, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_session_open);
    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, member_id);
    sqlite3_bind_int64(st, 3, booking_id);
    sqlite3_bind_int64(st, 4, at);
    return store_write_insert(s, st, ret_id);
}

int store_session_touch(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        int64_t energy_wh)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_session_touch);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, running_seconds);
    sqlite3_bind_int64(st, 4, energy_wh);
    return store_write_changed(s, st);
}

int store_session_set_alarm(struct store *s, int64_t id, const char *alarm)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_session_alarm);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, alarm, -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_session_close(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        int64_t energy_wh, const char *reason)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_session_close);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, running_seconds);
    sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, energy_wh);
    return store_write_changed(s, st);
}

int store_sessions_close_interrupted(struct store *s)
{
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    r = store_stmt_exec(store_stmt(s, sql_session_interrupted));
    return r < 0 ? r : sqlite3_changes(s->db);
}

static void session_fill(sqlite3_stmt *st, void *ret)
{
    struct store_session *ss = ret;

    ss->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, ss->resource, sizeof(ss->resource));
    ss->member_id = sqlite3_column_int64(st, 2);
    ss->booking_id = sqlite3_column_int64(st, 3);
    ss->started_at = sqlite3_column_int64(st, 4);
    ss->ended_at = sqlite3_column_int64(st, 5);
    ss->last_seen_at = sqlite3_column_int64(st, 6);
    ss->running_seconds = sqlite3_column_int64(st, 7);
    store_column_text(st, 8, ss->end_reason, sizeof(ss->end_reason));
    ss->has_energy = sqlite3_column_type(st, 9) != SQLITE_NULL;
    ss->energy_wh = sqlite3_column_int64(st, 9);
    store_column_text(st, 10, ss->alarm, sizeof(ss->alarm));
}

STORE_ROWS_DELIVER(sessions_row, struct store_session, session_fill)

int store_sessions_foreach(struct store *s, int64_t since, store_session_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_session_list);

    sqlite3_bind_int64(st, 1, since);
    return store_rows_each(st, sessions_row, STORE_ROWS(fn, userdata));
}

int store_member_sessions_foreach(struct store *s, int64_t member_id, store_session_fn fn,
                                  void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_session_member);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, sessions_row, STORE_ROWS(fn, userdata));
}

#define OPEN_SESSIONS_MAX 64

static int open_session_row(sqlite3_stmt *st, void *ctx)
{
    struct into_array *a = ctx;

    if (a->count < a->n)
        session_fill(st, (struct store_session *)a->out + a->count++);
    return 0;
}

int store_sessions_foreach_open(struct store *s, store_session_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_session_open_list);
    struct store_session ss[OPEN_SESSIONS_MAX];
    struct into_array a = { ss, OPEN_SESSIONS_MAX, 0 };
    int r;

    /* Collect first: the callback closes sessions, which must not run under this cursor. */
    sqlite3_bind_int(st, 1, OPEN_SESSIONS_MAX);
    r = store_rows_each(st, open_session_row, &a);
    for (size_t i = 0; i < a.count && r >= 0; i++)
        r = fn(&ss[i], userdata);
    return r < 0 ? r : (int)a.count;
}

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
    int64_t id;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    r = store_get_int64(s, sql_resource_upsert,                 /* RETURNING id */
                        STORE_ARGS(STORE_TEXT(kind), STORE_TEXT(name),
                                   STORE_TEXT(zone ? zone : ""), STORE_INT(now_utc())), &id);
    if (r == 0 && ret_id)
        *ret_id = id;
    return r == -ENOENT ? -EIO : r;
}

#define COL(field) STORE_COL(struct store_resource, field)
static const struct store_cols resource_cols = STORE_COLS(struct store_resource,
    COL(id), COL(kind), COL(name), COL(zone), COL(out_of_order), COL(out_of_order_reason),
    COL(training_id), COL(training), COL(slot_minutes), COL(min_minutes), COL(max_minutes),
    COL(window_days), COL(quota_day_minutes), COL(quota_week_minutes),
    COL(cancel_deadline_minutes), COL(hours), COL(booking_required), COL(walkup_free_minutes),
    COL(has_rules));
#undef COL

int store_resource_get(struct store *s, const char *name, struct store_resource *ret)
{
    return store_get(s, sql_resource_get, STORE_ARGS(STORE_TEXT(name)), &resource_cols, ret);
}

struct name_row {
    char name[32];
};
static const struct store_cols name_cols = STORE_COLS(struct name_row,
    STORE_COL(struct name_row, name));

static int resources_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    return ((store_name_fn)rows->fn)(((const struct name_row *)row)->name, rows->userdata);
}

int store_resources_foreach(struct store *s, const char *kind, store_name_fn fn, void *userdata)
{
    return store_each(s, sql_resource_list, STORE_ARGS(STORE_TEXT(kind)), &name_cols,
                      resources_row, STORE_ROWS(fn, userdata));
}

int store_resource_set_out_of_order(struct store *s, int64_t id, bool on, const char *reason)
{
    store_generation_bump(s);     /* what the web page shows may have changed */
    return store_update(s, sql_resource_ooo,
                        STORE_ARGS(STORE_INT(id), STORE_INT(on),
                                   STORE_TEXT(on && reason ? reason : "")));
}

int store_machine_rules_put(struct store *s, const struct store_resource *m)
{
    store_generation_bump(s);     /* what the web page shows may have changed */
    return store_write(s, sql_rules_put,
                       STORE_ARGS(STORE_INT(m->id), STORE_INT(m->training_id),
                                  STORE_INT(m->slot_minutes), STORE_INT(m->min_minutes),
                                  STORE_INT(m->max_minutes), STORE_INT(m->window_days),
                                  STORE_INT(m->quota_day_minutes),
                                  STORE_INT(m->quota_week_minutes),
                                  STORE_INT(m->cancel_deadline_minutes), STORE_TEXT(m->hours),
                                  STORE_INT(m->booking_required),
                                  STORE_INT(m->walkup_free_minutes)));
}

int store_resource_category(struct store *s, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    return store_get_text(s, sql_resource_category, STORE_ARGS(STORE_TEXT(name)), buf, n);
}

int store_resource_set_category(struct store *s, int64_t id, const char *category)
{
    return store_update(s, sql_resource_set_category,
                        STORE_ARGS(STORE_INT(id), STORE_TEXT(category)));
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
    return store_insert(s, sql_training_add,
                        STORE_ARGS(STORE_TEXT(name), STORE_TEXT(description ? description : ""),
                                   STORE_INT(now_utc())), ret_id);
}

int store_training_find(struct store *s, const char *name, int64_t *ret_id)
{
    return store_get_int64(s, sql_training_find, STORE_ARGS(STORE_TEXT(name)), ret_id);
}

#define COL(field) STORE_COL(struct store_training, field)
static const struct store_cols training_cols = STORE_COLS(struct store_training,
    COL(id), COL(name), COL(description), COL(qualified_members));
#undef COL

STORE_ROWS_TO(trainings_row, store_training_fn)

int store_trainings_foreach(struct store *s, int64_t now, store_training_fn fn, void *userdata)
{
    return store_each(s, sql_training_list, STORE_ARGS(STORE_INT(now)), &training_cols,
                      trainings_row, STORE_ROWS(fn, userdata));
}

int store_qualification_grant(struct store *s, int64_t member_id, int64_t training_id,
                              const char *by, int64_t expires_at, int64_t *ret_id)
{
    int r = store_insert(s, sql_qual_grant,
                         STORE_ARGS(STORE_INT(member_id), STORE_INT(training_id),
                                    STORE_INT(now_utc()), STORE_TEXT(by), STORE_INT(expires_at)),
                         ret_id);

    return r == -EINVAL ? -ENOENT : r;      /* foreign keys: no such member or training */
}

int store_qualification_revoke(struct store *s, int64_t member_id, int64_t training_id,
                               const char *by)
{
    return store_update(s, sql_qual_revoke,
                        STORE_ARGS(STORE_INT(member_id), STORE_INT(training_id),
                                   STORE_INT(now_utc()), STORE_TEXT(by)));
}

int store_qualification_best(struct store *s, int64_t member_id, int64_t training_id,
                             int64_t *ret_expires_at)
{
    return store_get_int64(s, sql_qual_best,
                           STORE_ARGS(STORE_INT(member_id), STORE_INT(training_id)),
                           ret_expires_at);
}

#define COL(field) STORE_COL(struct store_qualification, field)
static const struct store_cols qualification_cols = STORE_COLS(struct store_qualification,
    COL(id), COL(member_id), COL(training), COL(granted_at), COL(granted_by), COL(expires_at),
    COL(revoked_at));
#undef COL

STORE_ROWS_TO(qualifications_row, store_qualification_fn)

int store_qualifications_foreach(struct store *s, int64_t member_id, store_qualification_fn fn,
                                 void *userdata)
{
    return store_each(s, sql_qual_list, STORE_ARGS(STORE_INT(member_id)), &qualification_cols,
                      qualifications_row, STORE_ROWS(fn, userdata));
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
#define BOOKING_LIST_TIME \
    "AND b.ends_at > ?3 AND b.starts_at < ?4 AND b.starts_at > ?3 - 604800 " \
    "ORDER BY b.starts_at, b.id LIMIT ?6"
static const char sql_booking_list[] =
    "SELECT " BOOKING_COLUMNS "WHERE (?1 = 0 OR b.resource_id = ?1) "
    "AND (?2 = 0 OR b.member_id = ?2) AND (?5 OR b.cancelled_at = 0) " BOOKING_LIST_TIME;
/* One machine's or one member's bookings (not cancelled) through their own index: a week of
 * that machine or member, not of the whole site (a booking's check reads them). */
static const char sql_booking_list_resource[] =
    "SELECT " BOOKING_COLUMNS "WHERE b.resource_id = ?1 AND b.cancelled_at = 0 "
    "AND (?2 = 0 OR b.member_id = ?2) AND ?5 = 0 " BOOKING_LIST_TIME;
static const char sql_booking_list_member[] =
    "SELECT " BOOKING_COLUMNS "WHERE b.member_id = ?2 AND b.cancelled_at = 0 "
    "AND ?1 = 0 AND ?5 = 0 " BOOKING_LIST_TIME;
/* The site's bookings (not cancelled) after a place (starts_at, id) in that order: a long
 * list read a bounded step at a time (the bookings week of a busy site, web/pages_public.c).
 * The step's lower bound goes into the index range itself, so a step reads its own rows,
 * not again those of the steps before. */
static const char sql_booking_list_after[] =
    "SELECT " BOOKING_COLUMNS "WHERE b.cancelled_at = 0 AND b.ends_at > ?1 AND b.starts_at < ?2 "
    "AND b.starts_at >= max(?1 - 604799, ?3) AND (b.starts_at > ?3 OR b.id > ?4) "
    "ORDER BY b.starts_at, b.id LIMIT ?5";

#define COL(field) STORE_COL(struct store_booking, field)
static const struct store_cols booking_cols = STORE_COLS(struct store_booking,
    COL(id), COL(resource_id), COL(resource), COL(member_id), COL(member), COL(start), COL(end),
    COL(created_by), COL(cancelled_at), COL(cancelled_by), COL(cancel_override));
#undef COL

int store_booking_add(struct store *s, int64_t resource_id, int64_t member_id, int64_t start,
                      int64_t end, const char *by, int64_t *ret_id)
{
    store_generation_bump(s);     /* what the web page shows may have changed */
    return store_insert(s, sql_booking_add,
                        STORE_ARGS(STORE_INT(resource_id), STORE_INT(member_id), STORE_INT(start),
                                   STORE_INT(end), STORE_INT(now_utc()), STORE_TEXT(by)),
                        ret_id);
}

int store_booking_get(struct store *s, int64_t id, struct store_booking *ret)
{
    return store_get(s, sql_booking_get, STORE_ARGS(STORE_INT(id)), &booking_cols, ret);
}

int store_booking_cancel(struct store *s, int64_t id, int64_t at, const char *by, bool override,
                         int64_t moved_to)
{
    store_generation_bump(s);     /* what the web page shows may have changed */
    return store_update(s, sql_booking_cancel,
                        STORE_ARGS(STORE_INT(id), STORE_INT(at), STORE_TEXT(by),
                                   STORE_INT(override), STORE_INT(moved_to)));
}

#define COL(field) STORE_COL(struct booking_ref, field)
static const struct store_cols booking_ref_cols = STORE_COLS(struct booking_ref,
    COL(id), COL(member_id), COL(member), COL(start), COL(end));
#undef COL

int store_bookings_overlapping(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                               int64_t exclude_id, struct booking_ref *out, size_t n)
{
    return store_collect(s, sql_booking_overlap,
                         STORE_ARGS(STORE_INT(resource_id), STORE_INT(start), STORE_INT(end),
                                    STORE_INT(exclude_id)), &booking_ref_cols, out, n);
}

int64_t store_booked_minutes(struct store *s, int64_t member_id, int64_t resource_id,
                             int64_t from, int64_t to, int64_t exclude_id)
{
    return store_value(s, sql_booking_minutes,
                       STORE_ARGS(STORE_INT(member_id), STORE_INT(resource_id), STORE_INT(from),
                                  STORE_INT(to), STORE_INT(exclude_id)));
}

#define COL(field) STORE_COL(struct policy_booking, field)
static const struct store_cols upcoming_cols = STORE_COLS(struct policy_booking,
    COL(id), COL(member_id), COL(start), COL(end));
#undef COL

int store_bookings_upcoming(struct store *s, int64_t resource_id, int64_t now, int64_t until,
                            struct policy_booking *out, size_t n)
{
    return store_collect(s, sql_booking_upcoming,
                         STORE_ARGS(STORE_INT(resource_id), STORE_INT(now), STORE_INT(until),
                                    STORE_INT((int64_t)n)), &upcoming_cols, out, n);
}

STORE_ROWS_TO(bookings_row, store_booking_fn)

int store_bookings_foreach(struct store *s, const struct store_booking_filter *f,
                           store_booking_fn fn, void *userdata)
{
    const char *sql = f->include_cancelled ? sql_booking_list
                      : f->resource_id ? sql_booking_list_resource
                      : f->member_id ? sql_booking_list_member : sql_booking_list;

    if (f->after) {
        if (f->include_cancelled || f->resource_id || f->member_id)
            return -EINVAL;
        return store_each(s, sql_booking_list_after,
                          STORE_ARGS(STORE_INT(f->from), STORE_INT(f->to ? f->to : INT64_MAX),
                                     STORE_INT(f->after_start), STORE_INT(f->after_id),
                                     STORE_INT(f->limit > 0 ? f->limit : -1)),
                          &booking_cols, bookings_row, STORE_ROWS(fn, userdata));
    }
    return store_each(s, sql,
                      STORE_ARGS(STORE_INT(f->resource_id), STORE_INT(f->member_id),
                                 STORE_INT(f->from), STORE_INT(f->to ? f->to : INT64_MAX),
                                 STORE_INT(f->include_cancelled),
                                 STORE_INT(f->limit > 0 ? f->limit : -1)),
                      &booking_cols, bookings_row, STORE_ROWS(fn, userdata));
}

/* ---- machine sessions ---- */

#define SESSION_COLUMNS \
    "s.id, r.name, s.member_id, coalesce(s.booking_id, 0), s.started_at, s.ended_at, " \
    "s.last_seen_at, s.running_seconds, s.end_reason, s.energy_wh IS NOT NULL, s.energy_wh, " \
    "s.alarm " \
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
    return store_insert(s, sql_session_open,
                        STORE_ARGS(STORE_INT(resource_id), STORE_INT(member_id),
                                   STORE_INT(booking_id), STORE_INT(at)), ret_id);
}

int store_session_touch(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        int64_t energy_wh)
{
    return store_update(s, sql_session_touch,
                        STORE_ARGS(STORE_INT(id), STORE_INT(at), STORE_INT(running_seconds),
                                   STORE_INT(energy_wh)));
}

int store_session_set_alarm(struct store *s, int64_t id, const char *alarm)
{
    return store_update(s, sql_session_alarm, STORE_ARGS(STORE_INT(id), STORE_TEXT(alarm)));
}

int store_session_close(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        int64_t energy_wh, const char *reason)
{
    return store_update(s, sql_session_close,
                        STORE_ARGS(STORE_INT(id), STORE_INT(at), STORE_INT(running_seconds),
                                   STORE_TEXT(reason), STORE_INT(energy_wh)));
}

int store_sessions_close_interrupted(struct store *s)
{
    return store_write_count(s, sql_session_interrupted, STORE_NO_ARGS);
}

#define COL(field) STORE_COL(struct store_session, field)
static const struct store_cols session_cols = STORE_COLS(struct store_session,
    COL(id), COL(resource), COL(member_id), COL(booking_id), COL(started_at), COL(ended_at),
    COL(last_seen_at), COL(running_seconds), COL(end_reason), COL(has_energy), COL(energy_wh),
    COL(alarm));
#undef COL

STORE_ROWS_TO(sessions_row, store_session_fn)

int store_sessions_foreach(struct store *s, int64_t since, store_session_fn fn, void *userdata)
{
    return store_each(s, sql_session_list, STORE_ARGS(STORE_INT(since)), &session_cols,
                      sessions_row, STORE_ROWS(fn, userdata));
}

int store_member_sessions_foreach(struct store *s, int64_t member_id, store_session_fn fn,
                                  void *userdata)
{
    return store_each(s, sql_session_member, STORE_ARGS(STORE_INT(member_id)), &session_cols,
                      sessions_row, STORE_ROWS(fn, userdata));
}

#define OPEN_SESSIONS_MAX 64

int store_sessions_foreach_open(struct store *s, store_session_fn fn, void *userdata)
{
    struct store_session ss[OPEN_SESSIONS_MAX];

    /* Collected first: the callback closes sessions. */
    return store_collect_each(s, sql_session_open_list, STORE_ARGS(STORE_INT(OPEN_SESSIONS_MAX)),
                              &session_cols, ss, OPEN_SESSIONS_MAX, sessions_row,
                              STORE_ROWS(fn, userdata));
}

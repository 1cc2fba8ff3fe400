/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_events: the access log (append-only) and the MQTT outbox that carries it, written in
 * the same transaction. Holding the events of failed batches is store.c's (batches). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* ---- access events ---- */

static const char sql_event_add[] =
    "INSERT INTO access_events (at, resource_id, reader, member_id, card_id, card_hash, kind, "
    "granted, reason, detail) VALUES "
    "(?1, nullif(?2, 0), ?3, nullif(?4, 0), nullif(?5, 0), ?6, ?7, ?8, ?9, ?10)";
static const char sql_event_list[] =
    "SELECT * FROM (SELECT e.id, e.at, coalesce(e.resource_id, 0), "
    "coalesce(r.name, ''), e.reader, coalesce(e.member_id, 0), "
    "coalesce(e.card_id, 0), e.kind, e.granted, e.reason, e.detail "
    "FROM access_events e LEFT JOIN resources r ON r.id = e.resource_id "
    "WHERE e.at >= ?1 ORDER BY e.id DESC LIMIT ?2) ORDER BY 1";

static const char sql_event_first[] = "SELECT coalesce(min(id), 0) FROM access_events";
static const char sql_event_last[] = "SELECT coalesce(max(id), 0) FROM access_events";

/* A member's own taps (and those of its cards), oldest first: a full scan, for an export
 * made in a job process. */
static const char sql_event_member[] =
    "SELECT e.id, e.at, coalesce(e.resource_id, 0), "
    "coalesce(r.name, ''), e.reader, coalesce(e.member_id, 0), "
    "coalesce(e.card_id, 0), e.kind, e.granted, e.reason, e.detail "
    "FROM access_events e LEFT JOIN resources r ON r.id = e.resource_id "
    "WHERE e.member_id = ?1 OR e.card_id IN (SELECT id FROM cards WHERE member_id = ?1) "
    "ORDER BY e.id";

/* ---- the outbox ---- */

/* An access event as an MQTT message body: member ids, never names or card UIDs. */
static const char sql_outbox_event[] =
    "INSERT INTO outbox (kind, payload, created_at) VALUES (?1, json_object("
    "'kind', ?1, 'at', strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch'), "
    "'resource', (SELECT name FROM resources WHERE id = ?3), "
    "'reader', nullif(?4, ''), 'member_id', nullif(?5, 0), "
    "'granted', json(CASE ?6 WHEN 1 THEN 'true' ELSE 'false' END), "
    "'reason', ?7, 'detail', nullif(?8, ''), 'event_id', ?9), ?2)";
static const char sql_outbox_add[] =
    "INSERT INTO outbox (kind, payload, created_at) VALUES (?1, ?2, ?3)";
static const char sql_outbox_fetch[] =
    "SELECT seq, kind, payload FROM outbox WHERE seq > ?1 AND seq <= ?3 ORDER BY seq LIMIT ?2";
static const char sql_outbox_delete[] = "DELETE FROM outbox WHERE seq = ?1";
static const char sql_outbox_count[] = "SELECT count(*) FROM outbox";
static const char sql_outbox_drop_oldest[] =
    "DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox)";

/* Keep the outbox within its bound: the oldest message goes (and is counted). */
static int outbox_bound(struct store *s)
{
    if (++s->outbox_count <= s->outbox_max)
        return 0;
    s->outbox_dropped++;
    s->outbox_count--;
    return store_stmt_exec(store_stmt(s, sql_outbox_drop_oldest));
}

/* The event's outbox message, in the event's transaction: both are committed, or neither. */
static int outbox_event(struct store *s, const struct store_event *ev, int64_t event_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_outbox_event);
    int r;

    sqlite3_bind_text(st, 1, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ev->at);
    sqlite3_bind_int64(st, 3, ev->resource_id);
    sqlite3_bind_text(st, 4, ev->reader, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ev->member_id);
    sqlite3_bind_int(st, 6, ev->granted ? 1 : 0);
    sqlite3_bind_text(st, 7, ev->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, ev->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, event_id);
    r = store_write_insert(s, st, &s->outbox_last);
    return r < 0 ? r : outbox_bound(s);
}

int store_event_add(struct store *s, const struct store_event *ev, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int64_t event_id;
    int r = store_batch_ensure(s);

    if (r < 0) {
        store_hold_event(s, ev);
        return r;
    }
    st = store_stmt(s, sql_event_add);
    sqlite3_bind_int64(st, 1, ev->at);
    sqlite3_bind_int64(st, 2, ev->resource_id);
    sqlite3_bind_text(st, 3, ev->reader, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ev->member_id);
    sqlite3_bind_int64(st, 5, ev->card_id);
    if (ev->has_card_hash)
        sqlite3_bind_blob(st, 6, ev->card_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, ev->granted ? 1 : 0);
    sqlite3_bind_text(st, 9, ev->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, ev->detail, -1, SQLITE_STATIC);
    r = store_write_insert(s, st, &event_id);
    if (r < 0) {
        store_hold_event(s, ev);        /* like the events of a batch that fails */
        return r;
    }
    if (ret_id)
        *ret_id = event_id;
    store_batch_note_event(s, ev);
    return s->outbox_on ? outbox_event(s, ev, event_id) : 0;
}

static void event_fill(sqlite3_stmt *st, void *ret)
{
    struct store_event *ev = ret;

    ev->id = sqlite3_column_int64(st, 0);
    ev->at = sqlite3_column_int64(st, 1);
    ev->resource_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, ev->resource, sizeof(ev->resource));
    store_column_text(st, 4, ev->reader, sizeof(ev->reader));
    ev->member_id = sqlite3_column_int64(st, 5);
    ev->card_id = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, ev->kind, sizeof(ev->kind));
    ev->granted = sqlite3_column_int(st, 8) != 0;
    store_column_text(st, 9, ev->reason, sizeof(ev->reason));
    store_column_text(st, 10, ev->detail, sizeof(ev->detail));
}

STORE_ROWS_DELIVER(events_row, struct store_event, event_fill)

int store_events_foreach(struct store *s, int64_t since, int64_t limit, store_event_fn fn,
                         void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_event_list);

    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    return store_rows_each(st, events_row, STORE_ROWS(fn, userdata));
}

int64_t store_events_first_id(struct store *s)
{
    return store_row_value(store_stmt(s, sql_event_first));
}

int64_t store_events_last_id(struct store *s)
{
    return store_row_value(store_stmt(s, sql_event_last));
}

int store_member_events_foreach(struct store *s, int64_t member_id, store_event_fn fn,
                                void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_event_member);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, events_row, STORE_ROWS(fn, userdata));
}

/* ---- MQTT outbox ---- */

int64_t store_outbox_count_rows(struct store *s)
{
    return store_row_value(store_stmt(s, sql_outbox_count));
}

int store_outbox_enable(struct store *s, bool on, int64_t max)
{
    int r = 0;

    s->outbox_on = on;
    s->outbox_max = max > 0 ? max : INT64_MAX;
    s->outbox_count = store_outbox_count_rows(s);
    if (s->outbox_count < 0)
        return (int)s->outbox_count;
    /* A smaller outbox_max than before applies to what is already queued. */
    while (r == 0 && s->outbox_count > s->outbox_max) {
        r = store_batch_ensure(s);
        if (r == 0)
            r = store_stmt_exec(store_stmt(s, sql_outbox_drop_oldest));
        s->outbox_count--;
        s->outbox_dropped++;
    }
    return r;
}

int store_outbox_add(struct store *s, const char *kind, const char *payload)
{
    sqlite3_stmt *st;
    int r;

    if (!s->outbox_on)
        return 0;
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_outbox_add);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_utc());
    r = store_write_insert(s, st, &s->outbox_last);
    return r < 0 ? r : outbox_bound(s);
}

struct outbox_ctx {
    store_outbox_fn fn;
    void *userdata;
};

static int outbox_row(sqlite3_stmt *st, void *ctx)
{
    struct outbox_ctx *x = ctx;
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    const char *payload = (const char *)sqlite3_column_text(st, 2);

    return x->fn(sqlite3_column_int64(st, 0), kind ? kind : "", payload ? payload : "{}",
                 x->userdata);
}

int store_outbox_fetch(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_outbox_fetch);

    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_int64(st, 3, s->durable.outbox_seq);   /* only what is on disk leaves */
    return store_rows_each(st, outbox_row, &(struct outbox_ctx){ fn, userdata });
}

int store_outbox_delete(struct store *s, int64_t seq)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_outbox_delete);
    sqlite3_bind_int64(st, 1, seq);
    r = store_write_changed(s, st);
    if (r == 0 && s->outbox_count > 0)
        s->outbox_count--;
    return r == -ENOENT ? 0 : r;
}

int64_t store_outbox_count(struct store *s) { return s->outbox_count; }
uint64_t store_outbox_dropped(struct store *s) { return s->outbox_dropped; }

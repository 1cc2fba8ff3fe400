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
    return store_write(s, sql_outbox_drop_oldest, STORE_NO_ARGS);
}

/* The event's outbox message, in the event's transaction: both are committed, or neither. */
static int outbox_event(struct store *s, const struct store_event *ev, int64_t event_id)
{
    int r = store_insert(s, sql_outbox_event,
                         STORE_ARGS(STORE_TEXT(ev->kind), STORE_INT(ev->at),
                                    STORE_INT(ev->resource_id), STORE_TEXT(ev->reader),
                                    STORE_INT(ev->member_id), STORE_INT(ev->granted),
                                    STORE_TEXT(ev->reason), STORE_TEXT(ev->detail),
                                    STORE_INT(event_id)),
                         &s->outbox_last);

    return r < 0 ? r : outbox_bound(s);
}

int store_event_add(struct store *s, const struct store_event *ev, int64_t *ret_id)
{
    int64_t event_id;
    int r = store_insert(s, sql_event_add,
                         STORE_ARGS(STORE_INT(ev->at), STORE_INT(ev->resource_id),
                                    STORE_TEXT(ev->reader), STORE_INT(ev->member_id),
                                    STORE_INT(ev->card_id),
                                    STORE_BLOB(ev->has_card_hash ? ev->card_hash : NULL,
                                               STORE_HASH_LEN),
                                    STORE_TEXT(ev->kind), STORE_INT(ev->granted),
                                    STORE_TEXT(ev->reason), STORE_TEXT(ev->detail)),
                         &event_id);

    if (r < 0) {
        store_hold_event(s, ev);        /* like the events of a batch that fails */
        return r;
    }
    if (ret_id)
        *ret_id = event_id;
    store_batch_note_event(s, ev);
    return s->outbox_on ? outbox_event(s, ev, event_id) : 0;
}

#define COL(field) STORE_COL(struct store_event, field)
static const struct store_cols event_cols = STORE_COLS(struct store_event,
    COL(id), COL(at), COL(resource_id), COL(resource), COL(reader), COL(member_id), COL(card_id),
    COL(kind), COL(granted), COL(reason), COL(detail));
#undef COL

STORE_ROWS_TO(events_row, store_event_fn)

int store_events_foreach(struct store *s, int64_t since, int64_t limit, store_event_fn fn,
                         void *userdata)
{
    return store_each(s, sql_event_list, STORE_ARGS(STORE_INT(since),
                      STORE_INT(limit > 0 ? limit : -1)), &event_cols, events_row,
                      STORE_ROWS(fn, userdata));
}

int64_t store_events_first_id(struct store *s)
{
    return store_value(s, sql_event_first, STORE_NO_ARGS);
}

int64_t store_events_last_id(struct store *s)
{
    return store_value(s, sql_event_last, STORE_NO_ARGS);
}

int store_member_events_foreach(struct store *s, int64_t member_id, store_event_fn fn,
                                void *userdata)
{
    return store_each(s, sql_event_member, STORE_ARGS(STORE_INT(member_id)), &event_cols,
                      events_row, STORE_ROWS(fn, userdata));
}

/* ---- MQTT outbox ---- */

int64_t store_outbox_count_rows(struct store *s)
{
    return store_value(s, sql_outbox_count, STORE_NO_ARGS);
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
        r = store_write(s, sql_outbox_drop_oldest, STORE_NO_ARGS);
        s->outbox_count--;
        s->outbox_dropped++;
    }
    return r;
}

int store_outbox_add(struct store *s, const char *kind, const char *payload)
{
    int r;

    if (!s->outbox_on)
        return 0;
    r = store_insert(s, sql_outbox_add, STORE_ARGS(STORE_TEXT(kind), STORE_TEXT(payload),
                     STORE_INT(now_utc())), &s->outbox_last);
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
    /* only what is on disk leaves */
    int r = store_bind(st, STORE_ARGS(STORE_INT(after_seq), STORE_INT(n),
                                      STORE_INT(s->durable.outbox_seq)));

    return r < 0 ? r : store_rows_each(st, outbox_row, &(struct outbox_ctx){ fn, userdata });
}

int store_outbox_delete(struct store *s, int64_t seq)
{
    int r = store_update(s, sql_outbox_delete, STORE_ARGS(STORE_INT(seq)));

    if (r == 0 && s->outbox_count > 0)
        s->outbox_count--;
    return r == -ENOENT ? 0 : r;
}

int64_t store_outbox_count(struct store *s) { return s->outbox_count; }
uint64_t store_outbox_dropped(struct store *s) { return s->outbox_dropped; }

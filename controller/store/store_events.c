/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_events: the access log (append-only) and the outbox that carries it to MQTT and to
 * webhooks, written in the same transaction. Holding the events of failed batches is
 * store.c's (batches).
 *
 * The outbox's consumers. MQTT alone deletes each message the broker acknowledged. With
 * webhooks configured, a message stays until every consumer has it: each webhook keeps a
 * cursor (every message <= it delivered), and MQTT's acknowledgements move a cursor of its
 * own (acknowledgements may come out of order: those above it wait in memory). Messages
 * below every cursor are deleted. The cursors live in outbox_cursors ("mqtt",
 * "webhook:NAME"); while MQTT is off its row holds OFF, and when MQTT comes back it starts
 * after the messages written meanwhile, as it would have without webhooks. The outbox stays
 * bounded by outbox_max whoever lags: the oldest message is dropped, and counted. */
#include <errno.h>
#include <stdio.h>
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
static const char sql_outbox_delete_upto[] = "DELETE FROM outbox WHERE seq <= ?1";
static const char sql_outbox_next_after[] = "SELECT min(seq) FROM outbox WHERE seq > ?1";
static const char sql_cursor_get[] = "SELECT seq FROM outbox_cursors WHERE consumer = ?1";
static const char sql_cursor_put[] =
    "INSERT INTO outbox_cursors (consumer, seq, updated_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at";
static const char sql_cursor_min[] = "SELECT coalesce(min(seq), -1) FROM outbox_cursors";
static const char sql_cursor_list[] = "SELECT consumer FROM outbox_cursors";
static const char sql_cursor_delete[] = "DELETE FROM outbox_cursors WHERE consumer = ?1";
static const char sql_cursors_clear[] = "DELETE FROM outbox_cursors";

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

static int outbox_read(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_outbox_fetch);

    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_int64(st, 3, s->durable.outbox_seq);   /* only what is on disk leaves */
    return store_rows_each(st, outbox_row, &(struct outbox_ctx){ fn, userdata });
}

int store_outbox_fetch(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata)
{
    /* What MQTT has acknowledged (kept for a webhook) is not sent again. */
    if (s->mqtt_floor > after_seq)
        after_seq = s->mqtt_floor;
    return outbox_read(s, after_seq, n, fn, userdata);
}

int store_outbox_read(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                      void *userdata)
{
    return outbox_read(s, after_seq, n, fn, userdata);
}

int64_t store_outbox_durable_seq(const struct store *s) { return s->durable.outbox_seq; }

/* ---- the outbox's consumers ---- */

#define CURSOR_OFF INT64_MAX        /* the "mqtt" cursor while MQTT is off */

static int cursor_get(struct store *s, const char *consumer, int64_t *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_cursor_get);

    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_TRANSIENT);
    return store_row_int64(st, ret);
}

static int cursor_put(struct store *s, const char *consumer, int64_t seq)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_cursor_put);
    sqlite3_bind_text(st, 1, consumer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, now_utc());
    return store_stmt_exec(st);
}

static void webhook_consumer(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "webhook:%s", name);
}

/* Delete what every consumer has. */
static int outbox_prune(struct store *s)
{
    int64_t floor = store_row_value(store_stmt(s, sql_cursor_min));
    sqlite3_stmt *st;
    int r;

    if (floor < 0)
        return floor == -1 ? 0 : (int)floor;
    if (floor <= s->outbox_pruned)
        return 0;
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_outbox_delete_upto);
    sqlite3_bind_int64(st, 1, floor);
    r = store_stmt_exec(st);
    if (r < 0)
        return r;
    s->outbox_count -= sqlite3_changes(s->db);
    if (s->outbox_count < 0)
        s->outbox_count = 0;
    s->outbox_pruned = floor;
    return 0;
}

void store_outbox_rolled_back(struct store *s)
{
    int64_t floor;

    s->n_mqtt_acked = 0;            /* sent again later: receivers drop repeats */
    s->outbox_pruned = 0;
    if (s->mqtt_floor >= 0)
        s->mqtt_floor = cursor_get(s, "mqtt", &floor) == 0 && floor != CURSOR_OFF ? floor : 0;
}

struct consumer_names {
    const char *const *webhooks;
    unsigned n;
    char gone[16][48];
    unsigned n_gone;
};

static int consumer_seen(sqlite3_stmt *st, void *ctx)
{
    struct consumer_names *c = ctx;
    const char *name = (const char *)sqlite3_column_text(st, 0);
    char mine[48];

    if (!name || strcmp(name, "mqtt") == 0)
        return 0;
    for (unsigned i = 0; i < c->n; i++) {
        webhook_consumer(c->webhooks[i], mine, sizeof(mine));
        if (strcmp(mine, name) == 0)
            return 0;
    }
    if (c->n_gone < ARRAY_SIZE(c->gone))
        snprintf(c->gone[c->n_gone++], sizeof(c->gone[0]), "%s", name);
    return 0;
}

int store_outbox_consumers(struct store *s, bool mqtt, const char *const *webhooks, unsigned n)
{
    struct consumer_names names = { .webhooks = webhooks, .n = n };
    char consumer[48];
    int64_t seq;
    int r;

    s->outbox_mqtt = mqtt;
    s->n_mqtt_acked = 0;
    s->outbox_pruned = 0;
    r = cursor_get(s, "mqtt", &seq);
    if (r < 0 && r != -ENOENT)
        return r;
    if (n == 0) {
        /* MQTT alone deletes what the broker acknowledged. What a previous run kept for
         * webhooks goes: what MQTT had, and what was written while it was off. */
        s->outbox_cursors = false;
        s->mqtt_floor = -1;
        if (r == -ENOENT)
            return 0;
        r = store_batch_ensure(s);
        if (r == 0) {
            sqlite3_stmt *st = store_stmt(s, sql_outbox_delete_upto);
            sqlite3_bind_int64(st, 1, seq == CURSOR_OFF ? s->outbox_last : seq);
            r = store_stmt_exec(st);
        }
        if (r == 0)
            r = store_stmt_exec(store_stmt(s, sql_cursors_clear));
        if (r == 0)
            s->outbox_count = store_outbox_count_rows(s);
        return r;
    }
    s->outbox_cursors = true;
    /* Webhooks no longer configured hold nothing back any more. */
    r = store_rows_each(store_stmt(s, sql_cursor_list), consumer_seen, &names);
    for (unsigned i = 0; r >= 0 && i < names.n_gone; i++) {
        sqlite3_stmt *st;
        if ((r = store_batch_ensure(s)) < 0)
            break;
        st = store_stmt(s, sql_cursor_delete);
        sqlite3_bind_text(st, 1, names.gone[i], -1, SQLITE_TRANSIENT);
        r = store_stmt_exec(st);
    }
    if (r < 0)
        return r;
    /* A new webhook hears of what happens from now on, not of the backlog. */
    for (unsigned i = 0; i < n; i++) {
        int64_t have;
        webhook_consumer(webhooks[i], consumer, sizeof(consumer));
        r = cursor_get(s, consumer, &have);
        if (r == -ENOENT)
            r = cursor_put(s, consumer, s->outbox_last);
        if (r < 0)
            return r;
    }
    r = cursor_get(s, "mqtt", &seq);
    if (r == -ENOENT)
        seq = mqtt ? 0 : CURSOR_OFF;        /* 0: the outbox was MQTT's alone */
    else if (r < 0)
        return r;
    if (mqtt && seq == CURSOR_OFF)
        seq = s->outbox_last;               /* written while MQTT was off: not for it */
    else if (!mqtt)
        seq = CURSOR_OFF;
    if ((r = cursor_put(s, "mqtt", seq)) < 0)
        return r;
    s->mqtt_floor = mqtt ? seq : -1;
    return outbox_prune(s);
}

int store_outbox_cursor(struct store *s, const char *webhook, int64_t *ret_seq)
{
    char consumer[48];

    webhook_consumer(webhook, consumer, sizeof(consumer));
    return cursor_get(s, consumer, ret_seq);
}

int store_outbox_advance(struct store *s, const char *webhook, int64_t seq)
{
    char consumer[48];
    int r;

    webhook_consumer(webhook, consumer, sizeof(consumer));
    r = cursor_put(s, consumer, seq);
    return r < 0 ? r : outbox_prune(s);
}

/* MQTT acknowledged seq while webhooks keep messages: move its cursor over every message
 * acknowledged in order. */
static int mqtt_acked(struct store *s, int64_t seq)
{
    int64_t floor = s->mqtt_floor, next;
    bool moved = false;

    if (seq <= floor)
        return 0;
    if (s->n_mqtt_acked < ARRAY_SIZE(s->mqtt_acked))
        s->mqtt_acked[s->n_mqtt_acked++] = seq;
    /* Full (a long out-of-order run): this one is sent again after a reconnection. */
    for (;;) {
        sqlite3_stmt *st = store_stmt(s, sql_outbox_next_after);
        unsigned i;
        sqlite3_bind_int64(st, 1, floor);
        if (store_row_int64(st, &next) < 0 || next == 0)
            break;
        for (i = 0; i < s->n_mqtt_acked && s->mqtt_acked[i] != next; i++)
            ;
        if (i == s->n_mqtt_acked)
            break;
        s->mqtt_acked[i] = s->mqtt_acked[--s->n_mqtt_acked];
        floor = next;
        moved = true;
    }
    if (!moved)
        return 0;
    /* Acknowledgements of messages the bound dropped meanwhile are behind it now. */
    for (unsigned i = 0; i < s->n_mqtt_acked;)
        if (s->mqtt_acked[i] <= floor)
            s->mqtt_acked[i] = s->mqtt_acked[--s->n_mqtt_acked];
        else
            i++;
    int r = cursor_put(s, "mqtt", floor);
    if (r < 0)
        return r;
    s->mqtt_floor = floor;
    return outbox_prune(s);
}

int store_outbox_delete(struct store *s, int64_t seq)
{
    sqlite3_stmt *st;
    int r;

    if (s->outbox_cursors)
        return mqtt_acked(s, seq);
    r = store_batch_ensure(s);
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

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

static int outbox_read(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_outbox_fetch);
    /* only what is on disk leaves */
    int r = store_bind(st, STORE_ARGS(STORE_INT(after_seq), STORE_INT(n),
                                      STORE_INT(s->durable.outbox_seq)));

    return r < 0 ? r : store_rows_each(st, outbox_row, &(struct outbox_ctx){ fn, userdata });
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
    return store_get_int64(s, sql_cursor_get, STORE_ARGS(STORE_TEXT(consumer)), ret);
}

static int cursor_put(struct store *s, const char *consumer, int64_t seq)
{
    return store_write(s, sql_cursor_put,
                       STORE_ARGS(STORE_TEXT(consumer), STORE_INT(seq), STORE_INT(now_utc())));
}

static void webhook_consumer(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "webhook:%s", name);
}

/* Delete what every consumer has. */
static int outbox_prune(struct store *s)
{
    int64_t floor = store_value(s, sql_cursor_min, STORE_NO_ARGS);
    int r;

    if (floor < 0)
        return floor == -1 ? 0 : (int)floor;
    if (floor <= s->outbox_pruned)
        return 0;
    r = store_write_count(s, sql_outbox_delete_upto, STORE_ARGS(STORE_INT(floor)));
    if (r < 0)
        return r;
    s->outbox_count -= r;
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

struct consumer_row {
    char name[48];
};

struct consumer_names {
    const char *const *webhooks;
    unsigned n;
    char gone[16][48];
    unsigned n_gone;
};

static int consumer_seen(const void *row, void *ctx)
{
    const char *name = ((const struct consumer_row *)row)->name;
    struct consumer_names *c = ctx;
    char mine[48];

    if (strcmp(name, "mqtt") == 0)
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

static const struct store_cols consumer_cols =
    STORE_COLS(struct consumer_row, STORE_COL(struct consumer_row, name));

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
        r = store_write(s, sql_outbox_delete_upto,
                        STORE_ARGS(STORE_INT(seq == CURSOR_OFF ? s->outbox_last : seq)));
        if (r == 0)
            r = store_write(s, sql_cursors_clear, STORE_NO_ARGS);
        if (r == 0)
            s->outbox_count = store_outbox_count_rows(s);
        return r;
    }
    s->outbox_cursors = true;
    /* Webhooks no longer configured hold nothing back any more. */
    r = store_each(s, sql_cursor_list, STORE_NO_ARGS, &consumer_cols, consumer_seen, &names);
    for (unsigned i = 0; r >= 0 && i < names.n_gone; i++)
        r = store_write(s, sql_cursor_delete, STORE_ARGS(STORE_TEXT(names.gone[i])));
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
        unsigned i;
        if (store_get_int64(s, sql_outbox_next_after, STORE_ARGS(STORE_INT(floor)), &next) < 0 ||
            next == 0)
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
    int r;

    if (s->outbox_cursors)
        return mqtt_acked(s, seq);
    r = store_update(s, sql_outbox_delete, STORE_ARGS(STORE_INT(seq)));
    if (r == 0 && s->outbox_count > 0)
        s->outbox_count--;
    return r == -ENOENT ? 0 : r;
}

int64_t store_outbox_count(struct store *s) { return s->outbox_count; }
uint64_t store_outbox_dropped(struct store *s) { return s->outbox_dropped; }

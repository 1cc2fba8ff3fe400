/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_events.c: the access log (append-only), on real SQLite files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"

/* ---- access events ---- */

static void add_event(struct store *s, int64_t at, int64_t resource, const char *reason,
                      int64_t *ret_id)
{
    struct store_event ev = { .at = at, .resource_id = resource, .granted = false };
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    snprintf(ev.reader, sizeof(ev.reader), "front");
    snprintf(ev.detail, sizeof(ev.detail), "detail %lld", (long long)at);
    hash_of((uint8_t)at, ev.card_hash);
    ev.has_card_hash = true;
    assert_int_equal(store_event_add(s, &ev, ret_id), 0);
}

static void test_events(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct events_seen seen = { 0 };
    int64_t door = 0, ids[5];

    assert_int_equal(store_resource_ensure(s, "door", "front", "main", &door), 0);
    for (int i = 0; i < 5; i++)
        add_event(s, 1000 + i * 10, i == 2 ? 0 : door, i == 4 ? "granted" : "unknown_card",
                  &ids[i]);
    for (int i = 1; i < 5; i++)
        assert_true(ids[i] > ids[i - 1]);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_events_foreach(s, 0, 0, collect_event, &seen), 5);
    assert_int_equal(seen.ev[0].id, ids[0]);
    assert_int_equal(seen.ev[0].at, 1000);
    assert_int_equal(seen.ev[0].resource_id, door);
    assert_string_equal(seen.ev[0].resource, "front");
    assert_string_equal(seen.ev[0].reader, "front");
    assert_string_equal(seen.ev[0].kind, "tap");
    assert_string_equal(seen.ev[0].reason, "unknown_card");
    assert_string_equal(seen.ev[0].detail, "detail 1000");
    assert_false(seen.ev[0].granted);
    assert_int_equal(seen.ev[2].resource_id, 0);
    assert_string_equal(seen.ev[2].resource, "");
    assert_string_equal(seen.ev[4].reason, "granted");

    /* since: at >= since */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_events_foreach(s, 1020, 0, collect_event, &seen), 3);
    assert_int_equal(seen.ev[0].at, 1020);
    assert_int_equal(seen.ev[2].at, 1040);

    /* limit: the newest ones, oldest first */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_events_foreach(s, 0, 2, collect_event, &seen), 2);
    assert_int_equal(seen.ev[0].id, ids[3]);
    assert_int_equal(seen.ev[1].id, ids[4]);
    store_free(s);
}

static void test_events_append_only(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    sqlite3 *db;
    char *err = NULL;
    int64_t id = 0;

    add_event(s, 5000, 0, "unknown_card", &id);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(sqlite3_exec(db, "UPDATE access_events SET granted = 1, reason = 'granted'",
                                  NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    assert_non_null(err);
    assert_non_null(strstr(err, "append-only"));
    sqlite3_free(err);
    err = NULL;
    assert_int_equal(sqlite3_exec(db, "DELETE FROM access_events", NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    assert_non_null(err);
    assert_non_null(strstr(err, "append-only"));
    sqlite3_free(err);
    /* the row is still there, unchanged */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events WHERE granted = 0 AND "
                                 "reason = 'unknown_card' AND at = 5000"),
                     1);
    sqlite3_close(db);
}

/* ---- the outbox and its consumers ---- */

struct seqs {
    unsigned n;
    int64_t seq[64];
};

static int collect_seq(int64_t seq, const char *kind, const char *payload, void *userdata)
{
    struct seqs *x = userdata;
    if (x->n < N_ELEMS(x->seq))
        x->seq[x->n++] = seq;
    return 0;
}

static int64_t outbox_rows(const char *path)
{
    sqlite3 *db = raw_open(path);
    int64_t n = raw_int(db, "SELECT count(*) FROM outbox");
    sqlite3_close(db);
    return n;
}

/* n messages, committed (and so durable: this store syncs at each commit). */
static void outbox_put(struct store *s, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(store_outbox_add(s, "door", "{\"x\":1}"), 0);
    assert_int_equal(store_commit(s), 0);
}

static struct seqs mqtt_fetch(struct store *s, int64_t after)
{
    struct seqs x = { 0 };
    assert_true(store_outbox_fetch(s, after, 64, collect_seq, &x) >= 0);
    return x;
}

static void test_outbox_mqtt_alone_deletes_on_ack(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct seqs x;

    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, true, NULL, 0), 0);
    outbox_put(s, 3);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(store_outbox_delete(s, x.seq[1]), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 2);
    store_free(s);
}

static void test_outbox_kept_until_every_consumer_has_it(void **state)
{
    struct fixture *f = *state;
    const char *hooks[] = { "crm", "chat" };
    struct store *s = open_ok(f->path);
    struct seqs x;
    int64_t cur = -1;

    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    outbox_put(s, 2);                      /* before the webhooks: theirs is what follows */
    assert_int_equal(store_outbox_consumers(s, true, hooks, 2), 0);
    assert_int_equal(store_outbox_cursor(s, "crm", &cur), 0);
    assert_int_equal(cur, 2);
    assert_int_equal(store_outbox_cursor(s, "other", &cur), -ENOENT);
    outbox_put(s, 4);                      /* 3..6 */

    /* MQTT acknowledges out of order: what no webhook needed (1, 2) leaves; what it has is
     * not sent to it again. */
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 6);
    assert_int_equal(store_outbox_delete(s, 2), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 6);
    assert_int_equal(store_outbox_delete(s, 1), 0);
    assert_int_equal(store_outbox_delete(s, 4), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 4);
    x = mqtt_fetch(s, 0);                  /* after a reconnection: from its cursor */
    assert_int_equal(x.n, 4);
    assert_int_equal(x.seq[0], 3);

    /* Both webhooks read everything after their cursor. */
    memset(&x, 0, sizeof(x));
    assert_true(store_outbox_read(s, 2, 64, collect_seq, &x) >= 0);
    assert_int_equal(x.n, 4);

    /* Rows below every cursor go: MQTT has 1..2 (4 waits for 3), crm 1..5, chat 1..3. */
    assert_int_equal(store_outbox_advance(s, "crm", 5), 0);
    assert_int_equal(store_outbox_advance(s, "chat", 3), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 4);         /* 3..6 */
    assert_int_equal(store_outbox_delete(s, 3), 0);    /* MQTT now has 1..4 */
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 3);         /* chat holds 4..6 */
    assert_int_equal(store_outbox_count(s), 3);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.seq[0], 5);
    store_free(s);

    /* Across a restart: the cursors are in the database. */
    s = open_ok(f->path);
    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, true, hooks, 2), 0);
    assert_int_equal(store_outbox_cursor(s, "chat", &cur), 0);
    assert_int_equal(cur, 3);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.seq[0], 5);

    /* A webhook taken out of the configuration holds nothing back any more. */
    assert_int_equal(store_outbox_consumers(s, true, hooks, 1), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_outbox_cursor(s, "chat", &cur), -ENOENT);
    assert_int_equal(outbox_rows(f->path), 2);         /* 5, 6: MQTT's */
    store_free(s);
}

static void test_outbox_mqtt_off_then_on(void **state)
{
    struct fixture *f = *state;
    const char *hooks[] = { "crm" };
    struct store *s = open_ok(f->path);
    struct seqs x;

    /* Webhooks alone: what they deliver leaves. */
    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, false, hooks, 1), 0);
    outbox_put(s, 3);
    assert_int_equal(store_outbox_advance(s, "crm", 2), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(outbox_rows(f->path), 1);
    store_free(s);

    /* MQTT comes back: it is not sent what was written while it was off. */
    s = open_ok(f->path);
    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, true, hooks, 1), 0);
    assert_int_equal(store_commit(s), 0);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 0);
    outbox_put(s, 1);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.seq[0], 4);
    store_free(s);

    /* And without webhooks again, MQTT alone: what it had, and what was not its, goes. */
    s = open_ok(f->path);
    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, true, NULL, 0), 0);
    assert_int_equal(store_commit(s), 0);
    x = mqtt_fetch(s, 0);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.seq[0], 4);
    assert_int_equal(outbox_rows(f->path), 1);
    store_free(s);
}

static void test_outbox_bound_applies_to_kept_messages(void **state)
{
    struct fixture *f = *state;
    const char *hooks[] = { "crm" };
    struct store *s = open_ok(f->path);
    struct seqs x = { 0 };

    assert_int_equal(store_outbox_enable(s, true, 100), 0);
    assert_int_equal(store_outbox_consumers(s, false, hooks, 1), 0);
    outbox_put(s, 105);
    assert_int_equal(outbox_rows(f->path), 100);
    assert_int_equal(store_outbox_dropped(s), 5);
    /* The webhook goes on after the gap. */
    assert_true(store_outbox_read(s, 0, 1, collect_seq, &x) >= 0);
    assert_int_equal(x.seq[0], 6);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_events),
        STORE_TEST(test_events_append_only),
        STORE_TEST(test_outbox_mqtt_alone_deletes_on_ack),
        STORE_TEST(test_outbox_kept_until_every_consumer_has_it),
        STORE_TEST(test_outbox_mqtt_off_then_on),
        STORE_TEST(test_outbox_bound_applies_to_kept_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

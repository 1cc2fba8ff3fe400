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

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_events),
        STORE_TEST(test_events_append_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

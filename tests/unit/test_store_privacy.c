/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_privacy.c and the member parts of store_members.c: states, listing with filters and
 * pages, history, waiting plan changes, removal, erasure, retention steps, and the access
 * log's triggers after migration 11 — on real SQLite files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fixture.h"

#define NOW 1800000000

static int64_t add_member(struct store *s, const char *name, int64_t plan, int64_t from,
                          int64_t until)
{
    int64_t id = 0;
    assert_int_equal(store_member_add(s, name, "", plan, from, until, &id), 0);
    return id;
}

static void add_tap(struct store *s, int64_t at, int64_t member, int64_t card, uint8_t seed)
{
    struct store_event ev = { .at = at, .member_id = member, .card_id = card, .granted = true };

    hash_of(seed, ev.card_hash);
    ev.has_card_hash = true;
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reason, sizeof(ev.reason), "granted");
    assert_int_equal(store_event_add(s, &ev, NULL), 0);
}

static int collect(const struct store_member *m, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8)
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", m->name);
    c->n++;
    return 0;
}

static void test_states_and_the_listing(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct names seen = { 0 };
    struct store_member_query q = { .now = NOW, .expiring_seconds = 30 * 86400, .filter =
                                    MEMBER_FILTER_ALL };
    int64_t total = -1, card;
    uint8_t h[STORE_HASH_LEN];
    int64_t a = add_member(s, "Ann", 0, 0, 0);
    int64_t b = add_member(s, "bob", 0, 0, NOW - 1);            /* expired */
    int64_t c = add_member(s, "Cid", 0, 0, NOW + 86400);        /* expiring */
    int64_t d = add_member(s, "Dee_%", 0, NOW + 86400, 0);      /* not yet valid */

    assert_int_equal(store_member_set_status(s, c, MEMBER_SUSPENDED), 0);
    assert_int_equal(store_member_get(s, a, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_ACTIVE);
    assert_int_equal(store_member_get(s, b, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_EXPIRED);
    assert_int_equal(store_member_state(&m, NOW - 2), MEMBER_STATE_ACTIVE);
    assert_int_equal(store_member_get(s, c, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_SUSPENDED);
    assert_int_equal(store_member_get(s, d, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_NOT_YET_VALID);
    assert_string_equal(store_member_state_name(MEMBER_STATE_NOT_YET_VALID), "not_yet_valid");

    /* By name without case; a page; the total. */
    q.limit = 2;
    q.offset = 1;
    assert_int_equal(store_members_query(s, &q, collect, &seen, &total), 2);
    assert_int_equal(total, 4);
    assert_string_equal(seen.name[0], "bob");
    assert_string_equal(seen.name[1], "Cid");
    /* Filters. */
    q.limit = q.offset = 0;
    for (int filter = MEMBER_FILTER_ACTIVE; filter <= MEMBER_FILTER_EXPIRING; filter++) {
        static const char *const want[] = { NULL, "Ann", "Cid", "bob", "" };
        memset(&seen, 0, sizeof(seen));
        q.filter = filter;
        int n = store_members_query(s, &q, collect, &seen, &total);
        assert_int_equal(n, seen.n);
        if (*want[filter]) {
            assert_int_equal(total, 1);
            assert_string_equal(seen.name[0], want[filter]);
        } else {
            assert_int_equal(total, 0);     /* Cid expires soon, but is suspended */
        }
    }
    /* Search: the pattern characters are literal; card labels count. */
    q.filter = MEMBER_FILTER_ALL;
    memset(&seen, 0, sizeof(seen));
    q.text = "_%";
    assert_int_equal(store_members_query(s, &q, collect, &seen, &total), 1);
    assert_string_equal(seen.name[0], "Dee_%");
    hash_of(9, h);
    assert_int_equal(store_card_add(s, a, h, "Red Fob", &card), 0);
    memset(&seen, 0, sizeof(seen));
    q.text = "red f";
    assert_int_equal(store_members_query(s, &q, collect, &seen, NULL), 1);
    assert_string_equal(seen.name[0], "Ann");
    store_free(s);
}

static int collect_change(const struct store_member_change *c, void *userdata)
{
    struct names *n = userdata;
    if (n->n < 8)
        snprintf(n->name[n->n], sizeof(n->name[0]), "%.15s:%.20s>%.20s:%.20s", c->field, c->old,
                 c->new, c->by);
    n->n++;
    return 0;
}

static void test_update_history_and_waiting_plan_changes(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct names seen = { 0 };
    int64_t basic, pro, id;

    assert_int_equal(store_plan_add(s, "basic", "*", "always", &basic), 0);
    assert_int_equal(store_plan_add(s, "pro", "*", "always", &pro), 0);
    id = add_member(s, "Ann", basic, 0, 0);
    assert_int_equal(store_member_get(s, id, &m), 0);
    snprintf(m.note, sizeof(m.note), "pays yearly");
    m.next_plan_id = pro;
    m.next_plan_at = NOW;
    assert_int_equal(store_member_update(s, &m), 0);
    assert_int_equal(store_member_get(s, id, &m), 0);
    assert_string_equal(m.note, "pays yearly");
    assert_string_equal(m.next_plan, "pro");
    /* Not yet: nothing; then applied once, recorded by "schedule". */
    assert_int_equal(store_member_plan_changes_apply(s, NOW - 1, NULL, NULL), 0);
    assert_int_equal(store_member_plan_changes_apply(s, NOW, NULL, NULL), 1);
    assert_int_equal(store_member_plan_changes_apply(s, NOW + 60, NULL, NULL), 0);
    assert_int_equal(store_member_get(s, id, &m), 0);
    assert_int_equal(m.plan_id, pro);
    assert_int_equal(m.next_plan_id, 0);
    assert_int_equal(store_member_changes_foreach(s, id, 0, collect_change, &seen), 1);
    assert_string_equal(seen.name[0], "plan:basic>pro:schedule");
    /* A plan that does not exist is refused by the foreign key. */
    m.plan_id = 999;
    assert_int_not_equal(store_member_update(s, &m), 0);
    m.id = 999;
    m.plan_id = 0;
    assert_int_equal(store_member_update(s, &m), -ENOENT);
    store_free(s);
}

static void test_removal_and_erasure(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct store_subject subj;
    uint8_t h[STORE_HASH_LEN], other[STORE_HASH_LEN];
    int64_t ann, bob, card, account, pending[4];
    char first[11];
    sqlite3 *db;

    ann = add_member(s, "Ann", 0, 0, 0);
    bob = add_member(s, "Bob", 0, 0, 0);
    hash_of(1, h);
    hash_of(2, other);
    assert_int_equal(store_card_add(s, ann, h, "Ann's phone", &card), 0);
    assert_int_equal(store_card_add(s, bob, other, "", NULL), 0);
    assert_int_equal(store_account_add(s, "ann", "member", ann, "test", &account), 0);
    assert_int_equal(store_account_add(s, "boss", "manager", 0, "web:ann", NULL), 0);
    assert_int_equal(store_member_change_add(s, ann, NOW, "t", "email", "a@x.org", "b@x.org"), 0);
    add_tap(s, NOW - 10, ann, card, 1);
    add_tap(s, NOW - 9, 0, 0, 1);           /* her card, unknown at the time */
    add_tap(s, NOW - 8, bob, 2, 2);
    assert_int_equal(store_member_open_usage(s, ann, first), 0);
    assert_string_equal(first, "");

    assert_int_equal(store_member_remove(s, ann, NOW, "test"), 0);
    assert_int_equal(store_member_get(s, ann, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_REMOVED);
    assert_int_equal(m.valid_until, NOW);
    assert_int_equal(store_subject_lookup(s, h, &subj), 0);
    assert_false(subj.card_enabled);
    assert_int_equal(subj.status, MEMBER_SUSPENDED);     /* whatever a card says */
    assert_int_equal(store_member_remove(s, 999, NOW, "test"), -ENOENT);

    assert_int_equal(store_member_erase(s, ann, "erased-00c0ffee", NOW), 0);
    assert_int_equal(store_erasures_pending(s, pending, 4), 1);
    assert_int_equal(pending[0], ann);
    assert_int_equal(store_erase_scrub_step(s, ann, 0, 1000), 2);
    assert_int_equal(store_erase_scrub_step(s, ann, 0, 1000), 0);
    assert_int_equal(store_member_forget_cards(s, ann), 1);
    assert_int_equal(store_erasures_pending(s, pending, 4), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_member_get(s, ann, &m), 0);
    assert_int_equal(store_member_state(&m, NOW), MEMBER_STATE_ERASED);
    assert_string_equal(m.name, "erased-00c0ffee");
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM accounts WHERE member_id IS NOT NULL"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM accounts WHERE created_by = "
                                 "'web:erased-00c0ffee'"), 1);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM member_changes WHERE field = 'email'"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events WHERE card_hash IS NULL"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events"), 3);    /* kept */
    assert_int_equal(raw_int(db, "SELECT count(*) FROM cards"), 1);           /* Bob's */
    sqlite3_close(db);
}

static void test_retention_steps_and_the_access_log_triggers(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    int64_t cursor = 0, total = 0;
    bool more = true;
    sqlite3 *db;
    char *err = NULL;
    int n, steps = 0;

    for (int i = 0; i < 1000; i++)
        add_tap(s, 1000 + i, 0, 0, (uint8_t)i);
    assert_int_equal(store_commit(s), 0);
    /* Before any retention horizon, the access log refuses deletes. */
    db = raw_open(f->path);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM access_events WHERE id = 1", NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    assert_non_null(strstr(err, "append-only"));
    sqlite3_free(err);
    err = NULL;
    /* Only a card hash may be erased. */
    assert_int_equal(sqlite3_exec(db, "UPDATE access_events SET card_hash = NULL WHERE id = 1",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE access_events SET card_hash = NULL, granted = 0 "
                                      "WHERE id = 2", NULL, NULL, &err), SQLITE_CONSTRAINT);
    sqlite3_free(err);
    err = NULL;
    sqlite3_close(db);

    /* Rows before 1600 go, 100 at a time, and the walk stops at the newer ones. */
    while (more) {
        n = store_retention_step(s, RETENTION_ACCESS_EVENTS, 1600, 100, &cursor, &more);
        assert_true(n >= 0);
        total += n;
        steps++;
    }
    assert_int_equal(total, 600);
    assert_true(steps <= 8);
    assert_int_equal(store_commit(s), 0);
    store_free(s);

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM access_events"), 400);
    assert_int_equal(raw_int(db, "SELECT min(at) FROM access_events"), 1600);
    /* The horizon lets nothing newer go. */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM access_events WHERE at = 1700", NULL, NULL, &err),
                     SQLITE_CONSTRAINT);
    sqlite3_free(err);
    /* A new file gives space back incrementally. */
    assert_int_equal(raw_int(db, "PRAGMA auto_vacuum"), 2);
    sqlite3_close(db);

    s = open_ok(f->path);
    assert_int_equal(store_auto_vacuum(s), 2);
    assert_true(store_free_pages(s) > 0);
    while (store_free_pages(s) > 0)
        assert_true(store_vacuum_step(s, 16) >= 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_free_pages(s), 0);
    store_free(s);
}

static void test_idle_member_accounts_go(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_account a;
    uint8_t h[STORE_HASH_LEN];
    int64_t ann = add_member(s, "Ann", 0, 0, 0), old, used, boss;

    assert_int_equal(store_account_add(s, "old", "member", ann, "t", &old), 0);
    assert_int_equal(store_account_add(s, "used", "member", ann, "t", &used), 0);
    assert_int_equal(store_account_add(s, "boss", "manager", 0, "t", &boss), 0);
    hash_of(3, h);
    /* A login is activity. */
    assert_int_equal(store_websession_add(s, h, used, "csrf", INT64_MAX / 2, INT64_MAX / 2 + 1), 0);
    assert_int_equal(store_account_get(s, used, &a), 0);
    assert_int_equal(a.last_login_at, INT64_MAX / 2);
    assert_int_equal(store_accounts_prune_inactive(s, INT64_MAX / 4), 1);
    assert_int_equal(store_account_get(s, old, &a), -ENOENT);
    assert_int_equal(store_account_get(s, used, &a), 0);
    assert_int_equal(store_account_get(s, boss, &a), 0);     /* staff accounts stay */
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_states_and_the_listing),
        STORE_TEST(test_update_history_and_waiting_plan_changes),
        STORE_TEST(test_removal_and_erasure),
        STORE_TEST(test_retention_steps_and_the_access_log_triggers),
        STORE_TEST(test_idle_member_accounts_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_members.c: plans, members, cards and the subject of a card, on real SQLite files. */
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

/* ---- plans ---- */

static int collect_plan(const struct store_plan *p, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8) {
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", p->name);
        c->count[c->n] = p->members;
    }
    c->n++;
    return c->stop_after && (int)c->n >= c->stop_after ? -ECANCELED : 0;
}

static void test_plans(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_plan p;
    struct names seen = { 0 };
    int64_t basic = 0, again = -1, night = 0;

    assert_int_equal(store_plan_add(s, "basic", "main", "Mon-Fri 08:00-20:00", &basic), 0);
    assert_true(basic > 0);
    assert_int_equal(store_plan_add(s, "night", "*", "daily 20:00-06:00", &night), 0);
    assert_int_equal(store_plan_add(s, "basic", "other", "always", &again), -EEXIST);
    assert_int_equal(again, -1);

    assert_int_equal(store_plan_find(s, "basic", &p), 0);
    assert_int_equal(p.id, basic);
    assert_string_equal(p.name, "basic");
    assert_string_equal(p.zones, "main");
    assert_string_equal(p.hours, "Mon-Fri 08:00-20:00");
    assert_int_equal(p.members, 0);
    assert_int_equal(store_plan_find(s, "Basic", &p), -ENOENT);
    assert_int_equal(store_plan_find(s, "none", &p), -ENOENT);

    assert_int_equal(store_member_add(s, "A", NULL, night, 0, 0, NULL), 0);
    assert_int_equal(store_member_add(s, "B", NULL, night, 0, 0, NULL), 0);
    assert_int_equal(store_plans_foreach(s, collect_plan, &seen), 2);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.name[0], "basic");     /* by name */
    assert_string_equal(seen.name[1], "night");
    assert_int_equal(seen.count[0], 0);
    assert_int_equal(seen.count[1], 2);

    /* a callback error stops the walk and is returned */
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 1;
    assert_int_equal(store_plans_foreach(s, collect_plan, &seen), -ECANCELED);
    assert_int_equal(seen.n, 1);
    store_free(s);
}

/* ---- members ---- */

static int collect_member(const struct store_member *m, void *userdata)
{
    struct names *c = userdata;
    if (c->n < 8) {
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", m->name);
        c->count[c->n] = m->cards;
    }
    c->n++;
    return 0;
}

static void test_members(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct names seen = { 0 };
    int64_t plan = 0, ada = 0, bob = 0, bob2 = 0, id = -1, none = -1;

    assert_int_equal(store_plan_add(s, "basic", "*", "always", &plan), 0);
    assert_int_equal(store_member_add(s, "Ada Lovelace", "ada@example.org", plan, 1000, 2000,
                                      &ada),
                     0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_member_add(s, "Bob", "bob2@example.org", 0, 0, 0, &bob2), 0);
    assert_int_equal(store_member_add(s, "Eve", NULL, 9999, 0, 0, &none), -ENOENT);
    assert_int_equal(none, -1);
    assert_int_equal(store_member_count(s), 3);

    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.id, ada);
    assert_string_equal(m.name, "Ada Lovelace");
    assert_string_equal(m.email, "ada@example.org");
    assert_int_equal(m.plan_id, plan);
    assert_string_equal(m.plan, "basic");
    assert_int_equal(m.status, MEMBER_ACTIVE);
    assert_int_equal(m.valid_from, 1000);
    assert_int_equal(m.valid_until, 2000);
    assert_true(m.created_at > 1700000000);
    assert_int_equal(m.cards, 0);
    assert_int_equal(store_member_get(s, bob, &m), 0);
    assert_int_equal(m.plan_id, 0);
    assert_string_equal(m.plan, "");
    assert_string_equal(m.email, "");
    assert_int_equal(store_member_get(s, 424242, &m), -ENOENT);

    assert_int_equal(store_member_set_status(s, ada, MEMBER_SUSPENDED), 0);
    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.status, MEMBER_SUSPENDED);
    assert_int_equal(store_member_set_status(s, ada, MEMBER_ACTIVE), 0);
    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.status, MEMBER_ACTIVE);
    assert_int_equal(store_member_set_status(s, 424242, MEMBER_SUSPENDED), -ENOENT);

    /* resolve: by id, by exact name, ambiguous name, unknown */
    {
        char ref[32];
        snprintf(ref, sizeof(ref), "%lld", (long long)bob2);
        assert_int_equal(store_member_resolve(s, ref, &id), 0);
        assert_int_equal(id, bob2);
    }
    id = -1;
    assert_int_equal(store_member_resolve(s, "Ada Lovelace", &id), 0);
    assert_int_equal(id, ada);
    id = -1;
    assert_int_equal(store_member_resolve(s, "Bob", &id), -ENOTUNIQ);
    assert_int_equal(id, -1);
    assert_int_equal(store_member_resolve(s, "ada lovelace", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "Ada", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "424242", &id), -ENOENT);
    assert_int_equal(store_member_resolve(s, "", &id), -ENOENT);
    assert_int_equal(id, -1);

    assert_int_equal(store_members_foreach(s, collect_member, &seen), 3);
    assert_string_equal(seen.name[0], "Ada Lovelace");      /* by id */
    assert_string_equal(seen.name[1], "Bob");
    assert_string_equal(seen.name[2], "Bob");
    store_free(s);
}

/* ---- cards ---- */

struct cards_seen {
    unsigned n;
    struct store_card c[8];
};

static int collect_card(const struct store_card *c, void *userdata)
{
    struct cards_seen *seen = userdata;
    if (seen->n < 8)
        seen->c[seen->n] = *c;
    seen->n++;
    return 0;
}

static void test_cards(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_member m;
    struct cards_seen seen = { 0 };
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN];
    int64_t ada = 0, bob = 0, c1 = 0, c2 = 0, id = -1;

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    h1[0] = 0xab;
    h1[7] = 0x0f;
    assert_int_equal(store_member_add(s, "Ada", NULL, 0, 0, 0, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_card_add(s, ada, h1, "blue fob", &c1), 0);
    assert_int_equal(store_card_add(s, ada, h2, NULL, &c2), 0);
    assert_true(c1 > 0 && c2 > c1);
    /* a card is enrolled once, to anyone */
    assert_int_equal(store_card_add(s, bob, h1, "stolen", &id), -EEXIST);
    assert_int_equal(store_card_add(s, ada, h1, "again", &id), -EEXIST);
    assert_int_equal(store_card_add(s, 424242, h3, "nobody", &id), -ENOENT);
    assert_int_equal(id, -1);
    assert_int_equal(store_card_count(s), 2);

    assert_int_equal(store_card_find(s, h1, &id), 0);
    assert_int_equal(id, c1);
    assert_int_equal(store_card_find(s, h2, &id), 0);
    assert_int_equal(id, c2);
    assert_int_equal(store_card_find(s, h3, &id), -ENOENT);

    assert_int_equal(store_member_get(s, ada, &m), 0);
    assert_int_equal(m.cards, 2);

    assert_int_equal(store_cards_foreach(s, 0, collect_card, &seen), 2);
    assert_int_equal(seen.c[0].id, c1);
    assert_int_equal(seen.c[0].member_id, ada);
    assert_string_equal(seen.c[0].member, "Ada");
    assert_string_equal(seen.c[0].label, "blue fob");
    assert_true(seen.c[0].enabled);
    {
        char want[17];
        for (int i = 0; i < 8; i++)
            snprintf(want + 2 * i, 3, "%02X", h1[i]);
        assert_string_equal(seen.c[0].hash_prefix, want);
    }
    assert_string_equal(seen.c[1].label, "");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_cards_foreach(s, bob, collect_card, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_cards_foreach(s, ada, collect_card, &seen), 2);

    assert_int_equal(store_card_remove(s, c1), 0);
    assert_int_equal(store_card_remove(s, c1), -ENOENT);
    assert_int_equal(store_card_find(s, h1, &id), -ENOENT);
    assert_int_equal(store_card_count(s), 1);
    /* once removed, the card can be enrolled again (to someone else) */
    assert_int_equal(store_card_add(s, bob, h1, "reissued", &id), 0);
    assert_int_equal(store_commit(s), 0);
    store_free(s);
}

static void test_subject_lookup(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN];
    int64_t plan = 0, ada = 0, bob = 0, c1 = 0, c2 = 0;
    sqlite3 *db;
    char sql[128];

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    assert_int_equal(store_plan_add(s, "fablab", "main,fablab", "Sat 10:00-13:00", &plan), 0);
    assert_int_equal(store_member_add(s, "Ada", NULL, plan, 100, 200, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_card_add(s, ada, h1, NULL, &c1), 0);
    assert_int_equal(store_card_add(s, bob, h2, NULL, &c2), 0);
    assert_int_equal(store_member_set_status(s, bob, MEMBER_SUSPENDED), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_int_equal(subj.card_id, c1);
    assert_true(subj.card_enabled);
    assert_int_equal(subj.member_id, ada);
    assert_int_equal(subj.status, MEMBER_ACTIVE);
    assert_int_equal(subj.valid_from, 100);
    assert_int_equal(subj.valid_until, 200);
    assert_int_equal(subj.plan_id, plan);
    assert_string_equal(subj.zones, "main,fablab");
    assert_string_equal(subj.hours, "Sat 10:00-13:00");

    /* no plan: plan_id 0 and hours that grant nothing */
    assert_int_equal(store_subject_lookup(s, h2, &subj), 0);
    assert_int_equal(subj.card_id, c2);
    assert_int_equal(subj.member_id, bob);
    assert_int_equal(subj.status, MEMBER_SUSPENDED);
    assert_int_equal(subj.plan_id, 0);
    assert_string_equal(subj.hours, "never");

    assert_int_equal(store_subject_lookup(s, h3, &subj), -ENOENT);

    /* a card disabled in the database reads as disabled */
    db = raw_open(f->path);
    snprintf(sql, sizeof(sql), "UPDATE cards SET enabled = 0 WHERE id = %lld", (long long)c1);
    raw_exec(db, sql);
    sqlite3_close(db);
    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_false(subj.card_enabled);
    store_free(s);
}

/* DESFire cards: the flag reads back in the subject and the listing, and the migration
 * report lists exactly the enabled UID-only cards of active members, with their last tap. */
static int collect_uid_only(const struct store_uid_only_card *c, void *userdata)
{
    struct store_uid_only_card *out = userdata;
    unsigned *n = (unsigned *)&out[8];

    if (*n < 8)
        out[*n] = *c;
    (*n)++;
    return 0;
}

static int card_desfire_of(const struct store_card *c, void *userdata)
{
    if (c->desfire)
        (*(int *)userdata)++;
    return 0;
}

static void test_desfire_cards(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_subject subj;
    struct store_event ev = { .at = 5000, .granted = true };
    struct {
        struct store_uid_only_card c[8];
        unsigned n;
    } seen = { .n = 0 };
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN], h3[STORE_HASH_LEN], h4[STORE_HASH_LEN];
    int64_t ada = 0, bob = 0, cleo = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0;
    int desfire = 0;

    hash_of(1, h1);
    hash_of(2, h2);
    hash_of(3, h3);
    hash_of(4, h4);
    assert_int_equal(store_member_add(s, "Ada", NULL, 0, 0, 0, &ada), 0);
    assert_int_equal(store_member_add(s, "Bob", NULL, 0, 0, 0, &bob), 0);
    assert_int_equal(store_member_add(s, "Cleo", NULL, 0, 0, 0, &cleo), 0);
    assert_int_equal(store_card_add(s, ada, h1, "fob", &c1), 0);
    assert_int_equal(store_card_add(s, ada, h2, "badge", &c2), 0);
    assert_int_equal(store_card_add(s, bob, h3, NULL, &c3), 0);
    assert_int_equal(store_card_add(s, cleo, h4, NULL, &c4), 0);
    assert_int_equal(store_card_set_desfire(s, c2, true), 0);
    assert_int_equal(store_card_set_desfire(s, 999, true), -ENOENT);
    assert_int_equal(store_member_set_status(s, cleo, MEMBER_SUSPENDED), 0);
    ev.card_id = c1;
    snprintf(ev.kind, sizeof(ev.kind), "tap");
    snprintf(ev.reason, sizeof(ev.reason), "granted");
    assert_int_equal(store_event_add(s, &ev, NULL), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_subject_lookup(s, h2, &subj), 0);
    assert_true(subj.card_desfire);
    assert_int_equal(store_subject_lookup(s, h1, &subj), 0);
    assert_false(subj.card_desfire);
    assert_true(store_cards_foreach(s, 0, card_desfire_of, &desfire) >= 0);
    assert_int_equal(desfire, 1);

    /* Ada's fob (used at 5000) and Bob's card; not Ada's DESFire badge, not suspended Cleo. */
    assert_true(store_uid_only_cards_foreach(s, 0, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.c[0].card_id, c1);
    assert_string_equal(seen.c[0].member, "Ada");
    assert_string_equal(seen.c[0].label, "fob");
    assert_int_equal(seen.c[0].last_used, 5000);
    assert_int_equal(seen.c[1].card_id, c3);
    assert_int_equal(seen.c[1].last_used, 0);
    /* The page's: the first enrolled, as many as asked, through their own index. */
    seen.n = 0;
    assert_true(store_uid_only_cards_foreach(s, 1, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.c[0].card_id, c1);
    seen.n = 0;
    assert_true(store_uid_only_cards_foreach(s, 100, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.c[1].card_id, c3);

    /* Provisioned: off the report. */
    assert_int_equal(store_card_set_desfire(s, c1, true), 0);
    assert_int_equal(store_card_set_desfire(s, c3, true), 0);
    assert_int_equal(store_commit(s), 0);
    seen.n = 0;
    assert_true(store_uid_only_cards_foreach(s, 0, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 0);
    assert_true(store_uid_only_cards_foreach(s, 100, collect_uid_only, &seen) >= 0);
    assert_int_equal(seen.n, 0);
    (void)c4;
    store_free(s);
}

/* ---- counters: what the status reads without counting rows ---- */

static void test_counters_follow_every_writer(void **state)
{
    /* A database of the previous version, with rows: the migration counts them once; then
     * the triggers keep the counts whoever writes — the store, or another connection (a
     * job, benchgen, an operator with sqlite3). */
    struct fixture *f = *state;
    struct store *s;
    sqlite3 *db;
    uint8_t h[STORE_HASH_LEN];
    int64_t ada = 0, card = 0, in = 0, since = 0;

    assert_int_equal(store_create_at_version(f->path, STORE_SCHEMA_VERSION - 1), 0);
    db = raw_open(f->path);
    raw_exec(db, "INSERT INTO members (name, created_at) VALUES ('A', 1), ('B', 1), ('C', 1);"
                 "INSERT INTO cards (member_id, uid_hash, created_at) VALUES "
                 "(1, zeroblob(32), 1), (2, randomblob(32), 1);"
                 "INSERT INTO presence (member_id, check_in_at) VALUES (1, 10), (2, 10);"
                 "INSERT INTO presence (member_id, check_in_at, check_out_at) VALUES (3, 5, 6);");
    sqlite3_close(db);

    s = open_ok(f->path);
    assert_int_equal(store_member_count(s), 3);
    assert_int_equal(store_card_count(s), 2);
    assert_int_equal(store_present_count(s), 2);

    hash_of(9, h);
    assert_int_equal(store_member_add(s, "Ada", NULL, 0, 0, 0, &ada), 0);
    assert_int_equal(store_card_add(s, ada, h, NULL, &card), 0);
    assert_int_equal(store_presence_open(s, ada, 0, 100), 0);
    assert_int_equal(store_member_count(s), 4);
    assert_int_equal(store_card_count(s), 3);
    assert_int_equal(store_present_count(s), 3);
    assert_int_equal(store_presence_find(s, ada, &in, &since), 0);
    assert_int_equal(store_presence_close(s, in, 200, "exit"), 0);
    assert_int_equal(store_presence_close(s, in, 300, "exit"), -ENOENT);   /* counted once */
    assert_int_equal(store_card_remove(s, card), 0);
    assert_int_equal(store_present_count(s), 2);
    assert_int_equal(store_card_count(s), 2);
    /* a step undone takes its counts with it */
    assert_int_equal(store_step_begin(s), 0);
    assert_int_equal(store_member_add(s, "Gone", NULL, 0, 0, 0, NULL), 0);
    assert_int_equal(store_member_count(s), 5);
    assert_int_equal(store_step_end(s, false), 0);
    assert_int_equal(store_member_count(s), 4);
    assert_int_equal(store_commit(s), 0);

    db = raw_open(f->path);
    raw_exec(db, "DELETE FROM cards WHERE member_id = 2;"
                 "UPDATE presence SET check_out_at = 50 WHERE member_id = 1;"
                 "UPDATE presence SET check_out_at = 0 WHERE member_id = 3;"
                 "DELETE FROM presence WHERE member_id = 2;"
                 "INSERT INTO members (name, created_at) VALUES ('D', 1);");
    assert_int_equal(store_member_count(s), raw_int(db, "SELECT count(*) FROM members"));
    assert_int_equal(store_card_count(s), raw_int(db, "SELECT count(*) FROM cards"));
    assert_int_equal(store_present_count(s),
                     raw_int(db, "SELECT count(*) FROM presence WHERE check_out_at = 0"));
    assert_int_equal(store_present_count(s), 1);
    sqlite3_close(db);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_plans),
        STORE_TEST(test_members),
        STORE_TEST(test_cards),
        STORE_TEST(test_subject_lookup),
        STORE_TEST(test_desfire_cards),
        STORE_TEST(test_counters_follow_every_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

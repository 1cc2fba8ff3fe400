/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_consortium.c: the cache of other sites' passports, as the door reads it — real
 * SQLite files in a fresh directory per test (store_fixture.h). The wire formats and the
 * custodian's side are in test_consortium.c; the whole path in integration/test_consortium.py
 * and the fuzz harness fuzz_passport. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_consortium.h"
#include "store_fixture.h"

#define NOW 1790000000LL
#define ID "0123456789abcdef0123456789abcdef"

static const uint8_t card[32] = { 0xca, 0x4d };

static struct store_passport passport(int64_t issued, int64_t expires)
{
    struct store_passport p = { .issued = issued, .expires = expires, .visit_days = 3 };

    snprintf(p.home, sizeof(p.home), "lyon");
    snprintf(p.id, sizeof(p.id), ID);
    snprintf(p.month, sizeof(p.month), "2026-09");
    return p;
}

/* Found by fuzz_passport: a passport of the same member, older than the one cached and
 * expired (a copy delivered late: a bridge, a QoS 1 redelivery), erased the current one, and
 * the member's card was unknown at the door until the home published again. */
static void test_older_expired_passport_keeps_the_newer(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_consortium *sc = NULL;
    struct store_passport cur = passport(NOW - 100, NOW + 86400), got;

    assert_int_equal(store_consortium_open(s, &sc), 0);
    assert_int_equal(store_consortium_passport_put(sc, &cur, &card, NULL, 1, 10, NOW), 0);
    /* An older one, expired since: the cache keeps the newer. */
    assert_int_equal(store_consortium_passport_expired(sc, "lyon", ID, NOW - 7 * 86400), 0);
    assert_int_equal(store_consortium_passport_find(sc, card, NOW, &got), 0);
    assert_string_equal(got.id, ID);
    assert_int_equal(got.expires, NOW + 86400);
    /* Another member's, or another home's: nothing changes either. */
    assert_int_equal(store_consortium_passport_expired(sc, "paris", ID, NOW), 0);
    assert_int_equal(store_consortium_passport_find(sc, card, NOW, &got), 0);
    /* The same or a newer one, expired: forgotten, with its cards. */
    assert_int_equal(store_consortium_passport_expired(sc, "lyon", ID, NOW - 100), 0);
    assert_int_equal(store_consortium_passport_find(sc, card, NOW, &got), -ENOENT);
    assert_int_equal(store_commit(s), 0);
    store_consortium_free(sc);
    store_free(s);
}

/* The consortium's tables migrate on their own version, once. */
static void test_open_migrates_once(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_ok(f->path);
    struct store_consortium *sc = NULL;
    int64_t acked = 0;

    assert_int_equal(store_consortium_open(s, &sc), 0);
    assert_int_equal(store_consortium_schema_version(sc), STORE_CONSORTIUM_SCHEMA_VERSION);
    assert_int_equal(store_consortium_set_acked(sc, 7, NOW), 0);
    store_consortium_free(sc);
    store_free(s);

    s = open_ok(f->path);
    assert_int_equal(store_schema_version(s), STORE_SCHEMA_VERSION);
    assert_int_equal(store_consortium_open(s, &sc), 0);     /* nothing to do: kept as it was */
    assert_int_equal(store_consortium_schema_version(sc), STORE_CONSORTIUM_SCHEMA_VERSION);
    assert_int_equal(store_consortium_acked(sc, &acked), 0);
    assert_int_equal(acked, 7);
    store_consortium_free(sc);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_older_expired_passport_keeps_the_newer),
        STORE_TEST(test_open_migrates_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

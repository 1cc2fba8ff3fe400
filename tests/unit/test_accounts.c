/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* accounts: tokens, names and passwords (pure), and the account tables on a real SQLite
 * file: case-insensitive names, sessions that expire and end, one-time links used once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts.h"
#include "password.h"
#include "store.h"
#include "util.h"

static char db_dir[PATH_MAX], db_path[PATH_MAX + 16];

static int setup(void **state)
{
    const char *tmp = getenv("PORTIER_TEST_TMP");
    char cmd[PATH_MAX + 16];
    struct store *s;

    snprintf(cmd, sizeof(cmd), "mkdir -p %s", tmp && *tmp ? tmp : "/tmp");
    if (system(cmd) != 0)
        return -1;
    snprintf(db_dir, sizeof(db_dir), "%s/accounts-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(db_dir))
        return -1;
    snprintf(db_path, sizeof(db_path), "%s/portier.db", db_dir);
    if (store_open(db_path, &s) < 0)
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    store_free(*state);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", db_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_tokens(void **state)
{
    char a[STORE_TOKEN_TEXT_MAX + 1], b[STORE_TOKEN_TEXT_MAX + 1];
    uint8_t ha[STORE_HASH_LEN], hb[STORE_HASH_LEN], again[STORE_HASH_LEN];

    (void)state;
    account_token_new(a, ha);
    account_token_new(b, hb);
    assert_int_equal(strlen(a), 43);
    assert_string_not_equal(a, b);
    assert_true(account_token_hash(a, again));
    assert_memory_equal(ha, again, STORE_HASH_LEN);     /* what the store keeps is reproducible */
    assert_memory_not_equal(ha, hb, STORE_HASH_LEN);
    /* Anything that cannot be one of ours is refused before any lookup. */
    assert_false(account_token_hash("", again));
    assert_false(account_token_hash("short", again));
    char bad[44];
    memcpy(bad, a, 44);
    bad[10] = '/';
    assert_false(account_token_hash(bad, again));
    char longer[64];
    snprintf(longer, sizeof(longer), "%sx", a);
    assert_false(account_token_hash(longer, again));
}

static void test_names_and_roles(void **state)
{
    (void)state;
    assert_true(account_name_valid("alice"));
    assert_true(account_name_valid("a.b-c_d@site"));
    assert_false(account_name_valid(""));
    assert_false(account_name_valid("with space"));
    assert_false(account_name_valid("<script>"));
    assert_false(account_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));   /* 33 */
    assert_true(account_name_valid("abcdefghijklmnopqrstuvwxyz012345"));     /* 32 */
    assert_true(account_role_valid("member"));
    assert_true(account_role_valid("custodian"));
    assert_false(account_role_valid("admin"));
}

static void test_passwords(void **state)
{
    char hash[crypto_pwhash_STRBYTES];

    (void)state;
    assert_non_null(password_weakness("short"));
    assert_null(password_weakness("ten chars!"));
    char huge[PASSWORD_MAX + 2];
    memset(huge, 'x', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_non_null(password_weakness(huge));
    assert_int_equal(crypto_pwhash_str(hash, "a good password", 15,
                                       crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN), 0);
    assert_true(password_hash_valid(hash));
    assert_false(password_hash_valid("plaintext"));
    assert_false(password_hash_valid("$argon2id$garbage"));
    assert_false(password_hash_valid("$2b$10$abcdefghijklmnopqrstuv"));     /* bcrypt: not ours */
}

static void test_accounts_table(void **state)
{
    struct store *s = *state;
    struct store_account a;
    int64_t member, id, id2;

    assert_int_equal(store_member_add(s, "Alice", "", 0, 0, 0, &member), 0);
    assert_int_equal(store_account_add(s, "Alice", "member", member, "test", &id), 0);
    assert_int_equal(store_account_add(s, "alice", "manager", 0, "test", &id2), -EEXIST);
    assert_int_equal(store_account_find(s, "ALICE", &a), 0);       /* names ignore case */
    assert_int_equal(a.id, id);
    assert_string_equal(a.role, "member");
    assert_int_equal(a.member_id, member);
    assert_string_equal(a.member, "Alice");
    assert_string_equal(a.password, "");
    assert_int_equal(store_account_set_password(s, id, "$argon2id$x"), 0);
    assert_int_equal(store_account_get(s, id, &a), 0);
    assert_string_equal(a.password, "$argon2id$x");
    assert_int_equal(store_account_set_password(s, 999, "$argon2id$x"), -ENOENT);
    assert_int_equal(store_account_find(s, "nobody", &a), -ENOENT);
    assert_int_equal(store_commit(s), 0);
}

static void test_sessions(void **state)
{
    struct store *s = *state;
    uint8_t h1[STORE_HASH_LEN], h2[STORE_HASH_LEN];
    char t[STORE_TOKEN_TEXT_MAX + 1], csrf[STORE_TOKEN_TEXT_MAX + 1];
    int64_t id, account;

    assert_int_equal(store_account_add(s, "boss", "manager", 0, "test", &id), 0);
    account_token_new(t, h1);
    account_token_new(t, h2);
    assert_int_equal(store_websession_add(s, h1, id, "csrf-one", 1000, 2000), 0);
    assert_int_equal(store_websession_add(s, h2, id, "csrf-two", 1000, 1500), 0);
    assert_int_equal(store_websession_get(s, h1, 1999, &account, csrf), 0);
    assert_int_equal(account, id);
    assert_string_equal(csrf, "csrf-one");
    assert_int_equal(store_websession_get(s, h1, 2000, &account, csrf), -ENOENT);   /* expired */
    assert_int_equal(store_websession_delete(s, h2), 0);                             /* log out */
    assert_int_equal(store_websession_get(s, h2, 1100, &account, csrf), -ENOENT);
    assert_int_equal(store_websessions_end(s, id, 1100), 0);    /* password changed: all end */
    assert_int_equal(store_websession_get(s, h1, 1100, &account, csrf), -ENOENT);
}

static void test_one_time_links(void **state)
{
    struct store *s = *state;
    uint8_t h[STORE_HASH_LEN], api[STORE_HASH_LEN];
    char t[STORE_TOKEN_TEXT_MAX + 1];
    int64_t id, account;

    assert_int_equal(store_account_add(s, "carol", "custodian", 0, "test", &id), 0);
    account_token_new(t, h);
    account_token_new(t, api);
    assert_int_equal(store_account_token_add(s, h, id, "invite", "", 100, 200), 0);
    assert_int_equal(store_account_token_add(s, api, id, "api", "script", 100, 5000), 0);
    assert_int_equal(store_account_token_check(s, h, "api", 150, &account), -ENOENT);   /* kind */
    assert_int_equal(store_account_token_check(s, h, "invite", 150, &account), 0);
    assert_int_equal(account, id);
    assert_int_equal(store_account_token_check(s, h, "invite", 200, &account), -ENOENT); /* expired */
    assert_int_equal(store_account_token_use(s, h, 150), 0);
    assert_int_equal(store_account_token_use(s, h, 151), -ENOENT);                      /* once */
    assert_int_equal(store_account_token_check(s, h, "invite", 152, &account), -ENOENT);
    /* A disabled account's tokens stop working, and work again when it is enabled. */
    assert_int_equal(store_account_token_check(s, api, "api", 160, &account), 0);
    assert_int_equal(store_account_set_disabled(s, id, 170), 0);
    assert_int_equal(store_account_token_check(s, api, "api", 180, &account), -ENOENT);
    assert_int_equal(store_account_set_disabled(s, id, 0), 0);
    assert_int_equal(store_account_token_check(s, api, "api", 190, &account), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_names_and_roles),
        cmocka_unit_test(test_passwords),
        cmocka_unit_test_setup_teardown(test_accounts_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_time_links, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_accounts: web accounts, sessions and tokens (schema migration 6). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

#define ACCOUNT_COLUMNS \
    "a.id, a.name, a.role, coalesce(a.member_id, 0), coalesce(m.name, ''), " \
    "coalesce(a.password, ''), a.calendar_token IS NOT NULL, coalesce(a.disabled_at, 0), " \
    "a.created_at, a.created_by, a.login_failures, a.login_failed_at, a.last_login_at, " \
    "a.language " \
    "FROM accounts a LEFT JOIN members m ON m.id = a.member_id "

static const char sql_add[] =
    "INSERT INTO accounts (name, role, member_id, created_at, created_by) "
    "VALUES (?1, ?2, nullif(?3, 0), ?4, ?5)";
static const char sql_get[] = "SELECT " ACCOUNT_COLUMNS "WHERE a.id = ?1";
static const char sql_find[] = "SELECT " ACCOUNT_COLUMNS "WHERE a.name = ?1";
static const char sql_by_calendar[] = "SELECT " ACCOUNT_COLUMNS "WHERE a.calendar_token = ?1";
static const char sql_list[] = "SELECT " ACCOUNT_COLUMNS "ORDER BY a.name";
static const char sql_list_member[] =
    "SELECT " ACCOUNT_COLUMNS "WHERE a.member_id = ?1 ORDER BY a.name";
static const char sql_set_password[] = "UPDATE accounts SET password = ?2 WHERE id = ?1";
static const char sql_set_disabled[] =
    "UPDATE accounts SET disabled_at = nullif(?2, 0) WHERE id = ?1";
/* calendar_token holds the token's hash, a BLOB (a TEXT value: a token in clear, from before
 * 0.2, hashed at start by store_accounts_hash_calendar_tokens()). */
static const char sql_set_calendar[] = "UPDATE accounts SET calendar_token = ?2 WHERE id = ?1";
static const char sql_calendar_clear[] =
    "SELECT id, calendar_token FROM accounts WHERE typeof(calendar_token) = 'text'";
static const char sql_calendar_drop[] = "UPDATE accounts SET calendar_token = NULL WHERE id = ?1";
static const char sql_set_language[] = "UPDATE accounts SET language = ?2 WHERE id = ?1";
static const char sql_ws_add[] =
    "INSERT INTO web_sessions (token_hash, account_id, csrf, created_at, expires_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5)";
static const char sql_touch[] = "UPDATE accounts SET last_login_at = ?2 WHERE id = ?1";
static const char sql_ws_get[] =
    "SELECT account_id, csrf FROM web_sessions WHERE token_hash = ?1 AND expires_at > ?2";
static const char sql_ws_delete[] = "DELETE FROM web_sessions WHERE token_hash = ?1";
static const char sql_ws_end[] =
    "DELETE FROM web_sessions WHERE account_id = ?1 OR expires_at <= ?2";
static const char sql_tok_add[] =
    "INSERT INTO account_tokens (token_hash, account_id, kind, label, created_at, expires_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_tok_check[] =
    "SELECT t.account_id FROM account_tokens t JOIN accounts a ON a.id = t.account_id "
    "WHERE t.token_hash = ?1 AND t.kind = ?2 AND t.expires_at > ?3 AND t.used_at IS NULL "
    "AND a.disabled_at IS NULL";
static const char sql_tok_use[] =
    "UPDATE account_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL";

static const char sql_login_failed[] =
    "UPDATE accounts SET login_failures = login_failures + 1, login_failed_at = ?2 WHERE id = ?1";
static const char sql_login_ok[] =
    "UPDATE accounts SET login_failures = 0, login_failed_at = 0 WHERE id = ?1";

#define COL(field) STORE_COL(struct store_account, field)
static const struct store_cols account_cols = STORE_COLS(struct store_account,
    COL(id), COL(name), COL(role), COL(member_id), COL(member), COL(password),
    COL(has_calendar), COL(disabled_at), COL(created_at), COL(created_by), COL(login_failures),
    COL(login_failed_at), COL(last_login_at), COL(language));
#undef COL

int store_account_add(struct store *s, const char *name, const char *role, int64_t member_id,
                      const char *by, int64_t *ret_id)
{
    return store_insert(s, sql_add,
                        STORE_ARGS(STORE_TEXT(name), STORE_TEXT(role), STORE_INT(member_id),
                                   STORE_INT(now_utc()), STORE_TEXT(by)), ret_id);
}

int store_account_get(struct store *s, int64_t id, struct store_account *ret)
{
    return store_get(s, sql_get, STORE_ARGS(STORE_INT(id)), &account_cols, ret);
}

int store_account_find(struct store *s, const char *name, struct store_account *ret)
{
    return store_get(s, sql_find, STORE_ARGS(STORE_TEXT(name)), &account_cols, ret);
}

int store_account_by_calendar(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                              struct store_account *ret)
{
    return store_get(s, sql_by_calendar, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN)),
                     &account_cols, ret);
}

int store_account_set_password(struct store *s, int64_t id, const char *hash)
{
    return store_update(s, sql_set_password, STORE_ARGS(STORE_INT(id), STORE_TEXT(hash)));
}

int store_account_set_calendar(struct store *s, int64_t id, const uint8_t hash[STORE_HASH_LEN])
{
    return store_update(s, sql_set_calendar,
                        STORE_ARGS(STORE_INT(id), STORE_BLOB(hash, STORE_HASH_LEN)));
}

struct clear_token {
    int64_t id;
    char text[STORE_TOKEN_TEXT_MAX + 2];     /* one more: a longer text is no token of ours */
};
static const struct store_cols clear_token_cols = STORE_COLS(struct clear_token,
    STORE_COL(struct clear_token, id), STORE_COL(struct clear_token, text));

int store_accounts_hash_calendar_tokens(struct store *s,
                                        bool (*hash_fn)(const char *text,
                                                        uint8_t hash[STORE_HASH_LEN]))
{
    struct clear_token found[64];
    uint8_t hash[STORE_HASH_LEN];
    int total = 0, n, r;

    /* A few at a time, read before written; each write takes a row out of the query. */
    while ((n = store_collect(s, sql_calendar_clear, STORE_NO_ARGS, &clear_token_cols, found,
                              ARRAY_SIZE(found))) > 0) {
        for (int i = 0; i < n; i++) {
            if (hash_fn(found[i].text, hash))
                r = store_account_set_calendar(s, found[i].id, hash);
            else                                    /* not a token of ours: no address */
                r = store_update(s, sql_calendar_drop, STORE_ARGS(STORE_INT(found[i].id)));
            if (r < 0)
                return r;
            total++;
        }
    }
    return n < 0 ? n : total;
}

int store_account_login_noted(struct store *s, int64_t id, bool ok, int64_t at)
{
    if (ok)
        return store_write(s, sql_login_ok, STORE_ARGS(STORE_INT(id)));
    return store_write(s, sql_login_failed, STORE_ARGS(STORE_INT(id), STORE_INT(at)));
}

int store_account_set_language(struct store *s, int64_t id, const char *language)
{
    return store_update(s, sql_set_language, STORE_ARGS(STORE_INT(id), STORE_TEXT(language)));
}

int store_account_set_disabled(struct store *s, int64_t id, int64_t disabled_at)
{
    return store_update(s, sql_set_disabled, STORE_ARGS(STORE_INT(id), STORE_INT(disabled_at)));
}

STORE_ROWS_TO(accounts_row, store_account_fn)

int store_accounts_foreach(struct store *s, store_account_fn fn, void *userdata)
{
    return store_each(s, sql_list, STORE_NO_ARGS, &account_cols, accounts_row,
                      STORE_ROWS(fn, userdata));
}

int store_member_accounts_foreach(struct store *s, int64_t member_id, store_account_fn fn,
                                  void *userdata)
{
    return store_each(s, sql_list_member, STORE_ARGS(STORE_INT(member_id)), &account_cols,
                      accounts_row, STORE_ROWS(fn, userdata));
}

int store_websession_add(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t account_id,
                         const char *csrf, int64_t created_at, int64_t expires_at)
{
    int r = store_write(s, sql_ws_add,
                        STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN), STORE_INT(account_id),
                                   STORE_TEXT(csrf), STORE_INT(created_at),
                                   STORE_INT(expires_at)));

    /* A session begins at a login: what [privacy] account_inactive_days counts from. */
    return r < 0 ? r : store_account_touch(s, account_id, created_at);
}

int store_account_touch(struct store *s, int64_t id, int64_t at)
{
    return store_update(s, sql_touch, STORE_ARGS(STORE_INT(id), STORE_INT(at)));
}

struct websession_row {
    int64_t account;
    char csrf[STORE_TOKEN_TEXT_MAX + 1];
};
static const struct store_cols websession_cols = STORE_COLS(struct websession_row,
    STORE_COL(struct websession_row, account), STORE_COL(struct websession_row, csrf));

int store_websession_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now,
                         int64_t *ret_account, char *ret_csrf)
{
    struct websession_row w;
    int r = store_get(s, sql_ws_get, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN), STORE_INT(now)),
                      &websession_cols, &w);

    if (r == 0) {
        *ret_account = w.account;
        memcpy(ret_csrf, w.csrf, sizeof(w.csrf));
    }
    return r;
}

int store_websession_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN])
{
    return store_write(s, sql_ws_delete, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN)));
}

int store_websessions_end(struct store *s, int64_t account_id, int64_t now)
{
    return store_write(s, sql_ws_end, STORE_ARGS(STORE_INT(account_id), STORE_INT(now)));
}

int store_account_token_add(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                            int64_t account_id, const char *kind, const char *label,
                            int64_t created_at, int64_t expires_at)
{
    return store_write(s, sql_tok_add,
                       STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN), STORE_INT(account_id),
                                  STORE_TEXT(kind), STORE_TEXT(label), STORE_INT(created_at),
                                  STORE_INT(expires_at)));
}

int store_account_token_check(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                              const char *kind, int64_t now, int64_t *ret_account)
{
    return store_get_int64(s, sql_tok_check,
                           STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN), STORE_TEXT(kind),
                                      STORE_INT(now)), ret_account);
}

int store_account_token_use(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now)
{
    return store_update(s, sql_tok_use, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN),
                        STORE_INT(now)));
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_accounts: web accounts, sessions and tokens (schema migration 6). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

#define ACCOUNT_COLUMNS \
    "a.id, a.name, a.role, coalesce(a.member_id, 0), coalesce(m.name, ''), " \
    "coalesce(a.password, ''), coalesce(a.calendar_token, ''), coalesce(a.disabled_at, 0), " \
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
static const char sql_set_calendar[] = "UPDATE accounts SET calendar_token = ?2 WHERE id = ?1";
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

static void account_fill(sqlite3_stmt *st, void *ret)
{
    struct store_account *a = ret;

    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, a->name, sizeof(a->name));
    store_column_text(st, 2, a->role, sizeof(a->role));
    a->member_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, a->member, sizeof(a->member));
    store_column_text(st, 5, a->password, sizeof(a->password));
    store_column_text(st, 6, a->calendar_token, sizeof(a->calendar_token));
    a->disabled_at = sqlite3_column_int64(st, 7);
    a->created_at = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, a->created_by, sizeof(a->created_by));
    a->login_failures = sqlite3_column_int64(st, 10);
    a->login_failed_at = sqlite3_column_int64(st, 11);
    a->last_login_at = sqlite3_column_int64(st, 12);
    store_column_text(st, 13, a->language, sizeof(a->language));
}

int store_account_add(struct store *s, const char *name, const char *role, int64_t member_id,
                      const char *by, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_add);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, member_id);
    sqlite3_bind_int64(st, 4, now_utc());
    sqlite3_bind_text(st, 5, by, -1, SQLITE_STATIC);
    return store_write_insert(s, st, ret_id);
}

int store_account_get(struct store *s, int64_t id, struct store_account *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_get);

    sqlite3_bind_int64(st, 1, id);
    return store_row_get(st, account_fill, ret);
}

int store_account_find(struct store *s, const char *name, struct store_account *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_find);

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_get(st, account_fill, ret);
}

int store_account_by_calendar(struct store *s, const char *token, struct store_account *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_by_calendar);

    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    return store_row_get(st, account_fill, ret);
}

static int set_text(struct store *s, const char *sql, int64_t id, const char *text)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_account_set_password(struct store *s, int64_t id, const char *hash)
{
    return set_text(s, sql_set_password, id, hash);
}

int store_account_set_calendar(struct store *s, int64_t id, const char *token)
{
    return set_text(s, sql_set_calendar, id, token);
}

int store_account_login_noted(struct store *s, int64_t id, bool ok, int64_t at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, ok ? sql_login_ok : sql_login_failed);
    sqlite3_bind_int64(st, 1, id);
    if (!ok)
        sqlite3_bind_int64(st, 2, at);
    return store_stmt_exec(st);
}

int store_account_set_language(struct store *s, int64_t id, const char *language)
{
    return set_text(s, sql_set_language, id, language);
}

int store_account_set_disabled(struct store *s, int64_t id, int64_t disabled_at)
{
    return store_write_ints(s, sql_set_disabled, id, disabled_at);
}

STORE_ROWS_DELIVER(accounts_row, struct store_account, account_fill)

int store_accounts_foreach(struct store *s, store_account_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_list), accounts_row, STORE_ROWS(fn, userdata));
}

int store_member_accounts_foreach(struct store *s, int64_t member_id, store_account_fn fn,
                                  void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_list_member);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, accounts_row, STORE_ROWS(fn, userdata));
}

int store_websession_add(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t account_id,
                         const char *csrf, int64_t created_at, int64_t expires_at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_ws_add);
    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    sqlite3_bind_text(st, 3, csrf, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, created_at);
    sqlite3_bind_int64(st, 5, expires_at);
    r = store_stmt_exec(st);
    /* A session begins at a login: what [privacy] account_inactive_days counts from. */
    return r < 0 ? r : store_account_touch(s, account_id, created_at);
}

int store_account_touch(struct store *s, int64_t id, int64_t at)
{
    return store_write_ints(s, sql_touch, id, at);
}

struct websession_row {
    int64_t *account;
    char *csrf;
};

static void websession_fill(sqlite3_stmt *st, void *ret)
{
    struct websession_row *w = ret;

    *w->account = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, w->csrf, STORE_TOKEN_TEXT_MAX + 1);
}

int store_websession_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now,
                         int64_t *ret_account, char *ret_csrf)
{
    sqlite3_stmt *st = store_stmt(s, sql_ws_get);

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return store_row_get(st, websession_fill, &(struct websession_row){ ret_account, ret_csrf });
}

int store_websession_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN])
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_ws_delete);
    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return store_stmt_exec(st);
}

int store_websessions_end(struct store *s, int64_t account_id, int64_t now)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_ws_end);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, now);
    return store_stmt_exec(st);
}

int store_account_token_add(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                            int64_t account_id, const char *kind, const char *label,
                            int64_t created_at, int64_t expires_at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_tok_add);
    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, account_id);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, created_at);
    sqlite3_bind_int64(st, 6, expires_at);
    return store_stmt_exec(st);
}

int store_account_token_check(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                              const char *kind, int64_t now, int64_t *ret_account)
{
    sqlite3_stmt *st = store_stmt(s, sql_tok_check);

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return store_row_int64(st, ret_account);
}

int store_account_token_use(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_tok_use);
    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return store_write_changed(s, st);
}

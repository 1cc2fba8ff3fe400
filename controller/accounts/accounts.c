#include "accounts.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "log.h"
#include "password.h"
#include "request.h"
#include "util.h"

void account_token_new(char text[STORE_TOKEN_TEXT_MAX + 1], uint8_t hash[STORE_HASH_LEN])
{
    uint8_t raw[32];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(text, STORE_TOKEN_TEXT_MAX + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    crypto_generichash(hash, STORE_HASH_LEN, (const uint8_t *)text, strlen(text), NULL, 0);
}

bool account_token_hash(const char *text, uint8_t hash[STORE_HASH_LEN])
{
    size_t len = strnlen(text, STORE_TOKEN_TEXT_MAX + 1);

    if (len != 43)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    crypto_generichash(hash, STORE_HASH_LEN, (const uint8_t *)text, len, NULL, 0);
    return true;
}

bool account_name_valid(const char *name)
{
    size_t len = strnlen(name, STORE_ACCOUNT_NAME_MAX + 1);

    if (len == 0 || len > STORE_ACCOUNT_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_' || ch == '@'))
            return false;
    }
    return true;
}

bool account_role_valid(const char *role)
{
    return strcmp(role, "member") == 0 || strcmp(role, "manager") == 0 ||
           strcmp(role, "custodian") == 0;
}

json_t *account_json(const struct store_account *a)
{
    return json_pack("{s:I, s:s, s:s, s:I, s:s, s:b, s:b, s:I, s:s}", "id", (json_int_t)a->id,
                     "name", a->name, "role", a->role, "member_id", (json_int_t)a->member_id,
                     "member", a->member, "password_set", a->password[0] != '\0', "disabled",
                     a->disabled_at != 0, "created_at", (json_int_t)a->created_at, "created_by",
                     a->created_by);
}

static int account_append(const struct store_account *a, void *userdata)
{
    json_array_append_new(userdata, account_json(a));
    return 0;
}

/* The account named by "name", or a reply saying why not. */
static bool req_account(struct store *store, struct control_conn *c, json_t *req,
                        struct store_account *ret)
{
    const char *name = req_str(req, "name");
    int r;

    if (!name || !account_name_valid(name)) {
        control_reply_error(c, "bad_request", "\"name\" must be an account name: 1 to 32 letters, "
                            "digits or . - _ @");
        return false;
    }
    r = store_account_find(store, name, ret);
    if (r == -ENOENT)
        control_reply_error(c, "not_found", "no account '%s'", name);
    else if (r < 0)
        control_reply_error(c, "store", "cannot read accounts: %s", strerror(-r));
    return r == 0;
}

static void cmd_add(struct store *store, struct control_conn *c, json_t *req)
{
    const char *name = req_str(req, "name"), *role = req_str(req, "role");
    int64_t member = 0, id;
    int r;

    if (!name || !account_name_valid(name)) {
        control_reply_error(c, "bad_request", "\"name\" must be 1 to 32 letters, digits or . - _ @");
        return;
    }
    if (!role || !account_role_valid(role)) {
        control_reply_error(c, "bad_request", "\"role\" must be member, manager or custodian");
        return;
    }
    if (strcmp(role, "member") == 0) {
        if (!req_member(store, c, req, "member", &member))
            return;
    } else if (json_object_get(req, "member")) {
        control_reply_error(c, "bad_request", "only member accounts are linked to a member");
        return;
    }
    r = store_account_add(store, name, role, member, control_conn_who(c), &id);
    if (r == -EEXIST) {
        control_reply_error(c, "exists", "an account named '%s' already exists", name);
        return;
    }
    if (r < 0) {
        control_reply_error(c, "store", "cannot add the account: %s", strerror(-r));
        return;
    }
    log_info("account %s (%s) added by %s", name, role, control_conn_who(c));
    control_reply_ok(c, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "name", name, "role",
                                  role));
}

static void cmd_passwd(struct store *store, struct control_conn *c, json_t *req)
{
    const char *hash = req_str(req, "hash");
    struct store_account a;
    int r;

    if (!req_account(store, c, req, &a))
        return;
    if (!hash || !password_hash_valid(hash)) {
        control_reply_error(c, "bad_request", "\"hash\" must be an argon2id password hash "
                            "(portierctl account passwd makes one)");
        return;
    }
    r = store_account_set_password(store, a.id, hash);
    if (r == 0)
        r = store_websessions_end(store, a.id, now_utc());     /* log out everywhere */
    if (r < 0) {
        control_reply_error(c, "store", "cannot set the password: %s", strerror(-r));
        return;
    }
    log_info("account %s: password set by %s", a.name, control_conn_who(c));
    control_reply_ok(c, json_pack("{s:s}", "name", a.name));
}

static void cmd_disable(struct store *store, struct control_conn *c, json_t *req, bool disable)
{
    struct store_account a;
    int r;

    if (!req_account(store, c, req, &a))
        return;
    r = store_account_set_disabled(store, a.id, disable ? now_utc() : 0);
    if (r == 0 && disable)
        r = store_websessions_end(store, a.id, now_utc());
    if (r < 0) {
        control_reply_error(c, "store", "cannot change the account: %s", strerror(-r));
        return;
    }
    log_info("account %s %s by %s", a.name, disable ? "disabled" : "enabled", control_conn_who(c));
    control_reply_ok(c, json_pack("{s:s, s:b}", "name", a.name, "disabled", disable));
}

/* A one-time link to set a password, or an API token: the token is shown once. */
static void cmd_token(struct store *store, struct control_conn *c, json_t *req, bool invite)
{
    const char *label = req_str(req, "label");
    char text[STORE_TOKEN_TEXT_MAX + 1];
    uint8_t hash[STORE_HASH_LEN];
    struct store_account a;
    int64_t valid, now = now_utc();
    int r;

    if (!req_account(store, c, req, &a))
        return;
    if (a.disabled_at) {
        control_reply_error(c, "disabled", "account '%s' is disabled", a.name);
        return;
    }
    if (invite) {
        valid = ACCOUNT_INVITE_HOURS_DEFAULT;
        if (!req_int(c, req, "hours", 1, 24 * 30, false, &valid))
            return;
        valid *= 3600;
    } else {
        valid = ACCOUNT_API_DAYS_DEFAULT;
        if (!req_int(c, req, "days", 1, 3650, false, &valid))
            return;
        valid *= 86400;
        if (label && strlen(label) > 64) {
            control_reply_error(c, "bad_request", "\"label\" may have at most 64 characters");
            return;
        }
    }
    account_token_new(text, hash);
    r = store_account_token_add(store, hash, a.id, invite ? "invite" : "api",
                                label ? label : "", now, now + valid);
    if (r < 0) {
        control_reply_error(c, "store", "cannot store the token: %s", strerror(-r));
        return;
    }
    log_info("account %s: %s created by %s", a.name, invite ? "one-time link" : "API token",
             control_conn_who(c));
    if (invite) {
        char path[80];
        snprintf(path, sizeof(path), "/welcome/%s", text);
        control_reply_ok(c, json_pack("{s:s, s:s, s:s, s:I}", "name", a.name, "token", text, "path",
                                      path, "expires_at", (json_int_t)(now + valid)));
    } else {
        control_reply_ok(c, json_pack("{s:s, s:s, s:I}", "name", a.name, "token", text,
                                      "expires_at", (json_int_t)(now + valid)));
    }
    sodium_memzero(text, sizeof(text));
}

bool accounts_control(struct store *store, struct control_conn *c, const char *cmd, json_t *req)
{
    if (strncmp(cmd, "account.", 8) != 0)
        return false;
    cmd += 8;
    if (strcmp(cmd, "add") == 0) {
        cmd_add(store, c, req);
    } else if (strcmp(cmd, "list") == 0) {
        json_t *list = json_array();
        store_accounts_foreach(store, account_append, list);
        control_reply_ok(c, json_pack("{s:o}", "accounts", list));
    } else if (strcmp(cmd, "show") == 0) {
        struct store_account a;
        if (req_account(store, c, req, &a))
            control_reply_ok(c, json_pack("{s:o}", "account", account_json(&a)));
    } else if (strcmp(cmd, "passwd") == 0) {
        cmd_passwd(store, c, req);
    } else if (strcmp(cmd, "disable") == 0 || strcmp(cmd, "enable") == 0) {
        cmd_disable(store, c, req, strcmp(cmd, "disable") == 0);
    } else if (strcmp(cmd, "invite") == 0 || strcmp(cmd, "token") == 0) {
        cmd_token(store, c, req, strcmp(cmd, "invite") == 0);
    } else {
        control_reply_error(c, "unknown_command", "unknown command 'account.%.32s'", cmd);
    }
    return true;
}

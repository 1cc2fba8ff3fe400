/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of web accounts: add, list, show, passwords, disable and enable, one-time
 * links and API tokens. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "handlers.h"
#include "log.h"
#include "mail.h"
#include "password.h"
#include "services.h"
#include "store.h"
#include "util.h"

static int account_append(const struct store_account *a, void *userdata)
{
    return json_array_append_new(userdata, account_json(a)) == 0 ? 0 : -ENOMEM;
}

/* The account named by "name". */
static int find_account(struct cmd_call *call, const struct cmd_args *a,
                        struct store_account *ret)
{
    const char *name = arg_str(a, "name");

    if (!account_name_valid(name))
        return cmd_fail(call, -EINVAL, "bad_request", "\"name\" must be an account name: 1 to 32 "
                        "letters, digits or . - _ @");
    return cmd_found(call, store_account_find(cmd_services(call)->store, name, ret), "account",
                     name, NULL);
}

int cmd_account_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *name = arg_str(a, "name"), *role = arg_str(a, "role");
    int64_t member = arg_int(a, "member", 0), id;
    int r;

    if (!account_name_valid(name))
        return cmd_fail(call, -EINVAL, "bad_request", "\"name\" must be 1 to 32 letters, digits or "
                        ". - _ @");
    if (!account_role_valid(role))
        return cmd_fail(call, -EINVAL, "bad_request", "\"role\" must be member, manager or custodian");
    if (strcmp(role, "member") == 0 && !member)
        return cmd_fail(call, -EINVAL, "bad_request", "a member account needs \"member\" (a member "
                        "id or exact name)");
    if (strcmp(role, "member") != 0 && member)
        return cmd_fail(call, -EINVAL, "bad_request", "only member accounts are linked to a member");
    r = store_account_add(cmd_services(call)->store, name, role, member, cmd_who(call), &id);
    if (r == -EEXIST)
        return cmd_fail(call, r, "exists", "an account named '%s' already exists", name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add the account: %s", strerror(-r));
    log_info("account %s (%s) added by %s", name, role, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "name", name, "role",
                                  role));
}

int cmd_account_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    int r = store_accounts_foreach(cmd_services(call)->store, account_append, list);

    if (r < 0) {
        json_decref(list);
        return cmd_fail(call, r, "store", "cannot read accounts: %s", strerror(-r));
    }
    return cmd_ok(call, json_pack("{s:o}", "accounts", list));
}

int cmd_account_show(struct cmd_call *call, const struct cmd_args *a)
{
    struct store_account acc;
    int r = find_account(call, a, &acc);

    if (r < 0)
        return r;
    return cmd_ok(call, json_pack("{s:o}", "account", account_json(&acc)));
}

int cmd_account_passwd(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const char *hash = arg_str(a, "hash");
    struct store_account acc;
    int r;

    if ((r = find_account(call, a, &acc)) < 0)
        return r;
    if (!password_hash_valid(hash))
        return cmd_fail(call, -EINVAL, "bad_request", "\"hash\" must be an argon2id password hash "
                        "(portierctl account passwd makes one)");
    r = store_account_set_password(store, acc.id, hash);
    if (r == 0)
        r = store_websessions_end(store, acc.id, now_utc());     /* log out everywhere */
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot set the password: %s", strerror(-r));
    log_info("account %s: password set by %s", acc.name, cmd_who(call));
    return cmd_ok(call, json_pack("{s:s}", "name", acc.name));
}

static int set_disabled(struct cmd_call *call, const struct cmd_args *a, bool disable)
{
    struct store *store = cmd_services(call)->store;
    struct store_account acc;
    int r;

    if ((r = find_account(call, a, &acc)) < 0)
        return r;
    r = store_account_set_disabled(store, acc.id, disable ? now_utc() : 0);
    if (r == 0 && disable)
        r = store_websessions_end(store, acc.id, now_utc());
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change the account: %s", strerror(-r));
    log_info("account %s %s by %s", acc.name, disable ? "disabled" : "enabled", cmd_who(call));
    return cmd_ok(call, json_pack("{s:s, s:b}", "name", acc.name, "disabled", disable));
}

int cmd_account_disable(struct cmd_call *call, const struct cmd_args *a)
{
    return set_disabled(call, a, true);
}

int cmd_account_enable(struct cmd_call *call, const struct cmd_args *a)
{
    return set_disabled(call, a, false);
}

/* A one-time link to set a password, or an API token: the token is shown once. */
static int make_token(struct cmd_call *call, const struct cmd_args *a, bool invite)
{
    char text[STORE_TOKEN_TEXT_MAX + 1];
    uint8_t hash[STORE_HASH_LEN];
    struct store_account acc;
    int64_t valid, now = now_utc();
    int r;

    if ((r = find_account(call, a, &acc)) < 0)
        return r;
    if (acc.disabled_at)
        return cmd_fail(call, -EPERM, "disabled", "account '%s' is disabled", acc.name);
    if (invite)
        valid = arg_int(a, "hours", ACCOUNT_INVITE_HOURS_DEFAULT) * 3600;
    else
        valid = arg_int(a, "days", ACCOUNT_API_DAYS_DEFAULT) * 86400;
    account_token_new(text, hash);
    r = store_account_token_add(cmd_services(call)->store, hash, acc.id, invite ? "invite" : "api",
                                invite ? "" : arg_str(a, "label") ?: "", now, now + valid);
    if (r < 0) {
        sodium_memzero(text, sizeof(text));
        return cmd_fail(call, r, "store", "cannot store the token: %s", strerror(-r));
    }
    log_info("account %s: %s created by %s", acc.name, invite ? "one-time link" : "API token",
             cmd_who(call));
    if (invite) {
        struct mail_outcome mail;
        char path[80];
        snprintf(path, sizeof(path), "/welcome/%s", text);
        /* The member gets the link by e-mail too, queued with the token. */
        (void)mail_invite(cmd_services(call), &acc, text, now + valid, &mail);
        cmd_ok(call, json_pack("{s:s, s:s, s:s, s:I, s:o}", "name", acc.name, "token", text, "path",
                               path, "expires_at", (json_int_t)(now + valid), "mail",
                               mail_outcome_json(&mail)));
    } else {
        cmd_ok(call, json_pack("{s:s, s:s, s:I}", "name", acc.name, "token", text, "expires_at",
                               (json_int_t)(now + valid)));
    }
    sodium_memzero(text, sizeof(text));
    return 0;
}

int cmd_account_invite(struct cmd_call *call, const struct cmd_args *a)
{
    return make_token(call, a, true);
}

int cmd_account_token(struct cmd_call *call, const struct cmd_args *a)
{
    return make_token(call, a, false);
}

/* The language of an account's pages: "en", "fr" or "auto" (the browser's, else [site]
 * language). Anyone may set their own account's; only staff may set another's. */
int cmd_account_language(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const struct actor *actor = cmd_actor(call);
    const char *language = arg_str(a, "language");
    struct store_account acc;
    int r;

    if (strcmp(language, "en") != 0 && strcmp(language, "fr") != 0 &&
        strcmp(language, "auto") != 0)
        return cmd_fail(call, -EINVAL, "bad_request", "\"language\" must be en, fr or auto");
    if (arg_has(a, "name")) {
        if ((r = find_account(call, a, &acc)) < 0)
            return r;
        if (!(actor->role & ROLES_STAFF) && acc.id != actor->account_id)
            return cmd_fail(call, -EPERM, "forbidden", "you may change only your own account's "
                            "language");
    } else {
        if (!actor->account_id)
            return cmd_fail(call, -EINVAL, "bad_request", "name the account (\"name\")");
        r = store_account_get(store, actor->account_id, &acc);
        if (r < 0)
            return cmd_fail(call, r, "store", "cannot read accounts: %s", strerror(-r));
    }
    r = store_account_set_language(store, acc.id, strcmp(language, "auto") == 0 ? "" : language);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change the account: %s", strerror(-r));
    log_info("account %s: language %s, set by %s", acc.name, language, cmd_who(call));
    return cmd_ok(call, json_pack("{s:s, s:s}", "name", acc.name, "language", language));
}

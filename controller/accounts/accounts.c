/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "accounts.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

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
    return json_pack("{s:I, s:s, s:s, s:I, s:s, s:b, s:b, s:I, s:s, s:s}", "id", (json_int_t)a->id,
                     "name", a->name, "role", a->role, "member_id", (json_int_t)a->member_id,
                     "member", a->member, "password_set", a->password[0] != '\0', "disabled",
                     a->disabled_at != 0, "created_at", (json_int_t)a->created_at, "created_by",
                     a->created_by, "language", a->language[0] ? a->language : "auto");
}

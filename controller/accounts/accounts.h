/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* accounts: who may log in to the web page, as what, and the tokens (session cookies,
 * one-time links, API and calendar tokens). The commands are in account_commands.c.
 *
 * Roles: "member" (linked to one member: books for themselves, sees their own usage),
 * "manager" (everything a portierctl user can do from the page), "custodian" (reads
 * usage, statements, the ledger and period archives; changes nothing). Passwords are
 * argon2id strings (password.h); portierctl hashes a new password itself, so the daemon
 * never sees it, and a member sets their first one through a one-time link. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define ACCOUNT_INVITE_HOURS_DEFAULT 72
#define ACCOUNT_API_DAYS_DEFAULT 365

/* A new random token as text (43 base64url characters) and its hash, for the store. */
void account_token_new(char text[STORE_TOKEN_TEXT_MAX + 1], uint8_t hash[STORE_HASH_LEN]);
/* The hash of a token's text; false if the text cannot be a token (wrong length, alphabet). */
bool account_token_hash(const char *text, uint8_t hash[STORE_HASH_LEN]);
bool account_name_valid(const char *name);
bool account_role_valid(const char *role);

json_t *account_json(const struct store_account *a);

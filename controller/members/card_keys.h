/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* card_keys: the DESFire keys the daemon hands its reader workers (reader_proto.h, KEYS).
 *
 * The site's master key lives in a file of its own in the state directory (mode 0600,
 * created at first start from libsodium's random bytes), never in the database, the logs
 * or the events: a database backup does not carry it, and it must be backed up apart
 * (docs/security.md). The consortium's DESFire key comes from [consortium]
 * desfire_key_file, in generations. Both are held in locked, guarded memory (sodium_malloc)
 * and go nowhere but into the workers' memory when they start. */
#pragma once
#include <stddef.h>

#include "reader.h"

struct config;

#define CARD_KEYS_GENERATIONS_MAX 64        /* lines of a consortium key file */

/* Load (or create) the site's master key and the consortium's DESFire key. On success *ret
 * is ready for the readers (free with card_keys_free). Logs what it cannot do, naming the
 * file and what is wrong with it. 0 or -errno. */
int card_keys_load(const struct config *cfg, struct reader_desfire_keys **ret);
struct reader_desfire_keys *card_keys_free(struct reader_desfire_keys *k);

/* A consortium DESFire key file: "GEN HEX" lines (generation 1..255, 32 hex digits), '#'
 * comments and blank lines, each generation once. The newest goes to k's current key, the
 * one just below it (if any) to its old key. 0, or -EINVAL with the 1-based line of the
 * first bad line in *ret_line (0: no key at all). */
int card_keys_parse_consortium(const char *text, size_t len, struct reader_desfire_keys *k,
                               unsigned *ret_line);

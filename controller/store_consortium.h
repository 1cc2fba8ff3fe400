/* store_consortium: the site's consortium tables (what the custodian acknowledged; later
 * the passports of other sites' members), on the store's connection and in its batches.
 *
 * These tables have their own numbered migrations, recorded in module_schema(module,
 * version) rather than in PRAGMA user_version, so the consortium's schema and the core's
 * evolve without renumbering each other. Functions return 0 or -errno. */
#pragma once
#include <stdint.h>

#include "store.h"

#define STORE_CONSORTIUM_SCHEMA_VERSION 1

struct store_consortium;

/* Migrate (in its own transaction, committing any open batch first) and prepare. */
int store_consortium_open(struct store *s, struct store_consortium **ret);
struct store_consortium *store_consortium_free(struct store_consortium *c);
int store_consortium_schema_version(struct store_consortium *c);

/* The highest sequence number the custodian acknowledged as verified (0: none yet). */
int store_consortium_acked(struct store_consortium *c, int64_t *ret_seq);
int store_consortium_set_acked(struct store_consortium *c, int64_t seq, int64_t at);

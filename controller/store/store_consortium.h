/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_consortium: the site's consortium tables (what the custodian acknowledged; later
 * the passports of other sites' members), on the store's connection and in its batches.
 *
 * These tables have their own numbered migrations, recorded in module_schema(module,
 * version) rather than in PRAGMA user_version, so the consortium's schema and the core's
 * evolve without renumbering each other. Functions return 0 or -errno. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define STORE_CONSORTIUM_SCHEMA_VERSION 3

struct store_consortium;

/* Migrate (in its own transaction, committing any open batch first) and prepare. */
int store_consortium_open(struct store *s, struct store_consortium **ret);
struct store_consortium *store_consortium_free(struct store_consortium *c);
int store_consortium_schema_version(struct store_consortium *c);

/* The highest sequence number the custodian acknowledged as verified (0: none yet). */
int store_consortium_acked(struct store_consortium *c, int64_t *ret_seq);
int store_consortium_set_acked(struct store_consortium *c, int64_t seq, int64_t at);

/* ---- passports and visits (docs/consortium.md section 7) ---- */

/* This site's card card_id, hashed under the consortium's card key. */
int store_consortium_card_set(struct store_consortium *c, int64_t card_id,
                              const uint8_t hash[32]);
/* Members who may visit now (active, valid, a plan with visit days), one call per enabled
 * card with a consortium hash, ordered by member; desfire: the card is a provisioned DESFire. */
typedef int (*store_consortium_eligible_fn)(int64_t member_id, int64_t visit_days,
                                            const uint8_t hash[32], bool desfire,
                                            void *userdata);
int store_consortium_eligible_foreach(struct store_consortium *c, int64_t now,
                                      store_consortium_eligible_fn fn, void *userdata);

/* What this site last published for one of its members (by pseudonym). */
struct store_passport_out {
    uint8_t digest[32];             /* of the content without issued/expires */
    bool revoked;
    int64_t issued, expires;
};
int store_consortium_out_get(struct store_consortium *c, const char *id,
                             struct store_passport_out *ret);
int store_consortium_out_put(struct store_consortium *c, const char *id, int64_t member_id,
                             const struct store_passport_out *o);
typedef int (*store_consortium_out_fn)(const char *id, int64_t member_id, bool revoked,
                                       int64_t issued, void *userdata);
int store_consortium_out_foreach(struct store_consortium *c, store_consortium_out_fn fn,
                                 void *userdata);

/* Another site's passport, as cached. */
struct store_passport {
    char home[32];
    char id[40];
    bool revoked;
    int64_t issued, expires;
    int64_t visit_days;
    char month[8];
    int64_t used_elsewhere;         /* days used at other sites in month, per the passport */
    bool card_desfire;              /* find: the card looked up is a provisioned DESFire */
};
/* Cache p with its cards and which of them are DESFire (desfire may be NULL: none),
 * replacing what was cached for it. -ESTALE if the cache holds a newer one; -ENOSPC if p is
 * new and max passports are cached. */
int store_consortium_passport_put(struct store_consortium *c, const struct store_passport *p,
                                  const uint8_t (*cards)[32], const bool *desfire,
                                  unsigned n_cards, int64_t max, int64_t now);
int store_consortium_passport_delete(struct store_consortium *c, const char *home,
                                     const char *id);
/* A passport of (home, id) issued at issued has expired: forget the cached one, unless the
 * cache holds a newer one (an old passport delivered late must not erase the current). */
int store_consortium_passport_expired(struct store_consortium *c, const char *home,
                                      const char *id, int64_t issued);
/* Drop passports expired at now; returns how many. */
int store_consortium_passports_expire(struct store_consortium *c, int64_t now);
/* The passport carrying card hash (-ENOENT: none). Local only: this is the door's path. */
int store_consortium_passport_find(struct store_consortium *c, const uint8_t hash[32],
                                   int64_t now, struct store_passport *ret);

/* A visit day recorded here. */
struct store_visit {
    char home[32];
    char visitor[40];
    char billing_day[11];
    char door[32];
    int64_t at;
    int64_t amount_cents;
    int64_t ledger_seq;
};
/* -EEXIST (as the store reports a UNIQUE conflict) if that visitor's day is recorded. */
int store_consortium_visit_add(struct store_consortium *c, const struct store_visit *v,
                               int64_t *ret_id);
/* Visit days recorded here for a visitor between two billing days (inclusive), or -errno. */
int64_t store_consortium_visit_days(struct store_consortium *c, const char *home,
                                    const char *visitor, const char *first_day,
                                    const char *last_day);

/* Visit days recorded here between two billing days, per home and visitor. */
typedef int (*store_consortium_visits_fn)(const char *home, const char *visitor, int64_t days,
                                          void *userdata);
int store_consortium_visits_month_foreach(struct store_consortium *c, const char *first_day,
                                          const char *last_day, store_consortium_visits_fn fn,
                                          void *userdata);

/* Visit days of one of this site's members at host in month, as the host's notice says
 * (kept at the highest heard: notices count up within a month). */
int store_consortium_heard_put(struct store_consortium *c, const char *visitor, const char *host,
                               const char *month, int64_t days, int64_t now);
typedef int (*store_consortium_heard_fn)(const char *host, int64_t days, void *userdata);
int store_consortium_heard_foreach(struct store_consortium *c, const char *visitor,
                                   const char *month, store_consortium_heard_fn fn,
                                   void *userdata);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* custodian_db: every byte of SQL of portier-custodian, on its own SQLite database (WAL).
 *
 * What the custodian trusts is in `sites`: a site's name and Ed25519 public key, entered
 * by the custodian's operator (`site add`), never learnt from the network. `entries` holds
 * each site's ledger entries that verified, gap-free from 1 to sites.verified_seq;
 * `problems` what went wrong (forged or malformed batches, gaps, replays, unknown sites).
 * Entries and problems are append-only (triggers), except that a gap is marked resolved
 * once it is filled. Functions return 0 (or a count) or -errno. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ledger_batch.h"
#include "period_seal.h"

#define CDB_SCHEMA_VERSION 5

struct cdb;

int cdb_open(const char *path, struct cdb **ret);
struct cdb *cdb_free(struct cdb *db);

struct cdb_site {
    char name[32];
    uint8_t public_key[LEDGER_PK_LEN];
    char timezone[64];
    int64_t day_starts;                 /* minutes after local midnight */
    int64_t added_at;
    int64_t verified_seq;               /* entries 1..verified_seq are stored and verified */
    uint8_t verified_hash[LEDGER_HASH_LEN];
    int64_t batch_first;                /* the batch whose signature covers verified_hash */
    uint8_t batch_sig[LEDGER_SIG_LEN];
    int64_t last_batch_at;
    int64_t replays;
    int64_t open_problems;              /* listings only */
};

/* -EEXIST if the name is registered. */
int cdb_site_add(struct cdb *db, const struct cdb_site *site);
/* -ENOENT if unknown. */
int cdb_site_get(struct cdb *db, const char *name, struct cdb_site *ret);
typedef int (*cdb_site_fn)(const struct cdb_site *s, void *userdata);
int cdb_sites_foreach(struct cdb *db, cdb_site_fn fn, void *userdata);

/* The hash of a stored entry: -ENOENT if not stored. */
int cdb_entry_hash(struct cdb *db, const char *site, int64_t seq, uint8_t hash[LEDGER_HASH_LEN]);
/* Store b's entries from index `from` on (they continue the site's verified chain: the
 * caller checked), move the site's verified_seq to b->last, resolve the gaps this fills;
 * one transaction. billing_day(e, buf) names each entry's billing day. */
int cdb_store_batch(struct cdb *db, const struct ledger_batch *b, unsigned from, int64_t now,
                    void (*billing_day)(const struct ledger_entry *e, char out[11], void *ud),
                    void *ud);
int cdb_count_replay(struct cdb *db, const char *site);
int64_t cdb_entry_count(struct cdb *db, const char *site);

struct cdb_problem {
    int64_t id, at;
    char site[32];
    char kind[16];                      /* forged, malformed, fork, gap, replay, unknown_site */
    int64_t first_seq, last_seq;
    char detail[256];
    int64_t resolved_at;                /* gaps: when filled; 0: open */
};
int cdb_problem_add(struct cdb *db, const struct cdb_problem *p);
/* An open gap of site starting at first_seq is already recorded. */
bool cdb_gap_open(struct cdb *db, const char *site, int64_t first_seq);
typedef int (*cdb_problem_fn)(const struct cdb_problem *p, void *userdata);
/* site NULL: all; since: at >= since. Newest first, at most limit (0: all). */
int cdb_problems_foreach(struct cdb *db, const char *site, int64_t since, int64_t limit,
                         cdb_problem_fn fn, void *userdata);

/* ---- reports ---- */
struct cdb_usage_row {
    char site[32];
    char kind[16];
    int64_t records, quantity, amount_cents;
};
typedef int (*cdb_usage_fn)(const struct cdb_usage_row *r, void *userdata);
/* Per site and kind, for billing days in [first_day, last_day]. */
int cdb_usage_foreach(struct cdb *db, const char *first_day, const char *last_day,
                      cdb_usage_fn fn, void *userdata);

/* Visits (entries of kind "visit") per home site x host site in [first_day, last_day]. */
struct cdb_visit_row {
    char home[32], host[32];
    int64_t visits, amount_cents;
};
typedef int (*cdb_visit_fn)(const struct cdb_visit_row *r, void *userdata);
int cdb_visits_foreach(struct cdb *db, const char *first_day, const char *last_day,
                       cdb_visit_fn fn, void *userdata);

/* ---- period seals (period_seal.h), as received from the sites ---- */
struct cdb_seal {
    char site[32];
    char period[8];
    char first_day[11], last_day[11];
    int64_t last_seq;
    uint8_t last_hash[LEDGER_HASH_LEN];
    uint8_t archive_sha256[32];
    int64_t closed_at;
    char text[PERIOD_SEAL_TEXT_MAX + 1];    /* the signed text, byte for byte */
    uint8_t sig[LEDGER_SIG_LEN];
    int64_t received_at;
    char state[12];                         /* "waiting", "verified", "mismatch" */
    int64_t checked_at;
};
/* -EEXIST if the site already has a seal for that period. */
int cdb_seal_add(struct cdb *db, const struct cdb_seal *s);
/* -ENOENT if none. */
int cdb_seal_get(struct cdb *db, const char *site, const char *period, struct cdb_seal *ret);
typedef int (*cdb_seal_fn)(const struct cdb_seal *s, void *userdata);
/* site, period: NULL for all. Ordered by period, then site. */
int cdb_seals_foreach(struct cdb *db, const char *site, const char *period, cdb_seal_fn fn,
                      void *userdata);
int cdb_seal_set_state(struct cdb *db, const char *site, const char *period, const char *state,
                       int64_t now);
/* The highest last_seq among site's seals of periods before period (0: none), or -errno. */
int64_t cdb_seal_prev_last_seq(struct cdb *db, const char *site, const char *period);

/* Stored entries of site with from <= seq <= to, in seq order, as ledger entries (hash,
 * prev_hash and checkpoint signature as received; e->site is site). */
typedef int (*cdb_entry_fn)(const struct ledger_entry *e, void *userdata);
int cdb_entries_foreach(struct cdb *db, const char *site, int64_t from, int64_t to,
                        cdb_entry_fn fn, void *userdata);

/* ---- open data (docs/opendata.md) ----
 * What the published dataset says of a site, entered by the custodian's operator (the
 * ledger carries none of it). Every string is "" when not set. */
struct cdb_place {
    char site[32];
    char label[128];                    /* public name; "" publishes the site's name */
    char commune[128];
    char insee_code[8];                 /* the commune's INSEE code: 5 characters */
    char latitude[16], longitude[16];   /* WGS 84 decimal degrees, as entered */
};
/* Replace site's place. -ENOENT if the site is not registered. */
int cdb_place_set(struct cdb *db, const struct cdb_place *p);
/* -ENOENT if none was set (ret then holds only the site's name). */
int cdb_place_get(struct cdb *db, const char *site, struct cdb_place *ret);

/* The category site's machine (a ledger entry's resource) is published under; category ""
 * removes it. -ENOENT if the site is not registered. */
int cdb_machine_category_set(struct cdb *db, const char *site, const char *machine,
                             const char *category);
struct cdb_machine_category {
    char site[32], machine[32], category[32];
};
typedef int (*cdb_machine_category_fn)(const struct cdb_machine_category *c, void *userdata);
/* site NULL: every site's. Ordered by site, then machine. */
int cdb_machine_categories_foreach(struct cdb *db, const char *site, cdb_machine_category_fn fn,
                                   void *userdata);

/* The lowest seq among site's entries with billing days in [first_day, last_day] and
 * seq <= max_seq; 0 if none, or -errno. */
int64_t cdb_entries_first_seq(struct cdb *db, const char *site, const char *first_day,
                              const char *last_day, int64_t max_seq);

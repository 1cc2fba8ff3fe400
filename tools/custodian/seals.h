/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* seals: the sites' period seals at the custodian (period_seal.h), and their export.
 *
 * A seal arrives retained on PREFIX/SITE/ledger/period/YYYY-MM. Before anything is stored:
 * its size and form (period_seal_from_json, period_seal_parse), that the topic's site and
 * period are the text's, that the site is registered and the signature verifies with its
 * registered key. A valid seal is stored once ("waiting"); the same seal again changes
 * nothing; another validly signed seal for a stored period is a `seal_conflict` problem
 * and is not stored. Once the site's verified chain reaches the seal's last_seq, the
 * stored hash of that entry must be the seal's last_hash: "verified", or "mismatch" and a
 * `seal_mismatch` problem. Refusals are problems too: unknown_site, forged, malformed. */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "custodian_db.h"

enum seal_outcome {
    SEAL_STORED,
    SEAL_SAME,              /* already stored, byte for byte (a retained seal seen again) */
    SEAL_CONFLICT,          /* validly signed, but another seal is stored for that period */
    SEAL_FORGED,            /* the signature does not verify with the registered key */
    SEAL_MALFORMED,
    SEAL_UNKNOWN_SITE,
    SEAL_ERROR,             /* the custodian's own database failed */
};

struct seal_result {
    enum seal_outcome outcome;
    char site[32];
    char period[8];
    char state[12];         /* after receiving it: waiting, verified or mismatch */
    char detail[200];
};

/* topic_site, topic_period: the SITE and YYYY-MM levels of the topic. */
void seals_receive(struct cdb *db, const char *topic_site, const char *topic_period,
                   const void *payload, size_t len, int64_t now, struct seal_result *res);
const char *seals_outcome_name(enum seal_outcome o);
/* Settle site's waiting seals its verified chain now reaches. Returns how many turned out
 * mismatched (each a seal_mismatch problem), or -errno. */
int seals_check(struct cdb *db, const char *site, int64_t now);

/* Walking stored entries again, in seq order from `expected` (the export, the open data):
 * each must be the one expected, hash to what is stored, and name the one before it
 * (prev) — all but the first when the hash before it is not known (prev_known false). */
struct seals_chain {
    int64_t expected;
    uint8_t prev[LEDGER_HASH_LEN];
    bool prev_known;
    char problem[200];
};
/* Check the next stored entry and step over it: 0, or -EBADMSG with the problem said. */
int seals_chain_next(struct seals_chain *w, const struct ledger_entry *stored);

/* Write DIR/SITE-PERIOD.{ledger,seal,verify.txt} for each site (or only `site`) with a
 * verified seal for period, after checking again every hash, link and signature.
 * What cannot be exported (no seal, a seal waiting or mismatched, a check failing) is said
 * on err and nothing is written for it. Returns 0 if everything asked for was exported,
 * 1 if anything was not, -errno if the database or a file failed. Progress on out. */
int seals_export(struct cdb *db, const char *period, const char *site, const char *dir,
                 FILE *out, FILE *err);

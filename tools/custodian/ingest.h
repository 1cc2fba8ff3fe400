/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ingest: what the custodian does with one batch of a site's ledger entries.
 *
 * In order, and before anything is stored: the payload's form (ledger_batch_parse), the
 * site's registration (the topic's site and the batch's must agree, and be registered:
 * keys come only from the registry), the batch on its own (every hash, every link,
 * checkpoint signatures, the batch signature: ledger_batch_check), then its place in the
 * site's verified chain:
 *
 *   last <= verified            a replay: nothing changes (a fork if its hash differs)
 *   first <= verified + 1       stored from verified + 1 on, if it continues the chain
 *   first > verified + 1        a gap: nothing stored; ask for verified + 1 .. last again
 *
 * Each outcome but "stored" is a row in the problems table (gaps once, until filled). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "custodian_db.h"

enum ingest_outcome {
    INGEST_STORED,
    INGEST_REPLAY,
    INGEST_GAP,
    INGEST_FORGED,          /* a hash, link or signature does not verify */
    INGEST_FORK,            /* validly signed, but contradicts what is stored */
    INGEST_MALFORMED,
    INGEST_UNKNOWN_SITE,
    INGEST_ERROR,           /* the custodian's own database failed */
};

struct ingest_result {
    enum ingest_outcome outcome;
    char site[32];                      /* "" if the payload named none we could read */
    int64_t first, last;
    int64_t stored;                     /* entries newly stored */
    int64_t verified_seq;               /* the site's, after this batch */
    uint8_t verified_hash[LEDGER_HASH_LEN];
    int64_t resend_from, resend_to;     /* gaps: what to ask the site for */
    char detail[200];
};

struct ingest;

int ingest_new(struct cdb *db, struct ingest **ret);
struct ingest *ingest_free(struct ingest *in);
/* topic_site: the SITE level of the topic the payload came on. */
void ingest_batch(struct ingest *in, const char *topic_site, const void *payload, size_t len,
                  int64_t now, struct ingest_result *res);
const char *ingest_outcome_name(enum ingest_outcome o);

/* "YYYY-MM-DD" billing day of t on the wall clock of zone (an IANA time zone), with days
 * starting day_starts minutes after midnight (as the site's meter computes it). */
void ingest_billing_day(const char *zone, int64_t day_starts, int64_t t, char out[11]);

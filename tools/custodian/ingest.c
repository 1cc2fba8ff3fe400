/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "ledger_batch_json.h"

#define UNKNOWN_REMEMBERED 64

struct ingest {
    struct cdb *db;
    struct ledger_batch *batch;
    /* Sites not in the registry already reported since start: one problem row each. */
    char unknown[UNKNOWN_REMEMBERED][32];
    unsigned n_unknown;
};

int ingest_new(struct cdb *db, struct ingest **ret)
{
    struct ingest *in = calloc(1, sizeof(*in));

    if (!in)
        return -ENOMEM;
    in->batch = malloc(sizeof(*in->batch));
    if (!in->batch) {
        free(in);
        return -ENOMEM;
    }
    in->db = db;
    *ret = in;
    return 0;
}

struct ingest *ingest_free(struct ingest *in)
{
    if (in) {
        free(in->batch);
        free(in);
    }
    return NULL;
}

const char *ingest_outcome_name(enum ingest_outcome o)
{
    static const char *const names[] = {
        [INGEST_STORED] = "stored", [INGEST_REPLAY] = "replay", [INGEST_GAP] = "gap",
        [INGEST_FORGED] = "forged", [INGEST_FORK] = "fork", [INGEST_MALFORMED] = "malformed",
        [INGEST_UNKNOWN_SITE] = "unknown_site", [INGEST_ERROR] = "error",
    };
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

void ingest_billing_day(const char *zone, int64_t day_starts, int64_t t, char out[11])
{
    static char current[64];
    time_t tt = (time_t)t;
    struct tm tm;

    if (strcmp(current, zone) != 0) {
        setenv("TZ", zone, 1);
        tzset();
        snprintf(current, sizeof(current), "%s", zone);
    }
    /* Wall-clock arithmetic, as meter_billing_day(): 02:30 with a 04:00 start is the day
     * before. */
    localtime_r(&tt, &tm);
    tm.tm_min -= (int)day_starts;
    tm.tm_isdst = -1;
    timegm(&tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

struct day_ctx {
    const struct cdb_site *site;
};

/* Corrections are dated when they were recorded (the site puts them on that day's
 * statement); everything else on the billing day of its start. */
static void entry_day(const struct ledger_entry *e, char out[11], void *userdata)
{
    const struct day_ctx *cx = userdata;
    int64_t t = strcmp(e->kind, "correction") == 0 ? e->recorded_at : e->started_at;
    ingest_billing_day(cx->site->timezone, cx->site->day_starts, t, out);
}

static void problem(struct ingest *in, struct ingest_result *res, const char *kind, int64_t now)
{
    struct cdb_problem p = { .at = now, .first_seq = res->first, .last_seq = res->last };

    snprintf(p.site, sizeof(p.site), "%s", res->site[0] ? res->site : "?");
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    snprintf(p.detail, sizeof(p.detail), "%s", res->detail);
    if (strcmp(kind, "gap") == 0) {
        p.first_seq = res->resend_from;
        p.last_seq = res->resend_to;
    }
    if (cdb_problem_add(in->db, &p) < 0)
        res->outcome = INGEST_ERROR;
}

static bool unknown_reported(struct ingest *in, const char *site)
{
    for (unsigned i = 0; i < in->n_unknown; i++)
        if (strcmp(in->unknown[i], site) == 0)
            return true;
    if (in->n_unknown < UNKNOWN_REMEMBERED)
        snprintf(in->unknown[in->n_unknown++], sizeof(in->unknown[0]), "%s", site);
    return false;
}

void ingest_batch(struct ingest *in, const char *topic_site, const void *payload, size_t len,
                  int64_t now, struct ingest_result *res)
{
    struct ledger_batch *b = in->batch;
    struct ledger_verifier v;
    struct cdb_site site;
    struct day_ctx day = { .site = &site };
    uint8_t stored_hash[LEDGER_HASH_LEN];
    char why[160];
    int64_t from;
    int r;

    memset(res, 0, sizeof(*res));
    if (name_is_valid(topic_site))
        snprintf(res->site, sizeof(res->site), "%s", topic_site);

    if (ledger_batch_parse(payload, len, b, why, sizeof(why)) < 0) {
        res->outcome = INGEST_MALFORMED;
        snprintf(res->detail, sizeof(res->detail), "%s", why);
        problem(in, res, "malformed", now);
        return;
    }
    res->first = b->first;
    res->last = b->last;
    if (strcmp(b->site, topic_site) != 0) {
        res->outcome = INGEST_MALFORMED;
        snprintf(res->detail, sizeof(res->detail), "batch of site '%s' on the topic of another",
                 b->site);
        problem(in, res, "malformed", now);
        return;
    }
    r = cdb_site_get(in->db, b->site, &site);
    if (r == -ENOENT) {
        res->outcome = INGEST_UNKNOWN_SITE;
        snprintf(res->detail, sizeof(res->detail), "site '%s' is not registered "
                 "(portier-custodian site add)", b->site);
        if (!unknown_reported(in, b->site))
            problem(in, res, "unknown_site", now);
        return;
    }
    if (r < 0) {
        res->outcome = INGEST_ERROR;
        snprintf(res->detail, sizeof(res->detail), "database: %s", strerror(-r));
        return;
    }
    res->verified_seq = site.verified_seq;
    memcpy(res->verified_hash, site.verified_hash, LEDGER_HASH_LEN);

    /* The batch on its own, with the registered key: nothing unverified goes further. */
    if (!ledger_batch_check(b, site.public_key, &v)) {
        res->outcome = INGEST_FORGED;
        snprintf(res->detail, sizeof(res->detail), "entry %" PRId64 ": %s", v.bad_seq,
                 v.problem);
        problem(in, res, "forged", now);
        return;
    }

    /* Its place in the verified chain. */
    if (b->last <= site.verified_seq) {
        r = cdb_entry_hash(in->db, b->site, b->last, stored_hash);
        if (r < 0) {
            res->outcome = INGEST_ERROR;
            snprintf(res->detail, sizeof(res->detail), "database: %s", strerror(-r));
            return;
        }
        if (memcmp(stored_hash, b->entries[b->n - 1].hash, LEDGER_HASH_LEN) != 0) {
            res->outcome = INGEST_FORK;
            snprintf(res->detail, sizeof(res->detail), "validly signed entries %" PRId64 "-%"
                     PRId64 " differ from those verified before (the site rewrote its ledger)",
                     b->first, b->last);
            problem(in, res, "fork", now);
            return;
        }
        res->outcome = INGEST_REPLAY;
        snprintf(res->detail, sizeof(res->detail), "entries %" PRId64 "-%" PRId64 " received "
                 "again (verified up to %" PRId64 "): ignored, nothing counted twice", b->first,
                 b->last, site.verified_seq);
        cdb_count_replay(in->db, b->site);
        problem(in, res, "replay", now);
        return;
    }
    if (b->first > site.verified_seq + 1) {
        res->outcome = INGEST_GAP;
        res->resend_from = site.verified_seq + 1;
        res->resend_to = b->last;
        snprintf(res->detail, sizeof(res->detail), "entries %" PRId64 "-%" PRId64 " missing "
                 "before batch %" PRId64 "-%" PRId64 ": asked again", res->resend_from,
                 b->first - 1, b->first, b->last);
        if (!cdb_gap_open(in->db, b->site, res->resend_from))
            problem(in, res, "gap", now);
        return;
    }
    from = site.verified_seq + 1;
    /* The batch's entry `from` must continue the stored chain. */
    if (memcmp(b->entries[from - b->first].prev_hash, site.verified_hash, LEDGER_HASH_LEN) != 0) {
        res->outcome = INGEST_FORK;
        snprintf(res->detail, sizeof(res->detail), "entry %" PRId64 " does not continue the "
                 "verified chain (its previous hash is not that of entry %" PRId64 ")", from,
                 site.verified_seq);
        problem(in, res, "fork", now);
        return;
    }
    r = cdb_store_batch(in->db, b, (unsigned)(from - b->first), now, entry_day, &day);
    if (r < 0) {
        res->outcome = INGEST_ERROR;
        snprintf(res->detail, sizeof(res->detail), "cannot store entries: %s", strerror(-r));
        return;
    }
    res->outcome = INGEST_STORED;
    res->stored = b->last - from + 1;
    res->verified_seq = b->last;
    memcpy(res->verified_hash, b->entries[b->n - 1].hash, LEDGER_HASH_LEN);
    snprintf(res->detail, sizeof(res->detail), "entries %" PRId64 "-%" PRId64 " verified",
             from, b->last);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The consortium's pure parts and the custodian's ingestion: ledger batches on the wire
 * (canonical decoding, JSON, signatures), and what ingest_batch() does with a stored,
 * replayed, forged, forked or early batch, on a real custodian database in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "custodian_db.h"
#include "ingest.h"
#include "ledger_batch.h"
#include "ledger_batch_json.h"
#include "passport.h"
#include "passport_json.h"
#include "period_seal.h"
#include "period_seal_json.h"
#include "report.h"
#include "seals.h"
#include "web.h"

#define SITE "lyon"

static uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
static uint8_t other_pk[LEDGER_PK_LEN], other_sk[LEDGER_SK_LEN];

/* A chain of n entries of SITE, day charges of 15 EUR, checkpoints signed; with energy,
 * every third entry is a metered machine session instead. */
static struct ledger_entry *chain_of(int64_t n, bool energy)
{
    struct ledger_entry *es = calloc((size_t)n, sizeof(*es));
    uint8_t prev[LEDGER_HASH_LEN] = { 0 };

    for (int64_t i = 0; i < n; i++) {
        struct ledger_entry *e = &es[i];
        snprintf(e->site, sizeof(e->site), SITE);
        e->seq = i + 1;
        memcpy(e->prev_hash, prev, LEDGER_HASH_LEN);
        e->usage_id = i + 1;
        snprintf(e->kind, sizeof(e->kind), "day");
        e->member_id = 1 + i % 7;
        snprintf(e->resource, sizeof(e->resource), "front");
        e->started_at = e->ended_at = 1790000000 + i * 3600;
        e->quantity = 1;
        snprintf(e->unit, sizeof(e->unit), "day");
        e->amount_cents = 1500;
        snprintf(e->allowance, sizeof(e->allowance), "rate");
        e->recorded_at = e->started_at;
        if (energy && i % 3 == 2) {
            snprintf(e->kind, sizeof(e->kind), "machine");
            snprintf(e->resource, sizeof(e->resource), "kiln");
            snprintf(e->unit, sizeof(e->unit), "minute");
            e->quantity = 90;
            e->has_energy = true;
            e->energy_wh = 1000 + i;
        }
        ledger_hash(e);
        if (ledger_is_checkpoint(e->seq))
            ledger_sign(e, sk);
        memcpy(prev, e->hash, LEDGER_HASH_LEN);
    }
    return es;
}

static struct ledger_entry *chain(int64_t n)
{
    return chain_of(n, false);
}

static struct ledger_batch *batch_of(const struct ledger_entry *es, int64_t first, int64_t last,
                                     const uint8_t *key)
{
    struct ledger_batch *b = calloc(1, sizeof(*b));
    uint8_t msg[160];
    size_t len;

    snprintf(b->site, sizeof(b->site), SITE);
    b->first = first;
    b->last = last;
    b->n = (unsigned)(last - first + 1);
    memcpy(b->entries, &es[first - 1], b->n * sizeof(*es));
    len = ledger_batch_message(SITE, first, last, b->entries[b->n - 1].hash, msg, sizeof(msg));
    crypto_sign_detached(b->sig, NULL, msg, len, key);
    return b;
}

static char *json_of(const struct ledger_batch *b, size_t *len)
{
    char *text = ledger_batch_to_json(b, len);
    assert_non_null(text);
    return text;
}

/* ---- canonical decoding ---- */

static void test_decode_round_trip(void **state)
{
    struct ledger_entry *es = chain(3), e;
    char buf[LEDGER_ENCODING_MAX];
    int len = ledger_encode(&es[2], buf, sizeof(buf));

    assert_int_equal(ledger_decode(buf, (size_t)len, &e), 0);
    assert_int_equal(e.seq, 3);
    assert_string_equal(e.kind, "day");
    assert_int_equal(e.amount_cents, 1500);
    assert_memory_equal(e.prev_hash, es[2].prev_hash, LEDGER_HASH_LEN);
    assert_memory_equal(e.hash, es[2].hash, LEDGER_HASH_LEN);
    free(es);
}

static void test_decode_refuses_non_canonical(void **state)
{
    struct ledger_entry *es = chain(1), e;
    char buf[LEDGER_ENCODING_MAX], bad[LEDGER_ENCODING_MAX + 8];
    int len = ledger_encode(&es[0], buf, sizeof(buf));
    static const char *const swaps[][2] = {
        { "amount_cents=1500", "amount_cents=+1500" },     /* a sign strtoll would take */
        { "amount_cents=1500", "amount_cents=01500" },     /* leading zero */
        { "seq=1\n", "seq=1 \n" },
        { "kind=day\n", "kind=day\nextra=1\n" },           /* a line too many */
        { "unit=day\n", "" },                              /* a line missing */
        { "portier-ledger-v1\n", "portier-ledger-v2\n" },
        { "seq=1\n", "seq=0\n" },
    };

    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        const char *at = strstr(buf, swaps[i][0]);
        assert_non_null(at);
        snprintf(bad, sizeof(bad), "%.*s%s%s", (int)(at - buf), buf, swaps[i][1],
                 at + strlen(swaps[i][0]));
        assert_int_equal(ledger_decode(bad, strlen(bad), &e), -EBADMSG);
    }
    /* Upper-case hex in prev: the same bytes, another encoding. */
    snprintf(bad, sizeof(bad), "%s", buf);
    char *prev = strstr(bad, "prev=") + 5;
    prev[0] = 'A';      /* prev of entry 1 is all zeros: '0' -> 'A' is not lower-case hex */
    assert_int_equal(ledger_decode(bad, strlen(bad), &e), -EBADMSG);
    /* Without the final newline, or cut anywhere. */
    for (int cut = 0; cut < len; cut++)
        assert_int_equal(ledger_decode(buf, (size_t)cut, &e), -EBADMSG);
    free(es);
}

/* ---- batches ---- */

static void test_batch_json_round_trip_and_check(void **state)
{
    struct ledger_entry *es = chain(600);
    struct ledger_batch *b = batch_of(es, 257, 512, sk), *back = calloc(1, sizeof(*back));
    struct ledger_verifier v;
    char why[160];
    size_t len;
    char *text = json_of(b, &len);

    assert_true(len <= LEDGER_BATCH_PAYLOAD_MAX);
    assert_int_equal(ledger_batch_parse(text, len, back, why, sizeof(why)), 0);
    assert_int_equal(back->first, 257);
    assert_int_equal(back->last, 512);
    assert_int_equal(back->n, 256);
    assert_true(back->entries[255].has_signature);     /* checkpoint 512 travelled */
    assert_false(back->entries[0].has_signature);
    assert_true(ledger_batch_check(back, pk, &v));
    assert_int_equal(v.signatures_checked, 2);          /* checkpoint 512 and the batch */
    /* Another site's key: refused. */
    assert_false(ledger_batch_check(back, other_pk, &v));
    free(text);
    free(back);
    free(b);
    free(es);
}

static void test_batch_check_finds_what_was_forged(void **state)
{
    struct ledger_entry *es = chain(10);
    struct ledger_batch *b;
    struct ledger_verifier v;

    /* An entry in the middle altered: the next one no longer links to it. */
    b = batch_of(es, 1, 10, sk);
    b->entries[4].amount_cents = 0;
    ledger_hash(&b->entries[4]);
    assert_false(ledger_batch_check(b, pk, &v));
    assert_int_equal(v.bad_seq, 6);
    assert_non_null(strstr(v.problem, "previous-hash link broken"));
    free(b);

    /* The last entry altered: only the batch signature can tell. */
    b = batch_of(es, 1, 10, sk);
    b->entries[9].amount_cents = 0;
    ledger_hash(&b->entries[9]);
    assert_false(ledger_batch_check(b, pk, &v));
    assert_int_equal(v.bad_seq, 10);
    assert_non_null(strstr(v.problem, "batch signature invalid"));
    free(b);

    /* Re-hashed and signed by someone else's key. */
    b = batch_of(es, 1, 10, other_sk);
    assert_false(ledger_batch_check(b, pk, &v));
    free(b);

    /* A checkpoint's signature cannot stand in for the batch signature (domains differ). */
    struct ledger_entry *big = chain(256);
    b = batch_of(big, 1, 256, sk);
    memcpy(b->sig, big[255].signature, LEDGER_SIG_LEN);
    assert_false(ledger_batch_check(b, pk, &v));
    /* A checkpoint arriving without its signature. */
    b->entries[255].has_signature = false;
    free(b);
    b = batch_of(big, 1, 256, sk);
    b->entries[255].has_signature = false;
    assert_false(ledger_batch_check(b, pk, &v));
    assert_int_equal(v.bad_seq, 256);
    free(b);
    free(big);
    free(es);
}

static void parse_fails(const char *text, const char *why_part)
{
    struct ledger_batch *b = calloc(1, sizeof(*b));
    char why[160] = "";

    assert_int_equal(ledger_batch_parse(text, strlen(text), b, why, sizeof(why)), -EBADMSG);
    if (!strstr(why, why_part))
        fail_msg("reason '%s' lacks '%s' for %s", why, why_part, text);
    free(b);
}

static void test_batch_parse_limits(void **state)
{
    struct ledger_entry *es = chain(3);
    struct ledger_batch *b = batch_of(es, 1, 3, sk);
    size_t len;
    char *text = json_of(b, &len), *big;

    parse_fails("", "payload must be");
    parse_fails("[]", "malformed batch");
    parse_fails("{\"v\":1}", "malformed batch");
    parse_fails("{\"v\":1,\"v\":1}", "not JSON");                 /* duplicate key */
    /* An unknown key, a version from the future, a count that does not match. */
    {
        char buf[8192];
        snprintf(buf, sizeof(buf), "%.*s,\"more\":1}", (int)len - 1, text);
        parse_fails(buf, "malformed batch");
        snprintf(buf, sizeof(buf), "%s", text);
        memcpy(strstr(buf, "\"v\":1"), "\"v\":2", 5);
        parse_fails(buf, "unknown batch version");
        snprintf(buf, sizeof(buf), "%s", text);
        memcpy(strstr(buf, "\"last\":3"), "\"last\":4", 8);
        parse_fails(buf, "entries do not match");
        snprintf(buf, sizeof(buf), "%s", text);
        memcpy(strstr(buf, "\"site\":\"lyon\""), "\"site\":\"lyo/\"", 13);
        parse_fails(buf, "bad site id");
    }
    /* Larger than the limit: refused before parsing. */
    big = malloc(LEDGER_BATCH_PAYLOAD_MAX + 2);
    memset(big, ' ', LEDGER_BATCH_PAYLOAD_MAX + 1);
    big[LEDGER_BATCH_PAYLOAD_MAX + 1] = '\0';
    parse_fails(big, "payload must be");
    free(big);
    free(text);
    free(b);
    free(es);
}

/* ---- ingestion ---- */

struct fixture {
    char path[PATH_MAX];
    struct cdb *db;
    struct ingest *in;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("PORTIER_TEST_TMP");
    struct cdb_site s = { .name = SITE, .timezone = "Europe/Paris", .day_starts = 240 };

    if (tmp)
        mkdir(tmp, 0700);
    snprintf(f->path, sizeof(f->path), "%s/custodian-%d.db", tmp ? tmp : "/tmp", (int)getpid());
    unlink(f->path);
    assert_int_equal(cdb_open(f->path, &f->db), 0);
    memcpy(s.public_key, pk, LEDGER_PK_LEN);
    assert_int_equal(cdb_site_add(f->db, &s), 0);
    assert_int_equal(cdb_site_add(f->db, &s), -EEXIST);
    assert_int_equal(ingest_new(f->db, &f->in), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char wal[PATH_MAX + 8];
    ingest_free(f->in);
    cdb_free(f->db);
    unlink(f->path);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", f->path);
    unlink(wal);
    free(f);
    return 0;
}

static enum ingest_outcome feed(struct fixture *f, const struct ledger_batch *b,
                                struct ingest_result *res)
{
    size_t len;
    char *text = json_of(b, &len);
    ingest_batch(f->in, SITE, text, len, 1790000000, res);
    free(text);
    return res->outcome;
}

static int count_problems(const struct cdb_problem *p, void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

static int problems(struct fixture *f)
{
    int n = 0;
    cdb_problems_foreach(f->db, NULL, 0, 0, count_problems, &n);
    return n;
}

static void test_ingest_stores_replays_and_gaps(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain(30);
    struct ingest_result res;
    struct ledger_batch *b;

    /* 1-10 stored. */
    b = batch_of(es, 1, 10, sk);
    assert_int_equal(feed(f, b, &res), INGEST_STORED);
    assert_int_equal(res.stored, 10);
    assert_int_equal(res.verified_seq, 10);
    assert_memory_equal(res.verified_hash, es[9].hash, LEDGER_HASH_LEN);
    assert_int_equal(cdb_entry_count(f->db, SITE), 10);

    /* The same again: a replay, nothing stored twice. */
    assert_int_equal(feed(f, b, &res), INGEST_REPLAY);
    assert_int_equal(cdb_entry_count(f->db, SITE), 10);
    free(b);

    /* 21-30 before 11-20: a gap, nothing stored, ask for 11-30. */
    b = batch_of(es, 21, 30, sk);
    assert_int_equal(feed(f, b, &res), INGEST_GAP);
    assert_int_equal(res.resend_from, 11);
    assert_int_equal(res.resend_to, 30);
    assert_int_equal(cdb_entry_count(f->db, SITE), 10);
    /* The same gap again is reported once. */
    assert_int_equal(feed(f, b, &res), INGEST_GAP);
    assert_int_equal(problems(f), 2);                  /* the replay and the gap */
    assert_true(cdb_gap_open(f->db, SITE, 11));
    free(b);

    /* The answer overlaps what is stored (5-30): only 11-30 are new. */
    b = batch_of(es, 5, 30, sk);
    assert_int_equal(feed(f, b, &res), INGEST_STORED);
    assert_int_equal(res.stored, 20);
    assert_int_equal(cdb_entry_count(f->db, SITE), 30);
    assert_false(cdb_gap_open(f->db, SITE, 11));       /* filled: resolved */
    free(b);
    free(es);
}

/* Entries with energy and without, in one chain: stored with their energy and read back
 * so that every hash recomputes (the custodian re-verifies from its own database). */
static int reverify(const struct ledger_entry *e, void *userdata)
{
    struct ledger_verifier *v = userdata;
    return ledger_verifier_feed(v, e) ? 0 : -EBADMSG;
}

static void test_ingest_keeps_energy(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain_of(12, true);
    struct ingest_result res;
    struct ledger_verifier v;
    struct ledger_batch *b = batch_of(es, 1, 12, sk);

    assert_int_equal(feed(f, b, &res), INGEST_STORED);
    assert_int_equal(res.stored, 12);
    ledger_verifier_init(&v, SITE, pk);
    assert_true(cdb_entries_foreach(f->db, SITE, 1, 12, reverify, &v) >= 0);
    assert_int_equal(v.entries, 12);
    assert_int_equal(v.bad_seq, 0);
    free(b);
    free(es);
}

static void test_ingest_refuses_forgeries_forks_and_strangers(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain(20), *other;
    struct ingest_result res;
    struct ledger_batch *b;
    struct cdb_site s;

    b = batch_of(es, 1, 10, sk);
    assert_int_equal(feed(f, b, &res), INGEST_STORED);
    free(b);

    /* Forged: altered entry 15. */
    b = batch_of(es, 11, 20, sk);
    b->entries[4].amount_cents = 1;
    ledger_hash(&b->entries[4]);
    assert_int_equal(feed(f, b, &res), INGEST_FORGED);
    assert_non_null(strstr(res.detail, "entry 16"));
    free(b);

    /* Signed by another key. */
    b = batch_of(es, 11, 20, other_sk);
    assert_int_equal(feed(f, b, &res), INGEST_FORGED);
    free(b);

    /* A validly signed other history (the site rewrote its ledger): a fork, both when it
     * claims to continue and when it restates what is stored. */
    other = chain(20);
    other[10].amount_cents = 0;             /* entry 11 differs, then re-chained and signed */
    for (int i = 10; i < 20; i++) {
        if (i > 10)
            memcpy(other[i].prev_hash, other[i - 1].hash, LEDGER_HASH_LEN);
        ledger_hash(&other[i]);
    }
    for (int i = 0; i < 10; i++)
        other[i].amount_cents = 1;          /* a rewritten past */
    for (int i = 0; i < 20; i++) {
        if (i > 0)
            memcpy(other[i].prev_hash, other[i - 1].hash, LEDGER_HASH_LEN);
        ledger_hash(&other[i]);
    }
    b = batch_of(other, 11, 20, sk);
    assert_int_equal(feed(f, b, &res), INGEST_FORK);
    free(b);
    b = batch_of(other, 1, 10, sk);
    assert_int_equal(feed(f, b, &res), INGEST_FORK);
    free(b);
    free(other);

    /* Nothing of that changed the verified chain. */
    assert_int_equal(cdb_site_get(f->db, SITE, &s), 0);
    assert_int_equal(s.verified_seq, 10);
    assert_int_equal(cdb_entry_count(f->db, SITE), 10);

    /* On another site's topic, or from an unregistered site. */
    {
        size_t len;
        b = batch_of(es, 11, 20, sk);
        char *text = json_of(b, &len);
        ingest_batch(f->in, "paris", text, len, 1790000000, &res);
        assert_int_equal(res.outcome, INGEST_MALFORMED);
        free(text);
        snprintf(b->site, sizeof(b->site), "paris");
        text = json_of(b, &len);
        ingest_batch(f->in, "paris", text, len, 1790000000, &res);
        /* its entries say lyon: refused as malformed before the registry is asked */
        assert_int_equal(res.outcome, INGEST_MALFORMED);
        free(text);
        free(b);
    }
    ingest_batch(f->in, SITE, "not json", 8, 1790000000, &res);
    assert_int_equal(res.outcome, INGEST_MALFORMED);
    free(es);
}

/* ---- period seals ---- */

static const char SEAL_TEXT[] =
    "portier-period-v1\nsite=lyon\nperiod=2026-10\nfirst_day=2026-10-01\n"
    "last_day=2026-10-31\nlast_seq=10\n"
    "last_hash=0000000000000000000000000000000000000000000000000000000000000000\n"
    "archive_sha256=0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c\n"
    "closed_at=1793713802\n";

static struct period_seal seal_of(int64_t last_seq, const uint8_t hash[LEDGER_HASH_LEN],
                                  const char *period)
{
    struct period_seal s = { .site = SITE, .first_day = "2026-10-01", .last_day = "2026-10-31",
                             .last_seq = last_seq, .closed_at = 1793713802 };
    snprintf(s.period, sizeof(s.period), "%s", period);
    memcpy(s.last_hash, hash, LEDGER_HASH_LEN);
    memset(s.archive_sha256, 0x0c, sizeof(s.archive_sha256));
    return s;
}

/* The payload of s signed with key. */
static char *seal_payload(const struct period_seal *s, const uint8_t *key, size_t *len)
{
    char text[PERIOD_SEAL_TEXT_MAX + 1];
    uint8_t sig[PERIOD_SEAL_SIG_LEN];
    int n = period_seal_encode(s, text, sizeof(text));

    assert_true(n > 0);
    crypto_sign_detached(sig, NULL, (const uint8_t *)text, (size_t)n, key);
    return period_seal_to_json(text, sig, len);
}

static void test_period_seal_encode_parse_verify(void **state)
{
    static const uint8_t zeros[LEDGER_HASH_LEN];
    struct period_seal s = seal_of(10, zeros, "2026-10"), back;
    char text[PERIOD_SEAL_TEXT_MAX + 1], buf[PERIOD_SEAL_TEXT_MAX + 1], *json;
    uint8_t sig[PERIOD_SEAL_SIG_LEN], sig2[PERIOD_SEAL_SIG_LEN];
    size_t len;
    int n;

    (void)state;
    n = period_seal_encode(&s, text, sizeof(text));
    assert_int_equal(n, (int)strlen(SEAL_TEXT));
    assert_string_equal(text, SEAL_TEXT);
    assert_int_equal(period_seal_parse(text, (size_t)n, &back), 0);
    assert_memory_equal(&back, &s, sizeof(s));
    /* Small on the wire: text and signature well under the payload limit. */
    crypto_sign_detached(sig, NULL, (const uint8_t *)text, (size_t)n, sk);
    json = period_seal_to_json(text, sig, &len);
    assert_true(len < 600);
    assert_int_equal(period_seal_from_json(json, len, buf, sig2), 0);
    assert_string_equal(buf, text);
    assert_true(period_seal_signature_ok(buf, strlen(buf), sig2, pk));
    assert_false(period_seal_signature_ok(buf, strlen(buf), sig2, other_pk));
    buf[strlen(buf) - 2] ^= 1;          /* closed_at changed by one second */
    assert_false(period_seal_signature_ok(buf, strlen(buf), sig2, pk));
    free(json);

    /* Anything period_seal_encode() would not write is refused, ret untouched. */
    static const char *const bad[] = {
        "portier-period-v2\n",
        "portier-ledger-v1\nsite=lyon\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(period_seal_parse(bad[i], strlen(bad[i]), &back), -EBADMSG);
    struct { const char *from, *to; } edits[] = {
        { "last_seq=10", "last_seq=010" },          /* leading zero */
        { "last_seq=10", "last_seq=-1" },
        { "period=2026-10", "period=2026-1" },
        { "first_day=2026-10-01", "first_day=2026-10-1x" },
        { "0c0c0c0c", "0C0C0C0C" },                 /* upper-case hex */
        { "site=lyon", "site=ly on" },
        { "closed_at=1793713802\n", "closed_at=1793713802\nnote=x\n" },
        { "closed_at=1793713802\n", "closed_at=1793713802" },
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *at;
        snprintf(buf, sizeof(buf), "%s", SEAL_TEXT);
        at = strstr(buf, edits[i].from);
        assert_non_null(at);
        memmove(at + strlen(edits[i].to), at + strlen(edits[i].from),
                strlen(at + strlen(edits[i].from)) + 1);
        memcpy(at, edits[i].to, strlen(edits[i].to));
        assert_int_equal(period_seal_parse(buf, strlen(buf), &back), -EBADMSG);
    }
    /* The payload: its limit, its form. */
    char big[PERIOD_SEAL_PAYLOAD_MAX + 2];
    memset(big, ' ', sizeof(big));
    assert_int_equal(period_seal_from_json(big, sizeof(big), buf, sig2), -EMSGSIZE);
    assert_int_equal(period_seal_from_json("{\"v\":1,\"text\":\"x\"}", 18, buf, sig2), -EBADMSG);
}

static void test_seals_stored_checked_and_refused(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain(20);
    struct ledger_batch *b = batch_of(es, 1, 10, sk);
    struct seal_result res;
    struct period_seal s;
    struct cdb_seal got;
    uint8_t wrong[LEDGER_HASH_LEN];
    size_t len;
    char *p;

    /* Verified: the chain is there, entry 10's hash is the seal's. */
    struct ingest_result ir;
    assert_int_equal(feed(f, b, &ir), INGEST_STORED);
    s = seal_of(10, es[9].hash, "2026-10");
    p = seal_payload(&s, sk, &len);
    seals_receive(f->db, SITE, "2026-10", p, len, 1790000000, &res);
    assert_int_equal(res.outcome, SEAL_STORED);
    assert_string_equal(res.state, "verified");
    /* Received again (retained): nothing changes, no problem. */
    seals_receive(f->db, SITE, "2026-10", p, len, 1790000001, &res);
    assert_int_equal(res.outcome, SEAL_SAME);
    assert_int_equal(problems(f), 0);
    free(p);

    /* Waiting: entry 15 is not verified yet; then the chain reaches it. */
    s = seal_of(15, es[14].hash, "2026-11");
    p = seal_payload(&s, sk, &len);
    seals_receive(f->db, SITE, "2026-11", p, len, 1790000000, &res);
    assert_string_equal(res.state, "waiting");
    free(p);
    /* Mismatch: entry 20's hash is not this one; detected once the chain reaches 20. */
    memset(wrong, 7, sizeof(wrong));
    s = seal_of(20, wrong, "2026-12");
    p = seal_payload(&s, sk, &len);
    seals_receive(f->db, SITE, "2026-12", p, len, 1790000000, &res);
    assert_string_equal(res.state, "waiting");
    free(p);
    free(b);
    b = batch_of(es, 11, 20, sk);
    assert_int_equal(feed(f, b, &ir), INGEST_STORED);
    assert_int_equal(seals_check(f->db, SITE, 1790000002), 1);
    assert_int_equal(cdb_seal_get(f->db, SITE, "2026-11", &got), 0);
    assert_string_equal(got.state, "verified");
    assert_int_equal(cdb_seal_get(f->db, SITE, "2026-12", &got), 0);
    assert_string_equal(got.state, "mismatch");
    assert_int_equal(problems(f), 1);                   /* seal_mismatch */

    /* Another signed seal for a stored period: a conflict, the first one kept. */
    s = seal_of(12, es[11].hash, "2026-10");
    p = seal_payload(&s, sk, &len);
    seals_receive(f->db, SITE, "2026-10", p, len, 1790000003, &res);
    assert_int_equal(res.outcome, SEAL_CONFLICT);
    assert_int_equal(cdb_seal_get(f->db, SITE, "2026-10", &got), 0);
    assert_int_equal(got.last_seq, 10);
    /* On another period's topic: malformed, not stored. */
    seals_receive(f->db, SITE, "2027-01", p, len, 1790000003, &res);
    assert_int_equal(res.outcome, SEAL_MALFORMED);
    free(p);
    /* Another key; an unregistered site; garbage. */
    s = seal_of(10, es[9].hash, "2027-02");
    p = seal_payload(&s, other_sk, &len);
    seals_receive(f->db, SITE, "2027-02", p, len, 1790000003, &res);
    assert_int_equal(res.outcome, SEAL_FORGED);
    assert_int_equal(cdb_seal_get(f->db, SITE, "2027-02", &got), -ENOENT);
    free(p);
    snprintf(s.site, sizeof(s.site), "ghost");
    p = seal_payload(&s, other_sk, &len);
    seals_receive(f->db, "ghost", "2027-02", p, len, 1790000003, &res);
    assert_int_equal(res.outcome, SEAL_UNKNOWN_SITE);
    free(p);
    seals_receive(f->db, SITE, "2027-02", "{}", 2, 1790000003, &res);
    assert_int_equal(res.outcome, SEAL_MALFORMED);
    assert_int_equal(problems(f), 1 + 5);
    free(b);
    free(es);
}

static void test_billing_day_follows_the_site_clock(void **state)
{
    char day[11];
    /* 2026-10-06 00:30 UTC is 02:30 in Paris: with days starting at 04:00, the 5th. */
    ingest_billing_day("Europe/Paris", 240, 1791246600, day);
    assert_string_equal(day, "2026-10-05");
    ingest_billing_day("UTC", 0, 1791246600, day);
    assert_string_equal(day, "2026-10-06");
}

/* The worked example of docs/consortium.md: three sites, 12.00 EUR a visiting day. */
static const struct report_visit worked_example[] = {
    { "lyon", "paris", 5, 6000 },
    { "lyon", "nantes", 2, 2400 },
    { "paris", "lyon", 3, 3600 },
    { "paris", "nantes", 4, 4800 },
    { "nantes", "lyon", 1, 1200 },
    { "nantes", "nantes", 9, 10800 },      /* at home: not a visit between sites, ignored */
};

static void test_balances_of_the_worked_example(void **state)
{
    struct report_balance b[8];
    struct report_position p[8];
    size_t n = sizeof(worked_example) / sizeof(worked_example[0]);
    int64_t sum = 0;

    /* lyon owes paris 60.00 and is owed 36.00 by it: lyon pays paris 24.00; lyon pays
     * nantes 24.00 - 12.00 = 12.00; paris pays nantes 48.00. */
    assert_int_equal(report_net_balances(worked_example, n, b, 8), 3);
    assert_string_equal(b[0].from, "lyon");
    assert_string_equal(b[0].to, "nantes");
    assert_int_equal(b[0].amount_cents, 1200);
    assert_string_equal(b[1].from, "lyon");
    assert_string_equal(b[1].to, "paris");
    assert_int_equal(b[1].amount_cents, 2400);
    assert_string_equal(b[2].from, "paris");
    assert_string_equal(b[2].to, "nantes");
    assert_int_equal(b[2].amount_cents, 4800);
    /* Positions: earned as host - owed as home, and they add up to zero. */
    assert_int_equal(report_positions(worked_example, n, p, 8), 3);
    assert_string_equal(p[0].site, "lyon");
    assert_int_equal(p[0].earned_cents - p[0].owed_cents, 4800 - 8400);
    assert_string_equal(p[1].site, "nantes");
    assert_int_equal(p[1].earned_cents - p[1].owed_cents, 7200 - 1200);
    assert_string_equal(p[2].site, "paris");
    assert_int_equal(p[2].earned_cents - p[2].owed_cents, 6000 - 8400);
    for (int i = 0; i < 3; i++)
        sum += p[i].earned_cents - p[i].owed_cents;
    assert_int_equal(sum, 0);
    /* Visits that cancel out make no balance. */
    static const struct report_visit even[] = { { "a", "b", 2, 2400 }, { "b", "a", 2, 2400 } };
    assert_int_equal(report_net_balances(even, 2, b, 8), 0);
}

static void test_report_and_page(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain(4);
    struct ingest_result res;
    struct ledger_batch *b = batch_of(es, 1, 4, sk);
    struct cdb_problem pr = { .at = 1790000000, .site = SITE, .kind = "malformed",
                              .detail = "<script>alert(1)</script> & \"quoted\"" };
    struct seal_result sr;
    struct period_seal seal;
    json_t *rep, *site;
    char *text, *page, *payload;
    size_t len;
    int err;

    assert_int_equal(feed(f, b, &res), INGEST_STORED);
    seal = seal_of(4, es[3].hash, "2026-09");
    payload = seal_payload(&seal, sk, &len);
    seals_receive(f->db, SITE, "2026-09", payload, len, 1790000000, &sr);
    assert_string_equal(sr.state, "verified");
    free(payload);
    /* Entries of 2026-09-21 to 2026-09-22 (Paris) are in period 2026-09. */
    rep = report_build(f->db, "2026-09", &err);
    assert_non_null(rep);
    site = json_array_get(json_object_get(rep, "sites"), 0);
    assert_string_equal(json_string_value(json_object_get(site, "site")), SITE);
    assert_int_equal(json_integer_value(json_object_get(site, "records")), 4);
    assert_int_equal(json_integer_value(json_object_get(site, "amount_cents")), 6000);
    text = report_render(rep, "csv");
    assert_non_null(strstr(text, "section,site,other_site,kind,count,quantity,amount,detail\r\n"));
    assert_non_null(strstr(text, "usage,lyon,,day,4,4,60.00,\r\n"));
    free(text);
    json_decref(rep);
    assert_null(report_build(f->db, "2026-13", &err));
    assert_int_equal(err, -EINVAL);
    /* Everything on the page is escaped. */
    assert_int_equal(cdb_problem_add(f->db, &pr), 0);
    page = web_page(f->db, "2026-09");
    assert_non_null(page);
    assert_null(strstr(page, "<script>"));
    assert_non_null(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;"));
    assert_non_null(strstr(page, "<td>lyon</td>"));
    /* Each table of the report, a row each. */
    assert_non_null(strstr(page, "<h3>Usage per site</h3>"));
    assert_non_null(strstr(page, "<tr><td>lyon</td><td>day</td><td class=n>4</td>"
                                 "<td class=n>4</td><td class=n>60.00</td></tr>\n"));
    assert_non_null(strstr(page, "<h3>Visits (home site → host site)</h3>\n<table><tr>"
                                 "<th>home</th><th>host</th><th>visits</th>"
                                 "<th>amount (EUR)</th></tr>\n</table>\n"));
    assert_non_null(strstr(page, "<h3>Balances (who pays whom, net)</h3>"));
    assert_non_null(strstr(page, "<h3>Positions</h3>"));
    assert_non_null(strstr(page, "<h3>Period seals</h3>\n<table><tr><th>site</th><th>ledger up "
                                 "to entry</th><th>state</th><th>archive SHA-256</th></tr>\n"
                                 "<tr><td>lyon</td><td class=n>4</td><td>verified</td>"
                                 "<td><code>"));
    free(page);
    free(b);
    free(es);
}

static void day_of_entry(const struct ledger_entry *e, char out[11], void *ud)
{
    (void)ud;
    ingest_billing_day("Europe/Paris", 240, e->started_at, out);
}

/* The page's tables of visits, balances and positions, from visits between two sites. */
static void test_page_of_visits(void **state)
{
    struct fixture *f = *state;
    struct ledger_entry *es = chain(4);
    struct ledger_batch *b = batch_of(es, 1, 4, sk);
    char *page;

    /* Entries 3 and 4: visits from paris, 12 EUR each (stored as they are: the page reads
     * the database, not the chain's checks). */
    for (int i = 2; i < 4; i++) {
        snprintf(b->entries[i].kind, sizeof(b->entries[i].kind), "visit");
        snprintf(b->entries[i].home, sizeof(b->entries[i].home), "paris");
        b->entries[i].amount_cents = 1200;
    }
    assert_int_equal(cdb_store_batch(f->db, b, 0, 1790000000, day_of_entry, NULL), 0);
    page = web_page(f->db, "2026-09");
    assert_non_null(page);
    assert_non_null(strstr(page, "<th>amount (EUR)</th></tr>\n<tr><td>paris</td><td>lyon</td>"
                                 "<td class=n>2</td><td class=n>24.00</td></tr>\n</table>\n"
                                 "<h3>Balances"));
    assert_non_null(strstr(page, "<th>amount (EUR)</th></tr>\n<tr><td>paris</td><td>lyon</td>"
                                 "<td class=n>24.00</td></tr>\n</table>\n<h3>Positions"));
    assert_non_null(strstr(page, "<th>net</th></tr>\n"
                                 "<tr><td>lyon</td><td class=n>24.00</td><td class=n>0.00</td>"
                                 "<td class=n>24.00</td></tr>\n"
                                 "<tr><td>paris</td><td class=n>0.00</td><td class=n>24.00</td>"
                                 "<td class=n>-24.00</td></tr>\n</table>\n"));
    free(page);
    free(b);
    free(es);
}


/* ---- visits in the ledger, passports ---- */

/* A visit's encoding adds home= and visitor= after recorded=; it decodes back byte for
 * byte. Another kind with the same two fields set still encodes as before (the KAT of
 * test_ledger.c guards the old bytes). */
static void test_visit_entry_encoding(void **state)
{
    struct ledger_entry e = { .seq = 7, .usage_id = 3, .started_at = 100, .ended_at = 100,
                              .quantity = 1, .amount_cents = 1200, .recorded_at = 101 }, back;
    char buf[LEDGER_ENCODING_MAX];
    int len;

    (void)state;
    snprintf(e.site, sizeof(e.site), "paris");
    snprintf(e.kind, sizeof(e.kind), "visit");
    snprintf(e.resource, sizeof(e.resource), "front");
    snprintf(e.unit, sizeof(e.unit), "day");
    snprintf(e.allowance, sizeof(e.allowance), "visit");
    snprintf(e.home, sizeof(e.home), "lyon");
    snprintf(e.visitor, sizeof(e.visitor), "0123456789abcdef0123456789abcdef");
    len = ledger_encode(&e, buf, sizeof(buf));
    assert_true(len > 0);
    assert_non_null(strstr(buf, "recorded=101\nhome=lyon\nvisitor=0123456789abcdef0123456789abcdef\n"));
    assert_int_equal(ledger_decode(buf, (size_t)len, &back), 0);
    assert_string_equal(back.home, "lyon");
    assert_string_equal(back.visitor, e.visitor);
    /* Without its two lines a visit is refused; a day with them is refused too. */
    assert_int_equal(ledger_decode(buf, (size_t)(strstr(buf, "home=") - buf), &back), -EBADMSG);
    snprintf(e.kind, sizeof(e.kind), "day");
    len = ledger_encode(&e, buf, sizeof(buf));
    assert_null(strstr(buf, "home="));
    assert_int_equal(ledger_decode(buf, (size_t)len, &back), 0);
}

/* Energy travels in the entry's text: it decodes back, canonical only (no sign, no leading
 * zero), and an entry without it decodes with has_energy false. */
static void test_energy_entry_decoding(void **state)
{
    struct ledger_entry e = { .seq = 9, .usage_id = 4, .started_at = 100, .ended_at = 700,
                              .quantity = 10, .amount_cents = 21, .recorded_at = 701,
                              .has_energy = true, .energy_wh = 800 }, back;
    char buf[LEDGER_ENCODING_MAX], bad[LEDGER_ENCODING_MAX + 32];
    int len;
    char *at;

    (void)state;
    snprintf(e.site, sizeof(e.site), "paris");
    snprintf(e.kind, sizeof(e.kind), "machine");
    snprintf(e.resource, sizeof(e.resource), "kiln");
    snprintf(e.unit, sizeof(e.unit), "minute");
    snprintf(e.allowance, sizeof(e.allowance), "rate");
    len = ledger_encode(&e, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(ledger_decode(buf, (size_t)len, &back), 0);
    assert_true(back.has_energy);
    assert_int_equal(back.energy_wh, 800);
    at = strstr(buf, "energy_wh=800");
    assert_non_null(at);
    /* Not canonical, negative, or garbage after it: refused. */
    snprintf(bad, sizeof(bad), "%.*senergy_wh=0800\n", (int)(at - buf), buf);
    assert_int_equal(ledger_decode(bad, strlen(bad), &back), -EBADMSG);
    snprintf(bad, sizeof(bad), "%.*senergy_wh=-1\n", (int)(at - buf), buf);
    assert_int_equal(ledger_decode(bad, strlen(bad), &back), -EBADMSG);
    snprintf(bad, sizeof(bad), "%senergy_wh=5\n", buf);
    assert_int_equal(ledger_decode(bad, strlen(bad), &back), -EBADMSG);
    /* Without the line: an entry without energy. */
    assert_int_equal(ledger_decode(buf, (size_t)(at - buf), &back), 0);
    assert_false(back.has_energy);
}

static struct passport sample_passport(void)
{
    struct passport p = { .issued = 1000, .expires = 2000, .visit_days = 3, .n_used = 2,
                          .n_cards = 2 };
    snprintf(p.home, sizeof(p.home), "lyon");
    snprintf(p.id, sizeof(p.id), "0123456789abcdef0123456789abcdef");
    snprintf(p.month, sizeof(p.month), "2026-10");
    snprintf(p.used[0].host, sizeof(p.used[0].host), "nantes");
    p.used[0].days = 1;
    snprintf(p.used[1].host, sizeof(p.used[1].host), "paris");
    p.used[1].days = 2;
    memset(p.cards[0], 0xab, PASSPORT_CARD_LEN);
    memset(p.cards[1], 0xcd, PASSPORT_CARD_LEN);
    return p;
}

static void test_passport_round_trip_and_signature(void **state)
{
    struct passport p = sample_passport(), back;
    uint8_t hpk[32], hsk[64], hpk2[32], hsk2[64], sig[64], sig_back[64];
    char text[PASSPORT_TEXT_MAX], text_back[PASSPORT_TEXT_MAX], *payload;
    size_t plen = 0, tlen = 0;
    int len;

    (void)state;
    crypto_sign_keypair(hpk, hsk);
    crypto_sign_keypair(hpk2, hsk2);
    len = passport_encode(&p, text, sizeof(text));
    assert_true(len > 0);
    assert_non_null(strstr(text, "\nused=nantes:1,paris:2\ncards=abab"));
    assert_int_equal(passport_decode(text, (size_t)len, &back), 0);
    assert_memory_equal(&back, &p, sizeof(p));
    assert_int_equal(passport_used_elsewhere(&back, "paris", "2026-10"), 1);
    assert_int_equal(passport_used_elsewhere(&back, "brest", "2026-10"), 3);
    assert_int_equal(passport_used_elsewhere(&back, "paris", "2026-11"), 0);

    crypto_sign_detached(sig, NULL, (const uint8_t *)text, (size_t)len, hsk);
    payload = passport_wrap(text, (size_t)len, sig, &plen);
    assert_non_null(payload);
    assert_int_equal(passport_unwrap(payload, plen, text_back, &tlen, sig_back), 0);
    free(payload);
    assert_int_equal(tlen, (size_t)len);
    assert_true(passport_signature_ok(text_back, tlen, sig_back, hpk));
    assert_false(passport_signature_ok(text_back, tlen, sig_back, hpk2));   /* another key */
    text_back[strstr(text_back, "visit_days=3") - text_back + 11] = '9';   /* altered */
    assert_false(passport_signature_ok(text_back, tlen, sig_back, hpk));

    /* Not canonical, or beyond the limits: refused. */
    static const char *const bad[] = { "\nstatus=active\n", "\nissued=1000\n", "\nused=nantes:1,paris:2\n" };
    static const char *const worse[] = { "\nstatus=Active\n", "\nissued=01000\n", "\nused=paris:2,nantes:1\n" };
    for (size_t i = 0; i < 3; i++) {
        char t[PASSPORT_TEXT_MAX], *at;
        snprintf(t, sizeof(t), "%s", text);
        at = strstr(t, bad[i]);
        assert_non_null(at);
        memmove(at + strlen(worse[i]), at + strlen(bad[i]), strlen(at + strlen(bad[i])) + 1);
        memcpy(at, worse[i], strlen(worse[i]));
        assert_int_equal(passport_decode(t, strlen(t), &back), -EBADMSG);
    }
    assert_int_equal(passport_unwrap("{\"v\":1}", 7, text_back, &tlen, sig_back), -EBADMSG);
    p.n_cards = PASSPORT_CARDS_MAX + 1;
    assert_int_equal(passport_encode(&p, text, sizeof(text)), -EINVAL);
}

/* DESFire cards in a passport: a "desfire=" line with their places in cards, only when there
 * is one (a passport without keeps the bytes v1 sites read), canonical like the rest. */
static void test_passport_desfire_cards(void **state)
{
    struct passport p = sample_passport(), back;
    char text[PASSPORT_TEXT_MAX], plain[PASSPORT_TEXT_MAX];
    int len, plain_len;

    (void)state;
    plain_len = passport_encode(&p, plain, sizeof(plain));
    assert_true(plain_len > 0);
    assert_null(strstr(plain, "desfire="));
    p.card_desfire[1] = true;
    len = passport_encode(&p, text, sizeof(text));
    assert_int_equal(len, plain_len + (int)strlen("desfire=1\n"));
    assert_string_equal(text + len - strlen("desfire=1\n"), "desfire=1\n");
    assert_int_equal(passport_decode(text, (size_t)len, &back), 0);
    assert_false(back.card_desfire[0]);
    assert_true(back.card_desfire[1]);
    assert_memory_equal(&back, &p, sizeof(p));
    p.card_desfire[0] = true;
    len = passport_encode(&p, text, sizeof(text));
    assert_non_null(strstr(text, "\ndesfire=0,1\n"));
    assert_int_equal(passport_decode(text, (size_t)len, &back), 0);

    /* Not canonical, out of range, empty: refused. */
    static const char *const bad[] = { "desfire=1,0\n", "desfire=2\n", "desfire=\n", "desfire=01\n",
                                       "desfire=0,0\n", "desfire=0,1\nextra=1\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char t[PASSPORT_TEXT_MAX];
        snprintf(t, sizeof(t), "%.*s%s", plain_len, plain, bad[i]);
        assert_int_equal(passport_decode(t, strlen(t), &back), -EBADMSG);
    }
}

static int sites_parse(const char *text, struct passport_site *out, size_t max, unsigned *line)
{
    return passport_sites_parse(text, strlen(text), out, max, line);
}

static void test_visit_notice_and_sites_file(void **state)
{
    struct passport_notice v = { .days = 2 }, back;
    struct passport_site sites[4];
    char text[PASSPORT_TEXT_MAX];
    unsigned line = 0;
    int len;

    (void)state;
    snprintf(v.host, sizeof(v.host), "paris");
    snprintf(v.home, sizeof(v.home), "lyon");
    snprintf(v.id, sizeof(v.id), "0123456789abcdef0123456789abcdef");
    snprintf(v.month, sizeof(v.month), "2026-10");
    len = passport_notice_encode(&v, text, sizeof(text));
    assert_string_equal(text, "portier-visits-v1\nhost=paris\nhome=lyon\n"
                              "id=0123456789abcdef0123456789abcdef\nmonth=2026-10\ndays=2\n");
    assert_int_equal(passport_notice_decode(text, (size_t)len, &back), 0);
    assert_memory_equal(&back, &v, sizeof(v));
    assert_int_equal(sites_parse(
        "# sites\n\nlyon 00cde07fbf732ab9225cd71312941fbae7a6ced9318744fbe2ad6958d87630b1\n"
        "paris 2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12 # the capital\n",
        sites, 4, &line), 2);
    assert_string_equal(sites[1].name, "paris");
    assert_int_equal(sites[1].pk[0], 0x21);
    assert_int_equal(sites_parse("lyon 00cd\n", sites, 4, &line), -EINVAL);
    assert_int_equal(line, 1);
    assert_int_equal(sites_parse("\nlyon\n", sites, 4, &line), -EINVAL);
    assert_int_equal(line, 2);
}

#define LYON_KEY "00cde07fbf732ab9225cd71312941fbae7a6ced9318744fbe2ad6958d87630b1"
#define PARIS_KEY "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12"

/* Found by fuzz_sites_file: a comment or blank line longer than 159 bytes was refused, a
 * site listed twice was taken with its first key (the second one silently dead), and a NUL
 * byte ended the file there without a word. */
static void test_sites_file_comments_duplicates_nul(void **state)
{
    struct passport_site sites[2];
    char text[1024];
    unsigned line = 0;
    int n;

    (void)state;
    n = snprintf(text, sizeof(text), "# %0200d\r\nlyon\t" LYON_KEY "\r\n", 0);
    assert_int_equal(passport_sites_parse(text, (size_t)n, sites, 2, &line), 1);
    assert_string_equal(sites[0].name, "lyon");
    n = snprintf(text, sizeof(text), "lyon %s # %0200d\n", LYON_KEY, 0);
    assert_int_equal(passport_sites_parse(text, (size_t)n, sites, 2, &line), 1);
    /* White space is white space, however much of it. */
    n = snprintf(text, sizeof(text), "%200s\n%200s lyon %s %100s\n", "", "", LYON_KEY, "");
    assert_int_equal(passport_sites_parse(text, (size_t)n, sites, 2, &line), 1);
    /* Before a comment, a line still holds only a name and a key. */
    n = snprintf(text, sizeof(text), "lyon %s %0200d # x\n", LYON_KEY, 0);
    assert_int_equal(passport_sites_parse(text, (size_t)n, sites, 2, &line), -EINVAL);

    line = 0;
    assert_int_equal(sites_parse("lyon " LYON_KEY "\n# rotated:\nlyon " PARIS_KEY "\n", sites,
                                 2, &line), -EEXIST);
    assert_int_equal(line, 3);
    line = 0;
    assert_int_equal(sites_parse("lyon " LYON_KEY "\nparis " PARIS_KEY "\nnantes " LYON_KEY
                                 "\n", sites, 2, &line), -E2BIG);
    assert_int_equal(line, 3);

    static const char nul[] = "lyon " LYON_KEY "\n\0paris " PARIS_KEY "\n";
    line = 0;
    assert_int_equal(passport_sites_parse(nul, sizeof(nul) - 1, sites, 2, &line), -EINVAL);
    assert_int_equal(line, 2);
    /* In a comment, anything goes. */
    static const char in_comment[] = "lyon " LYON_KEY " # \0\x01\xff\n";
    assert_int_equal(passport_sites_parse(in_comment, sizeof(in_comment) - 1, sites, 2, &line), 1);
}

/* ---- one reader for the four signed texts ---- */

/* What one format refused, all refuse (kvtext.h): the same damage to the line of key, in a
 * ledger entry (a visit, whose text fields were checked least), a passport, a visit notice
 * and a period seal. */
enum damage { CR_AT_END, CR_INSIDE, TAB_INSIDE, NUL_INSIDE, REPEATED, SWAPPED, TRAILING,
              TOO_LONG, DAMAGE__MAX };

static size_t damaged(const char *text, const char *key, enum damage d, char *out, size_t n)
{
    char k[40];
    const char *line, *nl, *next_nl;
    size_t len = strlen(text), at, rest;

    snprintf(k, sizeof(k), "\n%s=", key);
    line = strstr(text, k);
    assert_non_null(line);
    line++;
    nl = strchr(line, '\n');
    at = (size_t)(nl - text);
    assert_true(len + 80 < n);
    memcpy(out, text, len + 1);
    switch (d) {
    case CR_AT_END:                         /* "key=value\r\n" */
        memmove(out + at + 1, out + at, len - at + 1);
        out[at] = '\r';
        return len + 1;
    case CR_INSIDE:
    case TAB_INSIDE:
    case NUL_INSIDE:                        /* a byte after the first of the value */
        at = (size_t)(line - text) + strlen(key) + 2;
        memmove(out + at + 1, out + at, len - at + 1);
        out[at] = d == CR_INSIDE ? '\r' : d == TAB_INSIDE ? '\t' : '\0';
        return len + 1;
    case REPEATED:                          /* the line twice */
        rest = (size_t)(nl + 1 - line);
        memmove(out + at + 1 + rest, out + at + 1, len - at);
        memcpy(out + at + 1, line, rest);
        return len + rest;
    case SWAPPED:                           /* the line after the next one */
        next_nl = strchr(nl + 1, '\n');
        if (!next_nl) {                     /* the last line: swap with the one before */
            const char *prev = line - 1;
            while (prev > text && prev[-1] != '\n')
                prev--;
            line = prev;
            nl = strchr(line, '\n');
            next_nl = strchr(nl + 1, '\n');
        }
        rest = (size_t)(line - text);
        snprintf(out + rest, n - rest, "%.*s%.*s%s", (int)(next_nl - nl), nl + 1,
                 (int)(nl + 1 - line), line, next_nl + 1);
        return len;
    case TRAILING:
        snprintf(out + len, n - len, "x");
        return len + 1;
    case TOO_LONG:                          /* the value 40 bytes longer */
        at = (size_t)(line - text) + strlen(key) + 1;
        memmove(out + at + 40, out + at, len - at + 1);
        memset(out + at, 'a', 40);
        return len + 40;
    default:
        fail();
    }
    return 0;
}

static void test_signed_texts_refuse_the_same(void **state)
{
    struct ledger_entry e = { .seq = 7, .usage_id = 3, .started_at = 100, .ended_at = 100,
                              .quantity = 1, .amount_cents = 1200, .recorded_at = 101 }, le;
    struct passport p = sample_passport(), pb;
    struct passport_notice v = { .days = 2 }, vb;
    static const uint8_t zeros[LEDGER_HASH_LEN];
    struct period_seal seal = seal_of(10, zeros, "2026-10"), sb;
    char ledger[LEDGER_ENCODING_MAX], pass[PASSPORT_TEXT_MAX], notice[PASSPORT_TEXT_MAX];
    char sealt[PERIOD_SEAL_TEXT_MAX + 1], bad[PASSPORT_TEXT_MAX + 128];
    size_t n;

    (void)state;
    snprintf(e.site, sizeof(e.site), "paris");
    snprintf(e.kind, sizeof(e.kind), "visit");
    snprintf(e.resource, sizeof(e.resource), "front");
    snprintf(e.unit, sizeof(e.unit), "day");
    snprintf(e.allowance, sizeof(e.allowance), "visit");
    snprintf(e.home, sizeof(e.home), "lyon");
    snprintf(e.visitor, sizeof(e.visitor), "0123456789abcdef0123456789abcdef");
    snprintf(v.host, sizeof(v.host), "paris");
    snprintf(v.home, sizeof(v.home), "lyon");
    snprintf(v.id, sizeof(v.id), "0123456789abcdef0123456789abcdef");
    snprintf(v.month, sizeof(v.month), "2026-10");
    assert_true(ledger_encode(&e, ledger, sizeof(ledger)) > 0);
    assert_true(passport_encode(&p, pass, sizeof(pass)) > 0);
    assert_true(passport_notice_encode(&v, notice, sizeof(notice)) > 0);
    assert_true(period_seal_encode(&seal, sealt, sizeof(sealt)) > 0);
    assert_int_equal(ledger_decode(ledger, strlen(ledger), &le), 0);
    assert_int_equal(passport_decode(pass, strlen(pass), &pb), 0);
    assert_int_equal(passport_notice_decode(notice, strlen(notice), &vb), 0);
    assert_int_equal(period_seal_parse(sealt, strlen(sealt), &sb), 0);

    /* The ledger's free text fields (before the shared reader, a CR or TAB in them was
     * read back and encoded back the same, so accepted), and every format's first and
     * last lines. */
    static const char *const ledger_keys[] = { "site", "kind", "resource", "unit", "allowance",
                                               "visitor" };
    static const char *const pass_keys[] = { "home", "status", "used", "cards" };
    static const char *const notice_keys[] = { "host", "days" };
    static const char *const seal_keys[] = { "site", "last_day", "closed_at" };
    for (int d = 0; d < DAMAGE__MAX; d++) {
        for (size_t i = 0; i < sizeof(ledger_keys) / sizeof(ledger_keys[0]); i++) {
            n = damaged(ledger, ledger_keys[i], (enum damage)d, bad, sizeof(bad));
            if (ledger_decode(bad, n, &le) != -EBADMSG)
                fail_msg("ledger: damage %d to %s accepted", d, ledger_keys[i]);
        }
        for (size_t i = 0; i < sizeof(pass_keys) / sizeof(pass_keys[0]); i++) {
            n = damaged(pass, pass_keys[i], (enum damage)d, bad, sizeof(bad));
            if (passport_decode(bad, n, &pb) != -EBADMSG)
                fail_msg("passport: damage %d to %s accepted", d, pass_keys[i]);
        }
        for (size_t i = 0; i < sizeof(notice_keys) / sizeof(notice_keys[0]); i++) {
            n = damaged(notice, notice_keys[i], (enum damage)d, bad, sizeof(bad));
            if (passport_notice_decode(bad, n, &vb) != -EBADMSG)
                fail_msg("notice: damage %d to %s accepted", d, notice_keys[i]);
        }
        for (size_t i = 0; i < sizeof(seal_keys) / sizeof(seal_keys[0]); i++) {
            n = damaged(sealt, seal_keys[i], (enum damage)d, bad, sizeof(bad));
            if (period_seal_parse(bad, n, &sb) != -EBADMSG)
                fail_msg("seal: damage %d to %s accepted", d, seal_keys[i]);
        }
    }
}

int main(void)
{
    uint8_t seed[crypto_sign_SEEDBYTES];

    if (sodium_init() < 0)
        return 1;
    memset(seed, 0x42, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
    memset(seed, 0x17, sizeof(seed));
    crypto_sign_seed_keypair(other_pk, other_sk, seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_decode_refuses_non_canonical),
        cmocka_unit_test(test_batch_json_round_trip_and_check),
        cmocka_unit_test(test_batch_check_finds_what_was_forged),
        cmocka_unit_test(test_batch_parse_limits),
        cmocka_unit_test_setup_teardown(test_ingest_stores_replays_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_keeps_energy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_refuses_forgeries_forks_and_strangers, setup,
                                        teardown),
        cmocka_unit_test(test_period_seal_encode_parse_verify),
        cmocka_unit_test_setup_teardown(test_seals_stored_checked_and_refused, setup, teardown),
        cmocka_unit_test(test_billing_day_follows_the_site_clock),
        cmocka_unit_test(test_balances_of_the_worked_example),
        cmocka_unit_test(test_visit_entry_encoding),
        cmocka_unit_test(test_energy_entry_decoding),
        cmocka_unit_test(test_passport_round_trip_and_signature),
        cmocka_unit_test(test_passport_desfire_cards),
        cmocka_unit_test(test_visit_notice_and_sites_file),
        cmocka_unit_test(test_sites_file_comments_duplicates_nul),
        cmocka_unit_test(test_signed_texts_refuse_the_same),
        cmocka_unit_test_setup_teardown(test_report_and_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_of_visits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

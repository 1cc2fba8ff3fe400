/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ledger: the canonical encoding, the BLAKE2b chain, Ed25519 signatures and the streaming
 * verifier, on chains built in memory with the real ledger.c.
 *
 * The known answers (encoding text, BLAKE2b-256 hash, Ed25519 signature) were computed
 * independently of this code, with Python:
 *
 *   enc = "portier-ledger-v1\nsite=lab-paris\nseq=257\nprev=0001...1e1f\n..."  (below)
 *   hashlib.blake2b(enc.encode(), digest_size=32).hexdigest()
 *   Ed25519PrivateKey.from_private_bytes(b"\x42" * 32).sign(
 *       b"portier-ledger-v1 signature\nsite=lab-paris\nseq=257\n" + hash)   # cryptography
 *
 * so a change of the encoding or of the signed message (which custodians re-implement)
 * fails here, not in the field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define SITE "lab-paris"

/* ---- known answers ---- */

static const char kat_encoding[] =
    "portier-ledger-v1\n"
    "site=lab-paris\n"
    "seq=257\n"
    "prev=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "usage=4242\n"
    "kind=machine\n"
    "member=17\n"
    "resource=laser\n"
    "start=1793710800\n"
    "end=1793713800\n"
    "quantity=50\n"
    "unit=minute\n"
    "amount_cents=600\n"
    "allowance=rate\n"
    "corrects=0\n"
    "recorded=1793713802\n";
static const char kat_hash_hex[] =
    "2b505f77a31e1ae65549bf354ca8c83022c48ac8b9885c992099e456436f9a5e";
/* Ed25519 key from the seed 0x42 * 32. */
static const char kat_pk_hex[] =
    "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
static const char kat_sig_hex[] =
    "f9839c8a3b524543d058bbc6a6b69fd85a823020df3e13793f34b44aaa5fca77"
    "b5a13eec62571fe269cbe70632bb050e6c1aced8b861511b5d2227588f17ae01";

/* A laser session on 2026-11-03, 14:00 to 14:50 in Paris (13:00 UTC), 50 minutes, 6 EUR. */
static struct ledger_entry kat_entry(void)
{
    struct ledger_entry e = { 0 };

    snprintf(e.site, sizeof(e.site), "%s", SITE);
    e.seq = 257;
    for (int i = 0; i < LEDGER_HASH_LEN; i++)
        e.prev_hash[i] = (uint8_t)i;
    e.usage_id = 4242;
    snprintf(e.kind, sizeof(e.kind), "machine");
    e.member_id = 17;
    snprintf(e.resource, sizeof(e.resource), "laser");
    e.started_at = 1793710800;
    e.ended_at = 1793713800;
    e.quantity = 50;
    snprintf(e.unit, sizeof(e.unit), "minute");
    e.amount_cents = 600;
    snprintf(e.allowance, sizeof(e.allowance), "rate");
    e.corrects_seq = 0;
    e.recorded_at = 1793713802;
    return e;
}

static void seed_keypair(uint8_t seed_byte, uint8_t pk[LEDGER_PK_LEN], uint8_t sk[LEDGER_SK_LEN])
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void hex(const uint8_t *bin, size_t len, char *out, size_t n)
{
    sodium_bin2hex(out, n, bin, len);
}

static void test_encoding_known_answer(void **state)
{
    struct ledger_entry e = kat_entry();
    char buf[LEDGER_ENCODING_MAX], h[LEDGER_HASH_LEN * 2 + 1];
    int len = ledger_encode(&e, buf, sizeof(buf));

    assert_int_equal(len, (int)strlen(kat_encoding));
    assert_string_equal(buf, kat_encoding);
    ledger_hash(&e);
    hex(e.hash, LEDGER_HASH_LEN, h, sizeof(h));
    assert_string_equal(h, kat_hash_hex);
    /* The encoding does not depend on the hash or signature fields of the entry itself. */
    memset(e.hash, 0xaa, sizeof(e.hash));
    e.has_signature = true;
    memset(e.signature, 0x55, sizeof(e.signature));
    assert_int_equal(ledger_encode(&e, buf, sizeof(buf)), len);
    assert_string_equal(buf, kat_encoding);
}

/* Energy (a metered machine session): one more last line, "energy_wh=", hashed with the
 * rest (known answer from Python's hashlib as above). An entry without energy keeps the
 * old encoding and hash byte for byte, whatever energy_wh holds. */
static const char kat_energy_hash_hex[] =
    "c7a7a27a5c331e7d53f4c541d45ff9c33051573df46812afb749cca8150cf416";

static void test_energy_encoding_known_answer(void **state)
{
    struct ledger_entry e = kat_entry();
    char buf[LEDGER_ENCODING_MAX], want[LEDGER_ENCODING_MAX], h[LEDGER_HASH_LEN * 2 + 1];
    int len;

    e.energy_wh = 1234;             /* has_energy false: not part of the entry */
    assert_int_equal(ledger_encode(&e, buf, sizeof(buf)), (int)strlen(kat_encoding));
    assert_string_equal(buf, kat_encoding);
    ledger_hash(&e);
    hex(e.hash, LEDGER_HASH_LEN, h, sizeof(h));
    assert_string_equal(h, kat_hash_hex);

    e.has_energy = true;
    snprintf(want, sizeof(want), "%senergy_wh=1234\n", kat_encoding);
    len = ledger_encode(&e, buf, sizeof(buf));
    assert_int_equal(len, (int)strlen(want));
    assert_string_equal(buf, want);
    ledger_hash(&e);
    hex(e.hash, LEDGER_HASH_LEN, h, sizeof(h));
    assert_string_equal(h, kat_energy_hash_hex);
    /* Zero Wh measured is still a measurement, and says so. */
    e.energy_wh = 0;
    assert_true(ledger_encode(&e, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "recorded=1793713802\nenergy_wh=0\n"));
}

/* One chain holding entries with and without energy verifies; changing an entry's energy,
 * or dropping it, breaks it there. */
static void test_chain_mixing_entries_with_and_without_energy(void **state)
{
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN], prev[LEDGER_HASH_LEN] = { 0 };
    struct ledger_entry chain[6];
    struct ledger_verifier v;

    seed_keypair(0x11, pk, sk);
    for (int i = 0; i < 6; i++) {
        chain[i] = kat_entry();
        chain[i].seq = i + 1;
        memcpy(chain[i].prev_hash, prev, LEDGER_HASH_LEN);
        chain[i].has_energy = i % 2 == 1;
        chain[i].energy_wh = 100 * i;
        ledger_hash(&chain[i]);
        memcpy(prev, chain[i].hash, LEDGER_HASH_LEN);
    }
    ledger_verifier_init(&v, SITE, pk);
    for (int i = 0; i < 6; i++)
        assert_true(ledger_verifier_feed(&v, &chain[i]));
    chain[3].energy_wh = 299;
    ledger_verifier_init(&v, SITE, pk);
    for (int i = 0; i < 6 && ledger_verifier_feed(&v, &chain[i]); i++)
        ;
    assert_int_equal(v.bad_seq, 4);
    chain[3].energy_wh = 300;
    chain[3].has_energy = false;
    ledger_verifier_init(&v, SITE, pk);
    for (int i = 0; i < 6 && ledger_verifier_feed(&v, &chain[i]); i++)
        ;
    assert_int_equal(v.bad_seq, 4);
}

static void test_encoding_too_small_buffer(void **state)
{
    struct ledger_entry e = kat_entry();
    char buf[LEDGER_ENCODING_MAX];
    size_t need = strlen(kat_encoding);

    assert_int_equal(ledger_encode(&e, buf, need), -E2BIG);     /* no room for the NUL */
    assert_int_equal(ledger_encode(&e, buf, need + 1), (int)need);
    assert_int_equal(ledger_encode(&e, buf, 10), -E2BIG);
}

/* The longest fields still fit LEDGER_ENCODING_MAX. */
static void test_encoding_max_fits(void **state)
{
    struct ledger_entry e = { 0 };
    char buf[LEDGER_ENCODING_MAX];

    memset(e.site, 'S', sizeof(e.site) - 1);
    memset(e.kind, 'k', sizeof(e.kind) - 1);
    memset(e.resource, 'r', sizeof(e.resource) - 1);
    memset(e.unit, 'u', sizeof(e.unit) - 1);
    memset(e.allowance, 'a', sizeof(e.allowance) - 1);
    e.seq = e.usage_id = e.member_id = e.started_at = e.ended_at = e.quantity = INT64_MIN;
    e.amount_cents = e.corrects_seq = e.recorded_at = INT64_MIN;
    assert_true(ledger_encode(&e, buf, sizeof(buf)) > 0);
}

/* Every field of the entry is covered by the hash. */
typedef void (*mutate_fn)(struct ledger_entry *e);
static void m_site(struct ledger_entry *e) { snprintf(e->site, sizeof(e->site), "lab-lyon"); }
static void m_seq(struct ledger_entry *e) { e->seq++; }
static void m_prev(struct ledger_entry *e) { e->prev_hash[31] ^= 1; }
static void m_usage(struct ledger_entry *e) { e->usage_id++; }
static void m_kind(struct ledger_entry *e) { snprintf(e->kind, sizeof(e->kind), "day"); }
static void m_member(struct ledger_entry *e) { e->member_id = 18; }
static void m_resource(struct ledger_entry *e) { snprintf(e->resource, sizeof(e->resource), "lasers"); }
static void m_start(struct ledger_entry *e) { e->started_at--; }
static void m_end(struct ledger_entry *e) { e->ended_at++; }
static void m_quantity(struct ledger_entry *e) { e->quantity = 5; }
static void m_unit(struct ledger_entry *e) { snprintf(e->unit, sizeof(e->unit), "day"); }
static void m_amount(struct ledger_entry *e) { e->amount_cents = 60; }
static void m_allowance(struct ledger_entry *e) { snprintf(e->allowance, sizeof(e->allowance), "pass"); }
static void m_corrects(struct ledger_entry *e) { e->corrects_seq = 3; }
static void m_recorded(struct ledger_entry *e) { e->recorded_at++; }
static void m_negative(struct ledger_entry *e) { e->amount_cents = -600; }

static void test_hash_changes_with_every_field(void **state)
{
    static const struct { const char *field; mutate_fn fn; } cases[] = {
        { "site", m_site }, { "seq", m_seq }, { "prev_hash", m_prev }, { "usage_id", m_usage },
        { "kind", m_kind }, { "member_id", m_member }, { "resource", m_resource },
        { "started_at", m_start }, { "ended_at", m_end }, { "quantity", m_quantity },
        { "unit", m_unit }, { "amount_cents", m_amount }, { "allowance", m_allowance },
        { "corrects_seq", m_corrects }, { "recorded_at", m_recorded },
        { "amount sign", m_negative },
    };
    struct ledger_entry base = kat_entry();
    uint8_t seen[N_ELEMS(cases) + 1][LEDGER_HASH_LEN];

    ledger_hash(&base);
    memcpy(seen[0], base.hash, LEDGER_HASH_LEN);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct ledger_entry e = kat_entry();
        cases[i].fn(&e);
        ledger_hash(&e);
        for (size_t j = 0; j <= i; j++)
            if (memcmp(e.hash, seen[j], LEDGER_HASH_LEN) == 0)
                fail_msg("changing %s does not change the hash", cases[i].field);
        memcpy(seen[i + 1], e.hash, LEDGER_HASH_LEN);
    }
    /* and it is a function of the fields only: the same entry hashes the same */
    struct ledger_entry again = kat_entry();
    ledger_hash(&again);
    assert_memory_equal(again.hash, base.hash, LEDGER_HASH_LEN);
}

static void test_signature_known_answer_and_round_trip(void **state)
{
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
    char h[LEDGER_SIG_LEN * 2 + 1];
    struct ledger_entry e = kat_entry();

    seed_keypair(0x42, pk, sk);
    hex(pk, LEDGER_PK_LEN, h, sizeof(h));
    assert_string_equal(h, kat_pk_hex);
    ledger_hash(&e);
    assert_false(ledger_signature_ok(&e, pk));     /* not signed yet */
    ledger_sign(&e, sk);
    assert_true(e.has_signature);
    hex(e.signature, LEDGER_SIG_LEN, h, sizeof(h));
    assert_string_equal(h, kat_sig_hex);          /* Ed25519 is deterministic */
    assert_true(ledger_signature_ok(&e, pk));
}

static void test_signature_rejects_wrong_key_and_changes(void **state)
{
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN], pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];
    struct ledger_entry e = kat_entry(), x;

    seed_keypair(0x42, pk, sk);
    seed_keypair(0x43, pk2, sk2);
    ledger_hash(&e);
    ledger_sign(&e, sk);
    assert_false(ledger_signature_ok(&e, pk2));    /* another site's key */

    x = e;                                          /* signed by the other key */
    ledger_sign(&x, sk2);
    assert_false(ledger_signature_ok(&x, pk));
    assert_true(ledger_signature_ok(&x, pk2));

    x = e;                                          /* the signature binds the hash */
    x.hash[0] ^= 0x80;
    assert_false(ledger_signature_ok(&x, pk));
    x = e;                                          /* ... the sequence number */
    x.seq = 258;
    assert_false(ledger_signature_ok(&x, pk));
    x = e;                                          /* ... and the site */
    snprintf(x.site, sizeof(x.site), "lab-lyon");
    assert_false(ledger_signature_ok(&x, pk));
    x = e;                                          /* a flipped bit in the signature */
    x.signature[17] ^= 0x04;
    assert_false(ledger_signature_ok(&x, pk));
    x = e;
    x.has_signature = false;
    assert_false(ledger_signature_ok(&x, pk));
}

static void test_checkpoints(void **state)
{
    assert_int_equal(LEDGER_CHECKPOINT, 256);
    assert_false(ledger_is_checkpoint(1));
    assert_false(ledger_is_checkpoint(255));
    assert_true(ledger_is_checkpoint(256));
    assert_false(ledger_is_checkpoint(257));
    assert_true(ledger_is_checkpoint(512));
    assert_true(ledger_is_checkpoint(768));
}

/* ---- chains ---- */

struct chain {
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
    struct ledger_entry *e;         /* e[0] is seq 1 */
    int64_t n;
    uint8_t head_sig[LEDGER_SIG_LEN];
};

static void entry_fields(struct ledger_entry *e, int64_t seq)
{
    static const char *const kinds[] = { "day", "presence", "machine", "correction" };
    snprintf(e->site, sizeof(e->site), "%s", SITE);
    e->seq = seq;
    e->usage_id = 1000 + seq;
    snprintf(e->kind, sizeof(e->kind), "%s", kinds[seq % 4]);
    e->member_id = 1 + seq % 7;
    snprintf(e->resource, sizeof(e->resource), "%s", seq % 4 == 2 ? "laser" : "main");
    e->started_at = 1790000000 + seq * 3600;
    e->ended_at = e->started_at + 600 + seq % 50 * 60;
    e->quantity = seq % 4 == 0 ? 1 : 10 + seq % 50;
    snprintf(e->unit, sizeof(e->unit), "%s", seq % 4 == 0 ? "day" : "minute");
    e->amount_cents = seq % 3 == 0 ? 1500 : 0;
    snprintf(e->allowance, sizeof(e->allowance), "%s", seq % 3 == 0 ? "rate" : "plan");
    e->corrects_seq = seq % 4 == 3 ? seq - 1 : 0;
    e->recorded_at = e->ended_at + 1;
}

/* Hash (and sign the checkpoints of) entries from index i on, linking to e[i-1]. This is
 * what the site does; an attacker without sk does it with sign = false. */
static void chain_link_from(struct chain *c, int64_t i, bool sign)
{
    for (; i < c->n; i++) {
        struct ledger_entry *e = &c->e[i];
        if (i == 0)
            memset(e->prev_hash, 0, LEDGER_HASH_LEN);
        else
            memcpy(e->prev_hash, c->e[i - 1].hash, LEDGER_HASH_LEN);
        ledger_hash(e);
        if (sign) {
            e->has_signature = false;
            if (ledger_is_checkpoint(e->seq))
                ledger_sign(e, c->sk);
        }
    }
}

static void chain_sign_head(struct chain *c)
{
    ledger_sign_head(&c->e[c->n - 1], c->sk, c->head_sig);
}

static struct chain *chain_new(int64_t n)
{
    struct chain *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    seed_keypair(0x42, c->pk, c->sk);
    c->e = calloc((size_t)n, sizeof(*c->e));
    assert_non_null(c->e);
    c->n = n;
    for (int64_t i = 0; i < n; i++)
        entry_fields(&c->e[i], i + 1);
    chain_link_from(c, 0, true);
    chain_sign_head(c);
    return c;
}

static void chain_free(struct chain *c)
{
    free(c->e);
    free(c);
}

/* Feed the entries in the given order (seq numbers, 0-terminated) or all of them, then
 * the head; returns the verdict. */
static bool verify_entries(struct chain *c, struct ledger_verifier *v, const int64_t *order,
                           int64_t head_seq, const uint8_t *head_hash, const uint8_t *head_sig)
{
    bool ok = true;

    ledger_verifier_init(v, SITE, c->pk);
    if (order) {
        for (; *order; order++)
            ok = ledger_verifier_feed(v, &c->e[*order - 1]) && ok;
    } else {
        for (int64_t i = 0; i < c->n; i++)
            ok = ledger_verifier_feed(v, &c->e[i]) && ok;
    }
    return ledger_verifier_finish(v, head_seq, head_hash, head_sig) && ok;
}

static bool verify_chain(struct chain *c, struct ledger_verifier *v)
{
    return verify_entries(c, v, NULL, c->n, c->e[c->n - 1].hash, c->head_sig);
}

static void assert_broken_at(const struct ledger_verifier *v, int64_t seq, const char *words)
{
    if (v->bad_seq != seq || !strstr(v->problem, words))
        fail_msg("expected entry %lld to be reported (\"%s\"), got entry %lld: \"%s\"",
                 (long long)seq, words, (long long)v->bad_seq, v->problem);
}

static void test_chain_600_intact(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    /* only 256 and 512 carry a signature in the chain itself */
    for (int64_t i = 0; i < c->n; i++)
        assert_int_equal(c->e[i].has_signature, c->e[i].seq == 256 || c->e[i].seq == 512);
    assert_true(verify_chain(c, &v));
    assert_int_equal(v.bad_seq, 0);
    assert_string_equal(v.problem, "");
    assert_int_equal(v.entries, 600);
    /* N / 256 checkpoints + the head: 2 + 1 */
    assert_int_equal(v.signatures_checked, 600 / LEDGER_CHECKPOINT + 1);
    assert_int_equal(v.signatures_checked, 3);
    chain_free(c);
}

/* The head at a checkpoint: its signature is checked twice, once in the chain and once as
 * the head (512 / 256 + 1 = 3). */
static void test_chain_ending_on_a_checkpoint(void **state)
{
    struct chain *c = chain_new(512);
    struct ledger_verifier v;

    assert_true(verify_chain(c, &v));
    assert_int_equal(v.entries, 512);
    assert_int_equal(v.signatures_checked, 3);
    chain_free(c);
}

static void test_empty_and_single_entry_chains(void **state)
{
    struct chain *c = chain_new(1);
    struct ledger_verifier v;
    uint8_t zero_hash[LEDGER_HASH_LEN] = { 0 }, zero_sig[LEDGER_SIG_LEN] = { 0 };

    ledger_verifier_init(&v, SITE, c->pk);
    assert_true(ledger_verifier_finish(&v, 0, zero_hash, zero_sig));
    assert_int_equal(v.entries, 0);
    assert_int_equal(v.signatures_checked, 0);

    assert_true(verify_chain(c, &v));
    assert_int_equal(v.entries, 1);
    assert_int_equal(v.signatures_checked, 1);      /* the head */
    chain_free(c);
}

static void test_altered_amount_at_300(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->e[299].amount_cents = 1;     /* nothing recomputed */
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 300, "content does not match its hash");
    /* the first problem is kept: 301 (whose link still matches the stored hash) is fine,
     * and nothing after 300 is reported */
    assert_int_equal(v.entries, 300);
    chain_free(c);
}

static void test_removed_entry_100(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;
    int64_t *order = calloc(601, sizeof(*order)), k = 0;

    for (int64_t seq = 1; seq <= 600; seq++)
        if (seq != 100)
            order[k++] = seq;
    assert_false(verify_entries(c, &v, order, 600, c->e[599].hash, c->head_sig));
    assert_broken_at(&v, 100, "missing entry");
    free(order);
    chain_free(c);
}

/* Removed, and everything after renumbered and re-hashed by someone without the key (the
 * signatures, now over the wrong hashes, dropped): no gap and no broken link remain, but
 * the first checkpoint after the change has no valid signature. */
static void test_removed_entry_100_and_renumbered(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    memmove(&c->e[99], &c->e[100], (size_t)(600 - 100) * sizeof(*c->e));
    c->n = 599;
    for (int64_t i = 99; i < c->n; i++) {
        c->e[i].seq = i + 1;
        c->e[i].has_signature = false;
    }
    chain_link_from(c, 99, false);
    /* a re-hashed chain: consistent up to the first signature, which cannot follow */
    assert_false(verify_entries(c, &v, NULL, 599, c->e[598].hash, c->head_sig));
    assert_broken_at(&v, 256, "signature invalid");
    chain_free(c);
}

static void test_swapped_entries(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;
    int64_t *order = calloc(601, sizeof(*order));

    /* (a) delivered out of order: 201 comes where 200 was expected */
    for (int64_t seq = 1; seq <= 600; seq++)
        order[seq - 1] = seq;
    order[199] = 201;
    order[200] = 200;
    assert_false(verify_entries(c, &v, order, 600, c->e[599].hash, c->head_sig));
    assert_int_equal(v.bad_seq, 200);
    assert_true(strstr(v.problem, "sequence number gap") || strstr(v.problem, "out of order"));

    /* (b) contents swapped, sequence numbers kept (what swapping two rows of a table keyed
     * by seq amounts to): 200 now links to 200's own hash */
    struct ledger_entry t = c->e[199];
    c->e[199] = c->e[200];
    c->e[200] = t;
    c->e[199].seq = 200;
    c->e[200].seq = 201;
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 200, "previous-hash link broken");
    free(order);
    chain_free(c);
}

static void test_duplicated_entry(void **state)
{
    struct chain *c = chain_new(300);
    struct ledger_verifier v;
    int64_t *order = calloc(302, sizeof(*order)), k = 0;

    for (int64_t seq = 1; seq <= 300; seq++) {
        order[k++] = seq;
        if (seq == 150)
            order[k++] = 150;
    }
    assert_false(verify_entries(c, &v, order, 300, c->e[299].hash, c->head_sig));
    assert_broken_at(&v, 151, "out of order or duplicated");
    free(order);
    chain_free(c);
}

static void test_forged_checkpoint_signature_256(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->e[255].signature[40] ^= 0x01;
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 256, "signature invalid");
    assert_int_equal(v.signatures_checked, 1);
    chain_free(c);
}

static void test_checkpoint_without_signature(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->e[511].has_signature = false;    /* the signature column emptied */
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 512, "signature invalid");
    chain_free(c);
}

/* A signature where none is due is checked too, and must hold. */
static void test_bogus_signature_on_an_ordinary_entry(void **state)
{
    struct chain *c = chain_new(300);
    struct ledger_verifier v;

    c->e[9].has_signature = true;
    memset(c->e[9].signature, 0x11, LEDGER_SIG_LEN);
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 10, "signature invalid");

    ledger_sign(&c->e[9], c->sk);       /* a real one is fine, and counted */
    assert_true(verify_chain(c, &v));
    assert_int_equal(v.signatures_checked, 3);
    chain_free(c);
}

static void test_forged_head_signature(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->head_sig[0] ^= 0x20;
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 600, "head signature invalid");
    assert_int_equal(v.entries, 600);
    chain_free(c);
}

static void test_head_signed_by_another_key(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;
    uint8_t pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];
    struct ledger_entry head = c->e[599];

    seed_keypair(0x43, pk2, sk2);
    ledger_sign(&head, sk2);
    memcpy(c->head_sig, head.signature, LEDGER_SIG_LEN);
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 600, "head signature invalid");
    chain_free(c);
}

/* The attacker changes entry 300 and recomputes every hash after it, without the key: the
 * hashes and links are consistent, but checkpoint 512 was signed over the old hash. */
static void test_rehashed_from_300_fails_at_checkpoint_512(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;
    uint8_t pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];

    c->e[299].amount_cents = 0;
    chain_link_from(c, 299, false);
    assert_false(verify_entries(c, &v, NULL, 600, c->e[599].hash, c->head_sig));
    assert_broken_at(&v, 512, "signature invalid");
    assert_int_equal(v.entries, 512);
    assert_int_equal(v.signatures_checked, 2);

    /* re-signing with a key of their own does not help */
    seed_keypair(0x43, pk2, sk2);
    ledger_sign(&c->e[511], sk2);
    assert_false(verify_entries(c, &v, NULL, 600, c->e[599].hash, c->head_sig));
    assert_broken_at(&v, 512, "signature invalid");
    chain_free(c);
}

/* No checkpoint after the change: the head signature catches it. */
static void test_rehashed_tail_fails_at_head(void **state)
{
    struct chain *c = chain_new(400);
    struct ledger_verifier v;
    uint8_t old_head_hash[LEDGER_HASH_LEN];

    memcpy(old_head_hash, c->e[399].hash, LEDGER_HASH_LEN);
    c->e[299].amount_cents = 0;
    chain_link_from(c, 299, false);

    /* the head row rewritten to the new hash, old signature kept */
    assert_false(verify_entries(c, &v, NULL, 400, c->e[399].hash, c->head_sig));
    assert_broken_at(&v, 400, "head signature invalid");
    assert_int_equal(v.entries, 400);

    /* the head row left alone: its hash no longer matches the last entry */
    assert_false(verify_entries(c, &v, NULL, 400, old_head_hash, c->head_sig));
    assert_broken_at(&v, 400, "head's hash differs");
    chain_free(c);
}

static void test_entries_missing_at_the_end(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->n = 590;         /* 591..600 gone, the head still says 600 */
    assert_false(verify_entries(c, &v, NULL, 600, c->e[599].hash, c->head_sig));
    assert_broken_at(&v, 591, "entries missing at the end");

    /* a head older than the entries (an entry appended, head not updated) */
    c->n = 600;
    assert_false(verify_entries(c, &v, NULL, 599, c->e[598].hash, c->head_sig));
    assert_broken_at(&v, 599, "does not match the last entry");
    chain_free(c);
}

/* BUG: checkpoint signatures and head signatures sign the same message
 * ("portier-ledger-v1 signature\nsite=..\nseq=..\n" + hash), so the signature of
 * checkpoint 512 is also a valid head signature for 512. Someone who can write the database
 * deletes entries 513..600 and sets the head row to (512, hash(512), signature(512)), and
 * the ledger verifies as intact: truncation back to any checkpoint goes unnoticed. The
 * head should be signed under a different label than checkpoints. */
static void test_truncation_to_a_checkpoint_is_detected(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->n = 512;
    bool ok = verify_entries(c, &v, NULL, 512, c->e[511].hash, c->e[511].signature);
    chain_free(c);
    if (ok)
        fail_msg("entries 513..600 removed and the head set to checkpoint 512 with its own "
                 "signature: the verifier reports the ledger intact");
}

static void test_entry_of_another_site(void **state)
{
    struct chain *c = chain_new(300);
    struct ledger_verifier v;

    snprintf(c->e[41].site, sizeof(c->e[41].site), "lab-lyon");
    chain_link_from(c, 41, true);       /* even correctly hashed and signed by this key */
    chain_sign_head(c);
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 42, "another site");
    chain_free(c);
}

static void test_chain_signed_by_another_key(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;
    uint8_t pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];

    seed_keypair(0x43, pk2, sk2);
    assert_true(verify_chain(c, &v));    /* with the right key */
    memcpy(c->pk, pk2, LEDGER_PK_LEN);    /* a custodian holding another site's key */
    assert_false(verify_chain(c, &v));
    assert_broken_at(&v, 256, "signature invalid");
    chain_free(c);
}

/* Once broken, the verifier stays broken and keeps the first problem. */
static void test_verifier_keeps_first_problem(void **state)
{
    struct chain *c = chain_new(600);
    struct ledger_verifier v;

    c->e[9].amount_cents++;
    c->e[19].amount_cents++;
    ledger_verifier_init(&v, SITE, c->pk);
    for (int64_t i = 0; i < 9; i++)
        assert_true(ledger_verifier_feed(&v, &c->e[i]));
    assert_false(ledger_verifier_feed(&v, &c->e[9]));
    for (int64_t i = 10; i < 600; i++)
        assert_false(ledger_verifier_feed(&v, &c->e[i]));
    assert_false(ledger_verifier_finish(&v, 600, c->e[599].hash, c->head_sig));
    assert_broken_at(&v, 10, "content does not match its hash");
    chain_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_known_answer),
        cmocka_unit_test(test_energy_encoding_known_answer),
        cmocka_unit_test(test_chain_mixing_entries_with_and_without_energy),
        cmocka_unit_test(test_encoding_too_small_buffer),
        cmocka_unit_test(test_encoding_max_fits),
        cmocka_unit_test(test_hash_changes_with_every_field),
        cmocka_unit_test(test_signature_known_answer_and_round_trip),
        cmocka_unit_test(test_signature_rejects_wrong_key_and_changes),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_chain_600_intact),
        cmocka_unit_test(test_chain_ending_on_a_checkpoint),
        cmocka_unit_test(test_empty_and_single_entry_chains),
        cmocka_unit_test(test_altered_amount_at_300),
        cmocka_unit_test(test_removed_entry_100),
        cmocka_unit_test(test_removed_entry_100_and_renumbered),
        cmocka_unit_test(test_swapped_entries),
        cmocka_unit_test(test_duplicated_entry),
        cmocka_unit_test(test_forged_checkpoint_signature_256),
        cmocka_unit_test(test_checkpoint_without_signature),
        cmocka_unit_test(test_bogus_signature_on_an_ordinary_entry),
        cmocka_unit_test(test_forged_head_signature),
        cmocka_unit_test(test_head_signed_by_another_key),
        cmocka_unit_test(test_rehashed_from_300_fails_at_checkpoint_512),
        cmocka_unit_test(test_rehashed_tail_fails_at_head),
        cmocka_unit_test(test_entries_missing_at_the_end),
        cmocka_unit_test(test_truncation_to_a_checkpoint_is_detected),
        cmocka_unit_test(test_entry_of_another_site),
        cmocka_unit_test(test_chain_signed_by_another_key),
        cmocka_unit_test(test_verifier_keeps_first_problem),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

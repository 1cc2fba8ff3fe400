/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int ledger_encode(const struct ledger_entry *e, char *buf, size_t n)
{
    char prev[LEDGER_HASH_LEN * 2 + 1];
    int len;

    sodium_bin2hex(prev, sizeof(prev), e->prev_hash, LEDGER_HASH_LEN);
    len = snprintf(buf, n,
                   "portier-ledger-v1\n"
                   "site=%s\nseq=%" PRId64 "\nprev=%s\nusage=%" PRId64 "\nkind=%s\n"
                   "member=%" PRId64 "\nresource=%s\nstart=%" PRId64 "\nend=%" PRId64 "\n"
                   "quantity=%" PRId64 "\nunit=%s\namount_cents=%" PRId64 "\nallowance=%s\n"
                   "corrects=%" PRId64 "\nrecorded=%" PRId64 "\n",
                   e->site, e->seq, prev, e->usage_id, e->kind, e->member_id, e->resource,
                   e->started_at, e->ended_at, e->quantity, e->unit, e->amount_cents,
                   e->allowance, e->corrects_seq, e->recorded_at);
    if (len < 0 || (size_t)len >= n)
        return -E2BIG;
    if (ledger_is_visit(e)) {
        int more = snprintf(buf + len, n - (size_t)len, "home=%s\nvisitor=%s\n", e->home,
                            e->visitor);
        if (more < 0 || (size_t)more >= n - (size_t)len)
            return -E2BIG;
        len += more;
    }
    if (e->has_energy) {
        int more = snprintf(buf + len, n - (size_t)len, "energy_wh=%" PRId64 "\n", e->energy_wh);
        if (more < 0 || (size_t)more >= n - (size_t)len)
            return -E2BIG;
        len += more;
    }
    return len;
}

bool ledger_is_visit(const struct ledger_entry *e)
{
    return strcmp(e->kind, "visit") == 0;
}

void ledger_hash(struct ledger_entry *e)
{
    char buf[LEDGER_ENCODING_MAX];
    int len = ledger_encode(e, buf, sizeof(buf));
    crypto_generichash(e->hash, LEDGER_HASH_LEN, (const uint8_t *)buf, len > 0 ? (size_t)len : 0,
                       NULL, 0);
}

static size_t sig_message(const char *domain, const char *site, int64_t seq,
                          const uint8_t hash[LEDGER_HASH_LEN], uint8_t *msg, size_t n)
{
    int len = snprintf((char *)msg, n, "portier-ledger-v1 %s\nsite=%s\nseq=%" PRId64 "\n",
                       domain, site, seq);
    if (len < 0 || (size_t)len + LEDGER_HASH_LEN > n)
        return 0;
    memcpy(msg + len, hash, LEDGER_HASH_LEN);
    return (size_t)len + LEDGER_HASH_LEN;
}

void ledger_sign(struct ledger_entry *e, const uint8_t sk[LEDGER_SK_LEN])
{
    uint8_t msg[160];
    size_t len = sig_message("signature", e->site, e->seq, e->hash, msg, sizeof(msg));
    crypto_sign_detached(e->signature, NULL, msg, len, sk);
    e->has_signature = true;
}

void ledger_sign_head(const struct ledger_entry *e, const uint8_t sk[LEDGER_SK_LEN],
                      uint8_t sig[LEDGER_SIG_LEN])
{
    uint8_t msg[160];
    size_t len = sig_message("head", e->site, e->seq, e->hash, msg, sizeof(msg));
    crypto_sign_detached(sig, NULL, msg, len, sk);
}

static bool sig_ok(const char *domain, const char *site, int64_t seq,
                   const uint8_t hash[LEDGER_HASH_LEN], const uint8_t sig[LEDGER_SIG_LEN],
                   const uint8_t pk[LEDGER_PK_LEN])
{
    uint8_t msg[160];
    size_t len = sig_message(domain, site, seq, hash, msg, sizeof(msg));
    return len > 0 && crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

bool ledger_signature_ok(const struct ledger_entry *e, const uint8_t pk[LEDGER_PK_LEN])
{
    return e->has_signature && sig_ok("signature", e->site, e->seq, e->hash, e->signature, pk);
}

bool ledger_is_checkpoint(int64_t seq)
{
    return seq % LEDGER_CHECKPOINT == 0;
}

void ledger_verifier_init(struct ledger_verifier *v, const char *site,
                          const uint8_t pk[LEDGER_PK_LEN])
{
    memset(v, 0, sizeof(*v));
    snprintf(v->site, sizeof(v->site), "%s", site);
    memcpy(v->pk, pk, LEDGER_PK_LEN);
    v->expected_seq = 1;
}

static bool broken(struct ledger_verifier *v, int64_t seq, const char *what)
{
    v->bad_seq = seq;
    snprintf(v->problem, sizeof(v->problem), "%s", what);
    return false;
}

bool ledger_verifier_feed(struct ledger_verifier *v, const struct ledger_entry *e)
{
    struct ledger_entry copy;

    if (v->bad_seq)
        return false;
    v->entries++;
    if (e->seq != v->expected_seq)
        return broken(v, v->expected_seq, e->seq > v->expected_seq
                                              ? "missing entry (sequence number gap)"
                                              : "entry out of order or duplicated");
    if (strcmp(e->site, v->site) != 0)
        return broken(v, e->seq, "entry of another site");
    if (memcmp(e->prev_hash, v->prev_hash, LEDGER_HASH_LEN) != 0)
        return broken(v, e->seq, "previous-hash link broken (an entry before it was removed, "
                                 "reordered or altered)");
    copy = *e;
    ledger_hash(&copy);
    if (memcmp(copy.hash, e->hash, LEDGER_HASH_LEN) != 0)
        return broken(v, e->seq, "content does not match its hash (altered)");
    if (ledger_is_checkpoint(e->seq) || e->has_signature) {
        v->signatures_checked++;
        if (!ledger_signature_ok(e, v->pk))
            return broken(v, e->seq, "signature invalid (forged, or signed by another key)");
    }
    memcpy(v->prev_hash, e->hash, LEDGER_HASH_LEN);
    v->expected_seq++;
    return true;
}

bool ledger_verifier_finish(struct ledger_verifier *v, int64_t head_seq,
                            const uint8_t head_hash[LEDGER_HASH_LEN],
                            const uint8_t head_sig[LEDGER_SIG_LEN])
{
    if (v->bad_seq)
        return false;
    if (head_seq != v->expected_seq - 1)
        return broken(v, head_seq > v->expected_seq - 1 ? v->expected_seq : head_seq,
                      "the signed head does not match the last entry (entries missing at the end)");
    if (head_seq == 0)
        return true;
    if (memcmp(head_hash, v->prev_hash, LEDGER_HASH_LEN) != 0)
        return broken(v, head_seq, "the signed head's hash differs from the last entry");
    v->signatures_checked++;
    if (!sig_ok("head", v->site, head_seq, head_hash, head_sig, v->pk))
        return broken(v, head_seq, "head signature invalid");
    return true;
}

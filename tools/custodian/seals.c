/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "seals.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "period_seal_json.h"
#include "util.h"

const char *seals_outcome_name(enum seal_outcome o)
{
    static const char *const names[] = {
        [SEAL_STORED] = "stored", [SEAL_SAME] = "same", [SEAL_CONFLICT] = "seal_conflict",
        [SEAL_FORGED] = "forged", [SEAL_MALFORMED] = "malformed",
        [SEAL_UNKNOWN_SITE] = "unknown_site", [SEAL_ERROR] = "error",
    };
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

static void problem(struct cdb *db, const char *site, const char *kind, int64_t seq,
                    const char *detail, int64_t now)
{
    struct cdb_problem p = { .at = now, .first_seq = seq, .last_seq = seq };

    snprintf(p.site, sizeof(p.site), "%s", site);
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    snprintf(p.detail, sizeof(p.detail), "%s", detail);
    cdb_problem_add(db, &p);
}

static void refuse(struct cdb *db, struct seal_result *res, enum seal_outcome o,
                   const char *site, int64_t now)
{
    res->outcome = o;
    problem(db, site[0] ? site : "?", seals_outcome_name(o), 0, res->detail, now);
}

void seals_receive(struct cdb *db, const char *topic_site, const char *topic_period,
                   const void *payload, size_t len, int64_t now, struct seal_result *res)
{
    struct cdb_seal s, stored;
    struct period_seal ps;
    struct cdb_site site;
    int r;

    memset(res, 0, sizeof(*res));
    snprintf(res->site, sizeof(res->site), "%s", topic_site);
    snprintf(res->period, sizeof(res->period), "%s", topic_period);
    memset(&s, 0, sizeof(s));
    r = period_seal_from_json(payload, len, s.text, s.sig);
    if (r == 0)
        r = period_seal_parse(s.text, strlen(s.text), &ps);
    if (r < 0) {
        snprintf(res->detail, sizeof(res->detail), "period seal on %.32s/%.8s: %s", topic_site,
                 topic_period, r == -EMSGSIZE ? "too large" : "not a canonical seal");
        refuse(db, res, SEAL_MALFORMED, topic_site, now);
        return;
    }
    if (strcmp(ps.site, topic_site) != 0 || strcmp(ps.period, topic_period) != 0) {
        snprintf(res->detail, sizeof(res->detail),
                 "period seal of %.32s %s published on %.32s/%.8s", ps.site, ps.period,
                 topic_site, topic_period);
        refuse(db, res, SEAL_MALFORMED, topic_site, now);
        return;
    }
    r = cdb_site_get(db, ps.site, &site);
    if (r == -ENOENT) {
        snprintf(res->detail, sizeof(res->detail), "period seal %s from unregistered site %s",
                 ps.period, ps.site);
        refuse(db, res, SEAL_UNKNOWN_SITE, ps.site, now);
        return;
    }
    if (r < 0)
        goto db_error;
    if (!period_seal_signature_ok(s.text, strlen(s.text), s.sig, site.public_key)) {
        snprintf(res->detail, sizeof(res->detail),
                 "period seal %s: signature invalid (not the registered key's)", ps.period);
        refuse(db, res, SEAL_FORGED, ps.site, now);
        return;
    }
    snprintf(s.site, sizeof(s.site), "%s", ps.site);
    snprintf(s.period, sizeof(s.period), "%s", ps.period);
    snprintf(s.first_day, sizeof(s.first_day), "%s", ps.first_day);
    snprintf(s.last_day, sizeof(s.last_day), "%s", ps.last_day);
    s.last_seq = ps.last_seq;
    memcpy(s.last_hash, ps.last_hash, sizeof(s.last_hash));
    memcpy(s.archive_sha256, ps.archive_sha256, sizeof(s.archive_sha256));
    s.closed_at = ps.closed_at;
    s.received_at = now;
    r = cdb_seal_add(db, &s);
    if (r == -EEXIST) {
        if (cdb_seal_get(db, s.site, s.period, &stored) < 0)
            goto db_error;
        snprintf(res->state, sizeof(res->state), "%s", stored.state);
        if (strcmp(stored.text, s.text) == 0) {
            res->outcome = SEAL_SAME;
            snprintf(res->detail, sizeof(res->detail), "period seal %s received again",
                     s.period);
            return;
        }
        /* Sites never change a closed period: two signed seals mean two databases under one
         * key, or a restored backup. Keep the first; someone must look. */
        snprintf(res->detail, sizeof(res->detail),
                 "period seal %s: a different signed seal (ledger up to %" PRId64
                 ") than the one stored (up to %" PRId64 "); kept the stored one",
                 s.period, s.last_seq, stored.last_seq);
        res->outcome = SEAL_CONFLICT;
        problem(db, s.site, "seal_conflict", s.last_seq, res->detail, now);
        return;
    }
    if (r < 0)
        goto db_error;
    res->outcome = SEAL_STORED;
    if (seals_check(db, s.site, now) < 0)
        goto db_error;
    if (cdb_seal_get(db, s.site, s.period, &stored) == 0)
        snprintf(res->state, sizeof(res->state), "%s", stored.state);
    snprintf(res->detail, sizeof(res->detail), "period seal %s stored (ledger up to %" PRId64
             "): %s", s.period, s.last_seq, res->state);
    return;
db_error:
    res->outcome = SEAL_ERROR;
    snprintf(res->detail, sizeof(res->detail), "database: %s", strerror(r < 0 ? -r : EIO));
}

/* ---- checking against the verified chain ---- */

struct pending {
    struct cdb_seal *list;
    size_t n, cap;
};

static int collect_waiting(const struct cdb_seal *s, void *userdata)
{
    struct pending *p = userdata;

    if (strcmp(s->state, "waiting") != 0)
        return 0;
    if (ARRAY_RESERVE(p->list, p->n, p->cap, 8) < 0)
        return -ENOMEM;
    p->list[p->n++] = *s;
    return 0;
}

int seals_check(struct cdb *db, const char *site, int64_t now)
{
    struct pending p = { 0 };
    struct cdb_site st;
    uint8_t hash[LEDGER_HASH_LEN];
    char detail[200];
    int r, mismatches = 0;

    r = cdb_site_get(db, site, &st);
    if (r < 0)
        return r;
    /* Collected first: the state is updated while nothing iterates over the table. */
    r = cdb_seals_foreach(db, site, NULL, collect_waiting, &p);
    for (size_t i = 0; r >= 0 && i < p.n; i++) {
        const struct cdb_seal *s = &p.list[i];
        if (s->last_seq > st.verified_seq)
            continue;       /* waiting for entries */
        memset(hash, 0, sizeof(hash));     /* an empty ledger's head hash is all zeros */
        if (s->last_seq > 0 && (r = cdb_entry_hash(db, site, s->last_seq, hash)) < 0)
            break;
        if (sodium_memcmp(hash, s->last_hash, sizeof(hash)) == 0) {
            r = cdb_seal_set_state(db, site, s->period, "verified", now);
            continue;
        }
        snprintf(detail, sizeof(detail),
                 "period seal %s: entry %" PRId64 " in the verified chain is not the one the "
                 "seal names (last_hash differs)", s->period, s->last_seq);
        problem(db, site, "seal_mismatch", s->last_seq, detail, now);
        r = cdb_seal_set_state(db, site, s->period, "mismatch", now);
        mismatches++;
    }
    free(p.list);
    return r < 0 ? r : mismatches;
}

/* ---- export ---- */

struct export_file {
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;
};

static int file_open(struct export_file *x, const char *dir, const char *site,
                     const char *period, const char *suffix)
{
    int fd;

    snprintf(x->path, sizeof(x->path), "%s/%s-%s.%s", dir, site, period, suffix);
    snprintf(x->tmp, sizeof(x->tmp), "%s.tmp", x->path);
    fd = open(x->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    x->f = fdopen(fd, "w");
    if (!x->f) {
        close(fd);
        return -errno;
    }
    return 0;
}

/* Flush, sync and rename into place (commit) or remove (!commit). */
static int file_close(struct export_file *x, bool commit)
{
    int r = 0;

    if (!x->f)
        return 0;
    if (fflush(x->f) != 0 || fsync(fileno(x->f)) < 0)
        r = -errno;
    if (fclose(x->f) != 0 && r == 0)
        r = -errno;
    x->f = NULL;
    if (commit && r == 0 && rename(x->tmp, x->path) < 0)
        r = -errno;
    if (!commit || r < 0)
        unlink(x->tmp);
    return r;
}

int seals_chain_next(struct seals_chain *w, const struct ledger_entry *stored)
{
    struct ledger_entry e = *stored;

    if (e.seq != w->expected) {
        snprintf(w->problem, sizeof(w->problem), "entry %" PRId64 " is missing", w->expected);
        return -EBADMSG;
    }
    if (w->prev_known && memcmp(e.prev_hash, w->prev, LEDGER_HASH_LEN) != 0) {
        snprintf(w->problem, sizeof(w->problem), "entry %" PRId64 " does not link to the one "
                 "before", e.seq);
        return -EBADMSG;
    }
    ledger_hash(&e);
    if (memcmp(e.hash, stored->hash, LEDGER_HASH_LEN) != 0) {
        snprintf(w->problem, sizeof(w->problem), "entry %" PRId64 ": its hash does not match "
                 "its content", e.seq);
        return -EBADMSG;
    }
    memcpy(w->prev, e.hash, LEDGER_HASH_LEN);
    w->prev_known = true;
    w->expected++;
    return 0;
}

struct chain_check {
    struct seals_chain chain;
    FILE *ledger;
    const uint8_t *pk;
    int64_t entries, signatures;
    crypto_hash_sha256_state sha;
};

static int check_entry(const struct ledger_entry *e, void *userdata)
{
    struct chain_check *c = userdata;
    char buf[LEDGER_ENCODING_MAX];
    int n;

    if ((n = seals_chain_next(&c->chain, e)) < 0)
        return n;
    if (e->has_signature) {
        if (!ledger_signature_ok(e, c->pk)) {
            snprintf(c->chain.problem, sizeof(c->chain.problem), "entry %" PRId64
                     ": checkpoint signature invalid", e->seq);
            return -EBADMSG;
        }
        c->signatures++;
    }
    n = ledger_encode(e, buf, sizeof(buf));
    if (n < 0)
        return n;
    if (fwrite(buf, 1, (size_t)n, c->ledger) != (size_t)n)
        return -EIO;
    crypto_hash_sha256_update(&c->sha, (const uint8_t *)buf, (size_t)n);
    c->entries++;
    return 0;
}

struct export_ctx {
    struct cdb *db;
    const char *dir;
    FILE *out, *err;
    int exported, refused, failed;
};

static int export_one(const struct cdb_seal *s, void *userdata)
{
    struct export_ctx *x = userdata;
    struct export_file ledger = { 0 }, seal = { 0 }, report = { 0 };
    struct chain_check c = { .chain.prev_known = true };
    struct period_seal ps;
    struct cdb_site site;
    char sig_hex[2 * LEDGER_SIG_LEN + 1], hex[2 * LEDGER_HASH_LEN + 1];
    char pk_hex[2 * LEDGER_PK_LEN + 1], seal_sha_hex[2 * LEDGER_HASH_LEN + 1];
    uint8_t sha[crypto_hash_sha256_BYTES];
    int64_t from, prev;
    int r;

    if (strcmp(s->state, "verified") != 0) {
        fprintf(x->err, "%s %s: not exported: the seal is %s%s\n", s->site, s->period,
                s->state, strcmp(s->state, "waiting") == 0
                    ? " (the custodian has not verified its entries up to last_seq yet)"
                    : " (its last_hash is not the verified chain's: see problems)");
        x->refused++;
        return 0;
    }
    if ((r = cdb_site_get(x->db, s->site, &site)) < 0)
        return r;
    /* Checked again: the export is evidence, not a copy of a column. */
    if (period_seal_parse(s->text, strlen(s->text), &ps) < 0 ||
        !period_seal_signature_ok(s->text, strlen(s->text), s->sig, site.public_key)) {
        fprintf(x->err, "%s %s: not exported: the stored seal no longer verifies\n", s->site,
                s->period);
        x->refused++;
        return 0;
    }
    prev = cdb_seal_prev_last_seq(x->db, s->site, s->period);
    if (prev < 0)
        return (int)prev;
    from = prev + 1;
    c.chain.expected = from;
    c.pk = site.public_key;
    if (prev > 0 && (r = cdb_entry_hash(x->db, s->site, prev, c.chain.prev)) < 0)
        return r;
    crypto_hash_sha256_init(&c.sha);

    if ((r = file_open(&ledger, x->dir, s->site, s->period, "ledger")) < 0)
        goto io;
    c.ledger = ledger.f;
    r = cdb_entries_foreach(x->db, s->site, from, s->last_seq, check_entry, &c);
    if (r == -EBADMSG || (r >= 0 && c.chain.expected != s->last_seq + 1) ||
        (r >= 0 && memcmp(c.chain.prev, s->last_hash, LEDGER_HASH_LEN) != 0 &&
         s->last_seq >= from)) {
        if (!c.chain.problem[0])
            snprintf(c.chain.problem, sizeof(c.chain.problem), "the entries end at %" PRId64
                     " or their last hash is not the seal's", c.chain.expected - 1);
        fprintf(x->err, "%s %s: not exported: %s\n", s->site, s->period, c.chain.problem);
        file_close(&ledger, false);
        x->refused++;
        return 0;
    }
    if (r < 0)
        goto io;
    crypto_hash_sha256_final(&c.sha, sha);

    if ((r = file_open(&seal, x->dir, s->site, s->period, "seal")) < 0)
        goto io;
    sodium_bin2hex(sig_hex, sizeof(sig_hex), s->sig, sizeof(s->sig));
    fprintf(seal.f, "%ssignature=%s\n", s->text, sig_hex);
    {
        crypto_hash_sha256_state st;
        uint8_t seal_sha[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, (const uint8_t *)s->text, strlen(s->text));
        crypto_hash_sha256_final(&st, seal_sha);
        sodium_bin2hex(seal_sha_hex, sizeof(seal_sha_hex), seal_sha, sizeof(seal_sha));
    }

    if ((r = file_open(&report, x->dir, s->site, s->period, "verify.txt")) < 0)
        goto io;
    sodium_bin2hex(pk_hex, sizeof(pk_hex), site.public_key, sizeof(site.public_key));
    fprintf(report.f, "portier-custodian export of %s, period %s (%s to %s)\n\n", s->site,
            s->period, s->first_day, s->last_day);
    fprintf(report.f, "site public key (the custodian's registry): %s\n", pk_hex);
    fprintf(report.f, "seal: %s-%s.seal, received %" PRId64 ", state %s\n", s->site, s->period,
            s->received_at, s->state);
    fprintf(report.f, "  signature: OK (Ed25519 over the seal text, every line before "
            "\"signature=\")\n");
    sodium_bin2hex(hex, sizeof(hex), s->last_hash, sizeof(s->last_hash));
    fprintf(report.f, "  last_seq %" PRId64 ", last_hash %s\n", s->last_seq, hex);
    sodium_bin2hex(hex, sizeof(hex), s->archive_sha256, sizeof(s->archive_sha256));
    fprintf(report.f, "  archive_sha256 %s (the site's archive file; not held here)\n", hex);
    fprintf(report.f, "  sha256 of the seal text: %s\n\n", seal_sha_hex);
    fprintf(report.f, "ledger: %s-%s.ledger, entries %" PRId64 " to %" PRId64 " (%" PRId64
            " entries; the entries after the previous seal's last_seq %" PRId64 ")\n",
            s->site, s->period, from, s->last_seq, c.entries, prev);
    fprintf(report.f, "  chain: OK (every hash recomputed from its encoding; every entry "
            "links to the one before%s)\n", prev > 0 ? ", the first to entry prev's stored hash"
                                                     : ", the first to zeros");
    fprintf(report.f, "  checkpoint signatures: %" PRId64 " OK\n", c.signatures);
    fprintf(report.f, "  seal match: %s\n", s->last_seq >= from
                ? "OK (the hash of the last entry is the seal's last_hash)"
                : "no entries in this range");
    sodium_bin2hex(hex, sizeof(hex), sha, sizeof(sha));
    fprintf(report.f, "  sha256 of the .ledger file: %s\n", hex);
    if (prev > 0) {
        uint8_t ph[LEDGER_HASH_LEN];
        cdb_entry_hash(x->db, s->site, prev, ph);
        sodium_bin2hex(hex, sizeof(hex), ph, sizeof(ph));
        fprintf(report.f, "  hash of entry %" PRId64 " (before the first): %s\n", prev, hex);
    }
    if ((r = file_close(&ledger, true)) < 0 || (r = file_close(&seal, true)) < 0 ||
        (r = file_close(&report, true)) < 0)
        goto io;
    fprintf(x->out, "%s %s: entries %" PRId64 "-%" PRId64 " exported to %s/%s-%s.*\n", s->site,
            s->period, from, s->last_seq, x->dir, s->site, s->period);
    x->exported++;
    return 0;
io:
    fprintf(x->err, "%s %s: cannot write in %s: %s\n", s->site, s->period, x->dir,
            strerror(-r));
    file_close(&ledger, false);
    file_close(&seal, false);
    file_close(&report, false);
    x->failed++;
    return 0;
}

int seals_export(struct cdb *db, const char *period, const char *site, const char *dir,
                 FILE *out, FILE *err)
{
    struct export_ctx x = { .db = db, .dir = dir, .out = out, .err = err };
    int r;

    r = cdb_seals_foreach(db, site, period, export_one, &x);
    if (r < 0)
        return r;
    if (r == 0) {
        fprintf(err, "no seal for period %s%s%s\n", period, site ? " from " : "",
                site ? site : "");
        return 1;
    }
    if (x.failed)
        return -EIO;
    return x.refused ? 1 : 0;
}

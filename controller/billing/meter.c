/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "meter.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

struct meter {
    struct store *store;
    char site[32];
    int cutoff;                     /* minutes after local midnight when a billing day starts */
    uint8_t pk[LEDGER_PK_LEN];
    uint8_t sk[LEDGER_SK_LEN];
};

int meter_new(struct store *store, const char *site, int day_cutoff_minutes, struct meter **ret)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    struct meter *m = calloc(1, sizeof(*m));
    int r;

    if (!m)
        return -ENOMEM;
    m->store = store;
    meter_configure(m, site, day_cutoff_minutes);
    /* The ledger is signed for one site id: a database never changes site. */
    r = store_site_id(store, site);
    if (r < 0) {
        free(m);
        return r;
    }
    /* The site's signing key: created at first start, kept as a seed in the database. */
    r = store_secret(store, "ledger_seed", seed, sizeof(seed));
    if (r < 0) {
        free(m);
        return r;
    }
    crypto_sign_seed_keypair(m->pk, m->sk, seed);
    sodium_memzero(seed, sizeof(seed));
    *ret = m;
    return 0;
}

struct meter *meter_free(struct meter *m)
{
    if (m) {
        sodium_memzero(m->sk, sizeof(m->sk));
        free(m);
    }
    return NULL;
}

void meter_configure(struct meter *m, const char *site, int day_cutoff_minutes)
{
    snprintf(m->site, sizeof(m->site), "%s", site);
    m->cutoff = day_cutoff_minutes;
}

void meter_public_key(const struct meter *m, uint8_t pk[LEDGER_PK_LEN])
{
    memcpy(pk, m->pk, LEDGER_PK_LEN);
}

void meter_billing_day(const struct meter *m, int64_t t, char out[11])
{
    struct tm tm;
    time_t tt = (time_t)t;

    /* Wall-clock arithmetic: 02:30 on the 5th with a 04:00 cutoff belongs to the 4th. */
    localtime_r(&tt, &tm);
    tm.tm_min -= m->cutoff;
    tm.tm_isdst = -1;
    timegm(&tm);        /* normalise the broken-down time without a zone */
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static void month_of(const char *day, char first[11], char last[11])
{
    char period[8];
    snprintf(period, sizeof(period), "%.7s", day);
    period_days(period, first, last);
}

/* Chain, sign and append e (its fields filled but seq, prev_hash and site). */
static int append(struct meter *m, struct ledger_entry *e, int64_t *ret_seq)
{
    uint8_t head_sig[LEDGER_SIG_LEN];
    int64_t seq;
    int r = store_ledger_head(m->store, &seq, e->prev_hash, head_sig);

    if (r < 0)
        return r;
    e->seq = seq + 1;
    snprintf(e->site, sizeof(e->site), "%s", m->site);
    ledger_hash(e);
    if (ledger_is_checkpoint(e->seq))
        ledger_sign(e, m->sk);
    /* The head is always signed, so the newest entries are covered too. */
    ledger_sign_head(e, m->sk, head_sig);
    r = store_ledger_append(m->store, e, head_sig);
    if (r == 0 && ret_seq)
        *ret_seq = e->seq;
    return r;
}

int meter_next_seq(struct meter *m, int64_t *ret_seq)
{
    uint8_t hash[LEDGER_HASH_LEN], sig[LEDGER_SIG_LEN];
    int64_t seq;
    int r = store_ledger_head(m->store, &seq, hash, sig);

    if (r == 0)
        *ret_seq = seq + 1;
    return r;
}

int meter_visit(struct meter *m, int64_t visit_id, const char *home, const char *visitor,
                const char *door, int64_t at, int64_t amount_cents, int64_t *ret_seq)
{
    struct ledger_entry e = { 0 };

    e.usage_id = visit_id;
    snprintf(e.kind, sizeof(e.kind), "visit");
    snprintf(e.resource, sizeof(e.resource), "%s", door);
    e.started_at = e.ended_at = at;
    e.quantity = 1;
    snprintf(e.unit, sizeof(e.unit), "day");
    e.amount_cents = amount_cents;
    snprintf(e.allowance, sizeof(e.allowance), "visit");
    e.recorded_at = now_utc();
    snprintf(e.home, sizeof(e.home), "%s", home);
    snprintf(e.visitor, sizeof(e.visitor), "%s", visitor);
    return append(m, &e, ret_seq);
}

/* Insert u and append it to the ledger, in the current batch. */
static int record(struct meter *m, struct store_usage *u, int64_t *ret_seq)
{
    struct ledger_entry e = { 0 }, head = { 0 };
    int64_t seq;
    int r;

    r = store_ledger_head(m->store, &seq, e.prev_hash, head.signature);
    if (r < 0)
        return r;
    e.seq = seq + 1;
    u->ledger_seq = e.seq;
    u->recorded_at = now_utc();
    r = store_usage_add(m->store, u, &u->id);
    if (r < 0)
        return r;
    snprintf(e.site, sizeof(e.site), "%s", m->site);
    e.usage_id = u->id;
    snprintf(e.kind, sizeof(e.kind), "%s", u->kind);
    e.member_id = u->member_id;
    snprintf(e.resource, sizeof(e.resource), "%s", u->resource);
    e.started_at = u->started_at;
    e.ended_at = u->ended_at;
    e.quantity = u->quantity;
    snprintf(e.unit, sizeof(e.unit), "%s", u->unit);
    e.amount_cents = u->amount_cents;
    snprintf(e.allowance, sizeof(e.allowance), "%s", u->allowance);
    e.corrects_seq = u->corrects_seq;
    e.recorded_at = u->recorded_at;
    e.has_energy = u->has_energy;
    e.energy_wh = u->energy_wh;
    ledger_hash(&e);
    if (ledger_is_checkpoint(e.seq))
        ledger_sign(&e, m->sk);
    /* The head is always signed, so the newest entries are covered too. */
    ledger_sign_head(&e, m->sk, head.signature);
    r = store_ledger_append(m->store, &e, head.signature);
    if (r == 0 && ret_seq)
        *ret_seq = e.seq;
    return r;
}

/* Does the order list ("pass,plan,rate") contain word at position i? Returns the word. */
static const char *order_word(const char *order, int i, char *buf, size_t n)
{
    const char *p = order;
    for (int k = 0; *p; k++) {
        size_t len = strcspn(p, ",");
        if (k == i) {
            snprintf(buf, n, "%.*s", (int)len, p);
            return buf;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return NULL;
}

/* Charge the billing day of at, unless already charged: the plan's allowance order decides
 * what pays. Runs inside the caller's step. */
static int charge_day(struct meter *m, int64_t member_id, const char *resource, int64_t at)
{
    struct store_member_plan plan = { .allowance_order = "pass,plan,rate" };
    struct store_usage u = { 0 };
    char first[11], last[11], word[16];
    int64_t taken;
    int r;

    meter_billing_day(m, at, u.billing_day);
    if (store_day_charged(m->store, member_id, u.billing_day))
        return 0;
    r = store_member_plan(m->store, member_id, &plan);
    if (r < 0 && r != -ENOENT)
        return r;           /* without a plan: passes, then the day rate of nobody (0) */
    snprintf(u.kind, sizeof(u.kind), "day");
    u.member_id = member_id;
    snprintf(u.resource, sizeof(u.resource), "%s", resource);
    u.started_at = u.ended_at = at;
    u.quantity = 1;
    snprintf(u.unit, sizeof(u.unit), "day");
    snprintf(u.allowance, sizeof(u.allowance), "free");
    month_of(u.billing_day, first, last);
    for (int i = 0; order_word(plan.allowance_order, i, word, sizeof(word)); i++) {
        if (strcmp(word, "pass") == 0) {
            r = store_pass_take(m->store, member_id, "days", "*", "", at, 1, &taken);
            if (r < 0)
                return r;
            if (taken) {
                snprintf(u.allowance, sizeof(u.allowance), "pass");
                u.pass_quantity = 1;
                break;
            }
        } else if (strcmp(word, "plan") == 0) {
            if (plan.monthly_days > store_plan_days_used(m->store, member_id, first, last)) {
                snprintf(u.allowance, sizeof(u.allowance), "plan");
                u.plan_quantity = 1;
                break;
            }
        } else if (strcmp(word, "rate") == 0 && plan.day_rate_cents > 0) {
            snprintf(u.allowance, sizeof(u.allowance), "rate");
            u.charged_quantity = 1;
            u.amount_cents = plan.day_rate_cents;
            break;
        }
    }
    return record(m, &u, NULL);
}

/* Every metering operation is one step: refused (a closed period, a full disk), it leaves
 * nothing behind — no pass day taken, no presence opened. */
static int step_end(struct meter *m, int r)
{
    int e = store_step_end(m->store, r >= 0);
    return r < 0 ? r : e;
}

int meter_check_in(struct meter *m, int64_t member_id, const char *resource, int64_t at)
{
    int64_t id, in;
    int r = store_step_begin(m->store);

    if (r < 0)
        return r;
    if (store_presence_find(m->store, member_id, &id, &in) == -ENOENT)
        r = store_presence_open(m->store, member_id, 0, at);
    if (r >= 0)
        r = charge_day(m, member_id, resource, at);
    return step_end(m, r);
}

int meter_manual_day(struct meter *m, int64_t member_id, int64_t at)
{
    int r = store_step_begin(m->store);
    if (r < 0)
        return r;
    return step_end(m, charge_day(m, member_id, "manual", at));
}

/* Record u dated on its start's billing day, or, if that period is already closed (a
 * session open across a period's close), on its end's, marked so. */
static int record_late_ok(struct meter *m, struct store_usage *u, int64_t end)
{
    int r = record(m, u, NULL);
    if (r != -EPERM)
        return r;
    meter_billing_day(m, end, u->billing_day);
    snprintf(u->note, sizeof(u->note), "started in a closed period");
    return record(m, u, NULL);
}

static int presence_usage(struct meter *m, int64_t member_id, int64_t in, int64_t out,
                          const char *reason)
{
    struct store_usage u = { 0 };
    snprintf(u.kind, sizeof(u.kind), "presence");
    u.member_id = member_id;
    meter_billing_day(m, in, u.billing_day);
    u.started_at = in;
    u.ended_at = out;
    u.quantity = (out - in + 59) / 60;
    snprintf(u.unit, sizeof(u.unit), "minute");
    snprintf(u.allowance, sizeof(u.allowance), "none");
    snprintf(u.end_reason, sizeof(u.end_reason), "%s", reason);
    return record_late_ok(m, &u, out);
}

int meter_check_out(struct meter *m, int64_t member_id, int64_t at, const char *reason)
{
    int64_t id, in;
    int r = store_presence_find(m->store, member_id, &id, &in);

    if (r < 0)
        return r;
    if (at < in)
        return -EINVAL;     /* a check-out before the check-in */
    r = store_step_begin(m->store);
    if (r < 0)
        return r;
    r = store_presence_close(m->store, id, at, reason);
    if (r >= 0)
        r = presence_usage(m, member_id, in, at, reason);
    return step_end(m, r);
}

struct out_all {
    struct meter *m;
    int64_t at;
    const char *reason;
    int n;
};

static int out_one(int64_t id, int64_t member_id, const char *name, int64_t in, void *userdata)
{
    struct out_all *o = userdata;
    int r;

    /* One member's problem must not keep the others checked in: go on. */
    if (o->at < in)
        return 0;
    r = store_step_begin(o->m->store);
    if (r < 0)
        return 0;
    r = store_presence_close(o->m->store, id, o->at, o->reason);
    if (r >= 0)
        r = presence_usage(o->m, member_id, in, o->at, o->reason);
    if (step_end(o->m, r) >= 0)
        o->n++;
    else
        log_error("cannot check member %" PRId64 " out: %s", member_id, strerror(-r));
    return 0;
}

int meter_check_out_all(struct meter *m, int64_t at, const char *reason)
{
    struct out_all o = { m, at, reason, 0 };
    int r = store_presence_foreach(m->store, out_one, &o);
    return r < 0 ? r : o.n;
}

int64_t meter_price_minutes(const struct store_rate *rate, int64_t minutes)
{
    int64_t billable = minutes - rate->free_minutes, block, blocks, cents;

    if (billable <= 0)
        return 0;
    block = rate->block_minutes > 0 ? rate->block_minutes : 1;
    blocks = (billable + block - 1) / block;            /* every started block */
    cents = (blocks * block * rate->per_hour_cents + 30) / 60;   /* to the nearest cent */
    return cents < rate->min_charge_cents ? rate->min_charge_cents : cents;
}

int64_t meter_price_energy(int64_t per_kwh_cents, int64_t charged_wh)
{
    if (per_kwh_cents <= 0 || charged_wh <= 0)
        return 0;
    return (charged_wh * per_kwh_cents + 500) / 1000;
}

/* The energy of a session: first what the plan includes this month (if the plan's order
 * lists "plan"), then the rate per kWh (if it lists "rate"). */
static void meter_energy(struct meter *m, struct store_usage *u, const struct store_member_plan *plan,
                         const struct store_rate *rate, bool has_rate, const char *first,
                         const char *last)
{
    char word[16];
    int64_t left = u->energy_wh;

    for (int i = 0; left > 0 && order_word(plan->allowance_order, i, word, sizeof(word)); i++) {
        if (strcmp(word, "plan") == 0 && has_rate && rate->monthly_wh > 0) {
            int64_t used = store_plan_wh_used(m->store, u->member_id, rate->target, first, last);
            int64_t avail = rate->monthly_wh - used;
            int64_t taken = avail > 0 ? (avail < left ? avail : left) : 0;
            u->plan_wh = taken;
            left -= taken;
        } else if (strcmp(word, "rate") == 0 && has_rate && rate->per_kwh_cents > 0) {
            u->energy_cents = meter_price_energy(rate->per_kwh_cents, left);
            left = 0;
        }
    }
}

int meter_machine(struct meter *m, int64_t member_id, const char *resource, int64_t started_at,
                  int64_t ended_at, int64_t running_seconds, int64_t energy_wh, const char *reason)
{
    struct store_member_plan plan = { .allowance_order = "pass,plan,rate" };
    struct store_rate rate = { .block_minutes = 1 };
    struct store_usage u = { 0 };
    char first[11], last[11], word[16], category[32];
    bool has_rate;
    int64_t left, taken;
    int r = store_step_begin(m->store);

    if (r < 0)
        return r;
    snprintf(u.kind, sizeof(u.kind), "machine");
    u.member_id = member_id;
    snprintf(u.resource, sizeof(u.resource), "%s", resource);
    meter_billing_day(m, started_at, u.billing_day);
    u.started_at = started_at;
    u.ended_at = ended_at > started_at ? ended_at : started_at;
    u.quantity = (u.ended_at - u.started_at + 59) / 60;     /* to the started minute */
    snprintf(u.unit, sizeof(u.unit), "minute");
    u.running_seconds = running_seconds;
    snprintf(u.end_reason, sizeof(u.end_reason), "%s", reason);
    u.has_energy = energy_wh >= 0;
    u.energy_wh = energy_wh >= 0 ? energy_wh : 0;

    r = store_resource_category(m->store, resource, category, sizeof(category));
    if (r < 0 && r != -ENOENT)
        return r;
    has_rate = store_member_plan(m->store, member_id, &plan) == 0 &&
               store_rate_find(m->store, plan.plan_id, resource, category, &rate) == 0;
    month_of(u.billing_day, first, last);
    left = u.quantity;
    for (int i = 0; left > 0 && order_word(plan.allowance_order, i, word, sizeof(word)); i++) {
        if (strcmp(word, "pass") == 0) {
            r = store_pass_take(m->store, member_id, "minutes", resource, category, started_at,
                                left, &taken);
            if (r < 0)
                return step_end(m, r);
            u.pass_quantity = taken;
            left -= taken;
        } else if (strcmp(word, "plan") == 0 && has_rate && rate.monthly_minutes > 0) {
            int64_t used = store_plan_minutes_used(m->store, member_id, rate.target, first, last);
            int64_t avail = rate.monthly_minutes - used;
            taken = avail > 0 ? (avail < left ? avail : left) : 0;
            u.plan_quantity = taken;
            left -= taken;
        } else if (strcmp(word, "rate") == 0 && has_rate) {
            u.charged_quantity = left;
            u.amount_cents = meter_price_minutes(&rate, left);
            left = 0;
        }
    }
    if (u.has_energy)
        meter_energy(m, &u, &plan, &rate, has_rate, first, last);
    u.amount_cents += u.energy_cents;
    snprintf(u.allowance, sizeof(u.allowance), "%s",
             u.charged_quantity || u.energy_cents ? "rate" :
             u.plan_quantity || u.plan_wh ? "plan" : u.pass_quantity ? "pass" : "free");
    return step_end(m, record_late_ok(m, &u, u.ended_at));
}

int meter_correction(struct meter *m, int64_t seq, int64_t amount_delta_cents, const char *note,
                     int64_t *ret_seq)
{
    struct store_usage orig, u = { 0 };
    int64_t now = now_utc();
    int r = store_usage_by_seq(m->store, seq, &orig);

    if (r < 0)
        return r;
    snprintf(u.kind, sizeof(u.kind), "correction");
    u.member_id = orig.member_id;
    snprintf(u.resource, sizeof(u.resource), "%s", orig.resource);
    meter_billing_day(m, now, u.billing_day);       /* dated now: closed periods stay sealed */
    u.started_at = u.ended_at = now;
    snprintf(u.unit, sizeof(u.unit), "%s", orig.unit);
    snprintf(u.allowance, sizeof(u.allowance), "correction");
    u.amount_cents = amount_delta_cents;
    u.corrects_seq = seq;
    snprintf(u.note, sizeof(u.note), "%s", note ? note : "");
    r = store_step_begin(m->store);
    if (r < 0)
        return r;
    return step_end(m, record(m, &u, ret_seq));
}

static int verify_one(const struct ledger_entry *e, void *userdata)
{
    return ledger_verifier_feed(userdata, e) ? 0 : -EBADMSG;
}

int meter_verify(struct meter *m, struct ledger_verifier *v)
{
    uint8_t head_hash[LEDGER_HASH_LEN], head_sig[LEDGER_SIG_LEN];
    int64_t head_seq;
    int r;

    ledger_verifier_init(v, m->site, m->pk);
    r = store_ledger_foreach(m->store, 1, verify_one, v);
    if (r < 0 && r != -EBADMSG)
        return r;
    if (v->bad_seq)
        return -EBADMSG;
    r = store_ledger_head(m->store, &head_seq, head_hash, head_sig);
    if (r < 0)
        return r;
    return ledger_verifier_finish(v, head_seq, head_hash, head_sig) ? 0 : -EBADMSG;
}

void meter_sign(const struct meter *m, const void *data, size_t len, uint8_t sig[LEDGER_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, data, len, m->sk);
}

const char *meter_site(const struct meter *m)
{
    return m->site;
}

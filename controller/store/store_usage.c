/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_usage: what metering reads and writes — plans' allowances, rates, passes, presence,
 * usage records, the signed ledger and closed periods. usage and ledger are append-only;
 * closed periods refuse new usage (triggers of migration 4). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* ---- plans' allowances and rates ---- */

static const char sql_plan_of_member[] =
    "SELECT p.id, p.name, p.monthly_days, p.day_rate_cents, p.allowance_order, p.visit_days "
    "FROM members m JOIN plans p ON p.id = m.plan_id WHERE m.id = ?1";
static const char sql_plan_billing[] =
    "SELECT id, name, monthly_days, day_rate_cents, allowance_order, visit_days "
    "FROM plans WHERE id = ?1";
static const char sql_plan_set[] =
    "UPDATE plans SET monthly_days = ?2, day_rate_cents = ?3, allowance_order = ?4, "
    "visit_days = ?5 WHERE id = ?1";
/* The most specific rate: the machine itself, then its category, then every machine. */
static const char sql_rate_find[] =
    "SELECT monthly_minutes, per_hour_cents, block_minutes, min_charge_cents, free_minutes, "
    "per_kwh_cents, monthly_wh, target FROM rates WHERE plan_id = ?1 AND target IN (?2, 'category:' || ?3, '*') "
    "ORDER BY target = ?2 DESC, target = '*' ASC LIMIT 1";
static const char sql_rate_put[] =
    "INSERT INTO rates (plan_id, target, monthly_minutes, per_hour_cents, block_minutes, "
    "min_charge_cents, free_minutes, per_kwh_cents, monthly_wh) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (plan_id, target) DO UPDATE SET monthly_minutes = excluded.monthly_minutes, "
    "per_hour_cents = excluded.per_hour_cents, block_minutes = excluded.block_minutes, "
    "min_charge_cents = excluded.min_charge_cents, free_minutes = excluded.free_minutes, "
    "per_kwh_cents = excluded.per_kwh_cents, monthly_wh = excluded.monthly_wh";
static const char sql_rate_list[] =
    "SELECT p.name, r.target, r.monthly_minutes, r.per_hour_cents, r.block_minutes, "
    "r.min_charge_cents, r.free_minutes, r.per_kwh_cents, r.monthly_wh "
    "FROM rates r JOIN plans p ON p.id = r.plan_id ORDER BY p.name, r.target";

#define COL(field) STORE_COL(struct store_member_plan, field)
static const struct store_cols member_plan_cols = STORE_COLS(struct store_member_plan,
    COL(plan_id), COL(name), COL(monthly_days), COL(day_rate_cents), COL(allowance_order),
    COL(visit_days));
#undef COL

int store_member_plan(struct store *s, int64_t member_id, struct store_member_plan *ret)
{
    return store_get(s, sql_plan_of_member, STORE_ARGS(STORE_INT(member_id)), &member_plan_cols,
                     ret);
}

int store_plan_billing_get(struct store *s, int64_t plan_id, struct store_member_plan *ret)
{
    return store_get(s, sql_plan_billing, STORE_ARGS(STORE_INT(plan_id)), &member_plan_cols, ret);
}

int store_plan_set_billing(struct store *s, int64_t plan_id, int64_t monthly_days,
                           int64_t day_rate_cents, const char *order, int64_t visit_days)
{
    return store_update(s, sql_plan_set,
                        STORE_ARGS(STORE_INT(plan_id), STORE_INT(monthly_days),
                                   STORE_INT(day_rate_cents), STORE_TEXT(order),
                                   STORE_INT(visit_days)));
}

/* The terms of a rate (monthly_minutes .. monthly_wh) in the order both queries select them;
 * in: where the rate is in type ("rate." in a row that holds one, or nothing). */
#define RATE_TERMS(type, in)                                                            \
    STORE_COL(type, in monthly_minutes), STORE_COL(type, in per_hour_cents),           \
    STORE_COL(type, in block_minutes), STORE_COL(type, in min_charge_cents),           \
    STORE_COL(type, in free_minutes), STORE_COL(type, in per_kwh_cents),               \
    STORE_COL(type, in monthly_wh)

/* sql_rate_find: the terms, then the target. */
static const struct store_cols rate_found_cols = STORE_COLS(struct store_rate,
    RATE_TERMS(struct store_rate, ), STORE_COL(struct store_rate, target));

int store_rate_find(struct store *s, int64_t plan_id, const char *resource, const char *category,
                    struct store_rate *ret)
{
    return store_get(s, sql_rate_find,
                     STORE_ARGS(STORE_INT(plan_id), STORE_TEXT(resource), STORE_TEXT(category)),
                     &rate_found_cols, ret);
}

int store_rate_put(struct store *s, int64_t plan_id, const struct store_rate *rate)
{
    return store_write(s, sql_rate_put,
                       STORE_ARGS(STORE_INT(plan_id), STORE_TEXT(rate->target),
                                  STORE_INT(rate->monthly_minutes),
                                  STORE_INT(rate->per_hour_cents), STORE_INT(rate->block_minutes),
                                  STORE_INT(rate->min_charge_cents),
                                  STORE_INT(rate->free_minutes), STORE_INT(rate->per_kwh_cents),
                                  STORE_INT(rate->monthly_wh)));
}

/* A row of sql_rate_list: the plan's name, the target, the terms. */
struct rate_listed {
    char plan[32];
    struct store_rate rate;
};
static const struct store_cols rate_listed_cols = STORE_COLS(struct rate_listed,
    STORE_COL(struct rate_listed, plan), STORE_COL(struct rate_listed, rate.target),
    RATE_TERMS(struct rate_listed, rate.));

static int rates_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct rate_listed *r = row;

    return ((store_rate_fn)rows->fn)(r->plan, &r->rate, rows->userdata);
}

int store_rates_foreach(struct store *s, store_rate_fn fn, void *userdata)
{
    return store_each(s, sql_rate_list, STORE_NO_ARGS, &rate_listed_cols, rates_row,
                      STORE_ROWS(fn, userdata));
}

/* ---- passes ---- */

static const char sql_pass_add[] =
    "INSERT INTO passes (member_id, kind, target, quantity, remaining, valid_from, valid_until, "
    "price_cents, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)";
/* The pass that expires first is used first. */
static const char sql_pass_find[] =
    "SELECT id, remaining FROM passes WHERE member_id = ?1 AND kind = ?2 AND "
    "remaining > 0 AND (valid_from = 0 OR valid_from <= ?3) AND "
    "(valid_until = 0 OR valid_until > ?3) AND target IN (?4, 'category:' || ?5, '*') "
    "ORDER BY valid_until = 0, valid_until, id LIMIT 1";
static const char sql_pass_use[] =
    "UPDATE passes SET remaining = remaining - ?2 WHERE id = ?1 AND remaining >= ?2";
static const char sql_pass_list[] =
    "SELECT id, member_id, kind, target, quantity, remaining, valid_from, valid_until, "
    "price_cents FROM passes WHERE member_id = ?1 ORDER BY id";

int store_pass_add(struct store *s, const struct store_pass *p, const char *by, int64_t *ret_id)
{
    int r = store_insert(s, sql_pass_add,
                         STORE_ARGS(STORE_INT(p->member_id), STORE_TEXT(p->kind),
                                    STORE_TEXT(p->target), STORE_INT(p->quantity),
                                    STORE_INT(p->valid_from), STORE_INT(p->valid_until),
                                    STORE_INT(p->price_cents), STORE_INT(now_utc()),
                                    STORE_TEXT(by)), ret_id);

    return r == -EINVAL ? -ENOENT : r;      /* foreign key: no such member */
}

struct pass_left {
    int64_t id, remaining;
};
static const struct store_cols pass_left_cols = STORE_COLS(struct pass_left,
    STORE_COL(struct pass_left, id), STORE_COL(struct pass_left, remaining));

int store_pass_take(struct store *s, int64_t member_id, const char *kind, const char *resource,
                    const char *category, int64_t at, int64_t wanted, int64_t *ret_taken)
{
    int64_t taken = 0;

    *ret_taken = 0;
    /* Several passes may be needed: the one expiring first is used up first. */
    while (taken < wanted) {
        struct pass_left pass;
        int64_t use;
        int r;

        if (store_get(s, sql_pass_find,
                      STORE_ARGS(STORE_INT(member_id), STORE_TEXT(kind), STORE_INT(at),
                                 STORE_TEXT(resource), STORE_TEXT(category)),
                      &pass_left_cols, &pass) < 0)
            break;
        use = pass.remaining < wanted - taken ? pass.remaining : wanted - taken;
        r = store_update(s, sql_pass_use, STORE_ARGS(STORE_INT(pass.id), STORE_INT(use)));
        if (r < 0)
            return r;
        taken += use;
    }
    *ret_taken = taken;
    return 0;
}

#define COL(field) STORE_COL(struct store_pass, field)
static const struct store_cols pass_cols = STORE_COLS(struct store_pass,
    COL(id), COL(member_id), COL(kind), COL(target), COL(quantity), COL(remaining),
    COL(valid_from), COL(valid_until), COL(price_cents));
#undef COL

STORE_ROWS_TO(passes_row, store_pass_fn)

int store_passes_foreach(struct store *s, int64_t member_id, store_pass_fn fn, void *userdata)
{
    return store_each(s, sql_pass_list, STORE_ARGS(STORE_INT(member_id)), &pass_cols, passes_row,
                      STORE_ROWS(fn, userdata));
}

/* ---- usage ---- */

static const char sql_plan_days_used[] =
    "SELECT count(*) FROM usage WHERE member_id = ?1 AND kind = 'day' AND "
    "allowance = 'plan' AND billing_day BETWEEN ?2 AND ?3";
/* A plan's included minutes (plan_quantity) and energy (plan_wh) are shared by every machine
 * the rate covers: one machine, a category or all of them. */
#define PLAN_MACHINE_USE(column)                                                           \
    "SELECT coalesce(sum(" column "), 0) FROM usage WHERE member_id = ?1 "                 \
    "AND kind = 'machine' AND billing_day BETWEEN ?3 AND ?4 AND "                          \
    "(?2 = '*' OR resource = ?2 OR (substr(?2, 1, 9) = 'category:' AND "                   \
    "resource IN (SELECT name FROM resources WHERE category = substr(?2, 10))))"
static const char sql_plan_minutes_used[] = PLAN_MACHINE_USE("plan_quantity");
static const char sql_plan_wh_used[] = PLAN_MACHINE_USE("plan_wh");
#undef PLAN_MACHINE_USE
static const char sql_day_charged[] =
    "SELECT count(*) FROM usage WHERE member_id = ?1 AND kind = 'day' AND billing_day = ?2";
static const char sql_usage_add[] =
    "INSERT INTO usage (kind, member_id, resource, billing_day, started_at, ended_at, "
    "quantity, unit, running_seconds, allowance, pass_quantity, plan_quantity, "
    "charged_quantity, amount_cents, end_reason, corrects_seq, note, ledger_seq, "
    "recorded_at, energy_wh, plan_wh, energy_cents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)";
#define USAGE_COLUMNS(member) \
    "u.id, u.kind, u.member_id, " member ", u.resource, u.billing_day, " \
    "u.started_at, u.ended_at, u.quantity, u.unit, u.running_seconds, u.allowance, " \
    "u.pass_quantity, u.plan_quantity, u.charged_quantity, u.amount_cents, " \
    "u.end_reason, u.corrects_seq, u.note, u.ledger_seq, u.energy_wh IS NOT NULL, " \
    "u.energy_wh, u.plan_wh, " \
    "u.energy_cents FROM usage u "
static const char sql_usage_range[] =
    "SELECT " USAGE_COLUMNS("coalesce(m.name, '')")
    "LEFT JOIN members m ON m.id = u.member_id WHERE u.billing_day BETWEEN ?1 AND ?2 "
    "AND (?3 = 0 OR u.member_id = ?3) ORDER BY u.member_id, u.billing_day, u.id";
static const char sql_usage_get[] = "SELECT " USAGE_COLUMNS("''") "WHERE u.ledger_seq = ?1";

int64_t store_plan_days_used(struct store *s, int64_t member_id, const char *first_day,
                             const char *last_day)
{
    return store_value(s, sql_plan_days_used,
                       STORE_ARGS(STORE_INT(member_id), STORE_TEXT(first_day),
                                  STORE_TEXT(last_day)));
}

int64_t store_plan_minutes_used(struct store *s, int64_t member_id, const char *resource,
                                const char *first_day, const char *last_day)
{
    return store_value(s, sql_plan_minutes_used,
                       STORE_ARGS(STORE_INT(member_id), STORE_TEXT(resource),
                                  STORE_TEXT(first_day), STORE_TEXT(last_day)));
}

int64_t store_plan_wh_used(struct store *s, int64_t member_id, const char *resource,
                           const char *first_day, const char *last_day)
{
    return store_value(s, sql_plan_wh_used,
                       STORE_ARGS(STORE_INT(member_id), STORE_TEXT(resource),
                                  STORE_TEXT(first_day), STORE_TEXT(last_day)));
}

bool store_day_charged(struct store *s, int64_t member_id, const char *billing_day)
{
    return store_value(s, sql_day_charged,
                       STORE_ARGS(STORE_INT(member_id), STORE_TEXT(billing_day))) > 0;
}

int store_usage_add(struct store *s, const struct store_usage *u, int64_t *ret_id)
{
    int r = store_insert(s, sql_usage_add,
                         STORE_ARGS(STORE_TEXT(u->kind), STORE_INT(u->member_id),
                                    STORE_TEXT(u->resource), STORE_TEXT(u->billing_day),
                                    STORE_INT(u->started_at), STORE_INT(u->ended_at),
                                    STORE_INT(u->quantity), STORE_TEXT(u->unit),
                                    STORE_INT(u->running_seconds), STORE_TEXT(u->allowance),
                                    STORE_INT(u->pass_quantity), STORE_INT(u->plan_quantity),
                                    STORE_INT(u->charged_quantity), STORE_INT(u->amount_cents),
                                    STORE_TEXT(u->end_reason), STORE_INT(u->corrects_seq),
                                    STORE_TEXT(u->note), STORE_INT(u->ledger_seq),
                                    STORE_INT(u->recorded_at),
                                    STORE_INT_OR_NULL(u->has_energy, u->energy_wh),
                                    STORE_INT(u->plan_wh), STORE_INT(u->energy_cents)),
                         ret_id);

    return r == -EINVAL ? -EPERM : r;       /* the trigger of a closed period */
}

#define COL(field) STORE_COL(struct store_usage, field)
static const struct store_cols usage_cols = STORE_COLS(struct store_usage,
    COL(id), COL(kind), COL(member_id), COL(member), COL(resource), COL(billing_day),
    COL(started_at), COL(ended_at), COL(quantity), COL(unit), COL(running_seconds),
    COL(allowance), COL(pass_quantity), COL(plan_quantity), COL(charged_quantity),
    COL(amount_cents), COL(end_reason), COL(corrects_seq), COL(note), COL(ledger_seq),
    COL(has_energy), COL(energy_wh), COL(plan_wh), COL(energy_cents));
#undef COL

STORE_ROWS_TO(usage_row, store_usage_fn)

static const char sql_usage_last_id[] = "SELECT coalesce(max(id), 0) FROM usage";
/* Through the rowid from after_id ("+": not through usage_day, which would read the whole
 * period's records). */
static const char sql_usage_added_since[] =
    "SELECT EXISTS (SELECT 1 FROM usage WHERE id > ?1 AND +billing_day BETWEEN ?2 AND ?3)";

int store_usage_last_id(struct store *s, int64_t *ret_id)
{
    int64_t v = store_value(s, sql_usage_last_id, STORE_NO_ARGS);

    if (v < 0)
        return (int)v;
    *ret_id = v;
    return 0;
}

int store_usage_added_since(struct store *s, int64_t after_id, const char *first_day,
                            const char *last_day)
{
    int64_t v = store_value(s, sql_usage_added_since,
                            STORE_ARGS(STORE_INT(after_id), STORE_TEXT(first_day),
                                       STORE_TEXT(last_day)));
    return v < 0 ? (int)v : v > 0;
}

int store_usage_foreach(struct store *s, const char *first_day, const char *last_day,
                        int64_t member_id, store_usage_fn fn, void *userdata)
{
    return store_each(s, sql_usage_range,
                      STORE_ARGS(STORE_TEXT(first_day), STORE_TEXT(last_day),
                                 STORE_INT(member_id)),
                      &usage_cols, usage_row, STORE_ROWS(fn, userdata));
}

int store_usage_by_seq(struct store *s, int64_t seq, struct store_usage *ret)
{
    return store_get(s, sql_usage_get, STORE_ARGS(STORE_INT(seq)), &usage_cols, ret);
}

/* ---- the ledger ---- */

static const char sql_ledger_head[] = "SELECT seq, hash, signature FROM ledger_head WHERE id = 1";
static const char sql_ledger_add[] =
    "INSERT INTO ledger (seq, site, usage_id, kind, member_id, resource, started_at, "
    "ended_at, quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, "
    "prev_hash, hash, signature, home, visitor, energy_wh) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
    "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";
static const char sql_ledger_head_put[] =
    "INSERT INTO ledger_head (id, seq, hash, signature) VALUES (1, ?1, ?2, ?3) "
    "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
    "signature = excluded.signature";
static const char sql_ledger_list[] =
    "SELECT seq, site, usage_id, kind, member_id, resource, started_at, ended_at, "
    "quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, prev_hash, "
    "hash, signature IS NOT NULL, signature, home, visitor, energy_wh IS NOT NULL, energy_wh "
    "FROM ledger WHERE seq >= ?1 ORDER BY seq";

struct ledger_head {
    int64_t seq;
    uint8_t hash[LEDGER_HASH_LEN], sig[LEDGER_SIG_LEN];
};
static const struct store_cols ledger_head_cols = STORE_COLS(struct ledger_head,
    STORE_COL(struct ledger_head, seq), STORE_COL(struct ledger_head, hash),
    STORE_COL(struct ledger_head, sig));

int store_ledger_head(struct store *s, int64_t *ret_seq, uint8_t hash[LEDGER_HASH_LEN],
                      uint8_t sig[LEDGER_SIG_LEN])
{
    struct ledger_head head = { 0 };        /* an empty ledger */
    int r = store_get(s, sql_ledger_head, STORE_NO_ARGS, &ledger_head_cols, &head);

    *ret_seq = head.seq;
    memcpy(hash, head.hash, LEDGER_HASH_LEN);
    memcpy(sig, head.sig, LEDGER_SIG_LEN);
    return r == -ENOENT ? 0 : r;
}

int store_ledger_append(struct store *s, const struct ledger_entry *e,
                        const uint8_t head_sig[LEDGER_SIG_LEN])
{
    int r = store_write(s, sql_ledger_add,
                        STORE_ARGS(STORE_INT(e->seq), STORE_TEXT(e->site), STORE_INT(e->usage_id),
                                   STORE_TEXT(e->kind), STORE_INT(e->member_id),
                                   STORE_TEXT(e->resource), STORE_INT(e->started_at),
                                   STORE_INT(e->ended_at), STORE_INT(e->quantity),
                                   STORE_TEXT(e->unit), STORE_INT(e->amount_cents),
                                   STORE_TEXT(e->allowance), STORE_INT(e->corrects_seq),
                                   STORE_INT(e->recorded_at),
                                   STORE_BLOB(e->prev_hash, LEDGER_HASH_LEN),
                                   STORE_BLOB(e->hash, LEDGER_HASH_LEN),
                                   STORE_BLOB(e->has_signature ? e->signature : NULL,
                                              LEDGER_SIG_LEN),
                                   STORE_TEXT(e->home), STORE_TEXT(e->visitor),
                                   STORE_INT_OR_NULL(e->has_energy, e->energy_wh)));

    if (r < 0)
        return r;
    r = store_write(s, sql_ledger_head_put,
                    STORE_ARGS(STORE_INT(e->seq), STORE_BLOB(e->hash, LEDGER_HASH_LEN),
                               STORE_BLOB(head_sig, LEDGER_SIG_LEN)));
    if (r == 0 && e->seq > s->ledger_last)
        s->ledger_last = e->seq;
    return r;
}

/* A blob of the wrong size is not copied: the verifier then reports the entry. */
static void prev_hash_read(sqlite3_stmt *st, int col, void *row)
{
    struct ledger_entry *e = row;

    if (!store_column_blob(st, col, e->prev_hash, LEDGER_HASH_LEN))
        memset(e->prev_hash, 0xff, LEDGER_HASH_LEN);
}

#define COL(field) STORE_COL(struct ledger_entry, field)
static const struct store_cols ledger_cols = STORE_COLS(struct ledger_entry,
    COL(seq), COL(site), COL(usage_id), COL(kind), COL(member_id), COL(resource),
    COL(started_at), COL(ended_at), COL(quantity), COL(unit), COL(amount_cents), COL(allowance),
    COL(corrects_seq), COL(recorded_at), STORE_COL_READ(prev_hash_read), COL(hash),
    COL(has_signature), COL(signature), COL(home), COL(visitor), COL(has_energy),
    COL(energy_wh));
#undef COL

STORE_ROWS_TO(ledger_row, store_ledger_fn)

int store_ledger_foreach(struct store *s, int64_t from_seq, store_ledger_fn fn, void *userdata)
{
    return store_each(s, sql_ledger_list, STORE_ARGS(STORE_INT(from_seq)), &ledger_cols,
                      ledger_row, STORE_ROWS(fn, userdata));
}

/* ---- presence ---- */

#define PRESENCE_MAX 256

static const char sql_presence_open[] =
    "INSERT INTO presence (member_id, resource_id, check_in_at) VALUES (?1, nullif(?2, 0), ?3)";
static const char sql_presence_find[] =
    "SELECT id, check_in_at FROM presence WHERE member_id = ?1 AND check_out_at = 0";
static const char sql_presence_close[] =
    "UPDATE presence SET check_out_at = ?2, end_reason = ?3 WHERE id = ?1 AND check_out_at = 0";
static const char sql_present_count[] = "SELECT n FROM counters WHERE name = 'present'";
static const char sql_presence_list[] =
    "SELECT p.id, p.member_id, m.name, p.check_in_at FROM presence p "
    "JOIN members m ON m.id = p.member_id WHERE p.check_out_at = 0 ORDER BY p.check_in_at "
    "LIMIT ?1";

static const char sql_presence_member[] =
    "SELECT p.id, p.member_id, coalesce(r.name, ''), p.check_in_at, p.check_out_at, "
    "p.end_reason FROM presence p LEFT JOIN resources r ON r.id = p.resource_id "
    "WHERE p.member_id = ?1 ORDER BY p.id";

#define COL(field) STORE_COL(struct store_presence, field)
static const struct store_cols presence_cols = STORE_COLS(struct store_presence,
    COL(id), COL(member_id), COL(resource), COL(check_in_at), COL(check_out_at), COL(end_reason));
#undef COL

STORE_ROWS_TO(presences_row, store_presence_row_fn)

int store_member_presences_foreach(struct store *s, int64_t member_id, store_presence_row_fn fn,
                                   void *userdata)
{
    return store_each(s, sql_presence_member, STORE_ARGS(STORE_INT(member_id)), &presence_cols,
                      presences_row, STORE_ROWS(fn, userdata));
}

int store_presence_open(struct store *s, int64_t member_id, int64_t resource_id, int64_t at)
{
    return store_write(s, sql_presence_open,
                       STORE_ARGS(STORE_INT(member_id), STORE_INT(resource_id), STORE_INT(at)));
}

/* Who is in, as sql_presence_list and sql_presence_find read it. */
struct presence_row {
    int64_t id, member_id;
    char name[96];
    int64_t in;
};
static const struct store_cols presence_open_cols = STORE_COLS(struct presence_row,
    STORE_COL(struct presence_row, id), STORE_COL(struct presence_row, in));

int store_presence_find(struct store *s, int64_t member_id, int64_t *ret_id, int64_t *ret_in)
{
    struct presence_row p;
    int r = store_get(s, sql_presence_find, STORE_ARGS(STORE_INT(member_id)),
                      &presence_open_cols, &p);

    if (r == 0) {
        *ret_id = p.id;
        *ret_in = p.in;
    }
    return r;
}

int store_presence_close(struct store *s, int64_t id, int64_t at, const char *reason)
{
    return store_update(s, sql_presence_close,
                        STORE_ARGS(STORE_INT(id), STORE_INT(at), STORE_TEXT(reason)));
}

#define COL(field) STORE_COL(struct presence_row, field)
static const struct store_cols presence_in_cols = STORE_COLS(struct presence_row,
    COL(id), COL(member_id), COL(name), COL(in));
#undef COL

static int presence_in_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct presence_row *p = row;

    return ((store_presence_fn)rows->fn)(p->id, p->member_id, p->name, p->in, rows->userdata);
}

int64_t store_present_count(struct store *s)
{
    return store_value(s, sql_present_count, STORE_NO_ARGS);
}

int store_presence_foreach(struct store *s, store_presence_fn fn, void *userdata)
{
    struct presence_row rows[PRESENCE_MAX];

    /* Collected first: callers close sessions as they go. */
    return store_collect_each(s, sql_presence_list, STORE_ARGS(STORE_INT(PRESENCE_MAX)),
                              &presence_in_cols, rows, PRESENCE_MAX, presence_in_row,
                              STORE_ROWS(fn, userdata));
}

/* ---- closed periods ---- */

static const char sql_period_add[] =
    "INSERT INTO periods (period, first_day, last_day, closed_at, last_seq, last_hash, "
    "totals, archive, archive_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char sql_period_list[] =
    "SELECT period, first_day, last_day, closed_at, last_seq, totals, archive, last_hash, "
    /* the archive's hash is there if it has its size (store_col BLOB reads anything else
     * as zeros) */
    "length(CAST(archive_sha256 AS BLOB)) = 32, archive_sha256 FROM periods ORDER BY period";

int store_period_add(struct store *s, const struct store_period *p)
{
    return store_write(s, sql_period_add,
                       STORE_ARGS(STORE_TEXT(p->period), STORE_TEXT(p->first_day),
                                  STORE_TEXT(p->last_day), STORE_INT(p->closed_at),
                                  STORE_INT(p->last_seq), STORE_BLOB(p->last_hash, LEDGER_HASH_LEN),
                                  STORE_TEXT(p->totals), STORE_TEXT(p->archive),
                                  STORE_BLOB(p->has_archive_sha256 ? p->archive_sha256 : NULL,
                                             sizeof(p->archive_sha256))));
}

#define COL(field) STORE_COL(struct store_period, field)
static const struct store_cols period_cols = STORE_COLS(struct store_period,
    COL(period), COL(first_day), COL(last_day), COL(closed_at), COL(last_seq), COL(totals),
    COL(archive), COL(last_hash), COL(has_archive_sha256), COL(archive_sha256));
#undef COL

STORE_ROWS_TO(periods_row, store_period_fn)

static const char sql_period_closed[] = "SELECT count(*) FROM periods WHERE period = ?1";

int store_period_is_closed(struct store *s, const char *period)
{
    int64_t n = store_value(s, sql_period_closed, STORE_ARGS(STORE_TEXT(period)));
    return n < 0 ? (int)n : n > 0;
}

int store_periods_foreach(struct store *s, store_period_fn fn, void *userdata)
{
    return store_each(s, sql_period_list, STORE_NO_ARGS, &period_cols, periods_row,
                      STORE_ROWS(fn, userdata));
}

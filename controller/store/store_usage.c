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

static void member_plan_fill(sqlite3_stmt *st, void *ret)
{
    struct store_member_plan *p = ret;

    p->plan_id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, p->name, sizeof(p->name));
    p->monthly_days = sqlite3_column_int64(st, 2);
    p->day_rate_cents = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, p->allowance_order, sizeof(p->allowance_order));
    p->visit_days = sqlite3_column_int64(st, 5);
}

int store_member_plan(struct store *s, int64_t member_id, struct store_member_plan *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_of_member);

    sqlite3_bind_int64(st, 1, member_id);
    return store_row_get(st, member_plan_fill, ret);
}

int store_plan_billing_get(struct store *s, int64_t plan_id, struct store_member_plan *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_billing);

    sqlite3_bind_int64(st, 1, plan_id);
    return store_row_get(st, member_plan_fill, ret);
}

int store_plan_set_billing(struct store *s, int64_t plan_id, int64_t monthly_days,
                           int64_t day_rate_cents, const char *order, int64_t visit_days)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_plan_set);
    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_int64(st, 2, monthly_days);
    sqlite3_bind_int64(st, 3, day_rate_cents);
    sqlite3_bind_text(st, 4, order, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, visit_days);
    return store_write_changed(s, st);
}

/* Columns monthly_minutes .. free_minutes of a rate, from col on. */
static void rate_terms(sqlite3_stmt *st, int col, struct store_rate *r)
{
    r->monthly_minutes = sqlite3_column_int64(st, col);
    r->per_hour_cents = sqlite3_column_int64(st, col + 1);
    r->block_minutes = sqlite3_column_int64(st, col + 2);
    r->min_charge_cents = sqlite3_column_int64(st, col + 3);
    r->free_minutes = sqlite3_column_int64(st, col + 4);
    r->per_kwh_cents = sqlite3_column_int64(st, col + 5);
    r->monthly_wh = sqlite3_column_int64(st, col + 6);
}

static void rate_fill(sqlite3_stmt *st, void *ret)
{
    struct store_rate *r = ret;

    rate_terms(st, 0, r);
    store_column_text(st, 7, r->target, sizeof(r->target));
}

int store_rate_find(struct store *s, int64_t plan_id, const char *resource, const char *category,
                    struct store_rate *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_rate_find);

    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, category, -1, SQLITE_STATIC);
    return store_row_get(st, rate_fill, ret);
}

int store_rate_put(struct store *s, int64_t plan_id, const struct store_rate *rate)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_rate_put);
    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_text(st, 2, rate->target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rate->monthly_minutes);
    sqlite3_bind_int64(st, 4, rate->per_hour_cents);
    sqlite3_bind_int64(st, 5, rate->block_minutes);
    sqlite3_bind_int64(st, 6, rate->min_charge_cents);
    sqlite3_bind_int64(st, 7, rate->free_minutes);
    sqlite3_bind_int64(st, 8, rate->per_kwh_cents);
    sqlite3_bind_int64(st, 9, rate->monthly_wh);
    return store_stmt_exec(st);
}

static int rates_row(sqlite3_stmt *st, void *ctx)
{
    const struct store_rows *rows = ctx;
    struct store_rate rate;
    char plan[32];

    store_column_text(st, 0, plan, sizeof(plan));
    store_column_text(st, 1, rate.target, sizeof(rate.target));
    rate_terms(st, 2, &rate);
    return ((store_rate_fn)rows->fn)(plan, &rate, rows->userdata);
}

int store_rates_foreach(struct store *s, store_rate_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_rate_list), rates_row, STORE_ROWS(fn, userdata));
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
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_pass_add);
    sqlite3_bind_int64(st, 1, p->member_id);
    sqlite3_bind_text(st, 2, p->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->quantity);
    sqlite3_bind_int64(st, 5, p->valid_from);
    sqlite3_bind_int64(st, 6, p->valid_until);
    sqlite3_bind_int64(st, 7, p->price_cents);
    sqlite3_bind_int64(st, 8, now_utc());
    sqlite3_bind_text(st, 9, by, -1, SQLITE_STATIC);
    r = store_write_insert(s, st, ret_id);
    return r == -EINVAL ? -ENOENT : r;      /* foreign key: no such member */
}

struct pass_left {
    int64_t id, remaining;
};

static void pass_left_fill(sqlite3_stmt *st, void *ret)
{
    struct pass_left *p = ret;

    p->id = sqlite3_column_int64(st, 0);
    p->remaining = sqlite3_column_int64(st, 1);
}

int store_pass_take(struct store *s, int64_t member_id, const char *kind, const char *resource,
                    const char *category, int64_t at, int64_t wanted, int64_t *ret_taken)
{
    int64_t taken = 0;

    *ret_taken = 0;
    /* Several passes may be needed: the one expiring first is used up first. */
    while (taken < wanted) {
        sqlite3_stmt *st = store_stmt(s, sql_pass_find);
        struct pass_left pass;
        int64_t use;
        int r;

        sqlite3_bind_int64(st, 1, member_id);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at);
        sqlite3_bind_text(st, 4, resource, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, category, -1, SQLITE_STATIC);
        if (store_row_get(st, pass_left_fill, &pass) < 0)
            break;
        use = pass.remaining < wanted - taken ? pass.remaining : wanted - taken;
        r = store_batch_ensure(s);
        if (r < 0)
            return r;
        st = store_stmt(s, sql_pass_use);
        sqlite3_bind_int64(st, 1, pass.id);
        sqlite3_bind_int64(st, 2, use);
        r = store_write_changed(s, st);
        if (r < 0)
            return r;
        taken += use;
    }
    *ret_taken = taken;
    return 0;
}

static void pass_fill(sqlite3_stmt *st, void *ret)
{
    struct store_pass *p = ret;

    p->id = sqlite3_column_int64(st, 0);
    p->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, p->kind, sizeof(p->kind));
    store_column_text(st, 3, p->target, sizeof(p->target));
    p->quantity = sqlite3_column_int64(st, 4);
    p->remaining = sqlite3_column_int64(st, 5);
    p->valid_from = sqlite3_column_int64(st, 6);
    p->valid_until = sqlite3_column_int64(st, 7);
    p->price_cents = sqlite3_column_int64(st, 8);
}

STORE_ROWS_DELIVER(passes_row, struct store_pass, pass_fill)

int store_passes_foreach(struct store *s, int64_t member_id, store_pass_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_pass_list);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, passes_row, STORE_ROWS(fn, userdata));
}

/* ---- usage ---- */

static const char sql_plan_days_used[] =
    "SELECT count(*) FROM usage WHERE member_id = ?1 AND kind = 'day' AND "
    "allowance = 'plan' AND billing_day BETWEEN ?2 AND ?3";
/* Included minutes are shared by every machine the rate covers: one machine, a category or
 * all of them. */
static const char sql_plan_minutes_used[] =
    "SELECT coalesce(sum(plan_quantity), 0) FROM usage WHERE member_id = ?1 "
    "AND kind = 'machine' AND billing_day BETWEEN ?3 AND ?4 AND "
    "(?2 = '*' OR resource = ?2 OR (substr(?2, 1, 9) = 'category:' AND "
    "resource IN (SELECT name FROM resources WHERE category = substr(?2, 10))))";
static const char sql_plan_wh_used[] =
    "SELECT coalesce(sum(plan_wh), 0) FROM usage WHERE member_id = ?1 "
    "AND kind = 'machine' AND billing_day BETWEEN ?3 AND ?4 AND "
    "(?2 = '*' OR resource = ?2 OR (substr(?2, 1, 9) = 'category:' AND "
    "resource IN (SELECT name FROM resources WHERE category = substr(?2, 10))))";
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
    "u.end_reason, u.corrects_seq, u.note, u.ledger_seq, u.energy_wh, u.plan_wh, " \
    "u.energy_cents FROM usage u "
static const char sql_usage_range[] =
    "SELECT " USAGE_COLUMNS("coalesce(m.name, '')")
    "LEFT JOIN members m ON m.id = u.member_id WHERE u.billing_day BETWEEN ?1 AND ?2 "
    "AND (?3 = 0 OR u.member_id = ?3) ORDER BY u.member_id, u.billing_day, u.id";
static const char sql_usage_get[] = "SELECT " USAGE_COLUMNS("''") "WHERE u.ledger_seq = ?1";

int64_t store_plan_days_used(struct store *s, int64_t member_id, const char *first_day,
                             const char *last_day)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_days_used);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, last_day, -1, SQLITE_STATIC);
    return store_row_value(st);
}

int64_t store_plan_minutes_used(struct store *s, int64_t member_id, const char *resource,
                                const char *first_day, const char *last_day)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_minutes_used);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, last_day, -1, SQLITE_STATIC);
    return store_row_value(st);
}

int64_t store_plan_wh_used(struct store *s, int64_t member_id, const char *resource,
                           const char *first_day, const char *last_day)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_wh_used);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, last_day, -1, SQLITE_STATIC);
    return store_row_value(st);
}

bool store_day_charged(struct store *s, int64_t member_id, const char *billing_day)
{
    sqlite3_stmt *st = store_stmt(s, sql_day_charged);

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, billing_day, -1, SQLITE_STATIC);
    return store_row_value(st) > 0;
}

int store_usage_add(struct store *s, const struct store_usage *u, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_usage_add);
    sqlite3_bind_text(st, 1, u->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, u->member_id);
    sqlite3_bind_text(st, 3, u->resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->billing_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, u->started_at);
    sqlite3_bind_int64(st, 6, u->ended_at);
    sqlite3_bind_int64(st, 7, u->quantity);
    sqlite3_bind_text(st, 8, u->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, u->running_seconds);
    sqlite3_bind_text(st, 10, u->allowance, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, u->pass_quantity);
    sqlite3_bind_int64(st, 12, u->plan_quantity);
    sqlite3_bind_int64(st, 13, u->charged_quantity);
    sqlite3_bind_int64(st, 14, u->amount_cents);
    sqlite3_bind_text(st, 15, u->end_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 16, u->corrects_seq);
    sqlite3_bind_text(st, 17, u->note, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 18, u->ledger_seq);
    sqlite3_bind_int64(st, 19, u->recorded_at);
    if (u->has_energy)
        sqlite3_bind_int64(st, 20, u->energy_wh);
    else
        sqlite3_bind_null(st, 20);
    sqlite3_bind_int64(st, 21, u->plan_wh);
    sqlite3_bind_int64(st, 22, u->energy_cents);
    r = store_write_insert(s, st, ret_id);
    return r == -EINVAL ? -EPERM : r;       /* the trigger of a closed period */
}

static void usage_fill(sqlite3_stmt *st, void *ret)
{
    struct store_usage *u = ret;

    u->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, u->kind, sizeof(u->kind));
    u->member_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, u->member, sizeof(u->member));
    store_column_text(st, 4, u->resource, sizeof(u->resource));
    store_column_text(st, 5, u->billing_day, sizeof(u->billing_day));
    u->started_at = sqlite3_column_int64(st, 6);
    u->ended_at = sqlite3_column_int64(st, 7);
    u->quantity = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, u->unit, sizeof(u->unit));
    u->running_seconds = sqlite3_column_int64(st, 10);
    store_column_text(st, 11, u->allowance, sizeof(u->allowance));
    u->pass_quantity = sqlite3_column_int64(st, 12);
    u->plan_quantity = sqlite3_column_int64(st, 13);
    u->charged_quantity = sqlite3_column_int64(st, 14);
    u->amount_cents = sqlite3_column_int64(st, 15);
    store_column_text(st, 16, u->end_reason, sizeof(u->end_reason));
    u->corrects_seq = sqlite3_column_int64(st, 17);
    store_column_text(st, 18, u->note, sizeof(u->note));
    u->ledger_seq = sqlite3_column_int64(st, 19);
    u->has_energy = sqlite3_column_type(st, 20) != SQLITE_NULL;
    u->energy_wh = sqlite3_column_int64(st, 20);
    u->plan_wh = sqlite3_column_int64(st, 21);
    u->energy_cents = sqlite3_column_int64(st, 22);
}

STORE_ROWS_DELIVER(usage_row, struct store_usage, usage_fill)

int store_usage_foreach(struct store *s, const char *first_day, const char *last_day,
                        int64_t member_id, store_usage_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_usage_range);

    sqlite3_bind_text(st, 1, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, member_id);
    return store_rows_each(st, usage_row, STORE_ROWS(fn, userdata));
}

int store_usage_by_seq(struct store *s, int64_t seq, struct store_usage *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_usage_get);

    sqlite3_bind_int64(st, 1, seq);
    return store_row_get(st, usage_fill, ret);
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
    "hash, signature, home, visitor, energy_wh FROM ledger WHERE seq >= ?1 ORDER BY seq";

struct ledger_head {
    int64_t *seq;
    uint8_t *hash, *sig;
};

static void ledger_head_fill(sqlite3_stmt *st, void *ret)
{
    struct ledger_head *h = ret;

    *h->seq = sqlite3_column_int64(st, 0);
    store_column_blob(st, 1, h->hash, LEDGER_HASH_LEN);
    store_column_blob(st, 2, h->sig, LEDGER_SIG_LEN);
}

int store_ledger_head(struct store *s, int64_t *ret_seq, uint8_t hash[LEDGER_HASH_LEN],
                      uint8_t sig[LEDGER_SIG_LEN])
{
    int r;

    *ret_seq = 0;
    memset(hash, 0, LEDGER_HASH_LEN);
    memset(sig, 0, LEDGER_SIG_LEN);
    r = store_row_get(store_stmt(s, sql_ledger_head), ledger_head_fill,
                      &(struct ledger_head){ ret_seq, hash, sig });
    return r == -ENOENT ? 0 : r;        /* an empty ledger */
}

int store_ledger_append(struct store *s, const struct ledger_entry *e,
                        const uint8_t head_sig[LEDGER_SIG_LEN])
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_ledger_add);
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_text(st, 2, e->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->usage_id);
    sqlite3_bind_text(st, 4, e->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, e->member_id);
    sqlite3_bind_text(st, 6, e->resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, e->started_at);
    sqlite3_bind_int64(st, 8, e->ended_at);
    sqlite3_bind_int64(st, 9, e->quantity);
    sqlite3_bind_text(st, 10, e->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, e->amount_cents);
    sqlite3_bind_text(st, 12, e->allowance, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, e->corrects_seq);
    sqlite3_bind_int64(st, 14, e->recorded_at);
    sqlite3_bind_blob(st, 15, e->prev_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 16, e->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    if (e->has_signature)
        sqlite3_bind_blob(st, 17, e->signature, LEDGER_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 18, e->home, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 19, e->visitor, -1, SQLITE_STATIC);
    if (e->has_energy)
        sqlite3_bind_int64(st, 20, e->energy_wh);
    r = store_stmt_exec(st);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_ledger_head_put);
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_blob(st, 2, e->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, head_sig, LEDGER_SIG_LEN, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r == 0 && e->seq > s->ledger_last)
        s->ledger_last = e->seq;
    return r;
}

static void ledger_fill(sqlite3_stmt *st, void *ret)
{
    struct ledger_entry *e = ret;

    memset(e, 0, sizeof(*e));
    e->seq = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, e->site, sizeof(e->site));
    e->usage_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, e->kind, sizeof(e->kind));
    e->member_id = sqlite3_column_int64(st, 4);
    store_column_text(st, 5, e->resource, sizeof(e->resource));
    e->started_at = sqlite3_column_int64(st, 6);
    e->ended_at = sqlite3_column_int64(st, 7);
    e->quantity = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, e->unit, sizeof(e->unit));
    e->amount_cents = sqlite3_column_int64(st, 10);
    store_column_text(st, 11, e->allowance, sizeof(e->allowance));
    e->corrects_seq = sqlite3_column_int64(st, 12);
    e->recorded_at = sqlite3_column_int64(st, 13);
    /* A blob of the wrong size is not copied: the verifier then reports the entry. */
    if (!store_column_blob(st, 14, e->prev_hash, LEDGER_HASH_LEN))
        memset(e->prev_hash, 0xff, LEDGER_HASH_LEN);
    store_column_blob(st, 15, e->hash, LEDGER_HASH_LEN);
    if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
        e->has_signature = true;
        store_column_blob(st, 16, e->signature, LEDGER_SIG_LEN);
    }
    store_column_text(st, 17, e->home, sizeof(e->home));
    store_column_text(st, 18, e->visitor, sizeof(e->visitor));
    if (sqlite3_column_type(st, 19) != SQLITE_NULL) {
        e->has_energy = true;
        e->energy_wh = sqlite3_column_int64(st, 19);
    }
}

STORE_ROWS_DELIVER(ledger_row, struct ledger_entry, ledger_fill)

int store_ledger_foreach(struct store *s, int64_t from_seq, store_ledger_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_ledger_list);

    sqlite3_bind_int64(st, 1, from_seq);
    return store_rows_each(st, ledger_row, STORE_ROWS(fn, userdata));
}

/* ---- presence ---- */

#define PRESENCE_MAX 256

static const char sql_presence_open[] =
    "INSERT INTO presence (member_id, resource_id, check_in_at) VALUES (?1, nullif(?2, 0), ?3)";
static const char sql_presence_find[] =
    "SELECT id, check_in_at FROM presence WHERE member_id = ?1 AND check_out_at = 0";
static const char sql_presence_close[] =
    "UPDATE presence SET check_out_at = ?2, end_reason = ?3 WHERE id = ?1 AND check_out_at = 0";
static const char sql_presence_list[] =
    "SELECT p.id, p.member_id, m.name, p.check_in_at FROM presence p "
    "JOIN members m ON m.id = p.member_id WHERE p.check_out_at = 0 ORDER BY p.check_in_at "
    "LIMIT ?1";

static const char sql_presence_member[] =
    "SELECT p.id, p.member_id, coalesce(r.name, ''), p.check_in_at, p.check_out_at, "
    "p.end_reason FROM presence p LEFT JOIN resources r ON r.id = p.resource_id "
    "WHERE p.member_id = ?1 ORDER BY p.id";

static void presence_row_fill(sqlite3_stmt *st, void *ret)
{
    struct store_presence *p = ret;

    p->id = sqlite3_column_int64(st, 0);
    p->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, p->resource, sizeof(p->resource));
    p->check_in_at = sqlite3_column_int64(st, 3);
    p->check_out_at = sqlite3_column_int64(st, 4);
    store_column_text(st, 5, p->end_reason, sizeof(p->end_reason));
}

STORE_ROWS_DELIVER(presences_row, struct store_presence, presence_row_fill)

int store_member_presences_foreach(struct store *s, int64_t member_id, store_presence_row_fn fn,
                                   void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_presence_member);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, presences_row, STORE_ROWS(fn, userdata));
}

int store_presence_open(struct store *s, int64_t member_id, int64_t resource_id, int64_t at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_presence_open);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, resource_id);
    sqlite3_bind_int64(st, 3, at);
    return store_stmt_exec(st);
}

struct presence_row {
    int64_t id, member_id, in;
    char name[96];
};

static void presence_fill(sqlite3_stmt *st, void *ret)
{
    struct presence_row *p = ret;

    p->id = sqlite3_column_int64(st, 0);
    p->in = sqlite3_column_int64(st, 1);
}

int store_presence_find(struct store *s, int64_t member_id, int64_t *ret_id, int64_t *ret_in)
{
    sqlite3_stmt *st = store_stmt(s, sql_presence_find);
    struct presence_row p;
    int r;

    sqlite3_bind_int64(st, 1, member_id);
    r = store_row_get(st, presence_fill, &p);
    if (r == 0) {
        *ret_id = p.id;
        *ret_in = p.in;
    }
    return r;
}

int store_presence_close(struct store *s, int64_t id, int64_t at, const char *reason)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_presence_close);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    return store_write_changed(s, st);
}

struct presence_list {
    struct presence_row rows[PRESENCE_MAX];
    int n;
};

static int presence_listed(sqlite3_stmt *st, void *ctx)
{
    struct presence_list *l = ctx;
    struct presence_row *p = &l->rows[l->n];

    if (l->n == PRESENCE_MAX)
        return 0;
    p->id = sqlite3_column_int64(st, 0);
    p->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, p->name, sizeof(p->name));
    p->in = sqlite3_column_int64(st, 3);
    l->n++;
    return 0;
}

int store_presence_foreach(struct store *s, store_presence_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, sql_presence_list);
    struct presence_list list;
    int r;

    /* Collected first: callers close sessions as they go. */
    list.n = 0;
    sqlite3_bind_int(st, 1, PRESENCE_MAX);
    r = store_rows_each(st, presence_listed, &list);
    for (int i = 0; i < list.n && r >= 0; i++)
        r = fn(list.rows[i].id, list.rows[i].member_id, list.rows[i].name, list.rows[i].in,
               userdata);
    return r < 0 ? r : list.n;
}

/* ---- closed periods ---- */

static const char sql_period_add[] =
    "INSERT INTO periods (period, first_day, last_day, closed_at, last_seq, last_hash, "
    "totals, archive, archive_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char sql_period_list[] =
    "SELECT period, first_day, last_day, closed_at, last_seq, totals, archive, "
    "last_hash, archive_sha256 FROM periods ORDER BY period";

int store_period_add(struct store *s, const struct store_period *p)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_period_add);
    sqlite3_bind_text(st, 1, p->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->closed_at);
    sqlite3_bind_int64(st, 5, p->last_seq);
    sqlite3_bind_blob(st, 6, p->last_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->totals, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, p->archive, -1, SQLITE_STATIC);
    if (p->has_archive_sha256)
        sqlite3_bind_blob(st, 9, p->archive_sha256, sizeof(p->archive_sha256), SQLITE_STATIC);
    return store_stmt_exec(st);
}

static void period_fill(sqlite3_stmt *st, void *ret)
{
    struct store_period *p = ret;

    store_column_text(st, 0, p->period, sizeof(p->period));
    store_column_text(st, 1, p->first_day, sizeof(p->first_day));
    store_column_text(st, 2, p->last_day, sizeof(p->last_day));
    p->closed_at = sqlite3_column_int64(st, 3);
    p->last_seq = sqlite3_column_int64(st, 4);
    store_column_text(st, 5, p->totals, sizeof(p->totals));
    store_column_text(st, 6, p->archive, sizeof(p->archive));
    store_column_blob(st, 7, p->last_hash, LEDGER_HASH_LEN);
    p->has_archive_sha256 = store_column_blob(st, 8, p->archive_sha256,
                                              sizeof(p->archive_sha256));
}

STORE_ROWS_DELIVER(periods_row, struct store_period, period_fill)

static const char sql_period_closed[] = "SELECT count(*) FROM periods WHERE period = ?1";

int store_period_is_closed(struct store *s, const char *period)
{
    sqlite3_stmt *st = store_stmt(s, sql_period_closed);
    int64_t n;

    sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
    n = store_row_value(st);
    return n < 0 ? (int)n : n > 0;
}

int store_periods_foreach(struct store *s, store_period_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_period_list), periods_row, STORE_ROWS(fn, userdata));
}

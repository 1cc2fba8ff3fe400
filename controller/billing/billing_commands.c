/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of metering: passes, plans' allowances and rates, presence, statements,
 * corrections, the ledger and period closing. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "billing.h"
#include "config.h"
#include "consortium.h"
#include "fileio.h"
#include "handlers.h"
#include "log.h"
#include "meter.h"
#include "services.h"
#include "site.h"
#include "store.h"
#include "util.h"

static int find_plan(struct cmd_call *call, const char *name, struct store_plan *ret)
{
    return cmd_found(call, store_plan_find(cmd_services(call)->store, name, ret), "plan", name,
                     NULL);
}

/* ---- the ledger and statements ---- */

int cmd_site_key(struct cmd_call *call, const struct cmd_args *a)
{
    struct meter *meter = cmd_services(call)->meter;
    uint8_t pk[LEDGER_PK_LEN];
    char hex[LEDGER_PK_LEN * 2 + 1];

    meter_public_key(meter, pk);
    sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
    return cmd_ok(call, json_pack("{s:s, s:s, s:s}", "site", meter_site(meter), "algorithm",
                                  "ed25519", "public_key", hex));
}

int cmd_ledger_verify(struct cmd_call *call, const struct cmd_args *a)
{
    log_info("ledger verification requested by %s", cmd_who(call));
    return billing_start_job(call, "verify", "", 0);
}

int cmd_statement(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t member = arg_int(a, "member", 0);
    int r = cmd_self_member(call, &member);

    if (r < 0)
        return r;
    return billing_start_job(call, "statement", arg_str(a, "period"), member);
}

/* ---- periods ---- */

static int write_side_file(const char *path, const char *suffix, const char *line)
{
    char side[PATH_MAX];
    snprintf(side, sizeof(side), "%s%s", path, suffix);
    return file_write_atomic(side, line, strlen(line), 0640);
}

int cmd_period_close(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct store *store = svc->store;
    struct meter *meter = svc->meter;
    const char *period = arg_str(a, "period"), *err = "";
    struct store_period p = { 0 };
    char today[11], dir[300], path[400], hex[LEDGER_SIG_LEN * 2 + 1], pkhex[LEDGER_PK_LEN * 2 + 1];
    char sha_hex[crypto_hash_sha256_BYTES * 2 + 1], line[600], *text = NULL, *t;
    uint8_t head_sig[LEDGER_SIG_LEN], sig[LEDGER_SIG_LEN], sha[crypto_hash_sha256_BYTES];
    uint8_t pk[LEDGER_PK_LEN];
    json_t *statement = NULL, *archive = NULL;
    int r;

    period_days(period, p.first_day, p.last_day);
    meter_billing_day(meter, now_utc(), today);
    if (strcmp(today, p.last_day) <= 0)
        return cmd_fail(call, -EAGAIN, "not_over", "period %s is not over yet (its last billing "
                        "day is %s)", period, p.last_day);
    statement = billing_statement(store, period, 0, &err);
    if (!statement)
        return cmd_fail(call, -EIO, "store", "%s", err);
    r = store_ledger_head(store, &p.last_seq, p.last_hash, head_sig);
    if (r < 0) {
        cmd_fail(call, r, "store", "cannot read the ledger's head: %s", strerror(-r));
        goto out;
    }
    meter_public_key(meter, pk);
    sodium_bin2hex(hex, sizeof(hex), p.last_hash, LEDGER_HASH_LEN);
    sodium_bin2hex(pkhex, sizeof(pkhex), pk, LEDGER_PK_LEN);
    archive = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:O}", "format",
                        "portier-period-archive-v1", "site", meter_site(meter), "period", period,
                        "closed_at", (json_int_t)now_utc(), "last_ledger_seq",
                        (json_int_t)p.last_seq, "last_ledger_hash", hex, "public_key", pkhex,
                        "statement", statement);
    text = archive ? json_dumps(archive, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    t = json_dumps(json_object_get(statement, "totals"), JSON_COMPACT | JSON_SORT_KEYS);
    if (!text || !t) {
        free(t);
        cmd_fail(call, -ENOMEM, "internal", "out of memory");
        goto out;
    }
    snprintf(p.totals, sizeof(p.totals), "%s", t);
    free(t);
    snprintf(p.period, sizeof(p.period), "%s", period);
    p.closed_at = now_utc();
    snprintf(dir, sizeof(dir), "%.255s/archives", svc->cfg->daemon.state_dir);
    /* The directory's own name must be durable too, or a power cut takes every archive in
     * it along (its entry in state_dir is synced here, whether this call made it or a run
     * cut short before syncing it did). */
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        r = -errno;
        goto fail_io;
    }
    if ((r = file_sync_dir(dir)) < 0)
        goto fail_io;
    snprintf(path, sizeof(path), "%s/portier-%s-%s.json", dir, meter_site(meter), period);
    snprintf(p.archive, sizeof(p.archive), "%.255s", path);
    /* The archive's bytes are fixed now: the seal row keeps their hash for the custodian. */
    crypto_hash_sha256(p.archive_sha256, (const uint8_t *)text, strlen(text));
    p.has_archive_sha256 = true;
    /* Seal first (the trigger then refuses late records), then write the files: a period
     * whose row exists but whose archive failed can be re-exported; the reverse could not
     * be trusted. */
    r = store_period_add(store, &p);
    if (r == -EEXIST) {
        cmd_fail(call, r, "closed", "period %s is already closed", period);
        goto out;
    }
    if (r < 0) {
        cmd_fail(call, r, "store", "cannot close period: %s", strerror(-r));
        goto out;
    }
    if ((r = file_write_atomic(path, text, strlen(text), 0640)) < 0)
        goto fail_io;
    meter_sign(meter, text, strlen(text), sig);
    sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
    snprintf(line, sizeof(line), "%s\n", hex);
    if ((r = write_side_file(path, ".sig", line)) < 0)
        goto fail_io;
    crypto_hash_sha256(sha, (const uint8_t *)text, strlen(text));
    sodium_bin2hex(sha_hex, sizeof(sha_hex), sha, sizeof(sha));
    snprintf(line, sizeof(line), "%s  %s\n", sha_hex, strrchr(path, '/') + 1);
    if ((r = write_side_file(path, ".sha256", line)) < 0)
        goto fail_io;
    log_notice("period %s closed by %s: %s (ledger up to %" PRId64 ")", period, cmd_who(call),
               path, p.last_seq);
    consortium_publish_seals(svc->consortium);     /* the new seal, to the custodian */
    cmd_ok(call, json_pack("{s:s, s:s, s:I, s:O}", "period", period, "archive", path,
                           "last_ledger_seq", (json_int_t)p.last_seq, "totals",
                           json_object_get(statement, "totals")));
    goto out;
fail_io:
    cmd_fail(call, r, "io", "cannot write the archive in %s: %s", dir, strerror(-r));
out:
    free(text);
    json_decref(archive);
    json_decref(statement);
    return cmd_call_result(call);
}

static int period_append(const struct store_period *p, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:s, s:I, s:I, s:s, s:s}", "period", p->period, "closed_at", (json_int_t)p->closed_at,
        "last_seq", (json_int_t)p->last_seq, "totals", p->totals, "archive",
        p->archive)) == 0 ? 0 : -ENOMEM;
}

int cmd_period_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "periods", list,
                      store_periods_foreach(cmd_services(call)->store, period_append, list));
}

/* ---- passes, plans' billing, rates ---- */

int cmd_pass_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *kind = arg_str(a, "kind"), *target = arg_str(a, "target");
    struct store_pass p = { .member_id = arg_int(a, "member", 0) };
    int64_t id;
    int r;

    if (strcmp(kind, "days") != 0 && strcmp(kind, "minutes") != 0)
        return cmd_fail(call, -EINVAL, "bad_request", "kind must be \"days\" or \"minutes\"");
    if (target && !*target)
        return cmd_fail(call, -EINVAL, "bad_request", "target is a machine, category:NAME or *");
    p.quantity = arg_int(a, "quantity", 0);
    p.price_cents = arg_int(a, "price_cents", 0);
    p.valid_from = arg_int(a, "valid_from", 0);
    p.valid_until = arg_int(a, "valid_until", 0);
    snprintf(p.kind, sizeof(p.kind), "%s", kind);
    snprintf(p.target, sizeof(p.target), "%s", target ? target : "*");
    r = store_pass_add(cmd_services(call)->store, &p, "manager", &id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add pass: %s", strerror(-r));
    log_info("pass %" PRId64 ": %" PRId64 " %s for member %" PRId64 " by %s", id, p.quantity, kind,
             p.member_id, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

static int pass_append(const struct store_pass *p, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", (json_int_t)p->id, "kind", p->kind,
        "target", p->target, "quantity", (json_int_t)p->quantity, "remaining",
        (json_int_t)p->remaining, "valid_from", (json_int_t)p->valid_from, "valid_until",
        (json_int_t)p->valid_until, "price_cents", (json_int_t)p->price_cents)) == 0 ? 0 : -ENOMEM;
}

int cmd_pass_list(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t member = arg_int(a, "member", 0);
    json_t *list;
    int r;

    if ((r = cmd_self_member(call, &member)) < 0)
        return r;
    list = json_array();
    return cmd_ok_list(call, "passes", list,
                      store_passes_foreach(cmd_services(call)->store, member, pass_append, list));
}

static bool order_valid(const char *order)
{
    char copy[64], *save = NULL;
    if (strlen(order) >= sizeof(copy))
        return false;
    strcpy(copy, order);
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (strcmp(w, "pass") != 0 && strcmp(w, "plan") != 0 && strcmp(w, "rate") != 0)
            return false;
    return *order != '\0';
}

static json_t *billing_json(const struct store_member_plan *b, bool changed)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:I, s:b}", "plan", b->name, "monthly_days",
                     (json_int_t)b->monthly_days, "day_rate_cents", (json_int_t)b->day_rate_cents,
                     "allowance_order", b->allowance_order, "visit_days",
                     (json_int_t)b->visit_days, "changed", changed);
}

/* Options given change what they name; the others keep their value. Without any, the
 * settings are shown. */
int cmd_plan_billing(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const char *name = arg_str(a, "plan"), *order = arg_str(a, "allowance_order");
    struct store_member_plan b;
    struct store_plan plan;
    int r;

    if ((r = find_plan(call, name, &plan)) < 0)
        return r;
    if (order && !order_valid(order))
        return cmd_fail(call, -EINVAL, "bad_request", "allowance_order lists pass, plan and rate, "
                        "e.g. pass,plan,rate");
    r = store_plan_billing_get(store, plan.id, &b);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read plan %s: %s", name, strerror(-r));
    if (!order && !arg_has(a, "monthly_days") && !arg_has(a, "day_rate_cents") &&
        !arg_has(a, "visit_days"))
        return cmd_ok(call, billing_json(&b, false));
    b.monthly_days = arg_int(a, "monthly_days", b.monthly_days);
    b.day_rate_cents = arg_int(a, "day_rate_cents", b.day_rate_cents);
    b.visit_days = arg_int(a, "visit_days", b.visit_days);
    if (order)
        snprintf(b.allowance_order, sizeof(b.allowance_order), "%s", order);
    r = store_plan_set_billing(store, plan.id, b.monthly_days, b.day_rate_cents,
                               b.allowance_order, b.visit_days);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change plan: %s", strerror(-r));
    log_info("plan %s: billing set by %s (%" PRId64 " days a month, day rate %" PRId64
             " cents, order %s, %" PRId64 " visit days)", name, cmd_who(call), b.monthly_days,
             b.day_rate_cents, b.allowance_order, b.visit_days);
    return cmd_ok(call, billing_json(&b, true));
}

struct plan_rates {
    const char *plan;
    json_t *list;
};

static int plan_rate_append(const char *plan, const struct store_rate *r, void *userdata)
{
    struct plan_rates *x = userdata;

    if (strcmp(plan, x->plan) != 0)
        return 0;
    return json_array_append_new(x->list, json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I}", "target", r->target, "monthly_minutes",
        (json_int_t)r->monthly_minutes, "per_hour_cents", (json_int_t)r->per_hour_cents,
        "block_minutes", (json_int_t)r->block_minutes, "min_charge_cents",
        (json_int_t)r->min_charge_cents, "free_minutes",
        (json_int_t)r->free_minutes)) == 0 ? 0 : -ENOMEM;
}

int cmd_plan_show(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    const char *name = arg_str(a, "plan");
    struct plan_rates x = { name, NULL };
    struct store_member_plan b;
    struct store_plan plan;
    json_t *o;
    int r;

    if ((r = find_plan(call, name, &plan)) < 0)
        return r;
    r = store_plan_billing_get(store, plan.id, &b);
    x.list = json_array();
    if (r == 0)
        r = store_rates_foreach(store, plan_rate_append, &x);
    if (r < 0) {
        json_decref(x.list);
        return cmd_fail(call, r, "store", "cannot read plan %s: %s", name, strerror(-r));
    }
    o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:o}", "id", (json_int_t)plan.id,
                  "name", plan.name, "zones", plan.zones, "hours", plan.hours, "members",
                  (json_int_t)plan.members, "monthly_days", (json_int_t)b.monthly_days,
                  "day_rate_cents", (json_int_t)b.day_rate_cents, "allowance_order",
                  b.allowance_order, "visit_days", (json_int_t)b.visit_days, "rates", x.list);
    return cmd_ok(call, json_pack("{s:o}", "plan", o));
}

int cmd_rate_set(struct cmd_call *call, const struct cmd_args *a)
{
    const char *name = arg_str(a, "plan"), *target = arg_str(a, "target");
    struct store_rate rate = { .block_minutes = 1 };
    struct store_plan plan;
    int r;

    if ((r = find_plan(call, name, &plan)) < 0)
        return r;
    if (!*target)
        return cmd_fail(call, -EINVAL, "bad_request", "target is a machine name, category:NAME or *");
    snprintf(rate.target, sizeof(rate.target), "%s", target);
    rate.per_hour_cents = arg_int(a, "per_hour_cents", 0);
    rate.block_minutes = arg_int(a, "block_minutes", 1);
    rate.min_charge_cents = arg_int(a, "min_charge_cents", 0);
    rate.free_minutes = arg_int(a, "free_minutes", 0);
    rate.monthly_minutes = arg_int(a, "monthly_minutes", 0);
    rate.per_kwh_cents = arg_int(a, "per_kwh_cents", 0);
    rate.monthly_wh = arg_int(a, "monthly_wh", 0);
    r = store_rate_put(cmd_services(call)->store, plan.id, &rate);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot set rate: %s", strerror(-r));
    log_info("plan %s: rate for %s set by %s", name, target, cmd_who(call));
    return cmd_ok(call, json_pack("{s:s, s:s}", "plan", name, "target", target));
}

static int rate_append(const char *plan, const struct store_rate *r, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "plan", plan, "target", r->target,
        "monthly_minutes", (json_int_t)r->monthly_minutes, "per_hour_cents",
        (json_int_t)r->per_hour_cents, "block_minutes", (json_int_t)r->block_minutes,
        "min_charge_cents", (json_int_t)r->min_charge_cents, "free_minutes",
        (json_int_t)r->free_minutes, "per_kwh_cents", (json_int_t)r->per_kwh_cents,
        "monthly_wh", (json_int_t)r->monthly_wh)) == 0 ? 0 : -ENOMEM;
}

int cmd_rate_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "rates", list,
                      store_rates_foreach(cmd_services(call)->store, rate_append, list));
}

/* ---- usage ---- */

int cmd_usage_correct(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t seq = arg_int(a, "seq", 0), delta = arg_int(a, "amount_cents", 0), new_seq;
    const char *note = arg_str(a, "note");
    int r;

    if (!*note)
        return cmd_fail(call, -EINVAL, "bad_request", "a correction needs a note (1 to 127 "
                        "characters) saying why");
    r = meter_correction(cmd_services(call)->meter, seq, delta, note, &new_seq);
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no usage record at ledger entry %" PRId64, seq);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot record the correction: %s", strerror(-r));
    log_notice("ledger entry %" PRId64 " corrected by entry %" PRId64 " (%+" PRId64 " cents) by "
               "%s: %s", seq, new_seq, delta, cmd_who(call), note);
    return cmd_ok(call, json_pack("{s:I}", "seq", (json_int_t)new_seq));
}

/* A manager's record of a day someone used without badging (dated in the past). */
int cmd_usage_add(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t at = arg_int(a, "at", 0);
    const char *when = arg_str(a, "at");
    int r;

    /* A bare date means that day: noon is safely inside its billing day. */
    if (when && strlen(when) == 10)
        at += 12 * 3600;
    r = meter_manual_day(cmd_services(call)->meter, arg_int(a, "member", 0), at);
    if (r == -EPERM)
        return cmd_fail(call, r, "period_closed", "that day belongs to a closed period; add a "
                        "correction instead");
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot record the visit: %s", strerror(-r));
    return cmd_ok(call, NULL);
}

/* ---- presence ---- */

static int presence_append(int64_t id, int64_t member_id, const char *name, int64_t in,
                           void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:I}", "member_id", (json_int_t)member_id, "member", name, "since",
        (json_int_t)in)) == 0 ? 0 : -ENOMEM;
}

int cmd_presence_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "present", list,
                      store_presence_foreach(cmd_services(call)->store, presence_append, list));
}

int cmd_presence_checkout(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t member = arg_int(a, "member", 0);
    int r = meter_check_out(svc->meter, member, now_utc(), "manager");

    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "member %" PRId64 " is not checked in", member);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot check out: %s", strerror(-r));
    site_occupancy_changed(svc->site);      /* who is in has changed */
    return cmd_ok(call, NULL);
}

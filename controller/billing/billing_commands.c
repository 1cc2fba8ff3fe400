/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of metering: passes, plans' allowances and rates, presence, statements,
 * corrections, the ledger and period closing. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
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
#include "offload.h"
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

/* ---- periods ----
 *
 * Closing a period reads a month of usage (60,000 records: about a second) and writes its
 * archive, signature and checksum, each fsync'd, and makes the archive directory's name
 * durable: on an SD card, tens of milliseconds each. None of it may hold the doors
 * (docs/architecture.md), so it happens on the offload thread, and the call waits:
 *   1. (thread) the archive directory exists and its name is durable; then a job process,
 *               through a connection of its own, at one moment of the database: the
 *               statement, the ledger's head and the newest usage record, and the archive;
 *               its checksum and signature;
 *   2. (loop)   no record of the period came after that moment (else 1 again, at most
 *               PERIOD_READS_MAX times): the seal, in the same loop turn. Its trigger
 *               refuses late records from then on, so the archive says exactly what the
 *               seal covers;
 *   3. (thread) the three files, each written aside, fsync'd, renamed, the directory synced;
 *   4. (loop)   the answer, the seal to the custodian.
 * The seal comes before the files: a period whose row exists but whose archive failed can
 * be re-exported; the reverse could not be trusted. */

/* A period read again this many times because records of it kept arriving meanwhile (a
 * member checking out with a presence begun in it) is left for a calmer moment. */
#define PERIOD_READS_MAX 3

struct period_close {
    struct services *svc;
    struct cmd_call *call;          /* NULL once the caller has gone */
    const struct meter *meter;      /* its key signs the archive on the thread: it never
                                     * changes, and the offload is freed before the meter */
    char period[8];
    char site[64];
    char db[PATH_MAX];
    char program[PATH_MAX];         /* the job's (billing_job_program()) */
    char info[200];                 /* the job's: {"closed_at": N, "public_key": HEX} */
    char dir[300], path[400];
    int64_t closed_at;
    unsigned reads;
    /* what the thread read, at one moment */
    int64_t usage_last;             /* the newest usage record then */
    struct store_period seal;
    char *text;                     /* the archive */
    char sig_line[LEDGER_SIG_LEN * 2 + 2];
    char sha_line[600];
    json_t *totals;
    char fail_code[32];             /* the thread's failure: code and message */
    char fail[512];
};

static void period_close_free(struct period_close *pc)
{
    if (pc->call)
        cmd_on_cancel(pc->call, NULL, NULL);
    free(pc->text);
    json_decref(pc->totals);
    free(pc);
}

static void period_close_gone(struct cmd_call *call, void *userdata)
{
    ((struct period_close *)userdata)->call = NULL;
}

/* Answer the caller, if still there, with an error, and finish the call. */
static void period_close_fail(struct period_close *pc, int r, const char *code,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void period_close_fail(struct period_close *pc, int r, const char *code,
                              const char *fmt, ...)
{
    struct cmd_call *call = pc->call;
    char msg[512];
    va_list ap;

    if (!call)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pc->call = NULL;
    cmd_on_cancel(call, NULL, NULL);
    cmd_fail(call, r, code, "%s", msg);
    cmd_finish(call);
}

static int write_side_file(const char *path, const char *suffix, const char *line)
{
    char side[PATH_MAX];
    snprintf(side, sizeof(side), "%s%s", path, suffix);
    return file_write_atomic(side, line, strlen(line), 0640);
}

/* The thread's failure, for step 2 to answer. Returns r. */
static int read_failed(struct period_close *pc, int r, const char *code, const char *msg)
{
    /* Copied: they may be the job's answer's, freed once read. */
    snprintf(pc->fail_code, sizeof(pc->fail_code), "%s", code);
    snprintf(pc->fail, sizeof(pc->fail), "%s", msg);
    return r;
}

/* 1, on the thread. The directory's own name must be durable too, or a power cut takes
 * every archive in it along (its entry in state_dir is synced here, whether this call made
 * it or a run cut short before syncing it did). Then the period is read by a job process
 * (billing_period_read()), at one moment of the database: a month's records would take
 * the daemon's memory to hundreds of megabytes, and their allocations would contend with
 * the loop's. */
static int period_read_work(void *arg)
{
    struct period_close *pc = arg;
    struct store_period *p = &pc->seal;
    char hex[LEDGER_SIG_LEN * 2 + 1], sha_hex[crypto_hash_sha256_BYTES * 2 + 1], *t;
    uint8_t sig[LEDGER_SIG_LEN];
    json_t *head = NULL;
    int r;

    free(pc->text);
    pc->text = NULL;
    json_decref(pc->totals);
    pc->totals = NULL;
    /* The directory once: a reading again finds it made and durable. */
    if (pc->reads > 1)
        r = 0;
    else if (mkdir(pc->dir, 0750) < 0 && errno != EEXIST)
        r = -errno;
    else
        r = file_sync_dir(pc->dir);
    if (r < 0) {
        char msg[400];
        snprintf(msg, sizeof(msg), "cannot write the archive in %s: %s", pc->dir, strerror(-r));
        return read_failed(pc, r, "io", msg);
    }
    r = billing_period_read(pc->program, pc->db, pc->period, pc->site, pc->info, &head,
                            &pc->text);
    if (r < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot read the period: %s", strerror(-r));
        return read_failed(pc, r, "internal", msg);
    }
    if (!pc->text) {
        const char *code = json_string_value(json_object_get(head, "code"));
        const char *err = json_string_value(json_object_get(head, "error"));
        r = read_failed(pc, -EIO, code ? code : "store", err ? err : "cannot read the period");
        json_decref(head);
        return r;
    }
    pc->usage_last = json_integer_value(json_object_get(head, "usage_last"));
    p->last_seq = json_integer_value(json_object_get(head, "last_seq"));
    const char *hash = json_string_value(json_object_get(head, "last_hash"));
    pc->totals = json_incref(json_object_get(head, "totals"));
    r = hash && strlen(hash) == LEDGER_HASH_LEN * 2 &&
        sodium_hex2bin(p->last_hash, sizeof(p->last_hash), hash, strlen(hash), NULL, NULL,
                       NULL) == 0 && json_is_object(pc->totals) ? 0 : -EIO;
    json_decref(head);
    if (r < 0)
        return read_failed(pc, r, "internal", "the period's reading is malformed");
    t = json_dumps(pc->totals, JSON_COMPACT | JSON_SORT_KEYS);
    if (!t)
        return read_failed(pc, -ENOMEM, "internal", "out of memory");
    snprintf(p->totals, sizeof(p->totals), "%s", t);
    free(t);
    period_days(pc->period, p->first_day, p->last_day);
    snprintf(p->period, sizeof(p->period), "%s", pc->period);
    p->closed_at = pc->closed_at;
    snprintf(p->archive, sizeof(p->archive), "%.255s", pc->path);
    /* The archive's bytes are fixed now: the seal row keeps their hash for the custodian. */
    crypto_hash_sha256(p->archive_sha256, (const uint8_t *)pc->text, strlen(pc->text));
    p->has_archive_sha256 = true;
    meter_sign(pc->meter, pc->text, strlen(pc->text), sig);
    sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
    snprintf(pc->sig_line, sizeof(pc->sig_line), "%s\n", hex);
    sodium_bin2hex(sha_hex, sizeof(sha_hex), p->archive_sha256, sizeof(p->archive_sha256));
    snprintf(pc->sha_line, sizeof(pc->sha_line), "%s  %s\n", sha_hex,
             strrchr(pc->path, '/') + 1);
    return 0;
}

/* 3, on the thread. */
static int period_files_work(void *arg)
{
    struct period_close *pc = arg;
    int r;

    if ((r = file_write_atomic(pc->path, pc->text, strlen(pc->text), 0640)) < 0 ||
        (r = write_side_file(pc->path, ".sig", pc->sig_line)) < 0)
        return r;
    return write_side_file(pc->path, ".sha256", pc->sha_line);
}

/* 4, on the loop. */
static void period_files_done(int r, void *arg)
{
    struct period_close *pc = arg;
    struct cmd_call *call = pc->call;

    if (r < 0) {
        log_error("period %s: sealed, but its archive could not be written in %s: %s",
                  pc->period, pc->dir, strerror(-r));
        period_close_fail(pc, r, "io", "cannot write the archive in %s: %s", pc->dir,
                          strerror(-r));
        goto out;
    }
    log_notice("period %s closed: %s (ledger up to %" PRId64 ")", pc->period, pc->path,
               pc->seal.last_seq);
    consortium_publish_seals(pc->svc->consortium);     /* the new seal, to the custodian */
    if (call) {
        pc->call = NULL;
        cmd_on_cancel(call, NULL, NULL);
        cmd_ok(call, json_pack("{s:s, s:s, s:I, s:O}", "period", pc->period, "archive",
                               pc->path, "last_ledger_seq", (json_int_t)pc->seal.last_seq,
                               "totals", pc->totals));
        cmd_finish(call);
    }
out:
    period_close_free(pc);
}

static void period_read_done(int r, void *arg);

static int period_read_start(struct period_close *pc)
{
    pc->reads++;
    pc->fail_code[0] = pc->fail[0] = '\0';
    return offload_run(pc->svc->offload, period_read_work, period_read_done, pc);
}

/* 2, on the loop. */
static void period_read_done(int r, void *arg)
{
    struct period_close *pc = arg;
    struct store *store = pc->svc->store;

    if (!pc->call)
        goto out;           /* nobody asked any more: nothing sealed, nothing to write */
    if (r < 0) {
        period_close_fail(pc, r, pc->fail_code[0] ? pc->fail_code : "internal", "%s",
                          pc->fail[0] ? pc->fail : strerror(-r));
        goto out;
    }
    /* Records of the period written after the moment read (a presence begun in it, closed
     * since): the archive would miss them. Read again. */
    r = store_usage_added_since(store, pc->usage_last, pc->seal.first_day, pc->seal.last_day);
    if (r < 0) {
        period_close_fail(pc, r, "store", "cannot read usage: %s", strerror(-r));
        goto out;
    }
    if (r > 0) {
        if (pc->reads >= PERIOD_READS_MAX) {
            period_close_fail(pc, -EAGAIN, "busy", "records of period %s keep arriving while "
                              "it is read; try again in a moment", pc->period);
            goto out;
        }
        log_info("period %s: records of it arrived while it was read; reading it again",
                 pc->period);
        if ((r = period_read_start(pc)) < 0) {
            period_close_fail(pc, r, "internal", "cannot close period: %s", strerror(-r));
            goto out;
        }
        return;
    }
    /* Seal first (the trigger then refuses late records), then write the files. */
    r = store_period_add(store, &pc->seal);
    if (r == -EEXIST) {
        period_close_fail(pc, r, "closed", "period %s is already closed", pc->period);
        goto out;
    }
    if (r < 0) {
        period_close_fail(pc, r, "store", "cannot close period: %s", strerror(-r));
        goto out;
    }
    log_info("period %s sealed by %s (ledger up to %" PRId64 "); writing its archive",
             pc->period, cmd_who(pc->call), pc->seal.last_seq);
    r = offload_run(pc->svc->offload, period_files_work, period_files_done, pc);
    if (r < 0) {
        log_error("period %s: sealed, but its archive could not be written: %s", pc->period,
                  strerror(-r));
        period_close_fail(pc, r, "io", "cannot write the archive in %s: %s", pc->dir,
                          strerror(-r));
        period_close_free(pc);
    }
    return;
out:
    period_close_free(pc);
}

int cmd_period_close(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *period = arg_str(a, "period");
    char today[11], first_day[11], last_day[11];
    struct period_close *pc;
    int r;

    period_days(period, first_day, last_day);
    meter_billing_day(svc->meter, now_utc(), today);
    if (strcmp(today, last_day) <= 0)
        return cmd_fail(call, -EAGAIN, "not_over", "period %s is not over yet (its last billing "
                        "day is %s)", period, last_day);
    pc = calloc(1, sizeof(*pc));
    if (!pc)
        return cmd_fail(call, -ENOMEM, "internal", "out of memory");
    pc->svc = svc;
    pc->call = call;
    pc->meter = svc->meter;
    pc->closed_at = now_utc();
    snprintf(pc->period, sizeof(pc->period), "%s", period);
    snprintf(pc->site, sizeof(pc->site), "%s", meter_site(svc->meter));
    snprintf(pc->dir, sizeof(pc->dir), "%.255s/archives", svc->cfg->daemon.state_dir);
    snprintf(pc->path, sizeof(pc->path), "%s/portier-%s-%s.json", pc->dir, pc->site, period);
    r = store_path(svc->store, pc->db, sizeof(pc->db));
    if (r == 0)
        r = billing_job_program(pc->program, sizeof(pc->program));
    if (r == 0) {
        uint8_t pk[LEDGER_PK_LEN];
        char pkhex[LEDGER_PK_LEN * 2 + 1];
        meter_public_key(svc->meter, pk);
        sodium_bin2hex(pkhex, sizeof(pkhex), pk, sizeof(pk));
        snprintf(pc->info, sizeof(pc->info), "{\"closed_at\": %" PRId64 ", \"public_key\": \"%s\"}",
                 pc->closed_at, pkhex);
    }
    if (r < 0) {
        period_close_free(pc);
        return cmd_fail(call, r, "internal", "cannot close period: %s", strerror(-r));
    }
    log_info("period %s: closing, asked by %s", period, cmd_who(call));
    cmd_on_cancel(call, period_close_gone, pc);
    r = period_read_start(pc);
    if (r < 0) {
        pc->call = NULL;
        period_close_free(pc);
        cmd_on_cancel(call, NULL, NULL);
        return cmd_fail(call, r, "internal", "cannot close period: %s", strerror(-r));
    }
    /* pc is the offload's now (without one, it is already answered and gone). */
    return CMD_PENDING;
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

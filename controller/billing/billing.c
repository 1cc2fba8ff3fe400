#include "billing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "request.h"
#include "util.h"

/* ---- statements ---- */

struct statement_ctx {
    json_t *members;        /* array */
    json_t *current;        /* member object being filled */
    int64_t current_id;
    int64_t days, presence_minutes, machine_minutes, amount, records;
    int64_t m_days, m_presence, m_machine, m_amount;
};

static void close_member(struct statement_ctx *x)
{
    if (!x->current)
        return;
    json_object_set_new(x->current, "totals",
                        json_pack("{s:I, s:I, s:I, s:I}", "days", (json_int_t)x->m_days,
                                  "presence_minutes", (json_int_t)x->m_presence,
                                  "machine_minutes", (json_int_t)x->m_machine, "amount_cents",
                                  (json_int_t)x->m_amount));
    json_array_append_new(x->members, x->current);
    x->current = NULL;
    x->m_days = x->m_presence = x->m_machine = x->m_amount = 0;
}

static int statement_line(const struct store_usage *u, void *userdata)
{
    struct statement_ctx *x = userdata;

    if (!x->current || x->current_id != u->member_id) {
        close_member(x);
        x->current = json_pack("{s:I, s:s, s:[]}", "member_id", (json_int_t)u->member_id,
                               "member", u->member, "lines");
        x->current_id = u->member_id;
    }
    json_array_append_new(json_object_get(x->current, "lines"), json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s}",
        "usage_id", (json_int_t)u->id, "ledger_seq", (json_int_t)u->ledger_seq, "kind", u->kind,
        "resource", u->resource, "billing_day", u->billing_day, "started_at",
        (json_int_t)u->started_at, "ended_at", (json_int_t)u->ended_at, "quantity",
        (json_int_t)u->quantity, "unit", u->unit, "running_seconds", (json_int_t)u->running_seconds,
        "allowance", u->allowance, "pass_quantity", (json_int_t)u->pass_quantity, "plan_quantity",
        (json_int_t)u->plan_quantity, "charged_quantity", (json_int_t)u->charged_quantity,
        "amount_cents", (json_int_t)u->amount_cents, "end_reason", u->end_reason, "corrects_seq",
        (json_int_t)u->corrects_seq, "note", u->note));
    if (strcmp(u->kind, "day") == 0) {
        x->m_days++;
        x->days++;
    } else if (strcmp(u->kind, "presence") == 0) {
        x->m_presence += u->quantity;
        x->presence_minutes += u->quantity;
    } else if (strcmp(u->kind, "machine") == 0) {
        x->m_machine += u->quantity;
        x->machine_minutes += u->quantity;
    }
    x->m_amount += u->amount_cents;
    x->amount += u->amount_cents;
    x->records++;
    return 0;
}

json_t *billing_statement(struct store *store, const char *period, int64_t member_id,
                          const char **ret_error)
{
    struct statement_ctx x = { .members = json_array() };
    char first[11], last[11];
    int r;

    if (period_days(period, first, last) < 0) {
        *ret_error = "period must be YYYY-MM";
        json_decref(x.members);
        return NULL;
    }
    r = store_usage_foreach(store, first, last, member_id, statement_line, &x);
    if (r < 0) {
        *ret_error = "cannot read usage";
        json_decref(x.current);
        json_decref(x.members);
        return NULL;
    }
    close_member(&x);
    const char *tz = getenv("TZ");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "period", period,
                     "first_day", first, "last_day", last, "currency", "EUR", "timezone",
                     tz ? tz : "UTC", "members", x.members,
                     "totals", "records", (json_int_t)x.records, "days", (json_int_t)x.days,
                     "presence_minutes", (json_int_t)x.presence_minutes, "machine_minutes",
                     (json_int_t)x.machine_minutes, "amount_cents", (json_int_t)x.amount);
}

/* ---- period closing ---- */

static int write_file(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    int fd, r = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
        r = -errno ? -errno : -EIO;
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

static void period_close(struct store *store, struct meter *meter, const char *state_dir,
                         struct control_conn *c, const char *period)
{
    struct store_period p = { 0 };
    char today[11], dir[300], path[400], side[420], hex[LEDGER_SIG_LEN * 2 + 1];
    char sha_hex[crypto_hash_sha256_BYTES * 2 + 1], line[600], *text;
    uint8_t head_sig[LEDGER_SIG_LEN], sig[LEDGER_SIG_LEN], sha[crypto_hash_sha256_BYTES];
    uint8_t pk[LEDGER_PK_LEN];
    const char *err = "";
    json_t *statement, *archive;
    int r;

    if (period_days(period, p.first_day, p.last_day) < 0) {
        control_reply_error(c, "bad_request", "period must be YYYY-MM");
        return;
    }
    meter_billing_day(meter, now_utc(), today);
    if (strcmp(today, p.last_day) <= 0) {
        control_reply_error(c, "not_over", "period %s is not over yet (its last billing day is %s)",
                            period, p.last_day);
        return;
    }
    statement = billing_statement(store, period, 0, &err);
    if (!statement) {
        control_reply_error(c, "store", "%s", err);
        return;
    }
    store_ledger_head(store, &p.last_seq, p.last_hash, head_sig);
    meter_public_key(meter, pk);
    sodium_bin2hex(hex, sizeof(hex), p.last_hash, LEDGER_HASH_LEN);
    {
        char pkhex[LEDGER_PK_LEN * 2 + 1];
        sodium_bin2hex(pkhex, sizeof(pkhex), pk, LEDGER_PK_LEN);
        archive = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:O}", "format",
                            "portier-period-archive-v1", "site", meter_site(meter), "period",
                            period, "closed_at", (json_int_t)now_utc(), "last_ledger_seq",
                            (json_int_t)p.last_seq, "last_ledger_hash", hex, "public_key", pkhex,
                            "statement", statement);
    }
    text = json_dumps(archive, JSON_INDENT(1) | JSON_SORT_KEYS);
    snprintf(p.period, sizeof(p.period), "%s", period);
    p.closed_at = now_utc();
    {
        json_t *totals = json_object_get(statement, "totals");
        char *t = json_dumps(totals, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(p.totals, sizeof(p.totals), "%s", t ? t : "{}");
        free(t);
    }
    snprintf(dir, sizeof(dir), "%.255s/archives", state_dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        r = -errno;
        goto fail_io;
    }
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
        control_reply_error(c, "closed", "period %s is already closed", period);
        goto out;
    }
    if (r < 0) {
        control_reply_error(c, "store", "cannot close period: %s", strerror(-r));
        goto out;
    }
    r = write_file(path, text, strlen(text));
    if (r < 0)
        goto fail_io;
    meter_sign(meter, text, strlen(text), sig);
    sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
    snprintf(side, sizeof(side), "%s.sig", path);
    snprintf(line, sizeof(line), "%s\n", hex);
    if ((r = write_file(side, line, strlen(line))) < 0)
        goto fail_io;
    crypto_hash_sha256(sha, (const uint8_t *)text, strlen(text));
    sodium_bin2hex(sha_hex, sizeof(sha_hex), sha, sizeof(sha));
    snprintf(side, sizeof(side), "%s.sha256", path);
    snprintf(line, sizeof(line), "%s  %s\n", sha_hex, strrchr(path, '/') + 1);
    if ((r = write_file(side, line, strlen(line))) < 0)
        goto fail_io;
    log_notice("period %s closed: %s (ledger up to %" PRId64 ")", period, path, p.last_seq);
    control_reply_ok(c, json_pack("{s:s, s:s, s:I, s:O}", "period", period, "archive", path,
                                  "last_ledger_seq", (json_int_t)p.last_seq, "totals",
                                  json_object_get(statement, "totals")));
    goto out;
fail_io:
    control_reply_error(c, "io", "cannot write the archive in %s: %s", dir, strerror(-r));
out:
    free(text);
    json_decref(archive);
    json_decref(statement);
}

/* ---- listings ---- */

static int pass_append(const struct store_pass *p, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
                                              (json_int_t)p->id, "kind", p->kind, "target",
                                              p->target, "quantity", (json_int_t)p->quantity,
                                              "remaining", (json_int_t)p->remaining, "valid_from",
                                              (json_int_t)p->valid_from, "valid_until",
                                              (json_int_t)p->valid_until, "price_cents",
                                              (json_int_t)p->price_cents));
    return 0;
}

static int rate_append(const char *plan, const struct store_rate *r, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "plan", plan,
                                              "target", r->target, "monthly_minutes",
                                              (json_int_t)r->monthly_minutes, "per_hour_cents",
                                              (json_int_t)r->per_hour_cents, "block_minutes",
                                              (json_int_t)r->block_minutes, "min_charge_cents",
                                              (json_int_t)r->min_charge_cents, "free_minutes",
                                              (json_int_t)r->free_minutes));
    return 0;
}

static int presence_append(int64_t id, int64_t member_id, const char *name, int64_t in,
                           void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:I}", "member_id", (json_int_t)member_id,
                                              "member", name, "since", (json_int_t)in));
    return 0;
}

static int period_append(const struct store_period *p, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:s, s:I, s:I, s:s, s:s}", "period", p->period,
                                              "closed_at", (json_int_t)p->closed_at, "last_seq",
                                              (json_int_t)p->last_seq, "totals", p->totals,
                                              "archive", p->archive));
    return 0;
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

struct child_job {
    const char *kind;           /* "statement" or "verify" */
    const char *period;
    int64_t member;
    const char *site;
};

/* The reply of a job, built from the job's own connection to the database. */
static json_t *job_reply(struct store *ro, const struct child_job *job)
{
    const char *err = "cannot read the database";
    json_t *st;

    if (strcmp(job->kind, "verify") == 0) {
        struct ledger_verifier v;
        struct meter *m = NULL;
        int r = meter_new(ro, job->site, 0, &m);
        if (r == 0)
            r = meter_verify(m, &v);
        meter_free(m);
        if (r < 0 && r != -EBADMSG)
            return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error",
                             "cannot read the ledger");
        return json_pack("{s:b, s:b, s:I, s:I, s:I, s:s}", "ok", 1, "intact", r == 0, "entries",
                         (json_int_t)v.entries, "signatures_checked",
                         (json_int_t)v.signatures_checked, "first_broken_seq",
                         (json_int_t)v.bad_seq, "problem", v.problem);
    }
    st = billing_statement(ro, job->period, job->member, &err);
    return st ? json_pack("{s:b, s:o}", "ok", 1, "statement", st)
              : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error", err);
}

int billing_job_main(int argc, char **argv)
{
    struct child_job job = { .kind = "", .period = "", .site = "" };
    const char *db = NULL;
    struct store *ro = NULL;
    json_t *reply;
    char *text;

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--job") == 0)
            job.kind = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0)
            db = argv[i + 1];
        else if (strcmp(argv[i], "--period") == 0)
            job.period = argv[i + 1];
        else if (strcmp(argv[i], "--member") == 0)
            job.member = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--site") == 0)
            job.site = argv[i + 1];
    }
    alarm(600);         /* never linger */
    reply = db && store_open(db, &ro) == 0
                ? job_reply(ro, &job)
                : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error",
                            "cannot open the database");
    text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (text) {
        size_t len = strlen(text), done = 0;
        while (done < len) {
            ssize_t n = write(3, text + done, len - done);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        (void)!write(3, "\n", 1);
        free(text);
    }
    store_free(ro);
    return 0;
}

/* A month of usage or a million ledger entries take seconds: on the loop, the doors would
 * wait that long. A fresh process (portierd --job ..., the client's socket as fd 3) does
 * the work through its own connection — WAL lets it read while the daemon writes; a mere
 * fork would share SQLite's process-wide state with the daemon — and answers the client
 * itself. */
static void in_child(struct store *store, struct control_conn *c, const struct child_job *job)
{
    char path[PATH_MAX], self[PATH_MAX], member[24];
    ssize_t len;
    pid_t pid;
    int fd;

    /* portierd itself; a test harness that embeds the control server names it instead. */
    const char *program = getenv("PORTIER_JOB_PROGRAM");
    if (program && *program && strlen(program) < sizeof(self)) {
        strcpy(self, program);
        len = (ssize_t)strlen(self);
    } else {
        len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    }
    if (len <= 0 || store_path(store, path, sizeof(path)) < 0 ||
        (fd = control_conn_take_fd(c)) < 0) {
        control_reply_error(c, "internal", "cannot start the job");
        return;
    }
    self[len] = '\0';
    snprintf(member, sizeof(member), "%" PRId64, job->member);
    char *argv[] = { self, "--job", (char *)job->kind, "--db", path, "--period",
                     (char *)job->period, "--member", member, "--site", (char *)job->site, NULL };
    pid = fork();
    if (pid == 0) {
        if (fork() == 0) {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            if (dup2(fd, 3) < 0)
                _exit(127);
            close_range(4, ~0u, 0);     /* nothing of the daemon's: lines, sockets, database */
            execv(self, argv);
            _exit(127);
        }
        _exit(0);
    }
    close(fd);
    if (pid > 0)
        waitpid(pid, NULL, 0);      /* the middle process exits at once */
    else
        log_error("cannot start a job: %s", strerror(errno));
}

bool billing_control(struct store *store, struct meter *meter, const char *state_dir,
                     struct control_conn *c, const char *cmd, json_t *req)
{
    int64_t member = 0;
    int r;

    if (strcmp(cmd, "site.key") == 0) {
        uint8_t pk[LEDGER_PK_LEN];
        char hex[LEDGER_PK_LEN * 2 + 1];
        meter_public_key(meter, pk);
        sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
        control_reply_ok(c, json_pack("{s:s, s:s, s:s}", "site", meter_site(meter), "algorithm",
                                      "ed25519", "public_key", hex));
    } else if (strcmp(cmd, "ledger.verify") == 0) {
        struct child_job job = { .kind = "verify", .period = "", .site = meter_site(meter) };
        log_info("ledger verification requested by %s", control_conn_who(c));
        in_child(store, c, &job);
    } else if (strcmp(cmd, "statement") == 0) {
        const char *period = req_str(req, "period");
        char first[11], last[11];
        if (json_object_get(req, "member") && !req_member(store, c, req, "member", &member))
            return true;
        if (!period || period_days(period, first, last) < 0) {
            control_reply_error(c, "bad_request", "period must be YYYY-MM");
            return true;
        }
        struct child_job job = { .kind = "statement", .period = period, .member = member,
                                 .site = meter_site(meter) };
        in_child(store, c, &job);
    } else if (strcmp(cmd, "period.close") == 0) {
        const char *period = req_str(req, "period");
        period_close(store, meter, state_dir, c, period ? period : "");
    } else if (strcmp(cmd, "period.list") == 0) {
        json_t *list = json_array();
        store_periods_foreach(store, period_append, list);
        control_reply_ok(c, json_pack("{s:o}", "periods", list));
    } else if (strcmp(cmd, "pass.add") == 0) {
        struct store_pass p = { .quantity = 0 };
        const char *kind = req_str(req, "kind"), *target = req_str(req, "target");
        int64_t id;
        if (!req_member(store, c, req, "member", &p.member_id))
            return true;
        if (!kind || (strcmp(kind, "days") != 0 && strcmp(kind, "minutes") != 0)) {
            control_reply_error(c, "bad_request", "kind must be \"days\" or \"minutes\"");
            return true;
        }
        if (!req_int(c, req, "quantity", 1, 1000000, true, &p.quantity) ||
            !req_int(c, req, "price_cents", 0, 100000000, false, &p.price_cents) ||
            !req_time(c, req, "valid_from", false, &p.valid_from) ||
            !req_time(c, req, "valid_until", false, &p.valid_until))
            return true;
        if (target && (strlen(target) >= sizeof(p.target) || !*target)) {
            control_reply_error(c, "bad_request", "target is a machine, category:NAME or *");
            return true;
        }
        snprintf(p.kind, sizeof(p.kind), "%s", kind);
        snprintf(p.target, sizeof(p.target), "%s", target ? target : "*");
        r = store_pass_add(store, &p, "manager", &id);
        if (r < 0) {
            control_reply_error(c, "store", "cannot add pass: %s", strerror(-r));
            return true;
        }
        log_info("pass %" PRId64 ": %" PRId64 " %s for member %" PRId64, id, p.quantity, kind,
                 p.member_id);
        control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)id));
    } else if (strcmp(cmd, "pass.list") == 0) {
        json_t *list = json_array();
        if (!req_member(store, c, req, "member", &member)) {
            json_decref(list);
            return true;
        }
        store_passes_foreach(store, member, pass_append, list);
        control_reply_ok(c, json_pack("{s:o}", "passes", list));
    } else if (strcmp(cmd, "plan.billing") == 0) {
        const char *name = req_str(req, "plan"), *order = req_str(req, "allowance_order");
        struct store_plan plan;
        struct store_member_plan cur = { 0 };
        if (!name || store_plan_find(store, name, &plan) < 0) {
            control_reply_error(c, "not_found", "no plan '%.32s'", name ? name : "");
            return true;
        }
        /* All are set at once; what is not given takes its default. */
        if (!req_int(c, req, "monthly_days", 0, 31, false, &cur.monthly_days) ||
            !req_int(c, req, "day_rate_cents", 0, 100000000, false, &cur.day_rate_cents) ||
            !req_int(c, req, "visit_days", 0, 31, false, &cur.visit_days))
            return true;
        if (order && !order_valid(order)) {
            control_reply_error(c, "bad_request", "allowance_order lists pass, plan and rate, e.g. pass,plan,rate");
            return true;
        }
        r = store_plan_set_billing(store, plan.id, cur.monthly_days,
                                   cur.day_rate_cents, order ? order : "pass,plan,rate",
                                   cur.visit_days);
        if (r < 0) {
            control_reply_error(c, "store", "cannot change plan: %s", strerror(-r));
            return true;
        }
        control_reply_ok(c, json_pack("{s:s}", "plan", name));
    } else if (strcmp(cmd, "rate.set") == 0) {
        const char *name = req_str(req, "plan"), *target = req_str(req, "target");
        struct store_plan plan;
        struct store_rate rate = { .block_minutes = 1 };
        if (!name || store_plan_find(store, name, &plan) < 0) {
            control_reply_error(c, "not_found", "no plan '%.32s'", name ? name : "");
            return true;
        }
        if (!target || !*target || strlen(target) >= sizeof(rate.target)) {
            control_reply_error(c, "bad_request", "target is a machine name, category:NAME or *");
            return true;
        }
        snprintf(rate.target, sizeof(rate.target), "%s", target);
        if (!req_int(c, req, "per_hour_cents", 0, 10000000, false, &rate.per_hour_cents) ||
            !req_int(c, req, "block_minutes", 1, 1440, false, &rate.block_minutes) ||
            !req_int(c, req, "min_charge_cents", 0, 10000000, false, &rate.min_charge_cents) ||
            !req_int(c, req, "free_minutes", 0, 1440, false, &rate.free_minutes) ||
            !req_int(c, req, "monthly_minutes", 0, 44640, false, &rate.monthly_minutes))
            return true;
        r = store_rate_put(store, plan.id, &rate);
        if (r < 0) {
            control_reply_error(c, "store", "cannot set rate: %s", strerror(-r));
            return true;
        }
        control_reply_ok(c, json_pack("{s:s, s:s}", "plan", name, "target", target));
    } else if (strcmp(cmd, "rate.list") == 0) {
        json_t *list = json_array();
        store_rates_foreach(store, rate_append, list);
        control_reply_ok(c, json_pack("{s:o}", "rates", list));
    } else if (strcmp(cmd, "usage.correct") == 0) {
        int64_t seq, delta, new_seq;
        const char *note = req_str(req, "note");
        if (!req_int(c, req, "seq", 1, INT64_MAX, true, &seq) ||
            !req_int(c, req, "amount_cents", -100000000, 100000000, true, &delta))
            return true;
        if (!note || !*note || strlen(note) > 127) {
            control_reply_error(c, "bad_request", "a correction needs a note (1 to 127 characters) saying why");
            return true;
        }
        r = meter_correction(meter, seq, delta, note, &new_seq);
        if (r == -ENOENT) {
            control_reply_error(c, "not_found", "no usage record at ledger entry %" PRId64, seq);
            return true;
        }
        if (r < 0) {
            control_reply_error(c, "store", "cannot record the correction: %s", strerror(-r));
            return true;
        }
        log_notice("ledger entry %" PRId64 " corrected by entry %" PRId64 " (%+" PRId64 " cents): %s",
                   seq, new_seq, delta, note);
        control_reply_ok(c, json_pack("{s:I}", "seq", (json_int_t)new_seq));
    } else if (strcmp(cmd, "usage.add") == 0) {
        /* A manager's record of a day someone used without badging (dated in the past). */
        int64_t at;
        const char *when = req_str(req, "at");
        if (!req_member(store, c, req, "member", &member) || !req_time(c, req, "at", false, &at))
            return true;
        if (!at) {
            control_reply_error(c, "bad_request", "missing \"at\" (the date of the visit)");
            return true;
        }
        /* A bare date means that day: noon is safely inside its billing day. */
        if (when && strlen(when) == 10)
            at += 12 * 3600;
        r = meter_manual_day(meter, member, at);
        if (r == -EPERM) {
            control_reply_error(c, "period_closed", "that day belongs to a closed period; add a correction instead");
            return true;
        }
        if (r < 0) {
            control_reply_error(c, "store", "cannot record the visit: %s", strerror(-r));
            return true;
        }
        control_reply_ok(c, NULL);
    } else if (strcmp(cmd, "presence.list") == 0) {
        json_t *list = json_array();
        store_presence_foreach(store, presence_append, list);
        control_reply_ok(c, json_pack("{s:o}", "present", list));
    } else if (strcmp(cmd, "presence.checkout") == 0) {
        if (!req_member(store, c, req, "member", &member))
            return true;
        r = meter_check_out(meter, member, now_utc(), "manager");
        if (r == -ENOENT)
            control_reply_error(c, "not_found", "member %" PRId64 " is not checked in", member);
        else if (r < 0)
            control_reply_error(c, "store", "cannot check out: %s", strerror(-r));
        else
            control_reply_ok(c, NULL);
    } else {
        return false;
    }
    return true;
}

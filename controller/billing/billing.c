/* SPDX-License-Identifier: AGPL-3.0-or-later */
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

#include "command.h"
#include "fileio.h"
#include "log.h"
#include "members.h"
#include "services.h"
#include "util.h"

/* ---- statements ---- */

struct statement_ctx {
    json_t *members;        /* array */
    json_t *current;        /* member object being filled */
    int64_t current_id;
    int64_t days, presence_minutes, machine_minutes, amount, records, energy_wh;
    int64_t m_days, m_presence, m_machine, m_amount, m_energy;
};

static void close_member(struct statement_ctx *x)
{
    if (!x->current)
        return;
    json_object_set_new(x->current, "totals",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "days", (json_int_t)x->m_days,
                                  "presence_minutes", (json_int_t)x->m_presence,
                                  "machine_minutes", (json_int_t)x->m_machine, "energy_wh",
                                  (json_int_t)x->m_energy, "amount_cents",
                                  (json_int_t)x->m_amount));
    json_array_append_new(x->members, x->current);
    x->current = NULL;
    x->m_days = x->m_presence = x->m_machine = x->m_amount = x->m_energy = 0;
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
    json_t *line = json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:s}",
        "usage_id", (json_int_t)u->id, "ledger_seq", (json_int_t)u->ledger_seq, "kind", u->kind,
        "resource", u->resource, "billing_day", u->billing_day, "started_at",
        (json_int_t)u->started_at, "ended_at", (json_int_t)u->ended_at, "quantity",
        (json_int_t)u->quantity, "unit", u->unit, "running_seconds", (json_int_t)u->running_seconds,
        "allowance", u->allowance, "pass_quantity", (json_int_t)u->pass_quantity, "plan_quantity",
        (json_int_t)u->plan_quantity, "charged_quantity", (json_int_t)u->charged_quantity,
        "amount_cents", (json_int_t)u->amount_cents, "end_reason", u->end_reason, "corrects_seq",
        (json_int_t)u->corrects_seq, "note", u->note);
    /* Energy, for sessions a meter measured: Wh used, of which included in the plan, and its
     * part of amount_cents. Lines without a meter do not have these keys. */
    if (u->has_energy) {
        json_object_set_new(line, "energy_wh", json_integer((json_int_t)u->energy_wh));
        json_object_set_new(line, "plan_wh", json_integer((json_int_t)u->plan_wh));
        json_object_set_new(line, "energy_cents", json_integer((json_int_t)u->energy_cents));
        x->m_energy += u->energy_wh;
        x->energy_wh += u->energy_wh;
    }
    json_array_append_new(json_object_get(x->current, "lines"), line);
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
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "period",
                     period, "first_day", first, "last_day", last, "currency", "EUR", "timezone",
                     tz ? tz : "UTC", "members", x.members,
                     "totals", "records", (json_int_t)x.records, "days", (json_int_t)x.days,
                     "presence_minutes", (json_int_t)x.presence_minutes, "machine_minutes",
                     (json_int_t)x.machine_minutes, "energy_wh", (json_int_t)x.energy_wh,
                     "amount_cents", (json_int_t)x.amount);
}

/* ---- period closing ---- */

struct child_job {
    const char *kind;           /* "statement", "verify" or "export" */
    const char *period;
    int64_t member;
    const char *site;
    const char *info;           /* JSON, or "" */
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
    if (strcmp(job->kind, "export") == 0) {
        const char *code = "store";
        json_t *info = json_loads(job->info, 0, NULL), *doc;
        if (!info)
            info = json_pack("{s:{}, s:{}}", "site", "retention");
        doc = members_export(ro, job->member, info, &code, &err);
        json_decref(info);
        return doc ? json_pack("{s:b, s:o}", "ok", 1, "export", doc)
                   : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", err);
    }
    st = billing_statement(ro, job->period, job->member, &err);
    return st ? json_pack("{s:b, s:o}", "ok", 1, "statement", st)
              : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error", err);
}

int billing_job_main(int argc, char **argv)
{
    struct child_job job = { .kind = "", .period = "", .site = "", .info = "" };
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
        else if (strcmp(argv[i], "--info") == 0)
            job.info = argv[i + 1];
    }
    alarm(600);         /* never linger */
    reply = db && store_open(db, &ro) == 0
                ? job_reply(ro, &job)
                : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error",
                            "cannot open the database");
    text = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    if (text) {
        if (file_write_full(3, text, strlen(text)) == 0)
            (void)file_write_full(3, "\n", 1);
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
int billing_start_job(struct cmd_call *call, const char *kind, const char *period,
                      int64_t member_id)
{
    return billing_start_job_info(call, kind, period, member_id, NULL);
}

int billing_start_job_info(struct cmd_call *call, const char *kind, const char *period,
                           int64_t member_id, json_t *info)
{
    struct services *svc = cmd_services(call);
    char path[PATH_MAX], self[PATH_MAX], member[24];
    const char *site = meter_site(svc->meter);
    ssize_t len;
    pid_t pid;
    int fd;

    /* portierd itself; a test harness that embeds the daemon names it instead. */
    const char *program = getenv("PORTIER_JOB_PROGRAM");
    if (program && *program && strlen(program) < sizeof(self)) {
        strcpy(self, program);
        len = (ssize_t)strlen(self);
    } else {
        len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    }
    if (len <= 0 || store_path(svc->store, path, sizeof(path)) < 0)
        return cmd_fail(call, -EIO, "internal", "cannot start the job");
    fd = cmd_job_fd(call);
    if (fd < 0)
        return cmd_fail(call, fd, "internal", "cannot start the job: %s", strerror(-fd));
    self[len] = '\0';
    snprintf(member, sizeof(member), "%" PRId64, member_id);
    char *info_text = info ? json_dumps(info, JSON_COMPACT) : NULL;
    char *argv[] = { self, "--job", (char *)kind, "--db", path, "--period", (char *)period,
                     "--member", member, "--site", (char *)site, "--info",
                     info_text ? info_text : "", NULL };
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
    free(info_text);
    if (pid > 0)
        waitpid(pid, NULL, 0);      /* the middle process exits at once */
    else
        log_error("cannot start a job: %s", strerror(errno));
    /* Its answer comes from the job itself (or, failing that, as the job's socket closing). */
    return CMD_PENDING;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "billing.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
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
    const char *kind;           /* "statement", "verify", "export", "members", "cards",
                                 * "uid-only" or "period" */
    const char *period;
    int64_t member;
    const char *site;
    const char *info;           /* JSON, or "" */
};

/* {"ok": true} and fields (taken), or the store's failure to read what. */
static json_t *job_ok(json_t *fields, const char *what)
{
    json_t *reply;

    if (!fields)
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error", what);
    reply = json_pack("{s:b}", "ok", 1);
    if (reply)
        json_object_update(reply, fields);
    json_decref(fields);
    return reply;
}

static json_t *job_statement(struct store *ro, const struct child_job *job)
{
    const char *err = "cannot read the database";
    json_t *st = billing_statement(ro, job->period, job->member, &err);

    return st ? json_pack("{s:b, s:o}", "ok", 1, "statement", st)
              : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error", err);
}

static json_t *job_verify(struct store *ro, const struct child_job *job)
{
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

static json_t *job_export(struct store *ro, const struct child_job *job)
{
    const char *code = "store", *err = "cannot read the database";
    json_t *info = json_loads(job->info, 0, NULL), *doc;

    if (!info)
        info = json_pack("{s:{}, s:{}}", "site", "retention");
    doc = members_export(ro, job->member, info, &code, &err);
    json_decref(info);
    return doc ? json_pack("{s:b, s:o}", "ok", 1, "export", doc)
               : json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", err);
}

static json_t *job_members(struct store *ro, const struct child_job *job)
{
    json_t *info = json_loads(job->info, 0, NULL), *fields = NULL;
    struct store_member_query q = {
        .text = json_string_value(json_object_get(info, "query")),
        .filter = (enum store_member_filter)json_integer_value(json_object_get(info, "filter")),
        .offset = json_integer_value(json_object_get(info, "offset")),
        .limit = json_integer_value(json_object_get(info, "limit")),
        .now = json_integer_value(json_object_get(info, "now")),
        .expiring_seconds = json_integer_value(json_object_get(info, "expiring_seconds")),
    };
    int r;

    if (info)
        fields = members_list_fields(ro, &q, &r);
    json_decref(info);
    return job_ok(fields, "cannot read the members");
}

static json_t *job_cards(struct store *ro, const struct child_job *job)
{
    int r;
    return job_ok(members_cards_fields(ro, job->member, &r), "cannot read the cards");
}

static json_t *job_uid_only(struct store *ro, const struct child_job *job)
{
    int r;
    return job_ok(members_uid_only_fields(ro, &r), "cannot read the cards");
}

/* The jobs that answer a command's caller (billing_start_job()), each from the job's own
 * connection to the database; "period" answers the daemon itself (period_job()). */
static const struct {
    const char *kind;
    json_t *(*reply)(struct store *ro, const struct child_job *job);
} jobs[] = {
    { "statement", job_statement }, { "verify", job_verify }, { "export", job_export },
    { "members", job_members }, { "cards", job_cards }, { "uid-only", job_uid_only },
};

static json_t *job_reply(struct store *ro, const struct child_job *job)
{
    for (size_t i = 0; i < ARRAY_SIZE(jobs); i++)
        if (strcmp(job->kind, jobs[i].kind) == 0)
            return jobs[i].reply(ro, job);
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "internal", "error", "no such job");
}

/* Write the whole of text to fd 3 (the daemon's pipe). */
static int job_write(const char *text, size_t len)
{
    return file_write_full(3, text, len);
}

/* A period read for its close (billing_period_read()), at one moment of the database: a
 * first line of JSON (what the seal needs: the newest usage record, the ledger's head, the
 * totals; or the failure), then the archive's bytes. info: {"closed_at": N, "public_key":
 * HEX}. */
static int period_job(const char *db, const struct child_job *job)
{
    json_t *info = json_loads(job->info, 0, NULL), *statement = NULL, *archive, *head;
    const char *err = "cannot open the database";
    uint8_t hash[LEDGER_HASH_LEN], sig[LEDGER_SIG_LEN];
    char hex[LEDGER_HASH_LEN * 2 + 1];
    int64_t usage_last = 0, seq = 0;
    struct store *ro = NULL;
    char *text = NULL, *line;
    int r = db ? store_open(db, &ro) : -EINVAL;

    if (r == 0 && (r = store_snapshot_begin(ro)) == 0) {
        if ((r = store_usage_last_id(ro, &usage_last)) < 0)
            err = "cannot read usage";
        else if ((r = store_ledger_head(ro, &seq, hash, sig)) < 0)
            err = "cannot read the ledger's head";
        else if (!(statement = billing_statement(ro, job->period, 0, &err)))
            r = -EIO;
        store_snapshot_end(ro);
    }
    store_free(ro);
    if (r < 0) {
        json_decref(info);
        line = json_dumps(json_pack("{s:b, s:s, s:s}", "ok", 0, "code", "store", "error", err),
                          JSON_COMPACT);
        if (line)
            (void)(job_write(line, strlen(line)) == 0 && job_write("\n", 1));
        free(line);
        return 1;
    }
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    archive = json_pack("{s:s, s:s, s:s, s:O, s:I, s:s, s:O, s:o}", "format",
                        "portier-period-archive-v1", "site", job->site, "period", job->period,
                        "closed_at", json_object_get(info, "closed_at"), "last_ledger_seq",
                        (json_int_t)seq, "last_ledger_hash", hex, "public_key",
                        json_object_get(info, "public_key"), "statement", statement);
    head = json_pack("{s:b, s:I, s:I, s:s, s:O}", "ok", 1, "usage_last", (json_int_t)usage_last,
                     "last_seq", (json_int_t)seq, "last_hash", hex, "totals",
                     json_object_get(statement, "totals"));
    text = archive ? json_dumps(archive, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    line = head ? json_dumps(head, JSON_COMPACT) : NULL;
    json_decref(archive);
    json_decref(head);
    json_decref(info);
    r = text && line && job_write(line, strlen(line)) == 0 && job_write("\n", 1) == 0 &&
        job_write(text, strlen(text)) == 0 ? 0 : 1;
    free(text);
    free(line);
    return r;
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
    if (strcmp(job.kind, "period") == 0)
        return period_job(db, &job);
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

/* The most a period's archive may weigh (60,000 records: about 20 MB). */
#define PERIOD_ARCHIVE_MAX ((size_t)1 << 30)

int billing_period_read(const char *program, const char *db, const char *period,
                        const char *site, const char *info, json_t **ret_head, char **ret_text)
{
    char *argv[] = { (char *)program, "--job", "period", "--db", (char *)db, "--period",
                     (char *)period, "--site", (char *)site, "--info", (char *)info, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none;
    char *buf = NULL, *nl;
    size_t len = 0, cap = 0;
    int p[2], r, status;
    pid_t pid;

    *ret_head = NULL;
    *ret_text = NULL;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    if (p[1] == 3) {            /* dup2() onto itself would leave it close-on-exec */
        int w = fcntl(p[1], F_DUPFD_CLOEXEC, 4);
        close(p[1]);
        if (w < 0) {
            close(p[0]);
            return -errno;
        }
        p[1] = w;
    }
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);  /* nothing of the daemon's */
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    r = -posix_spawn(&pid, program, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(p[1]);
    if (r < 0) {
        close(p[0]);
        return r;
    }
    for (;;) {
        if (len == cap) {
            size_t more = cap ? cap * 2 : 1 << 16;
            char *b = more <= PERIOD_ARCHIVE_MAX ? realloc(buf, more + 1) : NULL;
            if (!b) {
                r = more <= PERIOD_ARCHIVE_MAX ? -ENOMEM : -EFBIG;
                break;
            }
            buf = b;
            cap = more;
        }
        ssize_t n = read(p[0], buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : 0;
            break;
        }
        len += (size_t)n;
    }
    close(p[0]);                /* a job still writing ends on its own (SIGPIPE) */
    for (;;) {
        if (waitpid(pid, &status, 0) == pid)
            break;
        if (errno != EINTR) {
            status = -1;        /* not its exit status: not a success either */
            break;
        }
    }
    if (r == 0 && (!buf || !(nl = memchr(buf, '\n', len))))
        r = -EIO;               /* the job died before its first line */
    if (r == 0) {
        *ret_head = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
        if (!*ret_head)
            r = -EIO;
    }
    if (r == 0 && json_is_true(json_object_get(*ret_head, "ok"))) {
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            r = -EIO;           /* the archive may be cut short */
        } else {
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len);
            buf[len] = '\0';
            *ret_text = buf;
            buf = NULL;
        }
    }
    free(buf);
    if (r < 0) {
        json_decref(*ret_head);
        *ret_head = NULL;
    }
    return r;
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

int billing_job_program(char *buf, size_t n)
{
    /* portierd itself; a test harness that embeds the daemon names it instead. */
    const char *program = getenv("PORTIER_JOB_PROGRAM");
    ssize_t len;

    if (program && *program) {
        if (strlen(program) >= n)
            return -ENAMETOOLONG;
        strcpy(buf, program);
        return 0;
    }
    len = readlink("/proc/self/exe", buf, n - 1);
    if (len <= 0)
        return -EIO;
    buf[len] = '\0';
    return 0;
}

int billing_start_job_info(struct cmd_call *call, const char *kind, const char *period,
                           int64_t member_id, json_t *info)
{
    struct services *svc = cmd_services(call);
    char path[PATH_MAX], self[PATH_MAX], member[24];
    const char *site = meter_site(svc->meter);
    pid_t pid;
    int fd;

    if (billing_job_program(self, sizeof(self)) < 0 ||
        store_path(svc->store, path, sizeof(path)) < 0)
        return cmd_fail(call, -EIO, "internal", "cannot start the job");
    fd = cmd_job_fd(call);
    if (fd < 0)
        return cmd_fail(call, fd, "internal", "cannot start the job: %s", strerror(-fd));
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

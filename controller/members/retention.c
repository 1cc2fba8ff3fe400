/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "commit.h"
#include "config.h"
#include "log.h"
#include "members.h"
#include "meter.h"
#include "priorities.h"
#include "services.h"
#include "store.h"
#include "timer.h"
#include "util.h"

/* A step aims at this long on the loop: a tap arriving meanwhile waits at most about that.
 * Its size adapts to the machine (rows halve after a slow step, double after a quick one),
 * within these bounds; docs/performance.md has the figures. */
#define STEP_BUDGET_USEC 500
#define ROWS_MIN 16
#define ROWS_START 128
#define ROWS_MAX 4096
#define VACUUM_PAGES_MIN 16
#define VACUUM_PAGES_MAX 1024
/* After a step is on disk, the disk is left alone twice as long as the step and its sync
 * took (within these bounds): a tap's own commit then seldom meets the pass's sync in the
 * file system's journal (a write waits for a journal commit in progress). */
#define REST_MIN_USEC 2000
#define REST_MAX_USEC 200000
#define FIRST_PASS_USEC (10 * 60 * 1000000ull)
#define JOB_CALLS_MAX 8
#define ERASURES_RESUMED_MAX 64

enum job_kind { JOB_PRUNE, JOB_ERASE };

/* Prune phases: the tables of enum store_retention_table, then these. */
enum { PHASE_ACCOUNTS = RETENTION__MAX, PHASE_VACUUM, PHASE_DONE };
/* Erase phases. */
enum { PHASE_SCRUB, PHASE_FORGET, PHASE_ERASED };

struct job {
    enum job_kind kind;
    int phase;
    int64_t member_id;                  /* erase */
    json_t *fields;                     /* erase: the reply's fields */
    int64_t cutoff[RETENTION__MAX];     /* 0: keep that table */
    int64_t accounts_before;            /* 0: keep accounts */
    int64_t cursor, end;
    int64_t rows;                       /* rows a step walks now (adapted) */
    int pages;                          /* pages a vacuum step gives back now (adapted) */
    int64_t deleted[RETENTION__MAX], accounts, pages_freed, scrubbed, cards;
    int64_t started_at;
    uint64_t started_usec, longest_usec;
    unsigned steps;
    uint32_t *step_usec;                /* each step's duration, for the summary */
    size_t step_cap;
    struct cmd_call *calls[JOB_CALLS_MAX];
    unsigned n_calls;
    struct job *next;
};

struct retention {
    struct services *svc;
    struct timer *daily;
    sd_event_source *step;
    struct commit_wait durable;         /* the last step's batch, until it is on disk */
    bool waiting;
    uint64_t step_began_usec;
    struct timer *rest;                 /* the disk's rest between steps */
    struct job *jobs;                   /* the head runs; the others wait */
    json_t *last;                       /* the last pass's summary */
    int64_t next_at;
    bool vacuum_noted;
};

static void arm_next(struct retention *r, bool first);

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    json_decref(j->fields);
    free(j->step_usec);
    free(j);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile of the steps' durations (sorts them). */
static uint32_t step_percentile(struct job *j, unsigned p)
{
    size_t n = j->steps < j->step_cap ? j->steps : j->step_cap;

    if (!n || !j->step_usec)
        return 0;
    qsort(j->step_usec, n, sizeof(*j->step_usec), cmp_u32);
    return j->step_usec[(n - 1) * p / 100];
}

static void on_call_gone(struct cmd_call *call, void *userdata)
{
    struct retention *r = userdata;

    for (struct job *j = r->jobs; j; j = j->next)
        for (unsigned i = 0; i < j->n_calls; i++)
            if (j->calls[i] == call)
                j->calls[i] = NULL;     /* the work goes on; nobody waits for it */
}

static int job_wait(struct retention *r, struct job *j, struct cmd_call *call)
{
    if (!call)
        return 0;
    if (j->n_calls == JOB_CALLS_MAX)
        return cmd_fail(call, -EBUSY, "busy", "too many requests wait for this pass; try later");
    j->calls[j->n_calls++] = call;
    cmd_on_cancel(call, on_call_gone, r);
    return CMD_PENDING;
}

static void queue(struct retention *r, struct job *j)
{
    struct job **p = &r->jobs;

    while (*p)
        p = &(*p)->next;
    *p = j;
    j->started_usec = now_mono_usec();
    j->rows = ROWS_START;
    j->pages = VACUUM_PAGES_MIN;
    if (!r->waiting)
        sd_event_source_set_enabled(r->step, SD_EVENT_ON);
}

static json_t *prune_summary(struct job *j)
{
    json_t *deleted = json_object();

    for (int t = 0; t < RETENTION__MAX; t++)
        json_object_set_new(deleted, store_retention_table_name(t), json_integer(j->deleted[t]));
    json_t *o = json_pack("{s:o, s:I, s:I, s:f, s:I, s:I, s:I, s:I}", "deleted", deleted,
                          "accounts", (json_int_t)j->accounts, "pages_freed",
                          (json_int_t)j->pages_freed, "seconds",
                          (double)(now_mono_usec() - j->started_usec) / 1e6, "steps",
                          (json_int_t)j->steps, "step_us_p50",
                          (json_int_t)step_percentile(j, 50), "step_us_p99",
                          (json_int_t)step_percentile(j, 99), "longest_step_us",
                          (json_int_t)j->longest_usec);
    members_json_time(o, "at", j->started_at);
    return o;
}

/* The head job is over (r < 0: failed): answer whoever waits, and go on with the next. */
static void job_end(struct retention *r, int err)
{
    struct job *j = r->jobs;

    r->jobs = j->next;
    if (j->kind == JOB_PRUNE && err == 0) {
        json_decref(r->last);
        r->last = prune_summary(j);
        log_info("retention: deleted %" PRId64 " access events, %" PRId64 " presences, %" PRId64
                 " machine sessions, %" PRId64 " bookings, %" PRId64 " idle accounts; %" PRId64
                 " pages given back; %u steps, the longest %" PRIu64 " us",
                 j->deleted[RETENTION_ACCESS_EVENTS], j->deleted[RETENTION_PRESENCE],
                 j->deleted[RETENTION_SESSIONS], j->deleted[RETENTION_BOOKINGS], j->accounts,
                 j->pages_freed, j->steps, j->longest_usec);
    } else if (j->kind == JOB_ERASE && err == 0) {
        log_info("member %" PRId64 ": erasure finished (%" PRId64 " card hashes erased from the "
                 "access log, %" PRId64 " cards deleted)", j->member_id, j->scrubbed, j->cards);
    } else {
        log_error("retention: %s stopped: %s (tried again %s)",
                  j->kind == JOB_PRUNE ? "the pass" : "an erasure", strerror(-err),
                  j->kind == JOB_PRUNE ? "at the next pass" : "at the next start");
    }
    for (unsigned i = 0; i < j->n_calls; i++) {
        struct cmd_call *call = j->calls[i];
        if (!call)
            continue;
        if (err < 0) {
            cmd_fail(call, err, "store", "cannot finish: %s", strerror(-err));
        } else if (j->kind == JOB_PRUNE) {
            cmd_ok(call, prune_summary(j));
        } else {
            json_t *f = j->fields ? json_deep_copy(j->fields) : json_object();
            json_object_set_new(f, "scrubbed", json_integer(j->scrubbed));
            json_object_set_new(f, "cards", json_integer(j->cards));
            cmd_ok(call, f);
        }
        cmd_finish(call);
    }
    job_free(j);
    if (!r->jobs)
        sd_event_source_set_enabled(r->step, SD_EVENT_OFF);
}

/* ---- one step of a pass ---- */

static int prune_step(struct retention *r, struct job *j)
{
    struct store *store = r->svc->store;
    bool more = false;
    int64_t left;
    int n;

    if (j->phase < RETENTION__MAX) {
        if (!j->cutoff[j->phase]) {
            j->phase++;
            return 0;
        }
        n = store_retention_step(store, j->phase, j->cutoff[j->phase], j->rows, &j->cursor,
                                 &more);
        if (n < 0)
            return n;
        j->deleted[j->phase] += n;
        if (!more) {
            j->phase++;
            j->cursor = 0;
        }
        return 0;
    }
    if (j->phase == PHASE_ACCOUNTS) {
        j->phase++;
        if (!j->accounts_before)
            return 0;
        n = store_accounts_prune_inactive(store, j->accounts_before);
        if (n > 0)
            log_info("retention: %d member web account(s) unused for %" PRId64 " days deleted", n,
                     r->svc->cfg->privacy.account_inactive_days);
        j->accounts += n > 0 ? n : 0;
        return n < 0 ? n : 0;
    }
    if (j->phase == PHASE_VACUUM) {
        int mode = store_auto_vacuum(store);
        if (mode != 2) {
            if (mode >= 0 && !r->vacuum_noted)
                log_notice("retention: the database does not give freed space back "
                           "(auto_vacuum is off): SQLite reuses it; see docs/privacy.md to switch");
            r->vacuum_noted = true;
            j->phase++;
            return mode < 0 ? mode : 0;
        }
        int64_t before = store_free_pages(store);
        if (before <= 0) {
            j->phase++;
            return before < 0 ? (int)before : 0;
        }
        left = store_vacuum_step(store, j->pages);
        if (left < 0)
            return (int)left;
        j->pages_freed += before - left;
        if (left == 0 || left >= before)
            j->phase++;
        return 0;
    }
    j->phase = PHASE_DONE;
    return 0;
}

static int erase_step(struct retention *r, struct job *j)
{
    struct store *store = r->svc->store;
    int n;

    if (j->phase == PHASE_SCRUB) {
        if (j->cursor > j->end) {
            j->phase = PHASE_FORGET;
            return 0;
        }
        n = store_erase_scrub_step(store, j->member_id, j->cursor, j->cursor + j->rows - 1);
        if (n < 0)
            return n;
        j->scrubbed += n;
        j->cursor += j->rows;
        return 0;
    }
    /* The taps recorded since the walk began, then the cards: in one step, so that no tap
     * comes between. */
    int64_t last = store_events_last_id(store);
    if (last < 0)
        return (int)last;
    if (last >= j->cursor) {
        n = store_erase_scrub_step(store, j->member_id, j->cursor, last);
        if (n < 0)
            return n;
        j->scrubbed += n;
    }
    n = store_member_forget_cards(store, j->member_id);
    if (n < 0)
        return n;
    j->cards = n;
    j->phase = PHASE_ERASED;
    return 0;
}

/* The next step's size, from how long this one took. */
static void adapt(struct job *j, uint64_t took)
{
    if (took > STEP_BUDGET_USEC) {
        j->rows = j->rows / 2 > ROWS_MIN ? j->rows / 2 : ROWS_MIN;
        j->pages = j->pages / 2 > VACUUM_PAGES_MIN ? j->pages / 2 : VACUUM_PAGES_MIN;
    } else if (took < STEP_BUDGET_USEC / 3) {
        j->rows = j->rows * 2 < ROWS_MAX ? j->rows * 2 : ROWS_MAX;
        j->pages = j->pages * 2 < VACUUM_PAGES_MAX ? j->pages * 2 : VACUUM_PAGES_MAX;
    }
}

static void on_rested(void *userdata)
{
    struct retention *r = userdata;

    r->waiting = false;
    if (r->jobs)
        sd_event_source_set_enabled(r->step, SD_EVENT_ON);
}

/* The step's writes are on disk: after a rest, the next step may go. */
static void on_step_durable(struct commit_wait *w, int result)
{
    struct retention *r = container_of(w, struct retention, durable);
    uint64_t rest = 2 * (now_mono_usec() - r->step_began_usec);

    if (result < 0 && r->jobs)
        job_end(r, result);
    if (rest < REST_MIN_USEC)
        rest = REST_MIN_USEC;
    if (rest > REST_MAX_USEC)
        rest = REST_MAX_USEC;
    if (!r->jobs || timer_arm_in(r->rest, rest) < 0)
        on_rested(r);           /* nothing left, or no timer: go on at once */
}

static int on_step(sd_event_source *s, void *userdata)
{
    struct retention *r = userdata;
    struct job *j = r->jobs;
    uint64_t t0 = now_mono_usec(), took;
    int err;

    if (!j) {
        sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
    }
    int phase = j->phase;
    err = j->kind == JOB_PRUNE ? prune_step(r, j) : erase_step(r, j);
    took = now_mono_usec() - t0;
    if (took > 20 * STEP_BUDGET_USEC)
        log_debug("retention: a step of phase %d took %" PRIu64 " us", phase, took);
    adapt(j, took);
    if (j->steps >= j->step_cap && j->step_cap < (1u << 20)) {
        size_t cap = j->step_cap ? 2 * j->step_cap : 1024;
        uint32_t *v = realloc(j->step_usec, cap * sizeof(*v));
        if (v) {
            j->step_usec = v;
            j->step_cap = cap;
        }
    }
    if (j->steps < j->step_cap)
        j->step_usec[j->steps] = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
    j->steps++;
    if (took > j->longest_usec)
        j->longest_usec = took;
    if (err < 0)
        job_end(r, err);
    else if ((j->kind == JOB_PRUNE && j->phase >= PHASE_DONE) ||
             (j->kind == JOB_ERASE && j->phase == PHASE_ERASED))
        job_end(r, 0);
    /* Paced by the disk: the next step waits until this one's batch is durable, so that
     * the pass never piles up dirty pages the kernel would make the loop wait for. */
    if (store_in_batch(r->svc->store) && r->jobs && !r->waiting &&
        !commit_wait(r->svc->commit, &r->durable, on_step_durable)) {
        r->waiting = true;
        r->step_began_usec = t0;
        sd_event_source_set_enabled(s, SD_EVENT_OFF);
    }
    return 0;
}

/* ---- starting a pass ---- */

/* When the oldest billing period not yet closed began, among the current one and the one
 * before: rows from then on may still be needed to settle it. */
static int64_t open_period_start(struct retention *r, int64_t now)
{
    char day[11], period[16], first[11], last[11];
    bool closed = false;
    int y = 0, mo = 0;
    int64_t t;

    meter_billing_day(r->svc->meter, now, day);
    if (sscanf(day, "%4d-%2d", &y, &mo) != 2)
        return now;
    if (--mo == 0) {
        mo = 12;
        y--;
    }
    snprintf(period, sizeof(period), "%04d-%02d", y % 10000, mo % 100);
    if (store_period_is_closed(r->svc->store, period) == 1)
        closed = true;
    if (closed)
        snprintf(period, sizeof(period), "%.7s", day);
    if (period_days(period, first, last) < 0 || parse_time(first, &t) < 0)
        return now;
    return members_billing_day_start(t, (int)r->svc->cfg->metering.day_starts);
}

static int64_t cutoff_of(int64_t now, int64_t days)
{
    return days > 0 ? now - days * 86400 : 0;
}

int retention_prune(struct retention *r, struct cmd_call *call)
{
    const struct privacy_config *pc = &r->svc->cfg->privacy;
    int64_t now = now_utc(), keep_from;
    struct job *j;

    for (j = r->jobs; j; j = j->next)
        if (j->kind == JOB_PRUNE)
            return job_wait(r, j, call);        /* one pass at a time: join it */
    j = calloc(1, sizeof(*j));
    if (!j)
        return call ? cmd_fail(call, -ENOMEM, "internal", "out of memory") : -ENOMEM;
    j->kind = JOB_PRUNE;
    j->started_at = now;
    keep_from = open_period_start(r, now);
    j->cutoff[RETENTION_ACCESS_EVENTS] = cutoff_of(now, pc->access_log_days);
    j->cutoff[RETENTION_PRESENCE] = cutoff_of(now, pc->presence_days);
    j->cutoff[RETENTION_SESSIONS] = cutoff_of(now, pc->presence_days);
    j->cutoff[RETENTION_BOOKINGS] = cutoff_of(now, pc->presence_days);
    for (int t = RETENTION_ACCESS_EVENTS; t <= RETENTION_SESSIONS; t++)
        if (j->cutoff[t] > keep_from)
            j->cutoff[t] = keep_from;
    j->accounts_before = cutoff_of(now, pc->account_inactive_days);
    queue(r, j);
    log_info("retention: pass started (access log %" PRId64 " days, presence %" PRId64
             " days, accounts %" PRId64 " days)", pc->access_log_days, pc->presence_days,
             pc->account_inactive_days);
    return job_wait(r, j, call);
}

int retention_erase(struct retention *r, int64_t member_id, struct cmd_call *call, json_t *fields)
{
    struct job *j = calloc(1, sizeof(*j));
    int64_t first, last;

    if (!j) {
        json_decref(fields);
        return call ? cmd_fail(call, -ENOMEM, "internal", "out of memory") : -ENOMEM;
    }
    first = store_events_first_id(r->svc->store);
    last = store_events_last_id(r->svc->store);
    if (first < 0 || last < 0) {
        int err = first < 0 ? (int)first : (int)last;
        json_decref(fields);
        free(j);
        return call ? cmd_fail(call, err, "store", "cannot read the access log: %s",
                               strerror(-err)) : err;
    }
    j->kind = JOB_ERASE;
    j->member_id = member_id;
    j->fields = fields;
    j->cursor = first;
    j->end = last;
    j->started_at = now_utc();
    queue(r, j);
    return job_wait(r, j, call);
}

/* ---- the daily timer ---- */

static void on_daily(void *userdata)
{
    struct retention *r = userdata;

    retention_prune(r, NULL);
    arm_next(r, false);
}

static void arm_next(struct retention *r, bool first)
{
    int64_t now = now_utc(), at;
    struct tm tm;
    time_t tt = (time_t)now;
    int rc;

    localtime_r(&tt, &tm);
    tm.tm_hour = 0;
    tm.tm_sec = 0;
    tm.tm_min = (int)r->svc->cfg->privacy.prune_at;
    tm.tm_isdst = -1;
    at = (int64_t)mktime(&tm);
    if (at <= now) {
        tm.tm_mday++;
        tm.tm_hour = 0;
        tm.tm_min = (int)r->svc->cfg->privacy.prune_at;
        tm.tm_isdst = -1;
        at = (int64_t)mktime(&tm);
    }
    if (first && at > now + (int64_t)(FIRST_PASS_USEC / 1000000))
        at = now + (int64_t)(FIRST_PASS_USEC / 1000000);
    r->next_at = at;
    rc = timer_arm_at(r->daily, realtime_usec_for(at));
    if (rc < 0)
        log_error("retention: cannot schedule the next pass: %s", strerror(-rc));
}

/* ---- status ---- */

json_t *retention_status(struct retention *r)
{
    const struct privacy_config *pc = &r->svc->cfg->privacy;
    int mode = store_auto_vacuum(r->svc->store);
    char at[32];
    json_t *o;

    snprintf(at, sizeof(at), "%02d:%02d", (int)(pc->prune_at / 60 % 24), (int)(pc->prune_at % 60));
    o = json_pack("{s:I, s:I, s:I, s:s, s:s, s:I, s:b, s:O?}", "access_log_days",
                  (json_int_t)pc->access_log_days, "presence_days",
                  (json_int_t)pc->presence_days, "account_inactive_days",
                  (json_int_t)pc->account_inactive_days, "prune_at", at, "auto_vacuum",
                  mode == 2 ? "incremental" : mode == 1 ? "full" : "none", "free_pages",
                  (json_int_t)store_free_pages(r->svc->store), "running", r->jobs != NULL,
                  "last_pass", r->last);
    members_json_time(o, "next_pass_at", r->next_at);
    return o;
}

/* ---- life ---- */

int retention_new(struct services *svc, struct retention **ret)
{
    struct retention *r = calloc(1, sizeof(*r));
    int64_t pending[ERASURES_RESUMED_MAX];
    int n, rc;

    if (!r)
        return -ENOMEM;
    r->svc = svc;
    rc = timer_new(svc->loop, CLOCK_REALTIME, 1000000, on_daily, r, &r->daily);
    if (rc == 0)
        rc = timer_new(svc->loop, CLOCK_MONOTONIC, 1, on_rested, r, &r->rest);
    if (rc == 0)
        rc = sd_event_add_defer(svc->loop, &r->step, on_step, r);
    if (rc == 0)
        rc = sd_event_source_set_priority(r->step, PRIORITY_IDLE);
    if (rc == 0)
        rc = sd_event_source_set_enabled(r->step, SD_EVENT_OFF);
    if (rc < 0) {
        retention_free(r);
        return rc;
    }
    arm_next(r, true);
    n = store_erasures_pending(svc->store, pending, ERASURES_RESUMED_MAX);
    for (int i = 0; i < n; i++) {
        log_info("member %" PRId64 ": finishing an erasure interrupted by a restart", pending[i]);
        retention_erase(r, pending[i], NULL, NULL);
    }
    if (n < 0)
        log_error("retention: cannot look for unfinished erasures: %s", strerror(-n));
    *ret = r;
    return 0;
}

struct retention *retention_free(struct retention *r)
{
    if (!r)
        return NULL;
    while (r->jobs) {
        struct job *j = r->jobs;
        r->jobs = j->next;
        for (unsigned i = 0; i < j->n_calls; i++)
            if (j->calls[i]) {
                cmd_fail(j->calls[i], -ECANCELED, "cancelled", "portierd is stopping");
                cmd_finish(j->calls[i]);
            }
        job_free(j);
    }
    if (r->waiting)
        commit_wait_cancel(r->svc->commit, &r->durable);
    r->daily = timer_free(r->daily);
    r->rest = timer_free(r->rest);
    sd_event_source_disable_unref(r->step);
    json_decref(r->last);
    free(r);
    return NULL;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "commit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "realtime.h"
#include "timer.h"
#include "util.h"
#include "wakeup.h"

/* A WAL this long is copied back into the database by the sync thread (1 KiB pages: about
 * 4 MiB). Between checkpoints the loop never syncs; at the first write after a complete
 * checkpoint SQLite rewrites and syncs the WAL header once. */
#define CHECKPOINT_FRAMES 4000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 10000
#define REMIND_USEC (60 * 1000000ull)

struct commit {
    sd_event *loop;
    struct store *store;
    char db_path[PATH_MAX];
    sd_event_source *defer;         /* the commit, once the loop has handled what is ready */
    struct wakeup *synced;          /* the thread's: a sync is over */
    struct timer *retry;            /* writing held events again after a failure */
    int wal_fd;
    void (*on_durable)(void *userdata);
    void (*on_health)(void *userdata);
    void *userdata;

    /* Shared with the thread, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_running, stop;
    uint64_t want;                  /* the newest committed batch to make durable */
    struct store_marks want_marks;
    int want_frames;
    uint64_t done;                  /* the newest batch the thread has synced (or tried) */
    struct store_marks done_marks;
    uint64_t failed_upto;           /* syncs that failed since the loop last looked */
    uint64_t checkpoint_failures;   /* the thread's own count */
    int failed_error;

    /* The loop's own. */
    uint64_t durable;               /* every batch up to this one is on disk (or failed) */
    uint64_t last_failed;           /* the newest batch that failed */
    struct commit_wait *waiters;
    struct commit_health health;
    unsigned retry_ms;
    uint64_t last_reminder_usec;
};

/* ---- the sync thread ---- */

static void *sync_main(void *arg)
{
    struct commit *c = arg;
    struct store_checkpointer *ckpt = NULL;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->stop && c->want == c->done)
            pthread_cond_wait(&c->cond, &c->lock);
        if (c->want == c->done)
            break;          /* stopping, and nothing left to sync */
        uint64_t target = c->want;
        struct store_marks marks = c->want_marks;
        int frames = c->want_frames;
        pthread_mutex_unlock(&c->lock);

        /* Any descriptor of the file will do: fdatasync() writes the inode's dirty pages,
         * whoever wrote them. */
        int r = fdatasync(c->wal_fd) < 0 ? -errno : 0;
        if (r == 0 && frames >= CHECKPOINT_FRAMES) {
            /* Opened here, on first use: a connection belongs to the thread that uses it.
             * If it cannot be opened, the next sync tries again; the WAL grows meanwhile. */
            if (!ckpt && store_checkpointer_open(c->db_path, &ckpt) < 0)
                ckpt = NULL;
            /* A checkpoint that fails (busy, a full disk) is tried again at the next sync;
             * the WAL keeps everything meanwhile. */
            if (ckpt && store_checkpointer_run(ckpt) < 0)
                c->checkpoint_failures++;
        }

        pthread_mutex_lock(&c->lock);
        c->done = target;
        if (r == 0) {
            c->done_marks = marks;
        } else {
            c->failed_upto = target;
            c->failed_error = r;
        }
        pthread_cond_broadcast(&c->cond);      /* commit_flush() may be waiting */
        wakeup_signal(c->synced);
    }
    pthread_mutex_unlock(&c->lock);
    store_checkpointer_close(ckpt);
    return NULL;
}

static void request_sync(struct commit *c)
{
    struct store_marks marks;

    store_marks_committed(c->store, &marks);
    pthread_mutex_lock(&c->lock);
    if (store_committed(c->store) > c->want) {
        c->want = store_committed(c->store);
        c->want_marks = marks;
        c->want_frames = store_wal_frames(c->store);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- waiters ---- */

/* Answer the waiters whose ticket is <= upto (result 0) or == batch of a failure. */
static void answer(struct commit *c, bool (*match)(const struct commit_wait *w, uint64_t v),
                   uint64_t v, int result)
{
    struct commit_wait **pp = &c->waiters, *ready = NULL, **tail = &ready;

    /* Unlink first: a done callback may park or cancel other waiters. */
    while (*pp) {
        struct commit_wait *w = *pp;
        if (match(w, v)) {
            *pp = w->next;
            w->next = NULL;
            *tail = w;
            tail = &w->next;
        } else {
            pp = &w->next;
        }
    }
    while (ready) {
        struct commit_wait *w = ready;
        ready = w->next;
        w->next = NULL;
        w->done(w, result);
    }
}

static bool ticket_upto(const struct commit_wait *w, uint64_t v) { return w->ticket <= v; }
static bool ticket_is(const struct commit_wait *w, uint64_t v) { return w->ticket == v; }

bool commit_wait(struct commit *c, struct commit_wait *w, commit_done_fn done)
{
    struct commit_wait **pp;

    if (!c)
        return true;
    w->ticket = store_ticket(c->store);
    w->done = done;
    w->next = NULL;
    if (w->ticket <= c->durable)
        return true;
    /* A commit made outside the loop's own (store_secret, say) is synced on demand. */
    if (!store_in_batch(c->store))
        request_sync(c);
    for (pp = &c->waiters; *pp; pp = &(*pp)->next)
        ;
    *pp = w;
    return false;
}

void commit_wait_cancel(struct commit *c, struct commit_wait *w)
{
    if (!c)
        return;
    for (struct commit_wait **pp = &c->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            return;
        }
}

/* ---- health ---- */

static void health_changed(struct commit *c)
{
    c->health.held_events = store_held_count(c->store);
    c->health.dropped_events = store_held_dropped(c->store);
    if (c->on_health)
        c->on_health(c->userdata);
}

static void arm_retry(struct commit *c)
{
    int r;

    if (c->retry_ms == 0)
        c->retry_ms = RETRY_MIN_MS;
    r = timer_arm_in(c->retry, c->retry_ms * 1000ull);
    if (r < 0)
        log_error("storage: cannot schedule the next write attempt: %s", strerror(-r));
    c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
}

static void failure(struct commit *c, const char *what, int error)
{
    uint64_t now = now_mono_usec();
    bool first = c->health.ok;

    c->health.ok = false;
    c->health.error = error;
    if (first) {
        c->health.failing_since = now_utc();
        log_error("storage: cannot %s the database: %s. Nothing is being recorded: doors keep "
                  "deciding by policy, access events are held in memory (up to %d) and "
                  "written when the disk works again; other changes are refused",
                  what, strerror(-error), STORE_HELD_MAX);
        c->last_reminder_usec = now;
    } else if (now - c->last_reminder_usec > REMIND_USEC) {
        log_error("storage: still failing (%s): %" PRIu64 " batches lost, %u access events "
                  "held, %" PRIu64 " dropped", strerror(-error), c->health.failed_batches,
                  store_held_count(c->store), store_held_dropped(c->store));
        c->last_reminder_usec = now;
    }
    arm_retry(c);
    if (first)      /* the alarm is raised once: systemd's status and MQTT hear transitions */
        health_changed(c);
}

/* A batch is on disk: the alarm ends once nothing is held any more. */
static void maybe_recovered(struct commit *c)
{
    if (c->health.ok || store_held_count(c->store) > 0 || c->durable < c->last_failed)
        return;
    c->health.ok = true;
    c->retry_ms = 0;
    log_notice("storage: recovered; the database records again (%" PRIu64 " batches were "
               "lost, %" PRIu64 " access events dropped)", c->health.failed_batches,
               store_held_dropped(c->store));
    health_changed(c);
}

static void on_batch_failed(uint64_t batch, int error, void *userdata)
{
    struct commit *c = userdata;

    c->health.failed_batches++;
    c->last_failed = batch;
    answer(c, ticket_is, batch, error);
    failure(c, "write", error);
}

static void retry_due(void *userdata)
{
    struct commit *c = userdata;
    /* Write what is held; with nothing held, a one-page write tells whether the disk works
     * again (its commit ends the alarm once it is synced). */
    int r = store_held_flush(c->store);
    if (r == 0 && !store_in_batch(c->store))
        r = store_probe(c->store);
    if (r < 0)
        failure(c, "write", r);
    if (!c->health.ok)
        arm_retry(c);
}

/* ---- the loop side ---- */

static int commit_due(sd_event_source *s, void *userdata)
{
    struct commit *c = userdata;

    if (store_commit(c->store) == 0) {     /* failures come through on_batch_failed */
        c->health.commits++;
        request_sync(c);
    }
    return 0;
}

static void on_dirty(void *userdata)
{
    struct commit *c = userdata;
    sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static void take_results(void *userdata)
{
    struct commit *c = userdata;
    uint64_t done, failed_upto;
    struct store_marks marks;
    int failed_error;

    pthread_mutex_lock(&c->lock);
    done = c->done;
    marks = c->done_marks;
    failed_upto = c->failed_upto;
    failed_error = c->failed_error;
    c->failed_upto = 0;
    pthread_mutex_unlock(&c->lock);

    if (failed_upto) {
        /* fdatasync() failed: what it covered may be lost (the kernel may have dropped the
         * pages). Say so to everyone waiting on it. */
        c->health.sync_failures++;
        c->last_failed = failed_upto > c->last_failed ? failed_upto : c->last_failed;
        if (failed_upto > c->durable)
            c->durable = failed_upto;
        answer(c, ticket_upto, failed_upto, failed_error);
        failure(c, "sync", failed_error);
    }
    if (done > c->durable && done > failed_upto) {
        c->durable = done;
        c->health.syncs++;
        store_set_durable(c->store, &marks);
        answer(c, ticket_upto, done, 0);
        maybe_recovered(c);
        if (c->on_durable)
            c->on_durable(c->userdata);
    }
}

int commit_flush(struct commit *c)
{
    int r;

    if (!c)
        return 0;
    r = store_commit(c->store);
    if (r == 0) {
        c->health.commits++;
        request_sync(c);
    }
    pthread_mutex_lock(&c->lock);
    while (c->thread_running && c->done < c->want)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    take_results(c);
    return r < 0 ? r : c->health.ok ? 0 : c->health.error;
}

static int open_wal(const char *db_path)
{
    char path[PATH_MAX + 8];

    if (snprintf(path, sizeof(path), "%s-wal", db_path) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int commit_new(sd_event *loop, struct store *store, const char *db_path,
               void (*on_durable)(void *userdata), void (*on_health)(void *userdata),
               void *userdata, struct commit **ret)
{
    struct store_hooks hooks = { .dirty = on_dirty, .failed = on_batch_failed };
    struct store_marks marks;
    struct commit *c;
    int r;

    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = sd_event_ref(loop);
    c->store = store;
    c->wal_fd = -1;
    c->on_durable = on_durable;
    c->on_health = on_health;
    c->userdata = userdata;
    c->health.ok = true;
    (void)realtime_mutex_init(&c->lock);     /* never fails on Linux */
    pthread_cond_init(&c->cond, NULL);
    if (strlcpy_checked(c->db_path, db_path, sizeof(c->db_path)) < 0) {
        r = -ENAMETOOLONG;
        goto fail;
    }
    /* Whatever is committed now (a previous run's last batches) is made durable first. */
    r = store_commit(store);
    if (r < 0)
        goto fail;
    r = store_defer_sync(store);
    if (r < 0)
        goto fail;
    c->wal_fd = open_wal(db_path);
    if (c->wal_fd < 0) {
        r = c->wal_fd;
        goto fail;
    }
    if (fdatasync(c->wal_fd) < 0 || (r = file_sync_dir(db_path)) < 0) {
        r = r < 0 ? r : -errno;
        goto fail;
    }
    c->durable = c->want = c->done = store_committed(store);
    store_marks_committed(store, &marks);
    store_set_durable(store, &marks);

    if ((r = sd_event_add_defer(loop, &c->defer, commit_due, c)) < 0 ||
        (r = wakeup_new(loop, COMMIT_PRIORITY, take_results, c, &c->synced)) < 0 ||
        (r = timer_new(loop, CLOCK_MONOTONIC, 1000, retry_due, c, &c->retry)) < 0)
        goto fail;
    sd_event_source_set_priority(c->defer, COMMIT_PRIORITY);
    sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
    r = -pthread_create(&c->thread, NULL, sync_main, c);
    if (r < 0)
        goto fail;
    c->thread_running = true;
    hooks.userdata = c;
    store_set_hooks(store, &hooks);
    *ret = c;
    return 0;
fail:
    commit_free(c);
    return r;
}

struct commit *commit_free(struct commit *c)
{
    struct store_hooks none = { 0 };

    if (!c)
        return NULL;
    if (c->thread_running) {
        commit_flush(c);
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        take_results(c);
        store_set_hooks(c->store, &none);
    }
    /* Nobody is left hanging: what is still waiting did not make it to disk. */
    answer(c, ticket_upto, UINT64_MAX, -ECANCELED);
    sd_event_source_disable_unref(c->defer);
    wakeup_free(c->synced);
    timer_free(c->retry);
    if (c->wal_fd >= 0)
        close(c->wal_fd);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    sd_event_unref(c->loop);
    free(c);
    return NULL;
}

void commit_get_health(const struct commit *c, struct commit_health *ret)
{
    *ret = c->health;
    ret->held_events = store_held_count(c->store);
    ret->dropped_events = store_held_dropped(c->store);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* commit: the store's batches made durable without the event loop ever waiting for a disk.
 *
 * The loop commits each batch (a write into the WAL, no fsync: store_defer_sync()), then a
 * sync thread makes it durable: fdatasync() of the WAL, and checkpoints on a connection of
 * its own when the WAL grows. Whoever must not answer before what it did is on disk (a
 * control reply, a web response) parks a `struct commit_wait` for the store's current
 * ticket and hears, on the loop, 0 once that batch is durable or -errno if it could not be
 * written. MQTT and the consortium are kicked once new rows are durable, and send nothing
 * beyond (store_set_durable()).
 *
 * A batch that fails (a full or failing SD card) turns every answer waiting on it into an
 * error and raises an alarm — the log, `status`, /healthz and MQTT — until a later batch is
 * durable again and every held access event is written. The doors keep deciding by policy
 * meanwhile: nothing here is on the path to a relay. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "priorities.h"
#include "store.h"

/* Runs after the loop has handled what is ready (taps, inputs), before replies go out. */
#define COMMIT_PRIORITY PRIORITY_COMMIT

struct commit;
struct commit_wait;

/* result: 0 when what the waiter depends on is durable, -errno when it was not recorded. */
typedef void (*commit_done_fn)(struct commit_wait *w, int result);

/* Embedded in the waiter's own object (find it back with container_of). */
struct commit_wait {
    struct commit_wait *next;
    uint64_t ticket;
    commit_done_fn done;
};

struct commit_health {
    bool ok;                    /* false while the last batch failed or events are held */
    int error;                  /* the last failure, -errno (0: none since start) */
    int64_t failing_since;      /* UTC seconds of the first failure of this streak, or 0 */
    uint64_t commits, syncs, failed_batches, sync_failures;
    unsigned held_events;       /* access events waiting in memory to be written */
    uint64_t dropped_events;    /* access events lost because that memory was full */
};

/* Take over the store's batches: defers its syncs and installs its hooks. db_path is the
 * store's file (the thread opens its WAL and a connection for checkpoints). on_durable is
 * called on the loop when new rows became durable (NULL: none). 0 or -errno. */
int commit_new(sd_event *loop, struct store *store, const char *db_path,
               void (*on_durable)(void *userdata), void (*on_health)(void *userdata),
               void *userdata, struct commit **ret);
/* Commit and sync what is pending (blocking: start-up and shutdown only), answer every
 * waiter, stop the thread. NULL-safe; returns NULL. */
struct commit *commit_free(struct commit *c);

/* Commit the open batch and sync it now, blocking. 0 or -errno. */
int commit_flush(struct commit *c);

/* Park w until what the store holds now is durable. Returns false and parks it (done
 * runs later, on the loop), or returns true without parking when nothing is pending
 * (the caller goes on at once; done is not called). With c NULL, always true. */
bool commit_wait(struct commit *c, struct commit_wait *w, commit_done_fn done);
/* Unpark w (its owner goes away). NULL-safe on c; no-op if w is not parked. */
void commit_wait_cancel(struct commit *c, struct commit_wait *w);

void commit_get_health(const struct commit *c, struct commit_health *ret);

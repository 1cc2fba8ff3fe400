/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* offload: disk work off the event loop.
 *
 * Nothing on the loop may wait for the disk (docs/architecture.md): a write that must be
 * durable before it is acknowledged — an fsync'd file, a directory entry — is handed to
 * offload_run(). One thread, started at the first job, runs the jobs one at a time in the
 * order they were given; each job's done() then runs on the loop with the work's result.
 * The commits of the database have their own thread (daemon/commit.h); this one is for
 * files (period archives) and for waiting on a job process that reads what grows with the
 * site (a period's statement, billing_period_read()).
 *
 * work() runs on the thread: it may block, but must not touch the loop, the loop's store
 * or anything else the loop owns; it sees only its arg (and what never changes while the
 * offload lives, such as the meter's key). done() runs on the loop, once, for
 * every job accepted, and may give new jobs.
 *
 * Without an offload (NULL: a test or a fuzz harness that wires only some services),
 * offload_run() runs work() and done() at once, in the caller. */
#pragma once
#include <systemd/sd-event.h>

struct offload;

typedef int (*offload_work_fn)(void *arg);
typedef void (*offload_done_fn)(int result, void *arg);

/* 0 and *ret, or -errno. No thread is started until the first job. */
int offload_new(sd_event *loop, struct offload **ret);
/* Waits for the jobs given (the thread finishes them), runs their done() in the caller,
 * stops the thread. Returns NULL. */
struct offload *offload_free(struct offload *o);

/* Queue work(arg) for the thread, then done(result, arg) on the loop. 0, or -errno (no
 * memory, no thread): then neither runs, and arg is still the caller's. */
int offload_run(struct offload *o, offload_work_fn work, offload_done_fn done, void *arg);

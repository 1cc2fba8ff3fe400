/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* retention: deleting what is past its retention ([privacy] in the configuration), and
 * finishing an erasure, without holding the doors up.
 *
 * A daily timer ([privacy] prune_at, local time; and once ten minutes after start) only
 * starts a pass. The work itself runs on the event loop in small steps — one statement over
 * some rows, walked in id order, sized to take about half a millisecond on the machine at
 * hand — from an idle-priority source: everything else ready (a tap, a reply, a commit)
 * runs first, so a tap waits at most for the one step in progress, never for the pass. Each
 * step joins the store's batch like any write and is committed by commit.c; the next step
 * waits (off the loop's way) until that batch is on disk, so the pass goes at the disk's
 * pace and never piles up dirty pages the kernel would make the loop wait for. The loop is
 * the only writer: there is no second connection competing for SQLite's write lock
 * (docs/privacy.md explains the choice, docs/performance.md gives the figures).
 *
 * A pass: access log rows older than access_log_days, closed presences, ended machine
 * sessions and past bookings older than presence_days — except what a billing period not
 * yet closed may still need (the current period, and the previous one until it is closed) —
 * member accounts unused for account_inactive_days, then, when the database allows it
 * (PRAGMA auto_vacuum = INCREMENTAL), the freed pages given back to the file system a few
 * hundred at a time. Usage records and the ledger are never deleted: statements of closed
 * periods do not change.
 *
 * An erasure (member erase): the member's personal fields are replaced at once by the
 * command; this module then erases the card hashes of its taps from the access log in the
 * same small steps, and deletes its cards last. An erasure interrupted by a restart is
 * finished at the next start. */
#pragma once
#include <jansson.h>
#include <stdint.h>

struct services;
struct cmd_call;
struct retention;

/* The timer and the step source on svc->loop; resumes interrupted erasures. 0 or -errno. */
int retention_new(struct services *svc, struct retention **ret);
/* Stops (an unfinished pass or erasure is resumed at the next start). NULL-safe. */
struct retention *retention_free(struct retention *r);

/* Start a pass now (or join the one running). call, if not NULL, is finished with the
 * pass's counts when it ends ({"deleted": {...}, "accounts", "pages_freed", "seconds",
 * "steps", "longest_step_us"}). Returns CMD_PENDING (call given), 0, or -errno. */
int retention_prune(struct retention *r, struct cmd_call *call);

/* Finish the erasure of member_id (its fields are already erased): scrub its taps' card
 * hashes, then delete its cards. call, if not NULL, is finished when done, with fields
 * (stolen; may be NULL) plus "scrubbed" and "cards". Returns CMD_PENDING (call given), 0,
 * or -errno. */
int retention_erase(struct retention *r, int64_t member_id, struct cmd_call *call, json_t *fields);

/* The retention in force and the last pass, for `status` and /privacy (new reference). */
json_t *retention_status(struct retention *r);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* billing: statements, and the job processes that build them (and verify the ledger) off
 * the event loop. The commands of metering are in billing_commands.c. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "meter.h"
#include "store.h"

struct cmd_call;
/* Start a job process ("statement", "verify", "export", "members", "cards" or "uid-only")
 * that answers
 * call itself
 * (cmd_job_fd()). Returns CMD_PENDING, or the error the call was failed with. */
int billing_start_job(struct cmd_call *call, const char *kind, const char *period,
                      int64_t member_id);
/* The same with what the job needs beyond the database, as JSON (borrowed; NULL: none):
 * an export's site and retention (members_export()). */
int billing_start_job_info(struct cmd_call *call, const char *kind, const char *period,
                           int64_t member_id, json_t *info);

/* Where a job's program is: $PORTIER_JOB_PROGRAM (a test harness that embeds the daemon),
 * else portierd itself. 0 or -errno. */
int billing_job_program(char *buf, size_t n);

/* Read period "YYYY-MM" for its close in a job process (program: billing_job_program()),
 * waiting for it: for a thread, never the loop. The job reads the database at one moment
 * through its own connection, and the daemon's memory never holds the month's records.
 * info: {"closed_at": N, "public_key": HEX}, JSON. 0 with *ret_head {"ok": true,
 * "usage_last", "last_seq", "last_hash", "totals"} and *ret_text the archive's bytes
 * (free()); or 0 with *ret_head {"ok": false, "code", "error"} and no text; or -errno. */
int billing_period_read(const char *program, const char *db, const char *period,
                        const char *site, const char *info, json_t **ret_head, char **ret_text);

/* `portierd --job statement|verify|export|members|cards|uid-only|period --db PATH [--period P] [--member N] [--site ID]
 * [--info JSON]`, with the client's socket as fd 3: what a job process runs. Returns the
 * exit status. */
int billing_job_main(int argc, char **argv);

/* The statement of period "YYYY-MM" (member 0: everyone) as JSON; NULL and *ret_error on
 * failure. */
json_t *billing_statement(struct store *store, const char *period, int64_t member_id,
                          const char **ret_error);

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
/* Start a job process ("statement", "verify" or "export") that answers call itself
 * (cmd_job_fd()). Returns CMD_PENDING, or the error the call was failed with. */
int billing_start_job(struct cmd_call *call, const char *kind, const char *period,
                      int64_t member_id);
/* The same with what the job needs beyond the database, as JSON (borrowed; NULL: none):
 * an export's site and retention (members_export()). */
int billing_start_job_info(struct cmd_call *call, const char *kind, const char *period,
                           int64_t member_id, json_t *info);

/* `portierd --job statement|verify|export --db PATH [--period P] [--member N] [--site ID]
 * [--info JSON]`, with the client's socket as fd 3: what a job process runs. Returns the
 * exit status. */
int billing_job_main(int argc, char **argv);

/* The statement of period "YYYY-MM" (member 0: everyone) as JSON; NULL and *ret_error on
 * failure. */
json_t *billing_statement(struct store *store, const char *period, int64_t member_id,
                          const char **ret_error);

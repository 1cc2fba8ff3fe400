/* billing: the control commands of metering — passes, plans' allowances and rates,
 * presence, statements, corrections, the ledger and period closing. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "control.h"
#include "meter.h"
#include "store.h"

/* Handle cmd if it is one of ours; state_dir receives period archives. */
bool billing_control(struct store *store, struct meter *meter, const char *state_dir,
                     struct control_conn *c, const char *cmd, json_t *req);

/* `portierd --job statement|verify --db PATH [--period P] [--member N] [--site ID]`, with the
 * client's socket as fd 3: what a job process runs. Returns the exit status. */
int billing_job_main(int argc, char **argv);

/* The statement of period "YYYY-MM" (member 0: everyone) as JSON; NULL and *ret_error on
 * failure. */
json_t *billing_statement(struct store *store, const char *period, int64_t member_id,
                          const char **ret_error);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* ledger_batch_json: the JSON envelope in which a ledger batch travels (MQTT); what is
 * signed is the text of ledger_batch.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger_batch.h"

/* The JSON text of b (entries, checkpoints and b->sig as they are). malloc()ed, NUL
 * terminated, *ret_len without the NUL; NULL on allocation failure or if too large. */
char *ledger_batch_to_json(const struct ledger_batch *b, size_t *ret_len);

/* Parse a payload into *b (which the caller allocates: it is large). 0, or -EBADMSG with
 * a short reason in why (for logs and the custodian's problem list). Checks the form only:
 * limits, contiguous sequence numbers, one site; not hashes or signatures. */
int ledger_batch_parse(const void *payload, size_t len, struct ledger_batch *b, char *why,
                       size_t why_n);

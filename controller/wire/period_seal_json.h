/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* period_seal_json: the JSON envelope in which a period seal travels (MQTT); what is
 * signed is the text of period_seal.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "period_seal.h"

/* The MQTT payload; the caller frees it. NULL on allocation failure. */
char *period_seal_to_json(const char *text, const uint8_t sig[PERIOD_SEAL_SIG_LEN],
                          size_t *ret_len);

/* Split a payload into its text (copied into text, NUL-terminated, at most
 * PERIOD_SEAL_TEXT_MAX bytes) and signature. -EMSGSIZE if too large, -EBADMSG if not of
 * that form. The text itself is not parsed here. */
int period_seal_from_json(const void *payload, size_t len, char text[PERIOD_SEAL_TEXT_MAX + 1],
                          uint8_t sig[PERIOD_SEAL_SIG_LEN]);

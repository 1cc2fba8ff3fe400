/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* passport_json: the JSON envelope in which a passport travels (MQTT); what is
 * signed is the text of passport.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "passport.h"

/* The MQTT payload of a text and its signature (by the site's ledger key): malloc()ed JSON, NUL terminated, *ret_len without the NUL;
 * NULL on allocation failure. */
char *passport_wrap(const char *text, size_t len, const uint8_t sig[PASSPORT_SIG_LEN],
                    size_t *ret_len);

/* Take a payload apart: copies the text (NUL terminated) into text (at least
 * PASSPORT_TEXT_MAX bytes) and the signature into sig. 0 or -EBADMSG. */
int passport_unwrap(const void *payload, size_t len, char *text, size_t *ret_text_len,
                    uint8_t sig[PASSPORT_SIG_LEN]);

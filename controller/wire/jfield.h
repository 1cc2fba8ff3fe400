/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* jfield: reading fields of JSON objects that are known to be well formed (replies of the
 * daemon, reports built here) without a NULL check at every use. Not for untrusted input:
 * that goes through json_unpack_ex() with its types checked. */
#pragma once
#include <jansson.h>

/* The string at key in o; "" if o is not an object or the field is missing or no string. */
const char *jstr(const json_t *o, const char *key);
/* The integer at key in o; 0 if missing or no integer. */
json_int_t jint(const json_t *o, const char *key);

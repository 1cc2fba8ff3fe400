/* request: reading the fields of a control request, with one wording for every error.
 *
 * Each helper either fills *ret and returns true, or replies to c with a clear error and
 * returns false; the caller then just returns. req is borrowed. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "store.h"

/* The string at key, or NULL (absent or not a string). */
const char *req_str(json_t *req, const char *key);
/* A member given by decimal id or exact name at key ("member" for most commands). */
bool req_member(struct store *s, struct control_conn *c, json_t *req, const char *key,
                int64_t *ret_id);
/* A time: epoch seconds, or "YYYY-MM-DD[THH:MM]" in local time, or "@epoch". Absent: 0,
 * which is an error only when required. */
bool req_time(struct control_conn *c, json_t *req, const char *key, bool required, int64_t *ret);
/* A whole number in [min, max]; absent is fine unless required (then *ret is untouched). */
bool req_int(struct control_conn *c, json_t *req, const char *key, int64_t min, int64_t max,
             bool required, int64_t *ret);

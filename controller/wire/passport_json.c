/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "passport_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>

#include "util.h"
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *passport_wrap(const char *text, size_t len, const uint8_t sig[PASSPORT_SIG_LEN],
                    size_t *ret_len)
{
    char hex[2 * PASSPORT_SIG_LEN + 1];
    json_t *o;
    char *out;

    sodium_bin2hex(hex, sizeof(hex), sig, PASSPORT_SIG_LEN);
    o = json_pack("{s:i, s:s%, s:s}", "v", 1, "text", text, len, "sig", hex);
    out = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (out)
        *ret_len = strlen(out);
    return out;
}

int passport_unwrap(const void *payload, size_t len, char *text, size_t *ret_text_len,
                    uint8_t sig[PASSPORT_SIG_LEN])
{
    json_error_t err;
    json_t *o, *t;
    json_int_t v = 0;
    const char *hex = NULL;
    size_t tlen;
    int r = -EBADMSG;

    if (len == 0 || len > PASSPORT_PAYLOAD_MAX)
        return -EBADMSG;
    o = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!o || json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:o, s:s}", "v", &v, "text", &t,
                             "sig", &hex) < 0 || v != 1 || !json_is_string(t))
        goto out;
    tlen = json_string_length(t);
    if (tlen >= PASSPORT_TEXT_MAX || memchr(json_string_value(t), '\0', tlen) ||
        !hex_decode(hex, strlen(hex), sig, PASSPORT_SIG_LEN))
        goto out;
    memcpy(text, json_string_value(t), tlen);
    text[tlen] = '\0';
    *ret_text_len = tlen;
    r = 0;
out:
    json_decref(o);
    return r;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "period_seal_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>

#include "util.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *period_seal_to_json(const char *text, const uint8_t sig[PERIOD_SEAL_SIG_LEN],
                          size_t *ret_len)
{
    char hex[2 * PERIOD_SEAL_SIG_LEN + 1], *out;
    json_t *o;

    sodium_bin2hex(hex, sizeof(hex), sig, PERIOD_SEAL_SIG_LEN);
    o = json_pack("{s:i, s:s, s:s}", "v", 1, "text", text, "sig", hex);
    out = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    if (out && ret_len)
        *ret_len = strlen(out);
    return out;
}

int period_seal_from_json(const void *payload, size_t len, char text[PERIOD_SEAL_TEXT_MAX + 1],
                          uint8_t sig[PERIOD_SEAL_SIG_LEN])
{
    json_error_t err;
    json_int_t v = 0;
    const char *t = NULL, *hex = NULL;
    size_t t_len = 0;
    json_t *o;
    int r = -EBADMSG;

    if (len > PERIOD_SEAL_PAYLOAD_MAX)
        return -EMSGSIZE;
    o = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!o || json_unpack_ex(o, &err, JSON_STRICT, "{s:I, s:s%, s:s}", "v", &v, "text", &t,
                             &t_len, "sig", &hex) < 0)
        goto out;
    if (v != 1 || t_len > PERIOD_SEAL_TEXT_MAX || memchr(t, '\0', t_len) ||
        !hex_decode(hex, strlen(hex), sig, PERIOD_SEAL_SIG_LEN))
        goto out;
    memcpy(text, t, t_len);
    text[t_len] = '\0';
    r = 0;
out:
    json_decref(o);
    return r;
}

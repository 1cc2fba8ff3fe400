/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "webhook.h"

#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void webhook_event_id(const char *stream, int64_t seq, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%" PRId64, stream, seq);
}

char *webhook_body(const char *site, const char *id, int64_t seq, const char *kind,
                   const char *payload)
{
    json_error_t err;
    json_t *body = json_loads(payload ? payload : "{}", 0, &err);
    char *text;

    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();       /* never let one bad row block the queue */
        if (!body)
            return NULL;
        json_object_set_new(body, "kind", json_string(kind));
    }
    json_object_set_new(body, "id", json_string(id));
    json_object_set_new(body, "v", json_integer(1));
    json_object_set_new(body, "site", json_string(site));
    if (seq > 0)
        json_object_set_new(body, "seq", json_integer(seq));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

void webhook_sign(const char *secret, int64_t t, const char *body, size_t body_len,
                  char buf[WEBHOOK_SIGNATURE_MAX])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char stamp[24], hex[crypto_auth_hmacsha256_BYTES * 2 + 1];

    snprintf(stamp, sizeof(stamp), "%" PRId64 ".", t);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)stamp, strlen(stamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(buf, WEBHOOK_SIGNATURE_MAX, "t=%" PRId64 ",v1=%s", t, hex);
    sodium_memzero(&st, sizeof(st));
}

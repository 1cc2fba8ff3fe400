/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "ledger_batch_json.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>

#include "util.h"
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

static bool hex_sig(const char *hex, uint8_t sig[LEDGER_SIG_LEN])
{
    return hex && hex_decode(hex, strlen(hex), sig, LEDGER_SIG_LEN);
}

static json_t *hex_string(const uint8_t *bin, size_t len)
{
    char hex[LEDGER_SIG_LEN * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), bin, len);
    return json_string(hex);
}

char *ledger_batch_to_json(const struct ledger_batch *b, size_t *ret_len)
{
    json_t *root = NULL, *entries, *checkpoints;
    char buf[LEDGER_ENCODING_MAX], *text = NULL;

    entries = json_array();
    checkpoints = json_array();
    if (!entries || !checkpoints)
        goto out;
    for (unsigned i = 0; i < b->n; i++) {
        const struct ledger_entry *e = &b->entries[i];
        int len = ledger_encode(e, buf, sizeof(buf));
        if (len < 0 || json_array_append_new(entries, json_stringn(buf, (size_t)len)) < 0)
            goto out;
        if (e->has_signature &&
            json_array_append_new(checkpoints, json_pack("[I, o]", (json_int_t)e->seq,
                                                         hex_string(e->signature,
                                                                    LEDGER_SIG_LEN))) < 0)
            goto out;
    }
    root = json_pack("{s:i, s:s, s:I, s:I, s:O, s:O, s:o}", "v", LEDGER_BATCH_VERSION, "site",
                     b->site, "first", (json_int_t)b->first, "last", (json_int_t)b->last,
                     "entries", entries, "checkpoints", checkpoints, "sig",
                     hex_string(b->sig, LEDGER_SIG_LEN));
    if (root)
        text = json_dumps(root, JSON_COMPACT);
    if (text && strlen(text) > LEDGER_BATCH_PAYLOAD_MAX) {
        free(text);
        text = NULL;
    }
    if (text)
        *ret_len = strlen(text);
out:
    json_decref(entries);
    json_decref(checkpoints);
    json_decref(root);
    return text;
}

int ledger_batch_parse(const void *payload, size_t len, struct ledger_batch *b, char *why,
                       size_t why_n)
{
    json_error_t err;
    json_t *root, *entries = NULL, *checkpoints = NULL, *item;
    json_int_t v = 0, first = 0, last = 0;
    const char *site = NULL, *sig = NULL;
    size_t i;
    int r = 0;

    if (len == 0 || len > LEDGER_BATCH_PAYLOAD_MAX)
        return refuse(why, why_n, "payload must be 1 to %d bytes", LEDGER_BATCH_PAYLOAD_MAX);
    root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return refuse(why, why_n, "not JSON");
    if (json_unpack_ex(root, &err, JSON_STRICT, "{s:I, s:s, s:I, s:I, s:o, s:o, s:s}", "v", &v,
                       "site", &site, "first", &first, "last", &last, "entries", &entries,
                       "checkpoints", &checkpoints, "sig", &sig) < 0) {
        r = refuse(why, why_n, "malformed batch: %.100s", err.text);
        goto out;
    }
    if (v != LEDGER_BATCH_VERSION) {
        r = refuse(why, why_n, "unknown batch version %" JSON_INTEGER_FORMAT, v);
        goto out;
    }
    if (!name_is_valid(site)) {
        r = refuse(why, why_n, "malformed batch: bad site id");
        goto out;
    }
    if (!json_is_array(entries) || !json_is_array(checkpoints) || first < 1 || last < first ||
        last - first + 1 != (json_int_t)json_array_size(entries) ||
        json_array_size(entries) > LEDGER_BATCH_MAX ||
        json_array_size(checkpoints) > json_array_size(entries)) {
        r = refuse(why, why_n, "malformed batch: entries do not match first..last, or more "
                               "than %d", LEDGER_BATCH_MAX);
        goto out;
    }
    if (!hex_sig(sig, b->sig)) {
        r = refuse(why, why_n, "malformed batch: sig must be %d hex digits", LEDGER_SIG_LEN * 2);
        goto out;
    }
    snprintf(b->site, sizeof(b->site), "%s", site);
    b->first = first;
    b->last = last;
    b->n = (unsigned)json_array_size(entries);
    json_array_foreach(entries, i, item) {
        struct ledger_entry *e = &b->entries[i];
        if (!json_is_string(item) ||
            ledger_decode(json_string_value(item), json_string_length(item), e) < 0) {
            r = refuse(why, why_n, "entry %" JSON_INTEGER_FORMAT " is not a canonical ledger "
                                   "entry", first + (json_int_t)i);
            goto out;
        }
        if (e->seq != first + (json_int_t)i || strcmp(e->site, b->site) != 0) {
            r = refuse(why, why_n, "entry %" JSON_INTEGER_FORMAT " has another number or site",
                       first + (json_int_t)i);
            goto out;
        }
    }
    json_array_foreach(checkpoints, i, item) {
        json_int_t seq = 0;
        const char *hex = NULL;
        if (json_unpack(item, "[I, s!]", &seq, &hex) < 0 || seq < first || seq > last ||
            !hex_sig(hex, b->entries[seq - first].signature) ||
            b->entries[seq - first].has_signature) {
            r = refuse(why, why_n, "malformed batch: bad checkpoint signature");
            goto out;
        }
        b->entries[seq - first].has_signature = true;
    }
out:
    json_decref(root);
    return r;
}

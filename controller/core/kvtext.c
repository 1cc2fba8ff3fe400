/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "kvtext.h"

#include <string.h>

#include "util.h"

static bool refuse(struct kv_reader *r)
{
    r->refused = true;
    return false;
}

bool kv_begin(struct kv_reader *r, const char *text, size_t len, size_t max, const char *header)
{
    size_t h = strlen(header);

    r->p = text;
    r->end = text + len;
    r->refused = false;
    if (len > max || len <= h || memcmp(text, header, h) != 0 || text[h] != '\n' ||
        memchr(text, '\0', len))
        return refuse(r);
    r->p += h + 1;
    return true;
}

bool kv_text(struct kv_reader *r, const char *key, char *buf, size_t n)
{
    size_t k = strlen(key);
    const char *v, *nl;

    if (r->refused)
        return false;
    if ((size_t)(r->end - r->p) <= k || memcmp(r->p, key, k) != 0 || r->p[k] != '=')
        return refuse(r);
    v = r->p + k + 1;
    nl = memchr(v, '\n', (size_t)(r->end - v));
    if (!nl || (size_t)(nl - v) >= n)
        return refuse(r);
    for (const char *c = v; c < nl; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return refuse(r);
    memcpy(buf, v, (size_t)(nl - v));
    buf[nl - v] = '\0';
    r->p = nl + 1;
    return true;
}

bool kv_int(struct kv_reader *r, const char *key, int64_t min, int64_t max, int64_t *ret)
{
    char buf[24];
    const char *d = buf;

    if (!kv_text(r, key, buf, sizeof(buf)))
        return false;
    if (*d == '-')
        d++;
    /* Canonical: digits only, no leading zero, and zero has no sign. */
    if (!*d || (d[0] == '0' && (d[1] || d != buf)) || d[strspn(d, "0123456789")] != '\0' ||
        parse_int64(buf, min, max, ret) < 0)
        return refuse(r);
    return true;
}

bool kv_hex(struct kv_reader *r, const char *key, uint8_t *out, size_t n)
{
    char hex[2 * KV_HEX_MAX + 1];

    if (n > KV_HEX_MAX)
        return refuse(r);
    if (!kv_text(r, key, hex, sizeof(hex)))
        return false;
    if (strlen(hex) != 2 * n || strspn(hex, "0123456789abcdef") != 2 * n ||
        !hex_decode(hex, 2 * n, out, n))
        return refuse(r);
    return true;
}

bool kv_more(const struct kv_reader *r)
{
    return !r->refused && r->p < r->end;
}

bool kv_end(const struct kv_reader *r)
{
    return !r->refused && r->p == r->end;
}

bool kv_same(const char *text, size_t len, const char *again, int again_len)
{
    return again_len >= 0 && (size_t)again_len == len && memcmp(again, text, len) == 0;
}

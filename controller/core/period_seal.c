/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "period_seal.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvtext.h"

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool period_ok(const char *p)
{
    return strlen(p) == 7 && digits(p, 4) && p[4] == '-' && digits(p + 5, 2);
}

static bool day_ok(const char *d)
{
    return strlen(d) == 10 && digits(d, 4) && d[4] == '-' && digits(d + 5, 2) && d[7] == '-' &&
           digits(d + 8, 2);
}

/* Site ids are [site] id values: printable, no '=' or whitespace, as the ledger requires. */
static bool site_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '=' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

int period_seal_encode(const struct period_seal *s, char *buf, size_t n)
{
    char last_hex[2 * PERIOD_SEAL_HASH_LEN + 1], sha_hex[2 * PERIOD_SEAL_HASH_LEN + 1];
    int len;

    if (!site_ok(s->site) || !period_ok(s->period) || !day_ok(s->first_day) ||
        !day_ok(s->last_day) || s->last_seq < 0 || s->closed_at < 0)
        return -EINVAL;
    sodium_bin2hex(last_hex, sizeof(last_hex), s->last_hash, PERIOD_SEAL_HASH_LEN);
    sodium_bin2hex(sha_hex, sizeof(sha_hex), s->archive_sha256, PERIOD_SEAL_HASH_LEN);
    len = snprintf(buf, n,
                   "portier-period-v1\nsite=%s\nperiod=%s\nfirst_day=%s\nlast_day=%s\n"
                   "last_seq=%" PRId64 "\nlast_hash=%s\narchive_sha256=%s\nclosed_at=%" PRId64 "\n",
                   s->site, s->period, s->first_day, s->last_day, s->last_seq, last_hex,
                   sha_hex, s->closed_at);
    if (len < 0 || (size_t)len >= n || len > PERIOD_SEAL_TEXT_MAX)
        return -E2BIG;
    return len;
}

int period_seal_parse(const char *text, size_t len, struct period_seal *ret)
{
    char again[PERIOD_SEAL_TEXT_MAX + 1];
    struct period_seal s;
    struct kv_reader r;

    memset(&s, 0, sizeof(s));
    kv_begin(&r, text, len, PERIOD_SEAL_TEXT_MAX, "portier-period-v1");
    kv_text(&r, "site", s.site, sizeof(s.site));
    kv_text(&r, "period", s.period, sizeof(s.period));
    kv_text(&r, "first_day", s.first_day, sizeof(s.first_day));
    kv_text(&r, "last_day", s.last_day, sizeof(s.last_day));
    kv_int(&r, "last_seq", 0, INT64_MAX, &s.last_seq);
    kv_hex(&r, "last_hash", s.last_hash, PERIOD_SEAL_HASH_LEN);
    kv_hex(&r, "archive_sha256", s.archive_sha256, PERIOD_SEAL_HASH_LEN);
    kv_int(&r, "closed_at", 0, INT64_MAX, &s.closed_at);
    /* Canonical means: encoding what was read gives the very same bytes (valid fields,
     * nothing else). */
    if (!kv_end(&r) || !kv_same(text, len, again, period_seal_encode(&s, again, sizeof(again))))
        return -EBADMSG;
    *ret = s;
    return 0;
}

bool period_seal_signature_ok(const char *text, size_t len, const uint8_t sig[PERIOD_SEAL_SIG_LEN],
                              const uint8_t pk[PERIOD_SEAL_PK_LEN])
{
    return crypto_sign_verify_detached(sig, (const uint8_t *)text, len, pk) == 0;
}

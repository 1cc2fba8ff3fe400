#include "period_seal.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER "portier-period-v1\n"

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
                   HEADER "site=%s\nperiod=%s\nfirst_day=%s\nlast_day=%s\nlast_seq=%" PRId64
                   "\nlast_hash=%s\narchive_sha256=%s\nclosed_at=%" PRId64 "\n",
                   s->site, s->period, s->first_day, s->last_day, s->last_seq, last_hex,
                   sha_hex, s->closed_at);
    if (len < 0 || (size_t)len >= n || len > PERIOD_SEAL_TEXT_MAX)
        return -E2BIG;
    return len;
}

/* Copy the value of line "key=..." at *p into out (at most n-1 bytes); advance *p. */
static bool field(const char **p, const char *end, const char *key, char *out, size_t n)
{
    size_t k = strlen(key);
    const char *nl;

    if ((size_t)(end - *p) <= k || memcmp(*p, key, k) != 0 || (*p)[k] != '=')
        return false;
    *p += k + 1;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) >= n || memchr(*p, '\0', (size_t)(nl - *p)))
        return false;
    memcpy(out, *p, (size_t)(nl - *p));
    out[nl - *p] = '\0';
    *p = nl + 1;
    return true;
}

static bool number(const char *s, int64_t *ret)
{
    char *end;
    long long v;

    if (!*s || !digits(s, strlen(s)) || strlen(s) > 18 || (s[0] == '0' && s[1]))
        return false;
    v = strtoll(s, &end, 10);
    *ret = v;
    return true;
}

static bool hex32(const char *s, uint8_t out[PERIOD_SEAL_HASH_LEN])
{
    size_t bin_len = 0;
    return strlen(s) == 2 * PERIOD_SEAL_HASH_LEN &&
           sodium_hex2bin(out, PERIOD_SEAL_HASH_LEN, s, strlen(s), NULL, &bin_len, NULL) == 0 &&
           bin_len == PERIOD_SEAL_HASH_LEN;
}

int period_seal_parse(const char *text, size_t len, struct period_seal *ret)
{
    const char *p = text, *end = text + len;
    char seq[24], last_hex[72], sha_hex[72], closed[24], again[PERIOD_SEAL_TEXT_MAX + 1];
    struct period_seal s;
    int n;

    memset(&s, 0, sizeof(s));
    if (len > PERIOD_SEAL_TEXT_MAX || len < sizeof(HEADER) - 1 ||
        memcmp(text, HEADER, sizeof(HEADER) - 1) != 0)
        return -EBADMSG;
    p += sizeof(HEADER) - 1;
    if (!field(&p, end, "site", s.site, sizeof(s.site)) ||
        !field(&p, end, "period", s.period, sizeof(s.period)) ||
        !field(&p, end, "first_day", s.first_day, sizeof(s.first_day)) ||
        !field(&p, end, "last_day", s.last_day, sizeof(s.last_day)) ||
        !field(&p, end, "last_seq", seq, sizeof(seq)) ||
        !field(&p, end, "last_hash", last_hex, sizeof(last_hex)) ||
        !field(&p, end, "archive_sha256", sha_hex, sizeof(sha_hex)) ||
        !field(&p, end, "closed_at", closed, sizeof(closed)) || p != end ||
        !number(seq, &s.last_seq) || !number(closed, &s.closed_at) ||
        !hex32(last_hex, s.last_hash) || !hex32(sha_hex, s.archive_sha256))
        return -EBADMSG;
    /* Canonical means: encoding what was read gives the very same bytes (lower-case hex,
     * valid fields, nothing else). */
    n = period_seal_encode(&s, again, sizeof(again));
    if (n < 0 || (size_t)n != len || memcmp(again, text, len) != 0)
        return -EBADMSG;
    *ret = s;
    return 0;
}

bool period_seal_signature_ok(const char *text, size_t len, const uint8_t sig[PERIOD_SEAL_SIG_LEN],
                              const uint8_t pk[PERIOD_SEAL_PK_LEN])
{
    return crypto_sign_verify_detached(sig, (const uint8_t *)text, len, pk) == 0;
}

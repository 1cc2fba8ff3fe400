/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int strlcpy_checked(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n == 0)
        return -ENAMETOOLONG;
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = '\0';
        return -ENAMETOOLONG;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

int array_reserve(void *parray, size_t n, size_t *cap, size_t elem, size_t first)
{
    size_t want = *cap ? 2 * *cap : first;
    void *old, *p;

    if (n < *cap)
        return 0;
    if (want < *cap || want > SIZE_MAX / elem)
        return -ENOMEM;
    /* parray points at a T *: copied as bytes, as any object pointer is stored alike here. */
    memcpy(&old, parray, sizeof(old));
    p = realloc(old, want * elem);
    if (!p)
        return -ENOMEM;
    memcpy(parray, &p, sizeof(p));
    *cap = want;
    return 0;
}

int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    char *end;
    long long v;

    if (!s || !*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end != '\0')
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

bool hex_decode(const char *hex, size_t len, uint8_t *out, size_t n)
{
    size_t bin_len = 0;

    return len == 2 * n &&
           sodium_hex2bin(out, n, hex, len, NULL, &bin_len, NULL) == 0 && bin_len == n;
}

int parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) { *ret = true; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *ret = false; return 0; }
    }
    return -EINVAL;
}

static int64_t sim_offset;

int64_t now_utc(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + sim_offset;
}

void clock_advance(int64_t seconds) { sim_offset += seconds; }
int64_t clock_offset(void) { return sim_offset; }

uint64_t realtime_usec_for(int64_t utc)
{
    int64_t real = utc - sim_offset;
    return real > 0 ? (uint64_t)real * 1000000u : 1;
}

uint64_t now_mono_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int name_first_cmp(const void *key, const void *entry)
{
    /* A pointer to a struct is a pointer to its first member. */
    return strcmp(key, *(const char *const *)entry);
}

bool name_is_valid(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return n >= 1 && n <= 31;
}

const char *format_cents(int64_t cents, char dec, char *buf, size_t n)
{
    /* uint64_t: -INT64_MIN does not fit in int64_t. */
    uint64_t a = cents < 0 ? 0 - (uint64_t)cents : (uint64_t)cents;

    snprintf(buf, n, "%s%" PRIu64 "%c%02" PRIu64, cents < 0 ? "-" : "", a / 100, dec, a % 100);
    return buf;
}

void format_utc(int64_t t, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every date Portier handles goes through time_t: on 32-bit ARM (Debian 12 armhf) it must
 * be built 64-bit (_TIME_BITS=64, set in CMakeLists.txt), or dates after 2038-01-19 wrap. */
_Static_assert(sizeof(time_t) >= 8, "time_t must be 64-bit: build with -D_TIME_BITS=64 "
               "-D_FILE_OFFSET_BITS=64");

int parse_time(const char *s, int64_t *ret)
{
    struct tm tm = { 0 };
    const char *end;
    size_t len = strlen(s);
    time_t t;

    if (s[0] == '@')
        return parse_int64(s + 1, 0, TIME_MAX_UTC, ret);
    end = strptime(s, "%Y-%m-%d", &tm);
    if (!end)
        return -EINVAL;
    if (*end == 'T' || *end == ' ') {
        const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);
        if (!e2)
            e2 = strptime(end + 1, "%H:%M", &tm);
        if (!e2)
            return -EINVAL;
        end = e2;
    }
    /* The same range as "@<epoch>": 1970 to 9999. */
    if (tm.tm_year < 70 || tm.tm_year > 9999 - 1900)
        return -ERANGE;
    if (*end == 'Z' && end == s + len - 1) {
        t = timegm(&tm);
    } else {
        if (*end != '\0')
            return -EINVAL;
        tm.tm_isdst = -1;
        errno = 0;
        t = mktime(&tm);
        /* -1 is also 1969-12-31T23:59:59Z, but never a time in this range's local days. */
        if (t == (time_t)-1 && errno)
            return -ERANGE;
    }
    *ret = (int64_t)t;
    return 0;
}

void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (*p) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4 : 0;
        /* What RFC 3629 allows, as jansson checks it: no overlong form (C0, C1; E0 then
         * under A0; F0 then under 90), no UTF-16 surrogate (ED then A0 or more), nothing
         * beyond U+10FFFF (F4 then 90 or more; F5 to F7). */
        bool ok = len > 0 && !(len == 2 && *p < 0xc2) && !(*p == 0xe0 && p[1] < 0xa0) &&
                  !(*p == 0xed && p[1] >= 0xa0) && !(*p == 0xf0 && p[1] < 0x90) &&
                  !(*p == 0xf4 && p[1] >= 0x90) && *p <= 0xf4;
        for (int i = 1; ok && i < len; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

void fd_cloexec_all(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;

    if (!dir)
        return;
    while ((de = readdir(dir))) {
        int64_t fd;
        if (parse_int64(de->d_name, 3, INT32_MAX, &fd) < 0 || fd == dirfd(dir))
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            (void)fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(dir);
}

int period_days(const char *period, char first[11], char last[11])
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, n = 0;

    /* Exactly YYYY-MM: no blanks or signs that sscanf would let through. */
    if (strlen(period) != 7 || period[4] != '-')
        return -EINVAL;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (period[i] < '0' || period[i] > '9'))
            return -EINVAL;
    if (sscanf(period, "%4d-%2d%n", &y, &mo, &n) != 2 || n != 7 || mo < 1 || mo > 12 || y < 2000 ||
        y > 9999)
        return -EINVAL;
    int d = days[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    snprintf(first, 11, "%04d-%02d-01", y, mo);
    snprintf(last, 11, "%04d-%02d-%02d", y, mo, d);
    return 0;
}

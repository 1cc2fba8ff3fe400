/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* util: small helpers shared by the modules. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Room for one more element in a growing array: when n has reached *cap, the array whose
 * address is parray (a T **) is reallocated to twice its capacity (first elements the first
 * time) and *cap updated. 0, or -ENOMEM with the array and *cap as they were. Use the macro:
 *     if (ARRAY_RESERVE(l->items, l->n, l->cap, 64) < 0) return -ENOMEM; */
int array_reserve(void *parray, size_t n, size_t *cap, size_t elem, size_t first);
#define ARRAY_RESERVE(array, n, cap, first) \
    array_reserve(&(array), (n), &(cap), sizeof(*(array)), (first))

/* Copy src into dst of size n, always terminated. Returns -ENAMETOOLONG if truncated. */
int strlcpy_checked(char *dst, const char *src, size_t n);

/* Parse a base-10 integer in [min, max]; whole string must be consumed. 0 or -EINVAL/-ERANGE. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Decode exactly n bytes from hex[0..len), which must be 2 * n hex digits (either case;
 * nothing else, no separators): true, or false with out unspecified. */
bool hex_decode(const char *hex, size_t len, uint8_t *out, size_t n);

/* Parse "true/false/yes/no/on/off/1/0". 0 or -EINVAL. */
int parse_bool(const char *s, bool *ret);

/* Seconds since the epoch (CLOCK_REALTIME, plus the simulation offset) and microseconds on
 * CLOCK_MONOTONIC. */
int64_t now_utc(void);
/* Simulated hardware only (`portierctl sim advance`): move the daemon's wall clock forward
 * so tests and demos need not wait for bookings to end. 0 on real sites. */
void clock_advance(int64_t seconds);
int64_t clock_offset(void);
/* The CLOCK_REALTIME time, in usec, at which the daemon's clock shows utc. */
uint64_t realtime_usec_for(int64_t utc);
uint64_t now_mono_usec(void);

/* bsearch() comparator for a table sorted by strcmp on its first member, a const char *
 * (a name): the key is the name looked for. */
int name_first_cmp(const void *key, const void *entry);

/* A name usable as a door, reader or plan name: 1..31 chars of [A-Za-z0-9_-.]. */
bool name_is_valid(const char *s);

/* Replace, in place, every byte that does not belong to a valid UTF-8 sequence (a cut
 * character, stray bytes, an overlong form, a surrogate, a code point beyond U+10FFFF)
 * with '?': what is left is text jansson takes. */
void utf8_sanitize(char *s);

/* An amount of cents with two decimals after dec ('.' or ','): 1250 -> "12.50", -5 ->
 * "-0.05" (the sign also under one unit). Returns buf (>= 24 bytes fits any amount). */
const char *format_cents(int64_t cents, char dec, char *buf, size_t n);

/* Format a UTC timestamp as ISO 8601 "2026-11-22T10:00:00Z" into buf (>= 21 bytes). */
void format_utc(int64_t t, char *buf, size_t n);
/* The last second Portier accepts as a time: 9999-12-31T23:59:59Z. Times come in from
 * 1970 to then, on every platform (time_t is 64-bit, also on 32-bit ARM). */
#define TIME_MAX_UTC INT64_C(253402300799)

/* Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" in local time, or a UTC ISO time ending
 * in Z, or "@<epoch>". 0, -EINVAL if malformed, -ERANGE outside 1970..9999. */
int parse_time(const char *s, int64_t *ret);

/* Set close-on-exec on every descriptor of this process above 2. For descriptors a library
 * opens without it (libmosquitto's sockets): call after the library call that opens them. */
void fd_cloexec_all(void);

/* First and last billing day of period "YYYY-MM"; -EINVAL if malformed. */
int period_days(const char *period, char first[11], char last[11]);

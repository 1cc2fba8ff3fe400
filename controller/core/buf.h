/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* buf: a growing text buffer, for what is built piece by piece: web pages, CSV, reports.
 * Pure: libc only.
 *
 * Start from a zeroed struct buf ({ 0 }). data is NUL-terminated once anything (even "") was
 * written, and NULL before. If an allocation fails, the buffer keeps what it had, stops
 * growing and sets failed: callers write on and check failed once at the end. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

void buf_put(struct buf *b, const char *s);
void buf_putn(struct buf *b, const char *s, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* fmt is checked at the callers of buf_printf() and the like: the attribute tells clang so
 * (-Wformat-nonliteral). */
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Text escaped for HTML element content and quoted attribute values. */
void buf_html(struct buf *b, const char *s);
/* printf, then escaped for HTML. */
void buf_htmlf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (NUL-terminated; "" if nothing was written) and, if ret_len is not NULL, its
 * length; the caller frees it and b is empty again. NULL if an allocation failed (b is then
 * freed). */
char *buf_take(struct buf *b, size_t *ret_len);
void buf_free(struct buf *b);

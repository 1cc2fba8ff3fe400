/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_grow(struct buf *b, size_t more)
{
    size_t want;
    char *p;

    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    want = b->cap ? b->cap : 1024;
    while (want < b->len + more + 1)
        want *= 2;
    p = realloc(b->data, want);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = want;
    return true;
}

void buf_putn(struct buf *b, const char *s, size_t n)
{
    if (!buf_grow(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_put(struct buf *b, const char *s) { buf_putn(b, s, strlen(s)); }

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    int n;

    /* Straight into the room left (pages are printed piece by piece: it usually fits), and
     * only when it does not, grow and print again: a page is printed once, not twice. */
    if (!b->data && !buf_grow(b, 0))
        return;
    if (b->failed)
        return;
    va_copy(aq, ap);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, aq);
    va_end(aq);
    if (n < 0) {
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        b->data[b->len] = '\0';        /* what did not fit is printed again below */
        if (!buf_grow(b, (size_t)n))
            return;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_html(struct buf *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        buf_putn(b, run, (size_t)(s - run));
        buf_put(b, rep);
        run = s + 1;
    }
    buf_putn(b, run, (size_t)(s - run));
}

void buf_htmlf(struct buf *b, const char *fmt, ...)
{
    struct buf tmp = { 0 };
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&tmp, fmt, ap);
    va_end(ap);
    if (tmp.data)
        buf_html(b, tmp.data);
    buf_free(&tmp);
}

void buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

char *buf_take(struct buf *b, size_t *ret_len)
{
    char *text;

    if (!b->data)
        buf_putn(b, "", 0);
    if (b->failed) {
        buf_free(b);
        return NULL;
    }
    text = b->data;
    if (ret_len)
        *ret_len = b->len;
    memset(b, 0, sizeof(*b));
    return text;
}

#include "csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void put(struct csv *c, const char *s, size_t n)
{
    if (c->failed)
        return;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        char *p;
        while (cap < c->len + n + 1)
            cap *= 2;
        p = realloc(c->buf, cap);
        if (!p) {
            c->failed = true;
            return;
        }
        c->buf = p;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

void csv_init(struct csv *c, enum csv_dialect dialect)
{
    memset(c, 0, sizeof(*c));
    c->sep = dialect == CSV_FRENCH ? ';' : ',';
    c->dec = dialect == CSV_FRENCH ? ',' : '.';
    if (dialect == CSV_FRENCH)
        put(c, "\xef\xbb\xbf", 3);
}

static void begin_field(struct csv *c)
{
    if (c->in_row)
        put(c, &c->sep, 1);
    c->in_row = true;
}

void csv_text(struct csv *c, const char *s)
{
    const char *q;
    bool formula;

    if (!s)
        s = "";
    begin_field(c);
    formula = s[0] && strchr("=+-@\t\r", s[0]);
    if (!formula && !strchr(s, c->sep) && !strpbrk(s, "\"\r\n")) {
        put(c, s, strlen(s));
        return;
    }
    put(c, formula ? "\"'" : "\"", formula ? 2 : 1);
    while ((q = strchr(s, '"'))) {
        put(c, s, (size_t)(q - s) + 1);
        put(c, "\"", 1);
        s = q + 1;
    }
    put(c, s, strlen(s));
    put(c, "\"", 1);
}

void csv_int(struct csv *c, int64_t v)
{
    char num[24];
    int k = snprintf(num, sizeof(num), "%" PRId64, v);

    begin_field(c);
    put(c, num, (size_t)k);
}

void csv_cents(struct csv *c, int64_t cents)
{
    char num[32];

    begin_field(c);
    format_cents(cents, c->dec, num, sizeof(num));
    put(c, num, strlen(num));
}

void csv_row(struct csv *c, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        csv_text(c, fields[i]);
    csv_end_row(c);
}

void csv_end_row(struct csv *c)
{
    put(c, "\r\n", 2);
    c->in_row = false;
}

char *csv_take(struct csv *c, size_t *ret_len)
{
    char *text;

    if (c->failed) {
        csv_free(c);
        return NULL;
    }
    if (!c->buf)
        put(c, "", 0);
    text = c->buf;
    if (text && ret_len)
        *ret_len = c->len;
    c->buf = NULL;
    c->len = c->cap = 0;
    c->in_row = false;
    return text;
}

void csv_free(struct csv *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    c->in_row = false;
}

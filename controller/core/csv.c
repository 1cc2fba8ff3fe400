/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "csv.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static void put(struct csv *c, const char *s, size_t n)
{
    buf_putn(&c->out, s, n);
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
    c->in_row = false;
    return buf_take(&c->out, ret_len);
}

void csv_free(struct csv *c)
{
    buf_free(&c->out);
    c->in_row = false;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* csv: the one CSV writer of every export: portierctl's statements, the web page's
 * usage.csv, the custodian's report. Pure: libc only.
 *
 * Fields are separated by the dialect's separator and rows end with CRLF (RFC 4180). A text
 * field is quoted when it holds the separator, a double quote, CR or LF, and its quotes are
 * doubled.
 *
 * Formula guard (OWASP, "CSV injection"): a spreadsheet reads a cell that starts with
 * = + - @ TAB or CR as a formula, so a member who names themselves "=HYPERLINK(...)" would
 * run it on the manager's computer. Such a text field is written quoted with an apostrophe
 * first ("'=HYPERLINK(...)"), which spreadsheets show as text. Numbers written with
 * csv_int() and csv_cents() are never guarded: "-12.50" stays a number.
 *
 * Dialects: CSV_RFC4180 (',' between fields, '.' before decimals) and CSV_FRENCH (';' and
 * ',', with a UTF-8 byte order mark first, as French spreadsheets open it by default).
 *
 * The text grows in a malloc'd buffer. If an allocation fails, the writer stops writing and
 * csv_take() returns NULL. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum csv_dialect { CSV_RFC4180, CSV_FRENCH };

struct csv {
    struct buf out;
    char sep, dec;
    bool in_row;                    /* a field written since the last row end */
};

void csv_init(struct csv *c, enum csv_dialect dialect);
/* One field. NULL is written as an empty field. */
void csv_text(struct csv *c, const char *s);
void csv_int(struct csv *c, int64_t v);
/* An amount in cents with two decimals: 1234 -> "12.34" (CSV_FRENCH: "12,34"), -5 -> "-0.05". */
void csv_cents(struct csv *c, int64_t cents);
/* A whole row of text fields (a header). */
void csv_row(struct csv *c, const char *const *fields, size_t n);
void csv_end_row(struct csv *c);
/* The text (NUL-terminated) and, if ret_len is not NULL, its length; the caller frees it and
 * c is empty again. NULL if an allocation failed (c is then freed). */
char *csv_take(struct csv *c, size_t *ret_len);
/* Release what c holds (after an error). */
void csv_free(struct csv *c);

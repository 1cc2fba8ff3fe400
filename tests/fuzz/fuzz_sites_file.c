/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_sites_file: passport_sites_parse() on whatever the consortium's sites file holds.
 *
 * The sites file (`[consortium] sites_file`) is the registry of the sites whose passports
 * and visit notices count: one "NAME HEXKEY" line per site, '#' comments, blank lines. It
 * is handed around between the sites of a consortium, edited by hand, pasted from mails.
 * controller/consortium/passports.c reads it whole (file_read_small(), at most
 * SITES_FILE_MAX bytes) and parses it with passport_sites_parse(); a refusal stops the
 * daemon with "FILE:LINE: ...". The contract checked here:
 *   - a file that parses yields at most max sites, each with a valid name, listed once (a
 *     name twice would make one of its keys silently dead), and its key is the line's;
 *     writing them back as "NAME HEX" lines parses to the same sites;
 *   - a refused file (a malformed line or a NUL byte, a name listed again, more than max
 *     sites) names a line that exists, every line before it parses, and that line is
 *     neither blank nor a comment (a comment of any length is fine).
 * max is small here (PASSPORT_SITES_MAX in the daemon) so that the limit is reached too. */
#include <errno.h>
#include <sodium.h>

#include "fuzz.h"
#include "passport.h"
#include "util.h"

#define FUZZ_SITES_MAX 8
#define FUZZ_SITES_FILE_MAX (64 * 1024)

/* Lines of text[0..len): 1 + newlines. */
static unsigned count_lines(const char *text, size_t len)
{
    unsigned n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

/* Offset of the start of line (1-based) in text[0..len). */
static size_t line_start(const char *text, size_t len, unsigned line)
{
    size_t i = 0;
    for (unsigned l = 1; l < line && i < len; i++)
        if (text[i] == '\n')
            l++;
    return i;
}

/* Whether the line at text[start..] is blank or a comment: only white space (spaces, tabs,
 * a CR...) before '#' or the end of the line. */
static int blank_or_comment(const char *text, size_t len, size_t start)
{
    for (size_t i = start; i < len && text[i] != '\n'; i++) {
        if (text[i] == '#')
            return 1;
        if (!strchr(" \t\r\v\f", text[i]) || text[i] == '\0')
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct passport_site sites[FUZZ_SITES_MAX], again[FUZZ_SITES_MAX];
    const char *text = (const char *)data;
    unsigned line = 0, line2 = 0;
    int n, r;

    if (size > FUZZ_SITES_FILE_MAX)
        return 0;
    if (sodium_init() < 0)
        abort();
    n = passport_sites_parse(text, size, sites, FUZZ_SITES_MAX, &line);
    if (n < 0) {
        size_t start;
        FUZZ_CHECK(n == -EINVAL || n == -EEXIST || n == -E2BIG);
        FUZZ_CHECK_MSG(line >= 1 && line <= count_lines(text, size), "the error names a line");
        start = line_start(text, size, line);
        FUZZ_CHECK_MSG(!blank_or_comment(text, size, start),
                       "a blank or comment line is refused");
        /* Everything before the bad line is fine. */
        r = passport_sites_parse(text, start, again, FUZZ_SITES_MAX, &line2);
        FUZZ_CHECK_MSG(r >= 0, "a line before the reported one is bad");
        return 0;
    }
    FUZZ_CHECK(n <= FUZZ_SITES_MAX);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_terminated(sites[i].name, sizeof(sites[i].name)));
        FUZZ_CHECK(name_is_valid(sites[i].name));
        for (int j = 0; j < i; j++)
            FUZZ_CHECK_MSG(strcmp(sites[i].name, sites[j].name) != 0, "a site listed twice");
    }
    /* Written back as the file's own lines, the same sites. */
    {
        char out[FUZZ_SITES_MAX * (32 + 1 + 2 * PASSPORT_PK_LEN + 1) + 1];
        size_t len = 0;
        for (int i = 0; i < n; i++) {
            char hex[2 * PASSPORT_PK_LEN + 1];
            sodium_bin2hex(hex, sizeof(hex), sites[i].pk, PASSPORT_PK_LEN);
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s %s\n", sites[i].name, hex);
        }
        r = passport_sites_parse(out, len, again, FUZZ_SITES_MAX, &line2);
        FUZZ_CHECK(r == n);
        for (int i = 0; i < n; i++) {
            FUZZ_CHECK(strcmp(again[i].name, sites[i].name) == 0);
            FUZZ_CHECK(memcmp(again[i].pk, sites[i].pk, PASSPORT_PK_LEN) == 0);
        }
    }
    return 0;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "mime.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER_LINE 78          /* RFC 5322's recommended limit, folding included */
#define QP_LINE 76              /* RFC 2045: encoded lines at most 76 characters */
#define WORD_BYTES 45           /* UTF-8 bytes per encoded word: 60 base64 + 12 = 72 <= 75 */

/* ---- the buffer ---- */

void mime_buf_put(struct mime_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void put(struct mime_buf *b, const char *s)
{
    mime_buf_put(b, s, strlen(s));
}

void mime_buf_free(struct mime_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- checks ---- */

static bool is_atext(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+/=?^_`{|}~-", c));
}

bool mime_addr_valid(const char *addr)
{
    const char *at, *p;
    size_t len;

    if (!addr || !(len = strlen(addr)) || len > MIME_ADDR_MAX)
        return false;
    at = strchr(addr, '@');
    if (!at || at == addr || strchr(at + 1, '@') || !at[1])
        return false;
    /* local part: a dot-atom (no leading, trailing or double dots) */
    if (addr[0] == '.' || at[-1] == '.')
        return false;
    for (p = addr; p < at; p++)
        if (!(is_atext((unsigned char)*p) || (*p == '.' && p[1] != '.')))
            return false;
    /* domain: labels of letters, digits and hyphens */
    if (at[1] == '.' || at[1] == '-' || addr[len - 1] == '.' || addr[len - 1] == '-')
        return false;
    for (p = at + 1; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || (c == '.' && p[1] != '.')))
            return false;
    }
    return true;
}

static bool message_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > 200 || !strchr(id, '@'))
        return false;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
            return false;
    return true;
}

static bool plain_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p >= 0x7f)
            return false;
    /* Text that looks like an encoded word must itself be encoded. */
    return !strstr(s, "=?");
}

/* ---- dates ---- */

void mime_date(int64_t utc, int offset_minutes, char *buf, size_t n)
{
    static const char days[][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                      "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t local = (time_t)(utc + (int64_t)offset_minutes * 60);
    int off = offset_minutes < 0 ? -offset_minutes : offset_minutes;
    struct tm tm;

    gmtime_r(&local, &tm);
    snprintf(buf, n, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec, offset_minutes < 0 ? '-' : '+', off / 60, off % 60);
}

/* ---- headers ---- */

/* Bytes of the UTF-8 character starting at s (1 for stray bytes). */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = *s < 0x80 ? 1 : (*s & 0xe0) == 0xc0 ? 2 : (*s & 0xf0) == 0xe0 ? 3
             : (*s & 0xf8) == 0xf0 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

/* value as encoded words; col is the column after "Name: ". Each word takes what fits on
 * its line (up to WORD_BYTES), the rest goes on folded lines. */
static void encoded_words(struct mime_buf *b, const char *value, size_t col)
{
    const unsigned char *p = (const unsigned char *)value;
    char b64[sodium_base64_ENCODED_LEN(WORD_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    bool first = true;

    while (*p) {
        size_t room = HEADER_LINE > col + (first ? 0 : 1) + 12 ? HEADER_LINE - col - (first ? 0 : 1) - 12 : 0;
        size_t max = room / 4 * 3, take = 0;
        if (max > WORD_BYTES)
            max = WORD_BYTES;
        if (max < 4) {          /* not even one character fits: next line */
            put(b, "\r\n");
            col = 0;
            first = false;      /* the folded line starts with the separating space */
            continue;
        }
        while (p[take]) {
            size_t c = utf8_len(p + take);
            if (take + c > max)
                break;
            take += c;
        }
        sodium_bin2base64(b64, sizeof(b64), p, take, sodium_base64_VARIANT_ORIGINAL);
        if (!first) {
            put(b, " ");
            col++;
        }
        put(b, "=?UTF-8?B?");
        put(b, b64);
        put(b, "?=");
        col += 12 + strlen(b64);
        first = false;
        p += take;
    }
}

/* Printable ASCII, folded at spaces before HEADER_LINE where it can be. */
static void folded(struct mime_buf *b, const char *value, size_t col)
{
    const char *p = value;

    while (*p) {
        const char *sp = strchr(p + 1, ' ');
        size_t word = sp ? (size_t)(sp - p) : strlen(p);
        if (p != value && *p == ' ' && col + word > HEADER_LINE) {
            put(b, "\r\n");
            col = 0;            /* the space begins the continuation line */
        }
        mime_buf_put(b, p, word);
        col += word;
        p += word;
    }
}

void mime_header_text(struct mime_buf *b, const char *name, const char *value)
{
    size_t col = strlen(name) + 2;

    put(b, name);
    put(b, ": ");
    if (plain_ascii(value))
        folded(b, value, col);
    else
        encoded_words(b, value, col);
    put(b, "\r\n");
}

/* The column the buffer's last line has reached. */
static size_t column(const struct mime_buf *b)
{
    size_t i = b->len;
    while (i > 0 && b->data[i - 1] != '\n')
        i--;
    return b->len - i;
}

void mime_header_address(struct mime_buf *b, const char *name, const char *display,
                         const char *addr)
{
    size_t col = strlen(name) + 2;
    bool atoms = true;

    put(b, name);
    put(b, ": ");
    if (display && *display) {
        if (plain_ascii(display)) {
            for (const char *p = display; *p; p++)
                if (!is_atext((unsigned char)*p) && *p != ' ')
                    atoms = false;
            if (atoms) {
                put(b, display);
            } else {
                /* A quoted string: backslash before quotes and backslashes. */
                put(b, "\"");
                for (const char *p = display; *p; p++) {
                    if (*p == '"' || *p == '\\')
                        put(b, "\\");
                    mime_buf_put(b, p, 1);
                }
                put(b, "\"");
            }
        } else {
            encoded_words(b, display, col);
        }
        /* The address on a line of its own when it would not fit on the name's. */
        put(b, column(b) + strlen(addr) + 3 > HEADER_LINE ? "\r\n <" : " <");
    } else {
        put(b, "<");
    }
    put(b, addr);
    put(b, ">\r\n");
}

/* ---- bodies ---- */

void mime_quoted_printable(struct mime_buf *b, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)text;
    size_t col = 0;

    while (*p) {
        char enc[4];
        size_t n;
        bool line_start = col == 0;

        if (*p == '\r' && p[1] == '\n')
            p++;
        if (*p == '\n') {
            put(b, "\r\n");
            col = 0;
            p++;
            continue;
        }
        bool at_eol = p[1] == '\n' || p[1] == '\0' || (p[1] == '\r' && p[2] == '\n');
        if ((*p >= 33 && *p <= 126 && *p != '=' && !(line_start && *p == '.') &&
             !(line_start && *p == 'F' && strncmp((const char *)p, "From ", 5) == 0)) ||
            ((*p == ' ' || *p == '\t') && !at_eol)) {
            enc[0] = (char)*p;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            n = 3;
        }
        /* Room for a soft break ("=") at the end of the line. */
        if (col + n > QP_LINE - 1) {
            put(b, "=\r\n");
            col = 0;
            if (n == 1 && (*p == '.' || (*p == 'F' && strncmp((const char *)p, "From ", 5) == 0))) {
                enc[0] = '=';
                enc[1] = hex[*p >> 4];
                enc[2] = hex[*p & 15];
                n = 3;
            }
        }
        mime_buf_put(b, enc, n);
        col += n;
        p++;
    }
}

static void part(struct mime_buf *b, const char *boundary, const char *type, const char *lang,
                 const char *body)
{
    put(b, "--");
    put(b, boundary);
    put(b, "\r\nContent-Type: ");
    put(b, type);
    put(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n");
    if (lang && *lang) {
        put(b, "Content-Language: ");
        put(b, lang);
        put(b, "\r\n");
    }
    put(b, "\r\n");
    mime_quoted_printable(b, body ? body : "");
    put(b, "\r\n");
}

int mime_build(const struct mime_message *m, char **ret, size_t *ret_len)
{
    struct mime_buf b = { 0 };
    char date[40], boundary[64];
    unsigned char digest[12];
    char digest_hex[sizeof(digest) * 2 + 1];

    if (!mime_addr_valid(m->from_addr) || !mime_addr_valid(m->to_addr) ||
        (m->reply_to && *m->reply_to && !mime_addr_valid(m->reply_to)) ||
        !message_id_valid(m->message_id) ||
        (m->lang && strspn(m->lang, "abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(m->lang)))
        return -EINVAL;
    /* "=_" never appears in quoted-printable text: the boundary cannot occur in a part. */
    crypto_generichash(digest, sizeof(digest), (const unsigned char *)m->message_id,
                       strlen(m->message_id), NULL, 0);
    sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
    snprintf(boundary, sizeof(boundary), "=_portier_%s", digest_hex);

    mime_date(m->date, m->utc_offset_minutes, date, sizeof(date));
    put(&b, "Date: ");
    put(&b, date);
    put(&b, "\r\n");
    mime_header_address(&b, "From", m->from_name, m->from_addr);
    mime_header_address(&b, "To", m->to_name, m->to_addr);
    if (m->reply_to && *m->reply_to)
        mime_header_address(&b, "Reply-To", NULL, m->reply_to);
    mime_header_text(&b, "Subject", m->subject ? m->subject : "");
    put(&b, "Message-ID: <");
    put(&b, m->message_id);
    put(&b, ">\r\nMIME-Version: 1.0\r\n");
    /* RFC 3834: written by a program; vacation responders do not answer it. */
    put(&b, "Auto-Submitted: auto-generated\r\n");
    if (m->lang && *m->lang) {
        put(&b, "Content-Language: ");
        put(&b, m->lang);
        put(&b, "\r\n");
    }
    put(&b, "Content-Type: multipart/alternative;\r\n boundary=\"");
    put(&b, boundary);
    put(&b, "\"\r\n\r\nThis is a message in MIME format.\r\n\r\n");
    part(&b, boundary, "text/plain", m->lang, m->text);
    part(&b, boundary, "text/html", m->lang, m->html);
    put(&b, "--");
    put(&b, boundary);
    put(&b, "--\r\n");
    if (b.failed || !b.data) {
        mime_buf_free(&b);
        return -ENOMEM;
    }
    *ret = b.data;
    *ret_len = b.len;
    return 0;
}

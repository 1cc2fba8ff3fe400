/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* mime: an e-mail as the text an SMTP server receives — RFC 5322 headers (Date,
 * Message-ID, From, To, Subject), RFC 2047 encoded words for subjects and names that are not
 * plain ASCII, and a MIME multipart/alternative body with a text/plain and a text/html part
 * in UTF-8, quoted-printable (RFC 2045). Lines end in CRLF and are at most 76 characters in
 * the bodies and 78 in the headers (folded), so any server takes them.
 *
 * Pure: no I/O, no clock, no time zone files; the caller gives the date and its offset. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_ADDR_MAX 254

struct mime_message {
    const char *from_addr, *from_name;      /* name may be NULL or "" */
    const char *to_addr, *to_name;
    const char *reply_to;                   /* NULL or "": none */
    const char *subject;                    /* UTF-8 */
    const char *message_id;                 /* without the angle brackets */
    int64_t date;                           /* UTC seconds */
    int utc_offset_minutes;                 /* of the site's zone at date, for the Date header */
    const char *lang;                       /* Content-Language, e.g. "fr" */
    const char *text, *html;                /* UTF-8, lines ending in "\n" */
};

/* The whole message into a new buffer (free()), NUL-terminated; its length in *ret_len.
 * -EINVAL if an address is not one mime_addr_valid() accepts or the message id has spaces,
 * brackets or control characters; -ENOMEM. */
int mime_build(const struct mime_message *m, char **ret, size_t *ret_len);

/* An address we send to or from: local@domain, printable ASCII (no spaces, quotes, angle
 * brackets, commas or control characters), at most MIME_ADDR_MAX bytes, one '@', a domain of
 * letters, digits, '-' and dots. Also what makes it safe to hand to SMTP's MAIL FROM and
 * RCPT TO. */
bool mime_addr_valid(const char *addr);

/* The RFC 5322 date of utc at the given offset: "Wed, 09 Dec 2026 14:00:00 +0100". buf of at
 * least 32 bytes. */
void mime_date(int64_t utc, int offset_minutes, char *buf, size_t n);

/* Growable text, for the bodies and for tests of the pieces below. */
struct mime_buf {
    char *data;
    size_t len, cap;
    bool failed;                /* an allocation failed: data is incomplete */
};
void mime_buf_put(struct mime_buf *b, const char *s, size_t n);
void mime_buf_free(struct mime_buf *b);

/* A header field "Name: value" with value (UTF-8) as it should be: plain and folded at
 * spaces when it is printable ASCII, otherwise as RFC 2047 encoded words ("=?UTF-8?B?...?="),
 * each at most 75 characters and never splitting a character, on folded lines. Ends in CRLF. */
void mime_header_text(struct mime_buf *b, const char *name, const char *value);
/* An address header: "Name: display <addr>", the display name quoted or encoded as needed
 * (no name: the address alone). Ends in CRLF. */
void mime_header_address(struct mime_buf *b, const char *name, const char *display,
                         const char *addr);
/* text as quoted-printable: "\n" becomes CRLF, lines are soft-broken before 76 characters,
 * a line's trailing space, a leading '.' and a leading "From " are encoded. */
void mime_quoted_printable(struct mime_buf *b, const char *text);

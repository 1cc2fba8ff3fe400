/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* mime.c: e-mails as SMTP servers take them — dates, encoded words, quoted-printable, the
 * whole message. (tests/integration/test_mail.py parses what a real server received with
 * Python's email package.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

/* Every line of text (CRLF-separated) is at most max characters, and no bare LF is left. */
static void lines_at_most(const char *text, size_t max)
{
    const char *p = text;
    while (*p) {
        const char *end = strstr(p, "\r\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > max)
            fail_msg("line of %zu characters: %.*s", len, (int)len, p);
        assert_null(memchr(p, '\n', len));
        p += len + (end ? 2 : 0);
    }
}

/* Decode the encoded words of a header value (those this module writes: B, UTF-8). */
static void decode_words(const char *value, char *out, size_t n)
{
    const char *p = value;
    size_t used = 0;

    out[0] = '\0';
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        const char *end = strstr(p + 10, "?=");
        unsigned char bin[64];
        size_t bin_len = 0;
        assert_non_null(end);
        assert_true(end - p + 2 <= 75);     /* RFC 2047: a word is at most 75 characters */
        assert_int_equal(sodium_base642bin(bin, sizeof(bin), p + 10, (size_t)(end - p - 10), NULL,
                                           &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
        assert_true(used + bin_len < n);
        memcpy(out + used, bin, bin_len);
        used += bin_len;
        out[used] = '\0';
        p = end + 2;
    }
}

static void test_addresses(void **state)
{
    assert_true(mime_addr_valid("anne@example.org"));
    assert_true(mime_addr_valid("anne.o'neil+fablab@mail.example.org"));
    assert_false(mime_addr_valid(""));
    assert_false(mime_addr_valid("anne"));
    assert_false(mime_addr_valid("@example.org"));
    assert_false(mime_addr_valid("anne@"));
    assert_false(mime_addr_valid("a@b@c"));
    assert_false(mime_addr_valid("anne smith@example.org"));
    assert_false(mime_addr_valid("anne@example.org\r\nRCPT TO:<x@y>"));
    assert_false(mime_addr_valid("<anne@example.org>"));
    assert_false(mime_addr_valid("anne..b@example.org"));
    assert_false(mime_addr_valid(".anne@example.org"));
    assert_false(mime_addr_valid("anne@exa_mple.org"));
    assert_false(mime_addr_valid("zoé@example.org"));
}

static void test_dates(void **state)
{
    char buf[40];

    mime_date(1796832000, 60, buf, sizeof(buf));        /* 2026-12-09T16:00:00Z */
    assert_string_equal(buf, "Wed, 09 Dec 2026 17:00:00 +0100");
    mime_date(1796832000, -330, buf, sizeof(buf));
    assert_string_equal(buf, "Wed, 09 Dec 2026 10:30:00 -0530");
}

static void test_headers(void **state)
{
    struct mime_buf b = { 0 };
    char decoded[512];
    const char *long_fr = "Réservation modifiée par un responsable : découpeuse laser, mercredi "
                          "9 décembre 2026 de 14:00 à 16:00 — à bientôt à l’atelier";

    mime_header_text(&b, "Subject", "Booking confirmed");
    assert_string_equal(b.data, "Subject: Booking confirmed\r\n");
    mime_buf_free(&b);

    mime_header_text(&b, "Subject", long_fr);
    lines_at_most(b.data, 78);
    decode_words(b.data, decoded, sizeof(decoded));
    assert_string_equal(decoded, long_fr);
    mime_buf_free(&b);

    /* Text that looks like an encoded word is encoded, so it reads as written. */
    mime_header_text(&b, "Subject", "=?UTF-8?B?eA==?=");
    decode_words(b.data, decoded, sizeof(decoded));
    assert_string_equal(decoded, "=?UTF-8?B?eA==?=");
    mime_buf_free(&b);

    /* A long ASCII subject is folded at spaces. */
    mime_header_text(&b, "Subject", "Reminder: your booking of the laser cutter starts in one "
                                    "hour, at 14:00, on Wednesday 9 December 2026");
    lines_at_most(b.data, 78);
    assert_non_null(strstr(b.data, "\r\n "));
    mime_buf_free(&b);

    mime_header_address(&b, "To", "Zoé Dupont", "zoe@example.org");
    decode_words(b.data, decoded, sizeof(decoded));
    assert_string_equal(decoded, "Zoé Dupont");
    assert_non_null(strstr(b.data, " <zoe@example.org>\r\n"));
    mime_buf_free(&b);

    mime_header_address(&b, "From", "Fablab \"Le Hangar\", Lyon", "portier@example.org");
    assert_string_equal(b.data, "From: \"Fablab \\\"Le Hangar\\\", Lyon\" <portier@example.org>\r\n");
    mime_buf_free(&b);
}

static void test_quoted_printable(void **state)
{
    struct mime_buf b = { 0 };
    char text[600];

    mime_quoted_printable(&b, "Bonjour Zoé,\n.\nFrom here \nx=1\n");
    assert_string_equal(b.data, "Bonjour Zo=C3=A9,\r\n=2E\r\n=46rom here=20\r\nx=3D1\r\n");
    mime_buf_free(&b);

    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    for (int i = 50; i < 590; i += 37)
        text[i] = (char)0xc3, text[i + 1] = (char)0xa9;
    mime_quoted_printable(&b, text);
    lines_at_most(b.data, 76);
    assert_null(strstr(b.data, "=_"));
    mime_buf_free(&b);
}

static void test_message(void **state)
{
    struct mime_message m = {
        .from_addr = "portier@example.org", .from_name = "Atelier Lyon",
        .to_addr = "zoe@example.org", .to_name = "Zoé",
        .subject = "Réservation confirmée", .message_id = "1a2b.42@example.org",
        .date = 1796832000, .utc_offset_minutes = 60, .lang = "fr",
        .text = "Bonjour,\n\nVotre réservation.\n", .html = "<p>Bonjour,</p>\n",
    };
    char *msg = NULL;
    size_t len = 0;

    assert_int_equal(mime_build(&m, &msg, &len), 0);
    assert_int_equal(strlen(msg), len);
    lines_at_most(msg, 78);
    assert_non_null(strstr(msg, "Date: Wed, 09 Dec 2026 17:00:00 +0100\r\n"));
    assert_non_null(strstr(msg, "Message-ID: <1a2b.42@example.org>\r\n"));
    assert_non_null(strstr(msg, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(msg, "Content-Type: multipart/alternative;"));
    assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8\r\n"));
    assert_non_null(strstr(msg, "Content-Type: text/html; charset=UTF-8\r\n"));
    assert_non_null(strstr(msg, "Votre r=C3=A9servation."));
    assert_null(strstr(msg, "\r\n.\r\n"));      /* nothing ends an SMTP message early */
    free(msg);

    /* Nothing a member typed can add a header or a recipient. */
    m.to_addr = "zoe@example.org>\r\nBcc: x@example.org";
    assert_int_equal(mime_build(&m, &msg, &len), -EINVAL);
    m.to_addr = "zoe@example.org";
    m.message_id = "a b@example.org";
    assert_int_equal(mime_build(&m, &msg, &len), -EINVAL);
    m.message_id = "1a2b.42@example.org";
    m.to_name = "Zoé\r\nBcc: x@example.org";
    assert_int_equal(mime_build(&m, &msg, &len), 0);
    assert_null(strstr(msg, "\r\nBcc:"));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_quoted_printable),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

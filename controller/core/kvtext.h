/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* kvtext: the one reader of Portier's signed "key=value" texts: ledger entries
 * (ledger_batch.c), passports and visit notices (passport.c), period seals (period_seal.c).
 * Pure: libc only.
 *
 * Such a text is a header line ("portier-ledger-v1") and then one "KEY=VALUE" line per field,
 * each ended by '\n', in the order the format's encoder writes them. The reader is strict, so
 * that one record has one text and one signature; it refuses:
 *   - a text longer than its format allows, holding a NUL byte anywhere, or whose first line
 *     is not the header;
 *   - a line that is not the expected key followed by '=': so a key missing, repeated or out
 *     of order is refused where it stands;
 *   - a value with no '\n' after it, one that does not fit the caller's buffer (never
 *     truncated), or one holding a control byte (CR, TAB, any byte below 0x20, DEL);
 *   - a number that is not canonical decimal ("0", "42", "-7"; no '+', no leading zero,
 *     no "-0", no blank) or outside [min, max]; hex that is not exactly the expected number
 *     of lower-case digits;
 *   - anything after the last line (kv_end()).
 * Refusal is sticky: once a call refuses, every later call refuses too and leaves its output
 * alone, so a decoder reads every field and checks once, with kv_end(). The reader checks
 * the form of the lines; each format still checks its values (names, months) and that its
 * encoder writes back the very same bytes (kv_same()). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv_reader {
    const char *p, *end;
    bool refused;
};

/* Start reading text[0..len): at most max bytes, first line exactly header and '\n'.
 * false if refused (r is then refused too). */
bool kv_begin(struct kv_reader *r, const char *text, size_t len, size_t max, const char *header);
/* The next line must be "key=VALUE\n": VALUE into buf (n bytes with its NUL). */
bool kv_text(struct kv_reader *r, const char *key, char *buf, size_t n);
/* The same with a canonical decimal VALUE in [min, max]. */
bool kv_int(struct kv_reader *r, const char *key, int64_t min, int64_t max, int64_t *ret);
/* The same with VALUE exactly 2 * n lower-case hex digits, decoded into out (n at most
 * KV_HEX_MAX: hashes and keys). */
#define KV_HEX_MAX 64
bool kv_hex(struct kv_reader *r, const char *key, uint8_t *out, size_t n);
/* true if nothing was refused and lines remain: for an optional last line, which a format
 * writes only when it has something to say (older readers then still read the text). */
bool kv_more(const struct kv_reader *r);
/* true if nothing was refused and the text was read to its end. */
bool kv_end(const struct kv_reader *r);

/* Whether again (what the format's encoder wrote for the decoded record: its length, or a
 * negative error) is byte for byte text[0..len). */
bool kv_same(const char *text, size_t len, const char *again, int again_len);

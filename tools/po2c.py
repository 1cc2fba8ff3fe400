#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""po2c: compile a gettext catalog (.po) into a C table for controller/base/i18n.c.

Usage: po2c.py LANG INPUT.po OUTPUT.c [INT64]

INT64 is the target's length modifier of a 64-bit integer ("l" on 64-bit Linux, "ll" on
32-bit Linux; default "l"): xgettext writes a format's PRId64 as %<PRId64>, and the table
holds the strings as the compiled program sees them.

Fuzzy entries and empty translations are left out (the English text is shown instead); the
header entry (empty msgid) is skipped. The table is sorted by msgid as strcmp() orders it.
Standard library only: this runs at build time."""

import sys


def unquote(s, where):
    s = s.strip()
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        raise SystemExit("%s: expected a quoted string" % where)
    out, i, body = [], 0, s[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 1
            e = body[i]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r"}.get(e))
            if out[-1] is None:
                raise SystemExit("%s: unknown escape \\%s" % (where, e))
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse(path):
    entries, cur, key, fuzzy = [], {}, None, False
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()

    def flush():
        nonlocal cur, key, fuzzy
        if "msgid" in cur and cur["msgid"] and not fuzzy:
            entries.append(cur)
        cur, key, fuzzy = {}, None, False

    for n, line in enumerate(lines, 1):
        where = "%s:%d" % (path, n)
        if not line.strip():
            flush()
            continue
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if key is None:
                raise SystemExit("%s: a continuation line without a keyword" % where)
            cur[key] += unquote(line, where)
            continue
        word, _, rest = line.partition(" ")
        if word == "msgid" and "msgid" in cur:
            flush()
        if word not in ("msgid", "msgid_plural", "msgstr", "msgstr[0]", "msgstr[1]", "msgctxt"):
            raise SystemExit("%s: unknown keyword %s" % (where, word))
        key = word
        cur[key] = unquote(rest, where)
    flush()
    return entries


def c_string(s):
    if s is None:
        return "NULL"
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\" or c == '"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append("\\%03o" % b)
    return '"' + "".join(out) + '"'


def expand_int64(s, mod):
    """%<PRId64> and its kin as the target's printf spells them."""
    if s is None:
        return None
    for conv in "diouxX":
        s = s.replace("<PRI%s64>" % conv, mod + conv)
    return s


def main():
    lang, src, dst = sys.argv[1:4]
    mod = sys.argv[4] if len(sys.argv) > 4 else "l"
    if mod not in ("l", "ll"):
        raise SystemExit("po2c: INT64 must be l or ll")
    entries = parse(src)
    for e in entries:
        for k in list(e):
            e[k] = expand_int64(e[k], mod)
    seen = set()
    rows = []
    for e in entries:
        msgid = e["msgid"]
        if msgid in seen:
            raise SystemExit("%s: msgid %r twice" % (src, msgid))
        seen.add(msgid)
        if "msgid_plural" in e:
            strs = (e.get("msgstr[0]", ""), e.get("msgstr[1]", ""))
        else:
            strs = (e.get("msgstr", ""), None)
        if not strs[0]:
            continue
        rows.append((msgid, e.get("msgid_plural"), strs))
    rows.sort(key=lambda r: r[0].encode("utf-8"))
    with open(dst + ".tmp", "w", encoding="ascii") as f:
        f.write("/* Generated from %s by tools/po2c.py: do not edit. */\n" % src.split("/")[-1])
        f.write('#include "i18n_catalog.h"\n\n')
        f.write("const struct i18n_entry i18n_catalog_%s[] = {\n" % lang)
        for msgid, plural, (s0, s1) in rows:
            f.write("    { %s, %s, { %s, %s } },\n" % (c_string(msgid), c_string(plural),
                                                       c_string(s0), c_string(s1)))
        if not rows:
            f.write("    { NULL, NULL, { NULL, NULL } },\n")
        f.write("};\nconst size_t i18n_catalog_%s_count = %d;\n" % (lang, len(rows)))
    import os
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()

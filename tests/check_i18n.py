#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Every message marked for translation in the sources has a French translation that keeps
its format specifiers.

Usage: check_i18n.py SOURCE_ROOT. Extracts the marked messages with xgettext (keywords
i18n_t:2, i18n_nt:2,3, N_, the web's L:2, LN:2,3 and http_error:4, and cmd_fail:4: a refusal
is translated into its caller's language), then checks po/fr.po: each has a translation,
not fuzzy and not empty (both plural forms), and msgfmt --check-format accepts the catalog
(a translation that drops, adds or reorders a %s or %d fails). Prints each problem; exits
1 if any."""

import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import po2c  # noqa: E402

KEYWORDS = ["--keyword=i18n_t:2", "--keyword=i18n_nt:2,3", "--keyword=N_", "--keyword=L:2",
            "--keyword=cmd_fail:4", "--keyword=LN:2,3", "--keyword=http_error:4"]


def sources(root):
    files = []
    for pattern in ("controller/**/*.c", "web/**/*.c", "hw/**/*.c"):
        files += glob.glob(os.path.join(root, pattern), recursive=True)
    return sorted(files)


def selftest():
    """The check must fail on a missing translation and on a dropped format specifier."""
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n' \
             '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
    cases = [
        ('i18n_t(l, "Door %s opened");', "", "no French translation"),
        ('i18n_t(l, "Door %s opened");',
         '#, c-format\nmsgid "Door %s opened"\nmsgstr "Porte ouverte"\n', "msgfmt"),
        ('i18n_t(l, "Door %s opened");',
         '#, c-format\nmsgid "Door %s opened"\nmsgstr "Porte %s ouverte"\n', None),
    ]
    for code, entry, expect in cases:
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "controller"))
            os.makedirs(os.path.join(root, "po"))
            with open(os.path.join(root, "controller", "x.c"), "w") as f:
                f.write("void f(int l) { %s }\n" % code)
            with open(os.path.join(root, "po", "fr.po"), "w") as f:
                f.write(header + entry)
            r = subprocess.run([sys.executable, os.path.abspath(__file__), root],
                               capture_output=True, text=True)
            if expect is None and r.returncode != 0:
                print("selftest: a correct catalog was refused:\n" + r.stdout)
                return 1
            if expect is not None and (r.returncode == 0 or expect not in r.stdout):
                print("selftest: %r not caught:\n%s" % (expect, r.stdout))
                return 1
    print("selftest ok: missing and broken translations are caught")
    return 0


def main():
    if sys.argv[1] == "--selftest":
        return selftest()
    root = sys.argv[1]
    po = os.path.join(root, "po", "fr.po")
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, "portier.pot")
        subprocess.run(["xgettext", "--language=C", "--from-code=UTF-8", "--add-comments",
                        "--no-location", "--sort-output", "-o", pot] + KEYWORDS + sources(root),
                       check=True)
        marked = po2c.parse(pot) if os.path.exists(pot) else []
        r = subprocess.run(["msgfmt", "--check-format", "--check-header", "-o", os.devnull, po],
                           capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("msgfmt --check-format po/fr.po:\n" + r.stderr)
    # po2c.parse skips fuzzy entries: a fuzzy translation counts as missing.
    translated = {e["msgid"]: e for e in po2c.parse(po)}
    for m in marked:
        t = translated.get(m["msgid"])
        if not t:
            problems.append("no French translation for %r" % m["msgid"])
        elif "msgid_plural" in m:
            if not t.get("msgstr[0]") or not t.get("msgstr[1]"):
                problems.append("plural %r lacks a French form" % m["msgid"])
        elif not t.get("msgstr"):
            problems.append("empty French translation for %r" % m["msgid"])
    for p in problems:
        print(p)
    print("%d marked messages, %d translated, %d problem(s)" %
          (len(marked), len(translated), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

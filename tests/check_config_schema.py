#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""tools/config-schema.py refuses a broken config.schema with `file:line: message`, and
writes the tables from a good one. Usage: check_config_schema.py SOURCE_DIR"""

import os
import subprocess
import sys
import tempfile

GOOD = """# a comment
[site] site_config
    Who.

id name = site
    The id.
closing hhmm 0..1 =
    Closing.

[door NAME] door_config
    Doors.

reader name required
    Its reader.
free_entry schedule text:free_entry_text = never
    Windows.
"""

BROKEN = [
    ("[site] site_config\n    Who.\n\nid nom = site\n    The id.\n", 4, "unknown type 'nom'"),
    ("[site] site_config\n    Who.\n\nid name\n    The id.\n", 4, "either `= DEFAULT`"),
    ("[site] site_config\n    Who.\n\nid name = a\n    A.\nid name = b\n    B.\n", 6,
     "listed twice"),
    ("[site] site_config\n    Who.\n\nid name = a\n", 4, "has no help text"),
    ("[site] site_config\n    Who.\n\nlang enum = en\n    Lang.\n", 4, "name their choices"),
    ("id name = a\n    A.\n", 1, "before any section"),
    ("[site] site_config\n    Who.\n\nid name 1..x = a\n    A.\n", 4, "unknown option"),
    ("[site] site_config\n    Who.\n\n    Stray help.\n", 4, "help text belongs"),
]


def run(tool, text):
    with tempfile.TemporaryDirectory() as d:
        schema, out = os.path.join(d, "c.schema"), os.path.join(d, "c.inc")
        with open(schema, "w") as f:
            f.write(text)
        p = subprocess.run([sys.executable, tool, schema, out], capture_output=True, text=True)
        body = open(out).read() if os.path.exists(out) else None
        return p, schema, body


def main():
    tool = os.path.join(sys.argv[1], "tools", "config-schema.py")
    failures = 0
    p, _, body = run(tool, GOOD)
    if p.returncode != 0 or "enum { SEC_SITE, SEC_DOOR, SEC__MAX };" not in body or \
            'offsetof(struct door_config, free_entry_text)' not in body or \
            '"reader", CT_NAME, offsetof(struct door_config, reader), ' \
            'sizeof(((struct door_config *)0)->reader), 0, 0, NULL' not in body:
        print("a good schema: rc %d, %s\n%s" % (p.returncode, p.stderr, body))
        failures += 1
    for text, line, message in BROKEN:
        p, schema, body = run(tool, text)
        want = "%s:%d: " % (schema, line)
        if p.returncode == 0 or not p.stderr.startswith(want) or message not in p.stderr \
                or body is not None:
            print("expected %r with %r, got rc %d: %s" % (want, message, p.returncode,
                                                          p.stderr))
            failures += 1
    print("%d of %d cases wrong" % (failures, len(BROKEN) + 1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: AGPL-3.0-or-later
"""docs/configuration.md must contain, verbatim, the reference that portierd prints from its
key tables (portierd --config-reference): the docs cannot drift from the code."""
import subprocess
import sys

portierd, doc = sys.argv[1], sys.argv[2]
reference = subprocess.run([portierd, "--config-reference"], capture_output=True, text=True,
                           check=True).stdout
with open(doc) as f:
    text = f.read()
begin, end = "<!-- BEGIN GENERATED: portierd --config-reference -->\n", "<!-- END GENERATED -->"
if begin not in text or end not in text:
    sys.exit("%s: missing the generated-reference markers" % doc)
current = text.split(begin, 1)[1].split(end, 1)[0]
if current.strip() != reference.strip():
    sys.exit("%s is out of date: regenerate the reference with tools/gen-config-docs" % doc)
print("configuration reference up to date")

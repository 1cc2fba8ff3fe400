# SPDX-License-Identifier: AGPL-3.0-or-later
"""bash completion of portierctl (tools/portierctl.bash-completion) in a real bash with
Debian's bash-completion: commands and options from portierctl's own table, door, reader
and machine names from a running daemon.

Run: PORTIER_BIN=build/bin /usr/bin/python3 tests/integration/test_completion.py"""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import BIN, WAIT, Daemon  # noqa: E402

SRC = os.environ.get("PORTIER_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(SRC, "tools", "portierctl.bash-completion")

DRIVER = r'''
. /usr/share/bash-completion/bash_completion
. "$COMPLETION"
COMP_LINE=$LINE; COMP_POINT=${#LINE}
read -ra COMP_WORDS <<< "$LINE"
[[ "$LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_portierctl portierctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


class CompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.d.dir, ignore_errors=True)

    def complete(self, line, socket=True):
        env = dict(os.environ, COMPLETION=SCRIPT, LINE=line,
                   PATH=os.path.abspath(BIN) + ":" + os.environ.get("PATH", ""))
        env.pop("PORTIER_SOCKET", None)
        if socket:
            env["PORTIER_SOCKET"] = self.d.socket
        p = subprocess.run(["bash", "-c", DRIVER], capture_output=True, text=True, env=env,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return sorted(w for w in p.stdout.split("\n") if w)

    def test_commands_and_subcommands(self):
        words = self.complete("portierctl ")
        for w in ("status", "member", "door", "booking", "sim", "account"):
            self.assertIn(w, words)
        self.assertEqual(self.complete("portierctl door un"), ["unlock"])
        self.assertEqual(self.complete("portierctl booking "), ["add", "cancel", "list", "move"])

    def test_options_of_a_command(self):
        options = self.complete("portierctl sim tap --")
        for o in ("--hold", "--json", "--reader"):
            self.assertIn(o, options)
        self.assertTrue(all(o.startswith("--") for o in options), options)
        self.assertNotIn("--plan", options)         # member add's, not sim tap's
        self.assertIn("--socket", self.complete("portierctl --"))

    def test_names_from_the_running_daemon(self):
        self.assertEqual(self.complete("portierctl door unlock "), ["back", "front"])
        self.assertEqual(self.complete("portierctl sim tap --reader "), ["back", "front"])
        self.assertEqual(self.complete("portierctl -s %s reader restart " % self.d.socket,
                                       socket=False), ["back", "front"])

    def test_no_daemon_no_noise(self):
        env_line = "portierctl -s /nonexistent/ctl.sock door unlock "
        self.assertEqual(self.complete(env_line, socket=False), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

# SPDX-License-Identifier: AGPL-3.0-or-later
"""portier-backup against a running daemon, its restore, and what the daemon does with a
database written by a newer Portier: it refuses it without touching it (a downgrade of the
package must never damage the data).

Run: PORTIER_BIN=build/bin /usr/bin/python3 tests/integration/test_backup.py"""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import BIN, PORTIERD, WAIT, Daemon  # noqa: E402

BACKUP = os.path.join(BIN, "portier-backup")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.d.start()
        self.dest = os.path.join(self.d.dir, "backups")
        self.state = os.path.join(self.d.dir, "state")

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.d.dir, ignore_errors=True)

    def backup(self, *extra):
        p = subprocess.run([BACKUP, "--state-dir", self.state, "--dest", self.dest] + list(extra),
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip().rsplit(" to ", 1)[1]

    def members(self, path):
        with sqlite3.connect(path) as db:
            return sorted(r[0] for r in db.execute("SELECT name FROM members"))

    def test_backup_while_running_then_restore(self):
        self.d.ctl("plan", "add", "all", "--zones", "*", "--hours", "always")
        self.d.ctl("member", "add", "Alice Martin", "--plan", "all")
        self.d.ctl("member", "add", "Bruno Petit", "--plan", "all")
        # A signed archive of a closed period, as period close leaves it.
        os.makedirs(os.path.join(self.state, "archives"), exist_ok=True)
        with open(os.path.join(self.state, "archives", "2026-11.json"), "w") as f:
            f.write('{"period": "2026-11"}\n')

        # The daemon keeps running and writing while the backup is taken.
        first = self.backup()
        self.assertEqual(self.members(os.path.join(first, "portier.db")),
                         ["Alice Martin", "Bruno Petit"])
        with sqlite3.connect(os.path.join(first, "portier.db")) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertTrue(os.path.exists(os.path.join(first, "archives", "2026-11.json")))
        self.assertEqual(oct(os.stat(first).st_mode & 0o777), "0o700")
        self.assertEqual(oct(os.stat(os.path.join(first, "portier.db")).st_mode & 0o777), "0o600")

        # Later changes, then a disaster: restore the backup.
        self.d.ctl("member", "add", "Chloé Durand", "--plan", "all")
        p = subprocess.run([BACKUP, "--state-dir", self.state, "--restore", first],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertNotEqual(p.returncode, 0, "restore must refuse while portierd runs")
        self.assertIn("is open", p.stderr)
        self.d.stop()
        p = subprocess.run([BACKUP, "--state-dir", self.state, "--restore", first],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        replaced = [n for n in os.listdir(self.state) if n.startswith("replaced-")]
        self.assertEqual(len(replaced), 1, "the previous database is kept aside")
        self.assertIn("portier.db", os.listdir(os.path.join(self.state, replaced[0])))

        self.d.start()
        _, out, _ = self.d.ctl("member", "list")
        self.assertIn("Alice Martin", out)
        self.assertIn("Bruno Petit", out)
        self.assertNotIn("Chloé Durand", out)
        self.assertTrue(os.path.exists(os.path.join(self.state, "archives", "2026-11.json")))
        # The restored site still takes changes.
        self.d.ctl("member", "add", "David Roux", "--plan", "all")

    def test_keeps_the_newest(self):
        names = set()
        for _ in range(3):
            names.add(os.path.basename(self.backup("--keep", "2")))
            # Names are per second: wait for the next one.
            subprocess.run(["sleep", "1.1"], check=True)
        left = sorted(n for n in os.listdir(self.dest) if n.startswith("portier-"))
        self.assertEqual(len(left), 2)
        self.assertEqual(left, sorted(names)[1:])

    def test_refuses_a_damaged_backup(self):
        bad = os.path.join(self.d.dir, "bad")
        os.makedirs(bad)
        with open(os.path.join(bad, "portier.db"), "wb") as f:
            f.write(b"SQLite format 3\0" + b"\xff" * 4000)
        self.d.stop()
        before = sha256(os.path.join(self.state, "portier.db"))
        p = subprocess.run([BACKUP, "--state-dir", self.state, "--restore", bad],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(sha256(os.path.join(self.state, "portier.db")), before)


class SchemaVersionTest(unittest.TestCase):
    """A downgraded daemon refuses a newer schema and leaves it alone."""

    def test_newer_schema_is_refused_untouched(self):
        d = Daemon()
        try:
            d.start()
            d.ctl("plan", "add", "all", "--zones", "*", "--hours", "always")
            d.stop()
            db_path = os.path.join(d.dir, "state", "portier.db")
            db = sqlite3.connect(db_path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            # What a newer Portier would leave behind, all in the main file.
            db.execute("PRAGMA user_version = %d" % (version + 1))
            db.commit()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            before = sha256(db_path)
            p = subprocess.run([PORTIERD, "-c", d.config_path], capture_output=True, text=True,
                               timeout=WAIT)
            self.assertEqual(p.returncode, 1)
            self.assertIn("written by a newer Portier", p.stderr)
            self.assertEqual(sha256(db_path), before, "the newer database was modified")
            with sqlite3.connect(db_path) as db:
                self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], version + 1)
        finally:
            d.stop()
            shutil.rmtree(d.dir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)

# SPDX-License-Identifier: AGPL-3.0-or-later
"""Power cuts, not only kill -9 (issue 12.4): the real daemon under a preload layer that
keeps only what was fsync'd (tests/powercut/powercut.c), cut at points spread over taps, day
charges, ledger entries, a period close and migrations. After each cut: every acknowledged
record is on disk, integrity_check is ok, the ledger verifies, the schema is exactly that of
its version, and the daemon starts again. tools/torture runs a thousand and more cut points;
this runs a sample of them."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import powercut_rig  # noqa: E402
from portier_harness import main  # noqa: E402

CUTS = int(os.environ.get("PORTIER_POWERCUT_CUTS", "16"))
MIGRATION_CUTS = int(os.environ.get("PORTIER_POWERCUT_MIGRATION_CUTS", "10"))


class Workdir(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-powercut-")

    def tearDown(self):
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            print("\nkept for inspection: " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class LayerTest(Workdir):
    """The layer itself: what was not synced is gone after the cut (so the tests below can
    fail)."""

    def test_only_synced_content_under_synced_names_survives(self):
        state = os.path.join(self.dir, "state")
        shadow = os.path.join(self.dir, "shadow")
        os.makedirs(state)
        os.makedirs(shadow)
        with open(os.path.join(state, "old"), "w") as f:
            f.write("old")
        script = textwrap.dedent("""
            import os, sys
            d = sys.argv[1]
            def write(name, text, sync):
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.write(fd, text.encode())
                if sync:
                    os.fsync(fd)
                os.close(fd)
            def sync_dir(path):
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
                os.fsync(fd)
                os.close(fd)
            write("synced", "kept", True)
            write("unsynced", "lost", False)
            os.mkdir(os.path.join(d, "sub"))
            write("sub/inner", "kept too", True)
            sync_dir(os.path.join(d, "sub"))
            os.mkdir(os.path.join(d, "lostdir"))
            write("lostdir/inner", "lost", True)
            sync_dir(os.path.join(d, "lostdir"))
            sync_dir(d)                                   # names so far are durable
            write("late", "no name", True)                # synced, but its name is not
            write("old.tmp", "new", True)
            os.rename(os.path.join(d, "old.tmp"), os.path.join(d, "old"))   # not synced
            os.unlink(os.path.join(d, "synced"))          # not synced either
        """)
        env = dict(os.environ, LD_PRELOAD=powercut_rig.LAYER, PORTIER_POWERCUT_DIR=state,
                   PORTIER_POWERCUT_SHADOW=shadow)
        subprocess.run(["/usr/bin/python3", "-c", script, state], env=env, check=True)
        disk = os.path.join(shadow, "disk")

        def content(name):
            with open(os.path.join(disk, name)) as f:
                return f.read()

        self.assertEqual(content("synced"), "kept")
        self.assertEqual(content("unsynced"), "")     # its name was synced, its data not
        self.assertEqual(content("sub/inner"), "kept too")
        self.assertEqual(content("lostdir/inner"), "lost")   # lostdir's name was synced
        self.assertEqual(content("old"), "old")
        self.assertFalse(os.path.exists(os.path.join(disk, "late")))
        self.assertFalse(os.path.exists(os.path.join(disk, "old.tmp")))

    def test_a_directory_whose_name_was_not_synced_is_lost_with_its_files(self):
        state = os.path.join(self.dir, "state")
        shadow = os.path.join(self.dir, "shadow")
        os.makedirs(state)
        os.makedirs(shadow)
        script = textwrap.dedent("""
            import os, sys
            d = os.path.join(sys.argv[1], "archives")
            os.mkdir(d)
            fd = os.open(os.path.join(d, "a"), os.O_WRONLY | os.O_CREAT)
            os.write(fd, b"x")
            os.fsync(fd)
            os.close(fd)
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)
        """)
        env = dict(os.environ, LD_PRELOAD=powercut_rig.LAYER, PORTIER_POWERCUT_DIR=state,
                   PORTIER_POWERCUT_SHADOW=shadow)
        subprocess.run(["/usr/bin/python3", "-c", script, state], env=env, check=True)
        self.assertEqual(os.listdir(os.path.join(shadow, "disk")), [])


class PowerCutTest(Workdir):
    def test_acknowledged_records_survive_cuts_anywhere(self):
        rig = powercut_rig.Rig(self.dir)
        events = rig.dry_run()
        self.assertGreater(events, 50)
        acknowledged = [rig.cut(at) for at in powercut_rig.spread(events, CUTS)]
        # The cuts fell before, among and after the acknowledged records.
        self.assertEqual(acknowledged[0], 0)
        self.assertGreater(max(acknowledged), 10)

    def test_migrations_are_whole_or_not_at_all(self):
        rig = powercut_rig.MigrationRig(self.dir, 1)
        events = rig.run()
        for at in powercut_rig.spread(events, MIGRATION_CUTS):
            rig.run(at)
        # Some cuts left a database between the first and the last version.
        self.assertGreater(len(rig.versions_seen), 2, rig.versions_seen)


if __name__ == "__main__":
    main()

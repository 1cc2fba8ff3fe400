# SPDX-License-Identifier: AGPL-3.0-or-later
"""portierd's life cycle: config check, sd_notify, SIGHUP reload, SIGTERM, kill -9."""

import os
import signal
import socket
import subprocess
import sys
import threading
import json

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (PORTIERD, Daemon, DaemonTest, main, wait_until,  # noqa: E402
                             base_config)


class ConfigCheckTest(DaemonTest):
    def setUp(self):
        self.d = Daemon()

    def check(self, text):
        self.d.write_config(text)
        p = subprocess.run([PORTIERD, "-n", "-c", self.d.config_path], capture_output=True,
                           text=True, timeout=20)
        return p.returncode, p.stdout, p.stderr

    def test_valid_config_passes(self):
        code, out, _ = self.check(base_config(self.d.dir, unlock=5, held=30))
        self.assertEqual(code, 0)
        self.assertIn("OK (2 doors, 0 machines, 2 readers)", out)

    def test_errors_name_file_and_line(self):
        text = base_config(self.d.dir, unlock=5, held=30)
        text = text.replace("unlock_seconds = 5", "unlock_seconds = 9999", 1)
        text += "\n[door side]\nreader = nowhere\nrelay = 30\ncolour = blue\n"
        code, _, err = self.check(text)
        self.assertEqual(code, 1)
        lines = text.split("\n")
        bad_unlock = lines.index("unlock_seconds = 9999") + 1
        colour = lines.index("colour = blue") + 1
        reader = lines.index("reader = nowhere") + 1
        path = self.d.config_path
        self.assertIn("%s:%d: unlock_seconds = 9999 is out of range [1, 600]" % (path, bad_unlock), err)
        self.assertIn("%s:%d: unknown key 'colour' in [door]" % (path, colour), err)
        # Cross-section errors are only checked once the keys are valid.
        text = text.replace("unlock_seconds = 9999", "unlock_seconds = 5").replace("colour = blue\n", "")
        code, _, err = self.check(text)
        self.assertEqual(code, 1)
        self.assertIn("%s:%d: door 'side' uses reader 'nowhere'" % (path, reader), err)

    def test_usage(self):
        p = subprocess.run([PORTIERD, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--check", p.stdout)
        p = subprocess.run([PORTIERD, "--bogus"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)

    def test_missing_file(self):
        p = subprocess.run([PORTIERD, "-n", "-c", "/nonexistent/portier.conf"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("/nonexistent/portier.conf: cannot open", p.stderr)


class LifecycleTest(DaemonTest):
    unlock = 1

    def test_ready_and_status_notifications(self):
        # setUp already waited for READY=1; a reload sends RELOADING=1 then READY=1 again.
        self.d.kill(signal.SIGHUP)
        seen = self.d.wait_notify("READY=1")
        self.assertTrue(any("RELOADING=1" in m for m in seen), seen)
        self.assertTrue(any("STATUS=2 doors" in m for m in seen), seen)

    def test_sighup_applies_valid_config(self):
        self.d.seed()
        self.d.write_config(base_config(self.d.dir, unlock=77, held=2))
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        self.d.tap("04A1B2C3")
        self.assertGreater(self.d.door("front")["unlock_remaining"], 60)

    def test_sighup_with_broken_config_keeps_the_old_one(self):
        self.d.seed()
        self.d.write_config(base_config(self.d.dir, unlock=77, held=2)
                            + "\n[door broken]\nrelay = x\n")
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        log = self.d.log_text()
        self.assertIn("relay must be a line", log)
        self.assertIn("keeping the current configuration", log)
        # Still the old unlock_seconds = 1, and still serving.
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        self.assertLessEqual(self.d.door("front")["unlock_remaining"], 1)
        wait_until(lambda: not self.d.relay_file("front"), what="relock with old timing")

    def test_sighup_refuses_hardware_changes(self):
        self.d.write_config(base_config(self.d.dir, unlock=1, held=2)
                            .replace("relay = 17", "relay = 5"))
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        self.assertIn("restart portierd to apply it", self.d.log_text())
        self.assertIn("gpiochip0:17", self.d.door("front")["relay"]["line"])

    def test_sigterm_leaves_relays_safe(self):
        self.d.seed()
        self.d.ok({"cmd": "door.unlock", "door": "front", "seconds": 600})
        self.assertTrue(self.d.relay_file("front"))
        self.assertTrue(self.d.relay_file("back"))     # fail-safe maglock energised = locked
        self.assertEqual(self.d.stop(signal.SIGTERM), 0)
        # Both relays de-energised: the strike locks, the maglock releases (fail-safe).
        self.assertFalse(self.d.relay_file("front"))
        self.assertFalse(self.d.relay_file("back"))
        self.assertIn("relays are in their safe state", self.d.log_text())

    def test_restart_starts_with_relays_locked(self):
        self.d.seed()
        self.d.ok({"cmd": "door.unlock", "door": "front", "seconds": 600})
        self.d.stop(signal.SIGKILL)
        self.d.start()
        self.assertFalse(self.d.relay_file("front"))
        self.assertEqual(self.d.door("front")["state"], "locked")
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])      # data survived the kill


class WatchdogTest(DaemonTest):
    def setUp(self):
        self.d = Daemon()
        # As systemd does for WatchdogSec=: the loop must pet it at least every 0.3 s.
        self.d.start(env_extra={"WATCHDOG_USEC": "300000"})

    def test_loop_pets_the_watchdog(self):
        for _ in range(3):
            self.d.wait_notify("WATCHDOG=1")


class HardwareTest(DaemonTest):
    def setUp(self):
        self.d = Daemon()

    def test_gpiod_backend_without_chip_fails_clearly(self):
        # This machine has no GPIO chip: the libgpiod back-end must say so and exit non-zero,
        # not start with doors it cannot drive.
        text = base_config(self.d.dir, unlock=1, held=2).replace(
            "backend = sim", "backend = gpiod\nchip = gpiochip9")
        self.d.write_config(text)
        p = subprocess.run([PORTIERD, "-c", self.d.config_path], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(p.returncode, 1)
        self.assertIn("door front: cannot open relay line", p.stderr)

    def test_free_entry_window_unlocks_and_relocks_on_reload(self):
        text = base_config(self.d.dir, unlock=1, held=2)
        self.d.write_config(text.replace("held_open_seconds = 2",
                                         "held_open_seconds = 2\nfree_entry = daily 00:00-24:00"))
        self.d.start()
        door = self.d.door("front")
        self.assertEqual((door["state"], door["free_entry"]), ("unlocked", True))
        self.assertTrue(self.d.relay_file("front"))
        # No alarm while the door stands open in a free-entry window.
        self.d.ctl("sim", "open", "front")
        self.assertEqual(self.d.door("front")["alarm"], "none")
        self.d.ctl("sim", "close", "front")
        self.d.write_config(text)   # window removed
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        wait_until(lambda: not self.d.relay_file("front"), what="locked after the window")
        kinds = [(e["kind"], e["reason"]) for e in self.d.events()]
        self.assertIn(("free_entry", "window_begins"), kinds)
        self.assertIn(("free_entry", "window_ends"), kinds)


class CrashTest(DaemonTest):
    def test_kill9_during_burst_loses_no_committed_event(self):
        self.d.seed()
        acked = []
        errors = []
        stop = threading.Event()

        def tapper(uid):
            while not stop.is_set():
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(5)
                    s.connect(self.d.socket)
                    s.sendall((json.dumps({"cmd": "sim.tap", "reader": "front", "uid": uid})
                               + "\n").encode())
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    s.close()
                    reply = json.loads(data)
                    acked.append(reply["event_id"])
                except (OSError, ValueError) as e:
                    errors.append(e)
                    return

        threads = [threading.Thread(target=tapper, args=(uid,))
                   for uid in ("04A1B2C3", "04B0B0B0", "04DEADBE", "04C0C0C0")]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 300, what="300 acknowledged taps")
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=20)
        db = self.d.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        stored = {r[0] for r in db.execute("SELECT id FROM access_events")}
        missing = [e for e in acked if e not in stored]
        self.assertEqual(missing, [], "acknowledged events lost by kill -9")
        self.assertGreaterEqual(len(stored), len(acked))
        db.close()
        # And the daemon starts again on that database.
        self.d.start()
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])


if __name__ == "__main__":
    main()

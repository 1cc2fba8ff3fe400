# SPDX-License-Identifier: AGPL-3.0-or-later
"""The door, end to end: the real portierd on simulated hardware, driven like a manager
and a member would, checked on relays, events and portierctl's output."""

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import DaemonTest, main, wait_until  # noqa: E402


class DoorTest(DaemonTest):
    def test_granted_tap_energises_relay_then_locks_again(self):
        alice, _, _ = self.d.seed()
        self.assertFalse(self.d.relay_file("front"))
        reply = self.d.tap("04A1B2C3")
        self.assertTrue(reply["granted"])
        self.assertEqual(reply["member_id"], alice)
        # The relay was written before the reply: it is energised now.
        self.assertTrue(self.d.relay_file("front"))
        self.assertEqual(self.d.door("front")["state"], "unlocked")
        # ... and de-energised once unlock_seconds (1 s) have passed.
        wait_until(lambda: not self.d.relay_file("front"), what="front relay off")
        self.assertEqual(self.d.door("front")["state"], "locked")
        ev = self.d.events()[-1]
        self.assertEqual((ev["kind"], ev["granted"], ev["reason"], ev["member_id"], ev["door"]),
                         ("tap", True, "granted", alice, "front"))

    def test_unknown_card_denied(self):
        self.d.seed()
        reply = self.d.tap("04DEADBE")
        self.assertFalse(reply["granted"])
        self.assertEqual(reply["reason"], "unknown_card")
        self.assertFalse(self.d.relay_file("front"))
        ev = self.d.events()[-1]
        self.assertEqual((ev["granted"], ev["reason"], ev["member_id"]), (False, "unknown_card", 0))

    def test_suspended_member_denied_and_resumed(self):
        alice, _, _ = self.d.seed()
        self.d.ctl("member", "suspend", "Alice")
        reply = self.d.tap("04A1B2C3")
        self.assertEqual((reply["granted"], reply["reason"]), (False, "member_suspended"))
        self.assertFalse(self.d.relay_file("front"))
        self.d.ctl("member", "resume", str(alice))
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])

    def test_outside_plan_hours_denied(self):
        # A plan open only on the weekday three days from now, all day: now is outside.
        day = (datetime.date.today() + datetime.timedelta(days=3)).strftime("%a")
        self.d.ok({"cmd": "plan.add", "name": "later", "hours": day + " 00:00-24:00"})
        self.d.ok({"cmd": "member.add", "name": "Dan", "plan": "later"})
        self.d.ok({"cmd": "card.add", "member": "Dan", "uid": "04D0D0D0"})
        reply = self.d.tap("04D0D0D0")
        self.assertEqual((reply["granted"], reply["reason"]), (False, "outside_plan_hours"))
        self.assertFalse(self.d.relay_file("front"))

    def test_unreadable_plan_hours_keep_the_door_closed(self):
        # Hours the daemon cannot parse (a file edited by hand, or by another version) open
        # nothing: the plan is closed, not "always".
        alice, _, _ = self.d.seed()
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        wait_until(lambda: not self.d.relay_file("front"), what="front relay off")
        with self.d.db() as db:
            db.execute("UPDATE plans SET hours = 'whenever' WHERE name = 'open'")
        reply = self.d.tap("04A1B2C3")
        self.assertEqual((reply["granted"], reply["reason"]), (False, "outside_plan_hours"))
        self.assertFalse(self.d.relay_file("front"))
        ev = self.d.events()[-1]
        self.assertEqual((ev["granted"], ev["reason"], ev["member_id"]),
                         (False, "outside_plan_hours", alice))
        self.assertIn("cannot be read", self.d.log_text())

    def test_expired_and_not_yet_valid_members(self):
        self.d.ok({"cmd": "plan.add", "name": "open"})
        self.d.ok({"cmd": "member.add", "name": "Old", "plan": "open", "valid_until": "2020-01-01"})
        self.d.ok({"cmd": "member.add", "name": "New", "plan": "open", "valid_from": "2099-01-01"})
        self.d.ok({"cmd": "card.add", "member": "Old", "uid": "04010101"})
        self.d.ok({"cmd": "card.add", "member": "New", "uid": "04020202"})
        self.assertEqual(self.d.tap("04010101")["reason"], "member_expired")
        self.assertEqual(self.d.tap("04020202")["reason"], "member_not_yet_valid")

    def test_zone_not_in_plan(self):
        _, bob, _ = self.d.seed()
        # Bob's plan covers zone main (front) but not fablab (back).
        self.assertTrue(self.d.tap("04B0B0B0", reader="front")["granted"])
        reply = self.d.tap("04B0B0B0", reader="back")
        self.assertEqual((reply["granted"], reply["reason"]), (False, "zone_not_in_plan"))

    def test_removed_card_is_unknown(self):
        self.d.seed()
        self.d.ctl("card", "remove", "--uid", "04A1B2C3")
        self.assertEqual(self.d.tap("04A1B2C3")["reason"], "unknown_card")

    def test_fail_safe_door_relay_is_energised_while_locked(self):
        self.d.seed()
        self.assertTrue(self.d.relay_file("back"))      # maglock holding
        self.assertTrue(self.d.tap("04A1B2C3", reader="back")["granted"])
        self.assertFalse(self.d.relay_file("back"))     # released to open
        wait_until(lambda: self.d.relay_file("back"), what="maglock re-energised")

    def test_exit_button_unlocks_and_is_logged(self):
        self.d.ctl("sim", "press", "front.exit")
        self.assertTrue(self.d.relay_file("front"))
        self.d.ctl("sim", "release", "front.exit")
        wait_until(lambda: not self.d.relay_file("front"), what="relock after exit")
        kinds = [(e["kind"], e["reason"]) for e in self.d.events()]
        self.assertIn(("exit", "exit_button"), kinds)

    def test_forced_open_alarm(self):
        self.d.ctl("sim", "open", "front")
        wait_until(lambda: self.d.door("front")["alarm"] == "forced", what="forced alarm")
        self.assertIn(("alarm", "forced"), [(e["kind"], e["reason"]) for e in self.d.events()])
        self.d.ctl("sim", "close", "front")
        wait_until(lambda: self.d.door("front")["alarm"] == "none", what="alarm cleared")
        self.assertIn("alarm_cleared", [e["kind"] for e in self.d.events()])

    def test_opening_after_granted_tap_is_not_forced_and_relocks_on_close(self):
        self.d.seed()
        self.d.ok({"cmd": "door.unlock", "door": "front", "seconds": 1})
        self.d.ok({"cmd": "door.lock", "door": "front"})
        self.d.tap("04A1B2C3")
        self.d.ctl("sim", "open", "front")
        self.d.ctl("sim", "close", "front")
        # relock_on_close: locked as soon as the door closed, long before any timer.
        self.assertFalse(self.d.relay_file("front"))
        self.assertNotIn("forced", [e["reason"] for e in self.d.events()])

    def test_held_open_alarm(self):
        self.d.seed()
        self.d.tap("04A1B2C3")
        self.d.ctl("sim", "open", "front")
        # held_open_seconds = 2
        wait_until(lambda: self.d.door("front")["alarm"] == "held_open", what="held-open alarm")
        self.assertIn(("alarm", "held_open"), [(e["kind"], e["reason"]) for e in self.d.events()])
        self.d.ctl("sim", "close", "front")
        wait_until(lambda: self.d.door("front")["alarm"] == "none", what="alarm cleared")

    def test_manual_unlock_for_duration_and_lock(self):
        code, out, _ = self.d.ctl("door", "unlock", "front", "--for", "600")
        self.assertEqual(code, 0)
        self.assertTrue(self.d.relay_file("front"))
        door = self.d.door("front")
        self.assertEqual((door["state"], door["cause"]), ("unlocked", "manual"))
        self.assertGreater(door["unlock_remaining"], 500)
        self.d.ctl("door", "lock", "front")
        self.assertFalse(self.d.relay_file("front"))
        self.assertIn(("unlock", "manual"), [(e["kind"], e["reason"]) for e in self.d.events()])

    def test_card_enroll_binds_next_tap(self):
        self.d.ok({"cmd": "plan.add", "name": "open"})
        member = self.d.ok({"cmd": "member.add", "name": "Eve", "plan": "open"})["id"]
        import subprocess
        from portier_harness import PORTIERCTL
        enrol = subprocess.Popen([PORTIERCTL, "-s", self.d.socket, "card", "enroll", "Eve",
                                  "--reader", "front", "--timeout", "30", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: "waiting up to" in self.d.log_text(), what="enrolment armed")
        self.assertEqual(self.d.tap("04E0E0E0").get("enrolment"), True)
        out, err = enrol.communicate(timeout=20)
        self.assertEqual(enrol.returncode, 0, err)
        import json
        self.assertEqual(json.loads(out)["member"], member)
        # The enrolment tap did not open the door; the next one does.
        self.assertTrue(self.d.tap("04E0E0E0")["granted"])

    def test_card_enroll_times_out_and_can_start_again(self):
        self.d.ok({"cmd": "plan.add", "name": "open"})
        self.d.ok({"cmd": "member.add", "name": "Eve", "plan": "open"})
        started = time.monotonic()
        reply = self.d.request({"cmd": "card.enroll", "member": "Eve", "reader": "front",
                                "timeout": 1})
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["code"], "timeout")
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assertIn("no card was presented in time", self.d.log_text())
        # The tap after it is decided as any tap (the card is unknown), not enrolled.
        self.assertFalse(self.d.tap("04E0E0E0")["granted"])
        self.assertFalse(self.d.relay_file("front"))
        # The timeout is armed again for the next enrolment.
        reply = self.d.request({"cmd": "card.enroll", "member": "Eve", "reader": "front",
                                "timeout": 1})
        self.assertEqual(reply["code"], "timeout")

    def test_control_connection_without_a_whole_request_times_out(self):
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.d.socket)
        s.sendall(b'{"cmd": "status"')           # no newline: the request never ends
        started = time.monotonic()
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        import json
        reply = json.loads(data)
        self.assertEqual((reply["ok"], reply["code"]), (False, "timeout"))
        self.assertIn("no complete request within 10 seconds", reply["error"])
        self.assertGreaterEqual(time.monotonic() - started, 9)
        self.assertEqual(self.d.status()["ok"], True)

    def test_status_shows_doors_relays_and_last_taps(self):
        self.d.seed()
        self.d.tap("04A1B2C3")
        self.d.tap("04DEADBE")
        code, out, _ = self.d.ctl("status")
        self.assertEqual(code, 0)
        self.assertIn("front", out)
        self.assertIn("gpiochip0:17", out)
        self.assertIn("Alice (#1)", out)
        self.assertIn("denied: unknown_card", out)
        st = self.d.status()
        self.assertEqual([t["reason"] for t in st["recent_taps"]][:2], ["unknown_card", "granted"])

    def test_no_uid_in_logs_events_or_database(self):
        self.d.seed()
        self.d.tap("04A1B2C3")
        self.d.tap("04DEADBE")
        text = self.d.log_text().upper()
        self.assertNotIn("04A1B2C3", text)
        self.assertNotIn("04DEADBE", text)
        db = self.d.db()
        blob = b"".join(bytes(str(row), "utf8") for t in ("cards", "access_events")
                        for row in db.execute("SELECT * FROM " + t))
        self.assertNotIn(b"04A1B2C3", blob.upper())
        self.assertNotIn(bytes.fromhex("04A1B2C3"), b"".join(
            r[0] for r in db.execute("SELECT uid_hash FROM cards")))

    def test_cli_usage_errors_exit_2_and_daemon_errors_exit_1(self):
        self.assertEqual(self.d.ctl("bogus", check=False)[0], 2)
        self.assertEqual(self.d.ctl("sim", "tap", "04A1B2C3", check=False)[0], 2)  # no --reader
        self.assertEqual(self.d.ctl("door", "unlock", "front", "--for", "x", check=False)[0], 2)
        code, _, err = self.d.ctl("door", "unlock", "nowhere", check=False)
        self.assertEqual(code, 1)
        self.assertIn("no door 'nowhere'", err)
        code, _, err = self.d.ctl("card", "add", "Nobody", "04A1B2C3", check=False)
        self.assertEqual(code, 1)
        self.assertIn("no member", err)

    def test_bad_control_requests_get_errors_not_crashes(self):
        import socket
        for payload in [b"not json\n", b"[1,2]\n", b'{"cmd": 5}\n', b'{"cmd":"nope"}\n',
                        b'{"cmd":"sim.tap","reader":"front","uid":"zz"}\n',
                        b'{"cmd":"card.add","member":"1","uid":"0102030405"}\n',
                        b"x" * 20000]:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(20)
            s.connect(self.d.socket)
            s.sendall(payload)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            import json
            reply = json.loads(data)
            self.assertFalse(reply["ok"], payload[:40])
            self.assertTrue(reply["error"])
        self.assertEqual(self.d.status()["ok"], True)

    def test_listings_json(self):
        self.d.seed()
        members = self.d.ctl_json("member", "list")
        self.assertEqual([m["name"] for m in members], ["Alice", "Bob", "Carol"])
        cards = self.d.ctl_json("card", "list", "Alice")
        self.assertEqual(len(cards), 1)
        plans = self.d.ctl_json("plan", "list")
        self.assertEqual(sorted(p["name"] for p in plans), ["cowork", "open"])
        self.d.tap("04A1B2C3")
        events = self.d.ctl_json("events", "--limit", "1")
        self.assertEqual(len(events), 1)


if __name__ == "__main__":
    main()

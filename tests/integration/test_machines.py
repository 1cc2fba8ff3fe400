# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fablab machines end to end: the real portierd on simulated GPIO, bookings through the
control socket, the clock moved with `sim advance` so no test waits for a booking to end."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import Daemon, DaemonTest, build_config, main, wait_until  # noqa: E402

SECTIONS = """
[reader laser]
driver = sim

[reader printer]
driver = sim

[machine laser]
reader = laser
relay = 5
running = 6
warn = 7
warn_minutes = 1
grace_minutes = 1
handover_seconds = 60
trainer_window_seconds = 2

[machine printer]
reader = printer
relay = 8
running = 9
warn_minutes = 1
grace_minutes = 1
handover_seconds = 0
idle_off_minutes = 2
never_cut_while_running = true
hard_max_minutes = 30
"""

# Alice and Carol hold the laser training; Dan has the open plan but no training; Bob's
# plan does not cover the fablab zone.
ALICE, BOB, CAROL, DAN = "04A1B2C3", "04B0B0B0", "04C0C0C0", "04D0D0D0"
MIN = 60


class MachineBase(DaemonTest):
    def setUp(self):
        self.d = Daemon(config_text="placeholder")
        self.d.write_config(build_config(self.d.dir, SECTIONS))
        self.d.start()
        self.d.seed()       # Alice 1, Bob 2, Carol 3 with cards; plans open (*) and cowork
        self.d.ok({"cmd": "member.add", "name": "Dan", "plan": "open"})
        self.d.ok({"cmd": "card.add", "member": "Dan", "uid": DAN})
        self.d.ok({"cmd": "training.add", "name": "laser-basic"})
        for who in ("Alice", "Carol"):
            self.d.ok({"cmd": "training.grant", "member": who, "training": "laser-basic"})
        self.d.ok({"cmd": "machine.set", "machine": "laser", "training": "laser-basic",
                   "slot_minutes": 5, "min_minutes": 5, "max_minutes": 60, "hours": "always",
                   "booking_required": False, "walkup_free_minutes": 10,
                   "cancel_deadline_minutes": 60})
        self.d.ok({"cmd": "machine.set", "machine": "printer", "slot_minutes": 5,
                   "min_minutes": 5, "max_minutes": 600, "hours": "always",
                   "booking_required": False, "walkup_free_minutes": 0})
        self.now = self.advance(0)
        self.slot = (self.now // 300 + 1) * 300     # next 5-minute boundary

    # -- helpers --
    def advance(self, seconds):
        return self.d.ok({"cmd": "sim.advance", "seconds": int(seconds)})["now"]

    def advance_to(self, t):
        now = self.advance(0)
        if t > now:
            now = self.advance(t - now)
        return now

    def machine(self, name="laser"):
        return next(m for m in self.d.status()["machines"] if m["name"] == name)

    def tap(self, uid, machine="laser"):
        return self.d.ok({"cmd": "sim.tap", "reader": machine, "uid": uid})

    def book(self, who, start, end, machine="laser"):
        return self.d.ok({"cmd": "booking.add", "machine": machine, "member": who,
                          "start": start, "end": end})["id"]

    def line(self, name):
        with open(os.path.join(self.d.dir, "relays", name)) as f:
            return f.read().strip() == "1"

    def sessions(self):
        return self.d.ok({"cmd": "machine.sessions"})["sessions"]


class MachineTest(MachineBase):
    def test_untrained_member_is_refused(self):
        reply = self.tap(DAN)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "not_qualified"))
        self.assertFalse(self.d.relay_file("laser"))
        code, _, err = self.d.ctl("booking", "add", "laser", "2099-01-01T10:00", "2099-01-01T11:00",
                                  "--for", "Dan", check=False)
        self.assertEqual(code, 1)
        self.assertIn("lacks the training", err)

    def test_expired_training_is_refused(self):
        self.d.ok({"cmd": "training.revoke", "member": "Alice", "training": "laser-basic"})
        self.d.ok({"cmd": "training.grant", "member": "Alice", "training": "laser-basic",
                   "expires": self.now - 3600})
        self.assertEqual(self.tap(ALICE)["outcome"], "qualification_expired")

    def test_warning_then_power_off_at_booking_end(self):
        self.book("Alice", self.slot, self.slot + 10 * MIN)
        self.advance_to(self.slot + 1)
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "on"))
        self.assertTrue(self.d.relay_file("laser"))
        self.assertFalse(self.line("laser.warn"))
        m = self.machine()
        self.assertEqual((m["state"], m["member_id"]), ("on", 1))
        self.assertNotEqual(m["booking_id"], 0)

        self.advance_to(self.slot + 9 * MIN + 1)        # one minute before the end
        self.assertEqual(self.machine()["state"], "warning")
        self.assertTrue(self.line("laser.warn"))
        self.assertTrue(self.d.relay_file("laser"))
        self.assertIn("machine_warning", [e["kind"] for e in self.d.events()])

        self.advance_to(self.slot + 10 * MIN + 1)       # booking over: grace
        self.assertEqual(self.machine()["state"], "grace")
        self.assertTrue(self.d.relay_file("laser"))

        self.advance_to(self.slot + 11 * MIN + 1)       # grace over: power off
        self.assertEqual(self.machine()["state"], "off")
        self.assertFalse(self.d.relay_file("laser"))
        self.assertFalse(self.line("laser.warn"))
        s = self.sessions()[-1]
        self.assertEqual((s["member_id"], s["end_reason"]), (1, "session_end"))
        self.assertGreaterEqual(s["ended_at"], self.slot + 11 * MIN)

    def test_tap_during_warning_extends_into_free_slot(self):
        first = self.book("Alice", self.slot, self.slot + 5 * MIN)
        self.advance_to(self.slot + 1)
        self.tap(ALICE)
        self.advance_to(self.slot + 4 * MIN + 1)
        self.assertEqual(self.machine()["state"], "warning")
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "extended"))
        m = self.machine()
        self.assertEqual(m["state"], "on")
        self.assertFalse(self.line("laser.warn"))
        bookings = self.d.ok({"cmd": "booking.list", "machine": "laser", "from": self.slot})["bookings"]
        ext = [b for b in bookings if b["id"] != first]
        self.assertEqual(len(ext), 1)
        self.assertEqual((ext[0]["start"], ext[0]["end"], ext[0]["created_by"]),
                         (self.slot + 5 * MIN, self.slot + 10 * MIN, "member:1"))
        self.advance_to(self.slot + 5 * MIN + 1)        # the first booking is over: still on
        self.assertEqual(self.machine()["state"], "on")
        self.assertTrue(self.d.relay_file("laser"))

    def test_extension_refused_when_next_slot_is_taken_then_next_member_takes_over(self):
        self.book("Alice", self.slot, self.slot + 5 * MIN)
        self.book("Carol", self.slot + 5 * MIN, self.slot + 10 * MIN)
        self.advance_to(self.slot + 1)
        self.tap(ALICE)
        self.advance_to(self.slot + 4 * MIN + 1)
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "extend_refused"))
        self.assertEqual(self.machine()["state"], "warning")
        self.advance_to(self.slot + 5 * MIN + 10)       # Carol's slot, Alice's grace
        self.assertEqual(self.machine()["state"], "grace")
        reply = self.tap(CAROL)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "takeover"))
        m = self.machine()
        self.assertEqual((m["state"], m["member_id"]), ("on", 3))
        self.assertTrue(self.d.relay_file("laser"))
        alice, carol = self.sessions()[-2:]
        self.assertEqual((alice["member_id"], alice["end_reason"]), (1, "handover"))
        self.assertEqual((carol["member_id"], carol["ended_at"]), (3, 0))

    def test_someone_elses_booking_refuses_and_booking_soon_refuses_walkup(self):
        self.book("Carol", self.slot, self.slot + 10 * MIN)
        self.advance_to(self.slot - 5 * MIN)            # Carol's booking starts in 5 min < 10
        self.assertEqual(self.tap(ALICE)["outcome"], "booking_soon")
        self.advance_to(self.slot + 1)
        self.assertEqual(self.tap(ALICE)["outcome"], "booked_by_other")
        self.assertFalse(self.d.relay_file("laser"))

    def test_walkup_stops_at_next_booking(self):
        self.book("Carol", self.slot + 20 * MIN, self.slot + 30 * MIN)
        self.advance_to(self.slot)
        self.assertTrue(self.tap(ALICE)["granted"])
        self.assertEqual(self.machine()["until"][:16],
                         __import__("time").strftime("%Y-%m-%dT%H:%M",
                                                     __import__("time").gmtime(self.slot + 20 * MIN)))

    def test_handover_to_another_qualified_member(self):
        self.advance_to(self.slot)
        self.assertTrue(self.tap(ALICE)["granted"])
        self.assertEqual(self.tap(ALICE)["outcome"], "finished")
        self.assertEqual(self.machine()["state"], "handover")
        self.assertTrue(self.d.relay_file("laser"))     # power kept for the next member
        reply = self.tap(DAN)                            # not trained: no takeover
        self.assertFalse(reply["granted"])
        self.assertEqual(self.machine()["state"], "handover")
        reply = self.tap(CAROL)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "takeover"))
        self.assertEqual((self.machine()["state"], self.machine()["member_id"]), ("on", 3))
        self.assertTrue(self.d.relay_file("laser"))
        self.assertEqual(self.sessions()[-2]["end_reason"], "handover")
        self.tap(CAROL)                                  # Carol finishes; nobody takes over
        self.advance(61)
        self.assertEqual(self.machine()["state"], "off")
        self.assertFalse(self.d.relay_file("laser"))
        self.assertEqual(self.sessions()[-1]["end_reason"], "finished")

    def test_idle_auto_off(self):
        self.advance_to(self.slot)
        self.d.ctl("sim", "press", "printer.running")
        self.assertTrue(self.tap(ALICE, machine="printer")["granted"])
        self.advance(5 * MIN)                            # running: stays on
        self.assertEqual(self.machine("printer")["state"], "on")
        self.d.ctl("sim", "release", "printer.running")  # idle from now
        self.advance(MIN)
        self.assertEqual(self.machine("printer")["state"], "on")
        self.advance(MIN + 1)                            # idle_off_minutes = 2
        self.assertEqual(self.machine("printer")["state"], "off")
        self.assertFalse(self.d.relay_file("printer"))
        s = self.sessions()[-1]
        self.assertEqual(s["end_reason"], "idle")

    def test_never_cut_while_running(self):
        self.book("Alice", self.slot, self.slot + 5 * MIN, machine="printer")
        self.advance_to(self.slot + 1)
        self.d.ctl("sim", "press", "printer.running")
        self.assertTrue(self.tap(ALICE, machine="printer")["granted"])
        self.advance_to(self.slot + 6 * MIN + 10)        # booking and grace over, still printing
        self.assertEqual(self.machine("printer")["state"], "overrun")
        self.assertTrue(self.d.relay_file("printer"))
        self.d.ctl("sim", "release", "printer.running")  # the print is done
        self.assertEqual(self.machine("printer")["state"], "off")
        self.assertFalse(self.d.relay_file("printer"))
        self.assertEqual(self.sessions()[-1]["end_reason"], "job_done")

    def test_never_cut_has_a_hard_maximum(self):
        self.book("Alice", self.slot, self.slot + 5 * MIN, machine="printer")
        self.advance_to(self.slot + 1)
        self.d.ctl("sim", "press", "printer.running")
        self.tap(ALICE, machine="printer")
        self.advance_to(self.slot + 31 * MIN)            # hard_max_minutes = 30
        self.assertEqual(self.machine("printer")["state"], "off")
        self.assertFalse(self.d.relay_file("printer"))
        self.assertEqual(self.sessions()[-1]["end_reason"], "hard_max")

    def test_out_of_order_cuts_power_and_refuses(self):
        self.advance_to(self.slot)
        self.tap(ALICE)
        self.assertTrue(self.d.relay_file("laser"))
        self.d.ctl("machine", "out-of-order", "laser", "on", "--reason", "lens cracked")
        self.assertFalse(self.d.relay_file("laser"))
        self.assertEqual(self.sessions()[-1]["end_reason"], "out_of_order")
        self.assertEqual(self.tap(ALICE)["outcome"], "machine_out_of_order")
        code, _, err = self.d.ctl("booking", "add", "laser", "2099-01-01T10:00",
                                  "2099-01-01T11:00", "--for", "Alice", check=False)
        self.assertEqual(code, 1)
        self.d.ctl("machine", "out-of-order", "laser", "off")
        self.assertTrue(self.tap(ALICE)["granted"])

    def test_unreadable_hours_refuse_power(self):
        # Hours the daemon cannot parse mean closed: the plan's at any door or machine, and the
        # machine's own opening hours.
        with self.d.db() as db:
            db.execute("UPDATE plans SET hours = 'Mon-Fri' WHERE name = 'open'")
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "outside_plan_hours"))
        self.assertFalse(self.d.relay_file("laser"))
        with self.d.db() as db:
            db.execute("UPDATE plans SET hours = 'always' WHERE name = 'open'")
            db.execute("UPDATE machine_rules SET hours = 'daily 08:00-25:00' WHERE resource_id = "
                       "(SELECT id FROM resources WHERE name = 'laser')")
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "outside_opening_hours"))
        self.assertFalse(self.d.relay_file("laser"))
        self.assertEqual(self.sessions(), [])
        self.assertIn("machine laser: its opening hours cannot be read", self.d.log_text())

    def test_restart_leaves_relays_off_and_closes_interrupted_session(self):
        self.advance_to(self.slot)
        self.tap(ALICE)
        self.advance(3 * MIN)                            # the session is seen alive 3 min later
        seen = self.sessions()[-1]["last_seen_at"]
        self.assertGreaterEqual(seen, self.slot + 3 * MIN)
        self.assertTrue(self.d.relay_file("laser"))
        self.d.stop(signal.SIGKILL)
        self.d.start()
        self.assertFalse(self.d.relay_file("laser"))
        self.assertEqual(self.machine()["state"], "off")
        s = self.sessions()[-1]
        self.assertEqual((s["end_reason"], s["ended_at"]), ("interrupted", seen))
        self.assertIn("interrupted by a crash", self.d.log_text())

    def test_sigterm_powers_off_and_closes_session(self):
        self.advance_to(self.slot)
        self.tap(ALICE)
        self.d.stop(signal.SIGTERM)
        self.assertFalse(self.d.relay_file("laser"))
        db = self.d.db()
        self.assertEqual(db.execute("SELECT end_reason FROM machine_sessions").fetchall(),
                         [("stopped",)])


class BookingRulesTest(MachineBase):
    """Booking rules through the control socket and the CLI."""
    def test_overlap_message_names_the_other_booking(self):
        bid = self.book("Alice", self.slot + 60 * MIN, self.slot + 90 * MIN)
        s = self.slot + 75 * MIN
        code, _, err = self.d.ctl("booking", "add", "laser", "@%d" % s, "@%d" % (s + 30 * MIN),
                                  "--for", "Carol", check=False)
        self.assertEqual(code, 1)
        self.assertIn("overlaps booking %d by Alice " % bid, err)
        # Back to back is fine.
        self.book("Carol", self.slot + 90 * MIN, self.slot + 120 * MIN)

    def test_cancel_deadline_binds_members_and_manager_override_is_recorded(self):
        bid = self.book("Alice", self.slot + 30 * MIN, self.slot + 60 * MIN)   # < 60 min away
        reply = self.d.request({"cmd": "booking.cancel", "booking": bid, "as_member": True})
        self.assertEqual((reply["ok"], reply["code"]), (False, "deadline_passed"))
        reply = self.d.request({"cmd": "booking.cancel", "booking": bid})
        self.assertEqual(reply["code"], "deadline_passed")              # managers must say so
        self.d.ok({"cmd": "booking.cancel", "booking": bid, "override": True})
        b = self.d.ok({"cmd": "booking.list", "machine": "laser", "all": True,
                       "from": self.slot})["bookings"][0]
        self.assertEqual((b["cancelled"], b["cancel_override"]), (True, True))
        self.assertTrue(b["cancelled_by"].startswith("manager:"))

    def test_move_booking(self):
        bid = self.book("Alice", self.slot + 120 * MIN, self.slot + 150 * MIN)
        new = self.d.ok({"cmd": "booking.move", "booking": bid, "start": self.slot + 180 * MIN,
                         "end": self.slot + 210 * MIN})["new_id"]
        live = self.d.ok({"cmd": "booking.list", "machine": "laser", "from": self.slot})["bookings"]
        self.assertEqual([(b["id"], b["start"]) for b in live], [(new, self.slot + 180 * MIN)])

    def test_rules_enforced_for_every_client(self):
        cases = [
            (self.slot + 7 * MIN, self.slot + 17 * MIN, "not_aligned"),
            (self.slot, self.slot + 90 * MIN, "too_long"),
            (self.slot - 600, self.slot, "in_past"),
            (self.slot + 30 * 86400, self.slot + 30 * 86400 + 600, "too_far_ahead"),
        ]
        for start, end, code in cases:
            reply = self.d.request({"cmd": "booking.add", "machine": "laser", "member": "Alice",
                                    "start": start, "end": end})
            self.assertEqual((reply["ok"], reply["code"]), (False, code), (start, end))


class TrainingAtMachineTest(MachineBase):
    """A trainer taps their card at the machine, then the trainee's within the window."""

    def setUp(self):
        super().setUp()
        # Carol (qualified) is named trainer for the laser's training.
        self.d.ok({"cmd": "training.appoint", "member": "Carol", "training": "laser-basic"})

    def quals(self, member):
        return [q for q in self.d.ok({"cmd": "training.show", "member": member})["qualifications"]
                if q["training"] == "laser-basic" and not q["revoked_at"]]

    def test_trainer_then_trainee_grants_the_training(self):
        reply = self.tap(CAROL)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "trainer_window"))
        self.assertFalse(self.line("laser.relay"))           # no power for a trainer's tap
        reply = self.tap(DAN)
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "training_granted"))
        self.assertFalse(self.line("laser.relay"))
        q = self.quals("Dan")
        self.assertEqual(len(q), 1)
        self.assertEqual(q[0]["granted_by"], "trainer:3")
        ev = [e for e in self.d.events() if e["kind"] == "training"][-1]
        self.assertEqual((ev["granted"], ev["reason"], ev["member_id"]), (True, "granted", 4))
        self.assertIn("by trainer 3", ev["detail"])
        # Dan may now use the laser.
        self.assertEqual(self.tap(DAN)["outcome"], "on")
        # Again for Dan (his session in its handover window): renewed; the window was for
        # one trainee: the next card is an ordinary tap again (Dan's second: power off).
        self.assertEqual(self.tap(DAN)["outcome"], "finished")
        self.tap(CAROL)
        self.assertEqual(self.tap(DAN)["outcome"], "training_renewed")
        self.assertEqual(len(self.quals("Dan")), 2)
        self.assertEqual(self.tap(DAN)["outcome"], "off")

    def test_trainer_taps_twice_to_use_the_machine(self):
        self.assertEqual(self.tap(CAROL)["outcome"], "trainer_window")
        self.assertEqual(self.tap(CAROL)["outcome"], "on")
        self.assertTrue(self.line("laser.relay"))

    def test_refused_when_trainer_training_lapsed_or_trainee_inactive(self):
        self.d.ok({"cmd": "member.suspend", "member": "Dan"})
        self.tap(CAROL)
        reply = self.tap(DAN)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "member_inactive"))
        self.assertEqual(self.quals("Dan"), [])
        self.d.ok({"cmd": "member.resume", "member": "Dan"})
        # Carol's own training revoked: refused with that reason, at the machine and on the API.
        self.d.ok({"cmd": "training.revoke", "member": "Carol", "training": "laser-basic"})
        self.tap(CAROL)
        reply = self.tap(ALICE)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "trainer_training_lapsed"))
        ev = [e for e in self.d.events() if e["kind"] == "machine"][-1]
        self.assertEqual(ev["reason"], "trainer_training_lapsed")

    def test_window_closes_after_its_time(self):
        self.tap(CAROL)
        time.sleep(2.5)         # trainer_window_seconds = 2 for the laser
        reply = self.tap(DAN)
        self.assertEqual((reply["granted"], reply["outcome"]), (False, "not_qualified"))
        self.assertEqual(self.quals("Dan"), [])


if __name__ == "__main__":
    main()

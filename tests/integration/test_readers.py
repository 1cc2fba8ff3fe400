# SPDX-License-Identifier: AGPL-3.0-or-later
"""Card readers through real libnfc: portierd's reader workers talk to pn532-emu on ptys.

No test depends on speed: every wait is a bounded poll for an outcome (relay state, event,
reader health)."""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (BIN, WAIT, Daemon, DaemonTest, build_config, main,  # noqa: E402
                             reader_workers, wait_until)

EMU = os.path.join(BIN, "pn532-emu")

SECTIONS = """
[reader front]
driver = libnfc
connstring = pn532_uart:{dir}/front.tty
emulator = {dir}/front.ctl
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000
backoff_max_seconds = 1

[reader back]
driver = libnfc
connstring = pn532_uart:{dir}/back.tty
emulator = {dir}/back.ctl
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000
backoff_max_seconds = 1

[door front]
reader = front
relay = 17
unlock_seconds = 1

[door back]
reader = back
relay = 18
unlock_seconds = 1
"""


def readers_config(directory, worker=""):
    """Two libnfc readers on emulators in directory; worker: a [daemon] reader_worker line."""
    return build_config(directory, SECTIONS.format(dir=directory), daemon_extra=worker)


class Emulator:
    def __init__(self, directory, name):
        self.link = os.path.join(directory, name + ".tty")
        self.control = os.path.join(directory, name + ".ctl")
        self.proc = subprocess.Popen([EMU, "--link", self.link, "--control", self.control],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()     # the slave path: the pty and sockets exist now

    def cmd(self, line):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.control)
        s.sendall((line + "\n").encode())
        reply = s.recv(4096).decode()
        s.close()
        if not reply.startswith("ok"):
            raise AssertionError("emulator: %s -> %s" % (line, reply))
        return reply

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


class ReaderBase(DaemonTest):
    """A daemon with two libnfc readers, front and back, each on its own emulator."""
    worker = ""

    def setUp(self):
        self.d = Daemon(config_text="placeholder")
        self.emus = {n: Emulator(self.d.dir, n) for n in ("front", "back")}
        self.d.write_config(readers_config(self.d.dir, self.worker))
        self.d.start()
        self.d.seed()

    def tearDown(self):
        super().tearDown()
        for e in self.emus.values():
            e.stop()

    def reader(self, name):
        return next(r for r in self.d.status()["readers"] if r["name"] == name)

    def taps(self, door="front"):
        return [e for e in self.d.events() if e["kind"] == "tap" and e["door"] == door]

    def wait_up(self, name):
        wait_until(lambda: self.reader(name)["health"] == "up", what="reader %s up" % name)


class ReaderTest(ReaderBase):
    def test_tap_through_libnfc_opens_the_door(self):
        self.wait_up("front")
        self.assertTrue(self.reader("front")["device"].startswith("pn532_uart:"))
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.d.relay_file("front"), what="front relay energised")
        tap = self.taps()[-1]
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 1))

    def test_held_card_taps_once_and_again_after_removal(self):
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: len(self.taps()) == 1, what="first tap")
        # Held on the reader through many polls: still one tap.
        polls = self.emus["front"].cmd("status")
        wait_until(lambda: self.emus["front"].cmd("status") != polls and
                   int(self.reader("front")["taps"]) >= 1, what="more polls")
        time.sleep(0.5)
        self.assertEqual(len(self.taps()), 1)
        self.emus["front"].cmd("remove")
        time.sleep(0.4)     # longer than debounce_ms = 200: the next presentation is new
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: len(self.taps()) == 2, what="second tap")

    def test_unknown_and_7_byte_cards(self):
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=04112233445566")
        wait_until(lambda: len(self.taps()) == 1, what="tap")
        self.assertEqual(self.taps()[-1]["reason"], "unknown_card")
        self.assertFalse(self.d.relay_file("front"))

    def test_reader_that_stops_answering_is_restarted(self):
        self.wait_up("front")
        self.emus["front"].cmd("fault mute")
        wait_until(lambda: self.reader("front")["restarts"] >= 1, what="worker restarted")
        self.assertNotEqual(self.reader("front")["health"], "up")
        self.assertTrue(self.reader("front")["last_error"])
        # The other door keeps working meanwhile.
        self.emus["back"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.taps("back"), what="tap at back while front is down")
        self.emus["front"].cmd("fault none")
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.taps(), what="tap after recovery")
        self.assertIn("back up", self.d.log_text())

    def test_garbage_on_the_wire_recovers(self):
        self.wait_up("front")
        for _ in range(3):
            self.emus["front"].cmd("fault garbage")
            time.sleep(0.1)
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.taps(), what="tap after garbage")
        self.assertIsNone(self.d.proc.poll())

    def test_reader_that_vanishes_is_failed_then_recovers(self):
        self.wait_up("front")
        self.emus["front"].cmd("fault hangup 1500")
        wait_until(lambda: self.reader("front")["failed_since"] > 0, what="reader marked failing")
        self.wait_up("front")
        self.assertEqual(self.reader("front")["failed_since"], 0)
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.taps(), what="tap after the reader came back")

    def test_two_readers_at_once(self):
        self.wait_up("front")
        self.wait_up("back")
        self.emus["front"].cmd("insert uid=04A1B2C3")
        self.emus["back"].cmd("insert uid=04C0C0C0")
        wait_until(lambda: self.taps("front") and self.taps("back"), what="both doors")
        self.assertTrue(self.taps("front")[-1]["granted"])
        self.assertTrue(self.taps("back")[-1]["granted"])

    def test_portierctl_sim_tap_goes_through_the_emulator(self):
        self.wait_up("front")
        code, out, _ = self.d.ctl("sim", "tap", "--reader", "front", "04A1B2C3")
        self.assertEqual(code, 0)
        self.assertIn("door front: granted", out)
        code, out, _ = self.d.ctl("status")
        self.assertIn("pn532_uart:", out)

    def test_reset_line_is_pulsed_before_restart(self):
        self.d.stop()
        self.d.write_config(readers_config(self.d.dir, "").replace(
            "backoff_max_seconds = 1\n\n[reader back]",
            "backoff_max_seconds = 1\nreset_line = 40\n\n[reader back]", 1))
        self.d.start()
        self.wait_up("front")
        self.assertEqual(self.reader("front")["reset_pulses"], 0)
        self.emus["front"].cmd("fault mute")
        wait_until(lambda: self.reader("front")["reset_pulses"] >= 1, what="reset pulse")
        self.emus["front"].cmd("fault none")
        self.wait_up("front")
        # The pulse ended: the reset line is released (de-energised) while the reader runs.
        with open(os.path.join(self.d.dir, "relays", "front.reset")) as f:
            self.assertEqual(f.read().strip(), "0")

    def test_manual_restart(self):
        self.wait_up("front")
        self.d.ctl("reader", "restart", "front")
        wait_until(lambda: self.reader("front")["restarts"] >= 1, what="restart counted")
        self.wait_up("front")


ALICE, CAROL = "04A1B2C3", "04C0C0C0"         # members 1 and 3 (seed), both on the open plan
NOTE = "2 cards presented; first selected wins"


def fifo_permitted():
    """Whether a process started from here may take real-time priority 10 (root,
    CAP_SYS_NICE or RLIMIT_RTPRIO): then portierd's door path must have it."""
    r = subprocess.run([sys.executable, "-c", "import os; os.sched_setscheduler("
                        "0, os.SCHED_FIFO, os.sched_param(10))"], capture_output=True)
    return r.returncode == 0


def policy(tid):
    """(policy without SCHED_RESET_ON_FORK, real-time priority, reset-on-fork) of a task."""
    p = os.sched_getscheduler(tid)
    return (p & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(tid).sched_priority,
            bool(p & os.SCHED_RESET_ON_FORK))


class DoorPathPriorityTest(ReaderBase):
    """The door path (the event loop's thread and, one below, the reader workers) at
    real-time priority ([daemon] realtime_priority, 10 by default); every other thread
    portierd has, and every process it forks but the workers, at normal priority."""

    def workers(self):
        return reader_workers(self.d.proc.pid)

    def threads(self):
        pid = self.d.proc.pid
        return [t for t in map(int, os.listdir("/proc/%d/task" % pid)) if t != pid]

    def test_the_loop_and_the_reader_workers_run_first_and_nothing_else_does(self):
        self.wait_up("front")
        self.wait_up("back")
        pid = self.d.proc.pid
        workers = self.workers()
        self.assertEqual(len(workers), 2, "a worker per reader")
        self.assertTrue(self.threads(), "the disk sync thread at least")
        for t in self.threads():
            self.assertEqual(policy(t)[0], os.SCHED_OTHER, "thread %d" % t)
        if fifo_permitted():
            self.assertEqual(policy(pid), (os.SCHED_FIFO, 10, True))
            for w in workers:       # one below the loop: a spinning worker never holds it up
                self.assertEqual(policy(w), (os.SCHED_FIFO, 9, True), "worker %d" % w)
            self.assertIn("the door path runs at real-time priority 10", self.d.log_text())
        else:
            self.assertEqual(policy(pid)[0], os.SCHED_OTHER)
            self.assertIn("the door path runs at normal priority: real-time priority 10 is "
                          "not permitted", self.d.log_text())
        # A worker started again (here by a restart) is at the same priority.
        before = policy(workers[0])
        self.d.ok({"cmd": "reader.restart", "reader": "front"})
        wait_until(lambda: len(self.workers()) == 2 and set(self.workers()) != set(workers),
                   what="a new front worker")
        self.wait_up("front")
        for w in self.workers():
            self.assertEqual(policy(w), before, "worker %d" % w)
        # And the doors work.
        self.emus["front"].cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.d.relay_file("front"), what="front relay on")

    def test_zero_turns_it_off_and_a_reload_applies_it_to_the_loop(self):
        pid = self.d.proc.pid
        self.d.write_config(readers_config(self.d.dir, self.worker + "\nrealtime_priority = 0"))
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        self.assertEqual(policy(pid)[0], os.SCHED_OTHER)
        self.d.write_config(readers_config(self.d.dir, self.worker + "\nrealtime_priority = 7"))
        self.d.kill(signal.SIGHUP)
        self.d.wait_notify("READY=1")
        if fifo_permitted():
            self.assertEqual(policy(pid), (os.SCHED_FIFO, 7, True))
        else:
            self.assertEqual(policy(pid)[0], os.SCHED_OTHER)
            self.assertIn("real-time priority 7 is not permitted", self.d.log_text())


class TwoCardsTest(ReaderBase):
    """Two cards presented together: the card the chip selects first taps, once, and the
    access log says two cards answered. The emulator selects the card that entered its field
    first, which makes the winner known to the test."""

    def emu_status(self, name="front"):
        return dict(kv.split("=", 1) for kv in self.emus[name].cmd("status").split()[1:])

    def frames_pass(self, n=10, name="front"):
        """Until the worker has sent n more frames (several polls): a sync point, not a clock."""
        start = int(self.emu_status(name)["rx_frames"])
        wait_until(lambda: int(self.emu_status(name)["rx_frames"]) >= start + n,
                   what="%d more frames from the worker" % n)

    def holding(self, name="front"):
        return self.reader(name)["holding"]

    def test_pair_taps_once_for_the_first_selected_card(self):
        self.wait_up("front")
        front = self.emus["front"]
        front.cmd("insert uid=%s uid=%s" % (CAROL, ALICE))     # one command: they arrive together
        wait_until(lambda: len(self.taps()) == 1, what="one tap")
        tap = self.taps()[0]
        self.assertEqual((tap["member_id"], tap["granted"], tap["reason"], tap["detail"]),
                         (3, True, "granted", NOTE))
        wait_until(self.holding, what="the card held")
        log = self.d.log_text()
        self.assertRegex(log, r"door front: granted to member 3 \(card [0-9a-f]{8}\) at reader front; "
                         + re.escape(NOTE))
        for uid in (ALICE, CAROL):
            self.assertNotIn(uid.lower(), log.lower())

        # Held together through many polls: still one tap.
        self.frames_pass()
        self.assertEqual(len(self.taps()), 1)
        # The other card leaves: no new tap, and the first card is still the one checked.
        front.cmd("remove uid=" + ALICE)
        self.frames_pass()
        self.assertEqual(len(self.taps()), 1)
        self.assertTrue(self.holding())
        self.assertEqual(self.emu_status()["field"], CAROL + ":active")
        # Both gone; once the worker says the card left (after debounce_ms), the first card
        # alone is a new presentation, of one card.
        front.cmd("remove")
        wait_until(lambda: not self.holding(), what="the card left, debounce over")
        self.assertEqual(len(self.taps()), 1)
        front.cmd("insert uid=" + CAROL)
        wait_until(lambda: len(self.taps()) == 2, what="a new tap")
        tap = self.taps()[1]
        self.assertEqual((tap["member_id"], tap["granted"]), (3, True))
        self.assertNotIn("cards presented", tap["detail"] or "")
        self.assertEqual(self.reader("front")["taps"], 2)

    def test_presence_of_each_card_type_with_a_second_card(self):
        """The winner's presence check (MIFARE re-select by UID, Ultralight READ on target 1,
        ISO-DEP R(NAK)) keeps finding it while the other card is in the field and after it
        has left."""
        self.wait_up("front")
        front = self.emus["front"]
        winners = ["uid=04112233445566", "uid=0455667788990A ats=757781028011", "uid=" + CAROL]
        for n, winner in enumerate(winners, 1):
            front.cmd("insert %s uid=%s" % (winner, ALICE))
            wait_until(lambda: len(self.taps()) == n, what="tap %d" % n)
            self.assertEqual(self.taps()[-1]["detail"], NOTE, winner)
            self.assertNotEqual(self.taps()[-1]["member_id"], 1, "the second card tapped: " + winner)
            self.frames_pass()
            front.cmd("remove uid=" + ALICE)
            self.frames_pass()
            self.assertEqual(len(self.taps()), n, winner)
            self.assertTrue(self.holding(), winner)
            front.cmd("remove")
            wait_until(lambda: not self.holding(), what="card left")

    def test_second_card_taps_alone_once_the_first_leaves(self):
        self.wait_up("front")
        front = self.emus["front"]
        front.cmd("insert uid=%s uid=%s" % (ALICE, CAROL))
        wait_until(lambda: len(self.taps()) == 1, what="one tap")
        self.assertEqual((self.taps()[0]["member_id"], self.taps()[0]["detail"]), (1, NOTE))
        front.cmd("remove uid=" + ALICE)
        wait_until(lambda: len(self.taps()) == 2, what="the second card, now alone")
        tap = self.taps()[1]
        self.assertEqual(tap["member_id"], 3)
        self.assertNotIn("cards presented", tap["detail"] or "")

    def test_one_card_says_nothing(self):
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=" + ALICE)
        wait_until(lambda: self.taps(), what="tap")
        self.assertEqual(self.taps()[0]["detail"] or "", "")
        self.assertNotIn("cards presented", self.d.log_text())


STILL_THERE = "the card held before the worker restarted is still there"


class HeldCardRestartTest(ReaderBase):
    """Issue 12.2: a card left on the reader taps once, however long it stays, even when the
    worker reading it is restarted (or the reader itself goes away and comes back) meanwhile:
    portierd remembers the card across workers. A card that really left still taps again."""

    def emu_status(self):
        return dict(kv.split("=", 1) for kv in self.emus["front"].cmd("status").split()[1:])

    def frames_pass(self, n=10):
        start = int(self.emu_status()["rx_frames"])
        wait_until(lambda: int(self.emu_status()["rx_frames"]) >= start + n,
                   what="%d more frames from the worker" % n)

    def hold_alice(self):
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=" + ALICE)
        wait_until(lambda: len(self.taps()) == 1, what="first tap")
        wait_until(lambda: self.reader("front")["holding"], what="the card held")
        return self.reader("front")["restarts"]

    def wait_restarted(self, before):
        wait_until(lambda: self.reader("front")["restarts"] > before, what="worker restarted")
        self.wait_up("front")

    def assert_still_one_tap(self):
        """The new worker found the card: portierd says so (or, without the fix, taps)."""
        wait_until(lambda: STILL_THERE in self.d.log_text() or len(self.taps()) > 1,
                   what="the new worker reporting the card")
        self.frames_pass()          # many polls later, and past debounce_ms (200 ms)
        time.sleep(0.3)
        self.assertEqual(len(self.taps()), 1, "the held card tapped again after the restart")
        self.assertEqual(self.reader("front")["taps"], 1)
        self.assertTrue(self.reader("front")["holding"])

    def assert_taps_again(self, n=2, member=1):
        wait_until(lambda: not self.reader("front")["holding"], what="the card left")
        self.emus["front"].cmd("insert uid=" + ALICE)
        wait_until(lambda: len(self.taps()) == n, what="a new tap")
        self.assertEqual(self.taps()[-1]["member_id"], member)

    def test_held_card_taps_once_across_a_manual_restart(self):
        before = self.hold_alice()
        self.d.ctl("reader", "restart", "front")
        self.wait_restarted(before)
        self.assert_still_one_tap()
        # Still the same presentation through a second restart.
        self.d.ctl("reader", "restart", "front")
        self.wait_restarted(before + 1)
        wait_until(lambda: self.d.log_text().count(STILL_THERE) >= 2 or len(self.taps()) > 1,
                   what="the second worker reporting the card")
        self.frames_pass()
        self.assertEqual(len(self.taps()), 1)
        # Taken away, then presented again after debounce_ms: a new tap.
        self.emus["front"].cmd("remove")
        self.assert_taps_again()

    def test_held_card_taps_once_across_a_reader_hangup(self):
        before = self.hold_alice()
        self.emus["front"].cmd("fault hangup 800")      # unplugged for 0.8 s, card on it
        self.wait_restarted(before)
        self.assertIn(ALICE, self.emu_status()["field"])      # the card stayed on
        self.assert_still_one_tap()

    def test_held_card_taps_once_across_an_emulator_restart(self):
        before = self.hold_alice()
        self.emus["front"].stop()
        self.emus["front"] = Emulator(self.d.dir, "front")     # a new chip, the card still on
        self.emus["front"].cmd("insert uid=" + ALICE)
        self.wait_restarted(before)
        self.assert_still_one_tap()
        self.emus["front"].cmd("remove")
        self.assert_taps_again()

    def test_card_taken_away_during_the_restart_taps_again(self):
        before = self.hold_alice()
        self.d.ctl("reader", "restart", "front")
        self.emus["front"].cmd("remove")            # while no worker is polling
        self.wait_restarted(before)
        self.assert_taps_again()
        self.assertNotIn(STILL_THERE, self.d.log_text())

    def test_another_card_after_the_restart_taps_at_once(self):
        before = self.hold_alice()
        self.d.ctl("reader", "restart", "front")
        self.emus["front"].cmd("insert uid=" + CAROL)   # Alice's card leaves, Carol's comes
        self.wait_restarted(before)
        wait_until(lambda: len(self.taps()) == 2, what="Carol's tap")
        self.assertEqual(self.taps()[-1]["member_id"], 3)
        self.assertTrue(self.reader("front")["holding"])


MACHINE = """
[reader laser]
driver = libnfc
connstring = pn532_uart:{dir}/laser.tty
emulator = {dir}/laser.ctl
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000

[machine laser]
reader = laser
relay = 5
"""


class TwoCardsEnrolTest(ReaderBase):
    """Enrolling binds the card on the reader: with two there, which one is the chip's
    choice, so the enrolment is refused and nothing is bound."""

    def enrol(self, member, replies, attempt):
        import threading
        t = threading.Thread(target=lambda: replies.append(self.d.request(
            {"cmd": "card.enroll", "member": str(member), "reader": "front", "timeout": 15})))
        t.start()
        wait_until(lambda: self.d.log_text().count("enroll: waiting up to") >= attempt,
                   what="enrolment %d waiting for a card" % attempt)
        return t

    def holding(self):
        return self.reader("front")["holding"]

    def test_two_cards_refuse_the_enrolment(self):
        self.wait_up("front")
        dan = self.d.ok({"cmd": "member.add", "name": "Dan"})["id"]
        before = len(self.d.ok({"cmd": "card.list"})["cards"])
        replies = []
        t = self.enrol(dan, replies, 1)
        self.emus["front"].cmd("insert uid=04D1D1D1 uid=04E2E2E2")
        t.join(WAIT)
        self.assertEqual(replies[0].get("code"), "several_cards", replies)
        self.assertEqual(len(self.d.ok({"cmd": "card.list"})["cards"]), before)
        # The same card alone is enrolled.
        self.emus["front"].cmd("remove")
        wait_until(lambda: not self.holding(), what="the reader empty")
        t = self.enrol(dan, replies, 2)
        self.emus["front"].cmd("insert uid=04D1D1D1")
        t.join(WAIT)
        self.assertTrue(replies[1].get("ok"), replies)
        self.assertEqual(len(self.d.ok({"cmd": "card.list"})["cards"]), before + 1)


class TwoCardsMachineTest(ReaderBase):
    def setUp(self):
        self.d = Daemon(config_text="placeholder")
        self.emus = {n: Emulator(self.d.dir, n) for n in ("front", "back", "laser")}
        self.d.write_config(readers_config(self.d.dir, "") + MACHINE.format(dir=self.d.dir))
        self.d.start()
        self.d.seed()
        self.d.ok({"cmd": "machine.set", "machine": "laser", "slot_minutes": 5, "min_minutes": 5,
                   "max_minutes": 60, "hours": "always", "booking_required": False,
                   "walkup_free_minutes": 10, "cancel_deadline_minutes": 60})

    def test_machine_tap_records_two_cards(self):
        self.wait_up("laser")
        self.emus["laser"].cmd("insert uid=%s uid=%s" % (CAROL, ALICE))
        wait_until(lambda: [e for e in self.d.events() if e["kind"] == "machine"], what="machine tap")
        ev = [e for e in self.d.events() if e["kind"] == "machine"]
        self.assertEqual(len(ev), 1)
        self.assertEqual((ev[0]["member_id"], ev[0]["granted"], ev[0]["reason"]), (3, True, "granted"))
        self.assertRegex(ev[0]["detail"], r"^walk-up, \d+ us; " + re.escape(NOTE) + "$")
        self.assertTrue(self.d.relay_file("laser"))
        self.assertIn("machine laser: 2 cards presented at reader laser; first selected wins",
                      self.d.log_text())


class TwoCardsMqttTest(ReaderBase):
    """The MQTT event is built from the access log's entry: it carries the detail."""

    def setUp(self):
        from test_mqtt import Broker, Listener
        self.d = Daemon(config_text="placeholder")
        self.broker = Broker(self.d.dir)
        self.broker.start()
        self.emus = {n: Emulator(self.d.dir, n) for n in ("front", "back")}
        self.d.write_config(readers_config(self.d.dir, "") +
                            "\n[mqtt]\nenabled = true\nport = %d\n" % self.broker.port)
        self.listener = Listener(self.broker.port, ["portier/#"])
        self.d.start()
        self.d.seed()

    def tearDown(self):
        self.listener.close()
        super().tearDown()
        self.broker.stop()

    def test_event_says_two_cards(self):
        self.wait_up("front")
        self.emus["front"].cmd("insert uid=%s uid=%s" % (CAROL, ALICE))
        wait_until(lambda: self.listener.events("tap"), what="tap event over MQTT")
        ev = self.listener.events("tap")[0]
        self.assertEqual((ev["member_id"], ev["granted"], ev["detail"]), (3, True, NOTE))
        raw = b"".join(p for t, p, r in self.listener.messages).upper()
        for uid in (ALICE, CAROL):
            self.assertNotIn(uid.encode(), raw)


FAKE_WORKER = r'''#!/usr/bin/python3
# A worker that misbehaves as told by MODE in its directory.
import os, socket, struct, sys, time
mode = open(os.path.join(os.path.dirname(sys.argv[0]), "MODE")).read().strip()
s = socket.socket(fileno=3)
# struct reader_msg, version 2 (hw/reader_proto.h)
FMT = "<BBBBHBBI10s48sBBBBI96s"
def msg(seq, typ, text=b"fake"):
    return struct.pack(FMT, 2, typ, 0, 0, 0, 0, 0, seq, b"", b"", 0, 0, 0, 0, 0, text)
s.send(msg(1, 1))                       # HELLO
if mode == "short":
    s.send(b"\x01\x02\x03")
elif mode == "badtype":
    s.send(msg(2, 99))
elif mode == "baduid":
    s.send(struct.pack(FMT, 2, 2, 9, 0, 0, 0, 0, 2, b"", b"", 0, 0, 0, 0, 0, b""))
elif mode == "notargets":                # a card, but no card answered
    s.send(struct.pack(FMT, 2, 2, 4, 8, 4, 0, 0, 2, b"\x04\xa1\xb2\xc3", b"", 0, 0, 0, 0, 0, b""))
elif mode == "seq":
    s.send(msg(7, 5))
elif mode == "hang":
    pass
time.sleep(3600)
'''


class WorkerFaultTest(DaemonTest):
    """The parent checks every worker message: malformed ones and silence are faults."""

    def setUp(self):
        self.d = Daemon(config_text="placeholder")
        self.fake = os.path.join(self.d.dir, "fake-worker")
        with open(self.fake, "w") as f:
            f.write(FAKE_WORKER)
        os.chmod(self.fake, 0o755)
        self.Emulator = None
        self.emus = {}

    def start(self, mode):
        with open(os.path.join(self.d.dir, "MODE"), "w") as f:
            f.write(mode)
        self.d.write_config(readers_config(self.d.dir, "reader_worker = " + self.fake))
        self.d.start()

    def reader(self):
        return next(r for r in self.d.status()["readers"] if r["name"] == "front")

    def check_fault(self, mode, words):
        self.start(mode)
        wait_until(lambda: self.reader()["restarts"] >= 1, what="worker restarted after " + mode)
        wait_until(lambda: words in self.d.log_text(), what="log says " + words)
        self.assertIsNone(self.d.proc.poll())

    def test_short_message(self):
        self.check_fault("short", "malformed message from worker: wrong message size")

    def test_unknown_type(self):
        self.check_fault("badtype", "unknown message type")

    def test_bad_uid_length(self):
        self.check_fault("baduid", "bad UID length")

    def test_arrival_without_target_count(self):
        self.check_fault("notargets", "malformed message from worker: bad target count")

    def test_broken_sequence(self):
        self.check_fault("seq", "message sequence broken")

    def test_silent_worker_is_killed(self):
        self.check_fault("hang", "reader hung")


if __name__ == "__main__":
    main()

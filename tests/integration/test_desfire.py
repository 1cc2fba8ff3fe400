# SPDX-License-Identifier: AGPL-3.0-or-later
"""DESFire cards end to end: portierd, its reader workers (libfreefare through real libnfc) and
pn532-emu's DESFire cards. Provisioning, taps under each card_security, UID clones and
forged cards, removal and worker restarts mid-exchange, random UIDs, the migration report,
and a visitor's card at a host site while its home site is stopped.

No test depends on speed: every wait is a bounded poll for an outcome."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import BIN, WAIT, Daemon, DaemonTest, main, wait_until  # noqa: E402

EMU = os.path.join(BIN, "pn532-emu")

CONFIG = """
[site]
id = {site}
timezone = Europe/Paris

[daemon]
state_dir = {dir}/state
control_socket = {dir}/ctl.sock
log_level = debug

[hardware]
backend = sim
debounce_ms = 0
sim_state_dir = {dir}/relays

[reader front]
driver = libnfc
connstring = pn532_uart:{dir}/front.tty
emulator = {dir}/front.ctl
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000
backoff_max_seconds = 1

[reader desk]
driver = libnfc
connstring = pn532_uart:{dir}/desk.tty
emulator = {dir}/desk.ctl
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000
backoff_max_seconds = 1

[door front]
reader = front
relay = 17
unlock_seconds = 1
card_security = {security}
{extra}
"""

ALICE = "04A1B2C3D4E5F6"        # a DESFire card, provisioned in the tests
BOB = "04B0B0B0B0B0B0"
OTHER = "04C0C0C0C0C0C0"


class Emulator:
    def __init__(self, directory, name, cards):
        self.link = os.path.join(directory, name + ".tty")
        self.control = os.path.join(directory, name + ".ctl")
        self.log = open(os.path.join(directory, name + ".emu.log"), "wb")
        self.proc = subprocess.Popen([EMU, "--link", self.link, "--control", self.control,
                                      "--cards", cards, "-v"],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.proc.stdout.readline()

    def cmd(self, line):
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.control)
        s.sendall((line + "\n").encode())
        reply = s.recv(4096).decode()
        s.close()
        if not reply.startswith("ok"):
            raise AssertionError("emulator: %s -> %s" % (line, reply))
        return reply.strip()

    def status(self):
        return dict(kv.split("=", 1) for kv in self.cmd("status").split()[1:])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.log.close()


class Site:
    """A portierd with a front door and a desk reader, each on its own emulator; the
    emulators keep their DESFire cards in cards (shared between sites: a card carried)."""

    def __init__(self, root, name, cards, security="desfire", extra="", directory=None):
        self.dir = directory or os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.emus = {n: Emulator(self.dir, n, cards) for n in ("front", "desk")}
        self.name = name
        self.write(security, extra)

    def write(self, security="desfire", extra=""):
        self.d.write_config(CONFIG.format(dir=self.dir, site=self.name, security=security,
                                          extra=extra))

    def reader(self, name):
        return next(r for r in self.d.status()["readers"] if r["name"] == name)

    def wait_up(self, *names):
        for n in names or ("front", "desk"):
            wait_until(lambda: self.reader(n)["health"] == "up", what="reader %s up" % n)

    def taps(self):
        return [e for e in self.d.events() if e["kind"] == "tap"]

    def tap(self, card, reader="front", remove=True):
        """Present card ("UID [words]") at reader; the access-log entry of the tap."""
        before = len(self.taps())
        self.emus[reader].cmd("insert uid=" + card)
        wait_until(lambda: len(self.taps()) > before, what="the tap of " + card)
        tap = self.taps()[-1]
        if remove:
            self.emus[reader].cmd("remove")
            wait_until(lambda: not self.reader(reader)["holding"], what="the card gone")
        return tap

    def start_job(self, cmd, **args):
        replies = []
        t = threading.Thread(target=lambda: replies.append(self.d.request(
            dict({"cmd": cmd, "reader": "desk", "timeout": 20}, **args), timeout=60)))
        t.start()
        word = "info: %s: waiting up to" % ("deprovision" if cmd == "card.deprovision" else "provision")
        wait_until(lambda: self.d.log_text().count(word) > self.jobs_seen.get(word, 0),
                   what="the job waiting")
        self.jobs_seen[word] = self.d.log_text().count(word)
        return t, replies

    jobs_seen = None

    def provision(self, member, card, keep=False, **args):
        """Provision card ("UID [words]") for member at the desk reader; the reply."""
        t, replies = self.start_job("card.provision", member=str(member), **args)
        self.emus["desk"].cmd("insert uid=" + card)
        t.join(60)
        if not keep:
            self.emus["desk"].cmd("remove")
            wait_until(lambda: not self.reader("desk")["holding"], what="the desk empty")
        return replies[0]

    def stop(self):
        self.d.stop()
        for e in self.emus.values():
            e.stop()


class DesfireTest(DaemonTest):
    security = "desfire"
    extra = ""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="portier-desfire-")
        self.cards = os.path.join(self.root, "cards")
        os.mkdir(self.cards)
        self.site = Site(self.root, "test", self.cards, self.security, self.extra)
        self.site.jobs_seen = {}
        self.d = self.site.d
        self.d.start()
        self.d.seed()       # members 1..3 with UID cards 04A1B2C3, 04B0B0B0, 04C0C0C0
        self.site.wait_up()

    def tearDown(self):
        self.site.stop()
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            print("\n--- portierd log (%s), last lines ---\n%s" % (
                self.d.dir, "\n".join(self.d.log_text().splitlines()[-60:])))
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def card_of(self, member):
        return [c for c in self.d.ok({"cmd": "card.list", "member": str(member)})["cards"]]


class ProvisioningTest(DesfireTest):
    def test_provision_then_the_card_opens_and_its_clones_do_not(self):
        reply = self.site.provision(1, ALICE + " desfire", label="blue card")
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual((reply["member"], reply["existed"]), (1, False))
        self.assertIn("aids=F52701", self.site.emus["desk"].cmd("desfire uid=" + ALICE))
        cards = {c["id"]: c for c in self.card_of(1)}
        self.assertTrue(cards[reply["card"]]["desfire"])
        self.assertEqual(cards[reply["card"]]["label"], "blue card")
        code, out, _ = self.d.ctl("card", "list", "1")
        self.assertRegex(out, r"blue card\s+yes\s+desfire")

        tap = self.site.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["member_id"], tap["reason"]), (True, 1, "granted"))

        # A card that shows Alice's UID and nothing else (a magic card, a Flipper).
        tap = self.site.tap(ALICE)
        self.assertEqual((tap["granted"], tap["member_id"], tap["reason"]),
                         (False, 1, "card_not_secure"))
        self.assertEqual(tap["detail"], "not a DESFire card")
        # A clone that looks like a DESFire (its ATS) but answers "OK" to anything: libfreefare
        # alone would let it authenticate; the worker's checks do not.
        tap = self.site.tap(ALICE + " sak=20 ats=7577810280")
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_auth_failed"))
        self.assertIn("broke the protocol", tap["detail"])
        # A forged application under Alice's UID with keys the forger chose.
        self.site.emus["front"].cmd("desfire-forge uid=%s aid=F52701 key=%s" % (OTHER, "11" * 16))
        tap = self.site.tap(OTHER + " desfire")
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_auth_failed"))
        log = self.d.log_text()
        self.assertIn("denied to member 1 (card", log)
        for uid in (ALICE, OTHER):
            self.assertNotIn(uid.lower(), log.lower())

    def test_master_key_stays_in_its_file(self):
        self.site.provision(1, ALICE + " desfire")
        self.site.tap(ALICE + " desfire")
        path = os.path.join(self.d.dir, "state", "desfire-master.key")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            key_hex = f.read().strip()
        self.assertEqual(len(key_hex), 32)
        key = bytes.fromhex(key_hex)
        self.d.stop()
        self.d.start()
        with open(os.path.join(self.d.dir, "state", "portier.db"), "rb") as f:
            db = f.read()
        log = self.d.log_text()
        events = json.dumps(self.d.events())
        for blob in (db, log.encode(), events.encode()):
            self.assertNotIn(key, blob)
            self.assertNotIn(key_hex.encode(), blob.lower())
            self.assertNotIn(key_hex.upper().encode(), blob)

    def test_provisioning_interrupted_resumes_when_run_again(self):
        # The card leaves right after its first key changed.
        self.site.emus["desk"].cmd("fault remove-after C4")
        reply = self.site.provision(1, ALICE + " desfire")
        self.assertEqual(reply.get("code"), "card_removed", reply)
        self.assertIn("run the command again", reply["error"])
        self.assertFalse([c for c in self.card_of(1) if c["desfire"]])
        # Run again: it finishes what was started.
        reply = self.site.provision(1, ALICE + " desfire")
        self.assertTrue(reply.get("ok"), reply)
        tap = self.site.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 1))
        # And again: nothing to do, the same card.
        again = self.site.provision(1, ALICE + " desfire")
        self.assertEqual((again.get("ok"), again.get("card"), again.get("existed")),
                         (True, reply["card"], True))

    def test_worker_restart_during_provisioning(self):
        # The chip stops answering right after the card's first key changed: the worker hangs
        # mid-exchange, the daemon kills and restarts it, and the new worker finishes the job
        # on the card still on the reader.
        restarts = self.site.reader("desk")["restarts"]
        self.site.emus["desk"].cmd("fault mute-after C4")
        t, replies = self.site.start_job("card.provision", member="1")
        self.site.emus["desk"].cmd("insert uid=" + ALICE + " desfire")
        wait_until(lambda: self.site.reader("desk")["restarts"] > restarts, what="worker restarted")
        self.site.emus["desk"].cmd("fault none")
        t.join(60)
        self.assertTrue(replies and replies[0].get("ok"), replies)
        self.site.emus["desk"].cmd("remove")
        tap = self.site.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 1))

    def test_wrong_picc_key_and_not_desfire(self):
        reply = self.site.provision(1, ALICE + " desfire", picc_key="aes:" + "22" * 16)
        self.assertEqual(reply.get("code"), "picc_key", reply)
        self.assertNotIn("22" * 16, self.d.log_text())
        reply = self.site.provision(1, BOB)       # an Ultralight: no keys to hold
        self.assertEqual(reply.get("code"), "not_desfire", reply)
        reply = self.site.provision(1, ALICE + " desfire", picc_key="default")
        self.assertTrue(reply.get("ok"), reply)

    def test_a_card_of_another_member_is_not_taken(self):
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        reply = self.site.provision(2, ALICE + " desfire")
        self.assertEqual(reply.get("code"), "exists", reply)
        self.assertFalse([c for c in self.card_of(2) if c["desfire"]])

    def test_deprovision(self):
        card = self.site.provision(1, ALICE + " desfire")["card"]
        t, replies = self.site.start_job("card.deprovision")
        self.site.emus["desk"].cmd("insert uid=" + ALICE + " desfire")
        t.join(60)
        self.assertTrue(replies[0].get("ok"), replies)
        self.assertEqual(replies[0]["card"], card)
        self.assertIn("aids=-", self.site.emus["desk"].cmd("desfire uid=" + ALICE))
        self.assertNotIn(card, [c["id"] for c in self.card_of(1)])
        self.site.emus["desk"].cmd("remove")
        tap = self.site.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_not_secure"))

    def test_refused_before_waiting_for_a_card(self):
        """A bad argument or a busy reader is answered at once, and no job waits."""
        def reply(cmd, **args):
            return self.d.request(dict({"cmd": cmd, "reader": "desk", "timeout": 20}, **args))
        jobs = (("card.provision", {"member": "1"}), ("card.deprovision", {}))
        for cmd, args in jobs:
            r = reply(cmd, picc_key="aes:12", **args)
            self.assertEqual(r.get("code"), "bad_request", r)
            self.assertIn("picc_key", r.get("error", ""), r)
            r = reply(cmd, reader="nope", **args)
            self.assertEqual(r.get("code"), "not_found", r)
        r = reply("card.provision", member="99")
        self.assertEqual(r.get("code"), "not_found", r)
        self.assertNotIn("provision: waiting up to", self.d.log_text())
        # An enrolment waiting at the desk keeps both away.
        t = threading.Thread(target=lambda: self.d.request(
            {"cmd": "card.enroll", "member": "2", "reader": "desk", "timeout": 20}, timeout=60))
        t.start()
        wait_until(lambda: "enroll: waiting up to" in self.d.log_text(), what="the enrolment")
        for cmd, args in jobs:
            r = reply(cmd, **args)
            self.assertEqual(r.get("code"), "busy", r)
        self.site.emus["desk"].cmd("insert uid=04D0D0D0")
        t.join(60)
        self.assertNotIn("provision: waiting up to", self.d.log_text())

    def test_portierctl_provision_and_report(self):
        def ctl():
            return subprocess.run([os.path.join(BIN, "portierctl"), "-s", self.d.socket, "card",
                                   "provision", "Carol", "--reader", "desk", "--timeout", "20",
                                   "--picc-key-file", keyfile],
                                  capture_output=True, text=True, timeout=60)
        keyfile = os.path.join(self.root, "picc.key")
        with open(keyfile, "w") as f:
            f.write("default\n")
        out = []
        t = threading.Thread(target=lambda: out.append(ctl()))
        t.start()
        wait_until(lambda: "provision: waiting up to" in self.d.log_text(), what="waiting")
        self.site.emus["desk"].cmd("insert uid=" + OTHER + " desfire")
        t.join(60)
        self.assertEqual(out[0].returncode, 0, out[0].stderr)
        self.assertRegex(out[0].stdout, r"card \d+ of member 3 is a DESFire card")
        # Carol's old UID card is still on the report until it is removed: she carries two.
        code, report, _ = self.d.ctl("card", "report")
        self.assertIn("3 card(s) still open by UID alone", report)
        rows = self.d.ctl_json("card", "report")
        self.assertEqual(sorted(r["member"] for r in rows), ["Alice", "Bob", "Carol"])
        self.assertEqual([r["last_used"] for r in rows], [0, 0, 0])


class MigrationTest(DesfireTest):
    security = "desfire-or-uid"

    def test_uid_cards_still_open_provisioned_ones_need_their_key(self):
        # Bob has only his UID card: it opens, and the report lists him.
        tap = self.site.tap("04B0B0B0")
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 2))
        report = self.d.ok({"cmd": "card.report"})["uid_only"]
        self.assertIn("Bob", [r["member"] for r in report])
        self.assertTrue(next(r for r in report if r["member"] == "Bob")["last_used"] > 0)
        # Alice gets a DESFire card, and her old one goes.
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        old = next(c["id"] for c in self.card_of(1) if not c["desfire"])
        self.d.ok({"cmd": "card.remove", "card": old})
        report = self.d.ok({"cmd": "card.report"})["uid_only"]
        self.assertNotIn("Alice", [r["member"] for r in report])
        self.assertEqual(self.site.tap(ALICE + " desfire")["granted"], True)
        # In migration mode too, a copy of her UID opens nothing.
        tap = self.site.tap(ALICE)
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_not_secure"))
        # A card nobody knows is unknown, as before.
        tap = self.site.tap("04123456")
        self.assertEqual((tap["granted"], tap["reason"]), (False, "unknown_card"))

    def test_uid_mode_ignores_the_key(self):
        self.site.d.stop()
        self.site.write("uid")
        self.site.d.start()
        self.site.wait_up()
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        tap = self.site.tap(ALICE)                  # a copy: uid trusts the number
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 1))


class TapFaultTest(DesfireTest):
    def test_removed_mid_authentication(self):
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        front = self.site.emus["front"]
        front.cmd("fault remove-after AA")
        before = len(self.site.taps())
        front.cmd("insert uid=" + ALICE + " desfire")
        wait_until(lambda: len(self.site.taps()) > before, what="the interrupted tap")
        tap = self.site.taps()[-1]
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_auth_failed"))
        self.assertEqual(tap["detail"], "the card was taken away during authentication")
        self.assertFalse(self.d.relay_file("front"))
        wait_until(lambda: not self.site.reader("front")["holding"], what="card gone")
        tap = self.site.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["member_id"]), (True, 1))

    def test_worker_restart_during_authentication(self):
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        front = self.site.emus["front"]
        restarts = self.site.reader("front")["restarts"]
        front.cmd("fault mute-after AA")
        front.cmd("insert uid=" + ALICE + " desfire")
        wait_until(lambda: self.site.reader("front")["restarts"] > restarts, what="worker restarted")
        # The stuck exchange decided nothing.
        self.assertEqual(self.site.taps(), [])
        front.cmd("fault none")
        wait_until(lambda: self.site.taps(), what="the tap after the restart")
        wait_until(lambda: self.site.reader("front")["health"] == "up", what="front up")
        time.sleep(0.5)
        taps = self.site.taps()
        self.assertEqual(len(taps), 1, taps)
        self.assertEqual((taps[0]["granted"], taps[0]["member_id"]), (True, 1))

    def test_random_uid_card_taps_once_and_is_known(self):
        self.assertTrue(self.site.provision(1, ALICE + " desfire random_uid").get("ok"))
        front = self.site.emus["front"]
        front.cmd("insert uid=%s desfire random_uid" % ALICE)
        wait_until(lambda: self.site.taps(), what="tap")
        self.assertTrue(front.status()["card"].startswith("08"))
        # Held on the reader: one tap, not one per poll (its UID changes at each power-up).
        start = int(front.status()["rx_frames"])
        wait_until(lambda: int(front.status()["rx_frames"]) > start + 20, what="polls")
        taps = self.site.taps()
        self.assertEqual(len(taps), 1, taps)
        self.assertEqual((taps[0]["granted"], taps[0]["member_id"]), (True, 1))


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
card_security = desfire
"""


class MachineTest(DesfireTest):
    def setUp(self):
        super().setUp()
        self.site.d.stop()
        self.site.emus["laser"] = Emulator(self.site.dir, "laser", self.cards)
        self.site.write(self.security, MACHINE.format(dir=self.site.dir))
        self.site.d.start()
        self.site.wait_up("front", "desk", "laser")
        self.d.ok({"cmd": "machine.set", "machine": "laser", "slot_minutes": 5, "min_minutes": 5,
                   "max_minutes": 60, "hours": "always", "booking_required": False,
                   "walkup_free_minutes": 10, "cancel_deadline_minutes": 60})

    def machine_taps(self):
        return [e for e in self.d.events() if e["kind"] == "machine"]

    def test_machine_wants_the_key_too(self):
        self.assertTrue(self.site.provision(1, ALICE + " desfire").get("ok"))
        laser = self.site.emus["laser"]
        laser.cmd("insert uid=" + ALICE)            # the UID alone
        wait_until(self.machine_taps, what="machine tap")
        self.assertEqual(self.machine_taps()[-1]["reason"], "card_not_secure")
        self.assertFalse(self.d.relay_file("laser"))
        laser.cmd("remove")
        time.sleep(0.4)
        laser.cmd("insert uid=" + ALICE + " desfire")
        wait_until(lambda: len(self.machine_taps()) == 2, what="second machine tap")
        self.assertEqual(self.machine_taps()[-1]["reason"], "granted")
        wait_until(lambda: self.d.relay_file("laser"), what="laser on")


class TwoSitesTest(DesfireTest):
    """A card provisioned at one site does not open another site's door: different master
    keys, the same application number."""

    def test_other_sites_card_is_refused(self):
        other = Site(self.root, "other", self.cards)
        other.jobs_seen = {}
        try:
            other.d.start()
            other.d.seed()
            other.wait_up()
            reply = other.provision(1, ALICE + " desfire")
            self.assertTrue(reply.get("ok"), reply)
            # The same card, carried here: Alice's UID is enrolled here, but the card holds
            # the other site's keys.
            self.d.ok({"cmd": "card.add", "member": "1", "uid": ALICE})
            tap = self.site.tap(ALICE + " desfire")
            self.assertEqual((tap["granted"], tap["reason"]), (False, "card_auth_failed"))
            self.assertIn("wrong key", tap["detail"])
            # Provisioning it here is refused too: its application is not this site's.
            reply = self.site.provision(1, ALICE + " desfire")
            self.assertEqual(reply.get("code"), "foreign_card", reply)
        finally:
            other.stop()


class VisitorTest(DesfireTest):
    """A member of lyon, with a DESFire card provisioned at lyon, at paris's door while lyon is
    stopped: paris proves the card with the consortium's key (the card's consortium
    application) and lets her in under her passport. A copy of her UID is refused there."""

    def setUp(self):
        from test_mqtt import Broker
        self.root = tempfile.mkdtemp(prefix="portier-desfire-")
        self.cards = os.path.join(self.root, "cards")
        os.mkdir(self.cards)
        self.broker = Broker(self.root)
        self.broker.start()
        card_key = os.path.join(self.root, "card.key")
        with open(card_key, "wb") as f:
            f.write(os.urandom(32))
        desfire_key = os.path.join(self.root, "consortium-desfire.key")
        with open(desfire_key, "w") as f:
            f.write("# the consortium's DESFire key\n1 %s\n" % os.urandom(16).hex())
        self.sites_file = os.path.join(self.root, "sites")
        open(self.sites_file, "w").close()
        extra = ("\n[mqtt]\nenabled = true\nport = %d\ndiscovery = false\n\n[consortium]\n"
                 "enabled = true\ncard_key_file = %s\nsites_file = %s\ndesfire_key_file = %s\n"
                 "visit_price_cents = 1200\npassport_days = 60\npassport_scan_seconds = 1\n" %
                 (self.broker.port, card_key, self.sites_file, desfire_key))
        self.sites = {n: Site(self.root, n, self.cards, "desfire", extra) for n in ("lyon", "paris")}
        for st in self.sites.values():
            st.jobs_seen = {}
            st.d.start()
        with open(self.sites_file, "w") as f:
            for n, st in self.sites.items():
                f.write("%s %s\n" % (n, st.d.ok({"cmd": "site.key"})["public_key"]))
        for st in self.sites.values():
            st.d.stop()
            st.d.start()
            st.wait_up()
        self.site = self.sites["paris"]
        self.d = self.site.d

    def tearDown(self):
        failed = False
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            failed = True
            for n, st in self.sites.items():
                print("\n--- portierd %s log ---\n%s" % (n, "\n".join(
                    st.d.log_text().splitlines()[-40:])))
        for st in self.sites.values():
            st.stop()
        self.broker.stop()
        if not failed:
            shutil.rmtree(self.root, ignore_errors=True)

    def lyon_desfire_passports_at_paris(self):
        with self.sites["paris"].d.db() as db:
            return db.execute("SELECT count(*) FROM consortium_passport_cards "
                              "WHERE home = 'lyon' AND desfire = 1").fetchone()[0]

    def test_visitor_card_proved_with_home_site_stopped(self):
        lyon, paris = self.sites["lyon"], self.sites["paris"]
        lyon.d.ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        lyon.d.ok({"cmd": "plan.billing", "plan": "nomad", "visit_days": 2})
        alice = lyon.d.ok({"cmd": "member.add", "name": "Alice", "plan": "nomad"})["id"]
        reply = lyon.provision(alice, ALICE + " desfire")
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["done"], "site and consortium applications ready")
        self.assertIn("aids=F52701,F52702", lyon.emus["desk"].cmd("desfire uid=" + ALICE))
        # Her passport says her card is a DESFire.
        wait_until(self.lyon_desfire_passports_at_paris, what="lyon's passport at paris")

        lyon.d.stop()
        tap = paris.tap(ALICE + " desfire")
        self.assertEqual((tap["granted"], tap["reason"]), (True, "visitor"), tap)
        self.assertIn("visitor of lyon", tap["detail"])
        # A copy of her UID: the passport says her card proves a key, so the copy is refused.
        tap = paris.tap(ALICE)
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_not_secure"), tap)
        self.assertIn("visitor of lyon", tap["detail"])
        # A card forging both of Portier's applications with keys of its own choosing.
        paris.emus["front"].cmd("desfire-forge uid=%s aid=F52702 key=%s" % (OTHER, "33" * 16))
        tap = paris.tap(OTHER + " desfire")
        self.assertEqual((tap["granted"], tap["reason"]), (False, "card_auth_failed"), tap)


if __name__ == "__main__":
    main()

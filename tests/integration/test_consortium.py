# SPDX-License-Identifier: AGPL-3.0-or-later
"""The consortium end to end: sites' portierd send their signed ledgers through a real
mosquitto on 127.0.0.1 to a real portier-custodian, which verifies, stores, acknowledges,
asks again for what is missing, and reports forged, replayed and missing entries.
Run with /usr/bin/python3 (python3-paho-mqtt)."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import hashlib

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import BIN, Daemon, WAIT, build_config, main, wait_until  # noqa: E402
from test_mqtt import Broker, free_port  # noqa: E402

CUSTODIAN = os.path.join(BIN, "portier-custodian")

SITE_SECTIONS = """
[mqtt]
enabled = true
port = {port}
discovery = false

[consortium]
enabled = true
batch_entries = {batch}
resend_seconds = {resend}

{passports}
[reader front]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 1
"""


def read_file(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


class Site:
    """A portierd of the consortium with its own directory."""

    def __init__(self, root, name, port, batch=256, resend=30, passports=""):
        self.name = name
        directory = os.path.join(root, name)
        os.makedirs(directory)
        sections = SITE_SECTIONS.format(port=port, batch=batch, resend=resend,
                                        passports=passports)
        self.d = Daemon(build_config(directory, sections, site=name, site_name="Site " + name),
                        directory=directory)

    def start(self):
        self.d.start()
        return self

    def public_key(self):
        return self.d.ok({"cmd": "site.key"})["public_key"]

    def head(self):
        with self.d.db() as db:
            return db.execute("SELECT coalesce(max(seq), 0) FROM ledger").fetchone()[0]

    def acked(self):
        with self.d.db() as db:
            return db.execute("SELECT acked_seq FROM consortium_transport").fetchone()[0]

    def ledger_hashes(self):
        with self.d.db() as db:
            return dict(db.execute("SELECT seq, hash FROM ledger"))

    def seed_member(self, name="Alice", day_rate=1500):
        self.d.ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        self.d.ok({"cmd": "plan.billing", "plan": "nomad", "monthly_days": 0,
                   "day_rate_cents": day_rate, "allowance_order": "rate"})
        return self.d.ok({"cmd": "member.add", "name": name, "plan": "nomad"})["id"]

    def corrections(self, n, seq=1):
        """n ledger entries quickly: corrections of entry seq by 0 cents."""
        for _ in range(n):
            self.d.ok({"cmd": "usage.correct", "seq": seq, "amount_cents": 0,
                       "note": "test entry"})


class Custodian:
    def __init__(self, root, port):
        self.dir = root
        self.port = port
        self.db_path = os.path.join(root, "custodian.db")
        self.log_path = os.path.join(root, "custodian.log")
        self.proc = None

    def ctl(self, *args, check=True):
        p = subprocess.run([CUSTODIAN, "--db", self.db_path] + list(args), capture_output=True,
                           text=True, timeout=WAIT)
        if check and p.returncode != 0:
            raise AssertionError("portier-custodian %s failed (%d): %s" % (
                args, p.returncode, p.stderr))
        return p

    def register(self, site):
        self.ctl("site", "add", site.name, "--key", site.public_key(), "--timezone",
                 "Europe/Paris")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CUSTODIAN, "--db", self.db_path, "-v", "run", "--broker",
                                      "127.0.0.1:%d" % self.port], stdout=self.log,
                                     stderr=self.log)
        wait_until(lambda: "connected to" in self.log_text(), what="custodian connected")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=WAIT)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def sites(self):
        return {s["name"]: s for s in json.loads(self.ctl("site", "list", "--json").stdout)}

    def verified(self, name):
        return self.sites()[name]["verified_seq"]

    def problems(self, kind=None):
        out = json.loads(self.ctl("problems", "--json").stdout)
        return [p for p in out if kind is None or p["kind"] == kind]

    def entries(self, site):
        db = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True)
        try:
            return db.execute("SELECT seq, hash FROM entries WHERE site = ? ORDER BY seq",
                              (site,)).fetchall()
        finally:
            db.close()


class Tap:
    """Keeps every ledger batch that crosses the broker, as an eavesdropper would."""

    def __init__(self, port, *topics):
        topics = topics or ("portier/+/ledger/batch",)
        self.batches = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id="test-tap-%d" % os.getpid(), clean_session=True)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        assert self.subscribed.wait(WAIT), "tap never subscribed"

    def on_message(self, client, userdata, msg):
        with self.lock:
            self.batches.append((msg.topic, msg.payload))

    def decoded(self):
        with self.lock:
            return [(t, json.loads(p)) for t, p in self.batches]

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class ConsortiumTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="portier-consortium-")
        self.broker = Broker(self.root)
        self.broker.start()
        self.sites = []
        self.custodian = Custodian(self.root, self.broker.port)
        self.tap = None

    def tearDown(self):
        if self.tap:
            self.tap.close()
        self.custodian.stop()
        for s in self.sites:
            s.d.stop()
        self.broker.stop()
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            print("\n--- custodian log ---\n%s" % "\n".join(
                self.custodian.log_text().splitlines()[-40:]))
            for s in self.sites:
                print("--- portierd %s log ---\n%s" % (s.name, "\n".join(
                    s.d.log_text().splitlines()[-30:])))
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def site(self, name, **kw):
        s = Site(self.root, name, self.broker.port, **kw).start()
        self.sites.append(s)
        return s

    def wait_verified(self, site, seq):
        wait_until(lambda: self.custodian.verified(site.name) == seq,
                   what="custodian verified %s up to %d" % (site.name, seq))
        wait_until(lambda: site.acked() == seq, what="%s acknowledged up to %d" % (site.name, seq))

    # -- stage 1: the ledger reaches the custodian --

    def test_ledger_is_verified_stored_and_acknowledged(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
            lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": day})
        self.custodian.register(lyon)
        self.custodian.start()
        self.wait_verified(lyon, 3)
        # Exactly the site's entries, hash for hash, each once.
        self.assertEqual(dict(self.custodian.entries("lyon")), lyon.ledger_hashes())
        self.assertEqual(self.custodian.problems(), [])
        # New usage follows while connected.
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-08"})
        self.wait_verified(lyon, 4)
        # The acknowledgement is persisted: after a restart the site does not send again.
        lyon.d.stop()
        lyon.d.start()
        wait_until(lambda: "mqtt: connected" in lyon.d.log_text())
        status = lyon.d.status()["mqtt"]["ledger"]
        self.assertEqual((status["acked_seq"], status["head_seq"]), (4, 4))
        self.assertEqual(self.custodian.problems(), [])

    def test_ledger_still_acknowledged_after_reloads(self):
        """Found by tools/torture: after a SIGHUP the consortium went on reading the freed
        configuration (site id, batch and window sizes). MALLOC_PERTURB_ has glibc
        overwrite freed memory at once, so a stale read shows."""
        lyon = Site(self.root, "lyon", self.broker.port)
        self.sites.append(lyon)
        lyon.d.start(env_extra={"MALLOC_PERTURB_": "165"})
        alice = lyon.seed_member()
        for _ in range(3):
            lyon.d.kill(signal.SIGHUP)
            lyon.d.wait_notify("READY=1")
        for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
            lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": day})
        self.custodian.register(lyon)
        self.custodian.start()
        self.wait_verified(lyon, 3)
        self.assertEqual(self.custodian.problems(), [])
        self.assertIsNone(lyon.d.proc.poll())

    def test_unregistered_site_is_reported_not_stored(self):
        self.custodian.start()
        ghost = self.site("ghost")
        alice = ghost.seed_member()
        ghost.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-05"})
        wait_until(lambda: self.custodian.problems("unknown_site"), what="unknown site reported")
        self.assertEqual(self.custodian.entries("ghost"), [])
        self.assertEqual(ghost.acked(), 0)

    def test_site_offline_for_1000_entries_catches_up_once(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-05"})
        self.custodian.register(lyon)
        self.custodian.start()
        self.wait_verified(lyon, 1)
        # The network goes away; the site keeps recording.
        self.broker.stop()
        wait_until(lambda: "mqtt: disconnected" in lyon.d.log_text(), what="site offline")
        lyon.corrections(1000)
        self.assertEqual(lyon.head(), 1001)
        self.assertEqual(lyon.acked(), 1)
        self.broker.start()
        self.wait_verified(lyon, 1001)
        rows = self.custodian.entries("lyon")
        self.assertEqual([seq for seq, _ in rows], list(range(1, 1002)))
        self.assertEqual(dict(rows), lyon.ledger_hashes())
        # Both come back to a broker that restarted empty: a batch the site sends before the
        # custodian has subscribed again is lost, and the next one shows the custodian a gap,
        # which it asks again for (the designed recovery; which of the two reconnects first
        # is a race). Nothing else may be reported, and a gap only within the offline entries,
        # filled by the end.
        for p in self.custodian.problems():
            self.assertIn(p["kind"], ("replay", "gap"), p)
            if p["kind"] == "gap":
                self.assertGreaterEqual(p["first_seq"], 2, p)
                self.assertLessEqual(p["last_seq"], 1001, p)
                self.assertTrue(p["resolved"], p)       # filled: every entry came

    def test_forged_entry_and_replayed_batch_are_detected_and_reported(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        self.custodian.register(lyon)
        self.custodian.start()
        self.tap = Tap(self.broker.port)
        for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
            lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": day})
        self.wait_verified(lyon, 3)
        wait_until(lambda: self.tap.batches, what="a batch seen on the broker")
        topic, raw = self.tap.batches[-1]
        before = self.custodian.entries("lyon")

        # Forged: the day of entry 3 now costs nothing (the site's signature no longer fits).
        batch = json.loads(raw)
        batch["entries"][-1] = batch["entries"][-1].replace("amount_cents=1500",
                                                            "amount_cents=0")
        self.assertNotEqual(json.loads(raw), batch)
        self.tap.publish(topic, json.dumps(batch))
        forged = wait_until(lambda: self.custodian.problems("forged"), what="forgery reported")
        self.assertEqual(forged[0]["site"], "lyon")
        self.assertIn("signature invalid", forged[0]["detail"])
        self.assertEqual(self.custodian.entries("lyon"), before)

        # The site goes on as before.
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-08"})
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-09"})
        self.wait_verified(lyon, 5)
        before = self.custodian.entries("lyon")
        # The site itself may have sent a batch twice already (it resends what was out when
        # the custodian's first acknowledgement found it): those are replays too.
        replays_before = self.custodian.sites()["lyon"]["replays"]
        problems_before = len(self.custodian.problems("replay"))

        # Replayed: the very same batch again.
        self.tap.publish(topic, raw)
        wait_until(lambda: len(self.custodian.problems("replay")) > problems_before,
                   what="replay reported")
        for p in self.custodian.problems("replay"):
            self.assertIn("nothing counted twice", p["detail"])
        self.assertEqual(self.custodian.entries("lyon"), before)
        self.assertEqual(self.custodian.sites()["lyon"]["replays"], replays_before + 1)
        self.assertEqual(self.custodian.verified("lyon"), 5)

    def test_forged_entry_in_the_middle_of_a_batch(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        for day in ("2026-10-05", "2026-10-06", "2026-10-07"):
            lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": day})
        # Nothing acknowledged them: after a restart the site sends 1-3 in one batch.
        lyon.d.stop()
        self.tap = Tap(self.broker.port)
        lyon.d.start()
        wait_until(lambda: any(b["first"] == 1 and b["last"] == 3 for _, b in self.tap.decoded()),
                   what="the batch on the broker")
        topic, batch = [(t, b) for t, b in self.tap.decoded()
                        if b["first"] == 1 and b["last"] == 3][0]
        batch["entries"][1] = batch["entries"][1].replace("member=%d" % alice, "member=999")
        # A custodian that never saw the genuine batch gets the forged one first.
        self.custodian.register(lyon)
        lyon.d.stop()
        self.custodian.start()
        self.tap.publish(topic, json.dumps(batch))
        forged = wait_until(lambda: self.custodian.problems("forged"), what="forgery reported")
        self.assertEqual((forged[0]["first_seq"], forged[0]["last_seq"]), (1, 3))
        self.assertIn("entry 3: previous-hash link broken", forged[0]["detail"])
        self.assertEqual(self.custodian.entries("lyon"), [])

    def test_gap_is_detected_asked_again_and_filled(self):
        # A site that never goes back by itself within the test: only a restart or the
        # custodian's request makes it send again.
        lyon = self.site("lyon", resend=3600)
        alice = lyon.seed_member()
        self.custodian.register(lyon)
        self.tap = Tap(self.broker.port, "portier/+/ledger/batch", "portier/+/ledger/resend")
        # The custodian is away: these batches cross the broker unheard.
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-05"})
        wait_until(lambda: any(b.get("last") == 1 for _, b in self.tap.decoded()),
                   what="batch 1")
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-06"})
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-07"})
        wait_until(lambda: any(b.get("last") == 3 for _, b in self.tap.decoded()),
                   what="batch 3")
        later = [(t, b) for t, b in self.tap.decoded()
                 if t.endswith("/batch") and b["first"] > 1][-1]
        # The site is down while the custodian comes up (otherwise the custodian's
        # connect-time acknowledgement makes the site send everything again at once and no
        # gap is ever seen): only a later batch reaches the custodian.
        lyon.d.stop()
        self.custodian.start()
        self.tap.publish(later[0], json.dumps(later[1]))
        gap = wait_until(lambda: self.custodian.problems("gap"), what="gap reported")
        self.assertEqual((gap[0]["first_seq"], gap[0]["last_seq"]), (1, 3))
        self.assertFalse(gap[0]["resolved"])
        # The custodian asks for the missing entries on the site's resend topic.
        asked = wait_until(lambda: [b for t, b in self.tap.decoded()
                                    if t == "portier/lyon/ledger/resend"], what="resend request")
        self.assertEqual((asked[0]["from"], asked[0]["to"]), (1, 3))
        # Back up, the site sends what was never acknowledged; the gap is filled and resolved.
        lyon.d.start()
        self.wait_verified(lyon, 3)
        self.assertEqual(dict(self.custodian.entries("lyon")), lyon.ledger_hashes())
        wait_until(lambda: self.custodian.problems("gap")[0]["resolved"], what="gap resolved")
        # A site that is up answers a resend request from its ledger, even for entries
        # already acknowledged.
        sent = len([1 for t, b in self.tap.decoded() if t.endswith("/batch") and b["first"] == 1])
        self.tap.publish("portier/lyon/ledger/resend", json.dumps({"v": 1, "from": 1, "to": 3}))
        wait_until(lambda: len([1 for t, b in self.tap.decoded()
                                if t.endswith("/batch") and b["first"] == 1]) > sent,
                   what="entries 1-3 sent again")
        self.assertIn("the custodian asks again for entries 1-3", lyon.d.log_text())

    # -- stage 2: reports and the web page --

    # -- period seals and the export --

    def close_month(self, site, member, months_ahead=0):
        """A day of usage in the site's current month, then its clock moved to the 2nd of the
        next month and that month closed (as `portierctl period close` does). Returns the
        period and the closing reply."""
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        now = site.d.ok({"cmd": "sim.advance", "seconds": 0})["now"]
        lt = time.localtime(now)
        period = "%04d-%02d" % (lt.tm_year, lt.tm_mon)
        site.d.ok({"cmd": "usage.add", "member": str(member), "at": "%s-01" % period})
        y, m = (lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1)
        target = int(time.mktime((y, m, 2, 10, 0, 0, 0, 0, -1)))
        site.d.ok({"cmd": "sim.advance", "seconds": target - now})
        return period, site.d.ok({"cmd": "period.close", "period": period})

    def seal_state(self, period, site="lyon"):
        rep = json.loads(self.custodian.ctl("report", "--period", period, "--format",
                                            "json").stdout)
        return {s["site"]: s["state"] for s in rep["seals"]}.get(site)

    def export(self, period, *extra):
        out = os.path.join(self.root, "export-%s" % period)
        p = self.custodian.ctl("export", "--period", period, "--out", out, *extra, check=False)
        return p, out

    def test_closed_periods_are_sealed_at_the_custodian_and_exported(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        self.custodian.register(lyon)
        pk = Ed25519PublicKey.from_public_bytes(bytes.fromhex(lyon.public_key()))
        # The first seal is published while no custodian listens: it is retained.
        first, closed1 = self.close_month(lyon, alice)
        self.custodian.start()
        lyon.corrections(2)     # entries of the next month, before it is closed in turn
        second, closed2 = self.close_month(lyon, alice)
        self.assertEqual((closed1["last_ledger_seq"], closed2["last_ledger_seq"]), (1, 4))
        self.wait_verified(lyon, 4)
        wait_until(lambda: self.seal_state(first) == "verified" and
                   self.seal_state(second) == "verified", what="both seals verified")
        rep = json.loads(self.custodian.ctl("report", "--period", second, "--format",
                                            "json").stdout)
        self.assertEqual(rep["seals"][0]["last_seq"], 4)
        text = self.custodian.ctl("report", "--period", second).stdout
        self.assertRegex(text, r"lyon +ledger up to +4  verified")

        hashes = lyon.ledger_hashes()
        for period, closed, seqs in ((first, closed1, [1]), (second, closed2, [2, 3, 4])):
            p, out = self.export(period)
            self.assertEqual(p.returncode, 0, p.stderr)
            base = os.path.join(out, "lyon-%s" % period)
            # The entries: the site's own, hash for hash, from after the previous seal on.
            raw = read_file(base + ".ledger", "rb")
            entries = [b"portier-ledger-v1\n" + e for e in raw.split(b"portier-ledger-v1\n")[1:]]
            self.assertEqual([int(e.split(b"\nseq=")[1].split(b"\n")[0]) for e in entries], seqs)
            for seq, e in zip(seqs, entries):
                self.assertEqual(hashlib.blake2b(e, digest_size=32).digest(), hashes[seq])
            # The seal: signed by the site's key, naming the last entry and the archive.
            seal = read_file(base + ".seal", "rb")
            signed, sig_line = seal[:seal.rindex(b"signature=")], seal[seal.rindex(b"signature="):]
            pk.verify(bytes.fromhex(sig_line.split(b"=")[1].strip().decode()), signed)
            fields = dict(l.split("=", 1) for l in signed.decode().splitlines()[1:])
            self.assertEqual((fields["site"], fields["period"], int(fields["last_seq"])),
                             ("lyon", period, seqs[-1]))
            self.assertEqual(bytes.fromhex(fields["last_hash"]), hashes[seqs[-1]])
            archive = read_file(closed["archive"], "rb")
            self.assertEqual(fields["archive_sha256"], hashlib.sha256(archive).hexdigest())
            report = read_file(base + ".verify.txt")
            self.assertIn("chain: OK", report)
            self.assertIn("seal match: OK", report)
            self.assertIn(hashlib.sha256(raw).hexdigest(), report)
        # (a batch sent before the custodian started may have left a gap, filled since)
        self.assertEqual([p for p in self.custodian.problems()
                          if p["kind"] != "replay" and not p["resolved"]], [])
        nothing = self.export("2030-01")[0]
        self.assertEqual(nothing.returncode, 1)
        self.assertIn("no seal for period 2030-01", nothing.stderr)

    def test_forged_and_mismatched_seals_are_reported_and_not_exported(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        self.custodian.register(lyon)
        self.custodian.start()
        self.tap = Tap(self.broker.port)
        period, closed = self.close_month(lyon, alice)
        lyon.corrections(2)
        self.wait_verified(lyon, 3)
        wait_until(lambda: self.seal_state(period) == "verified", what="seal verified")

        def seal(key, period, last_seq, last_hash):
            text = ("portier-period-v1\nsite=lyon\nperiod=%s\nfirst_day=%s-01\n"
                    "last_day=%s-28\nlast_seq=%d\nlast_hash=%s\narchive_sha256=%s\n"
                    "closed_at=%d\n" % (period, period, period, last_seq, last_hash.hex(),
                                         "ab" * 32, int(time.time())))
            return json.dumps({"v": 1, "text": text,
                               "sig": key.sign(text.encode()).hex()})

        # Another key than the registered one: refused as forged, never stored.
        self.tap.publish("portier/lyon/ledger/period/2031-01",
                         seal(Ed25519PrivateKey.generate(), "2031-01", 1,
                              lyon.ledger_hashes()[1]))
        forged = wait_until(lambda: self.custodian.problems("forged"), what="forged seal")
        self.assertIn("period seal 2031-01: signature invalid", forged[0]["detail"])
        self.assertIsNone(self.seal_state("2031-01"))
        p, out = self.export("2031-01")
        self.assertEqual(p.returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(out, "lyon-2031-01.ledger")))

        # The site's own key (a restored or copied database would have it), but entry 2's
        # hash is not what the seal says: seal_mismatch once the chain reaches it.
        with lyon.d.db() as db:
            seed = db.execute("SELECT value FROM site_secrets WHERE name = 'ledger_seed'"
                              ).fetchone()[0]
        key = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self.assertEqual(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(), lyon.public_key())
        self.tap.publish("portier/lyon/ledger/period/2031-02",
                         seal(key, "2031-02", 2, b"\x01" * 32))
        mismatch = wait_until(lambda: self.custodian.problems("seal_mismatch"),
                              what="seal mismatch reported")
        self.assertEqual((mismatch[0]["site"], mismatch[0]["first_seq"]), ("lyon", 2))
        self.assertEqual(self.seal_state("2031-02"), "mismatch")
        p, out = self.export("2031-02")
        self.assertEqual(p.returncode, 1)
        self.assertIn("mismatch", p.stderr)
        self.assertEqual(os.listdir(out), [])
        # The genuine seal is untouched and still exports.
        self.assertEqual(self.seal_state(period), "verified")
        self.assertEqual(self.export(period)[0].returncode, 0)

    def test_report_and_read_only_web_page(self):
        lyon = self.site("lyon")
        alice = lyon.seed_member()
        for day in ("2026-10-05", "2026-10-06", "2026-10-31"):
            lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": day})
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-11-02"})
        self.custodian.register(lyon)
        self.custodian.start()
        self.wait_verified(lyon, 4)
        rep = json.loads(self.custodian.ctl("report", "--period", "2026-10", "--format",
                                            "json").stdout)
        site = rep["sites"][0]
        self.assertEqual((site["site"], site["records"], site["amount_cents"]), ("lyon", 3, 4500))
        self.assertEqual(site["by_kind"], [{"kind": "day", "records": 3, "quantity": 3,
                                            "amount_cents": 4500}])
        self.assertEqual((rep["visits"], rep["balances"]), ([], []))
        csv = self.custodian.ctl("report", "--period", "2026-10", "--format", "csv").stdout
        self.assertIn("usage,lyon,,day,3,3,45.00,", csv)
        bad = self.custodian.ctl("report", "--period", "2026-1", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("period must be YYYY-MM", bad.stderr)

        port = free_port()
        web = subprocess.Popen([CUSTODIAN, "--db", self.custodian.db_path, "serve", "--listen",
                                "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            base = "http://127.0.0.1:%d" % port

            def get(path):
                try:
                    return urllib.request.urlopen(base + path, timeout=5)
                except urllib.error.URLError:
                    return None
            page = wait_until(lambda: get("/?period=2026-10"), what="web page")
            html = page.read().decode()
            self.assertEqual(page.headers["Content-Type"], "text/html; charset=utf-8")
            self.assertIn("<td>lyon</td>", html)
            self.assertIn("45.00", html)
            self.assertNotIn("<script", html)
            self.assertIn("usage,lyon,,day,3,3,45.00,",
                          get("/report.csv?period=2026-10").read().decode())
            for path, code in (("/?period=2026-1%3Cb%3E", 400), ("/nothing", 404)):
                with self.assertRaises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(base + path, timeout=5)
                self.assertEqual(e.exception.code, code)
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(urllib.request.Request(base + "/", data=b"x",
                                                              method="POST"), timeout=5)
            self.assertEqual(e.exception.code, 405)
        finally:
            web.terminate()
            web.wait(timeout=WAIT)

    # -- stage 3: passports and visits --

    def passport_sites(self, names, price=1200):
        """Sites sharing a card key and a sites file, as a consortium would set them up."""
        key = os.path.join(self.root, "card.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        sites_file = os.path.join(self.root, "sites")
        open(sites_file, "w").close()
        extra = ("card_key_file = %s\nsites_file = %s\nvisit_price_cents = %d\n"
                 "passport_days = 60\npassport_scan_seconds = 1\n" % (key, sites_file, price))
        sites = {n: self.site(n, passports=extra) for n in names}
        # Keys exist once each site has started: write the registry, then restart to read it.
        with open(sites_file, "w") as f:
            f.write("# the consortium\n")
            for n, s in sites.items():
                f.write("%s %s\n" % (n, s.public_key()))
        for s in sites.values():
            s.d.stop()
            s.d.start()
        return sites

    def passports_at(self, site, home=None):
        with site.d.db() as db:
            q = "SELECT home, id, revoked, visit_days, used_elsewhere FROM consortium_passports"
            rows = db.execute(q).fetchall()
        return [r for r in rows if home is None or r[0] == home]

    def test_erasure_revokes_the_passport_at_once(self):
        sites = self.passport_sites(["lyon", "paris"])
        lyon, paris = sites["lyon"], sites["paris"]
        ALICE = "04A1B2C3"
        lyon.d.ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        lyon.d.ok({"cmd": "plan.billing", "plan": "nomad", "visit_days": 2})
        alice = lyon.d.ok({"cmd": "member.add", "name": "Alice", "plan": "nomad"})["id"]
        lyon.d.ok({"cmd": "card.add", "member": str(alice), "uid": ALICE})
        wait_until(lambda: len(self.passports_at(paris, "lyon")) == 1, what="lyon's passport")
        self.assertEqual(paris.d.ok({"cmd": "sim.tap", "reader": "front", "uid": ALICE})["reason"],
                         "visitor")
        r = lyon.d.ok({"cmd": "member.erase", "member": "Alice", "force": True})
        # The home site revokes it itself, signed, without waiting for its next scan.
        self.assertIn("of member %d revoked" % alice, lyon.d.log_text())
        wait_until(lambda: self.passports_at(paris, "lyon")[0][2] == 1, what="revocation at paris")
        paris.d.ok({"cmd": "sim.advance", "seconds": 86400})
        self.assertEqual(paris.d.ok({"cmd": "sim.tap", "reader": "front", "uid": ALICE})["reason"],
                         "visitor_revoked")
        # The card's consortium hash went with the card; the passport named no one.
        with lyon.d.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM consortium_cards").fetchone()[0], 0)
        self.assertNotIn("Alice", json.dumps(self.passports_at(paris)))
        self.assertTrue(r["pseudonym"].startswith("erased-"))

    def test_visits_with_the_home_site_offline_and_the_custodian_balances(self):
        sites = self.passport_sites(["lyon", "paris", "nantes"])
        lyon, paris, nantes = sites["lyon"], sites["paris"], sites["nantes"]
        for s in sites.values():
            self.custodian.register(s)
        self.custodian.start()
        ALICE, BOB, CARL, MALLORY = "04A1B2C3", "04B0B0B0", "04C0C0C0", "04D0D0D0"
        lyon.d.ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        lyon.d.ok({"cmd": "plan.billing", "plan": "nomad", "visit_days": 2})
        alice = lyon.d.ok({"cmd": "member.add", "name": "Alice", "plan": "nomad"})["id"]
        lyon.d.ok({"cmd": "card.add", "member": str(alice), "uid": ALICE})
        bob = lyon.d.ok({"cmd": "member.add", "name": "Bob", "plan": "nomad"})["id"]
        lyon.d.ok({"cmd": "card.add", "member": str(bob), "uid": BOB})
        paris.d.ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        paris.d.ok({"cmd": "plan.billing", "plan": "nomad", "visit_days": 5})
        carl = paris.d.ok({"cmd": "member.add", "name": "Carl", "plan": "nomad"})["id"]
        paris.d.ok({"cmd": "card.add", "member": str(carl), "uid": CARL})
        # Passports reach both other sites; no name or UID in them.
        for s in (paris, nantes):
            wait_until(lambda: len(self.passports_at(s, "lyon")) == 2, what="lyon's passports")
        wait_until(lambda: len(self.passports_at(lyon, "paris")) == 1, what="paris's passport")
        self.assertEqual(self.passports_at(paris, "lyon")[0][2:4], (0, 2))

        # Lyon goes down. Paris moves to the 5th of next month, 10:00 (a fresh month).
        lyon.d.stop()
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        now = paris.d.ok({"cmd": "sim.advance", "seconds": 0})["now"]
        lt = time.localtime(now)
        y, m = (lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1)
        target = int(time.mktime((y, m, 5, 10, 0, 0, 0, 0, -1)))
        paris.d.ok({"cmd": "sim.advance", "seconds": target - now})
        period = "%04d-%02d" % (y, m)

        def tap(site, uid):
            site.d.ok({"cmd": "sim.tap", "reader": "front", "uid": uid})
            return site.d.events(limit=1)[0]

        ev = tap(paris, ALICE)
        self.assertEqual((ev["granted"], ev["reason"]), (True, "visitor"))
        self.assertIn("visitor of lyon", ev["detail"])
        ev = tap(paris, ALICE)      # the same day again: still one visit day
        self.assertEqual((ev["granted"], ev["reason"]), (True, "visitor"))
        paris.d.ok({"cmd": "sim.advance", "seconds": 86400})
        self.assertEqual(tap(paris, ALICE)["reason"], "visitor")
        paris.d.ok({"cmd": "sim.advance", "seconds": 86400})
        ev = tap(paris, ALICE)
        self.assertEqual((ev["granted"], ev["reason"]), (False, "visitor_no_allowance"))
        with paris.d.db() as db:
            visits = db.execute("SELECT home, billing_day, amount_cents FROM consortium_visits "
                                "ORDER BY id").fetchall()
            ledger = db.execute("SELECT kind, member_id, home, amount_cents FROM ledger "
                                "WHERE kind = 'visit'").fetchall()
        self.assertEqual([(h, a) for h, _, a in visits], [("lyon", 1200), ("lyon", 1200)])
        self.assertEqual(visits[0][1], "%s-05" % period)
        self.assertEqual(ledger, [("visit", 0, "lyon", 1200)] * 2)
        # Bob visits nantes once; Carl (paris) visits lyon... lyon is down: he visits nantes.
        nantes.d.ok({"cmd": "sim.advance", "seconds": target - now})
        self.assertEqual(tap(nantes, BOB)["reason"], "visitor")
        self.assertEqual(tap(nantes, CARL)["reason"], "visitor")
        # A card nobody knows is still just unknown.
        self.assertEqual(tap(nantes, "04EEEEEE")["reason"], "unknown_card")

        # A forged passport: lyon's passport for a new card with 30 visit days, signed with a
        # key that is not lyon's. Paris drops it and keeps what it had; the card stays unknown.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        with paris.d.db() as db:
            pid, issued = db.execute("SELECT id, issued FROM consortium_passports "
                                     "WHERE home = 'lyon' LIMIT 1").fetchone()
        text = ("portier-passport-v1\nhome=lyon\nid=%s\nstatus=active\nissued=%d\n"
                "expires=%d\nvisit_days=30\nmonth=%s\nused=\ncards=%s\n" % (
                    pid, issued + 1, target + 30 * 86400, period, "ab" * 32))
        sig = Ed25519PrivateKey.generate().sign(text.encode())
        before = self.passports_at(paris)
        forger = mqtt.Client(client_id="forger", clean_session=True)
        forger.connect("127.0.0.1", self.broker.port, 30)
        forger.loop_start()
        forger.publish("portier/lyon/passport/%s" % pid, json.dumps(
            {"v": 1, "text": text, "sig": sig.hex()}), qos=1).wait_for_publish()
        forger.publish("portier/evil/passport/%s" % pid, json.dumps(
            {"v": 1, "text": text.replace("home=lyon", "home=evil"), "sig": sig.hex()}),
            qos=1).wait_for_publish()
        forger.loop_stop()
        forger.disconnect()
        wait_until(lambda: "passport from site lyon with a bad signature dropped"
                   in paris.d.log_text(), what="forgery dropped")
        wait_until(lambda: "passport from unknown site evil dropped" in paris.d.log_text(),
                   what="unknown site dropped")
        self.assertEqual(self.passports_at(paris), before)
        self.assertNotIn("0401020304", paris.d.log_text())

        # Lyon comes back (on the same day as paris), hears of the visits from the retained
        # notices, and its passports carry them: nantes now counts paris's 2 days for Alice.
        lyon.d.start()
        lyon.d.ok({"cmd": "sim.advance", "seconds": target - now})
        wait_until(lambda: any(r[4] for r in self.passports_at(nantes, "lyon")),
                   what="lyon's passports carry the visits heard of")

        # Suspended at home: the revocation reaches paris, which refuses her.
        lyon.d.ok({"cmd": "member.suspend", "member": str(bob)})
        wait_until(lambda: any(r[2] for r in self.passports_at(paris, "lyon")),
                   what="revocation at paris")
        paris.d.ok({"cmd": "sim.advance", "seconds": 86400})
        self.assertEqual(tap(paris, BOB)["reason"], "visitor_revoked")

        # The custodian sees the visits and balances them.
        for s in (paris, nantes):
            wait_until(lambda: self.custodian.verified(s.name) == s.head(),
                       what="%s verified" % s.name)
        rep = json.loads(self.custodian.ctl("report", "--period", period, "--format",
                                            "json").stdout)
        self.assertEqual(rep["visits"], [
            {"home": "lyon", "host": "nantes", "visits": 1, "amount_cents": 1200},
            {"home": "lyon", "host": "paris", "visits": 2, "amount_cents": 2400},
            {"home": "paris", "host": "nantes", "visits": 1, "amount_cents": 1200}])
        # The worked example of docs/consortium.md section 7.3, by hand: lyon owes paris
        # 2 x 12.00 and nantes 12.00; paris owes nantes 12.00; nothing flows the other way.
        self.assertEqual(sorted((b["from"], b["to"], b["amount_cents"]) for b in rep["balances"]),
                         [("lyon", "nantes", 1200), ("lyon", "paris", 2400),
                          ("paris", "nantes", 1200)])
        self.assertEqual(sorted((p["site"], p["earned_cents"], p["owed_cents"], p["net_cents"])
                                for p in rep["positions"]),
                         [("lyon", 0, 3600, -3600), ("nantes", 2400, 0, 2400),
                          ("paris", 2400, 1200, 1200)])
        csv = self.custodian.ctl("report", "--period", period, "--format", "csv").stdout
        self.assertIn("visits,lyon,paris,visit,2,0,24.00,", csv)



class CustodianCommandLineTest(unittest.TestCase):
    """portier-custodian's sub-commands read their options from one table each: values
    are checked once all are read, operands may come among the options, and what is
    unknown or ambiguous is refused (exit status 2 for a usage error, 1 for a value)."""

    KEY = "ab" * 32

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="portier-custodian-cli-")
        self.custodian = Custodian(self.root, 0)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def ctl(self, *args):
        return self.custodian.ctl(*args, check=False)

    def test_unknown_command_is_refused_before_the_database_is_created(self):
        p = self.ctl("sites", "list")
        self.assertEqual(p.returncode, 2)
        self.assertIn("Usage: portier-custodian", p.stderr)
        self.assertFalse(os.path.exists(self.custodian.db_path))

    def test_site_add_set_machine_and_list(self):
        # Options before and after the operand; the place checked before anything is stored.
        p = self.ctl("site", "add", "--timezone", "Europe/Paris", "lyon", "--key", self.KEY,
                     "--label", "La Fabrique", "--latitude", "45.76", "--longitude", "4.83",
                     "--day-starts", "05:30")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "site lyon registered\n")
        p = self.ctl("site", "add", "paris", "--key", self.KEY, "--key-file", "/dev/null")
        self.assertEqual((p.returncode, "paris" in self.custodian.sites()), (1, False))
        self.assertIn("usage: site add NAME (--key HEX | --key-file FILE)", p.stderr)
        p = self.ctl("site", "add", "paris", "--key", self.KEY, "--latitude", "95",
                     "--longitude", "2.35")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--latitude is in decimal degrees", p.stderr)
        self.assertNotIn("paris", self.custodian.sites())
        self.assertEqual(self.ctl("site", "add", "paris", "--keys", self.KEY).returncode, 2)

        # site set: only what is given changes; a refused value changes nothing.
        p = self.ctl("site", "set", "lyon", "--commune", "Lyon", "--insee", "69123")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.ctl("site", "set", "lyon", "--label", "", "--insee", "6912")
        self.assertEqual(p.returncode, 1)
        self.assertIn("INSEE code", p.stderr)
        p = self.ctl("site", "machine", "lyon", "laser", "--category", "laser-cutter")
        self.assertEqual(p.returncode, 0, p.stderr)
        lyon = self.custodian.sites()["lyon"]
        self.assertEqual((lyon["timezone"], lyon["day_starts"]), ("Europe/Paris", 330))
        self.assertEqual(lyon["place"], {"label": "La Fabrique", "commune": "Lyon",
                                         "insee_code": "69123", "latitude": "45.76",
                                         "longitude": "4.83"})
        self.assertEqual(lyon["machine_categories"], {"laser": "laser-cutter"})

        p = self.ctl("site", "list")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("lyon ", p.stdout)
        self.assertEqual(self.ctl("site", "list", "--jsn").returncode, 2)

    def test_values_are_checked(self):
        for args, status, message in (
                (("run", "--broker", "127.0.0.1:1883", "--keepalive", "2"), 1,
                 "--keepalive must be 5 to 3600 seconds"),
                (("run", "--broker", "127.0.0.1:1883", "--prefix", "a/b"), 1,
                 "--prefix is one topic level"),
                (("run", "--prefix", "p"), 2, "run needs --broker HOST:PORT"),
                (("run", "--broker"), 2, "requires an argument"),
                (("report", "--format", "xml", "--period", "2026-10"), 1,
                 "--format is text, csv or json"),
                (("export", "--period", "2026-10"), 1, "usage: export"),
                (("serve", "--opendata", self.root), 1, "usage: serve"),
                (("opendata", "--period", "2026-10", "--out", self.root, "--producer", "P",
                  "--k", "1"), 1, "--k is 2 to"),
                (("opendata", "--period", "2026-10", "--out", self.root, "--producer", "P",
                  "--license", "mine"), 1, "--licence is one of: etalab-2.0")):
            p = self.ctl(*args)
            self.assertEqual(p.returncode, status, (args, p.stderr))
            self.assertIn(message, p.stderr, args)
        # --json is --format json.
        p = self.ctl("report", "--json", "--period", "2026-10")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["period"], "2026-10")
        p = self.ctl("problems", "--json", "--site", "lyon")
        self.assertEqual((p.returncode, json.loads(p.stdout)), (0, []))


if __name__ == "__main__":
    main()

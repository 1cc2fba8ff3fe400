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
import unittest
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import BIN, Daemon, WAIT, main, wait_until  # noqa: E402
from test_mqtt import Broker, free_port  # noqa: E402

CUSTODIAN = os.path.join(BIN, "portier-custodian")

SITE_CONFIG = """
[site]
id = {site}
name = Site {site}
timezone = Europe/Paris

[daemon]
state_dir = {dir}/state
control_socket = {dir}/ctl.sock
log_level = debug

[hardware]
backend = sim
debounce_ms = 0
sim_state_dir = {dir}/relays

[mqtt]
enabled = true
port = {port}
discovery = false

[consortium]
enabled = true
batch_entries = {batch}
resend_seconds = {resend}

[reader front]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 1
"""


class Site:
    """A portierd of the consortium with its own directory."""

    def __init__(self, root, name, port, batch=256, resend=30):
        self.name = name
        directory = os.path.join(root, name)
        os.makedirs(directory)
        self.d = Daemon(SITE_CONFIG.format(site=name, dir=directory, port=port, batch=batch,
                                           resend=resend), directory=directory)

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

    def __init__(self, port):
        self.batches = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id="test-tap-%d" % os.getpid(), clean_session=True)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe("portier/+/ledger/batch", 1)
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
        self.assertEqual([p for p in self.custodian.problems() if p["kind"] != "replay"], [])

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

        # Replayed: the very same batch again.
        self.tap.publish(topic, raw)
        replay = wait_until(lambda: self.custodian.problems("replay"), what="replay reported")
        self.assertIn("nothing counted twice", replay[0]["detail"])
        self.assertEqual(self.custodian.entries("lyon"), before)
        self.assertEqual(self.custodian.sites()["lyon"]["replays"], 1)
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
        # A site that never goes back by itself within the test: only the custodian's
        # request can fill the gap.
        lyon = self.site("lyon", resend=3600)
        alice = lyon.seed_member()
        self.custodian.register(lyon)
        self.tap = Tap(self.broker.port)
        # The custodian is away: these batches cross the broker unheard.
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-05"})
        wait_until(lambda: any(b["last"] == 1 for _, b in self.tap.decoded()), what="batch 1")
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-06"})
        lyon.d.ok({"cmd": "usage.add", "member": str(alice), "at": "2026-10-07"})
        wait_until(lambda: any(b["last"] == 3 for _, b in self.tap.decoded()), what="batch 3")
        later = [(t, b) for t, b in self.tap.decoded() if b["first"] > 1][-1]
        self.custodian.start()
        # Only a later batch reaches it: entries from 1 are missing.
        self.tap.publish(later[0], json.dumps(later[1]))
        gap = wait_until(lambda: self.custodian.problems("gap"), what="gap reported")
        self.assertEqual(gap[0]["first_seq"], 1)
        self.assertEqual(gap[0]["last_seq"], 3)
        # The site answers the request from its ledger; the gap is filled and resolved.
        self.wait_verified(lyon, 3)
        self.assertEqual(dict(self.custodian.entries("lyon")), lyon.ledger_hashes())
        wait_until(lambda: self.custodian.problems("gap")[0]["resolved"], what="gap resolved")
        self.assertIn("the custodian asks again for entries 1-3", lyon.d.log_text())

    # -- stage 2: reports and the web page --

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


if __name__ == "__main__":
    main()

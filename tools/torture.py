# SPDX-License-Identifier: AGPL-3.0-or-later
"""Driver of tools/torture: the reliability bench of docs/reliability.md.

Each scenario breaks the real portierd on purpose, the way a site's bad week would, and
checks from outside (control socket replies, the simulated relays' state files, the SQLite
file, a real mosquitto's subscribers, raw HTTP sockets) that the promises hold: no
acknowledged record lost, no crash, no 5xx, doors still deciding, relays safe. Speed
figures are measured and reported, never asserted. Exit status: 0 when every promise held,
1 when one was broken (or a scenario could not finish), 2 on bad arguments.

Reuses tools/bench.py (mosquitto, ports, pn532-emu control, percentiles, load figures) and
the integration tests' harness (tests/integration: the daemon, its config, the power-cut
rig, the full-disk filler). Standard library plus python3-paho-mqtt; run as root (the
full-disk scenario mounts a tmpfs)."""

import argparse
import json
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCENARIOS = ["kill9", "broker", "drain-kill", "reader-stop", "http-attack", "full-disk",
             "sighup", "powercut"]

# Full and --quick sizes of every scenario, and what each counts (for --help).
SIZES = {
    "kills": (200, 10, "kill9: kills during tap bursts"),
    "outage_events": (10000, 1000, "broker: events while the broker is down"),
    "drain_kills": (5, 1, "drain-kill: outages, each ending in a kill mid-drain"),
    "drain_events": (5000, 1000, "drain-kill: events per outage"),
    "hangs": (10, 2, "reader-stop: SIGSTOPs of the reader worker"),
    "slow_connections": (200, 200, "http-attack: slow connections"),
    "malformed": (10000, 600, "http-attack: malformed requests"),
    "attack_seconds": (60, 20, "http-attack: shortest length of each attack, s"),
    "full_disk_taps": (1000, 150, "full-disk: taps on the full disk"),
    "reloads": (100, 12, "sighup: reloads"),
    "powercut_cuts": (850, 20, "powercut: cut points in the workload"),
    "migration_cuts": (150, 6, "powercut: cut points in migrations"),
}

ALICE, BOB, CAROL = "04A1B2C3", "04B0B0B0", "04C0C0C0"     # the harness's seed() cards
STRANGER = "04DEADBE"                                       # a card nobody holds

h = bench = rel = powercut_rig = test_mqtt = None          # loaded by load_helpers()


def load_helpers(bindir):
    """Import the harness and bench with the daemon's binaries at bindir."""
    global h, bench, rel, powercut_rig, test_mqtt
    os.environ["PORTIER_BIN"] = os.path.abspath(bindir)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import bench as bench_mod
    import portier_harness
    import powercut_rig as rig_mod
    import test_mqtt as mqtt_mod
    import test_reliability
    h, bench, rel, powercut_rig, test_mqtt = (portier_harness, bench_mod, test_reliability,
                                              rig_mod, mqtt_mod)


def mono_us():
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6


def pct(values, p):
    return bench.percentile(values, p) if values else 0.0


def ms(us):
    return "%.1f ms" % (us / 1000.0)


def site_config(directory, sections, daemon_extra=""):
    """A torture site: the harness's config (simulated relays mirrored in directory/relays),
    logging at info, as a site runs by default."""
    return h.build_config(directory, sections, site="torture", site_name="Torture site",
                          daemon_extra=daemon_extra).replace("log_level = debug",
                                                             "log_level = info")


def wait_for(predicate, timeout, what):
    """The harness's wait_until, but None (and no exception) when the time is out: a
    scenario reports what did not happen and goes on."""
    try:
        return h.wait_until(predicate, timeout, what)
    except AssertionError:
        return None


class Scenario:
    """One scenario's figures (for the JSON), its table rows and the promises it broke."""

    def __init__(self, name, args):
        self.name = name
        self.args = args
        self.figures = {}
        self.rows = []
        self.broken = []
        self.dirs = []
        self.cleanups = []

    def size(self, key):
        override = getattr(self.args, key, None)
        if override is not None:
            return override
        return SIZES[key][1 if self.args.quick else 0]

    def mkwork(self):
        d = tempfile.mkdtemp(prefix="portier-torture-%s-" % self.name)
        self.dirs.append(d)
        return d

    def fig(self, key, value):
        self.figures[key] = value
        return value

    def row(self, label, measured):
        self.rows.append((label, measured, "—", ""))

    def check(self, label, measured, ok, promise):
        self.rows.append((label, measured, promise, "kept" if ok else "BROKEN"))
        if not ok:
            self.broken.append("%s: %s (promise: %s)" % (label, measured, promise))

    def zero(self, key, label, value):
        """A count that must be 0."""
        self.fig(key, value)
        self.check(label, "%d" % value, value == 0, "0")

    def later(self, fn):
        self.cleanups.append(fn)

    def stop_at_end(self, proc):
        """Terminate proc (a broker, an emulator) when the scenario ends."""
        def stop():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        self.later(stop)
        return proc

    def mosquitto(self, work):
        """A plain in-memory mosquitto for this scenario; its port."""
        port = bench.free_port()
        self.stop_at_end(bench.start_mosquitto(work, port))
        return port

    def cleanup(self, keep):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:      # noqa: BLE001 — cleaning up, report and go on
                print("torture: cleanup: %s" % e, file=sys.stderr)
        for d in self.dirs:
            if keep or self.broken:
                print("torture: %s: kept %s" % (self.name, d))
            else:
                shutil.rmtree(d, ignore_errors=True)


def stop_daemon(d):
    if d is not None and d.proc is not None and d.proc.poll() is None:
        d.stop()


class DoorTimer:
    """Granted taps at a fail-secure door, each timed from the request leaving this process
    to the relay write (the daemon's last_write_mono_us, on this machine's monotonic clock,
    as tools/bench does); the relay's state file must say energised after the reply, and
    the door is locked again after each tap so that the next one writes the relay."""

    def __init__(self, d, door, reader, uid):
        self.d, self.door, self.reader, self.uid = d, door, reader, uid
        self.latency_us = []        # client -> relay written
        self.daemon_us = []         # inside the daemon (latency_us of the reply)
        self.failures = []          # replies or errors that were not a granted, opened door

    def relay(self):
        doors = self.d.request({"cmd": "status"}, timeout=120)["doors"]
        return next(x for x in doors if x["name"] == self.door)["relay"]

    def once(self):
        try:
            writes = self.relay()["writes"]
            t0 = mono_us()
            r = self.d.request({"cmd": "sim.tap", "reader": self.reader, "uid": self.uid},
                               timeout=120)
            if not r.get("ok") or not r.get("granted"):
                self.failures.append(repr(r)[:200])
                return
            opened = self.d.relay_file(self.door)
            relay = self.relay()
            if not opened:
                self.failures.append("the relay file did not say energised")
            elif relay["writes"] == writes + 1:
                self.latency_us.append(relay["last_write_mono_us"] - t0)
                self.daemon_us.append(r["latency_us"])
            self.d.request({"cmd": "door.lock", "door": self.door}, timeout=120)
        except (OSError, ValueError) as e:
            self.failures.append("%s: %s" % (type(e).__name__, e))

    def run(self, stop, rng, pause=(0.02, 0.1)):
        while not stop.is_set():
            self.once()
            time.sleep(rng.uniform(*pause))


TWO_DOORS = """
[reader front]
driver = sim

[reader back]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = {unlock}

[door back]
reader = back
relay = 18
fail = safe
zone = fablab
unlock_seconds = {unlock}
{extra}
"""


def two_doors(directory, unlock=2, extra=""):
    return site_config(directory, TWO_DOORS.format(unlock=unlock, extra=extra))


# ---- kill -9 during a tap burst -------------------------------------------------------

def tapper(d, reader, uid, acked, stop):
    """Tap until stop or until the daemon is gone; acked gets what each "ok" said."""
    while not stop.is_set():
        try:
            r = d.request({"cmd": "sim.tap", "reader": reader, "uid": uid}, timeout=30)
        except (OSError, ValueError):
            return
        if r.get("ok"):
            acked.append((r["event_id"], reader, r["member_id"] or None, 1 if r["granted"] else 0,
                          r["reason"]))


def safe_after_start(d):
    """Every door locked after a start: the fail-secure strike's relay off, the fail-safe
    maglock's relay on (energised = locked), as the relay files and status say."""
    problems = []
    if d.relay_file("front"):
        problems.append("front (fail-secure) relay energised")
    if not d.relay_file("back"):
        problems.append("back (fail-safe) relay not energised")
    for door in d.status()["doors"]:
        if door["state"] != "locked":
            problems.append("door %s %s" % (door["name"], door["state"]))
    return problems


def check_acked(db, acked):
    """Acknowledged taps missing from the database, and those recorded differently."""
    lost, different = [], []
    by_id = {a[0]: a for a in acked}
    ids = sorted(by_id)
    for k in range(0, len(ids), 500):
        chunk = ids[k:k + 500]
        rows = {r[0]: r for r in db.execute(
            "SELECT id, reader, member_id, granted, reason FROM access_events WHERE id IN (%s)"
            % ",".join("?" * len(chunk)), chunk)}
        for i in chunk:
            if i not in rows:
                lost.append(i)
            elif tuple(rows[i]) != by_id[i]:
                different.append((by_id[i], tuple(rows[i])))
    return lost, different


def run_kill9(sc):
    work = sc.mkwork()
    d = h.Daemon(config_text=two_doors(work), directory=work)
    sc.later(lambda: stop_daemon(d))
    d.start()
    d.seed()
    d.stop()
    rng = random.Random(sc.args.seed)
    kills = sc.size("kills")
    mix = [("front", ALICE), ("back", CAROL), ("back", BOB), ("front", STRANGER)]
    acked_total = checked = 0
    lost, different, unsafe, integrity, left_open, ready, delays, rates = [], [], [], [], 0, [], [], []
    pending = None
    for k in range(kills + 1):
        t0 = time.monotonic()
        d.start()
        ready.append(time.monotonic() - t0)
        if pending is not None:
            unsafe += ["kill %d: %s" % (k, p) for p in safe_after_start(d)]
            db = d.db()
            try:
                if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    integrity.append(k)
                l, dif = check_acked(db, pending)
            finally:
                db.close()
            lost += l
            different += dif
            checked += len(pending)
        if k == kills:
            break
        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=tapper, args=(d, r, u, acked, stop)) for r, u in mix]
        for t in threads:
            t.start()
        delay = rng.uniform(0.05, 1.0)      # the random moment
        time.sleep(delay)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        delays.append(delay)
        rates.append(len(acked) / delay)
        # What the kernel would hold on the lines at the kill (the sim files keep it).
        left_open += d.relay_file("front")
        d.stop()
        pending = acked
        acked_total += len(acked)
        if (k + 1) % 20 == 0:
            print("  kill9: %d/%d kills, %d taps acknowledged so far" % (k + 1, kills, acked_total),
                  flush=True)
    d.stop()
    sc.fig("kills", kills)
    sc.fig("taps_acknowledged", acked_total)
    sc.fig("taps_checked_after_restart", checked)
    sc.row("kill -9 at random moments of a tap burst (4 clients, 2 doors; 0.05–1 s in)",
           "%d kills" % kills)
    sc.row("taps acknowledged before the kills / checked after each restart",
           "%d / %d" % (acked_total, checked))
    sc.zero("acknowledged_taps_lost", "acknowledged taps missing after the restart", len(lost))
    sc.zero("acknowledged_taps_different", "acknowledged taps recorded otherwise than answered",
            len(different))
    sc.zero("integrity_failures", "databases failing PRAGMA integrity_check", len(integrity))
    sc.zero("relays_unsafe_after_restart", "restarts with a door not locked (relay files, status)",
            len(unsafe))
    sc.fig("front_left_energised_at_kill", left_open)
    sc.row("kills that left the strike's relay energised (a tap's unlock; the restart locks it)",
           "%d" % left_open)
    sc.fig("burst_taps_per_second_median", statistics.median(rates) if rates else 0)
    sc.row("tap burst rate, median over kills", "%.0f taps/s" % sc.figures["burst_taps_per_second_median"])
    sc.fig("restart_ready_ms_p50", pct(ready, 50) * 1000)
    sc.fig("restart_ready_ms_max", max(ready) * 1000)
    sc.row("start → READY=1 after a kill, p50 / max", "%.0f / %.0f ms" % (
        sc.figures["restart_ready_ms_p50"], sc.figures["restart_ready_ms_max"]))
    for what in (lost[:5], different[:5], unsafe[:5]):
        if what:
            print("  kill9: %r" % what)


# ---- MQTT: broker outages and a kill -9 mid-drain ---------------------------------------

class PersistentBroker:
    """A real mosquitto that keeps its sessions across restarts (persistence on, saved when
    it stops), with no queue limit: a receiver set up as docs/mqtt.md §4 says then loses
    nothing while the broker is down and back."""

    def __init__(self, work):
        self.dir = os.path.join(work, "mosquitto")
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            # mosquitto drops root: it must reach its directory (mkdtemp's work is 0700)
            # to save the sessions when it stops, or the receiver's queue is lost with it.
            shutil.chown(self.dir, "mosquitto", "mosquitto")
            os.chmod(work, 0o711)
        self.port = bench.free_port()
        self.proc = None

    def start(self):
        # bench writes "persistence false" first; the later line wins.
        self.proc = bench.start_mosquitto(self.dir, self.port,
                                          "persistence true\npersistence_location %s/\n"
                                          "max_queued_messages 0\n" % self.dir)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Receiver:
    """The receiver of docs/mqtt.md §4: fixed client id, persistent session, QoS 1. Keeps
    every delivery (seq -> payloads) and what a receiver that keeps the last seq accepts."""

    def __init__(self, port, topic, client_id="torture-receiver"):
        import paho.mqtt.client as paho
        try:
            self.client = paho.Client(paho.CallbackAPIVersion.VERSION1, client_id=client_id,
                                      clean_session=False)
        except AttributeError:
            self.client = paho.Client(client_id=client_id, clean_session=False)
        self.lock = threading.Lock()
        self.by_seq = {}
        self.accepted = []
        self.deliveries = 0
        self.last = 0
        self.subscribed = threading.Event()
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self.subscribed.wait(30):
            raise RuntimeError("torture: the receiver could not subscribe")

    def on_message(self, client, userdata, msg):
        e = json.loads(msg.payload)
        with self.lock:
            self.deliveries += 1
            self.by_seq.setdefault(e["seq"], []).append(msg.payload)
            if e["seq"] > self.last:
                self.accepted.append(e)
                self.last = e["seq"]

    def has_all(self, last_seq):
        with self.lock:
            return self.last >= last_seq and len(self.by_seq) >= last_seq

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


MQTT_SECTIONS = """
[mqtt]
enabled = true
port = {port}
"""


def mqtt_site(work, broker):
    d = h.Daemon(config_text=two_doors(work, unlock=1, extra=MQTT_SECTIONS.format(port=broker.port)),
                 directory=work)
    d.start()
    d.seed()
    return d


def mqtt_status(d):
    return d.request({"cmd": "status"}, timeout=120)["mqtt"]


def events_while_down(d, n, rng):
    """Taps from 3 clients until the outbox holds n more events than before (a granted tap
    makes a tap event and door events; a refused one a tap event)."""
    base = mqtt_status(d)["outbox"]
    stop = threading.Event()
    acked = []
    mix = [("front", ALICE), ("front", STRANGER), ("back", BOB)]
    threads = [threading.Thread(target=tapper, args=(d, r, u, acked, stop)) for r, u in mix]
    for t in threads:
        t.start()
    while mqtt_status(d)["outbox"] - base < n:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return mqtt_status(d)["outbox"] - base, len(acked)


def check_delivery(sc, d, rx, prefix):
    """Every event the site wrote reached the receiver: seq 1..last without a gap for a
    receiver keeping the last seq, each seq one event, every tap of the access log."""
    st = mqtt_status(d)
    last = st["last_seq"]
    db = d.db()
    try:
        taps = {r[0] for r in db.execute("SELECT id FROM access_events WHERE kind = 'tap'")}
        outbox_max = db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
    finally:
        db.close()
    with rx.lock:
        seqs = set(rx.by_seq)
        accepted = [e["seq"] for e in rx.accepted]
        conflicting = [s for s, ps in rx.by_seq.items() if len(set(ps)) > 1]
        redelivered = sum(len(ps) - 1 for ps in rx.by_seq.values())
        tap_ids = {e.get("event_id") for e in rx.accepted if e["kind"] == "tap"}
        deliveries = rx.deliveries
    top = max(seqs | {last, outbox_max or 0})
    missing = sorted(set(range(1, top + 1)) - set(accepted))
    sc.fig(prefix + "events_received", len(seqs))
    sc.fig(prefix + "deliveries", deliveries)
    sc.row("events the receiver took (distinct seq) / deliveries", "%d / %d" % (len(seqs), deliveries))
    sc.zero(prefix + "events_lost", "events lost (seq 1…%d not taken, in order, by a receiver "
            "keeping the last seq)" % top, len(missing))
    sc.zero(prefix + "seq_conflicts", "seq numbers carried by two different events", len(conflicting))
    sc.fig(prefix + "redeliveries", redelivered)
    sc.row("messages delivered again (same seq, same content: at least once, allowed)",
           "%d" % redelivered)
    sc.zero(prefix + "taps_not_published", "taps of the access log never published",
            len(taps - tap_ids))
    sc.zero(prefix + "outbox_dropped", "events dropped from the outbox", st["dropped"])
    if missing:
        print("  %s: missing seq %r" % (sc.name, missing[:20]))


def run_broker(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed)
    broker = PersistentBroker(work)
    broker.start()
    sc.later(broker.stop)
    rx = Receiver(broker.port, "portier/torture/event/#")
    sc.later(rx.close)
    d = mqtt_site(work, broker)
    sc.later(lambda: stop_daemon(d))
    wait_for(lambda: mqtt_status(d)["connected"], 60, "connected")
    for uid in (ALICE, CAROL, STRANGER):
        d.tap(uid)
    wait_for(lambda: mqtt_status(d)["outbox"] == 0, 60, "delivered")
    broker.stop()
    wait_for(lambda: not mqtt_status(d)["connected"], 60, "disconnected")
    n = sc.size("outage_events")
    t0 = time.monotonic()
    made, taps = events_while_down(d, n, rng)
    made_s = time.monotonic() - t0
    t_back = time.monotonic()
    broker.start()
    connected = wait_for(lambda: mqtt_status(d)["connected"], 120, "reconnected")
    t_conn = time.monotonic() - t_back
    drained = wait_for(lambda: mqtt_status(d)["outbox"] == 0, 900, "drained")
    t_drain = time.monotonic() - t_back
    last = mqtt_status(d)["last_seq"]
    got = wait_for(lambda: rx.has_all(last), 300, "received")
    t_rx = time.monotonic() - t_back
    sc.fig("events_during_outage", made)
    sc.fig("taps_during_outage", taps)
    sc.row("events written while the broker was down (%d taps, %.0f s)" % (taps, made_s),
           "%d" % made)
    sc.check("broker back → portierd reconnected", "%.1f s" % t_conn if connected else "never",
             bool(connected), "reconnects")
    sc.fig("reconnect_s", t_conn)
    sc.fig("drain_s", t_drain)
    sc.fig("drain_events_per_s", made / max(t_drain - t_conn, 1e-6))
    sc.check("broker back → outbox empty (every event acknowledged by the broker)",
             "%.1f s (%.0f events/s)" % (t_drain, sc.figures["drain_events_per_s"])
             if drained else "not within 900 s", bool(drained), "drains")
    sc.fig("received_s", t_rx)
    sc.row("broker back → the receiver has every event", "%.1f s" % t_rx if got else "never")
    check_delivery(sc, d, rx, "")
    sc.check("portierd still running", "yes" if d.proc.poll() is None else "NO",
             d.proc.poll() is None, "yes")


def run_drain_kill(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed + 1)
    broker = PersistentBroker(work)
    broker.start()
    sc.later(broker.stop)
    rx = Receiver(broker.port, "portier/torture/event/#", client_id="torture-drain-receiver")
    sc.later(rx.close)
    d = mqtt_site(work, broker)
    sc.later(lambda: stop_daemon(d))
    wait_for(lambda: mqtt_status(d)["connected"], 60, "connected")
    kills = sc.size("drain_kills")
    n = sc.size("drain_events")
    left_at_kill, redrain, failed = [], [], []
    for k in range(kills):
        broker.stop()
        wait_for(lambda: not mqtt_status(d)["connected"], 60, "disconnected")
        made, _ = events_while_down(d, n, rng)
        with rx.lock:
            before = len(rx.by_seq)
        fraction = rng.uniform(0.1, 0.8)
        broker.start()
        # Kill when the receiver has taken that fraction of the backlog: from outside.
        if not wait_for(lambda: len(rx.by_seq) - before >= fraction * made, 600, "draining"):
            failed.append("kill %d: the drain never reached %.0f %%" % (k, fraction * 100))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.stop()
        db = d.db()
        try:
            left_at_kill.append(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            db.close()
        t0 = time.monotonic()
        d.start()
        if not wait_for(lambda: mqtt_status(d)["outbox"] == 0, 900, "drained"):
            failed.append("kill %d: the outbox did not drain after the restart" % k)
        redrain.append(time.monotonic() - t0)
        print("  drain-kill: kill %d/%d with %d of %d events still in the outbox"
              % (k + 1, kills, left_at_kill[-1], made), flush=True)
    last = mqtt_status(d)["last_seq"]
    wait_for(lambda: rx.has_all(last), 300, "received")
    sc.fig("kills_while_draining", kills)
    sc.fig("events_per_outage", n)
    sc.row("kill -9 while the outbox drains (after %d events each outage; at 10–80 %% of the drain)"
           % n, "%d kills" % kills)
    sc.fig("outbox_left_at_kill", left_at_kill)
    sc.row("events still in the outbox at each kill", ", ".join("%d" % x for x in left_at_kill))
    sc.fig("restart_to_drained_s_max", max(redrain) if redrain else 0)
    sc.row("restart → outbox empty, max", "%.1f s" % sc.figures["restart_to_drained_s_max"])
    sc.zero("drain_failures", "drains that did not finish", len(failed))
    check_delivery(sc, d, rx, "")


# ---- a reader worker SIGSTOPped --------------------------------------------------------

READER_STOP_SECTIONS = """
[reader front]
driver = libnfc
connstring = pn532_uart:{dir}/front.tty

[reader back]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 30

[door back]
reader = back
relay = 18
unlock_seconds = 30
"""


def process_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def run_reader_stop(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed + 2)
    sc.stop_at_end(bench.start_emulator(sc.args.bin, work, "front"))
    ctl = os.path.join(work, "front.ctl")
    d = h.Daemon(config_text=site_config(work, READER_STOP_SECTIONS.format(dir=work)),
                 directory=work)
    sc.later(lambda: stop_daemon(d))
    d.start()
    d.seed()

    def front_reader():
        return next(r for r in d.status()["readers"] if r["name"] == "front")

    def card_opens_front():
        """A member's card on the libnfc reader opens the front door; card → relay, ms."""
        if d.relay_file("front"):
            d.ok({"cmd": "door.lock", "door": "front"})
        t0 = time.monotonic()
        bench.emu_cmd(ctl, "insert uid=%s" % ALICE)
        opened = wait_for(lambda: d.relay_file("front"), 30, "front opens")
        t = (time.monotonic() - t0) * 1000
        bench.emu_cmd(ctl, "remove")
        time.sleep(0.7)             # away longer than debounce_ms: the next insert taps
        d.ok({"cmd": "door.lock", "door": "front"})
        return t if opened else None

    back = DoorTimer(d, "back", "back", CAROL)
    hangs = sc.size("hangs")
    detect, recover, errors, leftovers, front_ok, card_ms = [], [], [], 0, 0, []
    base = None
    for i in range(hangs):
        if not wait_for(lambda: front_reader()["health"] == "up", 60, "front up"):
            sc.check("front reader up before hang %d" % (i + 1), "no", False, "up")
            break
        t = card_opens_front()
        if t is None:
            sc.check("card opens the front door before hang %d" % (i + 1), "no", False, "opens")
            break
        if base is None:
            base = DoorTimer(d, "back", "back", CAROL)
            for _ in range(40):
                base.once()
                time.sleep(rng.uniform(0.02, 0.08))
        worker = rel.reader_worker_pid(d.proc.pid)
        restarts = front_reader()["restarts"]
        os.kill(worker, signal.SIGSTOP)
        t0 = time.monotonic()
        t_detect = t_up = None
        while time.monotonic() - t0 < 120:
            back.once()
            r = front_reader()
            if t_detect is None and r["restarts"] > restarts:
                t_detect = time.monotonic() - t0
                errors.append(r["last_error"])
            if t_detect is not None and r["health"] == "up" and \
                    rel.reader_worker_pid(d.proc.pid) not in (None, worker):
                t_up = time.monotonic() - t0
                break
            time.sleep(rng.uniform(0.02, 0.08))
        if t_detect is not None:
            detect.append(t_detect)
        if t_up is not None:
            recover.append(t_up)
        if not wait_for(lambda: process_gone(worker), 10, "old worker gone"):
            leftovers += 1
            os.kill(worker, signal.SIGKILL)
        t = card_opens_front()
        if t is not None:
            front_ok += 1
            card_ms.append(t)
        print("  reader-stop: hang %d/%d detected after %s s" % (
            i + 1, hangs, "%.1f" % t_detect if t_detect is not None else "—"), flush=True)
    hb = 5.0
    sc.fig("hangs", hangs)
    sc.fig("heartbeat_timeout_s", hb)
    sc.check("reader worker SIGSTOPped (libnfc on pn532-emu) → detected and restarted",
             "%d of %d" % (len(detect), hangs), len(detect) == hangs, "all")
    if detect:
        sc.fig("detect_s_p50", pct(detect, 50))
        sc.fig("detect_s_max", max(detect))
        sc.row("  SIGSTOP → restart seen in status, p50 / max (heartbeat_timeout_ms = 5000, "
               "the default)", "%.1f / %.1f s" % (sc.figures["detect_s_p50"], max(detect)))
    hung = sum(1 for e in errors if "reader hung" in e)
    sc.check("  reason given (last_error)", "%d × %r" % (hung, "no message for 5000 ms: reader hung"),
             hung == len(errors), "says hung")
    if recover:
        sc.fig("back_up_s_p50", pct(recover, 50))
        sc.fig("back_up_s_max", max(recover))
        sc.row("  SIGSTOP → new worker up again, p50 / max", "%.1f / %.1f s" % (
            sc.figures["back_up_s_p50"], max(recover)))
    sc.zero("stopped_workers_left", "stopped workers left behind", leftovers)
    sc.check("card opens the front door again after each restart", "%d of %d" % (front_ok, hangs),
             front_ok == hangs, "all")
    if card_ms:
        sc.fig("card_to_relay_ms_after_restart_p50", pct(card_ms, 50))
    sc.fig("other_door_taps_during_hangs", len(back.latency_us) + len(back.failures))
    sc.zero("other_door_failures", "taps at the other door (sim reader) refused or not opened "
            "during the hangs", len(back.failures))
    if back.latency_us and base and base.latency_us:
        for key, vals in (("other_door_tap_us", back.latency_us), ("baseline_tap_us", base.latency_us)):
            sc.fig(key + "_p50", pct(vals, 50))
            sc.fig(key + "_p99", pct(vals, 99))
            sc.fig(key + "_max", max(vals))
        sc.row("  tap → relay at the other door during the hangs, client-side p50 / p99 / max "
               "(%d taps)" % len(back.latency_us), "%s / %s / %s" % (
                   ms(sc.figures["other_door_tap_us_p50"]), ms(sc.figures["other_door_tap_us_p99"]),
                   ms(sc.figures["other_door_tap_us_max"])))
        sc.row("  same before any hang, p50 / p99 (%d taps)" % len(base.latency_us), "%s / %s" % (
            ms(sc.figures["baseline_tap_us_p50"]), ms(sc.figures["baseline_tap_us_p99"])))
    if back.failures:
        print("  reader-stop: %r" % back.failures[:5])


# ---- slowloris and malformed HTTP while taps go on -------------------------------------

def status_code(data):
    m = re.match(rb"HTTP/\d\.\d (\d{3})", data)
    return int(m.group(1)) if m else None


SLOW_KINDS = (
    # (name, interval s, first bytes): a header line every 3 s (the attack), a header
    # line every 0.5 s (more often than any idle timeout), and complete headers with a body
    # that comes one byte every 0.5 s.
    ("headers every 3 s", 3.0, b"GET / HTTP/1.1\r\nHost: torture\r\nUser-Agent: slow\r\n"),
    ("headers every 0.5 s", 0.5, b"GET / HTTP/1.1\r\nHost: torture\r\nUser-Agent: slow\r\n"),
    ("body every 0.5 s", 0.5, b"POST /login HTTP/1.1\r\nHost: torture\r\nContent-Type: "
     b"application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n"),
)


class Slowloris(threading.Thread):
    """n slow connections spread over addresses, of the three SLOW_KINDS in turn, never
    finishing their requests; as slowloris does, every second it opens again those the
    server closed. Counts what the server did to each kind."""

    def __init__(self, port, n, addresses):
        super().__init__(daemon=True)
        self.port, self.n, self.addresses = port, n, addresses
        self.stop = threading.Event()
        self.opened = self.refused = 0
        self.cut = {k[0]: 0 for k in SLOW_KINDS}
        self.lifetimes = {k[0]: [] for k in SLOW_KINDS}
        self.codes = {}
        self.ages_at_end = {k[0]: [] for k in SLOW_KINDS}
        self.max_open = 0

    def open_one(self, sel, k):
        s = socket.socket()
        s.setblocking(False)
        s.bind((self.addresses[k % len(self.addresses)], 0))
        s.connect_ex(("127.0.0.1", self.port))
        sel.register(s, selectors.EVENT_WRITE, {"k": k, "kind": SLOW_KINDS[k % len(SLOW_KINDS)],
                                                "state": "connecting", "t0": time.monotonic(),
                                                "next": 0.0})
        self.opened += 1

    def run(self):
        sel = selectors.DefaultSelector()
        for k in range(self.n):
            self.open_one(sel, k)
        dead, tick = [], time.monotonic() + 1
        while not self.stop.is_set():
            now = time.monotonic()
            for key, mask in sel.select(timeout=0.05):
                s, st = key.fileobj, key.data
                name, interval, first = st["kind"]
                closed = False
                if st["state"] == "connecting":
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        closed = True
                    else:
                        try:
                            s.send(first)
                            st["state"], st["next"] = "open", now + interval
                            sel.modify(s, selectors.EVENT_READ, st)
                        except OSError:
                            closed = True
                else:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    code = status_code(data)
                    if code:
                        self.codes[code] = self.codes.get(code, 0) + 1
                    closed = True
                if closed:
                    if st["state"] == "open" and now - st["t0"] < 0.5:
                        self.refused += 1       # over the per-address limit: closed at once
                    elif st["state"] == "open":
                        self.lifetimes[name].append(now - st["t0"])
                        self.cut[name] += 1
                    sel.unregister(s)
                    s.close()
                    dead.append(st["k"])
            for key in list(sel.get_map().values()):
                st = key.data
                if st["state"] == "open" and now >= st["next"]:
                    name, interval, first = st["kind"]
                    st["next"] = now + interval
                    line = b"a" if first.endswith(b"\r\n\r\n") else b"X-Slow-%d: %d\r\n" % (st["k"], int(now))
                    try:
                        key.fileobj.send(line)
                    except OSError:
                        pass            # the read side sees the close
            self.max_open = max(self.max_open, sum(1 for k in sel.get_map().values()
                                                   if k.data["state"] == "open"))
            if now >= tick:
                tick = now + 1
                for k in dead:
                    self.open_one(sel, k)
                dead = []
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            if key.data["state"] == "open":
                self.ages_at_end[key.data["kind"][0]].append(now - key.data["t0"])
            key.fileobj.close()


def mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(3)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif len(b) > 8:
            del b[i:i + rng.randint(1, 4)]
    return bytes(b)


VALID = (b"GET /bookings?week=2026-W10 HTTP/1.1\r\nHost: torture\r\nAccept-Language: fr\r\n"
         b"Cookie: portier_pre=abc\r\n\r\n")


def malformed_templates():
    """(category, complete, unsupported_version, builder(rng) -> bytes). complete: the request
    ends, so the server can answer it; otherwise the client half-closes after sending.
    unsupported_version: a 505 is the documented answer (docs/http-api.md)."""
    t = []

    def add(cat, fn, complete=True, version=False):
        t.append((cat, complete, version, fn))
    host = b"\r\nHost: torture\r\n"
    # Bad request lines.
    for line in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET  /  HTTP/1.1" + host + b"\r\n",
                 b" / HTTP/1.1" + host + b"\r\n", b"GET / HTTP/1.1 extra" + host + b"\r\n",
                 b"\r\n\r\n\r\n\r\n", b"GET /\tHTTP/1.1" + host + b"\r\n",
                 b"GET / HTTP/1.1\nHost: torture\n\n", b"GET /" + b" " * 300 + b"HTTP/1.1" + host + b"\r\n"):
        add("request line", lambda r, line=line: line)
    # Bad methods.
    add("method", lambda r: r.choice([b"FOO", b"DELETE", b"PUT", b"PATCH", b"TRACE", b"OPTIONS",
                                      b"PROPFIND", b"get", b"G\x00T", b"GET\x7f", b"P\xc3\xa9ST"])
        + b" / HTTP/1.1" + host + b"\r\n")
    add("method", lambda r: b"CONNECT 127.0.0.1:22 HTTP/1.1" + host + b"\r\n")
    add("method", lambda r: b"A" * r.choice([100, 5000, 70000]) + b" / HTTP/1.1" + host + b"\r\n")
    # Huge or broken headers.
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"X-Big: " + b"a" * r.choice([9000, 40000, 200000])
        + b"\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"".join(b"X-%d: y\r\n" % i for i in range(2000))
        + b"\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"No colon here\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"Bad Name: y\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"X-Fold: a\r\n  folded\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1\r\n\r\n")                  # no Host
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"Host: other\r\n\r\n")
    add("header", lambda r: b"GET /me HTTP/1.1" + host + b"Cookie: portier_session=" + b"%" * 3000
        + b"\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"Accept-Language: "
        + bytes(r.randrange(256) for _ in range(300)).replace(b"\r", b"").replace(b"\n", b"")
        + b"\r\n\r\n")
    add("header", lambda r: b"GET /me HTTP/1.1" + host + b"Authorization: Bearer \xff\xfe\x00x\r\n\r\n")
    add("header", lambda r: b"GET /api/v1/me HTTP/1.1" + host + b"Authorization: Basic !!!\r\n\r\n")
    add("header", lambda r: b"GET / HTTP/1.1" + host + b"X: \x00\x01\x02\r\n\r\n")
    # Bad percent-encoding and paths.
    add("percent-encoding", lambda r: b"GET /" + r.choice([
        b"%zz", b"%", b"%4", b"%00", b"%ff%fe", b"machines/%zz%zz", b"bookings?week=%ZZ",
        b"..%2f..%2fetc%2fpasswd", b"%2e%2e/%2e%2e/", b"?" + b"%" * 500, b"me?x=%C3%28",
        b"bookings?week=%00%00", b"login?next=%0d%0aSet-Cookie:x"]) + b" HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET /" + b"a" * r.choice([3000, 20000, 100000]) + b" HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET http://evil.example/ HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET * HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET /\xff\xfe\xc3( HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET /welcome/" + b"A" * 43 + b" HTTP/1.1" + host + b"\r\n")
    add("path", lambda r: b"GET /../../../etc/passwd HTTP/1.1" + host + b"\r\n")
    # Versions: the documented 505.
    for line in (b"GET / HTTP/9.9" + host + b"\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                 b"GET / HTTP/1.1.1" + host + b"\r\n", b"GET / HTTP/abc" + host + b"\r\n",
                 b"GET / HTTP/0.9\r\n\r\n", b"GET / FTP/1.1" + host + b"\r\n",
                 b"GET / HTTP/1.9" + host + b"\r\n"):
        add("version", lambda r, line=line: line, version=True)
    add("version", lambda r: b"GET /\r\n\r\n")          # HTTP/0.9: no version at all
    add("version", lambda r: b"GET / HTTP/1.0\r\n\r\n")  # fine, as a control
    # Bodies: truncated, contradictory, oversized, nonsense.
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    add("body", lambda r: b"POST /login HTTP/1.1" + host + form + b"Content-Length: 1000\r\n\r\nname=alice",
        complete=False)
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Content-Length: -5\r\n\r\n")
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Content-Length: 99999999999999999999\r\n\r\n")
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Content-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg")
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Content-Length: 4\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n")
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Transfer-Encoding: chunked\r\n" + form
        + b"\r\nzz\r\n")
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc",
        complete=False)
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    deep = b"[" * 5000 + b"]" * 5000
    add("body", lambda r: b"POST /api/v1/bookings HTTP/1.1" + host + b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(deep) + deep)
    bad_json = b'{"a": "\xff\xfe"}'
    add("body", lambda r: b"POST /api/v1/bookings HTTP/1.1" + host + b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(bad_json) + bad_json)
    big = b"x=" + b"a" * 70000
    add("body", lambda r: b"POST /login HTTP/1.1" + host + form + b"Content-Length: %d\r\n\r\n" % len(big) + big)
    add("body", lambda r: (lambda b: b"POST /login HTTP/1.1" + host + form + b"Content-Length: %d"
                           b"\r\n\r\n" % len(b) + b)(r.choice([
                               b"csrf=%ZZ&name=%4&pw=x", b"\xff\xfe\xfd=\x00\x00&&&&&&&&&&&",
                               b"name&&==&=%%%%%%%%%"])))
    add("body", lambda r: b"POST /login HTTP/1.1" + host + b"Content-Type: multipart/form-data; boundary="
        b"\r\nContent-Length: 10\r\n\r\n--\r\n--\r\n\r\n")
    add("body", lambda r: b"POST /bookings HTTP/1.1" + host + b"Content-Type: text/x-nonsense\r\n"
        b"Content-Length: 3\r\n\r\nabc")
    # Binary garbage.
    add("binary", lambda r: bytes(r.randrange(256) for _ in range(r.randint(1, 2000))), complete=False)
    add("binary", lambda r: b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(r.randrange(256)
                                                                                  for _ in range(160)),
        complete=False)
    add("binary", lambda r: b"\x00" * r.randint(1, 500) + b"\r\n\r\n")
    # A valid request with a few bytes changed, added or removed.
    add("mutation", lambda r: mutate(VALID, r), complete=False)
    return t


def one_malformed(port, source, payload, complete):
    """Send one request from source; its outcome: an HTTP status, "closed" (no answer),
    "reset", or "held" (neither answer nor close within 65 s of the client's half-close)."""
    s = socket.socket()
    try:
        s.bind((source, 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(payload)
        except OSError:
            pass                        # the server may refuse before reading it all
        data = b""
        if complete:
            data, _ = read_status(s, 30)
        if data == b"":
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            data, held = read_status(s, 65)
            if held:
                return "held"
        if data is None:
            return "reset"
        code = status_code(data)
        return code if code else ("closed" if not data else "other")
    except OSError:
        return "reset"
    finally:
        s.close()


def read_status(s, timeout):
    """(the answer's first line, or b"" if the server closed or nothing came, or None on a
    reset; whether the connection stayed open and silent for the whole timeout)."""
    data = b""
    s.settimeout(timeout)
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return data, not data
    except OSError:
        return None, False
    return data, False


def http_fetch(port, path, timeout=120):
    """A normal browser visit from 127.0.0.1: (status, seconds, the whole answer), status
    None on failure."""
    t0 = time.monotonic()
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: torture\r\nConnection: close\r\n\r\n" % path.encode())
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return status_code(data), time.monotonic() - t0, data
    except OSError:
        return None, time.monotonic() - t0, data


def http_get(port, path, timeout=120):
    """(status, seconds) of http_fetch."""
    return http_fetch(port, path, timeout)[:2]


HTTP_SECTIONS = """
[reader front]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 30

[http]
listen = 127.0.0.1:{port}
"""


class PageProbe(threading.Thread):
    def __init__(self, port, path="/", every=0.5):
        super().__init__(daemon=True)
        self.port, self.path, self.every = port, path, every
        self.stop = threading.Event()
        self.times, self.failures = [], []

    def run(self):
        while not self.stop.is_set():
            code, t = http_get(self.port, self.path)
            if code == 200:
                self.times.append(t)
            else:
                self.failures.append(code)
            self.stop.wait(self.every)


def run_http_attack(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed + 3)
    port = bench.free_port()
    d = h.Daemon(config_text=site_config(work, HTTP_SECTIONS.format(port=port)), directory=work)
    sc.later(lambda: stop_daemon(d))
    d.start()
    d.seed()
    pid = d.proc.pid
    bench.wait_port(port, "portierd")

    def measure(seconds, done=None):
        """Taps and page views for seconds, and then until done() says so."""
        timer = DoorTimer(d, "front", "front", ALICE)
        page = PageProbe(port)
        stop = threading.Event()
        t = threading.Thread(target=timer.run, args=(stop, random.Random(rng.random())))
        page.start()
        t.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end or (done and not done()):
            time.sleep(0.2)
        stop.set()
        page.stop.set()
        t.join(timeout=180)
        page.join(timeout=180)
        return timer, page

    base_timer, base_page = measure(10 if not sc.args.quick else 5)

    # Phase 1: one attacking machine, 200 slow connections (the per-address limit holds it to
    # 32 of them) and the malformed requests from 8 more addresses.
    n_slow = sc.size("slow_connections")
    slow1 = Slowloris(port, n_slow, ["127.0.0.10"])
    sc.later(slow1.stop.set)
    slow1.start()
    time.sleep(2)
    total = sc.size("malformed")
    templates = malformed_templates()
    lock = threading.Lock()
    outcomes = {}                   # category -> {outcome: count}
    bad5xx = []
    state = {"sent": 0}

    def attacker(k):
        r = random.Random(sc.args.seed * 100 + k)
        source = "127.0.0.%d" % (30 + k % 8)
        while True:
            with lock:
                if state["sent"] >= total:
                    return
                state["sent"] += 1
            cat, complete, version, fn = r.choice(templates)
            payload = fn(r)
            out = one_malformed(port, source, payload, complete)
            with lock:
                c = outcomes.setdefault(cat, {})
                c[out] = c.get(out, 0) + 1
                if isinstance(out, int) and out >= 500 and not (out == 505 and version):
                    bad5xx.append((cat, out, payload[:80]))

    attackers = [threading.Thread(target=attacker, args=(k,), daemon=True) for k in range(32)]
    t_attack = time.monotonic()
    for a in attackers:
        a.start()
    atk_timer, atk_page = measure(sc.size("attack_seconds"),
                                  done=lambda: not any(a.is_alive() for a in attackers))
    attack_s = time.monotonic() - t_attack
    slow1.stop.set()
    slow1.join(timeout=30)
    alive1 = d.proc.poll() is None and d.proc.pid == pid

    # Phase 2: the same 200 slow connections from 8 addresses (25 each, under the
    # per-address limit): together more than max_connections = 64.
    slow2 = Slowloris(port, n_slow, ["127.0.0.%d" % (10 + i) for i in range(8)])
    sc.later(slow2.stop.set)
    slow2.start()
    time.sleep(2)
    t2 = time.monotonic()
    full_timer, full_page = measure(sc.size("attack_seconds"))
    full_s = time.monotonic() - t2
    slow2.stop.set()
    slow2.join(timeout=30)

    alive = d.proc.poll() is None and d.proc.pid == pid
    healthz, _ = http_get(port, "/healthz", timeout=60)
    metrics = http_fetch(port, "/metrics", timeout=60)[2]
    m = re.search(rb'portier_http_requests_total\{code="5xx"\} (\d+)', metrics)
    served_5xx = int(m.group(1)) if m else -1

    codes = {}
    for c in outcomes.values():
        for k, v in c.items():
            codes[str(k)] = codes.get(str(k), 0) + v
    documented_505 = sum(v.get(505, 0) for v in outcomes.values())
    slow_5xx = sum(v for slow in (slow1, slow2) for k, v in slow.codes.items() if k >= 500)
    sc.fig("malformed_requests", state["sent"])
    sc.fig("malformed_outcomes", {cat: {str(k): v for k, v in c.items()} for cat, c in outcomes.items()})
    sc.fig("malformed_codes", codes)
    sc.fig("slow_connections", n_slow)
    sc.fig("attack_seconds", attack_s)
    sc.row("1. one attacker: %d slow connections from one address (3 kinds, reopened every "
           "second when cut) and %d malformed requests (32 clients on 8 more addresses), %.0f s"
           % (n_slow, state["sent"], attack_s), "—")
    sc.fig("slow_refused_per_address_limit", slow1.refused)
    sc.row("  slow connections closed at once (over per_address_connections = 32)",
           "%d" % slow1.refused)
    sc.check("  portierd still running, same process", "yes" if alive1 else "NO", alive1, "yes")
    sc.zero("http_5xx_undocumented", "  5xx answers (but the documented 505 to an unsupported "
            "HTTP version)", len(bad5xx) + slow_5xx)
    sc.fig("http_505_unsupported_version", documented_505)
    sc.row("  505 to an unsupported HTTP version (docs/http-api.md: the one 5xx allowed)",
           "%d" % documented_505)
    sc.row("  malformed requests answered 4xx / another status / closed unanswered / reset",
           "%d / %d / %d / %d" % (sum(v for k, v in codes.items() if k.isdigit() and k[0] == "4"),
                                  sum(v for k, v in codes.items() if k.isdigit() and k[0] != "4"),
                                  codes.get("closed", 0), codes.get("reset", 0)))
    sc.zero("connections_held", "  requests neither answered nor closed 65 s after the client "
            "stopped sending", codes.get("held", 0))
    deadline = {SLOW_KINDS[0][0]: 10, SLOW_KINDS[1][0]: 10, SLOW_KINDS[2][0]: 30}
    for name, _, _ in SLOW_KINDS:
        life = slow1.lifetimes[name]
        over = [a for a in slow1.ages_at_end[name] if a > deadline[name] + 5]
        key = re.sub(r"[^a-z0-9]+", "_", name)
        sc.fig("slow_%s_cut" % key, len(life))
        sc.fig("slow_%s_life_s_p50" % key, pct(life, 50))
        sc.check("  slow connections, %s: cut by the server / life p50 / still open past "
                 "the deadline (%d s) + 5 s" % (name, deadline[name]),
                 "%d / %.1f s / %d" % (len(life), pct(life, 50), len(over)),
                 bool(life) and not over, "cut / — / 0")
    timers = (("baseline", base_timer), ("attack", atk_timer), ("full", full_timer))
    for name, timer in timers:
        if timer.latency_us:
            sc.fig("%s_tap_us_p50" % name, pct(timer.latency_us, 50))
            sc.fig("%s_tap_us_p99" % name, pct(timer.latency_us, 99))
            sc.fig("%s_tap_us_max" % name, max(timer.latency_us))
        sc.fig("%s_taps" % name, len(timer.latency_us))
    sc.zero("tap_failures", "  taps refused or doors not opened (before and during)",
            sum(len(t.failures) for _, t in timers))
    for name, page in (("baseline", base_page), ("attack", atk_page), ("full", full_page)):
        if page.times:
            sc.fig("%s_page_s_p50" % name, pct(page.times, 50))
            sc.fig("%s_page_s_p99" % name, pct(page.times, 99))
            sc.fig("%s_page_s_max" % name, max(page.times))
        sc.fig("%s_pages" % name, len(page.times))
        sc.fig("%s_page_failures" % name, len(page.failures))

    def latency_rows(tag, timer, page):
        if timer.latency_us:
            sc.row("  tap → relay, client-side p50 / p99 / max (%d taps)" % len(timer.latency_us),
                   "%s / %s / %s" % (ms(sc.figures["%s_tap_us_p50" % tag]),
                                     ms(sc.figures["%s_tap_us_p99" % tag]),
                                     ms(sc.figures["%s_tap_us_max" % tag])))
        sc.check("  home page (GET /) from another address: answered 200 / asked",
                 "%d / %d" % (len(page.times), len(page.times) + len(page.failures)),
                 not page.failures, "all")
        if page.times:
            sc.row("  its latency, p50 / p99 / max", "%.2f / %.2f / %.2f s" % (
                sc.figures["%s_page_s_p50" % tag], sc.figures["%s_page_s_p99" % tag],
                sc.figures["%s_page_s_max" % tag]))
    latency_rows("attack", atk_timer, atk_page)
    sc.row("2. %d slow connections from 8 addresses (25 each: together over max_connections "
           "= 64), %.0f s" % (n_slow, full_s), "—")
    sc.check("  portierd still running, same process", "yes" if alive else "NO", alive, "yes")
    cut2 = sum(len(v) for v in slow2.lifetimes.values())
    sc.fig("full_slow_cut", cut2)
    sc.fig("full_slow_life_s_p50", pct([x for v in slow2.lifetimes.values() for x in v], 50))
    sc.row("  slow connections cut by the server / life p50 (queue included)", "%d / %.1f s" % (
        cut2, sc.figures["full_slow_life_s_p50"]))
    latency_rows("full", full_timer, full_page)
    sc.row("before the attacks: tap → relay p50 / p99; home page p50 / max", "%s / %s; %.3f / %.3f s" % (
        ms(sc.figures.get("baseline_tap_us_p50", 0)), ms(sc.figures.get("baseline_tap_us_p99", 0)),
        sc.figures.get("baseline_page_s_p50", 0), sc.figures.get("baseline_page_s_max", 0)))
    sc.fig("metrics_5xx", served_5xx)
    sc.check("after: /healthz; portier_http_requests_total{code=\"5xx\"}",
             "%s; %d" % (healthz, served_5xx), healthz == 200 and served_5xx == 0, "200; 0")
    if bad5xx:
        print("  http-attack: 5xx: %r" % bad5xx[:10])


# ---- a full disk ------------------------------------------------------------------------

def run_full_disk(sc):
    if os.geteuid() != 0:
        sc.check("full disk (needs root to mount a tmpfs)", "not run", False, "run as root")
        return
    work = sc.mkwork()
    state = os.path.join(work, "state")
    os.makedirs(state)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", state], check=True)
    sc.later(lambda: subprocess.run(["umount", "-l", state]))
    broker_port = sc.mosquitto(work)
    port = bench.free_port()
    d = h.Daemon(config_text=site_config(work, rel.FULL_DISK_SECTIONS.format(
        port=broker_port, http=port)), directory=work)
    sc.later(lambda: stop_daemon(d))
    d.start()
    d.seed()
    listener = test_mqtt.Listener(broker_port, ["portier/torture/storage"], user=None)
    sc.later(listener.close)
    for uid in (ALICE, CAROL, STRANGER):
        d.tap(uid)
    filler = rel.fill(state)
    t_full = time.monotonic()
    n = sc.size("full_disk_taps")
    cards = [ALICE, CAROL, BOB, STRANGER]
    member_taps = opened = refused = acked_ok = errors = stranger_open = 0
    acked_ids = []
    t_first_refused = None
    for i in range(n):
        uid = cards[i % len(cards)]
        try:
            d.request({"cmd": "door.lock", "door": "front"}, timeout=60)
            r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid}, timeout=60)
        except (OSError, ValueError):
            errors += 1
            continue
        energised = d.relay_file("front")
        if uid != STRANGER:
            member_taps += 1
            opened += energised
        else:
            stranger_open += energised
        if r.get("ok"):
            acked_ok += 1
            acked_ids.append(r["event_id"])
        elif r.get("code") == "not_recorded":
            refused += 1
            if t_first_refused is None:
                t_first_refused = time.monotonic()
        else:
            errors += 1
    st = d.status()["storage"]
    alarm_status = not st["ok"]
    held = st["held_events"]
    code, _ = http_get(port, "/healthz", timeout=60)
    alarm_mqtt = wait_for(lambda: any(not json.loads(p).get("ok", True)
                                      for p, r in listener.topic("portier/torture/storage")),
                          30, "mqtt alarm")
    alarm_log = "storage: cannot write the database" in d.log_text()
    os.unlink(filler)
    t_free = time.monotonic()
    recovered = wait_for(lambda: d.status()["storage"]["ok"], 120, "recovered")
    t_rec = time.monotonic() - t_free
    st2 = d.status()["storage"]
    code2, _ = http_get(port, "/healthz", timeout=60)
    cleared = wait_for(lambda: any(json.loads(p).get("ok") for p, r in
                                   listener.topic("portier/torture/storage")[-1:]), 30, "cleared")
    verify = d.ok({"cmd": "ledger.verify"})
    d.stop()
    db = d.db()
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        taps = db.execute("SELECT count(*) FROM access_events WHERE kind = 'tap'").fetchone()[0]
        stored = {r[0] for r in db.execute("SELECT id FROM access_events")}
    finally:
        db.close()
    d.start()
    after = d.tap(ALICE)
    sc.fig("taps_on_full_disk", n)
    sc.row("state_dir on a 3 MiB tmpfs, filled; then taps at the door (3 members' cards, 1 "
           "stranger's; the door locked before each)", "%d taps" % n)
    sc.check("members' taps that opened the door (relay file energised)", "%d / %d" % (opened, member_taps),
             opened == member_taps, "all")
    sc.zero("stranger_opened", "the stranger's taps that opened it", stranger_open)
    sc.fig("refused_not_recorded", refused)
    sc.fig("acknowledged_on_full_disk", acked_ok)
    sc.row("replies: not_recorded / acknowledged ok (written before the disk was full)",
           "%d / %d" % (refused, acked_ok))
    sc.zero("tap_errors", "taps with another error or no reply", errors)
    sc.check("alarm: status storage ok=false / /healthz / MQTT retained storage / log",
             "%s / %s / %s / %s" % ("false" if alarm_status else "true", code,
                                    "ok=false" if alarm_mqtt else "none",
                                    "logged" if alarm_log else "not logged"),
             alarm_status and code == 503 and bool(alarm_mqtt) and alarm_log,
             "false / 503 / ok=false / logged")
    if t_first_refused is not None:
        sc.fig("fill_to_first_refusal_s", t_first_refused - t_full)
    sc.fig("held_events", held)
    sc.row("access events held in memory while full", "%d" % held)
    sc.check("space freed → storage ok again", "%.1f s" % t_rec if recovered else "never",
             bool(recovered), "recovers")
    sc.fig("recovery_s", t_rec)
    sc.check("after recovery: held / dropped events, /healthz, MQTT storage",
             "%d / %d / %s / %s" % (st2["held_events"], st2["dropped_events"], code2,
                                    "ok=true" if cleared else "still false"),
             st2["held_events"] == 0 and st2["dropped_events"] == 0 and code2 == 200 and bool(cleared),
             "0 / 0 / 200 / ok=true")
    expected = 3 + n
    sc.check("tap rows after recovery (every decision recorded)", "%d / %d" % (taps, expected),
             taps == expected, "all")
    lost = [i for i in acked_ids if i not in stored]
    sc.zero("acknowledged_lost", "acknowledged taps missing", len(lost))
    sc.check("PRAGMA integrity_check / ledger verify / restart and tap",
             "%s / %s / %s" % (integrity, "intact" if verify.get("intact") else "BROKEN",
                               "granted" if after.get("granted") else repr(after)),
             integrity == "ok" and verify.get("intact") and after.get("granted"),
             "ok / intact / granted")


# ---- SIGHUP: 100 reloads under load -----------------------------------------------------

SIGHUP_SECTIONS = """
[mqtt]
enabled = true
port = {mqtt}

[http]
listen = 127.0.0.1:{http}
"""


def run_sighup(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed + 4)
    broker_port = sc.mosquitto(work)
    port = bench.free_port()
    extra = SIGHUP_SECTIONS.format(mqtt=broker_port, http=port)

    def config(unlock, name, broken=False):
        text = two_doors(work, unlock=unlock, extra=extra).replace(
            "name = Torture site", "name = %s" % name)
        if broken:
            text += "\n[door broken]\nrelay = x\n"
        return text
    d = h.Daemon(config_text=config(2, "Torture site"), directory=work)
    sc.later(lambda: stop_daemon(d))
    d.start()
    d.seed()
    pid = d.proc.pid
    listener = test_mqtt.Listener(broker_port, ["portier/torture/event/#"], user=None)
    sc.later(listener.close)
    bench.wait_port(port, "portierd")

    stop = threading.Event()
    taps = {"ok": 0, "failed": []}
    lat = []
    tlock = threading.Lock()

    def load(reader, uid):
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                r = d.request({"cmd": "sim.tap", "reader": reader, "uid": uid}, timeout=60)
            except (OSError, ValueError) as e:
                r = {"error": repr(e)}
            with tlock:
                if r.get("ok"):
                    taps["ok"] += 1
                    lat.append(time.monotonic() - t0)
                else:
                    taps["failed"].append(repr(r)[:200])
            time.sleep(0.005)
    loaders = [threading.Thread(target=load, args=a) for a in
               (("front", ALICE), ("back", CAROL), ("back", BOB), ("front", STRANGER))]
    page = PageProbe(port, "/", every=0.2)
    for t in loaders:
        t.start()
    page.start()

    n = sc.size("reloads")
    reload_s, applied, kept, wrong = [], 0, 0, []
    path = d.config_path
    for i in range(n):
        broken = i % 10 == 9
        unlock = 2 + i % 5
        name = "Torture site %d" % i
        before = d.status()["site"]["name"]
        with open(path + ".tmp", "w") as f:
            f.write(config(unlock, name, broken))
        os.replace(path + ".tmp", path)
        t0 = time.monotonic()
        d.kill(signal.SIGHUP)
        d.wait_notify("READY=1")
        reload_s.append(time.monotonic() - t0)
        now = d.status()["site"]["name"]
        if broken:
            kept += now == before
            if now != before:
                wrong.append("reload %d: a broken file was applied" % i)
        else:
            applied += now == name
            if now != name:
                wrong.append("reload %d: site name %r, not %r" % (i, now, name))
        time.sleep(rng.uniform(0.0, 0.1))
    time.sleep(1)
    stop.set()
    page.stop.set()
    for t in loaders:
        t.join(timeout=120)
    page.join(timeout=180)
    alive = d.proc.poll() is None and d.proc.pid == pid
    wait_for(lambda: d.status()["mqtt"]["outbox"] == 0, 60, "delivered")
    events = listener.events()
    bad_events = [e for e in events if e.get("site") != "torture" or e.get("v") != 1]
    last_unlock = 2 + (max(i for i in range(n) if i % 10 != 9) % 5) if n else 2
    d.ok({"cmd": "door.lock", "door": "front"})
    d.tap(ALICE)
    remaining = d.door("front")["unlock_remaining"]
    log = d.log_text()
    n_reloaded = log.count("SIGHUP: configuration reloaded")
    n_kept = log.count("has errors; keeping the current configuration")
    valid = n - n // 10
    sc.fig("reloads", n)
    sc.row("SIGHUP reloads under load (4 tap clients, a page view every 0.2 s, MQTT events); "
           "one in ten files broken", "%d" % n)
    sc.check("portierd still running, same process", "yes" if alive else "NO", alive, "yes")
    sc.check("valid files applied (site name in status; log says reloaded)",
             "%d / %d (log %d)" % (applied, valid, n_reloaded),
             applied == valid and n_reloaded == valid, "all")
    sc.check("broken files refused, the running configuration kept",
             "%d / %d (log %d)" % (kept, n // 10, n_kept),
             kept == n // 10 and n_kept == n // 10, "all")
    sc.check("the last applied unlock_seconds in force", "%d s (want %d)" % (remaining, last_unlock),
             remaining in (last_unlock, last_unlock - 1), "applied")
    sc.fig("reload_ms_p50", pct(reload_s, 50) * 1000)
    sc.fig("reload_ms_max", max(reload_s) * 1000 if reload_s else 0)
    sc.row("SIGHUP → READY=1, p50 / max", "%.1f / %.1f ms" % (sc.figures["reload_ms_p50"],
                                                              sc.figures["reload_ms_max"]))
    sc.fig("taps_during_reloads", taps["ok"] + len(taps["failed"]))
    sc.zero("tap_failures", "taps failed or refused during the reloads", len(taps["failed"]))
    sc.fig("tap_round_trip_ms_p99", pct(lat, 99) * 1000)
    sc.row("  taps answered (%d), round trip p50 / p99 / max" % taps["ok"], "%.1f / %.1f / %.1f ms" % (
        pct(lat, 50) * 1000, pct(lat, 99) * 1000, (max(lat) if lat else 0) * 1000))
    sc.zero("page_failures", "page views failed during the reloads", len(page.failures))
    sc.fig("pages", len(page.times))
    sc.fig("mqtt_events", len(events))
    sc.zero("mqtt_events_bad", "MQTT events with a wrong site or version field (%d checked)"
            % len(events), len(bad_events))
    if wrong or taps["failed"] or bad_events:
        print("  sighup: %r %r %r" % (wrong[:5], taps["failed"][:5], bad_events[:3]))


# ---- power cuts -------------------------------------------------------------------------

def run_powercut(sc):
    work = sc.mkwork()
    rng = random.Random(sc.args.seed + 5)
    n = sc.size("powercut_cuts")
    # One round of the rig's workload is some 240 writes and syncs, each more some 155: enough
    # rounds for n distinct cut points with room to spare.
    rounds = min(28, 1 + max(0, -(-(n * 5 // 4 - 240) // 155)))
    rig = powercut_rig.Rig(os.path.join(work, "workload"), rounds)
    events = rig.dry_run()
    # Half spread evenly over the run, half at random points of it.
    points = sorted(set(powercut_rig.spread(events, n // 2)) |
                    set(rng.sample(range(1, events + 1), min(events, n - n // 2))))
    while len(points) < min(n, events):
        points = sorted(set(points) | {rng.randint(1, events)})
    failures, acked, lost = [], 0, 0
    for k, at in enumerate(points):
        try:
            acked += rig.cut(at)
        except AssertionError as e:
            failures.append(str(e)[:300])
            lost += "lost" in str(e)
        if (k + 1) % 100 == 0:
            print("  powercut: %d/%d workload cuts" % (k + 1, len(points)), flush=True)
    m = sc.size("migration_cuts")
    mig = powercut_rig.MigrationRig(os.path.join(work, "migrations"), 1)
    os.makedirs(mig.workdir, exist_ok=True)
    mig_events = mig.run()
    mig_points = powercut_rig.spread(mig_events, m)
    for at in mig_points:
        try:
            mig.run(at)
        except AssertionError as e:
            failures.append(str(e)[:300])
    sc.fig("workload_events", events)
    sc.fig("workload_cuts", len(points))
    sc.fig("migration_events", mig_events)
    sc.fig("migration_cuts", len(mig_points))
    sc.fig("acknowledged_records_checked", acked)
    sc.fig("workload_rounds", rounds)
    sc.row("power cuts (unsynced writes dropped) during taps, day charges, ledger entries and a "
           "period close: cut points (of %d writes and syncs)" % events, "%d" % len(points))
    sc.row("power cuts during migrations from schema version 1: cut points (of %d)" % mig_events,
           "%d" % len(mig_points))
    sc.row("acknowledged records checked after the cuts", "%d" % acked)
    sc.fig("schema_versions_left_by_cuts", sorted(mig.versions_seen))
    sc.row("  schema versions the migration cuts left on disk (each checked whole)",
           ", ".join(str(v) for v in sorted(mig.versions_seen)))
    sc.zero("records_lost", "acknowledged records lost", lost)
    sc.zero("failures", "failures found (integrity, ledger, half migration, restart)", len(failures))
    for f in failures[:5]:
        print("  powercut: %s" % f)


RUNNERS = {
    "kill9": run_kill9,
    "broker": run_broker,
    "drain-kill": run_drain_kill,
    "reader-stop": run_reader_stop,
    "http-attack": run_http_attack,
    "full-disk": run_full_disk,
    "sighup": run_sighup,
    "powercut": run_powercut,
}

TITLES = {
    "kill9": "kill -9 during tap bursts",
    "broker": "broker down while events happen, then back",
    "drain-kill": "kill -9 while the outbox drains",
    "reader-stop": "a reader worker SIGSTOPped",
    "http-attack": "slowloris and malformed HTTP while taps go on",
    "full-disk": "a full disk",
    "sighup": "SIGHUP reloads under load",
    "powercut": "power cuts",
}


def machine_text(load0, load1):
    return "%s, %d cores, %s; 1-min load %.2f → %.2f" % (
        platform.machine(), os.cpu_count(), platform.release(), load0, load1)


def main():
    ap = argparse.ArgumentParser(
        prog="tools/torture",
        description="Break the real portierd on purpose and check its promises: kill -9 in tap "
                    "bursts, broker outages, a kill -9 mid-drain, a hung reader worker, "
                    "slowloris and malformed HTTP, a full disk, SIGHUP reloads, power cuts. "
                    "Prints a table of figures per scenario; exits 1 if a promise was broken "
                    "(a lost acknowledged record, a crash, a 5xx, a corrupt database...). Speed "
                    "figures are reported, never asserted. See docs/reliability.md.",
        epilog="Scenarios: " + ", ".join(SCENARIOS) + ". The full run takes about half an "
               "hour on 2 cores, most of it the 1,000 power cuts (about 1 s each); --quick "
               "a few minutes.")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="directory of portierd and friends (tools/torture builds build/)")
    ap.add_argument("--only", action="append", choices=SCENARIOS, metavar="SCENARIO",
                    help="run this scenario only (repeatable)")
    ap.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    ap.add_argument("--seed", type=int, default=12, help="random seed (default 12)")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    for key, (full, quick, what) in SIZES.items():
        ap.add_argument("--" + key.replace("_", "-"), type=int, dest=key, metavar="N",
                        help="%s (full %d, quick %d)" % (what, full, quick))
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.bin, "portierd")):
        ap.error("no portierd in %s (build first, or use tools/torture)" % args.bin)
    load_helpers(args.bin)

    chosen = args.only or SCENARIOS
    la0 = bench.load_figures()[0]
    t_all = time.monotonic()
    results = {}
    scenarios = []
    for name in SCENARIOS:
        if name not in chosen:
            continue
        sc = Scenario(name, args)
        print("== %s: %s" % (name, TITLES[name]), flush=True)
        la, busy0 = bench.load_figures()
        t0 = time.monotonic()
        try:
            RUNNERS[name](sc)
        except Exception as e:      # noqa: BLE001 — a scenario that cannot finish is a failure
            import traceback
            traceback.print_exc()
            sc.check("scenario finished", "%s: %s" % (type(e).__name__, str(e)[:300]), False,
                     "finishes")
        finally:
            sc.cleanup(args.keep)
        la1, busy1 = bench.load_figures()
        sc.fig("seconds", time.monotonic() - t0)
        sc.fig("load_1min", [la, la1])
        sc.fig("machine_busy_percent", (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
               / max(time.monotonic() - t0, 1e-6) / os.cpu_count() * 100)
        print_table([sc])
        results[name] = {"figures": sc.figures, "broken": sc.broken}
        scenarios.append(sc)
    la1 = bench.load_figures()[0]
    total = time.monotonic() - t_all
    broken = [b for sc in scenarios for b in ["%s: %s" % (sc.name, x) for x in sc.broken]]
    print("\nPortier torture bench — %s; %.0f min\n" % (machine_text(la0, la1), total / 60))
    print_table(scenarios, summary=True)
    if broken:
        print("\nBROKEN PROMISES (%d):" % len(broken))
        for b in broken:
            print("  - " + b)
    else:
        print("\nEvery promise held.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_text(la0, la1), "cores": os.cpu_count(),
                       "quick": args.quick, "seed": args.seed, "seconds": total,
                       "scenarios": results, "broken": broken}, f, indent=2)
    sys.exit(1 if broken else 0)


def print_table(scenarios, summary=False):
    print("\n| scenario | figure | measured | promise | |\n|---|---|---|---|---|")
    for sc in scenarios:
        first = True
        for label, measured, promise, verdict in sc.rows:
            print("| %s | %s | %s | %s | %s |" % (sc.name if first else "", label, measured,
                                                  promise, verdict))
            first = False
        if not summary:
            print("| | time; machine busy | %.0f s; %.0f %% of %d cores | | |" % (
                sc.figures["seconds"], sc.figures["machine_busy_percent"], os.cpu_count()))
    print(flush=True)


if __name__ == "__main__":
    main()

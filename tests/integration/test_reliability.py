# SPDX-License-Identifier: AGPL-3.0-or-later
"""Reliability against the real daemon: a broker that blips while reader workers run,
descriptors each child process holds, the reader worker's sandbox, a state directory
whose disk fills up, and a disk so slow that only work off the event loop keeps the doors
answering."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (BIN, PORTIERCTL, PORTIERD, Daemon, DaemonTest,  # noqa: E402
                             build_config, children, free_tcp_port, http_section, main,
                             reader_workers, wait_until)
from test_http import Client  # noqa: E402
from test_mqtt import Broker, Listener  # noqa: E402
from test_readers import Emulator  # noqa: E402

NFC_MQTT_SECTIONS = """
[mqtt]
enabled = true
port = {port}

[reader front]
driver = libnfc
connstring = pn532_uart:{dir}/front.tty
poll_ms = 20
debounce_ms = 200
heartbeat_timeout_ms = 2000
backoff_max_seconds = 1

[door front]
reader = front
relay = 17
unlock_seconds = 1
"""


def nfc_mqtt_config(directory, port, daemon_extra=""):
    """One door with a libnfc reader on an emulator in directory, MQTT on the broker at port."""
    return build_config(directory, NFC_MQTT_SECTIONS.format(dir=directory, port=port),
                        daemon_extra=daemon_extra)


def fd_targets(pid):
    """What each open descriptor of pid points at: {fd: target}."""
    out = {}
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except FileNotFoundError:
            pass
    return out


def worker_fds_ok(test, fds):
    """A reader worker on pn532_uart holds stdio, its socket (3), the device (4) and the pipe
    libnfc's pn532_uart driver keeps to abort a wait (5, 6: both ends of one pipe)."""
    test.assertEqual(sorted(fds), [0, 1, 2, 3, 4, 5, 6], fds)
    test.assertTrue(fds[3].startswith("socket:"), fds)
    test.assertTrue(fds[4].startswith("/dev/pts/"), fds)
    test.assertTrue(fds[5].startswith("pipe:") and fds[5] == fds[6], fds)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def reader_worker_pid(daemon_pid):
    workers = reader_workers(daemon_pid)
    return workers[0] if workers else None


class BrokerBlipTest(DaemonTest):
    """Issue 12.1: the MQTT socket must not leak into a reader worker started while
    connected, and the daemon must survive the broker going away whatever happened."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-blip-")
        self.broker = Broker(self.dir)
        self.broker.start()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.emu = Emulator(self.dir, "front")
        self.d.write_config(nfc_mqtt_config(self.dir, self.broker.port))
        self.d.start()
        self.d.seed()

    def tearDown(self):
        super().tearDown()
        self.broker.stop()
        self.emu.stop()

    def reader(self):
        return next(r for r in self.d.status()["readers"] if r["name"] == "front")

    def mqtt_connected(self):
        return self.d.status()["mqtt"]["connected"]

    def test_broker_restart_after_reader_restart_keeps_the_daemon_up(self):
        wait_until(lambda: self.reader()["health"] == "up", what="reader up")
        wait_until(self.mqtt_connected, what="mqtt connected")
        old = reader_worker_pid(self.d.proc.pid)
        self.d.ctl("reader", "restart", "front")
        wait_until(lambda: reader_worker_pid(self.d.proc.pid) not in (None, old),
                   what="a new reader worker")
        wait_until(lambda: self.reader()["health"] == "up", what="reader up again")
        worker = reader_worker_pid(self.d.proc.pid)
        # The worker holds no TCP socket of the daemon's.
        sockets = [t for t in fd_targets(worker).values() if t.startswith("socket:")]
        self.assertEqual(len(sockets), 1, fd_targets(worker))
        for _ in range(3):
            self.broker.stop()
            wait_until(lambda: not self.mqtt_connected(), what="mqtt disconnected")
            time.sleep(0.3)
            self.assertIsNone(self.d.proc.poll(), self.d.log_text()[-2000:])
            self.broker.start()
            wait_until(self.mqtt_connected, what="mqtt reconnected")
        self.assertIsNone(self.d.proc.poll())
        # And it still opens the door.
        self.emu.cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.d.relay_file("front"), what="front relay energised")


JOB_WRAPPER = """#!/usr/bin/python3
import os, sys
fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink("/proc/self/fd/" + name)
    except OSError:
        continue
    if not target.startswith("/proc/"):
        fds[name] = target
with open(%r, "a") as f:
    f.write(repr(sorted(fds.items())) + "\\n")
os.execv(%r, [%r] + sys.argv[1:])
"""


def cloexec(pid, fd):
    """Whether fd of pid is close-on-exec (True for one closed meanwhile: nothing leaks)."""
    try:
        with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & 0o2000000 != 0
    except FileNotFoundError:
        return True
    return False


class DescriptorTest(DaemonTest):
    """Issue 12.1: the daemon opens everything close-on-exec, and each child process holds
    only what it is meant to: a reader worker its socket (fd 3) and its device, a job its
    client's socket (fd 3), a password child its pipe (fd 3)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-fds-")
        self.broker = Broker(self.dir)
        self.broker.start()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.emu = Emulator(self.dir, "front")
        self.port = free_tcp_port()
        self.d.write_config(nfc_mqtt_config(self.dir, self.broker.port) +
                            http_section(self.port))
        self.job_log = os.path.join(self.dir, "job-fds.txt")
        wrapper = os.path.join(self.dir, "job-wrapper")
        with open(wrapper, "w") as f:
            f.write(JOB_WRAPPER % (self.job_log, PORTIERD, PORTIERD))
        os.chmod(wrapper, 0o755)
        self.d.start(env_extra={"PORTIER_JOB_PROGRAM": wrapper})
        self.d.seed()

    def tearDown(self):
        super().tearDown()
        self.broker.stop()
        self.emu.stop()

    def test_daemon_descriptors_are_close_on_exec(self):
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        pid = self.d.proc.pid
        leaky = {fd: t for fd, t in fd_targets(pid).items() if fd > 2 and not cloexec(pid, fd)}
        self.assertEqual(leaky, {})

    def reader_up(self):
        return next(r for r in self.d.status()["readers"] if r["name"] == "front")["health"] == "up"

    def test_reader_worker_holds_its_socket_and_device_only(self):
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        wait_until(lambda: reader_worker_pid(self.d.proc.pid), what="reader worker")
        for attempt in range(2):
            # Once the device is open (up), which is also when the sandbox is on.
            wait_until(self.reader_up, what="reader up")
            worker = reader_worker_pid(self.d.proc.pid)
            worker_fds_ok(self, fd_targets(worker))
            st = proc_status(worker)
            self.assertEqual((st["NoNewPrivs"], st["Seccomp"]), ("1", "2"), st)
            self.d.ctl("reader", "restart", "front")
            wait_until(lambda: reader_worker_pid(self.d.proc.pid) not in (None, worker),
                       what="a new reader worker")

    def job_fds(self):
        """The descriptors of each job process started so far, as the wrapper logged them."""
        with open(self.job_log) as f:
            return [eval(line) for line in f]

    def test_job_process_holds_its_client_socket_only(self):
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        self.d.ctl("statement", "--period", time.strftime("%Y-%m"))
        seen = self.job_fds()
        self.assertEqual(len(seen), 1, seen)
        fds = dict(seen[0])
        self.assertEqual(sorted(fds), ["0", "1", "2", "3"], fds)
        self.assertTrue(fds["3"].startswith("socket:"), fds)

    def test_whole_lists_are_read_by_job_processes(self):
        """The site's members, every card and the cards that still open by their UID take
        seconds to list at a big site (300,000 cards: a tap held 1.2 s): a job process reads
        them and answers, as it does statements; one member's cards stay on the loop."""
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        cards = self.d.ok({"cmd": "card.list"})["cards"]
        self.assertEqual(len(cards), 3, cards)
        members = self.d.ok({"cmd": "member.list", "filter": "active"})
        self.assertEqual(members["total"], 3, members)
        self.assertEqual(sorted(m["name"] for m in members["members"]), ["Alice", "Bob", "Carol"])
        one = self.d.ok({"cmd": "card.list", "member": "Alice"})["cards"]
        self.assertEqual([c["member"] for c in one], ["Alice"])
        report = self.d.ok({"cmd": "card.report"})["uid_only"]
        self.assertEqual(sorted(c["member"] for c in report), ["Alice", "Bob", "Carol"])
        seen = self.job_fds()
        self.assertEqual(len(seen), 3, seen)        # every card, the members, the report
        for fds in map(dict, seen):
            self.assertEqual(sorted(fds), ["0", "1", "2", "3"], fds)

    def test_period_job_holds_its_pipe_only(self):
        """A period's close reads the month in a job process too (the daemon's memory never
        holds a month of records): it holds the pipe it answers on, nothing else."""
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        last_month = time.strftime("%Y-%m", time.localtime(time.time() - 40 * 86400))
        reply = self.d.ok({"cmd": "period.close", "period": last_month})
        self.assertTrue(os.path.exists(reply["archive"]), reply)
        seen = self.job_fds()
        self.assertEqual(len(seen), 1, seen)
        fds = dict(seen[0])
        self.assertEqual(sorted(fds), ["0", "1", "2", "3"], fds)
        self.assertTrue(fds["3"].startswith("pipe:"), fds)

    def test_password_child_holds_its_pipe_only(self):
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="mqtt connected")
        pid = self.d.proc.pid
        found = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                for c in children(pid):
                    try:
                        with open("/proc/%d/cmdline" % c, "rb") as f:
                            cmd = f.read()
                        if b"portier-reader" in cmd.split(b"\0")[0]:
                            continue
                        # Right after fork() it still has everything; the last look
                        # before it exits is what it held while hashing.
                        last = None
                        while True:
                            try:
                                now = fd_targets(c)
                            except (FileNotFoundError, ProcessLookupError, PermissionError):
                                break
                            if not now:
                                break       # a zombie lists nothing
                            last = now
                            time.sleep(0.005)
                        if last is not None:
                            found.append(last)
                            return
                    except (FileNotFoundError, ProcessLookupError):
                        pass
        t = threading.Thread(target=watch)
        t.start()
        client = Client("http://127.0.0.1:%d" % self.port, self.dir)
        for i in range(20):
            if found:
                break
            # An unknown name is checked against a dummy hash, in a child all the same. A new
            # name each time: five failures for one name would be refused (429) unhashed.
            self.assertEqual(client.login("nobody%d" % i, "not-a-password").status, 401)
        stop.set()
        t.join()
        self.assertTrue(found, "never saw a password child")
        fds = found[0]
        self.assertEqual(sorted(fds), [0, 1, 2, 3], fds)
        self.assertTrue(fds[3].startswith("pipe:"), fds)


READER = os.path.join(BIN, "portier-reader")
SANDBOX_KILLED = "worker killed by its sandbox: forbidden system call (SIGSYS)"

# Runs the real worker, with --sandbox-selftest while the file SELFTEST exists next to it.
SELFTEST_WRAPPER = """#!/bin/sh
if [ -e "$(dirname "$0")/SELFTEST" ]; then
    exec %s --sandbox-selftest "$@"
fi
exec %s "$@"
"""


class ReaderSandboxTest(DaemonTest):
    """Issue 13.9: the reader worker keeps only its socket and its device, and once polling, a
    system call off its seccomp allow-list kills it with SIGSYS; portierd reports that and
    restarts it like any other worker death. The forbidden call is the worker's own
    --sandbox-selftest, which is harmless: it can only make the worker die."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-sandbox-")
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.emu = Emulator(self.dir, "front")

    def tearDown(self):
        super().tearDown()
        self.emu.stop()

    def reader(self):
        return next(r for r in self.d.status()["readers"] if r["name"] == "front")

    def run_worker(self, *args, stray=None, stdin=None):
        """The worker started by hand on the emulator, its fd 3 a socket to us, stray (an fd of
        ours) also open as its fd 9: (process, our end of the socket)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(ours.close)
        redirect = "exec 3<&%d" % theirs.fileno()
        keep = [theirs.fileno()]
        if stray is not None:
            redirect += " 9<&%d" % stray
            keep.append(stray)
        try:
            proc = subprocess.Popen(["/bin/bash", "-c", redirect + '; exec "$@"', "bash", READER] +
                                    list(args) + ["pn532_uart:" + self.emu.link, "20", "200"],
                                    pass_fds=keep, stdin=stdin, stderr=subprocess.DEVNULL)
        finally:
            theirs.close()
        ours.settimeout(10)
        # As portierd does first: the DESFire keys (none here: UID cards only, struct
        # reader_cmd of hw/reader_proto.h).
        ours.send(struct.pack("<BBBBII16s16sB16sB16s", 2, 1, 0, 0, 0, 0, b"", b"", 0, b"", 0,
                              b""))
        return proc, ours

    def test_worker_closes_what_it_inherits(self):
        """Without portierd's close_range (another parent, an older portierd): the worker
        closes by itself whatever it was given beyond its socket, and never reads stdin."""
        stray = os.open(os.path.join(self.dir, "stray"), os.O_WRONLY | os.O_CREAT, 0o600)
        self.addCleanup(os.close, stray)
        rd, wr = os.pipe()
        self.addCleanup(os.close, wr)
        try:
            proc, sock = self.run_worker(stray=stray, stdin=rd)
        finally:
            os.close(rd)
        try:
            hello = sock.recv(4096)
            self.assertEqual(hello[1], 1, hello[:4])            # HELLO: the device is open
            fds = fd_targets(proc.pid)
            worker_fds_ok(self, fds)
            self.assertEqual(fds[0], "/dev/null")
            st = proc_status(proc.pid)
            self.assertEqual((st["NoNewPrivs"], st["Seccomp"]), ("1", "2"), st)
        finally:
            proc.kill()
            proc.wait()

    def test_selftest_dies_of_sigsys(self):
        proc, sock = self.run_worker("--sandbox-selftest")
        self.assertEqual(proc.wait(timeout=20), -signal.SIGSYS)
        # It died before saying hello: nothing on the socket but its end.
        self.assertEqual(sock.recv(4096), b"")

    def test_forbidden_system_call_kills_the_worker_and_portierd_restarts_it(self):
        wrapper = os.path.join(self.dir, "reader-wrapper")
        with open(wrapper, "w") as f:
            f.write(SELFTEST_WRAPPER % (READER, READER))
        os.chmod(wrapper, 0o755)
        selftest = os.path.join(self.dir, "SELFTEST")
        open(selftest, "w").close()
        config = nfc_mqtt_config(self.dir, 1, "reader_worker = " + wrapper).replace(
            "[mqtt]\nenabled = true", "[mqtt]\nenabled = false")
        self.d.write_config(config)
        self.d.start()
        self.d.seed()

        # Every worker dies of SIGSYS once its sandbox is on; each is restarted, with back-off.
        wait_until(lambda: self.reader()["restarts"] >= 3, what="three restarts")
        r = self.reader()
        self.assertEqual((r["health"], r["last_error"]), ("failed", SANDBOX_KILLED), r)
        self.assertGreater(r["failed_since"], 0)
        log = self.d.log_text()
        self.assertIn("error: reader front: %s; restarting in 250 ms (restart 1)" % SANDBOX_KILLED, log)
        self.assertIn("error: reader front: %s; restarting in 500 ms (restart 2)" % SANDBOX_KILLED, log)
        code, out, _ = self.d.ctl("status")
        self.assertIn(SANDBOX_KILLED, out)
        self.assertIsNone(self.d.proc.poll())

        # Without the self-test, the next worker comes up and a card opens the door.
        os.unlink(selftest)
        self.d.ctl("reader", "restart", "front")
        wait_until(lambda: self.reader()["health"] == "up", what="reader up")
        self.assertEqual(self.reader()["last_error"], "")
        self.assertIn("reader front: back up", self.d.log_text())
        self.emu.cmd("insert uid=04A1B2C3")
        wait_until(lambda: self.d.relay_file("front"), what="front relay energised")


FULL_DISK_SECTIONS = """
[mqtt]
enabled = true
port = {port}

[reader front]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 30

[http]
listen = 127.0.0.1:{http}
"""


def fill(directory):
    """Fill the filesystem of directory; returns the filler's path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 512):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


class FullDiskTest(DaemonTest):
    """Issue 12.0: the state directory on a small tmpfs that fills up. Taps keep opening
    the door, but nobody is told a tap was recorded when it was not; the alarm shows in
    status, /healthz and MQTT; once space returns, the held taps are written and nothing is
    corrupt."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-full-")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", self.state], check=True)
        self.broker = Broker(self.dir)
        self.broker.start()
        self.port = free_tcp_port()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.d.write_config(build_config(self.dir, FULL_DISK_SECTIONS.format(
            port=self.broker.port, http=self.port)))
        self.d.start()
        self.d.seed()
        self.mqtt = Listener(self.broker.port, ["portier/#"])

    def tearDown(self):
        self.mqtt.close()
        super().tearDown()
        self.broker.stop()
        subprocess.run(["umount", "-l", self.state])

    def storage(self):
        return self.d.status()["storage"]

    def healthz(self):
        return Client("http://127.0.0.1:%d" % self.port, self.dir).get("/healthz")

    def test_full_disk_refuses_acknowledgements_keeps_doors_and_recovers(self):
        self.assertTrue(self.storage()["ok"])
        self.assertEqual(self.healthz().status, 200)
        filler = fill(self.state)

        replies = []
        for i in range(200):
            r = self.d.request({"cmd": "sim.tap", "reader": "front", "uid": "04A1B2C3"})
            replies.append(r)
            if i == 0:
                # The door opened for Alice all the same.
                self.assertTrue(self.d.relay_file("front"))
        refused = [r for r in replies if not r.get("ok")]
        acknowledged = [r for r in replies if r.get("ok")]
        self.assertGreater(len(refused), 150, replies[:3])
        for r in refused:
            self.assertEqual(r["code"], "not_recorded", r)
        # Acknowledged ids (if any made it before the disk was full) are never repeated.
        ids = [r["event_id"] for r in acknowledged]
        self.assertEqual(len(ids), len(set(ids)))

        st = self.storage()
        self.assertFalse(st["ok"], st)
        self.assertGreater(st["held_events"], 0, st)
        h = self.healthz()
        self.assertEqual(h.status, 503, h)
        self.assertIn("cannot record", h.text)
        wait_until(lambda: any(not json.loads(p).get("ok", True)
                               for p, retained in self.mqtt.topic("portier/test/storage")),
                   what="a storage alarm over MQTT")
        self.assertIn("storage: cannot write the database", self.d.log_text())

        # Space returns: the held taps are written, the alarm ends.
        os.unlink(filler)
        wait_until(lambda: self.storage()["ok"], what="storage recovered")
        self.assertEqual(self.storage()["held_events"], 0)
        self.assertEqual(self.healthz().status, 200)
        wait_until(lambda: any(json.loads(p).get("ok") for p, retained
                               in self.mqtt.topic("portier/test/storage")[-1:]),
                   what="the storage alarm cleared over MQTT")
        taps = [e for e in self.d.events() if e["kind"] == "tap"]
        self.assertEqual(len(taps), 200)
        # Every acknowledged id is still the row it was.
        rows = {e["id"] for e in taps}
        for i in ids:
            self.assertIn(i, rows)
        self.d.stop()
        db = self.d.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(db.execute("SELECT count(*) FROM access_events WHERE kind = 'tap'")
                         .fetchone()[0], 200)



SLOW_SYNC = os.path.join(BIN, "..", "lib", "portier-bench", "slow_sync.so")


def last_month():
    lt = time.localtime()
    year, month = (lt.tm_year, lt.tm_mon - 1) if lt.tm_mon > 1 else (lt.tm_year - 1, 12)
    return "%04d-%02d" % (year, month)


class SlowDiskTest(DaemonTest):
    """Nothing on the loop waits for the disk (issue 14.2): with every fsync made a second
    slower (tools/bench's shim), a door tapped while a period is being closed — its
    archive, signature and checksum each fsync'd, and the archive directory's name —
    opens while the close is still writing, and the close still ends with its files."""

    def test_tap_opens_the_door_while_a_period_close_syncs_its_archive(self):
        self.assertTrue(os.path.exists(SLOW_SYNC), SLOW_SYNC)
        self.d.seed()
        self.d.stop()
        self.d.start(env_extra={"LD_PRELOAD": os.path.realpath(SLOW_SYNC),
                                "PORTIER_SLOW_SYNC_MS": "1000"})
        period = last_month()
        closed = threading.Event()
        replies = []

        def close():
            replies.append(self.d.request({"cmd": "period.close", "period": period},
                                          timeout=120))
            closed.set()

        closer = threading.Thread(target=close)
        closer.start()
        # The close has begun its disk work: the archive directory is made first.
        wait_until(lambda: os.path.isdir(os.path.join(self.d.dir, "state", "archives")),
                   what="the archive directory")
        self.assertFalse(self.d.relay_file("front"))
        tapped = []
        tapper = threading.Thread(target=lambda: tapped.append(self.d.request(
            {"cmd": "sim.tap", "reader": "front", "uid": "04A1B2C3"}, timeout=120)))
        tapper.start()
        wait_until(lambda: self.d.relay_file("front"), timeout=120, what="the relay")
        # The last file the close writes is not there yet: the door did not wait for it.
        checksum = os.path.join(self.d.dir, "state", "archives",
                                "portier-test-%s.json.sha256" % period)
        self.assertFalse(os.path.exists(checksum), "the door opened once the close had synced")
        self.assertFalse(closed.is_set())
        closer.join(120)
        tapper.join(120)
        self.assertTrue(replies and replies[0]["ok"], replies)
        self.assertTrue(tapped and tapped[0]["granted"], tapped)
        archive = replies[0]["archive"]
        for suffix in ("", ".sig", ".sha256"):
            self.assertTrue(os.path.getsize(archive + suffix) > 0, archive + suffix)
        # The period is sealed: closing it again is refused.
        self.d.stop()
        self.d.start()
        self.assertEqual(self.d.request({"cmd": "period.close", "period": period})["code"],
                         "closed")


class PeriodArchiveFailureTest(DaemonTest):
    """A period close whose archive cannot be written (its files are written off the loop):
    the caller hears why, with the "io" code, and the period stays sealed, as documented
    (docs/billing.md: the seal is written before the files)."""

    def test_archive_that_cannot_be_written_is_reported_and_the_seal_kept(self):
        period = last_month()
        os.makedirs(os.path.join(self.d.dir, "state"), exist_ok=True)
        # A file where the archive directory should be: its files cannot be made.
        with open(os.path.join(self.d.dir, "state", "archives"), "w") as f:
            f.write("not a directory\n")
        reply = self.d.request({"cmd": "period.close", "period": period})
        self.assertEqual((reply["ok"], reply["code"]), (False, "io"), reply)
        self.assertIn("cannot write the archive in", reply["error"])
        self.assertIn("Not a directory", reply["error"])
        reply = self.d.request({"cmd": "period.close", "period": period})
        self.assertEqual(reply["code"], "closed")

BAD_PERIOD_JOB = """#!/usr/bin/python3
import os, sys
if sys.argv[1:3] == ["--job", "period"]:
    os.write(3, %r)
    sys.exit(%d)
os.execv(%r, [%r] + sys.argv[1:])
"""


class PeriodJobAnswerTest(DaemonTest):
    """The daemon reads what the period's job process hands back as any other input: an
    answer cut short, malformed or from a job that failed seals nothing, says so, and the
    period closes once a good job reads it."""

    def close_with(self, output, status):
        job = os.path.join(self.d.dir, "bad-job")
        with open(job, "w") as f:
            f.write(BAD_PERIOD_JOB % (output, status, PORTIERD, PORTIERD))
        os.chmod(job, 0o755)
        self.d.stop()
        self.d.start(env_extra={"PORTIER_JOB_PROGRAM": job})
        return self.d.request({"cmd": "period.close", "period": last_month()})

    def test_a_bad_reading_seals_nothing(self):
        for output, status, code in [
                (b"", 1, "internal"),                               # died before a line
                (b"not json\n{}", 0, "internal"),
                (b'{"ok": true, "usage_last": 1, "last_seq": 0}\n{}', 0, "internal"),
                (b'{"ok": true, "usage_last": 1, "last_seq": 0, "last_hash": "zz", '
                 b'"totals": {}}\n{}', 0, "internal"),
                (b'{"ok": true, "usage_last": 0, "last_seq": 0, "last_hash": "' +
                 b"00" * 32 + b'", "totals": {}}\n{"cut', 1, "internal"),  # cut short
                (b'{"ok": false, "code": "store", "error": "cannot read usage"}\n', 1,
                 "store")]:
            reply = self.close_with(output, status)
            self.assertEqual((reply["ok"], reply["code"]), (False, code), (output, reply))
            self.assertEqual(self.d.ok({"cmd": "period.list"})["periods"], [], output)
        self.d.stop()
        self.d.start()
        reply = self.d.ok({"cmd": "period.close", "period": last_month()})
        self.assertTrue(os.path.exists(reply["archive"]), reply)


if __name__ == "__main__":
    main()

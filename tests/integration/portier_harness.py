# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for integration tests: run the real portierd on simulated hardware in a
temporary directory, talk to it over its control socket, and look at relays through the
simulated back-end's state files. Standard library only; run with /usr/bin/python3."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("PORTIER_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
PORTIERD = os.path.join(BIN, "portierd")
PORTIERCTL = os.path.join(BIN, "portierctl")
# portierd runs its reader worker from the installed path unless told otherwise.
os.environ.setdefault("PORTIER_READER_WORKER", os.path.join(os.path.abspath(BIN), "portier-reader"))

# Waits are bounded but generous: tests check behaviour, never speed.
WAIT = 20.0


def free_tcp_port():
    """A TCP port free on 127.0.0.1 right now, for a daemon's [http] listen."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_section(port, extra=""):
    """An [http] section listening on 127.0.0.1:PORT, to append to a config."""
    return "\n[http]\nlisten = 127.0.0.1:%d\n%s\n" % (port, extra)


def make_test_ca(directory, name="test-ca"):
    """A test CA (ca.crt, ca.key) and a certificate it signed for 127.0.0.1 (server.crt,
    server.key) in directory, made with openssl: for the TLS servers tests start."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=directory,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
         "-keyout", "ca.key", "-out", "ca.crt")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
         "server.key", "-out", "server.csr")
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")


def children(pid):
    """The processes pid started (its main thread's children)."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def reader_workers(daemon_pid):
    """The pids of portierd's reader workers (portier-reader)."""
    out = []
    for c in children(daemon_pid):
        try:
            with open("/proc/%d/cmdline" % c, "rb") as f:
                if b"portier-reader" in f.read().split(b"\0")[0]:
                    out.append(c)
        except FileNotFoundError:
            pass                # gone meanwhile
    return out


def wait_until(predicate, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def build_config(directory, sections="", site="test", site_name=None,
                 timezone="Europe/Paris", daemon_extra="", site_extra=""):
    """A portierd config for a test: [site] (id, optional name, time zone, site_extra lines),
    [daemon] with its state, control socket and debug log in directory, [hardware] simulated
    with its relay files in directory/relays, then the test's own sections (readers, doors,
    [mqtt]...)."""
    text = "\n[site]\nid = %s\n" % site
    if site_name is not None:
        text += "name = %s\n" % site_name
    text += "timezone = %s\n" % timezone
    if site_extra:
        text += site_extra.rstrip("\n") + "\n"
    text += ("\n[daemon]\nstate_dir = {dir}/state\ncontrol_socket = {dir}/ctl.sock\n"
             "log_level = debug\n").format(dir=directory)
    if daemon_extra:
        text += daemon_extra.rstrip("\n") + "\n"
    text += ("\n[hardware]\nbackend = sim\ndebounce_ms = 0\n"
             "sim_state_dir = {dir}/relays\n").format(dir=directory)
    return text + "\n" + sections.lstrip("\n")


# Two readers and two doors: the site most tests run on.
BASE_SECTIONS = """
[reader front]
driver = sim

[reader back]
driver = sim

[door front]
reader = front
relay = 17
contact = 27
exit_button = 22
unlock_seconds = {unlock}
held_open_seconds = {held}

[door back]
reader = back
relay = 18
fail = safe
zone = fablab
unlock_seconds = {unlock}
"""


def base_config(directory, unlock=1, held=2):
    """The config of DaemonTest: base_config(d.dir, unlock=5) to change it."""
    return build_config(directory, BASE_SECTIONS.format(unlock=unlock, held=held),
                        site_name="Test site")


class Daemon:
    """A portierd process with its own directory, config, socket and notify socket."""

    def __init__(self, config_text=None, unlock=1, held=2, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="portier-test-")
        os.makedirs(os.path.join(self.dir, "relays"), exist_ok=True)
        self.config_path = os.path.join(self.dir, "portier.conf")
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.log_path = os.path.join(self.dir, "portierd.log")
        self.write_config(config_text or base_config(self.dir, unlock=unlock, held=held))
        self.proc = None
        self.notify = None

    def write_config(self, text):
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, env_extra=None):
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        self.notify.settimeout(WAIT)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        env.pop("JOURNAL_STREAM", None)
        env.update(env_extra or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PORTIERD, "-c", self.config_path], stdout=self.log,
                                     stderr=self.log, env=env)
        self.wait_notify("READY=1")
        return self

    def wait_notify(self, word):
        """Read sd_notify datagrams until one contains word; returns all seen."""
        seen = []
        deadline = time.monotonic() + WAIT
        self.notify.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                if self.proc.poll() is not None:
                    break       # it died: no need to wait for the deadline
                continue
            seen.append(msg)
            if word in msg.split("\n"):
                return seen
            if self.proc.poll() is not None:
                break
        raise AssertionError("no %s from portierd (got %r); log:\n%s" % (word, seen, self.log_text()))

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def request(self, obj, timeout=WAIT):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.socket)
        s.sendall((json.dumps(obj) + "\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data)

    def ok(self, obj):
        reply = self.request(obj)
        if not reply.get("ok"):
            raise AssertionError("request %r failed: %r" % (obj, reply))
        return reply

    def ctl(self, *args, check=True):
        """Run portierctl; returns (exit code, stdout, stderr)."""
        p = subprocess.run([PORTIERCTL, "-s", self.socket] + list(args), capture_output=True,
                           text=True, timeout=WAIT)
        if check and p.returncode != 0:
            raise AssertionError("portierctl %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p.returncode, p.stdout, p.stderr

    def kill9_mid_burst(self, under_way, uid="04A1B2C3"):
        """Tap uid as fast as the daemon answers until under_way() holds, then kill -9 the
        daemon mid-burst. Returns the ids of the taps it had committed (access_events); the
        daemon is left stopped."""
        import threading
        stop = threading.Event()

        def tapper():
            while not stop.is_set():
                try:
                    self.tap(uid)
                except (OSError, ValueError, AssertionError):
                    return
        t = threading.Thread(target=tapper)
        t.start()
        try:
            wait_until(under_way, what="burst under way")
        finally:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            stop.set()
            t.join(timeout=WAIT)
        db = self.db()
        try:
            return [r[0] for r in db.execute("SELECT id FROM access_events WHERE kind = 'tap'")]
        finally:
            db.close()

    def web_session(self, port, name="boss", role="manager"):
        """A browser signed in to the web page on 127.0.0.1:PORT as a new account name of
        role: a urllib opener with a cookie jar."""
        import re
        import urllib.parse
        import urllib.request
        password = "correct horse battery staple"
        self.ctl("account", "add", name, "--role", role)
        p = subprocess.run([PORTIERCTL, "-s", self.socket, "account", "passwd", name,
                            "--password-stdin"], input=password + "\n", capture_output=True,
                           text=True, timeout=WAIT)
        if p.returncode != 0:
            raise AssertionError("account passwd: %s" % p.stderr)
        web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        base = "http://127.0.0.1:%d" % port
        login = web.open(base + "/login", timeout=WAIT).read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
        web.open(base + "/login", data=urllib.parse.urlencode(
            {"csrf": csrf, "name": name, "password": password}).encode(), timeout=WAIT).read()
        web.base = base
        return web

    def ctl_json(self, *args):
        return json.loads(self.ctl(*(list(args) + ["--json"]))[1])

    def status(self):
        return self.ok({"cmd": "status"})

    def door(self, name):
        return next(d for d in self.status()["doors"] if d["name"] == name)

    def relay_file(self, door):
        """The relay state as the simulated hardware last saw it: True = energised."""
        with open(os.path.join(self.dir, "relays", door + ".relay")) as f:
            return f.read().strip() == "1"

    def events(self, **kw):
        return self.ok(dict({"cmd": "events", "limit": 0}, **kw))["events"]

    def db(self):
        return sqlite3.connect(os.path.join(self.dir, "state", "portier.db"))

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.notify:
            self.notify.close()
            self.notify = None
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None

    def seed(self):
        """A plan open always, one for the fablab only, and three members with cards."""
        self.ok({"cmd": "plan.add", "name": "open", "zones": "*", "hours": "always"})
        self.ok({"cmd": "plan.add", "name": "cowork", "zones": "main", "hours": "always"})
        alice = self.ok({"cmd": "member.add", "name": "Alice", "plan": "open"})["id"]
        bob = self.ok({"cmd": "member.add", "name": "Bob", "plan": "cowork"})["id"]
        carol = self.ok({"cmd": "member.add", "name": "Carol", "plan": "open"})["id"]
        self.ok({"cmd": "card.add", "member": str(alice), "uid": "04A1B2C3"})
        self.ok({"cmd": "card.add", "member": str(bob), "uid": "04B0B0B0"})
        self.ok({"cmd": "card.add", "member": str(carol), "uid": "04C0C0C0"})
        return alice, bob, carol

    def tap(self, uid, reader="front", hold=False):
        return self.ok({"cmd": "sim.tap", "reader": reader, "uid": uid, "hold": hold})


class DaemonTest(unittest.TestCase):
    """Starts a fresh daemon per test; keeps its directory and log when a test fails."""
    unlock = 1
    held = 2

    def setUp(self):
        self.d = Daemon(unlock=self.unlock, held=self.held).start()

    def tearDown(self):
        self.d.stop()
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            # Keep the evidence next to the failure.
            print("\n--- portierd log (%s), last lines ---\n%s" % (
                self.d.dir, "\n".join(self.d.log_text().splitlines()[-40:])))
        else:
            shutil.rmtree(self.d.dir, ignore_errors=True)


def main():
    unittest.main(verbosity=2)

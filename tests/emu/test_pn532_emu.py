#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""End-to-end test of pn532-emu.

usage: test_pn532_emu.py /path/to/pn532-emu

Runs Debian's libnfc 1.8.0 tools (nfc-list from libnfc-bin, nfc-poll from
libnfc-examples) and a raw PN532 client written here against the emulator,
and asserts on what they report. Standard library only. Every wait is
bounded; timeouts are generous so that only a broken behaviour, never a slow
machine, fails a test. Exit status 0 only when every test passed.

libnfc isolation: LIBNFC_DEVICE replaces any device from /etc/nfc/libnfc.conf,
LIBNFC_AUTO_SCAN / LIBNFC_INTRUSIVE_SCAN / LIBNFC_LOG_LEVEL override the
corresponding settings; libnfc 1.8.0 has no variable to skip the file itself.
"""

import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

NFC_LIST = shutil.which("nfc-list") or "/usr/bin/nfc-list"
NFC_POLL = shutil.which("nfc-poll") or "/usr/bin/nfc-poll"
TOOL_TIMEOUT = 30       # seconds for one nfc-list / nfc-poll run
WAIT = 10               # seconds for any other condition to come true

ACK = bytes([0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00])
NACK = bytes([0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00])
ERROR_FRAME = bytes([0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00])
WAKEUP = bytes([0x55, 0x55] + [0x00] * 14)

children = []           # every process we start, killed at the end


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(pred, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise TestFailure("timed out waiting for " + what)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    children.append(p)
    return p


def frame(body):
    """Host → chip frame for body = D4 CC data…, normal or extended."""
    n = len(body)
    if n > 255:
        hdr = bytes([0x00, 0x00, 0xFF, 0xFF, 0xFF, n >> 8, n & 0xFF, (-(n >> 8) - n) & 0xFF])
    else:
        hdr = bytes([0x00, 0x00, 0xFF, n, (-n) & 0xFF])
    return hdr + bytes(body) + bytes([(-sum(body)) & 0xFF, 0x00])


class Emulator:
    """One pn532-emu process with its control connection."""

    def __init__(self, binary, workdir, name, extra=()):
        self.link = os.path.join(workdir, name + ".tty")
        self.ctl_path = os.path.join(workdir, name + ".ctl")
        self.log = open(os.path.join(workdir, name + ".log"), "wb")
        self.proc = spawn([binary, "--link", self.link, "--control", self.ctl_path, "-v", *extra],
                          stdout=subprocess.PIPE, stderr=self.log)
        self._out = b""
        self.slave = self.read_line(WAIT)
        check(self.slave.startswith("/dev/pts/"), "first stdout line is not a pty: %r" % self.slave)
        check(os.path.realpath(self.link) == self.slave, "--link does not point at the slave")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(self.ctl_path)
        self._ctl_buf = b""

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TestFailure("no line on the emulator's stdout")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise TestFailure("emulator closed stdout (exited?)")
            self._out += chunk
        line, self._out = self._out.split(b"\n", 1)
        return line.decode()

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self):
        while b"\n" not in self._ctl_buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise TestFailure("control socket closed")
            self._ctl_buf += chunk
        line, self._ctl_buf = self._ctl_buf.split(b"\n", 1)
        return line.decode()

    def ctl(self, line):
        self.send_raw(line.encode() + b"\n")
        return self.reply()

    def ok(self, line):
        r = self.ctl(line)
        check(r.startswith("ok"), "%r → %r" % (line, r))
        return r

    def status(self):
        fields = dict(kv.split("=", 1) for kv in self.ok("status").split()[1:])
        return fields

    def env(self):
        env = dict(os.environ)
        env.pop("LIBNFC_DEFAULT_DEVICE", None)
        env.update(LIBNFC_AUTO_SCAN="false", LIBNFC_INTRUSIVE_SCAN="false", LIBNFC_LOG_LEVEL="1",
                   LIBNFC_DEVICE="pn532_uart:" + self.link)
        return env

    def wait_idle(self):
        """Until no client holds the port: the next tool gets a fresh session."""
        wait_until(lambda: self.status()["client"] == "0", "the client to close the port")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        try:
            self.ctl("quit")
            self.proc.wait(timeout=WAIT)
        except Exception:
            pass
        self.sock.close()
        self.log.close()


class Tool:
    """A running libnfc tool whose output we can wait for."""

    def __init__(self, argv, env):
        self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.out = b""
        self.eof = False

    def _pump(self, timeout):
        if self.eof:
            time.sleep(timeout)
        elif select.select([self.proc.stdout], [], [], timeout)[0]:
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            self.out += chunk
            self.eof = not chunk

    def wait_for(self, text, timeout=TOOL_TIMEOUT):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            if self.eof or time.monotonic() > deadline:
                raise TestFailure("%s never printed %r; output:\n%s" % (self.proc.args[0], text, self.text()))
            self._pump(0.1)
        return self.text()

    def finish(self, timeout=TOOL_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("%s did not exit; output:\n%s" % (self.proc.args[0], self.text()))
            self._pump(0.1)
        self.proc.wait(timeout=WAIT)
        return self.proc.returncode, self.text()

    def text(self):
        return self.out.decode(errors="replace")


def run_tool(emu, *argv):
    t = Tool(list(argv), emu.env())
    rc, out = t.finish()
    emu.wait_idle()
    return rc, out


def parse_targets(text):
    """The ISO14443A targets nfc-list / nfc-poll printed, as upper-case hex."""
    labels = (("atqa", "ATQA (SENS_RES):"), ("uid", "UID (NFCID1):"), ("sak", "SAK (SEL_RES):"), ("ats", "ATS:"))
    targets = []
    for block in text.split("ISO/IEC 14443A (106 kbps) target:")[1:]:
        t = {}
        for key, label in labels:
            m = re.search(re.escape(label) + r"((?:[ \t]+[0-9a-fA-F]{2})+)", block)
            if m:
                t[key] = "".join(m.group(1).split()).upper()
        targets.append(t)
    return targets


def opened(out):
    return "NFC device: user defined device opened" in out


class RawClient:
    """Speaks PN532 frames straight to the pty slave, as libnfc would."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.buf = b""

    def close(self):
        os.close(self.fd)

    def write(self, data):
        os.write(self.fd, data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return False
            self.buf += os.read(self.fd, 4096)
        return True

    def drain(self, quiet=0.2):
        """Forget everything the chip says until it is quiet for `quiet` s."""
        while select.select([self.fd], [], [], quiet)[0]:
            if not os.read(self.fd, 4096):
                break
        self.buf = b""

    def read_frame(self, timeout=2.0):
        """('ack'|'nack'|'error', None) or ('frame', body), or None on silence."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._fill(2, deadline):
                return None
            i = self.buf.find(b"\x00\xff")
            if i < 0:
                self.buf = self.buf[-1:]
                continue
            self.buf = self.buf[i:]
            break
        if not self._fill(4, deadline):
            raise TestFailure("truncated frame header %s" % self.buf.hex())
        lm, ll = self.buf[2], self.buf[3]
        if (lm, ll) == (0x00, 0xFF):
            self.buf = self.buf[4:]
            return ("ack", None)
        if (lm, ll) == (0xFF, 0x00):
            self.buf = self.buf[4:]
            return ("nack", None)
        if (lm, ll) == (0x01, 0xFF):
            check(self._fill(7, deadline) and self.buf[4:7] == b"\x7f\x81\x00", "bad error frame")
            self.buf = self.buf[7:]
            return ("error", None)
        if (lm, ll) == (0xFF, 0xFF):
            check(self._fill(7, deadline), "truncated extended header")
            n = self.buf[4] << 8 | self.buf[5]
            check((self.buf[4] + self.buf[5] + self.buf[6]) & 0xFF == 0, "extended LCS wrong")
            hdr = 7
        else:
            n = lm
            check((lm + ll) & 0xFF == 0, "LCS wrong in %s" % self.buf.hex())
            hdr = 4
        check(self._fill(hdr + n + 2, deadline), "truncated frame")
        body = self.buf[hdr:hdr + n]
        check((sum(body) + self.buf[hdr + n]) & 0xFF == 0, "DCS wrong")
        check(self.buf[hdr + n + 1] == 0, "postamble missing")
        self.buf = self.buf[hdr + n + 2:]
        return ("frame", body)

    def expect_ack(self):
        f = self.read_frame()
        check(f == ("ack", None), "expected ACK, got %r" % (f,))

    def command(self, body, prefix=b""):
        """Sends D4 body…, expects ACK and a D5 (CC+1) reply; returns its data."""
        self.write(prefix + frame(bytes([0xD4]) + bytes(body)))
        self.expect_ack()
        f = self.read_frame()
        check(f is not None and f[0] == "frame", "no reply to %s: %r" % (bytes(body).hex(), f))
        check(f[1][0] == 0xD5 and f[1][1] == body[0] + 1, "reply %s does not answer %02X" % (f[1].hex(), body[0]))
        return bytes(f[1][2:])

    def silent(self, seconds):
        return self.read_frame(timeout=seconds) is None


def wakeups(pid):
    """Context switches so far: an idle poll loop makes none."""
    with open("/proc/%d/status" % pid) as f:
        return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)


# ---- tests -------------------------------------------------------------------

def test_no_card_nfc_list(emu, **_):
    emu.ok("remove")
    rc, out = run_tool(emu, NFC_LIST, "-v")
    check(rc == 0 and opened(out), "nfc-list did not open the emulator:\n" + out)
    check("0 ISO14443A passive target(s) found" in out, "expected no ISO14443A target:\n" + out)
    for kind in ("Felica (212 kbps)", "Felica (424 kbps)", "ISO14443B", "ISO14443B'", "ISO14443B-2 ST SRx",
                 "ISO14443B-2 ASK CTx", "ISO14443B iClass", "ISO14443A-3 Jewel", "ISO14443A-2 NFC Barcode"):
        check("0 %s passive target(s) found" % kind in out, "probe %s did not report 0 targets:\n%s" % (kind, out))


CARDS = [
    # (insert arguments, what nfc-list must print)
    ("uid=04A1B2C3", dict(uid="04A1B2C3", atqa="0004", sak="08")),
    ("uid=04112233445566", dict(uid="04112233445566", atqa="0044", sak="00")),
    ("uid=0455667788990A ats=757781028011", dict(uid="0455667788990A", atqa="0044", sak="20", ats="757781028011")),
    ("uid=DEADBEEF atqa=0344 sak=20 ats=78807002", dict(uid="DEADBEEF", atqa="0344", sak="20", ats="78807002")),
    ("uid=0102030405060708090A", dict(uid="0102030405060708090A", atqa="0044", sak="00")),
]


def test_cards_nfc_list(emu, **_):
    for args, want in CARDS:
        emu.ok("insert " + args)
        rc, out = run_tool(emu, NFC_LIST)
        check(rc == 0 and opened(out), "nfc-list failed for %s:\n%s" % (args, out))
        targets = parse_targets(out)
        check(targets == [want], "insert %s: nfc-list saw %r, want [%r]\n%s" % (args, targets, want, out))
    emu.ok("remove")


def test_cards_nfc_poll_presence(emu, **_):
    """nfc-poll finds the card, its presence check keeps seeing it, and
    reports it gone after `remove`: MIFARE Classic re-select, Ultralight READ,
    ISO-DEP R(NAK) in turn."""
    for args, want in CARDS[:3]:
        emu.ok("insert " + args)
        t = Tool([NFC_POLL], emu.env())
        out = t.wait_for("Waiting for card removing")
        check(parse_targets(out) == [want], "insert %s: nfc-poll saw %r\n%s" % (args, parse_targets(out), out))
        time.sleep(0.5)
        check(t.proc.poll() is None, "nfc-poll thinks the card left while it is there:\n" + t.text())
        emu.ok("remove")
        rc, out = t.finish()
        check(rc == 0 and "Target Released" in out and "done." in out,
              "nfc-poll did not see the card leave (%s):\n%s" % (args, out))
        emu.wait_idle()


def test_nfc_poll_waits_for_card(emu, **_):
    """InAutoPoll is parked while the field is empty and answered at insert."""
    emu.ok("remove")
    t = Tool([NFC_POLL], emu.env())
    wait_until(lambda: emu.status()["pending"] == "InAutoPoll", "nfc-poll's InAutoPoll to be parked")
    time.sleep(0.3)
    check(t.proc.poll() is None, "nfc-poll gave up with an empty field:\n" + t.text())
    emu.ok("insert uid=0A0B0C0D")
    out = t.wait_for("Waiting for card removing", timeout=WAIT)
    check(parse_targets(out) == [dict(uid="0A0B0C0D", atqa="0004", sak="08")], "wrong target:\n" + out)
    emu.ok("remove")
    rc, out = t.finish()
    check(rc == 0 and "done." in out, "nfc-poll did not finish:\n" + out)
    emu.wait_idle()


def test_nfc_poll_no_target(binary, workdir, **_):
    """Polling time runs out with no card: "No target found." (a second
    emulator whose 150 ms polling unit is 1 ms, so nfc-poll's 36 s are 0.3 s)."""
    fast = Emulator(binary, workdir, "fast", ["--poll-period", "1"])
    try:
        rc, out = run_tool(fast, NFC_POLL)
        check(rc == 0 and "No target found." in out, "nfc-poll with no card:\n" + out)
    finally:
        fast.stop()


def test_reconnect(emu, **_):
    """Clients come and go; each new one finds a working chip, and an idle
    emulator does not spin on the master's POLLHUP."""
    emu.ok("insert uid=11223344")
    before = int(emu.status()["sessions"])
    for _ in range(3):
        rc, out = run_tool(emu, NFC_LIST, "-t", "1")
        check(rc == 0 and parse_targets(out) == [dict(uid="11223344", atqa="0004", sak="08")],
              "nfc-list after reconnect:\n" + out)
    check(int(emu.status()["sessions"]) == before + 3, "expected 3 more sessions: %r" % emu.status())

    # A client that leaves half a frame and a parked command behind.
    c = RawClient(emu.slave)
    c.write(WAKEUP)
    c.command([0x14, 0x01])
    c.command([0x32, 0x05, 0xFF, 0xFF, 0xFF])
    emu.ok("remove")
    c.write(frame([0xD4, 0x4A, 0x01, 0x00]))
    c.expect_ack()
    c.write(frame([0xD4, 0x02])[:5])
    check(emu.status()["pending"] == "InListPassiveTarget", "InListPassiveTarget not parked")
    c.close()
    emu.wait_idle()
    check(emu.status()["pending"] == "none", "the closed session kept its pending command")
    emu.ok("insert uid=11223344")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(rc == 0 and len(parse_targets(out)) == 1, "nfc-list after an abandoned session:\n" + out)

    # No client now: the master must not wake the loop (POLLHUP) over and over.
    w0 = wakeups(emu.proc.pid)
    time.sleep(1.0)
    woke = wakeups(emu.proc.pid) - w0
    check(woke < 20, "idle emulator woke %d times in 1 s: spinning on POLLHUP?" % woke)


def test_raw_protocol(emu, **_):
    emu.ok("remove")
    c = RawClient(emu.slave)
    try:
        check(c.command([0x14, 0x01], prefix=WAKEUP) == b"", "SAMConfiguration reply")
        check(c.command([0x02]) == bytes([0x32, 0x01, 0x06, 0x07]), "GetFirmwareVersion")
        c.write(NACK)
        f = c.read_frame()
        check(f == ("frame", bytes([0xD5, 0x03, 0x32, 0x01, 0x06, 0x07])), "NACK did not resend: %r" % (f,))

        for bad in ([0xD4, 0xFE], [0xD5, 0x02], [0xD4, 0x12], [0xD4, 0x4A, 0x05, 0x00], [0xD4]):
            c.write(frame(bad))
            c.expect_ack()
            check(c.read_frame() == ("error", None), "no error frame for %s" % bytes(bad).hex())

        payload = bytes(random.Random(7).randrange(256) for _ in range(258))
        check(c.command(bytes([0x00, 0x00]) + payload) == b"\x00" + payload, "extended frame echo")

        c.command([0x08, 0x63, 0x05, 0xAB, 0x63, 0x3C, 0x10])
        check(c.command([0x06, 0x63, 0x05, 0x63, 0x3C]) == bytes([0xAB, 0x10]), "register round trip")

        # Retries infinite: InListPassiveTarget waits for a card ...
        c.command([0x32, 0x05, 0xFF, 0xFF, 0xFF])
        c.write(frame([0xD4, 0x4A, 0x01, 0x00]))
        c.expect_ack()
        check(c.silent(0.3), "InListPassiveTarget answered with an empty field")
        emu.ok("insert uid=04A1B2C3")
        f = c.read_frame()
        check(f == ("frame", bytes.fromhex("D54B0101000408" "0404A1B2C3")), "parked select answer: %r" % (f,))
        # ... unless the host's ACK aborts it.
        emu.ok("remove")
        c.write(frame([0xD4, 0x4A, 0x01, 0x00]))
        c.expect_ack()
        c.write(ACK)
        wait_until(lambda: emu.status()["pending"] == "none", "host ACK to drop the command")
        emu.ok("insert uid=04A1B2C3")
        check(c.silent(0.3), "aborted command was answered")
        # ... or a new command replaces it.
        emu.ok("remove")
        c.write(frame([0xD4, 0x4A, 0x01, 0x00]))
        c.expect_ack()
        check(c.command([0x02]) == bytes([0x32, 0x01, 0x06, 0x07]), "command after a parked one")
        check(emu.status()["pending"] == "none", "a new command did not abort the parked one")
        emu.ok("insert uid=04A1B2C3")
        check(c.silent(0.3), "replaced command was answered")
        # Retries finite: "no target" at once.
        emu.ok("remove")
        c.command([0x32, 0x05, 0x00, 0x01, 0x02])
        check(c.command([0x4A, 0x01, 0x00]) == b"\x00", "finite retries, no card")

        # MIFARE Classic presence: re-select by UID (cascaded for 7 bytes).
        emu.ok("insert uid=04A1B2C3")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3])[:1] == b"\x01", "re-select by UID")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC4]) == b"\x00", "re-select, wrong UID")
        emu.ok("insert uid=04112233445566 sak=08")
        check(c.command(bytes.fromhex("4A0100" "8804112233445566"))[:1] == b"\x01", "cascaded re-select")

        # Ultralight presence: READ page 0 through InDataExchange.
        emu.ok("insert uid=04112233445566")
        check(c.command([0x4A, 0x01, 0x00])[:1] == b"\x01", "select Ultralight")
        r = c.command([0x40, 0x01, 0x30, 0x00])
        check(len(r) == 17 and r[0] == 0 and r[1:4] == bytes([0x04, 0x11, 0x22]) and r[4] == 0x88 ^ 0x04 ^ 0x11 ^ 0x22,
              "Ultralight READ: %s" % r.hex())
        emu.ok("remove")
        check(c.command([0x40, 0x01, 0x30, 0x00]) == b"\x01", "READ of a removed card must time out")

        # ISO-DEP: ATS (with TL) in the select answer, R(NAK) ping.
        emu.ok("insert uid=04A1B2C3 ats=757781028011")
        c.command([0x12, 0x14])
        r = c.command([0x4A, 0x01, 0x00])
        check(r == bytes.fromhex("0101" "0004" "20" "04" "04A1B2C3" "07" "757781028011"), "ISO-DEP select: %s" % r.hex())
        check(c.command([0x42, 0xB2])[:1] == b"\x00", "ISO-DEP ping with the card present")
        emu.ok("remove")
        check(c.command([0x42, 0xB2]) == b"\x01", "ISO-DEP ping with the card gone")
        check(c.command([0x42, 0x06, 0x00]) == b"\x01", "InCommunicateThru probe must see no card")

        # InAutoPoll: ISO14443-4 type with ATS first, else MIFARE; empty field
        # → "none" after PollNr × Period × 150 ms × types.
        emu.ok("insert uid=04A1B2C3 ats=7577")
        check(c.command([0x60, 0x01, 0x01, 0x20, 0x10]) == bytes.fromhex("0120" "0C" "010004200404A1B2C3037577"),
              "InAutoPoll ISO-DEP")
        emu.ok("insert uid=04A1B2C3")
        check(c.command([0x60, 0x01, 0x01, 0x20, 0x10]) == bytes.fromhex("0110" "09" "010004080404A1B2C3"),
              "InAutoPoll MIFARE")
        emu.ok("remove")
        t0 = time.monotonic()
        check(c.command([0x60, 0x02, 0x01, 0x10]) == b"\x00", "InAutoPoll with no card")
        check(time.monotonic() - t0 >= 0.25, "InAutoPoll gave up before 2 × 150 ms")

        check(c.command([0x44, 0x00]) == b"\x00", "InDeselect")
        check(c.command([0x52, 0x00]) == b"\x00", "InRelease")
        check(c.command([0x32, 0x01, 0x00]) == b"", "RF off")
        check(c.command([0x16, 0xF0]) == b"\x00", "PowerDown")
        check(c.command([0x14, 0x01], prefix=WAKEUP) == b"", "wake up after PowerDown")
    finally:
        c.close()
    emu.wait_idle()


def test_garbage_input(emu, **_):
    """Line noise and malformed frames never crash or wedge the emulator."""
    before = emu.status()
    c = RawClient(emu.slave)
    try:
        rnd = random.Random(1234)
        noise = bytes(rnd.randrange(256) for _ in range(8192))
        malformed = [
            bytes.fromhex("0000FF05FAD40200000000"),          # DCS wrong
            bytes.fromhex("0000FF05F0D402"),                  # LCS wrong
            bytes.fromhex("0000FF0000"),                      # LEN 0
            bytes.fromhex("0000FFFFFF0FFFF2D402"),            # extended, far too long
            bytes.fromhex("0000FF80"),                        # truncated header
            bytes.fromhex("0000FF20E0D402"),                  # LEN 32, never completed
        ]
        for i in range(0, len(noise), 512):
            c.write(noise[i:i + 512])
        for m in malformed:
            c.write(m)
        time.sleep(0.3)                                       # past the stall timeout
        c.drain()
        check(emu.alive(), "emulator died on garbage")
        check(c.command([0x02], prefix=WAKEUP) == bytes([0x32, 0x01, 0x06, 0x07]), "chip unusable after garbage")
    finally:
        c.close()
    emu.wait_idle()
    after = emu.status()
    check(int(after["rx_bad"]) > int(before["rx_bad"]) and int(after["rx_noise"]) > int(before["rx_noise"]),
          "garbage not counted: %r" % after)
    emu.ok("insert uid=04A1B2C3")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(rc == 0 and len(parse_targets(out)) == 1, "nfc-list after garbage:\n" + out)


def test_faults(emu, **_):
    emu.ok("insert uid=04A1B2C3")
    for fault in ("drop", "garbage"):
        emu.ok("fault " + fault)
        rc, out = run_tool(emu, NFC_LIST, "-t", "1")
        check(not opened(out) and "Unable to open NFC device" in out, "fault %s did not break nfc_open:\n%s" % (fault, out))
        check(emu.status()["fault"] == "none", "fault %s is not one-shot" % fault)
        rc, out = run_tool(emu, NFC_LIST, "-t", "1")
        check(opened(out) and len(parse_targets(out)) == 1, "no recovery after fault %s:\n%s" % (fault, out))

    emu.ok("fault mute")
    for _ in range(2):
        rc, out = run_tool(emu, NFC_LIST, "-t", "1")
        check(not opened(out) and "Unable to open NFC device" in out, "nfc-list worked on a mute chip:\n" + out)
    check(int(emu.status()["tx_suppressed"]) > 0, "mute suppressed nothing")
    emu.ok("fault none")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(opened(out) and len(parse_targets(out)) == 1, "no recovery after fault none:\n" + out)


def test_hangup(emu, **_):
    """`fault hangup` = reader unplugged and plugged back in: a waiting
    client fails, the --link path vanishes, then a new pty appears there."""
    emu.ok("remove")
    t = Tool([NFC_POLL], emu.env())
    wait_until(lambda: emu.status()["pending"] == "InAutoPoll", "nfc-poll to wait for a card")
    r = emu.ok("fault hangup 700")
    check("reopen_ms=700" in r, r)
    rc, out = t.finish()
    check(rc != 0 and "Input / Output Error" in out, "nfc-poll survived the hangup:\n" + out)
    check(emu.status()["up"] == "0" and not os.path.lexists(emu.link), "pty still there during the hangup")
    check(emu.ctl("fault hangup").startswith("error"), "second hangup while down accepted")
    emu.ok("insert uid=CAFEBABE")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(not opened(out), "nfc-list opened an unplugged reader:\n" + out)
    new_slave = emu.read_line(WAIT)
    check(new_slave.startswith("/dev/pts/"), "new pty path not printed: %r" % new_slave)
    wait_until(lambda: emu.status()["up"] == "1", "the pty to come back")
    check(os.path.realpath(emu.link) == new_slave, "--link does not point at the new pty")
    emu.slave = new_slave
    check(emu.status()["hangups"] == "1", "hangup not counted")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(opened(out) and parse_targets(out) == [dict(uid="CAFEBABE", atqa="0004", sak="08")],
          "reader did not come back:\n" + out)


def test_control_rejects_malformed(emu, **_):
    bad = [
        b"", b"bogus", b"insert", b"insert uid=123", b"insert uid=zz112233", b"insert uid=0102030405",
        b"insert uid=04A1B2C3 sak=08 ats=7577", b"insert uid=04A1B2C3 foo=1", b"insert uid=04A1B2C3 uid=04A1B2C3",
        b"insert uid=04A1B2C3 atqa=04", b"insert uid=04A1B2C3 ats=" + b"00" * 33, b"insert 04A1B2C3",
        b"remove now", b"status please", b"fault", b"fault explode", b"fault mute now", b"fault hangup -1",
        b"fault hangup 99999999", b"quit now", b"insert\x01uid=04A1B2C3", b"insert uid=04A1\x00B2C3",
        b"a b c d e f g h i j", b"x" * 5000,
    ]
    before = emu.status()
    for line in bad:
        emu.send_raw(line + b"\n")
        r = emu.reply()
        check(r.startswith("error "), "%r accepted: %r" % (line[:40], r))
    after = emu.status()
    check(after["card"] == before["card"] and after["fault"] == "none", "a rejected line changed state: %r" % after)
    # Lines split across writes, CRLF endings and several per write are fine.
    emu.send_raw(b"sta")
    time.sleep(0.05)
    emu.send_raw(b"tus\r\nremove\ninsert uid=04A1B2C3\n")
    check(emu.reply().startswith("ok pty="), "split status")
    check(emu.reply() == "ok removed", "batched remove")
    check(emu.reply().startswith("ok inserted uid=04A1B2C3 atqa=0004 sak=08"), "batched insert")
    # Too many clients get an error and are closed; the rest keep working.
    extra = []
    try:
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(WAIT)
            s.connect(emu.ctl_path)
            extra.append(s)
        # Only the rejected client is told anything unasked.
        rejected = select.select(extra, [], [], WAIT)[0]
        check(len(rejected) == 1 and rejected[0].recv(4096) == b"error too many control clients\n",
              "9th control client not rejected")
        for s in extra:
            if s is not rejected[0]:
                s.sendall(b"status\n")
                check(s.recv(4096).startswith(b"ok pty="), "8th control client does not work")
    finally:
        for s in extra:
            s.close()
    check(emu.alive() and emu.status()["card"] == "04A1B2C3", "emulator unwell after control abuse")


def field(emu):
    """The emulator's field as [(UID, state)], in the order the cards entered it."""
    f = emu.status()["field"]
    return [] if f == "none" else [tuple(c.split(":")) for c in f.split(",")]


CLASSIC_A = dict(uid="04A1B2C3", atqa="0004", sak="08")
CLASSIC_B = dict(uid="0A0B0C0D", atqa="0004", sak="08")
ULTRALIGHT = dict(uid="04112233445566", atqa="0044", sak="00")


def test_two_cards_nfc_list(emu, **_):
    """nfc-list lists every card in the field (libnfc selects one, deselects
    it — HLTA — and selects again until nothing answers), in the order the
    cards entered the field; `add` and `remove uid=` change one card."""
    emu.ok("insert uid=04A1B2C3 uid=04112233445566")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(rc == 0 and "2 ISO14443A passive target(s) found:" in out, "nfc-list with two cards:\n" + out)
    check(parse_targets(out) == [CLASSIC_A, ULTRALIGHT], "two cards, insertion order:\n" + out)

    emu.ok("insert uid=04112233445566 uid=04A1B2C3")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(parse_targets(out) == [ULTRALIGHT, CLASSIC_A], "the card that entered first is listed first:\n" + out)

    emu.ok("insert uid=04A1B2C3")
    r = emu.ok("add uid=0A0B0C0D")
    check(r == "ok added uid=0A0B0C0D atqa=0004 sak=08 ats=-", r)
    check(field(emu) == [("04A1B2C3", "idle"), ("0A0B0C0D", "idle")], "add keeps the first card: %r" % field(emu))
    rc, out = run_tool(emu, NFC_LIST)          # every probe, field off and on included
    check(rc == 0 and parse_targets(out) == [CLASSIC_A, CLASSIC_B], "insert then add:\n" + out)

    check(emu.ok("remove uid=04A1B2C3") == "ok removed uid=04A1B2C3", "remove one card")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1")
    check(parse_targets(out) == [CLASSIC_B], "after removing the first card:\n" + out)
    check(emu.ok("remove") == "ok removed", "remove the rest")
    rc, out = run_tool(emu, NFC_LIST, "-t", "1", "-v")
    check("0 ISO14443A passive target(s) found" in out, "field emptied:\n" + out)


def test_two_cards_nfc_poll(emu, **_):
    """InAutoPoll reports both cards; libnfc keeps the second ("the selected
    one") and checks its presence by re-selecting its UID, so the first card
    leaving does not end nfc-poll, the second one leaving does."""
    emu.ok("insert uid=04A1B2C3 uid=0A0B0C0D")
    t = Tool([NFC_POLL], emu.env())
    out = t.wait_for("Waiting for card removing")
    check(parse_targets(out) == [CLASSIC_B], "nfc-poll with two cards:\n" + out)
    # Its answer, not the chip's targets now: nfc-poll's presence checks already select
    # again, one card at a time.
    check(emu.status()["autopolled"] == "2", "InAutoPoll did not activate both: %r" % emu.status())
    emu.ok("remove uid=04A1B2C3")
    frames = int(emu.status()["rx_frames"])
    wait_until(lambda: int(emu.status()["rx_frames"]) >= frames + 6, "more presence checks")
    check(t.proc.poll() is None, "nfc-poll lost its card when the other one left:\n" + t.text())
    emu.ok("remove uid=0A0B0C0D")
    rc, out = t.finish()
    check(rc == 0 and "done." in out, "nfc-poll did not see its card leave:\n" + out)
    emu.wait_idle()


def test_two_cards_raw(emu, **_):
    """What InListPassiveTarget, InDeselect, InRelease, RF off and the
    presence checks do with two cards in the field."""
    emu.ok("remove")
    c = RawClient(emu.slave)
    a = bytes.fromhex("0004" "08" "04" "04A1B2C3")
    u = bytes.fromhex("0044" "00" "07" "04112233445566")
    try:
        check(c.command([0x14, 0x01], prefix=WAKEUP) == b"", "SAMConfiguration")
        c.command([0x32, 0x05, 0x00, 0x01, 0x02])        # finite retries, as portierd sets
        emu.ok("insert uid=04A1B2C3 uid=04112233445566")

        # MaxTg 2 activates both, Tg 1 and Tg 2 in field order; MaxTg 1 the first.
        check(c.command([0x4A, 0x02, 0x00]) == b"\x02\x01" + a + b"\x02" + u, "MaxTg 2")
        check(field(emu) == [("04A1B2C3", "active"), ("04112233445566", "active")], "both active")
        r = c.command([0x40, 0x02, 0x30, 0x00])
        check(r[0] == 0 and r[1:4] == bytes.fromhex("041122"), "READ from Tg 2: %s" % r.hex())
        check(c.command([0x4A, 0x01, 0x00]) == b"\x01\x01" + a, "MaxTg 1 selects the first card")
        check(c.command([0x4A, 0x01, 0x00]) == b"\x01\x01" + a, "again: deterministic")

        # A deselected (HLTA) card answers no REQA: the next select finds the
        # other card, then none; not even its own UID wakes it.
        check(c.command([0x44, 0x00]) == b"\x00", "InDeselect")
        check(field(emu)[0] == ("04A1B2C3", "halt"), "deselected card not halted: %r" % field(emu))
        check(c.command([0x4A, 0x01, 0x00]) == b"\x01\x01" + u, "the halted card still answered")
        check(c.command([0x52, 0x01]) == b"\x00", "InRelease Tg 1")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3]) == b"\x00", "a halted card re-selected by UID")
        check(c.command([0x4A, 0x01, 0x00]) == b"\x00", "both halted, yet a card answered")

        # Field off and on: both IDLE again. Selecting by UID picks that card
        # even though the other entered first; presence checks of the selected
        # card (MIFARE re-select, READ, Diagnose) work with the other present.
        check(c.command([0x32, 0x01, 0x00]) == b"" and c.command([0x32, 0x01, 0x01]) == b"", "RF off, on")
        check(field(emu) == [("04A1B2C3", "idle"), ("04112233445566", "idle")], "field reset: %r" % field(emu))
        check(c.command(bytes.fromhex("4A0100" "8804112233445566")) == b"\x01\x01" + u, "select by UID")
        r = c.command([0x40, 0x01, 0x30, 0x00])
        check(r[0] == 0 and r[1:4] == bytes.fromhex("041122"), "READ of the selected card: %s" % r.hex())
        check(c.command([0x00, 0x06]) == b"\x00", "Diagnose card presence")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3]) == b"\x01\x01" + a, "re-select A")
        for _ in range(3):      # MIFARE Classic presence check, card after card
            check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3]) == b"\x01\x01" + a, "presence of A")
        emu.ok("remove uid=04112233445566")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3]) == b"\x01\x01" + a, "A once B left")
        emu.ok("remove uid=04A1B2C3")
        check(c.command([0x4A, 0x01, 0x00, 0x04, 0xA1, 0xB2, 0xC3]) == b"\x00", "A gone")

        # Leaving the field ends a halt: the card comes back IDLE.
        emu.ok("insert uid=04A1B2C3")
        check(c.command([0x4A, 0x01, 0x00]) == b"\x01\x01" + a, "select")
        check(c.command([0x44, 0x00]) == b"\x00", "InDeselect")
        emu.ok("remove uid=04A1B2C3")
        emu.ok("add uid=04A1B2C3")
        check(c.command([0x4A, 0x01, 0x00]) == b"\x01\x01" + a, "a card back in the field is not halted")

        # A parked select (infinite retries) is answered by `add` too.
        emu.ok("remove")
        c.command([0x32, 0x05, 0xFF, 0xFF, 0xFF])
        c.write(frame([0xD4, 0x4A, 0x02, 0x00]))
        c.expect_ack()
        emu.ok("add uid=04A1B2C3 uid=04112233445566")
        f = c.read_frame()
        check(f == ("frame", b"\xD5\x4B\x02\x01" + a + b"\x02" + u), "parked MaxTg 2 answer: %r" % (f,))
    finally:
        c.close()
    emu.wait_idle()
    emu.ok("remove")


def test_control_several_cards(emu, **_):
    emu.ok("remove")
    r = emu.ok("insert uid=04A1B2C3 sak=20 uid=04112233445566 ats=7577")
    check(r == "ok inserted uid=04A1B2C3 atqa=0004 sak=20 ats=7577810280 "
              "uid=04112233445566 atqa=0044 sak=20 ats=7577", r)
    check(emu.status()["cards"] == "2" and emu.status()["card"] == "04A1B2C3", "status: %r" % emu.status())
    emu.ok("add uid=0A0B0C0D uid=01020304")
    before = emu.status()
    for line in ("add uid=05060708", "add uid=04A1B2C3", "insert uid=04A1B2C3 uid=04A1B2C3",
                 "add atqa=0004 uid=05060708", "remove uid=05060708", "remove uid=zz", "remove 04A1B2C3",
                 "insert uid=1 uid=2 uid=3 uid=4 uid=5", "add"):
        r = emu.ctl(line)
        check(r.startswith("error "), "%r accepted: %r" % (line, r))
    check(emu.status()["field"] == before["field"], "a rejected line changed the field")
    check(emu.ok("remove uid=0A0B0C0D uid=04A1B2C3") == "ok removed uid=04A1B2C3 uid=0A0B0C0D", "remove two")
    check([u for u, _ in field(emu)] == ["04112233445566", "01020304"], "field order kept: %r" % field(emu))
    emu.ok("insert uid=CAFEBABE")
    check(emu.status()["field"] == "CAFEBABE:idle", "insert did not replace the field")
    emu.ok("remove")


TESTS = [
    test_no_card_nfc_list,
    test_cards_nfc_list,
    test_cards_nfc_poll_presence,
    test_nfc_poll_waits_for_card,
    test_nfc_poll_no_target,
    test_reconnect,
    test_raw_protocol,
    test_garbage_input,
    test_faults,
    test_control_rejects_malformed,
    test_two_cards_nfc_list,
    test_two_cards_nfc_poll,
    test_two_cards_raw,
    test_control_several_cards,
    test_hangup,
]


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    for tool in (NFC_LIST, NFC_POLL):
        if not os.access(tool, os.X_OK):
            print("missing %s (packages libnfc-bin, libnfc-examples)" % tool, file=sys.stderr)
            return 2
    workdir = tempfile.mkdtemp(prefix="pn532-emu-test.")
    failed, passed = [], 0
    emu = None
    try:
        emu = Emulator(binary, workdir, "main")
        for test in TESTS:
            name = test.__name__
            t0 = time.monotonic()
            try:
                test(emu=emu, binary=binary, workdir=workdir)
                passed += 1
                print("PASS %-32s %.1fs" % (name, time.monotonic() - t0), flush=True)
            except Exception as exc:
                failed.append(name)
                detail = str(exc) if isinstance(exc, TestFailure) else traceback.format_exc()
                print("FAIL %-32s %s" % (name, detail), flush=True)
                if not emu.alive():
                    print("     emulator died (rc %s); see %s" % (emu.proc.returncode, workdir), flush=True)
                    break
            if emu.alive():
                try:
                    emu.ctl("fault none")
                except Exception:
                    pass
        emu.stop()
        check(emu.proc.returncode == 0, "emulator exit status %s" % emu.proc.returncode)
        check(not os.path.lexists(emu.link) and not os.path.exists(emu.ctl_path), "quit left files behind")
    except Exception as exc:
        failed.append("harness")
        print("FAIL harness: %s" % (exc if isinstance(exc, TestFailure) else traceback.format_exc()), flush=True)
    finally:
        for p in children:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in children:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    print("%d of %d tests passed%s" % (passed, len(TESTS), "; failed: " + ", ".join(failed) if failed else ""))
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("logs kept in " + workdir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

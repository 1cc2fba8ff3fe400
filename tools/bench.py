# SPDX-License-Identifier: AGPL-3.0-or-later
"""Benchmark driver for tools/bench. Standard library only.

Every figure comes from the real portierd on simulated hardware with a synthetic site
built by portier-benchgen through the real store module."""

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_tapper  # noqa: E402  (beside this file)


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def uid_hex(i):
    return "04%012X" % i


def door_path_policy(pid):
    """How portierd's event loop is scheduled ([daemon] realtime_priority). The reader
    workers run one below it, and so does the taps' tapper (tools/bench_tapper.py), which
    stands in for one, when allowed."""
    try:
        p = os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK
        if p == os.SCHED_FIFO:
            return "SCHED_FIFO %d" % os.sched_getparam(pid).sched_priority
    except OSError:
        pass
    return "normal priority"


class Daemon:
    door_path = None        # the last started daemon's loop scheduling (door_path_policy())

    def __init__(self, bindir, workdir):
        self.bindir, self.dir = bindir, workdir
        self.socket = os.path.join(workdir, "ctl.sock")
        self.relays = os.path.join(workdir, "relays")
        self.proc = None

    def start(self, env=None, wrap=None, timeout=60):
        """Start portierd and wait for READY=1; returns the seconds it took. env: extra
        environment (LD_PRELOAD of a shim); wrap: a command in front (valgrind)."""
        os.makedirs(self.relays, exist_ok=True)     # [hardware] sim_state_dir of the benches
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(timeout)
        # The reader worker of this build, not the installed path portierd has compiled in.
        environ = dict(os.environ, NOTIFY_SOCKET=notify_path,
                       PORTIER_READER_WORKER=os.path.join(self.bindir, "portier-reader"),
                       **(env or {}))
        t0 = time.monotonic()
        self.proc = subprocess.Popen((wrap or []) + [os.path.join(self.bindir, "portierd"), "-c",
                                      os.path.join(self.dir, "portier.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(
                                         os.path.join(self.dir, "portierd.log"), "ab"), env=environ)
        while True:
            msg = notify.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                break
        ready = time.monotonic() - t0
        notify.close()
        Daemon.door_path = door_path_policy(self.proc.pid)
        return ready

    def start_web(self, extra="", start=None):
        """Start with an [http] section on a free port appended to the config (extra: more
        of its lines): the port, once the web server listens. start: what starts the daemon
        (self.start, or Callgrind.start)."""
        port = free_port()
        write_config(self.dir, http_section(port, extra), "a")
        (start or self.start)()
        wait_port(port, "portierd", self.proc)
        return port

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)

    def renice(self, nice=-10):
        """The event loop's thread at nice (when allowed: root). A Pi runs portierd alone; on a
        shared build machine this gives its loop the CPU first while taps are timed, as the
        tapper gives itself. Returns the nice in effect."""
        try:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, nice)
            return nice
        except OSError:
            return os.getpriority(os.PRIO_PROCESS, self.proc.pid)

    def renice_all(self, nice):
        """Every thread of the daemon (the loop, the web thread, the others) at nice, as a
        program with one nice for all would be; returns what each had, for restore_nice()."""
        old = {}
        for tid in map(int, os.listdir("/proc/%d/task" % self.proc.pid)):
            try:
                old[tid] = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except OSError:
                pass
        return old

    def restore_nice(self, old):
        for tid, nice in old.items():
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except OSError:
                pass

    def request(self, obj):
        return json.loads(self.request_raw(obj))

    def request_raw(self, obj):
        return bench_tapper.read_all(bench_tapper.request(self.socket, obj))

    def proc_value(self, path, key):
        with open("/proc/%d/%s" % (self.proc.pid, path)) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        """The CPU time of every thread of the daemon: the scheduler's own count, to the
        nanosecond (/proc/PID/task/TID/schedstat); utime + stime, in ticks of 10 ms, only
        where the kernel has no schedstat."""
        total = 0
        try:
            for tid in os.listdir("/proc/%d/task" % self.proc.pid):
                total += task_runtime_ns(self.proc.pid, int(tid))
            return total / 1e9
        except (OSError, ValueError):
            return cpu_ticks(self.proc.pid) / os.sysconf("SC_CLK_TCK")

    def loop_cpu_seconds(self):
        """The CPU time of the event loop's thread alone (the main thread)."""
        try:
            return task_runtime_ns(self.proc.pid, self.proc.pid) / 1e9
        except (OSError, ValueError):
            with open("/proc/%d/task/%d/stat" % (self.proc.pid, self.proc.pid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self):
        with open(os.path.join(self.dir, "portierd.log"), errors="replace") as f:
            return f.read()


TAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_tapper.py")


def tappers_start(d, doors, **cfg):
    """One tools/bench_tapper.py per (door, reader, uids): taps timed from outside. The
    daemon's loop at nice -10 meanwhile (Daemon.renice())."""
    d.renice(-10)
    procs = []
    for i, (door, reader, uids) in enumerate(doors):
        c = dict(cfg, socket=d.socket, relays=d.relays, door=door, reader=reader, uids=uids,
                 seed=cfg.get("seed", 1) + i)
        procs.append(subprocess.Popen([sys.executable, TAPPER, json.dumps(c)],
                                      stdout=subprocess.PIPE, text=True))
    return procs


def tappers_result(procs):
    outside, inside, refused, lost = [], [], 0, 0
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("bench: a tapper failed")
        r = json.loads(stdout)
        outside += r["outside_us"]
        inside += r["latency_us"]
        refused += r["refused"]
        lost += r["lost"]
    if not outside:
        raise RuntimeError("bench: no tap was timed (refused %d, lost %d)" % (refused, lost))
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    return {"loadavg": load,"taps": len(outside), "outside_p50": percentile(outside, 50),
            "outside_p99": percentile(outside, 99), "outside_max": max(outside),
            "inside_p50": percentile(inside, 50), "inside_p99": percentile(inside, 99),
            "refused": refused, "lost": lost}


def taps_outside(d, doors, **cfg):
    return tappers_result(tappers_start(d, doors, **cfg))


def uids_of_members(members, count, cards, lo=1, hi=None):
    """UIDs of cards of granted members (benchgen: card c belongs to member 1 + c % members;
    a quarter of the members are on the weekday-hours plan, one in fifty is suspended) whose
    member number lies in [lo, hi]."""
    hi = hi or members
    out, c = [], 0
    while len(out) < count and c < cards:
        m = 1 + c % members
        if lo <= m <= hi and (m - 1) % 4 and (m - 1) % 50 != 49:
            out.append(uid_hex(c))
        c += 1
    return out


def wait_until(pred, timeout, what, interval=0.001):
    """pred()'s first true value, asked every interval seconds for at most timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("bench: timed out: %s" % what)


def benchgen(args, *argv):
    """portier-benchgen ARGV (tools/benchgen.c: a synthetic site through the real store): what
    it prints, stripped."""
    return subprocess.run([os.path.join(args.bin, "portier-benchgen")] + [str(a) for a in argv],
                          check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def slow_sync_shim(args):
    return os.path.join(os.path.dirname(args.bin), "lib", "portier-bench", "slow_sync.so")


def rss_with_web_and_mqtt(args, d, uids):
    """VmRSS of portierd with [http] and [mqtt] on (a mosquitto on 127.0.0.1), after wrk on
    its public pages (/, /healthz, /metrics, /spaceapi.json) and taps that publish events,
    and two seconds of quiet."""
    conf = os.path.join(d.dir, "portier.conf")
    with open(conf) as f:
        original = f.read()
    mport = free_port()
    broker = start_mosquitto(d.dir, mport)
    try:
        write_config(d.dir, mqtt_section(mport), "a")
        port = d.start_web()
        script = os.path.join(d.dir, "paths.lua")
        with open(script, "w") as f:
            f.write(WRK_PATHS % lua_list(["/", "/healthz", "/metrics", "/spaceapi.json"]))
        load = wrk_start("http://127.0.0.1:%d" % port, 5, 2, 16, script)
        taps_outside(d, [("front", "front", uids)], taps=200, pause_ms=[0, 10])
        wrk_finish(load)
        time.sleep(3)
        r = {"rss_web_mqtt_kib": d.proc_value("status", "VmRSS"),
             "rss_web_mqtt_anon_kib": d.proc_value("status", "RssAnon")}
        d.stop()
        return r
    finally:
        with open(conf, "w") as f:
            f.write(original)
        broker.terminate()
        broker.wait(timeout=30)


def bench_core(args, out):
    work = tempfile.mkdtemp(prefix="portier-bench-")
    d = None
    try:
        benchgen(args, "populate", work, args.members, args.cards)
        # The end of a busy month: day charges by the other half of the members.
        benchgen(args, "daycharges", work, args.day_charges)
        d = Daemon(args.bin, work)

        # Start-up to READY=1 (median of 5, with the full database).
        readies = []
        for _ in range(5):
            readies.append(d.start())
            d.stop()
        out["ready_ms_median"] = statistics.median(readies) * 1000
        out["ready_ms_max"] = max(readies) * 1000

        d.start()
        rng = random.Random(42)
        # First entries of the day, by members without a charge this month yet: each charges
        # a day (the plan's days of the month counted first) and appends to the signed ledger.
        day_cards = uids_of_members(args.members, 2000, args.cards, hi=args.members // 2)
        io0 = d.proc_value("io", "write_bytes")
        w0 = d.proc_value("io", "wchar")
        cpu0, loop0 = d.cpu_seconds(), d.loop_cpu_seconds()
        reply_bytes = 0
        for uid in day_cards:
            raw = d.request_raw({"cmd": "sim.tap", "reader": "front", "uid": uid})
            if not json.loads(raw).get("granted"):
                raise RuntimeError("bench: first tap refused: %s" % raw)
            reply_bytes += len(raw)
        out["cpu_ms_per_first_tap"] = (d.cpu_seconds() - cpu0) * 1000 / len(day_cards)
        out["loop_cpu_ms_per_first_tap"] = (d.loop_cpu_seconds() - loop0) * 1000 / len(day_cards)
        out["day_charges"] = args.day_charges
        out["bytes_written_per_first_tap"] = (d.proc_value("io", "write_bytes") - io0) / len(day_cards)
        out["sqlite_bytes_written_per_first_tap"] = (d.proc_value("io", "wchar") - w0 - reply_bytes) / len(day_cards)
        io0 = d.proc_value("io", "write_bytes")
        w0 = d.proc_value("io", "wchar")
        cpu0, loop0 = d.cpu_seconds(), d.loop_cpu_seconds()
        lat = []
        reply_bytes = 0
        t0 = time.monotonic()
        for i in range(args.taps):
            # Members coming and going during the day (already checked in), and one tap in
            # ten by a card nobody holds.
            uid = rng.choice(day_cards) if rng.random() < 0.9 else uid_hex(args.cards + rng.randrange(args.cards // 9))
            raw = d.request_raw({"cmd": "sim.tap", "reader": "front", "uid": uid})
            reply_bytes += len(raw)
            lat.append(json.loads(raw)["latency_us"])
        elapsed = time.monotonic() - t0
        out["cpu_ms_per_tap"] = (d.cpu_seconds() - cpu0) * 1000 / args.taps
        out["loop_cpu_ms_per_tap"] = (d.loop_cpu_seconds() - loop0) * 1000 / args.taps
        io1 = d.proc_value("io", "write_bytes")
        w1 = d.proc_value("io", "wchar")
        # wchar counts every write(2)/send(2): take away the replies sent to the bench
        # client, and what is left is what SQLite wrote (the log is at warning level).
        out["sqlite_bytes_written_per_tap_sequential"] = (w1 - w0 - reply_bytes) / args.taps
        out["taps"] = args.taps
        out["tap_to_relay_us_p50"] = percentile(lat, 50)
        out["tap_to_relay_us_p99"] = percentile(lat, 99)
        out["tap_to_relay_us_max"] = max(lat)
        out["taps_per_second_sequential"] = args.taps / elapsed
        out["bytes_written_per_tap_sequential"] = (io1 - io0) / args.taps
        # What the control socket the bench taps through costs by itself (a reader's tap
        # does not use it): a request that does nothing, as many, measured the same way.
        cpu0, loop0 = d.cpu_seconds(), d.loop_cpu_seconds()
        for _ in range(args.taps):
            d.request_raw({"cmd": "sim.advance", "seconds": 0})
        out["cpu_ms_per_noop_request"] = (d.cpu_seconds() - cpu0) * 1000 / args.taps
        out["loop_cpu_ms_per_noop_request"] = (d.loop_cpu_seconds() - loop0) * 1000 / args.taps

        # The same taps timed from outside: request sent -> relay changed in the back-end.
        o = taps_outside(d, [("front", "front", day_cards[:50])], taps=args.outside_taps,
                         pause_ms=[0, 20])
        out["core_outside"] = o
        out["rss_kib"] = d.proc_value("status", "VmRSS")
        out["rss_anon_kib"] = d.proc_value("status", "RssAnon")

        # A burst from 8 clients at once: commits are shared by the taps of one loop pass.
        io0 = d.proc_value("io", "write_bytes")
        per_thread = args.taps // 8
        burst_lat = []

        def worker(seed):
            r2 = random.Random(seed)
            for _ in range(per_thread):
                rep = d.request({"cmd": "sim.tap", "reader": "front",
                                 "uid": r2.choice(day_cards)})
                burst_lat.append(rep["latency_us"])
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        io1 = d.proc_value("io", "write_bytes")
        out["taps_per_second_burst8"] = per_thread * 8 / elapsed
        out["bytes_written_per_tap_burst8"] = (io1 - io0) / (per_thread * 8)
        out["tap_to_relay_us_p99_burst8"] = percentile(burst_lat, 99)

        # The whole site's lists (every card, a search among the members) while doors are
        # tapped, timed from outside: job processes read them (billing.c), not the loop.
        tappers = tappers_start(d, [("front", "front", day_cards[:50])], seconds=14,
                                pause_ms=[0, 20])
        time.sleep(1)
        t0 = time.monotonic()
        raw = d.request_raw({"cmd": "card.list"})
        out["card_list_s"] = time.monotonic() - t0
        out["card_list_bytes"] = len(raw)
        t0 = time.monotonic()
        r = d.request({"cmd": "member.list", "query": "zz", "limit": 50})
        out["member_search_s"] = time.monotonic() - t0
        if not r.get("ok"):
            raise RuntimeError("bench: member.list: %r" % r)
        out["lists_taps"] = tappers_result(tappers)
        d.stop()

        # A slow disk: every fsync 20 ms slower (tools/bench-shims/slow_sync.c), two doors
        # tapped at once, each tap timed from outside. Nothing on the event loop may wait
        # for the disk: the second door must not wait for the first door's sync.
        shim = slow_sync_shim(args)
        d.start(env={"LD_PRELOAD": shim, "PORTIER_SLOW_SYNC_MS": str(args.slow_sync_ms)})
        t_from = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        o = taps_outside(d, [("front", "front", day_cards[:50]),
                             ("back", "back", day_cards[50:100])],
                         taps=args.outside_taps, pause_ms=[0, 50])
        t_to = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        d.stop()
        log = [l for l in d.log_text().splitlines() if l.startswith("slow_sync:")]
        o["syncs"] = int(log[-1].split()[1])
        # Syncs the event loop itself made while the doors were tapped.
        o["syncs_on_loop"] = sum(1 for l in log if " at " in l and
                                 t_from <= int(l.split()[-2]) <= t_to)
        o["sync_ms"] = args.slow_sync_ms
        out["slow_sync"] = o

        # Memory with the web page and MQTT on, after some load on both.
        out.update(rss_with_web_and_mqtt(args, d, day_cards[:50]))

        out["decisions_per_second"] = json.loads(benchgen(args, "decide", work, 200000))["per_second"]
    finally:
        stop_all(work, d)


def bench_config(work, sections, relay_files=True):
    """A bench site: [site] bench, [daemon] in work logging warnings only, simulated
    [hardware] (writing each relay's state to a file in work/relays, unless relay_files is
    False: the benches that time relays from inside the daemon do without), then the
    bench's own sections."""
    return """
[site]
id = bench
timezone = Europe/Paris
[daemon]
state_dir = {dir}/state
control_socket = {dir}/ctl.sock
log_level = warning
[hardware]
backend = sim
""".format(dir=work) + ("sim_state_dir = %s/relays\n" % work if relay_files else "") + sections


def write_config(work, text, mode="w"):
    """work/portier.conf: text written, or appended (mode "a": to benchgen's site)."""
    with open(os.path.join(work, "portier.conf"), mode) as f:
        f.write(text)


def mqtt_section(port):
    return "\n[mqtt]\nenabled = true\nport = %d\n" % port


def http_section(port, extra=""):
    return "\n[http]\nlisten = 127.0.0.1:%d\n%s" % (port, extra)


def shelly_machines(n):
    """Machines n0 ... n(n-1), each with a simulated reader of its own and powered through
    the emulated Shelly plug bench-plug-I (tests/emu/netdev_emu.py)."""
    return "".join("[reader n%d]\ndriver = sim\n[machine n%d]\nreader = n%d\n"
                   "power = shelly:bench-plug-%d\nhandover_seconds = 0\n" % (i, i, i, i)
                   for i in range(n))


def libnfc_reader(work, name, heartbeat=True):
    """[reader NAME] on the pn532-emu at work/NAME.tty (start_emulator())."""
    return ("[reader {name}]\ndriver = libnfc\nconnstring = pn532_uart:{dir}/{name}.tty\n"
            "debounce_ms = 50\n{heartbeat}").format(
                name=name, dir=work, heartbeat="heartbeat_timeout_ms = 3000\n" if heartbeat else "")


def door_section(name, relay, unlock_seconds, extra=""):
    return "[door %s]\nreader = %s\nrelay = %d\nunlock_seconds = %d\n%s" % (
        name, name, relay, unlock_seconds, extra)


def start_emulator(bindir, work, name, cards=None):
    """pn532-emu at 115200-baud wire timing: its pty linked at WORK/NAME.tty, its control
    socket at WORK/NAME.ctl (DESFire cards kept in the directory cards, if given)."""
    cmd = [os.path.join(bindir, "pn532-emu"), "--baud-delay", "--link",
           os.path.join(work, name + ".tty"), "--control", os.path.join(work, name + ".ctl")]
    if cards:
        cmd += ["--cards", cards]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    p.stdout.readline()             # the pty and the control socket exist now
    return p


def emu_cmd(path, line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall((line + "\n").encode())
    reply = s.recv(4096).decode()
    s.close()
    return reply


def task_runtime_ns(pid, tid):
    """The nanoseconds a thread has run, user and kernel (the first field of schedstat)."""
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])     # utime + stime


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except OSError:
                pass
    return out


def bench_readers(args, out):
    """Real libnfc against pn532-emu at 115200-baud wire timing."""
    work = tempfile.mkdtemp(prefix="portier-bench-nfc-")
    emus, d = [], None
    try:
        for name in ("front", "back"):
            emus.append(start_emulator(args.bin, work, name))
        write_config(work, bench_config(work, "\n" + libnfc_reader(work, "front") +
                                        libnfc_reader(work, "back", heartbeat=False) +
                                        door_section("front", 17, 60) +
                                        door_section("back", 18, 60)))
        d = Daemon(args.bin, work)
        d.start()
        d.request({"cmd": "plan.add", "name": "open"})
        for i in range(args.reader_taps):
            d.request({"cmd": "member.add", "name": "M%d" % i, "plan": "open"}) if i < 20 else None
        for i in range(20):
            d.request({"cmd": "card.add", "member": str(i + 1), "uid": "04%06X" % (i + 1)})
        ctl = os.path.join(work, "front.ctl")

        def status():
            return d.request({"cmd": "status"})

        wait_until(lambda: all(r["health"] == "up" for r in status()["readers"]), 20,
                   "the readers coming up")
        # From the card put on the reader (the emulator's control command sent) to the
        # relay's state changed in the simulated back-end (its mirror file, by inotify).
        watch = bench_tapper.RelayWatch(d.relays, "front.relay")
        lat = []
        rng = random.Random(7)
        for i in range(args.reader_taps):
            d.request({"cmd": "door.lock", "door": "front"})
            if watch.wait(False, 10) is None:
                raise RuntimeError("bench: the front door does not lock")
            # A person needs far longer than this between two taps; the random part spreads
            # the insertions over the worker's poll cycle.
            time.sleep(0.15 + rng.random() * 0.05)
            t0 = time.monotonic_ns()
            emu_cmd(ctl, "insert uid=04%06X" % (i % 20 + 1))
            t1 = watch.wait(True, 10)
            if t1 is None:
                raise RuntimeError("bench: the card did not open the door")
            lat.append((t1 - t0) / 1e6)
            emu_cmd(ctl, "remove")
        d.request({"cmd": "door.lock", "door": "front"})
        out["reader_taps"] = args.reader_taps
        out["card_to_relay_ms_p50"] = percentile(lat, 50)
        out["card_to_relay_ms_p99"] = percentile(lat, 99)
        out["card_to_relay_ms_max"] = max(lat)
        out["card_to_relay_ms_all"] = lat

        # Idle CPU: the daemon and its two polling workers, over 10 s.
        pids = [d.proc.pid] + children(d.proc.pid)
        time.sleep(1)
        c0 = sum(cpu_ticks(p) for p in pids)
        t0 = time.monotonic()
        time.sleep(10)
        c1 = sum(cpu_ticks(p) for p in pids)
        hz = os.sysconf("SC_CLK_TCK")
        out["idle_cpu_percent_of_one_core"] = (c1 - c0) / hz / (time.monotonic() - t0) * 100
        out["idle_processes"] = len(pids)

        # A reader that hangs: how long until a card is read again, once a restart
        # (a reset pulse on real hardware) has cured it.
        restarts = status()["readers"][0]["restarts"]
        t0 = time.monotonic()
        emu_cmd(ctl, "fault mute")
        wait_until(lambda: status()["readers"][0]["restarts"] > restarts, 60,
                   "the hung reader restarted")
        t_detect = time.monotonic() - t0
        emu_cmd(ctl, "fault none")
        taps = status()["readers"][0]["taps"]
        emu_cmd(ctl, "insert uid=04000001")
        wait_until(lambda: status()["readers"][0]["taps"] > taps, 60, "a tap after the restart")
        out["hung_reader_detect_ms"] = t_detect * 1000
        out["hung_reader_to_first_read_ms"] = (time.monotonic() - t0) * 1000
    finally:
        stop_all(work, d, *emus)


def bench_worker_instructions(args, out):
    """The instructions an idle reader's worker executes, per second and per poll: the real
    worker code (portier-reader-unconfined: the same program without its seccomp filter,
    which valgrind cannot run) under callgrind, against pn532-emu at 115200-baud timing, for
    WORKER_SECONDS once it is up. Polls are counted by the emulator."""
    work = tempfile.mkdtemp(prefix="portier-bench-worker-")
    emu = worker = None
    try:
        emu = subprocess.Popen([os.path.join(args.bin, "pn532-emu"), "--baud-delay", "--link",
                                os.path.join(work, "tty"), "--control", os.path.join(work, "ctl")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        emu.stdout.readline()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # fd 3 of the worker: its socket to the parent (this process's own fd 3 is put back
        # once the worker is started).
        try:
            saved = os.dup(3)
        except OSError:
            saved = None
        os.dup2(child.fileno(), 3)
        out_file = os.path.join(work, "callgrind.out")
        try:
            worker = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 "--callgrind-out-file=" + out_file,
                 os.path.join(args.bin, "portier-reader-unconfined"),
                 "pn532_uart:" + os.path.join(work, "tty"), "30", "50"],
                pass_fds=(3,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            if saved is not None:
                os.dup2(saved, 3)
                os.close(saved)
            else:
                os.close(3)
        child.close()
        parent.settimeout(60)
        # As portierd does first: the DESFire keys (none: UID cards; struct reader_cmd of
        # hw/reader_proto.h, protocol version 2, READER_CMD_KEYS).
        parent.send(struct.pack("<BBBBII16s16sB16sB16s", 2, 1, 0, 0, 0, 0, b"", b"", 0, b"",
                                0, b""))
        parent.recv(512)                            # HELLO: the device is open
        time.sleep(1)

        def frames():
            return int([w for w in emu_cmd(os.path.join(work, "ctl"), "status").split()
                        if w.startswith("rx_frames=")][0].split("=")[1])
        pid = str(worker.pid)
        f0 = frames()
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        t0 = time.monotonic()
        time.sleep(args.worker_seconds)
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        elapsed = time.monotonic() - t0
        polls = frames() - f0
        subprocess.run(["callgrind_control", "-d", "idle", pid], check=True, capture_output=True)
        total = None
        for name in os.listdir(work):
            if name.startswith("callgrind.out"):
                with open(os.path.join(work, name), errors="replace") as f:
                    text = f.read()
                if "desc: Trigger: dump idle\n" in text:
                    total = int([l for l in text.splitlines() if l.startswith("totals:")][0].split()[1])
        if total is None:
            raise RuntimeError("bench: no callgrind dump of the worker")
        out["worker_instructions_per_s"] = total / elapsed
        out["worker_polls_per_s"] = polls / elapsed
        out["worker_instructions_per_poll"] = total / max(polls, 1)
        parent.close()
    finally:
        stop_all(work, worker, emu)


def emu_status(path):
    return dict(kv.split("=", 1) for kv in emu_cmd(path, "status").split()[1:])


def bench_desfire(args, out):
    """DESFire cards through real libnfc and libfreefare, pn532-emu at 115200-baud wire timing:
    provisioning per card, then taps with AES authentication, card → relay."""
    work = tempfile.mkdtemp(prefix="portier-bench-desfire-")
    emus, d = [], None
    n_cards = 20
    try:
        os.mkdir(os.path.join(work, "cards"))
        for name in ("front", "desk"):
            emus.append(start_emulator(args.bin, work, name, os.path.join(work, "cards")))
        write_config(work, bench_config(work, libnfc_reader(work, "front") +
                                        libnfc_reader(work, "desk") +
                                        door_section("front", 17, 60, "card_security = desfire\n"),
                                        relay_files=False))
        d = Daemon(args.bin, work)
        d.start()
        d.request({"cmd": "plan.add", "name": "open"})
        for i in range(n_cards):
            d.request({"cmd": "member.add", "name": "M%d" % i, "plan": "open"})
        front, desk = os.path.join(work, "front.ctl"), os.path.join(work, "desk.ctl")

        def status():
            return d.request({"cmd": "status"})

        wait_until(lambda: all(r["health"] == "up" for r in status()["readers"]), 30,
                   "the readers coming up")
        uids = ["04%012X" % (0xD0000001 + i) for i in range(n_cards)]

        # Provisioning: from the card on the reader to the command's answer.
        prov, prov_apdus = [], []
        for i, uid in enumerate(uids):
            replies = []
            t = threading.Thread(target=lambda: replies.append(d.request(
                {"cmd": "card.provision", "member": str(i + 1), "reader": "desk", "timeout": 30})))
            t.start()
            time.sleep(0.2)     # the job reaches the worker (a card already there is used too)
            a0 = int(emu_status(desk)["apdus"])
            t0 = time.monotonic()
            emu_cmd(desk, "insert uid=%s desfire" % uid)
            t.join(60)
            prov.append((time.monotonic() - t0) * 1000)
            prov_apdus.append(int(emu_status(desk)["apdus"]) - a0)
            if not replies or not replies[0].get("ok"):
                raise RuntimeError("bench: provisioning failed: %r" % replies)
            emu_cmd(desk, "remove")
        out["desfire_provision_ms_p50"] = percentile(prov, 50)
        out["desfire_provision_ms_max"] = max(prov)
        out["desfire_provision_card_commands"] = percentile(prov_apdus, 50)

        # Taps: card on the reader → relay energised, with the frames one tap exchanges.
        lat, frames, apdus = [], [], []
        rng = random.Random(11)
        for i in range(args.desfire_taps):
            time.sleep(0.15 + rng.random() * 0.05)
            door = status()["doors"][0]
            writes = door["relay"]["writes"]
            st = emu_status(front)
            f0, a0 = int(st["rx_frames"]), int(st["apdus"])
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
            emu_cmd(front, "insert uid=%s desfire" % uids[i % n_cards])
            door = wait_until(lambda: (lambda dd: dd if dd["relay"]["writes"] > writes else None)(
                status()["doors"][0]), 30, "the DESFire tap's relay write")
            lat.append((door["relay"]["last_write_mono_us"] / 1e6 - t0) * 1000)
            st = emu_status(front)
            frames.append(int(st["rx_frames"]) - f0)
            apdus.append(int(st["apdus"]) - a0)
            emu_cmd(front, "remove")
            d.request({"cmd": "door.lock", "door": "front"})
        taps = [t for t in status()["recent_taps"]]
        if any(not t["granted"] for t in taps):
            raise RuntimeError("bench: a DESFire tap was refused: %r" % taps)
        out["desfire_taps"] = args.desfire_taps
        out["desfire_card_to_relay_ms_p50"] = percentile(lat, 50)
        out["desfire_card_to_relay_ms_p99"] = percentile(lat, 99)
        out["desfire_tap_frames_p50"] = percentile(frames, 50)
        out["desfire_tap_card_commands_p50"] = percentile(apdus, 50)
    finally:
        stop_all(work, d, *emus)


def bench_fablab(args, out):
    """Machines: 100,000 members, 200,000 bookings across 50 machines."""
    work = tempfile.mkdtemp(prefix="portier-bench-fablab-")
    d = None
    try:
        benchgen(args, "populate", work, args.members, args.cards)
        benchgen(args, "fablab", work, args.bookings, 50)
        d = Daemon(args.bin, work)
        d.start()
        lat = []
        for k in range(args.machine_taps):
            i = k % 50
            # Member 4i+3 (card 4i+2) holds machine i's current booking: on, then off.
            r = d.request({"cmd": "sim.tap", "reader": "m%d" % i, "uid": uid_hex(4 * i + 2)})
            if not r.get("granted"):
                raise RuntimeError("bench: machine tap refused: %r" % r)
            lat.append(r["latency_us"])
            d.request({"cmd": "sim.tap", "reader": "m%d" % i, "uid": uid_hex(4 * i + 2)})
        out["machine_tap_to_relay_us_p50"] = percentile(lat, 50)
        out["machine_tap_to_relay_us_p99"] = percentile(lat, 99)

        # Booking creation with every rule check, in free slots beyond the populated range.
        rng = random.Random(11)
        check, total = [], []
        base = (int(time.time()) // 1800) * 1800 + (args.bookings // 50 + 48) * 1800
        for k in range(args.booking_creations):
            start = base + k * 1800
            m = rng.randrange(args.members - 1)
            m += m % 50 == 49       # benchgen suspends one member in fifty
            t0 = time.monotonic()
            r = d.request({"cmd": "booking.add", "machine": "m%d" % rng.randrange(50),
                           "member": str(1 + m), "start": start,
                           "end": start + 1800})
            total.append((time.monotonic() - t0) * 1e6)
            if not r.get("ok"):
                raise RuntimeError("bench: booking refused: %r" % r)
            check.append(r["check_us"])
        out["booking_check_us_p50"] = percentile(check, 50)
        out["booking_check_us_p99"] = percentile(check, 99)
        out["booking_round_trip_us_p99"] = percentile(total, 99)
    finally:
        stop_all(work, d)


def bench_metering(args, out):
    """Statements (2,000 members, ~60,000 records) and ledger verification (1,000,000)."""
    for what in ("statement", "ledger"):
        work = tempfile.mkdtemp(prefix="portier-bench-meter-")
        d = None
        try:
            benchgen(args, "populate", work, 2000, 2000)
            if what == "statement":
                period = benchgen(args, "usage", work, args.usage_records)
            else:
                t0 = time.monotonic()
                benchgen(args, "ledger", work, args.ledger_entries)
                out["ledger_populate_s"] = time.monotonic() - t0
            d = Daemon(args.bin, work)
            d.start()
            if what == "statement":
                t0 = time.monotonic()
                raw = d.request_raw({"cmd": "statement", "period": period})
                out["statement_json_s"] = time.monotonic() - t0
                st = json.loads(raw)["statement"]
                out["statement_records"] = st["totals"]["records"]
                out["statement_members"] = len(st["members"])
                t0 = time.monotonic()
                p = subprocess.run([os.path.join(args.bin, "portierctl"), "-s", d.socket,
                                    "statement", "--period", period, "--format", "csv"],
                                   capture_output=True, text=True, check=True)
                out["statement_csv_s"] = time.monotonic() - t0
                out["statement_csv_lines"] = p.stdout.count("\n")
                # The month closed while doors are tapped, timed from outside: its statement
                # is read and its archive written off the loop (billing_commands.c).
                uids = uids_of_members(2000, 200, 2000)
                tappers = tappers_start(d, [("front", "front", uids)], seconds=5,
                                        pause_ms=[0, 20])
                time.sleep(1)
                t0 = time.monotonic()
                r = d.request({"cmd": "period.close", "period": period})
                out["close_s"] = time.monotonic() - t0
                if not r.get("ok"):
                    raise RuntimeError("bench: period.close: %r" % r)
                out["close_taps"] = tappers_result(tappers)
            else:
                t0 = time.monotonic()
                v = d.request({"cmd": "ledger.verify"})
                out["verify_s"] = time.monotonic() - t0
                out["verify_entries"] = v["entries"]
                out["verify_signatures"] = v["signatures_checked"]
                out["verify_intact"] = v["intact"]
        finally:
            stop_all(work, d)


def bench_privacy(args, out):
    """Retention: 1,000,000 access-log rows past their time deleted while members keep
    tapping. The pass runs on the loop in small steps at idle priority: measure the longest
    step (the most a tap can wait for the loop), tap → relay, and each tap's round trip."""
    import sqlite3
    work = tempfile.mkdtemp(prefix="portier-bench-privacy-")
    d = None
    try:
        benchgen(args, "populate", work, 2000, 6000)
        path = os.path.join(work, "state", "portier.db")
        db = sqlite3.connect(path)
        old = int(time.time()) - 200 * 86400           # [privacy] access_log_days is 90
        rows = args.prune_rows
        t0 = time.monotonic()
        for start in range(0, rows, 100000):
            db.executemany(
                "INSERT INTO access_events (at, resource_id, reader, member_id, card_id, "
                "card_hash, kind, granted, reason, detail) VALUES (?, 1, 'front', ?, ?, "
                "randomblob(32), 'tap', 1, 'granted', '')",
                ((old + i // 10, i % 2000 + 1, i % 6000 + 1)
                 for i in range(start, min(rows, start + 100000))))
            db.commit()
        db.close()
        out["prune_populate_s"] = time.monotonic() - t0
        out["prune_db_bytes_before"] = os.path.getsize(path)
        d = Daemon(args.bin, work)
        d.start()
        rng = random.Random(7)
        # A Pi runs portierd alone: on a shared build machine, give the daemon and this
        # client the CPU first (when allowed), as the web bench does.
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        try:
            os.setpriority(os.PRIO_PROCESS, d.proc.pid, -10)
            os.setpriority(os.PRIO_PROCESS, 0, -10)
            out["prune_nice"] = -10
        except OSError:
            out["prune_nice"] = nice
        writes = [d.request({"cmd": "status"})["doors"][0]["relay"]["writes"]]

        def tap():
            """(in-daemon tap → relay, client round trip, request leaving the client →
            relay write or None): the last measures the wait for the loop too."""
            time.sleep(rng.random() * 0.004)
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
            rep = d.request({"cmd": "sim.tap", "reader": "front",
                             "uid": uid_hex(rng.randrange(6000))})
            rtt = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6 - t0
            relay = d.request({"cmd": "status"})["doors"][0]["relay"]
            out_us = relay["last_write_mono_us"] - t0 if relay["writes"] == writes[0] + 1 else None
            writes[0] = relay["writes"]
            return rep["latency_us"], rtt, out_us

        base = [tap() for _ in range(1000)]
        result = {}

        def prune():
            result.update(d.request({"cmd": "privacy.prune"}))
        th = threading.Thread(target=prune)
        th.start()
        during = []
        while th.is_alive():
            during.append(tap())
        th.join()
        d.stop()
        if out["prune_nice"] != nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        out["prune_rows"] = result["deleted"]["access_events"]
        out["prune_s"] = result["seconds"]
        out["prune_steps"] = result["steps"]
        out["prune_longest_step_us"] = result["longest_step_us"]
        out["prune_step_us_p50"] = result["step_us_p50"]
        out["prune_step_us_p99"] = result["step_us_p99"]
        out["prune_pages_freed"] = result["pages_freed"]
        out["prune_db_bytes_after"] = os.path.getsize(path)
        out["prune_taps_during"] = len(during)
        for name, sample in (("idle", base), ("during", during)):
            relay = [r for r, _, _ in sample]
            rtt = [t for _, t, _ in sample]
            outside = [o for _, _, o in sample if o is not None]
            out["prune_client_relay_n_%s" % name] = len(outside)
            out["prune_client_relay_us_p50_%s" % name] = percentile(outside, 50) if outside else 0
            out["prune_client_relay_us_p99_%s" % name] = percentile(outside, 99) if outside else 0
            out["prune_client_relay_us_max_%s" % name] = max(outside) if outside else 0
            out["prune_relay_us_p50_%s" % name] = percentile(relay, 50)
            out["prune_relay_us_p99_%s" % name] = percentile(relay, 99)
            out["prune_rtt_us_p50_%s" % name] = percentile(rtt, 50)
            out["prune_rtt_us_p99_%s" % name] = percentile(rtt, 99)
            out["prune_rtt_us_max_%s" % name] = max(rtt)
    finally:
        stop_all(work, d)


# The front door on a simulated reader, relocking after a second.
SIM_FRONT_DOOR = "[reader front]\ndriver = sim\n" + door_section("front", 17, 1)


def netrelay_churn(d, devices, indices, stop, switches, readings=None):
    """Threads that switch the network machines of `indices` on and off every 100 ms each
    (a request and the device's confirmation), their devices sending power and energy
    readings at about 50 a second meanwhile, until `stop` is set. Counts go to switches[0]
    and readings[0]."""
    def churn(i):
        dev, k = devices[i], 0
        while not stop.is_set():
            if k % 5 == 0:
                d.request({"cmd": "sim.tap", "reader": "n%d" % i, "uid": uid_hex(0xA000 + i)})
                switches[0] += 1
            dev.add_energy(0.01 * (k % 7))
            if readings is not None:
                readings[0] += 1
            k += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=churn, args=(i,), daemon=True) for i in indices]
    for t in threads:
        t.start()
    return threads


def bench_netrelays(args, out):
    """Machine tap -> confirmed network relay on emulated Shelly devices through mosquitto;
    the GPIO relay's tap latency alone and while the network relays switch all the time."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "emu"))
    from netdev_emu import Shelly
    work = tempfile.mkdtemp(prefix="portier-bench-netrelay-")
    port = free_port()
    # set_tcp_nodelay: as docs/mqtt.md recommends for network relays.
    broker = start_mosquitto(work, port, "set_tcp_nodelay true\n")
    devices, d = [], None
    n = args.netrelay_devices
    try:
        write_config(work, bench_config(work, mqtt_section(port) + "[reader saw]\ndriver = sim\n"
                                        "[machine saw]\nreader = saw\nrelay = 5\n"
                                        "handover_seconds = 0\n" + shelly_machines(n),
                                        relay_files=False))
        devices = [Shelly(port, "bench-plug-%d" % i).start() for i in range(n)]
        d = Daemon(args.bin, work)
        d.start()
        d.request({"cmd": "plan.add", "name": "open", "zones": "*", "hours": "always"})
        for k in range(n + 1):
            d.request({"cmd": "member.add", "name": "M%d" % k, "plan": "open"})
            d.request({"cmd": "card.add", "member": "M%d" % k, "uid": uid_hex(0xA000 + k)})
        for m in ["saw"] + ["n%d" % i for i in range(n)]:
            d.request({"cmd": "machine.set", "machine": m, "hours": "always",
                       "booking_required": False, "walkup_free_minutes": 0})

        def power(name):
            st = d.request({"cmd": "status"})
            return next(m for m in st["machines"] if m["name"] == name)

        def confirmed(name, on):
            def check():
                m = power(name)
                return m if m["power"]["relay"] == "confirmed" and m["relay_energised"] == on \
                    else None
            # The latency is timed inside portierd: polling slowly only spares the CPU.
            return wait_until(check, 10, "%s confirmed %s" % (name, on), interval=0.005)

        for i in range(n):
            confirmed("n%d" % i, False)
        # Tap -> confirmation: the tap's own latency (to the request) plus the device's
        # confirmation as portierd timed it (request -> its report arrived).
        lat = []
        for k in range(args.netrelay_taps):
            r = d.request({"cmd": "sim.tap", "reader": "n0", "uid": uid_hex(0xA000)})
            if r.get("outcome") != "on":
                raise RuntimeError("bench: network machine tap: %r" % r)
            m = confirmed("n0", True)
            lat.append(r["latency_us"] + m["power"]["confirm_us"])
            d.request({"cmd": "sim.tap", "reader": "n0", "uid": uid_hex(0xA000)})
            confirmed("n0", False)
        out["netrelay_tap_to_confirmed_ms_p50"] = percentile(lat, 50) / 1000
        out["netrelay_tap_to_confirmed_ms_p99"] = percentile(lat, 99) / 1000

        def gpio_taps(count):
            lat = []
            for k in range(count):
                r = d.request({"cmd": "sim.tap", "reader": "saw", "uid": uid_hex(0xA000 + n)})
                lat.append(r["latency_us"])
                d.request({"cmd": "sim.tap", "reader": "saw", "uid": uid_hex(0xA000 + n)})
            return lat

        quiet = gpio_taps(args.netrelay_taps)
        stop = threading.Event()
        switches, readings = [0], [0]
        threads = netrelay_churn(d, devices, range(1, n), stop, switches, readings)
        time.sleep(0.5)
        busy = gpio_taps(args.netrelay_taps)
        stop.set()
        for t in threads:
            t.join()
        out["netrelay_device_readings_during"] = readings[0]
        out["netrelay_devices"] = n
        out["netrelay_gpio_tap_us_p99_quiet"] = percentile(quiet, 99)
        out["netrelay_gpio_tap_us_p99_busy"] = percentile(busy, 99)
        out["netrelay_switch_requests_during"] = switches[0]
    finally:
        stop_all(work, d, *devices, broker)


def bench_mqtt(args, out):
    """Tap -> event at a subscriber; a 10,000-event backlog drained after an outage."""
    import paho.mqtt.client as paho
    work = tempfile.mkdtemp(prefix="portier-bench-mqtt-")
    port = free_port()

    def broker():
        return start_mosquitto(work, port)

    received = {}
    lock = threading.Lock()

    def on_message(c, u, msg):
        e = json.loads(msg.payload)
        with lock:
            received.setdefault(e["seq"], (time.monotonic(), e))

    def listener():
        c = paho.Client(client_id="bench-listener", clean_session=True)
        ready = threading.Event()
        c.on_connect = lambda cl, u, f, rc: cl.subscribe("portier/bench/event/#", 1)
        c.on_subscribe = lambda cl, u, mid, q: ready.set()
        c.on_message = on_message
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        ready.wait(20)
        return c

    b, d = broker(), None
    try:
        benchgen(args, "populate", work, 1000, 1000)
        write_config(work, bench_config(work, mqtt_section(port) + SIM_FRONT_DOOR))
        lc = listener()
        d = Daemon(args.bin, work)
        d.start()
        time.sleep(1)
        lat = []
        for i in range(args.mqtt_taps):
            with lock:
                before = set(received)
            t0 = time.monotonic()
            r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(1000 + i)})
            eid = r["event_id"]

            def arrived():
                with lock:
                    for seq in set(received) - before:
                        t, e = received[seq]
                        if e.get("event_id") == eid:
                            return t
            got = wait_until(arrived, 10, "the tap's event at the subscriber", interval=0.0002)
            lat.append((got - t0) * 1000)
        out["mqtt_tap_to_event_ms_p50"] = percentile(lat, 50)
        out["mqtt_tap_to_event_ms_p99"] = percentile(lat, 99)

        # Outage: 10,000 taps with the broker down, then drain.
        lc.loop_stop()
        lc.disconnect()
        b.terminate()
        b.wait()
        for i in range(args.backlog):
            d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(5000 + i % 100)})
        with lock:
            received.clear()
        b = broker()
        lc = listener()
        t0 = time.monotonic()
        relay_lat = []
        while True:
            with lock:
                n = sum(1 for t, e in received.values() if e["kind"] == "tap")
            if n >= args.backlog:
                break
            if time.monotonic() - t0 > 300:
                raise RuntimeError("bench: backlog not drained (%d)" % n)
            r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(7)})
            relay_lat.append(r["latency_us"])
            time.sleep(0.005)
        with lock:
            first = min(t for t, e in received.values())
            last = max(t for t, e in received.values())
            total = len(received)
        out["mqtt_backlog"] = args.backlog
        out["mqtt_drain_events_per_s"] = total / max(last - first, 1e-6)
        out["mqtt_relay_us_p99_while_draining"] = percentile(relay_lat, 99) if relay_lat else 0
        out["mqtt_taps_during_drain"] = len(relay_lat)
        d.stop()
        lc.loop_stop()
        lc.disconnect()
    finally:
        stop_all(work, d, b)


def start_custodian(args, work, port, machine=None):
    """portier-custodian's database in work with the args.custodian_sites sites of
    portier-sitesim (their keys, and each with machine = (name, category) if given), and the
    custodian started on the broker at port: (database path, process)."""
    db = os.path.join(work, "custodian.db")
    cust = os.path.join(args.bin, "portier-custodian")
    keys = subprocess.run([os.path.join(args.bin, "portier-sitesim"), "keys", "--sites",
                           str(args.custodian_sites)],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    for line in keys:
        if line:
            name, key = line.split()
            subprocess.run([cust, "--db", db, "site", "add", name, "--key", key],
                           check=True, stdout=subprocess.DEVNULL)
            if machine:
                subprocess.run([cust, "--db", db, "site", "machine", name, machine[0],
                                "--category", machine[1]], check=True,
                               stdout=subprocess.DEVNULL)
    custodian = subprocess.Popen([cust, "--db", db, "run", "--broker", "127.0.0.1:%d" % port],
                                 stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(work, "custodian.log"), "ab"))
    time.sleep(0.5)
    return db, custodian


def sitesim_run(args, port, *more):
    """portier-sitesim's sites sending args.custodian_entries ledger entries between them
    through the broker at port: its standard output."""
    per_site = args.custodian_entries // args.custodian_sites
    return subprocess.run([os.path.join(args.bin, "portier-sitesim"), "run", "--broker",
                           "127.0.0.1:%d" % port, "--sites", str(args.custodian_sites),
                           "--entries", str(per_site)] + list(more),
                          capture_output=True, text=True, check=True, timeout=3600).stdout


def bench_custodian(args, out):
    """portier-custodian ingesting SITES x ENTRIES signed ledger entries through mosquitto."""
    work = tempfile.mkdtemp(prefix="portier-bench-custodian-")
    port = free_port()
    broker = start_mosquitto(work, port, "max_queued_messages 0\n")
    custodian = None
    try:
        db, custodian = start_custodian(args, work, port)
        figure = json.loads(sitesim_run(args, port))
        custodian.terminate()
        custodian.wait(timeout=60)
        import sqlite3
        con = sqlite3.connect(db)
        stored = con.execute("SELECT count(*) FROM entries").fetchone()[0]
        problems = con.execute("SELECT count(*) FROM problems WHERE kind != 'replay'").fetchone()[0]
        con.close()
        out["custodian_sites"] = figure["sites"]
        out["custodian_entries"] = figure["entries"]
        out["custodian_seconds"] = figure["seconds"]
        out["custodian_entries_per_s"] = figure["entries_per_second"]
        out["custodian_entries_stored"] = stored
        out["custodian_problems"] = problems
        out["custodian_db_bytes"] = os.path.getsize(db)
    finally:
        stop_all(work, custodian, broker)


def bench_opendata(args, out):
    """portier-custodian opendata for SITES sites x one month (ENTRIES ledger entries of mixed
    kinds from portier-sitesim --month, ingested through mosquitto and sealed first)."""
    work = tempfile.mkdtemp(prefix="portier-bench-opendata-")
    port = free_port()
    broker = start_mosquitto(work, port, "max_queued_messages 0\n")
    custodian = None
    period = "2026-10"
    try:
        db, custodian = start_custodian(args, work, port, ("laser", "laser-cutter"))
        cust = os.path.join(args.bin, "portier-custodian")
        per_site = args.custodian_entries // args.custodian_sites
        sitesim_run(args, port, "--month", period)
        import sqlite3
        deadline = time.monotonic() + 120
        while True:
            con = sqlite3.connect(db, timeout=30)
            verified = con.execute("SELECT count(*) FROM seals WHERE state = 'verified' AND "
                                   "period = ?", (period,)).fetchone()[0]
            con.close()
            if verified == args.custodian_sites or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        custodian.terminate()
        custodian.wait(timeout=60)
        dataset = os.path.join(work, "opendata", period)
        os.makedirs(dataset)
        t0 = time.monotonic()
        res = subprocess.run([cust, "--db", db, "opendata", "--period", period, "--out", dataset,
                              "--producer", "tools/bench"], capture_output=True, text=True,
                             timeout=3600)
        seconds = time.monotonic() - t0
        if res.returncode != 0:
            raise RuntimeError("bench: opendata failed: %s" % res.stderr)
        counted = sum(int(line.split(": ")[1].split()[0]) for line in res.stdout.splitlines()
                      if " entries of %s counted" % period in line)
        out["opendata_sites"] = verified
        out["opendata_entries"] = per_site * args.custodian_sites
        out["opendata_entries_counted"] = counted
        out["opendata_seconds"] = seconds
        out["opendata_bytes"] = sum(os.path.getsize(os.path.join(dataset, f))
                                    for f in os.listdir(dataset))
        out["opendata_summary"] = res.stdout.splitlines()[-1]
    finally:
        stop_all(work, custodian, broker)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_listening(cmd, port, what):
    """cmd started (its output dropped), once it listens on 127.0.0.1:port."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, what, p)
    return p


def start_mosquitto(work, port, extra=""):
    """A mosquitto on 127.0.0.1:port, anonymous and in memory, listening when this returns."""
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n%s"
                % (port, extra))
    return start_listening(["mosquitto", "-c", conf], port, "mosquitto")


def start_nginx(work, port, config):
    """nginx in work (its prefix) with config, a template of {dir}, {port}, {user} and
    {temp} (NGINX_TEMP), once it listens on port."""
    os.makedirs(os.path.join(work, "nginx-tmp"), exist_ok=True)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        # As root, nginx would hand its workers to "nobody", who cannot read the temp dir.
        f.write(config.format(dir=work, port=port, user="user root;" if os.geteuid() == 0 else "",
                              temp=NGINX_TEMP.format(dir=work)))
    return start_listening(["nginx", "-p", work, "-e", os.path.join(work, "nginx-error.log"),
                            "-c", os.path.join(work, "nginx.conf")], port, "nginx")


def wait_port(port, what, proc=None):
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.01)
    raise RuntimeError("bench: %s did not start listening on port %d" % (what, port))


def parse_wrk(text):
    """Requests per second, latency percentiles (µs), request count and errors from wrk."""
    units = {"us": 1, "ms": 1000, "s": 1000000}

    def dur(v):
        for u in ("us", "ms", "s"):
            if v.endswith(u):
                return float(v[:-len(u)]) * units[u]
        return float(v)

    r = {"errors": 0, "non_2xx": 0}
    for line in text.splitlines():
        f = line.split()
        if line.startswith("Requests/sec:"):
            r["rps"] = float(f[1])
        elif line.strip().startswith(("50%", "90%", "99%")) and len(f) == 2:
            r["lat_p%s_us" % f[0].rstrip("%")] = dur(f[1])
        elif " requests in " in line:
            r["requests"] = int(f[0])
        elif line.strip().startswith("Non-2xx"):
            r["non_2xx"] = int(f[-1])
        elif line.strip().startswith("Socket errors:"):
            r["errors"] = sum(int(x.rstrip(",")) for x in f[2:] if x.rstrip(",").isdigit())
    if "rps" not in r:
        raise RuntimeError("bench: cannot read wrk's output:\n" + text)
    return r


# Where nginx keeps request bodies and the like: in the bench's directory.
NGINX_TEMP = """    client_body_temp_path {dir}/nginx-tmp/body;
    proxy_temp_path {dir}/nginx-tmp/proxy;
    fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
    uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
    scgi_temp_path {dir}/nginx-tmp/scgi;"""

NGINX_CONFIG = """daemon off;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
{temp}
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        default_type text/html;
        location = /bookings {{ }}
    }}
}}
"""


def load_figures():
    """Load average and the CPU time of everything on the machine (ticks)."""
    with open("/proc/loadavg") as f:
        la = float(f.read().split()[0])
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    # user, nice, system, irq, softirq, steal
    return la, cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] if len(cpu) > 7 else 0)


# Cards of active members on the "open" plan (benchgen: a quarter of the members are on a
# weekday-hours plan, one in fifty is suspended).
WEB_CARDS = [c for c in range(1, 200) if c % 4 and c % 50 != 49][:20]

WRK_PATHS = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""

WRK_TOKENS = """
local tokens = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. tokens[(i %% #tokens) + 1]})
end
"""


def lua_list(items):
    return ", ".join('"%s"' % x for x in items)


def wrk_run(args, url, seconds, threads, connections, script=None, pids=()):
    """wrk's figures, and the CPU time of pids per request (µs)."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if script:
        cmd += ["-s", script]
    c0 = sum(cpu_ticks(x) for x in pids)
    res = subprocess.run(cmd + [url], capture_output=True, text=True, check=True)
    w = parse_wrk(res.stdout)
    if w["errors"] or w["non_2xx"]:
        raise RuntimeError("bench: wrk saw errors:\n" + res.stdout)
    if pids:
        w["cpu_us_per_request"] = ((sum(cpu_ticks(x) for x in pids) - c0)
                                   / os.sysconf("SC_CLK_TCK") * 1e6 / w["requests"])
    return w


def wrk_start(url, seconds, threads, connections, script=None):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if script:
        cmd += ["-s", script]
    return subprocess.Popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_finish(p):
    stdout, _ = p.communicate()
    w = parse_wrk(stdout)
    if w["errors"] or w["non_2xx"]:
        raise RuntimeError("bench: wrk saw errors:\n" + stdout)
    return w


def taps_during(d, load, seconds, uids, load_figures_out=None):
    """Taps timed from outside while load (a started wrk) runs; wrk's figures with them."""
    time.sleep(1)
    tappers = tappers_start(d, [("front", "front", uids)], seconds=seconds - 2, pause_ms=[0, 100])
    taps = tappers_result(tappers)
    w = wrk_finish(load)
    return taps, w


def bench_web(args, out):
    """The bookings page (50 machines, 10,000 bookings in the week): cached for anonymous
    visitors, built for signed-in members; nginx serving the same bytes; door taps timed from
    outside while the web is loaded."""
    import urllib.request
    work = tempfile.mkdtemp(prefix="portier-bench-web-")
    nginx = d = None
    try:
        benchgen(args, "populate", work, 1000, 1000)
        monday = benchgen(args, "week", work, args.web_bookings, 50)
        nport = free_port()
        d = Daemon(args.bin, work)
        port = d.start_web()
        path = "/bookings?week=%s" % monday
        url = "http://127.0.0.1:%d%s" % (port, path)
        uids = [uid_hex(c) for c in WEB_CARDS]

        def get(u, headers=None):
            t0 = time.monotonic()
            req = urllib.request.Request(u, headers=headers or {})
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError("bench: %s answered %d" % (u, resp.status))
            return body, (time.monotonic() - t0) * 1e6
        page, first_us = get(url)
        shown = page.count(b"<li>")
        if shown != args.web_bookings:
            raise RuntimeError("bench: the page shows %d bookings, not %d" % (shown, args.web_bookings))
        os.makedirs(os.path.join(work, "www"))
        with open(os.path.join(work, "www", "bookings"), "wb") as f:
            f.write(page)
        nginx = start_nginx(work, nport, NGINX_CONFIG)
        nurl = "http://127.0.0.1:%d%s" % (nport, path)
        if get(nurl)[0] != page:
            raise RuntimeError("bench: nginx does not serve the same bytes")
        npids = [nginx.pid] + children(nginx.pid)

        # Warm up (each member's first entry of the day charges it) and the idle reference.
        taps_outside(d, [("front", "front", uids)], taps=len(uids), pause_ms=[0, 10])
        out["web_idle"] = taps_outside(d, [("front", "front", uids)], taps=args.web_taps,
                                       pause_ms=[0, 100])

        hz = os.sysconf("SC_CLK_TCK")
        la0, busy0 = load_figures()
        own0 = sum(cpu_ticks(x) for x in [d.proc.pid] + npids)
        tm0 = os.times()
        t_run0 = time.monotonic()
        # The cached page against nginx's static file, in turn, at wrk -t2 -c64: both at the
        # same nice, every thread of each (portierd's web thread puts itself 5 above its
        # loop: back there for the taps).
        own_nice = d.renice_all(0)
        rounds = {"portierd": [], "nginx": []}
        for _ in range(args.web_rounds):
            rounds["nginx"].append(wrk_run(args, nurl, args.web_seconds, args.web_threads,
                                           args.web_connections, pids=npids))
            rounds["portierd"].append(wrk_run(args, url, args.web_seconds, args.web_threads,
                                              args.web_connections, pids=[d.proc.pid]))
        d.restore_nice(own_nice)
        # (c) Door taps while wrk loads the cached page.
        load = wrk_start(url, args.web_tap_seconds, args.web_threads, args.web_connections)
        out["web_cached_taps"], out["web_cached_wrk"] = taps_during(d, load, args.web_tap_seconds,
                                                                    uids)
        # The same taps while the same wrk loads nginx's copy instead: what the machine alone
        # does to a tap under that flood (loopback traffic, the kernel's work for it), the
        # floor under (c).
        load = wrk_start(nurl, args.web_tap_seconds, args.web_threads, args.web_connections)
        out["web_nginx_taps"], out["web_nginx_wrk"] = taps_during(d, load, args.web_tap_seconds,
                                                                  uids)
        elapsed = time.monotonic() - t_run0
        la1, busy1 = load_figures()
        tm1 = os.times()
        own = (sum(cpu_ticks(x) for x in [d.proc.pid] + npids) - own0) / hz + \
            (tm1.user + tm1.system + tm1.children_user + tm1.children_system
             - tm0.user - tm0.system - tm0.children_user - tm0.children_system)
        busy = (busy1 - busy0) / hz

        # Cache misses: a booking change (in another week) empties the page cache, and the
        # next view builds the page again.
        base = (int(time.time()) // 86400 + 120) * 86400
        members = sorted({1 + c % 1000 for c in WEB_CARDS})
        miss, hit = [], []
        for k in range(args.web_misses):
            r = d.request({"cmd": "booking.add", "machine": "m%d" % (k % 50),
                           "member": str(members[k % len(members)]),
                           "start": base + k * 1800, "end": base + k * 1800 + 1800})
            if not r.get("ok"):
                raise RuntimeError("bench: booking refused: %r" % r)
            body, us = get(url)
            if body.count(b"<li>") != args.web_bookings:
                raise RuntimeError("bench: the rebuilt page differs")
            miss.append(us)
            hit.append(get(url)[1])

        # (b) Signed-in members (never cached) reloading the page: 8 members, each with an
        # API token (a session cookie is looked up the same way).
        tokens = []
        for m in members[:args.web_members]:
            name = "bench%d" % m
            r = d.request({"cmd": "account.add", "name": name, "role": "member",
                           "member": str(m)})
            if not r.get("ok"):
                raise RuntimeError("bench: account.add: %r" % r)
            tokens.append(d.request({"cmd": "account.token", "name": name})["token"])
        script = os.path.join(work, "tokens.lua")
        with open(script, "w") as f:
            f.write(WRK_TOKENS % (lua_list(tokens), path))
        body, us = get(url, {"Authorization": "Bearer " + tokens[0]})
        out["web_signed_view_us"] = us
        load = wrk_start("http://127.0.0.1:%d" % port, args.web_tap_seconds, args.web_threads,
                         args.web_members, script)
        out["web_signed_taps"], out["web_signed_wrk"] = taps_during(d, load, args.web_tap_seconds,
                                                                    uids)
        # (b') The same, while a manager changes a booking (in another week) every 100 ms:
        # each change makes the next view build the week's template again, 10,000 bookings
        # read a step at a time (web/pages_public.c), the taps going between the steps.
        stop_changes = threading.Event()
        changes = [0]

        def change_bookings():
            k = 0
            while not stop_changes.is_set():
                r = d.request({"cmd": "booking.add", "machine": "m%d" % (k % 50),
                               "member": str(members[k % len(members)]),
                               "start": base + 86400 + k * 1800,
                               "end": base + 86400 + k * 1800 + 1800})
                if not r.get("ok"):
                    raise RuntimeError("bench: booking refused: %r" % r)
                changes[0] += 1
                k += 1
                stop_changes.wait(0.1)
        load = wrk_start("http://127.0.0.1:%d" % port, args.web_tap_seconds, args.web_threads,
                         args.web_members, script)
        changer = threading.Thread(target=change_bookings)
        changer.start()
        try:
            out["web_changing_taps"], out["web_changing_wrk"] = taps_during(
                d, load, args.web_tap_seconds, uids)
        finally:
            stop_changes.set()
            changer.join()
        out["web_changing_changes"] = changes[0]
        # Meanwhile-free: one control-socket request during signed-in load.
        load = wrk_start("http://127.0.0.1:%d" % port, 5, args.web_threads, args.web_members,
                         script)
        time.sleep(1)
        t0 = time.monotonic()
        d.request_raw({"cmd": "status"})
        out["web_control_reply_s_during_signed"] = time.monotonic() - t0
        wrk_finish(load)
        # Right after the load, and once the connections are gone and the daemon had its
        # quiet seconds to give memory back (as rss_with_web_and_mqtt() measures).
        out["web_rss_busy_kib"] = d.proc_value("status", "VmRSS")
        time.sleep(3)
        out["web_rss_kib"] = d.proc_value("status", "VmRSS")
        out["web_rss_anon_kib"] = d.proc_value("status", "RssAnon")

        def median_of(name, key):
            return statistics.median(w[key] for w in rounds[name])
        rps_d, rps_n = median_of("portierd", "rps"), median_of("nginx", "rps")
        out.update({
            "web_page_bytes": len(page),
            "web_week": monday,
            "web_bookings_shown": shown,
            "web_wrk": "wrk -t%d -c%d -d%ds" % (args.web_threads, args.web_connections,
                                               args.web_seconds),
            "web_rounds": args.web_rounds,
            "web_portierd_rps": rps_d,
            "web_nginx_rps": rps_n,
            "web_nginx_workers": len(npids) - 1,
            "web_rps_ratio": rps_d / rps_n,
            "web_portierd_rps_all": [w["rps"] for w in rounds["portierd"]],
            "web_nginx_rps_all": [w["rps"] for w in rounds["nginx"]],
            "web_portierd_cpu_us_per_request": median_of("portierd", "cpu_us_per_request"),
            "web_nginx_cpu_us_per_request": median_of("nginx", "cpu_us_per_request"),
            "web_portierd_latency_p99_us": median_of("portierd", "lat_p99_us"),
            "web_nginx_latency_p99_us": median_of("nginx", "lat_p99_us"),
            "web_first_view_us": first_us,
            "web_misses": len(miss),
            "web_miss_view_us_median": statistics.median(miss),
            "web_miss_view_us_max": max(miss),
            "web_hit_view_us_median": statistics.median(hit),
            "web_loadavg_before": la0,
            "web_loadavg_after": la1,
            "web_seconds_measured": elapsed,
            "web_machine_busy_percent": busy / elapsed / os.cpu_count() * 100,
            "web_others_busy_percent": max(0.0, busy - own) / elapsed / os.cpu_count() * 100,
        })
    finally:
        stop_all(work, nginx, d)


def timed_front_tap(d, card, writes, lat_in, lat_out):
    """A granted tap at the front door: its time inside the daemon into lat_in, from the
    request leaving here to the relay write into lat_out (only when this tap's write is the
    door's last one: the relock timer did not fire in between). The door's writes after it,
    and when the request left (CLOCK_MONOTONIC, µs)."""
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
    r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(card)})
    if not r.get("granted"):
        raise RuntimeError("bench: tap refused: %r" % r)
    relay = d.request({"cmd": "status"})["doors"][0]["relay"]
    lat_in.append(r["latency_us"])
    if relay["writes"] == writes + 1:
        lat_out.append(relay["last_write_mono_us"] - t0)
    return relay["writes"], t0


def stop_all(work, *parts):
    """The end of a bench, in the order given: each daemon still running stopped, each
    process terminated, each emulated device stopped (None: not started); then its files
    removed."""
    for part in parts:
        if isinstance(part, Daemon):
            if part.running():
                part.stop()
        elif isinstance(part, subprocess.Popen):
            if part.poll() is None:
                part.terminate()
                part.wait(timeout=30)
        elif part is not None:
            part.stop()
    shutil.rmtree(work, ignore_errors=True)


class Callgrind:
    """portierd under valgrind --tool=callgrind, collecting only while told to: the
    instructions a batch of requests costs, whatever the machine is busy with."""

    def __init__(self, d):
        self.d = d
        self.n = 0

    def start(self, env=None):
        self.out = os.path.join(self.d.dir, "callgrind.out")
        return self.d.start(env=env, timeout=600, wrap=[
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-systime=no",
            "--callgrind-out-file=%s.%%p" % self.out])

    def measure(self, what):
        """Instructions (Ir) of what(), in every thread of the daemon."""
        pid = str(self.d.proc.pid)
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        what()
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        self.n += 1
        subprocess.run(["callgrind_control", "-d", "bench%d" % self.n, pid], check=True,
                       capture_output=True)
        return self.total("bench%d" % self.n)

    def total(self, trigger):
        for path in os.listdir(self.d.dir):
            if not path.startswith("callgrind.out."):
                continue
            with open(os.path.join(self.d.dir, path), errors="replace") as f:
                text = f.read()
            if "desc: Trigger: dump %s\n" % trigger not in text:
                continue
            for line in text.splitlines():
                if line.startswith("totals:"):
                    return int(line.split()[1])
        raise RuntimeError("bench: no callgrind dump for %s" % trigger)


def bench_instructions(args, out):
    """Instructions per ordinary tap, per first tap of the day, per cached page and per
    signed-in page (callgrind): figures that do not depend on what else the machine runs,
    from which a Raspberry Pi's cost can be estimated (docs/performance.md)."""
    work = tempfile.mkdtemp(prefix="portier-bench-instr-")
    d = None
    try:
        benchgen(args, "populate", work, args.members, args.cards)
        benchgen(args, "daycharges", work, args.day_charges)
        monday = benchgen(args, "week", work, args.web_bookings, 50)
        d = Daemon(args.bin, work)
        cg = Callgrind(d)
        port = d.start_web(start=cg.start)
        n = args.instr_ops
        first = uids_of_members(args.members, n, args.cards, hi=args.members // 2)

        def taps(uids):
            for uid in uids:
                r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid})
                if not r.get("granted"):
                    raise RuntimeError("bench: tap refused under callgrind: %r" % r)
        out["instr_first_tap"] = cg.measure(lambda: taps(first)) / n
        out["instr_tap"] = cg.measure(lambda: taps(first)) / n
        noop = cg.measure(lambda: [d.request({"cmd": "sim.advance", "seconds": 0})
                                   for _ in range(n)]) / n
        out["instr_control_request"] = noop

        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        path = "/bookings?week=%s" % monday

        def views(headers):
            for _ in range(n):
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError("bench: %s answered %d" % (path, r.status))
        views({})                                       # the page is built, then cached
        out["instr_cached_page"] = cg.measure(lambda: views({})) / n
        r = d.request({"cmd": "account.add", "name": "benchinstr", "role": "member",
                       "member": "2"})
        token = d.request({"cmd": "account.token", "name": "benchinstr"})["token"]
        auth = {"Authorization": "Bearer " + token}
        views(auth)
        out["instr_signed_page"] = cg.measure(lambda: views(auth)) / n
        # The first view after a change builds the template: once per booking change.
        base = (int(time.time()) // 86400 + 120) * 86400

        def rebuild():
            for k in range(5):
                d.request({"cmd": "booking.add", "machine": "m0", "member": "2",
                           "start": base + k * 1800, "end": base + k * 1800 + 1800})
                conn.request("GET", path, headers=auth)
                conn.getresponse().read()
        out["instr_page_rebuild"] = (cg.measure(rebuild) - 5 * noop) / 5
        conn.close()
        out["instr_ops"] = n
    finally:
        stop_all(work, d)


def instructions_rows(out):
    return [
        ("instructions per ordinary tap through the control socket (callgrind, every thread)",
         "%.0f" % out["instr_tap"], "—"),
        ("  per first tap of the day (%d members, %d day charges this month)"
         % (out["members"], out["day_charges"]), "%.0f" % out["instr_first_tap"], "—"),
        ("  of which the control socket itself (a request that does nothing)",
         "%.0f" % out["instr_control_request"], "—"),
        ("instructions per view of the bookings week (%d bookings), cached (anonymous)"
         % out["web_bookings_shown"] if "web_bookings_shown" in out else
         "instructions per view of the bookings week, cached (anonymous)",
         "%.0f" % out["instr_cached_page"], "—"),
        ("  signed in (from the week's template)", "%.0f" % out["instr_signed_page"], "—"),
        ("  the first view after a booking change (the template built again)",
         "%.0f" % out["instr_page_rebuild"], "—"),
    ]


def bench_status_load(args, out):
    """(a) 16 clients fetching /, /healthz, /metrics and /spaceapi.json in a loop on a site of
    STATUS_MEMBERS members (none of them needs a login), door taps timed from outside."""
    work = tempfile.mkdtemp(prefix="portier-bench-status-")
    d = None
    try:
        benchgen(args, "populate", work, args.status_members, args.status_members)
        d = Daemon(args.bin, work)
        port = d.start_web()
        uids = uids_of_members(args.status_members, 20, args.status_members)
        taps_outside(d, [("front", "front", uids)], taps=len(uids), pause_ms=[0, 10])
        script = os.path.join(work, "paths.lua")
        with open(script, "w") as f:
            f.write(WRK_PATHS % lua_list(["/", "/healthz", "/metrics", "/spaceapi.json"]))
        load = wrk_start("http://127.0.0.1:%d" % port, args.web_tap_seconds, 2, 16, script)
        out["status_taps"], out["status_wrk"] = taps_during(d, load, args.web_tap_seconds, uids)
        out["status_members"] = args.status_members
        out["status_rss_kib"] = d.proc_value("status", "VmRSS")
    finally:
        stop_all(work, d)


def taps_row(label, t, goal="p99 ≤ 2 ms"):
    return ("%s: tap → relay from outside, p50 / p99 / max (%d taps, 1-min load %.1f); inside "
            "the daemon p99" % (label, t["taps"], t["loadavg"]),
            "%.2f / %.2f / %.1f ms; %.0f µs" % (t["outside_p50"] / 1000, t["outside_p99"] / 1000,
                                               t["outside_max"] / 1000, t["inside_p99"]), goal)


def web_rows(out):
    return [
        ("bookings page, 50 machines × 7 days, %d bookings shown: size"
         % out["web_bookings_shown"], "%d B" % out["web_page_bytes"], "—"),
        taps_row("no web load", out["web_idle"], "—"),
        ("cached page: portierd requests/s (%s, keep-alive, median of %d)"
         % (out["web_wrk"], out["web_rounds"]), "%.0f" % out["web_portierd_rps"], "—"),
        ("  nginx serving the same bytes as a static file, same settings (%d workers)"
         % out["web_nginx_workers"], "%.0f" % out["web_nginx_rps"], "—"),
        ("  ratio portierd / nginx", "%.2f" % out["web_rps_ratio"], "≥ 1.0"),
        ("  server CPU time per request, portierd / nginx", "%.0f / %.0f µs"
         % (out["web_portierd_cpu_us_per_request"], out["web_nginx_cpu_us_per_request"]), "—"),
        ("  wrk latency p99, portierd / nginx", "%.2f / %.2f ms"
         % (out["web_portierd_latency_p99_us"] / 1000, out["web_nginx_latency_p99_us"] / 1000),
         "—"),
        taps_row("(c) %s on the cached page (%.0f requests/s meanwhile)"
                 % (out["web_wrk"].split(" -d")[0], out["web_cached_wrk"]["rps"]),
                 out["web_cached_taps"]),
        taps_row("  the same taps while the same wrk loads nginx's copy instead (%.0f requests/s;"
                 " the machine's floor under (c))" % out["web_nginx_wrk"]["rps"],
                 out["web_nginx_taps"], "—"),
        ("page view right after a booking change (cache miss), median / max of %d"
         % out["web_misses"], "%.1f / %.1f ms" % (out["web_miss_view_us_median"] / 1000,
                                                  out["web_miss_view_us_max"] / 1000), "—"),
        ("  the next view (cached), median", "%.1f ms" % (out["web_hit_view_us_median"] / 1000),
         "—"),
        ("signed-in bookings page (never cached), 8 members reloading: requests/s",
         "%.0f" % out["web_signed_wrk"]["rps"], "≥ 1,000"),
        taps_row("(b) 8 signed-in members reloading the bookings page", out["web_signed_taps"]),
        taps_row("(b') the same, a booking changed every 100 ms (%d changes: the week built "
                 "again each time, %.0f views/s)" % (out["web_changing_changes"],
                                                     out["web_changing_wrk"]["rps"]),
                 out["web_changing_taps"], "p99 ≤ 2 ms"),
        ("  meanwhile, one control-socket request (status) answered after",
         "%.2f s" % out["web_control_reply_s_during_signed"], "—"),
        ("portierd resident memory right after the load (VmRSS)", "%.1f MiB"
         % (out["web_rss_busy_kib"] / 1024), "—"),
        ("  and 3 s later, its connections gone (VmRSS / anonymous)", "%.1f / %.1f MiB"
         % (out["web_rss_kib"] / 1024, out["web_rss_anon_kib"] / 1024), "≤ 12 MiB"),
        ("machine during the cached-page runs: 1-min load before → after; CPU used by others",
         "%.2f → %.2f; %.0f %% of %d cores" % (out["web_loadavg_before"], out["web_loadavg_after"],
                                               out["web_others_busy_percent"], os.cpu_count()),
         "—"),
    ]


WEBHOOK_SECTION = """[webhook bench]
url = https://127.0.0.1:{port}/hook
events = tap
secret = bench-secret-0123456789
tls_ca = {dir}/ca.crt
"""

RECEIVER_CONFIG = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    log_format hook '$msec $http_portier_event_id $status';
    access_log {dir}/hook.log hook;
    keepalive_requests 1000000;
{temp}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/server.crt;
        ssl_certificate_key {dir}/server.key;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def bench_webhooks(args, out):
    """Tap -> signed POST received over HTTPS (nginx, same machine, its access log timing
    each request); a 10,000-event backlog drained after an outage of the receiver, while
    network relays (emulated Shelly devices through mosquitto) switch all the time; the
    door's tap -> GPIO relay time meanwhile. MQTT is on too: it reads the same outbox."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "emu"))
    sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
    from netdev_emu import Shelly
    from portier_harness import make_test_ca        # the tests' CA, for the receiver
    work = tempfile.mkdtemp(prefix="portier-bench-webhooks-")
    port, mqtt_port = free_port(), free_port()
    log = os.path.join(work, "hook.log")
    n = args.netrelay_devices
    nginx = broker = d = None
    devices = []

    def lines():
        try:
            with open(log) as f:
                return [l.split() for l in f if l.strip()]
        except FileNotFoundError:
            return []

    try:
        make_test_ca(work, "bench-ca")
        benchgen(args, "populate", work, 1000, 1000)
        write_config(work, bench_config(work, mqtt_section(mqtt_port) + SIM_FRONT_DOOR +
                                        WEBHOOK_SECTION.format(port=port, dir=work) +
                                        shelly_machines(n), relay_files=False))
        broker = start_mosquitto(work, mqtt_port, "set_tcp_nodelay true\n")
        devices = [Shelly(mqtt_port, "bench-plug-%d" % i).start() for i in range(n)]
        nginx = start_nginx(work, port, RECEIVER_CONFIG)
        d = Daemon(args.bin, work)
        d.start()
        d.request({"cmd": "plan.add", "name": "bench-machines", "zones": "*", "hours": "always"})
        for k in range(n):
            d.request({"cmd": "member.add", "name": "N%d" % k, "plan": "bench-machines"})
            d.request({"cmd": "card.add", "member": "N%d" % k, "uid": uid_hex(0xA000 + k)})
            d.request({"cmd": "machine.set", "machine": "n%d" % k, "hours": "always",
                       "booking_required": False, "walkup_free_minutes": 0})
        time.sleep(0.5)

        # Tap -> the receiver has the event (one tap, one event: events = tap).
        lat, quiet_relay = [], []
        for i in range(args.webhook_taps):
            before = len(lines())
            t0 = time.time()
            r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(1000 + i % 500)})
            quiet_relay.append(r["latency_us"])
            wait_until(lambda: len(lines()) > before, 10, "the webhook event", interval=0.0002)
            got = lines()[before]
            if got[2] != "200":
                raise RuntimeError("bench: the receiver answered %s" % got[2])
            lat.append((float(got[0]) - t0) * 1000)
        out["webhook_tap_to_post_ms_p50"] = percentile(lat, 50)
        out["webhook_tap_to_post_ms_p99"] = percentile(lat, 99)
        out["webhook_taps"] = len(lat)
        out["webhook_relay_us_p99_one_at_a_time"] = percentile(quiet_relay, 99)

        # Outage: the backlog builds up, then drains while taps go on and the network
        # relays switch every 100 ms each (a request and the device's confirmation), their
        # devices sending readings at about 50 a second.
        nginx.terminate()
        nginx.wait()
        nginx = None
        for i in range(args.backlog):
            d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(5000 + i % 100)})
        os.unlink(log)
        stop = threading.Event()
        switches = [0]
        threads = netrelay_churn(d, devices, range(n), stop, switches)
        nginx = start_nginx(work, port, RECEIVER_CONFIG)
        t0 = time.monotonic()
        relay_lat = []
        switches_at_start = None
        while True:
            got = len(lines())
            if got > 0 and switches_at_start is None:
                switches_at_start = switches[0]
            if got >= args.backlog:
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError("bench: backlog not drained (%d)" % got)
            # Taps only once the drain has begun (the webhook may still be backing off).
            if got > 0:
                r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(7)})
                relay_lat.append(r["latency_us"])
            time.sleep(0.005)
        stop.set()
        for t in threads:
            t.join()
        got = lines()[:args.backlog]
        first, last = float(got[0][0]), float(got[-1][0])
        out["webhook_backlog"] = args.backlog
        out["webhook_drain_events_per_s"] = (len(got) - 1) / max(last - first, 1e-6)
        out["webhook_relay_us_p99_while_draining"] = percentile(relay_lat, 99) if relay_lat else 0
        out["webhook_taps_during_drain"] = len(relay_lat)
        out["webhook_netrelay_switches_during_drain"] = switches[0] - (switches_at_start or 0)
        out["webhook_netrelay_devices"] = n
        out["webhook_rss_kib"] = d.proc_value("status", "VmRSS")
        out["webhook_rss_anon_kib"] = d.proc_value("status", "RssAnon")
    finally:
        stop_all(work, d, *devices, nginx, broker)


# Entrance screens in a process of their own (no GIL shared with the timed taps): opens N
# streams (HTTP/1.0: each body ends with its connection), prints "N" once every screen has
# its first board, then one line "MONOTONIC_SECONDS SCREEN COUNT" per board received.
WEB_KIOSK_SCREENS = r"""
import re, selectors, socket, sys, time
port, paths = int(sys.argv[1]), sys.argv[2:]
sel = selectors.DefaultSelector()
bufs, first = {}, set()
for i, p in enumerate(paths):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(("GET %s/events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % p).encode())
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, i)
    bufs[i] = b""
while True:
    for key, _ in sel.select():
        i = key.data
        try:
            chunk = key.fileobj.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            sys.exit("screen %d: the stream ended" % i)
        now = time.monotonic()
        bufs[i] += chunk
        while b"\n\n" in bufs[i]:
            block, bufs[i] = bufs[i].split(b"\n\n", 1)
            m = re.search(rb'<span id="k-present">(\d+)</span>', block)
            if m:
                print("%.6f %d %d" % (now, i, int(m.group(1))), flush=True)
                if i not in first:
                    first.add(i)
                    if len(first) == len(paths):
                        print(len(paths), flush=True)
"""


# A member on the phone view: the machine page of a day, the booking form for a start, the
# booking, the page it leads to; then the cancellation. A separate process (no GIL shared
# with the timed taps); prints what it did.
WEB_PHONE_BOOKING = r"""
import http.client, json, re, sys, time
port, token, seconds, day, pause = (int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4],
                                     float(sys.argv[5]))
h = {"Authorization": "Bearer " + token, "Content-Type": "application/x-www-form-urlencoded"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def req(method, path, body=None):
    time.sleep(pause)           # a person reads, chooses, taps
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    r.read()
    return r
n, end, hour = 0, time.monotonic() + seconds, 0
while time.monotonic() < end:
    start = "%sT%02d:%02d" % (day, hour // 2, hour % 2 * 30)
    hour = (hour + 1) % 48
    if req("GET", "/machines/bench?day=%s&start=%s" % (day, start)).status != 200:
        sys.exit("phone view: the page")
    r = req("POST", "/bookings", "machine=bench&start=%s&minutes=30" % start)
    if r.status != 303:
        sys.exit("phone view: booking answered %d" % r.status)
    loc = r.getheader("Location")
    bid = re.search(r"booked=(\d+)", loc).group(1)
    req("GET", loc)
    r = req("POST", "/bookings/%s/cancel" % bid, "back=/")
    if r.status != 303:
        sys.exit("phone view: cancel answered %d" % r.status)
    n += 1
print(json.dumps({"bookings": n}))
"""


def _wait_all_screens(proc, n):
    """Read the screens' output until the line that says all n have their first board."""
    for line in proc.stdout:
        if line.split() == [str(n)]:
            return True
    return False


def bench_web_live(args, out):
    """The machine page of a machine open 24/7 (30-minute slots, every rule) as a member
    sees it: its build time; and tap → relay while 20 entrance screens follow the site live
    and a member books from the phone view."""
    import re
    import urllib.request
    work = tempfile.mkdtemp(prefix="portier-bench-live-")
    d = phone = screens = None
    try:
        benchgen(args, "populate", work, 1000, 1000)
        # The daemon's own time per request (first byte read to answer handed to the
        # socket) is in its debug log.
        conf = os.path.join(work, "portier.conf")
        text = re.sub(r"log_level = \w+", "log_level = debug", open(conf).read())
        open(conf, "w").write(text)
        d = Daemon(args.bin, work)
        port = d.start_web("per_address_connections = 64\nmax_connections = 128\n[web]\n"
                           "kiosk_max_screens = %d\n" % args.kiosk_screens)

        def ok(obj):
            r = d.request(obj)
            if not r.get("ok"):
                raise RuntimeError("bench: %r: %r" % (obj, r))
            return r
        member = str(1 + WEB_CARDS[0] % 1000)
        ok({"cmd": "training.add", "name": "bench-training"})
        ok({"cmd": "training.grant", "member": member, "training": "bench-training"})
        ok({"cmd": "machine.add", "machine": "bench", "training": "bench-training",
            "slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "window_days": 14,
            "quota_day_minutes": 480, "quota_week_minutes": 1200, "cancel_deadline_minutes": 0,
            "hours": "always"})
        # A busy week: other members' bookings every other hour, and some of this member's.
        now = d.request({"cmd": "sim.advance", "seconds": 0})["now"]
        day0 = (now // 86400 + 1) * 86400
        booked = 0
        for k in range(7 * 12):
            who = member if k % 10 == 0 else str(1 + (k * 7) % 1000)
            d.request({"cmd": "training.grant", "member": who, "training": "bench-training"})
            r = d.request({"cmd": "booking.add", "machine": "bench", "member": who,
                           "start": day0 + k * 7200, "end": day0 + k * 7200 + 3600})
            booked += bool(r.get("ok"))
        if booked < 7 * 12 * 3 // 4:
            raise RuntimeError("bench: only %d bookings of %d" % (booked, 7 * 12))
        ok({"cmd": "account.add", "name": "benchphone", "role": "member", "member": member})
        token = ok({"cmd": "account.token", "name": "benchphone"})["token"]

        # The machine page as that member sees it (seven days, every slot checked).
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        lat, size = [], 0
        day = time.strftime("%Y-%m-%d", time.localtime(day0))
        for k in range(args.page_views):
            t0 = time.monotonic()
            c.request("GET", "/machines/bench?day=%s" % day,
                      headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or b'class="slot"' not in body:
                raise RuntimeError("bench: the machine page answered %d" % r.status)
            lat.append((time.monotonic() - t0) * 1e6)
            size = len(body)
        c.close()
        server = [int(m) for m in re.findall(
            r"GET /machines/bench -> 200 \((\d+) us\)",
            open(os.path.join(work, "portierd.log"), errors="replace").read())]
        out.update({
            "page_machine_bytes": size,
            "page_machine_rows": body.count(b"<tr><th scope=\"row\">"),
            "page_machine_build_us_median": statistics.median(server[1:]),
            "page_machine_build_us_p99": percentile(server[1:], 99),
            "page_machine_client_us_median": statistics.median(lat[1:]),
            "page_machine_views": len(server) - 1,
        })

        # The reference: door taps with nothing else going on (on a shared machine, its p99
        # is the noise the figures below sit on). When allowed (root), the daemon and this
        # process run at nice -10 meanwhile, so that other work on the machine counts less.
        rng = random.Random(7)
        try:
            os.setpriority(os.PRIO_PROCESS, d.proc.pid, -10)
            os.setpriority(os.PRIO_PROCESS, 0, -10)
            out["kiosk_nice"] = -10
        except OSError:
            out["kiosk_nice"] = 0

        def tap_once(k, writes):
            card = WEB_CARDS[k % len(WEB_CARDS)]
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
            r = d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(card)})
            if not r.get("granted"):
                raise RuntimeError("bench: tap refused: %r" % r)
            relay = d.request({"cmd": "status"})["doors"][0]["relay"]
            sent = relay["last_write_mono_us"] - t0 if relay["writes"] == writes + 1 else None
            return t0, r["latency_us"], sent, relay["writes"]
        writes = d.request({"cmd": "status"})["doors"][0]["relay"]["writes"]
        idle = []
        for k in range(len(WEB_CARDS), len(WEB_CARDS) + 150):
            time.sleep(rng.random() * 0.05)
            _, _, sent, writes = tap_once(k, writes)
            if sent is not None:
                idle.append(sent)
        out["kiosk_idle_tap_sent_to_relay_us_p99"] = percentile(idle, 99)
        out["kiosk_loadavg"] = load_figures()[0]

        # Entrance screens, a member booking from the phone view, and door taps meanwhile.
        paths = [ok({"cmd": "kiosk.add", "label": "screen %d" % k})["path"]
                 for k in range(args.kiosk_screens)]
        screens = subprocess.Popen([sys.executable, "-c", WEB_KIOSK_SCREENS, str(port)] + paths,
                                   stdout=subprocess.PIPE, text=True)
        if screens.stdout.readline().split() != [str(len(paths))] and \
                not _wait_all_screens(screens, len(paths)):
            raise RuntimeError("bench: the screens did not all get a board")
        rng = random.Random(7)
        writes = d.request({"cmd": "status"})["doors"][0]["relay"]["writes"]
        seconds = max(args.web_seconds, 20)
        phone = subprocess.Popen([sys.executable, "-c", WEB_PHONE_BOOKING, str(port), token,
                                  str(seconds), time.strftime("%Y-%m-%d", time.localtime(day0 + 86400 * 8)),
                                  str(args.phone_pause)],
                                 stdout=subprocess.PIPE, text=True)
        lat_in, lat_out, changes = [], [], []
        present = d.request({"cmd": "status"})["present"]
        end = time.monotonic() + seconds - 2
        k = 0
        # Members who have not come in yet: each tap is a first entry, a new people count.
        fresh = [c for c in range(200, 1000) if c % 4 and c % 50 != 49]
        while time.monotonic() < end and phone.poll() is None:
            time.sleep(rng.random() * 0.1)
            card = fresh[k % len(fresh)]
            k += 1
            writes, t0 = timed_front_tap(d, card, writes, lat_in, lat_out)
            # A first entry of the day changes the people count: the screens' log says when
            # each showed it.
            now_present = d.request({"cmd": "status"})["present"]
            if now_present != present:
                present = now_present
                changes.append((t0 / 1e6, present))
        stdout, _ = phone.communicate()
        if phone.returncode != 0:
            raise RuntimeError("bench: the phone view failed")
        time.sleep(1)
        screens.terminate()
        boards, _ = screens.communicate()
        seen = {}                       # (screen, count) -> first time shown
        for line in boards.splitlines():
            f = line.split()
            if len(f) == 3:
                seen.setdefault((int(f[1]), int(f[2])), float(f[0]))
        to_screens = []
        for t_tap, count in changes:
            times = [seen.get((i, count)) for i in range(len(paths))]
            if all(x is not None for x in times):
                to_screens.append((max(times) - t_tap) * 1e3)
        out.update({
            "kiosk_screens": len(paths),
            "kiosk_phone_bookings": json.loads(stdout)["bookings"],
            "kiosk_phone_pause_s": args.phone_pause,
            "kiosk_taps": len(lat_out),
            "kiosk_tap_sent_to_relay_us_p50": percentile(lat_out, 50),
            "kiosk_tap_sent_to_relay_us_p99": percentile(lat_out, 99),
            "kiosk_tap_to_relay_us_p99": percentile(lat_in, 99),
            "kiosk_count_changes": len(to_screens),
            "kiosk_tap_to_all_screens_ms_median": statistics.median(to_screens) if to_screens else -1,
            "kiosk_tap_to_all_screens_ms_max": max(to_screens) if to_screens else -1,
        })
    finally:
        if out.get("kiosk_nice"):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        stop_all(work, screens, phone, d)


def web_live_rows(out):
    return [
        ("machine page, open 24/7, 30-min slots, 7 days, a member with every rule "
         "(training, quotas, window; %d rows, %d B): build time in portierd, median / p99 of %d"
         % (out["page_machine_rows"], out["page_machine_bytes"], out["page_machine_views"]),
         "%.2f / %.2f ms" % (out["page_machine_build_us_median"] / 1000,
                             out["page_machine_build_us_p99"] / 1000), "≤ 5 ms"),
        ("  the same view from the client (loopback, keep-alive), median",
         "%.2f ms" % (out["page_machine_client_us_median"] / 1000), "—"),
        ("tap → relay write with %d entrance screens live and a member booking from the phone "
         "view (page, form, booking, page, cancel; %.2f s between steps: %d bookings), from the "
         "client, p50 / p99 (%d taps)"
         % (out["kiosk_screens"], out["kiosk_phone_pause_s"], out["kiosk_phone_bookings"],
            out["kiosk_taps"]),
         "%.0f / %.0f µs" % (out["kiosk_tap_sent_to_relay_us_p50"],
                            out["kiosk_tap_sent_to_relay_us_p99"]), "p99 ≤ 2 ms"),
        ("  same, inside the daemon (latency_us), p99",
         "%.0f µs" % out["kiosk_tap_to_relay_us_p99"], "—"),
        ("  the same taps with nothing else going on, from the client, p99 (the machine's "
         "noise: 1-min load %.1f; daemon and bench at nice %d)" % (out["kiosk_loadavg"],
                                                                   out["kiosk_nice"]),
         "%.0f µs" % out["kiosk_idle_tap_sent_to_relay_us_p99"], "—"),
        ("  tap → the new people count on every screen, median / max (%d changes)"
         % out["kiosk_count_changes"],
         "%.0f / %.0f ms" % (out["kiosk_tap_to_all_screens_ms_median"],
                             out["kiosk_tap_to_all_screens_ms_max"]), "≤ 1 s"),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--taps", type=int, default=10000)
    ap.add_argument("--members", type=int, default=100000)
    ap.add_argument("--cards", type=int, default=300000)
    ap.add_argument("--reader-taps", type=int, default=200)
    ap.add_argument("--day-charges", type=int, default=300000)
    ap.add_argument("--outside-taps", type=int, default=500)
    ap.add_argument("--slow-sync-ms", type=int, default=20)
    ap.add_argument("--desfire-taps", type=int, default=200)
    ap.add_argument("--only", choices=["core", "readers", "desfire", "fablab", "metering",
                                       "privacy", "mqtt", "webhooks", "custodian", "opendata",
                                       "web", "netrelays", "web-live", "status", "instructions"])
    ap.add_argument("--netrelay-taps", type=int, default=500)
    ap.add_argument("--netrelay-devices", type=int, default=8)
    ap.add_argument("--prune-rows", type=int, default=1000000)
    ap.add_argument("--custodian-sites", type=int, default=50)
    ap.add_argument("--custodian-entries", type=int, default=1000000)
    ap.add_argument("--mqtt-taps", type=int, default=500)
    ap.add_argument("--webhook-taps", type=int, default=500)
    ap.add_argument("--backlog", type=int, default=10000)
    ap.add_argument("--usage-records", type=int, default=60000)
    ap.add_argument("--ledger-entries", type=int, default=1000000)
    ap.add_argument("--bookings", type=int, default=200000)
    ap.add_argument("--machine-taps", type=int, default=2000)
    ap.add_argument("--booking-creations", type=int, default=2000)
    ap.add_argument("--web-bookings", type=int, default=10000)
    ap.add_argument("--web-seconds", type=int, default=10)
    ap.add_argument("--web-rounds", type=int, default=3)
    ap.add_argument("--web-threads", type=int, default=2)
    ap.add_argument("--web-connections", type=int, default=64)
    ap.add_argument("--web-taps", type=int, default=300)
    ap.add_argument("--web-tap-seconds", type=int, default=20)
    ap.add_argument("--web-misses", type=int, default=20)
    ap.add_argument("--web-members", type=int, default=8)
    ap.add_argument("--status-members", type=int, default=1000000)
    ap.add_argument("--instr-ops", type=int, default=200)
    ap.add_argument("--worker-seconds", type=float, default=10)
    ap.add_argument("--web-signed-rate", type=float, default=10)
    ap.add_argument("--kiosk-screens", type=int, default=20)
    ap.add_argument("--page-views", type=int, default=200)
    ap.add_argument("--phone-pause", type=float, default=0.25)
    ap.add_argument("--json")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)    # portierd runs its reader workers from "/"

    out = {"machine": "%s, %d cores, %s" % (platform.machine(), os.cpu_count(), platform.release()),
           "members": args.members, "cards": args.cards}
    rows = []
    if args.only in (None, "core"):
        bench_core(args, out)
        rows += core_rows(out)
    if args.only in (None, "readers"):
        bench_readers(args, out)
        bench_worker_instructions(args, out)
        rows += [
            ("idle reader worker: instructions per second (callgrind, %.0f polls a second)"
             % out["worker_polls_per_s"], "%.0f" % out["worker_instructions_per_s"], "≤ 300,000"),
            ("  per poll", "%.0f" % out["worker_instructions_per_poll"], "—"),
            ("card inserted → relay energised through libnfc at 115200 baud, p50",
             "%.1f ms" % out["card_to_relay_ms_p50"], "—"),
            ("card inserted → relay energised (from outside: the emulator's insert to the relay's "
             "state), p99 / max (%d taps)" % out["reader_taps"],
             "%.1f / %.1f ms" % (out["card_to_relay_ms_p99"], out["card_to_relay_ms_max"]),
             "p99 ≤ 60 ms"),
            ("idle CPU, daemon + 2 polling workers", "%.2f %% of one core"
             % out["idle_cpu_percent_of_one_core"], "≤ 1 %"),
            ("hung reader → detected and restarted", "%.0f ms" % out["hung_reader_detect_ms"], "—"),
            ("hung reader → first successful read after restart",
             "%.0f ms" % out["hung_reader_to_first_read_ms"], "—"),
        ]
    if args.only in (None, "desfire"):
        bench_desfire(args, out)
        rows += [
            ("DESFire card inserted → relay energised, AES authentication through libnfc at "
             "115200 baud, p50", "%.1f ms" % out["desfire_card_to_relay_ms_p50"], "—"),
            ("DESFire card inserted → relay energised, p99 (%d taps)" % out["desfire_taps"],
             "%.1f ms" % out["desfire_card_to_relay_ms_p99"], "≤ 150 ms"),
            ("  PN532 frames one DESFire tap exchanges (of which with the card)",
             "%d (%d)" % (out["desfire_tap_frames_p50"], out["desfire_tap_card_commands_p50"]),
             "—"),
            ("provisioning a DESFire card (site application), card on the reader → done, p50",
             "%.0f ms" % out["desfire_provision_ms_p50"], "—"),
            ("  commands to the card per provisioning", "%d" % out["desfire_provision_card_commands"],
             "—"),
        ]
    if args.only in (None, "fablab"):
        bench_fablab(args, out)
        rows += [
            ("machine tap → relay write, p50 (%d bookings, 50 machines)" % args.bookings,
             "%.0f µs" % out["machine_tap_to_relay_us_p50"], "—"),
            ("machine tap → relay write, p99", "%.0f µs" % out["machine_tap_to_relay_us_p99"],
             "≤ 1 ms"),
            ("booking creation with all rule checks, p50",
             "%.0f µs" % out["booking_check_us_p50"], "—"),
            ("booking creation with all rule checks, p99",
             "%.0f µs" % out["booking_check_us_p99"], "≤ 2 ms"),
            ("booking creation round trip incl. durable commit, p99",
             "%.0f µs" % out["booking_round_trip_us_p99"], "—"),
        ]
    if args.only in (None, "metering"):
        bench_metering(args, out)
        rows += [
            ("statement, %d members × 1 month (%d records), JSON from the daemon"
             % (out["statement_members"], out["statement_records"]),
             "%.2f s" % out["statement_json_s"], "—"),
            ("same statement as CSV through portierctl (%d lines)" % out["statement_csv_lines"],
             "%.2f s" % out["statement_csv_s"], "—"),
            ("closing that month (statement, seal, signed archive): round trip"
             , "%.2f s" % out["close_s"], "—"),
            taps_row("  meanwhile, taps at the front door", out["close_taps"]),
            ("ledger verify, %d entries (%s)" % (out["verify_entries"],
                                                 "intact" if out["verify_intact"] else "BROKEN"),
             "%.2f s" % out["verify_s"], "≤ 5 s"),
            ("  signature checks for it", "%d" % out["verify_signatures"], "—"),
        ]
    if args.only in (None, "privacy"):
        bench_privacy(args, out)
        rows += [
            ("retention: %d access-log rows deleted while taps go on"
             % out["prune_rows"], "%.1f s" % out["prune_s"], "—"),
            ("  steps on the loop (a tap waits at most for the one in progress): count, "
             "p50, p99, max", "%d, %.0f µs, %.0f µs, %.0f µs" % (
                 out["prune_steps"], out["prune_step_us_p50"], out["prune_step_us_p99"],
                 out["prune_longest_step_us"]), "—"),
            ("  tap → relay write, p99 during the pass (%d taps) / idle"
             % out["prune_taps_during"], "%.0f µs / %.0f µs" % (
                 out["prune_relay_us_p99_during"], out["prune_relay_us_p99_idle"]), "≤ 2 ms"),
            ("  tap → relay write from the request leaving the client, p50 / p99 / max during "
             "the pass (%d taps)" % out["prune_client_relay_n_during"],
             "%.0f / %.0f / %.0f µs" % (out["prune_client_relay_us_p50_during"],
                                        out["prune_client_relay_us_p99_during"],
                                        out["prune_client_relay_us_max_during"]), "p99 ≤ 2 ms"),
            ("  same with no pass (%d taps)" % out["prune_client_relay_n_idle"],
             "%.0f / %.0f / %.0f µs" % (out["prune_client_relay_us_p50_idle"],
                                        out["prune_client_relay_us_p99_idle"],
                                        out["prune_client_relay_us_max_idle"]), "—"),
            ("  tap round trip through the control socket incl. durable commit, p99 during / idle",
             "%.0f µs / %.0f µs" % (out["prune_rtt_us_p99_during"], out["prune_rtt_us_p99_idle"]),
             "—"),
            ("  tap round trip, max during / idle", "%.0f µs / %.0f µs" % (
                out["prune_rtt_us_max_during"], out["prune_rtt_us_max_idle"]), "—"),
            ("  pages given back; database file before → after", "%d; %.0f → %.0f MiB" % (
                out["prune_pages_freed"], out["prune_db_bytes_before"] / 1048576,
                out["prune_db_bytes_after"] / 1048576), "—"),
        ]
    if args.only in (None, "mqtt"):
        bench_mqtt(args, out)
        rows += [
            ("tap → event received by a subscriber (mosquitto, same machine), p50",
             "%.1f ms" % out["mqtt_tap_to_event_ms_p50"], "—"),
            ("tap → event received, p99", "%.1f ms" % out["mqtt_tap_to_event_ms_p99"], "≤ 20 ms"),
            ("backlog of %d events drained after a broker outage" % out["mqtt_backlog"],
             "%.0f events/s" % out["mqtt_drain_events_per_s"], "—"),
            ("tap → relay p99 while the outbox drains (%d taps)" % out["mqtt_taps_during_drain"],
             "%.0f µs" % out["mqtt_relay_us_p99_while_draining"], "≤ 1 ms"),
        ]
    if args.only in (None, "webhooks"):
        bench_webhooks(args, out)
        rows += [
            ("tap → signed event received by an HTTPS receiver (nginx, same machine), p50",
             "%.1f ms" % out["webhook_tap_to_post_ms_p50"], "—"),
            ("tap → webhook event received, p99 (%d taps)" % out["webhook_taps"],
             "%.1f ms" % out["webhook_tap_to_post_ms_p99"], "—"),
            ("backlog of %d events drained after the receiver's outage (in_flight 4)"
             % out["webhook_backlog"], "%.0f events/s" % out["webhook_drain_events_per_s"], "—"),
            ("tap → relay p99, each tap's event POSTed before the next tap",
             "%.0f µs" % out["webhook_relay_us_p99_one_at_a_time"], "≤ 1 ms"),
            ("tap → relay p99 while the webhook drains and %d network relays switch (%d taps, "
             "%d switches)" % (out["webhook_netrelay_devices"], out["webhook_taps_during_drain"],
                               out["webhook_netrelay_switches_during_drain"]),
             "%.0f µs" % out["webhook_relay_us_p99_while_draining"], "≤ 1 ms"),
            ("resident memory with a webhook (libcurl loaded)",
             "%.1f MiB" % (out["webhook_rss_kib"] / 1024), "—"),
        ]
    if args.only in (None, "netrelays"):
        bench_netrelays(args, out)
        rows += [
            ("machine tap → network relay confirmed (emulated Shelly through mosquitto), p50",
             "%.2f ms" % out["netrelay_tap_to_confirmed_ms_p50"], "—"),
            ("machine tap → network relay confirmed, p99",
             "%.2f ms" % out["netrelay_tap_to_confirmed_ms_p99"], "≤ 50 ms"),
            ("machine tap → GPIO relay write, p99, network relays idle",
             "%.0f µs" % out["netrelay_gpio_tap_us_p99_quiet"], "≤ 1 ms"),
            ("machine tap → GPIO relay write, p99, %d network relays switching (%d switches, "
             "%d device readings meanwhile)" % (out["netrelay_devices"] - 1,
                                                out["netrelay_switch_requests_during"],
                                                out["netrelay_device_readings_during"]),
             "%.0f µs" % out["netrelay_gpio_tap_us_p99_busy"], "≤ 1 ms"),
        ]
    if args.only in (None, "custodian"):
        bench_custodian(args, out)
        rows += [
            ("custodian: %d entries from %d sites, end to end through mosquitto"
             % (out["custodian_entries"], out["custodian_sites"]),
             "%.1f s" % out["custodian_seconds"], "≤ 60 s"),
            ("  ingestion and verification rate", "%.0f entries/s" % out["custodian_entries_per_s"],
             "≥ 16,700"),
            ("  entries stored / problems", "%d / %d" % (out["custodian_entries_stored"],
                                                         out["custodian_problems"]), "all / 0"),
            ("  custodian database size", "%.0f MiB" % (out["custodian_db_bytes"] / 1048576), "—"),
        ]
    if args.only in (None, "opendata"):
        bench_opendata(args, out)
        rows += [
            ("open data: %d sites x one month, %d ledger entries (verified, sealed), "
             "dataset generated" % (out["opendata_sites"], out["opendata_entries"]),
             "%.1f s" % out["opendata_seconds"], "≤ 30 s"),
            ("  entries of the month counted / dataset size", "%d / %.0f KiB" % (
                out["opendata_entries_counted"], out["opendata_bytes"] / 1024), "—"),
        ]
    if args.only in (None, "web"):
        bench_web(args, out)
        rows += web_rows(out)
    if args.only in (None, "web", "web-live"):
        bench_web_live(args, out)
        rows += web_live_rows(out)
    if args.only in (None, "instructions"):
        out["day_charges"] = args.day_charges
        bench_instructions(args, out)
        rows += instructions_rows(out)
    if args.only in (None, "status"):
        bench_status_load(args, out)
        rows += [taps_row("(a) 16 clients fetching /, /healthz, /metrics, /spaceapi.json "
                          "(%.0f requests/s) at %d members" % (out["status_wrk"]["rps"],
                                                              out["status_members"]),
                          out["status_taps"])]
    out["door_path"] = Daemon.door_path
    print("\nPortier — %d members, %d cards, %d taps; %s; door path (the event loop; reader "
          "workers and the bench's tapper one below): %s\n" % (
              args.members, args.cards, args.taps, out["machine"], out["door_path"]))
    print("| figure | measured | goal |\n|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


def core_rows(out):
    so = out["slow_sync"]
    return [
        ("tap → relay write inside the daemon (latency_us), p50 / p99 / max", "%.0f / %.0f / %.0f µs"
         % (out["tap_to_relay_us_p50"], out["tap_to_relay_us_p99"], out["tap_to_relay_us_max"]),
         "p99 ≤ 1 ms"),
        taps_row("taps one at a time", out["core_outside"]),
        ("tap → relay p99 inside the daemon, 8 clients at once",
         "%.0f µs" % out["tap_to_relay_us_p99_burst8"], "—"),
        ("every card listed (%.0f MB, portierctl card list) / a search among the members: "
         "round trip" % (out["card_list_bytes"] / 1e6),
         "%.1f / %.2f s" % (out["card_list_s"], out["member_search_s"]), "—"),
        taps_row("  meanwhile, taps at the front door", out["lists_taps"]),
        taps_row("(d) every fsync %d ms slower (LD_PRELOAD shim), two doors tapped at once"
                 % so["sync_ms"], so),
        ("  syncs made meanwhile / by the event loop itself", "%d / %d"
         % (so["syncs"], so["syncs_on_loop"]), "— / 0"),
        ("first tap of the day (%d day charges this month): CPU of the event loop's thread / of "
         "the whole daemon" % out["day_charges"],
         "%.3f / %.3f ms" % (out["loop_cpu_ms_per_first_tap"], out["cpu_ms_per_first_tap"]),
         "≤ 0.2 ms"),
        ("  an ordinary tap, the same", "%.3f / %.3f ms"
         % (out["loop_cpu_ms_per_tap"], out["cpu_ms_per_tap"]), "—"),
        ("  a control-socket request that does nothing, the same (what the bench's way in "
         "costs; a reader's tap does not use it)", "%.3f / %.3f ms"
         % (out["loop_cpu_ms_per_noop_request"], out["cpu_ms_per_noop_request"]), "—"),
        ("decisions per second (lookup + policy)", "%.0f" % out["decisions_per_second"], "—"),
        ("taps per second through the control socket, 1 client", "%.0f" % out["taps_per_second_sequential"], "—"),
        ("taps per second, 8 clients", "%.0f" % out["taps_per_second_burst8"], "—"),
        ("start → READY=1 (median of 5)", "%.0f ms" % out["ready_ms_median"], "≤ 300 ms"),
        ("resident memory (VmRSS), web and MQTT off", "%.1f MiB" % (out["rss_kib"] / 1024), "≤ 8 MiB"),
        ("  of which anonymous (heap, page cache)", "%.1f MiB" % (out["rss_anon_kib"] / 1024), "—"),
        ("resident memory with the web page and MQTT on, after load (anonymous)",
         "%.1f MiB (%.1f)" % (out["rss_web_mqtt_kib"] / 1024, out["rss_web_mqtt_anon_kib"] / 1024),
         "≤ 12 MiB"),
        ("bytes SQLite writes per tap, one at a time (write(2) level)",
         "%.0f B" % out["sqlite_bytes_written_per_tap_sequential"], "≤ 4 KiB"),
        ("bytes reaching the block device per tap, one at a time",
         "%.0f B" % out["bytes_written_per_tap_sequential"], "≤ 4 KiB"),
        ("  first entry of a member's day (day charge + signed ledger entry), SQLite level",
         "%.0f B" % out["sqlite_bytes_written_per_first_tap"], "—"),
        ("  first entry of a member's day, block device",
         "%.0f B" % out["bytes_written_per_first_tap"], "—"),
        ("bytes reaching the block device per tap, 8 clients",
         "%.0f B" % out["bytes_written_per_tap_burst8"], "—"),
    ]


if __name__ == "__main__":
    main()

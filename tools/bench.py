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
import subprocess
import sys
import tempfile
import threading
import time


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def uid_hex(i):
    return "04%012X" % i


class Daemon:
    def __init__(self, bindir, workdir):
        self.bindir, self.dir = bindir, workdir
        self.socket = os.path.join(workdir, "ctl.sock")

    def start(self):
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(60)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([os.path.join(self.bindir, "portierd"), "-c",
                                      os.path.join(self.dir, "portier.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(
                                         os.path.join(self.dir, "portierd.log"), "ab"), env=env)
        while True:
            msg = notify.recv(4096).decode()
            if "READY=1" in msg.split("\n"):
                break
        ready = time.monotonic() - t0
        notify.close()
        return ready

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def request(self, obj):
        return json.loads(self.request_raw(obj))

    def request_raw(self, obj):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.socket)
        s.sendall((json.dumps(obj) + "\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    def proc_value(self, path, key):
        with open("/proc/%d/%s" % (self.proc.pid, path)) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return None


def bench_core(args, out):
    work = tempfile.mkdtemp(prefix="portier-bench-")
    try:
        subprocess.run([os.path.join(args.bin, "portier-benchgen"), "populate", work,
                        str(args.members), str(args.cards)], check=True, stdout=subprocess.DEVNULL)
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
        # Warm up, as a real site is warm after its first minutes.
        for _ in range(200):
            d.request({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(rng.randrange(args.cards))})
        io0 = d.proc_value("io", "write_bytes")
        w0 = d.proc_value("io", "wchar")
        lat = []
        reply_bytes = 0
        t0 = time.monotonic()
        for i in range(args.taps):
            # One tap in ten is a card nobody holds.
            idx = rng.randrange(args.cards + args.cards // 9)
            raw = d.request_raw({"cmd": "sim.tap", "reader": "front", "uid": uid_hex(idx)})
            reply_bytes += len(raw)
            lat.append(json.loads(raw)["latency_us"])
        elapsed = time.monotonic() - t0
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
                                 "uid": uid_hex(r2.randrange(args.cards))})
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
        d.stop()

        dec = subprocess.run([os.path.join(args.bin, "portier-benchgen"), "decide", work, "200000"],
                             check=True, capture_output=True, text=True)
        out["decisions_per_second"] = json.loads(dec.stdout)["per_second"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--taps", type=int, default=10000)
    ap.add_argument("--members", type=int, default=100000)
    ap.add_argument("--cards", type=int, default=300000)
    ap.add_argument("--json")
    args = ap.parse_args()

    out = {"machine": "%s, %d cores, %s" % (platform.machine(), os.cpu_count(), platform.release()),
           "members": args.members, "cards": args.cards}
    bench_core(args, out)

    rows = [
        ("tap → relay write, p50", "%.0f µs" % out["tap_to_relay_us_p50"], "—"),
        ("tap → relay write, p99", "%.0f µs" % out["tap_to_relay_us_p99"], "≤ 1 ms"),
        ("tap → relay write, max", "%.0f µs" % out["tap_to_relay_us_max"], "—"),
        ("tap → relay p99, 8 clients at once", "%.0f µs" % out["tap_to_relay_us_p99_burst8"], "—"),
        ("decisions per second (lookup + policy)", "%.0f" % out["decisions_per_second"], "—"),
        ("taps per second through the control socket, 1 client", "%.0f" % out["taps_per_second_sequential"], "—"),
        ("taps per second, 8 clients", "%.0f" % out["taps_per_second_burst8"], "—"),
        ("start → READY=1 (median of 5)", "%.0f ms" % out["ready_ms_median"], "≤ 300 ms"),
        ("resident memory (VmRSS)", "%.1f MiB" % (out["rss_kib"] / 1024), "≤ 8 MiB"),
        ("  of which anonymous (heap, page cache)", "%.1f MiB" % (out["rss_anon_kib"] / 1024), "—"),
        ("bytes SQLite writes per tap, one at a time (write(2) level)",
         "%.0f B" % out["sqlite_bytes_written_per_tap_sequential"], "≤ 4 KiB"),
        ("bytes reaching the block device per tap, one at a time",
         "%.0f B" % out["bytes_written_per_tap_sequential"], "≤ 4 KiB"),
        ("bytes reaching the block device per tap, 8 clients",
         "%.0f B" % out["bytes_written_per_tap_burst8"], "—"),
    ]
    print("\nPortier core — %d members, %d cards, %d taps; %s\n" % (
        args.members, args.cards, args.taps, out["machine"]))
    print("| figure | measured | goal |\n|---|---|---|")
    for r in rows:
        print("| %s | %s | %s |" % r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

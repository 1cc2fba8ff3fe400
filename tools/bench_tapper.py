# SPDX-License-Identifier: AGPL-3.0-or-later
"""Door taps timed from outside portierd, for tools/bench. Standard library only.

Each tap is timed from the moment its request leaves this process to the moment the door's
relay changes state in the simulated back-end: portierd mirrors every simulated relay write
into a file ([hardware] sim_state_dir; one pwrite(2) of "0\n" or "1\n" on a file it keeps
open), and this process waits for that file's change with inotify (IN_MODIFY). So the figure
holds everything a door waits for: the control socket, the wait for portierd's event loop to
get to it (whatever else the loop is doing), the decision and the relay write. The daemon's
own latency_us (card event in -> relay written) is kept beside it.

One tap at a time: lock the door (relay off, observed), wait a random pause, tap a granted
card, wait for the relay to go on. A separate process, so that nothing else of the bench
(threads, the GIL) stands between the request and the observation. It stands in for a reader
worker, so it runs as one does: at SCHED_FIFO priority 9 (one below [daemon]
realtime_priority's default, 10) when allowed, else at nice -10 when allowed.

Usage: bench_tapper.py JSON, with {"socket", "relays" (the sim_state_dir), "door", "reader",
"uids": [...], "taps" (count) or "seconds", "pause_ms": [lo, hi], "seed"}. Prints one JSON
object: {"outside_us": [...], "latency_us": [...], "refused": n, "lost": n}."""

import ctypes
import json
import os
import random
import socket
import struct
import sys
import time

IN_MODIFY = 0x00000002
IN_CLOEXEC = 0o2000000


class RelayWatch:
    """The relay's mirror file, watched with inotify."""

    def __init__(self, directory, name):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self.fd, directory.encode(), IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + directory)
        self.path = os.path.join(directory, name)
        self.name = name.encode()
        self.pending = b""

    def state(self):
        with open(self.path) as f:
            return f.read().strip() == "1"

    def wait(self, want, timeout):
        """Wait until the file says want; returns CLOCK_MONOTONIC ns when it was seen, or
        None after timeout seconds."""
        import select
        end = time.monotonic() + timeout
        while True:
            if self.state() == want:
                return time.monotonic_ns()
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            data = os.read(self.fd, 65536)
            seen = time.monotonic_ns()
            # struct inotify_event { int wd; uint32 mask, cookie, len; char name[len]; }
            off = 0
            ours = False
            while off + 16 <= len(data):
                _, _, _, n = struct.unpack_from("iIII", data, off)
                name = data[off + 16:off + 16 + n].rstrip(b"\0")
                ours |= name == self.name
                off += 16 + n
            if ours and self.state() == want:
                return seen


def request(path, obj):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall((json.dumps(obj) + "\n").encode())
    return s


def read_all(s):
    """Everything s receives until the daemon closes it (one answer), as bytes; closes s."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def reply(s):
    data = read_all(s)
    return json.loads(data) if data else {}


def main():
    cfg = json.loads(sys.argv[1])
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(9))
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -10)
        except OSError:
            pass
    rng = random.Random(cfg.get("seed", 1))
    watch = RelayWatch(cfg["relays"], cfg["door"] + ".relay")
    outside, inside = [], []
    refused = lost = 0
    lo, hi = cfg.get("pause_ms", [0, 100])
    end = time.monotonic() + cfg["seconds"] if "seconds" in cfg else None
    k = 0
    while (end is None and k < cfg["taps"]) or (end is not None and time.monotonic() < end):
        reply(request(cfg["socket"], {"cmd": "door.lock", "door": cfg["door"]}))
        if watch.wait(False, 10) is None:
            raise SystemExit("bench_tapper: door %s did not lock" % cfg["door"])
        time.sleep((lo + rng.random() * (hi - lo)) / 1000.0)
        uid = cfg["uids"][k % len(cfg["uids"])]
        k += 1
        t0 = time.monotonic_ns()
        s = request(cfg["socket"], {"cmd": "sim.tap", "reader": cfg["reader"], "uid": uid})
        t1 = watch.wait(True, 10)
        r = reply(s)
        if not r.get("granted"):
            refused += 1
            continue
        if t1 is None:
            lost += 1
            continue
        outside.append((t1 - t0) / 1000.0)
        inside.append(r["latency_us"])
    reply(request(cfg["socket"], {"cmd": "door.lock", "door": cfg["door"]}))
    print(json.dumps({"outside_us": outside, "latency_us": inside, "refused": refused,
                      "lost": lost}))


if __name__ == "__main__":
    main()

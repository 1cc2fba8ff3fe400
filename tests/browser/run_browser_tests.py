# SPDX-License-Identifier: AGPL-3.0-or-later
"""Browser tests: the real portierd (simulated hardware, web page on a free loopback port)
driven by Debian's headless Chromium through playwright-core: booking.spec.mjs (booking
from a phone, with the keyboard, without JavaScript; managers), kiosk.spec.mjs (the
entrance screen follows a tap live) and pages.spec.mjs (every page in English and French:
axe-core's accessibility check, screenshots at 360 and 1280 px, layout faults).

This driver installs the pinned playwright-core and axe-core into
tests/browser/node_modules when they are missing or stale (`npm ci`), starts the daemon
with a machine, members and web accounts, runs the Node.js tests one file after the other
(they share the daemon) and stops the daemon. Standard library only; run with
/usr/bin/python3. Usage:

    run_browser_tests.py [ARTIFACT_DIR] [SPEC...]

ARTIFACT_DIR (default: build/test-artifacts/browser) receives the screenshots; SPEC names
the files to run (default: those three; e.g. `kiosk.spec.mjs` while working on it;
`members.spec.mjs`, the member list, has a ctest of its own).
PORTIER_BIN names the build's bin/ (as for the integration tests); PORTIER_NODE and
PORTIER_CHROMIUM override node and /usr/bin/chromium."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("PORTIER_SRC") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from portier_harness import PORTIERCTL, Daemon, build_config  # noqa: E402

CHROMIUM = os.environ.get("PORTIER_CHROMIUM", "/usr/bin/chromium")
NODE = os.environ.get("PORTIER_NODE") or shutil.which("node") or "/usr/bin/node"
PASSWORD = "a long password"

SECTIONS = """
[reader front]
driver = sim

[door front]
reader = front
relay = 17

[reader laser]
driver = sim

[machine laser]
reader = laser
relay = 5

[http]
listen = 127.0.0.1:{port}
"""


def log(msg):
    print("[browser] " + msg, flush=True)


SPECS = ["booking.spec.mjs", "kiosk.spec.mjs", "pages.spec.mjs"]
MODULES = ["playwright-core", "axe-core"]


def ensure_node_modules():
    """npm ci into tests/browser/node_modules unless the locked versions are there."""
    with open(os.path.join(HERE, "package-lock.json")) as f:
        packages = json.load(f)["packages"]
    stale = []
    for name in MODULES:
        want = packages["node_modules/" + name]["version"]
        have = None
        try:
            with open(os.path.join(HERE, "node_modules", name, "package.json")) as f:
                have = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            pass
        if have != want:
            stale.append("%s %s (found %s)" % (name, want, have))
    if not stale:
        return
    npm = shutil.which("npm")
    if not npm:
        raise SystemExit("npm is not installed (tools/deps.sh installs nodejs and npm)")
    log("installing %s (npm ci)" % ", ".join(stale))
    # playwright-core downloads no browser: Debian's chromium is used.
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=HERE,
                   env=env, check=True, timeout=300)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setup(d):
    """A machine with 30-minute slots, members Alice and Bob with a plan that covers the
    fablab, Alice's member account and a manager account, both with passwords; cards for
    both (the kiosk test taps them at the door), a training and a pass (for /me)."""
    d.ctl("plan", "add", "open", "--zones", "*", "--hours", "always")
    d.ctl("member", "add", "Alice", "--plan", "open")
    d.ctl("member", "add", "Bob", "--plan", "open")
    d.ctl("card", "add", "Alice", "04A1B2C3", "--label", "keyring")
    d.ctl("card", "add", "Bob", "04B0B0B0")
    d.ctl("training", "add", "laser-basic")
    d.ctl("training", "grant", "Alice", "laser-basic", "--expires", "2099-06-30")
    d.ctl("pass", "add", "Alice", "--days", "10")
    d.ctl("machine", "set", "laser", "--slot", "30", "--min", "30", "--max", "240",
          "--window-days", "14", "--cancel-deadline", "0", "--training", "none",
          "--hours", "always")
    for name, role, member in (("alice", "member", "Alice"), ("manager", "manager", None)):
        d.ctl("account", "add", name, "--role", role, *(["--member", member] if member else []))
        p = subprocess.run([PORTIERCTL, "-s", d.socket, "account", "passwd", name,
                            "--password-stdin"], input=PASSWORD + "\n", text=True,
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("account passwd %s failed: %s" % (name, p.stderr))


def main():
    args = sys.argv[1:]
    specs = [a for a in args if a.endswith(".mjs")] or SPECS
    dirs = [a for a in args if not a.endswith(".mjs")]
    artifacts = os.path.abspath(dirs[0] if dirs else
                                os.path.join(SRC, "build", "test-artifacts", "browser"))
    spec = sys.argv[2] if len(sys.argv) > 2 else "booking.spec.mjs"
    for what, path in (("chromium", CHROMIUM), ("node", NODE)):
        if not os.access(path, os.X_OK):
            raise SystemExit("%s not found at %s (tools/deps.sh installs it)" % (what, path))
    ensure_node_modules()
    os.makedirs(artifacts, exist_ok=True)
    for f in os.listdir(artifacts):     # no stale screenshots from an earlier run
        if f.endswith(".png"):
            try:
                os.unlink(os.path.join(artifacts, f))
            except FileNotFoundError:
                pass

    started = time.monotonic()
    d = Daemon(config_text="placeholder")
    ok = False
    try:
        for attempt in range(3):
            # The port is free when chosen; another test may take it before portierd does.
            port = free_port()
            d.write_config(build_config(d.dir, SECTIONS.format(port=port),
                                        site_name="Browser test site"))
            try:
                d.start()
                break
            except AssertionError:
                d.stop()
                if attempt == 2 or "cannot listen" not in d.log_text():
                    raise
        setup(d)
        env = dict(os.environ,
                   PORTIER_URL="http://127.0.0.1:%s" % port,
                   PORTIERCTL=PORTIERCTL,
                   PORTIER_SOCKET=d.socket,
                   PORTIER_PASSWORD=PASSWORD,
                   PORTIER_CHROMIUM=CHROMIUM,
                   PORTIER_ARTIFACTS=artifacts)
        log("portierd on %s, daemon dir %s" % (env["PORTIER_URL"], d.dir))
        ok = True
        for spec in specs:
            log("running %s" % spec)
            p = subprocess.run([NODE, "--test-reporter=spec", os.path.join(HERE, spec)],
                               cwd=HERE, env=env, timeout=900)
            ok = ok and p.returncode == 0
    finally:
        code = d.stop()
        if code not in (0, None):
            ok = False
            log("portierd exited with status %s" % code)
        if ok:
            shutil.rmtree(d.dir, ignore_errors=True)
        else:
            log("kept %s; portierd log, last lines:\n%s" % (
                d.dir, "\n".join(d.log_text().splitlines()[-60:])))
    log("%s in %.1f s; screenshots in %s" % ("passed" if ok else "FAILED",
                                             time.monotonic() - started, artifacts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

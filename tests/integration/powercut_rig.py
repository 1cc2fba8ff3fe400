# SPDX-License-Identifier: AGPL-3.0-or-later
"""Power cuts on the real daemon: a run under the powercut preload layer
(tests/powercut/powercut.c), cut at a chosen write or sync, and the checks of what the disk
holds afterwards. Used by test_powercut.py (a sample of cut points, in ctest) and by
tools/torture (a thousand or more). Standard library only; run with /usr/bin/python3.

A run starts portierd on a copy of a prepared state directory, with the layer keeping in
SHADOW/disk only what a power cut would leave: what was fsync'd, under the names its
directory's last fsync knew. The workload taps members in and out (access events, day
charges and ledger entries), records manual days, and closes last month's period (archive
files beside the database); every answer the daemon gave "ok" is remembered. After the cut,
the disk must hold every acknowledged record, pass SQLite's integrity check, hold a ledger
that verifies, and start the real daemon again."""

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time

from portier_harness import BIN, Daemon, WAIT, build_config

TESTS_BIN = os.path.join(BIN, "..", "tests")
LAYER = os.path.realpath(os.path.join(TESTS_BIN, "libpowercut.so"))
OLDDB = os.path.realpath(os.path.join(TESTS_BIN, "powercut-olddb"))

SECTIONS = """
[metering]
day_starts = 04:00

[reader in]
driver = sim

[reader out]
driver = sim

[door front]
reader = in
exit_reader = out
relay = 17
"""

MEMBERS = ["04A1B2C%d" % i for i in range(6)]


def month_back(k, now=None):
    """The month k months before now's, as YYYY-MM."""
    t = time.gmtime(now or time.time())
    index = t.tm_year * 12 + (t.tm_mon - 1) - k
    return "%04d-%02d" % (index // 12, index % 12 + 1)


class Cut(Exception):
    """The daemon is gone: the power was cut."""


class Run:
    """One daemon under the layer, and what it acknowledged."""

    def __init__(self, rig, directory, cut_at):
        self.rig = rig
        self.dir = directory
        self.cut_at = cut_at
        self.state = os.path.join(directory, "state")
        self.shadow = os.path.join(directory, "shadow")
        self.count_file = os.path.join(directory, "events")
        self.events = []            # acknowledged access event ids
        self.days = []              # acknowledged manual days: (member id, billing day)
        self.period = None          # acknowledged period close: (period, archive name)
        self.started = False

    def start(self):
        os.makedirs(self.shadow)
        self.daemon = Daemon(config_text=self.rig.config(self.dir), directory=self.dir)
        env = {"LD_PRELOAD": LAYER, "PORTIER_POWERCUT_DIR": self.state,
               "PORTIER_POWERCUT_SHADOW": self.shadow,
               "PORTIER_POWERCUT_COUNT": self.count_file}
        if self.cut_at:
            env["PORTIER_POWERCUT_AT"] = str(self.cut_at)
        try:
            self.daemon.start(env_extra=env)
            self.started = True
        except AssertionError:
            if self.daemon.proc.poll() is None:
                raise
            raise Cut()

    def request(self, obj):
        try:
            reply = self.daemon.request(obj)
        except (OSError, ValueError):
            raise Cut()
        if not reply.get("ok"):
            if self.daemon.proc.poll() is not None:
                raise Cut()
            raise AssertionError("%r refused: %r" % (obj, reply))
        return reply

    def workload(self):
        """Taps in, manual days, last month's close, taps out, then rig.rounds - 1 more
        rounds of taps in, a manual day and taps out; stops at the cut."""
        r = self.rig
        for k in range(r.rounds):
            for uid in MEMBERS:
                self.events.append(self.request({"cmd": "sim.tap", "reader": "in",
                                                 "uid": uid})["event_id"])
            for member, day in (r.manual_days if k == 0 else [r.extra_days[k - 1]]):
                self.request({"cmd": "usage.add", "member": str(member), "at": day})
                self.days.append((member, day))
            if k == 0:
                reply = self.request({"cmd": "period.close", "period": r.period})
                self.period = (r.period, os.path.basename(reply["archive"]))
            for uid in MEMBERS:
                self.events.append(self.request({"cmd": "sim.tap", "reader": "out",
                                                 "uid": uid})["event_id"])
        # An unknown card: a refused tap is an acknowledged record too.
        self.events.append(self.request({"cmd": "sim.tap", "reader": "in",
                                         "uid": "04FFFFFF"})["event_id"])

    def finish(self):
        """Wait for the cut (or stop the daemon: a cut at the very end); the disk's path."""
        p = self.daemon.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("portierd did not stop; log:\n" + self.daemon.log_text())
        self.daemon.stop()
        disk = os.path.join(self.shadow, "disk")
        if not os.path.isdir(disk):
            raise AssertionError("the layer wrote no disk (exit %s); log:\n%s"
                                 % (p.returncode, self.daemon.log_text()[-3000:]))
        return disk

    def count(self):
        try:
            with open(self.count_file) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return 0


class Rig:
    """A prepared site (members with cards on a day-rate plan) and runs on copies of it.
    rounds > 1 makes the workload longer (tools/torture: a thousand cut points and more)."""

    def __init__(self, workdir, rounds=1):
        assert 1 <= rounds <= 28, "one manual day per extra round, in one month"
        self.workdir = workdir
        self.rounds = rounds
        self.runs = 0
        # Two months back is over whatever the hour (the billing day starts at 04:00); a
        # manual day on the 1st of last month is in the past and in an open period.
        self.period = month_back(2)
        self.base = os.path.join(workdir, "base")
        d = Daemon(config_text=self.config(self.base), directory=self.base)
        d.start()
        ok = d.ok
        ok({"cmd": "plan.add", "name": "nomad"})
        ok({"cmd": "plan.billing", "plan": "nomad", "monthly_days": 2, "day_rate_cents": 1500,
            "allowance_order": "plan,rate"})
        ids = []
        for i, uid in enumerate(MEMBERS):
            ids.append(ok({"cmd": "member.add", "name": "Member %d" % i, "plan": "nomad"})["id"])
            ok({"cmd": "card.add", "member": str(ids[-1]), "uid": uid})
        self.manual_days = [(ids[0], month_back(1) + "-01")]
        # Further rounds: a manual day each, for members in turn, on days 2, 3... of last month.
        self.extra_days = [(ids[k % len(ids)], month_back(1) + "-%02d" % (2 + k % 27))
                           for k in range(rounds - 1)]
        d.stop()
        with d.db() as db:
            self.version = db.execute("PRAGMA user_version").fetchone()[0]

    def config(self, directory):
        return build_config(directory, SECTIONS, site="cut", timezone="Europe/Paris")

    def new_run(self, cut_at=None, state=None):
        self.runs += 1
        directory = os.path.join(self.workdir, "run-%d" % self.runs)
        os.makedirs(os.path.join(directory, "relays"))
        shutil.copytree(state or os.path.join(self.base, "state"),
                        os.path.join(directory, "state"))
        return Run(self, directory, cut_at)

    def dry_run(self):
        """The number of events of a whole run without a cut."""
        run = self.new_run()
        run.start()
        run.workload()
        disk = run.finish()
        self.check(run, disk)
        n = run.count()
        shutil.rmtree(run.dir, ignore_errors=True)
        return n

    def cut(self, at):
        """A run cut at event at; returns what was acknowledged (for the report)."""
        run = self.new_run(cut_at=at)
        try:
            run.start()
            run.workload()
        except Cut:
            pass
        disk = run.finish()
        self.check(run, disk)
        shutil.rmtree(run.dir, ignore_errors=True)
        return len(run.events) + len(run.days) + (1 if run.period else 0)

    def check(self, run, disk):
        """What the disk must hold after the cut, then the real daemon on it."""
        where = "cut at event %s (of run %s)" % (run.cut_at, run.dir)
        db = sqlite3.connect(os.path.join(disk, "portier.db"))
        try:
            self.assert_equal(db.execute("PRAGMA integrity_check").fetchone()[0], "ok",
                              where, "integrity_check")
            self.assert_equal(db.execute("PRAGMA user_version").fetchone()[0], self.version,
                              where, "schema version")
            stored = {r[0] for r in db.execute("SELECT id FROM access_events")}
            lost = [e for e in run.events if e not in stored]
            self.assert_equal(lost, [], where, "acknowledged access events lost")
            for member, day in run.days:
                n = db.execute("SELECT count(*) FROM usage WHERE member_id = ? AND "
                               "billing_day = ?", (member, day)).fetchone()[0]
                self.assert_equal(n, 1, where, "acknowledged manual day %s of member %s"
                                  % (day, member))
            if run.period:
                period, name = run.period
                row = db.execute("SELECT archive_sha256 FROM periods WHERE period = ?",
                                 (period,)).fetchone()
                if row is None:
                    raise AssertionError("%s: acknowledged close of %s lost" % (where, period))
                archive = os.path.join(disk, "archives", name)
                for suffix in ("", ".sig", ".sha256"):
                    if not os.path.exists(archive + suffix):
                        raise AssertionError("%s: acknowledged close of %s: %s%s lost"
                                             % (where, period, name, suffix))
                with open(archive, "rb") as f:
                    self.assert_equal(hashlib.sha256(f.read()).digest(), row[0], where,
                                      "archive hash")
        finally:
            db.close()
        self.check_key_file(disk, where)
        self.restart_on(disk, where)

    @staticmethod
    def check_key_file(disk, where):
        path = os.path.join(disk, "desfire-master.key")
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if len(text) != 33 or not text.endswith("\n"):
                raise AssertionError("%s: half-written key file %r" % (where, text))

    def restart_on(self, disk, where):
        """The real daemon, without the layer, starts on the disk and verifies the ledger."""
        directory = os.path.join(os.path.dirname(os.path.dirname(disk)), "after")
        os.makedirs(os.path.join(directory, "relays"))
        shutil.move(disk, os.path.join(directory, "state"))
        d = Daemon(config_text=self.config(directory), directory=directory)
        try:
            d.start()
            verify = d.ok({"cmd": "ledger.verify"})
            if not verify.get("intact"):
                raise AssertionError("%s: ledger does not verify: %r" % (where, verify))
            d.ok({"cmd": "sim.tap", "reader": "in", "uid": MEMBERS[0]})
        except AssertionError as e:
            raise AssertionError("%s: after the cut: %s" % (where, e))
        finally:
            d.stop()

    @staticmethod
    def assert_equal(got, want, where, what):
        if got != want:
            raise AssertionError("%s: %s: got %r, want %r" % (where, what, got, want))


class MigrationRig:
    """Cuts while the daemon migrates a database from an older schema version."""

    def __init__(self, workdir, from_version):
        self.workdir = workdir
        self.from_version = from_version
        self.runs = 0
        self.schemas = {}
        self.versions_seen = set()     # the schema versions cuts left on disk

    def config(self, directory):
        return build_config(directory, SECTIONS, site="cut", timezone="Europe/Paris")

    def schema(self, version):
        """The tables, indexes and triggers of a database at version, as sorted SQL."""
        if version not in self.schemas:
            path = os.path.join(self.workdir, "schema-%d.db" % version)
            subprocess.run([OLDDB, path, str(version)], check=True)
            self.schemas[version] = self.schema_of(path)
        return self.schemas[version]

    @staticmethod
    def schema_of(path):
        db = sqlite3.connect(path)
        try:
            return sorted(db.execute("SELECT type, name, sql FROM sqlite_master "
                                     "WHERE name NOT LIKE 'sqlite_%'").fetchall())
        finally:
            db.close()

    def run(self, cut_at=None):
        """Start the daemon on a database at from_version, cut at event cut_at (None: no
        cut); checks the disk; returns the number of events of the run."""
        self.runs += 1
        directory = os.path.join(self.workdir, "mig-%d" % self.runs)
        state = os.path.join(directory, "state")
        os.makedirs(state)
        os.makedirs(os.path.join(directory, "relays"))
        subprocess.run([OLDDB, os.path.join(state, "portier.db"), str(self.from_version)],
                       check=True)
        run = Run(self, directory, cut_at)
        try:
            run.start()
        except Cut:
            pass
        disk = run.finish()
        where = "migration from version %d cut at event %s (%s)" % (
            self.from_version, cut_at, directory)
        db = sqlite3.connect(os.path.join(disk, "portier.db"))
        try:
            Rig.assert_equal(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", where,
                             "integrity_check")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
        self.versions_seen.add(version)
        if version < self.from_version:
            raise AssertionError("%s: schema version went back to %d" % (where, version))
        # No half-applied migration: the schema is exactly that of its version.
        got = self.schema_of(os.path.join(disk, "portier.db"))
        if got != self.schema(version):
            raise AssertionError("%s: schema at version %d is not that version's" % (where, version))
        Rig.check_key_file(disk, where)
        Rig.restart_on(self, disk, where)
        n = run.count()
        shutil.rmtree(directory, ignore_errors=True)
        return n


def spread(total, n):
    """n cut points spread evenly over events 1..total."""
    if total <= 0:
        return []
    n = min(n, total)
    return sorted({1 + (i * total) // n for i in range(n)})

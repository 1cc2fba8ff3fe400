# SPDX-License-Identifier: AGPL-3.0-or-later
"""The consortium's open data end to end: simulated sites send signed ledgers and seals
through a real mosquitto to a real portier-custodian, which publishes a dataset per period
(`opendata`); the dataset is validated by the Frictionless validators from npm (datapackage,
tableschema: someone else's code, under Node), every figure is recomputed here from the
entries and checked against the suppression rules, an auditor ties figures to the signed
ledgers, the web page serves it under /opendata/, and a real portierd's sealed period is
published. Run with /usr/bin/python3 (python3-paho-mqtt, python3-cryptography)."""

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import WAIT, main, wait_until  # noqa: E402
from test_consortium import Custodian, Site  # noqa: E402
from test_mqtt import Broker, free_port  # noqa: E402

SRC = os.environ.get("PORTIER_SRC") or os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
NODE_DIR = os.path.join(SRC, "tests", "opendata")
NODE = os.environ.get("PORTIER_NODE") or shutil.which("node") or "/usr/bin/node"
PARIS = ZoneInfo("Europe/Paris")
K = 5
PRODUCER = "Tiers-lieux du Rhône & de l'Ouest"


def ensure_node_modules():
    """npm ci into tests/opendata/node_modules unless the locked validators are there."""
    with open(os.path.join(NODE_DIR, "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    for name in ("datapackage", "tableschema"):
        want = lock["node_modules/" + name]["version"]
        try:
            with open(os.path.join(NODE_DIR, "node_modules", name, "package.json")) as f:
                if json.load(f)["version"] == want:
                    continue
        except (OSError, ValueError, KeyError):
            pass
        npm = shutil.which("npm")
        if not npm:
            raise AssertionError("npm is not installed (tools/deps.sh installs nodejs and npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=NODE_DIR,
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        return


def local(day, hour, minute=0, month=10):
    """Unix time of 2026-MONTH-DAY HOUR:00 in Paris, plus MINUTE minutes."""
    return int((datetime(2026, month, day, hour, tzinfo=PARIS) +
                timedelta(minutes=minute)).timestamp())


def billing_day(t):
    """The site's billing day (days start at 04:00 Paris time), as docs/billing.md says."""
    return (datetime.fromtimestamp(t, PARIS).replace(tzinfo=None) - timedelta(hours=4)).date()


class LedgerSite:
    """A site as the custodian sees it: an Ed25519 key, a canonical hash-chained ledger
    (docs/billing.md section 7), batches and period seals on the protocol of
    docs/consortium.md."""

    def __init__(self, name):
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        self.entries = []       # (bytes, fields)
        self.hashes = []
        self.sent = 0

    def public_key(self):
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def add(self, kind, member, resource, start, end=None, home=None, visitor=None):
        end = start if end is None else end
        seq = len(self.entries) + 1
        prev = self.hashes[-1] if self.hashes else bytes(32)
        if kind in ("day", "visit"):
            quantity, unit = 1, "day"
            amount, allowance = (1200, "visit") if kind == "visit" else (1500, "rate")
        else:
            quantity, unit = (end - start + 59) // 60, "minute"
            amount, allowance = (0, "none") if kind == "presence" else (900, "rate")
        text = ("portier-ledger-v1\nsite=%s\nseq=%d\nprev=%s\nusage=%d\nkind=%s\nmember=%d\n"
                "resource=%s\nstart=%d\nend=%d\nquantity=%d\nunit=%s\namount_cents=%d\n"
                "allowance=%s\ncorrects=0\nrecorded=%d\n" % (
                    self.name, seq, prev.hex(), seq, kind, member, resource, start, end,
                    quantity, unit, amount, allowance, end))
        if kind == "visit":
            text += "home=%s\nvisitor=%s\n" % (home, visitor)
        raw = text.encode()
        self.entries.append((raw, dict(kind=kind, member=member, resource=resource,
                                       start=start, end=end, quantity=quantity, home=home,
                                       visitor=visitor)))
        self.hashes.append(hashlib.blake2b(raw, digest_size=32).digest())

    def batches(self):
        """The JSON batches of the entries not sent yet."""
        out = []
        while self.sent < len(self.entries):
            first, last = self.sent + 1, min(self.sent + 256, len(self.entries))
            checkpoints = []
            for seq in range(first, last + 1):
                if seq % 256 == 0:
                    msg = (b"portier-ledger-v1 signature\nsite=%s\nseq=%d\n"
                           % (self.name.encode(), seq)) + self.hashes[seq - 1]
                    checkpoints.append([seq, self.key.sign(msg).hex()])
            msg = (b"portier-ledger-v1 batch\nsite=%s\nfirst=%d\nlast=%d\n"
                   % (self.name.encode(), first, last)) + self.hashes[last - 1]
            out.append(json.dumps({
                "v": 1, "site": self.name, "first": first, "last": last,
                "entries": [e[0].decode() for e in self.entries[first - 1:last]],
                "checkpoints": checkpoints, "sig": self.key.sign(msg).hex()}))
            self.sent = last
        return out

    def seal(self, period, last_day):
        n = len(self.entries)
        text = ("portier-period-v1\nsite=%s\nperiod=%s\nfirst_day=%s-01\nlast_day=%s\n"
                "last_seq=%d\nlast_hash=%s\narchive_sha256=%s\nclosed_at=%d\n" % (
                    self.name, period, period, last_day, n, self.hashes[-1].hex(),
                    hashlib.sha256(b"archive " + period.encode()).hexdigest(),
                    int(time.time())))
        return text, json.dumps({"v": 1, "text": text,
                                 "sig": self.key.sign(text.encode()).hex()})


def pseudonym(home, member):
    return hashlib.blake2b(("%s/%d" % (home, member)).encode(), digest_size=16).hexdigest()


def build_october():
    """Four sites and their October. Returns {name: LedgerSite}."""
    lyon, paris, nantes, hameau = (LedgerSite(n) for n in ("lyon", "paris", "nantes", "hameau"))
    for day in range(1, 32):
        weekday = datetime(2026, 10, day).weekday()
        for m in range(1, 21):          # lyon: 20 members on weekdays, about 4 in 5 a day
            if weekday >= 5 or (m * 7 + day) % 5 == 0:
                continue
            lyon.add("day", m, "front", local(day, 9, m))
            lyon.add("presence", m, "front", local(day, 9, 30 * (m % 3)),
                     local(day, 17, 30 * (m % 4)))
            if weekday in (1, 3) and m <= 8:
                lyon.add("machine", m, "laser", local(day, 10), local(day, 11))
            if 9 <= m <= 15:
                lyon.add("machine", m, "printer-1" if m % 2 else "printer-2", local(day, 14),
                         local(day, 16))
        if day == 20:
            lyon.add("machine", 16, "sewing", local(day, 10), local(day, 10, 40))
        for m in range(1, 16):          # paris: 15 members, every day, 3 in 4 a day
            if (m + day) % 4 == 0:
                continue
            paris.add("day", m, "door", local(day, 8, m))
            paris.add("presence", m, "door", local(day, 8, m), local(day, 12 + m % 7, 0))
        if weekday < 5:                 # nantes: 9 members, 6 a weekday
            for m in range(1, 10):
                if (m + day) % 3 == 0:
                    continue
                nantes.add("day", m, "entree", local(day, 9, 0))
                nantes.add("presence", m, "entree", local(day, 9, 0), local(day, 18, 0))
        if day in (8, 9):               # 7 of paris at lyon, twice
            for m in range(101, 108):
                lyon.add("visit", 0, "front", local(day, 9, 45), home="paris",
                         visitor=pseudonym("paris", m))
        if day in (14, 15):             # 6 of lyon at paris, twice
            for m in range(1, 7):
                paris.add("visit", 0, "door", local(day, 10), home="lyon",
                          visitor=pseudonym("lyon", m))
        if day == 21:                   # 5 of nantes at paris, once
            for m in range(1, 6):
                paris.add("visit", 0, "door", local(day, 11), home="nantes",
                          visitor=pseudonym("nantes", m))
        if day in (2, 6, 13, 22):       # hameau: one regular member
            hameau.add("day", 1, "porte", local(day, 8))
            hameau.add("presence", 1, "porte", local(day, 8), local(day, 12))
            hameau.add("machine", 1, "laser", local(day, 9), local(day, 11))
    return {s.name: s for s in (lyon, paris, nantes, hameau)}


def truth(sites, period_days):
    """Every figure of site_days at day grain, recomputed from the entries: {(site, day):
    dict(visits, people, visitor_days, peak, open_seconds, occupants)}; and machine use
    {(site, category, monday-or-None): (minutes, sessions, people)}."""
    days = {}
    for s in sites.values():
        people, visitors, spans = {}, {}, {}
        for raw, e in s.entries:
            if e["kind"] not in ("day", "presence", "machine", "visit"):
                continue
            d = billing_day(e["start"])
            if d not in period_days:
                continue
            who = ("v", e["visitor"]) if e["kind"] == "visit" else ("m", e["member"])
            people.setdefault(d, set()).add(who)
            if e["kind"] == "visit":
                visitors.setdefault(d, set()).add(who)
            if e["kind"] == "presence":
                spans.setdefault(d, []).append((e["start"], e["end"], e["member"]))
        for d in period_days:
            sp = spans.get(d, [])
            events = sorted([(a, 1) for a, b, m in sp] + [(b, -1) for a, b, m in sp],
                            key=lambda x: (x[0], x[1]))
            level = peak = 0
            since = open_seconds = 0
            for t, step in events:
                if step == 1 and level == 0:
                    since = t
                level += step
                peak = max(peak, level)
                if level == 0:
                    open_seconds += t - since
            days[(s.name, d)] = dict(
                visits=len(people.get(d, ())), people=len(people.get(d, ())),
                visitor_days=len(visitors.get(d, ())), visitors=len(visitors.get(d, ())),
                peak=peak, open_seconds=open_seconds, occupants=len({m for a, b, m in sp}))
    return days


def rank(rows):
    """Rank of a matrix of Fractions (lists), Gauss-Jordan."""
    rows = [list(r) for r in rows]
    r = 0
    cols = len(rows[0]) if rows else 0
    for c in range(cols):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c] / rows[r][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r])]
        r += 1
    return r


def determined(lines, hidden, target):
    """Is hidden cell `target` fixed by the totals of `lines` (lists of cell keys)?"""
    unknown = sorted(hidden)
    col = {c: i for i, c in enumerate(unknown)}
    a = []
    for line in lines:
        row = [Fraction(0)] * len(unknown)
        for c in line:
            if c in col:
                row[col[c]] = Fraction(1)
        if any(row):
            a.append(row)
    e = [Fraction(0)] * len(unknown)
    e[col[target]] = Fraction(1)
    return rank(a) == rank(a + [e])


def read_csv(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw, list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


class OpenDataTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="portier-opendata-")
        self.broker = Broker(self.root)
        self.broker.start()
        self.custodian = Custodian(self.root, self.broker.port)
        self.sites = []
        self.client = None
        self.web = None

    def tearDown(self):
        if self.web and self.web.poll() is None:
            self.web.terminate()
            self.web.wait(timeout=WAIT)
        if self.client:
            self.client.loop_stop()
            self.client.disconnect()
        self.custodian.stop()
        for s in self.sites:
            s.d.stop()
        self.broker.stop()
        result = getattr(self._outcome, "result", None)
        if result and (result.failures or result.errors):
            print("\n--- custodian log ---\n%s\n(kept %s)" % ("\n".join(
                self.custodian.log_text().splitlines()[-30:]), self.root))
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def connect(self):
        self.client = mqtt.Client(client_id="test-sites-%d" % os.getpid(), clean_session=True)
        self.client.connect("127.0.0.1", self.broker.port, 30)
        self.client.loop_start()

    def publish(self, topic, payload, retain=False):
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish()

    def send(self, site):
        for b in site.batches():
            self.publish("portier/%s/ledger/batch" % site.name, b)
        wait_until(lambda: self.custodian.verified(site.name) == len(site.entries),
                   what="custodian verified %s up to %d" % (site.name, len(site.entries)))

    def seal(self, site, period, last_day):
        text, payload = site.seal(period, last_day)
        self.publish("portier/%s/ledger/period/%s" % (site.name, period), payload, retain=True)
        wait_until(lambda: self.seal_state(site.name, period) == "verified",
                   what="seal %s %s verified" % (site.name, period))
        return text

    def seal_state(self, site, period):
        rep = json.loads(self.custodian.ctl("report", "--period", period, "--format",
                                            "json").stdout)
        return {s["site"]: s["state"] for s in rep["seals"]}.get(site)

    def opendata(self, period, out, *extra):
        return self.custodian.ctl("opendata", "--period", period, "--out", out, "--producer",
                                  PRODUCER, *extra, check=False)

    def validate(self, directory):
        ensure_node_modules()
        p = subprocess.run([NODE, os.path.join(NODE_DIR, "validate.mjs"), directory],
                           cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
        try:
            report = json.loads(p.stdout)
        except ValueError:
            raise AssertionError("validator said: %s %s" % (p.stdout, p.stderr))
        self.assertEqual(report["errors"], [])
        self.assertTrue(report["valid"])
        self.assertEqual(p.returncode, 0)
        return report

    def register(self, sites):
        places = {
            "lyon": ["--label", "La Fabrique, Lyon 7e", "--commune", "Lyon", "--insee",
                     "69387", "--latitude", "45.7485", "--longitude", "4.8467"],
            "paris": ["--commune", "Paris", "--insee", "75111"],
            "nantes": ["--commune", "Nantes", "--insee", "44109", "--latitude", "47.2184",
                       "--longitude", "-1.5536"],
            "hameau": ["--label", "=cmd|' /C calc'!A0", "--commune", "Saint-Étienne-de-Tinée",
                       "--insee", "06120"],
        }
        for s in sites.values():
            self.custodian.ctl("site", "add", s.name, "--key", s.public_key(), "--timezone",
                               "Europe/Paris", *places[s.name])
        for machine, category in (("laser", "laser-cutter"), ("printer-1", "3d-printer"),
                                  ("printer-2", "3d-printer")):
            self.custodian.ctl("site", "machine", "lyon", machine, "--category", category)
        self.custodian.ctl("site", "machine", "hameau", "laser", "--category", "laser-cutter")

    # -- the dataset --

    def test_dataset_validated_anonymised_verified_and_served(self):
        sites = build_october()
        self.register(sites)
        bad = self.custodian.ctl("site", "set", "lyon", "--insee", "6938", check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("INSEE code", bad.stderr)
        bad = self.custodian.ctl("site", "set", "paris", "--latitude", "48.85", check=False)
        self.assertIn("both --latitude and --longitude", bad.stderr)
        listed = {s["name"]: s for s in json.loads(
            self.custodian.ctl("site", "list", "--json").stdout)}
        self.assertEqual(listed["lyon"]["place"]["insee_code"], "69387")
        self.assertEqual(listed["lyon"]["machine_categories"]["laser"], "laser-cutter")
        self.custodian.start()
        self.connect()
        for s in sites.values():
            self.send(s)
        seal_texts = {}
        for name in ("lyon", "paris", "nantes"):
            seal_texts[name] = self.seal(sites[name], "2026-10", "2026-10-31")

        # hameau has not sealed October: nothing is published, unless --partial.
        published = os.path.join(self.root, "published")
        os.mkdir(published)
        out = os.path.join(published, "2026-10")
        p = self.opendata("2026-10", out)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("hameau: no seal for 2026-10", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "datapackage.json")))
        p = self.opendata("2026-10", out, "--partial")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "datapackage.json")) as f:
            self.assertEqual(json.load(f)["sites_without_verified_seal"], ["hameau"])
        self.validate(out)

        seal_texts["hameau"] = self.seal(sites["hameau"], "2026-10", "2026-10-31")
        p = self.opendata("2026-10", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("lyon: machines without a category, published as \"other\": sewing",
                      p.stdout)
        report = self.validate(out)
        self.assertEqual(report["rows"]["sites"], 4)
        with open(os.path.join(out, "datapackage.json")) as f:
            pkg = json.load(f)
        self.assertEqual(pkg["licenses"][0]["name"], "etalab-2.0")
        self.assertEqual(pkg["contributors"], [{"title": PRODUCER, "role": "publisher"}])
        self.assertEqual((pkg["period"], pkg["k_threshold"], pkg["sites_without_verified_seal"]),
                         ("2026-10", K, []))
        self.check_files(out, sites)
        self.check_figures(out, sites)
        self.check_auditor(out, sites, seal_texts)
        self.check_web(published, out, sites)
        self.check_publish_hook(out)

    def check_files(self, out, sites):
        """data.gouv.fr's recommendations: UTF-8, comma, CRLF, one header line, snake_case;
        no member id, pseudonym or machine name anywhere; formulas neutralised."""
        names = sorted(os.listdir(out))
        self.assertEqual(names, sorted([
            "datapackage.json", "sites.csv", "sites.schema.json", "site_days.csv",
            "site_days.schema.json", "machine_use.csv", "machine_use.schema.json",
            "visits_between_sites.csv", "visits_between_sites.schema.json"]))
        for name in names:
            with open(os.path.join(out, name), "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8")          # raises if not UTF-8
            self.assertFalse(raw.startswith(b"\xef\xbb\xbf"), name)
            for s in sites.values():
                for _, e in s.entries:
                    if e["visitor"]:
                        self.assertNotIn(e["visitor"], text, name)
            for machine in ("printer-1", "printer-2", "sewing", "front", "porte", "door"):
                self.assertNotIn(machine, text, name)
            if name.endswith(".csv"):
                lines = raw.split(b"\r\n")
                self.assertEqual(lines[-1], b"", name)
                self.assertNotIn(b"\n", b"".join(lines), name)      # no bare LF
                header = lines[0].decode().split(",")
                for h in header:
                    self.assertRegex(h, r"^[a-z][a-z0-9_]*$")
                self.assertNotIn("member", lines[0].decode())
        raw, rows = read_csv(os.path.join(out, "sites.csv"))
        by_site = {r["site"]: r for r in rows}
        self.assertEqual((by_site["lyon"]["name"], by_site["lyon"]["insee_code"],
                          by_site["nantes"]["longitude"]), ("La Fabrique, Lyon 7e", "69387",
                                                            "-1.5536"))
        self.assertIn(b"\"'=cmd|' /C calc'!A0\"", raw)
        self.assertEqual(by_site["hameau"]["commune"], "Saint-Étienne-de-Tinée")

    def check_figures(self, out, sites):
        """Every published figure is the truth; every figure with fewer than k people is
        withheld; no withheld figure follows from row or column totals."""
        period_days = [datetime(2026, 10, d).date() for d in range(1, 32)]
        t = truth(sites, period_days)
        _, rows = read_csv(os.path.join(out, "site_days.csv"))
        grains = {r["site"]: r["grain"] for r in rows}
        self.assertEqual(grains, {"lyon": "day", "paris": "day", "nantes": "day",
                                  "hameau": "month"})
        cells = {}
        for r in rows:
            if r["grain"] != "day":
                # hameau: one person; nothing about them is published.
                self.assertEqual((r["start_date"], r["end_date"], r["visits"],
                                  r["visitor_days"], r["peak_occupancy"], r["open_hours"]),
                                 ("2026-10-01", "2026-10-31", "", "", "", ""))
                continue
            d = datetime.strptime(r["start_date"], "%Y-%m-%d").date()
            want = t[(r["site"], d)]
            for col, value, people in (
                    ("visits", want["visits"], want["people"]),
                    ("visitor_days", want["visitor_days"], want["visitors"]),
                    ("peak_occupancy", want["peak"], want["occupants"]),
                    ("open_hours", "%.2f" % (want["open_seconds"] / 3600), want["occupants"])):
                cells.setdefault(col, {})[(r["site"], d)] = (r[col], value, people)
        published = 0
        for col, table in cells.items():
            for key, (got, value, people) in table.items():
                if people < K:
                    self.assertEqual(got, "", "%s %s has %d people" % (col, key, people))
                elif got != "":
                    self.assertEqual(got, str(value), "%s %s" % (col, key))
                    published += 1
            if col in ("visits", "visitor_days", "open_hours"):
                self.check_lines(col, table)
        self.assertGreater(published, 200)      # the busy sites are published, mostly
        # A weekday at lyon, as the truth has it.
        row = next(r for r in rows if r["site"] == "lyon" and r["start_date"] == "2026-10-14")
        self.assertEqual(row["visits"], str(t[("lyon", period_days[13])]["visits"]))

        _, rows = read_csv(os.path.join(out, "machine_use.csv"))
        lyon = {(r["machine_category"], r["start_date"]): r for r in rows if r["site"] == "lyon"}
        self.assertEqual({k[0] for k in lyon}, {"laser-cutter", "3d-printer", "other"})
        # The printers, every weekday of the week of the 12th: 7 people, 2 h each, 5 days.
        self.assertEqual((lyon[("3d-printer", "2026-10-12")]["machine_hours"],
                          lyon[("3d-printer", "2026-10-12")]["sessions"]),
                         ("%.2f" % (2 * self.sessions(sites["lyon"], ("printer-1", "printer-2"),
                                                      12, 18)),
                          str(self.sessions(sites["lyon"], ("printer-1", "printer-2"), 12, 18))))
        self.assertEqual(lyon[("other", "2026-10-01")]["grain"], "month")
        self.assertEqual(lyon[("other", "2026-10-01")]["sessions"], "")
        self.assertTrue(all(r["energy_kwh"] == "" for r in rows))
        hameau = [r for r in rows if r["site"] == "hameau"]
        self.assertEqual([(r["machine_category"], r["grain"], r["sessions"]) for r in hameau],
                         [("laser-cutter", "month", "")])

        _, rows = read_csv(os.path.join(out, "visits_between_sites.csv"))
        pairs = {(r["home_site"], r["host_site"]): r["visits"] for r in rows}
        self.assertEqual(len(pairs), 12)
        self.assertEqual(pairs[("paris", "lyon")], "14")        # 7 people, twice
        self.assertEqual(pairs[("lyon", "hameau")], "")
        # Visits at paris: 12 from lyon (6 people), 5 from nantes (5 people): the column of
        # paris holds hameau's withheld 0, so one more is hidden, the smaller.
        self.assertEqual((pairs[("lyon", "paris")], pairs[("nantes", "paris")]), ("12", ""))
        self.check_lines("visits", {k: (v, None, None) for k, v in pairs.items()},
                         rows_of=lambda k: k[0], cols_of=lambda k: k[1])

    def sessions(self, site, machines, first, last):
        return sum(1 for _, e in site.entries if e["kind"] == "machine" and
                   e["resource"] in machines and first <= billing_day(e["start"]).day <= last)

    def check_lines(self, what, table, rows_of=lambda k: k[0], cols_of=lambda k: k[1]):
        """No line holds exactly one withheld cell, and no withheld cell is determined by
        the totals of the rows and columns (linear algebra, exact)."""
        lines = {}
        for key in table:
            lines.setdefault(("row", rows_of(key)), []).append(key)
            lines.setdefault(("col", cols_of(key)), []).append(key)
        hidden = {k for k, v in table.items() if v[0] == ""}
        for name, line in lines.items():
            if len(line) >= 2:
                self.assertNotEqual(sum(1 for c in line if c in hidden), 1,
                                    "%s: %s has one withheld cell" % (what, name))
        everything = set(table)
        for cell in hidden:
            if determined(lines.values(), hidden, cell):
                self.assertTrue(determined(lines.values(), everything, cell),
                                "%s: withheld %s follows from the totals" % (what, cell))

    def check_auditor(self, out, sites, seal_texts):
        """docs/opendata.md: tie the published figures of lyon to its signed ledger."""
        _, rows = read_csv(os.path.join(out, "sites.csv"))
        lyon = next(r for r in rows if r["site"] == "lyon")
        export = os.path.join(self.root, "audit")
        p = self.custodian.ctl("export", "--period", "2026-10", "--out", export, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(export, "lyon-2026-10.seal"), "rb") as f:
            seal = f.read()
        i = seal.rindex(b"signature=")
        text, sig = seal[:i], bytes.fromhex(seal[i + 10:].strip().decode())
        # 1. the seal: the one the dataset names, signed by the key it names
        self.assertEqual(hashlib.sha256(text).hexdigest(), lyon["seal_sha256"])
        self.assertEqual(text.decode(), seal_texts["lyon"])
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(lyon["public_key"])).verify(sig, text)
        fields = dict(line.split("=", 1) for line in text.decode().splitlines()[1:])
        self.assertEqual(fields["last_hash"], lyon["seal_last_hash"])
        # 2. the entries: chained to the seal
        with open(os.path.join(export, "lyon-2026-10.ledger"), "rb") as f:
            raw = f.read()
        entries = [b"portier-ledger-v1\n" + e for e in raw.split(b"portier-ledger-v1\n")[1:]]
        prev = "00" * 32
        per_day = {}
        for e in entries:
            f = dict(line.split("=", 1) for line in e.decode().splitlines()[1:])
            self.assertEqual(f["prev"], prev)
            prev = hashlib.blake2b(e, digest_size=32).hexdigest()
            if f["kind"] in ("day", "presence", "machine", "visit"):
                d = billing_day(int(f["start"]))
                who = f.get("visitor") or f["member"]
                per_day.setdefault(d.isoformat(), set()).add(who)
        self.assertEqual(prev, fields["last_hash"])
        # 3. the figures: visits per day, recomputed from the ledger alone
        _, rows = read_csv(os.path.join(out, "site_days.csv"))
        checked = 0
        for r in rows:
            if r["site"] == "lyon" and r["visits"]:
                self.assertEqual(int(r["visits"]), len(per_day.get(r["start_date"], ())))
                checked += 1
        self.assertGreater(checked, 15)

    def check_web(self, published, out, sites):
        port = free_port()
        self.web = subprocess.Popen([self.custodian_bin(), "--db", self.custodian.db_path,
                                     "serve", "--listen", "127.0.0.1:%d" % port, "--opendata",
                                     published], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        base = "http://127.0.0.1:%d" % port

        def get(path, headers=None):
            try:
                return urllib.request.urlopen(urllib.request.Request(base + path,
                                                                     headers=headers or {}),
                                              timeout=5)
            except urllib.error.HTTPError as e:
                return e
            except urllib.error.URLError:
                return None
        index = wait_until(lambda: get("/opendata/"), what="web page")
        self.assertEqual(index.status, 200)
        html = index.read().decode()
        self.assertIn('href="2026-10/site_days.csv"', html)
        self.assertIn("Tiers-lieux du Rhône &amp; de l&#39;Ouest", html)
        self.assertNotIn("<script", html)
        # the files, byte for byte, with validators
        r = get("/opendata/2026-10/site_days.csv")
        with open(os.path.join(out, "site_days.csv"), "rb") as f:
            self.assertEqual(r.read(), f.read())
        self.assertEqual(r.headers["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(r.headers["Access-Control-Allow-Origin"], "*")
        etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
        self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
        self.assertEqual(get("/opendata/2026-10/site_days.csv",
                             {"If-None-Match": etag}).status, 304)
        self.assertEqual(get("/opendata/2026-10/site_days.csv",
                             {"If-Modified-Since": modified}).status, 304)
        self.assertEqual(get("/opendata/2026-10/site_days.csv",
                             {"If-None-Match": '"stale"'}).status, 200)
        pkg = json.loads(get("/opendata/2026-10/datapackage.json").read())
        self.assertEqual(pkg["name"], "portier-consortium-2026-10")
        for path in ("/opendata/2026-10/../../custodian.db", "/opendata/2026-10/%2e%2e%2fx",
                     "/opendata/2026-10/site_days.csv.tmp", "/opendata/1999-13/"):
            self.assertEqual(get(path).status, 404, path)
        # the feed: one entry per period, newest first; a new period appears
        feed = self.atom(get("/opendata/feed.atom"))
        self.assertEqual(len(feed), 1)
        self.november(sites, published)
        feed = self.atom(get("/opendata/feed.atom"))
        self.assertEqual([e["title"].split(":")[0] for e in feed], ["2026-11", "2026-10"])
        self.assertEqual(feed[1]["enclosure"], "2026-10/datapackage.json")
        self.assertTrue(all(e["id"].startswith("urn:uuid:") for e in feed))
        self.assertEqual(get("/opendata/feed.atom", {"If-None-Match": feed[0]["etag"]}).status,
                         304)
        # POST is refused, as everywhere on this page.
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(base + "/opendata/", data=b"x",
                                                          method="POST"), timeout=5)
        self.assertEqual(e.exception.code, 405)

    def custodian_bin(self):
        from test_consortium import CUSTODIAN
        return CUSTODIAN

    def atom(self, response):
        self.assertEqual(response.headers["Content-Type"], "application/atom+xml; charset=utf-8")
        etag = response.headers["ETag"]
        ns = {"a": "http://www.w3.org/2005/Atom"}
        root = ET.fromstring(response.read())
        self.assertTrue(root.find("a:id", ns).text.startswith("urn:uuid:"))
        self.assertTrue(root.find("a:updated", ns).text.endswith("Z"))
        return [dict(title=e.find("a:title", ns).text, id=e.find("a:id", ns).text,
                     updated=e.find("a:updated", ns).text, etag=etag,
                     enclosure=e.find("a:link[@rel='enclosure']", ns).get("href"))
                for e in root.findall("a:entry", ns)]

    def november(self, sites, published):
        """Every site sealing November too, and its dataset published beside October's."""
        for s in sites.values():
            s.add("day", 1, "x", local(2, 10, month=11))
            self.send(s)
            self.seal(s, "2026-11", "2026-11-30")
        p = self.opendata("2026-11", os.path.join(published, "2026-11"))
        self.assertEqual(p.returncode, 0, p.stderr)

    def check_publish_hook(self, out):
        target = os.path.join(self.root, "portal")
        os.mkdir(target)
        hook = ('cp -r "$1" "%s/$2" && printf %%s "$PORTIER_OPENDATA_PERIOD" > "%s/period"'
                % (target, target))
        p = self.opendata("2026-10", out, "--publish-cmd", hook)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(target, "2026-10", "datapackage.json")))
        with open(os.path.join(target, "period")) as f:
            self.assertEqual(f.read(), "2026-10")
        p = self.opendata("2026-10", out, "--publish-cmd", "exit 3")
        self.assertEqual(p.returncode, 1)
        self.assertIn("the publish command failed (exit status 3)", p.stderr)
        for args, message in ((("--k", "1"), "--k is 2 to"),
                              (("--licence", "wtfpl"), "--licence is one of: etalab-2.0")):
            p = self.opendata("2026-10", out, *args)
            self.assertEqual(p.returncode, 1)
            self.assertIn(message, p.stderr)

    # -- a real site --

    def test_a_real_sites_sealed_period_is_published(self):
        """portierd closes a month; its seal reaches the custodian; the dataset names it."""
        site = Site(self.root, "lyon", self.broker.port)
        site.start()
        self.sites.append(site)
        member = site.seed_member()
        self.custodian.register(site)
        self.custodian.ctl("site", "set", "lyon", "--commune", "Lyon", "--insee", "69123")
        self.custodian.start()
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        now = site.d.ok({"cmd": "sim.advance", "seconds": 0})["now"]
        lt = time.localtime(now)
        period = "%04d-%02d" % (lt.tm_year, lt.tm_mon)
        for day in ("01", "02"):
            site.d.ok({"cmd": "usage.add", "member": str(member), "at": "%s-%s" % (period, day)})
        y, m = (lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1)
        site.d.ok({"cmd": "sim.advance",
                   "seconds": int(time.mktime((y, m, 2, 10, 0, 0, 0, 0, -1))) - now})
        closed = site.d.ok({"cmd": "period.close", "period": period})
        wait_until(lambda: self.seal_state("lyon", period) == "verified", what="seal verified")
        out = os.path.join(self.root, period)
        p = self.opendata(period, out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.validate(out)
        _, rows = read_csv(os.path.join(out, "sites.csv"))
        export = os.path.join(self.root, "audit")
        self.assertEqual(self.custodian.ctl("export", "--period", period, "--out", export,
                                            check=False).returncode, 0)
        with open(os.path.join(export, "lyon-%s.seal" % period), "rb") as f:
            seal = f.read()
        text = seal[:seal.rindex(b"signature=")]
        self.assertEqual(rows[0]["seal_sha256"], hashlib.sha256(text).hexdigest())
        self.assertEqual(rows[0]["public_key"], site.public_key())
        self.assertEqual((rows[0]["commune"], rows[0]["insee_code"]), ("Lyon", "69123"))
        self.assertIn("last_seq=%d\n" % closed["last_ledger_seq"], text.decode())
        # one member: nothing about them
        _, rows = read_csv(os.path.join(out, "site_days.csv"))
        self.assertEqual([(r["grain"], r["visits"]) for r in rows], [("month", "")])


if __name__ == "__main__":
    main()

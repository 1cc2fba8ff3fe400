# SPDX-License-Identifier: AGPL-3.0-or-later
"""Members over their whole life, through portierctl and the control socket: edit, renew,
plan changes from a date, suspend, remove, card states, listings with filters and pages,
times on the site's clock; erasure (billing and the ledger after it) and the export; the
retention pass (what it deletes, what it keeps, statements of closed periods unchanged).
The web's side is in test_members_web.py."""

import json
import os
import sqlite3
import stat
import sys
import tempfile
import time

import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import Daemon, DaemonTest, main, wait_until  # noqa: E402

SRC = os.environ.get("PORTIER_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
SCHEMA = os.path.join(SRC, "docs", "member-export.schema.json")

CONFIG = """
[site]
id = lyon
timezone = Europe/Paris
privacy_contact = rgpd@example.org

[daemon]
state_dir = {dir}/state
control_socket = {dir}/ctl.sock
log_level = debug

[hardware]
backend = sim
debounce_ms = 0
sim_state_dir = {dir}/relays

[metering]
day_starts = 04:00

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
handover_seconds = 0

[privacy]
{privacy}
"""

ALICE, BOB, CAROL = "04A1B2C3", "04B0B0B0", "04C0C0C0"
DAY = 86400


class MembersBase(DaemonTest):
    privacy = ""

    def setUp(self):
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        self.d = Daemon(config_text="placeholder")
        self.d.write_config(CONFIG.format(dir=self.d.dir, privacy=self.privacy))
        self.d.start()
        ok = self.d.ok
        ok({"cmd": "plan.add", "name": "nomad", "zones": "*", "hours": "always"})
        ok({"cmd": "plan.billing", "plan": "nomad", "day_rate_cents": 1500,
            "allowance_order": "rate"})
        ok({"cmd": "plan.add", "name": "resident", "zones": "*", "hours": "always"})
        ok({"cmd": "plan.billing", "plan": "resident", "monthly_days": 31,
            "allowance_order": "plan"})
        self.alice = ok({"cmd": "member.add", "name": "Alice Martin", "plan": "nomad",
                         "email": "alice@example.org"})["id"]
        self.bob = ok({"cmd": "member.add", "name": "Bob", "plan": "nomad"})["id"]
        ok({"cmd": "card.add", "member": "Alice Martin", "uid": ALICE, "label": "blue fob"})
        ok({"cmd": "card.add", "member": "Bob", "uid": BOB})
        ok({"cmd": "machine.set", "machine": "laser", "booking_required": False,
            "walkup_free_minutes": 0, "hours": "always"})
        self.now = self.advance_to_local(10, 0)

    # -- helpers --
    def advance(self, seconds):
        return self.d.ok({"cmd": "sim.advance", "seconds": int(seconds)})["now"]

    def advance_to_local(self, hour, minute, days=1):
        """Move the clock to HH:MM local, days from now (site time, Europe/Paris)."""
        now = self.advance(0)
        lt = time.localtime(now + days * DAY)
        target = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, hour, minute, 0, 0, 0, -1)))
        return self.advance(target - now)

    def advance_days(self, days):
        for _ in range(days // 80):
            self.advance(80 * DAY)
        return self.advance((days % 80) * DAY)

    def tap(self, uid, reader="in"):
        return self.d.ok({"cmd": "sim.tap", "reader": reader, "uid": uid})

    def member(self, ref):
        return self.d.ok({"cmd": "member.show", "member": str(ref)})["member"]

    def refused(self, req, code):
        r = self.d.request(req)
        self.assertFalse(r.get("ok"), r)
        self.assertEqual(r["code"], code, r)
        return r["error"]

    def q(self, sql, *args):
        db = self.d.db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    @staticmethod
    def date(t):
        return time.strftime("%Y-%m-%d", time.localtime(t))

    @staticmethod
    def period(t):
        return time.strftime("%Y-%m", time.localtime(t))


class EditTest(MembersBase):
    def test_set_changes_what_it_names_and_records_who_when_old_and_new(self):
        until = self.date(self.now + 40 * DAY)
        code, out, _ = self.d.ctl("member", "set", "Alice Martin", "--name", "Alice Lefèvre",
                                  "--email", "alice@lefevre.example", "--plan", "resident",
                                  "--until", until, "--note", "pays by transfer")
        self.assertIn("plan resident", out)
        m = self.member(self.alice)
        self.assertEqual((m["name"], m["email"], m["plan"], m["note"], m["status"]),
                         ("Alice Lefèvre", "alice@lefevre.example", "resident",
                          "pays by transfer", "active"))
        changes = {c["field"]: c for c in m["changes"]}
        self.assertEqual((changes["name"]["old"], changes["name"]["new"]),
                         ("Alice Martin", "Alice Lefèvre"))
        self.assertEqual((changes["plan"]["old"], changes["plan"]["new"]), ("nomad", "resident"))
        self.assertEqual(changes["email"]["old"], "alice@example.org")
        self.assertEqual(changes["valid_until"]["old"], "")
        self.assertTrue(changes["valid_until"]["new"].endswith("Z"))
        for c in m["changes"]:
            self.assertEqual(c["by"], "uid=%d" % os.getuid())
            self.assertTrue(c["at_utc"].endswith("Z"))
        # The same again changes nothing and records nothing.
        n = len(m["changes"])
        r = self.d.ok({"cmd": "member.set", "member": str(self.alice), "name": "Alice Lefèvre"})
        self.assertEqual(r["changed"], 0)
        self.assertEqual(len(self.member(self.alice)["changes"]), n)
        # portierctl shows the history on the site's clock, with the zone.
        _, out, _ = self.d.ctl("member", "show", str(self.alice))
        self.assertIn("History (newest first):", out)
        self.assertIn("Alice Martin -> Alice Lefèvre", out)
        self.assertRegex(out, r"valid_until +\(none\) -> %s 24:00 CE(S)?T" % until)

    def test_set_refuses_bad_input_and_unknown_members(self):
        ok = {"cmd": "member.set", "member": "Bob"}
        self.refused(dict(ok, member="Zoe"), "not_found")
        self.refused(dict(ok, member="999"), "not_found")
        self.refused(ok, "bad_request")                                 # nothing to change
        self.refused(dict(ok, valid_until="2026-13-45"), "bad_request")
        self.refused(dict(ok, valid_until="tomorrow"), "bad_request")
        self.refused(dict(ok, valid_from="2030-01-02", valid_until="2030-01-01T00:00"),
                     "bad_request")
        self.refused(dict(ok, email="bob at example"), "bad_request")
        self.refused(dict(ok, name="   "), "bad_request")
        self.refused(dict(ok, plan="gold"), "not_found")
        self.refused(dict(ok, plan_from="2030-01-01"), "bad_request")   # plan_from needs plan
        self.refused(dict(ok, plan="none", plan_from="2099-01-01"), "bad_request")
        self.refused(dict(ok, note="x" * 256), "bad_request")
        self.assertEqual(self.member(self.bob)["changes"][0]["field"], "card")   # untouched
        code, _, err = self.d.ctl("member", "set", "Bob", "--until", "31/12/2030", check=False)
        self.assertEqual(code, 1)
        self.assertIn("must be a time", err)
        code, _, err = self.d.ctl("member", "frobnicate", "Bob", check=False)
        self.assertEqual(code, 2)

    def test_a_date_alone_means_the_end_of_that_local_day_at_the_door_and_in_listings(self):
        today = self.date(self.now)
        self.d.ctl("member", "set", "Bob", "--until", today)
        self.assertTrue(self.tap(BOB)["granted"])
        _, out, _ = self.d.ctl("member", "list")
        self.assertRegex(out, r"Bob .* active .* %s 24:00 CE(S)?T" % today)
        # 23:59 local: still valid; just after midnight: expired, at the door and in lists.
        self.advance_to_local(23, 59, days=0)
        self.assertTrue(self.tap(BOB)["granted"])
        self.advance(90)
        r = self.tap(BOB)
        self.assertEqual((r["granted"], r["reason"]), (False, "member_expired"))
        _, out, _ = self.d.ctl("member", "list")
        self.assertRegex(out, r"Bob .* expired .* %s 24:00" % today)
        self.assertEqual(self.member(self.bob)["status"], "expired")
        # A time of day is taken as it is.
        self.d.ctl("member", "set", "Bob", "--until", today + "T18:30")
        self.assertRegex(self.d.ctl("member", "show", "Bob")[1],
                         r"until %s 18:30 CE(S)?T" % today)

    def test_renew_to_a_date_or_by_a_duration(self):
        until = self.date(self.now + 10 * DAY)
        self.d.ctl("member", "renew", "Bob", "--until", until)
        end = self.member(self.bob)["valid_until"]
        self.assertEqual(time.strftime("%Y-%m-%d %H:%M", time.localtime(end - 1)),
                         until + " 23:59")
        # --for counts from the current end.
        self.d.ctl("member", "renew", "Bob", "--for", "1m")
        lt = time.localtime(self.member(self.bob)["valid_until"] - 1)
        want = time.localtime(int(time.mktime(time.strptime(until, "%Y-%m-%d"))) + 32 * DAY)
        self.assertEqual((lt.tm_mon, lt.tm_hour, lt.tm_min), (want.tm_mon, 23, 59))
        self.refused({"cmd": "member.renew", "member": "Bob"}, "bad_request")
        self.refused({"cmd": "member.renew", "member": "Bob", "until": until, "for": "1y"},
                     "bad_request")
        self.refused({"cmd": "member.renew", "member": "Bob", "for": "forever"}, "bad_request")
        self.refused({"cmd": "member.renew", "member": "Bob", "until": "2001-01-01"},
                     "bad_request")
        self.refused({"cmd": "member.renew", "member": "Nobody", "for": "1y"}, "not_found")
        # An expired membership renewed by a duration runs from today.
        self.d.ctl("member", "set", "Bob", "--until", self.date(self.now - 5 * DAY))
        self.assertEqual(self.member(self.bob)["status"], "expired")
        self.d.ctl("member", "renew", "Bob", "--for", "1y")
        m = self.member(self.bob)
        self.assertEqual(m["status"], "active")
        self.assertGreater(m["valid_until"], self.now + 360 * DAY)

    def test_plan_change_from_a_date_waits_for_that_billing_day(self):
        day = self.date(self.now + 2 * DAY)
        self.d.ctl("member", "set", "Bob", "--plan", "resident", "--plan-from", day)
        m = self.member(self.bob)
        self.assertEqual((m["plan"], m["next_plan"]), ("nomad", "resident"))
        # From the start of that billing day (04:00 with day_starts), not midnight.
        self.assertEqual(time.strftime("%Y-%m-%d %H:%M", time.localtime(m["next_plan_at"])),
                         day + " 04:00")
        self.advance_to_local(3, 59, days=2)
        self.assertEqual(self.member(self.bob)["plan"], "nomad")
        self.advance(120)
        m = self.member(self.bob)
        self.assertEqual((m["plan"], m["next_plan"]), ("resident", None))
        self.assertEqual(m["changes"][0]["by"], "schedule")
        _, out, _ = self.d.ctl("member", "show", "Bob")
        self.assertIn("schedule", out)

    def test_plan_change_now_never_charges_a_day_twice(self):
        self.assertTrue(self.tap(BOB)["granted"])            # a day at the nomad day rate
        self.tap(BOB, "out")
        self.d.ctl("member", "set", "Bob", "--plan", "resident")
        self.assertTrue(self.tap(BOB)["granted"])            # same billing day, new plan
        st = self.d.ok({"cmd": "statement", "period": self.period(self.now),
                        "member": "Bob"})["statement"]
        days = [l for m in st["members"] for l in m["lines"] if l["kind"] == "day"]
        self.assertEqual([(l["allowance"], l["amount_cents"]) for l in days], [("rate", 1500)])
        # The next billing day is the new plan's.
        self.advance_to_local(10, 0)
        self.assertTrue(self.tap(BOB)["granted"])
        st = self.d.ok({"cmd": "statement", "period": self.period(self.advance(0)),
                        "member": "Bob"})["statement"]
        days = [l for m in st["members"] for l in m["lines"] if l["kind"] == "day"]
        self.assertEqual(days[-1]["allowance"], "plan")

    def test_suspend_resume_and_card_states_are_recorded(self):
        self.d.ctl("member", "suspend", "Bob")
        self.assertEqual(self.tap(BOB)["reason"], "member_suspended")
        self.assertEqual(self.member(self.bob)["status"], "suspended")
        self.d.ctl("member", "resume", "Bob")
        card = self.d.ok({"cmd": "card.list", "member": "Bob"})["cards"][0]["id"]
        _, out, _ = self.d.ctl("card", "disable", str(card))
        self.assertIn("disabled", out)
        self.assertEqual(self.tap(BOB)["reason"], "card_disabled")
        self.d.ctl("card", "enable", str(card))
        self.assertTrue(self.tap(BOB)["granted"])
        self.refused({"cmd": "card.enable", "card": 999}, "not_found")
        fields = [(c["field"], c["old"], c["new"]) for c in self.member(self.bob)["changes"]]
        self.assertIn(("status", "active", "suspended"), fields)
        self.assertIn(("status", "suspended", "active"), fields)
        self.assertIn(("card", "card %d, enabled" % card, "card %d, disabled" % card), fields)

    def test_remove_ends_access_and_keeps_history(self):
        self.d.ctl("account", "add", "bob", "--role", "member", "--member", "Bob")
        self.d.ok({"cmd": "booking.add", "machine": "laser", "member": "Bob",
                   "start": self.now + 2 * DAY, "end": self.now + 2 * DAY + 3600})
        self.assertTrue(self.tap(BOB)["granted"])
        self.d.ctl("member", "remove", "Bob")
        r = self.tap(BOB)
        self.assertEqual((r["granted"], r["reason"]), (False, "card_disabled"))
        m = self.member(self.bob)
        self.assertEqual(m["status"], "removed")
        self.assertEqual(m["name"], "Bob")                           # history kept
        self.assertFalse(self.d.ok({"cmd": "card.list", "member": "Bob"})["cards"][0]["enabled"])
        self.assertTrue(self.d.ok({"cmd": "account.show", "name": "bob"})["account"]["disabled"])
        self.assertEqual(self.q("SELECT count(*) FROM bookings WHERE member_id = ? AND "
                                "cancelled_at = 0", self.bob)[0][0], 0)
        self.assertEqual(self.d.ok({"cmd": "presence.list"})["present"], [])   # checked out
        self.refused({"cmd": "member.remove", "member": "Bob"}, "removed")
        self.refused({"cmd": "member.resume", "member": "Bob"}, "removed")
        self.refused({"cmd": "member.renew", "member": "Bob", "for": "1y"}, "removed")
        card = self.d.ok({"cmd": "card.list", "member": "Bob"})["cards"][0]["id"]
        self.refused({"cmd": "card.enable", "card": card}, "removed")
        self.refused({"cmd": "card.add", "member": "Bob", "uid": CAROL}, "removed")
        # Its usage stays on statements.
        st = self.d.ok({"cmd": "statement", "period": self.period(self.now)})["statement"]
        self.assertIn("Bob", [m["member"] for m in st["members"]])


class ListTest(MembersBase):
    def test_filters_search_and_pages(self):
        ok = self.d.ok
        ok({"cmd": "member.add", "name": "Carol", "valid_until": self.now - DAY})
        ok({"cmd": "member.add", "name": "Dan", "valid_until": self.now + 10 * DAY})
        ok({"cmd": "member.add", "name": "Eve", "valid_from": self.now + 10 * DAY})
        ok({"cmd": "member.suspend", "member": "Bob"})
        ok({"cmd": "card.add", "member": "Dan", "uid": CAROL, "label": "Workshop key 7"})

        def names(**kw):
            r = ok(dict({"cmd": "member.list"}, **kw))
            return sorted(m["name"] for m in r["members"]), r["total"]

        self.assertEqual(names(), (["Alice Martin", "Bob", "Carol", "Dan", "Eve"], 5))
        self.assertEqual(names(filter="active"), (["Alice Martin", "Dan"], 2))
        self.assertEqual(names(filter="suspended"), (["Bob"], 1))
        self.assertEqual(names(filter="expired"), (["Carol"], 1))
        self.assertEqual(names(filter="expiring"), (["Dan"], 1))
        self.assertEqual(names(query="example.org"), (["Alice Martin"], 1))    # e-mail
        self.assertEqual(names(query="workshop KEY"), (["Dan"], 1))            # card label
        self.assertEqual(names(query="a%"), ([], 0))                           # literal %
        r = ok({"cmd": "member.list", "limit": 2, "offset": 2})
        self.assertEqual(([m["name"] for m in r["members"]], r["total"]), (["Carol", "Dan"], 5))
        self.assertEqual({m["name"]: m["status"] for m in ok({"cmd": "member.list"})["members"]},
                         {"Alice Martin": "active", "Bob": "suspended", "Carol": "expired",
                          "Dan": "active", "Eve": "not_yet_valid"})
        self.refused({"cmd": "member.list", "filter": "gone"}, "bad_request")
        _, out, _ = self.d.ctl("member", "list", "--filter", "expired")
        self.assertIn("Carol", out)
        self.assertNotIn("Dan", out)
        _, out, _ = self.d.ctl("member", "list", "--limit", "2")
        self.assertIn("(2 of 5 shown", out)
        self.assertEqual(len(self.d.ctl_json("member", "list")), 5)   # --json: the list

    def test_plan_show_and_billing_without_options(self):
        self.d.ok({"cmd": "rate.set", "plan": "nomad", "target": "laser", "per_hour_cents": 1200,
                   "block_minutes": 15})
        _, out, _ = self.d.ctl("plan", "billing", "nomad")
        self.assertIn("day rate 15.00 EUR, order rate", out)
        self.assertNotIn("changed", out)
        # An option changes what it names; the others keep their value.
        self.d.ctl("plan", "billing", "nomad", "--visit-days", "3")
        p = self.d.ctl_json("plan", "show", "nomad")
        self.assertEqual((p["day_rate_cents"], p["allowance_order"], p["visit_days"],
                          p["members"]), (1500, "rate", 3, 2))
        self.assertEqual([(r["target"], r["per_hour_cents"], r["block_minutes"])
                          for r in p["rates"]], [("laser", 1200, 15)])
        _, out, _ = self.d.ctl("plan", "show", "nomad")
        self.assertIn("then 15.00 EUR a day", out)
        self.assertIn("laser", out)
        self.refused({"cmd": "plan.show", "plan": "gold"}, "not_found")

    def test_times_on_the_site_clock_with_the_zone_and_utc_in_json(self):
        self.tap(ALICE)
        _, out, _ = self.d.ctl("events")
        self.assertRegex(out, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CE(S)?T +front")
        ev = self.d.ctl_json("events")[-1]
        self.assertEqual(ev["at_utc"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ev["at"])))
        m = self.d.ctl_json("member", "show", "Alice Martin")["member"]
        self.assertTrue(m["created_at_utc"].endswith("Z"))
        self.assertIsNone(m["valid_until_utc"])
        # portierctl takes the zone from the daemon, not from where it runs.
        env_tz = os.environ.get("TZ")
        os.environ["TZ"] = "America/New_York"
        try:
            _, out, _ = self.d.ctl("events")
        finally:
            os.environ["TZ"] = env_tz
            time.tzset()
        self.assertRegex(out, r" CE(S)?T +front")


class ErasureTest(MembersBase):
    def setUp(self):
        super().setUp()
        # Alice comes in this month (a day at 15.00, a presence) ...
        self.first = self.now
        self.assertTrue(self.tap(ALICE)["granted"])
        self.tap(ALICE, "out")
        self.d.ctl("account", "add", "alice", "--role", "member", "--member", "Alice Martin")
        self.d.ctl("member", "set", "Alice Martin", "--note", "allergic to cats")
        self.d.ok({"cmd": "training.add", "name": "laser-basics"})
        self.d.ok({"cmd": "training.grant", "member": "Alice Martin", "training": "laser-basics"})

    def close_this_month(self):
        """Move to the next month and close this one; returns its statement."""
        period = self.period(self.first)
        lt = time.localtime(self.first)
        nxt = time.mktime((lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1, 2, 10, 0, 0, 0, 0, -1))
        self.advance(int(nxt) - self.advance(0))
        self.d.ok({"cmd": "period.close", "period": period})
        return period, self.d.ok({"cmd": "statement", "period": period})["statement"]

    def test_erasure_is_refused_while_usage_is_not_settled_unless_forced(self):
        err = self.refused({"cmd": "member.erase", "member": "Alice Martin"}, "open_period")
        self.assertIn(self.period(self.first), err)
        self.assertIn("period close", err)
        self.assertEqual(self.member(self.alice)["name"], "Alice Martin")   # nothing changed
        code, _, err = self.d.ctl("member", "erase", "Alice Martin", check=False)
        self.assertEqual(code, 1)
        self.assertIn("not closed", err)
        _, out, _ = self.d.ctl("member", "erase", str(self.alice), "--force")
        self.assertIn("its open period shows the pseudonym", out)
        st = self.d.ok({"cmd": "statement", "period": self.period(self.first)})["statement"]
        names = [m["member"] for m in st["members"]]
        self.assertNotIn("Alice Martin", names)
        self.assertTrue(any(n.startswith("erased-") for n in names))

    def test_erasure_deletes_personal_data_and_keeps_billing_and_the_ledger(self):
        period, before = self.close_this_month()
        events = self.q("SELECT count(*) FROM access_events WHERE member_id = ?", self.alice)[0][0]
        self.assertGreater(events, 0)
        r = self.d.ok({"cmd": "member.erase", "member": "Alice Martin"})
        pseudonym = r["pseudonym"]
        self.assertRegex(pseudonym, r"^erased-[0-9a-f]{8}$")
        self.assertEqual((r["cards"], r["scrubbed"]), (1, events))
        # Personal data: gone.
        row = self.q("SELECT name, email, note, erased_at FROM members WHERE id = ?", self.alice)[0]
        self.assertEqual(row[:3], (pseudonym, "", ""))
        self.assertGreater(row[3], 0)
        self.assertEqual(self.q("SELECT count(*) FROM cards WHERE member_id = ?", self.alice)[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM accounts WHERE member_id = ?", self.alice)[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM qualifications WHERE member_id = ?",
                                self.alice)[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM access_events WHERE member_id = ? AND "
                                "card_hash IS NOT NULL", self.alice)[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM member_changes WHERE member_id = ? AND "
                                "field IN ('name', 'email', 'note')", self.alice)[0][0], 0)
        dump = "\n".join(self.d.db().iterdump())
        for secret in ("Alice Martin", "alice@example.org", "allergic to cats", "blue fob"):
            self.assertNotIn(secret, dump)
        # Its card opens nothing any more: it is unknown.
        self.assertEqual(self.tap(ALICE)["reason"], "unknown_card")
        # Billing: the closed period's statement is the same but for the name.
        after = self.d.ok({"cmd": "statement", "period": period})["statement"]
        self.assertEqual(after["totals"], before["totals"])
        for a, b in zip(after["members"], before["members"]):
            if b["member_id"] == self.alice:
                self.assertEqual((a["member"], b["member"]), (pseudonym, "Alice Martin"))
                b["member"] = pseudonym
            self.assertEqual(a, b)
        sealed = [p for p in self.d.ok({"cmd": "period.list"})["periods"] if p["period"] == period]
        self.assertEqual(json.loads(sealed[0]["totals"]), before["totals"])
        # The ledger holds no personal data and still verifies.
        v = self.d.ok({"cmd": "ledger.verify"})
        self.assertTrue(v["intact"], v)
        _, out, _ = self.d.ctl("ledger", "verify")
        self.assertIn("ledger intact", out)
        # Erasing twice, and exporting what is erased: refused, with why.
        self.assertIn("was erased", self.refused({"cmd": "member.erase",
                                                  "member": str(self.alice)}, "erased"))
        self.refused({"cmd": "member.export", "member": str(self.alice)}, "erased")
        self.refused({"cmd": "member.set", "member": str(self.alice), "name": "Back"}, "erased")
        self.assertEqual(self.member(self.alice)["status"], "erased")
        code, _, err = self.d.ctl("member", "export", str(self.alice), check=False)
        self.assertEqual(code, 1)
        self.assertIn("erased", err)

    def test_an_erasure_interrupted_by_a_restart_is_finished_at_the_next_start(self):
        self.close_this_month()
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        db.execute("UPDATE members SET erased_at = 1, name = 'erased-00000000' WHERE id = ?",
                   (self.alice,))
        db.commit()
        db.close()
        self.d.start()
        wait_until(lambda: self.q("SELECT count(*) FROM cards WHERE member_id = ?",
                                  self.alice)[0][0] == 0, what="the cards deleted")
        self.assertEqual(self.q("SELECT count(*) FROM access_events WHERE member_id = ? AND "
                                "card_hash IS NOT NULL", self.alice)[0][0], 0)
        self.assertIn("finishing an erasure interrupted by a restart", self.d.log_text())


class ExportTest(MembersBase):
    def test_export_holds_everything_and_follows_its_schema(self):
        self.assertTrue(self.tap(ALICE)["granted"])
        self.tap(ALICE, "out")
        self.tap(ALICE, "laser")
        self.advance(600)
        self.tap(ALICE, "laser")
        self.d.ctl("account", "add", "alice", "--role", "member", "--member", "Alice Martin")
        self.d.ok({"cmd": "pass.add", "member": "Alice Martin", "kind": "days", "quantity": 5})
        self.d.ok({"cmd": "booking.add", "machine": "laser", "member": "Alice Martin",
                   "start": self.now + DAY, "end": self.now + DAY + 3600})
        path = os.path.join(self.d.dir, "alice.json")
        _, _, err = self.d.ctl("member", "export", "Alice Martin", "--out", path)
        self.assertIn("written to " + path, err)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)    # personal data
        with open(path) as f:
            doc = json.load(f)
        with open(SCHEMA) as f:
            jsonschema.validate(doc, json.load(f))
        self.assertEqual(doc["member"]["name"], "Alice Martin")
        self.assertEqual(doc["member"]["email"], "alice@example.org")
        self.assertEqual(doc["site"]["privacy_contact"], "rgpd@example.org")
        self.assertEqual(doc["retention"]["access_log_days"], 90)
        self.assertEqual([c["label"] for c in doc["cards"]], ["blue fob"])
        self.assertEqual([a["name"] for a in doc["accounts"]], ["alice"])
        self.assertEqual(len(doc["passes"]), 1)
        self.assertEqual(len(doc["bookings"]), 1)
        self.assertEqual(len(doc["presences"]), 1)
        self.assertEqual(len(doc["machine_sessions"]), 1)
        self.assertEqual(sorted({u["kind"] for u in doc["usage"]}), ["day", "machine", "presence"])
        self.assertEqual(len(doc["access_events"]),
                         self.q("SELECT count(*) FROM access_events WHERE member_id = ?",
                                self.alice)[0][0])
        self.assertNotIn("Bob", json.dumps(doc))               # nobody else's data
        self.assertNotIn(ALICE, json.dumps(doc))               # never a card's UID
        # Without --out: the document on stdout.
        _, out, _ = self.d.ctl("member", "export", "Bob")
        self.assertEqual(json.loads(out)["member"]["name"], "Bob")
        self.refused({"cmd": "member.export", "member": "Nobody"}, "not_found")


class RetentionTest(MembersBase):
    privacy = "access_log_days = 30\npresence_days = 60\naccount_inactive_days = 100\n"

    def test_old_rows_go_statements_of_closed_periods_do_not_change(self):
        start = self.now
        for uid in (ALICE, BOB):
            self.assertTrue(self.tap(uid)["granted"])
            self.tap(uid, "out")
        self.tap(ALICE, "laser")
        self.advance(300)
        self.tap(ALICE, "laser")
        self.d.ctl("account", "add", "bob", "--role", "member", "--member", "Bob")
        old_events = self.q("SELECT count(*) FROM access_events")[0][0]
        self.assertGreater(old_events, 4)
        # A month later the first month is closed; months after, a pass deletes its rows.
        period = self.period(start)
        self.advance_days(35)
        self.d.ok({"cmd": "period.close", "period": period})
        before = self.d.ok({"cmd": "statement", "period": period})["statement"]
        self.advance_days(70)
        self.assertTrue(self.tap(BOB)["granted"])            # a row of today stays
        r = self.d.ok({"cmd": "privacy.prune"})
        self.assertEqual(r["deleted"]["access_events"], old_events)
        self.assertEqual(r["deleted"]["presence"], 2)
        self.assertEqual(r["deleted"]["machine_sessions"], 1)
        self.assertEqual(r["accounts"], 1)
        self.assertEqual(self.q("SELECT count(*) FROM access_events")[0][0], 1)
        self.assertEqual(self.q("SELECT count(*) FROM accounts")[0][0], 0)
        after = self.d.ok({"cmd": "statement", "period": period})["statement"]
        self.assertEqual(after, before)
        self.assertTrue(self.d.ok({"cmd": "ledger.verify"})["intact"])
        # The retention in force and the last pass, in status.
        p = self.d.status()["privacy"]
        self.assertEqual((p["access_log_days"], p["presence_days"], p["account_inactive_days"]),
                         (30, 60, 100))
        self.assertEqual(p["last_pass"]["deleted"]["access_events"], old_events)
        self.assertEqual(p["auto_vacuum"], "incremental")
        _, out, _ = self.d.ctl("status")
        self.assertIn("Privacy: access log 30 days", out)

    def test_rows_an_open_period_may_need_are_kept_until_it_is_closed(self):
        self.d.stop()
        self.d.write_config(CONFIG.format(dir=self.d.dir, privacy="access_log_days = 1"))
        self.d.start()
        # A tap early in a month; two weeks into the next one, that month is still open.
        now = self.advance(0)
        lt = time.localtime(now)
        first = time.mktime((lt.tm_year + (lt.tm_mon == 12), lt.tm_mon % 12 + 1, 3, 10, 0, 0, 0,
                             0, -1))
        self.advance(int(first) - now)
        self.assertTrue(self.tap(BOB)["granted"])
        tapped = self.q("SELECT count(*) FROM access_events")[0][0]
        self.advance_days(40)                                # the month after next
        period = self.period(first)
        self.d.ok({"cmd": "privacy.prune"})
        self.assertEqual(self.q("SELECT count(*) FROM access_events")[0][0], tapped)
        self.d.ok({"cmd": "period.close", "period": period})
        r = self.d.ok({"cmd": "privacy.prune"})
        self.assertEqual(r["deleted"]["access_events"], tapped)

    def test_the_access_log_is_still_append_only_beyond_what_retention_deletes(self):
        self.tap(ALICE)
        db = self.d.db()
        with self.assertRaises(sqlite3.IntegrityError):
            db.execute("DELETE FROM access_events")
        with self.assertRaises(sqlite3.IntegrityError):
            db.execute("UPDATE access_events SET granted = 0")
        db.close()

    def test_many_rows_go_in_small_steps_and_the_space_is_given_back(self):
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        old = self.now - 400 * DAY
        db.executemany("INSERT INTO access_events (at, reader, member_id, card_hash, kind, "
                       "granted, reason, detail) VALUES (?, 'in', ?, randomblob(32), 'tap', 1, "
                       "'granted', ?)", [(old + i, self.bob, "x" * 60) for i in range(20000)])
        db.commit()
        db.close()
        self.d.start()
        r = self.d.ok({"cmd": "privacy.prune"})
        self.assertEqual(r["deleted"]["access_events"], 20000)
        self.assertGreaterEqual(r["steps"], 20000 // 4096)    # small steps, never one
        self.assertLessEqual(r["step_us_p50"], r["longest_step_us"])
        self.assertGreater(r["pages_freed"], 1000)
        self.assertEqual(self.d.status()["privacy"]["free_pages"], 0)


class ConfigTest(MembersBase):
    def test_privacy_keys_are_checked(self):
        self.d.stop()
        self.d.write_config(CONFIG.format(dir=self.d.dir, privacy="access_log_days = -1\n"))
        import subprocess
        from portier_harness import PORTIERD
        p = subprocess.run([PORTIERD, "-n", "-c", self.d.config_path], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("access_log_days = -1 is out of range", p.stderr)
        self.d.write_config(CONFIG.format(dir=self.d.dir, privacy=""))
        self.d.start()


if __name__ == "__main__":
    main()

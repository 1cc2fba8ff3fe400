# SPDX-License-Identifier: AGPL-3.0-or-later
"""Members on the web: the list (search, filters, pages, 10,000 members), a member's page
and its actions, exports ("Download my data"), refusals by role and bad input, and the
public /privacy page written from the configuration. The same daemon and curl client as
test_http.py."""

import json
import os
import re
import sqlite3
import sys
import time

import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import main  # noqa: E402
from test_http import CSRF_RE, HttpBase  # noqa: E402

SRC = os.environ.get("PORTIER_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
SCHEMA = os.path.join(SRC, "docs", "member-export.schema.json")
ROW_RE = re.compile(r'<tr><th scope="row"><a href="/manage/members/(\d+)">([^<]*)</a>')


class MembersWebBase(HttpBase):
    more = "\n[privacy]\naccess_log_days = 60\n"

    def setUp(self):
        super().setUp()
        self.boss = self.browser("boss")

    def page(self, c, path, status=200):
        r = c.get(path)
        self.assertEqual(r.status, status, r)
        return r

    def post(self, c, path, form, status=303, from_page=None):
        csrf = c.csrf(from_page or "/manage/members")
        r = c.post(path, dict(form, csrf=csrf))
        self.assertEqual(r.status, status, r)
        return r

    def member(self, ref):
        return self.d.ok({"cmd": "member.show", "member": str(ref)})["member"]

    @staticmethod
    def rows(text):
        return [(int(i), n) for i, n in ROW_RE.findall(text)]


class ListTest(MembersWebBase):
    def test_search_filters_and_pages(self):
        for i in range(120):
            self.d.ok({"cmd": "member.add", "name": "Member %03d" % i,
                       "email": "m%03d@example.org" % i})
        self.d.ok({"cmd": "member.suspend", "member": "Bob"})
        self.d.ok({"cmd": "card.add", "member": "Carol", "uid": "04CAFE01", "label": "green fob"})
        r = self.page(self.boss, "/manage/members")
        self.assertEqual(len(self.rows(r.text)), 50)
        self.assertIn('<span id="member-count">123 members</span>', r.text)
        self.assertIn("page 1 / 3", r.text)
        self.assertIn('rel="next" href="/manage/members?page=2&amp;filter=all&amp;q="', r.text)
        self.assertNotIn('rel="prev"', r.text)
        last = self.page(self.boss, "/manage/members?page=3").text
        self.assertEqual(len(self.rows(last)), 23)
        self.assertIn('rel="prev"', last)
        # Search by name, e-mail or card label; the search survives paging links.
        self.assertEqual([n for _, n in self.rows(self.page(self.boss, "/manage/members?q=ali").text)],
                         ["Alice"])
        self.assertEqual([n for _, n in self.rows(
            self.page(self.boss, "/manage/members?q=m007%40example").text)], ["Member 007"])
        self.assertEqual([n for _, n in self.rows(
            self.page(self.boss, "/manage/members?q=GREEN").text)], ["Carol"])
        r = self.page(self.boss, "/manage/members?q=Member&page=2")
        self.assertIn("q=Member", r.text)
        # Filters, and states shown as they are.
        r = self.page(self.boss, "/manage/members?filter=suspended")
        self.assertEqual([n for _, n in self.rows(r.text)], ["Bob"])
        self.assertIn('<span class="badge s-suspended">suspended</span>', r.text)
        self.assertEqual(self.page(self.boss, "/manage/members?q=%3Cscript%3E").status, 200)
        self.assertNotIn("<script>", self.page(self.boss, "/manage/members?q=%3Cscript%3E").text)
        self.assertEqual(self.page(self.boss, "/manage/members?q=" + "x" * 200, 400).status, 400)
        self.assertEqual(len(self.rows(self.page(self.boss, "/manage/members?page=oops").text)), 50)

    def test_expired_members_are_shown_as_expired(self):
        self.d.ok({"cmd": "member.set", "member": "Bob", "valid_until": self.now - 3600})
        r = self.page(self.boss, "/manage/members?filter=expired")
        self.assertEqual([n for _, n in self.rows(r.text)], ["Bob"])
        self.assertIn('<span class="badge s-expired">expired</span>', r.text)
        self.assertIn("s-expired", self.page(self.boss, "/manage/members/%d" % self.bob).text)
        self.assertEqual([n for _, n in self.rows(
            self.page(self.boss, "/manage/members?filter=active").text)], ["Alice", "Carol"])

    def test_ten_thousand_members_a_page_at_a_time(self):
        self.d.stop()
        db = sqlite3.connect(os.path.join(self.d.dir, "state", "portier.db"))
        db.executemany("INSERT INTO members (name, email, created_at) VALUES (?, ?, ?)",
                       [("Zed %05d" % i, "z%05d@example.org" % i, self.now) for i in range(10000)])
        db.commit()
        db.close()
        self.d.start()
        self.boss = self.browser("boss")
        r = self.page(self.boss, "/manage/members?page=201")
        self.assertIn('<span id="member-count">10003 members</span>', r.text)
        self.assertIn("page 201 / 201", r.text)
        self.assertEqual([n for _, n in self.rows(r.text)], ["Zed %05d" % i for i in range(9997, 10000)])
        r = self.page(self.boss, "/manage/members?q=z04242")
        self.assertEqual([n for _, n in self.rows(r.text)], ["Zed 04242"])


class MemberPageTest(MembersWebBase):
    def test_the_page_shows_plan_validity_cards_trainings_bookings_usage_and_history(self):
        ok = self.d.ok
        ok({"cmd": "training.add", "name": "laser-basics"})
        ok({"cmd": "training.grant", "member": "Alice", "training": "laser-basics"})
        self.book("Alice", self.at(14), self.at(15))
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        ok({"cmd": "member.set", "member": "Alice", "valid_until": "2031-06-30",
            "note": "keyholder"})
        r = self.page(self.boss, "/manage/members/%d" % self.alice)
        t = r.text
        self.assertIn("<h1>Alice", t)
        self.assertIn('<span class="badge s-active">active</span>', t)
        self.assertRegex(t, r'id="valid-until">30 Jun 2031 24:00 CEST<')
        self.assertIn("keyholder", t)
        self.assertIn('<table id="cards">', t)
        self.assertIn("laser-basics", t)
        self.assertRegex(t, r'<ul class="list" id="bookings"><li>laser \d+ \w+ \d{4} 14:00 CE(S)?T')
        self.assertRegex(t, r'id="member-usage"><dt>Days</dt><dd>1</dd>')
        self.assertRegex(t, r'<table id="history">.*valid until</td><td>— → 30 Jun 2031 24:00 CEST')
        self.assertEqual(self.page(self.boss, "/manage/members/999", 404).status, 404)
        self.assertEqual(self.page(self.boss, "/manage/members/abc", 404).status, 404)

    def test_actions_edit_renew_suspend_cards_and_remove(self):
        base = "/manage/members/%d" % self.bob
        r = self.post(self.boss, base + "/set", {
            "name": "Robert", "orig_name": "Bob", "email": "robert@example.org", "orig_email": "",
            "note": "", "orig_note": "", "plan": "open", "orig_plan": "cowork",
            "valid_from": "", "orig_valid_from": "", "valid_until": "2030-01-31",
            "orig_valid_until": ""})
        self.assertEqual(r.header("Location"), base)
        m = self.member(self.bob)
        self.assertEqual((m["name"], m["email"], m["plan"]), ("Robert", "robert@example.org", "open"))
        self.assertEqual(time.strftime("%Y-%m-%d %H:%M", time.localtime(m["valid_until"] - 1)),
                         "2030-01-31 23:59")
        self.assertEqual({c["by"] for c in m["changes"] if c["field"] != "card" and
                          c["field"] != "member"}, {"web:boss"})
        # Sent again as shown: nothing changes.
        n = len(m["changes"])
        self.post(self.boss, base + "/set", {
            "name": "Robert", "orig_name": "Robert", "email": "robert@example.org",
            "orig_email": "robert@example.org", "plan": "open", "orig_plan": "open",
            "valid_until": "2030-01-31", "orig_valid_until": "2030-01-31"})
        self.assertEqual(len(self.member(self.bob)["changes"]), n)
        # Emptied: no end.
        self.post(self.boss, base + "/set", {"valid_until": "", "orig_valid_until": "2030-01-31"})
        self.assertEqual(self.member(self.bob)["valid_until"], 0)
        # Bad input is the controller's message, with a 4xx.
        r = self.post(self.boss, base + "/set", {"email": "not-an-address", "orig_email": ""},
                      status=400)
        self.assertIn("is not an e-mail address", r.text)
        r = self.post(self.boss, base + "/set", {"valid_until": "2030-02-31x",
                                                 "orig_valid_until": ""}, status=400)
        self.post(self.boss, base + "/renew", {"for": "6m"})
        self.assertGreater(self.member(self.bob)["valid_until"], self.now + 170 * 86400)
        self.post(self.boss, base + "/suspend", {})
        self.assertEqual(self.member(self.bob)["status"], "suspended")
        self.post(self.boss, base + "/resume", {})
        card = self.d.ok({"cmd": "card.list", "member": str(self.bob)})["cards"][0]["id"]
        self.post(self.boss, "%s/cards/%d/disable" % (base, card), {})
        self.assertEqual(self.d.tap("04B0B0B0")["reason"], "card_disabled")
        self.post(self.boss, "%s/cards/%d/enable" % (base, card), {})
        self.assertTrue(self.d.tap("04B0B0B0")["granted"])
        self.post(self.boss, "%s/cards/%d/explode" % (base, card), {}, status=404)
        self.post(self.boss, base + "/frobnicate", {}, status=404)
        self.post(self.boss, base + "/remove", {}, status=400)      # not confirmed
        self.post(self.boss, base + "/remove", {"confirm": "yes"})
        self.assertEqual(self.member(self.bob)["status"], "removed")
        self.assertIn("s-removed", self.page(self.boss, base).text)
        self.post(self.boss, base + "/remove", {"confirm": "yes"}, status=409)

    def test_add_from_the_list(self):
        r = self.post(self.boss, "/manage/members/add", {"name": "Gaston Lefèvre", "plan": "open",
                                                         "email": "gaston@example.org"})
        new = int(r.header("Location").rsplit("/", 1)[1])
        self.assertEqual(self.member(new)["name"], "Gaston Lefèvre")
        self.post(self.boss, "/manage/members/add", {"name": ""}, status=400)

    def test_erase_from_the_web(self):
        base = "/manage/members/%d" % self.alice
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        self.post(self.boss, base + "/erase", {}, status=400)       # not confirmed
        r = self.post(self.boss, base + "/erase", {"confirm": "yes"}, status=409)
        self.assertIn("not closed", r.text)
        self.post(self.boss, base + "/erase", {"confirm": "yes", "force": "yes"})
        t = self.page(self.boss, base).text
        self.assertIn('id="erased"', t)
        self.assertIn("s-erased", t)
        self.assertNotIn("Alice", t)
        self.assertNotIn("/erase", t)                # nothing left to do
        self.post(self.boss, base + "/erase", {"confirm": "yes", "force": "yes"}, status=409)
        self.assertEqual(self.boss.get(base + "/export.json").status, 409)
        # Her account went with her.
        self.assertEqual(self.client().login("alice", "alice-password-1").status, 401)


class ApiListTest(MembersWebBase):
    def test_the_api_lists_a_page_with_a_search_and_a_filter(self):
        self.d.ok({"cmd": "member.suspend", "member": "Bob"})
        api = self.api("boss")
        body = self.api_call(api, "/api/v1/members?filter=active&limit=1&offset=1").json()
        self.assertEqual((body["total"], body["offset"], body["limit"]), (2, 1, 1))
        self.assertEqual([m["name"] for m in body["members"]], ["Carol"])
        body = self.api_call(api, "/api/v1/members?q=bo").json()
        self.assertEqual([(m["name"], m["status"]) for m in body["members"]], [("Bob", "suspended")])
        self.assert_api_error(self.api_call(api, "/api/v1/members?limit=lots"), 400, "bad_request")
        self.assert_api_error(self.api_call(api, "/api/v1/members?filter=gone"), 400, "bad_request")
        self.assert_api_error(self.api_call(self.api("alice"), "/api/v1/members"), 403, "forbidden")


class PlansTest(MembersWebBase):
    def test_plans_show_zones_hours_billing_and_rates(self):
        self.d.ok({"cmd": "plan.billing", "plan": "open", "monthly_days": 8,
                   "day_rate_cents": 1500, "allowance_order": "plan,rate"})
        self.d.ok({"cmd": "rate.set", "plan": "open", "target": "laser", "per_hour_cents": 1200,
                   "block_minutes": 15, "min_charge_cents": 300, "free_minutes": 5})
        t = self.page(self.boss, "/manage/plans").text
        self.assertIn('<section id="plan-open"><h2>open <span class="hint">2 members</span>', t)
        self.assertRegex(t, r"<dt>Days included a month</dt><dd>8</dd><dt>Day rate</dt>"
                            r"<dd>€15.00</dd><dt>Order of use</dt><dd>plan,rate</dd>")
        self.assertIn("<tr><td>laser</td><td>€12.00</td><td>15 min</td><td>5 min</td>"
                      "<td>€3.00</td><td>0 min</td></tr>", t)
        self.assertIn('<section id="plan-cowork">', t)
        self.assertIn('href="/manage/plans#plan-open"',
                      self.page(self.boss, "/manage/members/%d" % self.alice).text)
        self.assertEqual(self.browser("alice").get("/manage/plans").status, 403)


class ExportAndRolesTest(MembersWebBase):
    def test_exports_for_the_manager_and_for_the_member_herself(self):
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        r = self.page(self.boss, "/manage/members/%d/export.json" % self.alice)
        self.assertEqual(r.header("Content-Disposition"),
                         'attachment; filename="portier-member-%d.json"' % self.alice)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        with open(SCHEMA) as f:
            schema = json.load(f)
        doc = r.json()
        jsonschema.validate(doc, schema)
        self.assertEqual((doc["member"]["name"], len(doc["access_events"])), ("Alice", 1))
        alice = self.browser("alice")
        me = self.page(alice, "/me").text
        self.assertIn('href="/me/export.json"', me)
        self.assertIn("Download my data", me)
        doc = self.page(alice, "/me/export.json").json()
        jsonschema.validate(doc, schema)
        self.assertEqual(doc["member"]["id"], self.alice)
        self.assertEqual([a["name"] for a in doc["accounts"]], ["alice"])
        self.assertIsNotNone(doc["accounts"][0]["last_login_at"])

    def test_refusals_by_role(self):
        alice = self.browser("alice")
        keeper = self.browser("keeper")
        anonymous = self.client()
        for path in ("/manage/members", "/manage/members/%d" % self.bob,
                     "/manage/members/%d/export.json" % self.bob):
            self.assertEqual(alice.get(path).status, 403, path)
            self.assertEqual(keeper.get(path).status, 403, path)
            r = anonymous.get(path)
            self.assertEqual((r.status, r.header("Location")), (303, "/login"), path)
        csrf = alice.csrf("/me")
        for verb in ("erase", "remove", "set", "renew", "suspend"):
            r = alice.post("/manage/members/%d/%s" % (self.bob, verb),
                           {"csrf": csrf, "confirm": "yes", "name": "Eve"})
            self.assertEqual(r.status, 403, verb)
        self.assertEqual(self.member(self.bob)["name"], "Bob")
        # Without the session's token: refused before anything else.
        r = self.boss.post("/manage/members/%d/suspend" % self.bob, {"csrf": "forged"})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.member(self.bob)["status"], "active")
        # The custodian has no member: no "my data" to download.
        self.assertEqual(keeper.get("/me/export.json").status, 403)
        self.assertEqual(anonymous.get("/me/export.json").status, 303)


class PrivacyPageTest(HttpBase):
    more = ("\n[privacy]\naccess_log_days = 45\npresence_days = 120\n"
            "[spaceapi]\npublish_people = yes\n")

    def test_public_and_written_from_the_configuration(self):
        c = self.client()
        r = c.get("/privacy")
        self.assertEqual(r.status, 200)
        t = r.text
        self.assertIn("<td>45 days</td>", t)
        self.assertIn("<td>120 days</td>", t)
        self.assertIn("Ask the site&#39;s managers", t)          # no privacy_contact set
        self.assertIn("is public, at /spaceapi.json", t)
        self.assertNotIn("passport", t)                          # no consortium here
        self.assertIn('href="/privacy"', c.get("/").text)        # linked from every page
        fr = c.get("/privacy", headers=["Accept-Language: fr"]).text
        self.assertIn("Vos données personnelles", fr)
        self.assertIn("<td>45 jours</td>", fr)


class PrivacyContactTest(HttpBase):
    site_name = "La Fabrique"

    def setUp(self):
        self.more = ""
        super().setUp()

    def test_contact_and_a_quiet_spaceapi(self):
        self.d.stop()
        with open(self.d.config_path) as f:
            text = f.read()
        text = text.replace("name = La Fabrique", "name = La Fabrique\nprivacy_contact = "
                            "rgpd@fabrique.example")
        self.d.write_config(text)
        self.d.start()
        t = self.client().get("/privacy").text
        self.assertIn("rgpd@fabrique.example", t)
        self.assertIn("<td>90 days</td>", t)                     # the default
        self.assertIn("Nothing about who is in is published.", t)


if __name__ == "__main__":
    main()

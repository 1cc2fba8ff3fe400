# SPDX-License-Identifier: AGPL-3.0-or-later
"""The web server end to end: the real portierd on simulated hardware with [http] on a free
port of 127.0.0.1, spoken to with Debian's curl like a browser or a script would. Checks
status codes, bodies, headers, cookies, the rows written in SQLite and the simulated relays.
The daemon's clock is moved to 10:00 tomorrow (site time) so bookings later "today" are in
the future whatever time the suite runs at. Run with /usr/bin/python3 (python3-icalendar
and python3-jsonschema)."""

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import icalendar
import jsonschema

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (PORTIERCTL, PORTIERD, WAIT, Daemon, DaemonTest, build_config,  # noqa: E402
                             free_tcp_port, http_section, main, wait_until)

SPACEAPI_SCHEMA = os.environ.get("PORTIER_SPACEAPI_SCHEMA", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "data", "spaceapi-15.json"))

SECTIONS = """
[reader front]
driver = sim

[reader laser]
driver = sim

[door front]
reader = front
relay = 17
unlock_seconds = 1
{front_extra}

[machine laser]
reader = laser
relay = 5
{more}
"""

ALICE_CARD = "04A1B2C3"
PASSWORDS = {"alice": "alice-password-1", "carol": "carol-password-1",
             "boss": "boss-password-1", "keeper": "keeper-password-1"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
TOKEN_RE = re.compile(r"/welcome/([A-Za-z0-9_-]{43})")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> [values]
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def cookies(self):
        """Set-Cookie headers as {name: full header}."""
        return {c.split("=", 1)[0]: c for c in self.headers.get("set-cookie", [])}

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Client:
    """One browser (its own cookie jar) or one script, driving curl."""

    def __init__(self, base, workdir, cacert=None):
        self.base = base
        fd, self.jar = tempfile.mkstemp(prefix="jar-", dir=workdir)
        os.close(fd)
        self.hdr = self.jar + ".h"
        self.out = self.jar + ".b"
        self.cacert = cacert
        self.source = None          # the client's own address (127.0.0.N), for limits per address

    def request(self, path, method=None, form=None, body=None, ctype=None, headers=(),
                cookies=True, max_time=WAIT):
        args = ["curl", "-sS", "--max-time", "%.1f" % max_time, "--path-as-is", "-o", self.out,
                "-D", self.hdr, "-w", "%{http_code}"]
        if self.cacert:
            args += ["--cacert", self.cacert]
        if self.source:
            args += ["--interface", self.source]
        if cookies:
            args += ["-b", self.jar, "-c", self.jar]
        if method:
            args += ["-X", method]
        if form is not None:
            body = form if isinstance(form, (bytes, str)) else urllib.parse.urlencode(form)
            ctype = ctype or "application/x-www-form-urlencoded"
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            args += ["--data-binary", "@-", "-H", "Content-Type: " + (ctype or "text/plain")]
        for h in headers:
            args += ["-H", h]
        args.append(self.base + path)
        for f in (self.hdr, self.out):
            if os.path.exists(f):
                os.unlink(f)
        p = subprocess.run(args, input=body, capture_output=True, timeout=WAIT * 2)
        if p.returncode != 0:
            raise ConnectionError("curl %s: exit %d: %s" % (path[:80], p.returncode,
                                                            p.stderr.decode(errors="replace")))
        with open(self.hdr, "rb") as f:
            raw = f.read().decode("latin-1")
        blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
        headers_out = {}
        for line in blocks[-1].split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers_out.setdefault(name.strip().lower(), []).append(value.strip())
        body_out = b""
        if os.path.exists(self.out):
            with open(self.out, "rb") as f:
                body_out = f.read()
        return Response(int(p.stdout), headers_out, body_out)

    def get(self, path, **kw):
        return self.request(path, **kw)

    def post(self, path, form=None, **kw):
        return self.request(path, method="POST", form=form if form is not None else {}, **kw)

    def csrf(self, path="/bookings"):
        """The session's CSRF token, from the hidden field every logged-in page carries."""
        page = self.get(path)
        m = CSRF_RE.search(page.text)
        assert m, "no csrf field on %s: %r" % (path, page)
        return m.group(1)

    def login(self, name, password):
        page = self.get("/login")
        m = CSRF_RE.search(page.text)
        assert page.status == 200 and m, page
        return self.post("/login", {"csrf": m.group(1), "name": name, "password": password})


class HttpBase(DaemonTest):
    site_name = "Test site"
    front_extra = ""
    more = ""
    http_extra = ""
    scheme = "http"
    cacert = None

    def prepare(self):
        """Subclasses: make files the config names (a certificate) before the start."""

    def setUp(self):
        os.environ["TZ"] = "Europe/Paris"
        time.tzset()
        self.d = Daemon(config_text="placeholder")
        self.port = free_tcp_port()
        self.prepare()
        text = (build_config(self.d.dir, SECTIONS.format(front_extra=self.front_extra,
                                                         more=self.more),
                             site="web", site_name=self.site_name) +
                http_section(self.port, self.http_extra.format(dir=self.d.dir)))
        # surrogateescape: a test may write bytes that are not UTF-8, as a Latin-1 editor would.
        with open(self.d.config_path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        self.d.start()
        self.addCleanup(self.d.stop)        # also when the rest of setUp fails
        self.base = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        ok = self.d.ok
        self.alice, self.bob, self.carol = self.d.seed()
        ok({"cmd": "machine.set", "machine": "laser", "slot_minutes": 30, "min_minutes": 30,
            "max_minutes": 240, "hours": "always", "booking_required": False,
            "walkup_free_minutes": 0, "cancel_deadline_minutes": 0, "window_days": 14})
        self.now = self.advance_to_local(10, 0)
        self.add_account("alice", "member", "Alice")
        self.add_account("carol", "member", "Carol")
        self.add_account("boss", "manager")
        self.add_account("keeper", "custodian")

    # -- helpers --
    def advance_to_local(self, hour, minute):
        """Move the daemon's clock to the next day's HH:MM, site time."""
        now = self.d.ok({"cmd": "sim.advance", "seconds": 0})["now"]
        lt = time.localtime(now + 86400)
        target = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, hour, minute, 0, 0, 0, -1)))
        return self.d.ok({"cmd": "sim.advance", "seconds": target - now})["now"]

    def at(self, hour, minute=0):
        """Today (the daemon's today) at HH:MM, as epoch seconds."""
        lt = time.localtime(self.now)
        return int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, hour, minute, 0, 0, 0, -1)))

    @staticmethod
    def local(t):
        return time.strftime("%Y-%m-%dT%H:%M", time.localtime(t))

    @staticmethod
    def hhmm(t):
        return time.strftime("%H:%M", time.localtime(t))

    def add_account(self, name, role, member=None, password=True):
        args = ["account", "add", name, "--role", role] + (["--member", member] if member else [])
        self.d.ctl(*args)
        if password:
            p = subprocess.run([PORTIERCTL, "-s", self.d.socket, "account", "passwd", name,
                                "--password-stdin"], input=PASSWORDS[name] + "\n",
                               capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(p.returncode, 0, p.stderr)

    def token(self, name):
        return self.d.ctl("account", "token", name)[1].strip()

    def client(self):
        return Client(self.base, self.d.dir, self.cacert)

    def browser(self, name):
        """A client logged in as name."""
        c = self.client()
        r = c.login(name, PASSWORDS[name])
        self.assertEqual(r.status, 303, r)
        return c

    def api(self, name):
        """A script with name's API token."""
        c = self.client()
        c.bearer = "Authorization: Bearer " + self.token(name)
        return c

    def api_call(self, c, path, method="GET", obj=None, headers=()):
        body = None if obj is None else (obj if isinstance(obj, (str, bytes)) else json.dumps(obj))
        return c.request(path, method=method, body=body,
                         ctype="application/json" if body is not None else None,
                         headers=[c.bearer] + list(headers), cookies=False)

    def book(self, member, start, end):
        return self.d.ok({"cmd": "booking.add", "machine": "laser", "member": member,
                          "start": start, "end": end})["id"]

    def q(self, sql, *args):
        db = self.d.db()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def booking_row(self, bid):
        rows = self.q("SELECT member_id, starts_at, ends_at, created_by, cancelled_at, cancelled_by, "
                      "moved_to FROM bookings WHERE id = ?", bid)
        return rows[0] if rows else None

    def assert_security_headers(self, r):
        csp = r.header("Content-Security-Policy") or ""
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertIn("default-src 'self'", csp)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")

    def assert_api_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("Content-Type").startswith("application/json"), r.headers)
        body = r.json()
        self.assertEqual((body["ok"], body["code"]), (False, code), body)
        self.assertTrue(body["error"])
        return body

    def spaceapi(self, c):
        """/spaceapi.json, checked against the SpaceAPI v15 JSON schema."""
        r = c.get("/spaceapi.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")
        doc = r.json()
        # The schema ships in tests/data: a missing one is a failure, never a skip.
        with open(SPACEAPI_SCHEMA) as f:
            jsonschema.validate(doc, json.load(f))
        return doc

    def metric(self, text, name):
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        self.assertTrue(m, "no %s in /metrics" % name)
        return int(m.group(1))


class PublicPagesTest(HttpBase):
    def test_home_shows_state_people_machines_and_todays_slots_without_names(self):
        bid = self.book("Alice", self.at(11), self.at(12))
        anon = self.client()
        r = anon.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assert_security_headers(r)
        self.assertIn('class="state closed"', r.text)
        self.assertIn('<span id="present">0</span> people in', r.text)
        self.assertRegex(r.text, r'<a href="/machines/laser">laser</a></th><td class="m-free">free</td>')
        self.assertIn("<time>%s</time>–<time>%s</time>" % (self.hhmm(self.at(11)), self.hhmm(self.at(12))),
                      r.text)
        self.assertNotIn("Alice", r.text)
        self.assertNotIn("booking %d" % bid, r.text)
        # Alice checks in at the front door: the space is open, one person is in.
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        r = anon.get("/")
        self.assertIn('class="state open"', r.text)
        self.assertIn('<span id="present">1</span> person in', r.text)
        self.assertNotIn("Alice", r.text)

    def test_week_overview_shows_names_only_to_whom_may_see_them(self):
        self.book("Alice", self.at(11), self.at(12))
        self.book("Carol", self.at(14), self.at(15))
        anon = self.client().get("/bookings")
        self.assertEqual(anon.status, 200)
        self.assert_security_headers(anon)
        for t in (self.at(11), self.at(14)):
            self.assertIn("<li>%s–" % self.hhmm(t), anon.text)
        self.assertNotIn("Alice", anon.text)
        self.assertNotIn("Carol", anon.text)
        manager = self.browser("boss").get("/bookings")
        self.assertEqual(manager.status, 200)
        self.assertIn("Alice", manager.text)
        self.assertIn("Carol", manager.text)
        alice = self.browser("alice").get("/bookings")
        self.assertIn("%s–%s Alice</li>" % (self.hhmm(self.at(11)), self.hhmm(self.at(12))), alice.text)
        self.assertNotIn("Carol", alice.text)
        self.assertIn("<li>%s–%s</li>" % (self.hhmm(self.at(14)), self.hhmm(self.at(15))), alice.text)

    def test_names_are_escaped_wherever_they_are_shown(self):
        evil = '<b id="x">Zoë & Co</b>'
        self.d.ok({"cmd": "member.add", "name": evil, "plan": "open"})
        self.d.ok({"cmd": "machine.out_of_order", "machine": "laser", "on": True,
                   "reason": "<script>alert(1)</script>"})
        self.d.ok({"cmd": "machine.out_of_order", "machine": "laser", "on": False})
        bid = self.book(evil, self.at(11), self.at(12))
        escaped = "&lt;b id=&quot;x&quot;&gt;Zoë &amp; Co&lt;/b&gt;"
        boss = self.browser("boss")
        for path in ("/bookings", "/manage", "/machines/laser"):
            r = boss.get(path)
            self.assertEqual(r.status, 200, path)
            self.assertIn(escaped, r.text, path)
            self.assertNotIn('<b id="x">', r.text, path)
        names = self.api_call(self.api("boss"), "/api/v1/bookings").json()["bookings"]
        self.assertEqual([(b["id"], b["member"]) for b in names], [(bid, evil)])
        self.d.ok({"cmd": "machine.out_of_order", "machine": "laser", "on": True,
                   "reason": "<script>alert(1)</script>"})
        home = self.client().get("/")
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", home.text)
        self.assertNotIn("<script>alert", home.text)

    def test_anonymous_week_page_follows_new_and_cancelled_bookings(self):
        anon = self.client()
        first = anon.get("/bookings")
        self.assertNotIn("<li>%s–" % self.hhmm(self.at(16)), first.text)
        bid = self.book("Carol", self.at(16), self.at(17))
        second = anon.get("/bookings")
        self.assertIn("<li>%s–%s</li>" % (self.hhmm(self.at(16)), self.hhmm(self.at(17))), second.text)
        self.d.ok({"cmd": "booking.cancel", "booking": bid})
        third = anon.get("/bookings")
        self.assertNotIn("<li>%s–" % self.hhmm(self.at(16)), third.text)

    def test_machine_grid_shows_booked_free_and_own_slots(self):
        self.book("Carol", self.at(14), self.at(15))
        own = self.book("Alice", self.at(16), self.at(17))
        r = self.client().get("/machines/laser")
        self.assertEqual(r.status, 200)
        self.assert_security_headers(r)
        self.assertIn("<h1>laser</h1>", r.text)
        self.assertIn("Slots of 30 minutes", r.text)
        self.assertIn('<th scope="row">14:00</th>', r.text)
        self.assertIn('<td class="busy">Booked</td>', r.text)
        self.assertIn('<td class="free">Free</td>', r.text)
        self.assertIn('href="/login">Log in</a> to book', r.text)
        self.assertNotIn("Carol", r.text)
        self.assertNotIn("Alice", r.text)
        alice = self.browser("alice").get("/machines/laser")
        self.assertIn('<td class="busy mine">Yours<form method="post" action="/bookings/%d/cancel"' % own,
                      alice.text)
        self.assertIn('<input type="hidden" name="start" value="%s">' % self.local(self.at(12)), alice.text)
        self.assertNotIn("Carol", alice.text)
        missing = self.client().get("/machines/nope")
        self.assertEqual(missing.status, 404)
        self.assertIn("no machine", missing.text)

    def test_unreadable_opening_hours_show_the_machine_closed(self):
        # The page shows what the interlock does: hours it cannot parse mean closed, so no
        # slot is offered (it used to read them as "always": free slots, refused at the tap).
        db = self.d.db()
        with db:
            db.execute("UPDATE machine_rules SET hours = 'whenever' WHERE resource_id = "
                       "(SELECT id FROM resources WHERE name = 'laser')")
        db.close()
        for c in (self.client(), self.browser("alice")):
            r = c.get("/machines/laser")
            self.assertEqual(r.status, 200, r)
            self.assertIn("Closed: its opening hours cannot be read", r.text)
            self.assertNotIn('class="free"', r.text)
            self.assertNotIn("aria-label=\"Book", r.text)
            self.assertNotIn("whenever", r.text)
        c = self.browser("alice")
        r = c.post("/bookings", {"csrf": c.csrf(), "machine": "laser",
                                 "start": self.local(self.at(11)), "end": self.local(self.at(12))})
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])
        tap = self.d.ok({"cmd": "sim.tap", "reader": "laser", "uid": ALICE_CARD})
        self.assertEqual((tap["granted"], tap["outcome"]), (False, "outside_opening_hours"))
        self.assertFalse(self.d.relay_file("laser"))

    def test_static_asset_has_etag_and_answers_304(self):
        c = self.client()
        r = c.get("/static/style.css")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/css"))
        self.assertIn(b"{", r.body)
        etag = r.header("ETag")
        self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
        self.assertIn("max-age", r.header("Cache-Control"))
        again = c.get("/static/style.css", headers=["If-None-Match: " + etag])
        self.assertEqual(again.status, 304)
        self.assertEqual(again.body, b"")
        self.assertEqual(again.header("ETag"), etag)
        other = c.get("/static/style.css", headers=['If-None-Match: "0000000000000000"'])
        self.assertEqual((other.status, other.body), (200, r.body))

    def test_security_headers_on_every_kind_of_page(self):
        c = self.client()
        for path, status in (("/", 200), ("/login", 200), ("/bookings", 200), ("/nothing", 404),
                             ("/me", 303), ("/api/v1/machines", 200)):
            r = c.get(path)
            self.assertEqual(r.status, status, path)
            self.assert_security_headers(r)
            self.assertIsNone(r.header("Strict-Transport-Security"))    # plain HTTP

    def test_start_and_good_requests_log_no_warning(self):
        for path in ("/", "/bookings", "/static/style.css", "/healthz"):
            self.assertEqual(self.client().get(path).status, 200, path)
        # libmicrohttpd's own messages reach our log only if our logger is its first option;
        # otherwise it warns so at every start.
        self.assertEqual([l for l in self.d.log_text().splitlines() if "warning: http" in l], [])


class LoginTest(HttpBase):
    def test_login_sets_strict_http_only_cookie_and_logout_ends_the_session(self):
        c = self.client()
        page = c.get("/login")
        self.assertEqual(page.status, 200)
        pre = page.cookies()["portier_pre"]
        field = CSRF_RE.search(page.text).group(1)
        self.assertIn("portier_pre=%s;" % field, pre)
        self.assertIn("HttpOnly", pre)
        r = c.post("/login", {"csrf": field, "name": "alice", "password": PASSWORDS["alice"]})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.header("Location"), "/me")
        cookie = r.cookies()["portier_session"]
        parts = [p.strip() for p in cookie.split(";")]
        session = parts[0].split("=", 1)[1]
        self.assertRegex(session, r"^[A-Za-z0-9_-]{43}$")
        self.assertIn("HttpOnly", parts)
        self.assertIn("SameSite=Strict", parts)
        self.assertIn("Path=/", parts)
        self.assertNotIn("Secure", parts)           # plain HTTP: the TLS test checks Secure
        self.assertEqual(self.q("SELECT count(*) FROM web_sessions"), [(1,)])
        me = c.get("/me")
        self.assertEqual(me.status, 200)
        self.assertIn("<h1>Alice</h1>", me.text)
        self.assertEqual(me.header("Cache-Control"), "no-store")
        # Log out: the server forgets the session, so the old cookie is worthless.
        out = c.post("/logout", {"csrf": c.csrf("/me")})
        self.assertEqual((out.status, out.header("Location")), (303, "/"))
        self.assertIn("Max-Age=0", out.cookies()["portier_session"])
        self.assertEqual(self.q("SELECT count(*) FROM web_sessions"), [(0,)])
        replay = self.client().get("/me", headers=["Cookie: portier_session=" + session])
        self.assertEqual((replay.status, replay.header("Location")), (303, "/login"))

    def test_signed_in_visitor_can_use_every_form_of_the_login_page(self):
        c = self.browser("alice")
        for path in ("/login", "/welcome/" + "A" * 43):
            page = c.get(path)
            self.assertEqual(page.status, 200)
            forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*><input type="hidden" '
                               r'name="csrf" value="([^"]+)">', page.text)
            self.assertTrue(forms)
            for action, field in forms:
                if action == "/logout":
                    r = c.post(action, {"csrf": field})
                    self.assertEqual((r.status, r.header("Location")), (303, "/"), path)
                    c = self.browser("alice")
        r = c.login("alice", PASSWORDS["alice"])
        self.assertEqual(r.status, 303)

    def test_session_ends_after_session_hours(self):
        c = self.browser("alice")
        self.assertEqual(c.get("/me").status, 200)
        self.d.ok({"cmd": "sim.advance", "seconds": 11 * 3600})
        self.assertEqual(c.get("/me").status, 200)
        self.d.ok({"cmd": "sim.advance", "seconds": 3600 + 60})     # session_hours = 12
        r = c.get("/me")
        self.assertEqual((r.status, r.header("Location")), (303, "/login"))

    def test_wrong_password_is_401_page_without_cookie(self):
        c = self.client()
        r = c.login("alice", "not-the-password")
        self.assertEqual(r.status, 401)
        self.assertIn("wrong account name or password", r.text)
        self.assertIn('action="/login"', r.text)                 # the form again
        self.assertNotIn("portier_session", r.cookies())
        unknown = c.login("nobody", "not-the-password")
        self.assertEqual(unknown.status, 401)
        self.assertIn("wrong account name or password", unknown.text)
        self.assertNotIn("portier_session", unknown.cookies())
        self.assertEqual(self.q("SELECT count(*) FROM web_sessions"), [(0,)])
        self.assertEqual(c.get("/me").status, 303)

    def test_missing_or_wrong_csrf_is_403(self):
        c = self.client()
        page = c.get("/login")
        field = CSRF_RE.search(page.text).group(1)
        creds = {"name": "alice", "password": PASSWORDS["alice"]}
        self.assertEqual(c.post("/login", creds).status, 403)
        wrong = c.post("/login", dict(creds, csrf=field[:-1] + ("A" if field[-1] != "A" else "B")))
        self.assertEqual(wrong.status, 403)
        self.assertIn("reload the page", wrong.text)
        # The right value but without the pre-session cookie (another site's form).
        self.assertEqual(self.client().post("/login", dict(creds, csrf=field)).status, 403)
        self.assertEqual(self.q("SELECT count(*) FROM web_sessions"), [(0,)])
        # A session's forms need the session's token, not just the cookie.
        alice = self.browser("alice")
        self.assertEqual(alice.post("/me/calendar", {}).status, 403)
        self.assertEqual(alice.post("/me/calendar", {"csrf": field}).status, 403)
        self.assertEqual(self.q("SELECT calendar_token FROM accounts WHERE name = 'alice'"), [(None,)])
        self.assertEqual(alice.post("/me/calendar", {"csrf": alice.csrf()}).status, 303)
        self.assertNotEqual(self.q("SELECT calendar_token FROM accounts WHERE name = 'alice'"), [(None,)])

    def test_failures_slow_an_account_down_without_locking_it_out(self):
        c = self.client()
        for _ in range(3):
            self.assertEqual(c.login("alice", "wrong-password").status, 401)
        # Four more, each after its wait (1, 2, 4, 8 s): the next one waits 16 s, long
        # enough that the checks below never outrun it on a slow machine.
        for _ in range(4):
            self.d.ok({"cmd": "sim.advance", "seconds": 61})
            self.assertEqual(c.login("alice", "wrong-password").status, 401)
        r = c.login("alice", "wrong-password")
        self.assertEqual(r.status, 429)
        wait = int(r.header("Retry-After"))
        self.assertTrue(8 < wait <= 16, wait)
        self.assertIn("too many failed logins for this account", r.text)
        # Even the right password waits: the delay protects the account.
        right = c.login("ALICE", PASSWORDS["alice"])
        self.assertEqual(right.status, 429)
        self.assertNotIn("portier_session", right.cookies())
        # Another account from the same address is not held back.
        self.assertEqual(self.client().login("carol", PASSWORDS["carol"]).status, 303)
        # Many more failures (each after its wait): the owner never waits over a minute.
        for _ in range(8):
            self.d.ok({"cmd": "sim.advance", "seconds": 61})
            self.assertEqual(c.login("alice", "wrong-password").status, 401)
        r = c.login("alice", PASSWORDS["alice"])
        self.assertEqual(r.status, 429)
        self.assertLessEqual(int(r.header("Retry-After")), 60)
        self.d.ok({"cmd": "sim.advance", "seconds": 61})
        self.assertEqual(c.login("alice", PASSWORDS["alice"]).status, 303)
        # A good login starts the count again.
        self.assertEqual(self.q("SELECT login_failures FROM accounts WHERE name = 'alice'"), [(0,)])

    def test_other_traffic_cannot_flush_an_accounts_count(self):
        c = self.client()
        for _ in range(9):      # past the free failures, each after its wait: now 60 s
            c.login("alice", "wrong-password")
            self.d.ok({"cmd": "sim.advance", "seconds": 61})
        self.assertEqual(c.login("alice", "wrong-password").status, 401)
        # The count lives with the account, not in a table in memory that failures on other
        # names could flush (a 256-entry table once could): neither they nor a restart reset it.
        self.assertEqual(self.q("SELECT login_failures FROM accounts WHERE name = 'alice'"), [(10,)])
        for i in range(30):
            other = self.client()
            other.source = "127.0.0.%d" % (2 + i % 10)
            self.assertIn(other.login("nobody-%d" % i, "wrong-password").status, (401, 429))
        self.d.stop()
        self.d.start()
        r = c.login("alice", PASSWORDS["alice"])
        self.assertEqual(r.status, 429, r)
        self.assertIn("for this account", r.text)

    def test_an_address_that_fails_too_often_waits_the_window_out(self):
        bad = self.client()
        bad.source = "127.0.0.7"
        for i in range(20):
            bad.login("someone-%d" % i, "wrong-password")
        r = bad.login("alice", PASSWORDS["alice"])
        self.assertEqual(r.status, 429)
        self.assertIn("from your address", r.text)
        self.assertGreater(int(r.header("Retry-After")), 60)
        # The owner, elsewhere, is not held back by it.
        self.assertEqual(self.client().login("alice", PASSWORDS["alice"]).status, 303)

    def test_disabled_account_cannot_log_in_and_loses_its_session_and_token(self):
        c = self.browser("alice")
        api = self.api("alice")
        self.assertEqual(self.api_call(api, "/api/v1/me").status, 200)
        self.d.ctl("account", "disable", "alice")
        self.assertEqual(c.get("/me").status, 303)
        r = self.client().login("alice", PASSWORDS["alice"])
        self.assertEqual(r.status, 401)
        self.assertNotIn("portier_session", r.cookies())
        self.assert_api_error(self.api_call(api, "/api/v1/me"), 401, "unauthorized")
        self.d.ctl("account", "enable", "alice")
        self.assertEqual(self.client().login("alice", PASSWORDS["alice"]).status, 303)


class WelcomeTest(HttpBase):
    def setUp(self):
        super().setUp()
        self.d.ok({"cmd": "member.add", "name": "Dora", "plan": "open"})
        self.add_account("dora", "member", "Dora", password=False)

    def test_one_time_link_sets_the_password_once(self):
        out = self.d.ctl("account", "invite", "dora")[1]
        token = TOKEN_RE.search(out).group(1)
        c = self.client()
        self.assertEqual(c.login("dora", "dora-password-1").status, 401)   # no password yet
        page = c.get("/welcome/" + token)
        self.assertEqual(page.status, 200)
        self.assertIn('action="/welcome/%s"' % token, page.text)
        field = CSRF_RE.search(page.text).group(1)
        self.assertIn("portier_pre=" + field, page.cookies()["portier_pre"])
        path = "/welcome/" + token
        differ = c.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-2"})
        self.assertEqual(differ.status, 400)
        self.assertIn("differ", differ.text)
        short = c.post(path, {"csrf": field, "password": "short", "password2": "short"})
        self.assertEqual(short.status, 400)
        self.assertIn("at least 10", short.text)
        self.assertEqual(self.q("SELECT password FROM accounts WHERE name = 'dora'"), [(None,)])
        good = c.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-1"})
        self.assertEqual(good.status, 303, good)
        self.assertEqual(good.header("Location"), "/login?welcome=1")
        self.assertIn("Your password is set", c.get("/login?welcome=1").text)
        stored = self.q("SELECT password FROM accounts WHERE name = 'dora'")[0][0]
        self.assertTrue(stored.startswith("$argon2id$"))
        self.assertNotIn("dora-password-1", stored)
        used = self.q("SELECT used_at FROM account_tokens WHERE kind = 'invite'")
        self.assertEqual(len(used), 1)
        self.assertIsNotNone(used[0][0])
        login = self.client().login("dora", "dora-password-1")
        self.assertEqual((login.status, login.header("Location")), (303, "/me"))
        # The link works once.
        c2 = self.client()
        field2 = CSRF_RE.search(c2.get(path).text).group(1)
        again = c2.post(path, {"csrf": field2, "password": "other-password-1",
                               "password2": "other-password-1"})
        self.assertIn(again.status, (404, 410))
        self.assertEqual(self.q("SELECT password FROM accounts WHERE name = 'dora'")[0][0], stored)

    def test_link_survives_a_password_that_cannot_be_set(self):
        # Setting the password fails (here: a trigger refuses the write, as a failing disk
        # would): the link must not be spent, and works once the fault is gone.
        out = self.d.ctl("account", "invite", "dora")[1]
        path = "/welcome/" + TOKEN_RE.search(out).group(1)
        db = self.d.db()
        db.execute("CREATE TRIGGER test_refuse_password BEFORE UPDATE OF password ON accounts "
                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        db.commit()
        c = self.client()
        field = CSRF_RE.search(c.get(path).text).group(1)
        r = c.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-1"})
        self.assertEqual(r.status, 500, r)
        self.assertEqual(self.q("SELECT used_at FROM account_tokens WHERE kind = 'invite'"), [(None,)])
        db.execute("DROP TRIGGER test_refuse_password")
        db.commit()
        db.close()
        c2 = self.client()
        field = CSRF_RE.search(c2.get(path).text).group(1)
        r = c2.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-1"})
        self.assertEqual(r.status, 303, r)
        self.assertEqual(self.client().login("dora", "dora-password-1").status, 303)

    def test_tokens_never_reach_the_log(self):
        # The daemon logs every request at debug level (the harness's log_level): a one-time
        # link or a calendar token in a log line would hand the account to whoever reads it.
        out = self.d.ctl("account", "invite", "dora")[1]
        token = TOKEN_RE.search(out).group(1)
        c = self.client()
        self.assertEqual(c.get("/welcome/" + token).status, 200)
        alice = self.browser("alice")
        self.assertEqual(alice.post("/me/calendar", {"csrf": alice.csrf()}).status, 303)
        cal = self.q("SELECT calendar_token FROM accounts WHERE name = 'alice'")[0][0]
        self.assertEqual(self.client().get("/calendar/me/%s.ics" % cal).status, 200)
        self.assertEqual(self.client().get("/calendar/me/%s.ics" % ("x" * 43)).status, 404)
        log = self.d.log_text()
        self.assertIn("/welcome/", log)         # the requests are logged...
        self.assertNotIn(token, log)            # ...without their tokens
        self.assertNotIn(cal, log)
        self.assertNotIn("x" * 43, log)

    def test_link_expires(self):
        out = self.d.ctl("account", "invite", "dora", "--hours", "1")[1]
        path = "/welcome/" + TOKEN_RE.search(out).group(1)
        self.d.ok({"cmd": "sim.advance", "seconds": 3601})
        c = self.client()
        field = CSRF_RE.search(c.get(path).text).group(1)
        r = c.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-1"})
        self.assertEqual(r.status, 404)
        self.assertEqual(self.q("SELECT password FROM accounts WHERE name = 'dora'"), [(None,)])

    def test_unknown_link_is_404(self):
        c = self.client()
        path = "/welcome/" + "A" * 43
        field = CSRF_RE.search(c.get(path).text).group(1)
        r = c.post(path, {"csrf": field, "password": "dora-password-1", "password2": "dora-password-1"})
        self.assertEqual(r.status, 404)
        # An API token is not a one-time link.
        api_token = self.token("dora")
        r = c.post("/welcome/" + api_token, {"csrf": field, "password": "dora-password-1",
                                             "password2": "dora-password-1"})
        self.assertEqual(r.status, 404)
        self.assertEqual(self.q("SELECT password FROM accounts WHERE name = 'dora'"), [(None,)])


class MemberTest(HttpBase):
    def test_member_books_a_free_slot(self):
        c = self.browser("alice")
        csrf = c.csrf()
        r = c.post("/bookings", {"csrf": csrf, "machine": "laser", "start": self.local(self.at(11)),
                                 "end": self.local(self.at(12))})
        self.assertEqual(r.status, 200, r)
        bid = int(re.search(r"Booking (\d+) is yours", r.text).group(1))
        self.assertEqual(self.booking_row(bid),
                         (self.alice, self.at(11), self.at(12), "member:%d" % self.alice, 0, "", None))
        # The "longer slot" form: a start and a number of minutes.
        r = c.post("/bookings", {"csrf": csrf, "machine": "laser", "start": self.local(self.at(13)),
                                 "minutes": "90"})
        self.assertEqual(r.status, 200, r)
        bid = int(re.search(r"Booking (\d+) is yours", r.text).group(1))
        self.assertEqual(self.booking_row(bid)[1:3], (self.at(13), self.at(14, 30)))

    def test_conflicting_booking_is_409_without_the_other_members_name(self):
        theirs = self.book("Carol", self.at(14), self.at(15))
        c = self.browser("alice")
        r = c.post("/bookings", {"csrf": c.csrf(), "machine": "laser",
                                 "start": self.local(self.at(14, 30)), "end": self.local(self.at(15, 30))})
        self.assertEqual(r.status, 409)
        self.assertIn("already booked", r.text)
        self.assertNotIn("Carol", r.text)
        self.assertNotIn("booking %d" % theirs, r.text)
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(1,)])

    def test_cancel_own_booking_but_not_someone_elses(self):
        mine = self.book("Alice", self.at(11), self.at(12))
        theirs = self.book("Carol", self.at(14), self.at(15))
        c = self.browser("alice")
        csrf = c.csrf()
        other = c.post("/bookings/%d/cancel" % theirs, {"csrf": csrf})
        self.assertEqual(other.status, 404)
        self.assertNotIn("Carol", other.text)
        self.assertEqual(self.booking_row(theirs)[4], 0)
        self.assertEqual(c.post("/bookings/99999/cancel", {"csrf": csrf}).status, 404)
        r = c.post("/bookings/%d/cancel" % mine, {"csrf": csrf})
        self.assertEqual(r.status, 200)
        self.assertIn("Booking %d is cancelled" % mine, r.text)
        row = self.booking_row(mine)
        self.assertGreater(row[4], 0)
        self.assertEqual(row[5], "member:%d" % self.alice)
        self.assertEqual(c.post("/bookings/%d/cancel" % mine, {"csrf": csrf}).status, 409)

    def test_my_page_and_private_calendar_feed(self):
        mine = self.book("Alice", self.at(11), self.at(12))
        self.book("Carol", self.at(14), self.at(15))
        self.d.ok({"cmd": "pass.add", "member": "Alice", "kind": "days", "quantity": 5})
        c = self.browser("alice")
        me = c.get("/me")
        self.assertEqual(me.status, 200)
        self.assertIn('<a href="/machines/laser">laser</a>', me.text)
        self.assertIn('action="/bookings/%d/cancel"' % mine, me.text)
        self.assertIn("<li>5 of 5 days", me.text)
        self.assertIn("Create my calendar address", me.text)
        self.assertNotIn("calendar-url", me.text)
        self.assertNotIn("Carol", me.text)
        r = c.post("/me/calendar", {"csrf": c.csrf("/me")})
        self.assertEqual((r.status, r.header("Location")), (303, "/me"))
        me = c.get("/me")
        m = re.search(r'id="calendar-url"[^>]*value="(http://127\.0\.0\.1:%d/calendar/me/([A-Za-z0-9_-]{43})\.ics)"'
                      % self.port, me.text)
        self.assertTrue(m, me.text)
        url, token = m.group(1), m.group(2)
        self.assertEqual(self.q("SELECT calendar_token FROM accounts WHERE name = 'alice'"), [(token,)])
        # The feed needs no login: the address is the credential.
        feed = self.client().get(url[len(self.base):], cookies=False)
        self.assertEqual(feed.status, 200)
        self.assertTrue(feed.header("Content-Type").startswith("text/calendar"))
        self.assertIn("no-store", feed.header("Cache-Control"))
        cal = icalendar.Calendar.from_ical(feed.body)
        events = [e for e in cal.walk("VEVENT")]
        self.assertEqual(len(events), 1)
        self.assertEqual(str(events[0]["SUMMARY"]), "laser (booking %d)" % mine)
        self.assertEqual(int(events[0].decoded("DTSTART").timestamp()), self.at(11))
        uids = [str(e["UID"]) for e in events]
        again = icalendar.Calendar.from_ical(self.client().get(url[len(self.base):]).body)
        self.assertEqual([str(e["UID"]) for e in again.walk("VEVENT")], uids)
        self.assertEqual(self.client().get("/calendar/me/%s.ics" % ("B" * 43)).status, 404)
        self.assertEqual(self.client().get("/calendar/me/short.ics").status, 404)
        # A new address replaces the old one.
        self.assertEqual(c.post("/me/calendar", {"csrf": c.csrf("/me")}).status, 303)
        self.assertEqual(self.client().get(url[len(self.base):]).status, 404)


class ManagerTest(HttpBase):
    def test_manage_page_has_every_form_with_csrf(self):
        self.book("Carol", self.at(14), self.at(15))
        c = self.browser("boss")
        r = c.get("/manage")
        self.assertEqual(r.status, 200)
        csrf = CSRF_RE.search(r.text).group(1)
        for action in ("assign", "move", "member", "enroll", "training", "out-of-order", "unlock",
                       "invite"):
            self.assertRegex(r.text, r'action="/manage/%s"><input type="hidden" name="csrf" value="%s">'
                             % (re.escape(action), re.escape(csrf)))
        self.assertIn('<option value="%d">Alice (#%d)</option>' % (self.alice, self.alice), r.text)
        self.assertIn("<td>Carol</td>", r.text)         # upcoming bookings, with names
        self.assertIn("<option>front</option>", r.text)
        for who in ("alice", "keeper"):
            self.assertEqual(self.browser(who).get("/manage").status, 403, who)

    def test_assign_and_move_a_booking(self):
        c = self.browser("boss")
        csrf = c.csrf()
        r = c.post("/manage/assign", {"csrf": csrf, "member": str(self.alice), "machine": "laser",
                                      "start": self.local(self.at(11)), "end": self.local(self.at(12))})
        self.assertEqual(r.status, 200, r)
        bid = int(re.search(r"Slot assigned: booking (\d+)", r.text).group(1))
        row = self.booking_row(bid)
        self.assertEqual(row[:3], (self.alice, self.at(11), self.at(12)))
        self.assertTrue(row[3].startswith("manager:") and "boss" in row[3], row[3])
        r = c.post("/manage/move", {"csrf": csrf, "booking": str(bid), "start": self.local(self.at(15)),
                                    "end": self.local(self.at(16))})
        self.assertEqual(r.status, 200, r)
        new = int(re.search(r"Booking moved: new booking (\d+)", r.text).group(1))
        old = self.booking_row(bid)
        self.assertGreater(old[4], 0)
        self.assertEqual(old[6], new)
        self.assertEqual(self.booking_row(new)[:3], (self.alice, self.at(15), self.at(16)))
        # A manager sees the other member's name in a conflict: it is their job.
        self.book("Carol", self.at(17), self.at(18))
        r = c.post("/manage/assign", {"csrf": csrf, "member": str(self.alice), "machine": "laser",
                                      "start": self.local(self.at(17)), "end": self.local(self.at(18))})
        self.assertEqual(r.status, 409)
        self.assertIn("Carol", r.text)
        missing = c.post("/manage/assign", {"csrf": csrf, "member": str(self.alice), "machine": "laser"})
        self.assertEqual(missing.status, 400)
        self.assertEqual(c.post("/manage/nonsense", {"csrf": csrf}).status, 404)

    def test_add_member_with_account_gives_a_working_one_time_link(self):
        c = self.browser("boss")
        r = c.post("/manage/member", {"csrf": c.csrf(), "name": "Eve Example", "email": "eve@example.org",
                                      "account": "eve"})
        self.assertEqual(r.status, 200, r)
        m = re.search(r"http://127\.0\.0\.1:%d/welcome/([A-Za-z0-9_-]{43})" % self.port, r.text)
        self.assertTrue(m, r.text)
        eve = self.q("SELECT id FROM members WHERE name = 'Eve Example'")
        self.assertEqual(len(eve), 1)
        self.assertEqual(self.q("SELECT role, member_id FROM accounts WHERE name = 'eve'"),
                         [("member", eve[0][0])])
        e = self.client()
        path = "/welcome/" + m.group(1)
        field = CSRF_RE.search(e.get(path).text).group(1)
        done = e.post(path, {"csrf": field, "password": "eve-password-1", "password2": "eve-password-1"})
        self.assertEqual(done.status, 303)
        self.assertEqual(self.client().login("eve", "eve-password-1").status, 303)

    def test_out_of_order_training_and_unlock(self):
        c = self.browser("boss")
        csrf = c.csrf()
        r = c.post("/manage/out-of-order", {"csrf": csrf, "machine": "laser", "on": "true",
                                            "reason": "lens <cracked>"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.q("SELECT out_of_order FROM resources WHERE name = 'laser'")[0][0], 1)
        home = self.client().get("/")
        self.assertIn('<td class="m-ooo">out of order (lens &lt;cracked&gt;)</td>', home.text)
        self.assertEqual(c.post("/manage/out-of-order", {"csrf": csrf, "machine": "laser",
                                                         "on": "false"}).status, 200)
        self.assertIn('<td class="m-free">free</td>', self.client().get("/").text)

        self.d.ok({"cmd": "training.add", "name": "laser-basic"})
        r = c.post("/manage/training", {"csrf": csrf, "member": str(self.bob), "training": "laser-basic"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("Training granted", r.text)
        self.assertEqual(self.q("SELECT count(*) FROM qualifications WHERE member_id = ?", self.bob), [(1,)])

        self.assertFalse(self.d.relay_file("front"))
        r = c.post("/manage/unlock", {"csrf": csrf, "door": "front", "seconds": "120"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("Door unlocked", r.text)
        self.assertTrue(self.d.relay_file("front"))
        self.assertEqual(self.d.door("front")["state"], "unlocked")

    def test_other_roles_may_not_manage(self):
        for who in ("alice", "keeper"):
            c = self.browser(who)
            csrf = c.csrf()
            r = c.post("/manage/assign", {"csrf": csrf, "member": str(self.alice), "machine": "laser",
                                          "start": self.local(self.at(11)), "end": self.local(self.at(12))})
            self.assertEqual(r.status, 403, who)
            r = c.post("/manage/unlock", {"csrf": csrf, "door": "front", "seconds": "60"})
            self.assertEqual(r.status, 403, who)
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])
        self.assertFalse(self.d.relay_file("front"))


class CustodianTest(HttpBase):
    def test_usage_csv_and_ledger(self):
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        c = self.browser("keeper")
        period = time.strftime("%Y-%m", time.localtime(self.now))
        usage = c.get("/usage")
        self.assertEqual(usage.status, 200)
        self.assertIn("<h1>Usage</h1>", usage.text)
        self.assertIn('value="%s"' % period, usage.text)
        self.assertIn("<td>Alice</td>", usage.text)
        r = c.get("/usage.csv?period=" + period)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/csv"))
        self.assertEqual(r.header("Content-Disposition"), 'attachment; filename="usage-%s.csv"' % period)
        rows = list(csv.reader(io.StringIO(r.text)))
        self.assertEqual(rows[0], ["period", "member_id", "member", "days", "presence_minutes",
                                   "machine_minutes", "amount", "currency"])
        alice = [row for row in rows[1:] if row[2] == "Alice"]
        self.assertEqual(len(alice), 1)
        self.assertEqual((alice[0][0], alice[0][1], alice[0][3]), (period, str(self.alice), "1"))
        self.assertEqual(c.get("/usage?period=2024").status, 400)
        ledger = c.get("/ledger")
        self.assertEqual(ledger.status, 200)
        self.assertIn('<p role="status" id="ledger-state" class="ok">Verified:', ledger.text)
        # A member sees none of it.
        member = self.browser("alice")
        for path in ("/usage", "/usage.csv", "/ledger"):
            self.assertEqual(member.get(path).status, 403, path)

    def test_custodian_cannot_book(self):
        c = self.browser("keeper")
        r = c.post("/bookings", {"csrf": c.csrf(), "machine": "laser", "start": self.local(self.at(11)),
                                 "end": self.local(self.at(12))})
        self.assertEqual(r.status, 403)
        api = self.api("keeper")
        self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST",
                                            {"machine": "laser", "start": self.at(11), "end": self.at(12)}),
                              403, "forbidden")
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])


class ApiTest(HttpBase):
    def test_reads_with_a_bearer_token(self):
        mine = self.book("Alice", self.at(11), self.at(12))
        theirs = self.book("Carol", self.at(14), self.at(15))
        api = self.api("alice")
        me = self.api_call(api, "/api/v1/me")
        self.assertEqual(me.status, 200)
        account = me.json()["account"]
        self.assertEqual((account["name"], account["role"], account["member_id"], account["member"]),
                         ("alice", "member", self.alice, "Alice"))
        self.assertNotIn("argon2", me.text)
        machines = self.api_call(api, "/api/v1/machines").json()["machines"]
        self.assertEqual([(m["name"], m["state"], m["slot_minutes"]) for m in machines],
                         [("laser", "free", 30)])
        r = self.api_call(api, "/api/v1/bookings")
        self.assertEqual(r.status, 200)
        bookings = {b["id"]: b for b in r.json()["bookings"]}
        self.assertEqual(set(bookings), {mine, theirs})
        self.assertEqual((bookings[mine]["member"], bookings[mine]["mine"], bookings[mine]["start"]),
                         ("Alice", True, self.at(11)))
        self.assertNotIn("member", bookings[theirs])
        self.assertNotIn("member_id", bookings[theirs])
        self.assertFalse(bookings[theirs]["mine"])
        self.assertNotIn("Carol", r.text)
        only = self.api_call(api, "/api/v1/bookings?mine=1").json()["bookings"]
        self.assertEqual([b["id"] for b in only], [mine])
        names = self.api_call(self.api("boss"), "/api/v1/bookings").json()["bookings"]
        self.assertEqual(sorted(b["member"] for b in names), ["Alice", "Carol"])

    def test_every_account_may_ask_who_it_is(self):
        for name, role, member in (("alice", "member", self.alice), ("boss", "manager", 0),
                                   ("keeper", "custodian", 0)):
            r = self.api_call(self.api(name), "/api/v1/me")
            self.assertEqual(r.status, 200, (name, r))
            self.assertEqual((r.json()["account"]["role"], r.json()["account"]["member_id"]),
                             (role, member))
        # On the page, "My page" leads each account where it belongs.
        for name, status, where in (("alice", 200, None), ("boss", 303, "/manage"),
                                    ("keeper", 303, "/usage")):
            r = self.browser(name).get("/me")
            self.assertEqual((r.status, r.header("Location")), (status, where), name)

    def test_book_conflict_and_cancel(self):
        theirs = self.book("Carol", self.at(14), self.at(15))
        api = self.api("alice")
        r = self.api_call(api, "/api/v1/bookings", "POST",
                          {"machine": "laser", "start": self.at(11), "end": self.at(12)})
        self.assertEqual(r.status, 201, r)
        body = r.json()
        self.assertTrue(body["ok"])
        bid = body["id"]
        self.assertEqual(self.booking_row(bid)[:4],
                         (self.alice, self.at(11), self.at(12), "member:%d" % self.alice))
        clash = self.assert_api_error(
            self.api_call(api, "/api/v1/bookings", "POST",
                          {"machine": "laser", "start": self.local(self.at(14, 30)),
                           "end": self.local(self.at(15))}), 409, "overlap")
        self.assertNotIn("Carol", json.dumps(clash))
        self.assertNotIn(str(theirs), clash["error"])
        # A member books for themselves only, whatever the body says.
        r = self.api_call(api, "/api/v1/bookings", "POST",
                          {"machine": "laser", "start": self.at(16), "end": self.at(17),
                           "member": str(self.carol)})
        self.assertEqual(r.status, 201)
        self.assertEqual(self.booking_row(r.json()["id"])[0], self.alice)
        self.assert_api_error(self.api_call(api, "/api/v1/bookings/%d/cancel" % theirs, "POST", {}),
                              404, "not_found")
        self.assertEqual(self.booking_row(theirs)[4], 0)
        r = self.api_call(api, "/api/v1/bookings/%d/cancel" % bid, "POST", {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["id"], bid)
        self.assertGreater(self.booking_row(bid)[4], 0)

    def test_roles_of_the_api(self):
        member = self.api("alice")
        self.assert_api_error(self.api_call(member, "/api/v1/members"), 403, "forbidden")
        self.assert_api_error(self.api_call(member, "/api/v1/doors/front/unlock", "POST", {"seconds": 60}),
                              403, "forbidden")
        # A member reads their own figures only (the same command as /usage, checked by the
        # command table): someone else's are forbidden, and their own name no one else.
        self.assert_api_error(self.api_call(member, "/api/v1/usage?period=2026-01&member=%d" % self.bob), 403,
                              "forbidden")
        own = self.api_call(member, "/api/v1/usage?period=2026-01")
        self.assertEqual(own.status, 200, own)
        self.assertTrue(all(m["member_id"] == self.alice for m in own.json()["statement"]["members"]), own)
        self.assertFalse(self.d.relay_file("front"))
        manager = self.api("boss")
        members = self.api_call(manager, "/api/v1/members")
        self.assertEqual(members.status, 200)
        self.assertIn("Alice", members.text)
        r = self.api_call(manager, "/api/v1/doors/front/unlock", "POST", {"seconds": 60})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.d.relay_file("front"))

    def test_without_credentials_is_401_json(self):
        anon = self.client()
        anon.bearer = "X-Nothing: 1"
        self.assert_api_error(self.api_call(anon, "/api/v1/me"), 401, "unauthorized")
        self.assert_api_error(self.api_call(anon, "/api/v1/bookings", "POST",
                                            {"machine": "laser", "start": self.at(11), "end": self.at(12)}),
                              401, "unauthorized")
        bad = self.client()
        bad.bearer = "Authorization: Bearer " + "x" * 43
        self.assert_api_error(self.api_call(bad, "/api/v1/me"), 401, "unauthorized")
        self.assert_api_error(self.api_call(bad, "/api/v1/bookings/1/cancel", "POST", {}), 401,
                              "unauthorized")
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])

    def test_bad_bodies_are_4xx_json(self):
        api = self.api("alice")
        err = self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST", '{"machine": "laser",'),
                                    400, "bad_request")
        self.assertIn("not valid JSON", err["error"])
        err = self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST", "[1, 2]"), 400,
                                    "bad_request")
        self.assertIn("JSON object", err["error"])
        self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST", '{"a": 1, "a": 2}'), 400,
                              "bad_request")
        big = json.dumps({"machine": "laser", "note": "x" * (65 * 1024)})
        self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST", big), 413, "too_large")
        # The same without a Content-Length: the limit is found while reading, still a 413.
        self.assert_api_error(self.api_call(api, "/api/v1/bookings", "POST", big,
                                            headers=["Transfer-Encoding: chunked"]), 413, "too_large")
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])
        small = self.api_call(api, "/api/v1/bookings", "POST",
                              {"machine": "laser", "start": self.at(11), "end": self.at(12)},
                              headers=["Transfer-Encoding: chunked"])
        self.assertEqual(small.status, 201, small)
        self.d.ok({"cmd": "booking.cancel", "booking": small.json()["id"]})
        plain = api.request("/api/v1/bookings", method="POST", body="machine: laser", ctype="text/plain",
                            headers=[api.bearer], cookies=False)
        self.assertEqual(plain.status, 415)
        self.assertEqual(self.q("SELECT count(*) FROM bookings WHERE cancelled_at = 0"), [(0,)])

    def test_unknown_routes_and_methods_are_json(self):
        api = self.api("alice")
        self.assert_api_error(self.api_call(api, "/api/v1/nothing"), 404, "not_found")
        self.assert_api_error(self.api_call(api, "/api/v2/machines"), 404, "not_found")
        put = self.api_call(api, "/api/v1/bookings", "PUT", {"machine": "laser"})
        self.assert_api_error(put, 405, "bad_request")
        self.assertIn("POST", put.header("Allow"))
        self.assert_api_error(self.api_call(api, "/api/v1/machines", "DELETE"), 405, "bad_request")

    def test_session_api_calls_need_the_csrf_header(self):
        c = self.browser("alice")
        csrf = c.csrf()
        body = json.dumps({"machine": "laser", "start": self.at(11), "end": self.at(12)})
        r = c.request("/api/v1/bookings", method="POST", body=body, ctype="application/json")
        self.assert_api_error(r, 403, "csrf")
        r = c.request("/api/v1/bookings", method="POST", body=body, ctype="application/json",
                      headers=["X-CSRF-Token: " + "A" * 43])
        self.assert_api_error(r, 403, "csrf")
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(0,)])
        r = c.request("/api/v1/bookings", method="POST", body=body, ctype="application/json",
                      headers=["X-CSRF-Token: " + csrf])
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.q("SELECT count(*) FROM bookings"), [(1,)])
        # Reads need no token.
        self.assertEqual(c.get("/api/v1/me").status, 200)


class FeedsTest(HttpBase):
    def test_machine_calendar_has_no_names_and_stable_uids(self):
        ids = [self.book("Alice", self.at(11), self.at(12)), self.book("Carol", self.at(14), self.at(15))]
        c = self.client()
        r = c.get("/calendar/laser.ics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/calendar"))
        self.assertNotIn("Alice", r.text)
        self.assertNotIn("Carol", r.text)
        cal = icalendar.Calendar.from_ical(r.body)
        events = list(cal.walk("VEVENT"))
        self.assertEqual(len(events), 2)
        for e in events:
            self.assertIn("DTSTAMP", e)
            self.assertEqual(str(e["SUMMARY"]), "laser: booked")
        self.assertEqual(sorted(int(e.decoded("DTSTART").timestamp()) for e in events),
                         [self.at(11), self.at(14)])
        uids = sorted(str(e["UID"]) for e in events)
        self.assertEqual(uids, sorted("booking-%d@web.portier" % i for i in ids))
        again = icalendar.Calendar.from_ical(c.get("/calendar/laser.ics").body)
        self.assertEqual(sorted(str(e["UID"]) for e in again.walk("VEVENT")), uids)
        self.assertEqual(c.get("/calendar/nope.ics").status, 404)
        self.assertEqual(c.get("/calendar/laser").status, 404)

    def test_spaceapi_validates_and_follows_presence(self):
        c = self.client()
        doc = self.spaceapi(c)
        self.assertEqual(doc["space"], "Test site")
        self.assertIs(doc["state"]["open"], False)
        # How many people are in is not published unless the site opts in.
        self.assertNotIn("sensors", doc)
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        doc = self.spaceapi(c)
        self.assertIs(doc["state"]["open"], True)
        self.assertNotIn("sensors", doc)
        self.assertNotIn("Alice", json.dumps(doc))

    def test_healthz_and_metrics(self):
        c = self.client()
        h = c.get("/healthz")
        self.assertEqual(h.status, 200)
        body = h.json()
        self.assertEqual((body["ok"], body["status"], body["problems"]), (True, "healthy", []))
        self.assertEqual(sorted(r["name"] for r in body["readers"]), ["front", "laser"])
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        self.assertFalse(self.d.tap("04DEADBE")["granted"])
        self.assertEqual(c.get("/nothing-here").status, 404)
        m = c.get("/metrics")
        self.assertEqual(m.status, 200)
        self.assertTrue(m.header("Content-Type").startswith("text/plain; version=0.0.4"))
        self.assertIn("# TYPE portier_taps_total counter", m.text)
        self.assertEqual(self.metric(m.text, 'portier_taps_total{result="granted"}'), 1)
        self.assertEqual(self.metric(m.text, 'portier_taps_total{result="denied"}'), 1)
        self.assertIn("# TYPE portier_http_requests_total counter", m.text)
        self.assertGreaterEqual(self.metric(m.text, 'portier_http_requests_total{code="2xx"}'), 1)
        self.assertEqual(self.metric(m.text, 'portier_http_requests_total{code="4xx"}'), 1)
        self.assertEqual(self.metric(m.text, 'portier_http_requests_total{code="5xx"}'), 0)
        before = self.metric(m.text, 'portier_http_requests_total{code="2xx"}')
        after = self.metric(c.get("/metrics").text, 'portier_http_requests_total{code="2xx"}')
        self.assertEqual(after, before + 1)
        self.assertEqual(self.metric(m.text, "portier_people_present"), 1)


class NotUtf8ConfigTest(unittest.TestCase):
    """A site name that is not UTF-8 (a Latin-1 config file) could not go into JSON: /healthz
    and /spaceapi.json answered 500. The config check now refuses it with FILE:LINE."""

    def test_latin1_site_name_is_refused_at_load(self):
        d = tempfile.mkdtemp(prefix="portier-test-")
        path = os.path.join(d, "portier.conf")
        with open(path, "wb") as f:
            f.write(b"[site]\nname = Caf\xe9\n[http]\nlisten = 127.0.0.1:1\n")
        p = subprocess.run([PORTIERD, "-n", "-c", path], capture_output=True, text=True,
                           errors="replace")
        self.assertEqual(p.returncode, 1)
        self.assertIn(path + ":2: name is not valid UTF-8 text", p.stderr)


class SpaceApiPeopleTest(HttpBase):
    """[spaceapi] publish_people = yes: the count of people in is published (no names)."""
    more = "\n[spaceapi]\npublish_people = yes\n"

    def test_people_count_follows_presence_when_the_site_opts_in(self):
        c = self.client()
        doc = self.spaceapi(c)
        self.assertEqual(doc["sensors"]["people_now_present"][0]["value"], 0)
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        doc = self.spaceapi(c)
        self.assertEqual(doc["sensors"]["people_now_present"][0]["value"], 1)
        self.assertNotIn("Alice", json.dumps(doc))


class LongNameFeedsTest(HttpBase):
    """Calendar lines are folded at 75 octets (RFC 5545 3.1), never inside a character."""
    site_name = ("Tiers-lieu coopératif de l'Été à Châteauneuf-sur-Loire, fabrique numérique "
                 "éèàçôû")

    def test_feed_lines_are_folded_at_octet_boundaries(self):
        self.assertGreater(len(self.site_name.encode()), 75)
        self.book("Alice", self.at(11), self.at(12))
        body = self.client().get("/calendar/laser.ics").body
        self.assertTrue(body.endswith(b"\r\n"))
        for line in body.split(b"\r\n"):
            self.assertLessEqual(len(line), 75, line)
            line.decode("utf-8")            # each physical line is whole characters
        cal = icalendar.Calendar.from_ical(body)
        self.assertEqual(str(cal["X-WR-CALNAME"]).count("Châteauneuf"), 1)
        event = next(iter(cal.walk("VEVENT")))
        self.assertEqual(str(event["LOCATION"]), self.site_name)


class SpaceApiDoorsTest(HttpBase):
    front_extra = "free_entry = always"
    more = ("\n[spaceapi]\nopen_from = doors\npublish_people = yes\nemail = hello@example.org\n"
            "address = 1 rue de la Paix, Paris\nlat = 48.8686\nlon = 2.33101234\n")

    def test_open_while_a_door_lets_anyone_in(self):
        c = self.client()
        doc = self.spaceapi(c)
        self.assertIs(doc["state"]["open"], True)
        self.assertEqual(doc["sensors"]["people_now_present"][0]["value"], 0)
        self.assertEqual(doc["contact"]["email"], "hello@example.org")
        self.assertEqual(doc["location"]["timezone"], "Europe/Paris")
        self.assertAlmostEqual(doc["location"]["lat"], 48.8686)
        # As written (to 6 decimals), not jansson's 17 digits: 48.868600000000001.
        raw = c.get("/spaceapi.json").text
        self.assertIn('"lat":48.8686,', raw)
        self.assertIn('"lon":2.331012', raw)
        self.assertNotIn('"lon":2.3310123', raw)
        self.assertIn('class="state open"', c.get("/").text)


class RobustnessTest(HttpBase):
    http_extra = "timeout_seconds = 5\nmax_body_kib = 1024"

    def send_raw(self, data):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        s.sendall(data)
        return s

    @staticmethod
    def answer(s):
        """The whole answer on s until the server closes it (b"" if it just closed)."""
        out = b""
        try:
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def raw(self, data):
        return self.answer(self.send_raw(data))

    def assert_4xx_or_closed(self, answer, what):
        if answer:
            m = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
            self.assertTrue(m, (what, answer[:200]))
            self.assertTrue(400 <= int(m.group(1)) < 500, (what, answer[:200]))

    def test_large_requests_are_read_without_stalling(self):
        """libmicrohttpd reads a big request over several runs, and each must follow at once.
        The bound is the harness's usual generous wait, for both requests together: a correct
        server answers in milliseconds; a coarse loop timer once made it half a minute."""
        deadline = time.monotonic() + WAIT
        c = self.client()
        form = urllib.parse.urlencode({"name": "alice", "pad": "b" * (1000 * 1024)})
        r = c.request("/login", method="POST", form=form, max_time=deadline - time.monotonic())
        self.assertEqual(r.status, 403)                 # read to the end: then the CSRF check
        self.assertIn("reload the page", r.text)
        r = c.get("/", headers=["X-Pad: " + "h" * 30000], max_time=deadline - time.monotonic())
        self.assertEqual(r.status, 200)
        self.assertIn("Test site", r.text)

    def test_malformed_requests_get_4xx_and_the_doors_keep_working(self):
        # Bytes libmicrohttpd cannot even split into lines (a TLS hello on the plain port, a
        # NUL first) are dropped when the connection's idle timeout ends: read them last.
        slow = [(self.send_raw(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), "TLS hello"),
                (self.send_raw(b"\x00GET / HTTP/1.1\r\n\r\n"), "NUL first")]
        self.assert_4xx_or_closed(self.raw(b"GARBAGE\r\n\r\n"), "garbage request line")
        self.assert_4xx_or_closed(self.raw(b"\xff\x16\x03\x01 nonsense\r\n\r\n"), "binary")
        self.assert_4xx_or_closed(self.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 +
                                           b"\r\n\r\n"), "huge header")
        self.assert_4xx_or_closed(self.raw(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n"
                                           b"Connection: close\r\n\r\n"), "long path (raw)")
        self.assert_4xx_or_closed(self.raw(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                           b"Content-Length: 7\r\n\r\nabcdefg"), "two lengths")
        self.assert_4xx_or_closed(self.raw(b"POST /login HTTP/1.1\r\nHost: x\r\n"
                                           b"Transfer-Encoding: chunked\r\nContent-Type: "
                                           b"application/x-www-form-urlencoded\r\n\r\nzz\r\n"),
                                  "bad chunk")
        c = self.client()
        field = CSRF_RE.search(c.get("/login").text).group(1)
        forms = {
            "bad percent-encoding": b"csrf=" + field.encode() + b"&name=%ZZ&password=x",
            "truncated percent-encoding": b"csrf=" + field.encode() + b"&name=alice&password=%4",
            "invalid UTF-8": b"csrf=" + field.encode() + b"&name=%FF%FEalice&password=x",
            "invalid UTF-8 in a name": b"csrf=" + field.encode() + b"&name=alice&k%C3%FE=1&password=x",
            "duplicate field": b"csrf=" + field.encode() + b"&name=alice&name=carol&password=x",
            "100 fields": b"&".join(b"f%d=%d" % (i, i) for i in range(100)),
            "NUL in a name": b"csrf=" + field.encode() + b"&na%00me=alice",
            "long field name": b"csrf=" + field.encode() + b"&" + b"n" * 100 + b"=1",
        }
        for what, body in forms.items():
            r = c.request("/login", method="POST", body=body, ctype="application/x-www-form-urlencoded")
            self.assertEqual(r.status, 400, (what, r))
            self.assertIn("That did not work", r.text)
        self.assertEqual(self.q("SELECT count(*) FROM web_sessions"), [(0,)])
        long_path = c.get("/" + "a" * 2000)
        self.assertEqual(long_path.status, 414)
        self.assertEqual(c.get("/machines/" + "%zz" * 10).status, 404)
        api = self.api("alice")
        deep = "[" * 5000 + "]" * 5000
        r = self.api_call(api, "/api/v1/bookings", "POST", deep)
        self.assertEqual(r.status, 400)
        r = self.api_call(api, "/api/v1/bookings", "POST", b'{"machine": "\xff\xfe"}')
        self.assertEqual(r.status, 400)
        for sock, what in slow:
            self.assert_4xx_or_closed(self.answer(sock), what)
        # Nothing above was a server error, and the daemon still serves pages and opens doors.
        metrics = c.get("/metrics").text
        self.assertEqual(self.metric(metrics, 'portier_http_requests_total{code="5xx"}'), 0)
        home = self.client().get("/")
        self.assertEqual(home.status, 200)
        self.assertIn("Test site", home.text)
        self.assertTrue(self.d.tap(ALICE_CARD)["granted"])
        self.assertTrue(self.d.relay_file("front"))
        self.assertEqual([l for l in self.d.log_text().splitlines() if re.search(r"http: .* -> 5", l)], [])

    def test_expect_continue_without_a_body_gets_its_answer(self):
        """Found by fuzz_http_request: "Expect: 100-continue" on a request without a body,
        followed by more bytes, got "100 Continue" and then a closed connection, libmicrohttpd
        refusing the answer ("Application reported internal error" in the log)."""
        for request, status in ((b"POST /login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                 b"Connection: close\r\n\r\n{", b"403"),
                                (b"H /s HTTP/1.1\r\nExpect:100-continue\r\nConnection: close\r\n"
                                 b"\r\n{", b"405")):
            answer = self.raw(request)
            self.assertTrue(answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200])
        self.assertNotIn("internal error", self.d.log_text())

    def test_unsupported_versions_get_505_and_the_server_goes_on(self):
        # docs/http-api.md: the one 5xx a malformed request may get, from libmicrohttpd.
        for line in (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
            answer = self.raw(line)
            if answer:
                self.assertTrue(answer.startswith(b"HTTP/1.1 505") or
                                answer.startswith(b"HTTP/1.1 4"), answer[:80])
        self.assertEqual(self.client().get("/healthz").status, 200)


class FloodTest(HttpBase):
    """More connections than the limits at once, and slow clients: the server must go on
    answering everyone else (issue 12.8)."""
    http_extra = "header_timeout_seconds = 2"

    def healthz(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64)
        finally:
            s.close()

    def test_serves_again_after_a_burst_over_the_connection_limit(self):
        for _ in range(30):
            socks = []
            for i in range(100):
                c = socket.socket()
                c.setblocking(False)
                c.bind(("127.0.0.%d" % (1 + i % 3), 0))
                try:
                    c.connect(("127.0.0.1", self.port))
                except BlockingIOError:
                    pass
                socks.append(c)
            time.sleep(0.05)
            for c in socks:
                try:
                    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    pass
            for c in socks:
                c.close()

        def answers():
            try:
                return self.healthz(timeout=2).startswith(b"HTTP/1.1 200")
            except OSError:
                return False
        wait_until(answers, what="/healthz answering after the burst")

    def test_slow_headers_are_cut_off_and_others_are_served(self):
        slow = []
        for i in range(40):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            slow.append(c)
        # One header line a second, never the end of the headers.
        deadline = time.monotonic() + 6
        closed = set()
        while time.monotonic() < deadline and len(closed) < len(slow):
            for n, c in enumerate(slow):
                if n in closed:
                    continue
                try:
                    c.sendall(b"X-Slow: %d\r\n" % n)
                except OSError:
                    closed.add(n)
            time.sleep(1)
        for c in slow:
            c.settimeout(3)
            try:
                if c.recv(1) in (b"",):
                    pass
            except (socket.timeout, OSError):
                pass
        still_open = 0
        for c in slow:
            c.setblocking(False)
            try:
                if c.recv(1) != b"":
                    still_open += 1
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
            c.close()
        self.assertEqual(still_open, 0, "slow clients kept their connections")
        self.assertTrue(self.healthz().startswith(b"HTTP/1.1 200"))


class TlsTest(HttpBase):
    scheme = "https"
    http_extra = "tls_cert = {dir}/cert.pem\ntls_key = {dir}/key.pem"

    def prepare(self):
        self.cacert = os.path.join(self.d.dir, "cert.pem")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(self.d.dir, "key.pem"), "-out", self.cacert],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_https_with_secure_cookie_and_hsts(self):
        c = self.client()
        r = c.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn("Test site", r.text)
        self.assertIn("max-age=", r.header("Strict-Transport-Security"))
        self.assert_security_headers(r)
        self.assertIn("Secure", c.get("/login").cookies()["portier_pre"])
        login = c.login("alice", PASSWORDS["alice"])
        self.assertEqual(login.status, 303)
        parts = [p.strip() for p in login.cookies()["portier_session"].split(";")]
        self.assertIn("Secure", parts)
        self.assertIn("HttpOnly", parts)
        self.assertIn("SameSite=Strict", parts)
        self.assertIsNotNone(login.header("Strict-Transport-Security"))
        self.assertEqual(c.get("/me").status, 200)
        doc = c.get("/spaceapi.json").json()
        self.assertTrue(doc["url"].startswith("https://127.0.0.1:%d" % self.port))
        # Without the certificate curl refuses; plain HTTP on the TLS port gets no page.
        p = subprocess.run(["curl", "-sS", "--max-time", str(int(WAIT)), self.base + "/"],
                           capture_output=True, timeout=WAIT * 2)
        self.assertNotEqual(p.returncode, 0)
        plain = Client("http://127.0.0.1:%d" % self.port, self.d.dir)
        try:
            self.assertNotEqual(plain.get("/").status, 200)
        except ConnectionError:
            pass


if __name__ == "__main__":
    main()

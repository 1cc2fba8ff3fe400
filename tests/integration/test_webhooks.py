# SPDX-License-Identifier: AGPL-3.0-or-later
"""Webhooks against a real HTTPS receiver started by the test (Python's http.server with TLS,
its certificate from a test CA made with openssl): signed events verified by the receiver,
event filters, retries after 500s and timeouts, refusals, a kill -9 of portierd mid-burst,
MQTT and webhooks reading the same outbox, and the signature check of docs/webhooks.md in
shell with openssl. Run with /usr/bin/python3."""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (Daemon, DaemonTest, base_config, free_tcp_port,  # noqa: E402
                             http_section, main, make_test_ca, wait_until)

SECRET = "whsec-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def verify(secret, headers, body):
    """What a receiver does: recompute the HMAC of "t.body" and compare."""
    m = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", headers.get("Portier-Signature", ""))
    if not m:
        return False
    expected = hmac.new(secret.encode(), m.group(1).encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, m.group(2)) and abs(int(m.group(1)) - time.time()) < 300


class Receiver:
    """An HTTPS receiver. Every request is kept; answers follow `plan` (statuses, or
    ("sleep", seconds) then 200), then `refuse` (a predicate on the event: 400), then 200."""

    def __init__(self, directory, port=None):
        self.dir = directory
        self.port = port or free_port()
        self.requests = []
        self.plan = []
        self.refuse = lambda event: False
        self.delay = 0.0
        self.down = False
        self.slept = []             # ids of the events whose answer came too late
        self.lock = threading.Lock()
        self.server = None

    def handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"       # keep-alive, as real receivers

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.down:           # a kept-alive connection outlives stop()
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items()}
                with receiver.lock:
                    step = receiver.plan.pop(0) if receiver.plan else 200
                try:
                    event = json.loads(body)
                except ValueError:
                    event = None
                if isinstance(step, tuple):
                    with receiver.lock:
                        receiver.slept.append(event["id"] if event else None)
                    time.sleep(step[1])
                    step = 200
                if step == 200 and event is not None and receiver.refuse(event):
                    step = 400
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.requests.append((step, headers, body, event))
                reply = b'{"ok": true}' if step == 200 else b"no"
                try:
                    self.send_response(step)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass            # the client gave up (a timeout): nothing to answer
        return Handler

    def start(self):
        self.down = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, "server.crt"),
                            os.path.join(self.dir, "server.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.down = True
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def delivered(self, kind=None):
        """Events answered 2xx, in arrival order."""
        with self.lock:
            return [e for s, h, b, e in self.requests
                    if s == 200 and e is not None and (kind is None or e["kind"] == kind)]


WEBHOOK = """
[webhook crm]
url = https://127.0.0.1:{port}/portier/events?token=abc
secret = {secret}
tls_ca = {dir}/ca.crt
timeout_seconds = 2
{extra}
"""


class WebhookTest(DaemonTest):
    extra = ""
    more = ""

    def setUp(self):
        self.d = Daemon()
        make_test_ca(self.d.dir)
        self.rx = Receiver(self.d.dir).start()
        self.http_port = free_tcp_port()
        self.d.write_config(base_config(self.d.dir) +
                            WEBHOOK.format(port=self.rx.port, secret=SECRET, dir=self.d.dir,
                                           extra=self.extra) + self.more +
                            http_section(self.http_port))
        self.d.start()
        self.d.seed()

    def tearDown(self):
        super().tearDown()
        self.rx.stop()

    def hooks(self):
        return {h["name"]: h for h in self.d.ok({"cmd": "webhook.list"})["webhooks"]}


class DeliveryTest(WebhookTest):
    def test_signed_events_reach_the_receiver(self):
        taps = [self.d.tap("04A1B2C3")["event_id"] for _ in range(3)]
        wait_until(lambda: len(self.rx.delivered("tap")) == 3, what="three tap events")
        for status, headers, body, event in self.rx.requests:
            self.assertTrue(verify(SECRET, headers, body), "signature of %r" % body)
            self.assertFalse(verify("another-secret-0123", headers, body))
            self.assertEqual(headers["Content-Type"], "application/json")
            self.assertEqual(headers["Portier-Event-Id"], event["id"])
            self.assertEqual(headers["Portier-Event"], event["kind"])
        events = self.rx.delivered("tap")
        self.assertEqual([e["event_id"] for e in events], taps)
        e = events[0]
        self.assertEqual((e["v"], e["site"], e["kind"], e["resource"], e["granted"]),
                         (1, "test", "tap", "front", True))
        self.assertIsInstance(e["seq"], int)
        self.assertRegex(e["id"], r"^[0-9a-f]{12}-%d$" % e["seq"])
        self.assertRegex(e["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertNotIn("card", json.dumps(e))           # member ids, never card UIDs
        # Door changes travel too (kind "door").
        wait_until(lambda: self.rx.delivered("door"), what="door events")
        # Nothing is left behind; the outbox forgets what was delivered.
        wait_until(lambda: self.hooks()["crm"]["behind"] == 0, what="caught up")
        self.assertEqual(self.hooks()["crm"]["receiver"], "https://127.0.0.1:%d" % self.rx.port)
        self.assertNotIn("token=abc", self.d.log_text())
        self.assertNotIn(SECRET, self.d.log_text())

        def outbox_rows():
            db = self.d.db()
            n = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            db.close()
            return n
        wait_until(lambda: outbox_rows() == 0, what="the outbox emptied (cursor saved)")

    def test_signature_check_of_the_docs_in_shell(self):
        self.d.tap("04A1B2C3")
        wait_until(lambda: self.rx.delivered("tap"), what="an event")
        status, headers, body, event = [r for r in self.rx.requests if r[3]["kind"] == "tap"][0]
        # The receiver's check as docs/webhooks.md writes it, with openssl.
        with open(os.path.join(os.environ.get("PORTIER_SRC", os.path.join(
                os.path.dirname(__file__), "..", "..")), "docs", "webhooks.md")) as f:
            script = f.read()
        snippet = re.search(r"```sh\n(# verify-signature.*?)```", script, re.S).group(1)
        with open(os.path.join(self.d.dir, "body.json"), "wb") as f:
            f.write(body)
        env = dict(os.environ, SECRET=SECRET, SIGNATURE_HEADER=headers["Portier-Signature"],
                   BODY_FILE=os.path.join(self.d.dir, "body.json"))
        ok = subprocess.run(["sh", "-c", snippet], env=env, capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertIn("signature ok", ok.stdout)
        with open(os.path.join(self.d.dir, "body.json"), "wb") as f:
            f.write(body.replace(b'"granted":true', b'"granted":false'))
        bad = subprocess.run(["sh", "-c", snippet], env=env, capture_output=True, text=True)
        self.assertNotEqual(bad.returncode, 0, bad.stdout)

    def test_retry_after_500s_with_the_same_id(self):
        self.rx.plan = [500, 503, 500]
        eid = self.d.tap("04A1B2C3")["event_id"]
        wait_until(lambda: self.rx.delivered("tap"), timeout=60, what="delivery after 500s")
        attempts = [(s, e["id"]) for s, h, b, e in self.rx.requests if e["kind"] == "tap"]
        delivered = self.rx.delivered("tap")
        self.assertEqual(len(delivered), 1)
        self.assertEqual(delivered[0]["event_id"], eid)
        ids = {i for s, i in attempts}
        self.assertEqual(len(ids), 1, "one id across attempts: %r" % attempts)
        self.assertGreaterEqual(self.hooks()["crm"]["failed_attempts"], 1)
        self.assertIn("cannot deliver", self.d.log_text())
        wait_until(lambda: "delivering again" in self.d.log_text(), what="the recovery logged")

    def test_retry_after_a_timeout(self):
        self.rx.plan = [("sleep", 4)]              # past timeout_seconds = 2
        self.d.tap("04A1B2C3")
        wait_until(lambda: "timed out" in self.d.log_text(), what="the timeout")
        slept = self.rx.slept[0]
        # The request that timed out is sent again, with its id, and delivered.
        wait_until(lambda: len([r for r in self.rx.requests if r[3]["id"] == slept]) >= 2,
                   timeout=60, what="the event sent again")
        wait_until(lambda: self.hooks()["crm"]["behind"] == 0, what="caught up")
        self.assertGreaterEqual(self.hooks()["crm"]["failed_attempts"], 1)

    def test_a_refused_event_is_skipped_and_counted(self):
        self.rx.refuse = lambda e: e["kind"] == "tap" and e.get("member_id") == 2
        self.d.tap("04B0B0B0")          # Bob: refused (400)
        self.d.tap("04A1B2C3")          # Alice
        wait_until(lambda: self.rx.delivered("tap"), what="the next event")
        wait_until(lambda: self.hooks()["crm"]["refused"] == 1, what="the refusal counted")
        wait_until(lambda: self.hooks()["crm"]["behind"] == 0, what="caught up")
        self.assertEqual([e["member_id"] for e in self.rx.delivered("tap")], [1])
        self.assertEqual(len([r for r in self.rx.requests if r[0] == 400]), 1, "not sent again")
        self.assertIn("refused with HTTP 400", self.d.log_text())

    def test_test_command(self):
        code, out, err = self.d.ctl("webhook", "test", "crm")
        self.assertIn("delivered: HTTP 200", out)
        status, headers, body, event = self.rx.requests[-1]
        self.assertEqual(event["kind"], "test")
        self.assertTrue(verify(SECRET, headers, body))
        self.rx.stop()
        code, out, err = self.d.ctl("webhook", "test", "crm", check=False)
        self.assertEqual(code, 1)
        self.assertIn("could not be reached", err)
        code, out, err = self.d.ctl("webhook", "test", "nope", check=False)
        self.assertEqual(code, 1)
        self.assertIn("no [webhook nope] section", err)

    def test_managers_see_the_webhooks_on_the_manage_page(self):
        self.d.tap("04A1B2C3")
        wait_until(lambda: self.rx.delivered("tap"), what="the event")
        wait_until(lambda: self.hooks()["crm"]["behind"] == 0, what="caught up")
        web = self.d.web_session(self.http_port)
        overview = web.open(web.base + "/manage", timeout=30).read().decode()
        self.assertNotIn('id="mail-h"', overview)        # e-mail off: no summary there
        page = web.open(web.base + "/manage/mail", timeout=30).read().decode()
        self.assertIn("E-mail is off ([mail] enabled = false).", page)
        row = re.search(r"<tr><td>crm</td><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td>"
                        r"<td>(\d+)</td><td>([^<]+)</td></tr>", page)
        self.assertIsNotNone(row, page)
        self.assertEqual(row.group(1), "https://127.0.0.1:%d" % self.rx.port)
        self.assertGreaterEqual(int(row.group(2)), 1)
        self.assertEqual(row.group(3, 4, 5), ("0", "0", "HTTP 200"))
        self.assertNotIn("token=abc", page)          # the receiver's path and query stay hidden


class FilterTest(WebhookTest):
    extra = "events = door*, alarm"
    more = """
[webhook all]
url = https://127.0.0.1:{port}/all
secret_file = {dir}/all.secret
tls_ca = {dir}/ca.crt
"""

    def setUp(self):
        d = Daemon()
        self.d = d
        make_test_ca(d.dir)
        with open(os.path.join(d.dir, "all.secret"), "w") as f:
            f.write("another-secret-0123456789\n")
        self.rx = Receiver(d.dir).start()
        d.write_config(base_config(d.dir) +
                       WEBHOOK.format(port=self.rx.port, secret=SECRET, dir=d.dir,
                                      extra=self.extra) +
                       self.more.format(port=self.rx.port, dir=d.dir))
        d.start()
        d.seed()

    def test_each_webhook_gets_its_kinds(self):
        self.d.tap("04A1B2C3")
        wait_until(lambda: self.hooks()["crm"]["behind"] == 0 and
                   self.hooks()["all"]["behind"] == 0 and self.rx.delivered("door"),
                   what="both caught up")
        by_path = {}
        for s, h, b, e in self.rx.requests:
            by_path.setdefault(e["kind"], set()).add(
                "crm" if verify(SECRET, h, b) else
                "all" if verify("another-secret-0123456789", h, b) else "?")
        self.assertEqual(by_path["tap"], {"all"})
        self.assertEqual(by_path["door"], {"crm", "all"})


class KillTest(WebhookTest):
    extra = "in_flight = 2"

    def test_kill9_mid_burst_loses_no_event(self):
        self.rx.delay = 0.01
        stored = set(self.d.kill9_mid_burst(lambda: len(self.rx.delivered("tap")) >= 30))
        self.d.start()
        got = lambda: {e["event_id"] for e in self.rx.delivered("tap")}
        wait_until(lambda: got() >= stored, timeout=120, what="every committed tap delivered")
        # At least once, with stable ids: a repeat is the very same event.
        by_id = {}
        for e in self.rx.delivered():
            self.assertEqual(by_id.setdefault(e["id"], e), e, "one body per id")
        self.assertEqual(got(), stored)


class WithMqttTest(WebhookTest):
    """MQTT and a webhook read the same outbox: neither takes events from the other."""

    def setUp(self):
        from test_mqtt import Broker, Listener
        self.Listener = Listener
        self.d = Daemon()
        make_test_ca(self.d.dir)
        self.broker = Broker(self.d.dir)
        self.broker.start()
        self.rx = Receiver(self.d.dir).start()
        self.d.write_config(base_config(self.d.dir) +
                            "\n[mqtt]\nenabled = true\nport = %d\n" % self.broker.port +
                            WEBHOOK.format(port=self.rx.port, secret=SECRET, dir=self.d.dir,
                                           extra=""))
        self.d.start()
        self.d.seed()

    def tearDown(self):
        super().tearDown()
        self.broker.stop()

    def test_both_get_every_event_even_when_one_is_down(self):
        listener = self.Listener(self.broker.port, ["portier/test/event/#"])
        self.rx.stop()                              # the webhook's receiver is down
        n = 20                                      # more than a webhook's window holds
        for _ in range(n):
            self.d.tap("04A1B2C3")
        wait_until(lambda: len([e for e in listener.events() if e["kind"] == "tap"]) == n,
                   what="MQTT has them")
        time.sleep(0.5)
        # A restart while the receiver is down: what the webhook lacks is in the database.
        self.d.stop()
        self.d.start()
        self.rx.start()
        wait_until(lambda: len({e["id"] for e in self.rx.delivered("tap")}) == n, timeout=60,
                   what="the webhook too")
        mq = {e["seq"]: e["event_id"] for e in listener.events() if e["kind"] == "tap"}
        wh = {e["seq"]: e["event_id"] for e in self.rx.delivered("tap")}
        self.assertEqual(mq, wh, "the same events with the same sequence numbers")
        # Restart: MQTT is not sent again what it had; the outbox drains.
        self.d.stop()
        before = len(listener.events())
        self.d.start()
        time.sleep(1)
        self.assertEqual(len([e for e in listener.events()[before:] if e["kind"] == "tap"]), 0)

        def outbox_rows():
            db = self.d.db()
            rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            db.close()
            return rows
        wait_until(lambda: outbox_rows() == 0, what="the outbox emptied")
        listener.client.loop_stop()

if __name__ == "__main__":
    main()

"""MQTT against a real mosquitto broker started by the test on 127.0.0.1: events with
sequence numbers, commands, discovery, a broker outage and a kill -9, all with the real
daemon. Uses Debian's python3-paho-mqtt (run with /usr/bin/python3)."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import Daemon, DaemonTest, main, wait_until  # noqa: E402

CONFIG = """
[site]
id = lyon
name = Lyon
timezone = Europe/Paris

[daemon]
state_dir = {dir}/state
control_socket = {dir}/ctl.sock
log_level = debug

[hardware]
backend = sim
debounce_ms = 0
sim_state_dir = {dir}/relays

[mqtt]
enabled = true
port = {port}
command_clients = automation
command_key_file = {dir}/command.key

[reader front]
driver = sim

[door front]
reader = front
relay = 17
contact = 27
unlock_seconds = 1
{extra}
"""

EXTRA_DOOR = """
[reader back]
driver = sim

[door back]
reader = back
relay = 18
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, directory):
        self.port = free_port()
        self.conf = os.path.join(directory, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % self.port)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, what="mosquitto listening")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class Listener:
    """A subscriber that keeps every message, as a receiver would."""

    def __init__(self, port, topics):
        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id="test-listener-%d" % os.getpid(), clean_session=True)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        assert self.subscribed.wait(20), "listener never subscribed"

    def on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def events(self, kind=None):
        with self.lock:
            out = [json.loads(p) for t, p, r in self.messages if "/event/" in t]
        return [e for e in out if kind is None or e["kind"] == kind]

    def topic(self, topic):
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def receive(events):
    """What a receiver that keeps the last sequence number accepts: QoS 1 may deliver a
    message again after a reconnect, never out of order past what was accepted."""
    accepted, last = [], 0
    for e in events:
        if e["seq"] > last:
            accepted.append(e)
            last = e["seq"]
    return accepted


def publish(port, topic, payload, retain=False):
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-m", payload]
                   + (["-r"] if retain else []), check=True, timeout=20)


class MqttTest(DaemonTest):
    extra = ""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-mqtt-")
        self.broker = Broker(self.dir)
        self.broker.start()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        with open(os.path.join(self.dir, "command.key"), "w") as f:
            f.write("s3cret-key\n")
        self.write(self.extra)
        self.listener = Listener(self.broker.port, ["portier/#", "homeassistant/#"])
        self.d.start()
        self.d.seed()

    def write(self, extra):
        self.d.write_config(CONFIG.format(dir=self.dir, port=self.broker.port, extra=extra))

    def tearDown(self):
        self.listener.close()
        super().tearDown()
        self.broker.stop()

    def taps(self):
        return self.listener.events("tap")

    def test_events_carry_increasing_sequence_numbers_and_no_uid(self):
        for uid in ("04A1B2C3", "04DEADBE", "04B0B0B0"):
            self.d.tap(uid)
        wait_until(lambda: len(self.taps()) == 3, what="3 tap events")
        events = self.listener.events()
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), len(seqs))
        taps = self.taps()
        self.assertEqual([(t["granted"], t["reason"]) for t in taps],
                         [(True, "granted"), (False, "unknown_card"), (True, "granted")])
        self.assertEqual((taps[0]["v"], taps[0]["site"], taps[0]["member_id"]), (1, "lyon", 1))
        raw = b"".join(p for t, p, r in self.listener.messages)
        self.assertNotIn(b"04A1B2C3", raw.upper())
        self.assertNotIn(b"ALICE", raw.upper())
        # Availability and door state are retained.
        self.assertIn((b"online", False), self.listener.topic("portier/lyon/status"))

    def test_command_unlocks_a_door(self):
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","seconds":600}')
        wait_until(lambda: self.d.relay_file("front"), what="door unlocked by MQTT")
        wait_until(lambda: self.listener.events("command"), what="command result")
        result = self.listener.events("command")[0]
        self.assertEqual((result["accepted"], result["client"], result["action"]),
                         (True, "automation", "door.unlock"))
        # With the shared key, any client id may command.
        publish(self.broker.port, "portier/lyon/cmd/someone",
                '{"action":"door.lock","door":"front","key":"s3cret-key"}')
        wait_until(lambda: not self.d.relay_file("front"), what="door locked by MQTT")

    def test_unauthorised_and_malformed_commands_are_refused_and_reported(self):
        bad = [
            ("intruder", '{"action":"door.unlock","door":"front"}', "not allowed"),
            ("someone", '{"action":"door.unlock","door":"front","key":"wrong"}', "not allowed"),
            ("automation", "not json", "malformed"),
            ("automation", '{"action":"door.unlock","door":"front","extra":1}', "no argument \"extra\""),
            ("automation", '{"action":"door.unlock","door":"nowhere"}', "no door"),
            ("automation", '{"action":"launch.rocket"}', "unknown action"),
            ("automation", '{"action":"door.unlock","door":"front","seconds":"ten"}', "whole number"),
            ("automation", "x" * 5000, "1 to 4096 bytes"),
        ]
        for client, payload, _ in bad:
            publish(self.broker.port, "portier/lyon/cmd/" + client, payload)
        wait_until(lambda: len(self.listener.events("command")) == len(bad), what="all results")
        results = self.listener.events("command")
        for (client, payload, words), r in zip(bad, results):
            self.assertFalse(r["accepted"], payload[:60])
            self.assertIn(words, r["reason"], r)
        self.assertFalse(self.d.relay_file("front"))
        self.assertIsNone(self.d.proc.poll())

    def test_retained_commands_are_not_replayed_at_connect(self):
        # A command left retained on the broker would run at every (re)connection.
        self.d.stop()
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","seconds":600}', retain=True)
        self.d.start()
        wait_until(lambda: "ignoring a retained command" in self.d.log_text(), what="warning")
        self.assertFalse(self.d.relay_file("front"))
        publish(self.broker.port, "portier/lyon/cmd/automation", "", retain=True)

    def test_broker_outage_loses_nothing_and_keeps_order(self):
        self.d.tap("04A1B2C3")
        wait_until(lambda: len(self.taps()) == 1, what="first event")
        self.listener.close()
        self.broker.stop()
        for i in range(500):
            self.d.tap("04A1B2C3" if i % 2 else "04DEADBE")
        self.broker.start()
        self.listener = Listener(self.broker.port, ["portier/lyon/event/#"])
        wait_until(lambda: len({t["seq"] for t in self.taps()}) >= 500, timeout=120,
                   what="500 tap events after outage")
        accepted = receive(self.listener.events())     # taps and door changes, interleaved
        seqs = [e["seq"] for e in accepted]
        self.assertEqual(seqs, list(range(seqs[0], seqs[-1] + 1)), "in order, no gap")
        self.assertEqual(len([e for e in accepted if e["kind"] == "tap"]), 500, "each tap once")

    def test_kill9_mid_burst_loses_and_duplicates_nothing(self):
        stop = threading.Event()

        def tapper():
            while not stop.is_set():
                try:
                    self.d.tap("04A1B2C3")
                except (OSError, ValueError, AssertionError):
                    return
        t = threading.Thread(target=tapper)
        t.start()
        wait_until(lambda: len(self.taps()) >= 50, what="burst under way")
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        stop.set()
        t.join(timeout=20)
        db = self.d.db()
        stored = [r[0] for r in db.execute("SELECT id FROM access_events WHERE kind = 'tap'")]
        db.close()
        self.d.start()
        wait_until(lambda: {e["event_id"] for e in self.taps()} >= set(stored), timeout=60,
                   what="every committed tap published")
        by_seq = {}
        for e in self.listener.events():
            self.assertEqual(by_seq.setdefault(e["seq"], e), e, "one event per sequence number")
        accepted = receive(self.listener.events())
        seqs = [e["seq"] for e in accepted]
        self.assertEqual(seqs, list(range(seqs[0], seqs[-1] + 1)), "in order, no gap")
        self.assertEqual({e["event_id"] for e in accepted if e["kind"] == "tap"},
                         {e["event_id"] for e in self.taps()})

    def test_discovery_and_home_assistant_restart(self):
        def configs():
            return {t: json.loads(p) for t, p, r in self.listener.messages
                    if t.startswith("homeassistant/") and t.endswith("/config") and p}
        wait_until(lambda: len(configs()) >= 3, what="discovery messages")
        c = configs()
        lock = c["homeassistant/lock/portier_lyon_door_front/config"]
        for key in ("unique_id", "device", "origin", "availability_topic", "state_topic",
                    "command_topic", "name"):
            self.assertIn(key, lock)
        self.assertEqual(lock["availability_topic"], "portier/lyon/status")
        self.assertEqual(lock["command_topic"], "portier/lyon/cmd/homeassistant")
        self.assertEqual(lock["device"]["identifiers"], ["lyon"])
        self.assertIn("homeassistant/binary_sensor/portier_lyon_door_front_contact/config", c)
        self.assertIn("homeassistant/sensor/portier_lyon_occupancy/config", c)
        before = len(self.listener.messages)
        publish(self.broker.port, "homeassistant/status", "online")
        wait_until(lambda: any(t == "homeassistant/lock/portier_lyon_door_front/config"
                               for t, p, r in self.listener.messages[before:]),
                   what="discovery published again")
        # A lock from Home Assistant's command topic works when it is an allowed client.

    def test_removed_door_is_removed_from_home_assistant(self):
        self.d.stop()
        self.write(EXTRA_DOOR)
        self.d.start()
        topic = "homeassistant/lock/portier_lyon_door_back/config"
        wait_until(lambda: any(t == topic and p for t, p, r in self.listener.messages),
                   what="back door announced")
        self.d.stop()
        self.write("")
        self.d.start()
        wait_until(lambda: any(t == topic and p == b"" for t, p, r in self.listener.messages),
                   what="back door removed (empty retained config)")


class MqttSecurityTest(DaemonTest):
    """Password and TLS connections to a broker that requires them."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-mqtt-sec-")
        self.port = free_port()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.broker = None

    def tearDown(self):
        super().tearDown()
        if self.broker:
            self.broker.terminate()
            self.broker.wait(timeout=20)

    def start_broker(self, extra):
        # mosquitto started as root reads its files as the 'mosquitto' user.
        os.chmod(self.dir, 0o755)
        for name in os.listdir(self.dir):
            os.chmod(os.path.join(self.dir, name), 0o644)
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\npersistence false\n%s" % (self.port, extra))
        self.broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, what="mosquitto listening")

    def start_daemon(self, mqtt_extra):
        text = CONFIG.format(dir=self.dir, port=self.port, extra="")
        text = text.replace("command_key_file = %s/command.key\n" % self.dir, mqtt_extra)
        self.d.write_config(text)
        self.d.start()

    def test_username_and_password_file(self):
        pw = os.path.join(self.dir, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "portier", "door-secret"], check=True)
        self.start_broker("allow_anonymous false\npassword_file %s\n" % pw)
        with open(os.path.join(self.dir, "mqtt.password"), "w") as f:
            f.write("door-secret\n")
        self.start_daemon("username = portier\npassword_file = %s/mqtt.password\n" % self.dir)
        wait_until(lambda: "mqtt: connected" in self.d.log_text(), what="authenticated connection")

    def test_wrong_password_is_refused_and_doors_still_work(self):
        pw = os.path.join(self.dir, "passwd")
        subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "portier", "door-secret"], check=True)
        self.start_broker("allow_anonymous false\npassword_file %s\n" % pw)
        with open(os.path.join(self.dir, "mqtt.password"), "w") as f:
            f.write("wrong\n")
        self.start_daemon("username = portier\npassword_file = %s/mqtt.password\n" % self.dir)
        wait_until(lambda: "broker refused the connection" in self.d.log_text(),
                   what="refusal logged")
        self.d.seed()
        self.assertTrue(self.d.tap("04A1B2C3")["granted"])
        self.assertTrue(self.d.relay_file("front"))

    def test_tls_with_a_private_ca(self):
        def ossl(*args):
            subprocess.run(["openssl"] + list(args), check=True, cwd=self.dir,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.crt")
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
             "server.key", "-out", "server.csr")
        with open(os.path.join(self.dir, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
        self.start_broker("allow_anonymous true\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
                          "keyfile %s/server.key\n" % (self.dir, self.dir, self.dir))
        self.start_daemon("tls_ca = %s/ca.crt\n" % self.dir)
        wait_until(lambda: "mqtt: connected" in self.d.log_text(), what="TLS connection")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: AGPL-3.0-or-later
"""MQTT against a real mosquitto broker started by the test on 127.0.0.1: events with
sequence numbers, commands, discovery, a broker outage and a kill -9, all with the real
daemon. The broker runs the user accounts and the ACL of docs/mqtt.md section 6, read from
the page itself. Uses Debian's python3-paho-mqtt (run with /usr/bin/python3)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(__file__))
from portier_harness import (Daemon, DaemonTest, build_config, main, make_test_ca,  # noqa: E402
                             wait_until)

SECTIONS = """
[mqtt]
enabled = true
port = {port}
{auth}command_clients = automation
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


def mqtt_config(directory, port, extra="", auth=""):
    """Site lyon with one door, MQTT on the broker at port (auth: the [mqtt] lines of a
    secured broker), and extra sections."""
    return build_config(directory, SECTIONS.format(dir=directory, port=port, extra=extra,
                                                   auth=auth),
                        site="lyon", site_name="Lyon")


EXTRA_MACHINE = """
[reader laser]
driver = sim

[machine laser]
reader = laser
relay = 5
"""

EXTRA_DOOR = """
[reader back]
driver = sim

[door back]
reader = back
relay = 18
"""


DOCS_MQTT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                         "mqtt.md")

# The users of the documented ACL, and one for the tests' own subscriber.
PASSWORDS = {"portier-lyon": "pw-portier", "automation": "pw-automation",
             "homeassistant": "pw-homeassistant", "dashboard": "pw-dashboard",
             "events-receiver": "pw-events", "test-listener": "pw-listener"}
LISTENER_ACL = "\n# the tests' subscriber\nuser test-listener\ntopic read #\n"
# portierd's own user, as docs/mqtt.md section 2 configures it.
AUTH = "username = portier-lyon\npassword_file = {dir}/mqtt.password\n"


def documented_acl():
    """The ACL of docs/mqtt.md section 6, exactly as the page gives it."""
    with open(DOCS_MQTT) as f:
        text = f.read()
    section = text[text.index("## 6. Commands"):text.index("## 7. Home Assistant")]
    blocks, block = [], None
    for line in section.splitlines(keepends=True):
        if line.startswith("```"):
            if block is None:
                block = ""
            else:
                blocks.append(block)
                block = None
        elif block is not None:
            block += line
    blocks = [b for b in blocks if "pattern write" in b]
    assert len(blocks) == 1, "one ACL in docs/mqtt.md section 6"
    return blocks[0]


# The ACL docs/mqtt.md gave before: the pattern on the client id, which every client
# chooses, and portierd's user allowed to write all of portier/lyon/#, cmd topics included.
OLD_ACL = """pattern write portier/+/cmd/%c
user portier-lyon
topic write portier/lyon/#
topic read portier/lyon/cmd/+
topic read homeassistant/status
topic readwrite homeassistant/+/+/config
user automation
topic read portier/#
user dashboard
topic read portier/#
topic deny portier/+/cmd/#
user events-receiver
topic read portier/+/event/#
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    """mosquitto on 127.0.0.1. With an acl (text), it has the users of PASSWORDS, no
    anonymous access and that ACL plus the tests' subscriber; without, anyone may do
    anything."""

    def __init__(self, directory, acl=None):
        self.port = free_port()
        self.conf = os.path.join(directory, "mosquitto.conf")
        self.secured = acl is not None
        conf = "listener %d 127.0.0.1\npersistence false\n" % self.port
        if self.secured:
            passwd = os.path.join(directory, "passwd")
            for i, (user, password) in enumerate(PASSWORDS.items()):
                subprocess.run(["mosquitto_passwd"] + (["-c"] if i == 0 else []) +
                               ["-b", passwd, user, password], check=True, timeout=20)
            acl_file = os.path.join(directory, "acl")
            with open(acl_file, "w") as f:
                f.write(acl + LISTENER_ACL)
            # mosquitto started as root reads its files as the 'mosquitto' user.
            os.chmod(directory, 0o755)
            for name in (passwd, acl_file):
                os.chmod(name, 0o644)
            conf += "allow_anonymous false\npassword_file %s\nacl_file %s\n" % (passwd, acl_file)
        else:
            conf += "allow_anonymous true\n"
        with open(self.conf, "w") as f:
            f.write(conf)
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

    def __init__(self, port, topics, user="test-listener"):
        self.messages = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id="test-listener-%d" % os.getpid(), clean_session=True)
        if user:
            self.client.username_pw_set(user, PASSWORDS[user])
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


def publish(port, topic, payload, retain=False, user="automation", client_id=None):
    """mosquitto_pub as user (None: anonymous), QoS 1: returns once the broker has it (or
    has refused it)."""
    args = ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-m", payload]
    if user:
        args += ["-u", user, "-P", PASSWORDS[user]]
    if client_id:
        args += ["-i", client_id]
    subprocess.run(args + (["-r"] if retain else []), check=True, timeout=20)


class MqttBase(DaemonTest):
    """The broker as docs/mqtt.md sets it up (users, no anonymous access, its ACL) unless
    broker_acl() says otherwise, portierd connected to it as the user portier-lyon."""
    extra = ""

    def broker_acl(self):
        return documented_acl()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-mqtt-")
        self.broker = Broker(self.dir, self.broker_acl())
        self.broker.start()
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        with open(os.path.join(self.dir, "command.key"), "w") as f:
            f.write("s3cret-key\n")
        with open(os.path.join(self.dir, "mqtt.password"), "w") as f:
            f.write(PASSWORDS["portier-lyon"] + "\n")
        self.write(self.extra)
        self.listener = Listener(self.broker.port, ["portier/#", "homeassistant/#"],
                                 user="test-listener" if self.broker.secured else None)
        self.d.start()
        self.d.seed()

    def tearDown(self):
        # Every subclass: a broker left running outlives the test run.
        self.listener.close()
        super().tearDown()
        self.broker.stop()

    def write(self, extra):
        auth = AUTH.format(dir=self.dir) if self.broker.secured else ""
        self.d.write_config(mqtt_config(self.dir, self.broker.port, extra, auth))

    def acl_checked(self, verdict="commands by user name are accepted"):
        """Wait for portierd's check of the broker's ACL at its latest connection."""
        def done():
            log = self.d.log_text()
            last = log.rfind("mqtt: connected to")
            return last >= 0 and verdict in log[last:]
        wait_until(done, what="ACL check: " + verdict)

    def results(self):
        return self.listener.events("command")


class MqttTest(MqttBase):
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
        # The documented ACL lets portierd write every topic it uses.
        wait_until(lambda: self.listener.topic("portier/lyon/door/front/state"), what="door state")
        self.assertNotIn("the broker refused a message", self.d.log_text())

    def test_reloads_keep_the_site_in_every_event(self):
        """Found by tools/torture: after a SIGHUP the MQTT client went on reading the freed
        configuration, and events went out with whatever had reused its memory as their
        site (once a piece of a status answer). MALLOC_PERTURB_ has glibc overwrite freed
        memory at once, so a stale read shows in the first event."""
        self.d.stop()
        self.d.start(env_extra={"MALLOC_PERTURB_": "165"})
        wait_until(lambda: self.d.status()["mqtt"]["connected"], what="connected")
        for _ in range(3):
            self.d.kill(signal.SIGHUP)
            self.d.wait_notify("READY=1")
        for uid in ("04A1B2C3", "04DEADBE", "04B0B0B0"):
            self.d.tap(uid)
        wait_until(lambda: len(self.taps()) == 3, what="3 tap events")
        self.d.ok({"cmd": "door.lock", "door": "front"})
        wait_until(lambda: any(e.get("change") == "locked" for e in self.listener.events("door")),
                   what="the door's lock event")
        events = self.listener.events()
        self.assertEqual([e for e in events if e.get("site") != "lyon"], [])
        self.assertIsNone(self.d.proc.poll())

    def test_command_unlocks_a_door(self):
        self.acl_checked()
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","seconds":600}')
        wait_until(lambda: self.d.relay_file("front"), what="door unlocked by MQTT")
        wait_until(lambda: self.results(), what="command result")
        result = self.results()[0]
        self.assertEqual((result["accepted"], result["client"], result["action"]),
                         (True, "automation", "door.unlock"))
        # With the shared key, a user that is not in command_clients may command too.
        publish(self.broker.port, "portier/lyon/cmd/events-receiver",
                '{"action":"door.lock","door":"front","key":"s3cret-key"}', user="events-receiver")
        wait_until(lambda: not self.d.relay_file("front"), what="door locked by MQTT")

    def test_documented_acl_refuses_a_read_only_user_posing_as_automation(self):
        """The bug: with the ACL docs/mqtt.md gave (a pattern on %c, the client id), the
        read-only user dashboard, connecting with the client id 'automation', unlocked the
        front door for 600 s. With the documented ACL the broker drops it; the real
        automation user's command still works."""
        self.acl_checked()
        for user in ("dashboard", "events-receiver"):
            publish(self.broker.port, "portier/lyon/cmd/automation",
                    '{"action":"door.unlock","door":"front","seconds":600}', user=user,
                    client_id="automation")
        # The dashboard may not even write its own cmd topic (deny); events-receiver may,
        # but is not in command_clients.
        publish(self.broker.port, "portier/lyon/cmd/dashboard",
                '{"action":"door.unlock","door":"front","seconds":600}', user="dashboard")
        publish(self.broker.port, "portier/lyon/cmd/events-receiver",
                '{"action":"door.unlock","door":"front","seconds":600}', user="events-receiver")
        # Messages of one topic arrive in order: once this result is in, every earlier one
        # on cmd/automation that the broker passed on has been handled.
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"cellar"}')
        wait_until(lambda: any(r["reason"] == "no door 'cellar'" for r in self.results()),
                   what="the marker command's result")
        self.assertFalse(self.d.relay_file("front"), "nobody but automation may unlock")
        self.assertEqual([(r["client"], r["accepted"], r["reason"]) for r in self.results()],
                         [("events-receiver", False,
                           "client 'events-receiver' is not allowed to send commands"),
                          ("automation", False, "no door 'cellar'")])
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","seconds":600}')
        wait_until(lambda: self.d.relay_file("front"), what="the automation user unlocks")
        wait_until(lambda: len(self.results()) == 3, what="its result")
        self.assertEqual(self.results()[-1]["accepted"], True)
        db = self.d.db()
        details = [r[0] for r in db.execute(
            "SELECT detail FROM access_events WHERE kind = 'unlock' ORDER BY id")]
        db.close()
        self.assertEqual(details, ["600 s by mqtt:automation"])

    def test_unauthorised_and_malformed_commands_are_refused_and_reported(self):
        self.acl_checked()
        not_an_object = "malformed command: not a JSON object"
        bad = [
            ("events-receiver", '{"action":"door.unlock","door":"front"}', "not allowed"),
            ("events-receiver", '{"action":"door.unlock","door":"front","key":"wrong"}',
             "not allowed"),
            ("automation", "not json", "malformed command: not JSON"),
            # JSON, but not an object: so says the reason, as docs/mqtt.md promises.
            ("automation", "42", not_an_object),
            ("automation", "true", not_an_object),
            ("automation", "null", not_an_object),
            ("automation", '"x"', not_an_object),
            ("automation", "[1]", not_an_object),
            ("automation", '{"action":"door.unlock","door":"front","extra":1}', "no argument \"extra\""),
            ("automation", '{"action":"door.unlock","door":"nowhere"}', "no door"),
            ("automation", '{"action":"launch.rocket"}', "unknown action"),
            ("automation", '{"action":"door.unlock","door":"front","seconds":"ten"}', "whole number"),
            ("automation", "x" * 5000, "1 to 4096 bytes"),
        ]
        for client, payload, _ in bad:
            publish(self.broker.port, "portier/lyon/cmd/" + client, payload, user=client)
        wait_until(lambda: len(self.results()) == len(bad), what="all results")
        results = sorted(self.results(), key=lambda r: r["seq"])
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

    def test_a_returning_broker_gets_the_events_within_seconds(self):
        """After a 16 s outage the reconnection back-off (then up to 30 s) had grown to
        16 s: events waited up to 15 s after the broker was back. Now portierd retries
        every 2 s; the poll below allows 8 s."""
        self.d.tap("04A1B2C3")
        wait_until(lambda: self.d.status()["mqtt"]["outbox"] == 0, what="first event delivered")
        self.listener.close()
        self.broker.stop()
        wait_until(lambda: not self.d.status()["mqtt"]["connected"], what="disconnection seen")
        self.d.tap("04A1B2C3")
        time.sleep(16)          # the outage: portierd keeps trying meanwhile
        self.assertGreater(self.d.status()["mqtt"]["outbox"], 0)
        self.broker.start()
        wait_until(lambda: self.d.status()["mqtt"]["connected"] and
                   self.d.status()["mqtt"]["outbox"] == 0, timeout=8,
                   what="events delivered within 8 s of the broker's return")
        self.acl_checked()      # again, at the new connection
        self.listener = Listener(self.broker.port, ["portier/lyon/#"])

    def test_kill9_mid_burst_loses_and_duplicates_nothing(self):
        stored = self.d.kill9_mid_burst(lambda: len(self.taps()) >= 50)
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
        # The entity id: default_entity_id (Home Assistant 2025.10 on), object_id before.
        self.assertEqual(lock["default_entity_id"], "lock.portier_lyon_door_front")
        self.assertEqual(lock["object_id"], "portier_lyon_door_front")
        self.assertIs(lock["optimistic"], False, "a JSON boolean, not the string 'false'")
        self.assertIn("homeassistant/binary_sensor/portier_lyon_door_front_contact/config", c)
        self.assertIn("homeassistant/sensor/portier_lyon_occupancy/config", c)
        before = len(self.listener.messages)
        publish(self.broker.port, "homeassistant/status", "online", user="homeassistant")
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


def documented_event_kinds():
    """The KINDs docs/mqtt.md section 3 lists, and the access-log kinds of section 4."""
    with open(DOCS_MQTT) as f:
        text = f.read()
    listed = re.search(r"KIND is one of (.*?); all", text, re.S).group(1)
    access = re.search(r"Kinds (`tap`.*?) are\s+entries\s+of\s+the\s+access\s+log", text,
                       re.S).group(1)
    return set(re.findall(r"`(\w+)`", listed)), set(re.findall(r"`(\w+)`", access))


class MqttMachineTest(MqttBase):
    extra = EXTRA_MACHINE

    def test_machine_discovery(self):
        topic = "homeassistant/switch/portier_lyon_machine_laser/config"
        wait_until(lambda: self.listener.topic(topic), what="the laser's switch")
        switch = json.loads(self.listener.topic(topic)[-1][0])
        self.assertEqual(switch["default_entity_id"], "switch.portier_lyon_machine_laser")
        self.assertEqual(switch["object_id"], "portier_lyon_machine_laser")
        self.assertIs(switch["optimistic"], False)
        power = json.loads(wait_until(lambda: self.listener.topic(
            "homeassistant/binary_sensor/portier_lyon_machine_laser_power/config"))[-1][0])
        self.assertEqual(power["default_entity_id"],
                         "binary_sensor.portier_lyon_machine_laser_power")
        wait_until(lambda: self.listener.topic("portier/lyon/machine/laser/state"),
                   what="machine state")
        self.assertNotIn("the broker refused a message", self.d.log_text())

    def test_every_event_kind_is_documented(self):
        """machine.out_of_order published event/out_of_order and event/in_order, which
        docs/mqtt.md did not list."""
        self.acl_checked()
        self.d.tap("04A1B2C3")
        self.d.tap("04A1B2C3", reader="laser")
        for on in ("true", "false"):
            publish(self.broker.port, "portier/lyon/cmd/automation",
                    '{"action":"machine.out_of_order","machine":"laser","on":%s,'
                    '"reason":"lens cracked"}' % on)
        wait_until(lambda: len(self.results()) == 2, what="two command results")
        self.assertEqual([r["accepted"] for r in self.results()], [True, True])
        wait_until(lambda: self.listener.events("in_order"), what="the in_order event")
        off, back = self.listener.events("out_of_order"), self.listener.events("in_order")
        self.assertEqual((off[0]["resource"], off[0]["granted"], off[0]["reason"],
                          off[0]["detail"]),
                         ("laser", True, "manager", "by mqtt:automation: lens cracked"))
        self.assertEqual((back[0]["resource"], back[0]["reason"]), ("laser", "manager"))
        listed, access = documented_event_kinds()
        seen = {t.rsplit("/", 1)[1] for t, p, r in self.listener.messages if "/event/" in t}
        self.assertLessEqual({"tap", "machine", "machine_off", "out_of_order", "in_order"},
                             seen)
        self.assertLessEqual(seen, listed, "kinds published but not in section 3")
        self.assertLessEqual(seen - {"door", "command"}, access,
                             "access-log kinds not in section 4")


class OldAclTest(MqttBase):
    """A broker that does not tie cmd topics to users: the ACL docs/mqtt.md gave before.
    portierd finds out at connection and takes commands only with the key."""

    def broker_acl(self):
        return OLD_ACL

    def test_commands_by_name_are_refused_and_the_key_still_works(self):
        self.acl_checked("its ACL does not keep other users off the cmd topics")
        self.assertIn("the broker let portierd publish on portier/lyon/cmd/automation",
                      self.d.log_text())
        # The attack of the bug report: a read-only user with the client id 'automation'.
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","seconds":600}',
                user="events-receiver", client_id="automation")
        wait_until(lambda: self.results(), what="a result")
        self.assertEqual([(r["client"], r["accepted"], r["reason"]) for r in self.results()],
                         [("automation", False, "the broker's ACL does not tie cmd/automation "
                           "to its user: only commands with the key are accepted")])
        self.assertFalse(self.d.relay_file("front"))
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front","key":"s3cret-key"}',
                client_id="automation")
        wait_until(lambda: self.d.relay_file("front"), what="unlocked with the key")
        wait_until(lambda: len(self.results()) == 2, what="its result")
        # portierd's probe, which this broker passed on to it, is not a command.
        self.assertEqual([r["accepted"] for r in self.results()], [False, True])


class AnonymousBrokerTest(MqttBase):
    """A broker without users or ACL: anyone may write any cmd topic."""

    def broker_acl(self):
        return None

    def test_commands_by_name_are_refused(self):
        self.acl_checked("its ACL does not keep other users off the cmd topics")
        publish(self.broker.port, "portier/lyon/cmd/automation",
                '{"action":"door.unlock","door":"front"}', user=None)
        wait_until(lambda: self.results(), what="a result")
        self.assertIn("does not tie cmd/automation to its user", self.results()[0]["reason"])
        self.assertFalse(self.d.relay_file("front"))


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
        text = mqtt_config(self.dir, self.port)
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
        make_test_ca(self.dir)
        self.start_broker("allow_anonymous true\ncafile %s/ca.crt\ncertfile %s/server.crt\n"
                          "keyfile %s/server.key\n" % (self.dir, self.dir, self.dir))
        self.start_daemon("tls_ca = %s/ca.crt\n" % self.dir)
        wait_until(lambda: "mqtt: connected" in self.d.log_text(), what="TLS connection")


if __name__ == "__main__":
    main()

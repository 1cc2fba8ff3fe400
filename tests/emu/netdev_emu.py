#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Emulated network relays and power meters for tests: a Shelly Gen2+ device (MQTT RPC) and
a Tasmota device, each its own MQTT client on a real broker, speaking the topics and
payloads of their public documentation (docs/machines.md, network relays):

  Shelly  ID/rpc (requests: Switch.Set, Switch.GetStatus; answers on SRC/rpc),
          ID/events/rpc (NotifyStatus with output, apower, aenergy.total in Wh),
          ID/status/switch:N (the switch's whole status), ID/online ("true"/"false", will)
  Tasmota cmnd/T/POWERn ("ON", "OFF", "TOGGLE", "" asks), cmnd/T/STATUS ("10"),
          stat/T/RESULT, stat/T/POWERn, stat/T/STATUS10, tele/T/SENSOR (ENERGY: Total in
          kWh, Power in W), tele/T/STATE, tele/T/LWT ("Online"/"Offline", will)

Tests drive them in-process: set_power(), add_energy(), press_button(), reboot() (the
output drops, the energy counter restarts from zero), go_offline() (the connection drops
without a goodbye, so the broker publishes the will) and come_back(), ignore_commands (a
device that takes commands and never acts on them). Uses Debian's python3-paho-mqtt.

Run alone for a desk demo:
  tests/emu/netdev_emu.py --port 1883 --shelly shellyplus1pm-a8032ab12345 --tasmota kiln
"""

import argparse
import json
import socket
import threading
import time

import paho.mqtt.client as mqtt


class Device:
    """What both kinds share: the MQTT client, its will, the output and the readings."""

    def __init__(self, port, host="127.0.0.1"):
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.output = False
        self.power_w = 0.0
        self.energy_wh = 0.0            # the device's own counter
        self.ignore_commands = False
        self.commands = []              # what it was asked, for the tests
        self.client = None
        self.online = False

    # -- connection --
    def will(self):
        raise NotImplementedError

    def subscriptions(self):
        raise NotImplementedError

    def announce(self):
        raise NotImplementedError

    def start(self, timeout=20):
        connected = threading.Event()
        self.client = mqtt.Client(client_id="%s-emu-%d" % (self.name, id(self)), clean_session=True)
        topic, payload = self.will()
        self.client.will_set(topic, payload, qos=1, retain=True)

        def on_connect(c, u, f, rc):
            c.subscribe([(t, 1) for t in self.subscriptions()])

        def on_subscribe(c, u, mid, q):
            with self.lock:
                self.online = True
                self.announce()
            connected.set()
        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(self.host, self.port, 30)
        # Like the devices' own small stacks, no Nagle delay on a few bytes at a time.
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        if not connected.wait(timeout):
            raise RuntimeError("emulated device %s never connected" % self.name)
        return self

    def go_offline(self):
        """The Wi-Fi drops: no DISCONNECT, so the broker publishes the will."""
        with self.lock:
            self.online = False
            sock = self.client.socket()
            self.client.loop_stop()
            if sock:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.client = None

    def come_back(self):
        return self.start()

    def stop(self):
        if self.client:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None

    def publish(self, topic, payload, retain=False):
        if self.client and self.online:
            if not isinstance(payload, (str, bytes)):
                payload = json.dumps(payload, separators=(",", ":"))
            self.client.publish(topic, payload, qos=1, retain=retain)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.commands.append((msg.topic, msg.payload))
            if self.ignore_commands:
                return
            self.on_command(msg.topic, msg.payload)

    # -- the physical side --
    def set_power(self, watts):
        with self.lock:
            self.power_w = float(watts)
            self.report_readings()

    def add_energy(self, wh, report=True):
        with self.lock:
            self.energy_wh += wh
            if report:
                self.report_readings()

    def press_button(self, on):
        """Someone switches the device by hand."""
        with self.lock:
            self.output = bool(on)
            self.report_state()

    def reboot(self):
        """A power cut at the plug: the output comes back off, the counter from zero."""
        self.go_offline()
        with self.lock:
            self.output = False
            self.power_w = 0.0
            self.energy_wh = 0.0
        time.sleep(0.2)
        return self.come_back()


class Shelly(Device):
    def __init__(self, port, topic="shellyplus1pm-a8032ab12345", switch=0, device_id=None, **kw):
        super().__init__(port, **kw)
        self.name = topic.replace("/", "_")
        self.topic = topic
        self.device_id = device_id or topic     # the device id is the default topic prefix
        self.switch = switch

    def will(self):
        return "%s/online" % self.topic, "false"

    def subscriptions(self):
        return ["%s/rpc" % self.topic]

    def status(self):
        return {"id": self.switch, "source": "MQTT", "output": self.output,
                "apower": round(self.power_w, 1), "voltage": 230.1,
                "current": round(self.power_w / 230.1, 3),
                "aenergy": {"total": round(self.energy_wh, 3), "by_minute": [0.0, 0.0, 0.0],
                            "minute_ts": int(time.time())},
                "temperature": {"tC": 41.2, "tF": 106.2}}

    def announce(self):
        self.publish("%s/online" % self.topic, "true", retain=True)
        self.report_state()

    def notify(self, params):
        self.publish("%s/events/rpc" % self.topic,
                     {"src": self.device_id, "dst": "%s/events" % self.topic,
                      "method": "NotifyStatus",
                      "params": dict({"ts": round(time.time(), 2)},
                                     **{"switch:%d" % self.switch: params})})

    def report_state(self):
        self.notify({"id": self.switch, "output": self.output, "source": "MQTT"})
        self.publish("%s/status/switch:%d" % (self.topic, self.switch), self.status())

    def report_readings(self):
        self.notify({"id": self.switch, "apower": round(self.power_w, 1),
                     "aenergy": {"total": round(self.energy_wh, 3)}})

    def on_command(self, topic, payload):
        try:
            req = json.loads(payload)
            rid, src, method = req["id"], req["src"], req["method"]
            params = req.get("params") or {}
        except (ValueError, KeyError, TypeError):
            return
        reply = {"id": rid, "src": self.device_id, "dst": src}
        if params.get("id", 0) != self.switch:
            reply["error"] = {"code": -105, "message": "Argument 'id', value %r not found!" %
                              params.get("id")}
        elif method == "Switch.Set" and isinstance(params.get("on"), bool):
            reply["result"] = {"was_on": self.output}
            changed = self.output != params["on"]
            self.output = params["on"]
            self.publish("%s/rpc" % src, reply)
            if changed:
                self.report_state()
            return
        elif method == "Switch.GetStatus":
            reply["result"] = self.status()
        else:
            reply["error"] = {"code": 404, "message": "No handler for %s" % method}
        self.publish("%s/rpc" % src, reply)


class Tasmota(Device):
    def __init__(self, port, topic="tasmota_kiln", relay=1, **kw):
        super().__init__(port, **kw)
        self.name = topic
        self.topic = topic
        self.relay = relay

    def will(self):
        return "tele/%s/LWT" % self.topic, "Offline"

    def subscriptions(self):
        subs = ["cmnd/%s/POWER%d" % (self.topic, self.relay), "cmnd/%s/STATUS" % self.topic]
        if self.relay == 1:
            subs.append("cmnd/%s/POWER" % self.topic)
        return subs

    def onoff(self):
        return "ON" if self.output else "OFF"

    def announce(self):
        self.publish("tele/%s/LWT" % self.topic, "Online", retain=True)
        self.publish("tele/%s/STATE" % self.topic,
                     {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"), "Uptime": "0T00:00:05",
                      "POWER%d" % self.relay: self.onoff()})

    def energy(self):
        return {"TotalStartTime": "2026-01-01T00:00:00", "Total": round(self.energy_wh / 1000.0, 3),
                "Yesterday": 0.0, "Today": round(self.energy_wh / 1000.0, 3), "Period": 0,
                "Power": int(round(self.power_w)), "ApparentPower": int(round(self.power_w)),
                "ReactivePower": 0, "Factor": 1.0, "Voltage": 230,
                "Current": round(self.power_w / 230.0, 3)}

    def report_state(self):
        self.publish("stat/%s/RESULT" % self.topic, {"POWER%d" % self.relay: self.onoff()})
        self.publish("stat/%s/POWER%d" % (self.topic, self.relay), self.onoff())

    def report_readings(self):
        self.publish("tele/%s/SENSOR" % self.topic,
                     {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"), "ENERGY": self.energy()})

    def on_command(self, topic, payload):
        text = payload.decode(errors="replace").strip()
        if topic.endswith("/STATUS"):
            if text in ("10", "8"):
                self.publish("stat/%s/STATUS%s" % (self.topic, text),
                             {"StatusSNS": {"Time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                            "ENERGY": self.energy()}})
            return
        word = text.upper()
        if word in ("ON", "1"):
            self.output = True
        elif word in ("OFF", "0"):
            self.output = False
        elif word in ("TOGGLE", "2"):
            self.output = not self.output
        elif word != "":
            return
        self.report_state()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--shelly", action="append", default=[], metavar="TOPIC")
    ap.add_argument("--tasmota", action="append", default=[], metavar="TOPIC")
    ap.add_argument("--watts", type=float, default=0.0, help="power while the output is on")
    args = ap.parse_args()
    devices = [Shelly(args.port, t, host=args.host).start() for t in args.shelly]
    devices += [Tasmota(args.port, t, host=args.host).start() for t in args.tasmota]
    print("emulating %s on %s:%d (Ctrl-C stops)" % (", ".join(d.name for d in devices),
                                                    args.host, args.port))
    try:
        while True:
            time.sleep(5)
            for d in devices:
                with d.lock:
                    d.power_w = args.watts if d.output else 0.0
                    d.energy_wh += d.power_w * 5 / 3600.0
                    d.report_readings()
    except KeyboardInterrupt:
        for d in devices:
            d.stop()


if __name__ == "__main__":
    main()

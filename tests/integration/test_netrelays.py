# SPDX-License-Identifier: AGPL-3.0-or-later
"""Machines on network relays and meters: the real portierd, a real mosquitto, and emulated
Shelly and Tasmota devices (tests/emu/netdev_emu.py) on it. Switching confirmed by the
device, a command the device ignores (a fault, an alarm), a device going offline in a
session and coming back (reconciled), running and idle from power readings, energy on
the statement and in the signed ledger, a counter that resets. Run with /usr/bin/python3."""

import json
import os
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "emu"))
from netdev_emu import Shelly, Tasmota  # noqa: E402
from portier_harness import Daemon, DaemonTest, main, wait_until  # noqa: E402
from test_mqtt import Broker, Listener  # noqa: E402

SHELLY = "shellyplus1pm-a8032ab12345"
TASMOTA = "tasmota_kiln"

CONFIG = """
[site]
id = lyon
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

[reader laser]
driver = sim

[reader kiln]
driver = sim

[reader saw]
driver = sim

[machine laser]
reader = laser
power = shelly:{shelly}
power_confirm_ms = 1000
running_power_w = 50
running_power_seconds = 1
idle_off_minutes = 2
handover_seconds = 0

[machine kiln]
reader = kiln
power = tasmota:{tasmota}
power_confirm_ms = 1000
handover_seconds = 0

[machine saw]
reader = saw
relay = 5
handover_seconds = 0
"""

ALICE = "04A1B2C3"


class NetRelayBase(DaemonTest):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-netrelay-")
        self.broker = Broker(self.dir)
        self.broker.start()
        self.shelly = Shelly(self.broker.port, SHELLY).start()
        self.tasmota = Tasmota(self.broker.port, TASMOTA).start()
        self.listener = Listener(self.broker.port, ["portier/#"], user=None)
        self.d = Daemon(config_text="placeholder", directory=self.dir)
        self.d.write_config(CONFIG.format(dir=self.dir, port=self.broker.port, shelly=SHELLY,
                                          tasmota=TASMOTA))
        self.d.start()
        self.d.seed()       # Alice (plan open) with card ALICE
        for m in ("laser", "kiln", "saw"):
            self.d.ok({"cmd": "machine.set", "machine": m, "hours": "always",
                       "booking_required": False, "walkup_free_minutes": 0})
        # Both devices were asked for "off" at start and confirmed it.
        wait_until(lambda: self.power("laser")["relay"] == "confirmed" and
                   self.power("kiln")["relay"] == "confirmed", what="devices confirm off")

    def tearDown(self):
        super().tearDown()
        for dev in (self.shelly, self.tasmota):
            try:
                dev.stop()
            except Exception:
                pass
        self.listener.close()
        self.broker.stop()

    # -- helpers --
    def machine(self, name):
        return next(m for m in self.d.status()["machines"] if m["name"] == name)

    def power(self, name):
        return self.machine(name)["power"]

    def tap(self, machine, uid=ALICE):
        return self.d.ok({"cmd": "sim.tap", "reader": machine, "uid": uid})

    def sessions(self):
        return self.d.ok({"cmd": "machine.sessions"})["sessions"]

    def db_rows(self, sql, *args):
        con = sqlite3.connect(os.path.join(self.dir, "state", "portier.db"))
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def access(self, kind):
        return [e for e in self.d.events(limit=200) if e["kind"] == kind]


class NetRelayTest(NetRelayBase):
    def test_shelly_switch_on_and_off_confirmed_by_the_device(self):
        reply = self.tap("laser")
        self.assertEqual((reply["granted"], reply["outcome"]), (True, "on"))
        wait_until(lambda: self.shelly.output, what="the Shelly switched on")
        wait_until(lambda: self.power("laser")["relay"] == "confirmed" and
                   self.machine("laser")["relay_energised"], what="confirmation")
        self.assertIsNone(self.machine("laser")["alarm"])
        # The request was a Switch.Set RPC answered on portierd's own reply topic.
        sets = [json.loads(p) for t, p in self.shelly.commands if t == SHELLY + "/rpc"]
        on = [r for r in sets if r["method"] == "Switch.Set" and r["params"]["on"]]
        self.assertTrue(on)
        self.assertEqual(on[-1]["src"], "portier/lyon/shelly")
        self.assertEqual(self.tap("laser")["outcome"], "finished")
        wait_until(lambda: not self.shelly.output, what="the Shelly switched off")
        wait_until(lambda: self.power("laser")["relay"] == "confirmed" and
                   not self.machine("laser")["relay_energised"], what="off confirmed")
        self.assertEqual(self.sessions()[-1]["end_reason"], "finished")

    def test_tasmota_switch_on_and_off_confirmed_by_the_device(self):
        self.assertEqual(self.tap("kiln")["outcome"], "on")
        wait_until(lambda: self.tasmota.output, what="the Tasmota switched on")
        wait_until(lambda: self.machine("kiln")["relay_energised"], what="confirmation")
        self.assertIn(("cmnd/%s/POWER1" % TASMOTA, b"ON"), self.tasmota.commands)
        self.tap("kiln")
        wait_until(lambda: not self.tasmota.output and
                   not self.machine("kiln")["relay_energised"], what="off confirmed")

    def test_unconfirmed_command_is_a_relay_fault_and_an_alarm(self):
        self.shelly.ignore_commands = True
        self.assertEqual(self.tap("laser")["outcome"], "on")
        wait_until(lambda: self.machine("laser")["alarm"] == "relay_fault", what="the alarm")
        m = self.machine("laser")
        self.assertEqual(m["state"], "on")                 # the session goes on, marked
        self.assertEqual(m["power"]["relay"], "fault")
        self.assertFalse(m["relay_energised"])
        self.assertFalse(self.shelly.output)
        alarms = self.access("machine_alarm")
        self.assertEqual((alarms[-1]["granted"], alarms[-1]["reason"]), (False, "relay_fault"))
        self.assertIn("ALARM", self.d.log_text())
        _, out, _ = self.d.ctl("status")
        line = next(l for l in out.splitlines() if l.startswith("laser "))
        self.assertIn("off/fault", line)
        self.assertIn("ALARM relay_fault", line)
        # Published as an event.
        wait_until(lambda: any(e.get("reason") == "relay_fault"
                               for e in self.listener.events("machine_alarm")),
                   what="the alarm on MQTT")
        session = self.db_rows("SELECT alarm, ended_at FROM machine_sessions")[-1]
        self.assertEqual(session, ("relay_fault", 0))
        wait_until(lambda: json.loads(self.listener.topic("portier/lyon/machine/laser/state")[-1][0])
                   ["alarm"] == "relay_fault", what="the alarm in the machine's MQTT state")
        # The device answers again: asked again, it switches on, the alarm clears.
        self.shelly.ignore_commands = False
        wait_until(lambda: self.shelly.output, timeout=20, what="asked again")
        wait_until(lambda: self.machine("laser")["alarm"] is None, what="the alarm clears")
        self.assertEqual(self.access("machine_alarm")[-1]["reason"], "cleared")

    def test_device_offline_mid_session_alarm_then_reconciled(self):
        self.tap("laser")
        wait_until(lambda: self.machine("laser")["relay_energised"], what="on")
        self.shelly.go_offline()
        wait_until(lambda: self.machine("laser")["alarm"] == "device_offline", what="the alarm")
        m = self.machine("laser")
        self.assertEqual(m["state"], "on")
        self.assertEqual(m["power"]["relay"], "offline")
        self.assertEqual(self.db_rows("SELECT alarm, ended_at FROM machine_sessions")[-1],
                         ("device_offline", 0))
        # It comes back after a reboot, its output off: the session wants it on.
        with self.shelly.lock:
            self.shelly.output = False
        self.shelly.come_back()
        wait_until(lambda: self.shelly.output, what="reconciled to on")
        wait_until(lambda: self.machine("laser")["alarm"] is None, what="the alarm clears")
        self.assertEqual(self.machine("laser")["state"], "on")
        self.tap("laser")
        wait_until(lambda: not self.shelly.output, what="off")
        self.assertEqual(self.sessions()[-1]["end_reason"], "finished")

    def test_button_on_the_device_cannot_bypass_the_interlock(self):
        self.shelly.press_button(True)
        wait_until(lambda: not self.shelly.output, what="switched off again")
        self.assertTrue(self.access("machine_relay"))

    def test_idle_auto_off_from_power_readings(self):
        self.tap("laser")
        wait_until(lambda: self.machine("laser")["relay_energised"], what="on")
        self.shelly.set_power(300)
        wait_until(lambda: self.machine("laser")["running"], what="running from power")
        self.shelly.set_power(2)
        wait_until(lambda: self.machine("laser")["running"] is False, what="idle from power")
        self.d.ok({"cmd": "sim.advance", "seconds": 3 * 60})
        wait_until(lambda: self.machine("laser")["state"] == "off", what="idle auto-off")
        self.assertEqual(self.sessions()[-1]["end_reason"], "idle")
        wait_until(lambda: not self.shelly.output, what="the device off")

    def test_energy_billed_on_statement_and_in_the_ledger_through_a_counter_reset(self):
        self.d.ok({"cmd": "rate.set", "plan": "open", "target": "laser", "per_hour_cents": 0,
                   "per_kwh_cents": 30, "monthly_wh": 100})
        # The daemon's first reading of the counter is its baseline (energy_total_wh null
        # until then): wait for it, or the 1000 Wh below could be that baseline.
        wait_until(lambda: self.power("laser")["energy_total_wh"] == 0, what="a baseline")
        self.shelly.add_energy(1000)                # before the session: not counted
        wait_until(lambda: self.power("laser")["energy_total_wh"] == 1000, what="a reading")
        self.tap("laser")
        wait_until(lambda: self.machine("laser")["relay_energised"], what="on")
        self.shelly.add_energy(500)
        wait_until(lambda: self.power("laser")["session_energy_wh"] == 500, what="500 Wh")
        self.shelly.reboot()                        # counter back to 0, output off
        wait_until(lambda: self.shelly.output, what="reconciled to on after the reboot")
        self.shelly.add_energy(300)
        wait_until(lambda: self.power("laser")["session_energy_wh"] == 800, what="800 Wh")
        self.assertEqual(self.power("laser")["counter_resets"], 1)
        self.tap("laser")
        wait_until(lambda: self.machine("laser")["state"] == "off", what="off")
        session = self.sessions()[-1]
        self.assertEqual(session["energy_wh"], 800)
        # 800 Wh, 100 included: 700 Wh at 30 cents per kWh = 21 cents.
        period = time.strftime("%Y-%m")
        st = self.d.ok({"cmd": "statement", "period": period})["statement"]
        line = [l for m in st["members"] for l in m["lines"] if l["resource"] == "laser"][-1]
        self.assertEqual((line["energy_wh"], line["plan_wh"], line["energy_cents"],
                          line["amount_cents"]), (800, 100, 21, 21))
        self.assertEqual(st["totals"]["energy_wh"], 800)
        entry = self.db_rows("SELECT energy_wh, amount_cents FROM ledger WHERE kind = 'machine'")
        self.assertEqual(entry[-1], (800, 21))
        self.assertTrue(self.d.ok({"cmd": "ledger.verify"})["intact"])
        # The CSV statements say it too.
        _, out, _ = self.d.ctl("statement", "--period", period, "--format", "csv")
        self.assertIn("energy_wh", out.splitlines()[0])
        self.assertIn("800", out)

    def test_unmetered_gpio_machine_has_no_energy(self):
        self.tap("saw")
        self.tap("saw")
        self.assertNotIn("energy_wh", [k for k, v in self.sessions()[-1].items() if v is not None])


class CheckTest(DaemonTest):
    def setUp(self):
        self.d = Daemon(config_text="placeholder")

    def test_network_relay_without_mqtt_is_refused_by_check(self):
        text = CONFIG.format(dir=self.d.dir, port=1883, shelly=SHELLY, tasmota=TASMOTA)
        text = text.replace("[mqtt]\nenabled = true\n", "[mqtt]\nenabled = false\n")
        self.d.write_config(text)
        import subprocess
        r = subprocess.run([os.path.join(os.environ["PORTIER_BIN"], "portierd"), "-n", "-c",
                            self.d.config_path], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("machine 'laser' uses a network relay: it needs [mqtt] enabled", r.stderr)


if __name__ == "__main__":
    main()

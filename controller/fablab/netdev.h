/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* netdev: machines' network relays and power meters — Shelly (Gen2+, MQTT RPC) and Tasmota
 * devices on the daemon's own MQTT connection.
 *
 * One hub per daemon holds every device the configuration names (a machine's `power`, a
 * `[meter NAME]`); a device used twice is one struct netdev. The hub rides the MQTT client
 * through mqtt_attach(): it subscribes to its devices' topics at each connection, reads
 * their state, power and energy, and sends switch commands. Nothing waits: a command is
 * published (or queued until the broker is reached) and the device's own report confirms
 * it, within the deadline the owner set, or the relay is told it is overdue (relay.h's
 * asynchronous back-end: relay_ops_netdev).
 *
 * Protocols (docs/machines.md, network relays):
 *   Shelly  — commands: RPC "Switch.Set" / "Switch.GetStatus" on TOPIC/rpc, answered on
 *             CLIENT/rpc (CLIENT = PREFIX/SITE/shelly); state, power (apower, W) and energy
 *             (aenergy.total, Wh) from NotifyStatus/NotifyFullStatus on TOPIC/events/rpc and
 *             from TOPIC/status/switch:N; presence from TOPIC/online ("true"/"false").
 *   Tasmota — commands: cmnd/TOPIC/POWERn ("ON", "OFF", "" asks); state from stat/TOPIC/POWERn,
 *             stat/TOPIC/RESULT and tele/TOPIC/STATE; power (W) and energy (Total, kWh) from
 *             tele/TOPIC/SENSOR and stat/TOPIC/STATUS10 (or STATUS8) ENERGY; presence from
 *             tele/TOPIC/LWT ("Online"/"Offline").
 *
 * Energy: each device's cumulative counter is turned into the hub's own running total (in
 * milliwatt-hours) by adding the increase between readings; a counter that goes down (a
 * reboot, a reset) starts again from zero, and a jump beyond any plausible use between two
 * readings (another device on the topic) is ignored and logged. Sessions take the
 * difference of that running total, so they never see a reset. Payloads are limited to
 * NETDEV_PAYLOAD_MAX bytes; bad ones are logged and dropped. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "relay.h"

#define NETDEV_PAYLOAD_MAX 16384
#define NETDEV_MAX (CONFIG_MAX_MACHINES + CONFIG_MAX_METERS)
/* Between two readings, more than this is no machine's use: 100 kWh. */
#define NETDEV_ENERGY_JUMP_MAX_MWH 100000000LL

struct mqtt;
struct netdev_hub;
struct netdev;

/* client_topic: where Shelly devices answer (CLIENT above). 0 or -errno. */
int netdev_hub_new(sd_event *loop, const char *client_topic, struct netdev_hub **ret);
/* Detach from MQTT, close the devices' timers. NULL-safe. Relays on the hub must be
 * closed before. */
struct netdev_hub *netdev_hub_free(struct netdev_hub *h);
/* Start talking through mqtt (NULL: stop). Commands requested before are sent then. */
int netdev_hub_attach(struct netdev_hub *h, struct mqtt *mqtt);
unsigned netdev_hub_count(const struct netdev_hub *h);

/* The device of spec on h, created on first use. 0, or -ENOSPC. */
int netdev_get(struct netdev_hub *h, const struct device_spec *spec, struct netdev **ret);
/* How long a relay command may go unconfirmed (the first user's value counts). */
void netdev_set_confirm_ms(struct netdev *d, unsigned ms);

/* The asynchronous relay back-end: relay_open_backend(r, &relay_ops_netdev, name, NULL, d).
 * One relay per device. open() asks the device for "off", close() sends "off". */
extern const struct relay_ops relay_ops_netdev;

struct netdev_reading {
    bool online_known, online;
    bool has_power;
    int64_t power_mw;               /* last power reading */
    bool has_energy;
    int64_t energy_mwh;             /* the hub's running total (see above) */
    uint64_t counter_resets;        /* counters that went down */
    int64_t last_reading_at;        /* UTC, 0 if none */
};
void netdev_reading(const struct netdev *d, struct netdev_reading *ret);
const struct device_spec *netdev_spec(const struct netdev *d);

/* fn runs after every new power or energy reading, and when the device comes or goes.
 * Up to 4 listeners per device; fn and userdata must outlive the hub. 0 or -ENOSPC. */
int netdev_listen(struct netdev *d, void (*fn)(struct netdev *d, void *userdata), void *userdata);

/* Energy added between two readings of a cumulative counter (milliwatt-hours): the
 * increase, or all of now when the counter went down (a reset or reboot). Pure. */
int64_t netdev_energy_increase(int64_t last, int64_t now);

/* Feed one message as if it came from the broker (tests, fuzzing). true if it was a
 * device's topic. */
bool netdev_hub_message(struct netdev_hub *h, const char *topic, const void *payload, int len);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_netdev: what the network devices' topics carry, into netdev_hub_message().
 *
 * A Shelly or Tasmota device, or anyone allowed to publish on its topics, may send anything
 * there. The input is a sequence of messages separated by 0xFF bytes; each message's first
 * byte picks the topic (a Shelly's and a Tasmota's topics, and portierd's RPC reply topic),
 * the rest is the payload. After every message the promises of netdev.h and relay.h hold:
 * the running energy total never goes down, readings are never negative, a relay that is
 * not pending has no fault, a device's topics are always the hub's and others never. */
#include <systemd/sd-event.h>

#include "fuzz.h"
#include "netdev.h"

static const char *const topics[] = {
    "plug1/events/rpc", "plug1/status/switch:0", "plug1/online", "portier/site/shelly/rpc",
    "stat/kiln/POWER1", "stat/kiln/POWER", "stat/kiln/RESULT", "tele/kiln/STATE",
    "tele/kiln/SENSOR", "tele/kiln/LWT", "stat/kiln/STATUS10", "stat/kiln/STATUS8",
    "plug2/events/rpc",     /* nobody's */
};

static struct netdev_hub *hub;
static struct netdev *dev[2];
static struct relay relay[2];

static void setup(void)
{
    static const char *const specs[] = { "shelly:plug1", "tasmota:kiln" };
    sd_event *loop;

    if (sd_event_new(&loop) < 0 || netdev_hub_new(loop, "portier/site/shelly", &hub) < 0)
        abort();
    for (int i = 0; i < 2; i++) {
        struct device_spec spec;
        if (device_spec_parse(specs[i], &spec) < 0 || netdev_get(hub, &spec, &dev[i]) < 0 ||
            relay_open_backend(&relay[i], &relay_ops_netdev, "m.relay", NULL, dev[i]) < 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;

    if (!hub)
        setup();
    while (p < end) {
        const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
        const uint8_t *stop = sep ? sep : end;
        struct netdev_reading before[2], after;

        if (stop > p) {
            size_t t = p[0] % (sizeof(topics) / sizeof(topics[0]));
            bool mine;

            for (int i = 0; i < 2; i++)
                netdev_reading(dev[i], &before[i]);
            if (p[0] & 0x80)        /* now and then, ask for the other state */
                (void)relay_write(&relay[t >= 4], !relay[t >= 4].requested);
            mine = netdev_hub_message(hub, topics[t], p + 1, (int)(stop - p - 1));
            FUZZ_CHECK(mine == (t != sizeof(topics) / sizeof(topics[0]) - 1));
            for (int i = 0; i < 2; i++) {
                netdev_reading(dev[i], &after);
                FUZZ_CHECK(after.energy_mwh >= before[i].energy_mwh);
                FUZZ_CHECK(after.energy_mwh - before[i].energy_mwh <= NETDEV_ENERGY_JUMP_MAX_MWH);
                FUZZ_CHECK(!after.has_power || after.power_mw >= 0);
                FUZZ_CHECK(after.counter_resets >= before[i].counter_resets);
                FUZZ_CHECK(relay[i].pending || !relay[i].fault);
                /* Confirmed means the device reported what was asked. */
                FUZZ_CHECK(relay[i].pending || relay[i].requested == relay[i].energised);
            }
        }
        p = stop + (sep ? 1 : 0);
    }
    return 0;
}

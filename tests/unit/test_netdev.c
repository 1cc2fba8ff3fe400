/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* netdev: network relays and meters, fed the devices' messages directly (no broker): the
 * relay's request, confirmation, deadline, divergence and presence; power and energy
 * readings with counter resets and implausible jumps; bad payloads dropped. The MQTT side
 * runs against a real broker in tests/integration/test_netrelays.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev.h"
#include "util.h"

struct fixture {
    sd_event *loop;
    struct netdev_hub *hub;
    struct netdev *dev;
    struct relay relay;
    int news[8];
    int readings;
};

static void on_news(struct relay *r, enum relay_news news, void *userdata)
{
    struct fixture *f = userdata;
    f->news[news]++;
}

static void on_reading(struct netdev *d, void *userdata)
{
    ((struct fixture *)userdata)->readings++;
}

static struct fixture *setup_device(const char *spec_text)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct device_spec spec;

    assert_non_null(f);
    assert_int_equal(sd_event_new(&f->loop), 0);
    assert_int_equal(netdev_hub_new(f->loop, "portier/lyon/shelly", &f->hub), 0);
    assert_int_equal(device_spec_parse(spec_text, &spec), 0);
    assert_int_equal(netdev_get(f->hub, &spec, &f->dev), 0);
    netdev_set_confirm_ms(f->dev, 50);
    assert_int_equal(netdev_listen(f->dev, on_reading, f), 0);
    assert_int_equal(relay_open_backend(&f->relay, &relay_ops_netdev, "m.relay", NULL, f->dev), 0);
    f->relay.notify = on_news;
    f->relay.notify_userdata = f;
    return f;
}

static void teardown_device(struct fixture *f)
{
    relay_close(&f->relay);
    netdev_hub_free(f->hub);
    sd_event_unref(f->loop);
    free(f);
}

static bool feed(struct fixture *f, const char *topic, const char *payload)
{
    return netdev_hub_message(f->hub, topic, payload, (int)strlen(payload));
}

/* Run the loop until the deadline (50 ms) passed. */
static void wait_deadline(struct fixture *f)
{
    uint64_t until = now_mono_usec() + 200000;
    while (now_mono_usec() < until)
        sd_event_run(f->loop, 20000);
}

static void test_shelly_relay(void **state)
{
    struct fixture *f = setup_device("shelly:plug1");
    const char *events = "plug1/events/rpc";

    (void)state;
    /* Opened: "off" requested, unconfirmed. */
    assert_true(f->relay.pending);
    assert_false(f->relay.requested);
    assert_true(feed(f, events, "{\"src\":\"plug1\",\"method\":\"NotifyStatus\",\"params\":"
                                "{\"ts\":1.0,\"switch:0\":{\"id\":0,\"output\":false}}}"));
    assert_false(f->relay.pending);
    assert_int_equal(f->news[RELAY_CONFIRMED], 1);
    /* On: pending until the device says so; another switch's state is not ours. */
    assert_int_equal(relay_write(&f->relay, true), 0);
    assert_true(f->relay.pending);
    assert_false(f->relay.energised);
    feed(f, events, "{\"method\":\"NotifyStatus\",\"params\":{\"switch:1\":{\"output\":true}}}");
    assert_true(f->relay.pending);
    feed(f, "plug1/status/switch:0", "{\"id\":0,\"output\":true,\"apower\":12.5}");
    assert_false(f->relay.pending);
    assert_true(f->relay.energised);
    assert_int_equal(f->news[RELAY_CONFIRMED], 2);
    /* Asking for the confirmed state again sends nothing and stays confirmed. */
    assert_int_equal(relay_write(&f->relay, true), 0);
    assert_false(f->relay.pending);
    /* Its button switches it off: diverged, asked again. */
    feed(f, events, "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":{\"output\":false}}}");
    assert_int_equal(f->news[RELAY_DIVERGED], 1);
    assert_true(f->relay.pending);
    assert_true(f->relay.requested);
    /* No answer in time: a fault, once, and asked again. */
    wait_deadline(f);
    assert_true(f->relay.fault);
    assert_int_equal(f->news[RELAY_FAULT], 1);
    assert_int_equal(f->relay.faults, 1);
    feed(f, events, "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":{\"output\":true}}}");
    assert_false(f->relay.fault);
    assert_false(f->relay.pending);
    assert_int_equal(f->news[RELAY_CONFIRMED], 3);
    /* Offline, then back: the state is asked again. */
    assert_true(feed(f, "plug1/online", "false"));
    assert_int_equal(f->news[RELAY_OFFLINE], 1);
    assert_true(f->relay.offline);
    feed(f, "plug1/online", "true");
    assert_int_equal(f->news[RELAY_ONLINE], 1);
    assert_true(f->relay.pending);
    feed(f, "plug1/online", "maybe");       /* dropped */
    assert_false(f->relay.offline);
    teardown_device(f);
}

static void test_shelly_energy_and_resets(void **state)
{
    struct fixture *f = setup_device("shelly:plug1");
    struct netdev_reading rd;
    char big[NETDEV_PAYLOAD_MAX + 100];

    (void)state;
    netdev_reading(f->dev, &rd);
    assert_false(rd.has_energy);
    assert_false(rd.has_power);
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"apower\":120.4,\"aenergy\":{\"total\":1500.25}}}}");
    netdev_reading(f->dev, &rd);
    assert_true(rd.has_power);
    assert_int_equal(rd.power_mw, 120400);
    assert_true(rd.has_energy);
    assert_int_equal(rd.energy_mwh, 0);             /* the first reading is the baseline */
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"aenergy\":{\"total\":2500.25}}}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.energy_mwh, 1000000);
    /* A reboot: the counter restarts from zero; what it counted since is added. */
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"aenergy\":{\"total\":0.2}}}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.energy_mwh, 1000200);
    assert_int_equal(rd.counter_resets, 1);
    /* 200 kWh between two readings: no machine's use; not counted. */
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"aenergy\":{\"total\":200000000.2}}}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.energy_mwh, 1000200);
    /* Bad values and bad payloads change nothing. */
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"apower\":-5,\"aenergy\":{\"total\":\"x\"}}}}");
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"apower\":2e9,\"aenergy\":{\"total\":2e12}}}}");
    feed(f, "plug1/events/rpc", "not json");
    feed(f, "plug1/events/rpc", "[1,2]");
    memset(big, ' ', sizeof(big));
    assert_true(netdev_hub_message(f->hub, "plug1/events/rpc", big, (int)sizeof(big)));
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.power_mw, 120400);
    assert_int_equal(rd.energy_mwh, 1000200);
    assert_int_equal(f->readings, 5);      /* 4 readings, and "online" at the first */
    /* The counter out of range was not taken as the next baseline either. */
    feed(f, "plug1/events/rpc", "{\"method\":\"NotifyStatus\",\"params\":{\"switch:0\":"
                                "{\"aenergy\":{\"total\":200000001.2}}}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.energy_mwh, 1001200);
    assert_int_equal(rd.counter_resets, 1);
    /* Other topics are not the hub's. */
    assert_false(feed(f, "plug2/events/rpc", "{}"));
    assert_false(feed(f, "portier/lyon/cmd/x", "{}"));
    assert_true(feed(f, "portier/lyon/shelly/rpc", "{\"id\":99,\"result\":{}}"));
    assert_int_equal(netdev_energy_increase(10, 25), 15);
    assert_int_equal(netdev_energy_increase(25, 10), 10);
    teardown_device(f);
}

static void test_tasmota(void **state)
{
    struct fixture *f = setup_device("tasmota:kiln");
    struct netdev_reading rd;

    (void)state;
    assert_true(feed(f, "stat/kiln/POWER", "OFF"));     /* relay 1 also answers as POWER */
    assert_false(f->relay.pending);
    assert_int_equal(relay_write(&f->relay, true), 0);
    assert_true(feed(f, "stat/kiln/RESULT", "{\"POWER1\":\"ON\"}"));
    assert_false(f->relay.pending);
    assert_true(f->relay.energised);
    assert_int_equal(relay_write(&f->relay, false), 0);
    feed(f, "stat/kiln/POWER1", "maybe");
    assert_true(f->relay.pending);
    feed(f, "tele/kiln/STATE", "{\"POWER\":\"OFF\"}");
    assert_false(f->relay.pending);
    feed(f, "tele/kiln/SENSOR", "{\"ENERGY\":{\"Total\":12.345,\"Power\":2100}}");
    feed(f, "stat/kiln/STATUS10", "{\"StatusSNS\":{\"ENERGY\":{\"Total\":12.845,\"Power\":[2000,0]}}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.power_mw, 2000000);
    assert_int_equal(rd.energy_mwh, 500000);
    /* Out of range (kWh here): neither is taken, nor the counter as a baseline. */
    feed(f, "tele/kiln/SENSOR", "{\"ENERGY\":{\"Total\":2e9,\"Power\":2e9}}");
    feed(f, "tele/kiln/SENSOR", "{\"ENERGY\":{\"Total\":12.846,\"Power\":-1}}");
    netdev_reading(f->dev, &rd);
    assert_int_equal(rd.power_mw, 2000000);
    assert_int_equal(rd.energy_mwh, 501000);
    assert_int_equal(rd.counter_resets, 0);
    feed(f, "tele/kiln/LWT", "Offline");
    assert_true(f->relay.offline);
    netdev_reading(f->dev, &rd);
    assert_true(rd.online_known);
    assert_false(rd.online);
    feed(f, "tele/kiln/LWT", "Onl");                /* a word's start is not the word */
    feed(f, "tele/kiln/LWT", "Online!");
    assert_true(f->relay.offline);
    feed(f, "tele/kiln/LWT", "Online");
    assert_false(f->relay.offline);
    assert_false(feed(f, "stat/oven/POWER1", "ON"));
    teardown_device(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shelly_relay),
        cmocka_unit_test(test_shelly_energy_and_resets),
        cmocka_unit_test(test_tasmota),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

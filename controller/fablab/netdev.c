/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "netdev.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>             /* isfinite(): a macro, no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt.h"
#include "timer.h"
#include "util.h"

#define TOPIC_MAX 160
#define LISTENERS_MAX 4
/* After a fault, ask again at this pace at least (a device away for long is not flooded). */
#define RETRY_MIN_MS 5000

struct netdev {
    struct netdev_hub *hub;
    struct device_spec spec;
    unsigned confirm_ms;
    struct relay *relay;            /* when used as a relay */
    struct timer *deadline;         /* CLOCK_MONOTONIC: the pending command's deadline */
    bool command_unsent;            /* requested while MQTT was away */
    int64_t rpc_id;                 /* Shelly: the last Switch.Set's id ... */
    bool rpc_on;                    /* ... and what it asked */
    int64_t rpc_get_id;             /* the last Switch.GetStatus's id */
    /* readings */
    bool online_known, online;
    bool has_power, has_counter, has_energy;
    int64_t power_mw;
    int64_t counter_mwh;            /* the device's own counter, last seen */
    int64_t energy_mwh;             /* our running total */
    uint64_t counter_resets;
    int64_t last_reading_at;
    bool bad_payload_logged;
    struct {
        void (*fn)(struct netdev *d, void *userdata);
        void *userdata;
    } listeners[LISTENERS_MAX];
    /* topics */
    char t_command[TOPIC_MAX];      /* Shelly: ID/rpc; Tasmota: cmnd/ID/POWERn */
    char t_state[TOPIC_MAX];        /* Shelly: ID/status/switch:N; Tasmota: stat/ID/POWERn */
    char t_state_alt[TOPIC_MAX];    /* Tasmota relay 1: stat/ID/POWER too */
    char t_events[TOPIC_MAX];       /* Shelly: ID/events/rpc; Tasmota: tele/ID/SENSOR */
    char t_online[TOPIC_MAX];       /* Shelly: ID/online; Tasmota: tele/ID/LWT */
    char t_result[TOPIC_MAX];       /* Tasmota: stat/ID/RESULT */
    char t_tele_state[TOPIC_MAX];   /* Tasmota: tele/ID/STATE */
    char t_status10[TOPIC_MAX];     /* Tasmota: stat/ID/STATUS10 */
    char t_status8[TOPIC_MAX];      /* Tasmota: stat/ID/STATUS8 */
};

struct netdev_hub {
    sd_event *loop;
    struct mqtt *mqtt;
    char client_topic[TOPIC_MAX];
    char reply_topic[TOPIC_MAX];    /* CLIENT/rpc */
    int64_t next_rpc_id;
    unsigned n;
    struct netdev *devices[NETDEV_MAX];
};

static void tell_listeners(struct netdev *d)
{
    for (unsigned i = 0; i < LISTENERS_MAX; i++)
        if (d->listeners[i].fn)
            d->listeners[i].fn(d, d->listeners[i].userdata);
}

int64_t netdev_energy_increase(int64_t last, int64_t now)
{
    return now >= last ? now - last : now;
}

/* ---- sending ---- */

static int shelly_rpc(struct netdev *d, const char *method, int on)
{
    struct netdev_hub *h = d->hub;
    char payload[320];
    int64_t id = ++h->next_rpc_id;
    int len;

    if (on >= 0)
        len = snprintf(payload, sizeof(payload), "{\"id\":%" PRId64 ",\"src\":\"%s\",\"method\":"
                       "\"%s\",\"params\":{\"id\":%u,\"on\":%s}}", id, h->client_topic, method,
                       d->spec.channel, on ? "true" : "false");
    else
        len = snprintf(payload, sizeof(payload), "{\"id\":%" PRId64 ",\"src\":\"%s\",\"method\":"
                       "\"%s\",\"params\":{\"id\":%u}}", id, h->client_topic, method,
                       d->spec.channel);
    if (on >= 0) {
        d->rpc_id = id;
        d->rpc_on = on;
    } else {
        d->rpc_get_id = id;
    }
    return mqtt_publish_topic(h->mqtt, d->t_command, payload, (size_t)len, false, NULL);
}

/* Send on (1), off (0), or ask for the state and readings (-1). 0 or -errno. */
static int send_command(struct netdev *d, int on)
{
    struct netdev_hub *h = d->hub;
    char topic[TOPIC_MAX];

    if (!h->mqtt || !mqtt_is_connected(h->mqtt))
        return -ENOTCONN;
    if (d->spec.kind == DEVICE_SHELLY)
        return shelly_rpc(d, on >= 0 ? "Switch.Set" : "Switch.GetStatus", on);
    if (on < 0) {
        /* An empty POWERn asks for the state; Status 10 for the energy readings. */
        snprintf(topic, sizeof(topic), "cmnd/%s/STATUS", d->spec.id);
        (void)mqtt_publish_topic(h->mqtt, topic, "10", 2, false, NULL);
        return mqtt_publish_topic(h->mqtt, d->t_command, "", 0, false, NULL);
    }
    return mqtt_publish_topic(h->mqtt, d->t_command, on ? "ON" : "OFF", on ? 2 : 3, false, NULL);
}

static void deadline_arm(struct netdev *d)
{
    unsigned ms = d->confirm_ms;

    if (d->relay && d->relay->fault && ms < RETRY_MIN_MS)
        ms = RETRY_MIN_MS;
    int r = timer_arm_in(d->deadline, (uint64_t)ms * 1000u);

    if (r < 0 && r != -ESTALE)      /* -ESTALE: the loop has finished (stopping) */
        log_error("network relay %s: cannot time its confirmation: %s", d->spec.id, strerror(-r));
}

static void deadline_due(void *userdata)
{
    struct netdev *d = userdata;

    if (d->relay && d->relay->pending)
        relay_report_overdue(d->relay);     /* sends again, re-arming the deadline */
}

static int netdev_relay_open(struct relay *r)
{
    struct netdev *d = r->priv;

    if (!d || d->relay)
        return -EBUSY;
    d->relay = r;
    return 0;       /* relay.c asks for "off" at once; the device's answer confirms it */
}

static int netdev_relay_write(struct relay *r, bool on)
{
    struct netdev *d = r->priv;
    int ret = send_command(d, on);

    d->command_unsent = ret < 0;
    if (ret < 0 && ret != -ENOTCONN)
        log_warning("network relay %s: cannot send the command: %s", d->spec.id, strerror(-ret));
    deadline_arm(d);
    /* Sent or not, it is requested: the deadline decides, the broker may be back soon. */
    return 0;
}

static void netdev_relay_close(struct relay *r)
{
    struct netdev *d = r->priv;

    if (!d || d->relay != r)
        return;
    (void)send_command(d, 0);       /* best effort: the daemon is going away */
    timer_disarm(d->deadline);
    d->relay = NULL;
}

const struct relay_ops relay_ops_netdev = {
    .backend = "network",
    .asynchronous = true,
    .open = netdev_relay_open,
    .write = netdev_relay_write,
    .close = netdev_relay_close,
};

/* ---- receiving ---- */

static void report_state(struct netdev *d, bool on)
{
    if (!d->relay)
        return;
    relay_report_state(d->relay, on);
    if (!d->relay->pending)
        timer_disarm(d->deadline);
}

static void set_online(struct netdev *d, bool online)
{
    if (d->online_known && d->online == online)
        return;
    d->online_known = true;
    d->online = online;
    if (online)
        log_info("network device %s:%s is online", device_kind_to_string(d->spec.kind), d->spec.id);
    else
        log_warning("network device %s:%s went offline", device_kind_to_string(d->spec.kind),
                    d->spec.id);
    if (online)
        (void)send_command(d, -1);      /* its state and readings, at once */
    if (d->relay)
        relay_report_online(d->relay, online);
    tell_listeners(d);
}

/* Non-negative readings only (number_ok()), so rounding is adding a half. */
static int64_t scaled(const json_t *v, double factor)
{
    return (int64_t)(json_number_value(v) * factor + 0.5);
}

static bool number_ok(const json_t *v, double max)
{
    return json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) >= 0 &&
           json_number_value(v) <= max;
}

/* A cumulative counter reading, in mWh. */
static void energy_reading(struct netdev *d, int64_t counter_mwh)
{
    if (d->has_counter) {
        int64_t inc = netdev_energy_increase(d->counter_mwh, counter_mwh);
        if (counter_mwh < d->counter_mwh) {
            d->counter_resets++;
            log_notice("network device %s: its energy counter went down (%" PRId64 " -> %" PRId64
                       " Wh, a reboot or reset): counting on from there", d->spec.id,
                       d->counter_mwh / 1000, counter_mwh / 1000);
        }
        if (inc > NETDEV_ENERGY_JUMP_MAX_MWH) {
            log_warning("network device %s: its energy counter jumped by %" PRId64 " Wh since "
                        "the last reading; not counted (another device on its topic?)",
                        d->spec.id, inc / 1000);
            inc = 0;
        }
        d->energy_mwh += inc;
    }
    d->counter_mwh = counter_mwh;
    d->has_counter = true;
    d->has_energy = true;
}

/* The readings in a device's message (each NULL, or out of range, when it has none): power in
 * W, and its energy counter in units of unit_mwh mWh (Shelly: Wh, Tasmota: kWh). Whether it
 * had any. */
static bool take_readings(struct netdev *d, const json_t *power_w, const json_t *counter,
                          double unit_mwh)
{
    bool readings = false;

    if (number_ok(power_w, 1e9)) {
        d->power_mw = scaled(power_w, 1000.0);
        d->has_power = true;
        readings = true;
    }
    if (number_ok(counter, 1e15 / unit_mwh)) {      /* up to a million MWh */
        energy_reading(d, scaled(counter, unit_mwh));
        readings = true;
    }
    if (readings)
        d->last_reading_at = now_utc();
    return readings;
}

static void bad_payload(struct netdev *d, const char *topic, const char *why)
{
    if (d->bad_payload_logged) {
        log_debug("network device %s: dropped a message on %s: %s", d->spec.id, topic, why);
        return;
    }
    d->bad_payload_logged = true;
    log_warning("network device %s: dropped a message on %s: %s (further ones are logged at "
                "debug level)", d->spec.id, topic, why);
}

/* A payload that is one of two words ("Online" or "Offline", "ON" or "OFF", "true" or
 * "false"): 1 for yes, 0 for no; anything else is dropped (and said) and gives -1. */
static int payload_word(struct netdev *d, const char *topic, const void *payload, int len,
                        const char *yes, const char *no)
{
    char why[64];

    if (len == (int)strlen(yes) && memcmp(payload, yes, (size_t)len) == 0)
        return 1;
    if (len == (int)strlen(no) && memcmp(payload, no, (size_t)len) == 0)
        return 0;
    snprintf(why, sizeof(why), "expected %s or %s", yes, no);
    bad_payload(d, topic, why);
    return -1;
}

/* A Shelly switch status object ({"output":true,"apower":12.5,"aenergy":{"total":1.2}}). */
static void shelly_switch(struct netdev *d, const json_t *sw)
{
    const json_t *output = json_object_get(sw, "output");
    const json_t *apower = json_object_get(sw, "apower");
    const json_t *total = json_object_get(json_object_get(sw, "aenergy"), "total");
    bool readings = take_readings(d, apower, total, 1000.0);

    set_online(d, true);            /* it speaks, so it is there */
    if (json_is_boolean(output))
        report_state(d, json_is_true(output));
    if (readings)
        tell_listeners(d);
}

static void shelly_message(struct netdev *d, const char *topic, json_t *msg)
{
    char key[24];

    snprintf(key, sizeof(key), "switch:%u", d->spec.channel);
    if (strcmp(topic, d->t_state) == 0) {
        shelly_switch(d, msg);
        return;
    }
    /* TOPIC/events/rpc: {"method":"NotifyStatus","params":{"switch:0":{...}}} */
    const char *method = json_string_value(json_object_get(msg, "method"));
    const json_t *sw = json_object_get(json_object_get(msg, "params"), key);
    if (method && (strcmp(method, "NotifyStatus") == 0 || strcmp(method, "NotifyFullStatus") == 0) &&
        json_is_object(sw))
        shelly_switch(d, sw);
}

/* CLIENT/rpc: an answer to one of our requests. */
static bool shelly_reply(struct netdev_hub *h, json_t *msg)
{
    const json_t *id = json_object_get(msg, "id");
    const json_t *result = json_object_get(msg, "result");
    const json_t *error = json_object_get(msg, "error");

    if (!json_is_integer(id))
        return false;
    /* Our request ids are unique on the hub: they say which device answers (its "src" is
     * its device id, which need not be its topic prefix). */
    for (unsigned i = 0; i < h->n; i++) {
        struct netdev *d = h->devices[i];
        if (d->spec.kind != DEVICE_SHELLY || (json_integer_value(id) != d->rpc_id &&
                                              json_integer_value(id) != d->rpc_get_id))
            continue;
        if (error) {
            log_warning("network relay %s: the device refused a command: %.120s", d->spec.id,
                        json_string_value(json_object_get(error, "message")) ?
                        json_string_value(json_object_get(error, "message")) : "(no message)");
            return true;
        }
        if (!json_is_object(result))
            return true;
        if (json_integer_value(id) == d->rpc_get_id) {
            shelly_switch(d, result);           /* Switch.GetStatus */
        } else if (json_object_get(result, "was_on")) {
            /* Switch.Set done: the device is now in the state we asked. */
            set_online(d, true);
            report_state(d, d->rpc_on);
        }
        return true;
    }
    return true;    /* an answer for a device no longer configured */
}

static int tasmota_onoff(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (strcmp(s, "ON") == 0)
        return 1;
    if (strcmp(s, "OFF") == 0)
        return 0;
    return -1;
}

/* The state of our relay in a Tasmota JSON object ({"POWER1":"ON"} or {"POWER":"ON"}). */
static int tasmota_power_in(const struct netdev *d, const json_t *obj)
{
    char key[16];
    int v;

    snprintf(key, sizeof(key), "POWER%u", d->spec.channel);
    v = tasmota_onoff(json_object_get(obj, key));
    if (v < 0 && d->spec.channel == 1)
        v = tasmota_onoff(json_object_get(obj, "POWER"));
    return v;
}

/* {"ENERGY":{"Total":1.234,"Power":45}}: Total in kWh; Power in W, or a list per channel. */
static void tasmota_energy(struct netdev *d, const json_t *energy)
{
    const json_t *total = json_object_get(energy, "Total");
    const json_t *power = json_object_get(energy, "Power");

    if (json_is_array(power))
        power = json_array_get(power, d->spec.channel - 1);
    if (json_is_array(total))
        total = json_array_get(total, d->spec.channel - 1);
    if (take_readings(d, power, total, 1e6))
        tell_listeners(d);
}

static void tasmota_message(struct netdev *d, const char *topic, const void *payload, int len)
{
    json_t *msg;
    int v;

    if (strcmp(topic, d->t_online) == 0) {
        if ((v = payload_word(d, topic, payload, len, "Online", "Offline")) >= 0)
            set_online(d, v);
        return;
    }
    if (strcmp(topic, d->t_state) == 0 || (d->t_state_alt[0] && strcmp(topic, d->t_state_alt) == 0)) {
        if ((v = payload_word(d, topic, payload, len, "ON", "OFF")) < 0)
            return;
        set_online(d, true);
        report_state(d, v);
        return;
    }
    msg = json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(msg)) {
        bad_payload(d, topic, "not a JSON object");
        json_decref(msg);
        return;
    }
    set_online(d, true);
    if (strcmp(topic, d->t_result) == 0 || strcmp(topic, d->t_tele_state) == 0) {
        v = tasmota_power_in(d, msg);
        if (v >= 0)
            report_state(d, v);
    } else if (strcmp(topic, d->t_events) == 0) {
        tasmota_energy(d, json_object_get(msg, "ENERGY"));
    } else {        /* STATUS10, STATUS8 */
        tasmota_energy(d, json_object_get(json_object_get(msg, "StatusSNS"), "ENERGY"));
    }
    json_decref(msg);
}

static bool is_topic_of(const struct netdev *d, const char *topic)
{
    if (d->spec.kind == DEVICE_SHELLY)
        return strcmp(topic, d->t_state) == 0 || strcmp(topic, d->t_events) == 0 ||
               strcmp(topic, d->t_online) == 0;
    return strcmp(topic, d->t_state) == 0 || (d->t_state_alt[0] && strcmp(topic, d->t_state_alt) == 0) ||
           strcmp(topic, d->t_events) == 0 || strcmp(topic, d->t_online) == 0 ||
           strcmp(topic, d->t_result) == 0 || strcmp(topic, d->t_tele_state) == 0 ||
           strcmp(topic, d->t_status10) == 0 || strcmp(topic, d->t_status8) == 0;
}

bool netdev_hub_message(struct netdev_hub *h, const char *topic, const void *payload, int len)
{
    bool mine = false;

    if (strcmp(topic, h->reply_topic) == 0) {
        json_t *msg = len > 0 && len <= NETDEV_PAYLOAD_MAX
                          ? json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(msg) || !shelly_reply(h, msg))
            log_debug("network devices: dropped a malformed answer on %s", topic);
        json_decref(msg);
        return true;
    }
    for (unsigned i = 0; i < h->n; i++) {
        struct netdev *d = h->devices[i];
        if (!is_topic_of(d, topic))
            continue;
        mine = true;
        if (len < 0 || len > NETDEV_PAYLOAD_MAX) {
            bad_payload(d, topic, "payload too large");
            continue;
        }
        if (d->spec.kind == DEVICE_TASMOTA) {
            tasmota_message(d, topic, payload, len);
        } else if (strcmp(topic, d->t_online) == 0) {
            int online = payload_word(d, topic, payload, len, "true", "false");
            if (online >= 0)
                set_online(d, online);
        } else {
            json_t *msg = json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
            if (json_is_object(msg))
                shelly_message(d, topic, msg);
            else
                bad_payload(d, topic, "not a JSON object");
            json_decref(msg);
        }
    }
    return mine;
}

/* ---- the MQTT attachment ---- */

static void subscribe(struct netdev_hub *h, const char *topic)
{
    if (topic[0] && mqtt_subscribe_topic(h->mqtt, topic) < 0)
        log_warning("network devices: cannot subscribe to %s", topic);
}

static void on_connected(void *userdata)
{
    struct netdev_hub *h = userdata;

    subscribe(h, h->reply_topic);
    for (unsigned i = 0; i < h->n; i++) {
        struct netdev *d = h->devices[i];
        subscribe(h, d->t_state);
        subscribe(h, d->t_state_alt);
        subscribe(h, d->t_events);
        subscribe(h, d->t_online);
        subscribe(h, d->t_result);
        subscribe(h, d->t_tele_state);
        subscribe(h, d->t_status10);
        subscribe(h, d->t_status8);
        /* What we want first, then what it is: the device's answers settle both. */
        if (d->relay && (d->relay->pending || d->command_unsent)) {
            d->command_unsent = send_command(d, d->relay->requested) < 0;
            deadline_arm(d);
        }
        (void)send_command(d, -1);
    }
}

static bool on_message(const char *topic, const void *payload, int len, bool retain,
                       void *userdata)
{
    return netdev_hub_message(userdata, topic, payload, len);
}

static const struct mqtt_attachment_ops attachment_ops = {
    .connected = on_connected,
    .message = on_message,
};

int netdev_hub_attach(struct netdev_hub *h, struct mqtt *mqtt)
{
    int r = 0;

    if (h->mqtt)
        (void)mqtt_attach(h->mqtt, NULL, h);
    h->mqtt = mqtt;
    if (mqtt && h->n > 0 && (r = mqtt_attach(mqtt, &attachment_ops, h)) < 0) {
        h->mqtt = NULL;
        log_error("network devices: cannot share the MQTT connection: %s", strerror(-r));
    }
    return r;
}

/* ---- devices ---- */

static void topics_fill(struct netdev *d)
{
    const char *id = d->spec.id;
    unsigned n = d->spec.channel;

    if (d->spec.kind == DEVICE_SHELLY) {
        snprintf(d->t_command, TOPIC_MAX, "%s/rpc", id);
        snprintf(d->t_state, TOPIC_MAX, "%s/status/switch:%u", id, n);
        snprintf(d->t_events, TOPIC_MAX, "%s/events/rpc", id);
        snprintf(d->t_online, TOPIC_MAX, "%s/online", id);
        return;
    }
    snprintf(d->t_command, TOPIC_MAX, "cmnd/%s/POWER%u", id, n);
    snprintf(d->t_state, TOPIC_MAX, "stat/%s/POWER%u", id, n);
    if (n == 1)
        snprintf(d->t_state_alt, TOPIC_MAX, "stat/%s/POWER", id);
    snprintf(d->t_events, TOPIC_MAX, "tele/%s/SENSOR", id);
    snprintf(d->t_online, TOPIC_MAX, "tele/%s/LWT", id);
    snprintf(d->t_result, TOPIC_MAX, "stat/%s/RESULT", id);
    snprintf(d->t_tele_state, TOPIC_MAX, "tele/%s/STATE", id);
    snprintf(d->t_status10, TOPIC_MAX, "stat/%s/STATUS10", id);
    snprintf(d->t_status8, TOPIC_MAX, "stat/%s/STATUS8", id);
}

int netdev_get(struct netdev_hub *h, const struct device_spec *spec, struct netdev **ret)
{
    struct netdev *d;
    int r;

    for (unsigned i = 0; i < h->n; i++)
        if (device_spec_equal(&h->devices[i]->spec, spec)) {
            *ret = h->devices[i];
            return 0;
        }
    if (h->n == NETDEV_MAX)
        return -ENOSPC;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->hub = h;
    d->spec = *spec;
    d->confirm_ms = 3000;
    topics_fill(d);
    r = timer_new(h->loop, CLOCK_MONOTONIC, 1000, deadline_due, d, &d->deadline);
    if (r < 0) {
        free(d);
        return r;
    }
    h->devices[h->n++] = d;
    *ret = d;
    return 0;
}

void netdev_set_confirm_ms(struct netdev *d, unsigned ms)
{
    d->confirm_ms = ms;
}

int netdev_listen(struct netdev *d, void (*fn)(struct netdev *d, void *userdata), void *userdata)
{
    for (unsigned i = 0; i < LISTENERS_MAX; i++)
        if (!d->listeners[i].fn) {
            d->listeners[i].fn = fn;
            d->listeners[i].userdata = userdata;
            return 0;
        }
    return -ENOSPC;
}

void netdev_reading(const struct netdev *d, struct netdev_reading *ret)
{
    *ret = (struct netdev_reading){
        .online_known = d->online_known, .online = d->online, .has_power = d->has_power,
        .power_mw = d->power_mw, .has_energy = d->has_energy, .energy_mwh = d->energy_mwh,
        .counter_resets = d->counter_resets, .last_reading_at = d->last_reading_at,
    };
}

const struct device_spec *netdev_spec(const struct netdev *d)
{
    return &d->spec;
}

unsigned netdev_hub_count(const struct netdev_hub *h)
{
    return h ? h->n : 0;
}

int netdev_hub_new(sd_event *loop, const char *client_topic, struct netdev_hub **ret)
{
    struct netdev_hub *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->loop = loop;
    snprintf(h->client_topic, sizeof(h->client_topic), "%s", client_topic);
    snprintf(h->reply_topic, sizeof(h->reply_topic), "%s/rpc", client_topic);
    *ret = h;
    return 0;
}

struct netdev_hub *netdev_hub_free(struct netdev_hub *h)
{
    if (!h)
        return NULL;
    if (h->mqtt)
        (void)mqtt_attach(h->mqtt, NULL, h);
    for (unsigned i = 0; i < h->n; i++) {
        timer_free(h->devices[i]->deadline);
        free(h->devices[i]);
    }
    free(h);
    return NULL;
}

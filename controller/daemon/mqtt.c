/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "mqtt.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "timer.h"
#include "util.h"

#define INFLIGHT_MAX 20
/* Reconnection attempts: 0.5 s, 1 s, then every 2 s. A refused connect costs nothing, and
 * a broker that comes back is found within 2 s; with 30 s events waited up to 30 s more. */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 2000
#define STATE_MAX 256
#define NAMES_MAX 64                    /* of command_clients (256 characters) */
#define ATTACHMENTS_MAX 4               /* the consortium, network devices, ... */

/* libmosquitto is loaded when [mqtt] is enabled, not linked: it brings OpenSSL, whose pages
 * would cost every site ~1.7 MiB of memory whether it uses MQTT or not. */
#define MOSQ_FUNCTIONS(X) \
    X(lib_init) X(lib_cleanup) X(new) X(destroy) X(int_option) X(max_inflight_messages_set) \
    X(will_set) X(username_pw_set) X(tls_set) X(connect_callback_set) \
    X(disconnect_callback_set) X(publish_v5_callback_set) X(message_callback_set) \
    X(connect_async) X(socket) X(want_write) X(loop_read) X(loop_write) X(loop_misc) \
    X(publish) X(subscribe) X(disconnect) X(strerror) X(reason_string)

static struct {
#define MOSQ_DECLARE(name) __typeof__(mosquitto_##name) *name;
    MOSQ_FUNCTIONS(MOSQ_DECLARE)
#undef MOSQ_DECLARE
} mq;

static int library_load(void)
{
    static void *handle;

    if (handle)
        return 0;
    handle = dlopen("libmosquitto.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        log_error("mqtt: cannot load libmosquitto.so.1: %s", dlerror());
        return -ENOENT;
    }
#define MOSQ_LOAD(name) \
    if (!(mq.name = (__typeof__(mq.name))dlsym(handle, "mosquitto_" #name))) { \
        log_error("mqtt: libmosquitto.so.1 lacks mosquitto_" #name); \
        dlclose(handle); \
        handle = NULL; \
        return -ENOSYS; \
    }
    MOSQ_FUNCTIONS(MOSQ_LOAD)
#undef MOSQ_LOAD
    return 0;
}

struct inflight {
    int mid;
    int64_t seq;
};

/* Whether the broker ties PREFIX/SITE/cmd/NAME to the user NAME, so that the name in a
 * command's topic says who sent it. portierd cannot see who published a message; at each
 * connection it publishes a probe on the cmd topic of every name of command_clients, with
 * its own account, and the broker's acknowledgement (MQTT 5 reason code) says whether the
 * ACL let it: if the broker refuses every probe as "not authorised", it keeps at least
 * portierd's user off those topics, as the documented per-user pattern does. If it takes
 * one (no ACL, anonymous access, a "write portier/SITE/#" grant), anyone might write
 * there: commands by name are refused and only the command key counts. */
enum acl_check {
    ACL_UNKNOWN,                        /* not connected, or no command_clients */
    ACL_CHECKING,                       /* probes sent, acknowledgements pending */
    ACL_TIED,                           /* every probe refused: names are trusted */
    ACL_OPEN,                           /* a probe was taken: names are not trusted */
};

struct mqtt {
    sd_event *loop;
    struct store *store;
    const struct config *cfg;
    struct mosquitto *mosq;
    char client_id[64];
    char base[160];                     /* PREFIX/SITE */
    char key[128];                      /* shared command key, "" if none */
    mqtt_command_fn on_command;
    void *userdata;
    char names_buf[sizeof(((struct mqtt_config *)0)->command_clients)];
    const char *names[NAMES_MAX];       /* command_clients, split (into names_buf) */
    unsigned n_names;
    enum acl_check acl;
    int acl_mids[NAMES_MAX];            /* probes not acknowledged yet, 0 when done */
    unsigned acl_pending;
    char acl_probe[64];                 /* the probes' payload, with a random nonce */
    bool refusal_logged;                /* a publish of ours refused, this connection */
    bool connected;
    bool stopping;
    sd_event_source *io;               /* watches a duplicate of sock, which it owns */
    int sock;                           /* libmosquitto's socket when io was armed */
    struct timer *misc;
    struct timer *retry;                /* next connection attempt */
    unsigned backoff_ms;
    struct inflight inflight[INFLIGHT_MAX];
    unsigned n_inflight;
    int64_t sent_up_to;                 /* highest seq handed to libmosquitto this connection */
    uint64_t dropped_logged;
    struct { char topic[96]; char *payload; } states[STATE_MAX];
    unsigned n_states;
    struct mqtt_stats stats;
    struct {
        const struct mqtt_attachment_ops *ops;
        void *userdata;
    } attached[ATTACHMENTS_MAX];
};

static void io_update(struct mqtt *m);
static void drain(struct mqtt *m);

static void topic(const struct mqtt *m, char *buf, size_t n, const char *suffix)
{
    snprintf(buf, n, "%s/%s", m->base, suffix);
}

static int publish(struct mqtt *m, const char *suffix, const char *payload, bool retain, int *mid)
{
    char t[320];
    topic(m, t, sizeof(t), suffix);
    return mq.publish(m->mosq, mid, t, (int)strlen(payload), payload, 1, retain);
}

/* ---- events from the outbox ---- */

static int publish_one(int64_t seq, const char *kind, const char *payload, void *userdata)
{
    struct mqtt *m = userdata;
    json_error_t err;
    json_t *body = json_loads(payload, 0, &err);
    char suffix[64], *text;
    int mid = 0, r;

    if (!body)
        body = json_object();           /* never let one bad row block the queue */
    json_object_set_new(body, "v", json_integer(1));
    json_object_set_new(body, "site", json_string(m->cfg->site.id));
    json_object_set_new(body, "seq", json_integer(seq));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(suffix, sizeof(suffix), "event/%.40s", kind);
    r = text ? publish(m, suffix, text, false, &mid) : MOSQ_ERR_NOMEM;
    free(text);
    if (r != MOSQ_ERR_SUCCESS)
        return -EIO;
    m->inflight[m->n_inflight].mid = mid;
    m->inflight[m->n_inflight].seq = seq;
    m->n_inflight++;
    m->sent_up_to = seq;
    m->stats.published++;
    return m->n_inflight < INFLIGHT_MAX ? 0 : -ENOBUFS;
}

static void drain(struct mqtt *m)
{
    uint64_t dropped = store_outbox_dropped(m->store);
    static uint64_t last_warning;

    if (dropped != m->dropped_logged && now_mono_usec() - last_warning > 60000000u) {
        last_warning = now_mono_usec();
        log_warning("mqtt: outbox full (outbox_max = %" PRId64 "): %" PRIu64 " oldest events "
                    "dropped so far", m->cfg->mqtt.outbox_max, dropped);
        m->dropped_logged = dropped;
    }
    /* Only durable messages leave (store_outbox_fetch() stops at them): rows of an open
     * transaction could still be rolled back, or a commit not yet synced be lost to a power
     * cut, and their sequence numbers reused. The commit module kicks us again. */
    if (!m->connected || m->n_inflight >= INFLIGHT_MAX)
        return;
    int r = store_outbox_fetch(m->store, m->sent_up_to, (int)(INFLIGHT_MAX - m->n_inflight),
                               publish_one, m);
    /* -ENOBUFS: the in-flight window is full; -EIO: the library refused one (it stays in the
     * outbox for the next try). */
    if (r < 0 && r != -ENOBUFS && r != -EIO)
        log_error("mqtt: cannot read the outbox: %s", strerror(-r));
    io_update(m);
}

void mqtt_kick(struct mqtt *m)
{
    if (m)
        drain(m);
}

static bool acl_probe_acknowledged(struct mqtt *m, int mid, int reason);

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason,
                       const mosquitto_property *props)
{
    struct mqtt *m = userdata;

    if (acl_probe_acknowledged(m, mid, reason))
        return;
    if (reason >= 0x80 && !m->refusal_logged) {
        /* Taken off our hands all the same (QoS 1 is done): say so once per connection. */
        m->refusal_logged = true;
        log_warning("mqtt: the broker refused a message from portierd: %s; check that its ACL "
                    "lets portierd's user write the topics of docs/mqtt.md section 6",
                    mq.reason_string(reason));
    }
    for (unsigned i = 0; i < m->n_inflight; i++) {
        if (m->inflight[i].mid != mid)
            continue;
        /* The broker has it: only now may it leave the outbox. If it cannot, it is sent again
         * later (a receiver drops it by its sequence number). */
        if (store_outbox_delete(m->store, m->inflight[i].seq) < 0)
            log_warning("mqtt: cannot remove event %" PRId64 " from the outbox; it will be "
                        "sent again", m->inflight[i].seq);
        m->stats.acknowledged++;
        if (m->inflight[i].seq > m->stats.last_seq)
            m->stats.last_seq = m->inflight[i].seq;
        m->inflight[i] = m->inflight[--m->n_inflight];
        drain(m);
        return;
    }
    for (unsigned i = 0; i < ATTACHMENTS_MAX; i++)
        if (m->attached[i].ops && m->attached[i].ops->published)
            m->attached[i].ops->published(mid, m->attached[i].userdata);
    drain(m);
}

/* ---- state, availability, discovery ---- */

static void publish_states(struct mqtt *m)
{
    for (unsigned i = 0; i < m->n_states; i++)
        publish(m, m->states[i].topic, m->states[i].payload, true, NULL);
}

void mqtt_state(struct mqtt *m, const char *suffix, json_t *payload)
{
    char *text;
    unsigned i;

    if (!m)
        return;
    text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return;
    for (i = 0; i < m->n_states; i++)
        if (strcmp(m->states[i].topic, suffix) == 0)
            break;
    if (i == m->n_states) {
        if (m->n_states == STATE_MAX) {
            free(text);
            return;
        }
        snprintf(m->states[i].topic, sizeof(m->states[i].topic), "%s", suffix);
        m->n_states++;
    } else if (strcmp(m->states[i].payload, text) == 0) {
        free(text);
        return;             /* unchanged: nothing to say */
    } else {
        free(m->states[i].payload);
    }
    m->states[i].payload = text;
    if (m->connected) {
        publish(m, suffix, text, true, NULL);
        io_update(m);
    }
}

static void discovery_one(struct mqtt *m, const char *component, const char *object,
                          json_t *config)
{
    char t[448], uid[128], entity[160], avail[320], *text;
    const struct config *cfg = m->cfg;

    snprintf(uid, sizeof(uid), "portier_%s_%.60s", cfg->site.id, object);
    for (char *p = uid; *p; p++)
        if (*p == '.')
            *p = '_';       /* Home Assistant ignores discovery topics with dots */
    snprintf(t, sizeof(t), "%s/%s/%s/config", cfg->mqtt.discovery_prefix, component, uid);
    snprintf(entity, sizeof(entity), "%s.%s", component, uid);
    json_object_set_new(config, "unique_id", json_string(uid));
    /* The entity id: default_entity_id since Home Assistant 2025.10, which deprecated
     * object_id (dropped in 2026.4); object_id still for older versions. */
    json_object_set_new(config, "default_entity_id", json_string(entity));
    json_object_set_new(config, "object_id", json_string(uid));
    topic(m, avail, sizeof(avail), "status");
    json_object_set_new(config, "availability_topic", json_string(avail));
    json_object_set_new(config, "device", json_pack("{s:[s], s:s, s:s, s:s, s:s}", "identifiers",
                                                    cfg->site.id, "name", cfg->site.name,
                                                    "manufacturer", "Portier", "model", "portierd",
                                                    "sw_version", PORTIER_VERSION));
    json_object_set_new(config, "origin", json_pack("{s:s, s:s}", "name", "Portier", "sw",
                                                    PORTIER_VERSION));
    text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(config);
    if (text)
        mq.publish(m->mosq, NULL, t, (int)strlen(text), text, 1, true);
    free(text);
}

static void publish_discovery(struct mqtt *m)
{
    const struct config *cfg = m->cfg;
    char st[320], cmd[320], obj[64];

    if (!cfg->mqtt.discovery)
        return;
    /* Home Assistant sends lock and switch commands as client "homeassistant": allow that
     * name in command_clients (and in the broker's ACL) to let it. */
    snprintf(cmd, sizeof(cmd), "%s/cmd/homeassistant", m->base);
    for (unsigned i = 0; i < cfg->n_doors; i++) {
        const struct door_config *d = &cfg->doors[i];
        char unlock[128], lock[128];
        snprintf(st, sizeof(st), "%s/door/%s/state", m->base, d->name);
        snprintf(obj, sizeof(obj), "door_%s", d->name);
        snprintf(unlock, sizeof(unlock), "{\"action\":\"door.unlock\",\"door\":\"%s\"}", d->name);
        snprintf(lock, sizeof(lock), "{\"action\":\"door.lock\",\"door\":\"%s\"}", d->name);
        discovery_one(m, "lock", obj, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "name", d->name, "state_topic", st,
            "value_template", "{{ value_json.lock }}", "state_locked", "LOCKED", "state_unlocked",
            "UNLOCKED", "command_topic", cmd, "payload_unlock", unlock, "payload_lock", lock,
            "optimistic", false));
        if (d->contact.set) {
            snprintf(obj, sizeof(obj), "door_%s_contact", d->name);
            char label[64];
            snprintf(label, sizeof(label), "%s contact", d->name);
            discovery_one(m, "binary_sensor", obj, json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:s}", "name", label, "state_topic", st,
                "value_template", "{{ value_json.contact }}", "payload_on", "open", "payload_off",
                "closed", "device_class", "door"));
        }
    }
    for (unsigned i = 0; i < cfg->n_machines; i++) {
        const struct machine_config *mc = &cfg->machines[i];
        char on[128], off[128];
        snprintf(st, sizeof(st), "%s/machine/%s/state", m->base, mc->name);
        snprintf(obj, sizeof(obj), "machine_%s", mc->name);
        snprintf(on, sizeof(on), "{\"action\":\"machine.out_of_order\",\"machine\":\"%s\",\"on\":false}",
                 mc->name);
        snprintf(off, sizeof(off), "{\"action\":\"machine.out_of_order\",\"machine\":\"%s\",\"on\":true}",
                 mc->name);
        /* The switch is "machine in service": off sets it out of order (and cuts power). */
        discovery_one(m, "switch", obj, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "name", mc->name, "state_topic", st,
            "value_template", "{{ 'ON' if not value_json.out_of_order else 'OFF' }}",
            "command_topic", cmd, "payload_on", on, "payload_off", off, "state_on", "ON",
            "state_off", "OFF", "optimistic", false));
        char label[64];
        snprintf(obj, sizeof(obj), "machine_%s_power", mc->name);
        snprintf(label, sizeof(label), "%s power", mc->name);
        discovery_one(m, "binary_sensor", obj, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s}", "name", label, "state_topic", st, "value_template",
            "{{ 'ON' if value_json.powered else 'OFF' }}", "payload_on", "ON", "payload_off", "OFF",
            "device_class", "power"));
        if (mc->running.set) {
            snprintf(obj, sizeof(obj), "machine_%s_running", mc->name);
            snprintf(label, sizeof(label), "%s running", mc->name);
            discovery_one(m, "binary_sensor", obj, json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:s}", "name", label, "state_topic", st,
                "value_template", "{{ 'ON' if value_json.running else 'OFF' }}", "payload_on",
                "ON", "payload_off", "OFF", "device_class", "running"));
        }
    }
    snprintf(st, sizeof(st), "%s/occupancy", m->base);
    discovery_one(m, "sensor", "occupancy", json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "name", "people in", "state_topic", st, "value_template",
        "{{ value_json.present }}", "state_class", "measurement", "unit_of_measurement",
        "people"));
}

/* A retained discovery config of ours that no longer matches the configuration (a door or
 * machine removed): an empty retained message removes it from Home Assistant. */
static bool same_object(const char *topic_object, const char *want)
{
    for (; *topic_object && *want; topic_object++, want++)
        if (*topic_object != (*want == '.' ? '_' : *want))
            return false;
    return *topic_object == *want;
}

static bool discovery_still_wanted(const struct mqtt *m, const char *object)
{
    const struct config *cfg = m->cfg;
    char want[64];

    if (!cfg->mqtt.discovery)
        return false;
    if (strcmp(object, "occupancy") == 0)
        return true;
    for (unsigned i = 0; i < cfg->n_doors; i++) {
        snprintf(want, sizeof(want), "door_%s", cfg->doors[i].name);
        if (same_object(object, want))
            return true;
        snprintf(want, sizeof(want), "door_%s_contact", cfg->doors[i].name);
        if (same_object(object, want) && cfg->doors[i].contact.set)
            return true;
    }
    for (unsigned i = 0; i < cfg->n_machines; i++) {
        const char *n = cfg->machines[i].name;
        snprintf(want, sizeof(want), "machine_%s", n);
        if (same_object(object, want))
            return true;
        snprintf(want, sizeof(want), "machine_%s_power", n);
        if (same_object(object, want))
            return true;
        snprintf(want, sizeof(want), "machine_%s_running", n);
        if (same_object(object, want) && cfg->machines[i].running.set)
            return true;
    }
    return false;
}

/* ---- commands ---- */

static bool client_allowed(const struct mqtt *m, const char *client)
{
    for (unsigned i = 0; i < m->n_names; i++)
        if (strcmp(m->names[i], client) == 0)
            return true;
    return false;
}

/* command_clients into names: comma-separated, spaces around names ignored. */
static void names_split(struct mqtt *m)
{
    char *save = NULL, *name;

    snprintf(m->names_buf, sizeof(m->names_buf), "%s", m->cfg->mqtt.command_clients);
    for (name = strtok_r(m->names_buf, ",", &save); name && m->n_names < NAMES_MAX;
         name = strtok_r(NULL, ",", &save)) {
        size_t n;
        while (*name == ' ')
            name++;
        n = strlen(name);
        while (n > 0 && name[n - 1] == ' ')
            name[--n] = '\0';
        if (n > 0)
            m->names[m->n_names++] = name;
    }
}

/* ---- is a name in a cmd topic the user who wrote it? (enum acl_check) ---- */

/* One payload for the process: a probe libmosquitto sends again after a reconnect is
 * still recognised as ours. */
static void acl_probe_init(struct mqtt *m)
{
    uint8_t nonce[16];
    char hex[2 * sizeof(nonce) + 1];

    randombytes_buf(nonce, sizeof(nonce));
    sodium_bin2hex(hex, sizeof(hex), nonce, sizeof(nonce));
    snprintf(m->acl_probe, sizeof(m->acl_probe), "{\"acl_check\":\"%s\"}", hex);
}

static void acl_check_start(struct mqtt *m)
{
    char suffix[96];

    m->acl = ACL_UNKNOWN;
    m->acl_pending = 0;
    memset(m->acl_mids, 0, sizeof(m->acl_mids));
    if (m->n_names == 0)
        return;
    m->acl = ACL_CHECKING;
    for (unsigned i = 0; i < m->n_names; i++) {
        int mid = 0;
        snprintf(suffix, sizeof(suffix), "cmd/%.63s", m->names[i]);
        if (publish(m, suffix, m->acl_probe, false, &mid) != MOSQ_ERR_SUCCESS) {
            log_warning("mqtt: cannot check the broker's ACL on %s/%s; commands are accepted "
                        "only with the command key until the next connection", m->base, suffix);
            m->acl = ACL_OPEN;
            return;
        }
        m->acl_mids[i] = mid;
        m->acl_pending++;
    }
}

/* The broker acknowledged mid: true if it was a probe. */
static bool acl_probe_acknowledged(struct mqtt *m, int mid, int reason)
{
    unsigned i = 0;

    if (m->acl_pending == 0 || mid == 0)
        return false;
    while (i < m->n_names && m->acl_mids[i] != mid)
        i++;
    if (i == m->n_names)
        return false;
    m->acl_mids[i] = 0;
    m->acl_pending--;
    if (reason != MQTT_RC_NOT_AUTHORIZED && m->acl != ACL_OPEN) {
        /* Taken; or refused for another reason, which says nothing of the ACL. */
        m->acl = ACL_OPEN;
        log_warning("mqtt: the broker let portierd publish on %s/cmd/%s (%s): its ACL does not "
                    "keep other users off the cmd topics, so anyone could send commands as "
                    "'%s'. Commands are accepted only with the command key until the ACL ties "
                    "each cmd topic to its user (docs/mqtt.md section 6)", m->base, m->names[i],
                    mq.reason_string(reason), m->names[i]);
    }
    if (m->acl_pending == 0 && m->acl == ACL_CHECKING) {
        m->acl = ACL_TIED;
        log_info("mqtt: broker ACL checked: portierd may not write the cmd topic of %s%s, so "
                 "commands by user name are accepted", m->names[0],
                 m->n_names > 1 ? " nor of the other command_clients" : "");
    }
    return true;
}

/* Our probe, of this connection or of an earlier one. */
static bool acl_is_probe(const struct mqtt *m, const void *payload, int len)
{
    return len == (int)strlen(m->acl_probe) && memcmp(payload, m->acl_probe, (size_t)len) == 0;
}

/* ---- commands ---- */

int mqtt_command_parse(const char *client, const void *payload, int len,
                       struct mqtt_command *ret, char *why, size_t why_n)
{
    struct mqtt_command c = { .actor = { .role = ROLE_MANAGER, .channel = CHANNEL_MQTT } };
    json_error_t err;
    const char *action, *key = NULL;

    memset(ret, 0, sizeof(*ret));
    if (len <= 0 || len > MQTT_COMMAND_MAX) {
        snprintf(why, why_n, "payload must be 1 to %d bytes", MQTT_COMMAND_MAX);
        return -EBADMSG;
    }
    /* JSON_DECODE_ANY: 42, true, null or "x" are JSON, just not an object. */
    c.req = json_loadb(payload, (size_t)len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!c.req || !json_is_object(c.req)) {
        snprintf(why, why_n, "malformed command: %s", c.req ? "not a JSON object" : "not JSON");
        json_decref(c.req);
        return -EBADMSG;
    }
    if (json_unpack_ex(c.req, &err, 0, "{s:s, s?s}", "action", &action, "key", &key) < 0) {
        snprintf(why, why_n, "malformed command: %.120s", err.text);
        json_decref(c.req);
        return -EBADMSG;
    }
    c.key = json_incref(json_object_get(c.req, "key"));
    json_object_del(c.req, "key");
    /* The command layer's shape: "action" is the command's name. */
    if (json_object_set_new(c.req, "cmd", json_string(action)) < 0) {
        snprintf(why, why_n, "out of memory");
        mqtt_command_release(&c);
        return -ENOMEM;
    }
    json_object_del(c.req, "action");
    /* The name is cut to fit and may have been cut inside a character: records and events
     * that name the actor must stay valid UTF-8. */
    snprintf(c.actor.who, sizeof(c.actor.who), "mqtt:%.40s", client);
    utf8_sanitize(c.actor.who);
    *ret = c;
    return 0;
}

void mqtt_command_release(struct mqtt_command *c)
{
    json_decref(c->req);
    json_decref(c->key);
    c->req = c->key = NULL;
}

bool mqtt_command_outcome(json_t *reply, char *why, size_t why_n)
{
    const char *code = json_string_value(json_object_get(reply, "code"));

    if (json_is_true(json_object_get(reply, "ok")))
        return true;
    if (code && strcmp(code, "unknown_command") == 0) {
        /* Say what MQTT may do: the table's commands that it exposes. */
        size_t len = (size_t)snprintf(why, why_n, "unknown action (");
        for (unsigned i = 0, n = 0; i < command_count && len < why_n; i++)
            if (command_table[i].flags & CMD_MQTT)
                len += (size_t)snprintf(why + len, why_n - len, "%s%s", n++ ? ", " : "",
                                        command_table[i].name);
        if (len < why_n)
            snprintf(why + len, why_n - len, ")");
    } else {
        snprintf(why, why_n, "%s", json_string_value(json_object_get(reply, "error")) ?: "refused");
    }
    return false;
}

json_t *mqtt_command_event(const char *client, const char *action, bool ok, const char *why)
{
    char at[32], who[64], act[48], reason[160];

    snprintf(who, sizeof(who), "%s", client);
    snprintf(act, sizeof(act), "%.40s", action);
    snprintf(reason, sizeof(reason), "%s", ok ? "ok" : why);
    utf8_sanitize(who);
    utf8_sanitize(act);
    utf8_sanitize(reason);
    format_utc(now_utc(), at, sizeof(at));
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "kind", "command", "at", at, "client", who,
                     "action", act, "accepted", ok, "reason", reason);
}

static void command_result(struct mqtt *m, const char *client, const char *action, bool ok,
                           const char *why)
{
    json_t *o = mqtt_command_event(client, action, ok, why);
    char *text = json_dumps(o, JSON_COMPACT);

    /* Through the outbox: the result is sequenced and delivered like any event. */
    if (!text || store_outbox_add(m->store, "command", text) < 0)
        log_error("mqtt: cannot queue the result of a command from %s", client);
    free(text);
    if (!o)
        return;
    action = json_string_value(json_object_get(o, "action"));
    if (ok)
        log_info("mqtt: command %s from %s accepted", action, client);
    else
        log_notice("mqtt: command %s from %s refused: %s", action, client,
                   json_string_value(json_object_get(o, "reason")));
    json_decref(o);
}

static void on_command(struct mqtt *m, const char *client, const void *payload, int len)
{
    char why[160] = "ok";
    struct mqtt_command cmd;
    const char *action = "?", *key;
    bool ok = false;

    m->stats.commands++;
    if (mqtt_command_parse(client, payload, len, &cmd, why, sizeof(why)) < 0)
        goto done;
    action = json_string_value(json_object_get(cmd.req, "cmd"));
    key = json_string_value(cmd.key);
    /* Authorised by the key, or by the user name in the topic if the broker's ACL ties
     * the topic to that user (acl_check_start()). */
    if (!(key && m->key[0] && strlen(key) == strlen(m->key) &&
          sodium_memcmp(key, m->key, strlen(m->key)) == 0)) {
        if (!client_allowed(m, client)) {
            snprintf(why, sizeof(why), "client '%.40s' is not allowed to send commands", client);
            goto done;
        }
        if (m->acl == ACL_CHECKING) {
            snprintf(why, sizeof(why), "checking the broker's ACL: send the command again");
            goto done;
        }
        if (m->acl != ACL_TIED) {
            snprintf(why, sizeof(why), "the broker's ACL does not tie cmd/%.40s to its user: "
                     "only commands with the key are accepted", client);
            goto done;
        }
    }
    ok = m->on_command(&cmd, why, sizeof(why), m->userdata);
done:
    if (!ok)
        m->stats.commands_refused++;
    command_result(m, client, action, ok, why);
    mqtt_command_release(&cmd);
    drain(m);
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg)
{
    struct mqtt *m = userdata;
    char prefix[200], ha_status[128], ha_config[128];
    size_t plen;

    snprintf(prefix, sizeof(prefix), "%s/cmd/", m->base);
    plen = strlen(prefix);
    snprintf(ha_status, sizeof(ha_status), "%s/status", m->cfg->mqtt.discovery_prefix);
    snprintf(ha_config, sizeof(ha_config), "%s/", m->cfg->mqtt.discovery_prefix);
    if (strncmp(msg->topic, prefix, plen) == 0 && !strchr(msg->topic + plen, '/')) {
        char client[64];
        if (msg->retain) {
            /* A retained command would run again at every reconnect: never obey one. */
            log_warning("mqtt: ignoring a retained command on %s (publish commands without "
                        "retain; clear it with an empty retained message)", msg->topic);
            return;
        }
        if (acl_is_probe(m, msg->payload, msg->payloadlen))
            return;         /* our own probe came back: its acknowledgement says the rest */
        snprintf(client, sizeof(client), "%.63s", msg->topic + plen);
        utf8_sanitize(client);
        on_command(m, client, msg->payload, msg->payloadlen);
    } else if (strcmp(msg->topic, ha_status) == 0) {
        if (msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0) {
            log_info("mqtt: Home Assistant is back: publishing discovery again");
            publish_discovery(m);
            publish_states(m);
        }
    } else if (strncmp(msg->topic, ha_config, strlen(ha_config)) == 0 && msg->retain &&
               msg->payloadlen > 0) {
        /* DISCOVERY/COMPONENT/portier_SITE_OBJECT/config */
        char want[96], object[96];
        const char *id = strchr(msg->topic + strlen(ha_config), '/');
        json_t *conf = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, NULL);
        const char *site = json_string_value(
            json_array_get(json_object_get(json_object_get(conf, "device"), "identifiers"), 0));
        /* Ours only if the device is this site: "portier_fab_" also prefixes site fab_north. */
        bool ours = site && strcmp(site, m->cfg->site.id) == 0;
        json_decref(conf);
        snprintf(want, sizeof(want), "portier_%s_", m->cfg->site.id);
        if (ours && id && strncmp(id + 1, want, strlen(want)) == 0) {
            snprintf(object, sizeof(object), "%s", id + 1 + strlen(want));
            char *slash = strchr(object, '/');
            if (slash)
                *slash = '\0';
            if (!discovery_still_wanted(m, object)) {
                log_info("mqtt: removing discovery of %s (no longer configured)", object);
                mq.publish(m->mosq, NULL, msg->topic, 0, NULL, 1, true);
            }
        }
    } else {
        for (unsigned i = 0; i < ATTACHMENTS_MAX; i++)
            if (m->attached[i].ops && m->attached[i].ops->message &&
                m->attached[i].ops->message(msg->topic, msg->payload, msg->payloadlen,
                                            msg->retain, m->attached[i].userdata))
                break;
    }
    io_update(m);
}

/* ---- connection ---- */

static void schedule_retry(struct mqtt *m)
{
    int r = timer_arm_in(m->retry, (uint64_t)m->backoff_ms * 1000u);
    if (r < 0)
        log_error("mqtt: cannot schedule the next connection attempt: %s", strerror(-r));
    m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
}

static void lost(struct mqtt *m, const char *why)
{
    if (m->stopping)
        return;
    if (m->connected)
        log_warning("mqtt: disconnected from %s:%" PRId64 ": %s; events wait in the outbox",
                    m->cfg->mqtt.host, m->cfg->mqtt.port, why);
    m->connected = false;
    m->acl = ACL_UNKNOWN;
    m->acl_pending = 0;
    m->n_inflight = 0;          /* unacknowledged messages are sent again from the outbox */
    m->sent_up_to = 0;
    m->io = sd_event_source_disable_unref(m->io);
    schedule_retry(m);
    for (unsigned i = 0; i < ATTACHMENTS_MAX; i++)
        if (m->attached[i].ops && m->attached[i].ops->disconnected)
            m->attached[i].ops->disconnected(m->attached[i].userdata);
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc)
{
    struct mqtt *m = userdata;
    char t[320];

    if (rc != 0) {
        log_warning("mqtt: broker refused the connection: %s%s", mq.reason_string(rc),
                    rc == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION ?
                    " (portierd speaks MQTT 5: mosquitto 1.6 or later)" : "");
        return;     /* the disconnect that follows schedules a retry */
    }
    m->connected = true;
    m->refusal_logged = false;
    m->backoff_ms = BACKOFF_MIN_MS;
    m->stats.reconnects++;
    log_info("mqtt: connected to %s:%" PRId64 " as %s", m->cfg->mqtt.host, m->cfg->mqtt.port,
             m->client_id);
    publish(m, "status", "online", true, NULL);
    topic(m, t, sizeof(t), "cmd/+");
    mq.subscribe(m->mosq, NULL, t, 1);
    acl_check_start(m);
    if (m->cfg->mqtt.discovery) {
        snprintf(t, sizeof(t), "%s/status", m->cfg->mqtt.discovery_prefix);
        mq.subscribe(m->mosq, NULL, t, 1);
        publish_discovery(m);
    }
    /* Retained configs of ours, to remove those of doors and machines no longer there. */
    snprintf(t, sizeof(t), "%s/+/+/config", m->cfg->mqtt.discovery_prefix);
    mq.subscribe(m->mosq, NULL, t, 1);
    publish_states(m);
    drain(m);
    for (unsigned i = 0; i < ATTACHMENTS_MAX; i++)
        if (m->attached[i].ops && m->attached[i].ops->connected)
            m->attached[i].ops->connected(m->attached[i].userdata);
    io_update(m);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc)
{
    /* rc: a MOSQ_ERR_ code, or the reason code of the broker's DISCONNECT (MQTT 5). */
    lost(userdata, rc == 0 ? "closed" : rc >= 0x80 ? mq.reason_string(rc) : mq.strerror(rc));
}

static void io_update(struct mqtt *m)
{
    if (m->io)
        sd_event_source_set_io_events(m->io, EPOLLIN | (mq.want_write(m->mosq) ? EPOLLOUT : 0));
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct mqtt *m = userdata;
    int r = MOSQ_ERR_SUCCESS;

    if (mq.socket(m->mosq) != m->sock) {
        /* The library closed the connection behind our back (its socket is gone). */
        lost(m, "connection closed");
        return 0;
    }
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
        r = mq.loop_read(m->mosq, 1);
    if (r == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
        r = mq.loop_write(m->mosq, 1);
    if (r != MOSQ_ERR_SUCCESS && m->io) {
        /* libmosquitto calls on_disconnect for a clean close; make sure we retry anyway. */
        if (m->connected || m->io)
            lost(m, mq.strerror(r));
        return 0;
    }
    io_update(m);
    return 0;
}

static int start_connect(struct mqtt *m)
{
    int fd, dup_fd, r;

    r = mq.connect_async(m->mosq, m->cfg->mqtt.host, (int)m->cfg->mqtt.port,
                                (int)m->cfg->mqtt.keepalive);
    fd_cloexec_all();       /* libmosquitto's socket and socketpair lack close-on-exec */
    if (r != MOSQ_ERR_SUCCESS) {
        log_debug("mqtt: cannot reach %s:%" PRId64 ": %s", m->cfg->mqtt.host, m->cfg->mqtt.port,
                  mq.strerror(r));
        schedule_retry(m);
        return 0;
    }
    fd = mq.socket(m->mosq);
    if (fd < 0) {
        schedule_retry(m);
        return 0;
    }
    m->io = sd_event_source_disable_unref(m->io);
    /* libmosquitto creates its socket without close-on-exec, and closes it inside
     * mosquitto_loop_read() when the broker goes away, before we can take it out of epoll.
     * So the loop watches a duplicate that only we close: epoll_ctl(DEL) always works on it,
     * and the broker's socket never leaks into a child process. */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup_fd < 0) {
        log_warning("mqtt: cannot watch the broker's socket: %s", strerror(errno));
        mq.disconnect(m->mosq);
        schedule_retry(m);
        return 0;
    }
    if (sd_event_add_io(m->loop, &m->io, dup_fd, EPOLLIN | EPOLLOUT, on_io, m) < 0) {
        close(dup_fd);
        mq.disconnect(m->mosq);
        schedule_retry(m);
        return 0;
    }
    sd_event_source_set_io_fd_own(m->io, true);
    m->sock = fd;
    return 0;
}

static void retry_due(void *userdata)
{
    start_connect(userdata);
}

static void misc_due(void *userdata)
{
    struct mqtt *m = userdata;
    int r;

    /* Keep-alive pings and retries of unacknowledged messages. */
    if (m->io && mq.loop_misc(m->mosq) != MOSQ_ERR_SUCCESS && m->connected)
        lost(m, "keep-alive failed");
    io_update(m);
    drain(m);
    r = timer_arm_in(m->misc, 1000000u);
    if (r < 0)
        log_error("mqtt: cannot arm the keep-alive timer: %s", strerror(-r));
}

void mqtt_reconfigure(struct mqtt *m, const struct config *cfg)
{
    if (m)
        m->cfg = cfg;
}

int mqtt_new(sd_event *loop, struct store *store, const struct config *cfg,
             mqtt_command_fn on_command_fn, void *userdata, struct mqtt **ret)
{
    const struct mqtt_config *mc = &cfg->mqtt;
    struct mqtt *m = calloc(1, sizeof(*m));
    char will[320], password[256];
    int r;

    if (!m)
        return -ENOMEM;
    r = library_load();
    if (r < 0) {
        free(m);
        return r;
    }
    mq.lib_init();
    m->loop = loop;
    m->store = store;
    m->cfg = cfg;
    m->on_command = on_command_fn;
    m->userdata = userdata;
    m->backoff_ms = BACKOFF_MIN_MS;
    names_split(m);
    acl_probe_init(m);
    snprintf(m->base, sizeof(m->base), "%s/%s", mc->prefix, cfg->site.id);
    if (mc->client_id[0])
        snprintf(m->client_id, sizeof(m->client_id), "%s", mc->client_id);
    else
        snprintf(m->client_id, sizeof(m->client_id), "portier-%.50s", cfg->site.id);
    if (mc->command_key_file[0] && (r = file_read_first_line(mc->command_key_file, m->key, sizeof(m->key))) < 0) {
        log_error("mqtt: cannot read command_key_file %s: %s", mc->command_key_file, strerror(-r));
        goto fail;
    }
    m->mosq = mq.new(m->client_id, true, m);
    fd_cloexec_all();
    if (!m->mosq) {
        r = -ENOMEM;
        goto fail;
    }
    /* MQTT 5 for the reason codes of acknowledgements (enum acl_check). */
    mq.int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    /* Small messages go at once: a network relay's command and the acknowledgements around
     * it would otherwise wait for Nagle's algorithm and the peer's delayed ACK (~40 ms). */
    mq.int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mq.max_inflight_messages_set(m->mosq, INFLIGHT_MAX);
    topic(m, will, sizeof(will), "status");
    mq.will_set(m->mosq, will, 7, "offline", 1, true);
    if (mc->username[0]) {
        password[0] = '\0';
        if (mc->password_file[0] && (r = file_read_first_line(mc->password_file, password, sizeof(password))) < 0) {
            log_error("mqtt: cannot read password_file %s: %s", mc->password_file, strerror(-r));
            goto fail;
        }
        mq.username_pw_set(m->mosq, mc->username, password[0] ? password : NULL);
        sodium_memzero(password, sizeof(password));
    }
    if (mc->tls_ca[0]) {
        r = mq.tls_set(m->mosq, mc->tls_ca, NULL, mc->tls_cert[0] ? mc->tls_cert : NULL,
                              mc->tls_key[0] ? mc->tls_key : NULL, NULL);
        if (r != MOSQ_ERR_SUCCESS) {
            log_error("mqtt: TLS settings refused: %s", mq.strerror(r));
            r = -EINVAL;
            goto fail;
        }
    }
    mq.connect_callback_set(m->mosq, on_connect);
    mq.disconnect_callback_set(m->mosq, on_disconnect);
    mq.publish_v5_callback_set(m->mosq, on_publish);
    mq.message_callback_set(m->mosq, on_message);
    r = timer_new(loop, CLOCK_MONOTONIC, 10000, retry_due, m, &m->retry);
    if (r < 0)
        goto fail;
    if ((r = timer_new(loop, CLOCK_MONOTONIC, 100000, misc_due, m, &m->misc)) < 0 ||
        (r = timer_arm_in(m->misc, 1000000u)) < 0)
        goto fail;
    start_connect(m);
    *ret = m;
    return 0;
fail:
    mqtt_free(m);
    return r;
}

struct mqtt *mqtt_free(struct mqtt *m)
{
    if (!m)
        return NULL;
    m->stopping = true;
    if (m->connected) {
        publish(m, "status", "offline", true, NULL);
        mq.loop_write(m->mosq, 1);
        mq.disconnect(m->mosq);
    }
    sd_event_source_disable_unref(m->io);
    timer_free(m->misc);
    timer_free(m->retry);
    if (m->mosq)
        mq.destroy(m->mosq);
    for (unsigned i = 0; i < m->n_states; i++)
        free(m->states[i].payload);
    sodium_memzero(m->key, sizeof(m->key));
    free(m);
    mq.lib_cleanup();
    return NULL;
}

void mqtt_get_stats(const struct mqtt *m, struct mqtt_stats *ret)
{
    *ret = m->stats;
    ret->connected = m->connected;
    ret->outbox = store_outbox_count(m->store);
    ret->dropped = store_outbox_dropped(m->store);
}

/* ---- traffic of an attached module ---- */

int mqtt_attach(struct mqtt *m, const struct mqtt_attachment_ops *ops, void *userdata)
{
    unsigned i, free_slot = ATTACHMENTS_MAX;

    if (!m)
        return -EINVAL;
    for (i = 0; i < ATTACHMENTS_MAX; i++) {
        if (m->attached[i].ops && m->attached[i].userdata == userdata)
            break;
        if (!m->attached[i].ops && free_slot == ATTACHMENTS_MAX)
            free_slot = i;
    }
    if (!ops) {
        if (i < ATTACHMENTS_MAX)
            m->attached[i].ops = NULL;
        return 0;
    }
    if (i == ATTACHMENTS_MAX)
        i = free_slot;
    if (i == ATTACHMENTS_MAX)
        return -ENOSPC;
    m->attached[i].ops = ops;
    m->attached[i].userdata = userdata;
    if (m->connected && ops->connected)
        ops->connected(userdata);
    return 0;
}

bool mqtt_is_connected(const struct mqtt *m)
{
    return m && m->connected;
}

void mqtt_topic(const struct mqtt *m, const char *suffix, char *buf, size_t n)
{
    topic(m, buf, n, suffix);
}

/* A publish's or a subscription's MOSQ_ERR_* as -errno: a topic the library refuses (a
 * wildcard, bad UTF-8) is the caller's -EINVAL, a lost connection or a protocol error -EIO. */
static int mosq_errno(int r)
{
    switch (r) {
    case MOSQ_ERR_SUCCESS:          return 0;
    case MOSQ_ERR_NOMEM:            return -ENOMEM;
    case MOSQ_ERR_PAYLOAD_SIZE:     return -E2BIG;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:   return -EINVAL;
    default:                        return -EIO;
    }
}

int mqtt_publish_topic(struct mqtt *m, const char *topic_name, const void *payload, size_t len,
                       bool retain, int *ret_mid)
{
    int r;

    if (!m->connected)
        return -ENOTCONN;
    if (len > INT32_MAX)
        return -E2BIG;
    r = mosq_errno(mq.publish(m->mosq, ret_mid, topic_name, (int)len, payload, 1, retain));
    if (r == 0)
        io_update(m);
    return r;
}

int mqtt_subscribe_topic(struct mqtt *m, const char *pattern)
{
    if (!m->connected)
        return -ENOTCONN;
    return mosq_errno(mq.subscribe(m->mosq, NULL, pattern, 1));
}

int mqtt_publish_raw(struct mqtt *m, const char *suffix, const void *payload, size_t len,
                     bool retain, int *ret_mid)
{
    char t[320];

    topic(m, t, sizeof(t), suffix);
    return mqtt_publish_topic(m, t, payload, len, retain, ret_mid);
}

int mqtt_subscribe_consortium(struct mqtt *m, const char *pattern)
{
    char t[320];

    snprintf(t, sizeof(t), "%s/%s", m->cfg->mqtt.prefix, pattern);
    return mqtt_subscribe_topic(m, t);
}

int mqtt_subscribe_suffix(struct mqtt *m, const char *suffix)
{
    char t[320];

    topic(m, t, sizeof(t), suffix);
    return mqtt_subscribe_topic(m, t);
}

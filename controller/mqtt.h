/* mqtt: events out, commands in, Home Assistant discovery — libmosquitto on our loop.
 *
 * The client never blocks the loop on the network (non-blocking connect, the socket and a
 * keep-alive timer are loop sources), so a dead broker changes nothing at the door. Events
 * come from the store's outbox, written in the same transaction as the access log; they
 * are published with QoS 1 in sequence order and deleted when the broker acknowledges
 * them, so after an outage or a restart delivery resumes where it stopped. A receiver that
 * keeps the last sequence number sees each event exactly once. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "store.h"

#define MQTT_COMMAND_MAX 4096

struct mqtt;

/* A command from client (already authorised): do it, return true or false with why. */
typedef bool (*mqtt_command_fn)(const char *client, const char *action, json_t *cmd, char *why,
                                size_t why_n, void *userdata);

/* Start the client (connecting in the background). 0 or -errno (bad TLS files, ...). */
int mqtt_new(sd_event *loop, struct store *store, const struct config *cfg,
             mqtt_command_fn on_command, void *userdata, struct mqtt **ret);
/* Publish "offline", disconnect. NULL-safe. */
struct mqtt *mqtt_free(struct mqtt *m);

/* A retained state message (e.g. "door/front/state"), sent now if connected and again on
 * every reconnect. payload is copied. */
void mqtt_state(struct mqtt *m, const char *topic_suffix, json_t *payload);
/* The outbox has new messages: publish them. */
void mqtt_kick(struct mqtt *m);

struct mqtt_stats {
    bool connected;
    uint64_t published, acknowledged, commands, commands_refused, reconnects;
    int64_t last_seq;           /* of the last acknowledged event */
    int64_t outbox;             /* messages waiting */
    uint64_t dropped;           /* dropped because the outbox was full */
};
void mqtt_get_stats(const struct mqtt *m, struct mqtt_stats *ret);

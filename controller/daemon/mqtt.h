/* SPDX-License-Identifier: AGPL-3.0-or-later */
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

#include "command.h"
#include "config.h"
#include "store.h"

#define MQTT_COMMAND_MAX 4096

struct mqtt;

/* A command message on PREFIX/SITE/cmd/CLIENT, as the command layer takes it. */
struct mqtt_command {
    json_t *req;            /* {"cmd": ACTION, ARG: VALUE...}: the payload's members, with
                             * "action" renamed "cmd" and "key" taken out */
    json_t *key;            /* the payload's "key" (a JSON string), or NULL */
    struct actor actor;     /* who it acts as once authorised: an automation is a manager
                             * on the MQTT channel, named "mqtt:CLIENT" (valid UTF-8) */
};

/* Take a command payload apart: 1 to MQTT_COMMAND_MAX bytes of JSON, an object (no key
 * twice) with a string "action" and optionally a string "key"; client is the topic's last
 * level. 0 and *ret filled (release it with mqtt_command_release()), or -EBADMSG (or
 * -ENOMEM) with why saying what is wrong and *ret empty. Authorisation (the key, or the
 * broker's ACL) is the caller's. Every command message goes through this (mqtt.c). */
int mqtt_command_parse(const char *client, const void *payload, int len,
                       struct mqtt_command *ret, char *why, size_t why_n);
void mqtt_command_release(struct mqtt_command *c);

/* The command layer's reply to a command: true if it says ok, else false with why set to
 * what the client is told (for an unknown action, the actions MQTT may send). */
bool mqtt_command_outcome(json_t *reply, char *why, size_t why_n);

/* The "command" event that reports a command's outcome to the broker (new reference, NULL
 * if out of memory): client, action and why are cut to fit and made valid UTF-8. */
json_t *mqtt_command_event(const char *client, const char *action, bool ok, const char *why);

/* A command from its client, authorised: do it, return true, or false with why. */
typedef bool (*mqtt_command_fn)(const struct mqtt_command *cmd, char *why, size_t why_n,
                                void *userdata);

/* Start the client (connecting in the background). 0 or -errno (bad TLS files, ...). cfg is
 * borrowed: it must outlive m, or be replaced by mqtt_reconfigure() first. */
int mqtt_new(sd_event *loop, struct store *store, const struct config *cfg,
             mqtt_command_fn on_command, void *userdata, struct mqtt **ret);
/* A reload: use cfg from now on (its [mqtt] and site id are the old one's; the old config
 * may be freed once this returns). NULL-safe. */
void mqtt_reconfigure(struct mqtt *m, const struct config *cfg);
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

/* Other modules' traffic on the same connection (the consortium's ledger transport, the
 * network relays and meters of machines): connected() after each connection (subscribe
 * there), disconnected() when it is lost, message() for every message on a topic none of
 * this module's own handlers took (return true if it was yours: later attachments do not
 * see it), published(mid) when the broker acknowledged a publish (every attachment hears
 * every mid; keep your own). Up to 4 attachments, one per userdata; ops and userdata must
 * outlive m or be detached with NULL ops and the same userdata. 0, -ENOSPC (full) or
 * -EINVAL (m NULL). */
struct mqtt_attachment_ops {
    void (*connected)(void *userdata);
    void (*disconnected)(void *userdata);
    bool (*message)(const char *topic, const void *payload, int len, bool retain, void *userdata);
    void (*published)(int mid, void *userdata);
};
int mqtt_attach(struct mqtt *m, const struct mqtt_attachment_ops *ops, void *userdata);
bool mqtt_is_connected(const struct mqtt *m);
/* PREFIX/SITE/suffix, QoS 1. 0 or -errno: -ENOTCONN when not connected, -E2BIG for a payload
 * too large, -EINVAL for a topic the library refuses, -ENOMEM, -EIO (the same for all the
 * publish and subscribe calls below). */
int mqtt_publish_raw(struct mqtt *m, const char *suffix, const void *payload, size_t len,
                     bool retain, int *ret_mid);
int mqtt_subscribe_suffix(struct mqtt *m, const char *suffix);
/* A topic outside PREFIX/SITE (another device's, e.g. "shellyplus1pm-a8032ab12345/rpc"),
 * QoS 1. 0 or -errno (-ENOTCONN when not connected). */
int mqtt_publish_topic(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       bool retain, int *ret_mid);
/* Subscribe to a topic or pattern outside PREFIX/SITE, QoS 1; again after each connection. */
int mqtt_subscribe_topic(struct mqtt *m, const char *pattern);
/* PREFIX/pattern (every site's topics, e.g. "+/passport/#"), QoS 1. */
int mqtt_subscribe_consortium(struct mqtt *m, const char *pattern);
/* PREFIX/SITE/suffix into buf. */
void mqtt_topic(const struct mqtt *m, const char *suffix, char *buf, size_t n);

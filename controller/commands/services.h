/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* services: what a command handler may use — the daemon's modules, wired by daemon.c.
 *
 * Handlers reach the site through this and nothing else. Optional parts are NULL when the
 * site does not use them (MQTT, the consortium). The configuration is replaced on reload:
 * read it through svc->cfg each time, never keep the pointer. */
#pragma once
#include <jansson.h>
#include <systemd/sd-event.h>

struct config;
struct store;
struct commit;
struct access_engine;
struct site;
struct fablab;
struct meter;
struct consortium;
struct mqtt;
struct enroll;
struct delivery;
struct retention;
struct provision;
struct reader_desfire_keys;

struct services {
    sd_event *loop;
    const struct config *cfg;
    struct store *store;
    struct commit *commit;
    struct access_engine *engine;
    struct site *site;                  /* doors, readers and what routes between them */
    struct fablab *fablab;
    struct meter *meter;
    struct enroll *enroll;
    struct retention *retention;        /* deletes what is past its retention; erasures */
    struct provision *provision;        /* DESFire provisioning at readers */
    const struct reader_desfire_keys *desfire_keys;     /* for the reader workers */
    struct consortium *consortium;      /* NULL unless [consortium] enabled */
    struct mqtt *mqtt;                  /* NULL unless [mqtt] enabled */
    struct delivery *delivery;          /* NULL unless [mail] enabled or a [webhook] */
    /* The `status` object (daemon/status.c): new reference. */
    json_t *(*status)(struct services *svc);
    uint64_t started_usec;              /* CLOCK_MONOTONIC, for uptime */
};

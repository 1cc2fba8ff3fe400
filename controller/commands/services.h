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
struct offload;
struct reader_desfire_keys;

/* What changed, for those who show the site live (the web's entrance screens). */
enum services_news {
    NEWS_PRESENCE = 1 << 0,     /* someone checked in or out */
    NEWS_MACHINES = 1 << 1,     /* a machine's state or out-of-order flag */
    NEWS_DOORS = 1 << 2,        /* a door locked, unlocked, opened or closed */
    NEWS_BOOKINGS = 1 << 3,     /* bookings or machines in the store */
    NEWS_KIOSKS = 1 << 4,       /* an entrance screen was removed: its stream must end */
};

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
    struct offload *offload;            /* disk work off the loop (NULL: done in place) */
    const struct reader_desfire_keys *desfire_keys;     /* for the reader workers */
    struct consortium *consortium;      /* NULL unless [consortium] enabled */
    struct mqtt *mqtt;                  /* NULL unless [mqtt] enabled */
    struct delivery *delivery;          /* NULL unless [mail] enabled or a [webhook] */
    /* The `status` object (daemon/status.c): new reference. */
    json_t *(*status)(struct services *svc);
    uint64_t started_usec;              /* CLOCK_MONOTONIC, for uptime */
    /* Told what changed (enum services_news bits); NULL: nobody listens. It runs on the
     * door's path: it only notes the news and returns. */
    void (*news)(void *ctx, unsigned what);
    void *news_ctx;
};

static inline void services_news(struct services *svc, unsigned what)
{
    if (svc && svc->news)
        svc->news(svc->news_ctx, what);
}

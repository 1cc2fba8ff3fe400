/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "accounts.h"
#include "card_keys.h"
#include "cardid.h"
#include "command.h"
#include "commit.h"
#include "config.h"
#include "consortium.h"
#include "delivery.h"
#include "enroll.h"
#include "fablab.h"
#include "gpio_backend.h"
#include "log.h"
#include "members.h"
#include "meter.h"
#include "mqtt.h"
#include "offload.h"
#include "passports.h"
#include "provision.h"
#include "realtime.h"
#include "retention.h"
#include "services.h"
#include "site.h"
#include "status.h"
#include "store.h"
#include "timer.h"
#include "util.h"
#include "web_module.h"

/* The daemon owns every module and the services that hand them to commands. */
struct daemon {
    struct services svc;
    struct config *cfg;
    char config_path[PATH_MAX];
    struct control *control;
    struct http *http;              /* NULL when [http] listen is empty */
    const struct web_module *web;   /* loaded with [http] only */
    struct timer *minute;
    struct reader_desfire_keys *desfire_keys;   /* locked memory: for the reader workers */
    uint64_t generation_seen;       /* of the store's bookings and machines, for news */
};

static void set_timezone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void notify_status(struct daemon *d)
{
    sd_notifyf(0, "STATUS=%u doors, %u readers, %" PRId64 " members",
               site_door_count(d->svc.site), site_reader_count(d->svc.site),
               store_member_count(d->svc.store));
}

/* ---- durability: what commit.c reports ---- */

static void on_durable(void *userdata)
{
    struct daemon *d = userdata;
    uint64_t gen = store_generation(d->svc.store);

    mqtt_kick(d->svc.mqtt);     /* only durable events leave the site */
    delivery_kick(d->svc.delivery);
    consortium_kick(d->svc.consortium);
    if (gen != d->generation_seen) {
        d->generation_seen = gen;
        services_news(&d->svc, NEWS_BOOKINGS);  /* a booking or a machine's rules changed */
    }
}

/* The storage alarm, as it starts and ends: systemd's status line and a retained MQTT state
 * (the outbox lives in the database that is failing, so this goes around it). */
static void on_storage_health(void *userdata)
{
    struct daemon *d = userdata;
    struct commit_health h;

    commit_get_health(d->svc.commit, &h);
    if (!h.ok)
        sd_notifyf(0, "STATUS=storage failing: %s; %u access events held in memory",
                   strerror(-h.error), h.held_events);
    else
        notify_status(d);
    if (d->svc.mqtt) {
        json_t *st = status_storage_json(d->svc.commit);
        mqtt_state(d->svc.mqtt, "storage", st);
        json_decref(st);
    }
}

/* ---- MQTT commands: the same table as portierctl's ---- */

static bool on_mqtt_command(const struct mqtt_command *cmd, char *why, size_t why_n,
                            void *userdata)
{
    struct daemon *d = userdata;
    json_t *reply = cmd_run(&d->svc, &cmd->actor, cmd->req);
    bool ok = mqtt_command_outcome(reply, why, why_n);

    json_decref(reply);
    return ok;
}

/* ---- the minute timer ---- */

static void minute_due(void *userdata)
{
    struct daemon *d = userdata;
    struct timespec ts;
    int r;

    members_minute(&d->svc);        /* plan changes due now, before the doors' minute */
    site_minute(d->svc.site);
    fablab_minute(d->svc.fablab);
    delivery_minute(d->svc.delivery);
    /* Re-arm on the next wall-clock minute: windows are wall-clock times, and realtime
     * timers follow clock jumps (NTP sync on a Pi without RTC). */
    clock_gettime(CLOCK_REALTIME, &ts);
    r = timer_arm_at(d->minute, ((uint64_t)ts.tv_sec / 60 + 1) * 60 * 1000000ull);
    if (r < 0)
        log_error("cannot arm the minute timer: %s; opening hours, bookings and check-outs "
                  "are no longer followed", strerror(-r));
}

/* ---- signals ---- */

static void log_config_errors(const struct config_errors *errors)
{
    unsigned shown = errors->count < CONFIG_MAX_ERRORS ? errors->count : CONFIG_MAX_ERRORS;
    for (unsigned i = 0; i < shown; i++)
        log_error("%s", errors->msg[i]);
    if (errors->count > shown)
        log_error("... and %u more errors", errors->count - shown);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    struct daemon *d = userdata;
    struct config_errors errors;
    struct config *next;
    const char *why = "";

    sd_notify(0, "RELOADING=1");
    log_info("SIGHUP: reloading %s", d->config_path);
    if (config_load(d->config_path, &next, &errors) < 0) {
        log_config_errors(&errors);
        log_error("SIGHUP: %s has errors; keeping the current configuration", d->config_path);
    } else if (!config_same_hardware(d->cfg, next, &why)) {
        log_error("SIGHUP: %s; restart portierd to apply it. Keeping the current configuration",
                  why);
        config_free(next);
    } else {
        site_reconfigure(d->svc.site, next);
        fablab_reconfigure(d->svc.fablab, next);
        meter_configure(d->svc.meter, next->site.id, (int)next->metering.day_starts);
        if (d->web)
            d->web->reconfigure(d->http, next);
        /* Every module that keeps the configuration moves to the new one before the old is
         * freed (MQTT once published events with a freed site id). */
        mqtt_reconfigure(d->svc.mqtt, next);
        consortium_reconfigure(d->svc.consortium, next);
        config_free(d->cfg);
        d->cfg = next;
        d->svc.cfg = next;
        log_set_level(next->daemon.log_level);
        set_timezone(next->site.timezone);
        (void)realtime_enter((int)next->daemon.realtime_priority);
        site_minute(d->svc.site);
        log_info("SIGHUP: configuration reloaded");
    }
    sd_notify(0, "READY=1");
    notify_status(d);
    return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    struct daemon *d = userdata;
    log_info("received %s, stopping", strsignal((int)si->ssi_signo));
    sd_notify(0, "STOPPING=1");
    sd_event_exit(d->svc.loop, 0);
    return 0;
}

/* ---- life cycle ---- */

static int open_store(struct daemon *d)
{
    const struct config *cfg = d->cfg;
    uint8_t card_key[CARDID_KEY_LEN];
    char db_path[PATH_MAX];
    int r;

    if (mkdir(cfg->daemon.state_dir, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        log_error("cannot create state directory %s: %s", cfg->daemon.state_dir, strerror(-r));
        return r;
    }
    config_database_path(cfg, db_path, sizeof(db_path));
    r = store_open(db_path, &d->svc.store);
    if (r < 0) {
        log_error("cannot open database %s: %s", db_path,
                  r == -EPROTO ? "it was written by a newer Portier" : strerror(-r));
        return r;
    }
    r = commit_new(d->svc.loop, d->svc.store, db_path, on_durable, on_storage_health, d,
                   &d->svc.commit);
    if (r < 0) {
        log_error("cannot prepare the database %s for writing: %s", db_path, strerror(-r));
        return r;
    }
    r = store_accounts_hash_calendar_tokens(d->svc.store, account_token_hash);
    if (r < 0) {
        log_error("cannot hash the calendar addresses kept in clear: %s", strerror(-r));
        return r;
    }
    if (r > 0)
        log_notice("%d calendar addresses kept in clear by an older version are now kept "
                   "hashed; they go on working", r);
    r = store_secret(d->svc.store, "card_key", card_key, sizeof(card_key));
    if (r < 0) {
        log_error("cannot read or create the site's card key: %s", strerror(-r));
        return r;
    }
    r = access_engine_new(d->svc.store, card_key, (unsigned)cfg->daemon.recent_taps,
                          &d->svc.engine);
    sodium_memzero(card_key, sizeof(card_key));
    if (r < 0)
        return r;
    r = meter_new(d->svc.store, cfg->site.id, (int)cfg->metering.day_starts, &d->svc.meter);
    if (r == -EXDEV)
        log_error("the database %s belongs to another site id than [site] id = %s: its ledger "
                  "is signed for that site; restore the old id or use another state_dir",
                  db_path, cfg->site.id);
    else if (r < 0)
        log_error("cannot read or create the site's signing key: %s", strerror(-r));
    return r;
}

/* The outbox is written when someone reads it: MQTT, webhooks, or both (store_events.c
 * keeps each message until every one of them has it). */
static int start_outbox(struct daemon *d)
{
    const struct config *cfg = d->cfg;
    const char *names[CONFIG_MAX_WEBHOOKS];
    int r;

    if (!cfg->mqtt.enabled && !cfg->n_webhooks)
        return 0;
    for (unsigned i = 0; i < cfg->n_webhooks; i++)
        names[i] = cfg->webhooks[i].name;
    r = store_outbox_enable(d->svc.store, true, cfg->mqtt.outbox_max);
    if (r == 0)
        r = store_outbox_consumers(d->svc.store, cfg->mqtt.enabled, names, cfg->n_webhooks);
    if (r < 0)
        log_error("cannot prepare the outbox: %s", strerror(-r));
    return r;
}

/* MQTT, the consortium over it, and the first states. */
static int start_mqtt(struct daemon *d)
{
    struct services *svc = &d->svc;
    int r;

    r = mqtt_new(svc->loop, svc->store, d->cfg, on_mqtt_command, d, &svc->mqtt);
    if (r < 0) {
        log_error("mqtt: cannot start: %s", strerror(-r));
        return r;
    }
    if (d->cfg->consortium.enabled) {
        r = consortium_new(svc->loop, svc->store, svc->meter, svc->mqtt, d->cfg, &svc->consortium);
        if (r < 0) {
            log_error("consortium: cannot start: %s", strerror(-r));
            return r;
        }
        if (consortium_passports(svc->consortium))
            access_engine_set_visitors(svc->engine, &passports_visitor_ops,
                                       consortium_passports(svc->consortium));
    }
    fablab_set_mqtt(svc->fablab, svc->mqtt);       /* network relays and meters */
    site_publish_all(svc->site);
    on_storage_health(d);
    return 0;
}

int daemon_new(const char *config_path, struct daemon **ret)
{
    struct config_errors errors;
    struct daemon *d;
    struct door_hw hw;
    sigset_t mask;
    int r;

    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->svc.started_usec = now_mono_usec();
    d->svc.status = status_json;
    strlcpy_checked(d->config_path, config_path, sizeof(d->config_path));
    r = config_load(config_path, &d->cfg, &errors);
    if (r < 0) {
        log_config_errors(&errors);
        goto fail;
    }
    d->svc.cfg = d->cfg;
    log_set_level(d->cfg->daemon.log_level);
    set_timezone(d->cfg->site.timezone);
    /* Before any thread or process exists: each starts at normal priority (base/realtime.h). */
    (void)realtime_enter((int)d->cfg->daemon.realtime_priority);

    r = sd_event_default(&d->svc.loop);
    if (r < 0)
        goto fail;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);      /* reader workers' exits come through sd-event */
    sigaddset(&mask, SIGPIPE);      /* a peer gone mid-write is EPIPE, for every thread */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if ((r = sd_event_add_signal(d->svc.loop, NULL, SIGTERM, on_sigterm, d)) < 0 ||
        (r = sd_event_add_signal(d->svc.loop, NULL, SIGINT, on_sigterm, d)) < 0 ||
        (r = sd_event_add_signal(d->svc.loop, NULL, SIGHUP, on_sighup, d)) < 0)
        goto fail;
    /* Pets the systemd watchdog from the loop itself: a stuck loop stops the petting. */
    sd_event_set_watchdog(d->svc.loop, true);

    if ((r = open_store(d)) < 0 || (r = offload_new(d->svc.loop, &d->svc.offload)) < 0)
        goto fail;
    relay_sim_set_state_dir(d->cfg->hardware.sim_state_dir);
    hw.relay_ops = relay_ops_by_name(config_backends[d->cfg->hardware.backend]);
    hw.input_ops = input_ops_by_name(config_backends[d->cfg->hardware.backend]);
    hw.debounce_ms = (unsigned)d->cfg->hardware.debounce_ms;
    hw.bias = (enum input_bias)d->cfg->hardware.input_bias;
    /* The DESFire keys, before the readers: each worker gets them when it starts. */
    if ((r = card_keys_load(d->cfg, &d->desfire_keys)) < 0)
        goto fail;
    d->svc.desfire_keys = d->desfire_keys;
    if ((r = site_new(&d->svc, &hw, &d->svc.site)) < 0 ||
        (r = fablab_new(d->svc.loop, d->svc.store, d->svc.engine, d->svc.meter, d->cfg, &hw,
                        &d->svc.fablab)) < 0 ||
        (r = enroll_new(&d->svc, &d->svc.enroll)) < 0 ||
        (r = retention_new(&d->svc, &d->svc.retention)) < 0 ||
        (r = provision_new(&d->svc, &d->svc.provision)) < 0 ||
        (r = site_start_readers(d->svc.site)) < 0)
        goto fail;
    /* Machine changes go to MQTT (when enabled) and to the web's entrance screens. */
    fablab_on_change(d->svc.fablab, site_publish_machine, d->svc.site);
    /* The first minute tick runs as soon as the loop starts. */
    if ((r = timer_new(d->svc.loop, CLOCK_REALTIME, 1000000, minute_due, d, &d->minute)) < 0 ||
        (r = timer_arm_at(d->minute, 0)) < 0)
        goto fail;
    r = control_new(&d->svc, d->cfg->daemon.control_socket, d->cfg->daemon.control_mode,
                    d->cfg->daemon.control_group, &d->control);
    if (r < 0) {
        log_error("cannot listen on control socket %s: %s", d->cfg->daemon.control_socket,
                  strerror(-r));
        goto fail;
    }
    if ((r = start_outbox(d)) < 0)
        goto fail;
    if (d->cfg->mqtt.enabled && (r = start_mqtt(d)) < 0)
        goto fail;
    if ((r = delivery_new(&d->svc, &d->svc.delivery)) < 0)
        goto fail;
    if (d->cfg->http.listen[0]) {
        struct http_env env = { .loop = d->svc.loop, .svc = &d->svc };
        r = web_module_load(&d->web);
        if (r == 0)
            r = d->web->start(&env, d->cfg, &d->http);
        if (r < 0)
            goto fail;
    }
    r = commit_flush(d->svc.commit);
    if (r < 0) {
        log_error("cannot write the database: %s", strerror(-r));
        goto fail;
    }
    *ret = d;
    return 0;
fail:
    daemon_free(d);
    return r;
}

int daemon_run(struct daemon *d)
{
    int r;

    log_info("portierd %s ready: site %s, %u doors, %u readers, %s hardware", PORTIER_VERSION,
             d->cfg->site.id, site_door_count(d->svc.site), site_reader_count(d->svc.site),
             config_backends[d->cfg->hardware.backend]);
    sd_notify(0, "READY=1");
    notify_status(d);
    r = sd_event_loop(d->svc.loop);
    if (r < 0) {
        log_error("event loop failed: %s", strerror(-r));
        return 1;
    }
    return r;
}

struct services *daemon_services(struct daemon *d) { return &d->svc; }

struct daemon *daemon_free(struct daemon *d)
{
    struct services *svc;

    if (!d)
        return NULL;
    svc = &d->svc;
    /* Machines that stop below tell nobody: the site that listened is freed first. */
    if (svc->fablab)
        fablab_on_change(svc->fablab, NULL, NULL);
    /* A waiting provisioning hears "cancelled" while its reader still exists (no relay is
     * touched); then the doors, so that whatever fails below, they are in their safe state. */
    svc->provision = provision_free(svc->provision);
    svc->site = site_free(svc->site);
    if (d->web)
        d->http = d->web->stop(d->http);
    /* Files being written (a period's archive) are finished, and their callers answered. */
    svc->offload = offload_free(svc->offload);
    svc->fablab = fablab_free(svc->fablab);     /* machines off, sessions closed as "stopped" */
    svc->meter = meter_free(svc->meter);
    d->control = control_free(d->control);      /* no reply is left waiting on a commit */
    svc->enroll = enroll_free(svc->enroll);
    svc->delivery = delivery_free(svc->delivery);   /* its last cursors go in the last commit */
    svc->retention = retention_free(svc->retention);
    commit_flush(svc->commit);
    mqtt_kick(svc->mqtt);
    if (svc->engine)
        access_engine_set_visitors(svc->engine, NULL, NULL);
    svc->consortium = consortium_free(svc->consortium);
    svc->mqtt = mqtt_free(svc->mqtt);
    d->minute = timer_free(d->minute);
    svc->commit = commit_free(svc->commit);
    svc->engine = access_engine_free(svc->engine);
    svc->store = store_free(svc->store);
    svc->loop = sd_event_unref(svc->loop);
    d->desfire_keys = card_keys_free(d->desfire_keys);
    d->cfg = config_free(d->cfg);
    free(d);
    return NULL;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "site.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "consortium.h"
#include "enroll.h"
#include "fablab.h"
#include "log.h"
#include "meter.h"
#include "mqtt.h"
#include "passports.h"
#include "services.h"
#include "store.h"
#include "util.h"

struct site {
    struct services *svc;
    unsigned n_doors;
    struct door doors[CONFIG_MAX_DOORS];
    unsigned n_readers;
    struct reader readers[CONFIG_MAX_READERS];
    struct relay reader_resets[CONFIG_MAX_READERS];
    const struct relay_ops *relay_ops;
    char closed_on[11];             /* local date of the last closing-time check-out */
};

/* ---- lookups ---- */

struct door *site_door(struct site *s, const char *name)
{
    for (unsigned i = 0; i < s->n_doors; i++)
        if (strcmp(s->doors[i].cfg->name, name) == 0)
            return &s->doors[i];
    return NULL;
}

struct door *site_door_by_reader(struct site *s, const char *reader, bool *is_exit)
{
    for (unsigned i = 0; i < s->n_doors; i++) {
        if (strcmp(s->doors[i].cfg->reader, reader) == 0) {
            if (is_exit)
                *is_exit = false;
            return &s->doors[i];
        }
        if (strcmp(s->doors[i].cfg->exit_reader, reader) == 0) {
            if (is_exit)
                *is_exit = true;
            return &s->doors[i];
        }
    }
    return NULL;
}

struct reader *site_reader(struct site *s, const char *name)
{
    for (unsigned i = 0; i < s->n_readers; i++)
        if (strcmp(s->readers[i].name, name) == 0)
            return &s->readers[i];
    return NULL;
}

struct input *site_input(struct site *s, const char *name)
{
    for (unsigned i = 0; i < s->n_doors; i++) {
        struct door *door = &s->doors[i];
        if (door->contact.is_open && strcmp(door->contact.name, name) == 0)
            return &door->contact;
        if (door->exit_button.is_open && strcmp(door->exit_button.name, name) == 0)
            return &door->exit_button;
    }
    return fablab_input_by_name(s->svc->fablab, name);
}

unsigned site_door_count(const struct site *s) { return s->n_doors; }
struct door *site_door_at(struct site *s, unsigned i) { return &s->doors[i]; }
unsigned site_reader_count(const struct site *s) { return s->n_readers; }
struct reader *site_reader_at(struct site *s, unsigned i) { return &s->readers[i]; }

/* ---- MQTT states ---- */

int site_present(struct site *s)
{
    int64_t n = store_present_count(s->svc->store);
    return n < 0 ? -1 : n > INT_MAX ? INT_MAX : (int)n;
}

/* How many people are in (no names). */
void site_occupancy_changed(struct site *s)
{
    json_t *st;

    services_news(s->svc, NEWS_PRESENCE);
    if (!s->svc->mqtt)
        return;
    st = json_pack("{s:i}", "present", site_present(s));
    mqtt_state(s->svc->mqtt, "occupancy", st);
    json_decref(st);
}

void site_publish_machine(struct machine *m, void *userdata)
{
    struct site *s = userdata;
    struct store_resource res;
    char suffix[96];
    json_t *st;

    services_news(s->svc, NEWS_MACHINES);
    if (!s->svc->mqtt)
        return;
    snprintf(suffix, sizeof(suffix), "machine/%s/state", m->cfg->name);
    st = json_pack("{s:s, s:b, s:I, s:b, s:b, s:s}", "state", machine_state_to_string(m->state),
                   "powered", machine_powered(m), "member_id",
                   (json_int_t)(machine_powered(m) ? m->member_id : 0), "running", m->running,
                   "out_of_order", store_resource_get(s->svc->store, m->cfg->name, &res) == 0 &&
                                       res.out_of_order, "alarm", m->alarm ? m->alarm : "none");
    mqtt_state(s->svc->mqtt, suffix, st);
    json_decref(st);
}

static void publish_door(struct site *s, struct door *door)
{
    char suffix[96];
    json_t *st;

    if (!s->svc->mqtt)
        return;
    snprintf(suffix, sizeof(suffix), "door/%s/state", door->cfg->name);
    st = json_pack("{s:s, s:s, s:s, s:s, s:b}", "lock", door->unlocked ? "UNLOCKED" : "LOCKED",
                   "contact", !door->contact.is_open ? "none" : door->open ? "open" : "closed",
                   "alarm", door->alarm_forced ? "forced" : door->alarm_held_open ? "held_open" : "none",
                   "cause", door->unlocked ? door_cause_to_string(door->cause) : "",
                   "free_entry", door->free_entry);
    mqtt_state(s->svc->mqtt, suffix, st);
    json_decref(st);
}

void site_publish_all(struct site *s)
{
    for (unsigned i = 0; i < s->n_doors; i++)
        publish_door(s, &s->doors[i]);
    fablab_publish_all(s->svc->fablab);
    site_occupancy_changed(s);
}

/* ---- door changes ---- */

static void on_door_event(struct door *door, enum door_event ev, void *userdata)
{
    struct site *s = userdata;
    struct access_engine *engine = s->svc->engine;
    const char *name = door->cfg->name;

    bool change = ev == DOOR_EV_UNLOCKED || ev == DOOR_EV_LOCKED || ev == DOOR_EV_OPENED ||
                  ev == DOOR_EV_CLOSED;

    if (change)
        services_news(s->svc, NEWS_DOORS);
    if ((s->svc->mqtt || s->svc->cfg->n_webhooks) && change) {
        /* Door changes are events too (alarms, exits and taps go through the access log). */
        char at[32], *text;
        json_t *e;
        format_utc(now_utc(), at, sizeof(at));
        e = json_pack("{s:s, s:s, s:s, s:s}", "kind", "door", "door", name, "change",
                      door_event_to_string(ev), "at", at);
        text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        if (text && store_outbox_add(s->svc->store, "door", text) < 0)
            log_error("door %s: cannot queue the %s event for MQTT and webhooks", name,
                      door_event_to_string(ev));
        free(text);
    }
    publish_door(s, door);

    switch (ev) {
    case DOOR_EV_UNLOCKED:
        log_info("door %s: unlocked (%s)", name, door_cause_to_string(door->cause));
        break;
    case DOOR_EV_LOCKED:
        log_info("door %s: locked", name);
        break;
    case DOOR_EV_OPENED:
    case DOOR_EV_CLOSED:
        log_debug("door %s: %s", name, door_event_to_string(ev));
        break;
    case DOOR_EV_EXIT_PRESSED:
        log_info("door %s: exit button pressed, unlocked for %" PRId64 " s", name,
                 door->cfg->unlock_seconds);
        access_record_door_event(engine, door, "exit", true, "exit_button", NULL);
        break;
    case DOOR_EV_ALARM_FORCED:
        log_warning("door %s: ALARM forced open while locked", name);
        access_record_door_event(engine, door, "alarm", false, "forced", NULL);
        break;
    case DOOR_EV_ALARM_HELD_OPEN:
        log_warning("door %s: ALARM held open for more than %" PRId64 " s", name,
                    door->cfg->held_open_seconds);
        access_record_door_event(engine, door, "alarm", false, "held_open", NULL);
        break;
    case DOOR_EV_ALARM_CLEARED:
        log_notice("door %s: alarm cleared, door closed", name);
        access_record_door_event(engine, door, "alarm_cleared", true, "closed", NULL);
        break;
    case DOOR_EV_RELAY_FAULT:
        log_error("door %s: relay write failed: %s", name, strerror(-door->last_error));
        break;
    }
}

/* ---- a card at a reader ---- */

static void on_reader_event(struct reader *reader, const struct reader_event *ev, void *userdata)
{
    struct site *s = userdata;
    struct services *svc = s->svc;
    struct access_tap tap;
    struct door *door;
    bool is_exit = false;
    int r;

    if (ev->kind != READER_CARD_ARRIVED)
        return;
    if (enroll_take(svc->enroll, reader, ev))
        return;
    door = site_door_by_reader(s, reader->name, &is_exit);
    if (!door && fablab_reader_tap(svc->fablab, reader->name, ev))
        return;
    if (!door) {
        log_debug("reader %s: card arrived, but no door uses this reader", reader->name);
        return;
    }
    if (access_handle_tap(svc->engine, door, reader->name, ev, &tap) < 0 || !tap.granted ||
        tap.relay_error)
        return;
    if (tap.visitor)
        return;             /* recorded as a visit by the consortium (passports.c) */
    /* A card enrolled before passports existed gets its consortium hash at its first tap. */
    passports_card_seen(consortium_passports(svc->consortium), tap.card_id, ev->uid, ev->uid_len);
    /* The door is open; now the bookkeeping: entries check in, exit readers check out. */
    r = is_exit ? meter_check_out(svc->meter, tap.member_id, tap.at, "tap_out")
                : meter_check_in(svc->meter, tap.member_id, door->cfg->name, tap.at);
    if (r < 0 && r != -ENOENT)
        log_error("door %s: cannot record the %s of member %" PRId64 ": %s", door->cfg->name,
                  is_exit ? "check-out" : "check-in", tap.member_id, strerror(-r));
    site_occupancy_changed(s);
}

/* ---- each minute ---- */

static void free_entry_evaluate(struct site *s)
{
    struct local_time lt;

    local_time_at(now_utc(), &lt);
    for (unsigned i = 0; i < s->n_doors; i++) {
        struct door *door = &s->doors[i];
        bool in = schedule_contains(&door->cfg->free_entry, &lt);
        if (in != door->free_entry) {
            door_set_free_entry(door, in);
            log_info("door %s: free-entry window %s", door->cfg->name, in ? "begins" : "ends");
            access_record_door_event(s->svc->engine, door, "free_entry", in,
                                     in ? "window_begins" : "window_ends", NULL);
        }
    }
}

/* From closing time on, once a day, everyone still in is checked out (also when the daemon
 * was down or the clock jumped at the closing minute itself). */
static void closing_check(struct site *s)
{
    const struct config *cfg = s->svc->cfg;
    struct local_time lt;
    char today[11];
    int64_t now = now_utc();
    struct tm tm;
    time_t tt = (time_t)now;
    int n;

    if (cfg->metering.closing < 0)
        return;
    local_time_at(now, &lt);
    if (lt.minute < cfg->metering.closing)
        return;
    localtime_r(&tt, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    if (strcmp(today, s->closed_on) == 0)
        return;
    snprintf(s->closed_on, sizeof(s->closed_on), "%s", today);
    n = meter_check_out_all(s->svc->meter, now, "closing");
    site_occupancy_changed(s);
    if (n > 0)
        log_info("closing time: %d member(s) checked out", n);
    else if (n < 0)
        log_error("closing time: cannot check members out: %s", strerror(-n));
}

void site_minute(struct site *s)
{
    free_entry_evaluate(s);
    closing_check(s);
}

/* ---- life cycle ---- */

#ifndef PORTIER_READER_PATH
#define PORTIER_READER_PATH "/usr/libexec/portier/portier-reader"
#endif

/* The reader worker: the config's reader_worker, else $PORTIER_READER_WORKER (tests and
 * the demo run programs from a build tree), else the path compiled in at build time
 * (the install's libexec/portier). Never derived from /proc/self/exe: a daemon run through
 * a symlink, a wrapper or an emulator would look in the wrong place. */
static void reader_worker_path(const struct config *cfg, char *buf, size_t n)
{
    const char *env = getenv("PORTIER_READER_WORKER");

    if (cfg->daemon.reader_worker[0])
        snprintf(buf, n, "%s", cfg->daemon.reader_worker);
    else if (env && env[0] == '/')
        snprintf(buf, n, "%s", env);
    else
        snprintf(buf, n, "%s", PORTIER_READER_PATH);
}

int site_new(struct services *svc, const struct door_hw *hw, struct site **ret)
{
    const struct config *cfg = svc->cfg;
    struct site *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return -ENOMEM;
    s->svc = svc;
    s->relay_ops = hw->relay_ops;
    for (unsigned i = 0; i < cfg->n_doors; i++) {
        const struct door_config *dc = &cfg->doors[i];
        struct door *door = &s->doors[i];
        const char *what = "";
        r = door_init(door, dc, svc->loop, hw, on_door_event, s, &what);
        if (r < 0) {
            log_error("door %s: cannot open %s line: %s", dc->name, what, strerror(-r));
            goto fail;
        }
        s->n_doors++;
        r = store_resource_ensure(svc->store, "door", dc->name, dc->zone, &door->resource_id);
        if (r < 0) {
            log_error("door %s: cannot record it in the database: %s", dc->name, strerror(-r));
            goto fail;
        }
    }
    free_entry_evaluate(s);
    *ret = s;
    return 0;
fail:
    site_free(s);
    return r;
}

int site_start_readers(struct site *s)
{
    const struct config *cfg = s->svc->cfg;

    for (unsigned i = 0; i < cfg->n_readers; i++) {
        const struct reader_config *rc = &cfg->readers[i];
        const struct reader_ops *ops = reader_ops_by_driver(config_reader_drivers[rc->driver]);
        char worker[PATH_MAX];
        struct reader_params params = {
            .connstring = rc->connstring,
            .worker_path = worker,
            .poll_ms = (unsigned)rc->poll_ms,
            .debounce_ms = (unsigned)rc->debounce_ms,
            .heartbeat_timeout_ms = (unsigned)rc->heartbeat_timeout_ms,
            .backoff_max_ms = (unsigned)rc->backoff_max_seconds * 1000u,
            .desfire = s->svc->desfire_keys,
        };
        int r;

        reader_worker_path(cfg, worker, sizeof(worker));
        if (rc->reset_line.set) {
            char name[48];
            snprintf(name, sizeof(name), "%s.reset", rc->name);
            r = relay_open(&s->reader_resets[i], s->relay_ops, name, &rc->reset_line);
            if (r < 0) {
                log_error("reader %s: cannot open reset line: %s", rc->name, strerror(-r));
                return r;
            }
            params.reset = &s->reader_resets[i];
        }
        r = reader_start(&s->readers[i], ops, s->svc->loop, rc->name, &params, on_reader_event, s);
        s->n_readers++;
        if (r < 0)  /* a broken reader must not keep the other doors shut */
            log_error("reader %s: cannot start: %s", rc->name, strerror(-r));
    }
    return 0;
}

void site_reconfigure(struct site *s, const struct config *next)
{
    for (unsigned i = 0; i < s->n_doors; i++)
        door_reconfigure(&s->doors[i], &next->doors[i]);
}

struct site *site_free(struct site *s)
{
    if (!s)
        return NULL;
    /* Relays first: whatever else fails below, the doors are in their safe state. */
    for (unsigned i = 0; i < s->n_doors; i++)
        door_fini(&s->doors[i]);
    for (unsigned i = 0; i < s->n_readers; i++)
        reader_stop(&s->readers[i]);
    for (unsigned i = 0; i < CONFIG_MAX_READERS; i++)
        relay_close(&s->reader_resets[i]);
    free(s);
    return NULL;
}

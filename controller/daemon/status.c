/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* status: what the site is doing now — doors, readers, machines, MQTT, storage, recent taps.
 * The `status` command's answer, and what the web page, /healthz and /metrics read. */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "commit.h"
#include "config.h"
#include "consortium.h"
#include "fablab.h"
#include "handlers.h"
#include "delivery.h"
#include "mqtt.h"
#include "retention.h"
#include "services.h"
#include "site.h"
#include "store.h"
#include "util.h"

json_t *status_storage_json(struct commit *commit)
{
    struct commit_health h;
    char since[32] = "";

    commit_get_health(commit, &h);
    if (h.failing_since && !h.ok)
        format_utc(h.failing_since, since, sizeof(since));
    return json_pack("{s:b, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", h.ok,
                     "error", !h.ok && h.error ? strerror(-h.error) : NULL,
                     "failing_since", since[0] ? since : NULL,
                     "commits", (json_int_t)h.commits, "syncs", (json_int_t)h.syncs,
                     "failed_batches", (json_int_t)h.failed_batches,
                     "sync_failures", (json_int_t)h.sync_failures,
                     "held_events", (json_int_t)h.held_events,
                     "dropped_events", (json_int_t)h.dropped_events);
}

static void line_text(const struct line_spec *l, char *buf, size_t n)
{
    if (l->set)
        snprintf(buf, n, "%s:%u%s", l->chip, l->offset, l->active_low ? " (active-low)" : "");
    else
        snprintf(buf, n, "none");
}

static json_t *doors_json(struct services *svc, json_t *inputs)
{
    json_t *doors = json_array();
    char line[64];

    for (unsigned i = 0; i < site_door_count(svc->site); i++) {
        struct door *door = site_door_at(svc->site, i);
        const char *contact = !door->contact.is_open ? "none" : door->open ? "open" : "closed";
        const char *alarm = door->alarm_forced ? "forced" : door->alarm_held_open ? "held_open"
                                                                                  : "none";
        line_text(&door->relay.line, line, sizeof(line));
        json_array_append_new(doors, json_pack(
            "{s:s, s:s, s:s, s:s?, s:i, s:b, s:s, s:s, s:s, s:{s:s, s:s, s:b, s:I, s:I, s:s?}}",
            "name", door->cfg->name, "zone", door->cfg->zone,
            "state", door->unlocked ? "unlocked" : "locked",
            "cause", door->unlocked ? door_cause_to_string(door->cause) : NULL,
            "unlock_remaining", (int)door_unlock_remaining(door),
            "free_entry", door->free_entry, "contact", contact, "alarm", alarm,
            "fail", door->cfg->fail == DOOR_FAIL_SAFE ? "safe" : "secure",
            "relay", "name", door->relay.name, "line", line,
            "energised", door->relay.energised, "writes", (json_int_t)door->relay.writes,
            "last_write_mono_us", (json_int_t)door->relay.last_write_usec,
            "error", door->last_error ? strerror(-door->last_error) : NULL));
        struct input *ins[2] = { &door->contact, &door->exit_button };
        for (int k = 0; k < 2; k++)
            if (ins[k]->is_open)
                json_array_append_new(inputs, json_pack("{s:s, s:b, s:I}", "name", ins[k]->name,
                                                        "active", ins[k]->active, "changes",
                                                        (json_int_t)ins[k]->changes));
    }
    return doors;
}

static json_t *readers_json(struct services *svc)
{
    json_t *readers = json_array();

    for (unsigned i = 0; i < site_reader_count(svc->site); i++) {
        struct reader *r = site_reader_at(svc->site, i);
        struct door *door = site_door_by_reader(svc->site, r->name, NULL);
        json_array_append_new(readers, json_pack(
            "{s:s, s:s, s:s, s:s?, s:I, s:b, s:I, s:I, s:I, s:s, s:s, s:s?}", "name", r->name,
            "driver", r->ops->driver, "health", reader_health_to_string(r->health), "door",
            door ? door->cfg->name : NULL, "taps", (json_int_t)r->taps, "holding",
            r->holding, "restarts", (json_int_t)r->restarts, "reset_pulses",
            (json_int_t)r->reset_pulses, "failed_since",
            (json_int_t)r->failed_since, "last_error", r->last_error, "device", r->device,
            "emulator", svc->cfg->readers[i].emulator[0] ? svc->cfg->readers[i].emulator : NULL));
    }
    return readers;
}

static json_t *recent_json(struct services *svc)
{
    struct access_tap recent[ACCESS_RECENT_MAX];
    json_t *taps = json_array();
    unsigned n = access_recent(svc->engine, recent, (unsigned)svc->cfg->daemon.recent_taps);

    for (unsigned i = 0; i < n; i++) {
        struct store_member m;
        bool known = recent[i].member_id &&
                     store_member_get(svc->store, recent[i].member_id, &m) == 0;
        json_array_append_new(taps, json_pack(
            "{s:I, s:s, s:s, s:I, s:s?, s:b, s:s, s:s, s:s, s:i}", "at", (json_int_t)recent[i].at,
            "reader", recent[i].reader, "door", recent[i].door, "member_id",
            (json_int_t)recent[i].member_id, "member", known ? m.name : NULL,
            "granted", recent[i].granted && !recent[i].relay_error, "reason",
            recent[i].relay_error ? "relay_fault" : policy_reason_to_string(recent[i].reason),
            "text", recent[i].relay_error ? "the relay could not be switched"
                                          : policy_reason_to_text(recent[i].reason),
            "card", recent[i].card, "latency_us", (int)recent[i].latency_us));
    }
    return taps;
}

static json_t *mqtt_json(struct services *svc)
{
    json_t *mq;

    if (!svc->mqtt)
        return json_null();
    struct mqtt_stats ms;
    mqtt_get_stats(svc->mqtt, &ms);
    mq = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "connected", ms.connected,
                   "outbox", (json_int_t)ms.outbox, "dropped", (json_int_t)ms.dropped,
                   "published", (json_int_t)ms.published, "acknowledged",
                   (json_int_t)ms.acknowledged, "last_seq", (json_int_t)ms.last_seq,
                   "commands", (json_int_t)ms.commands, "commands_refused",
                   (json_int_t)ms.commands_refused);
    if (svc->consortium) {
        struct consortium_stats cs;
        consortium_get_stats(svc->consortium, &cs);
        json_object_set_new(mq, "ledger", json_pack(
            "{s:I, s:I, s:I, s:I, s:I}", "acked_seq", (json_int_t)cs.acked_seq, "sent_up_to",
            (json_int_t)cs.sent_up_to, "head_seq", (json_int_t)cs.head_seq, "batches_sent",
            (json_int_t)cs.batches_sent, "resends_answered", (json_int_t)cs.resends_answered));
    }
    return mq;
}

json_t *status_json(struct services *svc)
{
    const struct config *cfg = svc->cfg;
    struct access_stats stats;
    json_t *inputs = json_array();
    json_t *doors = doors_json(svc, inputs);

    access_get_stats(svc->engine, &stats);
    json_t *st = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:s, s:I, s:I, s:I, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o, s:{s:I, s:I, s:I, s:I}}",
        "version", PORTIER_VERSION,
        "site", "id", cfg->site.id, "name", cfg->site.name, "timezone", cfg->site.timezone,
        "backend", config_backends[cfg->hardware.backend],
        "uptime", (json_int_t)((now_mono_usec() - svc->started_usec) / 1000000u),
        "members", (json_int_t)store_member_count(svc->store),
        "cards", (json_int_t)store_card_count(svc->store),
        "present", site_present(svc->site),
        "mqtt", mqtt_json(svc), "storage", status_storage_json(svc->commit), "doors", doors,
        "machines", fablab_status(svc->fablab), "readers", readers_json(svc), "inputs", inputs,
        "recent_taps", recent_json(svc),
        "privacy", svc->retention ? retention_status(svc->retention) : json_null(),
        "stats", "taps", (json_int_t)stats.taps, "granted", (json_int_t)stats.granted,
        "denied", (json_int_t)stats.denied, "store_errors", (json_int_t)stats.store_errors);
    if (st) {
        json_object_set_new(st, "mail", delivery_mail_json(svc->delivery));
        json_object_set_new(st, "webhooks", delivery_webhooks_json(svc->delivery));
    }
    return st;
}

int cmd_status(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *st = status_json(cmd_services(call));
    if (!st)
        return cmd_fail(call, -ENOMEM, "internal", "out of memory");
    return cmd_ok(call, st);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of doors and readers: unlock, lock, restart, the access log, and the
 * simulated hardware's taps, inputs and clock. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "config.h"
#include "delivery.h"
#include "enroll.h"
#include "fablab.h"
#include "gpio_backend.h"
#include "handlers.h"
#include "log.h"
#include "members.h"
#include "services.h"
#include "site.h"
#include "store.h"
#include "util.h"

static int find_door(struct cmd_call *call, const struct cmd_args *a, struct door **ret)
{
    const char *name = arg_str(a, "door");

    *ret = site_door(cmd_services(call)->site, name);
    if (!*ret)
        return cmd_fail(call, -ENOENT, "not_found", "no door '%.32s'", name);
    return 0;
}

/* Record a door's manual unlock or lock in the access log, after the relay has done it:
 * then a failure here is said as such. */
static int record_by_hand(struct cmd_call *call, struct door *door, bool unlock,
                          const char *detail)
{
    int r = access_record_door_event(cmd_services(call)->engine, door, unlock ? "unlock" : "lock",
                                     true,
                                     cmd_actor(call)->channel == CHANNEL_MQTT ? "mqtt" : "manual",
                                     detail);
    if (r >= 0)
        return 0;
    if (unlock)
        return cmd_fail(call, r, "store", "the door is unlocked, but the unlock could not be "
                        "recorded: %s", strerror(-r));
    return cmd_fail(call, r, "store", "the door is locked, but the lock could not be "
                    "recorded: %s", strerror(-r));
}

int cmd_door_unlock(struct cmd_call *call, const struct cmd_args *a)
{
    struct door *door;
    char detail[96];
    int64_t seconds;
    int r;

    if ((r = find_door(call, a, &door)) < 0)
        return r;
    seconds = arg_int(a, "seconds", door->cfg->unlock_seconds);
    r = door_unlock_for(door, (unsigned)seconds, DOOR_CAUSE_MANUAL);
    if (r < 0)
        return cmd_fail(call, r, "hardware", "relay write failed: %s", strerror(-r));
    snprintf(detail, sizeof(detail), "%" PRId64 " s by %s", seconds, cmd_who(call));
    log_info("door %s: manual unlock for %" PRId64 " s by %s", door->cfg->name, seconds,
             cmd_who(call));
    if ((r = record_by_hand(call, door, true, detail)) < 0)
        return r;
    return cmd_ok(call, json_pack("{s:s, s:I}", "door", door->cfg->name, "seconds",
                                  (json_int_t)seconds));
}

int cmd_door_lock(struct cmd_call *call, const struct cmd_args *a)
{
    struct door *door;
    int r;

    if ((r = find_door(call, a, &door)) < 0)
        return r;
    r = door_lock_now(door);
    if (r < 0)
        return cmd_fail(call, r, "hardware", "relay write failed: %s", strerror(-r));
    log_info("door %s: locked by %s", door->cfg->name, cmd_who(call));
    if ((r = record_by_hand(call, door, false, cmd_who(call))) < 0)
        return r;
    return cmd_ok(call, json_pack("{s:s, s:b}", "door", door->cfg->name, "free_entry",
                                  door->free_entry));
}

int cmd_reader_arg(struct cmd_call *call, const struct cmd_args *a, struct reader **ret)
{
    const char *name = arg_str(a, "reader");

    *ret = site_reader(cmd_services(call)->site, name);
    return *ret ? 0 : cmd_fail(call, -ENOENT, "not_found", "no reader '%.32s'", name);
}

int cmd_reader_restart(struct cmd_call *call, const struct cmd_args *a)
{
    struct reader *reader;
    int r;

    if ((r = cmd_reader_arg(call, a, &reader)) < 0)
        return r;
    r = reader_restart(reader);
    if (r < 0)
        return cmd_fail(call, r, "bad_request", "reader %s has nothing to restart (%s)",
                        reader->name, reader->ops->driver);
    log_info("reader %s: restart requested by %s", reader->name, cmd_who(call));
    return cmd_ok(call, json_pack("{s:s}", "reader", reader->name));
}

static int event_append(const struct store_event *ev, void *userdata)
{
    char at[32];

    format_utc(ev->at, at, sizeof(at));
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:s, s:s}", "id", (json_int_t)ev->id, "at",
        (json_int_t)ev->at, "at_utc", at, "door", ev->resource, "reader", ev->reader, "member_id",
        (json_int_t)ev->member_id, "card_id", (json_int_t)ev->card_id, "kind", ev->kind,
        "granted", ev->granted, "reason", ev->reason, "detail", ev->detail)) == 0 ? 0 : -ENOMEM;
}

int cmd_events(struct cmd_call *call, const struct cmd_args *a)
{
    int64_t limit = arg_int(a, "limit", 50);
    json_t *list = json_array();
    int r;

    r = store_events_foreach(cmd_services(call)->store, arg_int(a, "since", 0),
                             limit == 0 ? 100000 : limit, event_append, list);
    if (r < 0) {
        json_decref(list);
        return cmd_fail(call, r, "store", "cannot read events: %s", strerror(-r));
    }
    return cmd_ok(call, json_pack("{s:o}", "events", list));
}

/* ---- simulated hardware ---- */

static int sim_reader(struct cmd_call *call, const struct cmd_args *a, struct reader **ret)
{
    int r = cmd_reader_arg(call, a, ret);

    if (r < 0)
        return r;
    if ((*ret)->ops != &reader_ops_sim)
        return cmd_fail(call, -EOPNOTSUPP, "bad_request", "reader %s is not simulated",
                        (*ret)->name);
    return 0;
}

int cmd_sim_remove(struct cmd_call *call, const struct cmd_args *a)
{
    struct reader *reader;
    int r = sim_reader(call, a, &reader);

    if (r < 0)
        return r;
    reader_sim_remove(reader);
    return cmd_ok(call, NULL);
}

/* Present a card and say what it did: the enrolment took it, a machine decided, or a door
 * decided (and whether the access log holds the tap). */
int cmd_sim_tap(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct access_stats before, after;
    struct access_tap last = { 0 };
    const struct fablab_tap *mt;
    struct reader *reader;
    size_t len = 0;
    const uint8_t *uid = arg_uid(a, "uid", &len);
    uint64_t machine_seq;
    bool to_enroll;
    int r;

    if ((r = sim_reader(call, a, &reader)) < 0)
        return r;
    to_enroll = enroll_waiting_at(svc->enroll, reader);
    machine_seq = fablab_last_tap(svc->fablab)->seq;
    access_get_stats(svc->engine, &before);
    r = reader_sim_present(reader, uid, len, arg_bool(a, "hold"));
    if (r < 0)
        return cmd_fail(call, r, "internal", "cannot present card: %s", strerror(-r));
    access_get_stats(svc->engine, &after);
    mt = fablab_last_tap(svc->fablab);
    if (to_enroll)
        return cmd_ok(call, json_pack("{s:b}", "enrolment", 1));
    if (mt->seq != machine_seq)
        return cmd_ok(call, json_pack("{s:s, s:b, s:s, s:I, s:i}", "machine", mt->machine,
                                      "granted", mt->granted, "outcome", mt->outcome, "member_id",
                                      (json_int_t)mt->member_id, "latency_us",
                                      (int)mt->latency_us));
    if (after.taps == before.taps || access_recent(svc->engine, &last, 1) != 1)
        return cmd_ok(call, json_pack("{s:n}", "door"));
    if (last.event_id == 0)
        /* The door decided (and acted), but the tap is not in the access log: held in
         * memory until the disk takes writes again. */
        return cmd_fail(call, -EIO, "not_recorded", "door %s: %s, but the tap could not be "
                        "recorded (the database refused the write); it is held and written later",
                        last.door, last.granted && !last.relay_error ? "granted" : "denied");
    return cmd_ok(call, json_pack("{s:s, s:b, s:s, s:I, s:I, s:i}", "door", last.door, "granted",
                                  last.granted && !last.relay_error, "reason",
                                  last.relay_error ? "relay_fault"
                                                   : policy_reason_to_string(last.reason),
                                  "member_id", (json_int_t)last.member_id, "event_id",
                                  (json_int_t)last.event_id, "latency_us",
                                  (int)last.latency_us));
}

static int sim_input(struct cmd_call *call, const struct cmd_args *a, bool active)
{
    const char *name = arg_str(a, "input");
    struct input *in = site_input(cmd_services(call)->site, name);

    if (!in)
        return cmd_fail(call, -ENOENT, "not_found", "no input '%.48s' (inputs are DOOR.contact, "
                        "DOOR.exit and MACHINE.running)", name);
    if (input_sim_set(in, active) < 0)
        return cmd_fail(call, -EOPNOTSUPP, "bad_request", "input %s is not simulated", in->name);
    return cmd_ok(call, json_pack("{s:s, s:b}", "input", in->name, "raw_active", active));
}

int cmd_sim_press(struct cmd_call *call, const struct cmd_args *a)
{
    return sim_input(call, a, true);
}

int cmd_sim_release(struct cmd_call *call, const struct cmd_args *a)
{
    return sim_input(call, a, false);
}

int cmd_sim_advance(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t seconds = arg_int(a, "seconds", 0);

    clock_advance(seconds);
    log_notice("simulation: clock advanced by %" PRId64 " s (offset now %" PRId64 " s)", seconds,
               clock_offset());
    fablab_clock_changed(svc->fablab);
    members_minute(svc);        /* plan changes whose date the new clock has reached */
    site_minute(svc->site);
    delivery_minute(svc->delivery);     /* reminders and retries that came due */
    return cmd_ok(call, json_pack("{s:I, s:I}", "now", (json_int_t)now_utc(), "offset",
                                  (json_int_t)clock_offset()));
}

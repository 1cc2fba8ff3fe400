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
#include "http.h"
#include "cardid.h"
#include "commit.h"
#include "config.h"
#include "control.h"
#include "door.h"
#include "billing.h"
#include "fablab.h"
#include "meter.h"
#include "consortium.h"
#include "passports.h"
#include "mqtt.h"
#include "gpio_backend.h"
#include "log.h"
#include "reader.h"
#include "request.h"
#include "store.h"
#include "util.h"

#define ENROLL_DEFAULT_SECONDS 60
#define ENROLL_MAX_SECONDS 600

struct enroll {
    bool armed;
    struct reader *reader;
    int64_t member_id;
    char label[64];
    struct control_conn *conn;
    sd_event_source *timeout;
};

struct daemon {
    sd_event *loop;
    struct config *cfg;
    char config_path[PATH_MAX];
    struct store *store;
    struct access_engine *engine;
    unsigned n_doors;
    struct door doors[CONFIG_MAX_DOORS];
    unsigned n_readers;
    struct reader readers[CONFIG_MAX_READERS];
    struct relay reader_resets[CONFIG_MAX_READERS];
    struct control *control;
    struct fablab *fablab;
    struct meter *meter;
    struct mqtt *mqtt;              /* NULL when [mqtt] is not enabled */
    struct http *http;              /* NULL when [http] listen is empty */
    struct consortium *consortium;  /* NULL when [consortium] is not enabled */
    char closed_on[11];             /* local date of the last closing-time check-out */
    struct commit *commit;
    sd_event_source *minute;
    struct enroll enroll;
    uint64_t started_usec;
};

/* ---- helpers ---- */

static struct door *door_by_name(struct daemon *d, const char *name)
{
    for (unsigned i = 0; i < d->n_doors; i++)
        if (strcmp(d->doors[i].cfg->name, name) == 0)
            return &d->doors[i];
    return NULL;
}

/* The door a reader opens, as its entry reader or (is_exit) its exit reader. */
static struct door *door_by_reader(struct daemon *d, const char *reader, bool *is_exit)
{
    for (unsigned i = 0; i < d->n_doors; i++) {
        if (strcmp(d->doors[i].cfg->reader, reader) == 0) {
            if (is_exit)
                *is_exit = false;
            return &d->doors[i];
        }
        if (strcmp(d->doors[i].cfg->exit_reader, reader) == 0) {
            if (is_exit)
                *is_exit = true;
            return &d->doors[i];
        }
    }
    return NULL;
}

static struct reader *reader_by_name(struct daemon *d, const char *name)
{
    for (unsigned i = 0; i < d->n_readers; i++)
        if (strcmp(d->readers[i].name, name) == 0)
            return &d->readers[i];
    return NULL;
}

static struct input *input_by_name(struct daemon *d, const char *name)
{
    for (unsigned i = 0; i < d->n_doors; i++) {
        struct door *door = &d->doors[i];
        if (door->contact.is_open && strcmp(door->contact.name, name) == 0)
            return &door->contact;
        if (door->exit_button.is_open && strcmp(door->exit_button.name, name) == 0)
            return &door->exit_button;
    }
    return fablab_input_by_name(d->fablab, name);
}

/* portier-reader next to our own executable, unless the config names one. */
static void reader_worker_path(const struct config *cfg, char *buf, size_t n)
{
    char self[PATH_MAX];
    ssize_t len;
    char *slash;

    if (cfg->daemon.reader_worker[0]) {
        snprintf(buf, n, "%s", cfg->daemon.reader_worker);
        return;
    }
    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0) {
        snprintf(buf, n, "/usr/libexec/portier/portier-reader");
        return;
    }
    self[len] = '\0';
    slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    if (strlen(self) + sizeof("/portier-reader") > n)
        snprintf(buf, n, "/usr/libexec/portier/portier-reader");
    else
        snprintf(buf, n, "%.*s/portier-reader", (int)(n - sizeof("/portier-reader")), self);
}

static void set_timezone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void notify_status(struct daemon *d)
{
    sd_notifyf(0, "STATUS=%u doors, %u readers, %" PRId64 " members", d->n_doors, d->n_readers,
               store_member_count(d->store));
}

/* ---- durability ---- */

static void on_durable(void *userdata)
{
    struct daemon *d = userdata;
    mqtt_kick(d->mqtt);     /* only durable events leave the site */
    consortium_kick(d->consortium);
}

static json_t *storage_json(struct daemon *d)
{
    struct commit_health h;
    char since[32] = "";

    commit_get_health(d->commit, &h);
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

/* The storage alarm, as it starts and ends: systemd's status line and a retained MQTT state
 * (the outbox lives in the database that is failing, so this goes around it). */
static void on_storage_health(void *userdata)
{
    struct daemon *d = userdata;
    struct commit_health h;

    commit_get_health(d->commit, &h);
    if (!h.ok)
        sd_notifyf(0, "STATUS=storage failing: %s; %u access events held in memory",
                   strerror(-h.error), h.held_events);
    else
        notify_status(d);
    if (d->mqtt) {
        json_t *st = storage_json(d);
        mqtt_state(d->mqtt, "storage", st);
        json_decref(st);
    }
}

/* ---- free-entry windows ---- */

static void free_entry_evaluate(struct daemon *d)
{
    struct local_time lt;

    local_time_at(now_utc(), &lt);
    for (unsigned i = 0; i < d->n_doors; i++) {
        struct door *door = &d->doors[i];
        bool in = schedule_contains(&door->cfg->free_entry, &lt);
        if (in != door->free_entry) {
            door_set_free_entry(door, in);
            log_info("door %s: free-entry window %s", door->cfg->name, in ? "begins" : "ends");
            access_record_door_event(d->engine, door, "free_entry", in, in ? "window_begins"
                                                                           : "window_ends", NULL);
        }
    }
}

static int count_present(int64_t id, int64_t member_id, const char *name, int64_t in,
                         void *userdata)
{
    (*(int *)userdata)++;
    return 0;
}

/* How many people are in (no names), for MQTT. */
static void publish_occupancy(struct daemon *d)
{
    int n = 0;
    json_t *st;

    if (!d->mqtt)
        return;
    store_presence_foreach(d->store, count_present, &n);
    st = json_pack("{s:i}", "present", n);
    mqtt_state(d->mqtt, "occupancy", st);
    json_decref(st);
}

static void publish_machine(struct machine *m, void *userdata)
{
    struct daemon *d = userdata;
    struct store_resource res;
    char suffix[96];
    json_t *st;

    if (!d->mqtt)
        return;
    snprintf(suffix, sizeof(suffix), "machine/%s/state", m->cfg->name);
    st = json_pack("{s:s, s:b, s:I, s:b, s:b}", "state", machine_state_to_string(m->state),
                   "powered", machine_powered(m), "member_id",
                   (json_int_t)(machine_powered(m) ? m->member_id : 0), "running", m->running,
                   "out_of_order", store_resource_get(d->store, m->cfg->name, &res) == 0 &&
                                       res.out_of_order);
    mqtt_state(d->mqtt, suffix, st);
    json_decref(st);
}

/* A command that came over MQTT, already authorised by the mqtt module. Fields are checked
 * strictly: unknown keys and wrong types are refused with the reason. */
static bool on_mqtt_command(const char *client, const char *action, json_t *cmd, char *why,
                            size_t why_n, void *userdata)
{
    struct daemon *d = userdata;
    json_error_t err;
    const char *name = NULL, *reason = NULL, *dummy = NULL;
    json_int_t seconds = 0;
    int on = 0, r;
    char detail[96];

    if (strcmp(action, "door.unlock") == 0 || strcmp(action, "door.lock") == 0) {
        bool unlock = strcmp(action, "door.unlock") == 0;
        struct door *door;
        if ((unlock ? json_unpack_ex(cmd, &err, JSON_STRICT, "{s:s, s:s, s?I}", "action", &dummy,
                                     "door", &name, "seconds", &seconds)
                    : json_unpack_ex(cmd, &err, JSON_STRICT, "{s:s, s:s}", "action", &dummy,
                                     "door", &name)) < 0) {
            snprintf(why, why_n, "%.120s", err.text);
            return false;
        }
        door = door_by_name(d, name);
        if (!door) {
            snprintf(why, why_n, "no door '%.40s'", name);
            return false;
        }
        if (!unlock) {
            r = door_lock_now(door);
            snprintf(detail, sizeof(detail), "mqtt client %.40s", client);
            if (r == 0)
                access_record_door_event(d->engine, door, "lock", true, "mqtt", detail);
        } else {
            if (seconds == 0)
                seconds = door->cfg->unlock_seconds;
            if (seconds < 1 || seconds > DOOR_MAX_UNLOCK_SECONDS) {
                snprintf(why, why_n, "seconds must be 1 to %d", DOOR_MAX_UNLOCK_SECONDS);
                return false;
            }
            r = door_unlock_for(door, (unsigned)seconds, DOOR_CAUSE_MANUAL);
            snprintf(detail, sizeof(detail), "%" JSON_INTEGER_FORMAT " s by mqtt client %.40s",
                     seconds, client);
            if (r == 0)
                access_record_door_event(d->engine, door, "unlock", true, "mqtt", detail);
        }
        if (r < 0)
            snprintf(why, why_n, "relay write failed: %s", strerror(-r));
        return r == 0;
    }
    if (strcmp(action, "machine.out_of_order") == 0) {
        if (json_unpack_ex(cmd, &err, JSON_STRICT, "{s:s, s:s, s:b, s?s}", "action", &dummy,
                           "machine", &name, "on", &on, "reason", &reason) < 0) {
            snprintf(why, why_n, "%.120s", err.text);
            return false;
        }
        if (reason && strlen(reason) > 127) {
            snprintf(why, why_n, "reason longer than 127 characters");
            return false;
        }
        snprintf(detail, sizeof(detail), "mqtt client %.40s", client);
        r = fablab_set_out_of_order(d->fablab, name, on, reason, detail);
        if (r < 0)
            snprintf(why, why_n, r == -ENOENT ? "no machine '%.40s'" : "cannot change it", name);
        return r == 0;
    }
    if (strcmp(action, "reader.restart") == 0) {
        struct reader *reader;
        if (json_unpack_ex(cmd, &err, JSON_STRICT, "{s:s, s:s}", "action", &dummy, "reader",
                           &name) < 0) {
            snprintf(why, why_n, "%.120s", err.text);
            return false;
        }
        reader = reader_by_name(d, name);
        if (!reader || reader_restart(reader) < 0) {
            snprintf(why, why_n, "no restartable reader '%.40s'", name);
            return false;
        }
        return true;
    }
    snprintf(why, why_n, "unknown action (door.unlock, door.lock, machine.out_of_order, "
                         "reader.restart)");
    return false;
}

/* From closing time on, once a day, everyone still in is checked out (also when the daemon
 * was down or the clock jumped at the closing minute itself). */
static void closing_check(struct daemon *d)
{
    struct local_time lt;
    char today[11];
    int64_t now = now_utc();
    int n;

    if (d->cfg->metering.closing < 0)
        return;
    local_time_at(now, &lt);
    if (lt.minute < d->cfg->metering.closing)
        return;
    {
        struct tm tm;
        time_t tt = (time_t)now;
        localtime_r(&tt, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    }
    if (strcmp(today, d->closed_on) == 0)
        return;
    snprintf(d->closed_on, sizeof(d->closed_on), "%s", today);
    n = meter_check_out_all(d->meter, now, "closing");
    publish_occupancy(d);
    if (n > 0)
        log_info("closing time: %d member(s) checked out", n);
    else if (n < 0)
        log_error("closing time: cannot check members out: %s", strerror(-n));
}

static int minute_due(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct daemon *d = userdata;
    struct timespec ts;

    free_entry_evaluate(d);
    fablab_minute(d->fablab);
    closing_check(d);
    /* Re-arm on the next wall-clock minute: windows are wall-clock times, and realtime
     * timers follow clock jumps (NTP sync on a Pi without RTC). */
    clock_gettime(CLOCK_REALTIME, &ts);
    sd_event_source_set_time(s, ((uint64_t)ts.tv_sec / 60 + 1) * 60 * 1000000ull);
    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    return 0;
}

/* ---- door and reader events ---- */

static void publish_door(struct daemon *d, struct door *door)
{
    char suffix[96];
    json_t *st;

    if (!d->mqtt)
        return;
    snprintf(suffix, sizeof(suffix), "door/%s/state", door->cfg->name);
    st = json_pack("{s:s, s:s, s:s, s:s, s:b}", "lock", door->unlocked ? "UNLOCKED" : "LOCKED",
                   "contact", !door->contact.is_open ? "none" : door->open ? "open" : "closed",
                   "alarm", door->alarm_forced ? "forced" : door->alarm_held_open ? "held_open" : "none",
                   "cause", door->unlocked ? door_cause_to_string(door->cause) : "",
                   "free_entry", door->free_entry);
    mqtt_state(d->mqtt, suffix, st);
    json_decref(st);
}

static void on_door_event(struct door *door, enum door_event ev, void *userdata)
{
    struct daemon *d = userdata;
    const char *name = door->cfg->name;

    if (d->mqtt && (ev == DOOR_EV_UNLOCKED || ev == DOOR_EV_LOCKED || ev == DOOR_EV_OPENED ||
                    ev == DOOR_EV_CLOSED)) {
        /* Door changes are events too (alarms, exits and taps go through the access log). */
        json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "kind", "door", "door", name, "change",
                              door_event_to_string(ev), "at", "");
        char at[32], *text;
        format_utc(now_utc(), at, sizeof(at));
        json_object_set_new(e, "at", json_string(at));
        text = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        if (text)
            store_outbox_add(d->store, "door", text);
        free(text);
    }
    publish_door(d, door);

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
        access_record_door_event(d->engine, door, "exit", true, "exit_button", NULL);
        break;
    case DOOR_EV_ALARM_FORCED:
        log_warning("door %s: ALARM forced open while locked", name);
        access_record_door_event(d->engine, door, "alarm", false, "forced", NULL);
        break;
    case DOOR_EV_ALARM_HELD_OPEN:
        log_warning("door %s: ALARM held open for more than %" PRId64 " s", name,
                    door->cfg->held_open_seconds);
        access_record_door_event(d->engine, door, "alarm", false, "held_open", NULL);
        break;
    case DOOR_EV_ALARM_CLEARED:
        log_notice("door %s: alarm cleared, door closed", name);
        access_record_door_event(d->engine, door, "alarm_cleared", true, "closed", NULL);
        break;
    case DOOR_EV_RELAY_FAULT:
        log_error("door %s: relay write failed: %s", name, strerror(-door->last_error));
        break;
    }
}

static void enroll_finish(struct daemon *d)
{
    d->enroll.armed = false;
    d->enroll.conn = NULL;
    d->enroll.timeout = sd_event_source_disable_unref(d->enroll.timeout);
}

static void enroll_card(struct daemon *d, const struct reader_event *ev)
{
    uint8_t hash[STORE_HASH_LEN];
    struct control_conn *conn = d->enroll.conn;
    int64_t card_id = 0;
    int r;

    if (ev->targets > 1) {
        /* Which of the two would be bound is up to the chip: refuse rather than guess. */
        log_notice("enroll at reader %s: %u cards presented together; refused",
                   d->enroll.reader->name, (unsigned)ev->targets);
        control_reply_error(conn, "several_cards", "%u cards were on the reader together; "
                            "present only the card to enrol, and try again",
                            (unsigned)ev->targets);
        enroll_finish(d);
        return;
    }
    access_card_hash(d->engine, ev->uid, ev->uid_len, hash);
    r = store_card_add(d->store, d->enroll.member_id, hash, d->enroll.label, &card_id);
    if (r == -EEXIST) {
        log_notice("enroll at reader %s: card already enrolled", d->enroll.reader->name);
        control_reply_error(conn, "exists", "this card is already enrolled; remove it first");
    } else if (r < 0) {
        log_error("enroll at reader %s: %s", d->enroll.reader->name, strerror(-r));
        control_reply_error(conn, "store", "cannot store the card: %s", strerror(-r));
    } else {
        passports_card_seen(consortium_passports(d->consortium), card_id, ev->uid, ev->uid_len);
        log_info("enroll at reader %s: card %" PRId64 " bound to member %" PRId64,
                 d->enroll.reader->name, card_id, d->enroll.member_id);
        control_reply_ok(conn, json_pack("{s:I, s:I}", "card", (json_int_t)card_id, "member",
                                         (json_int_t)d->enroll.member_id));
    }
    enroll_finish(d);
}

static void on_reader_event(struct reader *reader, const struct reader_event *ev, void *userdata)
{
    struct daemon *d = userdata;
    struct door *door;

    if (ev->kind != READER_CARD_ARRIVED)
        return;
    if (d->enroll.armed && d->enroll.reader == reader) {
        enroll_card(d, ev);
        return;
    }
    bool is_exit = false;
    struct access_tap tap;
    int r;

    door = door_by_reader(d, reader->name, &is_exit);
    if (!door && fablab_reader_tap(d->fablab, reader->name, ev->uid, ev->uid_len, ev->targets,
                                   ev->at_usec))
        return;
    if (!door) {
        log_debug("reader %s: card arrived, but no door uses this reader", reader->name);
        return;
    }
    if (access_handle_tap(d->engine, door, reader->name, ev->uid, ev->uid_len, ev->targets,
                          ev->at_usec, &tap) < 0 || !tap.granted || tap.relay_error)
        return;
    if (tap.visitor)
        return;             /* recorded as a visit by the consortium (passports.c) */
    /* A card enrolled before passports existed gets its consortium hash at its first tap. */
    passports_card_seen(consortium_passports(d->consortium), tap.card_id, ev->uid, ev->uid_len);
    /* The door is open; now the bookkeeping: entries check in, exit readers check out. */
    r = is_exit ? meter_check_out(d->meter, tap.member_id, tap.at, "tap_out")
                : meter_check_in(d->meter, tap.member_id, door->cfg->name, tap.at);
    if (r < 0 && r != -ENOENT)
        log_error("door %s: cannot record the %s of member %" PRId64 ": %s", door->cfg->name,
                  is_exit ? "check-out" : "check-in", tap.member_id, strerror(-r));
    publish_occupancy(d);
}

/* ---- control requests ---- */

static json_t *member_json(const struct store_member *m)
{
    return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:I, s:I, s:I}", "id", (json_int_t)m->id,
                     "name", m->name, "email", m->email, "plan", m->plan[0] ? m->plan : NULL,
                     "status", m->status == MEMBER_SUSPENDED ? "suspended" : "active",
                     "valid_from", (json_int_t)m->valid_from, "valid_until",
                     (json_int_t)m->valid_until, "cards", (json_int_t)m->cards);
}

static int member_append(const struct store_member *m, void *userdata)
{
    json_array_append_new(userdata, member_json(m));
    return 0;
}

static int card_append(const struct store_card *c, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:I, s:s, s:s, s:b, s:I, s:s}", "id",
                                              (json_int_t)c->id, "member_id",
                                              (json_int_t)c->member_id, "member", c->member,
                                              "label", c->label, "enabled", c->enabled,
                                              "created_at", (json_int_t)c->created_at, "hash",
                                              c->hash_prefix));
    return 0;
}

static int plan_append(const struct store_plan *p, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:s, s:s, s:s, s:I}", "id",
                                              (json_int_t)p->id, "name", p->name, "zones",
                                              p->zones, "hours", p->hours, "members",
                                              (json_int_t)p->members));
    return 0;
}

static int event_append(const struct store_event *ev, void *userdata)
{
    json_array_append_new(userdata, json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:s, s:b, s:s, s:s}",
                                              "id", (json_int_t)ev->id, "at", (json_int_t)ev->at,
                                              "door", ev->resource, "reader", ev->reader,
                                              "member_id", (json_int_t)ev->member_id, "card_id",
                                              (json_int_t)ev->card_id, "kind", ev->kind,
                                              "granted", ev->granted, "reason", ev->reason,
                                              "detail", ev->detail));
    return 0;
}

static void line_text(const struct line_spec *l, char *buf, size_t n)
{
    if (l->set)
        snprintf(buf, n, "%s:%u%s", l->chip, l->offset, l->active_low ? " (active-low)" : "");
    else
        snprintf(buf, n, "none");
}

/* The `portierctl status` object; also what the web page, /healthz and /metrics read. */
static json_t *status_json(struct daemon *d)
{
    int present = 0;
    json_t *doors = json_array(), *readers = json_array(), *inputs = json_array();
    json_t *taps = json_array();
    struct access_tap recent[ACCESS_RECENT_MAX];
    struct access_stats stats;
    unsigned n;
    char line[64];

    for (unsigned i = 0; i < d->n_doors; i++) {
        struct door *door = &d->doors[i];
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
    for (unsigned i = 0; i < d->n_readers; i++) {
        struct reader *r = &d->readers[i];
        struct door *door = door_by_reader(d, r->name, NULL);
        json_array_append_new(readers, json_pack(
            "{s:s, s:s, s:s, s:s?, s:I, s:b, s:I, s:I, s:I, s:s, s:s, s:s?}", "name", r->name,
            "driver", r->ops->driver, "health", reader_health_to_string(r->health), "door",
            door ? door->cfg->name : NULL, "taps", (json_int_t)r->taps, "holding",
            r->holding, "restarts", (json_int_t)r->restarts, "reset_pulses",
            (json_int_t)r->reset_pulses, "failed_since",
            (json_int_t)r->failed_since, "last_error", r->last_error, "device", r->device,
            "emulator", d->cfg->readers[i].emulator[0] ? d->cfg->readers[i].emulator : NULL));
    }
    n = access_recent(d->engine, recent, (unsigned)d->cfg->daemon.recent_taps);
    for (unsigned i = 0; i < n; i++) {
        struct store_member m;
        bool known = recent[i].member_id && store_member_get(d->store, recent[i].member_id, &m) == 0;
        json_array_append_new(taps, json_pack(
            "{s:I, s:s, s:s, s:I, s:s?, s:b, s:s, s:s, s:i}", "at", (json_int_t)recent[i].at,
            "reader", recent[i].reader, "door", recent[i].door, "member_id",
            (json_int_t)recent[i].member_id, "member", known ? m.name : NULL,
            "granted", recent[i].granted && !recent[i].relay_error, "reason",
            recent[i].relay_error ? "relay_fault" : policy_reason_to_string(recent[i].reason),
            "card", recent[i].card, "latency_us", (int)recent[i].latency_us));
    }
    access_get_stats(d->engine, &stats);
    json_t *mq = json_null();
    if (d->mqtt) {
        struct mqtt_stats ms;
        mqtt_get_stats(d->mqtt, &ms);
        mq = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "connected", ms.connected,
                       "outbox", (json_int_t)ms.outbox, "dropped", (json_int_t)ms.dropped,
                       "published", (json_int_t)ms.published, "acknowledged",
                       (json_int_t)ms.acknowledged, "last_seq", (json_int_t)ms.last_seq,
                       "commands", (json_int_t)ms.commands, "commands_refused",
                       (json_int_t)ms.commands_refused);
    }
    if (d->consortium) {
        struct consortium_stats cs;
        consortium_get_stats(d->consortium, &cs);
        json_object_set_new(mq, "ledger", json_pack(
            "{s:I, s:I, s:I, s:I, s:I}", "acked_seq", (json_int_t)cs.acked_seq, "sent_up_to",
            (json_int_t)cs.sent_up_to, "head_seq", (json_int_t)cs.head_seq, "batches_sent",
            (json_int_t)cs.batches_sent, "resends_answered", (json_int_t)cs.resends_answered));
    }
    store_presence_foreach(d->store, count_present, &present);
    return json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:s, s:I, s:I, s:I, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I}}",
        "version", PORTIER_VERSION,
        "site", "id", d->cfg->site.id, "name", d->cfg->site.name, "timezone",
        d->cfg->site.timezone,
        "backend", config_backends[d->cfg->hardware.backend],
        "uptime", (json_int_t)((now_mono_usec() - d->started_usec) / 1000000u),
        "members", (json_int_t)store_member_count(d->store),
        "cards", (json_int_t)store_card_count(d->store),
        "present", present,
        "mqtt", mq, "storage", storage_json(d), "doors", doors, "machines",
        fablab_status(d->fablab), "readers", readers, "inputs", inputs, "recent_taps", taps,
        "stats", "taps", (json_int_t)stats.taps, "granted", (json_int_t)stats.granted,
        "denied", (json_int_t)stats.denied, "store_errors", (json_int_t)stats.store_errors);
}

static void cmd_status(struct daemon *d, struct control_conn *c)
{
    control_reply_ok(c, status_json(d));
}

static json_t *http_status(void *userdata)
{
    return status_json(userdata);
}

static void cmd_member_add(struct daemon *d, struct control_conn *c, json_t *req)
{
    const char *name = req_str(req, "name"), *email = req_str(req, "email");
    const char *plan_name = req_str(req, "plan");
    struct store_plan plan = { 0 };
    int64_t id, from, until;
    int r;

    if (!name || !*name || strlen(name) > 95) {
        control_reply_error(c, "bad_request", "a member needs a name of 1 to 95 characters");
        return;
    }
    if (email && strlen(email) > 127) {
        control_reply_error(c, "bad_request", "email longer than 127 characters");
        return;
    }
    if (!req_time(c, req, "valid_from", false, &from) || !req_time(c, req, "valid_until", false, &until))
        return;
    if (until && from && until <= from) {
        control_reply_error(c, "bad_request", "valid_until must come after valid_from");
        return;
    }
    if (plan_name && store_plan_find(d->store, plan_name, &plan) < 0) {
        control_reply_error(c, "not_found", "no plan '%.32s' (see `portierctl plan list`)",
                            plan_name);
        return;
    }
    r = store_member_add(d->store, name, email, plan.id, from, until, &id);
    if (r < 0) {
        control_reply_error(c, "store", "cannot add member: %s", strerror(-r));
        return;
    }
    log_info("member %" PRId64 " added (plan %s) by %s", id, plan_name ? plan_name : "none",
             control_conn_who(c));
    control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)id));
}

static void cmd_member_show(struct daemon *d, struct control_conn *c, json_t *req)
{
    struct store_member m;
    json_t *cards = json_array(), *obj;
    int64_t id;

    if (!req_member(d->store, c, req, "member", &id)) {
        json_decref(cards);
        return;
    }
    store_member_get(d->store, id, &m);
    store_cards_foreach(d->store, id, card_append, cards);
    obj = member_json(&m);
    json_object_set_new(obj, "card_list", cards);
    control_reply_ok(c, json_pack("{s:o}", "member", obj));
}

static void cmd_member_status(struct daemon *d, struct control_conn *c, json_t *req,
                              enum member_status status)
{
    int64_t id;
    int r;

    if (!req_member(d->store, c, req, "member", &id))
        return;
    r = store_member_set_status(d->store, id, status);
    if (r < 0) {
        control_reply_error(c, "store", "cannot change member: %s", strerror(-r));
        return;
    }
    log_info("member %" PRId64 " %s by %s", id,
             status == MEMBER_SUSPENDED ? "suspended" : "resumed", control_conn_who(c));
    control_reply_ok(c, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status",
                                  status == MEMBER_SUSPENDED ? "suspended" : "active"));
}

static void cmd_card_add(struct daemon *d, struct control_conn *c, json_t *req)
{
    const char *text = req_str(req, "uid"), *label = req_str(req, "label");
    uint8_t uid[READER_UID_MAX], hash[STORE_HASH_LEN];
    size_t len;
    int64_t member, id;
    int r;

    if (!text || cardid_parse(text, uid, &len) < 0) {
        control_reply_error(c, "bad_request", "uid must be 4, 7 or 10 bytes in hex (e.g. 04A1B2C3)");
        return;
    }
    if (label && strlen(label) > 63) {
        control_reply_error(c, "bad_request", "label longer than 63 characters");
        return;
    }
    if (!req_member(d->store, c, req, "member", &member))
        return;
    access_card_hash(d->engine, uid, len, hash);
    r = store_card_add(d->store, member, hash, label, &id);
    if (r == -EEXIST) {
        int64_t other;
        store_card_find(d->store, hash, &other);
        control_reply_error(c, "exists", "this card is already enrolled as card %" PRId64, other);
        return;
    }
    if (r < 0) {
        control_reply_error(c, "store", "cannot add card: %s", strerror(-r));
        return;
    }
    passports_card_seen(consortium_passports(d->consortium), id, uid, len);
    log_info("card %" PRId64 " added to member %" PRId64 " by %s", id, member,
             control_conn_who(c));
    control_reply_ok(c, json_pack("{s:I, s:I}", "id", (json_int_t)id, "member", (json_int_t)member));
}

static void cmd_card_remove(struct daemon *d, struct control_conn *c, json_t *req)
{
    json_t *card = json_object_get(req, "card");
    const char *text = req_str(req, "uid");
    int64_t id = 0;
    int r;

    if (json_is_integer(card)) {
        id = json_integer_value(card);
    } else if (text) {
        uint8_t uid[READER_UID_MAX], hash[STORE_HASH_LEN];
        size_t len;
        if (cardid_parse(text, uid, &len) < 0) {
            control_reply_error(c, "bad_request", "uid must be 4, 7 or 10 bytes in hex");
            return;
        }
        access_card_hash(d->engine, uid, len, hash);
        if (store_card_find(d->store, hash, &id) < 0) {
            control_reply_error(c, "not_found", "this card is not enrolled");
            return;
        }
    } else {
        control_reply_error(c, "bad_request", "give a card id or a uid");
        return;
    }
    r = store_card_remove(d->store, id);
    if (r == -ENOENT) {
        control_reply_error(c, "not_found", "no card %" PRId64, id);
        return;
    }
    if (r < 0) {
        control_reply_error(c, "store", "cannot remove card: %s", strerror(-r));
        return;
    }
    log_info("card %" PRId64 " removed by %s", id, control_conn_who(c));
    control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)id));
}

static void enroll_gone(struct control_conn *c, void *userdata)
{
    struct daemon *d = userdata;
    log_info("enroll at reader %s cancelled", d->enroll.reader->name);
    enroll_finish(d);
}

static int enroll_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct daemon *d = userdata;
    struct control_conn *conn = d->enroll.conn;

    log_notice("enroll at reader %s: no card was presented in time", d->enroll.reader->name);
    enroll_finish(d);
    control_reply_error(conn, "timeout", "no card was presented in time");
    return 0;
}

static void cmd_card_enroll(struct daemon *d, struct control_conn *c, json_t *req)
{
    const char *reader_name = req_str(req, "reader"), *label = req_str(req, "label");
    json_t *t = json_object_get(req, "timeout");
    int64_t member, seconds = ENROLL_DEFAULT_SECONDS;
    struct reader *reader;
    uint64_t now;

    if (json_is_integer(t))
        seconds = json_integer_value(t);
    if (seconds < 1 || seconds > ENROLL_MAX_SECONDS) {
        control_reply_error(c, "bad_request", "timeout must be 1 to %d seconds", ENROLL_MAX_SECONDS);
        return;
    }
    if (!reader_name || !(reader = reader_by_name(d, reader_name))) {
        control_reply_error(c, "not_found", "no reader '%.32s'", reader_name ? reader_name : "");
        return;
    }
    if (label && strlen(label) > 63) {
        control_reply_error(c, "bad_request", "label longer than 63 characters");
        return;
    }
    if (d->enroll.armed) {
        control_reply_error(c, "busy", "an enrolment is already waiting at reader %s",
                            d->enroll.reader->name);
        return;
    }
    if (!req_member(d->store, c, req, "member", &member))
        return;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    if (sd_event_add_time(d->loop, &d->enroll.timeout, CLOCK_MONOTONIC,
                          now + (uint64_t)seconds * 1000000u, 0, enroll_timeout, d) < 0) {
        control_reply_error(c, "internal", "out of memory");
        return;
    }
    d->enroll.armed = true;
    d->enroll.reader = reader;
    d->enroll.member_id = member;
    strlcpy_checked(d->enroll.label, label ? label : "", sizeof(d->enroll.label));
    d->enroll.conn = c;
    control_conn_on_gone(c, enroll_gone, d);
    log_info("enroll: waiting up to %" PRId64 " s for a card at reader %s for member %" PRId64,
             seconds, reader->name, member);
}

static void cmd_plan_add(struct daemon *d, struct control_conn *c, json_t *req)
{
    const char *name = req_str(req, "name"), *zones = req_str(req, "zones");
    const char *hours = req_str(req, "hours"), *err = "";
    struct schedule sched;
    int64_t id;
    int r;

    if (!name || !name_is_valid(name)) {
        control_reply_error(c, "bad_request", "a plan name is 1 to 31 letters, digits, '-', '_' or '.'");
        return;
    }
    zones = zones ? zones : "*";
    hours = hours ? hours : "always";
    if (strlen(zones) > 255) {
        control_reply_error(c, "bad_request", "zones longer than 255 characters");
        return;
    }
    if (schedule_parse(hours, &sched, &err) < 0) {
        control_reply_error(c, "bad_request", "hours: %s", err);
        return;
    }
    r = store_plan_add(d->store, name, zones, hours, &id);
    if (r == -EEXIST) {
        control_reply_error(c, "exists", "a plan named '%s' already exists", name);
        return;
    }
    if (r < 0) {
        control_reply_error(c, "store", "cannot add plan: %s", strerror(-r));
        return;
    }
    log_info("plan %s added (zones %s, hours %s)", name, zones, hours);
    control_reply_ok(c, json_pack("{s:I}", "id", (json_int_t)id));
}

static void cmd_door_unlock(struct daemon *d, struct control_conn *c, json_t *req, bool unlock)
{
    const char *name = req_str(req, "door");
    json_t *secs = json_object_get(req, "seconds");
    struct door *door = name ? door_by_name(d, name) : NULL;
    int64_t seconds;
    int r;

    if (!door) {
        control_reply_error(c, "not_found", "no door '%.32s'", name ? name : "");
        return;
    }
    if (!unlock) {
        r = door_lock_now(door);
        if (r < 0) {
            control_reply_error(c, "hardware", "relay write failed: %s", strerror(-r));
            return;
        }
        access_record_door_event(d->engine, door, "lock", true, "manual", NULL);
        control_reply_ok(c, json_pack("{s:s, s:b}", "door", name, "free_entry", door->free_entry));
        return;
    }
    seconds = json_is_integer(secs) ? json_integer_value(secs) : door->cfg->unlock_seconds;
    if (seconds < 1 || seconds > DOOR_MAX_UNLOCK_SECONDS) {
        control_reply_error(c, "bad_request", "seconds must be 1 to %d", DOOR_MAX_UNLOCK_SECONDS);
        return;
    }
    r = door_unlock_for(door, (unsigned)seconds, DOOR_CAUSE_MANUAL);
    if (r < 0) {
        control_reply_error(c, "hardware", "relay write failed: %s", strerror(-r));
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "%" PRId64 " s by %s", seconds, control_conn_who(c));
    log_info("door %s: manual unlock for %" PRId64 " s by %s", name, seconds,
             control_conn_who(c));
    access_record_door_event(d->engine, door, "unlock", true, "manual", detail);
    control_reply_ok(c, json_pack("{s:s, s:I}", "door", name, "seconds", (json_int_t)seconds));
}

static void cmd_events(struct daemon *d, struct control_conn *c, json_t *req)
{
    json_t *list = json_array(), *lim = json_object_get(req, "limit");
    int64_t since, limit = json_is_integer(lim) ? json_integer_value(lim) : 50;
    int r;

    if (!req_time(c, req, "since", false, &since)) {
        json_decref(list);
        return;
    }
    if (limit < 0 || limit > 100000) {
        json_decref(list);
        control_reply_error(c, "bad_request", "limit must be 0 (all) to 100000");
        return;
    }
    if (limit == 0)
        limit = 100000;
    r = store_events_foreach(d->store, since, limit, event_append, list);
    if (r < 0) {
        json_decref(list);
        control_reply_error(c, "store", "cannot read events: %s", strerror(-r));
        return;
    }
    control_reply_ok(c, json_pack("{s:o}", "events", list));
}

static void cmd_sim(struct daemon *d, struct control_conn *c, json_t *req, const char *what)
{
    if (strcmp(what, "tap") == 0 || strcmp(what, "remove") == 0) {
        const char *name = req_str(req, "reader"), *text = req_str(req, "uid");
        struct reader *reader = name ? reader_by_name(d, name) : NULL;
        uint8_t uid[READER_UID_MAX];
        size_t len;
        struct access_tap last = { 0 };
        int r;

        if (!reader) {
            control_reply_error(c, "not_found", "no reader '%.32s'", name ? name : "");
            return;
        }
        if (reader->ops != &reader_ops_sim) {
            control_reply_error(c, "bad_request", "reader %s is not simulated", reader->name);
            return;
        }
        if (strcmp(what, "remove") == 0) {
            reader_sim_remove(reader);
            control_reply_ok(c, NULL);
            return;
        }
        if (!text || cardid_parse(text, uid, &len) < 0) {
            control_reply_error(c, "bad_request", "uid must be 4, 7 or 10 bytes in hex (e.g. 04A1B2C3)");
            return;
        }
        bool to_enroll = d->enroll.armed && d->enroll.reader == reader;
        struct access_stats before, after;
        uint64_t machine_seq = fablab_last_tap(d->fablab)->seq;
        access_get_stats(d->engine, &before);
        r = reader_sim_present(reader, uid, len, json_is_true(json_object_get(req, "hold")));
        if (r < 0) {
            control_reply_error(c, "internal", "cannot present card: %s", strerror(-r));
            return;
        }
        access_get_stats(d->engine, &after);
        const struct fablab_tap *mt = fablab_last_tap(d->fablab);
        if (to_enroll) {
            control_reply_ok(c, json_pack("{s:b}", "enrolment", 1));
        } else if (mt->seq != machine_seq) {
            control_reply_ok(c, json_pack("{s:s, s:b, s:s, s:I, s:i}", "machine", mt->machine,
                                          "granted", mt->granted, "outcome", mt->outcome,
                                          "member_id", (json_int_t)mt->member_id, "latency_us",
                                          (int)mt->latency_us));
        } else if (after.taps != before.taps && access_recent(d->engine, &last, 1) == 1 &&
                   last.event_id == 0) {
            /* The door decided (and acted), but the tap is not in the access log: held in
             * memory until the disk takes writes again. */
            control_reply_error(c, "not_recorded", "door %s: %s, but the tap could not be "
                                "recorded (%s); it is held and written later", last.door,
                                last.granted && !last.relay_error ? "granted" : "denied",
                                "the database refused the write");
        } else if (after.taps != before.taps && access_recent(d->engine, &last, 1) == 1) {
            /* What the tap did at the door. */
            control_reply_ok(c, json_pack("{s:s, s:b, s:s, s:I, s:I, s:i}", "door", last.door,
                                          "granted", last.granted && !last.relay_error, "reason",
                                          last.relay_error ? "relay_fault"
                                                           : policy_reason_to_string(last.reason),
                                          "member_id", (json_int_t)last.member_id, "event_id",
                                          (json_int_t)last.event_id, "latency_us",
                                          (int)last.latency_us));
        } else {
            control_reply_ok(c, json_pack("{s:n}", "door"));
        }
        return;
    }
    /* press / release an input */
    const char *name = req_str(req, "input");
    struct input *in = name ? input_by_name(d, name) : NULL;
    if (!in) {
        control_reply_error(c, "not_found", "no input '%.48s' (inputs are DOOR.contact, DOOR.exit and MACHINE.running)",
                            name ? name : "");
        return;
    }
    if (input_sim_set(in, strcmp(what, "press") == 0) < 0) {
        control_reply_error(c, "bad_request", "input %s is not simulated", in->name);
        return;
    }
    control_reply_ok(c, json_pack("{s:s, s:b}", "input", in->name, "raw_active",
                                  strcmp(what, "press") == 0));
}

static void on_request(struct control_conn *c, json_t *req, void *userdata)
{
    struct daemon *d = userdata;
    const char *cmd = req_str(req, "cmd");

    if (strcmp(cmd, "status") == 0) {
        cmd_status(d, c);
    } else if (strcmp(cmd, "member.add") == 0) {
        cmd_member_add(d, c, req);
    } else if (strcmp(cmd, "member.list") == 0) {
        json_t *list = json_array();
        store_members_foreach(d->store, member_append, list);
        control_reply_ok(c, json_pack("{s:o}", "members", list));
    } else if (strcmp(cmd, "member.show") == 0) {
        cmd_member_show(d, c, req);
    } else if (strcmp(cmd, "member.suspend") == 0) {
        cmd_member_status(d, c, req, MEMBER_SUSPENDED);
    } else if (strcmp(cmd, "member.resume") == 0) {
        cmd_member_status(d, c, req, MEMBER_ACTIVE);
    } else if (strcmp(cmd, "card.add") == 0) {
        cmd_card_add(d, c, req);
    } else if (strcmp(cmd, "card.remove") == 0) {
        cmd_card_remove(d, c, req);
    } else if (strcmp(cmd, "card.list") == 0) {
        json_t *list = json_array();
        int64_t member = 0;
        if (json_object_get(req, "member") && !req_member(d->store, c, req, "member", &member)) {
            json_decref(list);
            return;
        }
        store_cards_foreach(d->store, member, card_append, list);
        control_reply_ok(c, json_pack("{s:o}", "cards", list));
    } else if (strcmp(cmd, "card.enroll") == 0) {
        cmd_card_enroll(d, c, req);
    } else if (strcmp(cmd, "plan.add") == 0) {
        cmd_plan_add(d, c, req);
    } else if (strcmp(cmd, "plan.list") == 0) {
        json_t *list = json_array();
        store_plans_foreach(d->store, plan_append, list);
        control_reply_ok(c, json_pack("{s:o}", "plans", list));
    } else if (strcmp(cmd, "door.unlock") == 0) {
        cmd_door_unlock(d, c, req, true);
    } else if (strcmp(cmd, "door.lock") == 0) {
        cmd_door_unlock(d, c, req, false);
    } else if (strcmp(cmd, "sim.advance") == 0) {
        json_t *secs = json_object_get(req, "seconds");
        if (d->cfg->hardware.backend != 0) {
            control_reply_error(c, "bad_request", "the clock can only be advanced on simulated hardware");
            return;
        }
        if (!json_is_integer(secs) || json_integer_value(secs) < 0 ||
            json_integer_value(secs) > 90 * 86400) {
            control_reply_error(c, "bad_request", "seconds must be 0 to 7776000");
            return;
        }
        clock_advance(json_integer_value(secs));
        log_notice("simulation: clock advanced by %" JSON_INTEGER_FORMAT " s (offset now %" PRId64 " s)",
                   json_integer_value(secs), clock_offset());
        fablab_clock_changed(d->fablab);
        free_entry_evaluate(d);
        closing_check(d);
        control_reply_ok(c, json_pack("{s:I, s:I}", "now", (json_int_t)now_utc(), "offset",
                                      (json_int_t)clock_offset()));
    } else if (strcmp(cmd, "reader.restart") == 0) {
        const char *name = req_str(req, "reader");
        struct reader *reader = name ? reader_by_name(d, name) : NULL;
        int r;
        if (!reader) {
            control_reply_error(c, "not_found", "no reader '%.32s'", name ? name : "");
            return;
        }
        r = reader_restart(reader);
        if (r < 0) {
            control_reply_error(c, "bad_request", "reader %s has nothing to restart (%s)",
                                reader->name, reader->ops->driver);
            return;
        }
        log_info("reader %s: restart requested by %s", reader->name, control_conn_who(c));
        control_reply_ok(c, json_pack("{s:s}", "reader", reader->name));
    } else if (strcmp(cmd, "events") == 0) {
        cmd_events(d, c, req);
    } else if (strncmp(cmd, "sim.", 4) == 0 &&
               (strcmp(cmd + 4, "tap") == 0 || strcmp(cmd + 4, "remove") == 0 ||
                strcmp(cmd + 4, "press") == 0 || strcmp(cmd + 4, "release") == 0)) {
        cmd_sim(d, c, req, cmd + 4);
    } else if (accounts_control(d->store, c, cmd, req)) {
        /* handled */
    } else if (fablab_control(d->fablab, c, cmd, req)) {
        /* handled */
    } else if (billing_control(d->store, d->meter, d->cfg->daemon.state_dir, c, cmd, req)) {
        if (strncmp(cmd, "presence.", 9) == 0)
            publish_occupancy(d);   /* a manager's check-out changes who is in */
        else if (strcmp(cmd, "period.close") == 0)
            consortium_publish_seals(d->consortium);   /* the new seal, to the custodian */
    } else {
        control_reply_error(c, "unknown_command", "unknown command '%.32s'", cmd);
    }
}

/* ---- life cycle ---- */

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
        for (unsigned i = 0; i < d->n_doors; i++)
            door_reconfigure(&d->doors[i], &next->doors[i]);
        fablab_reconfigure(d->fablab, next);
        meter_configure(d->meter, next->site.id, (int)next->metering.day_starts);
        http_reconfigure(d->http, next);
        config_free(d->cfg);
        d->cfg = next;
        log_set_level(d->cfg->daemon.log_level);
        set_timezone(d->cfg->site.timezone);
        free_entry_evaluate(d);
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
    sd_event_exit(d->loop, 0);
    return 0;
}

static int mkdir_state(const char *dir)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int daemon_new(const char *config_path, struct daemon **ret)
{
    struct config_errors errors;
    struct daemon *d;
    struct door_hw hw;
    uint8_t card_key[CARDID_KEY_LEN];
    char db_path[PATH_MAX];
    sigset_t mask;
    int r;

    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->started_usec = now_mono_usec();
    strlcpy_checked(d->config_path, config_path, sizeof(d->config_path));
    r = config_load(config_path, &d->cfg, &errors);
    if (r < 0) {
        log_config_errors(&errors);
        goto fail;
    }
    log_set_level(d->cfg->daemon.log_level);
    set_timezone(d->cfg->site.timezone);

    r = sd_event_default(&d->loop);
    if (r < 0)
        goto fail;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);      /* reader workers' exits come through sd-event */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if ((r = sd_event_add_signal(d->loop, NULL, SIGTERM, on_sigterm, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGINT, on_sigterm, d)) < 0 ||
        (r = sd_event_add_signal(d->loop, NULL, SIGHUP, on_sighup, d)) < 0)
        goto fail;
    /* Pets the systemd watchdog from the loop itself: a stuck loop stops the petting. */
    sd_event_set_watchdog(d->loop, true);

    r = mkdir_state(d->cfg->daemon.state_dir);
    if (r < 0) {
        log_error("cannot create state directory %s: %s", d->cfg->daemon.state_dir, strerror(-r));
        goto fail;
    }
    config_database_path(d->cfg, db_path, sizeof(db_path));
    r = store_open(db_path, &d->store);
    if (r < 0) {
        log_error("cannot open database %s: %s", db_path,
                  r == -EPROTO ? "it was written by a newer Portier" : strerror(-r));
        goto fail;
    }
    r = commit_new(d->loop, d->store, db_path, on_durable, on_storage_health, d, &d->commit);
    if (r < 0) {
        log_error("cannot prepare the database %s for writing: %s", db_path, strerror(-r));
        goto fail;
    }

    r = store_secret(d->store, "card_key", card_key, sizeof(card_key));
    if (r < 0) {
        log_error("cannot read or create the site's card key: %s", strerror(-r));
        goto fail;
    }
    r = access_engine_new(d->store, card_key, (unsigned)d->cfg->daemon.recent_taps, &d->engine);
    sodium_memzero(card_key, sizeof(card_key));
    if (r < 0)
        goto fail;

    relay_sim_set_state_dir(d->cfg->hardware.sim_state_dir);
    hw.relay_ops = relay_ops_by_name(config_backends[d->cfg->hardware.backend]);
    hw.input_ops = input_ops_by_name(config_backends[d->cfg->hardware.backend]);
    hw.debounce_ms = (unsigned)d->cfg->hardware.debounce_ms;
    hw.bias = (enum input_bias)d->cfg->hardware.input_bias;
    for (unsigned i = 0; i < d->cfg->n_doors; i++) {
        const struct door_config *dc = &d->cfg->doors[i];
        struct door *door = &d->doors[i];
        const char *what = "";
        r = door_init(door, dc, d->loop, &hw, on_door_event, d, &what);
        if (r < 0) {
            log_error("door %s: cannot open %s line: %s", dc->name, what, strerror(-r));
            goto fail;
        }
        d->n_doors++;
        r = store_resource_ensure(d->store, "door", dc->name, dc->zone, &door->resource_id);
        if (r < 0) {
            log_error("door %s: cannot record it in the database: %s", dc->name, strerror(-r));
            goto fail;
        }
    }
    r = meter_new(d->store, d->cfg->site.id, (int)d->cfg->metering.day_starts, &d->meter);
    if (r == -EXDEV) {
        log_error("the database %s belongs to another site id than [site] id = %s: its ledger is "
                  "signed for that site; restore the old id or use another state_dir", db_path,
                  d->cfg->site.id);
        goto fail;
    }
    if (r < 0) {
        log_error("cannot read or create the site's signing key: %s", strerror(-r));
        goto fail;
    }
    r = fablab_new(d->loop, d->store, d->engine, d->meter, d->cfg, &hw, &d->fablab);
    if (r < 0)
        goto fail;
    for (unsigned i = 0; i < d->cfg->n_readers; i++) {
        const struct reader_config *rc = &d->cfg->readers[i];
        const struct reader_ops *ops = reader_ops_by_driver(config_reader_drivers[rc->driver]);
        char worker[PATH_MAX];
        struct reader_params params = {
            .connstring = rc->connstring,
            .worker_path = worker,
            .poll_ms = (unsigned)rc->poll_ms,
            .debounce_ms = (unsigned)rc->debounce_ms,
            .heartbeat_timeout_ms = (unsigned)rc->heartbeat_timeout_ms,
            .backoff_max_ms = (unsigned)rc->backoff_max_seconds * 1000u,
        };
        reader_worker_path(d->cfg, worker, sizeof(worker));
        if (rc->reset_line.set) {
            char name[48];
            snprintf(name, sizeof(name), "%s.reset", rc->name);
            r = relay_open(&d->reader_resets[i], hw.relay_ops, name, &rc->reset_line);
            if (r < 0) {
                log_error("reader %s: cannot open reset line: %s", rc->name, strerror(-r));
                goto fail;
            }
            params.reset = &d->reader_resets[i];
        }
        r = reader_start(&d->readers[i], ops, d->loop, rc->name, &params, on_reader_event, d);
        d->n_readers++;
        if (r < 0)  /* a broken reader must not keep the other doors shut */
            log_error("reader %s: cannot start: %s", rc->name, strerror(-r));
    }
    r = sd_event_add_time(d->loop, &d->minute, CLOCK_REALTIME, 0, 1000000, minute_due, d);
    if (r < 0)
        goto fail;
    r = control_new(d->loop, d->cfg->daemon.control_socket, d->cfg->daemon.control_mode,
                    d->cfg->daemon.control_group, on_request, d, &d->control);
    if (r < 0) {
        log_error("cannot listen on control socket %s: %s", d->cfg->daemon.control_socket,
                  strerror(-r));
        goto fail;
    }
    if (d->cfg->mqtt.enabled) {
        r = store_outbox_enable(d->store, true, d->cfg->mqtt.outbox_max);
        if (r == 0)
            r = mqtt_new(d->loop, d->store, d->cfg, on_mqtt_command, d, &d->mqtt);
        if (r < 0) {
            log_error("mqtt: cannot start: %s", strerror(-r));
            goto fail;
        }
        if (d->cfg->consortium.enabled) {
            r = consortium_new(d->loop, d->store, d->meter, d->mqtt, d->cfg, &d->consortium);
            if (r < 0) {
                log_error("consortium: cannot start: %s", strerror(-r));
                goto fail;
            }
            if (consortium_passports(d->consortium))
                access_engine_set_visitors(d->engine, &passports_visitor_ops,
                                           consortium_passports(d->consortium));
        }
        fablab_on_change(d->fablab, publish_machine, d);
        for (unsigned i = 0; i < d->n_doors; i++)
            publish_door(d, &d->doors[i]);
        fablab_publish_all(d->fablab);
        publish_occupancy(d);
        on_storage_health(d);
    }
    if (d->cfg->http.listen[0]) {
        struct http_env env = { .loop = d->loop, .store = d->store, .control = d->control,
                                .fablab = d->fablab, .status = http_status, .userdata = d };
        r = http_new(&env, d->cfg, &d->http);
        if (r < 0)
            goto fail;
    }
    free_entry_evaluate(d);
    control_set_commit(d->control, d->commit);
    r = commit_flush(d->commit);
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
             d->cfg->site.id, d->n_doors, d->n_readers,
             config_backends[d->cfg->hardware.backend]);
    sd_notify(0, "READY=1");
    notify_status(d);
    r = sd_event_loop(d->loop);
    if (r < 0) {
        log_error("event loop failed: %s", strerror(-r));
        return 1;
    }
    return r;
}

struct daemon *daemon_free(struct daemon *d)
{
    if (!d)
        return NULL;
    /* Relays first: whatever else fails below, the doors are in their safe state. */
    for (unsigned i = 0; i < d->n_doors; i++)
        door_fini(&d->doors[i]);
    d->http = http_free(d->http);
    d->fablab = fablab_free(d->fablab);     /* machines off, sessions closed as "stopped" */
    d->meter = meter_free(d->meter);
    d->control = control_free(d->control);     /* no reply is left waiting on a commit */
    commit_flush(d->commit);
    mqtt_kick(d->mqtt);
    if (d->engine)
        access_engine_set_visitors(d->engine, NULL, NULL);
    d->consortium = consortium_free(d->consortium);
    d->mqtt = mqtt_free(d->mqtt);
    d->enroll.timeout = sd_event_source_disable_unref(d->enroll.timeout);
    for (unsigned i = 0; i < d->n_readers; i++)
        reader_stop(&d->readers[i]);
    for (unsigned i = 0; i < CONFIG_MAX_READERS; i++)
        relay_close(&d->reader_resets[i]);
    d->minute = sd_event_source_disable_unref(d->minute);
    d->commit = commit_free(d->commit);
    d->engine = access_engine_free(d->engine);
    d->store = store_free(d->store);
    d->loop = sd_event_unref(d->loop);
    d->cfg = config_free(d->cfg);
    free(d);
    return NULL;
}

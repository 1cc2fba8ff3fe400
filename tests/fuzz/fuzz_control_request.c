/* fuzz_control_request: one request line on the control socket, read the way
 * controller/commands/control.c (conn_io, conn_dispatch) and controller/daemon/daemon.c (on_request and the
 * cmd_* handlers) read it, without a daemon.
 *
 * Whoever can write the socket sends a line of at most CONTROL_REQUEST_MAX bytes; the
 * daemon parses it with json_loadb(JSON_REJECT_DUPLICATES), requires an object with a "cmd"
 * string, and each handler validates its fields with the real helpers (cardid_parse,
 * schedule_parse, name_is_valid, parse_time, store_member_resolve) before acting. This
 * harness mirrors those checks on attacker-controlled fields, against an in-memory store
 * with a few members and a fixed set of door, reader and input names, and stops short of
 * every action (no writes, no hardware). It also builds each reply the way
 * control_reply_error() / control_reply_ok() do and checks the protocol's promise: exactly
 * one reply per request, a JSON object on one line that a client can parse.
 *
 * Not covered: the "machine.*", "training.*" and "booking.*" commands, which daemon.c hands
 * to fablab_control() (controller/fablab/fablab.c); here they fall through to unknown_command.
 *
 * Keep the mirrored checks in step with daemon.c; the day request validation moves into a
 * pure function of its own, call that instead. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "cardid.h"
#include "control.h"
#include "door.h"
#include "fuzz.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

#define ENROLL_DEFAULT_SECONDS 60       /* as in daemon.c */
#define ENROLL_MAX_SECONDS 600

static const char *const door_names[] = { "front", "workshop", NULL };
static const char *const reader_names[] = { "front-in", "workshop-in", NULL };
static const char *const input_names[] = { "front.contact", "front.exit", "workshop.contact",
                                           "workshop.exit", NULL };

static struct store *store;
static unsigned replies;

static void setup(void)
{
    int64_t plan, id;

    if (store)
        return;
    /* The daemon runs in the site's zone; one with daylight saving exercises more. */
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    if (store_open(":memory:", &store) < 0 ||
        store_plan_add(store, "member", "*", "always", &plan) < 0 ||
        store_member_add(store, "Alice Martin", "alice@example.org", plan, 0, 0, &id) < 0 ||
        store_member_add(store, "Bob", NULL, 0, 0, 0, &id) < 0 ||
        store_member_add(store, "Bob", NULL, 0, 0, 0, &id) < 0 ||   /* ambiguous by name */
        store_commit(store) < 0) {
        fprintf(stderr, "fuzz_control_request: cannot set up the in-memory store\n");
        abort();
    }
}

static bool in(const char *const *names, const char *name)
{
    for (size_t i = 0; name && names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* control_reply(): a reply that cannot be built or printed is never sent, and the client
 * is left with a closed connection and no answer. */
static void reply(json_t *r)
{
    json_error_t err;
    json_t *back;
    char *text;

    FUZZ_CHECK_MSG(r != NULL, "the reply cannot be built (json_pack() refuses a string that "
                              "is not valid UTF-8), so control_reply() closes the connection "
                              "without answering");
    text = json_dumps(r, JSON_COMPACT);
    FUZZ_CHECK_MSG(text != NULL, "the reply cannot be printed, so it is never sent");
    FUZZ_CHECK(strchr(text, '\n') == NULL);             /* one line */
    back = json_loads(text, JSON_REJECT_DUPLICATES, &err);  /* as portierctl reads it */
    FUZZ_CHECK(back != NULL && json_is_object(back));
    FUZZ_CHECK(json_is_boolean(json_object_get(back, "ok")));
    json_decref(back);
    free(text);
    json_decref(r);
    replies++;
}

static void reply_error(const char *code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply_error(const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(control_error_object(code, msg));     /* the daemon's own error reply */
}

static void reply_ok(json_t *fields)
{
    json_t *r = json_pack("{s:b}", "ok", 1);
    if (fields) {
        json_object_update(r, fields);
        json_decref(fields);
    }
    reply(r);
}

static const char *req_str(json_t *req, const char *key)
{
    json_t *v = json_object_get(req, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool req_member(json_t *req, int64_t *ret_id)
{
    const char *ref = req_str(req, "member");
    int64_t id = -1;
    int r;

    if (!ref) {
        reply_error("bad_request", "missing \"member\" (an id or an exact name)");
        return false;
    }
    r = store_member_resolve(store, ref, &id);
    if (r == -ENOENT)
        reply_error("not_found", "no member '%.64s'", ref);
    else if (r == -ENOTUNIQ)
        reply_error("ambiguous", "several members are named '%.64s'; use the id", ref);
    else if (r < 0)
        reply_error("store", "cannot look up member: %s", strerror(-r));
    if (r == 0) {
        FUZZ_CHECK(id >= 1 && id <= 3);
        *ret_id = id;
    }
    return r == 0;
}

static bool req_time(json_t *req, const char *key, int64_t *ret)
{
    json_t *v = json_object_get(req, key);
    *ret = 0;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *ret = json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && parse_time(json_string_value(v), ret) == 0)
        return true;
    reply_error("bad_request", "%s must be a date (YYYY-MM-DD[THH:MM]) or epoch", key);
    return false;
}

static bool uid_ok(const char *text, uint8_t uid[CARDID_UID_MAX], size_t *len)
{
    if (!text || cardid_parse(text, uid, len) < 0)
        return false;
    FUZZ_CHECK(*len == 4 || *len == 7 || *len == 10);
    return true;
}

static void cmd_member_add(json_t *req)
{
    const char *name = req_str(req, "name"), *email = req_str(req, "email");
    const char *plan_name = req_str(req, "plan");
    struct store_plan plan = { 0 };
    int64_t from, until;

    if (!name || !*name || strlen(name) > 95) {
        reply_error("bad_request", "a member needs a name of 1 to 95 characters");
        return;
    }
    if (email && strlen(email) > 127) {
        reply_error("bad_request", "email longer than 127 characters");
        return;
    }
    if (!req_time(req, "valid_from", &from) || !req_time(req, "valid_until", &until))
        return;
    if (until && from && until <= from) {
        reply_error("bad_request", "valid_until must come after valid_from");
        return;
    }
    if (plan_name && store_plan_find(store, plan_name, &plan) < 0) {
        reply_error("not_found", "no plan '%.32s' (see `portierctl plan list`)", plan_name);
        return;
    }
    reply_ok(json_pack("{s:I}", "id", (json_int_t)4));   /* store_member_add() not called */
}

static void cmd_card_add(json_t *req)
{
    const char *text = req_str(req, "uid"), *label = req_str(req, "label");
    uint8_t uid[CARDID_UID_MAX], hash[STORE_HASH_LEN];
    static const uint8_t key[CARDID_KEY_LEN] = { 1 };
    size_t len;
    int64_t member;

    if (!uid_ok(text, uid, &len)) {
        reply_error("bad_request", "uid must be 4, 7 or 10 bytes in hex (e.g. 04A1B2C3)");
        return;
    }
    if (label && strlen(label) > 63) {
        reply_error("bad_request", "label longer than 63 characters");
        return;
    }
    if (!req_member(req, &member))
        return;
    cardid_hash(key, uid, len, hash);
    reply_ok(json_pack("{s:I, s:I}", "id", (json_int_t)1, "member", (json_int_t)member));
}

static void cmd_card_remove(json_t *req)
{
    json_t *card = json_object_get(req, "card");
    const char *text = req_str(req, "uid");
    uint8_t uid[CARDID_UID_MAX];
    size_t len;

    if (json_is_integer(card)) {
        reply_error("not_found", "no card %" PRId64, (int64_t)json_integer_value(card));
    } else if (text) {
        if (!uid_ok(text, uid, &len))
            reply_error("bad_request", "uid must be 4, 7 or 10 bytes in hex");
        else
            reply_error("not_found", "this card is not enrolled");
    } else {
        reply_error("bad_request", "give a card id or a uid");
    }
}

/* Returns true if the request is left waiting (no reply yet), as a real enrolment is. */
static bool cmd_card_enroll(json_t *req)
{
    const char *reader = req_str(req, "reader"), *label = req_str(req, "label");
    json_t *t = json_object_get(req, "timeout");
    int64_t member, seconds = ENROLL_DEFAULT_SECONDS;

    if (json_is_integer(t))
        seconds = json_integer_value(t);
    if (seconds < 1 || seconds > ENROLL_MAX_SECONDS) {
        reply_error("bad_request", "timeout must be 1 to %d seconds", ENROLL_MAX_SECONDS);
        return false;
    }
    if (!reader || !in(reader_names, reader)) {
        reply_error("not_found", "no reader '%.32s'", reader ? reader : "");
        return false;
    }
    if (label && strlen(label) > 63) {
        reply_error("bad_request", "label longer than 63 characters");
        return false;
    }
    if (!req_member(req, &member))
        return false;
    return true;
}

static void cmd_plan_add(json_t *req)
{
    const char *name = req_str(req, "name"), *zones = req_str(req, "zones");
    const char *hours = req_str(req, "hours"), *err = "";
    struct schedule sched;

    if (!name || !name_is_valid(name)) {
        reply_error("bad_request", "a plan name is 1 to 31 letters, digits, '-', '_' or '.'");
        return;
    }
    zones = zones ? zones : "*";
    hours = hours ? hours : "always";
    if (strlen(zones) > 255) {
        reply_error("bad_request", "zones longer than 255 characters");
        return;
    }
    if (schedule_parse(hours, &sched, &err) < 0) {
        reply_error("bad_request", "hours: %s", err);
        return;
    }
    fuzz_check_schedule(&sched);
    if (strcmp(name, "member") == 0) {
        reply_error("exists", "a plan named '%s' already exists", name);
        return;
    }
    reply_ok(json_pack("{s:I}", "id", (json_int_t)2));
}

static void cmd_door(json_t *req, bool unlock)
{
    const char *name = req_str(req, "door");
    json_t *secs = json_object_get(req, "seconds");
    int64_t seconds;

    if (!in(door_names, name)) {
        reply_error("not_found", "no door '%.32s'", name ? name : "");
        return;
    }
    if (!unlock) {
        reply_ok(json_pack("{s:s, s:b}", "door", name, "free_entry", 0));
        return;
    }
    seconds = json_is_integer(secs) ? json_integer_value(secs) : 5;
    if (seconds < 1 || seconds > DOOR_MAX_UNLOCK_SECONDS) {
        reply_error("bad_request", "seconds must be 1 to %d", DOOR_MAX_UNLOCK_SECONDS);
        return;
    }
    reply_ok(json_pack("{s:s, s:I}", "door", name, "seconds", (json_int_t)seconds));
}

static void cmd_events(json_t *req)
{
    json_t *lim = json_object_get(req, "limit");
    int64_t since, limit = json_is_integer(lim) ? json_integer_value(lim) : 50;

    if (!req_time(req, "since", &since))
        return;
    if (limit < 0 || limit > 100000) {
        reply_error("bad_request", "limit must be 0 (all) to 100000");
        return;
    }
    reply_ok(json_pack("{s:[]}", "events"));
}

static void cmd_sim(json_t *req, const char *what)
{
    if (strcmp(what, "tap") == 0 || strcmp(what, "remove") == 0) {
        const char *name = req_str(req, "reader"), *text = req_str(req, "uid");
        uint8_t uid[CARDID_UID_MAX];
        size_t len;

        if (!in(reader_names, name)) {
            reply_error("not_found", "no reader '%.32s'", name ? name : "");
            return;
        }
        if (strcmp(what, "remove") == 0) {
            reply_ok(NULL);
            return;
        }
        if (!uid_ok(text, uid, &len)) {
            reply_error("bad_request", "uid must be 4, 7 or 10 bytes in hex (e.g. 04A1B2C3)");
            return;
        }
        (void)json_is_true(json_object_get(req, "hold"));
        reply_ok(json_pack("{s:n}", "door"));
        return;
    }
    const char *name = req_str(req, "input");
    if (!in(input_names, name)) {
        reply_error("not_found",
                    "no input '%.48s' (inputs are DOOR.contact, DOOR.exit and MACHINE.running)",
                    name ? name : "");
        return;
    }
    reply_ok(json_pack("{s:s, s:b}", "input", name, "raw_active", strcmp(what, "press") == 0));
}

/* on_request() in daemon.c. Returns true if the reply is deferred. */
static bool on_request(json_t *req)
{
    const char *cmd = req_str(req, "cmd");
    int64_t member = 0;

    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "member.list") == 0 ||
        strcmp(cmd, "plan.list") == 0) {
        reply_ok(NULL);
    } else if (strcmp(cmd, "member.add") == 0) {
        cmd_member_add(req);
    } else if (strcmp(cmd, "member.show") == 0 || strcmp(cmd, "member.suspend") == 0 ||
               strcmp(cmd, "member.resume") == 0) {
        if (req_member(req, &member))
            reply_ok(json_pack("{s:I}", "id", (json_int_t)member));
    } else if (strcmp(cmd, "card.add") == 0) {
        cmd_card_add(req);
    } else if (strcmp(cmd, "card.remove") == 0) {
        cmd_card_remove(req);
    } else if (strcmp(cmd, "card.list") == 0) {
        if (json_object_get(req, "member") && !req_member(req, &member))
            return false;
        reply_ok(json_pack("{s:[]}", "cards"));
    } else if (strcmp(cmd, "card.enroll") == 0) {
        return cmd_card_enroll(req);
    } else if (strcmp(cmd, "plan.add") == 0) {
        cmd_plan_add(req);
    } else if (strcmp(cmd, "door.unlock") == 0) {
        cmd_door(req, true);
    } else if (strcmp(cmd, "door.lock") == 0) {
        cmd_door(req, false);
    } else if (strcmp(cmd, "sim.advance") == 0) {
        json_t *secs = json_object_get(req, "seconds");
        /* Simulated hardware here; clock_advance() is not called (it is process-wide). */
        if (!json_is_integer(secs) || json_integer_value(secs) < 0 ||
            json_integer_value(secs) > 90 * 86400)
            reply_error("bad_request", "seconds must be 0 to 7776000");
        else
            reply_ok(json_pack("{s:I, s:I}", "now", (json_int_t)0, "offset",
                               json_integer_value(secs)));
    } else if (strcmp(cmd, "reader.restart") == 0) {
        const char *name = req_str(req, "reader");
        if (!in(reader_names, name))
            reply_error("not_found", "no reader '%.32s'", name ? name : "");
        else
            reply_error("bad_request", "reader %s has nothing to restart (%s)", name, "sim");
    } else if (strcmp(cmd, "events") == 0) {
        cmd_events(req);
    } else if (strncmp(cmd, "sim.", 4) == 0 &&
               (strcmp(cmd + 4, "tap") == 0 || strcmp(cmd + 4, "remove") == 0 ||
                strcmp(cmd + 4, "press") == 0 || strcmp(cmd + 4, "release") == 0)) {
        cmd_sim(req, cmd + 4);
    } else {
        reply_error("unknown_command", "unknown command '%.32s'", cmd);
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl;
    size_t line_len;
    json_error_t err;
    json_t *req;
    bool deferred = false;

    setup();
    replies = 0;
    /* conn_io(): the daemon reads at most CONTROL_REQUEST_MAX bytes and dispatches up to the
     * first newline; with none in a full buffer it answers too_large. A shorter input with
     * no newline is taken whole (the daemon would wait for the rest, then time out). */
    if (size > CONTROL_REQUEST_MAX)
        size = CONTROL_REQUEST_MAX;
    nl = size ? memchr(data, '\n', size) : NULL;
    if (!nl && size == CONTROL_REQUEST_MAX) {
        reply_error("too_large", "request longer than %d bytes", CONTROL_REQUEST_MAX);
        FUZZ_CHECK(replies == 1);
        return 0;
    }
    line_len = nl ? (size_t)(nl - data) : size;

    /* conn_dispatch() */
    req = json_loadb((const char *)data, line_len, JSON_REJECT_DUPLICATES, &err);
    if (!req) {
        FUZZ_CHECK(fuzz_terminated(err.text, sizeof(err.text)));
        reply_error("bad_request", "request is not valid JSON: %s", err.text);
    } else if (!json_is_object(req) || !json_is_string(json_object_get(req, "cmd"))) {
        reply_error("bad_request", "request must be an object with a \"cmd\" string");
    } else {
        deferred = on_request(req);
    }
    json_decref(req);
    FUZZ_CHECK(replies == (deferred ? 0u : 1u));
    return 0;
}

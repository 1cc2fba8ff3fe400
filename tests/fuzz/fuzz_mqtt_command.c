/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_mqtt_command: a command message on PREFIX/SITE/cmd/CLIENT, from its payload to the
 * command layer's checks, the way controller/daemon/mqtt.c's on_command() takes it:
 * mqtt_command_parse() (size, JSON, "action", "key", the request and the actor), then
 * cmd_check() — the command table's lookup, channel (MQTT), role (manager) and argument
 * policy, members resolved in an in-memory store — then mqtt_command_outcome() and
 * mqtt_command_event(), what the client hears back. Handlers are not run (they would act on
 * doors); authorisation (the key, the broker's ACL) is taken as granted, since a client
 * that holds the key can send anything.
 *
 * Input: the topic's last level (CLIENT), a newline, then the payload. Without a newline,
 * the client is "automation" and the whole input is the payload. A level the broker would
 * not deliver on cmd/+ ('/', '+', '#', NUL, over 63 bytes) is skipped.
 *
 * The contract: a payload is refused with a reason, or becomes a request {"cmd": NAME, ...}
 * without "action" or "key", for a manager on the MQTT channel whose name ("mqtt:CLIENT")
 * is valid UTF-8 (it ends up in records and JSON events); a request the table lets through
 * names a command MQTT exposes to managers; every outcome becomes a "command" event that
 * can be printed as one line of JSON and read back. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <time.h>

#include "command.h"
#include "config.h"
#include "fuzz.h"
#include "fuzz_commands.h"
#include "mqtt.h"
#include "services.h"
#include "store.h"
#include "util.h"

static struct services *svc;     /* fuzz_commands.h */

static bool valid_utf8(const char *s)
{
    char copy[256];

    snprintf(copy, sizeof(copy), "%s", s);
    utf8_sanitize(copy);
    return strcmp(copy, s) == 0;
}

/* The event is sent through the outbox as one line of JSON. */
static void check_event(const char *client, const char *action, bool ok, const char *why)
{
    json_t *ev = mqtt_command_event(client, action, ok, why), *back;
    json_error_t err;
    char *text;

    FUZZ_CHECK_MSG(ev != NULL, "the command's result cannot be reported");
    text = json_dumps(ev, JSON_COMPACT);
    FUZZ_CHECK(text != NULL && strchr(text, '\n') == NULL);
    back = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    FUZZ_CHECK(json_is_object(back));
    FUZZ_CHECK(json_is_boolean(json_object_get(back, "accepted")));
    FUZZ_CHECK(json_is_string(json_object_get(back, "reason")));
    json_decref(back);
    free(text);
    json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mqtt_command cmd;
    char client[64] = "automation", why[160] = "";
    const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
    const char *action;
    json_t *reply;
    bool ok;

    svc = fuzz_command_services();
    if (nl) {
        size_t n = (size_t)(nl - data);
        if (n == 0 || n >= sizeof(client) || memchr(data, '\0', n) || memchr(data, '/', n) ||
            memchr(data, '+', n) || memchr(data, '#', n))
            return 0;
        memcpy(client, data, n);
        client[n] = '\0';
        size -= n + 1;
        data = nl + 1;
    }
    if (size > 2 * MQTT_COMMAND_MAX)
        return 0;

    if (mqtt_command_parse(client, data, (int)size, &cmd, why, sizeof(why)) < 0) {
        FUZZ_CHECK(cmd.req == NULL && cmd.key == NULL);
        FUZZ_CHECK(why[0] != '\0' && fuzz_terminated(why, sizeof(why)));
        check_event(client, "?", false, why);
        return 0;
    }
    FUZZ_CHECK(size >= 1 && size <= MQTT_COMMAND_MAX);
    FUZZ_CHECK(json_is_object(cmd.req));
    action = json_string_value(json_object_get(cmd.req, "cmd"));
    FUZZ_CHECK_MSG(action != NULL, "the request names its command");
    FUZZ_CHECK_MSG(!json_object_get(cmd.req, "action") && !json_object_get(cmd.req, "key"),
                   "the action and the key stay out of the command's arguments");
    FUZZ_CHECK(cmd.key == NULL || json_is_string(cmd.key));
    FUZZ_CHECK(cmd.actor.role == ROLE_MANAGER && cmd.actor.channel == CHANNEL_MQTT);
    FUZZ_CHECK(fuzz_terminated(cmd.actor.who, sizeof(cmd.actor.who)));
    FUZZ_CHECK(strncmp(cmd.actor.who, "mqtt:", 5) == 0);
    FUZZ_CHECK_MSG(valid_utf8(cmd.actor.who),
                   "the actor's name is not valid UTF-8: every record naming it breaks");

    reply = cmd_check(svc, &cmd.actor, cmd.req);
    if (!reply) {
        /* The table lets it through: a command MQTT exposes, for managers. */
        const struct command *c = command_find(action);
        FUZZ_CHECK(c != NULL);
        FUZZ_CHECK_MSG(c->flags & CMD_MQTT, "a command MQTT does not expose would run");
        FUZZ_CHECK(c->roles & ROLE_MANAGER);
        ok = true;
        snprintf(why, sizeof(why), "ok");
    } else {
        FUZZ_CHECK(json_is_object(reply));
        FUZZ_CHECK(json_is_false(json_object_get(reply, "ok")));
        FUZZ_CHECK(json_is_string(json_object_get(reply, "code")));
        ok = mqtt_command_outcome(reply, why, sizeof(why));
        FUZZ_CHECK(!ok);
        FUZZ_CHECK(why[0] != '\0' && fuzz_terminated(why, sizeof(why)));
        json_decref(reply);
    }
    check_event(client, action, ok, why);
    mqtt_command_release(&cmd);
    return 0;
}

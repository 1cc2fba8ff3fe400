/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_control_request: one request line on the control socket, read the way
 * controller/commands/control.c (conn_io, conn_dispatch) reads it and checked the way
 * controller/commands/command.c checks every request before a handler runs: the command
 * table's lookup, channel, role and argument policy (names, types, bounds, UTF-8 and
 * control characters, members resolved in the store), through cmd_check() — the real code,
 * not a mirror of it. Handlers themselves are not run (they would act on hardware).
 *
 * Each input is checked for three actors (the operator on the socket, a manager on the web,
 * a member on the web), against an in-memory store with a few members. The contract: every
 * request gets exactly one reply, a JSON object on one line that a client can parse; a
 * request the table refuses for the operator is refused for everyone below too. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "command.h"
#include "config.h"
#include "control.h"
#include "fuzz.h"
#include "fuzz_commands.h"
#include "services.h"
#include "store.h"
#include "util.h"

static struct services *svc;     /* fuzz_commands.h */

/* A reply that cannot be built or printed is never sent, and the client is left with a
 * closed connection and no answer. */
static void check_reply(json_t *r)
{
    json_error_t err;
    json_t *back;
    char *text;

    FUZZ_CHECK_MSG(r != NULL, "the reply cannot be built (json_pack() refuses a string that "
                              "is not valid UTF-8), so the client gets no answer");
    text = json_dumps(r, JSON_COMPACT);
    FUZZ_CHECK_MSG(text != NULL, "the reply cannot be printed, so it is never sent");
    FUZZ_CHECK(strchr(text, '\n') == NULL);             /* one line */
    back = json_loads(text, JSON_REJECT_DUPLICATES, &err);  /* as portierctl reads it */
    FUZZ_CHECK(back != NULL && json_is_object(back));
    FUZZ_CHECK(json_is_boolean(json_object_get(back, "ok")));
    json_decref(back);
    free(text);
}

/* The error reply for actor, or NULL if a handler would run. */
static json_t *check_as(json_t *req, enum role role, enum channel ch, int64_t member)
{
    struct actor a = { .role = role, .channel = ch, .member_id = member, .account_id = member };
    snprintf(a.who, sizeof(a.who), "fuzz");
    return cmd_check(svc, &a, req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl;
    size_t line_len;
    json_error_t err;
    json_t *req, *sys, *mgr, *mem;

    svc = fuzz_command_services();
    /* conn_io(): the daemon reads at most CONTROL_REQUEST_MAX bytes and dispatches up to the
     * first newline; with none in a full buffer it answers too_large. */
    if (size > CONTROL_REQUEST_MAX)
        size = CONTROL_REQUEST_MAX;
    nl = size ? memchr(data, '\n', size) : NULL;
    if (!nl && size == CONTROL_REQUEST_MAX) {
        json_t *r = cmd_error_object("too_large", "request longer than 16384 bytes");
        check_reply(r);
        json_decref(r);
        return 0;
    }
    line_len = nl ? (size_t)(nl - data) : size;

    /* conn_dispatch() */
    req = json_loadb((const char *)data, line_len, JSON_REJECT_DUPLICATES, &err);
    if (!req) {
        char msg[300];
        FUZZ_CHECK(fuzz_terminated(err.text, sizeof(err.text)));
        snprintf(msg, sizeof(msg), "request is not valid JSON: %s", err.text);
        json_t *r = cmd_error_object("bad_request", msg);
        check_reply(r);
        json_decref(r);
        return 0;
    }
    sys = check_as(req, ROLE_SYSTEM, CHANNEL_CONTROL, 0);
    mgr = check_as(req, ROLE_MANAGER, CHANNEL_WEB, 0);
    mem = check_as(req, ROLE_MEMBER, CHANNEL_WEB, 1);
    if (sys)
        check_reply(sys);
    if (mgr)
        check_reply(mgr);
    if (mem)
        check_reply(mem);
    /* Refused for the operator: refused for everyone (roles only take rights away). */
    if (sys)
        FUZZ_CHECK(mgr != NULL && mem != NULL);
    /* A member never gets what a manager is refused. */
    if (mgr && json_is_string(json_object_get(req, "cmd")))
        FUZZ_CHECK(mem != NULL);
    json_decref(sys);
    json_decref(mgr);
    json_decref(mem);
    json_decref(req);
    return 0;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* command: the one way into the daemon.
 *
 * Every command lives once in the table of table.c: its name, its argument policy (names,
 * types, bounds, which are required), the roles that may call it, and its handler. The
 * control socket (portierctl), MQTT and the web all dispatch through cmd_dispatch(), which
 * refuses, in this order and before any handler runs: an unknown command, a command the
 * caller's channel does not expose, a caller whose role is not listed (the default is to
 * deny), and arguments that break the policy (unknown keys too). A handler therefore
 * receives typed, checked arguments and an actor it may trust, and only adds the checks
 * that depend on the data (a member may book for themself only, a trainer grants only the
 * trainings they are named for).
 *
 * Requests and replies keep portierctl's JSON shape: {"cmd": NAME, ARG: VALUE...} in,
 * {"ok": true, FIELD: VALUE...} or {"ok": false, "code": CODE, "error": MESSAGE} out. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cardid.h"
#include "i18n.h"

struct services;

/* Who is asking. Roles are a set of bits so that a command lists exactly who may call it. */
enum role {
    ROLE_MEMBER = 1 << 0,       /* a member's web account: acts for that member only */
    ROLE_TRAINER = 1 << 1,      /* a member named trainer of at least one training */
    ROLE_CUSTODIAN = 1 << 2,    /* the consortium's custodian: reads usage and the ledger */
    ROLE_MANAGER = 1 << 3,      /* runs the site */
    ROLE_SYSTEM = 1 << 4,       /* the control socket: the site's operator (portierctl) */
};
#define ROLES_ANY_ACCOUNT (ROLE_MEMBER | ROLE_TRAINER | ROLE_CUSTODIAN | ROLE_MANAGER | ROLE_SYSTEM)
#define ROLES_STAFF (ROLE_MANAGER | ROLE_SYSTEM)

enum channel {
    CHANNEL_CONTROL,            /* the unix socket */
    CHANNEL_WEB,
    CHANNEL_MQTT,
    CHANNEL__MAX,
};

struct actor {
    enum role role;             /* exactly one bit */
    enum channel channel;
    char who[64];               /* for logs and records: "uid=1000", "web:alice", "mqtt:ha" */
    int64_t account_id;         /* web accounts; else 0 */
    int64_t member_id;          /* members and trainers: whose account; else 0 */
    enum lang lang;             /* of the messages (cmd_fail); LANG_EN (0) unless the web says */
};

const char *role_to_string(enum role role);
/* "member", "trainer", "custodian", "manager", "system"; 0 if none. */
enum role role_from_string(const char *s);

/* ---- argument policies ---- */

enum arg_type {
    ARG_TEXT,       /* a string of at most max bytes, valid UTF-8, no control characters */
    ARG_NAME,       /* a name: 1 to 31 letters, digits, '-', '_', '.' */
    ARG_INT,        /* a whole number in [min, max] */
    ARG_BOOL,
    ARG_TIME,       /* epoch seconds, or "YYYY-MM-DD[THH:MM[:SS]]" local, "...Z" or "@epoch" */
    ARG_MEMBER,     /* a member id or exact name, resolved to the id (not_found, ambiguous) */
    ARG_UID,        /* a card UID in hex: 4, 7 or 10 bytes */
    ARG_PERIOD,     /* "YYYY-MM" */
    ARG_ID,         /* a positive whole number (row id), given as a number or a decimal string */
};

struct arg_spec {
    const char *key;
    enum arg_type type;
    bool required;
    int64_t min, max;           /* ARG_INT: bounds; ARG_TEXT: max is the length (0: 255) */
};

#define CMD_ARGS_MAX 24

struct arg_value {
    bool present;
    const char *str;            /* TEXT, NAME, PERIOD (borrowed from the request) */
    int64_t i;                  /* INT, TIME, MEMBER, ID; BOOL as 0/1 */
    uint8_t uid[CARDID_UID_MAX];
    size_t uid_len;
};

struct cmd_args {
    const struct arg_spec *spec;
    unsigned n;
    struct arg_value v[CMD_ARGS_MAX];
};

/* Typed access to checked arguments, by key (a key not in the command's policy is a bug:
 * it aborts in debug builds and reads as absent). */
bool arg_has(const struct cmd_args *a, const char *key);
const char *arg_str(const struct cmd_args *a, const char *key);       /* NULL if absent */
int64_t arg_int(const struct cmd_args *a, const char *key, int64_t absent);
bool arg_bool(const struct cmd_args *a, const char *key);
const uint8_t *arg_uid(const struct cmd_args *a, const char *key, size_t *ret_len);

/* ---- calls ---- */

struct cmd_call;
typedef int (*cmd_handler)(struct cmd_call *call, const struct cmd_args *args);

#define CMD_PENDING 1           /* a handler's return: it will finish the call later */

enum {
    CMD_MQTT = 1 << 0,          /* MQTT clients may send it (synchronous handlers only) */
    CMD_WEB = 1 << 1,           /* the web may send it */
    CMD_SIM_ONLY = 1 << 2,      /* only with simulated hardware */
};

struct command {
    const char *name;
    unsigned roles;             /* who may call it; 0 is nobody */
    unsigned flags;
    cmd_handler handler;
    const struct arg_spec *args;    /* terminated by an entry with key NULL; NULL: none */
    const char *summary;            /* one line, for `portierctl --help` and docs */
};

/* The table (table.c), sorted by name, and its size. */
extern const struct command command_table[];
extern const unsigned command_count;
const struct command *command_find(const char *name);

/* How a channel answers. done() runs once per call that finished (the call's outcome is
 * in cmd_call_reply()); the call is freed right after it returns. take_fd(), if the
 * channel has it, hands the caller's own socket to a job process that will answer by
 * itself (blocking, close-on-exec): the call then ends without done(). */
struct cmd_transport {
    void (*done)(struct cmd_call *call, void *ctx);
    int (*take_fd)(struct cmd_call *call, void *ctx);
};

/* Dispatch req ({"cmd": NAME, ...}; borrowed) for actor. The transport hears the outcome
 * through done(), now or later; it may cancel a call still pending with cmd_call_cancel().
 * Returns the call while it is pending, NULL once it has finished. */
struct cmd_call *cmd_dispatch(struct services *svc, const struct actor *actor, json_t *req,
                              const struct cmd_transport *t, void *ctx);
/* The caller went away: the handler's cancel callback runs and the call is freed. */
void cmd_call_cancel(struct cmd_call *call);

/* Run a command that never pends and get its reply object (new reference): for channels
 * that answer at once (MQTT). A handler that would pend is refused. */
json_t *cmd_run(struct services *svc, const struct actor *actor, json_t *req);

/* Everything cmd_dispatch() checks before a handler runs — the command, the channel, the
 * role, the arguments — without running it: NULL if it would run, else the error reply
 * (new reference). For the fuzz harness and tests of the table. */
json_t *cmd_check(struct services *svc, const struct actor *actor, json_t *req);

/* ---- channels ---- */

/* The control socket (control.c): listen on path (replacing a stale socket file), with mode
 * and, if group is not empty, that group, on svc->loop. 0 or -errno. */
struct control;
int control_new(struct services *svc, const char *path, unsigned mode, const char *group,
                struct control **ret);
/* Cancels pending commands and closes every connection. NULL-safe. */
struct control *control_free(struct control *ctl);

/* ---- for handlers ---- */

struct services *cmd_services(const struct cmd_call *call);
const struct actor *cmd_actor(const struct cmd_call *call);
/* Whom to name in records and logs: the actor's who ("uid=1000", "web:alice", "mqtt:ha"). */
const char *cmd_who(const struct cmd_call *call);

/* Success: the reply's fields (stolen; NULL for none). Returns 0, for `return cmd_ok(...)`. */
int cmd_ok(struct cmd_call *call, json_t *fields);
/* Failure: a code ("not_found", "bad_request", ...) and a message for people, translated
 * into the actor's language (fmt is a msgid: po/fr.po has its French). Returns err
 * (a -errno), for `return cmd_fail(call, -ENOENT, "not_found", "no door '%s'", name)`. */
int cmd_fail(struct cmd_call *call, int err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A listing: {key: list} (stolen), or the store's error r (< 0) if its rows could not all
 * be read. Returns what cmd_ok()/cmd_fail() return. */
int cmd_ok_list(struct cmd_call *call, const char *key, json_t *list, int r);
/* The store's answer r to looking up a `what` (plan, training, account) by name: 0, or the
 * call failed with "not_found" (-ENOENT: "no plan 'x'", then hint if not NULL) or "store"
 * (any other error) and r returned. */
int cmd_found(struct cmd_call *call, int r, const char *what, const char *name,
              const char *hint);
/* For a member's account (member or trainer), the member it acts for: *member is set to it
 * (0: not given), and another member is refused. Staff and the custodian pass unchanged.
 * 0 or the error the call was failed with. */
int cmd_self_member(struct cmd_call *call, int64_t *member);
/* A pending call is finished (after cmd_ok() or cmd_fail()). */
void cmd_finish(struct cmd_call *call);
/* While pending, hear if the caller goes away (the call is then freed after fn). */
void cmd_on_cancel(struct cmd_call *call, void (*fn)(struct cmd_call *call, void *userdata),
                   void *userdata);
/* For a job process (a child that does long work off the loop) that writes the reply
 * itself, as one JSON line, on the descriptor returned (blocking, close-on-exec; the
 * handler passes it to the child, closes its copy and returns CMD_PENDING). On the control
 * socket it is the client's own socket and the call ends here; elsewhere it is one end of
 * a socketpair whose reply (at most CMD_JOB_REPLY_MAX bytes) finishes the call. -errno. */
#define CMD_JOB_REPLY_MAX (16 * 1024 * 1024)
int cmd_job_fd(struct cmd_call *call);

/* The reply object of a finished call (new reference). */
json_t *cmd_call_reply(const struct cmd_call *call);
/* The outcome: 0 or the handler's -errno. */
int cmd_call_result(const struct cmd_call *call);
const struct command *cmd_call_command(const struct cmd_call *call);

/* {"ok": false, "code": code, "error": msg} (msg is copied and made valid UTF-8). */
json_t *cmd_error_object(const char *code, const char *msg);

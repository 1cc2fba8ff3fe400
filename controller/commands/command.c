/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "command.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "services.h"
#include "store.h"
#include "util.h"

struct cmd_call {
    struct services *svc;
    const struct command *cmd;
    struct actor actor;
    char who[96];
    struct cmd_args args;
    json_t *req;                    /* a reference: argument strings point into it */
    const struct cmd_transport *t;
    void *ctx;
    /* outcome */
    int result;
    char code[32];
    char message[512];
    json_t *fields;
    json_t *reply;                  /* a job's own reply, when it came through a socketpair */
    bool finished, handed_over, in_handler;
    void (*cancel_fn)(struct cmd_call *call, void *userdata);
    void *cancel_userdata;
    /* a job's reply over a socketpair */
    sd_event_source *job_io;
    int job_fd;
    char *job_buf;
    size_t job_len;
};

static const char *const role_names[] = { "member", "trainer", "custodian", "manager", "system" };

const char *role_to_string(enum role role)
{
    for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
        if (role == (enum role)(1u << i))
            return role_names[i];
    return "none";
}

enum role role_from_string(const char *s)
{
    for (unsigned i = 0; s && i < ARRAY_SIZE(role_names); i++)
        if (strcmp(s, role_names[i]) == 0)
            return (enum role)(1u << i);
    return 0;
}

/* The roles of a command, as words: "manager, system" (role names, in every language). */
static void roles_text(unsigned roles, char *buf, size_t n)
{
    size_t len = 0;
    unsigned count = 0, seen = 0;

    for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
        if (roles & (1u << i))
            count++;
    buf[0] = '\0';
    for (unsigned i = 0; i < ARRAY_SIZE(role_names) && len < n; i++) {
        if (!(roles & (1u << i)))
            continue;
        seen++;
        len += (size_t)snprintf(buf + len, n - len, "%s%s", seen == 1 ? "" : ", ", role_names[i]);
    }
    if (count == 0)
        snprintf(buf, n, "nobody");
}

/* ---- lookup ---- */

_Static_assert(offsetof(struct command, name) == 0, "name_first_cmp() needs name first");

const struct command *command_find(const char *name)
{
    return bsearch(name, command_table, command_count, sizeof(command_table[0]), name_first_cmp);
}

/* ---- arguments ---- */

static int arg_index(const struct cmd_args *a, const char *key)
{
    for (unsigned i = 0; i < a->n; i++)
        if (strcmp(a->spec[i].key, key) == 0)
            return (int)i;
    assert(!"a handler asked for an argument its command does not declare");
    return -1;
}

bool arg_has(const struct cmd_args *a, const char *key)
{
    int i = arg_index(a, key);
    return i >= 0 && a->v[i].present;
}

const char *arg_str(const struct cmd_args *a, const char *key)
{
    int i = arg_index(a, key);
    return i >= 0 && a->v[i].present ? a->v[i].str : NULL;
}

int64_t arg_int(const struct cmd_args *a, const char *key, int64_t absent)
{
    int i = arg_index(a, key);
    return i >= 0 && a->v[i].present ? a->v[i].i : absent;
}

bool arg_bool(const struct cmd_args *a, const char *key)
{
    int i = arg_index(a, key);
    return i >= 0 && a->v[i].present && a->v[i].i;
}

const uint8_t *arg_uid(const struct cmd_args *a, const char *key, size_t *ret_len)
{
    int i = arg_index(a, key);
    if (i < 0 || !a->v[i].present)
        return NULL;
    *ret_len = a->v[i].uid_len;
    return a->v[i].uid;
}

static bool text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    /* Valid UTF-8: a copy that utf8_sanitize() leaves unchanged. */
    size_t len = strlen(s);
    char tmp[1024];
    if (len >= sizeof(tmp))
        return true;        /* checked by the length bound first; never reached */
    memcpy(tmp, s, len + 1);
    utf8_sanitize(tmp);
    return memcmp(tmp, s, len) == 0;
}

static int parse_arg(struct cmd_call *call, const struct arg_spec *sp, json_t *v,
                     struct arg_value *out)
{
    const char *key = sp->key;

    switch (sp->type) {
    case ARG_TEXT: {
        int64_t max = sp->max ? sp->max : 255;
        if (!json_is_string(v))
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a string", key);
        out->str = json_string_value(v);
        if ((int64_t)strlen(out->str) > max || strlen(out->str) != json_string_length(v))
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" may have at most %" PRId64
                            " bytes", key, max);
        if (!text_ok(out->str))
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be text without control "
                            "characters", key);
        return 0;
    }
    case ARG_NAME:
        if (!json_is_string(v) || !name_is_valid(json_string_value(v)))
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a name of 1 to 31 "
                            "letters, digits, '-', '_' or '.'", key);
        out->str = json_string_value(v);
        return 0;
    case ARG_PERIOD: {
        char first[11], last[11];
        if (!json_is_string(v) || period_days(json_string_value(v), first, last) < 0)
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a month, YYYY-MM", key);
        out->str = json_string_value(v);
        return 0;
    }
    case ARG_INT:
        if (!json_is_integer(v) || json_integer_value(v) < sp->min || json_integer_value(v) > sp->max)
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a whole number from %"
                            PRId64 " to %" PRId64, key, sp->min, sp->max);
        out->i = json_integer_value(v);
        return 0;
    case ARG_ID: {
        int64_t id = 0;
        if (json_is_integer(v))
            id = json_integer_value(v);
        else if (json_is_string(v) && parse_int64(json_string_value(v), 1, INT64_MAX, &id) < 0)
            id = 0;
        if (id < 1)
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a number (an id)", key);
        out->i = id;
        return 0;
    }
    case ARG_BOOL:
        if (!json_is_boolean(v))
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be true or false", key);
        out->i = json_is_true(v);
        return 0;
    case ARG_TIME:
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= TIME_MAX_UTC) {
            out->i = json_integer_value(v);
            return 0;
        }
        if (json_is_string(v) && parse_time(json_string_value(v), &out->i) == 0) {
            out->str = json_string_value(v);    /* as given: a bare date may mean a whole day */
            return 0;
        }
        return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a time (YYYY-MM-DD[THH:MM], "
                        "local) or epoch seconds, from 1970 to 9999", key);
    case ARG_MEMBER: {
        char ref[32];
        const char *text;
        int r;
        if (json_is_integer(v)) {
            snprintf(ref, sizeof(ref), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            text = ref;
        } else if (json_is_string(v) && json_string_length(v) <= 95) {
            text = json_string_value(v);
        } else {
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be a member id or exact "
                            "name", key);
        }
        r = store_member_resolve(call->svc->store, text, &out->i);
        if (r == -ENOENT)
            return cmd_fail(call, r, "not_found", "no member '%.64s'", text);
        if (r == -ENOTUNIQ)
            return cmd_fail(call, r, "ambiguous", "several members are named '%.64s'; use the id",
                            text);
        if (r < 0)
            return cmd_fail(call, r, "store", "cannot look up member: %s", strerror(-r));
        return 0;
    }
    case ARG_UID:
        if (!json_is_string(v) || cardid_parse(json_string_value(v), out->uid, &out->uid_len) < 0)
            return cmd_fail(call, -EINVAL, "bad_request", "\"%s\" must be 4, 7 or 10 bytes in hex "
                            "(e.g. 04A1B2C3)", key);
        return 0;
    }
    return cmd_fail(call, -EINVAL, "internal", "argument \"%s\" has no type", key);
}

static int parse_args(struct cmd_call *call, json_t *req)
{
    const struct arg_spec *spec = call->cmd->args;
    struct cmd_args *a = &call->args;
    const char *key;
    json_t *v;

    a->spec = spec;
    a->n = 0;
    while (spec && spec[a->n].key) {
        assert(a->n < CMD_ARGS_MAX);
        a->n++;
    }
    /* Unknown keys are refused: a misspelt option must not be silently ignored. */
    json_object_foreach(req, key, v) {
        unsigned i;
        if (strcmp(key, "cmd") == 0)
            continue;
        for (i = 0; i < a->n; i++)
            if (strcmp(spec[i].key, key) == 0)
                break;
        if (i == a->n)
            return cmd_fail(call, -EINVAL, "bad_request", "%s takes no argument \"%.32s\"",
                            call->cmd->name, key);
    }
    for (unsigned i = 0; i < a->n; i++) {
        v = json_object_get(req, spec[i].key);
        if (!v || json_is_null(v)) {
            if (spec[i].required)
                return cmd_fail(call, -EINVAL, "bad_request", "%s needs \"%s\"", call->cmd->name,
                                spec[i].key);
            continue;
        }
        int r = parse_arg(call, &spec[i], v, &a->v[i]);
        if (r < 0)
            return r;
        a->v[i].present = true;
    }
    return 0;
}

/* ---- the outcome ---- */

json_t *cmd_error_object(const char *code, const char *msg)
{
    char copy[512];

    /* Messages quote what the client sent, cut to a length: keep them valid UTF-8. */
    snprintf(copy, sizeof(copy), "%s", msg);
    utf8_sanitize(copy);
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "code", code, "error", copy);
}

int cmd_ok(struct cmd_call *call, json_t *fields)
{
    json_decref(call->fields);
    call->fields = fields;
    call->result = 0;
    call->code[0] = '\0';
    return 0;
}

int cmd_fail(struct cmd_call *call, int err, const char *code, const char *fmt, ...)
{
    va_list ap;

    /* In the caller's language: the web's account or browser language, English elsewhere.
     * The French catalog keeps the same format specifiers in the same order (ctest
     * i18n.catalog checks every translation with msgfmt --check-format). */
    fmt = i18n_t(call->actor.lang, fmt);
    va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(call->message, sizeof(call->message), fmt, ap);
#pragma GCC diagnostic pop
    va_end(ap);
    snprintf(call->code, sizeof(call->code), "%s", code);
    call->result = err < 0 ? err : -EINVAL;
    json_decref(call->fields);
    call->fields = NULL;
    return call->result;
}

int cmd_ok_list(struct cmd_call *call, const char *key, json_t *list, int r)
{
    if (r < 0) {
        json_decref(list);
        return cmd_fail(call, r, "store", "cannot read the %s: %s", key, strerror(-r));
    }
    return cmd_ok(call, json_pack("{s:o}", key, list));
}

/* The words callers give cmd_found(), for po/fr.po (it translates them). */
static const char *const found_words[] __attribute__((unused)) = {
    N_("account"), N_("plan"), N_("training"), N_("(portierctl training add)"),
    N_("(see `portierctl plan list`)"),
};

int cmd_found(struct cmd_call *call, int r, const char *what, const char *name,
              const char *hint)
{
    what = i18n_t(call->actor.lang, what);
    if (hint)
        hint = i18n_t(call->actor.lang, hint);
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no %s '%.32s'%s%s", what, name, hint ? " " : "",
                        hint ? hint : "");
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read %s %.32s: %s", what, name, strerror(-r));
    return 0;
}

int cmd_self_member(struct cmd_call *call, int64_t *member)
{
    const struct actor *who = &call->actor;

    if (!(who->role & (ROLE_MEMBER | ROLE_TRAINER)))
        return 0;
    if (!who->member_id)
        return cmd_fail(call, -EPERM, "forbidden", "this account acts for no member");
    if (*member && *member != who->member_id)
        return cmd_fail(call, -EPERM, "forbidden", "members act and see for themselves only");
    *member = who->member_id;
    return 0;
}

json_t *cmd_call_reply(const struct cmd_call *call)
{
    json_t *reply;

    if (call->reply)
        return json_incref(call->reply);
    if (call->result < 0)
        return cmd_error_object(call->code[0] ? call->code : "internal",
                                call->message[0] ? call->message : strerror(-call->result));
    reply = json_pack("{s:b}", "ok", 1);
    if (call->fields)
        json_object_update(reply, call->fields);
    return reply;
}

int cmd_call_result(const struct cmd_call *call) { return call->result; }
const struct command *cmd_call_command(const struct cmd_call *call) { return call->cmd; }
struct services *cmd_services(const struct cmd_call *call) { return call->svc; }
const struct actor *cmd_actor(const struct cmd_call *call) { return &call->actor; }

const char *cmd_who(const struct cmd_call *call)
{
    return call->who;
}

static void call_free(struct cmd_call *call)
{
    if (!call)
        return;
    sd_event_source_disable_unref(call->job_io);
    if (call->job_fd >= 0)
        close(call->job_fd);
    free(call->job_buf);
    json_decref(call->fields);
    json_decref(call->reply);
    json_decref(call->req);
    free(call);
}

void cmd_finish(struct cmd_call *call)
{
    if (call->finished)
        return;
    call->finished = true;
    if (call->in_handler)
        return;             /* cmd_dispatch() answers once the handler returns */
    if (!call->handed_over && call->t->done)
        call->t->done(call, call->ctx);
    call_free(call);
}

void cmd_on_cancel(struct cmd_call *call, void (*fn)(struct cmd_call *call, void *userdata),
                   void *userdata)
{
    call->cancel_fn = fn;
    call->cancel_userdata = userdata;
}

void cmd_call_cancel(struct cmd_call *call)
{
    if (!call)
        return;
    if (call->cancel_fn)
        call->cancel_fn(call, call->cancel_userdata);
    call_free(call);
}

/* ---- jobs ---- */

static int on_job_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct cmd_call *call = userdata;
    char chunk[65536];
    ssize_t n;

    for (;;) {
        n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0)
            break;
        if (call->job_len + (size_t)n > CMD_JOB_REPLY_MAX) {
            cmd_fail(call, -EMSGSIZE, "too_large", "the answer is larger than %d MiB",
                     CMD_JOB_REPLY_MAX >> 20);
            cmd_finish(call);
            return 0;
        }
        char *grown = realloc(call->job_buf, call->job_len + (size_t)n);
        if (!grown) {
            cmd_fail(call, -ENOMEM, "internal", "out of memory");
            cmd_finish(call);
            return 0;
        }
        call->job_buf = grown;
        memcpy(call->job_buf + call->job_len, chunk, (size_t)n);
        call->job_len += (size_t)n;
    }
    json_error_t err;
    json_t *reply = call->job_len ? json_loadb(call->job_buf, call->job_len,
                                               JSON_DISABLE_EOF_CHECK, &err) : NULL;
    if (json_is_object(reply)) {
        call->reply = reply;
        call->result = json_is_true(json_object_get(reply, "ok")) ? 0 : -EIO;
    } else {
        json_decref(reply);
        cmd_fail(call, -EIO, "internal", "the job ended without an answer");
    }
    cmd_finish(call);
    return 0;
}

int cmd_job_fd(struct cmd_call *call)
{
    int sv[2], r;

    if (call->t->take_fd) {
        r = call->t->take_fd(call, call->ctx);
        if (r >= 0)
            call->handed_over = true;
        return r;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    r = sd_event_add_io(call->svc->loop, &call->job_io, sv[0], EPOLLIN | EPOLLRDHUP,
                        on_job_reply, call);
    if (r < 0) {
        close(sv[0]);
        close(sv[1]);
        return r;
    }
    call->job_fd = sv[0];
    return sv[1];
}

/* ---- dispatch ---- */

static bool channel_allowed(const struct command *cmd, enum channel ch)
{
    switch (ch) {
    case CHANNEL_CONTROL:
        return true;
    case CHANNEL_WEB:
        return cmd->flags & CMD_WEB;
    case CHANNEL_MQTT:
        return cmd->flags & CMD_MQTT;
    default:
        return false;
    }
}

static int check_and_run(struct cmd_call *call, json_t *req, bool run)
{
    const char *name = json_string_value(json_object_get(req, "cmd"));
    char roles[64];

    if (!name)
        return cmd_fail(call, -EINVAL, "bad_request", "request must be an object with a \"cmd\" string");
    call->cmd = command_find(name);
    if (!call->cmd || !channel_allowed(call->cmd, call->actor.channel))
        return cmd_fail(call, -ENOENT, "unknown_command", "unknown command '%.32s'", name);
    /* One role check for every way in; a command nobody is listed for is refused. */
    if (!(call->cmd->roles & call->actor.role)) {
        roles_text(call->cmd->roles, roles, sizeof(roles));
        return cmd_fail(call, -EPERM, "forbidden", "%s is for these roles: %s; you act as %s",
                        call->cmd->name, roles, role_to_string(call->actor.role));
    }
    if ((call->cmd->flags & CMD_SIM_ONLY) && call->svc->cfg->hardware.backend != 0)
        return cmd_fail(call, -EOPNOTSUPP, "bad_request", "%s works only on simulated hardware",
                        call->cmd->name);
    int r = parse_args(call, req);
    if (r < 0 || !run)
        return r;
    call->in_handler = true;
    r = call->cmd->handler(call, &call->args);
    call->in_handler = false;
    return r;
}

struct cmd_call *cmd_dispatch(struct services *svc, const struct actor *actor, json_t *req,
                              const struct cmd_transport *t, void *ctx)
{
    struct cmd_call *call = calloc(1, sizeof(*call));
    int r;

    if (!call) {
        /* Nothing to answer with but the transport's own error path. */
        log_error("commands: out of memory");
        return NULL;
    }
    call->svc = svc;
    call->actor = *actor;
    call->t = t;
    call->ctx = ctx;
    call->job_fd = -1;
    call->req = json_incref(req);
    snprintf(call->who, sizeof(call->who), "%s", actor->who);
    if (!json_is_object(req))
        r = cmd_fail(call, -EINVAL, "bad_request", "request must be an object with a \"cmd\" string");
    else
        r = check_and_run(call, req, true);
    if (r == CMD_PENDING && !call->finished) {
        if (call->handed_over) {
            call_free(call);        /* the job answers the client itself */
            return NULL;
        }
        return call;
    }
    call->finished = true;
    if (!call->handed_over && t->done)
        t->done(call, ctx);
    call_free(call);
    return NULL;
}

struct run_result {
    json_t *reply;
};

static void run_done(struct cmd_call *call, void *ctx)
{
    ((struct run_result *)ctx)->reply = cmd_call_reply(call);
}

json_t *cmd_run(struct services *svc, const struct actor *actor, json_t *req)
{
    static const struct cmd_transport sync_transport = { .done = run_done };
    struct run_result res = { 0 };
    struct cmd_call *call = cmd_dispatch(svc, actor, req, &sync_transport, &res);

    if (call) {
        /* A command that waits (for a card, a job) cannot answer here. */
        cmd_call_cancel(call);
        json_decref(res.reply);
        return cmd_error_object("bad_request", "this command cannot be sent this way");
    }
    return res.reply ? res.reply : cmd_error_object("internal", "out of memory");
}

json_t *cmd_check(struct services *svc, const struct actor *actor, json_t *req)
{
    struct cmd_call call = { .svc = svc, .actor = *actor, .job_fd = -1 };
    json_t *reply = NULL;

    if (!json_is_object(req))
        cmd_fail(&call, -EINVAL, "bad_request", "request must be an object with a \"cmd\" string");
    else
        check_and_run(&call, req, false);
    if (call.result < 0)
        reply = cmd_call_reply(&call);
    json_decref(call.fields);
    return reply;
}

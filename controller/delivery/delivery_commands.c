/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The commands of deliveries: e-mails (list, retry, test) and webhooks (list, test). The
 * tests wait for the outcome of one real attempt, so that staff see at once what the SMTP
 * server or the receiver answered. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "delivery.h"
#include "handlers.h"
#include "log.h"
#include "mail.h"
#include "mime.h"
#include "services.h"
#include "store.h"
#include "util.h"

static int mail_append(const struct store_mail *m, void *userdata)
{
    struct cmd_call *call = ((void **)userdata)[0];
    json_t *list = ((void **)userdata)[1];
    const char *state = delivery_mail_sending(cmd_services(call)->delivery, m->id)
                            ? "sending" : store_mail_state_name(m->state);

    return json_array_append_new(list, json_pack(
        "{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s}",
        "id", (json_int_t)m->id, "kind", m->kind, "member_id", (json_int_t)m->member_id,
        "to", m->to_addr, "subject", m->subject, "lang", m->lang, "state", state,
        "attempts", (json_int_t)m->attempts,
        "next_try_at", (json_int_t)(m->state == STORE_MAIL_QUEUED ? m->next_try_at : 0),
        "created_at", (json_int_t)m->created_at, "sent_at", (json_int_t)m->sent_at,
        "last_error", m->last_error, "message_id", m->message_id)) == 0 ? 0 : -ENOMEM;
}

int cmd_mail_list(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    struct store_mail_filter f = { .state = -1, .member_id = arg_int(a, "member", 0),
                                   .limit = arg_int(a, "limit", 100) };
    const char *state = arg_str(a, "state");
    json_t *list;
    int r;

    if (state) {
        if (strcmp(state, "queued") == 0)
            f.state = STORE_MAIL_QUEUED;
        else if (strcmp(state, "sent") == 0)
            f.state = STORE_MAIL_SENT;
        else if (strcmp(state, "failed") == 0)
            f.state = STORE_MAIL_FAILED;
        else
            return cmd_fail(call, -EINVAL, "bad_request", "\"state\" is queued, sent or failed");
    }
    list = json_array();
    r = store_mails_foreach(svc->store, &f, mail_append, (void *[]){ call, list });
    if (r < 0) {
        json_decref(list);
        return cmd_fail(call, r, "store", "cannot read the e-mails: %s", strerror(-r));
    }
    return cmd_ok(call, json_pack("{s:o, s:o}", "mail", delivery_mail_json(svc->delivery),
                                  "messages", list));
}

/* 0 if e-mail is on, else the call's refusal. */
static int mail_on(struct cmd_call *call)
{
    if (!cmd_services(call)->cfg->mail.enabled)
        return cmd_fail(call, -EOPNOTSUPP, "mail_off", "e-mail is off ([mail] enabled = false)");
    return 0;
}

int cmd_mail_retry(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "id", 0);
    int r;

    if ((r = mail_on(call)) < 0)
        return r;
    r = store_mail_requeue(svc->store, id, now_utc());
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no failed or waiting e-mail %" PRId64 " (a sent "
                        "one, or one whose body was forgotten, cannot be sent again)", id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot queue e-mail %" PRId64 ": %s", id, strerror(-r));
    log_info("mail %" PRId64 ": queued again by %s", id, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

/* ---- tests: the reply waits for one attempt ---- */

static void test_cancelled(struct cmd_call *call, void *userdata)
{
    delivery_unwatch(userdata, call);
}

static void mail_test_done(const struct delivery_outcome *o, void *userdata)
{
    struct cmd_call *call = userdata;

    if (o->ok)
        cmd_ok(call, json_pack("{s:b, s:I, s:I}", "sent", 1, "code", (json_int_t)o->code,
                               "ms", (json_int_t)(o->usec / 1000)));
    else if (o->answered)
        cmd_fail(call, -EIO, "not_sent", "the SMTP server refused it (%ld): %s (see portierctl "
                 "mail list)", o->code, o->error);
    else
        cmd_fail(call, -EIO, "not_sent", "the SMTP server could not be reached: %s (see "
                 "portierctl mail list)", o->error);
    cmd_finish(call);
}

int cmd_mail_test(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *to = arg_str(a, "to");
    struct mail_outcome out;
    int r;

    if ((r = mail_on(call)) < 0)
        return r;
    if (!mime_addr_valid(to))
        return cmd_fail(call, -EINVAL, "bad_request", "\"to\" must be an e-mail address");
    r = mail_test(svc, to, &out);
    if (r < 0 || !out.queued)
        return cmd_fail(call, r < 0 ? r : -EAGAIN, "not_queued", "cannot queue the message: %s",
                        out.why);
    log_info("mail %" PRId64 ": test message queued by %s", out.id, cmd_who(call));
    int64_t held = delivery_mail_held_until(svc->delivery);
    if (held) {
        /* Waiting up to an hour would help nobody: say when it goes. */
        char at[32];
        format_utc(held, at, sizeof(at));
        return cmd_ok(call, json_pack("{s:I, s:b, s:s}", "id", (json_int_t)out.id, "sent", 0,
                                      "held_until", at));
    }
    r = delivery_watch_mail(svc->delivery, out.id, mail_test_done, call);
    if (r < 0)
        return cmd_ok(call, json_pack("{s:I, s:b}", "id", (json_int_t)out.id, "sent", 0));
    cmd_on_cancel(call, test_cancelled, svc->delivery);
    return CMD_PENDING;
}

static void webhook_test_done(const struct delivery_outcome *o, void *userdata)
{
    struct cmd_call *call = userdata;

    if (o->ok)
        cmd_ok(call, json_pack("{s:b, s:I, s:I}", "delivered", 1, "status", (json_int_t)o->code,
                               "ms", (json_int_t)(o->usec / 1000)));
    else if (o->answered)
        cmd_fail(call, -EIO, "not_delivered", "the receiver answered HTTP %ld", o->code);
    else
        cmd_fail(call, -EIO, "not_delivered", "the receiver could not be reached: %s", o->error);
    cmd_finish(call);
}

int cmd_webhook_list(struct cmd_call *call, const struct cmd_args *a)
{
    return cmd_ok(call, json_pack("{s:o}", "webhooks",
                                  delivery_webhooks_json(cmd_services(call)->delivery)));
}

int cmd_webhook_test(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "name");
    int r = delivery_webhook_test(svc->delivery, name, webhook_test_done, call);

    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no [webhook %s] section", name);
    if (r < 0)
        return cmd_fail(call, r, "internal", "cannot send the test event: %s", strerror(-r));
    log_info("webhook %s: test event sent by %s", name, cmd_who(call));
    cmd_on_cancel(call, test_cancelled, svc->delivery);
    return CMD_PENDING;
}

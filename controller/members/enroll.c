/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "enroll.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "command.h"
#include "consortium.h"
#include "log.h"
#include "passports.h"
#include "services.h"
#include "store.h"
#include "timer.h"
#include "util.h"

struct enroll {
    struct services *svc;
    bool armed;
    struct reader *reader;
    int64_t member_id;
    char label[64];
    struct cmd_call *call;
    struct timer *timeout;          /* created with the module: arming cannot fail for want
                                     * of memory when a manager starts an enrolment */
};

static void finish(struct enroll *e)
{
    struct cmd_call *call = e->call;

    e->armed = false;
    e->call = NULL;
    timer_disarm(e->timeout);
    if (call)
        cmd_finish(call);
}

static void on_gone(struct cmd_call *call, void *userdata)
{
    struct enroll *e = userdata;

    log_info("enroll at reader %s cancelled", e->reader->name);
    e->call = NULL;         /* freed by the dispatcher after we return */
    finish(e);
}

static void on_timeout(void *userdata)
{
    struct enroll *e = userdata;

    log_notice("enroll at reader %s: no card was presented in time", e->reader->name);
    cmd_fail(e->call, -ETIMEDOUT, "timeout", "no card was presented at reader %s in time",
             e->reader->name);
    finish(e);
}

int enroll_start(struct enroll *e, struct cmd_call *call, struct reader *reader,
                 int64_t member, const char *label, int64_t seconds)
{
    int r;

    if (e->armed)
        return cmd_fail(call, -EBUSY, "busy", "an enrolment is already waiting at reader %s",
                        e->reader->name);
    r = timer_arm_in(e->timeout, (uint64_t)seconds * 1000000u);
    if (r < 0)
        return cmd_fail(call, r, "internal", "cannot arm the enrolment's timeout: %s",
                        strerror(-r));
    e->armed = true;
    e->reader = reader;
    e->member_id = member;
    strlcpy_checked(e->label, label ? label : "", sizeof(e->label));
    e->call = call;
    cmd_on_cancel(call, on_gone, e);
    log_info("enroll: waiting up to %" PRId64 " s for a card at reader %s for member %" PRId64
             " (%s)", seconds, reader->name, member, cmd_who(call));
    return CMD_PENDING;
}

bool enroll_waiting_at(const struct enroll *e, const struct reader *reader)
{
    return e && e->armed && e->reader == reader;
}

bool enroll_take(struct enroll *e, struct reader *reader, const struct reader_event *ev)
{
    struct cmd_call *call;
    uint8_t hash[STORE_HASH_LEN];
    int64_t card_id = 0;
    int r;

    if (!enroll_waiting_at(e, reader))
        return false;
    call = e->call;
    if (ev->targets > 1) {
        /* Which of the two would be bound is up to the chip: refuse rather than guess. */
        log_notice("enroll at reader %s: %u cards presented together; refused", reader->name,
                   (unsigned)ev->targets);
        cmd_fail(call, -EINVAL, "several_cards", "%u cards were on the reader together; present "
                 "only the card to enrol, and try again", (unsigned)ev->targets);
        finish(e);
        return true;
    }
    access_card_hash(e->svc->engine, ev->uid, ev->uid_len, hash);
    r = store_card_add(e->svc->store, e->member_id, hash, e->label, &card_id);
    if (r == -EEXIST) {
        log_notice("enroll at reader %s: card already enrolled", reader->name);
        cmd_fail(call, r, "exists", "this card is already enrolled; remove it first");
    } else if (r < 0) {
        log_error("enroll at reader %s: %s", reader->name, strerror(-r));
        cmd_fail(call, r, "store", "cannot store the card: %s", strerror(-r));
    } else {
        passports_card_seen(consortium_passports(e->svc->consortium), card_id, ev->uid,
                            ev->uid_len);
        log_info("enroll at reader %s: card %" PRId64 " bound to member %" PRId64 " by %s",
                 reader->name, card_id, e->member_id, cmd_who(call));
        cmd_ok(call, json_pack("{s:I, s:I}", "card", (json_int_t)card_id, "member",
                               (json_int_t)e->member_id));
    }
    finish(e);
    return true;
}

int enroll_new(struct services *svc, struct enroll **ret)
{
    struct enroll *e = calloc(1, sizeof(*e));
    int r;

    if (!e)
        return -ENOMEM;
    e->svc = svc;
    r = timer_new(svc->loop, CLOCK_MONOTONIC, 0, on_timeout, e, &e->timeout);
    if (r < 0) {
        free(e);
        return r;
    }
    *ret = e;
    return 0;
}

struct enroll *enroll_free(struct enroll *e)
{
    if (!e)
        return NULL;
    if (e->call) {
        cmd_fail(e->call, -ECANCELED, "cancelled", "the controller is stopping");
        finish(e);
    }
    e->timeout = timer_free(e->timeout);
    free(e);
    return NULL;
}

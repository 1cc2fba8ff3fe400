/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "provision.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "command.h"
#include "config.h"
#include "consortium.h"
#include "log.h"
#include "passports.h"
#include "services.h"
#include "store.h"
#include "util.h"

/* Beyond the worker's own timeout: it answers by then, unless it cannot run at all. */
#define GRACE_SECONDS 20

struct provision {
    struct services *svc;
    bool armed;
    bool deprovision;
    struct reader *reader;
    int64_t member_id;
    char label[64];
    struct cmd_call *call;
    sd_event_source *timeout;
};

static void finish(struct provision *p)
{
    struct cmd_call *call = p->call;

    p->armed = false;
    p->call = NULL;
    p->timeout = sd_event_source_disable_unref(p->timeout);
    if (call)
        cmd_finish(call);
}

static const char *what(const struct provision *p)
{
    return p->deprovision ? "deprovision" : "provision";
}

static void on_gone(struct cmd_call *call, void *userdata)
{
    struct provision *p = userdata;

    log_info("%s at reader %s cancelled", what(p), p->reader->name);
    reader_job_cancel(p->reader);
    p->call = NULL;         /* freed by the dispatcher after we return */
    finish(p);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct provision *p = userdata;

    log_notice("%s at reader %s: the reader never answered", what(p), p->reader->name);
    reader_job_cancel(p->reader);
    cmd_fail(p->call, -ETIMEDOUT, "timeout", "reader %s did not answer in time (see portierctl "
             "status)", p->reader->name);
    finish(p);
    return 0;
}

/* The card is provisioned: enrol it for the member, marked DESFire. */
static void enrol(struct provision *p, const struct reader_job_result *res)
{
    struct services *svc = p->svc;
    struct cmd_call *call = p->call;
    uint8_t hash[STORE_HASH_LEN];
    int64_t card_id = 0;
    bool existed = false;
    int r;

    access_card_hash(svc->engine, res->uid, READER_DESFIRE_UID_LEN, hash);
    r = store_card_find(svc->store, hash, &card_id);
    if (r == 0) {
        struct store_subject subj;

        existed = true;
        if (store_subject_lookup(svc->store, hash, &subj) == 0 && subj.member_id != p->member_id) {
            log_notice("provision at reader %s: the card is card %" PRId64 " of member %" PRId64
                       ", not of member %" PRId64, p->reader->name, card_id, subj.member_id,
                       p->member_id);
            cmd_fail(call, -EEXIST, "exists", "the card is provisioned, but it is enrolled as card "
                     "%" PRId64 " of another member (%" PRId64 "): remove it there first",
                     card_id, subj.member_id);
            return;
        }
    } else if (r == -ENOENT) {
        r = store_card_add(svc->store, p->member_id, hash, p->label, &card_id);
    }
    if (r == 0)
        r = store_card_set_desfire(svc->store, card_id, true);
    if (r < 0) {
        log_error("provision at reader %s: cannot store the card: %s", p->reader->name, strerror(-r));
        cmd_fail(call, r, "store", "the card is provisioned but could not be stored (%s): run the "
                 "command again", strerror(-r));
        return;
    }
    passports_card_seen(consortium_passports(svc->consortium), card_id, res->uid,
                        READER_DESFIRE_UID_LEN);
    log_info("provision at reader %s: card %" PRId64 " of member %" PRId64 " is a DESFire card "
             "(%s) by %s", p->reader->name, card_id, p->member_id, res->text, cmd_who(call));
    cmd_ok(call, json_pack("{s:I, s:I, s:b, s:s}", "card", (json_int_t)card_id, "member",
                           (json_int_t)p->member_id, "existed", existed, "done", res->text));
}

/* The applications are gone from the card: so is its enrolment. */
static void unenrol(struct provision *p, const struct reader_job_result *res)
{
    struct services *svc = p->svc;
    struct cmd_call *call = p->call;
    uint8_t hash[STORE_HASH_LEN];
    int64_t card_id = 0;
    int r;

    access_card_hash(svc->engine, res->uid, READER_DESFIRE_UID_LEN, hash);
    r = store_card_find(svc->store, hash, &card_id);
    if (r == 0)
        r = store_card_remove(svc->store, card_id);
    if (r < 0 && r != -ENOENT) {
        log_error("deprovision at reader %s: cannot remove the card: %s", p->reader->name,
                  strerror(-r));
        cmd_fail(call, r, "store", "the applications are removed from the card, but its "
                 "enrolment could not be (%s): `portierctl card remove`", strerror(-r));
        return;
    }
    log_info("deprovision at reader %s: %s; %s by %s", p->reader->name, res->text,
             r == 0 ? "card removed" : "the card was not enrolled here", cmd_who(call));
    if (r == 0)
        cmd_ok(call, json_pack("{s:I, s:s}", "card", (json_int_t)card_id, "done", res->text));
    else
        cmd_ok(call, json_pack("{s:n, s:s}", "card", "done", res->text));
}

static void on_done(struct reader *reader, const struct reader_job_result *res, void *userdata)
{
    static const struct {
        const char *code;
        const char *advice;
    } failures[READER_DONE__MAX + 1] = {
        [READER_DONE_TIMEOUT] = { "timeout", "no card was presented in time" },
        [READER_DONE_NOT_DESFIRE] = { "not_desfire", "this card is not a MIFARE DESFire EV1 or "
                                      "later: it cannot hold a key" },
        [READER_DONE_PICC_KEY] = { "picc_key", "give the card's master key with --picc-key" },
        [READER_DONE_FOREIGN] = { "foreign_card", "the card carries a Portier application of "
                                  "another site (or a forged one): it is not this site's to "
                                  "change" },
        [READER_DONE_REMOVED] = { "card_removed", "the card was taken away before the end: run "
                                  "the command again and hold the card still; it picks up where "
                                  "it stopped" },
        [READER_DONE_CARD_ERROR] = { "card_error", "the card refused a step" },
        [READER_DONE_SEVERAL] = { "several_cards", "present only the card to provision" },
        [READER_DONE_NO_KEY] = { "no_key", "the reader holds no DESFire master key" },
        [READER_DONE_CANCELLED] = { "cancelled", "cancelled" },
    };
    struct provision *p = userdata;

    if (!p->call)
        return;
    if (res->status == READER_DONE_OK) {
        if (p->deprovision)
            unenrol(p, res);
        else
            enrol(p, res);
    } else {
        unsigned st = res->status <= READER_DONE__MAX ? res->status : READER_DONE_CARD_ERROR;
        const char *code = failures[st].code ? failures[st].code : "card_error";

        log_notice("%s at reader %s: %s (%s)", what(p), reader->name, res->text, code);
        cmd_fail(p->call, st == READER_DONE_TIMEOUT ? -ETIMEDOUT : -EIO, code, "%s: %s",
                 res->text[0] ? res->text : code, failures[st].advice ? failures[st].advice : "");
    }
    finish(p);
}

int provision_start(struct provision *p, struct cmd_call *call, struct reader *reader,
                    const struct provision_request *req)
{
    struct reader_job job = { 0 };
    uint64_t now;
    int r;

    if (p->armed)
        return cmd_fail(call, -EBUSY, "busy", "a %s is already waiting at reader %s", what(p),
                        p->reader->name);
    job.type = req->deprovision ? READER_CMD_DEPROVISION : READER_CMD_PROVISION;
    job.consortium = p->svc->desfire_keys && p->svc->desfire_keys->consortium;
    job.picc_type = req->picc_type;
    memcpy(job.picc_key, req->picc_key, sizeof(job.picc_key));
    job.timeout_ms = (unsigned)req->seconds * 1000u;
    sd_event_now(p->svc->loop, CLOCK_MONOTONIC, &now);
    if (sd_event_add_time(p->svc->loop, &p->timeout, CLOCK_MONOTONIC,
                          now + (uint64_t)(req->seconds + GRACE_SECONDS) * 1000000u, 0, on_timeout,
                          p) < 0) {
        sodium_memzero(&job, sizeof(job));
        return cmd_fail(call, -ENOMEM, "internal", "out of memory");
    }
    r = reader_job_start(reader, &job, on_done, p);
    sodium_memzero(&job, sizeof(job));
    if (r < 0) {
        p->timeout = sd_event_source_disable_unref(p->timeout);
        if (r == -EOPNOTSUPP)
            return cmd_fail(call, r, "bad_request", "reader %s is simulated: provisioning needs a "
                            "libnfc reader", reader->name);
        if (r == -ENOKEY)
            return cmd_fail(call, r, "no_key", "reader %s holds no DESFire master key",
                            reader->name);
        if (r == -EBUSY)
            return cmd_fail(call, r, "busy", "reader %s is busy with another job", reader->name);
        return cmd_fail(call, r, "unavailable", "reader %s is not up (%s): see portierctl status",
                        reader->name, reader_health_to_string(reader->health));
    }
    p->armed = true;
    p->deprovision = req->deprovision;
    p->reader = reader;
    p->member_id = req->member;
    strlcpy_checked(p->label, req->label ? req->label : "", sizeof(p->label));
    p->call = call;
    cmd_on_cancel(call, on_gone, p);
    if (req->deprovision)
        log_info("deprovision: waiting up to %" PRId64 " s for a card at reader %s (%s)",
                 req->seconds, reader->name, cmd_who(call));
    else
        log_info("provision: waiting up to %" PRId64 " s for a card at reader %s for member %"
                 PRId64 " (%s)", req->seconds, reader->name, req->member, cmd_who(call));
    return CMD_PENDING;
}

int provision_parse_picc_key(const char *text, enum reader_picc_key *ret_type,
                             uint8_t ret_key[READER_KEY_LEN])
{
    static const struct {
        const char *prefix;
        enum reader_picc_key type;
        size_t len;
    } kinds[] = {
        { "des:", READER_PICC_DES, 8 },
        { "2k3des:", READER_PICC_2K3DES, 16 },
        { "aes:", READER_PICC_AES, 16 },
    };
    size_t bin_len = 0;

    memset(ret_key, 0, READER_KEY_LEN);
    if (!text || strcmp(text, "default") == 0) {
        *ret_type = READER_PICC_DEFAULT;
        return 0;
    }
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        size_t n = strlen(kinds[i].prefix);
        const char *hex = text + n;

        if (strncmp(text, kinds[i].prefix, n) != 0)
            continue;
        if (strlen(hex) != 2 * kinds[i].len ||
            sodium_hex2bin(ret_key, READER_KEY_LEN, hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
            bin_len != kinds[i].len) {
            sodium_memzero(ret_key, READER_KEY_LEN);
            return -EINVAL;
        }
        *ret_type = kinds[i].type;
        return 0;
    }
    return -EINVAL;
}

int provision_new(struct services *svc, struct provision **ret)
{
    struct provision *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->svc = svc;
    *ret = p;
    return 0;
}

struct provision *provision_free(struct provision *p)
{
    if (!p)
        return NULL;
    if (p->call) {
        reader_job_cancel(p->reader);
        cmd_fail(p->call, -ECANCELED, "cancelled", "the controller is stopping");
        finish(p);
    }
    p->timeout = sd_event_source_disable_unref(p->timeout);
    free(p);
    return NULL;
}

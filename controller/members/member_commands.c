/* The commands of members, their cards and plans. */
#include <errno.h>
#include <sodium.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "consortium.h"
#include "enroll.h"
#include "fablab.h"
#include "handlers.h"
#include "log.h"
#include "passports.h"
#include "provision.h"
#include "schedule.h"
#include "services.h"
#include "site.h"
#include "store.h"
#include "util.h"

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
    return json_array_append_new(userdata, member_json(m)) == 0 ? 0 : -ENOMEM;
}

static int card_append(const struct store_card *c, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:I, s:s, s:s, s:b, s:I, s:s, s:b}", "id", (json_int_t)c->id, "member_id",
        (json_int_t)c->member_id, "member", c->member, "label", c->label, "enabled", c->enabled,
        "created_at", (json_int_t)c->created_at, "hash", c->hash_prefix, "desfire",
        c->desfire)) == 0 ? 0 : -ENOMEM;
}

static int uid_only_append(const struct store_uid_only_card *c, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:I, s:s, s:I}", "member_id", (json_int_t)c->member_id, "member", c->member,
        "card", (json_int_t)c->card_id, "label", c->label, "last_used",
        (json_int_t)c->last_used)) == 0 ? 0 : -ENOMEM;
}

static int plan_append(const struct store_plan *p, void *userdata)
{
    return json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:s, s:s, s:I}", "id", (json_int_t)p->id, "name", p->name, "zones", p->zones,
        "hours", p->hours, "members", (json_int_t)p->members)) == 0 ? 0 : -ENOMEM;
}

/* ---- members ---- */

int cmd_member_add(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "name"), *plan_name = arg_str(a, "plan");
    int64_t from = arg_int(a, "valid_from", 0), until = arg_int(a, "valid_until", 0), id;
    struct store_plan plan = { 0 };
    int r;

    if (!*name)
        return cmd_fail(call, -EINVAL, "bad_request", "a member needs a name of 1 to 95 characters");
    if (until && from && until <= from)
        return cmd_fail(call, -EINVAL, "bad_request", "valid_until must come after valid_from");
    if (plan_name && (r = cmd_found(call, store_plan_find(svc->store, plan_name, &plan), "plan",
                                    plan_name, "(see `portierctl plan list`)")) < 0)
        return r;
    r = store_member_add(svc->store, name, arg_str(a, "email"), plan.id, from, until, &id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add member: %s", strerror(-r));
    log_info("member %" PRId64 " added (plan %s) by %s", id, plan_name ? plan_name : "none",
             cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

int cmd_member_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "members", list,
                      store_members_foreach(cmd_services(call)->store, member_append, list));
}

int cmd_member_show(struct cmd_call *call, const struct cmd_args *a)
{
    struct store *store = cmd_services(call)->store;
    int64_t id = arg_int(a, "member", 0);
    struct store_member m;
    json_t *cards, *obj;
    int r;

    r = store_member_get(store, id, &m);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot read member %" PRId64 ": %s", id, strerror(-r));
    cards = json_array();
    r = store_cards_foreach(store, id, card_append, cards);
    if (r < 0) {
        json_decref(cards);
        return cmd_fail(call, r, "store", "cannot read the cards: %s", strerror(-r));
    }
    obj = member_json(&m);
    json_object_set_new(obj, "card_list", cards);
    return cmd_ok(call, json_pack("{s:o}", "member", obj));
}

static int member_status(struct cmd_call *call, const struct cmd_args *a,
                         enum member_status status)
{
    int64_t id = arg_int(a, "member", 0);
    int r = store_member_set_status(cmd_services(call)->store, id, status);

    if (r < 0)
        return cmd_fail(call, r, "store", "cannot change member: %s", strerror(-r));
    log_info("member %" PRId64 " %s by %s", id,
             status == MEMBER_SUSPENDED ? "suspended" : "resumed", cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:s}", "id", (json_int_t)id, "status",
                                  status == MEMBER_SUSPENDED ? "suspended" : "active"));
}

int cmd_member_suspend(struct cmd_call *call, const struct cmd_args *a)
{
    return member_status(call, a, MEMBER_SUSPENDED);
}

int cmd_member_resume(struct cmd_call *call, const struct cmd_args *a)
{
    return member_status(call, a, MEMBER_ACTIVE);
}

/* ---- cards ---- */

int cmd_card_add(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t member = arg_int(a, "member", 0), id, other;
    uint8_t hash[STORE_HASH_LEN];
    size_t len = 0;
    const uint8_t *uid = arg_uid(a, "uid", &len);
    int r;

    access_card_hash(svc->engine, uid, len, hash);
    r = store_card_add(svc->store, member, hash, arg_str(a, "label"), &id);
    if (r == -EEXIST) {
        if (store_card_find(svc->store, hash, &other) == 0)
            return cmd_fail(call, r, "exists", "this card is already enrolled as card %" PRId64,
                            other);
        return cmd_fail(call, r, "exists", "this card is already enrolled");
    }
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add card: %s", strerror(-r));
    passports_card_seen(consortium_passports(svc->consortium), id, uid, len);
    log_info("card %" PRId64 " added to member %" PRId64 " by %s", id, member, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I, s:I}", "id", (json_int_t)id, "member", (json_int_t)member));
}

int cmd_card_remove(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    int64_t id = arg_int(a, "card", 0);
    int r;

    if (!id && arg_has(a, "uid")) {
        uint8_t hash[STORE_HASH_LEN];
        size_t len = 0;
        const uint8_t *uid = arg_uid(a, "uid", &len);
        access_card_hash(svc->engine, uid, len, hash);
        r = store_card_find(svc->store, hash, &id);
        if (r == -ENOENT)
            return cmd_fail(call, r, "not_found", "this card is not enrolled");
        if (r < 0)
            return cmd_fail(call, r, "store", "cannot look the card up: %s", strerror(-r));
    }
    if (!id)
        return cmd_fail(call, -EINVAL, "bad_request", "give a card id or a uid");
    r = store_card_remove(svc->store, id);
    if (r == -ENOENT)
        return cmd_fail(call, r, "not_found", "no card %" PRId64, id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot remove card: %s", strerror(-r));
    log_info("card %" PRId64 " removed by %s", id, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

int cmd_card_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "cards", list,
                      store_cards_foreach(cmd_services(call)->store, arg_int(a, "member", 0),
                                          card_append, list));
}

/* A trainer enrols trainees at the reader of a machine whose training they are named for. */
static int trainer_may_enroll_at(struct cmd_call *call, struct reader *reader)
{
    struct services *svc = cmd_services(call);
    struct store_resource res;
    const char *machine = fablab_machine_of_reader(svc->fablab, reader->name);
    int r;

    if (!machine || store_resource_get(svc->store, machine, &res) < 0 || !res.training_id)
        return cmd_fail(call, -EPERM, "forbidden", "trainers enrol cards only at the reader of a "
                        "machine that requires a training; reader %s is not one", reader->name);
    r = store_trainer_is(svc->store, res.training_id, cmd_actor(call)->member_id);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot check your trainer role: %s", strerror(-r));
    if (r == 0)
        return cmd_fail(call, -EPERM, "forbidden", "you are not named trainer for %s's training "
                        "(%s)", machine, res.training);
    return 0;
}

int cmd_card_enroll(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "reader");
    struct reader *reader = site_reader(svc->site, name);
    int r;

    if (!reader)
        return cmd_fail(call, -ENOENT, "not_found", "no reader '%.32s'", name);
    if (cmd_actor(call)->role == ROLE_TRAINER && (r = trainer_may_enroll_at(call, reader)) < 0)
        return r;
    return enroll_start(svc->enroll, call, reader, arg_int(a, "member", 0), arg_str(a, "label"),
                        arg_int(a, "timeout", ENROLL_DEFAULT_SECONDS));
}

/* ---- DESFire cards ---- */

static int provision_request(struct cmd_call *call, const struct cmd_args *a, bool deprovision,
                             struct provision_request *req)
{
    memset(req, 0, sizeof(*req));
    req->deprovision = deprovision;
    req->seconds = arg_int(a, "timeout", PROVISION_DEFAULT_SECONDS);
    if (provision_parse_picc_key(arg_str(a, "picc_key"), &req->picc_type, req->picc_key) < 0)
        return cmd_fail(call, -EINVAL, "bad_request", "picc_key is 'default', des:HEX16, "
                        "2k3des:HEX32 or aes:HEX32 (the card's master key)");
    return 0;
}

int cmd_card_provision(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "reader");
    struct reader *reader = site_reader(svc->site, name);
    struct provision_request req;
    int r;

    if (!reader)
        return cmd_fail(call, -ENOENT, "not_found", "no reader '%.32s'", name);
    if (enroll_waiting_at(svc->enroll, reader))
        return cmd_fail(call, -EBUSY, "busy", "an enrolment is waiting at reader %s", reader->name);
    if ((r = provision_request(call, a, false, &req)) < 0)
        return r;
    req.member = arg_int(a, "member", 0);
    req.label = arg_str(a, "label");
    r = provision_start(svc->provision, call, reader, &req);
    sodium_memzero(&req, sizeof(req));
    return r;
}

int cmd_card_deprovision(struct cmd_call *call, const struct cmd_args *a)
{
    struct services *svc = cmd_services(call);
    const char *name = arg_str(a, "reader");
    struct reader *reader = site_reader(svc->site, name);
    struct provision_request req;
    int r;

    if (!reader)
        return cmd_fail(call, -ENOENT, "not_found", "no reader '%.32s'", name);
    if (enroll_waiting_at(svc->enroll, reader))
        return cmd_fail(call, -EBUSY, "busy", "an enrolment is waiting at reader %s", reader->name);
    if ((r = provision_request(call, a, true, &req)) < 0)
        return r;
    r = provision_start(svc->provision, call, reader, &req);
    sodium_memzero(&req, sizeof(req));
    return r;
}

/* Who still carries a card that opens by its UID alone: the migration's to-do list. */
int cmd_card_report(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "uid_only", list,
                      store_uid_only_cards_foreach(cmd_services(call)->store, uid_only_append, list));
}

/* ---- plans ---- */

int cmd_plan_add(struct cmd_call *call, const struct cmd_args *a)
{
    const char *name = arg_str(a, "name"), *err = "";
    const char *zones = arg_has(a, "zones") ? arg_str(a, "zones") : "*";
    const char *hours = arg_has(a, "hours") ? arg_str(a, "hours") : "always";
    struct schedule sched;
    int64_t id;
    int r;

    if (schedule_parse(hours, &sched, &err) < 0)
        return cmd_fail(call, -EINVAL, "bad_request", "hours: %s", err);
    r = store_plan_add(cmd_services(call)->store, name, zones, hours, &id);
    if (r == -EEXIST)
        return cmd_fail(call, r, "exists", "a plan named '%s' already exists", name);
    if (r < 0)
        return cmd_fail(call, r, "store", "cannot add plan: %s", strerror(-r));
    log_info("plan %s added (zones %s, hours %s) by %s", name, zones, hours, cmd_who(call));
    return cmd_ok(call, json_pack("{s:I}", "id", (json_int_t)id));
}

int cmd_plan_list(struct cmd_call *call, const struct cmd_args *a)
{
    json_t *list = json_array();
    return cmd_ok_list(call, "plans", list,
                      store_plans_foreach(cmd_services(call)->store, plan_append, list));
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The command table and its one check: every command refuses the roles it does not list,
 * channels expose only what they should, and the argument policy refuses bad input before
 * any handler runs (cmd_check() runs everything cmd_dispatch() does but the handler). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "config.h"
#include "services.h"
#include "store.h"

static const enum role all_roles[] = { ROLE_MEMBER, ROLE_TRAINER, ROLE_CUSTODIAN, ROLE_MANAGER,
                                       ROLE_SYSTEM };

struct fixture {
    struct store *store;
    struct config cfg;
    struct services svc;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int64_t id;

    assert_non_null(f);
    assert_int_equal(store_open(":memory:", &f->store), 0);
    assert_int_equal(store_member_add(f->store, "Alice", NULL, 0, 0, 0, &id), 0);
    assert_int_equal(store_member_add(f->store, "Bob", NULL, 0, 0, 0, &id), 0);
    f->svc.store = f->store;
    f->svc.cfg = &f->cfg;           /* simulated hardware */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_free(f->store);
    free(f);
    return 0;
}

static json_t *check(struct fixture *f, enum role role, enum channel ch, int64_t member,
                     json_t *req)
{
    struct actor a = { .role = role, .channel = ch, .member_id = member };
    json_t *reply;

    snprintf(a.who, sizeof(a.who), "test");
    reply = cmd_check(&f->svc, &a, req);
    json_decref(req);
    return reply;
}

static const char *code_of(json_t *reply)
{
    return reply ? json_string_value(json_object_get(reply, "code")) : "";
}

static void test_table_is_sorted_and_complete(void **state)
{
    (void)state;
    assert_true(command_count > 50);
    for (unsigned i = 0; i < command_count; i++) {
        const struct command *c = &command_table[i];
        assert_non_null(c->handler);
        assert_non_null(c->summary);
        assert_true(c->roles != 0);         /* a command nobody may call is a mistake */
        if (i)
            assert_true(strcmp(command_table[i - 1].name, c->name) < 0);
        assert_ptr_equal(command_find(c->name), c);
        for (const struct arg_spec *a = c->args; a && a->key; a++)
            assert_true(a - c->args < CMD_ARGS_MAX);
    }
    assert_null(command_find("launch.rocket"));
}

/* Each command, for each role it does not list: refused, with a message that says who may,
 * before its arguments are even looked at. */
static void test_every_command_refuses_unlisted_roles(void **state)
{
    struct fixture *f = *state;
    unsigned refusals = 0;

    for (unsigned i = 0; i < command_count; i++) {
        const struct command *c = &command_table[i];
        for (size_t k = 0; k < sizeof(all_roles) / sizeof(all_roles[0]); k++) {
            json_t *reply = check(f, all_roles[k], CHANNEL_CONTROL, 1,
                                  json_pack("{s:s}", "cmd", c->name));
            if (c->roles & all_roles[k]) {
                if (reply && strcmp(code_of(reply), "forbidden") == 0)
                    fail_msg("%s refused role %s, which it lists", c->name,
                             role_to_string(all_roles[k]));
            } else {
                const char *msg;
                if (!reply || strcmp(code_of(reply), "forbidden") != 0)
                    fail_msg("%s did not refuse role %s (%s)", c->name,
                             role_to_string(all_roles[k]), reply ? code_of(reply) : "accepted");
                msg = json_string_value(json_object_get(reply, "error"));
                assert_non_null(strstr(msg, c->name));
                assert_non_null(strstr(msg, role_to_string(all_roles[k])));
                refusals++;
            }
            json_decref(reply);
        }
    }
    assert_true(refusals > 100);
}

/* No role at all (an anonymous visitor): refused everything. */
static void test_default_is_deny(void **state)
{
    struct fixture *f = *state;

    for (unsigned i = 0; i < command_count; i++) {
        json_t *reply = check(f, 0, CHANNEL_CONTROL, 0,
                              json_pack("{s:s}", "cmd", command_table[i].name));
        assert_string_equal(code_of(reply), "forbidden");
        json_decref(reply);
    }
}

static void test_channels_expose_only_their_commands(void **state)
{
    struct fixture *f = *state;
    unsigned mqtt = 0;

    for (unsigned i = 0; i < command_count; i++) {
        const struct command *c = &command_table[i];
        json_t *reply = check(f, ROLE_MANAGER, CHANNEL_MQTT, 0, json_pack("{s:s}", "cmd", c->name));
        if (c->flags & CMD_MQTT) {
            mqtt++;
            assert_true(!reply || strcmp(code_of(reply), "unknown_command") != 0);
        } else {
            assert_string_equal(code_of(reply), "unknown_command");
        }
        json_decref(reply);
    }
    assert_int_equal(mqtt, 5);      /* door.lock, door.unlock, machine.out_of_order, member.renew,
                                     * reader.restart */
    /* The simulation is for the operator's socket only. */
    json_t *reply = check(f, ROLE_MANAGER, CHANNEL_WEB, 0,
                          json_pack("{s:s, s:s, s:s}", "cmd", "sim.tap", "reader", "front", "uid",
                                    "04A1B2C3"));
    assert_string_equal(code_of(reply), "unknown_command");
    json_decref(reply);
}

static void test_argument_policy(void **state)
{
    struct fixture *f = *state;
    json_t *reply;

    /* Well formed: accepted (the handler would run). */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s, s:i}", "cmd", "door.unlock", "door", "front", "seconds", 5));
    assert_null(reply);
    /* Unknown key. */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s, s:i}", "cmd", "door.unlock", "door", "front", "extra", 1));
    assert_string_equal(code_of(reply), "bad_request");
    assert_non_null(strstr(json_string_value(json_object_get(reply, "error")), "extra"));
    json_decref(reply);
    /* Missing, wrong type, out of bounds. */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0, json_pack("{s:s}", "cmd", "door.unlock"));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s, s:s}", "cmd", "door.unlock", "door", "front", "seconds", "ten"));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s, s:i}", "cmd", "door.unlock", "door", "front", "seconds", 0));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
    /* A name is a name; text has no control characters (no terminal escapes in listings). */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s}", "cmd", "door.lock", "door", "front door"));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s}", "cmd", "member.add", "name", "Eve\033[31m"));
    assert_string_equal(code_of(reply), "bad_request");
    assert_non_null(strstr(json_string_value(json_object_get(reply, "error")), "control"));
    json_decref(reply);
    /* Members are resolved: unknown, then found by name. */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                  json_pack("{s:s, s:s}", "cmd", "member.show", "member", "Zoe"));
    assert_string_equal(code_of(reply), "not_found");
    json_decref(reply);
    assert_null(check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0,
                      json_pack("{s:s, s:s}", "cmd", "member.show", "member", "Bob")));
    /* Not an object, no cmd. */
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0, json_pack("[i]", 1));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
    reply = check(f, ROLE_SYSTEM, CHANNEL_CONTROL, 0, json_pack("{s:i}", "cmd", 3));
    assert_string_equal(code_of(reply), "bad_request");
    json_decref(reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_sorted_and_complete),
        cmocka_unit_test_setup_teardown(test_every_command_refuses_unlisted_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_is_deny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_expose_only_their_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argument_policy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

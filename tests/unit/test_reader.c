/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_deliver(): the bookkeeping every back-end relies on. An arrival counts a tap, marks
 * the reader as holding a card until it leaves, and carries how many cards answered (a
 * back-end that cannot tell means one). Driven through the simulated reader, which needs no
 * event loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "reader.h"

struct seen {
    unsigned n;
    struct reader_event ev[4];
};

static void on_event(struct reader *r, const struct reader_event *ev, void *userdata)
{
    struct seen *s = userdata;

    (void)r;
    if (s->n < 4)
        s->ev[s->n] = *ev;
    s->n++;
}

static const uint8_t uid[4] = { 0x04, 0xa1, 0xb2, 0xc3 };

static void test_tap_and_hold(void **state)
{
    struct reader r;
    struct seen s = { 0 };

    (void)state;
    assert_int_equal(reader_start(&r, &reader_ops_sim, NULL, "front", NULL, on_event, &s), 0);
    assert_false(r.holding);

    /* A tap: arrives and leaves at once. */
    assert_int_equal(reader_sim_present(&r, uid, sizeof(uid), false), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ev[0].kind, READER_CARD_ARRIVED);
    assert_int_equal(s.ev[0].targets, 1);
    assert_int_equal(s.ev[1].kind, READER_CARD_LEFT);
    assert_int_equal(r.taps, 1);
    assert_false(r.holding);

    /* Held: holding until taken away. */
    assert_int_equal(reader_sim_present(&r, uid, sizeof(uid), true), 0);
    assert_true(r.holding);
    assert_int_equal(r.taps, 2);
    assert_int_equal(reader_sim_remove(&r), 0);
    assert_false(r.holding);
    assert_int_equal(s.n, 4);
    reader_stop(&r);
}

static void test_deliver_targets(void **state)
{
    struct reader r;
    struct seen s = { 0 };
    struct reader_event ev = { .kind = READER_CARD_ARRIVED, .uid_len = 4, .targets = 2 };

    (void)state;
    assert_int_equal(reader_start(&r, &reader_ops_sim, NULL, "front", NULL, on_event, &s), 0);
    memcpy(ev.uid, uid, sizeof(uid));
    reader_deliver(&r, &ev);
    assert_int_equal(s.ev[0].targets, 2);
    assert_true(r.holding);
    ev.kind = READER_CARD_LEFT;
    ev.targets = 0;                 /* a back-end that cannot count */
    reader_deliver(&r, &ev);
    assert_int_equal(s.ev[1].targets, 1);
    assert_false(r.holding);
    assert_int_equal(r.taps, 1);
    reader_stop(&r);
}

static struct reader_msg arrived(uint8_t uid_len)
{
    struct reader_msg m = { .version = READER_PROTO_VERSION, .type = READER_MSG_ARRIVED,
                            .uid_len = uid_len, .targets = 1 };
    return m;
}

/* What the parent accepts from a worker about DESFire: an authentication result only on an
 * arrival, a successful one with its application and a 7-byte real UID, a job's result only
 * in DONE with its request, and a UID exactly when it succeeded. */
static void test_protocol_checks(void **state)
{
    struct reader_msg m;
    struct reader_cmd c;
    (void)state;

    m = arrived(7);
    assert_null(reader_msg_check(&m, sizeof(m)));
    m.auth = READER_AUTH_OK;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad application");
    m.app = READER_APP_SITE;
    assert_null(reader_msg_check(&m, sizeof(m)));
    m.uid_len = 4;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad UID length");
    m = arrived(4);
    m.auth = READER_AUTH_FAILED;
    assert_null(reader_msg_check(&m, sizeof(m)));
    m.app = READER_APP_CONSORTIUM;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad application");
    m = arrived(4);
    m.auth = READER_AUTH__MAX + 1;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad authentication result");
    m = arrived(4);
    m.type = READER_MSG_LEFT;
    m.auth = READER_AUTH_NO_APP;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad authentication result");
    m = arrived(4);
    m.request = 3;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad command result");

    memset(&m, 0, sizeof(m));
    m.version = READER_PROTO_VERSION;
    m.type = READER_MSG_DONE;
    m.status = READER_DONE_OK;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad command result");
    m.request = 1;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad UID length");
    m.uid_len = 7;
    assert_null(reader_msg_check(&m, sizeof(m)));
    m.status = READER_DONE_FOREIGN;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad UID length");
    m.uid_len = 0;
    assert_null(reader_msg_check(&m, sizeof(m)));
    m.status = READER_DONE__MAX + 1;
    assert_string_equal(reader_msg_check(&m, sizeof(m)), "bad command result");

    memset(&c, 0, sizeof(c));
    c.version = READER_PROTO_VERSION;
    c.type = READER_CMD_KEYS;
    assert_null(reader_cmd_check(&c, sizeof(c)));
    assert_string_equal(reader_cmd_check(&c, sizeof(c) - 1), "wrong command size");
    c.flags = READER_KEYS_CONSORTIUM_OLD;
    assert_non_null(reader_cmd_check(&c, sizeof(c)));
    c.type = READER_CMD_PROVISION;
    c.flags = 0;
    c.request = 1;
    assert_string_equal(reader_cmd_check(&c, sizeof(c)), "bad timeout");
    c.timeout_ms = READER_CMD_TIMEOUT_MAX;
    assert_null(reader_cmd_check(&c, sizeof(c)));
    c.picc_key_type = READER_PICC__MAX + 1;
    assert_string_equal(reader_cmd_check(&c, sizeof(c)), "unknown PICC key type");
    c.type = READER_CMD_CANCEL;
    c.request = 0;
    assert_string_equal(reader_cmd_check(&c, sizeof(c)), "no request id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tap_and_hold),
        cmocka_unit_test(test_deliver_targets),
        cmocka_unit_test(test_protocol_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tap_and_hold),
        cmocka_unit_test(test_deliver_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

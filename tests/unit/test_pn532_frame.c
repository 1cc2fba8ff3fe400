/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* pn532_frame: the reader worker's own idle poll, frame by frame. The UID it decodes must be
 * the one libnfc decodes from the same answer (pn53x_decode_target_data): a card's hash, and
 * so who it is, depends on it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pn532_frame.h"

static size_t frame(const uint8_t *body, size_t n, uint8_t *out)
{
    uint8_t sum = 0;
    out[0] = 0x00;
    out[1] = 0x00;
    out[2] = 0xFF;
    out[3] = (uint8_t)n;
    out[4] = (uint8_t)(0x100 - n);
    memcpy(out + 5, body, n);
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + body[i]);
    out[5 + n] = (uint8_t)(0x100 - sum);
    out[6 + n] = 0x00;
    return n + 7;
}

static const uint8_t ack[] = { 0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00 };

static void test_poll_frame_is_what_libnfc_sends(void **state)
{
    static const uint8_t body[] = { 0xD4, 0x4A, 0x01, 0x00 };
    uint8_t want[16];

    (void)state;
    assert_int_equal(frame(body, sizeof(body), want), sizeof(pn532_poll_frame));
    assert_memory_equal(pn532_poll_frame, want, sizeof(pn532_poll_frame));
}

static void test_ack_then_no_card(void **state)
{
    static const uint8_t none[] = { 0xD5, 0x4B, 0x00 };
    uint8_t buf[64];
    struct pn532_frame f;
    struct pn532_target_a t;
    size_t n = sizeof(ack);

    (void)state;
    memcpy(buf, ack, sizeof(ack));
    n += frame(none, sizeof(none), buf + n);
    /* bytes arrive a few at a time: a partial frame asks for more */
    for (size_t k = 0; k < sizeof(ack); k++)
        assert_int_equal(pn532_frame_parse(buf, k, &f), 0);
    assert_int_equal(pn532_frame_parse(buf, n, &f), (int)sizeof(ack));
    assert_int_equal(f.kind, PN532_FRAME_ACK);
    for (size_t k = sizeof(ack); k < n; k++)
        assert_int_equal(pn532_frame_parse(buf + sizeof(ack), k - sizeof(ack), &f), 0);
    assert_int_equal(pn532_frame_parse(buf + sizeof(ack), n - sizeof(ack), &f),
                     (int)(n - sizeof(ack)));
    assert_int_equal(f.kind, PN532_FRAME_DATA);
    assert_int_equal(f.body_len, 3);
    assert_int_equal(pn532_list_answer_parse(f.body, f.body_len, &t), 0);
}

static void test_targets_as_libnfc_decodes_them(void **state)
{
    static const uint8_t mifare[] = { 0xD5, 0x4B, 1, 1, 0x00, 0x04, 0x08, 4, 0xAA, 0xBB, 0xCC, 0xDD };
    static const uint8_t desfire[] = { 0xD5, 0x4B, 1, 1, 0x03, 0x44, 0x20, 7, 4, 1, 2, 3, 4, 5, 6,
                                       6, 0x75, 0x77, 0x81, 0x02, 0x80 };
    static const uint8_t cascade8[] = { 0xD5, 0x4B, 1, 1, 0x00, 0x44, 0x00, 8,
                                        0x88, 1, 2, 3, 4, 5, 6, 7 };
    static const uint8_t triple[] = { 0xD5, 0x4B, 1, 1, 0x00, 0x44, 0x00, 12,
                                      0x88, 1, 2, 3, 0x88, 4, 5, 6, 7, 8, 9, 10 };
    static const uint8_t ten[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    struct pn532_target_a t;

    (void)state;
    assert_int_equal(pn532_list_answer_parse(mifare, sizeof(mifare), &t), 1);
    assert_int_equal(t.atqa[0], 0x00);
    assert_int_equal(t.atqa[1], 0x04);
    assert_int_equal(t.sak, 0x08);
    assert_int_equal(t.uid_len, 4);
    assert_memory_equal(t.uid, mifare + 8, 4);
    assert_int_equal(t.ats_len, 0);

    assert_int_equal(pn532_list_answer_parse(desfire, sizeof(desfire), &t), 1);
    assert_int_equal(t.uid_len, 7);
    assert_memory_equal(t.uid, desfire + 8, 7);
    assert_int_equal(t.ats_len, 5);                 /* TL counts itself */
    assert_memory_equal(t.ats, desfire + 16, 5);

    /* cascade tags stripped as libnfc does */
    assert_int_equal(pn532_list_answer_parse(cascade8, sizeof(cascade8), &t), 1);
    assert_int_equal(t.uid_len, 7);
    assert_memory_equal(t.uid, cascade8 + 9, 7);
    assert_int_equal(pn532_list_answer_parse(triple, sizeof(triple), &t), 1);
    assert_int_equal(t.uid_len, 10);
    assert_memory_equal(t.uid, ten, 10);
}

static void test_what_libnfc_refuses_is_refused(void **state)
{
    static const uint8_t bad_lcs[] = { 0x00, 0x00, 0xFF, 0x03, 0xFC, 0xD5, 0x4B, 0x00, 0xE0, 0x00 };
    static const uint8_t bad_dcs[] = { 0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD5, 0x4B, 0x00, 0xE1, 0x00 };
    static const uint8_t no_start[] = { 0xDE, 0xAD, 0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00 };
    static const uint8_t extended[] = { 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x03, 0xFD };
    static const uint8_t error[] = { 0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00 };
    static const uint8_t other_cmd[] = { 0xD5, 0x33 };
    static const uint8_t two[] = { 0xD5, 0x4B, 2, 1, 0x00, 0x04, 0x08, 4, 1, 2, 3, 4 };
    static const uint8_t long_uid[] = { 0xD5, 0x4B, 1, 1, 0x00, 0x04, 0x08, 9, 1, 2, 3 };
    static const uint8_t long_ats[] = { 0xD5, 0x4B, 1, 1, 0x00, 0x04, 0x20, 4, 1, 2, 3, 4, 9, 1 };
    struct pn532_frame f;
    struct pn532_target_a t;

    (void)state;
    assert_int_equal(pn532_frame_parse(bad_lcs, sizeof(bad_lcs), &f), -EBADMSG);
    assert_int_equal(pn532_frame_parse(bad_dcs, sizeof(bad_dcs), &f), -EBADMSG);
    assert_int_equal(pn532_frame_parse(no_start, sizeof(no_start), &f), -EBADMSG);
    assert_int_equal(pn532_frame_parse(extended, sizeof(extended), &f), -EBADMSG);
    assert_int_equal(pn532_frame_parse(error, sizeof(error), &f), (int)sizeof(error));
    assert_int_equal(f.kind, PN532_FRAME_ERROR);
    assert_int_equal(pn532_list_answer_parse(other_cmd, sizeof(other_cmd), &t), -EBADMSG);
    assert_int_equal(pn532_list_answer_parse(two, sizeof(two), &t), -EBADMSG);
    assert_int_equal(pn532_list_answer_parse(long_uid, sizeof(long_uid), &t), -EBADMSG);
    assert_int_equal(pn532_list_answer_parse(long_ats, sizeof(long_ats), &t), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_frame_is_what_libnfc_sends),
        cmocka_unit_test(test_ack_then_no_card),
        cmocka_unit_test(test_targets_as_libnfc_decodes_them),
        cmocka_unit_test(test_what_libnfc_refuses_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

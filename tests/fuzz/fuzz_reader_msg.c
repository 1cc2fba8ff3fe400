/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_reader_msg: reader_msg_check() on whatever a reader worker sends, and
 * reader_cmd_check() on whatever reaches a worker from its parent.
 *
 * The worker runs libnfc against hardware that may send anything, so portierd treats its
 * datagrams as untrusted. hw/reader_nfc.c receives one with recv(MSG_TRUNC) into a stack
 * struct reader_msg, so the reported length can be anything and bytes past a short
 * datagram are stack garbage; it then checks it and, if accepted, copies the UID and text
 * out (handle()). This harness does the same with the input as the datagram, and checks
 * that an accepted message keeps every promise handle() relies on. The worker takes the
 * parent's commands the same way (take_commands() in hw/reader_worker.c): the same input
 * goes through reader_cmd_check(). The corpus is written by make_reader_corpus.py. */
#include <sodium.h>

#include "cardid.h"
#include "fuzz.h"
#include "reader.h"
#include "reader_proto.h"

_Static_assert(READER_MSG_UID_MAX <= READER_UID_MAX, "a message UID fits a reader_event");

/* Far beyond any real datagram; only the length matters past sizeof(struct reader_msg). */
#define FUZZ_READER_MSG_MAX 4096

/* What the worker relies on in an accepted command (desfire_job_take, desfire_keys_take). */
static void check_command(const uint8_t *data, size_t size)
{
    struct reader_cmd c;
    const char *bad;

    memset(&c, 0xEE, sizeof(c));
    memcpy(&c, data, size < sizeof(c) ? size : sizeof(c));
    bad = reader_cmd_check(&c, (long)size);
    if (bad) {
        FUZZ_CHECK(bad[0] != '\0');
        return;
    }
    FUZZ_CHECK(size == sizeof(c));
    FUZZ_CHECK(c.version == READER_PROTO_VERSION);
    FUZZ_CHECK(c.type >= READER_CMD_KEYS && c.type <= READER_CMD_CANCEL);
    if (c.type == READER_CMD_KEYS) {
        FUZZ_CHECK(!(c.flags & READER_KEYS_CONSORTIUM_OLD) || (c.flags & READER_KEYS_CONSORTIUM));
    } else {
        FUZZ_CHECK(c.request != 0);
    }
    if (c.type == READER_CMD_PROVISION || c.type == READER_CMD_DEPROVISION) {
        FUZZ_CHECK(c.picc_key_type <= READER_PICC__MAX);
        FUZZ_CHECK(c.timeout_ms >= 1 && c.timeout_ms <= READER_CMD_TIMEOUT_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader_msg m;
    const char *bad;

    if (size > FUZZ_READER_MSG_MAX)
        return 0;
    if (sodium_init() < 0)
        abort();
    check_command(data, size);
    memset(&m, 0xEE, sizeof(m));        /* what recv() leaves past a short datagram */
    memcpy(&m, data, size < sizeof(m) ? size : sizeof(m));
    bad = reader_msg_check(&m, (long)size);
    if (bad) {
        FUZZ_CHECK(bad[0] != '\0');
        return 0;
    }

    FUZZ_CHECK(size == sizeof(m));
    FUZZ_CHECK(m.version == READER_PROTO_VERSION);
    FUZZ_CHECK(m.type >= READER_MSG_HELLO && m.type <= READER_MSG_DONE);
    FUZZ_CHECK(fuzz_terminated(m.text, sizeof(m.text)));
    /* An authentication result only on an arrival, and an application exactly with success. */
    FUZZ_CHECK(m.auth <= READER_AUTH__MAX && (m.auth == 0 || m.type == READER_MSG_ARRIVED));
    FUZZ_CHECK((m.app != READER_APP_NONE) == (m.auth == READER_AUTH_OK));
    FUZZ_CHECK(m.app <= READER_APP__MAX);
    FUZZ_CHECK(m.type == READER_MSG_DONE || (m.status == 0 && m.request == 0));

    /* What handle() in hw/reader_nfc.c does with an accepted message. */
    switch (m.type) {
    case READER_MSG_HELLO: {
        char device[64];
        snprintf(device, sizeof(device), "%.63s", m.text);
        FUZZ_CHECK(strlen(device) <= strlen(m.text));
        break;
    }
    case READER_MSG_ARRIVED:
    case READER_MSG_LEFT: {
        struct reader_event ev = { 0 };
        uint8_t hash[CARDID_HASH_LEN];
        static const uint8_t key[CARDID_KEY_LEN];
        unsigned ats_sum = 0;
        FUZZ_CHECK(m.uid_len == 4 || m.uid_len == 7 || m.uid_len == 10);
        FUZZ_CHECK(m.ats_len <= READER_MSG_ATS_MAX);
        FUZZ_CHECK(m.targets >= 1 && m.targets <= READER_MSG_TARGETS_MAX);
        memcpy(ev.uid, m.uid, m.uid_len);
        ev.uid_len = m.uid_len;
        ev.atqa = m.atqa;
        ev.sak = m.sak;
        ev.targets = m.targets;
        ev.auth = (enum reader_auth)m.auth;
        ev.app = (enum reader_app)m.app;
        snprintf(ev.note, sizeof(ev.note), "%s", m.text);
        if (m.auth == READER_AUTH_OK)
            FUZZ_CHECK(m.uid_len == READER_DESFIRE_UID_LEN);
        for (unsigned i = 0; i < m.ats_len; i++)
            ats_sum += m.ats[i];
        (void)ats_sum;
        cardid_hash(key, ev.uid, ev.uid_len, hash);    /* what the access engine does next */
        break;
    }
    case READER_MSG_ERROR: {
        char last_error[96];
        snprintf(last_error, sizeof(last_error), "%s", m.text);
        FUZZ_CHECK(strlen(last_error) == strlen(m.text));
        break;
    }
    case READER_MSG_HEARTBEAT:
        break;
    case READER_MSG_DONE: {
        struct reader_job_result res = { 0 };
        FUZZ_CHECK(m.request != 0 && m.status <= READER_DONE__MAX);
        FUZZ_CHECK(m.status == READER_DONE_OK ? m.uid_len == READER_DESFIRE_UID_LEN : m.uid_len == 0);
        res.status = (enum reader_done)m.status;
        if (m.status == READER_DONE_OK)
            memcpy(res.uid, m.uid, READER_DESFIRE_UID_LEN);
        snprintf(res.text, sizeof(res.text), "%s", m.text);
        break;
    }
    }
    return 0;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_reader_worker: what portier-reader does with the messages of its parent.
 *
 * fuzz_reader_msg checks the parent's side (what portierd accepts from a worker); this is
 * the worker's: a portierd gone wrong, or anything that got hold of the worker's socket,
 * may send it any datagram. The worker (hw/reader_worker.c) takes the first one as KEYS
 * with desfire_keys_take(), then, between polls, every one waiting with
 * desfire_commands_take(): PROVISION, DEPROVISION, CANCEL become its pending job, a job
 * ended early is answered DONE, and a malformed command stops the worker with an ERROR.
 * Here the same functions read a real SOCK_SEQPACKET socketpair, so datagrams too long or
 * too short arrive as they would (MSG_TRUNC), and whatever the worker would send back is
 * checked with reader_msg_check(), the parent's own check.
 *
 * Input: datagrams, each a length byte and that many bytes; the first is the KEYS message.
 *
 * The contract: keys are taken only from a well-formed KEYS message, and the worker then
 * holds a site key exactly when it said so; a malformed later command (or KEYS again) is
 * refused with a reason and nothing after it is taken; a well-formed one becomes the
 * pending job (CANCEL ends it only if it names it), a job it replaces or cancels is answered
 * once, DONE with that job's request; a pending job expires with its own request; every
 * answer passes the parent's check. */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "desfire.h"
#include "fuzz.h"
#include "reader_proto.h"

#define DATAGRAMS_MAX 16

static struct reader_msg answers[DATAGRAMS_MAX + 1];
static unsigned n_answers;

/* What the worker would send (send_msg() fills in the version and the sequence number). */
static void answer(struct reader_msg *m)
{
    FUZZ_CHECK(n_answers < DATAGRAMS_MAX + 1);
    answers[n_answers++] = *m;
}

static void check_sent(const struct reader_msg *m)
{
    struct reader_msg sent = *m;

    sent.version = READER_PROTO_VERSION;
    sent.seq = 1;
    FUZZ_CHECK_MSG(reader_msg_check(&sent, sizeof(sent)) == NULL,
                   "the worker would send what the parent refuses");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader_cmd first;
    const uint8_t *dgram[DATAGRAMS_MAX];
    size_t len[DATAGRAMS_MAX];
    unsigned n = 0;
    uint32_t pending = 0;           /* the request of the pending job, 0: none */
    uint32_t pending_timeout = 0;
    const char *why = NULL;
    struct reader_msg done;
    bool keys_ok;
    int sv[2], r;

    while (size > 0 && n < DATAGRAMS_MAX) {
        size_t l = data[0] < size - 1 ? data[0] : size - 1;
        dgram[n] = data + 1;
        len[n++] = l;
        data += 1 + l;
        size -= 1 + l;
    }
    if (n == 0)
        return 0;
    /* Each input starts a fresh worker: no keys, no job. */
    desfire_keys_forget();
    desfire_job_expired(UINT64_MAX, &done);
    n_answers = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    for (unsigned i = 0; i < n; i++)
        if (send(sv[1], dgram[i], len[i], MSG_DONTWAIT) != (ssize_t)len[i])
            abort();

    /* The keys, first. */
    memset(&first, 0, sizeof(first));
    memcpy(&first, dgram[0], len[0] < sizeof(first) ? len[0] : sizeof(first));
    keys_ok = len[0] == sizeof(first) && !reader_cmd_check(&first, (long)len[0]) &&
              first.type == READER_CMD_KEYS;
    r = desfire_keys_take(sv[0], 0);
    FUZZ_CHECK_MSG(keys_ok ? r == 0 : r == -EBADMSG,
                   "keys taken from a malformed message, or refused from a good one");
    if (r < 0) {
        /* The worker reports it and exits: nothing else is read. */
        FUZZ_CHECK(!desfire_enabled());
        goto out;
    }
    FUZZ_CHECK(desfire_enabled() == !!(first.flags & READER_KEYS_SITE));

    /* Then the commands waiting, as between two polls. */
    r = desfire_commands_take(sv[0], 1000, answer, &why);
    unsigned expected_answers = 0, i;
    for (i = 1; i < n; i++) {
        struct reader_cmd c;
        memset(&c, 0, sizeof(c));
        memcpy(&c, dgram[i], len[i] < sizeof(c) ? len[i] : sizeof(c));
        if (len[i] == 0) {
            /* Reads as the end of the stream: the worker stops quietly. */
            FUZZ_CHECK(r == -EPIPE);
            break;
        }
        if (reader_cmd_check(&c, (long)len[i]) || c.type == READER_CMD_KEYS) {
            FUZZ_CHECK_MSG(r == -EBADMSG, "a malformed command was taken");
            FUZZ_CHECK(why && why[0]);
            break;
        }
        if (pending && (c.type != READER_CMD_CANCEL || c.request == pending)) {
            FUZZ_CHECK_MSG(expected_answers < n_answers, "a job ended without an answer");
            FUZZ_CHECK(answers[expected_answers].type == READER_MSG_DONE);
            FUZZ_CHECK(answers[expected_answers].request == pending);
            FUZZ_CHECK(answers[expected_answers].status == READER_DONE_CANCELLED);
            expected_answers++;
            pending = 0;
        }
        if (c.type != READER_CMD_CANCEL) {
            pending = c.request;
            pending_timeout = c.timeout_ms;
        }
    }
    if (i == n)
        FUZZ_CHECK_MSG(r == 0, "a well-formed command was refused");
    FUZZ_CHECK_MSG(n_answers == expected_answers, "an answer nobody asked for");
    for (unsigned a = 0; a < n_answers; a++)
        check_sent(&answers[a]);
    FUZZ_CHECK(desfire_job_pending() == (pending != 0));
    if (pending) {
        /* Not before its time; then answered with its own request. */
        FUZZ_CHECK(!desfire_job_expired(1000 + (uint64_t)pending_timeout - 1, &done));
        FUZZ_CHECK(desfire_job_expired(1000 + (uint64_t)pending_timeout, &done));
        FUZZ_CHECK(done.type == READER_MSG_DONE && done.request == pending &&
                   done.status == READER_DONE_TIMEOUT);
        check_sent(&done);
        FUZZ_CHECK(!desfire_job_pending());
    }
out:
    close(sv[0]);
    close(sv[1]);
    return 0;
}

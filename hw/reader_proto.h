/* reader_proto: the messages a reader worker process sends to portierd over a
 * SOCK_SEQPACKET socketpair.
 *
 * Fixed size, versioned, one message per packet. The parent checks every field
 * (reader_msg_check) and treats anything malformed as a worker fault: the worker runs
 * libnfc, which talks to hardware that may send anything. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define READER_PROTO_VERSION 1
#define READER_MSG_UID_MAX 10
#define READER_MSG_ATS_MAX 48
#define READER_MSG_TEXT_MAX 96
/* A PN532 (also inside an ACR122U) activates at most two ISO14443A targets at once; the
 * worker counts no further. */
#define READER_MSG_TARGETS_MAX 2

enum reader_msg_type {
    READER_MSG_HELLO = 1,       /* device opened and initialised; text = device name */
    READER_MSG_ARRIVED = 2,     /* a card is here (after debounce); targets says how many
                                 * cards answered when it arrived */
    READER_MSG_LEFT = 3,        /* the card has been gone for the debounce time; targets as
                                 * in its ARRIVED */
    READER_MSG_ERROR = 4,       /* the worker is giving up; text says why; it exits next */
    READER_MSG_HEARTBEAT = 5,   /* still polling */
};

struct reader_msg {
    uint8_t version;
    uint8_t type;
    uint8_t uid_len;
    uint8_t sak;
    uint16_t atqa;
    uint8_t ats_len;
    uint8_t targets;            /* ARRIVED, LEFT: cards in the field when the card arrived,
                                 * 1..READER_MSG_TARGETS_MAX; uid is the one the chip selected
                                 * first (it wins). 0 in other messages. */
    uint32_t seq;               /* increments by one per message */
    uint8_t uid[READER_MSG_UID_MAX];
    uint8_t ats[READER_MSG_ATS_MAX];
    char text[READER_MSG_TEXT_MAX];     /* NUL-terminated */
} __attribute__((packed));

/* 0 if msg (of len bytes) is well formed, else a static description of the problem. */
static inline const char *reader_msg_check(const struct reader_msg *m, long len)
{
    if (len != (long)sizeof(*m))
        return "wrong message size";
    if (m->version != READER_PROTO_VERSION)
        return "wrong protocol version";
    if (m->type < READER_MSG_HELLO || m->type > READER_MSG_HEARTBEAT)
        return "unknown message type";
    if (memchr(m->text, '\0', sizeof(m->text)) == NULL)
        return "unterminated text";
    if (m->type == READER_MSG_ARRIVED || m->type == READER_MSG_LEFT) {
        if (m->uid_len != 4 && m->uid_len != 7 && m->uid_len != 10)
            return "bad UID length";
        if (m->ats_len > READER_MSG_ATS_MAX)
            return "bad ATS length";
        if (m->targets < 1 || m->targets > READER_MSG_TARGETS_MAX)
            return "bad target count";
    }
    return 0;
}

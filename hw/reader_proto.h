/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_proto: the messages between portierd and a reader worker process, over a
 * SOCK_SEQPACKET socketpair.
 *
 * Fixed size, versioned, one message per packet, both ways. The parent checks every field
 * of what the worker sends (reader_msg_check) and treats anything malformed as a worker
 * fault: the worker runs libnfc, which talks to hardware that may send anything. The worker
 * checks what the parent sends (reader_cmd_check) the same way.
 *
 * Worker -> parent: struct reader_msg (HELLO, ARRIVED, LEFT, ERROR, HEARTBEAT, DONE).
 * Parent -> worker: struct reader_cmd. The first is always KEYS, sent right after the
 * worker starts (with or without keys); then PROVISION, DEPROVISION or CANCEL at any time.
 * KEYS carries the site's DESFire master key: it never travels anywhere else, and both
 * sides wipe their copies of the message once it has been sent or taken in. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define READER_PROTO_VERSION 2
#define READER_MSG_UID_MAX 10
#define READER_MSG_ATS_MAX 48
#define READER_MSG_TEXT_MAX 96
/* A PN532 (also inside an ACR122U) activates at most two ISO14443A targets at once; the
 * worker counts no further. */
#define READER_MSG_TARGETS_MAX 2
#define READER_DESFIRE_UID_LEN 7
#define READER_KEY_LEN 16

enum reader_msg_type {
    READER_MSG_HELLO = 1,       /* device opened and initialised; text = device name */
    READER_MSG_ARRIVED = 2,     /* a card is here (after debounce); targets says how many
                                 * cards answered when it arrived; auth what the worker
                                 * learnt of its DESFire application */
    READER_MSG_LEFT = 3,        /* the card has been gone for the debounce time; targets as
                                 * in its ARRIVED */
    READER_MSG_ERROR = 4,       /* the worker is giving up; text says why; it exits next */
    READER_MSG_HEARTBEAT = 5,   /* still polling */
    READER_MSG_DONE = 6,        /* a PROVISION or DEPROVISION ended: request, status, and on
                                 * success the card's real UID; text says what was done or
                                 * what went wrong */
};

/* ARRIVED: the DESFire authentication of the card, when the worker holds keys. */
enum reader_auth {
    READER_AUTH_NONE = 0,           /* not attempted: the worker holds no DESFire key */
    READER_AUTH_OK = 1,             /* the card proved a Portier key: uid is its real UID */
    READER_AUTH_NOT_DESFIRE = 2,    /* not a DESFire EV1 or later: a UID is all it has */
    READER_AUTH_NO_APP = 3,         /* a DESFire without a Portier application */
    READER_AUTH_FAILED = 4,         /* a Portier application that did not prove the key:
                                     * another site's card, a forgery, or a card that broke
                                     * the protocol */
    READER_AUTH_REMOVED = 5,        /* the card left during the exchange */
    READER_AUTH__MAX = READER_AUTH_REMOVED,
};

/* Which Portier application proved the key (ARRIVED with READER_AUTH_OK). */
enum reader_app {
    READER_APP_NONE = 0,
    READER_APP_SITE = 1,            /* this site's own application: one of its members */
    READER_APP_CONSORTIUM = 2,      /* the consortium application: any site's member */
    READER_APP__MAX = READER_APP_CONSORTIUM,
};

/* DONE: how a PROVISION or DEPROVISION ended. */
enum reader_done {
    READER_DONE_OK = 0,
    READER_DONE_TIMEOUT = 1,        /* no card came in time */
    READER_DONE_NOT_DESFIRE = 2,    /* the card is not a DESFire EV1 or later */
    READER_DONE_PICC_KEY = 3,       /* the card's master key is not the one given */
    READER_DONE_FOREIGN = 4,        /* the card has a Portier application this site cannot
                                     * open: another site's card */
    READER_DONE_REMOVED = 5,        /* the card left before the end: present it again */
    READER_DONE_CARD_ERROR = 6,     /* the card refused a step (text says which) */
    READER_DONE_SEVERAL = 7,        /* several cards on the reader */
    READER_DONE_NO_KEY = 8,         /* the worker holds no master key */
    READER_DONE_CANCELLED = 9,
    READER_DONE__MAX = READER_DONE_CANCELLED,
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
    uint8_t uid[READER_MSG_UID_MAX];    /* ARRIVED with READER_AUTH_OK and DONE: the card's
                                         * real UID, read after authentication */
    uint8_t ats[READER_MSG_ATS_MAX];
    uint8_t auth;               /* ARRIVED: enum reader_auth; 0 otherwise */
    uint8_t app;                /* ARRIVED with READER_AUTH_OK: enum reader_app; 0 otherwise */
    uint8_t key_version;        /* ARRIVED with READER_AUTH_OK: version of the key proved */
    uint8_t status;             /* DONE: enum reader_done; 0 otherwise */
    uint32_t request;           /* DONE: the request it answers; 0 otherwise */
    char text[READER_MSG_TEXT_MAX];     /* NUL-terminated */
} __attribute__((packed));

/* 0 if msg (of len bytes) is well formed, else a static description of the problem. */
static inline const char *reader_msg_check(const struct reader_msg *m, long len)
{
    if (len != (long)sizeof(*m))
        return "wrong message size";
    if (m->version != READER_PROTO_VERSION)
        return "wrong protocol version";
    if (m->type < READER_MSG_HELLO || m->type > READER_MSG_DONE)
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
    if (m->auth > READER_AUTH__MAX || (m->auth && m->type != READER_MSG_ARRIVED))
        return "bad authentication result";
    if (m->app > READER_APP__MAX || (m->app != READER_APP_NONE) != (m->auth == READER_AUTH_OK))
        return "bad application";
    if (m->auth == READER_AUTH_OK && m->uid_len != READER_DESFIRE_UID_LEN)
        return "bad UID length";
    if (m->type == READER_MSG_DONE) {
        if (m->status > READER_DONE__MAX || m->request == 0)
            return "bad command result";
        if (m->status == READER_DONE_OK && m->uid_len != READER_DESFIRE_UID_LEN)
            return "bad UID length";
        if (m->status != READER_DONE_OK && m->uid_len != 0)
            return "bad UID length";
    } else if (m->status || m->request) {
        return "bad command result";
    }
    return 0;
}

enum reader_cmd_type {
    READER_CMD_KEYS = 1,            /* first message: the DESFire keys (flags say which) */
    READER_CMD_PROVISION = 2,       /* make the next card presented a Portier card */
    READER_CMD_DEPROVISION = 3,     /* remove the Portier applications from the next card */
    READER_CMD_CANCEL = 4,          /* forget the pending PROVISION / DEPROVISION */
};

/* KEYS flags */
#define READER_KEYS_SITE            0x01    /* site_key is the site's master key */
#define READER_KEYS_CONSORTIUM      0x02    /* consortium_key, generation consortium_gen */
#define READER_KEYS_CONSORTIUM_OLD  0x04    /* consortium_old_key: the previous generation,
                                             * still accepted at taps */
/* PROVISION flags */
#define READER_PROVISION_CONSORTIUM 0x01    /* also the consortium application */

/* The card's PICC master key, for PROVISION and DEPROVISION. */
enum reader_picc_key {
    READER_PICC_DEFAULT = 0,        /* factory default: DES, all zeros */
    READER_PICC_DES = 1,            /* 8 bytes */
    READER_PICC_2K3DES = 2,         /* 16 bytes */
    READER_PICC_AES = 3,            /* 16 bytes */
    READER_PICC__MAX = READER_PICC_AES,
};

struct reader_cmd {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint8_t picc_key_type;          /* enum reader_picc_key */
    uint32_t request;               /* PROVISION, DEPROVISION, CANCEL: echoed in DONE (> 0) */
    uint32_t timeout_ms;            /* PROVISION, DEPROVISION: give up after this long */
    uint8_t site_key[READER_KEY_LEN];
    uint8_t consortium_key[READER_KEY_LEN];
    uint8_t consortium_gen;
    uint8_t consortium_old_key[READER_KEY_LEN];
    uint8_t consortium_old_gen;
    uint8_t picc_key[READER_KEY_LEN];
} __attribute__((packed));

#define READER_CMD_TIMEOUT_MAX 600000u

/* 0 if cmd (of len bytes) is well formed, else a static description of the problem. */
static inline const char *reader_cmd_check(const struct reader_cmd *c, long len)
{
    if (len != (long)sizeof(*c))
        return "wrong command size";
    if (c->version != READER_PROTO_VERSION)
        return "wrong protocol version";
    switch (c->type) {
    case READER_CMD_KEYS:
        if (c->flags & ~(READER_KEYS_SITE | READER_KEYS_CONSORTIUM | READER_KEYS_CONSORTIUM_OLD))
            return "unknown key flags";
        if ((c->flags & READER_KEYS_CONSORTIUM_OLD) && !(c->flags & READER_KEYS_CONSORTIUM))
            return "an old consortium key without a current one";
        return 0;
    case READER_CMD_PROVISION:
    case READER_CMD_DEPROVISION:
        if (c->flags & ~READER_PROVISION_CONSORTIUM)
            return "unknown provisioning flags";
        if (c->picc_key_type > READER_PICC__MAX)
            return "unknown PICC key type";
        if (c->timeout_ms == 0 || c->timeout_ms > READER_CMD_TIMEOUT_MAX)
            return "bad timeout";
        /* fall through */
    case READER_CMD_CANCEL:
        return c->request ? 0 : "no request id";
    default:
        return "unknown command type";
    }
}

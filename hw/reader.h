/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader: a card reader that reports cards arriving and leaving.
 *
 * Back-ends (struct reader_ops) deliver events through reader_deliver(), which stamps them
 * and calls the owner's on_event callback on the daemon's loop. A UID is handed to the
 * owner and must never be logged or stored in clear: the access engine hashes it at once. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "cardid.h"
#include "reader_proto.h"

#define READER_UID_MAX CARDID_UID_MAX   /* ISO 14443A: 4, 7 or 10 bytes */
#define READER_NOTE_MAX 96

enum reader_event_kind {
    READER_CARD_ARRIVED,
    READER_CARD_LEFT,
    READER_FAULT,
};

struct reader_event {
    enum reader_event_kind kind;
    uint8_t uid[READER_UID_MAX];
    uint8_t uid_len;
    uint16_t atqa;
    uint8_t sak;
    uint8_t targets;                /* cards that answered when this one arrived (>= 1); when
                                     * several did, uid is the card the chip selected first:
                                     * it alone taps */
    uint64_t at_usec;               /* CLOCK_MONOTONIC, when the event entered the daemon */
    /* ARRIVED: what the worker learnt of the card's DESFire application (reader_proto.h).
     * With READER_AUTH_OK, uid is the card's real UID, read under the session key. */
    enum reader_auth auth;
    enum reader_app app;            /* with READER_AUTH_OK: which application proved it */
    uint8_t key_version;            /* with READER_AUTH_OK */
    char note[READER_NOTE_MAX];     /* why an authentication failed, for people; no UID */
};

/* The DESFire keys a libnfc reader's worker holds (reader_proto.h, KEYS). Owned by the
 * daemon, in locked memory; readers only read them, when a worker starts. */
struct reader_desfire_keys {
    bool site;
    uint8_t site_key[READER_KEY_LEN];
    bool consortium;
    uint8_t consortium_key[READER_KEY_LEN];
    uint8_t consortium_gen;
    bool consortium_old;
    uint8_t consortium_old_key[READER_KEY_LEN];
    uint8_t consortium_old_gen;
};

/* A job for a reader's worker: provision or deprovision the next card presented. */
struct reader_job {
    enum reader_cmd_type type;      /* READER_CMD_PROVISION or READER_CMD_DEPROVISION */
    bool consortium;                /* also the consortium application */
    enum reader_picc_key picc_type;
    uint8_t picc_key[READER_KEY_LEN];
    unsigned timeout_ms;
};

struct reader_job_result {
    enum reader_done status;
    uint8_t uid[READER_DESFIRE_UID_LEN];        /* READER_DONE_OK: the card's real UID */
    char text[READER_MSG_TEXT_MAX];
};

struct reader;

struct reader_ops {
    const char *driver;
    /* Start reading on r->loop. 0 or -errno. */
    int (*start)(struct reader *r);
    /* Stop; safe on a reader whose start failed. */
    void (*stop)(struct reader *r);
    /* Restart now; NULL if the back-end has nothing to restart. */
    int (*restart)(struct reader *r);
    /* Run a job on the next card (reader_job_start); NULL if the back-end cannot. */
    int (*job_start)(struct reader *r, const struct reader_job *job);
    void (*job_cancel)(struct reader *r);
};

typedef void (*reader_event_fn)(struct reader *r, const struct reader_event *ev, void *userdata);
typedef void (*reader_job_fn)(struct reader *r, const struct reader_job_result *res, void *userdata);

enum reader_health {
    READER_STARTING,            /* worker started, device not yet opened */
    READER_UP,
    READER_RESTARTING,          /* it failed; a restart is scheduled */
    READER_FAILED,              /* the device could not be opened; retrying with back-off */
};

struct relay;

/* Tuning of worker-based readers (libnfc); ignored by the simulated reader. */
struct reader_params {
    const char *connstring;
    const char *worker_path;            /* program to run, see reader_proto.h */
    unsigned poll_ms;
    unsigned debounce_ms;
    unsigned heartbeat_timeout_ms;
    unsigned backoff_max_ms;
    struct relay *reset;                /* optional reset line, asserted = energised */
    const struct reader_desfire_keys *desfire;  /* NULL: the worker gets no key (no DESFire
                                                 * authentication); borrowed, must outlive r */
};

struct reader {
    const struct reader_ops *ops;
    char name[32];
    struct reader_params params;
    char connstring[128];
    char worker_path[256];
    sd_event *loop;
    bool started;
    enum reader_health health;
    uint64_t taps;
    bool holding;                       /* a card arrived and has not left yet (for a libnfc
                                         * reader: not been away for debounce_ms) */
    uint64_t restarts;                  /* worker restarts since start */
    uint64_t reset_pulses;              /* pulses sent on the reset line */
    int64_t failed_since;               /* UTC seconds of the first failure not yet
                                         * followed by a healthy run; 0 if healthy */
    char last_error[96];
    char device[64];                    /* as the driver names it */
    reader_event_fn on_event;
    void *userdata;
    reader_job_fn on_job;               /* the pending job's owner, NULL if none */
    void *job_userdata;
    void *priv;
};

extern const struct reader_ops reader_ops_sim;
extern const struct reader_ops reader_ops_nfc;

/* "sim" or "libnfc"; NULL if unknown. */
const struct reader_ops *reader_ops_by_driver(const char *driver);

/* params may be NULL (simulated readers). Its strings are copied. */
int reader_start(struct reader *r, const struct reader_ops *ops, sd_event *loop,
                 const char *name, const struct reader_params *params, reader_event_fn on_event,
                 void *userdata);
void reader_stop(struct reader *r);

/* For back-ends: hand an event to the owner. */
void reader_deliver(struct reader *r, struct reader_event *ev);

/* Kill and restart a worker-based reader now (manager command). -EOPNOTSUPP for sim. */
int reader_restart(struct reader *r);

/* Have the reader's worker provision or deprovision the next card presented (or the one
 * on it now). fn hears the outcome exactly once, on the loop, unless reader_job_cancel()
 * comes first; a worker that dies meanwhile ends the job (READER_DONE_REMOVED: present the
 * card again). -EOPNOTSUPP (simulated reader), -EBUSY (a job pending), -ENOKEY (the worker
 * holds no master key), -EAGAIN (the worker is not up), -EIO (it cannot be told). */
int reader_job_start(struct reader *r, const struct reader_job *job, reader_job_fn fn,
                     void *userdata);
/* Forget the pending job: fn will not be called. NULL-safe, no-op without a job. */
void reader_job_cancel(struct reader *r);
/* For back-ends: the pending job ended. */
void reader_job_done(struct reader *r, const struct reader_job_result *res);

/* Simulated readers only. Present a card: it arrives and, unless hold, leaves at once
 * (a tap). A card already held is taken away first. -EINVAL if r is not simulated. */
int reader_sim_present(struct reader *r, const uint8_t *uid, size_t uid_len, bool hold);
/* Take away the held card, if any. */
int reader_sim_remove(struct reader *r);

const char *reader_health_to_string(enum reader_health h);

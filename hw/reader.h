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

#define READER_UID_MAX CARDID_UID_MAX   /* ISO 14443A: 4, 7 or 10 bytes */

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
};

typedef void (*reader_event_fn)(struct reader *r, const struct reader_event *ev, void *userdata);

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

/* Simulated readers only. Present a card: it arrives and, unless hold, leaves at once
 * (a tap). A card already held is taken away first. -EINVAL if r is not simulated. */
int reader_sim_present(struct reader *r, const uint8_t *uid, size_t uid_len, bool hold);
/* Take away the held card, if any. */
int reader_sim_remove(struct reader *r);

const char *reader_health_to_string(enum reader_health h);

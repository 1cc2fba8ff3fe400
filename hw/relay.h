/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* relay: an output line that energises a door strike, a maglock or a machine contactor.
 *
 * A back-end is a const table of operations (struct relay_ops); callers use the inline
 * wrappers below, never the table. "Energised" is the electrical state of the relay coil;
 * what it means for a door (unlocked or locked) is the door's business. Every back-end
 * leaves the relay de-energised after open and after close.
 *
 * Synchronous back-ends (GPIO, simulated) are done when write() returns: r->energised is the
 * new state at once. Asynchronous back-ends (a network relay: a Shelly or Tasmota device
 * over MQTT) only send the request: relay_write() returns 0 with r->pending set and
 * r->requested the state asked for; r->energised changes when the device reports its state,
 * and the owner hears of it through r->notify (RELAY_CONFIRMED). The back-end decides when
 * a request is overdue (RELAY_FAULT: the relay's state is unknown) and when the device goes
 * away or returns (RELAY_OFFLINE, RELAY_ONLINE). A device reporting another state than the
 * one requested, when nothing is pending (its own button, a reboot), is asked again for the
 * requested state (RELAY_DIVERGED): the owner's state wins, so a button on the device can
 * neither bypass the interlock nor cut a session silently. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gpio_line.h"

struct relay;

/* What an asynchronous relay's owner hears (struct relay.notify). */
enum relay_news {
    RELAY_CONFIRMED,        /* the device reports the requested state (confirm_usec: how long) */
    RELAY_FAULT,            /* no confirmation in time: the state is unknown; asked again */
    RELAY_OFFLINE,          /* the device went away (its state is unknown until it returns) */
    RELAY_ONLINE,           /* it came back; its state is read again and reconciled */
    RELAY_DIVERGED,         /* it reported another state than requested: asked again */
};

struct relay_ops {
    const char *backend;
    bool asynchronous;              /* write() only sends: see above */
    /* Request the line as an output, driven de-energised. 0 or -errno. */
    int (*open)(struct relay *r);
    /* Drive the line. 0 or -errno; r->energised is updated by the wrapper on success. */
    int (*write)(struct relay *r, bool energised);
    /* De-energise and release the line. Safe on a relay whose open failed. */
    void (*close)(struct relay *r);
};

struct relay {
    const struct relay_ops *ops;
    char name[48];                  /* "front.relay": consumer label and status key */
    struct line_spec line;
    bool is_open;
    bool energised;                 /* last state written successfully */
    uint64_t writes;                /* successful writes, for status and tests */
    uint64_t last_write_usec;       /* CLOCK_MONOTONIC time of the last write */
    void *priv;                     /* back-end state */
    /* Asynchronous back-ends only (synchronous ones keep requested == energised and the
     * flags false). */
    bool requested;                 /* the state asked for last */
    bool pending;                   /* asked, not yet confirmed */
    bool fault;                     /* a request went unconfirmed past its deadline */
    bool offline;                   /* the device is away */
    uint64_t requested_usec;        /* CLOCK_MONOTONIC time of the request */
    uint64_t confirm_usec;          /* how long the last confirmation took */
    uint64_t faults;                /* requests that went unconfirmed, for status */
    void (*notify)(struct relay *r, enum relay_news news, void *userdata);
    void *notify_userdata;
};

/* Set up r (caller-owned storage) and open it. On failure r is closed. 0 or -errno. */
int relay_open(struct relay *r, const struct relay_ops *ops, const char *name,
               const struct line_spec *line);
/* The same, handing the back-end its device (r->priv before open(); network relays). */
int relay_open_backend(struct relay *r, const struct relay_ops *ops, const char *name,
                       const struct line_spec *line, void *backend_arg);
/* Synchronous: drive the line; 0 means done. Asynchronous: send the request; 0 means sent
 * (or queued until the back-end can send), r->pending until the device confirms. Asking
 * an asynchronous relay for the state it already confirmed sends nothing. */
int relay_write(struct relay *r, bool energised);
bool relay_is_asynchronous(const struct relay *r);

/* For asynchronous back-ends: what the device said, or that it said nothing in time. */
void relay_report_state(struct relay *r, bool energised);
/* The request is overdue: fault (notified once per request), and the back-end sends it again. */
void relay_report_overdue(struct relay *r);
void relay_report_online(struct relay *r, bool online);
/* De-energise and release. NULL-safe, idempotent. */
void relay_close(struct relay *r);

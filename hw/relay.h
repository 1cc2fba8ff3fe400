/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* relay: an output line that energises a door strike, a maglock or a machine contactor.
 *
 * A back-end is a const table of operations (struct relay_ops); callers use the inline
 * wrappers below, never the table. "Energised" is the electrical state of the relay coil;
 * what it means for a door (unlocked or locked) is the door's business. Every back-end
 * leaves the relay de-energised after open and after close. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gpio_line.h"

struct relay;

struct relay_ops {
    const char *backend;
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
};

/* Set up r (caller-owned storage) and open it. On failure r is closed. 0 or -errno. */
int relay_open(struct relay *r, const struct relay_ops *ops, const char *name,
               const struct line_spec *line);
int relay_write(struct relay *r, bool energised);
/* De-energise and release. NULL-safe, idempotent. */
void relay_close(struct relay *r);

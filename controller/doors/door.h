/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* door: one door's lock, contact and exit button, as a state machine on the event loop.
 *
 *   locked --(granted tap, exit button, manager, free-entry window)--> unlocked
 *   unlocked --(time up, door closed again, manager lock, window ends)--> locked
 *
 * The relay is written before anything else happens (no log, no disk on that path); the
 * owner hears about every change afterwards through on_event. "Unlocked" maps to the relay
 * by the fail mode: a fail-secure strike is energised to unlock, a fail-safe maglock is
 * energised to lock. door_fini() de-energises the relay, which is also what the hardware
 * does if the daemon dies.
 *
 * A timed unlock never outlives its relock: if the relock timer cannot be armed, the door
 * locks again at once (a fail-secure strike's relay de-energised, a fail-safe maglock's
 * energised) and the unlock fails. The safety of people does not rest on this: a fail-safe
 * door's break-glass and fire release cut the magnet's power without the Pi
 * (docs/install-raspberry-pi.md). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "input.h"
#include "relay.h"
#include "timer.h"

#define DOOR_MAX_UNLOCK_SECONDS (12 * 3600)

enum door_cause {
    DOOR_CAUSE_TAP,
    DOOR_CAUSE_EXIT,
    DOOR_CAUSE_MANUAL,
    DOOR_CAUSE_FREE_ENTRY,
};

enum door_event {
    DOOR_EV_UNLOCKED,
    DOOR_EV_LOCKED,
    DOOR_EV_OPENED,
    DOOR_EV_CLOSED,
    DOOR_EV_EXIT_PRESSED,
    DOOR_EV_ALARM_FORCED,
    DOOR_EV_ALARM_HELD_OPEN,
    DOOR_EV_ALARM_CLEARED,
    DOOR_EV_RELAY_FAULT,
};

struct door;
typedef void (*door_event_fn)(struct door *d, enum door_event ev, void *userdata);

struct door {
    const struct door_config *cfg;      /* owned by the daemon; swapped by door_reconfigure */
    sd_event *loop;
    int64_t resource_id;
    struct relay relay;
    struct input contact;               /* is_open false if not wired */
    struct input exit_button;
    bool unlocked;                      /* logical state driven onto the relay */
    bool free_entry;                    /* inside a free-entry window */
    uint64_t unlock_until;              /* CLOCK_MONOTONIC usec; 0: no timed unlock */
    enum door_cause cause;              /* of the current unlock */
    bool open;                          /* contact says open */
    bool opened_since_unlock;
    bool alarm_forced;
    bool alarm_held_open;
    int last_error;                     /* last relay write error, 0 if none */
    struct timer *relock;               /* armed for unlock_until */
    struct timer *held;                 /* held-open alarm */
    door_event_fn on_event;
    void *userdata;
};

struct door_hw {
    const struct relay_ops *relay_ops;
    const struct input_ops *input_ops;
    unsigned debounce_ms;
    enum input_bias bias;
};

/* Open the input named "OWNER.SUFFIX" (a door's contact, a machine's running signal) on hw's
 * back-end with its bias and debounce: input_open() for the doors and the machines. */
int door_hw_input_open(const struct door_hw *hw, sd_event *loop, struct input *in,
                       const char *owner, const char *suffix, const struct line_spec *line,
                       input_change_fn on_change, void *userdata);

/* Open the door's lines (relay locked) and create its timers on loop. d is caller-owned
 * storage. 0 or -errno; on error d is finalised and *ret_what names the line that failed
 * ("timer" if the timers could not be created). */
int door_init(struct door *d, const struct door_config *cfg, sd_event *loop,
              const struct door_hw *hw, door_event_fn on_event, void *userdata,
              const char **ret_what);
/* De-energise the relay and release everything. NULL-safe. */
void door_fini(struct door *d);

/* Unlock for seconds (extends a shorter running unlock). Relay first, then the relock timer.
 * 0, -ERANGE (seconds 0 or above DOOR_MAX_UNLOCK_SECONDS), or -errno: the relay write failed
 * (DOOR_EV_RELAY_FAULT was emitted), or the relock could not be armed: the door is then
 * locked again, as door_lock_now() does — an unlock already running ends too, a free-entry
 * window keeps the door open. Either way the caller must not report the door as opened. */
int door_unlock_for(struct door *d, unsigned seconds, enum door_cause cause);
/* End a timed or manual unlock now (a free-entry window keeps the door open). */
int door_lock_now(struct door *d);
/* Enter or leave a free-entry window. */
void door_set_free_entry(struct door *d, bool active);
/* Take new timings and schedules (same hardware). */
void door_reconfigure(struct door *d, const struct door_config *cfg);

/* Seconds until a timed unlock ends (0 if none). */
unsigned door_unlock_remaining(const struct door *d);
const char *door_event_to_string(enum door_event ev);
const char *door_cause_to_string(enum door_cause c);

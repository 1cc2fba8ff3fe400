/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* machine: the power interlock of one fablab machine, a state machine on the event loop.
 *
 *   off --(granted tap)--> on --(warn_minutes before the end)--> warning --(end)--> grace
 *   grace --(grace_minutes)--> off, or overrun while a never-cut machine still runs
 *   on --(member taps again)--> handover --(handover_seconds, nobody takes over)--> off
 *   any state with power --(idle for idle_off_minutes, out of order, hard maximum)--> off
 *
 * The end ("max_until") comes from policy_decide_machine(): the member's booking end, the
 * next booking, closing time — capped by hard_max_minutes after the session's start.
 * Deadlines are wall-clock (CLOCK_REALTIME timers), as bookings are. The relay is written
 * first on every transition; the owner hears of each change afterwards through on_event
 * and keeps the session record. machine_fini() de-energises everything.
 *
 * Power never stays on without its next deadline armed. If a deadline timer cannot be
 * armed, power goes off at once: before a session starts (machine_power_on from off: the
 * relay is switched back off, no event; from handover or machine_takeover: off with
 * off_reason "timer_fault"), or during one (off, "timer_fault"); a handover window that
 * cannot be timed is skipped (off, "finished", as with handover_seconds 0). The idle timer
 * only ends a session early: if it cannot be armed, the session's deadline still ends it.
 *
 * A network relay (a Shelly or Tasmota device, relay.h's asynchronous back-ends) confirms
 * later: the session starts when the tap is granted and the request sent, and
 * MACHINE_EV_RELAY_CONFIRMED follows when the device reports the state. A request left
 * unconfirmed (MACHINE_EV_RELAY_FAULT) or the device going away (MACHINE_EV_DEVICE_OFFLINE)
 * raises the machine's alarm: the state machine goes on as before (the session is kept
 * and marked, its deadlines still end it), the relay asks again until the device answers,
 * and the alarm clears (MACHINE_EV_ALARM_CLEARED) once the device confirms the state the
 * machine wants. Power is never assumed off while it cannot be confirmed. The GPIO relay
 * path is unchanged: synchronous, done when the write returns.
 *
 * Running: a `running` line, or power readings (machine_power_reading()) above
 * running_power_w for running_power_seconds (and below it as long for idle). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "door.h"
#include "input.h"
#include "relay.h"
#include "timer.h"

enum machine_state {
    MACHINE_OFF,
    MACHINE_ON,
    MACHINE_WARNING,
    MACHINE_GRACE,
    MACHINE_OVERRUN,        /* past the end, never-cut machine still running */
    MACHINE_HANDOVER,       /* finished, power kept briefly for the next member */
};

enum machine_event {
    MACHINE_EV_ON,          /* power on, new session (member_id, booking_id, max_until) */
    MACHINE_EV_TAKEOVER,    /* session handed to another member; power stayed on */
    MACHINE_EV_EXTENDED,    /* max_until moved later */
    MACHINE_EV_WARNING,
    MACHINE_EV_GRACE,
    MACHINE_EV_OVERRUN,
    MACHINE_EV_HANDOVER,    /* the member finished; waiting for a takeover */
    MACHINE_EV_OFF,         /* power off; off_reason says why */
    MACHINE_EV_RUNNING,     /* running sensor changed (m->running) */
    MACHINE_EV_RELAY_FAULT, /* a write failed (GPIO), or a network relay did not confirm */
    MACHINE_EV_RELAY_CONFIRMED,     /* a network relay confirmed (m->relay.confirm_usec) */
    MACHINE_EV_RELAY_DIVERGED,      /* it reported another state; asked again */
    MACHINE_EV_DEVICE_OFFLINE,      /* its device went away (alarm) */
    MACHINE_EV_DEVICE_ONLINE,       /* it came back; its state is asked again */
    MACHINE_EV_ALARM_CLEARED,       /* the device confirmed the wanted state again */
};

/* A network relay instead of the GPIO relay of the machine's config. */
struct machine_net {
    const struct relay_ops *ops;    /* an asynchronous back-end */
    void *device;                   /* handed to it (relay_open_backend) */
};

struct machine;
typedef void (*machine_event_fn)(struct machine *m, enum machine_event ev, void *userdata);

struct machine {
    const struct machine_config *cfg;
    sd_event *loop;
    int64_t resource_id;
    struct relay relay;
    struct relay warn;              /* is_open false if not wired */
    struct input running_in;        /* is_open false if not wired */
    enum machine_state state;
    int64_t member_id;              /* of the current session */
    int64_t booking_id;
    int64_t session_id;             /* kept by the owner */
    int64_t started_at;             /* UTC */
    int64_t max_until;              /* UTC */
    int64_t hard_until;             /* UTC */
    int64_t previous_member_id;     /* set on MACHINE_EV_TAKEOVER ... */
    int64_t previous_running_seconds;   /* ... with the closed session's running time */
    int64_t previous_started_at;        /* ... and start */
    int64_t handover_until;         /* UTC, in MACHINE_HANDOVER */
    int64_t idle_until;             /* UTC, while the idle timer runs; 0 otherwise */
    bool running;                   /* running sensor, debounced */
    uint64_t running_since;         /* CLOCK_MONOTONIC usec, while running in a session */
    int64_t running_seconds;        /* accumulated in the current session */
    const char *off_reason;         /* static string: "finished", "session_end", "idle", ... */
    int last_error;
    const char *alarm;              /* NULL, "relay_fault" or "device_offline" */
    int64_t alarm_since;            /* UTC */
    const char *session_alarm;      /* the first alarm the current session saw, or NULL */
    bool power_flip_pending;        /* power crossed running_power_w; waiting to be sure */
    struct timer *power_timer;      /* CLOCK_MONOTONIC: running_power_seconds */
    int64_t power_mw;               /* last power reading, -1 if none */
    struct timer *signal_timer;     /* CLOCK_MONOTONIC: the warn output's pattern */
    unsigned signal_steps;          /* pattern steps left */
    uint32_t signal_step_ms;
    struct timer *deadline;         /* CLOCK_REALTIME: next state change, or handover end */
    struct timer *idle;             /* CLOCK_REALTIME: idle_until */
    machine_event_fn on_event;
    void *userdata;
};

/* Open the machine's lines (power off) and create its timers. 0 or -errno; *ret_what names
 * the failing line ("timer" if the timers could not be created). */
int machine_init(struct machine *m, const struct machine_config *cfg, sd_event *loop,
                 const struct door_hw *hw, const struct machine_net *net,
                 machine_event_fn on_event, void *userdata, const char **ret_what);
void machine_fini(struct machine *m);
void machine_reconfigure(struct machine *m, const struct machine_config *cfg);

/* Start a session (from off or handover). Relay first, then the first deadline. 0, -EBUSY
 * (a session is on), or -errno: the relay write failed (MACHINE_EV_RELAY_FAULT was
 * emitted), or a deadline could not be armed and power is off (see above). On an error the
 * caller must not report the power as on. */
int machine_power_on(struct machine *m, int64_t member_id, int64_t booking_id, int64_t max_until);
/* Hand the running session to another member, power staying on. 0, or -errno if its
 * deadline could not be armed: power is then off ("timer_fault"). */
int machine_takeover(struct machine *m, int64_t member_id, int64_t booking_id, int64_t max_until);
/* Move the end later (a tap during warning or grace that could extend). */
void machine_extend(struct machine *m, int64_t booking_id, int64_t max_until);
/* The member tapped to finish: handover window, or off at once if it is 0. */
void machine_finish(struct machine *m);
/* Power off now. reason: a static string. */
void machine_power_off(struct machine *m, const char *reason);

/* The daemon's clock moved (simulation): re-arm the deadlines. */
void machine_clock_changed(struct machine *m);

/* A power reading of the machine, in milliwatts (running from power, status). */
void machine_power_reading(struct machine *m, int64_t milliwatts);
/* Whether the machine has a running input (a line, or power readings). */
bool machine_senses_running(const struct machine *m);
/* A pattern on the warn output (a buzzer or lamp), if wired and not warning. */
enum machine_signal {
    MACHINE_SIGNAL_WAIT,            /* one short beep: waiting for the next card */
    MACHINE_SIGNAL_OK,              /* three short beeps: done */
    MACHINE_SIGNAL_REFUSED,         /* one long beep: refused */
};
void machine_announce(struct machine *m, enum machine_signal signal);

/* Seconds the running sensor has shown "running" in the current session. */
int64_t machine_running_seconds(const struct machine *m);
bool machine_powered(const struct machine *m);
const char *machine_state_to_string(enum machine_state s);

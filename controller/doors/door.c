/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "door.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Relay timers beat everything else on the loop: a door must lock on time. */
#define DOOR_TIMER_PRIORITY (-100)

static void door_emit(struct door *d, enum door_event ev)
{
    if (d->on_event)
        d->on_event(d, ev, d->userdata);
}

static uint64_t loop_now(struct door *d)
{
    uint64_t now;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    return now;
}

/* Drive the relay to match the logical state. The only place that writes the relay. */
static int door_apply(struct door *d, bool unlocked)
{
    bool energised = d->cfg->fail == DOOR_FAIL_SAFE ? !unlocked : unlocked;
    int r = relay_write(&d->relay, energised);

    if (r < 0) {
        d->last_error = r;
        door_emit(d, DOOR_EV_RELAY_FAULT);
        return r;
    }
    d->last_error = 0;
    if (d->unlocked != unlocked) {
        d->unlocked = unlocked;
        door_emit(d, unlocked ? DOOR_EV_UNLOCKED : DOOR_EV_LOCKED);
    }
    return 0;
}

static void door_relock_due(void *userdata)
{
    struct door *d = userdata;

    d->unlock_until = 0;
    if (!d->free_entry)
        door_apply(d, false);
}

static void door_held_due(void *userdata)
{
    struct door *d = userdata;

    if (d->open && !d->free_entry && !d->alarm_held_open) {
        d->alarm_held_open = true;
        door_emit(d, DOOR_EV_ALARM_HELD_OPEN);
    }
}

int door_unlock_for(struct door *d, unsigned seconds, enum door_cause cause)
{
    uint64_t until;
    int r;

    if (seconds == 0 || seconds > DOOR_MAX_UNLOCK_SECONDS)
        return -ERANGE;
    until = loop_now(d) + (uint64_t)seconds * 1000000u;
    d->cause = cause;               /* before the relay: listeners read it on "unlocked" */
    r = door_apply(d, true);        /* relay first */
    if (r < 0)
        return r;
    if (until > d->unlock_until) {
        r = timer_arm_at(d->relock, until);
        if (r < 0) {
            /* Fail closed: an unlock nothing would end is worse than no unlock. */
            door_lock_now(d);
            return r;
        }
        d->unlock_until = until;
    }
    if (!d->open)
        d->opened_since_unlock = false;
    return 0;
}

int door_lock_now(struct door *d)
{
    d->unlock_until = 0;
    timer_disarm(d->relock);
    if (d->free_entry)
        return 0;
    return door_apply(d, false);
}

void door_set_free_entry(struct door *d, bool active)
{
    if (d->free_entry == active)
        return;
    d->free_entry = active;
    if (active) {
        d->cause = DOOR_CAUSE_FREE_ENTRY;
        door_apply(d, true);
        timer_disarm(d->held);
    } else if (d->unlock_until == 0) {
        door_apply(d, false);
    }
}

static void door_contact_changed(struct input *in, bool open, void *userdata)
{
    struct door *d = userdata;

    d->open = open;
    if (open) {
        if (!d->unlocked && !d->alarm_forced) {
            d->alarm_forced = true;
            door_emit(d, DOOR_EV_OPENED);
            door_emit(d, DOOR_EV_ALARM_FORCED);
        } else {
            d->opened_since_unlock = true;
            door_emit(d, DOOR_EV_OPENED);
        }
        /* Only an alarm: if it cannot be armed the door still locks as it should. */
        if (d->cfg->held_open_seconds > 0 && !d->free_entry)
            timer_arm_in(d->held, (uint64_t)d->cfg->held_open_seconds * 1000000u);
        return;
    }
    timer_disarm(d->held);
    door_emit(d, DOOR_EV_CLOSED);
    if (d->alarm_forced || d->alarm_held_open) {
        d->alarm_forced = false;
        d->alarm_held_open = false;
        door_emit(d, DOOR_EV_ALARM_CLEARED);
    }
    /* Someone went through: lock now rather than leave the door unlocked behind them.
     * A manager's unlock stays (a delivery may need several trips). */
    if (d->cfg->relock_on_close && d->unlocked && d->opened_since_unlock && !d->free_entry &&
        (d->cause == DOOR_CAUSE_TAP || d->cause == DOOR_CAUSE_EXIT)) {
        d->opened_since_unlock = false;
        door_lock_now(d);
    }
}

static void door_exit_changed(struct input *in, bool pressed, void *userdata)
{
    struct door *d = userdata;

    if (!pressed)
        return;
    door_unlock_for(d, (unsigned)d->cfg->unlock_seconds, DOOR_CAUSE_EXIT);
    door_emit(d, DOOR_EV_EXIT_PRESSED);
}

int door_hw_input_open(const struct door_hw *hw, sd_event *loop, struct input *in,
                       const char *owner, const char *suffix, const struct line_spec *line,
                       input_change_fn on_change, void *userdata)
{
    char name[48];

    snprintf(name, sizeof(name), "%s.%s", owner, suffix);
    return input_open(in, hw->input_ops, loop, name, line, hw->bias, hw->debounce_ms, on_change,
                      userdata);
}

int door_init(struct door *d, const struct door_config *cfg, sd_event *loop,
              const struct door_hw *hw, door_event_fn on_event, void *userdata,
              const char **ret_what)
{
    char name[48];
    int r;

    memset(d, 0, sizeof(*d));
    d->cfg = cfg;
    d->loop = loop;
    d->on_event = on_event;
    d->userdata = userdata;

    *ret_what = "timer";
    if ((r = timer_new(loop, CLOCK_MONOTONIC, 0, door_relock_due, d, &d->relock)) < 0 ||
        (r = timer_set_priority(d->relock, DOOR_TIMER_PRIORITY)) < 0 ||
        (r = timer_new(loop, CLOCK_MONOTONIC, 0, door_held_due, d, &d->held)) < 0 ||
        (r = timer_set_priority(d->held, DOOR_TIMER_PRIORITY)) < 0)
        goto fail;
    snprintf(name, sizeof(name), "%s.relay", cfg->name);
    *ret_what = "relay";
    r = relay_open(&d->relay, hw->relay_ops, name, &cfg->relay);
    if (r < 0)
        goto fail;
    /* Locked from the start: for a fail-safe door that means energised. */
    r = door_apply(d, false);
    if (r < 0)
        goto fail;
    if (cfg->contact.set) {
        *ret_what = "contact";
        r = door_hw_input_open(hw, loop, &d->contact, cfg->name, "contact", &cfg->contact,
                               door_contact_changed, d);
        if (r < 0)
            goto fail;
        d->open = d->contact.active;
    }
    if (cfg->exit_button.set) {
        *ret_what = "exit_button";
        r = door_hw_input_open(hw, loop, &d->exit_button, cfg->name, "exit", &cfg->exit_button,
                               door_exit_changed, d);
        if (r < 0)
            goto fail;
    }
    return 0;
fail:
    door_fini(d);
    return r;
}

void door_fini(struct door *d)
{
    if (!d)
        return;
    d->relock = timer_free(d->relock);
    d->held = timer_free(d->held);
    input_close(&d->exit_button);
    input_close(&d->contact);
    relay_close(&d->relay);     /* de-energised: the fail mode decides what the door does */
}

void door_reconfigure(struct door *d, const struct door_config *cfg)
{
    d->cfg = cfg;
}

unsigned door_unlock_remaining(const struct door *d)
{
    uint64_t now;
    if (!d->unlock_until)
        return 0;
    sd_event_now(d->loop, CLOCK_MONOTONIC, &now);
    return d->unlock_until > now ? (unsigned)((d->unlock_until - now + 999999) / 1000000) : 0;
}

const char *door_event_to_string(enum door_event ev)
{
    switch (ev) {
    case DOOR_EV_UNLOCKED:        return "unlocked";
    case DOOR_EV_LOCKED:          return "locked";
    case DOOR_EV_OPENED:          return "opened";
    case DOOR_EV_CLOSED:          return "closed";
    case DOOR_EV_EXIT_PRESSED:    return "exit_pressed";
    case DOOR_EV_ALARM_FORCED:    return "forced";
    case DOOR_EV_ALARM_HELD_OPEN: return "held_open";
    case DOOR_EV_ALARM_CLEARED:   return "alarm_cleared";
    case DOOR_EV_RELAY_FAULT:     return "relay_fault";
    }
    return "unknown";
}

const char *door_cause_to_string(enum door_cause c)
{
    switch (c) {
    case DOOR_CAUSE_TAP:        return "tap";
    case DOOR_CAUSE_EXIT:       return "exit";
    case DOOR_CAUSE_MANUAL:     return "manual";
    case DOOR_CAUSE_FREE_ENTRY: return "free_entry";
    }
    return "unknown";
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define MACHINE_TIMER_PRIORITY (-100)

static void emit(struct machine *m, enum machine_event ev)
{
    if (m->on_event)
        m->on_event(m, ev, m->userdata);
}

static int relay_set(struct machine *m, bool on)
{
    int r = relay_write(&m->relay, on);
    if (r < 0) {
        m->last_error = r;
        emit(m, MACHINE_EV_RELAY_FAULT);
    } else {
        m->last_error = 0;
    }
    return r;
}

static bool warn_wanted(const struct machine *m)
{
    return m->state == MACHINE_WARNING || m->state == MACHINE_GRACE || m->state == MACHINE_OVERRUN;
}

static void warn_set(struct machine *m, bool on)
{
    if (on && m->signal_steps) {
        m->signal_steps = 0;        /* the session's warning wins over an announcement */
        timer_disarm(m->signal_timer);
    }
    if (m->warn.is_open && m->warn.energised != on && !m->signal_steps)
        relay_write(&m->warn, on);
}

static void signal_step(void *userdata)
{
    struct machine *m = userdata;

    if (!m->signal_steps)
        return;
    m->signal_steps--;
    if (!m->signal_steps || timer_arm_in(m->signal_timer, m->signal_step_ms * 1000ull) < 0) {
        m->signal_steps = 0;
        relay_write(&m->warn, warn_wanted(m));
        return;
    }
    relay_write(&m->warn, m->signal_steps % 2 == 0);
}

void machine_announce(struct machine *m, enum machine_signal signal)
{
    if (!m->warn.is_open || warn_wanted(m))
        return;
    /* Steps alternate on/off, the last one back to the warning output's own state. */
    m->signal_steps = signal == MACHINE_SIGNAL_OK ? 6 : 2;
    m->signal_step_ms = signal == MACHINE_SIGNAL_REFUSED ? 1000 : 150;
    if (timer_arm_in(m->signal_timer, m->signal_step_ms * 1000ull) < 0) {
        m->signal_steps = 0;
        return;
    }
    relay_write(&m->warn, true);
}

static void alarm_raise(struct machine *m, const char *alarm, enum machine_event ev)
{
    if (!m->alarm || strcmp(m->alarm, "device_offline") != 0 || strcmp(alarm, "relay_fault") != 0) {
        if (!m->alarm)
            m->alarm_since = now_utc();
        m->alarm = alarm;       /* offline says more than a fault that follows from it */
    }
    if (m->state != MACHINE_OFF && !m->session_alarm)
        m->session_alarm = m->alarm;
    emit(m, ev);
}

static void relay_news(struct relay *r, enum relay_news news, void *userdata)
{
    struct machine *m = userdata;

    switch (news) {
    case RELAY_CONFIRMED:
        emit(m, MACHINE_EV_RELAY_CONFIRMED);
        if (m->alarm && !r->offline) {
            m->alarm = NULL;
            emit(m, MACHINE_EV_ALARM_CLEARED);
        }
        break;
    case RELAY_FAULT:
        m->last_error = -ETIMEDOUT;
        alarm_raise(m, "relay_fault", MACHINE_EV_RELAY_FAULT);
        break;
    case RELAY_OFFLINE:
        alarm_raise(m, "device_offline", MACHINE_EV_DEVICE_OFFLINE);
        break;
    case RELAY_ONLINE:
        emit(m, MACHINE_EV_DEVICE_ONLINE);     /* relay.c asks for our state again */
        break;
    case RELAY_DIVERGED:
        emit(m, MACHINE_EV_RELAY_DIVERGED);
        break;
    }
}

bool machine_powered(const struct machine *m)
{
    return m->state != MACHINE_OFF;
}

static void running_account(struct machine *m)
{
    uint64_t now = now_mono_usec();
    if (m->running_since) {
        m->running_seconds += (int64_t)((now - m->running_since) / 1000000u);
        m->running_since = m->running ? now - (now - m->running_since) % 1000000u : 0;
    }
}

int64_t machine_running_seconds(const struct machine *m)
{
    int64_t s = m->running_seconds;
    if (m->running_since)
        s += (int64_t)((now_mono_usec() - m->running_since) / 1000000u);
    return s;
}

/* Arm the one deadline of the current state: the next step of a session, or the end of a
 * handover. 0 or -errno; the callers fail closed (power off) when it cannot be armed. */
static int arm_deadline(struct machine *m, int64_t at_utc)
{
    return timer_arm_at(m->deadline, realtime_usec_for(at_utc));
}

/* The idle timer runs while a session is on and the sensor says idle. It only ends a
 * session early: if it cannot be armed, the session's own deadline still ends it. */
bool machine_senses_running(const struct machine *m)
{
    return m->running_in.is_open || m->cfg->running_power_w > 0;
}

static void idle_update(struct machine *m)
{
    bool want = machine_senses_running(m) && m->cfg->idle_off_minutes > 0 && !m->running &&
                (m->state == MACHINE_ON || m->state == MACHINE_WARNING || m->state == MACHINE_GRACE);
    if (!want) {
        m->idle_until = 0;
        timer_disarm(m->idle);
        return;
    }
    if (!m->idle_until)     /* else: already counting since the machine went idle */
        m->idle_until = now_utc() + m->cfg->idle_off_minutes * 60;
    timer_arm_at(m->idle, realtime_usec_for(m->idle_until));
}

static void set_state(struct machine *m, enum machine_state s)
{
    m->state = s;
    warn_set(m, warn_wanted(m));
    idle_update(m);
}

/* Where the clock puts a session bounded by max_until and hard_until at now, and when to
 * look again (*ret_next). MACHINE_OFF: its power goes off now. */
static enum machine_state session_due(const struct machine *m, int64_t now, int64_t max_until,
                                      int64_t hard_until, int64_t *ret_next)
{
    const int64_t warn_at = max_until - m->cfg->warn_minutes * 60;
    const int64_t off_at = max_until + m->cfg->grace_minutes * 60;

    if (now < warn_at) {
        *ret_next = warn_at;
        return MACHINE_ON;
    }
    if (now < max_until) {
        *ret_next = max_until;
        return MACHINE_WARNING;
    }
    if (now < off_at && now < hard_until) {
        *ret_next = off_at < hard_until ? off_at : hard_until;
        return MACHINE_GRACE;
    }
    if (m->cfg->never_cut_while_running && m->running && now < hard_until) {
        *ret_next = hard_until;
        return MACHINE_OVERRUN;
    }
    return MACHINE_OFF;
}

/* Go to the state the clock says we are in, and arm the next deadline. Power never stays
 * on without its next deadline armed: if it cannot be armed, power goes off ("timer_fault")
 * and the error is returned. */
static int schedule(struct machine *m)
{
    const int64_t now = now_utc();
    enum machine_state due;
    int64_t next;
    int r;

    if (m->state == MACHINE_OFF || m->state == MACHINE_HANDOVER)
        return 0;
    due = session_due(m, now, m->max_until, m->hard_until, &next);
    if (due == MACHINE_OFF) {
        machine_power_off(m, now >= m->hard_until ? "hard_max" : "session_end");
        return 0;
    }
    r = arm_deadline(m, next);
    if (r < 0) {
        machine_power_off(m, "timer_fault");
        return r;
    }
    if (due == MACHINE_ON) {
        set_state(m, MACHINE_ON);
    } else if (m->state != due) {
        set_state(m, due);
        emit(m, due == MACHINE_WARNING ? MACHINE_EV_WARNING
                : due == MACHINE_GRACE ? MACHINE_EV_GRACE : MACHINE_EV_OVERRUN);
    }
    return 0;
}

/* A session is about to start (power on, takeover) with this end: arm its first deadline
 * before anything changes, so that a failure leaves no session behind. */
static int arm_first_deadline(struct machine *m, int64_t max_until)
{
    const int64_t now = now_utc();
    const int64_t hard_until = now + m->cfg->hard_max_minutes * 60;
    int64_t next;

    if (session_due(m, now, max_until < hard_until ? max_until : hard_until, hard_until,
                    &next) == MACHINE_OFF)
        return 0;       /* already over: schedule() powers off */
    return arm_deadline(m, next);
}

static void deadline_due(void *userdata)
{
    struct machine *m = userdata;

    if (m->state == MACHINE_HANDOVER)
        machine_power_off(m, "finished");
    else
        schedule(m);
}

static void idle_due(void *userdata)
{
    struct machine *m = userdata;
    if (!m->running && m->state != MACHINE_OFF)
        machine_power_off(m, "idle");
}

static void running_set(struct machine *m, bool active)
{
    running_account(m);
    m->running = active;
    if (active && m->state != MACHINE_OFF)
        m->running_since = now_mono_usec();
    else
        m->running_since = 0;
    emit(m, MACHINE_EV_RUNNING);
    if (!active && m->state == MACHINE_OVERRUN) {
        machine_power_off(m, "job_done");
        return;
    }
    idle_update(m);
}

static void running_changed(struct input *in, bool active, void *userdata)
{
    running_set(userdata, active);
}

static void power_settled(void *userdata)
{
    struct machine *m = userdata;

    if (!m->power_flip_pending)
        return;
    m->power_flip_pending = false;
    running_set(m, !m->running);
}

void machine_power_reading(struct machine *m, int64_t milliwatts)
{
    bool above;

    m->power_mw = milliwatts;
    if (m->cfg->running_power_w <= 0)
        return;
    above = milliwatts >= m->cfg->running_power_w * 1000;
    if (above == m->running) {
        /* Back where it was before the change settled: nothing happened. */
        m->power_flip_pending = false;
        timer_disarm(m->power_timer);
        return;
    }
    if (m->power_flip_pending)
        return;         /* already counting since it crossed */
    if (m->cfg->running_power_seconds == 0 ||
        timer_arm_in(m->power_timer, (uint64_t)m->cfg->running_power_seconds * 1000000u) < 0) {
        running_set(m, above);
        return;
    }
    m->power_flip_pending = true;
}

static void session_begin(struct machine *m, int64_t member_id, int64_t booking_id,
                          int64_t max_until)
{
    const int64_t now = now_utc();
    m->member_id = member_id;
    m->booking_id = booking_id;
    m->started_at = now;
    m->hard_until = now + m->cfg->hard_max_minutes * 60;
    m->max_until = max_until < m->hard_until ? max_until : m->hard_until;
    m->running_seconds = 0;
    m->running_since = m->running ? now_mono_usec() : 0;
    m->off_reason = NULL;
    m->idle_until = 0;      /* a new member's idle countdown starts afresh */
    m->session_alarm = m->alarm;
}

/* Another member's session on a powered machine: the previous one is closed by the owner on
 * MACHINE_EV_TAKEOVER, from the previous_* fields. */
static int session_take_over(struct machine *m, int64_t member_id, int64_t booking_id,
                             int64_t max_until)
{
    m->previous_member_id = m->member_id;
    m->previous_running_seconds = m->running_seconds;
    m->previous_started_at = m->started_at;
    session_begin(m, member_id, booking_id, max_until);
    m->state = MACHINE_ON;
    emit(m, MACHINE_EV_TAKEOVER);
    return schedule(m);
}

int machine_power_on(struct machine *m, int64_t member_id, int64_t booking_id, int64_t max_until)
{
    int r;

    if (m->state != MACHINE_OFF && m->state != MACHINE_HANDOVER)
        return -EBUSY;
    r = relay_set(m, true);     /* relay first */
    if (r < 0)
        return r;
    r = arm_first_deadline(m, max_until);
    if (r < 0) {
        /* Fail closed: no power without its end armed. */
        if (m->state == MACHINE_HANDOVER)
            machine_power_off(m, "timer_fault");    /* ends the handover window early */
        else
            relay_set(m, false);
        return r;
    }
    if (m->state == MACHINE_HANDOVER)
        return session_take_over(m, member_id, booking_id, max_until);
    session_begin(m, member_id, booking_id, max_until);
    m->state = MACHINE_ON;
    emit(m, MACHINE_EV_ON);
    return schedule(m);
}

int machine_takeover(struct machine *m, int64_t member_id, int64_t booking_id, int64_t max_until)
{
    int r = arm_first_deadline(m, max_until);

    if (r < 0) {
        machine_power_off(m, "timer_fault");
        return r;
    }
    running_account(m);
    return session_take_over(m, member_id, booking_id, max_until);
}

void machine_extend(struct machine *m, int64_t booking_id, int64_t max_until)
{
    if (booking_id)
        m->booking_id = booking_id;
    m->max_until = max_until < m->hard_until ? max_until : m->hard_until;
    m->state = MACHINE_ON;
    emit(m, MACHINE_EV_EXTENDED);
    schedule(m);
}

void machine_finish(struct machine *m)
{
    const int64_t until = now_utc() + m->cfg->handover_seconds;

    /* No handover window without its end armed: off at once, as with handover_seconds 0. */
    if (m->cfg->handover_seconds == 0 || arm_deadline(m, until) < 0) {
        machine_power_off(m, "finished");
        return;
    }
    m->handover_until = until;
    set_state(m, MACHINE_HANDOVER);
    running_account(m);
    emit(m, MACHINE_EV_HANDOVER);
}

void machine_power_off(struct machine *m, const char *reason)
{
    if (m->state == MACHINE_OFF)
        return;
    relay_set(m, false);
    running_account(m);
    m->running_since = 0;
    m->off_reason = reason;
    set_state(m, MACHINE_OFF);
    timer_disarm(m->deadline);
    emit(m, MACHINE_EV_OFF);
}

int machine_init(struct machine *m, const struct machine_config *cfg, sd_event *loop,
                 const struct door_hw *hw, const struct machine_net *net,
                 machine_event_fn on_event, void *userdata, const char **ret_what)
{
    char name[48];
    int r;

    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
    m->loop = loop;
    m->on_event = on_event;
    m->userdata = userdata;
    m->power_mw = -1;
    *ret_what = "timer";
    if ((r = timer_new(loop, CLOCK_REALTIME, 0, deadline_due, m, &m->deadline)) < 0 ||
        (r = timer_set_priority(m->deadline, MACHINE_TIMER_PRIORITY)) < 0 ||
        (r = timer_new(loop, CLOCK_REALTIME, 0, idle_due, m, &m->idle)) < 0 ||
        (r = timer_set_priority(m->idle, MACHINE_TIMER_PRIORITY)) < 0 ||
        (r = timer_new(loop, CLOCK_MONOTONIC, 1000, power_settled, m, &m->power_timer)) < 0 ||
        (r = timer_new(loop, CLOCK_MONOTONIC, 1000, signal_step, m, &m->signal_timer)) < 0)
        goto fail;
    snprintf(name, sizeof(name), "%s.relay", cfg->name);
    *ret_what = "relay";
    if (net && net->ops)
        r = relay_open_backend(&m->relay, net->ops, name, NULL, net->device);
    else
        r = relay_open(&m->relay, hw->relay_ops, name, &cfg->relay);
    if (r < 0)
        goto fail;
    m->relay.notify = relay_news;
    m->relay.notify_userdata = m;
    if (cfg->warn.set) {
        snprintf(name, sizeof(name), "%s.warn", cfg->name);
        *ret_what = "warn";
        r = relay_open(&m->warn, hw->relay_ops, name, &cfg->warn);
        if (r < 0)
            goto fail;
    }
    if (cfg->running.set) {
        *ret_what = "running";
        r = door_hw_input_open(hw, loop, &m->running_in, cfg->name, "running", &cfg->running,
                               running_changed, m);
        if (r < 0)
            goto fail;
        m->running = m->running_in.active;
    }
    return 0;
fail:
    machine_fini(m);
    return r;
}

void machine_fini(struct machine *m)
{
    if (!m)
        return;
    m->deadline = timer_free(m->deadline);
    m->idle = timer_free(m->idle);
    m->power_timer = timer_free(m->power_timer);
    m->signal_timer = timer_free(m->signal_timer);
    m->signal_steps = 0;
    input_close(&m->running_in);
    relay_close(&m->warn);
    relay_close(&m->relay);     /* de-energised: power off */
}

void machine_reconfigure(struct machine *m, const struct machine_config *cfg)
{
    m->cfg = cfg;
    if (m->state != MACHINE_OFF && m->state != MACHINE_HANDOVER)
        schedule(m);
}

void machine_clock_changed(struct machine *m)
{
    if (m->state == MACHINE_OFF)
        return;
    if (m->state == MACHINE_HANDOVER) {
        if (arm_deadline(m, m->handover_until) < 0)
            machine_power_off(m, "finished");
    } else {
        schedule(m);
    }
    if (m->state != MACHINE_OFF)
        idle_update(m);
}

const char *machine_state_to_string(enum machine_state s)
{
    switch (s) {
    case MACHINE_OFF:      return "off";
    case MACHINE_ON:       return "on";
    case MACHINE_WARNING:  return "warning";
    case MACHINE_GRACE:    return "grace";
    case MACHINE_OVERRUN:  return "overrun";
    case MACHINE_HANDOVER: return "handover";
    }
    return "unknown";
}

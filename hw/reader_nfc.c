/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_nfc: a libnfc reader (PN532 on UART/I2C/SPI, ACR122U on USB), supervised.
 *
 * The reader runs in a worker process (portier-reader, see reader_worker.c) that talks to
 * us over a SOCK_SEQPACKET socketpair with fixed-size messages (reader_proto.h). We never
 * block on the reader: its fd, its exit and a heartbeat deadline are sources on the loop.
 * A worker that dies, stops sending heartbeats, reports an error or sends a malformed
 * message is killed and restarted with exponential back-off (0.25 s doubling up to
 * backoff_max_ms), optionally after pulsing the reader's reset line. The other readers
 * and doors never notice. A worker killed by its seccomp sandbox (SIGSYS) is one more such
 * death, logged as an error.
 *
 * The worker debounces a held card; across a restart, we do: a card held when a worker
 * dies is carried over, and the next worker finding the same card within debounce_ms of
 * its HELLO is the same presentation, not a new tap (card_arrived). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "reader.h"
#include "reader_proto.h"
#include "relay.h"
#include "timer.h"
#include "util.h"

#define BACKOFF_MIN_MS 250
#define RESET_PULSE_MS 100
#define STABLE_MS 10000         /* up this long: the back-off starts again from the bottom */
#define WORKER_ENV_MAX 16
#define SANDBOX_KILLED "worker killed by its sandbox: forbidden system call (SIGSYS)"

struct nfc_worker {
    struct reader *r;
    pid_t pid;
    int fd;
    bool stopping;
    bool hello;
    uint32_t last_seq;
    char reason[96];                /* why the current worker failed, once known */
    uint64_t up_since_usec;
    unsigned backoff_ms;
    sd_event_source *io;
    sd_event_source *child;
    struct timer *heartbeat;        /* deadline for the next message */
    struct timer *later;            /* restart back-off */
    struct timer *pulse;            /* end of the reset pulse */
    /* The pending provisioning job: it outlives a worker restart (each new worker is told
     * again, with the time left), as every step of it can be repeated. */
    bool job;
    struct reader_job job_spec;
    uint32_t job_request;
    uint32_t last_request;
    uint64_t job_deadline_usec;
    /* The card held on the reader, as the workers reported it: it outlives the worker that
     * reported it. A new worker cannot know a card was already there, and reports it as a
     * new arrival; we know, and that is no new tap (debounce across restarts). */
    struct reader_event card;       /* uid, atqa, sak, targets; valid while r->holding */
    bool carried;                   /* its worker died holding it; the current one has not
                                     * seen it yet */
    uint64_t card_seen_usec;        /* when the card was last known on the reader. While
                                     * carried, the new worker's HELLO: time without a worker
                                     * polling is not time away */
    struct timer *carry;            /* carried debounce_ms past HELLO: it has left */
};

static int spawn(struct nfc_worker *w);

static uint64_t mono_now(struct nfc_worker *w)
{
    uint64_t now;
    sd_event_now(w->r->loop, CLOCK_MONOTONIC, &now);
    return now;
}

/* Drop the connection to the current worker (it is being killed or has died). */
static void detach(struct nfc_worker *w)
{
    w->io = sd_event_source_disable_unref(w->io);
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    timer_disarm(w->heartbeat);
}

static void kill_worker(struct nfc_worker *w)
{
    if (w->pid > 0)
        kill(w->pid, SIGKILL);      /* libnfc may be stuck in a read: no polite way out */
    detach(w);
}

/* Record why the reader stopped working; the restart follows the child's exit. */
static void fault(struct nfc_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(struct nfc_worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
    va_end(ap);
    kill_worker(w);
}

static void reset_released(void *userdata)
{
    struct nfc_worker *w = userdata;
    relay_write(w->r->params.reset, false);
    spawn(w);
}

static void restart_due(void *userdata)
{
    struct nfc_worker *w = userdata;

    if (w->stopping)
        return;
    if (w->r->params.reset && relay_write(w->r->params.reset, true) == 0) {
        w->r->reset_pulses++;
        /* Hold the reader in reset briefly; spawn once it is released. */
        timer_arm_in(w->pulse, RESET_PULSE_MS * 1000u);
        return;
    }
    spawn(w);
}

static void schedule_restart(struct nfc_worker *w)
{
    struct reader *r = w->r;

    r->health = w->hello ? READER_RESTARTING : READER_FAILED;
    if (!r->failed_since)
        r->failed_since = now_utc();
    r->restarts++;
    /* The reason stays in status until the reader is up again. */
    snprintf(r->last_error, sizeof(r->last_error), "%s", w->reason[0] ? w->reason : "worker stopped");
    /* A sandbox kill is a bug in the worker or something attacking it through the reader:
     * worth more than the warning of an unplugged cable. */
    log_msg(strcmp(w->reason, SANDBOX_KILLED) == 0 ? LOG_ERR : LOG_WARNING,
            "reader %s: %s; restarting in %u ms (restart %" PRIu64 ")", r->name, r->last_error,
            w->backoff_ms, r->restarts);
    timer_arm_in(w->later, (uint64_t)w->backoff_ms * 1000u);
    w->backoff_ms = w->backoff_ms * 2 > r->params.backoff_max_ms ? r->params.backoff_max_ms
                                                                  : w->backoff_ms * 2;
}

/* The carried card is gone after all: say so, as its worker would have. */
static void drop_carried(struct nfc_worker *w)
{
    struct reader_event ev = w->card;

    w->carried = false;
    timer_disarm(w->carry);
    ev.kind = READER_CARD_LEFT;
    reader_deliver(w->r, &ev);
}

static void carry_expired(void *userdata)
{
    struct nfc_worker *w = userdata;

    if (w->carried)
        drop_carried(w);
}

/* A worker reports a card arriving. The card carried over a restart, back within
 * debounce_ms of the new worker's start, is the same presentation: no tap. */
static void card_arrived(struct nfc_worker *w, struct reader_event *ev)
{
    uint64_t now = mono_now(w);

    if (w->carried) {
        if (ev->uid_len == w->card.uid_len && memcmp(ev->uid, w->card.uid, ev->uid_len) == 0 &&
            now - w->card_seen_usec < (uint64_t)w->r->params.debounce_ms * 1000u) {
            w->carried = false;
            timer_disarm(w->carry);
            w->card_seen_usec = now;
            log_info("reader %s: the card held before the worker restarted is still there: "
                     "same presentation, no new tap", w->r->name);
            return;
        }
        drop_carried(w);        /* a different card, or too late: the carried one left */
    }
    w->card = *ev;
    w->card_seen_usec = now;
    reader_deliver(w->r, ev);
}

static void card_left(struct nfc_worker *w, struct reader_event *ev)
{
    /* Only a card this worker reported can leave, which ended any carry already. */
    w->carried = false;
    timer_disarm(w->carry);
    reader_deliver(w->r, ev);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct nfc_worker *w = userdata;

    w->child = sd_event_source_unref(w->child);
    w->pid = 0;
    detach(w);
    /* A card held now is carried until the next worker has looked for it (handle()). Until
     * then r->holding stays as it was: nothing says the card has gone. */
    if (w->r->holding && !w->carried) {
        w->carried = true;
        w->card_seen_usec = mono_now(w);
    }
    timer_disarm(w->carry);
    if (w->stopping)
        return 0;
    /* SIGSYS is the worker's seccomp filter (reader_sandbox.h): a call off its allow-list.
     * It says more than whatever the worker reported before dying of it. */
    if (si->si_code != CLD_EXITED && si->si_status == SIGSYS)
        snprintf(w->reason, sizeof(w->reason), "%s", SANDBOX_KILLED);
    else if (!w->reason[0]) {
        if (si->si_code == CLD_EXITED && si->si_status == 127)
            snprintf(w->reason, sizeof(w->reason), "cannot run the worker program");
        else if (si->si_code == CLD_EXITED)
            snprintf(w->reason, sizeof(w->reason), "worker exited with status %d", si->si_status);
        else
            snprintf(w->reason, sizeof(w->reason), "worker killed by signal %d", si->si_status);
    }
    schedule_restart(w);
    return 0;
}

static void on_silence(void *userdata)
{
    struct nfc_worker *w = userdata;
    fault(w, "no message for %u ms: reader hung", w->r->params.heartbeat_timeout_ms);
}

/* Tell the worker (fd) its keys: always the first command, keys or none. The message
 * holds the master key: wiped as soon as it is sent. 0 or -errno. */
static int send_keys(struct nfc_worker *w, int fd)
{
    const struct reader_desfire_keys *k = w->r->params.desfire;
    struct reader_cmd c = { .version = READER_PROTO_VERSION, .type = READER_CMD_KEYS };
    int ret = 0;

    if (k && k->site) {
        c.flags |= READER_KEYS_SITE;
        memcpy(c.site_key, k->site_key, sizeof(c.site_key));
        if (k->consortium) {
            c.flags |= READER_KEYS_CONSORTIUM;
            memcpy(c.consortium_key, k->consortium_key, sizeof(c.consortium_key));
            c.consortium_gen = k->consortium_gen;
            if (k->consortium_old) {
                c.flags |= READER_KEYS_CONSORTIUM_OLD;
                memcpy(c.consortium_old_key, k->consortium_old_key, sizeof(c.consortium_old_key));
                c.consortium_old_gen = k->consortium_old_gen;
            }
        }
    }
    if (send(fd, &c, sizeof(c), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(c))
        ret = -errno;
    explicit_bzero(&c, sizeof(c));
    return ret;
}

/* Send the pending job to the current worker, with the time it has left. */
static int send_job(struct nfc_worker *w)
{
    struct reader_cmd c = { .version = READER_PROTO_VERSION };
    uint64_t now = mono_now(w);
    int ret = 0;

    if (w->fd < 0)
        return -EAGAIN;
    c.type = (uint8_t)w->job_spec.type;
    c.flags = w->job_spec.consortium ? READER_PROVISION_CONSORTIUM : 0;
    c.picc_key_type = (uint8_t)w->job_spec.picc_type;
    memcpy(c.picc_key, w->job_spec.picc_key, sizeof(c.picc_key));
    c.request = w->job_request;
    c.timeout_ms = now < w->job_deadline_usec ? (uint32_t)((w->job_deadline_usec - now) / 1000u) : 1;
    if (c.timeout_ms == 0)
        c.timeout_ms = 1;
    if (send(w->fd, &c, sizeof(c), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(c))
        ret = -errno;
    explicit_bzero(&c, sizeof(c));
    return ret;
}

static void job_clear(struct nfc_worker *w)
{
    w->job = false;
    explicit_bzero(&w->job_spec, sizeof(w->job_spec));
}

static void handle(struct nfc_worker *w, const struct reader_msg *m)
{
    struct reader *r = w->r;
    struct reader_event ev = { 0 };
    struct reader_job_result res = { 0 };

    switch (m->type) {
    case READER_MSG_HELLO:
        w->hello = true;
        w->up_since_usec = mono_now(w);
        snprintf(r->device, sizeof(r->device), "%.63s", m->text);
        r->health = READER_UP;
        r->last_error[0] = '\0';
        if (r->failed_since)
            log_notice("reader %s: back up (%s) after %" PRIu64 " restarts", r->name, r->device,
                       r->restarts);
        else
            log_info("reader %s: up (%s)", r->name, r->device);
        r->failed_since = 0;
        /* From now on this worker polls: the carried card has debounce_ms to show up. If
         * that cannot be timed, it has left (the card taps again if still there). */
        if (w->carried) {
            w->card_seen_usec = w->up_since_usec;
            if (timer_arm_in(w->carry, (uint64_t)r->params.debounce_ms * 1000u) < 0)
                drop_carried(w);
        }
        break;
    case READER_MSG_ARRIVED:
    case READER_MSG_LEFT:
        ev.kind = m->type == READER_MSG_ARRIVED ? READER_CARD_ARRIVED : READER_CARD_LEFT;
        memcpy(ev.uid, m->uid, m->uid_len);
        ev.uid_len = m->uid_len;
        ev.atqa = m->atqa;
        ev.sak = m->sak;
        ev.targets = m->targets;
        ev.auth = (enum reader_auth)m->auth;
        ev.app = (enum reader_app)m->app;
        ev.key_version = m->key_version;
        snprintf(ev.note, sizeof(ev.note), "%s", m->text);
        if (ev.kind == READER_CARD_ARRIVED)
            card_arrived(w, &ev);
        else
            card_left(w, &ev);
        break;
    case READER_MSG_DONE:
        if (!w->job || m->request != w->job_request)
            break;          /* a cancelled job's late answer */
        res.status = (enum reader_done)m->status;
        if (m->status == READER_DONE_OK)
            memcpy(res.uid, m->uid, READER_DESFIRE_UID_LEN);
        snprintf(res.text, sizeof(res.text), "%s", m->text);
        job_clear(w);
        reader_job_done(r, &res);
        break;
    case READER_MSG_ERROR:
        snprintf(w->reason, sizeof(w->reason), "%s", m->text);
        break;      /* the worker exits next; on_child restarts it */
    case READER_MSG_HEARTBEAT:
        if (w->hello && mono_now(w) - w->up_since_usec > STABLE_MS * 1000ull)
            w->backoff_ms = BACKOFF_MIN_MS;
        break;
    }
}

static int on_message(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct nfc_worker *w = userdata;
    struct reader_msg m;
    const char *bad;
    ssize_t n;

    /* One datagram per call; any more are handled on the next loop pass, so a chatty or
     * broken worker cannot monopolise the loop. */
    n = recv(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        detach(w);      /* worker closed its end: its exit follows */
        return 0;
    }
    bad = reader_msg_check(&m, (long)n);
    if (!bad && w->last_seq && m.seq != w->last_seq + 1)
        bad = "message sequence broken";
    if (bad) {
        fault(w, "malformed message from worker: %s", bad);
        return 0;
    }
    w->last_seq = m.seq;
    timer_arm_in(w->heartbeat, (uint64_t)w->r->params.heartbeat_timeout_ms * 1000u);
    handle(w, &m);
    return 0;
}

static int spawn(struct nfc_worker *w)
{
    struct reader *r = w->r;
    char poll[16], debounce[16];
    char *argv[] = { r->worker_path, r->connstring, poll, debounce, NULL };
    char *envp[WORKER_ENV_MAX + 1];
    unsigned n_env = 0;
    int sv[2], ret, policy;
    struct sched_param sched = { 0 };
    sigset_t all;
    pid_t pid;

    /* The worker's environment: libnfc's own variables only (LIBNFC_LOG_LEVEL to debug a
     * reader, LIBNFC_DEFAULT_DEVICE...), and the sanitizers' options of test builds. libnfc
     * reads LIBNFC_LOG_LEVEL with getenv() at every frame it logs, which costs as much as
     * the environment is long; and the sandboxed worker has no use for the daemon's. */
    for (char **e = environ; *e && n_env < WORKER_ENV_MAX; e++)
        if (strncmp(*e, "LIBNFC_", 7) == 0 || strncmp(*e, "ASAN_", 5) == 0 ||
            strncmp(*e, "UBSAN_", 6) == 0 || strncmp(*e, "LSAN_", 5) == 0)
            envp[n_env++] = *e;
    envp[n_env] = NULL;
    snprintf(poll, sizeof(poll), "%u", r->params.poll_ms);
    snprintf(debounce, sizeof(debounce), "%u", r->params.debounce_ms);
    w->hello = false;
    w->last_seq = 0;
    w->reason[0] = '\0';
    /* The worker is the door path like the loop: it takes real-time priority back (the
     * loop's SCHED_RESET_ON_FORK starts every child at normal priority; base/realtime.h),
     * one below the loop's, so that a worker gone wrong and spinning never holds up the
     * loop, which stops it when its heartbeats stop. */
    policy = sched_getscheduler(0);
    if (policy < 0 || sched_getparam(0, &sched) < 0)
        policy = SCHED_OTHER;
    if (sched.sched_priority > 1)
        sched.sched_priority--;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ret = -errno;
        goto fail;
    }
    pid = fork();
    if (pid < 0) {
        ret = -errno;
        close(sv[0]);
        close(sv[1]);
        goto fail;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);      /* dies with portierd, even on kill -9 */
        if (sv[1] == 3)
            fcntl(3, F_SETFD, 0);
        else if (dup2(sv[1], 3) < 0)
            _exit(127);
        /* Nothing of the daemon's beyond its socket: a descriptor opened by a library
         * without close-on-exec (a broker connection, say) must not outlive exec here. */
        close_range(4, ~0u, 0);
        if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_FIFO)
            (void)sched_setscheduler(0, policy, &sched);
        execve(r->worker_path, argv, envp);
        _exit(127);
    }
    close(sv[1]);
    w->pid = pid;
    w->fd = sv[0];
    /* The worker reads its keys first thing; the socket holds them until then. A job that
     * was pending when the last worker died goes to this one. */
    if ((ret = send_keys(w, w->fd)) < 0 || (w->job && (ret = send_job(w)) < 0)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        w->pid = 0;
        detach(w);
        goto fail;
    }
    r->health = r->health == READER_UP ? READER_RESTARTING : r->health;
    if ((ret = sd_event_add_io(r->loop, &w->io, w->fd, EPOLLIN, on_message, w)) < 0 ||
        (ret = sd_event_add_child(r->loop, &w->child, pid, WEXITED, on_child, w)) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        w->pid = 0;
        detach(w);
        goto fail;
    }
    /* Opening a reader takes a few hundred ms at most; the deadline covers it too. */
    timer_arm_in(w->heartbeat, (uint64_t)r->params.heartbeat_timeout_ms * 1000u);
    return 0;
fail:
    snprintf(w->reason, sizeof(w->reason), "cannot start worker: %s", strerror(-ret));
    schedule_restart(w);
    return ret;
}

static int nfc_start(struct reader *r)
{
    struct nfc_worker *w = calloc(1, sizeof(*w));
    int ret;

    if (!w)
        return -ENOMEM;
    w->r = r;
    w->fd = -1;
    w->backoff_ms = BACKOFF_MIN_MS;
    r->priv = w;
    /* On failure reader_start() calls nfc_stop(), which frees what was created. */
    if ((ret = timer_new(r->loop, CLOCK_MONOTONIC, 1000, on_silence, w, &w->heartbeat)) < 0 ||
        (ret = timer_new(r->loop, CLOCK_MONOTONIC, 1000, restart_due, w, &w->later)) < 0 ||
        (ret = timer_new(r->loop, CLOCK_MONOTONIC, 1000, reset_released, w, &w->pulse)) < 0 ||
        (ret = timer_new(r->loop, CLOCK_MONOTONIC, 1000, carry_expired, w, &w->carry)) < 0)
        return ret;
    if (r->params.backoff_max_ms < BACKOFF_MIN_MS)
        r->params.backoff_max_ms = BACKOFF_MIN_MS;
    if (access(r->worker_path, X_OK) < 0) {
        int err = errno;
        snprintf(r->last_error, sizeof(r->last_error), "worker program %.60s: %s",
                 r->worker_path, strerror(err));
        r->failed_since = now_utc();
        return -err;
    }
    spawn(w);       /* a failure here is retried with back-off, like any other */
    return 0;
}

static void nfc_stop(struct reader *r)
{
    struct nfc_worker *w = r->priv;

    if (!w)
        return;
    w->stopping = true;
    job_clear(w);
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
    }
    detach(w);
    sd_event_source_disable_unref(w->child);
    timer_free(w->heartbeat);
    timer_free(w->later);
    timer_free(w->pulse);
    timer_free(w->carry);
    free(w);
    r->priv = NULL;
}

static int nfc_job_start(struct reader *r, const struct reader_job *job)
{
    struct nfc_worker *w = r->priv;
    int ret;

    if (!r->params.desfire || !r->params.desfire->site)
        return -ENOKEY;
    if (!w || w->fd < 0 || !w->hello)
        return -EAGAIN;
    w->job = true;
    w->job_spec = *job;
    w->job_request = ++w->last_request ? w->last_request : ++w->last_request;
    w->job_deadline_usec = mono_now(w) + (uint64_t)job->timeout_ms * 1000u;
    ret = send_job(w);
    if (ret < 0) {
        job_clear(w);
        return -EIO;
    }
    return 0;
}

static void nfc_job_cancel(struct reader *r)
{
    struct nfc_worker *w = r->priv;
    struct reader_cmd c = { .version = READER_PROTO_VERSION, .type = READER_CMD_CANCEL };

    if (!w || !w->job)
        return;
    c.request = w->job_request;
    if (w->fd >= 0)
        (void)!send(w->fd, &c, sizeof(c), MSG_DONTWAIT | MSG_NOSIGNAL);
    job_clear(w);
}

static int nfc_restart(struct reader *r)
{
    struct nfc_worker *w = r->priv;

    if (w->pid > 0) {
        snprintf(w->reason, sizeof(w->reason), "restart requested");
        w->backoff_ms = BACKOFF_MIN_MS;
        kill_worker(w);         /* on_child schedules the restart */
        return 0;
    }
    /* Waiting in back-off: go now. */
    return timer_arm_in(w->later, 0);
}

const struct reader_ops reader_ops_nfc = {
    .driver = "libnfc",
    .start = nfc_start,
    .stop = nfc_stop,
    .restart = nfc_restart,
    .job_start = nfc_job_start,
    .job_cancel = nfc_job_cancel,
};

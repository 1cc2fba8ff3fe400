/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "command.h"
#include "commit.h"
#include "log.h"
#include "services.h"
#include "timer.h"
#include "util.h"

struct control_conn {
    struct control *ctl;
    struct control_conn *next;
    int fd;
    uid_t uid;
    char who[64];               /* "uid=1000", or what an in-process client says it is */
    sd_event_source *io;
    struct timer *timeout;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_done;
    bool dispatched;            /* the request went to the handler */
    bool replied;
    struct commit_wait durable; /* the reply goes out once what it reports is on disk */
    struct cmd_call *call;      /* while its command is pending */
    bool in_dispatch, doomed;   /* freed once cmd_dispatch() returns */
};

struct control {
    sd_event *loop;
    int fd;
    char path[108];
    sd_event_source *accept_io;
    struct control_conn *conns;
    unsigned n_conns;
    struct services *svc;
};

static void conn_free(struct control_conn *c)
{
    struct control_conn **pp;

    if (!c)
        return;
    for (pp = &c->ctl->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    c->ctl->n_conns--;
    commit_wait_cancel(c->ctl->svc->commit, &c->durable);
    if (c->call) {
        struct cmd_call *call = c->call;
        c->call = NULL;
        cmd_call_cancel(call);      /* the client went away while it waited */
    }
    sd_event_source_disable_unref(c->io);
    timer_free(c->timeout);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* conn_free(), or later if we are inside cmd_dispatch() for it. */
static void conn_release(struct control_conn *c)
{
    if (c->in_dispatch)
        c->doomed = true;
    else
        conn_free(c);
}

static int conn_write(struct control_conn *c)
{
    while (c->out_done < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_done, c->out_len - c->out_done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -errno;
        }
        c->out_done += (size_t)n;
    }
    return 1;   /* all written */
}

static void reply(struct control_conn *c, json_t *reply);

static void cmd_done(struct cmd_call *call, void *ctx)
{
    struct control_conn *c = ctx;

    c->call = NULL;
    reply(c, cmd_call_reply(call));
}

static int take_fd(struct cmd_call *call, void *ctx);

static const struct cmd_transport transport = { .done = cmd_done, .take_fd = take_fd };

static void conn_dispatch(struct control_conn *c, size_t line_len)
{
    struct actor actor = { .role = ROLE_SYSTEM, .channel = CHANNEL_CONTROL };
    struct cmd_call *call;
    json_error_t err;
    json_t *req;

    req = json_loadb(c->in, line_len, JSON_REJECT_DUPLICATES, &err);
    c->dispatched = true;
    if (!req) {
        char msg[300];
        snprintf(msg, sizeof(msg), "request is not valid JSON: %s", err.text);
        reply(c, cmd_error_object("bad_request", msg));
        return;
    }
    /* Whoever may open the socket (its owner, group and mode) runs the site. */
    snprintf(actor.who, sizeof(actor.who), "%s", c->who);
    c->in_dispatch = true;
    call = cmd_dispatch(c->ctl->svc, &actor, req, &transport, c);
    c->in_dispatch = false;
    json_decref(req);
    if (c->doomed) {
        cmd_call_cancel(call);
        conn_free(c);
        return;
    }
    c->call = call;
    if (call)       /* a long command (waiting for a card, say) keeps its own time */
        timer_disarm(c->timeout);
}

static int conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct control_conn *c = userdata;
    char *nl;
    ssize_t n;

    if (c->replied) {
        int r;
        if (c->out_done == c->out_len) {
            /* Reply sent: discard what the client still sends until it closes, so that
             * closing with unread data does not turn into a reset that eats the reply. */
            char sink[4096];
            ssize_t got = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                conn_free(c);
            return 0;
        }
        r = conn_write(c);
        if (r < 0) {
            conn_free(c);   /* the client went away */
        } else if (r > 0) {
            shutdown(c->fd, SHUT_WR);
            sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLRDHUP);
        }
        return 0;
    }
    if (c->dispatched) {
        /* Waiting on a long request: the client may only hang up (one request per
         * connection), and anything else it sends is a protocol error. */
        conn_free(c);
        return 0;
    }
    n = recv(c->fd, c->in + c->in_len, CONTROL_REQUEST_MAX - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        conn_free(c);
        return 0;
    }
    c->in_len += (size_t)n;
    nl = memchr(c->in, '\n', c->in_len);
    if (nl) {
        conn_dispatch(c, (size_t)(nl - c->in));
        return 0;
    }
    if (c->in_len == CONTROL_REQUEST_MAX) {
        char msg[64];
        c->dispatched = true;
        snprintf(msg, sizeof(msg), "request longer than %d bytes", CONTROL_REQUEST_MAX);
        reply(c, cmd_error_object("too_large", msg));
    }
    return 0;
}

static void conn_timeout(void *userdata)
{
    struct control_conn *c = userdata;
    if (!c->dispatched) {
        char msg[64];
        c->dispatched = true;
        snprintf(msg, sizeof(msg), "no complete request within %d seconds",
                 CONTROL_READ_TIMEOUT_SEC);
        reply(c, cmd_error_object("timeout", msg));
    } else if (c->replied) {
        conn_free(c);       /* the client does not read its reply */
    }
}

/* Take cfd (non-blocking) as a new connection; closes it on failure. */
static int conn_add(struct control *ctl, int cfd, uid_t uid, const char *who)
{
    struct control_conn *c;

    c = calloc(1, sizeof(*c));
    if (c)
        c->in = malloc(CONTROL_REQUEST_MAX);
    if (!c || !c->in) {
        if (c)
            free(c);
        close(cfd);
        return -ENOMEM;
    }
    c->ctl = ctl;
    c->fd = cfd;
    c->uid = uid;
    if (who)
        snprintf(c->who, sizeof(c->who), "%s", who);
    else
        snprintf(c->who, sizeof(c->who), "uid=%d", (int)uid);
    c->next = ctl->conns;
    ctl->conns = c;
    ctl->n_conns++;
    if (sd_event_add_io(ctl->loop, &c->io, cfd, EPOLLIN | EPOLLRDHUP, conn_io, c) < 0 ||
        timer_new(ctl->loop, CLOCK_MONOTONIC, 0, conn_timeout, c, &c->timeout) < 0 ||
        timer_arm_in(c->timeout, CONTROL_READ_TIMEOUT_SEC * 1000000ull) < 0) {
        conn_free(c);
        return -ENOMEM;
    }
    return 0;
}

static int control_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct control *ctl = userdata;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (cfd < 0)
        return 0;
    if (ctl->n_conns >= CONTROL_MAX_CLIENTS) {
        static const char busy[] = "{\"ok\":false,\"code\":\"busy\",\"error\":\"too many clients\"}\n";
        (void)!send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(cfd);
        return 0;
    }
    (void)conn_add(ctl, cfd, getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0
                                 ? cred.uid : (uid_t)-1, NULL);
    return 0;
}

static void conn_send(struct control_conn *c)
{
    sd_event_source_set_priority(c->io, CONTROL_PRIORITY_REPLY);
    sd_event_source_set_io_events(c->io, EPOLLOUT);
    sd_event_source_set_enabled(c->io, SD_EVENT_ON);
    /* The client has as long to read its reply as it had to send its request. Arming a
     * created timer on a running loop does not fail. */
    (void)timer_arm_in(c->timeout, CONTROL_READ_TIMEOUT_SEC * 1000000ull);
}

/* Replace the reply by an error: what it reported did not reach the disk. */
static int conn_set_text(struct control_conn *c, const char *text);

static void conn_durable(struct commit_wait *w, int result)
{
    struct control_conn *c = container_of(w, struct control_conn, durable);

    if (result < 0) {
        char msg[200];
        json_t *err;
        char *text;
        snprintf(msg, sizeof(msg), "not recorded: the database could not write it (%s); "
                 "nothing of this request is kept, try again later", strerror(-result));
        err = cmd_error_object("not_recorded", msg);
        text = json_dumps(err, JSON_COMPACT);
        json_decref(err);
        if (!text || conn_set_text(c, text) < 0) {
            free(text);
            conn_release(c);
            return;
        }
        free(text);
    }
    conn_send(c);
}

static int conn_set_text(struct control_conn *c, const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(len + 1);

    if (!out)
        return -ENOMEM;
    memcpy(out, text, len);
    out[len] = '\n';
    free(c->out);
    c->out = out;
    c->out_len = len + 1;
    c->out_done = 0;
    return 0;
}

/* Send reply (stolen) and close once written. */
static void reply(struct control_conn *c, json_t *obj)
{
    char *text;

    if (c->replied) {
        json_decref(obj);
        return;
    }
    c->replied = true;
    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        /* Never leave a client without an answer (jansson refuses invalid UTF-8). */
        text = strdup("{\"ok\":false,\"code\":\"internal\",\"error\":\"the reply could not be encoded\"}");
        if (!text) {
            conn_release(c);
            return;
        }
    }
    if (conn_set_text(c, text) < 0) {
        free(text);
        conn_release(c);
        return;
    }
    free(text);
    /* Written once what it reports is on disk (or turned into an error if it never is). */
    if (commit_wait(c->ctl->svc->commit, &c->durable, conn_durable))
        conn_send(c);
    else {  /* nothing to read or write meanwhile, and no timeout: the disk takes its time */
        sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        timer_disarm(c->timeout);
    }
}






/* Hand the connection to a job process that writes the reply itself: a duplicate of its
 * socket (blocking), and the connection is forgotten. */
static int take_fd(struct cmd_call *call, void *ctx)
{
    struct control_conn *c = ctx;
    int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return -errno;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        close(fd);
        return -errno;
    }
    c->replied = true;      /* the new owner answers */
    c->call = NULL;
    conn_release(c);
    return fd;
}

int control_new(struct services *svc, const char *path, unsigned mode, const char *group,
                struct control **ret)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct control *ctl;
    int r;

    if (strlcpy_checked(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
        return -ENAMETOOLONG;
    ctl = calloc(1, sizeof(*ctl));
    if (!ctl)
        return -ENOMEM;
    ctl->loop = svc->loop;
    ctl->svc = svc;
    strlcpy_checked(ctl->path, path, sizeof(ctl->path));
    ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (ctl->fd < 0) {
        r = -errno;
        goto fail;
    }
    (void)unlink(path);     /* a stale socket from a previous run */
    if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(path, mode) < 0) {
        r = -errno;
        goto fail;
    }
    if (group && *group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            r = -ENOENT;
            goto fail;
        }
        if (chown(path, (uid_t)-1, gr->gr_gid) < 0) {
            r = -errno;
            goto fail;
        }
    }
    if (listen(ctl->fd, 16) < 0) {
        r = -errno;
        goto fail;
    }
    r = sd_event_add_io(ctl->loop, &ctl->accept_io, ctl->fd, EPOLLIN, control_accept, ctl);
    if (r < 0)
        goto fail;
    *ret = ctl;
    return 0;
fail:
    control_free(ctl);
    return r;
}

struct control *control_free(struct control *ctl)
{
    if (!ctl)
        return NULL;
    while (ctl->conns)
        conn_free(ctl->conns);
    sd_event_source_disable_unref(ctl->accept_io);
    if (ctl->fd >= 0) {
        close(ctl->fd);
        unlink(ctl->path);
    }
    free(ctl);
    return NULL;
}

/* control: the unix socket where portierctl talks to the daemon.
 *
 * One request per connection: a JSON object on one line (at most CONTROL_REQUEST_MAX
 * bytes), answered by one JSON object on one line, then the daemon closes. A reply is
 * written only once what it reports is on disk (commit.h), so a client is only told "done"
 * when it is; if the disk refuses it, the client is told that instead ("not_recorded"). Who may connect is decided by the socket's owner,
 * group and mode (from the config). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#define CONTROL_REQUEST_MAX 16384
#define CONTROL_MAX_CLIENTS 32
#define CONTROL_MAX_ADOPTED 32      /* in-process clients (the web server) */
#define CONTROL_READ_TIMEOUT_SEC 10
#define CONTROL_PRIORITY_REPLY 20

struct control;
struct control_conn;

/* Called with each well-formed request. The handler must eventually call control_reply()
 * exactly once (now, or later for a long request), unless the connection goes away first,
 * which it hears through the gone callback. req is borrowed. */
typedef void (*control_request_fn)(struct control_conn *c, json_t *req, void *userdata);
typedef void (*control_gone_fn)(struct control_conn *c, void *userdata);

/* Listen on path (replacing a stale socket file), with mode and, if group is not empty,
 * that group. 0 or -errno. */
int control_new(sd_event *loop, const char *path, unsigned mode, const char *group,
                control_request_fn on_request, void *userdata, struct control **ret);
struct control *control_free(struct control *ctl);
/* Replies wait until what they report is durable (see commit.h). Without it (tests that
 * embed the control server), they go out at once. */
struct commit;
void control_set_commit(struct control *ctl, struct commit *commit);

/* Send reply (the reference is stolen) and close once written. */
void control_reply(struct control_conn *c, json_t *reply);
/* {"ok": false, "code": code, "error": message}. */
void control_reply_error(struct control_conn *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The error object control_reply_error() sends: msg is copied and made valid UTF-8. */
json_t *control_error_object(const char *code, const char *msg);
/* {"ok": true} merged with fields (stolen, may be NULL). */
void control_reply_ok(struct control_conn *c, json_t *fields);

void control_conn_on_gone(struct control_conn *c, control_gone_fn fn, void *userdata);
/* Hand the connection over to someone else (a child process that will write the reply):
 * returns a duplicate of its socket (O_CLOEXEC, blocking) and forgets the connection.
 * -errno on failure (c is then still ours to reply to). */
int control_conn_take_fd(struct control_conn *c);
uid_t control_conn_uid(const struct control_conn *c);
/* Who is asking, for logs and records: "uid=1000" for a socket client, or the name an
 * in-process client gave (e.g. "web:alice"). Valid while c is. */
const char *control_conn_who(const struct control_conn *c);

/* An in-process client: fd (non-blocking, CLOEXEC; ours from now on) is one end of a
 * socketpair on which the caller writes one request line and reads one reply, exactly like
 * a socket client, but known as who (at most 63 bytes). It may only be used by code that
 * has already authorised the requests it sends. 0, or -errno (fd is then closed). */
int control_adopt(struct control *ctl, int fd, const char *who);

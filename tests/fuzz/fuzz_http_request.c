/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_http_request: raw HTTP requests to the web server of a whole portierd, as the server
 * sees them.
 *
 * At the first input the harness makes a site in a temporary directory (a door, a machine,
 * a member and accounts with known credentials), starts it with daemon_new() — the real
 * wiring: store, commit thread, site, fablab, control socket, and web/http.c listening on
 * 127.0.0.1 — and keeps it for every input. Each input is written as it is on a new TCP
 * connection, which is half-closed once the server has read it all, and the daemon's loop
 * runs until the answer is complete or the server closes. So everything the web layer does on top of libmicrohttpd is
 * driven by fuzzed bytes: the request target and its routing (pages, API, feeds, assets),
 * query arguments, cookies (the session, the login form's pre-session cookie), the
 * Authorization header, Accept-Language, Host (links), If-None-Match, Content-Type and
 * Content-Length, form and JSON bodies, the CSRF token, and what the commands then do.
 *
 * Credentials the fuzzer can use (in the seeds and the dictionary): a manager's API token
 * (Authorization: Bearer), a member's and a manager's session cookies with their CSRF tokens,
 * a custodian's API token, a member's calendar token and a one-time welcome link. State
 * carries over from input to input (members added, bookings made), as in a running site.
 *
 * FUZZ_HTTP_LOG_LEVEL=debug shows the daemon's log (every request with its status).
 *
 * The contract: the server never crashes (ASan, UBSan); after a request it did not answer
 * within 3 s (an enrolment waits for a card) it still answers a health check; and what it
 * sends starts with a well-formed status line whose status is not a server error: 5xx
 * only as 503 (busy, not recorded) or libmicrohttpd's own 505 for an HTTP version it does
 * not speak (docs/http-api.md promises no other). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "config.h"
#include "daemon.h"
#include "fuzz.h"
#include "store.h"
#include "util.h"

#define FUZZ_REQUEST_MAX (96 * 1024)        /* beyond [http] max_body_kib's default */
#define ANSWER_MAX (4 * 1024 * 1024)
#define PENDING_USEC (3 * 1000000ull)       /* then the client gives up waiting */
#define DEADLINE_USEC (8 * 1000000ull)      /* for the server to answer a health check */

/* 43 base64url characters: what account_token_hash() takes. */
#define TOKEN_MANAGER_API   "fuzz-manager-api-token-00000000000000000000"
#define TOKEN_CUSTODIAN_API "fuzz-custodian-api-token-000000000000000000"
#define TOKEN_MEMBER_COOKIE "fuzz-member-session-cookie-0000000000000000"
#define TOKEN_MEMBER_CSRF   "fuzz-member-csrf-token-00000000000000000000"
#define TOKEN_MANAGER_COOKIE "fuzz-manager-session-cookie-000000000000000"
#define TOKEN_MANAGER_CSRF  "fuzz-manager-csrf-token-0000000000000000000"
#define TOKEN_CALENDAR      "fuzz-member-calendar-token-0000000000000000"
#define TOKEN_WELCOME       "fuzz-welcome-link-token-0000000000000000000"

_Static_assert(sizeof(TOKEN_MANAGER_API) == 44 && sizeof(TOKEN_CUSTODIAN_API) == 44 &&
               sizeof(TOKEN_MEMBER_COOKIE) == 44 && sizeof(TOKEN_MEMBER_CSRF) == 44 &&
               sizeof(TOKEN_MANAGER_COOKIE) == 44 && sizeof(TOKEN_MANAGER_CSRF) == 44 &&
               sizeof(TOKEN_CALENDAR) == 44 && sizeof(TOKEN_WELCOME) == 44,
               "tokens are 43 characters");

static struct daemon *site;
static sd_event *loop;
static struct sockaddr_in server;
static char dir[64];

static _Noreturn void die(const char *what, int r)
{
    fprintf(stderr, "fuzz_http_request: %s: %s\n", what, strerror(r < 0 ? -r : r));
    abort();
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("a free port", errno);
    close(fd);
    return ntohs(a.sin_port);
}

static void token(struct store *s, const char *text, int64_t account, const char *kind)
{
    uint8_t hash[STORE_HASH_LEN];
    int64_t now = now_utc();
    int r;

    if (!account_token_hash(text, hash))
        die("token shape", EINVAL);
    r = store_account_token_add(s, hash, account, kind, "fuzz", now, now + 3650 * 86400);
    if (r < 0)
        die("token", r);
}

static void session(struct store *s, const char *cookie, const char *csrf, int64_t account)
{
    uint8_t hash[STORE_HASH_LEN];
    int64_t now = now_utc();
    int r;

    if (!account_token_hash(cookie, hash))
        die("cookie shape", EINVAL);
    r = store_websession_add(s, hash, account, csrf, now, now + 3650 * 86400);
    if (r < 0)
        die("session", r);
}

/* The site's database before the daemon opens it: a member, accounts and credentials. */
static void populate(const char *config_path)
{
    struct config *cfg = NULL;
    struct config_errors errors;
    struct store *s = NULL;
    char db[512];
    int64_t plan, alice, bob, member_acct, manager_acct, custodian_acct, newcomer_acct, training;
    uint8_t calendar[STORE_HASH_LEN];
    int r;

    r = config_load(config_path, &cfg, &errors);
    if (r < 0) {
        for (unsigned i = 0; i < errors.count && i < CONFIG_MAX_ERRORS; i++)
            fprintf(stderr, "%s\n", errors.msg[i]);
        die("config", r);
    }
    config_database_path(cfg, db, sizeof(db));
    if (mkdir(cfg->daemon.state_dir, 0700) < 0 && errno != EEXIST)
        die("state_dir", errno);
    if ((r = store_open(db, &s)) < 0 ||
        (r = store_plan_add(s, "member", "*", "always", &plan)) < 0 ||
        (r = store_member_add(s, "Alice Martin", "alice@example.org", plan, 0, 0, &alice)) < 0 ||
        (r = store_member_add(s, "Bob", NULL, plan, 0, 0, &bob)) < 0 ||
        (r = store_training_add(s, "laser", "Laser cutter", &training)) < 0 ||
        (r = store_account_add(s, "alice", "member", alice, "fuzz", &member_acct)) < 0 ||
        (r = store_account_add(s, "boss", "manager", 0, "fuzz", &manager_acct)) < 0 ||
        (r = store_account_add(s, "auditor", "custodian", 0, "fuzz", &custodian_acct)) < 0 ||
        (r = store_account_add(s, "bob", "member", bob, "fuzz", &newcomer_acct)) < 0 ||
        (r = account_token_hash(TOKEN_CALENDAR, calendar) ? 0 : -EINVAL) < 0 ||
        (r = store_account_set_calendar(s, member_acct, calendar)) < 0)
        die("populate", r);
    token(s, TOKEN_MANAGER_API, manager_acct, "api");
    token(s, TOKEN_CUSTODIAN_API, custodian_acct, "api");
    token(s, TOKEN_WELCOME, newcomer_acct, "invite");
    session(s, TOKEN_MEMBER_COOKIE, TOKEN_MEMBER_CSRF, member_acct);
    session(s, TOKEN_MANAGER_COOKIE, TOKEN_MANAGER_CSRF, manager_acct);
    if ((r = store_commit(s)) < 0)
        die("commit", r);
    store_free(s);
    config_free(cfg);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* At exit (the end of a fuzzing run, each replayed input): stop the daemon, remove its
 * directory. */
static void teardown(void)
{
    site = daemon_free(site);
    loop = sd_event_unref(loop);
    if (dir[0])
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run what is ready on the loop, a bounded number of times. */
static void run_ready(void)
{
    for (int i = 0; i < 1000 && sd_event_run(loop, 0) > 0; i++)
        ;
}

/* Run the loop until it has nothing left to do at once: libmicrohttpd has read all it was
 * sent and done what it could with it. */
static void run_until_idle(void)
{
    struct pollfd p = { .fd = sd_event_get_fd(loop), .events = POLLIN };

    for (int i = 0; i < 1000; i++) {
        run_ready();
        if (poll(&p, 1, 0) <= 0)
            return;
    }
}

static void setup(void)
{
    char path[128];
    FILE *f;
    int port, r;

    if (site)
        return;
    if (sodium_init() < 0)
        abort();
    snprintf(dir, sizeof(dir), "%s/portier-fuzz-http-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", errno);
    atexit(teardown);
    port = free_port();
    snprintf(path, sizeof(path), "%s/portier.conf", dir);
    f = fopen(path, "w");
    if (!f)
        die(path, errno);
    fprintf(f,
            "[site]\nid = fuzz\nname = Fuzz Lab\ntimezone = Europe/Paris\n\n"
            /* a fuzzer, not a door: normal priority */
            "[daemon]\nstate_dir = %s/state\ncontrol_socket = %s/ctl.sock\nlog_level = %s\n"
            "realtime_priority = 0\n\n"
            "[hardware]\nbackend = sim\ndebounce_ms = 0\nsim_state_dir = %s/relays\n\n"
            "[http]\nlisten = 127.0.0.1:%d\nmax_body_kib = 64\n\n"
            "[spaceapi]\nemail = hello@example.org\nlat = 48.8686\nlon = 2.3522\n\n"
            "[reader front]\ndriver = sim\n\n[reader laser]\ndriver = sim\n\n"
            "[door front]\nreader = front\nrelay = 17\ncontact = 27\n\n"
            "[machine laser]\nreader = laser\nrelay = 24\n",
            dir, dir, getenv("FUZZ_HTTP_LOG_LEVEL") ?: "error", dir, port);
    fclose(f);
    populate(path);
    /* The daemon's jobs (usage statements, ledger checks) run `portierd --job`, not this. */
    setenv("PORTIER_JOB_PROGRAM", PORTIERD_PATH, 0);
    r = daemon_new(path, &site);
    if (r < 0)
        die("daemon_new", r);
    /* daemon_new() made its loop the thread's default one. */
    if ((r = sd_event_default(&loop)) < 0)
        die("sd_event_default", r);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Let the first minute tick and the rest of the start-up run. */
    for (int i = 0; i < 20; i++)
        sd_event_run(loop, 1000);
}

/* Run the daemon's loop until fd is ready for events or timeout_usec passed. */
static void run_until(int fd, short events, uint64_t timeout_usec)
{
    struct pollfd p[2] = { { .fd = fd, .events = events },
                           { .fd = sd_event_get_fd(loop), .events = POLLIN } };

    run_ready();
    if (poll(p, 2, (int)(timeout_usec / 1000)) > 0 && p[1].revents)
        sd_event_run(loop, 0);
}

static bool allowed_status(unsigned status)
{
    return (status >= 100 && status < 500) || status == 503 || status == 505;
}

/* The status of the response at a[0..len), 0 if that is not a status line. */
static unsigned status_of(const char *a, size_t len)
{
    char digits[4];

    if (len < 13 || (memcmp(a, "HTTP/1.1 ", 9) != 0 && memcmp(a, "HTTP/1.0 ", 9) != 0) ||
        a[12] != ' ')
        return 0;
    memcpy(digits, a + 9, 3);
    digits[3] = '\0';
    return (unsigned)strtoul(digits, NULL, 10);
}

/* Where the first final response (after any "100 Continue") starts in a[0..len), and
 * whether it is all there: libmicrohttpd keeps a connection open after answering, even one
 * the client half-closed, so the harness stops reading once the answer is complete.
 * head: the request was a HEAD (a Content-Length, no body). */
static bool answer_complete(const char *a, size_t len, bool head, size_t *ret_start)
{
    size_t pos = 0;

    for (;;) {
        const char *end = memmem(a + pos, len - pos, "\r\n\r\n", 4), *cl;
        unsigned status = status_of(a + pos, len - pos);
        size_t body;

        *ret_start = pos;
        if (!end)
            return false;
        if (status == 0)
            return true;            /* not HTTP: check_answer() says so */
        body = (size_t)(end + 4 - a);
        if (status == 100) {
            pos = body;
            continue;
        }
        if (head || status < 200 || status == 204 || status == 304)
            return true;
        if (memmem(a + pos, body - pos, "\r\nTransfer-Encoding: chunked\r\n", 31))
            return (len - body >= 5 && memcmp(a + body, "0\r\n\r\n", 5) == 0) ||
                   memmem(a + body, len - body, "\r\n0\r\n\r\n", 7) != NULL;
        cl = memmem(a + pos, body - pos, "\r\nContent-Length: ", 18);
        return cl && len - body >= strtoul(cl + 18, NULL, 10);
    }
}

/* The first final response has a status line, and its status is not a server error. */
static void check_answer(const char *a, size_t len, size_t start)
{
    unsigned status;

    if (len == 0 || start == len)
        return;             /* an incomplete request, dropped (maybe after "100 Continue") */
    status = status_of(a + start, len - start);
    if (!status || !allowed_status(status))
        fprintf(stderr, "answer (%zu bytes): %.*s\n", len - start,
                (int)(len - start < 600 ? len - start : 600), a + start);
    FUZZ_CHECK_MSG(status != 0, "the answer does not start with a status line");
    if (!allowed_status(status)) {
        FUZZ_CHECK_MSG(0, "a server error (5xx other than 503 and 505)");
    }
}

/* Send data on a new connection, half-close it, and read until the answer is complete, the
 * server closes, or timeout_usec passed. The answer (NUL terminated) goes to answer, where
 * its final response starts to *ret_start. Returns false on a timeout. */
static bool exchange(const uint8_t *data, size_t size, uint64_t timeout_usec, char *answer,
                     size_t answer_n, size_t *ret_got, size_t *ret_start)
{
    struct linger hard = { .l_onoff = 1, .l_linger = 0 };
    size_t sent = 0, got = 0, skip = 0;
    uint64_t start = now_mono_usec();
    bool head, done = true;
    int fd;

    /* libmicrohttpd skips empty lines before a request line. */
    while (skip < size && (data[skip] == '\r' || data[skip] == '\n'))
        skip++;
    head = size - skip >= 5 && memcmp(data + skip, "HEAD ", 5) == 0;
    *ret_start = 0;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket", errno);
    if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0 && errno != EINPROGRESS)
        die("connect", errno);
    /* Send it all, then say it is all: libmicrohttpd drops an incomplete request then, and
     * closes the connection after answering a complete one. */
    while (sent < size && done) {
        ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN)
            break;          /* the server closed already: what it answered still counts */
        done = now_mono_usec() - start < timeout_usec;
        run_until(fd, POLLOUT, 10000);
    }
    /* Only then the end of the request: libmicrohttpd reads until a short read and waits for
     * the next edge (it runs edge-triggered epoll), so an end of stream that came with the
     * data would go unseen and an incomplete request would wait for its timeout. */
    run_until_idle();
    shutdown(fd, SHUT_WR);
    while (done && !answer_complete(answer, got, head, ret_start)) {
        ssize_t n = recv(fd, answer + got, answer_n - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            FUZZ_CHECK_MSG(got < answer_n - 1, "an answer of more than 4 MiB");
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break;          /* closed (or reset) by the server */
        done = now_mono_usec() - start < timeout_usec;
        run_until(fd, POLLIN, 10000);
    }
    /* Close with a reset: no TIME_WAIT left behind, thousands of times a second. */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    close(fd);
    /* Whatever the server still does with the connection (its end of the close). */
    run_ready();
    answer[got] = '\0';
    *ret_got = got;
    return done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    static char answer[ANSWER_MAX];
    size_t got = 0, start = 0;

    if (size > FUZZ_REQUEST_MAX)
        return 0;
    setup();
    if (exchange(data, size, PENDING_USEC, answer, sizeof(answer), &got, &start)) {
        check_answer(answer, got, start);
        return 0;
    }
    /* No answer yet: a command that waits (an enrolment waits for a card) or a password
     * check, legitimately; the client gives up. The server must still serve others. */
    FUZZ_CHECK_MSG(exchange((const uint8_t *)probe, sizeof(probe) - 1, DEADLINE_USEC, answer,
                            sizeof(answer), &got, &start) && got > 0,
                   "after a request left waiting, the server no longer answers");
    check_answer(answer, got, start);
    return 0;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "transport.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "priorities.h"
#include "realtime.h"
#include "util.h"
#include "wakeup.h"

#define POLL_MS 1000
#define CONNECT_TIMEOUT_MS 10000L
#define RESPONSE_MAX (64 * 1024)    /* of a webhook receiver's answer, read and dropped */

/* The functions used, looked up once (the OpenSSL build first: transport.h says why). */
#define CURL_FUNCTIONS(X) \
    X(global_init) X(global_cleanup) X(easy_init) X(easy_cleanup) X(easy_setopt) \
    X(easy_getinfo) X(easy_strerror) X(multi_init) X(multi_cleanup) X(multi_add_handle) \
    X(multi_remove_handle) X(multi_perform) X(multi_poll) X(multi_wakeup) \
    X(multi_info_read) X(slist_append) X(slist_free_all)

static struct {
#define CURL_DECLARE(name) __typeof__(curl_##name) *name;
    CURL_FUNCTIONS(CURL_DECLARE)
#undef CURL_DECLARE
} cu;

static int library_load(void)
{
    static const char *const names[] = { "libcurl.so.4", "libcurl-gnutls.so.4" };
    static void *handle;

    if (handle)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(names) && !handle; i++)
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        log_error("delivery: cannot load libcurl (the libcurl4 package): %s", dlerror());
        return -ENOENT;
    }
#define CURL_LOAD(name) \
    if (!(cu.name = (__typeof__(cu.name))dlsym(handle, "curl_" #name))) { \
        log_error("delivery: libcurl lacks curl_" #name " (7.68 or later is needed)"); \
        dlclose(handle); \
        handle = NULL; \
        return -ENOSYS; \
    }
    CURL_FUNCTIONS(CURL_LOAD)
#undef CURL_LOAD
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("delivery: libcurl cannot start");
        return -EIO;
    }
    return 0;
}

/* A request and what it becomes on the thread; owns copies of the request's strings. */
struct job {
    struct job *next;
    struct transport_request req;
    char *strings;                  /* one block holding every copied string */
    size_t strings_len;
    size_t sent;                    /* SMTP: bytes of body handed to libcurl */
    size_t received;
    CURL *easy;
    struct curl_slist *list;        /* headers or recipients */
    char errbuf[CURL_ERROR_SIZE];
    uint64_t submitted_usec;
    struct transport_result result;
};

struct transport {
    struct wakeup *results_wakeup;  /* the thread's: jobs finished */
    transport_done_fn done;
    void *userdata;
    unsigned pending;               /* the loop's count */

    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    bool stop;
    CURLM *multi;                   /* created before the thread starts, used by it only */
    struct job *incoming, *finished;
};

/* ---- copies ---- */

static size_t strings_size(const struct transport_request *r)
{
    size_t n = r->body_len + 1;
    const char *fields[] = { r->url, r->ca_file, r->username, r->password, r->mail_from,
                             r->rcpt_to };
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
        n += fields[i] ? strlen(fields[i]) + 1 : 0;
    for (const char *const *h = r->headers; h && *h; h++)
        n += strlen(*h) + 1 + sizeof(char *);
    return n + sizeof(char *) * 2;
}

static const char *copy(char **at, const char *s)
{
    size_t n;
    char *out;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    out = *at;
    memcpy(out, s, n);
    *at += n;
    return out;
}

static struct job *job_new(const struct transport_request *req)
{
    struct job *j = calloc(1, sizeof(*j));
    size_t n_headers = 0;
    char *at;

    if (!j)
        return NULL;
    j->strings_len = strings_size(req);
    j->strings = malloc(j->strings_len);
    if (!j->strings) {
        free(j);
        return NULL;
    }
    j->req = *req;
    at = j->strings;
    /* The header pointers first (aligned: the block starts with them). */
    for (const char *const *h = req->headers; h && *h; h++)
        n_headers++;
    if (req->headers) {
        const char **list = (const char **)(void *)at;
        at += sizeof(char *) * (n_headers + 1);
        for (size_t i = 0; i < n_headers; i++)
            list[i] = copy(&at, req->headers[i]);
        list[n_headers] = NULL;
        j->req.headers = list;
    }
    j->req.url = copy(&at, req->url);
    j->req.ca_file = copy(&at, req->ca_file);
    j->req.username = copy(&at, req->username);
    j->req.password = copy(&at, req->password);
    j->req.mail_from = copy(&at, req->mail_from);
    j->req.rcpt_to = copy(&at, req->rcpt_to);
    memcpy(at, req->body ? req->body : "", req->body_len);
    at[req->body_len] = '\0';
    j->req.body = at;
    j->result.tag = req->tag;
    j->submitted_usec = now_mono_usec();
    return j;
}

/* A list of jobs in the other order (the thread's lists are stacks: newest first). */
static struct job *jobs_reversed(struct job *list)
{
    struct job *reversed = NULL;

    while (list) {
        struct job *j = list;
        list = j->next;
        j->next = reversed;
        reversed = j;
    }
    return reversed;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->list)
        cu.slist_free_all(j->list);
    if (j->strings) {
        /* The password and the body (a one-time link) do not linger in freed memory. */
        explicit_bzero(j->strings, j->strings_len);
        free(j->strings);
    }
    free(j);
}

/* ---- the thread ---- */

static size_t read_body(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct job *j = userdata;
    size_t left = j->req.body_len - j->sent, n = size * nitems;

    if (n > left)
        n = left;
    memcpy(buf, j->req.body + j->sent, n);
    j->sent += n;
    return n;
}

static size_t drop_response(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct job *j = userdata;

    j->received += size * nitems;
    return j->received > RESPONSE_MAX ? 0 : size * nitems;     /* 0: stop reading */
}

static void set_error(struct job *j, const char *text)
{
    size_t n = strnlen(text, sizeof(j->result.error) - 1);
    memcpy(j->result.error, text, n);
    j->result.error[n] = '\0';
}

/* Set the transfer up; false (with the result's error) if it cannot be. */
static bool job_start(struct job *j, CURLM *multi)
{
    const struct transport_request *r = &j->req;
    CURL *e = cu.easy_init();
    long timeout = r->timeout_ms > 0 ? r->timeout_ms : 30000L;

    if (!e) {
        set_error(j, "out of memory");
        return false;
    }
    j->easy = e;
    cu.easy_setopt(e, CURLOPT_PRIVATE, (void *)j);
    cu.easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    cu.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(e, CURLOPT_URL, r->url);
    cu.easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    cu.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS);
    if (r->ca_file && *r->ca_file) {
        /* That CA alone: not the system's store too (parsed again for every connection). */
        cu.easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
        cu.easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
    }
    if (r->kind == TRANSPORT_SMTP) {
        if (cu.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK) {
            set_error(j, "this libcurl cannot restrict protocols (7.85 or later needed)");
            return false;
        }
        cu.easy_setopt(e, CURLOPT_USE_SSL, (long)(r->require_tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
        if (r->username && *r->username) {
            cu.easy_setopt(e, CURLOPT_USERNAME, r->username);
            cu.easy_setopt(e, CURLOPT_PASSWORD, r->password ? r->password : "");
        }
        char from[MIME_ADDR_MAX + 3], to[MIME_ADDR_MAX + 3];
        snprintf(from, sizeof(from), "<%s>", r->mail_from);
        snprintf(to, sizeof(to), "<%s>", r->rcpt_to);
        cu.easy_setopt(e, CURLOPT_MAIL_FROM, from);
        j->list = cu.slist_append(NULL, to);
        if (!j->list) {
            set_error(j, "out of memory");
            return false;
        }
        cu.easy_setopt(e, CURLOPT_MAIL_RCPT, j->list);
        cu.easy_setopt(e, CURLOPT_READFUNCTION, read_body);
        cu.easy_setopt(e, CURLOPT_READDATA, (void *)j);
        cu.easy_setopt(e, CURLOPT_UPLOAD, 1L);
        cu.easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else {
        if (cu.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
            set_error(j, "this libcurl cannot restrict protocols (7.85 or later needed)");
            return false;
        }
        for (const char *const *h = r->headers; h && *h; h++) {
            struct curl_slist *l = cu.slist_append(j->list, *h);
            if (!l) {
                set_error(j, "out of memory");
                return false;
            }
            j->list = l;
        }
        cu.easy_setopt(e, CURLOPT_HTTPHEADER, j->list);
        cu.easy_setopt(e, CURLOPT_POST, 1L);
        cu.easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        cu.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        cu.easy_setopt(e, CURLOPT_USERAGENT, "portier/" PORTIER_VERSION);
        cu.easy_setopt(e, CURLOPT_WRITEFUNCTION, drop_response);
        cu.easy_setopt(e, CURLOPT_WRITEDATA, (void *)j);
    }
    if (cu.multi_add_handle(multi, e) != CURLM_OK) {
        set_error(j, "cannot start the transfer");
        return false;
    }
    return true;
}

static void job_finish(struct transport *t, struct job *j, CURLcode rc)
{
    long code = 0;

    if (j->easy) {
        cu.easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
        cu.multi_remove_handle(t->multi, j->easy);
        cu.easy_cleanup(j->easy);
        j->easy = NULL;
    }
    j->result.code = code;
    j->result.answered = code > 0;
    if (rc != CURLE_OK && !j->result.error[0])
        set_error(j, j->errbuf[0] ? j->errbuf : cu.easy_strerror(rc));
    if (rc == CURLE_OK && j->req.kind == TRANSPORT_HTTP_POST && (code < 200 || code > 299))
        snprintf(j->result.error, sizeof(j->result.error), "HTTP status %ld", code);
    j->result.usec = now_mono_usec() - j->submitted_usec;
    pthread_mutex_lock(&t->lock);
    j->next = t->finished;
    t->finished = j;
    pthread_mutex_unlock(&t->lock);
    wakeup_signal(t->results_wakeup);
}

static void *transport_main(void *arg)
{
    struct transport *t = arg;
    struct job *running = NULL;     /* transfers added to the multi handle */
    sigset_t pipe;

    /* A server that hangs up mid-write must not end the daemon: libcurl sends with
     * MSG_NOSIGNAL, and this thread blocks SIGPIPE besides (the write then fails EPIPE). */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);

    for (;;) {
        struct job *todo;
        CURLMsg *msg;
        int still, left;

        pthread_mutex_lock(&t->lock);
        todo = t->incoming;
        t->incoming = NULL;
        bool stop = t->stop;
        pthread_mutex_unlock(&t->lock);
        if (stop) {
            while (todo) {
                struct job *j = todo;
                todo = j->next;
                job_free(j);
            }
            break;
        }
        /* Oldest first: incoming is a stack. */
        struct job *ordered = jobs_reversed(todo);
        while (ordered) {
            struct job *j = ordered;
            ordered = j->next;
            if (job_start(j, t->multi)) {
                j->next = running;
                running = j;
            } else {
                job_finish(t, j, CURLE_FAILED_INIT);
            }
        }
        cu.multi_perform(t->multi, &still);
        while ((msg = cu.multi_info_read(t->multi, &left))) {
            struct job *j = NULL, **pp;
            if (msg->msg != CURLMSG_DONE)
                continue;
            cu.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            for (pp = &running; *pp && *pp != j; pp = &(*pp)->next)
                ;
            if (*pp)
                *pp = j->next;
            job_finish(t, j, msg->data.result);
        }
        cu.multi_poll(t->multi, NULL, 0, POLL_MS, NULL);
    }
    while (running) {
        struct job *j = running;
        running = j->next;
        cu.multi_remove_handle(t->multi, j->easy);
        cu.easy_cleanup(j->easy);
        job_free(j);
    }
    return NULL;
}

/* ---- the loop's side ---- */

static void on_results(void *userdata)
{
    struct transport *t = userdata;
    struct job *done, *ordered;

    pthread_mutex_lock(&t->lock);
    done = t->finished;
    t->finished = NULL;
    pthread_mutex_unlock(&t->lock);
    ordered = jobs_reversed(done);        /* finished is a stack too */
    while (ordered) {
        struct job *j = ordered;
        ordered = j->next;
        if (t->pending > 0)
            t->pending--;
        t->done(&j->result, t->userdata);
        job_free(j);
    }
}

int transport_new(sd_event *loop, transport_done_fn done, void *userdata, struct transport **ret)
{
    struct transport *t;
    int r = library_load();

    if (r < 0)
        return r;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->done = done;
    t->userdata = userdata;
    (void)realtime_mutex_init(&t->lock);     /* never fails on Linux */
    t->multi = cu.multi_init();
    if (!t->multi) {
        r = -ENOMEM;
        goto fail;
    }
    r = wakeup_new(loop, PRIORITY_DELIVERY, on_results, t, &t->results_wakeup);
    if (r < 0)
        goto fail;
    r = -pthread_create(&t->thread, NULL, transport_main, t);
    if (r < 0)
        goto fail;
    t->running = true;
    *ret = t;
    return 0;
fail:
    transport_free(t);
    return r;
}

struct transport *transport_free(struct transport *t)
{
    if (!t)
        return NULL;
    if (t->running) {
        pthread_mutex_lock(&t->lock);
        t->stop = true;
        pthread_mutex_unlock(&t->lock);
        cu.multi_wakeup(t->multi);
        pthread_join(t->thread, NULL);
    }
    while (t->finished) {
        struct job *j = t->finished;
        t->finished = j->next;
        job_free(j);
    }
    while (t->incoming) {
        struct job *j = t->incoming;
        t->incoming = j->next;
        job_free(j);
    }
    if (t->multi)
        cu.multi_cleanup(t->multi);
    wakeup_free(t->results_wakeup);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return NULL;
}

int transport_submit(struct transport *t, const struct transport_request *req)
{
    struct job *j;

    if (!req->url || !*req->url)
        return -EINVAL;
    j = job_new(req);
    if (!j)
        return -ENOMEM;
    pthread_mutex_lock(&t->lock);
    j->next = t->incoming;
    t->incoming = j;
    pthread_mutex_unlock(&t->lock);
    t->pending++;
    cu.multi_wakeup(t->multi);
    return 0;
}

unsigned transport_pending(const struct transport *t)
{
    return t ? t->pending : 0;
}

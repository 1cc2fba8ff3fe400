/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "realtime.h"
#include "wakeup.h"

struct offload_job {
    offload_work_fn work;
    offload_done_fn done;
    void *arg;
    int result;
    struct offload_job *next;
};

struct offload {
    struct wakeup *finished_wakeup; /* the thread's: jobs finished */

    /* Shared with the thread, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_running, stop;
    bool closing;                   /* offload_free(): new jobs run in the caller */
    struct offload_job *todo, **todo_tail;
    struct offload_job *finished, **finished_tail;
};

static void *offload_main(void *userdata)
{
    struct offload *o = userdata;

    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->stop && !o->todo)
            pthread_cond_wait(&o->cond, &o->lock);
        struct offload_job *j = o->todo;
        if (!j)
            break;          /* stopping, and nothing left to do */
        o->todo = j->next;
        if (!o->todo)
            o->todo_tail = &o->todo;
        pthread_mutex_unlock(&o->lock);

        j->result = j->work(j->arg);

        pthread_mutex_lock(&o->lock);
        j->next = NULL;
        *o->finished_tail = j;
        o->finished_tail = &j->next;
        wakeup_signal(o->finished_wakeup);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

/* The loop's side: every finished job's done(), in order. */
static void run_finished(void *userdata)
{
    struct offload *o = userdata;
    struct offload_job *list;

    pthread_mutex_lock(&o->lock);
    list = o->finished;
    o->finished = NULL;
    o->finished_tail = &o->finished;
    pthread_mutex_unlock(&o->lock);
    while (list) {
        struct offload_job *j = list;
        list = j->next;
        j->done(j->result, j->arg);
        free(j);
    }
}

int offload_new(sd_event *loop, struct offload **ret)
{
    struct offload *o = calloc(1, sizeof(*o));
    int r;

    if (!o)
        return -ENOMEM;
    o->todo_tail = &o->todo;
    o->finished_tail = &o->finished;
    (void)realtime_mutex_init(&o->lock);     /* never fails on Linux */
    pthread_cond_init(&o->cond, NULL);
    r = wakeup_new(loop, 0, run_finished, o, &o->finished_wakeup);
    if (r < 0)
        goto fail;
    *ret = o;
    return 0;
fail:
    offload_free(o);
    return r;
}

struct offload *offload_free(struct offload *o)
{
    if (!o)
        return NULL;
    if (o->thread_running) {
        pthread_mutex_lock(&o->lock);
        o->stop = true;
        pthread_cond_broadcast(&o->cond);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->thread, NULL);
    }
    /* Every job accepted hears its result; a done() that gives another job has it run here,
     * the thread being gone. */
    o->closing = true;
    run_finished(o);
    wakeup_free(o->finished_wakeup);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
    free(o);
    return NULL;
}

int offload_run(struct offload *o, offload_work_fn work, offload_done_fn done, void *arg)
{
    struct offload_job *j;
    int r;

    if (!o || o->closing) {
        done(work(arg), arg);
        return 0;
    }
    j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&o->lock);
    if (!o->thread_running) {
        r = -pthread_create(&o->thread, NULL, offload_main, o);
        if (r < 0) {
            pthread_mutex_unlock(&o->lock);
            free(j);
            log_error("offload: cannot start its thread: %s", strerror(-r));
            return r;
        }
        o->thread_running = true;
    }
    *o->todo_tail = j;
    o->todo_tail = &j->next;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
    return 0;
}

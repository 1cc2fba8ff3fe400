/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "reader.h"

#include <errno.h>
#include <string.h>

#include "util.h"

const struct reader_ops *reader_ops_by_driver(const char *driver)
{
    if (strcmp(driver, "sim") == 0)
        return &reader_ops_sim;
    if (strcmp(driver, "libnfc") == 0)
        return &reader_ops_nfc;
    return NULL;
}

int reader_start(struct reader *r, const struct reader_ops *ops, sd_event *loop,
                 const char *name, const struct reader_params *params, reader_event_fn on_event,
                 void *userdata)
{
    int ret;

    memset(r, 0, sizeof(*r));
    r->ops = ops;
    r->loop = loop;
    strlcpy_checked(r->name, name, sizeof(r->name));
    if (params) {
        r->params = *params;
        strlcpy_checked(r->connstring, params->connstring ? params->connstring : "",
                        sizeof(r->connstring));
        strlcpy_checked(r->worker_path, params->worker_path ? params->worker_path : "",
                        sizeof(r->worker_path));
    }
    r->params.connstring = r->connstring;
    r->params.worker_path = r->worker_path;
    r->on_event = on_event;
    r->userdata = userdata;
    r->health = ops == &reader_ops_sim ? READER_UP : READER_STARTING;
    ret = ops->start(r);
    if (ret < 0) {
        ops->stop(r);
        r->health = READER_FAILED;
        return ret;
    }
    r->started = true;
    return 0;
}

void reader_stop(struct reader *r)
{
    if (!r || !r->started)
        return;
    r->on_job = NULL;           /* whoever waited was told by its own stop */
    r->ops->stop(r);
    r->started = false;
}

void reader_deliver(struct reader *r, struct reader_event *ev)
{
    ev->at_usec = now_mono_usec();
    if (ev->targets == 0)
        ev->targets = 1;            /* a back-end that cannot tell saw one card */
    if (ev->kind == READER_CARD_ARRIVED)
        r->taps++;
    if (ev->kind == READER_CARD_ARRIVED || ev->kind == READER_CARD_LEFT)
        r->holding = ev->kind == READER_CARD_ARRIVED;
    if (r->on_event)
        r->on_event(r, ev, r->userdata);
}

const char *reader_health_to_string(enum reader_health h)
{
    switch (h) {
    case READER_STARTING:   return "starting";
    case READER_UP:         return "up";
    case READER_RESTARTING: return "restarting";
    case READER_FAILED:     return "failed";
    }
    return "unknown";
}

int reader_job_start(struct reader *r, const struct reader_job *job, reader_job_fn fn,
                     void *userdata)
{
    int ret;

    if (!r->started || !r->ops->job_start)
        return -EOPNOTSUPP;
    if (r->on_job)
        return -EBUSY;
    ret = r->ops->job_start(r, job);
    if (ret < 0)
        return ret;
    r->on_job = fn;
    r->job_userdata = userdata;
    return 0;
}

void reader_job_cancel(struct reader *r)
{
    if (!r || !r->on_job)
        return;
    r->on_job = NULL;
    r->job_userdata = NULL;
    if (r->ops->job_cancel)
        r->ops->job_cancel(r);
}

void reader_job_done(struct reader *r, const struct reader_job_result *res)
{
    reader_job_fn fn = r->on_job;
    void *userdata = r->job_userdata;

    r->on_job = NULL;
    r->job_userdata = NULL;
    if (fn)
        fn(r, res, userdata);
}

int reader_restart(struct reader *r)
{
    if (!r->started || !r->ops->restart)
        return -EOPNOTSUPP;
    return r->ops->restart(r);
}

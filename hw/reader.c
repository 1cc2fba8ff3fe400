#include "reader.h"

#include <errno.h>
#include <string.h>

#include "util.h"

const struct reader_ops *reader_ops_by_driver(const char *driver)
{
    if (strcmp(driver, "sim") == 0)
        return &reader_ops_sim;
    return NULL;
}

int reader_start(struct reader *r, const struct reader_ops *ops, sd_event *loop,
                 const char *name, const char *connstring, reader_event_fn on_event,
                 void *userdata)
{
    int ret;

    memset(r, 0, sizeof(*r));
    r->ops = ops;
    r->loop = loop;
    strlcpy_checked(r->name, name, sizeof(r->name));
    strlcpy_checked(r->connstring, connstring ? connstring : "", sizeof(r->connstring));
    r->on_event = on_event;
    r->userdata = userdata;
    ret = ops->start(r);
    if (ret < 0) {
        ops->stop(r);
        r->health = READER_FAILED;
        return ret;
    }
    r->started = true;
    r->health = READER_UP;
    return 0;
}

void reader_stop(struct reader *r)
{
    if (!r || !r->started)
        return;
    r->ops->stop(r);
    r->started = false;
}

void reader_deliver(struct reader *r, struct reader_event *ev)
{
    ev->at_usec = now_mono_usec();
    if (ev->kind == READER_CARD_ARRIVED)
        r->taps++;
    if (r->on_event)
        r->on_event(r, ev, r->userdata);
}

const char *reader_health_to_string(enum reader_health h)
{
    switch (h) {
    case READER_UP:         return "up";
    case READER_RESTARTING: return "restarting";
    case READER_FAILED:     return "failed";
    }
    return "unknown";
}

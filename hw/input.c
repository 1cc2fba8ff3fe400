#include "input.h"

#include <errno.h>
#include <string.h>

#include "util.h"

static int input_debounce_done(sd_event_source *s, uint64_t usec, void *userdata)
{
    struct input *in = userdata;
    bool active;

    if (in->ops->read(in, &active) < 0)
        return 0;   /* a read error keeps the last stable value; the next edge retries */
    if (active == in->active)
        return 0;
    in->active = active;
    in->changes++;
    if (in->on_change)
        in->on_change(in, active, in->userdata);
    return 0;
}

void input_edge(struct input *in)
{
    uint64_t now;

    if (!in->is_open)
        return;
    if (in->debounce_ms == 0) {
        input_debounce_done(NULL, 0, in);
        return;
    }
    /* Every edge restarts the wait: the value is taken once the line has been quiet. */
    sd_event_now(in->loop, CLOCK_MONOTONIC, &now);
    if (in->debounce) {
        sd_event_source_set_time(in->debounce, now + in->debounce_ms * 1000ull);
        sd_event_source_set_enabled(in->debounce, SD_EVENT_ONESHOT);
        return;
    }
    if (sd_event_add_time(in->loop, &in->debounce, CLOCK_MONOTONIC,
                          now + in->debounce_ms * 1000ull, 1000, input_debounce_done, in) < 0) {
        input_debounce_done(NULL, 0, in);   /* out of memory: act without debouncing */
        return;
    }
    sd_event_source_set_enabled(in->debounce, SD_EVENT_ONESHOT);
}

int input_open(struct input *in, const struct input_ops *ops, sd_event *loop, const char *name,
               const struct line_spec *line, enum input_bias bias, unsigned debounce_ms,
               input_change_fn on_change, void *userdata)
{
    int ret;

    memset(in, 0, sizeof(*in));
    in->ops = ops;
    in->loop = loop;
    strlcpy_checked(in->name, name, sizeof(in->name));
    in->line = *line;
    in->bias = bias;
    in->debounce_ms = debounce_ms;
    in->on_change = on_change;
    in->userdata = userdata;
    ret = ops->open(in);
    if (ret < 0)
        goto fail;
    ret = ops->read(in, &in->active);
    if (ret < 0)
        goto fail;
    in->is_open = true;
    return 0;
fail:
    ops->close(in);
    return ret;
}

void input_close(struct input *in)
{
    if (!in || !in->is_open)
        return;
    in->debounce = sd_event_source_disable_unref(in->debounce);
    in->ops->close(in);
    in->is_open = false;
}

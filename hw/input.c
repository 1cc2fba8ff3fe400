/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "input.h"

#include <errno.h>
#include <string.h>

#include "util.h"

static void input_debounce_done(void *userdata)
{
    struct input *in = userdata;
    bool active;

    if (in->ops->read(in, &active) < 0)
        return;     /* a read error keeps the last stable value; the next edge retries */
    if (active == in->active)
        return;
    in->active = active;
    in->changes++;
    if (in->on_change)
        in->on_change(in, active, in->userdata);
}

void input_edge(struct input *in)
{
    if (!in->is_open)
        return;
    /* Every edge restarts the wait: the value is taken once the line has been quiet. If the
     * wait cannot be armed, act without debouncing rather than miss the change. */
    if (in->debounce_ms == 0 || timer_arm_in(in->debounce, in->debounce_ms * 1000ull) < 0)
        input_debounce_done(in);
}

static int input_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct input *in = userdata;

    if (in->drain(in, fd) == 0)
        input_edge(in);
    return 0;
}

int input_watch_fd(struct input *in, int fd, input_drain_fn drain)
{
    in->drain = drain;
    return sd_event_add_io(in->loop, &in->watch, fd, EPOLLIN, input_readable, in);
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
    if (debounce_ms > 0) {
        ret = timer_new(loop, CLOCK_MONOTONIC, 1000, input_debounce_done, in, &in->debounce);
        if (ret < 0)
            goto fail;
    }
    in->is_open = true;
    return 0;
fail:
    in->debounce = timer_free(in->debounce);
    in->watch = sd_event_source_disable_unref(in->watch);
    ops->close(in);
    return ret;
}

void input_close(struct input *in)
{
    if (!in || !in->is_open)
        return;
    in->debounce = timer_free(in->debounce);
    in->watch = sd_event_source_disable_unref(in->watch);
    in->ops->close(in);
    in->is_open = false;
}

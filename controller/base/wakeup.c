/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "wakeup.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct wakeup {
    sd_event_source *io;
    int fd;
    wakeup_fn fn;
    void *userdata;
};

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    struct wakeup *w = userdata;
    uint64_t n;

    (void)!read(fd, &n, sizeof(n));     /* resets the count: one run for all signals so far */
    w->fn(w->userdata);
    return 0;
}

int wakeup_new(sd_event *loop, int64_t priority, wakeup_fn fn, void *userdata,
               struct wakeup **ret)
{
    struct wakeup *w = calloc(1, sizeof(*w));
    int r;

    if (!w)
        return -ENOMEM;
    w->fn = fn;
    w->userdata = userdata;
    w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->fd < 0) {
        r = -errno;
        goto fail;
    }
    r = sd_event_add_io(loop, &w->io, w->fd, EPOLLIN, on_readable, w);
    if (r < 0)
        goto fail;
    if (priority && (r = sd_event_source_set_priority(w->io, priority)) < 0)
        goto fail;
    *ret = w;
    return 0;
fail:
    wakeup_free(w);
    return r;
}

void wakeup_signal(struct wakeup *w)
{
    uint64_t one = 1;

    /* Only fails if the counter would overflow (it is read back long before) or w->fd
     * is not an eventfd: nothing to do about either here. */
    (void)!write(w->fd, &one, sizeof(one));
}

struct wakeup *wakeup_free(struct wakeup *w)
{
    if (!w)
        return NULL;
    sd_event_source_disable_unref(w->io);
    if (w->fd >= 0)
        close(w->fd);
    free(w);
    return NULL;
}

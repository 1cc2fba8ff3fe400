/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpio_gpiod: relays and inputs on the kernel GPIO character device, libgpiod v1.6 API
 * (Debian 12, Raspberry Pi OS bookworm).
 *
 * Each line keeps its own chip handle: chips are cheap to open and this keeps ownership
 * obvious (the line is released when its chip closes). Inputs are requested for both
 * edges; the line-event fd sits on the daemon's loop and every readable event only tells
 * the generic input layer to debounce and re-read. */
#include <errno.h>
#include <gpiod.h>
#include <linux/gpio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpio_backend.h"

struct gpiod_handle {
    struct gpiod_chip *chip;
    struct gpiod_line *line;
};

static int handle_open(const struct line_spec *spec, struct gpiod_handle **ret)
{
    struct gpiod_handle *h = calloc(1, sizeof(*h));
    int ret_err;

    if (!h)
        return -ENOMEM;
    /* Accepts "gpiochip0", "/dev/gpiochip0", "0" or a chip label such as "pinctrl-bcm2711". */
    h->chip = gpiod_chip_open_lookup(spec->chip);
    if (!h->chip) {
        ret_err = errno ? -errno : -ENOENT;
        goto fail;
    }
    h->line = gpiod_chip_get_line(h->chip, spec->offset);
    if (!h->line) {
        ret_err = errno ? -errno : -EINVAL;
        goto fail;
    }
    *ret = h;
    return 0;
fail:
    if (h->chip)
        gpiod_chip_close(h->chip);
    free(h);
    return ret_err;
}

static void handle_close(struct gpiod_handle *h)
{
    if (!h)
        return;
    if (h->chip)
        gpiod_chip_close(h->chip);      /* releases the line too */
    free(h);
}

static int line_flags(const struct line_spec *spec)
{
    return spec->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
}

static int gpiod_relay_open(struct relay *r)
{
    struct gpiod_handle *h;
    int ret = handle_open(&r->line, &h);

    if (ret < 0)
        return ret;
    r->priv = h;
    /* Logical 0 is "de-energised" whatever the polarity: active_low inverts the wire. */
    if (gpiod_line_request_output_flags(h->line, r->name, line_flags(&r->line), 0) < 0)
        return errno ? -errno : -EIO;
    return 0;
}

static int gpiod_relay_write(struct relay *r, bool energised)
{
    struct gpiod_handle *h = r->priv;
    if (gpiod_line_set_value(h->line, energised ? 1 : 0) < 0)
        return errno ? -errno : -EIO;
    return 0;
}

static void gpiod_relay_close(struct relay *r)
{
    struct gpiod_handle *h = r->priv;
    if (h && h->line && gpiod_line_is_requested(h->line))
        gpiod_line_set_value(h->line, 0);
    handle_close(h);
    r->priv = NULL;
}

const struct relay_ops relay_ops_gpiod = {
    .backend = "gpiod",
    .open = gpiod_relay_open,
    .write = gpiod_relay_write,
    .close = gpiod_relay_close,
};

/* Drain what the kernel queued; the value itself is re-read after debouncing. */
static int gpiod_input_drain(struct input *in, int fd)
{
    /* The kernel's own record (a 64-bit nanosecond stamp), not libgpiod 1.6's struct
     * gpiod_line_event: that one holds a struct timespec, whose size differs between a
     * library built with a 32-bit time_t (Debian 12 armhf) and Portier built with
     * _TIME_BITS=64. */
    struct gpioevent_data events[16];

    if (read(fd, events, sizeof(events)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

static int bias_flags(enum input_bias bias)
{
    switch (bias) {
    case INPUT_BIAS_DISABLE:   return GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
    case INPUT_BIAS_PULL_UP:   return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
    case INPUT_BIAS_PULL_DOWN: return GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
    case INPUT_BIAS_AS_IS:     break;
    }
    return 0;
}

static int gpiod_input_open(struct input *in)
{
    struct gpiod_handle *h;
    int ret = handle_open(&in->line, &h), fd;

    if (ret < 0)
        return ret;
    in->priv = h;
    if (gpiod_line_request_both_edges_events_flags(h->line, in->name,
                                                   line_flags(&in->line) | bias_flags(in->bias)) < 0)
        return errno ? -errno : -EIO;
    fd = gpiod_line_event_get_fd(h->line);
    if (fd < 0)
        return -EBADF;
    return input_watch_fd(in, fd, gpiod_input_drain);
}

static int gpiod_input_read(struct input *in, bool *ret_active)
{
    struct gpiod_handle *h = in->priv;
    int v = gpiod_line_get_value(h->line);
    if (v < 0)
        return errno ? -errno : -EIO;
    *ret_active = v == 1;
    return 0;
}

static void gpiod_input_close(struct input *in)
{
    handle_close(in->priv);
    in->priv = NULL;
}

const struct input_ops input_ops_gpiod = {
    .backend = "gpiod",
    .open = gpiod_input_open,
    .read = gpiod_input_read,
    .close = gpiod_input_close,
};

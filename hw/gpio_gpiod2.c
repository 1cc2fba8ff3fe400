/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpio_gpiod2: relays and inputs on the kernel GPIO character device, libgpiod 2.x API
 * (Debian 13 trixie, the next Raspberry Pi OS). The build picks this file or gpio_gpiod.c
 * (libgpiod 1.6) by the version pkg-config finds; both export relay_ops_gpiod and
 * input_ops_gpiod, so the configuration (`backend = gpiod`) is the same.
 *
 * In v2 a line is requested through a request object that outlives the chip handle: the
 * chip is opened only to make the request. Inputs are requested for both edges; the
 * request's fd sits on the daemon's loop and every readable event only tells the generic
 * input layer to debounce and re-read, as with v1. */
#include <dirent.h>
#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpio_backend.h"

#define EDGE_EVENTS_MAX 16

struct gpiod2_handle {
    struct gpiod_line_request *request;
    struct gpiod_edge_event_buffer *events;     /* inputs only */
    unsigned offset;
};

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* libgpiod 2 opens chips by path only. Accept what v1's gpiod_chip_open_lookup() did:
 * "gpiochip0", "/dev/gpiochip0", "0", or a chip label such as "pinctrl-bcm2711". */
static struct gpiod_chip *chip_open_lookup(const char *name)
{
    char path[sizeof("/dev/") + 256];      /* any d_name fits */
    struct gpiod_chip *chip;
    struct dirent *e;
    DIR *dir;

    if (name[0] == '/')
        return gpiod_chip_open(name);
    if (is_number(name)) {
        snprintf(path, sizeof(path), "/dev/gpiochip%s", name);
        return gpiod_chip_open(path);
    }
    if (strncmp(name, "gpiochip", 8) == 0 && is_number(name + 8)) {
        snprintf(path, sizeof(path), "/dev/%s", name);
        return gpiod_chip_open(path);
    }
    dir = opendir("/dev");
    if (!dir)
        return NULL;
    while ((e = readdir(dir))) {
        struct gpiod_chip_info *info;
        bool match;

        if (strncmp(e->d_name, "gpiochip", 8) != 0 || !is_number(e->d_name + 8))
            continue;
        snprintf(path, sizeof(path), "/dev/%s", e->d_name);
        chip = gpiod_chip_open(path);
        if (!chip)
            continue;
        info = gpiod_chip_get_info(chip);
        match = info && strcmp(gpiod_chip_info_get_label(info), name) == 0;
        gpiod_chip_info_free(info);
        if (match) {
            closedir(dir);
            return chip;
        }
        gpiod_chip_close(chip);
    }
    closedir(dir);
    errno = ENOENT;
    return NULL;
}

static int errno_or(int fallback)
{
    return errno ? -errno : -fallback;
}

/* Request one line with these settings; the chip is closed again before returning. */
static int request_line(const struct line_spec *spec, const char *consumer,
                        struct gpiod_line_settings *settings, struct gpiod2_handle **ret)
{
    struct gpiod2_handle *h = calloc(1, sizeof(*h));
    struct gpiod_line_config *line_cfg = NULL;
    struct gpiod_request_config *req_cfg = NULL;
    struct gpiod_chip *chip = NULL;
    int r;

    if (!h)
        return -ENOMEM;
    h->offset = spec->offset;
    errno = 0;
    chip = chip_open_lookup(spec->chip);
    if (!chip) {
        r = errno_or(ENOENT);
        goto out;
    }
    line_cfg = gpiod_line_config_new();
    req_cfg = gpiod_request_config_new();
    if (!line_cfg || !req_cfg) {
        r = -ENOMEM;
        goto out;
    }
    gpiod_line_settings_set_active_low(settings, spec->active_low);
    if (gpiod_line_config_add_line_settings(line_cfg, &h->offset, 1, settings) < 0) {
        r = errno_or(EINVAL);
        goto out;
    }
    gpiod_request_config_set_consumer(req_cfg, consumer);
    errno = 0;
    h->request = gpiod_chip_request_lines(chip, req_cfg, line_cfg);
    r = h->request ? 0 : errno_or(EIO);
out:
    gpiod_request_config_free(req_cfg);
    gpiod_line_config_free(line_cfg);
    if (chip)
        gpiod_chip_close(chip);
    if (r < 0)
        free(h);
    else
        *ret = h;
    return r;
}

static void handle_close(struct gpiod2_handle *h)
{
    if (!h)
        return;
    if (h->request)
        gpiod_line_request_release(h->request);
    if (h->events)
        gpiod_edge_event_buffer_free(h->events);
    free(h);
}

static int gpiod2_relay_open(struct relay *r)
{
    struct gpiod_line_settings *settings = gpiod_line_settings_new();
    struct gpiod2_handle *h;
    int ret;

    if (!settings)
        return -ENOMEM;
    /* Logical inactive is "de-energised" whatever the polarity: active_low inverts the wire. */
    gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_OUTPUT);
    gpiod_line_settings_set_output_value(settings, GPIOD_LINE_VALUE_INACTIVE);
    ret = request_line(&r->line, r->name, settings, &h);
    gpiod_line_settings_free(settings);
    if (ret < 0)
        return ret;
    r->priv = h;
    return 0;
}

static int gpiod2_relay_write(struct relay *r, bool energised)
{
    struct gpiod2_handle *h = r->priv;

    errno = 0;
    if (gpiod_line_request_set_value(h->request, h->offset,
                                     energised ? GPIOD_LINE_VALUE_ACTIVE
                                               : GPIOD_LINE_VALUE_INACTIVE) < 0)
        return errno_or(EIO);
    return 0;
}

static void gpiod2_relay_close(struct relay *r)
{
    struct gpiod2_handle *h = r->priv;

    if (h && h->request)
        gpiod_line_request_set_value(h->request, h->offset, GPIOD_LINE_VALUE_INACTIVE);
    handle_close(h);
    r->priv = NULL;
}

const struct relay_ops relay_ops_gpiod = {
    .backend = "gpiod",
    .open = gpiod2_relay_open,
    .write = gpiod2_relay_write,
    .close = gpiod2_relay_close,
};

/* Drain what the kernel queued; the value itself is re-read after debouncing. */
static int gpiod2_input_drain(struct input *in, int fd)
{
    struct gpiod2_handle *h = in->priv;

    (void)gpiod_line_request_read_edge_events(h->request, h->events, EDGE_EVENTS_MAX);
    return 0;
}

static enum gpiod_line_bias bias_of(enum input_bias bias)
{
    switch (bias) {
    case INPUT_BIAS_DISABLE:   return GPIOD_LINE_BIAS_DISABLED;
    case INPUT_BIAS_PULL_UP:   return GPIOD_LINE_BIAS_PULL_UP;
    case INPUT_BIAS_PULL_DOWN: return GPIOD_LINE_BIAS_PULL_DOWN;
    case INPUT_BIAS_AS_IS:     break;
    }
    return GPIOD_LINE_BIAS_AS_IS;
}

static int gpiod2_input_open(struct input *in)
{
    struct gpiod_line_settings *settings = gpiod_line_settings_new();
    struct gpiod2_handle *h;
    int ret, fd;

    if (!settings)
        return -ENOMEM;
    gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_INPUT);
    gpiod_line_settings_set_edge_detection(settings, GPIOD_LINE_EDGE_BOTH);
    gpiod_line_settings_set_bias(settings, bias_of(in->bias));
    ret = request_line(&in->line, in->name, settings, &h);
    gpiod_line_settings_free(settings);
    if (ret < 0)
        return ret;
    in->priv = h;
    h->events = gpiod_edge_event_buffer_new(EDGE_EVENTS_MAX);
    if (!h->events)
        return -ENOMEM;
    fd = gpiod_line_request_get_fd(h->request);
    if (fd < 0)
        return -EBADF;
    return input_watch_fd(in, fd, gpiod2_input_drain);
}

static int gpiod2_input_read(struct input *in, bool *ret_active)
{
    struct gpiod2_handle *h = in->priv;
    enum gpiod_line_value v;

    errno = 0;
    v = gpiod_line_request_get_value(h->request, h->offset);
    if (v == GPIOD_LINE_VALUE_ERROR)
        return errno_or(EIO);
    *ret_active = v == GPIOD_LINE_VALUE_ACTIVE;
    return 0;
}

static void gpiod2_input_close(struct input *in)
{
    handle_close(in->priv);
    in->priv = NULL;
}

const struct input_ops input_ops_gpiod = {
    .backend = "gpiod",
    .open = gpiod2_input_open,
    .read = gpiod2_input_read,
    .close = gpiod2_input_close,
};

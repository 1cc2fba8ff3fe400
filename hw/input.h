/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* input: a digital input (door contact, exit button, "machine running" sensor), debounced.
 *
 * A back-end reports that the raw line may have changed by calling input_edge(); the
 * generic layer then waits debounce_ms on the event loop, reads the line, and calls
 * on_change() only if the stable value differs from the last one reported. So contact
 * bounce never reaches the door logic, whatever the back-end. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "gpio_line.h"
#include "timer.h"

struct input;

enum input_bias { INPUT_BIAS_AS_IS, INPUT_BIAS_DISABLE, INPUT_BIAS_PULL_UP, INPUT_BIAS_PULL_DOWN };

struct input_ops {
    const char *backend;
    /* Request the line for both edges and watch it on in->loop. 0 or -errno. */
    int (*open)(struct input *in);
    /* Read the current (active-low corrected) value. 0 or -errno. */
    int (*read)(struct input *in, bool *ret_active);
    /* Stop watching and release. Safe on an input whose open failed. */
    void (*close)(struct input *in);
};

typedef void (*input_change_fn)(struct input *in, bool active, void *userdata);
/* Empty what the line's fd holds. 0, or -errno: then the edge is not acted on. */
typedef int (*input_drain_fn)(struct input *in, int fd);

struct input {
    const struct input_ops *ops;
    char name[48];                  /* "front.contact" */
    struct line_spec line;
    enum input_bias bias;
    sd_event *loop;
    unsigned debounce_ms;
    bool is_open;
    bool active;                    /* last stable value reported */
    uint64_t changes;
    struct timer *debounce;         /* NULL when debounce_ms is 0 */
    input_change_fn on_change;
    void *userdata;
    void *priv;
    sd_event_source *watch;         /* input_watch_fd() */
    input_drain_fn drain;
};

/* Set up in (caller-owned storage), open it, read its initial value (no callback for the
 * initial value) and, if debounce_ms > 0, create its debounce timer on loop. 0 or -errno;
 * on failure in is closed. */
int input_open(struct input *in, const struct input_ops *ops, sd_event *loop, const char *name,
               const struct line_spec *line, enum input_bias bias, unsigned debounce_ms,
               input_change_fn on_change, void *userdata);
void input_close(struct input *in);

/* For back-ends: the raw value may have changed. */
void input_edge(struct input *in);
/* For back-ends whose line reports edges on a file descriptor, from ops->open(): watch fd on
 * in->loop; whenever it is readable, drain(in, fd) empties it and input_edge() follows. The
 * watch ends before ops->close() runs. 0 or -errno. */
int input_watch_fd(struct input *in, int fd, input_drain_fn drain);

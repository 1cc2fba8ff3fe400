/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* input: the generic layer's watch of a back-end's event fd (input_watch_fd(), what the
 * libgpiod back-ends use). A test back-end stands on a pipe: a byte written is an edge, the
 * line's value a variable. Runs a real sd-event loop, each pass bounded. Also the lookup of
 * the back-ends by their configured name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "gpio_backend.h"
#include "input.h"

#define RUN_BOUND_USEC (5 * 1000000ull)

struct pipe_line {
    int fds[2];
    bool value;             /* what read() answers */
    int read_error;         /* read() fails with this, if not 0 */
    int drain_error;        /* drain answers this */
    unsigned drains;
    bool closed_with_watch; /* close() ran while the watch was still there */
};

static struct pipe_line line;
static unsigned changes;
static bool last_active;

static int pipe_drain(struct input *in, int fd)
{
    char buf[16];

    assert_int_equal(fd, line.fds[0]);
    line.drains++;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return line.drain_error;
}

static int pipe_open(struct input *in)
{
    if (pipe2(line.fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    in->priv = &line;
    return input_watch_fd(in, line.fds[0], pipe_drain);
}

static int pipe_read(struct input *in, bool *ret_active)
{
    if (line.read_error)
        return line.read_error;
    *ret_active = line.value;
    return 0;
}

static void pipe_close(struct input *in)
{
    if (in->watch)
        line.closed_with_watch = true;
    if (in->priv) {
        close(line.fds[0]);
        close(line.fds[1]);
    }
    in->priv = NULL;
}

static const struct input_ops pipe_ops = {
    .backend = "pipe",
    .open = pipe_open,
    .read = pipe_read,
    .close = pipe_close,
};

static void on_change(struct input *in, bool active, void *userdata)
{
    changes++;
    last_active = active;
}

static int setup(void **state)
{
    sd_event *loop;

    if (sd_event_new(&loop) < 0)
        return -1;
    *state = loop;
    line = (struct pipe_line){ .fds = { -1, -1 } };
    changes = 0;
    last_active = false;
    return 0;
}

static int teardown(void **state)
{
    sd_event_unref(*state);
    return 0;
}

static const struct line_spec spec = { .set = true, .chip = "pipe", .offset = 1 };

static void edge(void)
{
    assert_int_equal(write(line.fds[1], "e", 1), 1);
}

static void test_readable_fd_is_drained_then_an_edge(void **state)
{
    sd_event *loop = *state;
    struct input in;

    assert_int_equal(input_open(&in, &pipe_ops, loop, "test.contact", &spec, INPUT_BIAS_AS_IS, 0,
                                on_change, NULL), 0);
    assert_non_null(in.watch);
    line.value = true;
    edge();
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(line.drains, 1);
    assert_int_equal(changes, 1);
    assert_true(last_active);
    assert_true(in.active);

    /* Drained: nothing is readable any more, so a pass dispatches nothing. */
    assert_int_equal(sd_event_run(loop, 0), 0);
    assert_int_equal(line.drains, 1);

    line.value = false;
    edge();
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(changes, 2);
    assert_false(last_active);

    input_close(&in);
    assert_false(line.closed_with_watch);
    assert_null(in.watch);
}

static void test_a_failed_drain_is_no_edge(void **state)
{
    sd_event *loop = *state;
    struct input in;

    assert_int_equal(input_open(&in, &pipe_ops, loop, "test.contact", &spec, INPUT_BIAS_AS_IS, 0,
                                on_change, NULL), 0);
    line.value = true;
    line.drain_error = -EIO;
    edge();
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(line.drains, 1);
    assert_int_equal(changes, 0);
    assert_false(in.active);

    line.drain_error = 0;       /* the next edge reads the line again */
    edge();
    assert_true(sd_event_run(loop, RUN_BOUND_USEC) > 0);
    assert_int_equal(changes, 1);
    assert_true(in.active);
    input_close(&in);
}

/* The back-end's open() set up the watch, then the first read failed: the watch is gone
 * before the back-end closes its fd. */
static void test_a_failed_open_ends_the_watch(void **state)
{
    sd_event *loop = *state;
    struct input in;

    line.read_error = -EIO;
    assert_int_equal(input_open(&in, &pipe_ops, loop, "test.contact", &spec, INPUT_BIAS_AS_IS, 0,
                                on_change, NULL), -EIO);
    assert_false(line.closed_with_watch);
    assert_null(in.watch);
    assert_int_equal(sd_event_run(loop, 0), 0);
    assert_int_equal(line.drains, 0);
}

/* [hardware] backend names the relay and input back-ends as a pair. */
static void test_backends_by_name(void **state)
{
    (void)state;
    assert_ptr_equal(relay_ops_by_name("sim"), &relay_ops_sim);
    assert_ptr_equal(input_ops_by_name("sim"), &input_ops_sim);
    assert_ptr_equal(relay_ops_by_name("gpiod"), &relay_ops_gpiod);
    assert_ptr_equal(input_ops_by_name("gpiod"), &input_ops_gpiod);
    assert_null(relay_ops_by_name("pipe"));
    assert_null(input_ops_by_name(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readable_fd_is_drained_then_an_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_drain_is_no_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_open_ends_the_watch, setup, teardown),
        cmocka_unit_test(test_backends_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

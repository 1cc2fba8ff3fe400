/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpio_sim: simulated relays and inputs, the test double for machines without a GPIO chip.
 *
 * A simulated relay remembers what it was told; a simulated input holds a value set through
 * input_sim_set() (from `portierctl sim press|release`). Both go through the same ops tables
 * and the same generic layers (relay.c, input.c) as the libgpiod back-end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpio_backend.h"
#include "util.h"

struct sim_relay {
    unsigned fail_next;
    int mirror;                     /* its file in state_dir, or -1 */
};

struct sim_input {
    bool raw;
};

static char state_dir[PATH_MAX];

void relay_sim_set_state_dir(const char *dir)
{
    snprintf(state_dir, sizeof(state_dir), "%s", dir ? dir : "");
}

/* Best effort: the mirror is for observers (tests, the bench), the relay state itself lives
 * in struct relay. The file is opened once and each write is one pwrite(2) of its two bytes,
 * as cheap as a GPIO line's ioctl: a tap timed from outside is not timed opening files. */
static void mirror_open(struct relay *r, struct sim_relay *s)
{
    char path[PATH_MAX + 64];

    s->mirror = -1;
    if (!state_dir[0])
        return;
    snprintf(path, sizeof(path), "%s/%s", state_dir, r->name);
    s->mirror = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static void mirror_state(const struct sim_relay *s, bool energised)
{
    if (s->mirror >= 0)
        (void)!pwrite(s->mirror, energised ? "1\n" : "0\n", 2, 0);
}

static int sim_relay_open(struct relay *r)
{
    struct sim_relay *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    r->priv = s;
    mirror_open(r, s);
    mirror_state(s, false);
    return 0;
}

static int sim_relay_write(struct relay *r, bool energised)
{
    struct sim_relay *s = r->priv;
    if (s->fail_next > 0) {
        s->fail_next--;
        return -EIO;
    }
    mirror_state(s, energised);
    return 0;
}

static void sim_relay_close(struct relay *r)
{
    struct sim_relay *s = r->priv;

    if (s) {
        mirror_state(s, false);
        if (s->mirror >= 0)
            close(s->mirror);
    }
    free(s);
    r->priv = NULL;
}

const struct relay_ops relay_ops_sim = {
    .backend = "sim",
    .open = sim_relay_open,
    .write = sim_relay_write,
    .close = sim_relay_close,
};

int relay_sim_fail_next(struct relay *r, unsigned n)
{
    if (r->ops != &relay_ops_sim || !r->priv)
        return -EINVAL;
    ((struct sim_relay *)r->priv)->fail_next = n;
    return 0;
}

static int sim_input_open(struct input *in)
{
    in->priv = calloc(1, sizeof(struct sim_input));
    return in->priv ? 0 : -ENOMEM;
}

static int sim_input_read(struct input *in, bool *ret_active)
{
    *ret_active = ((struct sim_input *)in->priv)->raw;
    return 0;
}

static void sim_input_close(struct input *in)
{
    free(in->priv);
    in->priv = NULL;
}

const struct input_ops input_ops_sim = {
    .backend = "sim",
    .open = sim_input_open,
    .read = sim_input_read,
    .close = sim_input_close,
};

int input_sim_set(struct input *in, bool active)
{
    if (in->ops != &input_ops_sim || !in->priv)
        return -EINVAL;
    ((struct sim_input *)in->priv)->raw = active;
    input_edge(in);
    return 0;
}

/* The back-ends by their name in the configuration ([hardware] backend). */
static const struct gpio_backend {
    const char *name;
    const struct relay_ops *relay;
    const struct input_ops *input;
} backends[] = {
    { "sim", &relay_ops_sim, &input_ops_sim },
    { "gpiod", &relay_ops_gpiod, &input_ops_gpiod },
};

static const struct gpio_backend *backend_by_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
        if (strcmp(backends[i].name, name) == 0)
            return &backends[i];
    return NULL;
}

const struct relay_ops *relay_ops_by_name(const char *backend)
{
    const struct gpio_backend *b = backend_by_name(backend);

    return b ? b->relay : NULL;
}

const struct input_ops *input_ops_by_name(const char *backend)
{
    const struct gpio_backend *b = backend_by_name(backend);

    return b ? b->input : NULL;
}

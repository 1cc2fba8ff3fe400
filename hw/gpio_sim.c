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

struct sim_relay {
    unsigned fail_next;
};

struct sim_input {
    bool raw;
};

static char state_dir[PATH_MAX];

void relay_sim_set_state_dir(const char *dir)
{
    snprintf(state_dir, sizeof(state_dir), "%s", dir ? dir : "");
}

/* Best effort: the mirror is for observers, the relay state itself lives in struct relay. */
static void mirror_state(const struct relay *r, bool energised)
{
    char path[PATH_MAX + 64];
    int fd;

    if (!state_dir[0])
        return;
    snprintf(path, sizeof(path), "%s/%s", state_dir, r->name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!write(fd, energised ? "1\n" : "0\n", 2);
    close(fd);
}

static int sim_relay_open(struct relay *r)
{
    r->priv = calloc(1, sizeof(struct sim_relay));
    if (!r->priv)
        return -ENOMEM;
    mirror_state(r, false);
    return 0;
}

static int sim_relay_write(struct relay *r, bool energised)
{
    struct sim_relay *s = r->priv;
    if (s->fail_next > 0) {
        s->fail_next--;
        return -EIO;
    }
    mirror_state(r, energised);
    return 0;
}

static void sim_relay_close(struct relay *r)
{
    if (r->priv)
        mirror_state(r, false);
    free(r->priv);
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

const struct relay_ops *relay_ops_by_name(const char *backend)
{
    if (strcmp(backend, "sim") == 0)
        return &relay_ops_sim;
    if (strcmp(backend, "gpiod") == 0)
        return &relay_ops_gpiod;
    return NULL;
}

const struct input_ops *input_ops_by_name(const char *backend)
{
    if (strcmp(backend, "sim") == 0)
        return &input_ops_sim;
    if (strcmp(backend, "gpiod") == 0)
        return &input_ops_gpiod;
    return NULL;
}

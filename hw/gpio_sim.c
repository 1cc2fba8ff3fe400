/* gpio_sim: simulated relays and inputs, the test double for machines without a GPIO chip.
 *
 * A simulated relay remembers what it was told; a simulated input holds a value set through
 * input_sim_set() (from `portierctl sim press|release`). Both go through the same ops tables
 * and the same generic layers (relay.c, input.c) as the libgpiod back-end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gpio_backend.h"

struct sim_relay {
    unsigned fail_next;
};

struct sim_input {
    bool raw;
};

static int sim_relay_open(struct relay *r)
{
    r->priv = calloc(1, sizeof(struct sim_relay));
    return r->priv ? 0 : -ENOMEM;
}

static int sim_relay_write(struct relay *r, bool energised)
{
    struct sim_relay *s = r->priv;
    if (s->fail_next > 0) {
        s->fail_next--;
        return -EIO;
    }
    return 0;
}

static void sim_relay_close(struct relay *r)
{
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

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* gpio_backend: the relay and input back-ends, selected by name from the config. */
#pragma once
#include <stdbool.h>

#include "input.h"
#include "relay.h"

extern const struct relay_ops relay_ops_sim;
extern const struct input_ops input_ops_sim;
extern const struct relay_ops relay_ops_gpiod;
extern const struct input_ops input_ops_gpiod;

/* "sim" or "gpiod"; NULL if unknown. */
const struct relay_ops *relay_ops_by_name(const char *backend);
const struct input_ops *input_ops_by_name(const char *backend);

/* Simulated inputs only: set the raw value of the line as if the wire changed. -EINVAL if
 * the input is not simulated. The change goes through debouncing like a real edge. */
int input_sim_set(struct input *in, bool active);
/* Simulated relays only: mirror every relay's state into DIR/<relay name> ("1" energised,
 * "0" not), so tests and the demo can watch relays from outside, even after the daemon
 * stopped or died. NULL or "" turns it off. */
void relay_sim_set_state_dir(const char *dir);
/* Simulated relays only: make the next n writes fail with -EIO (fault injection). */
int relay_sim_fail_next(struct relay *r, unsigned n);

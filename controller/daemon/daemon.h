/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* daemon: portierd's wiring — one sd-event loop, one store, the doors, readers and the
 * control socket — and its life cycle: start, SIGHUP reload, SIGTERM stop. */
#pragma once

struct daemon;

/* Load the config, open the store and the hardware. Every problem is logged. 0 or -errno. */
int daemon_new(const char *config_path, struct daemon **ret);
/* Run until SIGTERM/SIGINT. Returns the exit status. */
int daemon_run(struct daemon *d);
/* Drive every relay to its safe state, commit and close. NULL-safe; returns NULL. */
struct daemon *daemon_free(struct daemon *d);

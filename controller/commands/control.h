/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* control: the unix socket where portierctl talks to the daemon.
 *
 * One request per connection: a JSON object on one line (at most CONTROL_REQUEST_MAX
 * bytes), dispatched through the command table (command.h) as the site's operator (role
 * system: who may connect is decided by the socket's owner, group and mode, from the
 * config), and answered by one JSON object on one line, then the daemon closes. A reply is
 * written only once what it reports is on disk (commit.h), so a client is only told "done"
 * when it is; if the disk refuses it, the client is told that instead ("not_recorded"). */
#pragma once
#include <systemd/sd-event.h>

#include "priorities.h"

#define CONTROL_REQUEST_MAX 16384
#define CONTROL_MAX_CLIENTS 32
#define CONTROL_READ_TIMEOUT_SEC 10
#define CONTROL_PRIORITY_REPLY PRIORITY_REPLIES

/* control_new() and control_free() are declared in command.h, with the other channels. */

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* status: the site's state as one JSON object (the `status` command, the web page,
 * /healthz and /metrics). */
#pragma once
#include <jansson.h>

struct services;
struct commit;

/* New reference; NULL only when out of memory. */
json_t *status_json(struct services *svc);
/* The storage part: whether the database records (commit.h's health). */
json_t *status_storage_json(struct commit *commit);

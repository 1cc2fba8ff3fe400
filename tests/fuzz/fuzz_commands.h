/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_commands: the services cmd_check() needs, for fuzz_control_request and
 * fuzz_mqtt_command: simulated hardware (sim.* commands pass) and an in-memory store with a
 * plan and a few members — "Alice Martin", and two named "Bob" (a name that is ambiguous). */
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "services.h"
#include "store.h"

static inline struct services *fuzz_command_services(void)
{
    static struct store *store;
    static struct config cfg;
    static struct services svc;
    int64_t plan, id;

    if (store)
        return &svc;
    /* The daemon runs in the site's zone; one with daylight saving exercises more. */
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    if (store_open(":memory:", &store) < 0 ||
        store_plan_add(store, "member", "*", "always", &plan) < 0 ||
        store_member_add(store, "Alice Martin", "alice@example.org", plan, 0, 0, &id) < 0 ||
        store_member_add(store, "Bob", NULL, 0, 0, 0, &id) < 0 ||
        store_member_add(store, "Bob", NULL, 0, 0, 0, &id) < 0 ||   /* ambiguous by name */
        store_commit(store) < 0) {
        fprintf(stderr, "fuzz: cannot set up the in-memory store\n");
        abort();
    }
    svc.store = store;
    svc.cfg = &cfg;
    return &svc;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* site: the doors and readers of the site, and what routes between them.
 *
 * A card at a reader goes, in this order, to a waiting enrolment, to the door the reader
 * opens (access.c decides with policy.c, and door.c drives the relay), or to the machine
 * that uses the reader (fablab). After a granted tap at a door comes the bookkeeping:
 * entries check in, exit readers check out (meter). The site also evaluates the doors'
 * free-entry windows and closing time each minute, turns door changes into access-log
 * events, and publishes door, machine and occupancy states over MQTT.
 *
 * The modules it routes to are read from the services at each event (they are created
 * after the site and may be absent: MQTT, the consortium). */
#pragma once
#include <stdbool.h>

#include "door.h"
#include "input.h"
#include "reader.h"

struct services;
struct config;
struct machine;

struct site;

/* Open every door's lines (relays in their safe state) and record the doors in the
 * database. Readers start later (site_start_readers), once what they route to exists. */
int site_new(struct services *svc, const struct door_hw *hw, struct site **ret);
/* Start every reader's worker; a reader that cannot start is retried and logged, and never
 * keeps the other doors shut. -errno only if a reader's reset line cannot be opened. */
int site_start_readers(struct site *s);
/* Doors to their safe state first, then readers and reset lines. NULL-safe. */
struct site *site_free(struct site *s);

void site_reconfigure(struct site *s, const struct config *next);
/* Once a minute, and when the simulated clock moves: free-entry windows, closing time. */
void site_minute(struct site *s);

struct door *site_door(struct site *s, const char *name);
/* The door a reader opens, as its entry reader or (*is_exit) its exit reader. */
struct door *site_door_by_reader(struct site *s, const char *reader, bool *is_exit);
struct reader *site_reader(struct site *s, const char *name);
/* An input by name ("front.contact", "front.exit", "laser.running"). */
struct input *site_input(struct site *s, const char *name);
unsigned site_door_count(const struct site *s);
struct door *site_door_at(struct site *s, unsigned i);
unsigned site_reader_count(const struct site *s);
struct reader *site_reader_at(struct site *s, unsigned i);

/* MQTT states: every door's, machine's and the occupancy (at connection), one machine's
 * (fablab's change listener), the occupancy after check-ins and check-outs. */
void site_publish_all(struct site *s);
void site_publish_machine(struct machine *m, void *site);
void site_occupancy_changed(struct site *s);
/* How many people are in now. */
int site_present(struct site *s);

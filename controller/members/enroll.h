/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* enroll: binding the next card presented at a reader to a member.
 *
 * One enrolment waits at a time, for at most ENROLL_MAX_SECONDS; the card that arrives at
 * that reader meanwhile is hashed and stored, never decided on (the door stays shut). Two
 * cards presented together are refused: which one the chip picks is not ours to guess. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "reader.h"

#define ENROLL_DEFAULT_SECONDS 60
#define ENROLL_MAX_SECONDS 600

struct services;
struct cmd_call;
struct enroll;

int enroll_new(struct services *svc, struct enroll **ret);
/* Cancels a waiting enrolment (its caller hears "cancelled"). NULL-safe. */
struct enroll *enroll_free(struct enroll *e);

/* Wait up to seconds at reader for a card for member; finishes call when a card comes,
 * the time is up or the caller goes away. Returns CMD_PENDING, or the error (call failed)
 * when another enrolment is waiting. */
int enroll_start(struct enroll *e, struct cmd_call *call, struct reader *reader,
                 int64_t member, const char *label, int64_t seconds);
/* A card arrived at reader: true if an enrolment took it. NULL-safe on e. */
bool enroll_take(struct enroll *e, struct reader *reader, const struct reader_event *ev);
/* Whether an enrolment waits at reader. */
bool enroll_waiting_at(const struct enroll *e, const struct reader *reader);

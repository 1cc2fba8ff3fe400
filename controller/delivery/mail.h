/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* mail: the e-mails Portier writes to members — what each says, in the member's language,
 * as plain text and HTML — and their queuing in the e-mail outbox, in the batch of the
 * change they tell of (so a change and its e-mail are recorded together, or neither).
 * Nothing here waits on the network: delivery.c sends what is queued once it is durable.
 *
 * Every function is a no-op that says why when [mail] is off, the member has no valid
 * address or the queue is full (the log counts those). Addresses and bodies are never
 * logged: an invitation's body holds a one-time link. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "i18n.h"

struct services;
struct store_account;
struct store_booking;

/* What became of a message, for the reply of the command that caused it. */
struct mail_outcome {
    bool queued;
    int64_t id;                 /* when queued */
    char why[96];               /* when not: "the member has no e-mail address", ... */
};

/* {"queued": true, "id": N} or {"queued": false, "why": "..."}, for replies (new reference). */
#include <jansson.h>
json_t *mail_outcome_json(const struct mail_outcome *o);

/* The language a member reads: the one chosen on their web account (/me/language; the
 * first account by name that chose one), else [site] language. */
enum lang mail_member_lang(struct services *svc, int64_t member_id);

/* The one-time link of a member's account (token: the link's secret, path /welcome/TOKEN;
 * it is in the body only). Accounts without a member have no address: not queued. */
int mail_invite(struct services *svc, const struct store_account *acc, const char *token,
                int64_t expires_at, struct mail_outcome *ret);

enum mail_booking_change {
    MAIL_BOOKING_CONFIRMED,             /* the member booked it themselves */
    MAIL_BOOKING_ADDED, MAIL_BOOKING_MOVED, MAIL_BOOKING_CANCELLED      /* by a manager */
};
/* The member's own booking b confirmed, or a manager booked, moved or cancelled b for its
 * member (moved: now new_start..new_end). */
int mail_booking_changed(struct services *svc, enum mail_booking_change what,
                         const struct store_booking *b, int64_t new_start, int64_t new_end,
                         struct mail_outcome *ret);

/* A test message to an address (staff checking the SMTP settings). */
int mail_test(struct services *svc, const char *to, struct mail_outcome *ret);

/* The scheduler, on the loop's minute timer: queue the reminders of bookings about to start
 * and the notices of trainings and memberships about to end that are due at now, and
 * forget old messages once an hour. Only queries and inserts: nothing waits. */
void mail_schedule(struct services *svc, int64_t now);

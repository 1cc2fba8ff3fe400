/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* delivery: e-mails and webhooks, out of the site durably and never on the event loop's
 * time — one engine for both.
 *
 * What leaves is in the database first, written in the same transaction as what it tells
 * of: e-mails in the e-mail outbox (mail.c queues them), webhook events in the outbox MQTT
 * reads too (each webhook with its own cursor, store_events.c). Only what is durable
 * leaves; a kill -9 or a power cut loses nothing, and what was sent but not yet marked is
 * sent again after the restart (at least once: e-mails keep their Message-ID, events their
 * id, so receivers drop repeats).
 *
 * The loop decides and keeps the state; the transport's thread does the network (libcurl)
 * and tells the loop each outcome. On the loop, nothing waits: reads of a few rows, a MIME
 * text or a JSON body and its HMAC, then a hand-over.
 *
 * E-mail: at most a few messages on the wire at once, [mail] per_hour in any hour, failed
 * attempts tried again after 30 s doubling to 1 h, up to max_attempts (an SMTP 5xx answer
 * fails at once), a bounded queue.
 * Webhooks: per receiver, up to in_flight requests at once from a window of events after its
 * cursor; a 2xx delivers, a 4xx other than 408 and 429 refuses the event for good (logged,
 * counted, skipped), anything else is tried again with a back-off from 1 s doubling to 5 min
 * during which nothing new is sent to that receiver. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct services;
struct delivery;

/* Start the engine for svc's [mail] and [webhook] sections (after the outbox's consumers are
 * set, store_outbox_consumers()). *ret is NULL when neither is configured. Reads the secret
 * and password files. 0 or -errno, logged. */
int delivery_new(struct services *svc, struct delivery **ret);
/* Stop: what is on the wire is abandoned (sent again after the next start). NULL-safe. */
struct delivery *delivery_free(struct delivery *d);

/* New rows are durable: send what is due. NULL-safe. */
void delivery_kick(struct delivery *d);
/* Every minute: queue reminders and notices (mail_schedule), forget old messages. */
void delivery_minute(struct delivery *d);

/* A message could not be queued because the queue is full: counted, logged at most once a
 * minute. NULL-safe. */
void delivery_mail_dropped(struct delivery *d, const char *kind);
/* While the hourly limit holds messages back: until when (UTC seconds); else 0. */
int64_t delivery_mail_held_until(struct delivery *d);
/* Is e-mail id on the wire right now? */
bool delivery_mail_sending(const struct delivery *d, int64_t id);

/* The outcome of a watched attempt (a test). */
struct delivery_outcome {
    bool ok;
    bool answered;
    long code;                  /* SMTP reply or HTTP status */
    char error[160];
    uint64_t usec;
};
typedef void (*delivery_watch_fn)(const struct delivery_outcome *o, void *userdata);
/* Hear the outcome of the next attempt to send e-mail id. 0 or -ENOMEM. */
int delivery_watch_mail(struct delivery *d, int64_t id, delivery_watch_fn fn, void *userdata);
/* POST a "test" event to webhook name now (not through the outbox) and hear the outcome.
 * -ENOENT if there is no such webhook. */
int delivery_webhook_test(struct delivery *d, const char *name, delivery_watch_fn fn,
                          void *userdata);
/* Forget every watch with this userdata (its caller went away). NULL-safe. */
void delivery_unwatch(struct delivery *d, void *userdata);

/* For mail.list, webhook.list and status: new references. */
json_t *delivery_mail_json(struct delivery *d);
json_t *delivery_webhooks_json(struct delivery *d);

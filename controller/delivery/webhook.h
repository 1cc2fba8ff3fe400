/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* webhook: what a webhook receiver gets — an event as JSON, and the signature that proves it
 * came from this site (docs/webhooks.md is the receiver's side of this contract).
 *
 * Body: the outbox message (the same fields as on MQTT) with "id" (the event's stable id:
 * the same at every attempt, so receivers drop repeats), "v", "site" and "seq".
 * Signature: header Portier-Signature: t=UNIX,v1=HEX where HEX is the HMAC-SHA256, keyed
 * with the webhook's secret, of "UNIX.BODY" (the timestamp, a dot, the body's bytes). The
 * timestamp is the attempt's, so a receiver can refuse old replays. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_SIGNATURE_MAX 96    /* "t=...,v1=" + 64 hex digits */
#define WEBHOOK_ID_MAX 48

/* The event id: "STREAM-SEQ", STREAM a random name of this database's event stream. */
void webhook_event_id(const char *stream, int64_t seq, char *buf, size_t n);

/* The body for the outbox message (payload: a JSON object; one that does not parse is sent
 * as {} with the fields added). A new string (free()), or NULL without memory. */
char *webhook_body(const char *site, const char *id, int64_t seq, const char *kind,
                   const char *payload);

/* The Portier-Signature header's value for body sent at t, keyed with secret. */
void webhook_sign(const char *secret, int64_t t, const char *body, size_t body_len,
                  char buf[WEBHOOK_SIGNATURE_MAX]);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* members: what the member commands share — dates as people give them, the history of
 * changes, and plan changes that wait for their date.
 *
 * Validity: valid_until is exclusive. A date given without a time of day ("--until
 * 2026-01-01") means the end of that day on the site's clock: it is stored as the next local
 * midnight, so the door, the listings and the web agree that the member may come in all of
 * 1 January. The daemon's TZ is the site's zone ([site] timezone). */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct services;

/* The local midnight that ends t's local day. */
int64_t members_day_end(int64_t t);
/* t moved by a duration "N" followed by d (days), w (weeks), m (months) or y (years),
 * N from 1 to 100, on the site's calendar (months and years keep the time of day). 0 and
 * *ret, or -EINVAL. */
int members_add_duration(int64_t t, const char *spec, int64_t *ret);
/* The start of the billing day of local date t (its day_starts_minutes after midnight). */
int64_t members_billing_day_start(int64_t t, int day_starts_minutes);

/* JSON of a member, as the member commands answer it: times as epoch seconds with a UTC
 * text beside them (key_utc, ISO 8601 with Z, null when unbounded), and its state now. */
json_t *members_json(const struct store_member *m, int64_t now);
/* What member.list answers beside "ok": {"members": [...], "total", "offset", "limit"} for
 * q (states as of q->now); NULL and *ret_r < 0 if the store could not be read. A site's
 * whole list is long to read: the command has a job process read it (billing.c). */
json_t *members_list_fields(struct store *store, const struct store_member_query *q, int *ret_r);
/* What card.list answers beside "ok": {"cards": [...]}, of one member or (0) everyone. */
json_t *members_cards_fields(struct store *store, int64_t member_id, int *ret_r);
/* What card.report answers beside "ok": {"uid_only": [...]}, every card that still opens
 * by its UID, by member name. */
json_t *members_uid_only_fields(struct store *store, int *ret_r);
/* Sets key (epoch seconds) and key_utc (ISO 8601 text, or null for 0) on obj. */
void members_json_time(json_t *obj, const char *key, int64_t t);

/* Record a change of member by the caller (in the open batch); old and new as shown. */
int members_record(struct services *svc, int64_t member, const char *by, const char *field,
                   const char *old, const char *new);

/* Each wall-clock minute: apply the plan changes whose date has come. */
void members_minute(struct services *svc);

/* A member's export (docs/member-export.schema.json): everything the site holds about
 * them, built from store (a job's own connection). info carries what the job cannot read
 * from the database: {"site": {"id", "name", "timezone", "privacy_contact"},
 * "retention": {...}}. NULL, with *ret_code and *ret_error, on failure. */
json_t *members_export(struct store *store, int64_t member_id, json_t *info,
                       const char **ret_code, const char **ret_error);

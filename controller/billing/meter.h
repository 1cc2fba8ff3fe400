/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* meter: what members used, priced by their plan, recorded once and for all.
 *
 * Coworking: the first entry of a billing day charges that day (from a day pass, the
 * plan's monthly allowance or the day rate, in the order the plan says); check-in and
 * check-out make a presence record. Machines: a closed session is metered to the minute
 * (prepaid minutes, the plan's monthly minutes, then the rate: per started block, free
 * minutes, minimum charge). Billing days start at the site's cutoff (04:00 by default),
 * not at midnight. Money is integer cents throughout.
 *
 * Every usage record is appended, in the same transaction, to the signed hash-chained
 * ledger (ledger.h). Records are never changed; mistakes get correction records. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"
#include "store.h"

struct meter;

int meter_new(struct store *store, const char *site, int day_cutoff_minutes, struct meter **ret);
struct meter *meter_free(struct meter *m);
void meter_configure(struct meter *m, const char *site, int day_cutoff_minutes);
void meter_public_key(const struct meter *m, uint8_t pk[LEDGER_PK_LEN]);

/* "YYYY-MM-DD" of the billing day containing t (local time minus the cutoff). */
void meter_billing_day(const struct meter *m, int64_t t, char out[11]);

/* A member came in (entry reader): open presence, charge the day if it is the first entry
 * of the billing day. */
int meter_check_in(struct meter *m, int64_t member_id, const char *resource, int64_t at);
/* A day a member used without badging (a manager's record): the day charge only. */
int meter_manual_day(struct meter *m, int64_t member_id, int64_t at);
/* A member left (exit reader, closing time, manager). -ENOENT if not checked in. */
int meter_check_out(struct meter *m, int64_t member_id, int64_t at, const char *reason);
/* Everyone out (closing time). Returns how many. */
int meter_check_out_all(struct meter *m, int64_t at, const char *reason);

/* A machine session ended. energy_wh: what a meter measured, or -1 if none did. Minutes go
 * through passes, the plan's minutes and the rate as the plan orders them; energy through
 * the plan's included Wh, then the rate's per_kwh_cents (rounded to the cent per session).
 * amount_cents is the sum of both. */
int meter_machine(struct meter *m, int64_t member_id, const char *resource, int64_t started_at,
                  int64_t ended_at, int64_t running_seconds, int64_t energy_wh,
                  const char *reason);

/* Price of charged_wh at per_kwh_cents, to the nearest cent. */
int64_t meter_price_energy(int64_t per_kwh_cents, int64_t charged_wh);

/* A correction of ledger entry seq by amount_delta cents (may be negative). */
int meter_correction(struct meter *m, int64_t seq, int64_t amount_delta_cents, const char *note,
                     int64_t *ret_seq);

/* A visit day: a member of home (pseudonym visitor) let in at door under its passport,
 * billed against home at amount_cents. Appends a "visit" ledger entry whose usage id is
 * visit_id (the consortium's visit record). Joins the caller's step (store_step_begin). */
int meter_visit(struct meter *m, int64_t visit_id, const char *home, const char *visitor,
                const char *door, int64_t at, int64_t amount_cents, int64_t *ret_seq);
/* The sequence number the next ledger entry will take. */
int meter_next_seq(struct meter *m, int64_t *ret_seq);

/* Price of charged minutes under rate (free minutes, started blocks, minimum charge). */
int64_t meter_price_minutes(const struct store_rate *rate, int64_t minutes);

/* Sign data with the site key (archives). */
void meter_sign(const struct meter *m, const void *data, size_t len, uint8_t sig[LEDGER_SIG_LEN]);
const char *meter_site(const struct meter *m);

/* Verify the whole ledger against the site's key; fills v. 0 if intact, -EBADMSG if not. */
int meter_verify(struct meter *m, struct ledger_verifier *v);

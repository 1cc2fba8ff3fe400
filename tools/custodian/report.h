/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* report: what the custodian tells the consortium for a period — usage per site, visits
 * per home site x host site, and who owes whom.
 *
 * The rule (docs/consortium.md): a visit is recorded by the host site with the amount the
 * consortium sets for a visiting day; the home site owes the host that amount. Between two
 * sites only the difference is paid: if X's members used Y for 60.00 and Y's used X for
 * 36.00, X pays Y 24.00. A site's position is what it earned as host minus what it owes as
 * home; positions add up to zero. Money in integer cents; no rounding anywhere. */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "custodian_db.h"

struct report_visit {
    char home[32], host[32];
    int64_t visits, amount_cents;
};

struct report_balance {
    char from[32], to[32];              /* from pays to */
    int64_t amount_cents;               /* > 0 */
};

struct report_position {
    char site[32];
    int64_t earned_cents, owed_cents;   /* net = earned - owed */
};

/* Net balances between pairs of sites: at most max written, sorted by (from, to); returns
 * how many there are (pairs whose visits cancel out are left out). Visits of a site's own
 * members at home are ignored. */
size_t report_net_balances(const struct report_visit *v, size_t n, struct report_balance *out,
                           size_t max);
/* Every site that appears in v, sorted by name: at most max written; returns how many. */
size_t report_positions(const struct report_visit *v, size_t n, struct report_position *out,
                        size_t max);

/* The period's report as JSON (see docs/consortium.md); NULL if period is not YYYY-MM or
 * the database fails (*ret_err: -errno). */
json_t *report_build(struct cdb *db, const char *period, int *ret_err);
/* Render a report object: "text", "csv" or "json". malloc()ed text, or NULL. */
char *report_render(json_t *report, const char *format);

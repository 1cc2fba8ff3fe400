/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* passports: the site's side of member passports and visits (docs/consortium.md section 7).
 *
 * As a home site: every passport_scan_seconds (and at each connection) it works out which
 * of its members may visit (active, valid, a plan with visit days, an enabled card hashed
 * under the consortium's card key) and publishes for each a signed passport, retained, on
 * PREFIX/SITE/passport/PSEUDONYM — again when it changes or after half its validity — and a
 * signed revocation for those who no longer may.
 *
 * As a host: it subscribes to PREFIX/+/passport/#, verifies each passport with its home's
 * key from the sites file, and caches it (bounded). A card unknown here is looked up in that
 * cache (access_visitor_ops: SQLite only, no network); a visitor let in gets one visit day
 * per billing day, recorded with a "visit" ledger entry priced at visit_price_cents, and a
 * signed, retained notice on PREFIX/SITE/visits/HOME/PSEUDONYM with the month's count, from
 * which the home site learns of it and lowers the allowance its passports carry. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "access.h"
#include "config.h"
#include "meter.h"
#include "mqtt.h"
#include "store.h"
#include "store_consortium.h"

struct passports;

/* Borrowed: everything; it must outlive p. -errno with the reason logged (a missing or
 * short key file, a bad sites file). */
int passports_new(sd_event *loop, struct store *store, struct store_consortium *sc,
                  struct meter *meter, struct mqtt *mqtt, const struct config *cfg,
                  struct passports **ret);
struct passports *passports_free(struct passports *p);
/* A reload: use cfg from now on (see consortium_reconfigure()). NULL-safe. */
void passports_reconfigure(struct passports *p, const struct config *cfg);

/* Called by the consortium's MQTT attachment. message() returns true if the topic was a
 * passport's or a visit notice's. */
void passports_connected(struct passports *p);
bool passports_message(struct passports *p, const char *topic, const void *payload, int len);

/* The engine's hooks for cards unknown here; userdata is p. */
extern const struct access_visitor_ops passports_visitor_ops;

/* A card of this site with its UID at hand (enrolment, a tap): keep its consortium hash so
 * its member's passport can carry it. NULL-safe. */
void passports_card_seen(struct passports *p, int64_t card_id, const uint8_t *uid, size_t len);

/* Member member_id may no longer visit, at once (removed or erased): its passport, if one
 * was published, is revoked now with a signed revocation — or at the next scan if the
 * broker is away. NULL-safe. */
void passports_member_gone(struct passports *p, int64_t member_id);

struct passports_stats {
    uint64_t published, revoked, received, refused, visits;
};
void passports_get_stats(const struct passports *p, struct passports_stats *ret);

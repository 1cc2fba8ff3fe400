/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* access: the access engine. A card arrives at a door's reader: hash the UID, look up the
 * holder, ask policy_decide(), drive the door — and only then record and log.
 *
 * The engine keeps the last taps in memory for `portierctl status`. It never sees a UID
 * beyond the hashing call and never logs one. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "cardid.h"
#include "door.h"
#include "policy.h"
#include "reader.h"
#include "store.h"

#define ACCESS_RECENT_MAX 100

struct access_tap {
    int64_t at;                 /* UTC seconds */
    char reader[32];
    char door[32];
    int64_t member_id;          /* 0: unknown card */
    int64_t card_id;
    bool granted;
    enum policy_reason reason;
    int relay_error;            /* granted but door_unlock_for() failed: -errno */
    char card[17];              /* hash prefix, hex: tells cards apart without the UID */
    uint32_t latency_us;        /* tap entering the daemon -> relay written (or decision) */
    int64_t event_id;           /* row in access_events, 0 if it could not be stored */
    bool visitor;               /* the card was another site's member's (passport) */
    char home[32];              /* visitors: their home site */
};

/* Visitors: a card unknown here may be another site's member's. The consortium looks it up
 * among the passports it caches (a local SQLite lookup: nothing on the network) and records
 * the visit once the door is open. */
struct access_visitor {
    struct policy_visitor facts;
    char home[32];
    char id[40];                /* pseudonym */
};
struct access_visitor_ops {
    /* 0 and *ret filled, -ENOENT (no passport carries this card), or -errno. */
    int (*lookup)(void *userdata, const uint8_t *uid, size_t uid_len, int64_t now,
                  struct access_visitor *ret);
    /* v was let in at door at (relay written): record the visit day if not yet done. */
    void (*admitted)(void *userdata, const struct access_visitor *v, const char *door,
                     int64_t at);
};

struct access_engine;

/* The engine borrows store (which must outlive it). */
int access_engine_new(struct store *store, const uint8_t card_key[CARDID_KEY_LEN],
                      unsigned recent_max, struct access_engine **ret);
struct access_engine *access_engine_free(struct access_engine *e);
/* ops and userdata must outlive e, or be detached with NULL. */
void access_engine_set_visitors(struct access_engine *e, const struct access_visitor_ops *ops,
                                void *userdata);

/* Decide and act on the card of ev (READER_CARD_ARRIVED) at door d's reader. ev->targets:
 * how many cards answered the reader when this one arrived (it was selected first, and alone
 * decides); the access log's detail and the log line say so when more than one did.
 * ev->auth: what its DESFire authentication showed, weighed against the door's
 * card_security (policy.h). ev->at_usec: CLOCK_MONOTONIC time the tap entered the daemon.
 * Fills *ret with the outcome. Returns 0, or -errno if the store failed (the decision is
 * then a denial: without the store nobody is known). */
int access_handle_tap(struct access_engine *e, struct door *d, const char *reader,
                      const struct reader_event *ev, struct access_tap *ret);

/* What the card of ev proved, for the record it matched: a member of this site must prove
 * this site's key (its consortium key, which every site holds, is not enough), a visitor the
 * consortium's. */
enum policy_card_proof access_card_proof(const struct reader_event *ev, bool visitor);

/* The detail of a tap's access-log entry: base (NULL or "" for none), then, when targets > 1,
 * "N cards presented; first selected wins" (joined with "; "). Truncated to fit size, always
 * terminated. Returns buf. */
char *access_tap_detail(char *buf, size_t size, const char *base, unsigned targets);

/* Record a door event (exit button, alarm, manual unlock) in the access log. */
int access_record_door_event(struct access_engine *e, struct door *d, const char *kind,
                             bool granted, const char *reason, const char *detail);

/* Recent taps, newest first: returns how many were copied (at most n). */
unsigned access_recent(const struct access_engine *e, struct access_tap *out, unsigned n);

/* Hash a UID with the site key (for card add/enroll). */
void access_card_hash(const struct access_engine *e, const uint8_t *uid, size_t len,
                      uint8_t out[STORE_HASH_LEN]);

/* Counters since start. */
struct access_stats {
    uint64_t taps, granted, denied, store_errors;
};
void access_get_stats(const struct access_engine *e, struct access_stats *ret);

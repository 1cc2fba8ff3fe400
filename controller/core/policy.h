/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* policy: who may open which door, when. Pure: no I/O, no clock, no globals.
 *
 * The caller gathers the facts (card, member, plan, door, local time) and policy_decide()
 * returns a verdict with a reason code. The reason code reaches the event log, portierctl
 * and MQTT, so its string form is part of the interface (see docs/). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "schedule.h"

enum policy_reason {
    POLICY_GRANTED,
    POLICY_UNKNOWN_CARD,
    POLICY_CARD_DISABLED,
    POLICY_MEMBER_SUSPENDED,
    POLICY_MEMBER_NOT_YET_VALID,
    POLICY_MEMBER_EXPIRED,
    POLICY_NO_PLAN,
    POLICY_ZONE_NOT_IN_PLAN,
    POLICY_OUTSIDE_PLAN_HOURS,
    POLICY_MACHINE_OUT_OF_ORDER,
    POLICY_NOT_QUALIFIED,
    POLICY_QUALIFICATION_EXPIRED,
    POLICY_OUTSIDE_OPENING_HOURS,
    POLICY_BOOKED_BY_OTHER,
    POLICY_BOOKING_REQUIRED,
    POLICY_BOOKING_SOON,
    POLICY_VISITOR,                 /* granted: a member of another site, under its passport */
    POLICY_VISITOR_REVOKED,
    POLICY_VISITOR_EXPIRED,
    POLICY_VISITOR_NO_ALLOWANCE,
    POLICY_CARD_NOT_SECURE,         /* the door wants a DESFire proof; the card gave none */
    POLICY_CARD_AUTH_FAILED,        /* the card's DESFire authentication failed */
    POLICY_REASON__MAX,
};

/* What a card must prove at a door or machine (docs/security.md). The order is the
 * configuration's (config_card_securities). */
enum card_security {
    CARD_SECURITY_UID,              /* its UID: any card, or a copy, can show it */
    CARD_SECURITY_DESFIRE,          /* its Portier DESFire key */
    CARD_SECURITY_DESFIRE_OR_UID,   /* migration: a card provisioned as DESFire must prove its
                                     * key; a card enrolled by UID opens by UID */
};

/* What the card proved at this tap, for the record it matched (the access engine decides:
 * a member's card must prove this site's key, a visitor's the consortium's). */
enum policy_card_proof {
    POLICY_PROOF_NONE,              /* nothing: not a DESFire, no Portier application, or the
                                     * reader holds no key */
    POLICY_PROOF_OK,                /* the right key, and the real UID read under it */
    POLICY_PROOF_FAILED,            /* a Portier application that failed, or a card taken
                                     * away during the exchange */
};

enum member_status { MEMBER_ACTIVE, MEMBER_SUSPENDED };

struct policy_card {
    bool enabled;
    bool desfire;                   /* provisioned: it must prove its key wherever the
                                     * security is not `uid` */
};

struct policy_member {
    enum member_status status;
    int64_t valid_from;             /* UTC seconds; 0: no start */
    int64_t valid_until;            /* UTC seconds, exclusive; 0: no end */
};

struct policy_plan {
    const char *zones;              /* comma-separated zone names, or "*" for every zone */
    const struct schedule *hours;   /* when the plan's members may enter */
};

struct policy_door {
    const char *zone;
    enum card_security security;
};

/* A card unknown here but carried by another site's passport (passport.h), as known
 * locally: the cached passport and the visit days counted for it this month. */
struct policy_visitor {
    bool revoked;
    int64_t expires_at;             /* UTC, exclusive */
    int64_t visit_days;             /* the home plan's allowance per month */
    int64_t used_days;              /* this month: days recorded here + days the passport
                                     * says were used at other sites */
    bool visited_today;             /* a visit is already recorded for this billing day */
    bool card_desfire;              /* the passport says this card is a provisioned DESFire */
};

struct policy_request {
    int64_t now;                    /* UTC seconds */
    struct local_time local;        /* now, on the site's wall clock */
    const struct policy_card *card;         /* NULL: card unknown */
    const struct policy_member *member;     /* NULL only if card is NULL */
    const struct policy_plan *plan;         /* NULL: member has no plan */
    const struct policy_door *door;
    const struct policy_visitor *visitor;   /* only read when card is NULL */
    enum policy_card_proof proof;           /* what the card proved at this tap */
};

struct policy_verdict {
    bool granted;
    enum policy_reason reason;
};

struct policy_verdict policy_decide(const struct policy_request *req);
/* The first of policy_decide()'s checks alone: did the card prove what the door's
 * card_security asks? POLICY_GRANTED, POLICY_CARD_NOT_SECURE or POLICY_CARD_AUTH_FAILED. */
enum policy_reason policy_card_proof_check(const struct policy_request *req);

/* ---- machines ---- */

struct policy_machine {
    bool out_of_order;
    bool needs_training;
    bool booking_required;          /* false: walk-up allowed ... */
    int64_t walkup_free_minutes;    /* ... when no booking starts within this many minutes */
    int64_t closing_at;             /* UTC end of the opening window containing now; <= now
                                     * when closed */
};

struct policy_qualification {
    int64_t expires_at;             /* UTC, exclusive; 0: never */
    bool revoked;
};

struct policy_booking {
    int64_t id;
    int64_t member_id;
    int64_t start, end;             /* UTC, [start, end) */
};

struct policy_machine_request {
    struct policy_request base;     /* card, member, plan, now; base.door->zone = machine zone */
    int64_t member_id;
    const struct policy_machine *machine;
    const struct policy_qualification *qualification;  /* NULL: the member has none */
    const struct policy_booking *bookings;  /* not cancelled, end > now, sorted by start */
    size_t n_bookings;
};

struct policy_machine_verdict {
    bool granted;
    enum policy_reason reason;
    int64_t booking_id;             /* the member's booking now; 0 for walk-up use */
    int64_t max_until;              /* UTC: when power must go off at the latest */
    int64_t other_booking_id;       /* booked_by_other / booking_soon: which one */
};

/* The verdict for a member at a machine: the door checks (card, membership, plan), then
 * out-of-order, training, opening hours, bookings. The maximum duration is the end of the
 * member's booking (consecutive bookings of the same member chain), the start of the next
 * booking by someone else, or closing time, whichever comes first. */
struct policy_machine_verdict policy_decide_machine(const struct policy_machine_request *req);

/* "granted", "unknown_card", ...: stable identifiers for logs, events and scripts. */
const char *policy_reason_to_string(enum policy_reason r);
/* A sentence for people: "the member is suspended". */
const char *policy_reason_to_text(enum policy_reason r);

/* Whether zone is listed in the comma-separated list (or the list is "*"). */
bool policy_zone_listed(const char *zones, const char *zone);

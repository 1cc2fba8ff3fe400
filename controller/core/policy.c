/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "policy.h"

#include <string.h>

#include "util.h"

static const struct {
    const char *id;
    const char *text;
} reasons[POLICY_REASON__MAX] = {
    [POLICY_GRANTED] = { "granted", "access granted" },
    [POLICY_UNKNOWN_CARD] = { "unknown_card", "the card is not enrolled" },
    [POLICY_CARD_DISABLED] = { "card_disabled", "the card is disabled" },
    [POLICY_MEMBER_SUSPENDED] = { "member_suspended", "the member is suspended" },
    [POLICY_MEMBER_NOT_YET_VALID] = { "member_not_yet_valid", "the membership has not started" },
    [POLICY_MEMBER_EXPIRED] = { "member_expired", "the membership has expired" },
    [POLICY_NO_PLAN] = { "no_plan", "the member has no plan" },
    [POLICY_ZONE_NOT_IN_PLAN] = { "zone_not_in_plan", "the plan does not include this door's zone" },
    [POLICY_OUTSIDE_PLAN_HOURS] = { "outside_plan_hours", "outside the plan's hours" },
    [POLICY_MACHINE_OUT_OF_ORDER] = { "machine_out_of_order", "the machine is out of order" },
    [POLICY_NOT_QUALIFIED] = { "not_qualified", "the member lacks the training this machine requires" },
    [POLICY_QUALIFICATION_EXPIRED] = { "qualification_expired", "the member's training for this machine has expired" },
    [POLICY_OUTSIDE_OPENING_HOURS] = { "outside_opening_hours", "the machine is closed at this time" },
    [POLICY_BOOKED_BY_OTHER] = { "booked_by_other", "someone else has booked the machine now" },
    [POLICY_BOOKING_REQUIRED] = { "booking_required", "this machine needs a booking" },
    [POLICY_BOOKING_SOON] = { "booking_soon", "someone has booked the machine shortly" },
    [POLICY_VISITOR] = { "visitor", "a member of another site, under its passport" },
    [POLICY_VISITOR_REVOKED] = { "visitor_revoked", "the visitor's passport is revoked" },
    [POLICY_VISITOR_EXPIRED] = { "visitor_expired", "the visitor's passport has expired" },
    [POLICY_VISITOR_NO_ALLOWANCE] = { "visitor_no_allowance", "the visitor has no visiting days left this month" },
    [POLICY_CARD_NOT_SECURE] = { "card_not_secure", "this door needs a DESFire card that proves its key, and this card proved none" },
    [POLICY_CARD_AUTH_FAILED] = { "card_auth_failed", "the card failed its DESFire authentication (a copy, another site's card, or taken away too soon)" },
};

const char *policy_reason_to_string(enum policy_reason r)
{
    return (unsigned)r < POLICY_REASON__MAX ? reasons[r].id : "invalid";
}

const char *policy_reason_to_text(enum policy_reason r)
{
    return (unsigned)r < POLICY_REASON__MAX ? reasons[r].text : "invalid reason";
}

bool policy_zone_listed(const char *zones, const char *zone)
{
    size_t zlen = strlen(zone);
    const char *p = zones;

    if (strcmp(zones, "*") == 0)
        return true;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == zlen && strncmp(p, zone, n) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

static struct policy_verdict deny(enum policy_reason r)
{
    return (struct policy_verdict){ .granted = false, .reason = r };
}

/* Is the card trustworthy enough for this door? Checked before anything else: where a proof
 * is required, a UID alone identifies nobody. POLICY_GRANTED if it is. */
enum policy_reason policy_card_proof_check(const struct policy_request *req)
{
    bool desfire = req->card ? req->card->desfire : req->visitor && req->visitor->card_desfire;

    switch (req->door->security) {
    case CARD_SECURITY_UID:
        return POLICY_GRANTED;
    case CARD_SECURITY_DESFIRE_OR_UID:
        /* A card enrolled by its UID opens by its UID (migration); a provisioned one is held
         * to its key, so a copy of its UID opens nothing even here. */
        if (!desfire)
            return POLICY_GRANTED;
        /* fall through */
    case CARD_SECURITY_DESFIRE:
        break;
    }
    if (req->proof == POLICY_PROOF_OK)
        return POLICY_GRANTED;
    return req->proof == POLICY_PROOF_FAILED ? POLICY_CARD_AUTH_FAILED : POLICY_CARD_NOT_SECURE;
}

struct policy_verdict policy_decide(const struct policy_request *req)
{
    enum policy_reason proof = policy_card_proof_check(req);

    /* The order of checks is the order a manager would look: did the card prove what this
     * door asks, is the card ours, is it on, is the person a member right now, does their
     * plan cover this door at this time. */
    if (proof != POLICY_GRANTED)
        return deny(proof);
    if (!req->card && req->visitor) {
        /* Another site's member: its passport stands for card, membership and plan. A day
         * already recorded today stays open whatever the count says. */
        const struct policy_visitor *v = req->visitor;
        if (v->revoked)
            return deny(POLICY_VISITOR_REVOKED);
        if (req->now >= v->expires_at)
            return deny(POLICY_VISITOR_EXPIRED);
        if (!v->visited_today && v->used_days >= v->visit_days)
            return deny(POLICY_VISITOR_NO_ALLOWANCE);
        return (struct policy_verdict){ .granted = true, .reason = POLICY_VISITOR };
    }
    if (!req->card || !req->member)
        return deny(POLICY_UNKNOWN_CARD);
    if (!req->card->enabled)
        return deny(POLICY_CARD_DISABLED);
    if (req->member->status == MEMBER_SUSPENDED)
        return deny(POLICY_MEMBER_SUSPENDED);
    if (req->member->valid_from && req->now < req->member->valid_from)
        return deny(POLICY_MEMBER_NOT_YET_VALID);
    if (req->member->valid_until && req->now >= req->member->valid_until)
        return deny(POLICY_MEMBER_EXPIRED);
    if (!req->plan)
        return deny(POLICY_NO_PLAN);
    if (!policy_zone_listed(req->plan->zones, req->door->zone))
        return deny(POLICY_ZONE_NOT_IN_PLAN);
    if (!schedule_contains(req->plan->hours, &req->local))
        return deny(POLICY_OUTSIDE_PLAN_HOURS);
    return (struct policy_verdict){ .granted = true, .reason = POLICY_GRANTED };
}

static struct policy_machine_verdict machine_deny(enum policy_reason r, int64_t other)
{
    return (struct policy_machine_verdict){ .reason = r, .other_booking_id = other };
}

struct policy_machine_verdict policy_decide_machine(const struct policy_machine_request *req)
{
    const struct policy_machine *m = req->machine;
    const int64_t now = req->base.now;
    struct policy_machine_verdict v = { .granted = true, .reason = POLICY_GRANTED };
    struct policy_verdict base = policy_decide(&req->base);
    const struct policy_booking *next_other = NULL;
    int64_t chain_end = 0;
    size_t i;

    if (!base.granted)
        return machine_deny(base.reason, 0);
    if (m->out_of_order)
        return machine_deny(POLICY_MACHINE_OUT_OF_ORDER, 0);
    if (m->needs_training) {
        if (!req->qualification || req->qualification->revoked)
            return machine_deny(POLICY_NOT_QUALIFIED, 0);
        if (req->qualification->expires_at && now >= req->qualification->expires_at)
            return machine_deny(POLICY_QUALIFICATION_EXPIRED, 0);
    }
    if (m->closing_at <= now)
        return machine_deny(POLICY_OUTSIDE_OPENING_HOURS, 0);

    /* The member's booking now, if any; someone else's booking now is a refusal. */
    for (i = 0; i < req->n_bookings; i++) {
        const struct policy_booking *b = &req->bookings[i];
        if (b->start <= now && b->end > now) {
            if (b->member_id != req->member_id)
                return machine_deny(POLICY_BOOKED_BY_OTHER, b->id);
            v.booking_id = b->id;
            chain_end = b->end;
        }
    }
    /* The member's own back-to-back bookings make one session. */
    for (bool grew = v.booking_id != 0; grew;) {
        grew = false;
        for (i = 0; i < req->n_bookings; i++)
            if (req->bookings[i].member_id == req->member_id && req->bookings[i].start == chain_end) {
                chain_end = req->bookings[i].end;
                grew = true;
            }
    }
    for (i = 0; i < req->n_bookings; i++)
        if (req->bookings[i].member_id != req->member_id && req->bookings[i].start > now) {
            next_other = &req->bookings[i];
            break;
        }
    if (!v.booking_id) {
        if (m->booking_required)
            return machine_deny(POLICY_BOOKING_REQUIRED, 0);
        if (next_other && next_other->start - now < m->walkup_free_minutes * 60)
            return machine_deny(POLICY_BOOKING_SOON, next_other->id);
    }
    v.max_until = v.booking_id ? chain_end : m->closing_at;
    if (next_other && next_other->start < v.max_until)
        v.max_until = next_other->start;
    if (m->closing_at < v.max_until)
        v.max_until = m->closing_at;
    return v;
}

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

struct policy_verdict policy_decide(const struct policy_request *req)
{
    /* The order of checks is the order a manager would look: is the card ours, is it on,
     * is the person a member right now, does their plan cover this door at this time. */
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

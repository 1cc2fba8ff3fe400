/* Table-driven tests of the real policy_decide(): every row is one tap, described by the
 * facts the access engine gathers, and the verdict a site manager expects.
 *
 * Instants are given in UTC and turned into wall time with local_time_at() under
 * TZ=Europe/Paris, exactly as access_handle_tap() does, so the DST rows check the whole
 * chain "UTC instant -> wall clock -> schedule window". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"
#include "schedule.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum card_kind { NO_CARD, CARD_ON, CARD_OFF };
enum plan_kind { NO_PLAN, PLAN_ALL, PLAN_MAIN_FABLAB, PLAN_FABLAB, PLAN_FAB };

static const char *const plan_zones[] = {
    [NO_PLAN] = NULL,
    [PLAN_ALL] = "*",
    [PLAN_MAIN_FABLAB] = "main,fablab",
    [PLAN_FABLAB] = "fablab",
    [PLAN_FAB] = "fab",
};

/* valid_from / valid_until of the member, relative to the tap: UNBOUNDED stores 0. */
#define UNBOUNDED INT64_MIN

struct utc {
    int year, month, day, hour, minute, second;
};

struct policy_case {
    const char *what;
    enum card_kind card;
    enum member_status status;
    int64_t from_rel, until_rel;
    enum plan_kind plan;
    const char *hours;
    const char *zone;
    struct utc at;
    bool granted;
    enum policy_reason reason;
};

/* Reference days in 2026 (Europe/Paris: CET = UTC+1 in winter, CEST = UTC+2 in summer). */
#define MON_JAN5(h, m) { 2026, 1, 5, h, m, 0 }      /* Monday, CET */
#define FRI_JAN9(h, m) { 2026, 1, 9, h, m, 0 }      /* Friday, CET */
#define SAT_JAN10(h, m) { 2026, 1, 10, h, m, 0 }    /* Saturday, CET */
#define SUN_JAN4(h, m) { 2026, 1, 4, h, m, 0 }      /* Sunday, CET */
#define SUN_JAN11(h, m) { 2026, 1, 11, h, m, 0 }    /* Sunday, CET */
#define SPRING(h, m) { 2026, 3, 29, h, m, 0 }       /* Sunday: 01:00 UTC, 02:00 CET -> 03:00 CEST */
#define SAT_MAR28(h, m) { 2026, 3, 28, h, m, 0 }
#define FALL(h, m) { 2026, 10, 25, h, m, 0 }        /* Sunday: 01:00 UTC, 03:00 CEST -> 02:00 CET */
#define SAT_OCT24(h, m) { 2026, 10, 24, h, m, 0 }

#define OK POLICY_GRANTED
#define ACTIVE MEMBER_ACTIVE
#define SUSPENDED MEMBER_SUSPENDED
#define U UNBOUNDED

static const struct policy_case cases[] = {
    /* ---- who: card, member status, validity; checked in that order ---- */
    { "unknown card is refused even with a generous plan", NO_CARD, ACTIVE, U, U,
      PLAN_ALL, "always", "main", MON_JAN5(10, 0), false, POLICY_UNKNOWN_CARD },
    { "unknown card without plan", NO_CARD, ACTIVE, U, U, NO_PLAN, NULL, "main",
      MON_JAN5(10, 0), false, POLICY_UNKNOWN_CARD },
    { "enabled card, active member, plan * always", CARD_ON, ACTIVE, U, U, PLAN_ALL, "always",
      "main", MON_JAN5(10, 0), true, OK },
    { "disabled card", CARD_OFF, ACTIVE, U, U, PLAN_ALL, "always", "main", MON_JAN5(10, 0),
      false, POLICY_CARD_DISABLED },
    { "disabled card wins over suspended member", CARD_OFF, SUSPENDED, U, U, PLAN_ALL, "always",
      "main", MON_JAN5(10, 0), false, POLICY_CARD_DISABLED },
    { "suspended member", CARD_ON, SUSPENDED, U, U, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), false, POLICY_MEMBER_SUSPENDED },
    { "suspended wins over expired", CARD_ON, SUSPENDED, U, -3600, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), false, POLICY_MEMBER_SUSPENDED },
    { "valid_from one second in the future", CARD_ON, ACTIVE, 1, U, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), false, POLICY_MEMBER_NOT_YET_VALID },
    { "valid_from exactly now is valid", CARD_ON, ACTIVE, 0, U, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), true, OK },
    { "valid_from a day ago", CARD_ON, ACTIVE, -86400, U, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), true, OK },
    { "valid_until exactly now is expired (exclusive)", CARD_ON, ACTIVE, U, 0, PLAN_ALL,
      "always", "main", MON_JAN5(10, 0), false, POLICY_MEMBER_EXPIRED },
    { "valid_until one second later is still valid", CARD_ON, ACTIVE, U, 1, PLAN_ALL, "always",
      "main", MON_JAN5(10, 0), true, OK },
    { "valid_until one second ago", CARD_ON, ACTIVE, U, -1, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), false, POLICY_MEMBER_EXPIRED },
    { "inside a bounded validity", CARD_ON, ACTIVE, -10, 10, PLAN_ALL, "always", "main",
      MON_JAN5(10, 0), true, OK },
    { "not yet valid is checked before expiry", CARD_ON, ACTIVE, 10, -10, PLAN_ALL, "always",
      "main", MON_JAN5(10, 0), false, POLICY_MEMBER_NOT_YET_VALID },
    { "expired member refused before the plan is looked at", CARD_ON, ACTIVE, U, -1, NO_PLAN,
      NULL, "main", MON_JAN5(10, 0), false, POLICY_MEMBER_EXPIRED },
    { "member without plan", CARD_ON, ACTIVE, U, U, NO_PLAN, NULL, "main", MON_JAN5(10, 0),
      false, POLICY_NO_PLAN },

    /* ---- where: zone lists match whole names only ---- */
    { "zone first in list", CARD_ON, ACTIVE, U, U, PLAN_MAIN_FABLAB, "always", "main",
      MON_JAN5(10, 0), true, OK },
    { "zone last in list", CARD_ON, ACTIVE, U, U, PLAN_MAIN_FABLAB, "always", "fablab",
      MON_JAN5(10, 0), true, OK },
    { "zone not in list", CARD_ON, ACTIVE, U, U, PLAN_MAIN_FABLAB, "always", "office",
      MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "door zone 'fab' is a prefix of listed 'fablab'", CARD_ON, ACTIVE, U, U,
      PLAN_MAIN_FABLAB, "always", "fab", MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "door zone 'fab' vs plan 'fablab'", CARD_ON, ACTIVE, U, U, PLAN_FABLAB, "always", "fab",
      MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "door zone 'fablab' vs plan 'fab'", CARD_ON, ACTIVE, U, U, PLAN_FAB, "always", "fablab",
      MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "door zone 'lab' is a suffix of 'fablab'", CARD_ON, ACTIVE, U, U, PLAN_FABLAB, "always",
      "lab", MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "door zone 'main' vs plan 'fablab'", CARD_ON, ACTIVE, U, U, PLAN_FABLAB, "always", "main",
      MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "plan '*' covers any zone", CARD_ON, ACTIVE, U, U, PLAN_ALL, "always", "basement",
      MON_JAN5(10, 0), true, OK },
    { "zone checked before hours", CARD_ON, ACTIVE, U, U, PLAN_FABLAB, "never", "main",
      MON_JAN5(10, 0), false, POLICY_ZONE_NOT_IN_PLAN },
    { "plan hours 'never'", CARD_ON, ACTIVE, U, U, PLAN_ALL, "never", "main", MON_JAN5(10, 0),
      false, POLICY_OUTSIDE_PLAN_HOURS },

    /* ---- when: window edges (Monday 5 January 2026, CET = UTC+1) ---- */
    { "exactly at start (08:00 CET) is in", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Mon-Fri 08:00-20:00", "main", MON_JAN5(7, 0), true, OK },
    { "one minute before start (07:59) is out", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Mon-Fri 08:00-20:00", "main", MON_JAN5(6, 59), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "last minute (19:59) is in", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Mon-Fri 08:00-20:00",
      "main", MON_JAN5(18, 59), true, OK },
    { "exactly at end (20:00) is out", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Mon-Fri 08:00-20:00",
      "main", MON_JAN5(19, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "Saturday is not Mon-Fri", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Mon-Fri 08:00-20:00", "main",
      SAT_JAN10(11, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "second window of the list (Sat 10:00-13:00)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Mon-Fri 08:00-20:00, Sat 10:00-13:00", "main", SAT_JAN10(11, 0), true, OK },
    { "daily 00:00-24:00 at local midnight", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "daily 00:00-24:00", "main", SUN_JAN4(23, 0), true, OK },
    { "daily 00:00-24:00 at 23:59", CARD_ON, ACTIVE, U, U, PLAN_ALL, "daily 00:00-24:00", "main",
      SUN_JAN4(22, 59), true, OK },

    /* ---- overnight windows ---- */
    { "Fri 22:00-02:00 at Friday 22:00", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Fri 22:00-02:00",
      "main", FRI_JAN9(21, 0), true, OK },
    { "Fri 22:00-02:00 at Friday 21:59", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Fri 22:00-02:00",
      "main", FRI_JAN9(20, 59), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "Fri 22:00-02:00 at Saturday 00:00", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Fri 22:00-02:00",
      "main", FRI_JAN9(23, 0), true, OK },
    { "Fri 22:00-02:00 at Saturday 01:59", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Fri 22:00-02:00",
      "main", SAT_JAN10(0, 59), true, OK },
    { "Fri 22:00-02:00 at Saturday 02:00", CARD_ON, ACTIVE, U, U, PLAN_ALL, "Fri 22:00-02:00",
      "main", SAT_JAN10(1, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "Fri 22:00-02:00 does not start on Saturday 22:00", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Fri 22:00-02:00", "main", SAT_JAN10(21, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "Fri 22:00-02:00 does not spill into Sunday 01:00", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Fri 22:00-02:00", "main", SUN_JAN11(0, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "Sat 23:00-01:00 wraps the week into Sunday 00:30", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sat 23:00-01:00", "main", SAT_JAN10(23, 30), true, OK },
    { "Sun 23:00-01:00 spills into Monday 00:30", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 23:00-01:00", "main", SUN_JAN4(23, 30), true, OK },

    /* ---- spring forward, Sunday 29 March 2026: 01:00 UTC = 02:00 CET -> 03:00 CEST ---- */
    { "spring: Sun 08:00-09:00 at 06:00 UTC (08:00 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", SPRING(6, 0), true, OK },
    { "spring: Sun 08:00-09:00 at 06:30 UTC (08:30 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", SPRING(6, 30), true, OK },
    { "spring: Sun 08:00-09:00 at 05:30 UTC (07:30 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", SPRING(5, 30), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 08:00-09:00 at 07:00 UTC (09:00 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", SPRING(7, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 08:00-09:00 at 07:30 UTC (09:30 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", SPRING(7, 30), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 02:30-02:45 at 00:35 UTC (01:35 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:30-02:45", "main", SPRING(0, 35), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 02:30-02:45 at 00:59 UTC (01:59 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:30-02:45", "main", SPRING(0, 59), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 02:30-02:45 at 01:00 UTC (03:00 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:30-02:45", "main", SPRING(1, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 02:30-02:45 at 01:35 UTC (03:35 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:30-02:45", "main", SPRING(1, 35), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sun 03:00-04:00 opens at the jump, 01:00 UTC", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 03:00-04:00", "main", SPRING(1, 0), true, OK },
    { "spring: Sun 01:00-02:00 at 00:30 UTC (01:30 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 01:00-02:00", "main", SPRING(0, 30), true, OK },
    { "spring: Sat 22:00-02:00 ends at the jump (03:00 CEST)", CARD_ON, ACTIVE, U, U,
      PLAN_ALL, "Sat 22:00-02:00", "main", SPRING(1, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "spring: Sat 22:00-02:00 at 00:59 UTC (01:59 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sat 22:00-02:00", "main", SPRING(0, 59), true, OK },
    { "spring eve: Sat 08:00-09:00 at 07:30 UTC is still CET", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sat 08:00-09:00", "main", SAT_MAR28(7, 30), true, OK },

    /* ---- fall back, Sunday 25 October 2026: 01:00 UTC = 03:00 CEST -> 02:00 CET ---- */
    { "fall: Sun 02:00-03:00 at 00:00 UTC (02:00 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", FALL(0, 0), true, OK },
    { "fall: Sun 02:00-03:00 at 00:30 UTC (02:30 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", FALL(0, 30), true, OK },
    { "fall: Sun 02:00-03:00 at 01:00 UTC (02:00 CET, again)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", FALL(1, 0), true, OK },
    { "fall: Sun 02:00-03:00 at 01:30 UTC (02:30 CET, again)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", FALL(1, 30), true, OK },
    { "fall: Sun 02:00-03:00 at 02:00 UTC (03:00 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", FALL(2, 0), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "fall: Sun 02:00-03:00 at 23:59 UTC Sat (01:59 CEST)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 02:00-03:00", "main", SAT_OCT24(23, 59), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "fall: Sun 08:00-09:00 at 07:00 UTC (08:00 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", FALL(7, 0), true, OK },
    { "fall: Sun 08:00-09:00 at 06:30 UTC (07:30 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", FALL(6, 30), false, POLICY_OUTSIDE_PLAN_HOURS },
    { "fall: Sun 08:00-09:00 at 07:59 UTC (08:59 CET)", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sun 08:00-09:00", "main", FALL(7, 59), true, OK },
    { "fall eve: Sat 08:00-09:00 at 06:30 UTC is still CEST", CARD_ON, ACTIVE, U, U, PLAN_ALL,
      "Sat 08:00-09:00", "main", SAT_OCT24(6, 30), true, OK },

    /* ---- everything at once ---- */
    { "fablab member in the fablab on Saturday morning", CARD_ON, ACTIVE, -86400, 86400,
      PLAN_MAIN_FABLAB, "Mon-Fri 08:00-20:00, Sat 10:00-13:00", "fablab", SAT_JAN10(9, 0), true,
      OK },
    { "fablab member in the fablab on Saturday at 13:00", CARD_ON, ACTIVE, -86400, 86400,
      PLAN_MAIN_FABLAB, "Mon-Fri 08:00-20:00, Sat 10:00-13:00", "fablab", SAT_JAN10(12, 0),
      false, POLICY_OUTSIDE_PLAN_HOURS },
};

static int64_t utc_seconds(const struct utc *u)
{
    struct tm tm = {
        .tm_year = u->year - 1900, .tm_mon = u->month - 1, .tm_mday = u->day,
        .tm_hour = u->hour, .tm_min = u->minute, .tm_sec = u->second,
    };
    return (int64_t)timegm(&tm);
}

static int64_t bound(int64_t now, int64_t rel)
{
    return rel == UNBOUNDED ? 0 : now + rel;
}

static void test_policy_table(void **state)
{
    unsigned failures = 0;

    (void)state;
    assert_true(N_ELEMS(cases) >= 30);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const struct policy_case *c = &cases[i];
        struct policy_card card = { .enabled = c->card == CARD_ON };
        struct policy_member member;
        struct schedule hours;
        struct policy_plan plan;
        struct policy_door door = { .zone = c->zone };
        struct policy_request req = { .door = &door };
        struct policy_verdict v;
        const char *err = NULL;

        req.now = utc_seconds(&c->at);
        local_time_at(req.now, &req.local);
        member = (struct policy_member){
            .status = c->status,
            .valid_from = bound(req.now, c->from_rel),
            .valid_until = bound(req.now, c->until_rel),
        };
        if (c->card != NO_CARD) {
            req.card = &card;
            req.member = &member;
        }
        if (c->plan != NO_PLAN) {
            if (schedule_parse(c->hours, &hours, &err) != 0) {
                print_error("case %zu '%s': schedule '%s' does not parse: %s\n", i, c->what,
                            c->hours, err ? err : "?");
                failures++;
                continue;
            }
            plan = (struct policy_plan){ .zones = plan_zones[c->plan], .hours = &hours };
            req.plan = &plan;
        }
        v = policy_decide(&req);
        if (v.granted != c->granted || v.reason != c->reason) {
            print_error("case %zu '%s': expected %s/%s, got %s/%s (local wday %d %02d:%02d)\n",
                        i, c->what, c->granted ? "granted" : "denied",
                        policy_reason_to_string(c->reason), v.granted ? "granted" : "denied",
                        policy_reason_to_string(v.reason), req.local.wday,
                        req.local.minute / 60, req.local.minute % 60);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A grant always carries POLICY_GRANTED and a denial never does. */
static void test_verdict_consistent(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++)
        assert_true(cases[i].granted == (cases[i].reason == POLICY_GRANTED));
}

/* The local times the DST rows rely on, checked directly against the engine's converter. */
static void test_local_time_paris(void **state)
{
    static const struct {
        struct utc at;
        int wday, hour, minute;
    } rows[] = {
        { MON_JAN5(7, 0), 1, 8, 0 },
        { SAT_JAN10(0, 59), 6, 1, 59 },
        { SAT_JAN10(23, 30), 0, 0, 30 },
        { SPRING(0, 59), 0, 1, 59 },
        { SPRING(1, 0), 0, 3, 0 },
        { SPRING(6, 30), 0, 8, 30 },
        { SPRING(7, 30), 0, 9, 30 },
        { FALL(0, 30), 0, 2, 30 },
        { FALL(0, 59), 0, 2, 59 },
        { FALL(1, 0), 0, 2, 0 },
        { FALL(1, 30), 0, 2, 30 },
        { FALL(2, 0), 0, 3, 0 },
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        struct local_time lt = { -1, -1 };
        local_time_at(utc_seconds(&rows[i].at), &lt);
        assert_int_equal(lt.wday, rows[i].wday);
        assert_int_equal(lt.minute, rows[i].hour * 60 + rows[i].minute);
    }
}

static void test_reason_strings(void **state)
{
    static const char *const expected[POLICY_REASON__MAX] = {
        [POLICY_GRANTED] = "granted",
        [POLICY_UNKNOWN_CARD] = "unknown_card",
        [POLICY_CARD_DISABLED] = "card_disabled",
        [POLICY_MEMBER_SUSPENDED] = "member_suspended",
        [POLICY_MEMBER_NOT_YET_VALID] = "member_not_yet_valid",
        [POLICY_MEMBER_EXPIRED] = "member_expired",
        [POLICY_NO_PLAN] = "no_plan",
        [POLICY_ZONE_NOT_IN_PLAN] = "zone_not_in_plan",
        [POLICY_OUTSIDE_PLAN_HOURS] = "outside_plan_hours",
    };
    (void)state;
    for (int r = 0; r < POLICY_REASON__MAX; r++) {
        const char *id = policy_reason_to_string((enum policy_reason)r);
        const char *text = policy_reason_to_text((enum policy_reason)r);
        assert_non_null(id);
        assert_non_null(text);
        assert_string_not_equal(id, "invalid");
        assert_string_not_equal(text, "invalid reason");
        assert_true(strlen(text) > 0);
        /* Identifiers are part of the interface (events, MQTT, scripts): pin them. */
        assert_non_null(expected[r]);
        assert_string_equal(id, expected[r]);
        for (int q = 0; q < r; q++) {
            assert_string_not_equal(id, policy_reason_to_string((enum policy_reason)q));
            assert_string_not_equal(text, policy_reason_to_text((enum policy_reason)q));
        }
    }
    assert_string_equal(policy_reason_to_string(POLICY_REASON__MAX), "invalid");
    assert_string_equal(policy_reason_to_string((enum policy_reason)-1), "invalid");
    assert_string_equal(policy_reason_to_text(POLICY_REASON__MAX), "invalid reason");
}

static void test_zone_listed(void **state)
{
    (void)state;
    assert_true(policy_zone_listed("*", "main"));
    assert_true(policy_zone_listed("*", "anything-at-all"));
    assert_true(policy_zone_listed("main", "main"));
    assert_true(policy_zone_listed("main,fablab", "main"));
    assert_true(policy_zone_listed("main,fablab", "fablab"));
    assert_true(policy_zone_listed("a,b,c", "b"));
    assert_false(policy_zone_listed("main,fablab", "fab"));
    assert_false(policy_zone_listed("main,fablab", "lab"));
    assert_false(policy_zone_listed("main,fablab", "mai"));
    assert_false(policy_zone_listed("main,fablab", "main,fablab"));
    assert_false(policy_zone_listed("fab", "fablab"));
    assert_false(policy_zone_listed("fablab", "fab"));
    assert_false(policy_zone_listed("", "main"));
    assert_false(policy_zone_listed("main", "MAIN"));
    /* "*" is only a wildcard as the whole list. */
    assert_false(policy_zone_listed("main,*", "fablab"));
    assert_false(policy_zone_listed("**", "main"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_time_paris),
        cmocka_unit_test(test_verdict_consistent),
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_reason_strings),
        cmocka_unit_test(test_zone_listed),
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

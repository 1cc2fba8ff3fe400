/* SPDX-License-Identifier: AGPL-3.0-or-later */
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

/* ---- machines: policy_decide_machine() ----
 *
 * Every row is one tap at a machine in the "fablab" zone at NOW (Monday 5 January 2026,
 * 10:00 CET) by member 7. Times are relative to NOW; bookings are given sorted by start,
 * as the store returns them. */

#define MINS(x) ((int64_t)(x) * 60)
#define ME 7
#define OTHER 8

enum subject {
    W_OK,               /* enabled card, active member, plan "main,fablab" always */
    W_UNKNOWN,
    W_CARD_OFF,
    W_SUSPENDED,
    W_EXPIRED,
    W_NO_PLAN,
    W_ZONE_MAIN,        /* plan covers "main" only */
    W_PLAN_EVENINGS,    /* plan hours Mon-Fri 18:00-22:00 */
};

enum qual_kind { Q_NONE, Q_FOREVER, Q_UNTIL, Q_REVOKED, Q_REVOKED_UNTIL };

struct machine_spec {
    bool out_of_order, needs_training, booking_required;
    int64_t walkup_free_minutes;
    int64_t closing_rel;
};

struct booking_spec {
    int64_t id;             /* 0: end of list */
    int64_t member_id;
    int64_t start_rel, end_rel;
};

struct machine_case {
    const char *what;
    enum subject who;
    struct machine_spec m;
    enum qual_kind q;
    int64_t q_expires_rel;
    struct booking_spec b[5];
    bool granted;
    enum policy_reason reason;
    int64_t booking_id;
    int64_t max_until_rel;      /* checked when granted */
    int64_t other_booking_id;
};

/* Training needed, walk-up allowed when nothing starts within 15 minutes, open until 20:00. */
#define STD_M { false, true, false, 15, MINS(600) }
#define CLOSING(rel) { false, true, false, 15, rel }
#define WALKUP(min) { false, true, false, min, MINS(600) }
#define REQUIRED { false, true, true, 15, MINS(600) }
#define BROKEN { true, true, false, 15, MINS(600) }
#define NO_TRAINING { false, false, false, 15, MINS(600) }
#define BK(id, who, s, e) { id, who, MINS(s), MINS(e) }

static const struct machine_case machine_cases[] = {
    /* ---- the door checks come first ---- */
    { "unknown card, even at a broken machine", W_UNKNOWN, BROKEN, Q_NONE, 0, { { 0 } }, false,
      POLICY_UNKNOWN_CARD, 0, 0, 0 },
    { "disabled card", W_CARD_OFF, STD_M, Q_FOREVER, 0, { { 0 } }, false, POLICY_CARD_DISABLED,
      0, 0, 0 },
    { "suspended member with their own booking now", W_SUSPENDED, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30) }, false, POLICY_MEMBER_SUSPENDED, 0, 0, 0 },
    { "suspended member at a broken machine", W_SUSPENDED, BROKEN, Q_NONE, 0, { { 0 } }, false,
      POLICY_MEMBER_SUSPENDED, 0, 0, 0 },
    { "expired membership", W_EXPIRED, STD_M, Q_FOREVER, 0, { { 0 } }, false,
      POLICY_MEMBER_EXPIRED, 0, 0, 0 },
    { "no plan", W_NO_PLAN, STD_M, Q_FOREVER, 0, { { 0 } }, false, POLICY_NO_PLAN, 0, 0, 0 },
    { "machine zone not in the plan, with own booking", W_ZONE_MAIN, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30) }, false, POLICY_ZONE_NOT_IN_PLAN, 0, 0, 0 },
    { "outside the plan's hours", W_PLAN_EVENINGS, STD_M, Q_FOREVER, 0, { { 0 } }, false,
      POLICY_OUTSIDE_PLAN_HOURS, 0, 0, 0 },

    /* ---- the machine and the member's training ---- */
    { "out of order", W_OK, BROKEN, Q_FOREVER, 0, { { 0 } }, false,
      POLICY_MACHINE_OUT_OF_ORDER, 0, 0, 0 },
    { "out of order beats missing training", W_OK, BROKEN, Q_NONE, 0, { { 0 } }, false,
      POLICY_MACHINE_OUT_OF_ORDER, 0, 0, 0 },
    { "qualification missing", W_OK, STD_M, Q_NONE, 0, { { 0 } }, false, POLICY_NOT_QUALIFIED, 0,
      0, 0 },
    { "qualification revoked", W_OK, STD_M, Q_REVOKED, 0, { { 0 } }, false,
      POLICY_NOT_QUALIFIED, 0, 0, 0 },
    { "revoked beats expired", W_OK, STD_M, Q_REVOKED_UNTIL, -86400, { { 0 } }, false,
      POLICY_NOT_QUALIFIED, 0, 0, 0 },
    { "revoked, with own booking now", W_OK, STD_M, Q_REVOKED, 0, { BK(11, ME, -30, 30) },
      false, POLICY_NOT_QUALIFIED, 0, 0, 0 },
    { "qualification expires exactly now (exclusive)", W_OK, STD_M, Q_UNTIL, 0, { { 0 } },
      false, POLICY_QUALIFICATION_EXPIRED, 0, 0, 0 },
    { "qualification expired a second ago", W_OK, STD_M, Q_UNTIL, -1, { { 0 } }, false,
      POLICY_QUALIFICATION_EXPIRED, 0, 0, 0 },
    { "qualification expires in a second", W_OK, STD_M, Q_UNTIL, 1, { { 0 } }, true,
      POLICY_GRANTED, 0, MINS(600), 0 },
    { "no training needed, none held", W_OK, NO_TRAINING, Q_NONE, 0, { { 0 } }, true,
      POLICY_GRANTED, 0, MINS(600), 0 },
    { "training checked before opening hours", W_OK, CLOSING(0), Q_NONE, 0, { { 0 } }, false,
      POLICY_NOT_QUALIFIED, 0, 0, 0 },

    /* ---- opening hours ---- */
    { "closing exactly now", W_OK, CLOSING(0), Q_FOREVER, 0, { { 0 } }, false,
      POLICY_OUTSIDE_OPENING_HOURS, 0, 0, 0 },
    { "closed since an hour", W_OK, CLOSING(MINS(-60)), Q_FOREVER, 0, { { 0 } }, false,
      POLICY_OUTSIDE_OPENING_HOURS, 0, 0, 0 },
    { "closed, even with own booking now", W_OK, CLOSING(0), Q_FOREVER, 0,
      { BK(11, ME, -30, 30) }, false, POLICY_OUTSIDE_OPENING_HOURS, 0, 0, 0 },
    { "closing in one second: walk-up until then", W_OK, CLOSING(1), Q_FOREVER, 0, { { 0 } },
      true, POLICY_GRANTED, 0, 1, 0 },

    /* ---- someone else's booking now ---- */
    { "other's booking now", W_OK, STD_M, Q_FOREVER, 0, { BK(5, OTHER, -30, 30) }, false,
      POLICY_BOOKED_BY_OTHER, 0, 0, 5 },
    { "other's booking starting exactly now", W_OK, STD_M, Q_FOREVER, 0,
      { BK(5, OTHER, 0, 60) }, false, POLICY_BOOKED_BY_OTHER, 0, 0, 5 },
    { "other's booking now beats booking_required", W_OK, REQUIRED, Q_FOREVER, 0,
      { BK(5, OTHER, -30, 30) }, false, POLICY_BOOKED_BY_OTHER, 0, 0, 5 },
    { "other's booking ended exactly now: walk-up", W_OK, STD_M, Q_FOREVER, 0,
      { BK(5, OTHER, -60, 0) }, true, POLICY_GRANTED, 0, MINS(600), 0 },

    /* ---- own bookings ---- */
    { "own booking now", W_OK, STD_M, Q_FOREVER, 0, { BK(11, ME, -30, 30) }, true,
      POLICY_GRANTED, 11, MINS(30), 0 },
    { "own booking starting exactly now", W_OK, STD_M, Q_FOREVER, 0, { BK(11, ME, 0, 60) }, true,
      POLICY_GRANTED, 11, MINS(60), 0 },
    { "own booking when bookings are required", W_OK, REQUIRED, Q_FOREVER, 0,
      { BK(11, ME, -30, 30) }, true, POLICY_GRANTED, 11, MINS(30), 0 },
    { "own back-to-back bookings chain", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(12, ME, 30, 90) }, true, POLICY_GRANTED, 11, MINS(90), 0 },
    { "three in a row", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(12, ME, 30, 90), BK(13, ME, 90, 120) }, true, POLICY_GRANTED, 11,
      MINS(120), 0 },
    { "a gap breaks the chain", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(12, ME, 31, 90) }, true, POLICY_GRANTED, 11, MINS(30), 0 },
    { "someone else's booking between own ones breaks the chain", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(5, OTHER, 30, 60), BK(12, ME, 60, 90) }, true, POLICY_GRANTED,
      11, MINS(30), 0 },
    { "own booking, then another member's right after", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(5, OTHER, 30, 60) }, true, POLICY_GRANTED, 11, MINS(30), 0 },
    { "own booking, another's starting within the walk-up margin: still granted", W_OK, STD_M,
      Q_FOREVER, 0, { BK(11, ME, -50, 5), BK(5, OTHER, 5, 60) }, true, POLICY_GRANTED, 11,
      MINS(5), 0 },
    { "own booking capped by closing time", W_OK, CLOSING(MINS(60)), Q_FOREVER, 0,
      { BK(11, ME, -30, 120) }, true, POLICY_GRANTED, 11, MINS(60), 0 },
    { "own chain capped by closing time", W_OK, CLOSING(MINS(45)), Q_FOREVER, 0,
      { BK(11, ME, -30, 30), BK(12, ME, 30, 90) }, true, POLICY_GRANTED, 11, MINS(45), 0 },
    { "own booking capped by another's that starts before its end", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, -30, 60), BK(5, OTHER, 30, 90) }, true, POLICY_GRANTED, 11, MINS(30), 0 },

    /* ---- walk-up ---- */
    { "walk-up, nothing booked: until closing", W_OK, STD_M, Q_FOREVER, 0, { { 0 } }, true,
      POLICY_GRANTED, 0, MINS(600), 0 },
    { "walk-up when a booking is required", W_OK, REQUIRED, Q_FOREVER, 0, { { 0 } }, false,
      POLICY_BOOKING_REQUIRED, 0, 0, 0 },
    { "walk-up when required, own booking later", W_OK, REQUIRED, Q_FOREVER, 0,
      { BK(11, ME, 60, 120) }, false, POLICY_BOOKING_REQUIRED, 0, 0, 0 },
    { "booking_required checked before booking_soon", W_OK, REQUIRED, Q_FOREVER, 0,
      { BK(5, OTHER, 10, 60) }, false, POLICY_BOOKING_REQUIRED, 0, 0, 0 },
    { "walk-up, another's booking in 10 minutes", W_OK, STD_M, Q_FOREVER, 0,
      { BK(5, OTHER, 10, 60) }, false, POLICY_BOOKING_SOON, 0, 0, 5 },
    { "walk-up, another's booking in 15 minutes less a second", W_OK, STD_M, Q_FOREVER, 0,
      { { 5, OTHER, MINS(15) - 1, MINS(60) } }, false, POLICY_BOOKING_SOON, 0, 0, 5 },
    { "walk-up, another's booking exactly 15 minutes ahead", W_OK, STD_M, Q_FOREVER, 0,
      { BK(5, OTHER, 15, 60) }, true, POLICY_GRANTED, 0, MINS(15), 0 },
    { "walk-up until another's booking in an hour", W_OK, STD_M, Q_FOREVER, 0,
      { BK(5, OTHER, 60, 120), BK(6, OTHER, 180, 240) }, true, POLICY_GRANTED, 0, MINS(60), 0 },
    { "walk-up until closing, before another's booking", W_OK, CLOSING(MINS(30)), Q_FOREVER, 0,
      { BK(5, OTHER, 60, 120) }, true, POLICY_GRANTED, 0, MINS(30), 0 },
    { "walk-up, no margin: another's booking in a minute", W_OK, WALKUP(0), Q_FOREVER, 0,
      { BK(5, OTHER, 1, 60) }, true, POLICY_GRANTED, 0, MINS(1), 0 },
    { "walk-up with own booking soon: not blocked by it", W_OK, STD_M, Q_FOREVER, 0,
      { BK(11, ME, 5, 60), BK(5, OTHER, 60, 120) }, true, POLICY_GRANTED, 0, MINS(60), 0 },
    { "walk-up, the next booking by someone else is the one that counts", W_OK, WALKUP(30),
      Q_FOREVER, 0, { BK(11, ME, 10, 40), BK(5, OTHER, 40, 60) }, true, POLICY_GRANTED, 0,
      MINS(40), 0 },
};

/* Monday 5 January 2026, 10:00 CET. */
static const struct utc machine_now = MON_JAN5(9, 0);

static void test_machine_table(void **state)
{
    unsigned failures = 0;

    (void)state;
    assert_true(N_ELEMS(machine_cases) >= 25);
    for (size_t i = 0; i < N_ELEMS(machine_cases); i++) {
        const struct machine_case *c = &machine_cases[i];
        const int64_t now = utc_seconds(&machine_now);
        struct policy_card card = { .enabled = c->who != W_CARD_OFF };
        struct policy_member member = { .status = c->who == W_SUSPENDED ? MEMBER_SUSPENDED
                                                                        : MEMBER_ACTIVE,
                                        .valid_until = c->who == W_EXPIRED ? now - 1 : 0 };
        struct schedule hours;
        struct policy_plan plan = { .zones = c->who == W_ZONE_MAIN ? "main" : "main,fablab",
                                    .hours = &hours };
        struct policy_door zone = { .zone = "fablab" };
        struct policy_machine m = {
            .out_of_order = c->m.out_of_order,
            .needs_training = c->m.needs_training,
            .booking_required = c->m.booking_required,
            .walkup_free_minutes = c->m.walkup_free_minutes,
            .closing_at = now + c->m.closing_rel,
        };
        struct policy_qualification q = {
            .expires_at = c->q == Q_UNTIL || c->q == Q_REVOKED_UNTIL ? now + c->q_expires_rel : 0,
            .revoked = c->q == Q_REVOKED || c->q == Q_REVOKED_UNTIL,
        };
        struct policy_booking bookings[N_ELEMS(c->b)];
        struct policy_machine_request req = { .member_id = ME, .machine = &m };
        struct policy_machine_verdict v;
        size_t n = 0;

        assert_int_equal(schedule_parse(c->who == W_PLAN_EVENINGS ? "Mon-Fri 18:00-22:00"
                                                                  : "always",
                                        &hours, NULL),
                         0);
        req.base.now = now;
        local_time_at(now, &req.base.local);
        req.base.door = &zone;
        if (c->who != W_UNKNOWN) {
            req.base.card = &card;
            req.base.member = &member;
            if (c->who != W_NO_PLAN)
                req.base.plan = &plan;
        }
        if (c->q != Q_NONE)
            req.qualification = &q;
        for (; n < N_ELEMS(c->b) && c->b[n].id; n++)
            bookings[n] = (struct policy_booking){ .id = c->b[n].id,
                                                   .member_id = c->b[n].member_id,
                                                   .start = now + c->b[n].start_rel,
                                                   .end = now + c->b[n].end_rel };
        req.bookings = n ? bookings : NULL;
        req.n_bookings = n;

        v = policy_decide_machine(&req);
        if (v.granted != c->granted || v.reason != c->reason ||
            v.booking_id != c->booking_id || v.other_booking_id != c->other_booking_id ||
            (c->granted && v.max_until != now + c->max_until_rel)) {
            print_error("machine case %zu '%s': expected %s/%s booking %lld other %lld "
                        "max_until %+lld s, got %s/%s booking %lld other %lld max_until "
                        "%+lld s\n",
                        i, c->what, c->granted ? "granted" : "denied",
                        policy_reason_to_string(c->reason), (long long)c->booking_id,
                        (long long)c->other_booking_id, (long long)c->max_until_rel,
                        v.granted ? "granted" : "denied", policy_reason_to_string(v.reason),
                        (long long)v.booking_id, (long long)v.other_booking_id,
                        (long long)(v.max_until - now));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* Every machine reason the policy can give has a row. */
static void test_machine_table_covers_reasons(void **state)
{
    bool seen[POLICY_REASON__MAX] = { false };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(machine_cases); i++) {
        assert_true(machine_cases[i].granted == (machine_cases[i].reason == POLICY_GRANTED));
        seen[machine_cases[i].reason] = true;
    }
    /* Visitor reasons are the door's only: machines know members, not passports. The card's
     * proof is the first check of both, tested in test_card_security. */
    for (int r = POLICY_MACHINE_OUT_OF_ORDER; r < POLICY_VISITOR; r++)
        if (!seen[r])
            fail_msg("no machine row for %s", policy_reason_to_string((enum policy_reason)r));
    assert_true(seen[POLICY_GRANTED]);
}

/* What a card must prove (card_security), against what it proved (proof), for a card
 * enrolled by UID, a provisioned one, an unknown one, and a visitor's. The proof comes
 * first: where it is required, a UID alone identifies nobody. */
static void test_card_security(void **state)
{
    enum who { LEGACY, PROVISIONED, UNKNOWN, VISITOR_LEGACY, VISITOR_DESFIRE };
    static const struct {
        enum card_security security;
        enum who who;
        enum policy_card_proof proof;
        enum policy_reason reason;
    } rows[] = {
        /* uid: the UID decides, whatever the card proved */
        { CARD_SECURITY_UID, LEGACY, POLICY_PROOF_NONE, POLICY_GRANTED },
        { CARD_SECURITY_UID, PROVISIONED, POLICY_PROOF_NONE, POLICY_GRANTED },
        { CARD_SECURITY_UID, PROVISIONED, POLICY_PROOF_FAILED, POLICY_GRANTED },
        { CARD_SECURITY_UID, UNKNOWN, POLICY_PROOF_NONE, POLICY_UNKNOWN_CARD },
        { CARD_SECURITY_UID, VISITOR_DESFIRE, POLICY_PROOF_NONE, POLICY_VISITOR },
        /* desfire: nothing without the key */
        { CARD_SECURITY_DESFIRE, PROVISIONED, POLICY_PROOF_OK, POLICY_GRANTED },
        { CARD_SECURITY_DESFIRE, PROVISIONED, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE, PROVISIONED, POLICY_PROOF_FAILED, POLICY_CARD_AUTH_FAILED },
        { CARD_SECURITY_DESFIRE, LEGACY, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE, LEGACY, POLICY_PROOF_OK, POLICY_GRANTED },
        { CARD_SECURITY_DESFIRE, UNKNOWN, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE, UNKNOWN, POLICY_PROOF_FAILED, POLICY_CARD_AUTH_FAILED },
        { CARD_SECURITY_DESFIRE, UNKNOWN, POLICY_PROOF_OK, POLICY_UNKNOWN_CARD },
        { CARD_SECURITY_DESFIRE, VISITOR_DESFIRE, POLICY_PROOF_OK, POLICY_VISITOR },
        { CARD_SECURITY_DESFIRE, VISITOR_DESFIRE, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE, VISITOR_LEGACY, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        /* desfire-or-uid: UID cards still open, provisioned ones are held to their key (a
         * copy of their UID is refused even here) */
        { CARD_SECURITY_DESFIRE_OR_UID, LEGACY, POLICY_PROOF_NONE, POLICY_GRANTED },
        { CARD_SECURITY_DESFIRE_OR_UID, LEGACY, POLICY_PROOF_FAILED, POLICY_GRANTED },
        { CARD_SECURITY_DESFIRE_OR_UID, PROVISIONED, POLICY_PROOF_OK, POLICY_GRANTED },
        { CARD_SECURITY_DESFIRE_OR_UID, PROVISIONED, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE_OR_UID, PROVISIONED, POLICY_PROOF_FAILED, POLICY_CARD_AUTH_FAILED },
        { CARD_SECURITY_DESFIRE_OR_UID, UNKNOWN, POLICY_PROOF_NONE, POLICY_UNKNOWN_CARD },
        { CARD_SECURITY_DESFIRE_OR_UID, VISITOR_LEGACY, POLICY_PROOF_NONE, POLICY_VISITOR },
        { CARD_SECURITY_DESFIRE_OR_UID, VISITOR_DESFIRE, POLICY_PROOF_NONE, POLICY_CARD_NOT_SECURE },
        { CARD_SECURITY_DESFIRE_OR_UID, VISITOR_DESFIRE, POLICY_PROOF_OK, POLICY_VISITOR },
    };
    struct policy_member member = { .status = MEMBER_ACTIVE };
    struct schedule always;
    struct policy_plan plan = { .zones = "*", .hours = &always };

    (void)state;
    assert_int_equal(schedule_parse("always", &always, NULL), 0);
    for (size_t i = 0; i < N_ELEMS(rows); i++) {
        struct policy_door door = { .zone = "main", .security = rows[i].security };
        struct policy_card card = { .enabled = true, .desfire = rows[i].who == PROVISIONED };
        struct policy_visitor visitor = { .expires_at = 2000, .visit_days = 2,
                                          .card_desfire = rows[i].who == VISITOR_DESFIRE };
        struct policy_request req = { .now = 1000, .door = &door, .proof = rows[i].proof };
        struct policy_verdict v;

        if (rows[i].who == LEGACY || rows[i].who == PROVISIONED) {
            req.card = &card;
            req.member = &member;
            req.plan = &plan;
        } else if (rows[i].who == VISITOR_LEGACY || rows[i].who == VISITOR_DESFIRE) {
            req.visitor = &visitor;
        }
        v = policy_decide(&req);
        if (v.reason != rows[i].reason ||
            v.granted != (rows[i].reason == POLICY_GRANTED || rows[i].reason == POLICY_VISITOR))
            fail_msg("row %zu: expected %s, got %s (%s)", i, policy_reason_to_string(rows[i].reason),
                     policy_reason_to_string(v.reason), v.granted ? "granted" : "denied");
        assert_int_equal(policy_card_proof_check(&req) == POLICY_GRANTED,
                         v.reason != POLICY_CARD_NOT_SECURE && v.reason != POLICY_CARD_AUTH_FAILED);
    }
}

/* A card unknown here but carried by another site's passport: the passport's facts decide. */
static void test_visitor(void **state)
{
    static const struct {
        struct policy_visitor v;
        bool with_card;
        enum policy_reason reason;
    } vcases[] = {
        { { .expires_at = 2000, .visit_days = 2, .used_days = 0 }, false, POLICY_VISITOR },
        { { .expires_at = 2000, .visit_days = 2, .used_days = 1 }, false, POLICY_VISITOR },
        { { .expires_at = 2000, .visit_days = 2, .used_days = 2 }, false,
          POLICY_VISITOR_NO_ALLOWANCE },
        /* the day is already counted: coming back the same day is no new visit */
        { { .expires_at = 2000, .visit_days = 2, .used_days = 2, .visited_today = true }, false,
          POLICY_VISITOR },
        { { .expires_at = 2000, .visit_days = 0 }, false, POLICY_VISITOR_NO_ALLOWANCE },
        { { .expires_at = 1000, .visit_days = 2 }, false, POLICY_VISITOR_EXPIRED },
        { { .expires_at = 999, .visit_days = 2 }, false, POLICY_VISITOR_EXPIRED },
        { { .revoked = true, .expires_at = 2000, .visit_days = 2, .visited_today = true }, false,
          POLICY_VISITOR_REVOKED },
        /* a card known here is the site's own business: the passport is not read */
        { { .revoked = true, .expires_at = 0 }, true, POLICY_GRANTED },
    };
    struct policy_card card = { .enabled = true };
    struct policy_member member = { .status = MEMBER_ACTIVE };
    struct schedule always;
    struct policy_plan plan = { .zones = "*", .hours = &always };
    struct policy_door door = { .zone = "main" };

    (void)state;
    assert_int_equal(schedule_parse("always", &always, NULL), 0);
    for (size_t i = 0; i < N_ELEMS(vcases); i++) {
        struct policy_request req = { .now = 1000, .door = &door, .visitor = &vcases[i].v };
        struct policy_verdict v;
        if (vcases[i].with_card) {
            req.card = &card;
            req.member = &member;
            req.plan = &plan;
        }
        v = policy_decide(&req);
        if (v.reason != vcases[i].reason || v.granted != (vcases[i].reason == POLICY_VISITOR ||
                                                         vcases[i].reason == POLICY_GRANTED))
            fail_msg("visitor case %zu: expected %s, got %s", i,
                     policy_reason_to_string(vcases[i].reason), policy_reason_to_string(v.reason));
    }
    /* No passport either: unknown. */
    struct policy_request none = { .now = 1000, .door = &door };
    assert_int_equal(policy_decide(&none).reason, POLICY_UNKNOWN_CARD);
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
        [POLICY_MACHINE_OUT_OF_ORDER] = "machine_out_of_order",
        [POLICY_NOT_QUALIFIED] = "not_qualified",
        [POLICY_QUALIFICATION_EXPIRED] = "qualification_expired",
        [POLICY_OUTSIDE_OPENING_HOURS] = "outside_opening_hours",
        [POLICY_BOOKED_BY_OTHER] = "booked_by_other",
        [POLICY_BOOKING_REQUIRED] = "booking_required",
        [POLICY_BOOKING_SOON] = "booking_soon",
        [POLICY_VISITOR] = "visitor",
        [POLICY_VISITOR_REVOKED] = "visitor_revoked",
        [POLICY_VISITOR_EXPIRED] = "visitor_expired",
        [POLICY_VISITOR_NO_ALLOWANCE] = "visitor_no_allowance",
        [POLICY_CARD_NOT_SECURE] = "card_not_secure",
        [POLICY_CARD_AUTH_FAILED] = "card_auth_failed",
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
        cmocka_unit_test(test_machine_table_covers_reasons),
        cmocka_unit_test(test_machine_table),
        cmocka_unit_test(test_reason_strings),
        cmocka_unit_test(test_visitor),
        cmocka_unit_test(test_card_security),
        cmocka_unit_test(test_zone_listed),
    };

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    return cmocka_run_group_tests(tests, NULL, NULL);
}

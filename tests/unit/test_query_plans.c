/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* Nothing on the door's path or the booking path may grow with the site.
 *
 * The real daemon (daemon_new(): store, doors, fablab, metering, commands; simulated
 * hardware, no loop running) on a database with tens of thousands of members, cards, day
 * charges of this month, bookings and access events. The test drives the paths a site runs
 * on its event loop — a member's first tap of the day (a day charged to a plan with monthly
 * days, a signed ledger entry), an ordinary tap, an unknown card, a machine switched on and
 * off, a booking made and cancelled, the status — then reads every statement the store
 * prepared and ran:
 *
 * - EXPLAIN QUERY PLAN: no table of the site's data is scanned (SCAN), nor searched by a
 *   range on its first index column alone (a walk over a whole month of everyone's usage);
 * - the statement's own counters: at most STEPS_PER_RUN virtual-machine steps per run,
 *   where any walk over the populated tables would take tens of thousands;
 * - the triggers those statements fire (a tap's access event sets its card's last use;
 *   members, cards and presence keep counters): each one's condition and statements planned
 *   on their own, by the same rule.
 *
 * A failure names the statement, its plan and its steps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cardid.h"
#include "command.h"
#include "commit.h"
#include "daemon.h"
#include "meter.h"
#include "services.h"
#include "store.h"
#include "store_internal.h"

#define MEMBERS 20000
#define CARDS 30000
#define DAY_CHARGES 30000       /* this month, of other members */
#define BOOKINGS 20000
#define EVENTS 30000
#define PASSES 20000
/* A walk over any populated table takes about 90,000 steps (counting the members of a plan
 * without an index on plan_id took 90,026). The busiest statement on these paths, a
 * booking's check (the planner, controller/fablab/planner.c), reads the machine's bookings
 * of the booking's week, of the week before (a booking lasts a week at most) and of the
 * week after: m1 is booked every half hour here, 1,008 bookings, about 15,400 steps,
 * bounded by the calendar and by one machine, not by the site. */
#define STEPS_PER_RUN 20000

/* Tables whose size is the site's configuration, not its activity or membership. */
static const char *const small_tables[] = { "plans", "resources", "machine_rules", "trainings",
                                            "rates", "site_secrets", "ledger_head", "periods",
                                            "counters", "sqlite_sequence", NULL };

struct fixture {
    char dir[PATH_MAX];
    struct daemon *d;
    struct services *svc;
    uint8_t key[CARDID_KEY_LEN];
    int64_t cowork, open;           /* members with a card: plan with days, plan without */
    char this_month[8];             /* YYYY-MM (UTC) */
};

static void uid_of(int64_t i, char out[15])
{
    snprintf(out, 15, "04%012" PRIX64, (uint64_t)i);
}

static void hash_uid(const struct fixture *f, int64_t i, uint8_t out[STORE_HASH_LEN])
{
    uint8_t uid[7] = { 0x04 };
    for (int b = 0; b < 6; b++)
        uid[1 + b] = (uint8_t)((uint64_t)i >> (8 * (5 - b)));
    cardid_hash(f->key, uid, sizeof(uid), out);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
}

/* The site, written through the store (members, cards: their hashes need the card key) and
 * in bulk with SQL (activity: usage, bookings, events). */
static void populate(struct fixture *f, const char *db_path)
{
    struct store *s;
    int64_t plan_days, plan_none, id, resource;
    uint8_t hash[STORE_HASH_LEN];
    char sql[1024];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(f->this_month, sizeof(f->this_month), "%Y-%m", &tm);
    assert_int_equal(store_open(db_path, &s), 0);
    assert_int_equal(store_secret(s, "card_key", f->key, sizeof(f->key)), 0);
    assert_int_equal(store_plan_add(s, "cowork", "*", "always", &plan_days), 0);
    assert_int_equal(store_plan_set_billing(s, plan_days, 8, 1500, "pass,plan,rate", 0), 0);
    assert_int_equal(store_plan_add(s, "open", "*", "always", &plan_none), 0);
    struct store_rate rate = { .target = "*", .monthly_minutes = 600, .per_hour_cents = 600,
                               .block_minutes = 15 };
    assert_int_equal(store_rate_put(s, plan_days, &rate), 0);
    assert_int_equal(store_resource_ensure(s, "machine", "m1", "", &resource), 0);
    for (int64_t m = 0; m < MEMBERS; m++) {
        char name[32];
        snprintf(name, sizeof(name), "Member %06" PRId64, m);
        assert_int_equal(store_member_add(s, name, "", m % 2 ? plan_none : plan_days, 0, 0, &id), 0);
        if (m == 0)
            f->cowork = id;
        if (m == 1)
            f->open = id;
    }
    for (int64_t c = 0; c < CARDS; c++) {
        hash_uid(f, c, hash);
        assert_int_equal(store_card_add(s, 1 + c % MEMBERS, hash, "", NULL), 0);
    }
    assert_int_equal(store_commit(s), 0);

    /* Day charges of this month by everyone but the two members who tap; machine sessions'
     * usage too; bookings of m1 over the past year and the next; the access log. */
    exec_sql(s->db, "BEGIN");
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO usage (kind, member_id, billing_day, started_at, ended_at, quantity, "
             "unit, allowance, plan_quantity, amount_cents, ledger_seq, recorded_at) "
             "SELECT CASE WHEN i %% 5 THEN 'day' ELSE 'machine' END, 3 + i %% %d, "
             "'%s-' || printf('%%02d', 1 + i %% 28), 0, 0, 1, 'day', 'plan', 1, 0, 0, 0 FROM n",
             DAY_CHARGES - 1, MEMBERS - 3, f->this_month);
    exec_sql(s->db, sql);
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO bookings (resource_id, member_id, starts_at, ends_at, created_at, "
             "created_by) SELECT %" PRId64 ", 3 + i %% %d, "
             "(strftime('%%s', 'now') / 1800 - %d + i) * 1800, "
             "(strftime('%%s', 'now') / 1800 - %d + i) * 1800 + 1800, 0, 'test' FROM n "
             "WHERE i NOT BETWEEN %d AND %d + 7",
             BOOKINGS - 1, resource, MEMBERS - 3, BOOKINGS / 2, BOOKINGS / 2, BOOKINGS / 2,
             BOOKINGS / 2);
    exec_sql(s->db, sql);
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO access_events (at, member_id, card_id, kind, granted, reason) "
             "SELECT strftime('%%s', 'now') - i, 3 + i %% %d, 1 + i %% %d, 'tap', 1, 'granted' "
             "FROM n", EVENTS - 1, MEMBERS - 3, CARDS);
    exec_sql(s->db, sql);
    snprintf(sql, sizeof(sql),
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "INSERT INTO passes (member_id, kind, quantity, remaining, created_at, created_by) "
             "SELECT 3 + i %% %d, CASE WHEN i %% 2 THEN 'days' ELSE 'minutes' END, 10, i %% 3, "
             "0, 'test' FROM n", PASSES - 1, MEMBERS - 3);
    exec_sql(s->db, sql);
    exec_sql(s->db, "COMMIT");      /* no ANALYZE: the daemon never runs one */
    store_free(s);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("PORTIER_TEST_TMP");
    char path[PATH_MAX + 64];
    FILE *conf;

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "%s/plans-XXXXXX", tmp ? tmp : "/tmp");
    if (tmp)
        mkdir(tmp, 0700);
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/state", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/portier.conf", f->dir);
    conf = fopen(path, "w");
    assert_non_null(conf);
    fprintf(conf, "[site]\nid = plans\ntimezone = UTC\n"
                  "[daemon]\nstate_dir = %s/state\ncontrol_socket = %s/ctl.sock\nlog_level = error\n"
                  /* a test process, not a door: normal priority */
                  "realtime_priority = 0\n"
                  "[hardware]\nbackend = sim\n"
                  "[reader front]\ndriver = sim\n[door front]\nreader = front\nrelay = 17\n"
                  "[reader m1]\ndriver = sim\n[machine m1]\nreader = m1\nrelay = 18\n",
            f->dir, f->dir);
    fclose(conf);
    snprintf(path, sizeof(path), "%s/state/portier.db", f->dir);
    populate(f, path);
    snprintf(path, sizeof(path), "%s/portier.conf", f->dir);
    assert_int_equal(daemon_new(path, &f->d), 0);
    f->svc = daemon_services(f->d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 16];

    daemon_free(f->d);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static json_t *run(struct fixture *f, json_t *req)
{
    struct actor a = { .role = ROLE_SYSTEM, .channel = CHANNEL_CONTROL };
    json_t *reply;

    assert_non_null(req);
    snprintf(a.who, sizeof(a.who), "test");
    reply = cmd_run(f->svc, &a, req);
    json_decref(req);
    if (!json_is_true(json_object_get(reply, "ok")) && !json_object_get(reply, "granted")) {
        char *text = json_dumps(reply, 0);
        fail_msg("refused: %s", text);
    }
    return reply;
}

/* want: 1 granted, 0 refused, -1 either (a machine's second tap ends its session). */
static void tap(struct fixture *f, const char *reader, int64_t card, int want)
{
    char uid[15];
    json_t *reply;

    uid_of(card, uid);
    reply = run(f, json_pack("{s:s, s:s, s:s}", "cmd", "sim.tap", "reader", reader, "uid", uid));
    if (want >= 0)
        assert_int_equal(json_is_true(json_object_get(reply, "granted")), want);
    json_decref(reply);
}

static void reset_counters(sqlite3_stmt *st, void *ctx)
{
    sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
    sqlite3_stmt_status(st, SQLITE_STMTSTATUS_RUN, 1);
}

struct verdicts {
    sqlite3 *db;
    unsigned checked, bad;
    bool saw_days_used, saw_minutes_used, saw_subject, saw_access_event, saw_last_used;
    char report[16384];
};

static bool small_table(const char *name)
{
    for (const char *const *t = small_tables; *t; t++)
        if (strcmp(*t, name) == 0)
            return true;
    return false;
}

/* Plans name a table by its alias when it has one ("FROM bookings b JOIN members m"): the
 * table an alias stands for in sql, or name itself. */
static void table_of(const char *sql, const char *name, char *out, size_t n)
{
    static const char *const not_alias[] = { "ON", "WHERE", "JOIN", "LEFT", "INNER", "CROSS",
                                             "ORDER", "GROUP", "LIMIT", "USING", "SET",
                                             "VALUES", "AS", NULL };
    snprintf(out, n, "%s", name);
    for (const char *p = sql; (p = strstr(p, " ")); p++) {
        char kw[8], table[64], alias[64];
        bool keyword = false;
        if (sscanf(p, " %7s %63[a-z_] %63[A-Za-z_]", kw, table, alias) != 3 ||
            (strcmp(kw, "FROM") != 0 && strcmp(kw, "JOIN") != 0))
            continue;
        if (strcmp(alias, "AS") == 0 && sscanf(p, " %*s %*s AS %63[A-Za-z_]", alias) != 1)
            continue;
        for (const char *const *k = not_alias; *k; k++)
            keyword |= strcmp(*k, alias) == 0;
        if (!keyword && strcmp(alias, name) == 0) {
            snprintf(out, n, "%s", table);
            return;
        }
    }
}

/* One line of a plan: "SCAN t", "SCAN t USING INDEX i", "SEARCH t USING INDEX i (a=? AND
 * b>?)", ... Returns a reason to refuse it, or NULL. */
static const char *plan_line_refused(const char *sql, const char *detail)
{
    char name[64] = "", table[64] = "";
    const char *open;

    if (sscanf(detail, "SCAN %63s", name) == 1) {
        table_of(sql, name, table, sizeof(table));
        /* A scan of a subquery's result or a small table is fine; of the site's data not. */
        if (strncmp(detail, "SCAN CONSTANT ROW", 17) == 0 || small_table(table))
            return NULL;
        return "scans a table of the site's data";
    }
    if (sscanf(detail, "SEARCH %63s", name) != 1)
        return NULL;
    table_of(sql, name, table, sizeof(table));
    if (small_table(table))
        return NULL;
    /* A search whose first constraint is a range walks everything in that range: the whole
     * month, everyone. The first constraint must be an equality. */
    open = strchr(detail, '(');
    if (open && !strstr(detail, "rowid=") && !strchr(open, '='))
        return "searches by a range alone";
    if (open) {
        const char *first_end = strpbrk(open + 1, " )");
        size_t len = first_end ? (size_t)(first_end - open - 1) : strlen(open + 1);
        if (!memchr(open + 1, '=', len))
            return "searches by a range before any equality";
    }
    return NULL;
}

/* The plan of sql (EXPLAIN QUERY PLAN) into plan; the first reason to refuse it, or NULL. */
static const char *plan_refused(sqlite3 *db, const char *sql, char *plan, size_t n)
{
    char eqp[4096];
    const char *why = NULL;
    sqlite3_stmt *q;

    plan[0] = '\0';
    snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_prepare_v2(db, eqp, -1, &q, NULL) != SQLITE_OK)
        fail_msg("%s: %s", eqp, sqlite3_errmsg(db));
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(q, 3);
        const char *refused = plan_line_refused(sql, detail);
        size_t len = strlen(plan);
        snprintf(plan + len, n - len, "    %s%s%s\n", detail, refused ? "  <- " : "",
                 refused ? refused : "");
        if (refused && !why)
            why = refused;
    }
    sqlite3_finalize(q);
    return why;
}

static void report(struct verdicts *v, const char *why, const char *what, const char *sql,
                   const char *plan)
{
    size_t len = strlen(v->report);

    v->bad++;
    snprintf(v->report + len, sizeof(v->report) - len, "%s (%s):\n  %s\n%s", why, what, sql,
             plan);
}

static void verdict(sqlite3_stmt *st, void *ctx)
{
    struct verdicts *v = ctx;
    int runs = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_RUN, 0);
    int steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
    const char *sql = sqlite3_sql(st);
    char plan[2048], what[64];
    const char *why;

    if (runs == 0)
        return;
    v->checked++;
    if (getenv("PORTIER_TEST_VERBOSE"))
        fprintf(stderr, "%d runs, %d steps: %s\n", runs, steps, sql);
    if (strstr(sql, "allowance = 'plan' AND billing_day BETWEEN"))
        v->saw_days_used = true;
    if (strstr(sql, "sum(plan_quantity)"))
        v->saw_minutes_used = true;
    if (strstr(sql, "FROM cards c JOIN members m") && strstr(sql, "uid_hash = ?1"))
        v->saw_subject = true;
    if (strncmp(sql, "INSERT INTO access_events", 25) == 0)
        v->saw_access_event = true;
    if (strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "COMMIT", 6) == 0 ||
        strncmp(sql, "ROLLBACK", 8) == 0 || strncmp(sql, "SAVEPOINT", 9) == 0 ||
        strncmp(sql, "RELEASE", 7) == 0 || strncmp(sql, "PRAGMA", 6) == 0)
        return;
    why = plan_refused(v->db, sql, plan, sizeof(plan));
    /* The steps of a statement include those of the triggers it fires. */
    if (!why && steps / runs > STEPS_PER_RUN)
        why = "takes too many steps per run";
    snprintf(what, sizeof(what), "%d runs, %d steps each", runs, steps / runs);
    if (why)
        report(v, why, what, sql, plan);
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* text with every NEW.column and OLD.column of a trigger made a parameter. */
static void unrow(const char *text, size_t len, char *out, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if ((i == 0 || !ident_char(text[i - 1])) && len - i > 4 &&
            (strncmp(text + i, "NEW.", 4) == 0 || strncmp(text + i, "OLD.", 4) == 0)) {
            for (i += 4; i < len && ident_char(text[i]); i++)
                ;
            i--;
            out[o++] = '?';
            continue;
        }
        out[o++] = text[i];
    }
    out[o] = '\0';
}

/* Triggers run inside the statements that fire them (an access event sets its card's last
 * use, members and cards keep their counters), and the plans of those statements do not show
 * the triggers' own: each trigger's condition and statements are planned on their own, with
 * its NEW and OLD columns as parameters. */
static void trigger_verdicts(struct verdicts *v)
{
    sqlite3_stmt *t;

    assert_int_equal(sqlite3_prepare_v2(v->db, "SELECT name, sql FROM sqlite_master "
                                        "WHERE type = 'trigger' ORDER BY name", -1, &t, NULL),
                     SQLITE_OK);
    while (sqlite3_step(t) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(t, 0);
        const char *sql = (const char *)sqlite3_column_text(t, 1);
        const char *when = strstr(sql, " WHEN "), *begin = strstr(sql, " BEGIN ");
        const char *end = begin ? strstr(begin, " END") : NULL;
        char what[96], stmt[2048], plan[2048], cond[1024];
        const char *why;

        assert_non_null(begin);
        assert_non_null(end);
        while ((why = strstr(end + 1, " END")))
            end = why;                  /* the last END closes the body */
        snprintf(what, sizeof(what), "trigger %s", name);
        if (strcmp(name, "cards_last_used") == 0)
            v->saw_last_used = true;
        v->checked++;
        if (when && when < begin) {
            unrow(when + 6, (size_t)(begin - when - 6), cond, sizeof(cond));
            snprintf(stmt, sizeof(stmt), "SELECT 1 WHERE %s", cond);
            if ((why = plan_refused(v->db, stmt, plan, sizeof(plan))))
                report(v, why, what, stmt, plan);
        }
        for (const char *p = begin + 7, *semi; p < end; p = semi + 1) {
            bool quoted = false;
            for (semi = p; semi < end && (quoted || *semi != ';'); semi++)
                if (*semi == '\'')
                    quoted = !quoted;   /* a ';' inside a message ends nothing */
            while (p < semi && *p == ' ')
                p++;
            /* RAISE() exists only inside a trigger: those refuse a write, they read nothing. */
            if (p == semi || strncmp(p, "SELECT RAISE(", 13) == 0)
                continue;
            unrow(p, (size_t)(semi - p), stmt, sizeof(stmt));
            if ((why = plan_refused(v->db, stmt, plan, sizeof(plan))))
                report(v, why, what, stmt, plan);
        }
    }
    sqlite3_finalize(t);
}

static void test_tap_and_booking_paths_do_not_grow_with_the_site(void **state)
{
    struct fixture *f = *state;
    struct verdicts v = { .db = f->svc->store->db };
    int64_t start = (time(NULL) / 1800 + 6) * 1800, booking;
    char member[24];
    json_t *reply;

    /* Warm up: statements prepared at start-up (or by a first use elsewhere) count as
     * used only from here. */
    store_stmts_foreach(f->svc->store->stmts, reset_counters, NULL);

    tap(f, "front", 0, 1);              /* first tap of the day: a plan day, the ledger */
    tap(f, "front", 0, 1);              /* already in, already charged */
    tap(f, "front", 1, 1);              /* first of the day, plan without days */
    tap(f, "front", CARDS + 7, 0);      /* a card nobody holds */
    tap(f, "m1", 0, 1);                 /* machine on: booking, rules, training */
    tap(f, "m1", 0, -1);                /* and off */
    /* The session's end (a handover timer, on the loop): its usage against the plan's
     * included minutes of the month, passes and the rate. */
    assert_int_equal(meter_machine(f->svc->meter, f->cowork, "m1", time(NULL) - 600, time(NULL),
                                   300, 250, "test"), 0);
    snprintf(member, sizeof(member), "%" PRId64, f->open);
    reply = run(f, json_pack("{s:s, s:s, s:s, s:I, s:I}", "cmd", "booking.add", "machine", "m1",
                             "member", member, "start", (json_int_t)start,
                             "end", (json_int_t)(start + 1800)));
    booking = json_integer_value(json_object_get(reply, "id"));
    json_decref(reply);
    assert_true(booking > 0);
    json_decref(run(f, json_pack("{s:s, s:I}", "cmd", "booking.cancel", "booking",
                                 (json_int_t)booking)));
    json_decref(run(f, json_pack("{s:s}", "cmd", "status")));
    assert_int_equal(commit_flush(f->svc->commit), 0);

    store_stmts_foreach(f->svc->store->stmts, verdict, &v);
    trigger_verdicts(&v);
    assert_true(v.checked > 20);
    assert_true(v.saw_access_event);    /* taps were logged: the triggers below ran */
    assert_true(v.saw_last_used);       /* and the card's last use is among them */
    assert_true(v.saw_subject);
    assert_true(v.saw_days_used);       /* the first tap did ask about the plan's days */
    assert_true(v.saw_minutes_used);    /* and the session about the plan's minutes */
    if (v.bad) {
        fputs(v.report, stderr);
        fail_msg("%u of %u statements on the tap and booking paths grow with the site:\n%s",
                 v.bad, v.checked, "(above)");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tap_and_booking_paths_do_not_grow_with_the_site,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

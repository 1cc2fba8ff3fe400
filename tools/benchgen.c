/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portier-benchgen: build a large site for tools/bench, and time the decision path.
 *
 *   portier-benchgen populate DIR MEMBERS CARDS   config + database with synthetic members
 *   portier-benchgen decide DIR COUNT             time COUNT lookups + policy decisions
 *   portier-benchgen week DIR BOOKINGS MACHINES   machines, every booking within next week
 *
 * Card i has the 7-byte UID 04 followed by i as 6 big-endian bytes, so the bench can tap
 * any card without storing UIDs anywhere. Uses the real store and policy modules. */
#include <errno.h>
#include <sodium.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cardid.h"
#include "ledger.h"
#include "meter.h"
#include "policy.h"
#include "schedule.h"
#include "store.h"
#include "util.h"

static void card_uid(uint64_t i, uint8_t uid[7])
{
    uid[0] = 0x04;
    for (int b = 0; b < 6; b++)
        uid[1 + b] = (uint8_t)(i >> (8 * (5 - b)));
}

static int die(const char *what, int r)
{
    fprintf(stderr, "portier-benchgen: %s: %s\n", what, strerror(-r));
    return 1;
}

static int populate(const char *dir, int64_t members, int64_t cards)
{
    char path[4096];
    uint8_t key[CARDID_KEY_LEN], uid[7], hash[STORE_HASH_LEN];
    struct store *s;
    int64_t plan_open, plan_cowork, id;
    FILE *f;
    int r;

    snprintf(path, sizeof(path), "%s/state", dir);
    mkdir(dir, 0700);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/portier.conf", dir);
    f = fopen(path, "w");
    if (!f)
        return die(path, -errno);
    fprintf(f,
            "[site]\nid = bench\ntimezone = Europe/Paris\n\n"
            "[daemon]\nstate_dir = %s/state\ncontrol_socket = %s/ctl.sock\nlog_level = warning\n\n"
            "[hardware]\nbackend = sim\n\n"
            "[reader front]\ndriver = sim\n\n[reader back]\ndriver = sim\n\n"
            "[door front]\nreader = front\nrelay = 17\ncontact = 27\nexit_button = 22\n"
            "unlock_seconds = 1\n\n"
            "[door back]\nreader = back\nrelay = 18\nzone = fablab\nunlock_seconds = 1\n",
            dir, dir);
    fclose(f);

    snprintf(path, sizeof(path), "%s/state/portier.db", dir);
    r = store_open(path, &s);
    if (r < 0)
        return die(path, r);
    r = store_secret(s, "card_key", key, sizeof(key));
    if (r < 0)
        return die("card key", r);
    if ((r = store_plan_add(s, "open", "*", "always", &plan_open)) < 0 ||
        (r = store_plan_add(s, "cowork", "main", "weekdays 08:00-20:00", &plan_cowork)) < 0)
        return die("plans", r);
    for (int64_t m = 0; m < members; m++) {
        char name[48];
        snprintf(name, sizeof(name), "Member %06" PRId64, m);
        r = store_member_add(s, name, "", m % 4 ? plan_open : plan_cowork, 0, 0, &id);
        if (r < 0)
            return die("member", r);
        if (m % 50 == 49 && (r = store_member_set_status(s, id, MEMBER_SUSPENDED)) < 0)
            return die("suspend", r);
    }
    for (int64_t c = 0; c < cards; c++) {
        card_uid((uint64_t)c, uid);
        cardid_hash(key, uid, sizeof(uid), hash);
        r = store_card_add(s, 1 + c % members, hash, "", NULL);
        if (r < 0)
            return die("card", r);
    }
    r = store_commit(s);
    if (r < 0)
        return die("commit", r);
    store_free(s);
    printf("%s: %" PRId64 " members, %" PRId64 " cards\n", dir, members, cards);
    return 0;
}

static int populate_machines(const char *dir, int64_t bookings, int64_t machines, bool week);

/* A fablab: MACHINES machines with interlocks, everyone trained, BOOKINGS bookings of one
 * 30-minute slot each spread over the coming months. Machine i's current slot is booked by
 * member 4i + 3 (card index 4i + 2: an active member on the "open" plan), so the bench can
 * tap a granted card at every machine. */
static int populate_fablab(const char *dir, int64_t bookings, int64_t machines)
{
    return populate_machines(dir, bookings, machines, false);
}

/* The web page's week: the same machines, but BOOKINGS bookings of 30 minutes all within
 * next week (local time, Europe/Paris), spread over its seven days from 07:00 (from 00:00
 * when a day needs more than 34 slots). Prints that Monday as YYYY-MM-DD. */
static int populate_week(const char *dir, int64_t bookings, int64_t machines)
{
    return populate_machines(dir, bookings, machines, true);
}

/* Local midnight of the day `days` after the one holding t (the zone is TZ). */
static int64_t midnight_after(int64_t t, int days)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    tm.tm_mday += days;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

static int populate_machines(const char *dir, int64_t bookings, int64_t machines, bool week)
{
    char path[4096];
    struct store *s;
    int64_t training, members, slot = (now_utc() / 1800) * 1800, days[7] = { 0 };
    int64_t per_day = 0, first_hour = 7;
    FILE *f;
    int r;

    if (week) {
        struct tm tm;
        time_t tt = (time_t)now_utc();
        setenv("TZ", "Europe/Paris", 1);
        tzset();
        localtime_r(&tt, &tm);
        /* Next Monday: 7 - (days since Monday) days ahead. */
        days[0] = midnight_after(tt, 7 - (tm.tm_wday + 6) % 7);
        for (int d = 1; d < 7; d++)
            days[d] = midnight_after(days[0], d);
        per_day = (bookings / machines + 6) / 7;
        if (per_day > 48) {
            fprintf(stderr, "portier-benchgen: %" PRId64 " bookings a machine do not fit in a "
                    "week of 30-minute slots\n", bookings / machines);
            return 2;
        }
        if (per_day > 34)
            first_hour = 0;
    }

    snprintf(path, sizeof(path), "%s/portier.conf", dir);
    f = fopen(path, "a");
    if (!f)
        return die(path, -errno);
    for (int64_t i = 0; i < machines; i++)
        fprintf(f, "\n[reader m%" PRId64 "]\ndriver = sim\n\n[machine m%" PRId64 "]\nreader = m%" PRId64
                   "\nrelay = %" PRId64 "\nzone = main\nhandover_seconds = 0\n", i, i, i, 100 + i);
    fclose(f);

    snprintf(path, sizeof(path), "%s/state/portier.db", dir);
    r = store_open(path, &s);
    if (r < 0)
        return die(path, r);
    members = store_member_count(s);
    if ((r = store_training_add(s, "basic", "", &training)) < 0)
        return die("training", r);
    for (int64_t m = 1; m <= members; m++)
        if ((r = store_qualification_grant(s, m, training, "bench", 0, NULL)) < 0)
            return die("qualification", r);
    for (int64_t i = 0; i < machines; i++) {
        struct store_resource res;
        char name[32];
        int64_t id;
        snprintf(name, sizeof(name), "m%" PRId64, i);
        if ((r = store_resource_ensure(s, "machine", name, "main", &id)) < 0 ||
            (r = store_resource_get(s, name, &res)) < 0)
            return die("machine", r);
        res.training_id = training;
        res.window_days = 365;
        res.max_minutes = 240;
        strlcpy_checked(res.hours, "always", sizeof(res.hours));
        if ((r = store_machine_rules_put(s, &res)) < 0)
            return die("rules", r);
        if (week) {
            /* Booking b: day b % 7, slot b / 7 of that day. */
            for (int64_t b = 0; b < bookings / machines; b++) {
                int64_t start = days[b % 7] + first_hour * 3600 + (b / 7) * 1800;
                if ((r = store_booking_add(s, id, 1 + (b * 7919 + i) % members, start,
                                           start + 1800, "bench", NULL)) < 0)
                    return die("booking", r);
            }
            continue;
        }
        /* The current slot, for member i + 1; then bookings, one slot each, onwards. */
        /* Two hours, so the session is not already in its warning minutes. */
        if ((r = store_booking_add(s, id, 4 * i + 3, slot, slot + 7200, "bench", NULL)) < 0)
            return die("booking", r);
        for (int64_t b = 1; b < bookings / machines; b++)
            if ((r = store_booking_add(s, id, 1 + (b * 7919 + i) % members,
                                       slot + 7200 + (b - 1) * 1800, slot + 7200 + b * 1800,
                                       "bench", NULL)) < 0)
                return die("booking", r);
    }
    r = store_commit(s);
    store_free(s);
    if (r < 0)
        return die("commit", r);
    if (week) {
        char monday[16];
        struct tm tm;
        strftime(monday, sizeof(monday), "%Y-%m-%d", localtime_r(&(time_t){ (time_t)days[0] }, &tm));
        printf("%s\n", monday);
    } else {
        printf("%s: %" PRId64 " machines, %" PRId64 " bookings\n", dir, machines, bookings);
    }
    return 0;
}

/* Usage for a statement: RECORDS machine sessions of members 1..2000 in last month, through
 * the real metering (rates, ledger). Members 1..2000 get a rate on every machine. */
static int populate_usage(const char *dir, int64_t records)
{
    char path[4096];
    struct store *s;
    struct meter *m;
    struct store_rate rate = { .target = "*", .per_hour_cents = 1200, .block_minutes = 15,
                               .min_charge_cents = 300, .free_minutes = 5 };
    struct store_plan plan;
    int64_t now = now_utc(), start;
    struct tm tm;
    time_t tt = (time_t)now;
    int r;

    setenv("TZ", "Europe/Paris", 1);
    tzset();
    localtime_r(&tt, &tm);
    tm.tm_mon -= 1;
    tm.tm_mday = 1;
    tm.tm_hour = 9;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    start = mktime(&tm);            /* the 1st of last month, 09:00 */
    snprintf(path, sizeof(path), "%s/state/portier.db", dir);
    if ((r = store_open(path, &s)) < 0)
        return die(path, r);
    if ((r = meter_new(s, "bench", 240, &m)) < 0)
        return die("meter", r);
    if ((r = store_plan_find(s, "open", &plan)) < 0 || (r = store_rate_put(s, plan.id, &rate)) < 0 ||
        (r = store_plan_find(s, "cowork", &plan)) < 0 || (r = store_rate_put(s, plan.id, &rate)) < 0)
        return die("rates", r);
    srand(7);
    for (int64_t i = 0; i < records; i++) {
        int64_t member = 1 + i % 2000, t = start + (rand() % 27) * 86400 + (rand() % 600) * 60;
        if ((r = meter_machine(m, member, "laser", t, t + 60 * (10 + rand() % 120), 0,
                               -1, "finished")) < 0)
            return die("usage", r);
        if (i % 5000 == 4999 && (r = store_commit(s)) < 0)
            return die("commit", r);
    }
    if ((r = store_commit(s)) < 0)
        return die("commit", r);
    strftime(path, sizeof(path), "%Y-%m", localtime_r(&(time_t){ (time_t)start }, &tm));
    printf("%s\n", path);
    meter_free(m);
    store_free(s);
    return 0;
}

/* A ledger of ENTRIES entries signed like the daemon's (checkpoints + head), written
 * directly: what `ledger verify` reads. */
static int populate_ledger(const char *dir, int64_t entries)
{
    char path[4096];
    uint8_t seed[32], pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN], head_sig[LEDGER_SIG_LEN];
    struct ledger_entry e = { 0 };
    struct store *s;
    int r;

    snprintf(path, sizeof(path), "%s/state/portier.db", dir);
    if ((r = store_open(path, &s)) < 0)
        return die(path, r);
    if ((r = store_secret(s, "ledger_seed", seed, sizeof(seed))) < 0)
        return die("key", r);
    crypto_sign_seed_keypair(pk, sk, seed);
    snprintf(e.site, sizeof(e.site), "bench");
    snprintf(e.kind, sizeof(e.kind), "machine");
    snprintf(e.resource, sizeof(e.resource), "laser");
    snprintf(e.unit, sizeof(e.unit), "minute");
    snprintf(e.allowance, sizeof(e.allowance), "rate");
    for (int64_t i = 1; i <= entries; i++) {
        e.seq = i;
        e.usage_id = i;
        e.member_id = 1 + i % 2000;
        e.started_at = 1790000000 + i * 60;
        e.ended_at = e.started_at + 3600;
        e.quantity = 60;
        e.amount_cents = 1200;
        e.recorded_at = e.ended_at;
        e.has_signature = false;
        ledger_hash(&e);
        if (ledger_is_checkpoint(i))
            ledger_sign(&e, sk);
        if (i == entries)
            ledger_sign_head(&e, sk, head_sig);
        else
            memset(head_sig, 0, sizeof(head_sig));
        if ((r = store_ledger_append(s, &e, head_sig)) < 0)
            return die("ledger", r);
        memcpy(e.prev_hash, e.hash, LEDGER_HASH_LEN);
        if (i % 50000 == 0 && (r = store_commit(s)) < 0)
            return die("commit", r);
    }
    if ((r = store_commit(s)) < 0)
        return die("commit", r);
    store_free(s);
    printf("%s: %" PRId64 " ledger entries\n", dir, entries);
    return 0;
}

static int decide(const char *dir, int64_t count)
{
    char path[4096];
    uint8_t key[CARDID_KEY_LEN], uid[7], hash[STORE_HASH_LEN];
    struct store *s;
    struct timespec a, b;
    int64_t cards, granted = 0;
    int r;

    snprintf(path, sizeof(path), "%s/state/portier.db", dir);
    r = store_open(path, &s);
    if (r < 0)
        return die(path, r);
    if ((r = store_secret(s, "card_key", key, sizeof(key))) < 0)
        return die("card key", r);
    cards = store_card_count(s);
    setenv("TZ", "Europe/Paris", 1);
    tzset();
    srand(42);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int64_t i = 0; i < count; i++) {
        struct store_subject subj;
        struct store_subject_facts facts;
        struct policy_door door = { .zone = "main" };
        struct policy_request req = { .door = &door };
        /* One tap in ten is an unknown card. */
        uint64_t idx = (uint64_t)rand() % (uint64_t)(cards + cards / 9);
        card_uid(idx, uid);
        cardid_hash(key, uid, sizeof(uid), hash);
        req.now = now_utc();
        local_time_at(req.now, &req.local);
        if (store_subject_lookup(s, hash, &subj) == 0)
            store_subject_facts(&subj, &facts, &req);
        granted += policy_decide(&req).granted;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("{\"decisions\": %" PRId64 ", \"seconds\": %.3f, \"per_second\": %.0f, \"granted\": %" PRId64 "}\n",
           count, secs, (double)count / secs, granted);
    store_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t a, b;

    if (argc == 5 && strcmp(argv[1], "populate") == 0 &&
        parse_int64(argv[3], 1, 10000000, &a) == 0 && parse_int64(argv[4], 0, 30000000, &b) == 0)
        return populate(argv[2], a, b);
    if (argc == 5 && strcmp(argv[1], "fablab") == 0 &&
        parse_int64(argv[3], 1, 100000000, &a) == 0 && parse_int64(argv[4], 1, 64, &b) == 0)
        return populate_fablab(argv[2], a, b);
    if (argc == 5 && strcmp(argv[1], "week") == 0 &&
        parse_int64(argv[3], 1, 100000000, &a) == 0 && parse_int64(argv[4], 1, 64, &b) == 0)
        return populate_week(argv[2], a, b);
    if (argc == 4 && strcmp(argv[1], "usage") == 0 && parse_int64(argv[3], 1, 100000000, &a) == 0)
        return populate_usage(argv[2], a);
    if (argc == 4 && strcmp(argv[1], "ledger") == 0 && parse_int64(argv[3], 1, 100000000, &a) == 0)
        return populate_ledger(argv[2], a);
    if (argc == 4 && strcmp(argv[1], "decide") == 0 &&
        parse_int64(argv[3], 1, 100000000, &a) == 0)
        return decide(argv[2], a);
    fprintf(stderr, "Usage: portier-benchgen populate DIR MEMBERS CARDS\n"
                    "       portier-benchgen fablab DIR BOOKINGS MACHINES   (after populate)\n"
                    "       portier-benchgen week DIR BOOKINGS MACHINES     (after populate; "
                    "prints the Monday)\n"
                    "       portier-benchgen usage DIR RECORDS              (after populate)\n"
                    "       portier-benchgen ledger DIR ENTRIES             (on a fresh populate)\n"
                    "       portier-benchgen decide DIR COUNT\n");
    return 2;
}

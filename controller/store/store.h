/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store: every byte of SQL in Portier, on one SQLite connection in WAL mode.
 *
 * The store is split by aggregate (store_internal.h says which file holds what); this header
 * is its whole API. Statements are prepared once per connection, on first use. Writes join
 * a batch (one transaction) that the owner commits with store_commit() — the daemon does so
 * once the loop has handled what is pending, before it answers any client, so a burst of
 * taps costs one fsync and an answer is only sent once its rows are durable. The schema is
 * versioned by PRAGMA user_version and migrated forward at open.
 *
 * Card UIDs never reach the store: cards are looked up by their keyed BLAKE2b hash
 * (cardid.h). Functions return 0 (or a count) or -errno; strings in result structs are
 * copies owned by the caller. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "booking.h"
#include "policy.h"

/* Every store call that can fail says so in its result: the compiler refuses code that
 * drops it (a write that failed must not be reported as done). */
#define STORE_CHECK __attribute__((warn_unused_result))

#define STORE_SCHEMA_VERSION 18
#define STORE_HASH_LEN 32

struct store;

/* Open (creating if needed) and migrate. 0 or -errno; -EPROTO if the file has a newer
 * schema than this build knows. */
STORE_CHECK int store_open(const char *path, struct store **ret);
/* Commit any open batch, then close. NULL-safe; returns NULL. */
struct store *store_free(struct store *s);

/* For tests: create a database at path migrated only up to version. */
STORE_CHECK int store_create_at_version(const char *path, int version);
STORE_CHECK int store_schema_version(struct store *s);

/* ---- batches and durability ----
 *
 * Batches are numbered from 1. A batch that cannot be committed (a full or failing disk) is
 * rolled back; the access events it held are kept in memory ("held", at most
 * STORE_HELD_MAX) and written again by store_held_flush(), with their original times and
 * new ids. Everything else the batch held is lost, and whoever was told about it must be
 * told it failed: the owner hears of each failed batch through the failed hook. SQLite may
 * also roll a batch back by itself when a statement fails with a full disk: the store
 * notices at the next write and reports that batch as failed the same way. */
#define STORE_HELD_MAX 4096

struct store_hooks {
    void (*dirty)(void *userdata);          /* a batch began: schedule store_commit() */
    void (*failed)(uint64_t batch, int error, void *userdata);   /* batch rolled back */
    void *userdata;
};
void store_set_hooks(struct store *s, const struct store_hooks *hooks);
/* Commit the open batch, if any. 0 or -errno (the batch is then rolled back and reported
 * to the failed hook). */
STORE_CHECK int store_commit(struct store *s);
bool store_in_batch(struct store *s);
/* One moment for a connection that only reads (a job's, a thread's): every read between
 * the two sees the database as it was at the first of them, whatever is committed
 * meanwhile. -EBUSY inside a batch. */
STORE_CHECK int store_snapshot_begin(struct store *s);
void store_snapshot_end(struct store *s);
/* What an answer given now depends on: the open batch, or else the last committed one. */
uint64_t store_ticket(const struct store *s);
/* The number of the last committed batch. */
uint64_t store_committed(const struct store *s);

/* How far the outbox, the ledger and the e-mail outbox reach in the last committed batch,
 * and how far they are known to be on disk: MQTT, webhooks, the consortium and e-mail send
 * only what is durable. */
struct store_marks {
    int64_t outbox_seq, ledger_seq, mail_id;
};
void store_marks_committed(const struct store *s, struct store_marks *ret);
void store_marks_durable(const struct store *s, struct store_marks *ret);
void store_set_durable(struct store *s, const struct store_marks *m);
/* Commits stop syncing to disk (synchronous=NORMAL, no automatic checkpoints): the caller
 * makes them durable itself (fdatasync of the WAL, checkpoints on another connection; see
 * commit.h) and says so with store_set_durable(). Without this, every commit is durable
 * when store_commit() returns. Also installs a WAL hook: store_wal_frames(). */
STORE_CHECK int store_defer_sync(struct store *s);
/* Frames in the WAL after the last commit (deferred mode). */
STORE_CHECK int store_wal_frames(const struct store *s);

/* A connection of its own that copies the WAL back into the database (a PASSIVE
 * checkpoint: it never waits for, nor blocks, the writer; it syncs the WAL, then the
 * database). For the commit module's sync thread: use it from one thread only. */
struct store_checkpointer;
STORE_CHECK int store_checkpointer_open(const char *path, struct store_checkpointer **ret);
STORE_CHECK int store_checkpointer_run(struct store_checkpointer *c);
void store_checkpointer_close(struct store_checkpointer *c);

/* Access events of failed batches kept in memory, and those lost because the memory was
 * full too. */
unsigned store_held_count(const struct store *s);
uint64_t store_held_dropped(const struct store *s);
/* Write the held events again (in the open batch). Returns how many, or -errno (the rest
 * stay held). */
STORE_CHECK int store_held_flush(struct store *s);
/* A write that changes nothing (one page, in the open batch): does the disk take writes? */
STORE_CHECK int store_probe(struct store *s);

/* A site secret of exactly len bytes, created with a CSPRNG on first use. */
STORE_CHECK int store_secret(struct store *s, const char *name, uint8_t *buf, size_t len);

/* ---- plans ---- */
struct store_plan {
    int64_t id;
    char name[32];
    char zones[256];
    char hours[256];        /* schedule text */
    int64_t members;
};
/* -EEXIST if the name is taken. */
STORE_CHECK int store_plan_add(struct store *s, const char *name, const char *zones, const char *hours,
                   int64_t *ret_id);
/* Find by name. -ENOENT. */
STORE_CHECK int store_plan_find(struct store *s, const char *name, struct store_plan *ret);
/* By id, without counting its members (members is -1): what a booking's check needs, in one
 * row read however many members the plan has. -ENOENT. */
STORE_CHECK int store_plan_get(struct store *s, int64_t id, struct store_plan *ret);
typedef int (*store_plan_fn)(const struct store_plan *p, void *userdata);
STORE_CHECK int store_plans_foreach(struct store *s, store_plan_fn fn, void *userdata);

/* ---- members ---- */
#define STORE_MEMBER_NOTE_MAX 255
struct store_member {
    int64_t id;
    char name[96];
    char email[128];
    int64_t plan_id;        /* 0: none */
    char plan[32];
    enum member_status status;
    int64_t valid_from, valid_until;    /* 0: unbounded; valid_until is exclusive */
    int64_t created_at;
    int64_t cards;
    char note[STORE_MEMBER_NOTE_MAX + 1];
    int64_t removed_at;     /* 0: not removed (access ended, history kept) */
    int64_t erased_at;      /* 0: not erased (personal data replaced by a pseudonym) */
    int64_t next_plan_id;   /* a plan change waiting for next_plan_at; 0: none */
    char next_plan[32];
    int64_t next_plan_at;
};
/* plan_id 0: no plan. */
STORE_CHECK int store_member_add(struct store *s, const char *name, const char *email, int64_t plan_id,
                     int64_t valid_from, int64_t valid_until, int64_t *ret_id);
STORE_CHECK int store_member_get(struct store *s, int64_t id, struct store_member *ret);
/* ref: a decimal id or an exact name. -ENOENT, or -ENOTUNIQ if several members share it. */
STORE_CHECK int store_member_resolve(struct store *s, const char *ref, int64_t *ret_id);
STORE_CHECK int store_member_set_status(struct store *s, int64_t id, enum member_status status);
/* Write m's name, email, note, plan, validity and waiting plan change (by m->id; plan ids
 * 0: none). -ENOENT, or -EINVAL for a plan that does not exist. */
STORE_CHECK int store_member_update(struct store *s, const struct store_member *m);
typedef int (*store_member_fn)(const struct store_member *m, void *userdata);
STORE_CHECK int store_members_foreach(struct store *s, store_member_fn fn, void *userdata);
/* Members and cards (below): counters kept by triggers, read in O(1). */
STORE_CHECK int64_t store_member_count(struct store *s);

/* A member's state at a time, most telling first: erased, removed, suspended, expired (its
 * validity ended), not yet valid, active. */
enum store_member_state {
    MEMBER_STATE_ACTIVE,
    MEMBER_STATE_NOT_YET_VALID,
    MEMBER_STATE_EXPIRED,
    MEMBER_STATE_SUSPENDED,
    MEMBER_STATE_REMOVED,
    MEMBER_STATE_ERASED,
};
enum store_member_state store_member_state(const struct store_member *m, int64_t now);
/* "active", "not_yet_valid", "expired", "suspended", "removed", "erased". */
const char *store_member_state_name(enum store_member_state state);

/* Listing with a search and a filter, a page at a time (the web's member list). */
enum store_member_filter {
    MEMBER_FILTER_ALL,
    MEMBER_FILTER_ACTIVE,           /* active now */
    MEMBER_FILTER_SUSPENDED,
    MEMBER_FILTER_EXPIRED,
    MEMBER_FILTER_EXPIRING,         /* active now, validity ending within expiring_seconds */
    MEMBER_FILTER_REMOVED,
    MEMBER_FILTER_ERASED,
};
struct store_member_query {
    const char *text;               /* in the name, e-mail or a card's label; NULL/"": any */
    enum store_member_filter filter;
    int64_t now;
    int64_t expiring_seconds;
    int64_t offset, limit;          /* limit 0: all */
};
/* Members matching q, by name; *ret_total (may be NULL) gets how many match in all. Returns
 * the number delivered or -errno. */
STORE_CHECK int store_members_query(struct store *s, const struct store_member_query *q,
                                    store_member_fn fn, void *userdata, int64_t *ret_total);

/* ---- cards ---- */
struct store_card {
    int64_t id;
    int64_t member_id;
    char member[96];
    char label[64];
    bool enabled;
    int64_t created_at;
    char hash_prefix[17];   /* first 8 bytes of the keyed hash, hex: to tell cards apart */
    bool desfire;           /* provisioned as a DESFire: it proves its key */
    int64_t last_used_at;   /* last presented at a reader, within ten minutes; 0: never */
};
/* -EEXIST if the card is already enrolled (to anyone), -ENOENT if no such member. */
STORE_CHECK int store_card_add(struct store *s, int64_t member_id, const uint8_t hash[STORE_HASH_LEN],
                   const char *label, int64_t *ret_id);
STORE_CHECK int store_card_remove(struct store *s, int64_t card_id);
/* Enable or disable a card. -ENOENT. */
STORE_CHECK int store_card_set_enabled(struct store *s, int64_t card_id, bool enabled);
/* One card by id. -ENOENT. */
STORE_CHECK int store_card_get(struct store *s, int64_t card_id, struct store_card *ret);
/* Find a card id by hash: -ENOENT. */
STORE_CHECK int store_card_find(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t *ret_id);
typedef int (*store_card_fn)(const struct store_card *c, void *userdata);
/* member_id 0: all cards. */
STORE_CHECK int store_cards_foreach(struct store *s, int64_t member_id, store_card_fn fn, void *userdata);
STORE_CHECK int64_t store_card_count(struct store *s);
/* Mark a card provisioned as a DESFire (or not). -ENOENT if no such card. */
STORE_CHECK int store_card_set_desfire(struct store *s, int64_t card_id, bool desfire);
/* The migration report: enabled cards of active members that still open by UID alone. */
struct store_uid_only_card {
    int64_t member_id;
    char member[96];
    int64_t card_id;
    char label[64];
    int64_t last_used;      /* UTC of its last tap, within ten minutes (cards.last_used_at); 0: never */
};
typedef int (*store_uid_only_fn)(const struct store_uid_only_card *c, void *userdata);
/* limit 0: every one, by member name (a site's whole list: for a job process); else the
 * first limit enrolled, read through their own index whatever the site's size. */
STORE_CHECK int store_uid_only_cards_foreach(struct store *s, int64_t limit, store_uid_only_fn fn,
                                             void *userdata);

/* Everything the policy needs about the holder of a card, in one query. */
struct store_subject {
    int64_t card_id;
    bool card_enabled;
    int64_t member_id;
    enum member_status status;
    int64_t valid_from, valid_until;
    int64_t plan_id;            /* 0: none */
    char zones[256];
    char hours[256];
    bool card_desfire;          /* the card is provisioned as a DESFire */
};
/* 0, or -ENOENT for a card nobody holds. */
STORE_CHECK int store_subject_lookup(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                         struct store_subject *ret);

/* ---- policy facts (store_facts.c): rows as the policy sees them, hours parsed once ----
 *
 * Hours that do not parse (edited by hand, or written by another version) mean closed,
 * everywhere: the door, the machine interlock, the booking rules and the web page agree. */
struct store_subject_facts {
    struct policy_card card;
    struct policy_member member;
    struct policy_plan plan;        /* plan.zones points into the subject row */
    struct schedule plan_hours;
    bool hours_unreadable;          /* the plan's hours did not parse: closed */
};
/* Fill f from subj and point req's card, member and plan (NULL without a plan) at it. f and
 * subj must stay where they are while req is used. */
void store_subject_facts(const struct store_subject *subj, struct store_subject_facts *f,
                         struct policy_request *req);

/* ---- resources (doors now, machines later) ---- */
/* Insert or update by name; returns its id. kind: "door" or "machine". */
STORE_CHECK int store_resource_ensure(struct store *s, const char *kind, const char *name, const char *zone,
                          int64_t *ret_id);

/* ---- access events (append-only) ---- */
struct store_event {
    int64_t id;
    int64_t at;                 /* UTC seconds */
    int64_t resource_id;        /* 0: none */
    char resource[32];          /* filled by listings */
    char reader[32];
    int64_t member_id;          /* 0: unknown */
    int64_t card_id;            /* 0: unknown */
    uint8_t card_hash[STORE_HASH_LEN];
    bool has_card_hash;
    char kind[16];              /* "tap", "exit", "unlock", "alarm", ... */
    bool granted;
    char reason[32];
    char detail[128];
};
STORE_CHECK int store_event_add(struct store *s, const struct store_event *ev, int64_t *ret_id);
typedef int (*store_event_fn)(const struct store_event *ev, void *userdata);
/* The lowest and highest access event ids (0 when the log is empty), or -errno. */
STORE_CHECK int64_t store_events_first_id(struct store *s);
STORE_CHECK int64_t store_events_last_id(struct store *s);
/* Events with at >= since, oldest first; at most limit (the newest ones) if limit > 0. */
STORE_CHECK int store_events_foreach(struct store *s, int64_t since, int64_t limit, store_event_fn fn,
                         void *userdata);

/* ---- machines: rules, out-of-order, trainings, qualifications ---- */
struct store_resource {
    int64_t id;
    char kind[8];                   /* "door" or "machine" */
    char name[32];
    char zone[32];
    bool out_of_order;
    char out_of_order_reason[128];
    bool has_rules;                 /* false: defaults below */
    int64_t training_id;            /* 0: none required */
    char training[32];
    int64_t slot_minutes, min_minutes, max_minutes, window_days;
    int64_t quota_day_minutes, quota_week_minutes, cancel_deadline_minutes;
    char hours[256];
    bool booking_required;
    int64_t walkup_free_minutes;
};
/* By name. -ENOENT. */
STORE_CHECK int store_resource_get(struct store *s, const char *name, struct store_resource *ret);
typedef int (*store_name_fn)(const char *name, void *userdata);
STORE_CHECK int store_resources_foreach(struct store *s, const char *kind, store_name_fn fn, void *userdata);
STORE_CHECK int store_resource_set_out_of_order(struct store *s, int64_t id, bool on, const char *reason);
/* Write r's rules (training_id, slots, quotas, hours...) for resource r->id. */
STORE_CHECK int store_machine_rules_put(struct store *s, const struct store_resource *r);

/* A machine as the policy and the booking rules see it (store_facts.c, like the subject's
 * facts): its opening hours parsed, closed if they do not parse, and its policy facts at now
 * (closing_at looks at most horizon seconds ahead). */
struct store_machine_facts {
    struct schedule hours;
    bool hours_unreadable;          /* r->hours did not parse: closed */
    struct policy_machine machine;
};
void store_machine_facts(const struct store_resource *r, int64_t now, int64_t horizon,
                         struct store_machine_facts *ret);

STORE_CHECK int store_training_add(struct store *s, const char *name, const char *description, int64_t *ret_id);
STORE_CHECK int store_training_find(struct store *s, const char *name, int64_t *ret_id);
struct store_training {
    int64_t id;
    char name[32];
    char description[128];
    int64_t qualified_members;
};
typedef int (*store_training_fn)(const struct store_training *t, void *userdata);
STORE_CHECK int store_trainings_foreach(struct store *s, int64_t now, store_training_fn fn, void *userdata);

STORE_CHECK int store_qualification_grant(struct store *s, int64_t member_id, int64_t training_id,
                              const char *by, int64_t expires_at, int64_t *ret_id);
/* Revoke every active grant; -ENOENT if there was none. */
STORE_CHECK int store_qualification_revoke(struct store *s, int64_t member_id, int64_t training_id,
                               const char *by);
/* The longest-lasting active grant (expires_at 0 = never); -ENOENT if none. Expired grants
 * are returned too: the policy decides what expiry means. */
STORE_CHECK int store_qualification_best(struct store *s, int64_t member_id, int64_t training_id,
                             int64_t *ret_expires_at);
struct store_qualification {
    int64_t id, member_id;
    char training[32];
    int64_t granted_at;
    char granted_by[64];
    int64_t expires_at, revoked_at;
};
typedef int (*store_qualification_fn)(const struct store_qualification *q, void *userdata);
STORE_CHECK int store_qualifications_foreach(struct store *s, int64_t member_id, store_qualification_fn fn,
                                 void *userdata);

/* ---- trainers (store_trainers.c) ---- */
/* Name member trainer for training (on) or end it. -ENOENT when ending what was not. */
STORE_CHECK int store_trainer_set(struct store *s, int64_t training_id, int64_t member_id, bool on,
                      const char *by);
/* 1 if member is named trainer for training, 0 if not, or -errno. */
STORE_CHECK int store_trainer_is(struct store *s, int64_t training_id, int64_t member_id);
/* For how many trainings member is trainer (0: none), or -errno. */
STORE_CHECK int store_trainer_count(struct store *s, int64_t member_id);
typedef int (*store_trainer_fn)(int64_t member_id, const char *member, void *userdata);
STORE_CHECK int store_trainers_foreach(struct store *s, int64_t training_id, store_trainer_fn fn,
                           void *userdata);

/* ---- bookings ---- */
struct store_booking {
    int64_t id, resource_id;
    char resource[32];
    int64_t member_id;
    char member[96];
    int64_t start, end;
    char created_by[64];
    int64_t cancelled_at;
    char cancelled_by[64];
    bool cancel_override;
};
STORE_CHECK int store_booking_add(struct store *s, int64_t resource_id, int64_t member_id, int64_t start,
                      int64_t end, const char *by, int64_t *ret_id);
STORE_CHECK int store_booking_get(struct store *s, int64_t id, struct store_booking *ret);
/* Cancel (or, with moved_to, mark as moved). -ENOENT if not found or already cancelled. */
STORE_CHECK int store_booking_cancel(struct store *s, int64_t id, int64_t at, const char *by, bool override,
                         int64_t moved_to);
/* Bookings on resource intersecting [start, end), except exclude_id: at most n, sorted. */
STORE_CHECK int store_bookings_overlapping(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                               int64_t exclude_id, struct booking_ref *out, size_t n);
/* Minutes member has booked on resource within [from, to), except exclude_id. */
STORE_CHECK int64_t store_booked_minutes(struct store *s, int64_t member_id, int64_t resource_id,
                             int64_t from, int64_t to, int64_t exclude_id);
/* Bookings on resource with end > now and start < until, sorted by start: at most n. */
STORE_CHECK int store_bookings_upcoming(struct store *s, int64_t resource_id, int64_t now, int64_t until,
                            struct policy_booking *out, size_t n);
struct store_booking_filter {
    int64_t resource_id, member_id;     /* 0: any */
    int64_t from, to;                   /* intersecting [from, to) */
    bool include_cancelled;
    int64_t limit;
    /* after: only the bookings after (after_start, after_id) in the list's order
     * (starts_at, then id; INT64_MIN, 0: from the first), to read a long list a step at a
     * time; the site's, not cancelled (-EINVAL with the other filters). */
    bool after;
    int64_t after_start, after_id;
};
typedef int (*store_booking_fn)(const struct store_booking *b, void *userdata);
STORE_CHECK int store_bookings_foreach(struct store *s, const struct store_booking_filter *f,
                           store_booking_fn fn, void *userdata);

/* ---- machine sessions (the interlock's record of who used a machine when) ---- */
STORE_CHECK int store_session_open(struct store *s, int64_t resource_id, int64_t member_id,
                       int64_t booking_id, int64_t at, int64_t *ret_id);
/* energy_wh: the session's energy so far, or -1 when no meter measures it. */
STORE_CHECK int store_session_touch(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                                    int64_t energy_wh);
STORE_CHECK int store_session_close(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        int64_t energy_wh, const char *reason);
/* Mark a session (open or closed) with an alarm ("relay_fault", "device_offline"). */
STORE_CHECK int store_session_set_alarm(struct store *s, int64_t id, const char *alarm);
/* Close every session left open by a crash at its last known moment; returns how many. */
STORE_CHECK int store_sessions_close_interrupted(struct store *s);
struct store_session {
    int64_t id;
    char resource[32];
    int64_t member_id, booking_id, started_at, ended_at, last_seen_at, running_seconds;
    char end_reason[24];
    bool has_energy;
    int64_t energy_wh;
    char alarm[24];
};
typedef int (*store_session_fn)(const struct store_session *ss, void *userdata);
STORE_CHECK int store_sessions_foreach(struct store *s, int64_t since, store_session_fn fn, void *userdata);

/* ---- metering: plans' allowances, rates, passes, presence, usage, ledger, periods ---- */
#include "ledger.h"

/* Open machine sessions (at most 64), for crash recovery; fn may close them. */
STORE_CHECK int store_sessions_foreach_open(struct store *s, store_session_fn fn, void *userdata);

struct store_member_plan {
    int64_t plan_id;
    char name[32];
    int64_t monthly_days;           /* coworking days included per month */
    int64_t day_rate_cents;         /* price of a day beyond passes and allowance */
    char allowance_order[64];       /* "pass,plan,rate" */
    int64_t visit_days;             /* days a month at the consortium's other sites */
};
/* -ENOENT if the member has no plan. */
STORE_CHECK int store_member_plan(struct store *s, int64_t member_id, struct store_member_plan *ret);
/* A plan's billing settings, by plan id. -ENOENT. */
STORE_CHECK int store_plan_billing_get(struct store *s, int64_t plan_id,
                                       struct store_member_plan *ret);
STORE_CHECK int store_plan_set_billing(struct store *s, int64_t plan_id, int64_t monthly_days,
                           int64_t day_rate_cents, const char *order, int64_t visit_days);

struct store_rate {
    char target[40];                /* a machine name, "category:NAME" or "*" */
    int64_t monthly_minutes;        /* included in the plan each month */
    int64_t per_hour_cents;
    int64_t block_minutes;          /* charged per started block */
    int64_t min_charge_cents;
    int64_t free_minutes;           /* per session, before charging */
    int64_t per_kwh_cents;          /* energy, per kWh (charged per Wh, rounded to the cent) */
    int64_t monthly_wh;             /* energy included in the plan each month */
};
/* The most specific rate of plan for a machine: -ENOENT if none. */
STORE_CHECK int store_rate_find(struct store *s, int64_t plan_id, const char *resource, const char *category,
                    struct store_rate *ret);
STORE_CHECK int store_rate_put(struct store *s, int64_t plan_id, const struct store_rate *rate);
typedef int (*store_rate_fn)(const char *plan, const struct store_rate *r, void *userdata);
STORE_CHECK int store_rates_foreach(struct store *s, store_rate_fn fn, void *userdata);

struct store_pass {
    int64_t id, member_id;
    char kind[8];                   /* "days" or "minutes" */
    char target[40];                /* minutes: machine, "category:NAME" or "*" */
    int64_t quantity, remaining;
    int64_t valid_from, valid_until;
    int64_t price_cents;
};
STORE_CHECK int store_pass_add(struct store *s, const struct store_pass *p, const char *by, int64_t *ret_id);
/* Take up to wanted units from the member's valid passes (soonest expiry first). */
STORE_CHECK int store_pass_take(struct store *s, int64_t member_id, const char *kind, const char *resource,
                    const char *category, int64_t at, int64_t wanted, int64_t *ret_taken);
typedef int (*store_pass_fn)(const struct store_pass *p, void *userdata);
STORE_CHECK int store_passes_foreach(struct store *s, int64_t member_id, store_pass_fn fn, void *userdata);

STORE_CHECK int64_t store_plan_days_used(struct store *s, int64_t member_id, const char *first_day,
                             const char *last_day);
STORE_CHECK int64_t store_plan_minutes_used(struct store *s, int64_t member_id, const char *resource,
                                const char *first_day, const char *last_day);
/* Energy included in plans already used (Wh), as store_plan_minutes_used(). */
STORE_CHECK int64_t store_plan_wh_used(struct store *s, int64_t member_id, const char *resource,
                                       const char *first_day, const char *last_day);
bool store_day_charged(struct store *s, int64_t member_id, const char *billing_day);

struct store_usage {
    int64_t id;
    char kind[16];                  /* day, presence, machine, correction */
    int64_t member_id;
    char member[96];                /* listings only */
    char resource[32];
    char billing_day[11];           /* YYYY-MM-DD, with the site's day cutoff */
    int64_t started_at, ended_at;
    int64_t quantity;
    char unit[8];
    int64_t running_seconds;
    char allowance[16];
    int64_t pass_quantity, plan_quantity, charged_quantity;
    int64_t amount_cents;
    char end_reason[24];
    int64_t corrects_seq;
    char note[128];
    int64_t ledger_seq;
    int64_t recorded_at;
    bool has_energy;                /* machines with a meter */
    int64_t energy_wh;
    int64_t plan_wh;                /* of energy_wh, included in the plan */
    int64_t energy_cents;           /* of amount_cents, for energy */
};
/* -EPERM if its billing day lies in a closed period. */
STORE_CHECK int store_usage_add(struct store *s, const struct store_usage *u, int64_t *ret_id);
typedef int (*store_usage_fn)(const struct store_usage *u, void *userdata);
/* Usage with billing_day in [first_day, last_day], of one member (or all: 0). */
STORE_CHECK int store_usage_foreach(struct store *s, const char *first_day, const char *last_day,
                        int64_t member_id, store_usage_fn fn, void *userdata);
STORE_CHECK int store_usage_by_seq(struct store *s, int64_t seq, struct store_usage *ret);
/* The newest usage record's id (0: none). */
STORE_CHECK int store_usage_last_id(struct store *s, int64_t *ret_id);
/* 1 if a usage record newer than after_id has billing_day in [first_day, last_day], 0 if
 * none, or -errno: reads only the records newer than after_id. */
STORE_CHECK int store_usage_added_since(struct store *s, int64_t after_id, const char *first_day,
                                        const char *last_day);

/* The newest entry (seq 0 and zeros for an empty ledger). */
STORE_CHECK int store_ledger_head(struct store *s, int64_t *ret_seq, uint8_t hash[LEDGER_HASH_LEN],
                      uint8_t sig[LEDGER_SIG_LEN]);
/* Append e and make it the signed head. */
STORE_CHECK int store_ledger_append(struct store *s, const struct ledger_entry *e,
                        const uint8_t head_sig[LEDGER_SIG_LEN]);
typedef int (*store_ledger_fn)(const struct ledger_entry *e, void *userdata);
STORE_CHECK int store_ledger_foreach(struct store *s, int64_t from_seq, store_ledger_fn fn, void *userdata);

STORE_CHECK int store_presence_open(struct store *s, int64_t member_id, int64_t resource_id, int64_t at);
/* The member's open presence: -ENOENT if none. */
STORE_CHECK int store_presence_find(struct store *s, int64_t member_id, int64_t *ret_id, int64_t *ret_in);
STORE_CHECK int store_presence_close(struct store *s, int64_t id, int64_t at, const char *reason);
typedef int (*store_presence_fn)(int64_t id, int64_t member_id, const char *name, int64_t in,
                                 void *userdata);
/* How many people are in (a counter: no rows read). */
STORE_CHECK int64_t store_present_count(struct store *s);
/* Who is in (at most 256 listed). */
STORE_CHECK int store_presence_foreach(struct store *s, store_presence_fn fn, void *userdata);

struct store_period {
    char period[8];                 /* YYYY-MM */
    char first_day[11], last_day[11];
    int64_t closed_at;
    int64_t last_seq;
    uint8_t last_hash[LEDGER_HASH_LEN];
    char totals[512];               /* JSON */
    char archive[256];              /* path of the signed archive */
    bool has_archive_sha256;        /* false for periods closed before it was kept */
    uint8_t archive_sha256[32];     /* SHA-256 of the archive file's bytes */
};
STORE_CHECK int store_period_add(struct store *s, const struct store_period *p);
typedef int (*store_period_fn)(const struct store_period *p, void *userdata);
STORE_CHECK int store_periods_foreach(struct store *s, store_period_fn fn, void *userdata);
/* 1 if period "YYYY-MM" is closed, 0 if not, or -errno. */
STORE_CHECK int store_period_is_closed(struct store *s, const char *period);
STORE_CHECK int store_resource_category(struct store *s, const char *name, char *buf, size_t n);
/* Machine category, for rates and passes that target "category:NAME". */
STORE_CHECK int store_resource_set_category(struct store *s, int64_t id, const char *category);

/* ---- the outbox: events waiting for MQTT and webhooks, in sequence order ---- */
/* When on, every access event also writes an outbox message in the same transaction; at
 * most max messages are kept (the oldest is dropped, and counted, when full). */
STORE_CHECK int store_outbox_enable(struct store *s, bool on, int64_t max);
/* Queue a message (payload: a JSON object without site and seq). No-op when off. */
STORE_CHECK int store_outbox_add(struct store *s, const char *kind, const char *payload);
typedef int (*store_outbox_fn)(int64_t seq, const char *kind, const char *payload, void *userdata);
/* Up to n messages with seq > after_seq, oldest first. */
STORE_CHECK int store_outbox_fetch(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata);
/* MQTT's broker acknowledged seq: the message leaves (or, while webhooks keep messages, MQTT
 * will not be sent it again). */
STORE_CHECK int store_outbox_delete(struct store *s, int64_t seq);
STORE_CHECK int64_t store_outbox_count(struct store *s);
uint64_t store_outbox_dropped(struct store *s);

/* The outbox's consumers (store_events.c says how messages are kept for them). Call after
 * store_outbox_enable(), at start: mqtt says whether MQTT reads it, webhooks[n] names the
 * webhooks. A webhook new to the database starts after the last message; cursors of
 * webhooks no longer named are forgotten. */
STORE_CHECK int store_outbox_consumers(struct store *s, bool mqtt, const char *const *webhooks,
                                       unsigned n);
/* A webhook's cursor: every message <= it was delivered (or skipped). -ENOENT if unknown. */
STORE_CHECK int store_outbox_cursor(struct store *s, const char *webhook, int64_t *ret_seq);
/* Move a webhook's cursor (in the open batch); what every consumer has is deleted. */
STORE_CHECK int store_outbox_advance(struct store *s, const char *webhook, int64_t seq);
/* Up to n durable messages with seq > after_seq, oldest first, for any consumer. */
STORE_CHECK int store_outbox_read(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                                  void *userdata);
/* The newest message known to be on disk. */
int64_t store_outbox_durable_seq(const struct store *s);

/* ---- the e-mail outbox (store_mail.c) ----
 *
 * Messages are rendered when they are queued (in the batch of the change they tell of) and
 * leave only once durable. A sent message keeps its headers and loses its bodies. */
#define STORE_MAIL_ADDR_MAX 128
#define STORE_MAIL_SUBJECT_MAX 256
#define STORE_MAIL_BODY_MAX (64 * 1024)

enum store_mail_state { STORE_MAIL_QUEUED, STORE_MAIL_SENT, STORE_MAIL_FAILED };
const char *store_mail_state_name(enum store_mail_state state);

struct store_mail {
    int64_t id;
    char kind[16];                      /* invite, booking, reminder, training, membership, test */
    int64_t member_id;                  /* 0: none */
    char to_addr[STORE_MAIL_ADDR_MAX];
    char to_name[96];
    char lang[4];                       /* "en", "fr" */
    char subject[STORE_MAIL_SUBJECT_MAX];
    const char *body_text, *body_html;  /* adding: the bodies; sending: valid during the
                                         * callback only; listings: NULL */
    char message_id[96];                /* without the angle brackets */
    char dedup[64];                     /* "" or a key queued once ("reminder:42") */
    int64_t dedup_until;                /* the key is kept at least until then */
    enum store_mail_state state;
    int64_t attempts, next_try_at, created_at, sent_at;
    char last_error[160];
};
/* Queue m (state, attempts, sent_at ignored). -EEXIST if its dedup key was queued before. */
STORE_CHECK int store_mail_add(struct store *s, const struct store_mail *m, int64_t *ret_id);
STORE_CHECK int store_mail_get(struct store *s, int64_t id, struct store_mail *ret);
typedef int (*store_mail_fn)(const struct store_mail *m, void *userdata);
/* Durable queued messages due at now (next_try_at <= now), soonest first, at most n, with
 * their bodies; except_id[n_except] are skipped (being sent). */
STORE_CHECK int store_mail_due(struct store *s, int64_t now, int n, const int64_t *except_id,
                               unsigned n_except, store_mail_fn fn, void *userdata);
/* When the next durable queued message is due: -ENOENT if none. */
STORE_CHECK int store_mail_next_due(struct store *s, int64_t *ret_at);
/* Queued messages (durable or not): the bound of the queue. */
STORE_CHECK int64_t store_mail_queued_count(struct store *s);
/* Sent at at: the bodies are wiped. */
STORE_CHECK int store_mail_sent(struct store *s, int64_t id, int64_t at);
/* An attempt failed: tried again at next_try_at, or (next_try_at 0) given up. */
STORE_CHECK int store_mail_failed(struct store *s, int64_t id, int64_t attempts,
                                  int64_t next_try_at, const char *error);
/* A failed message queued again now (its attempts start over). -ENOENT unless it failed
 * and still has its bodies. */
STORE_CHECK int store_mail_requeue(struct store *s, int64_t id, int64_t now);
struct store_mail_filter {
    int state;                          /* enum store_mail_state, or -1: any */
    int64_t member_id;                  /* 0: any */
    int64_t limit;                      /* 0: 100 */
};
/* Newest first, without bodies. */
STORE_CHECK int store_mails_foreach(struct store *s, const struct store_mail_filter *f,
                                    store_mail_fn fn, void *userdata);
/* Times of the messages sent since since (the hourly limit across restarts). */
typedef int (*store_time_fn)(int64_t at, void *userdata);
STORE_CHECK int store_mail_sent_since(struct store *s, int64_t since, store_time_fn fn,
                                      void *userdata);
/* Delete sent and failed messages created before before whose dedup key has expired by
 * now. Returns how many. */
STORE_CHECK int store_mail_prune(struct store *s, int64_t before, int64_t now);

/* What the e-mail notices are about: bookings about to start (reminders), trainings and
 * memberships about to end. Only members with an e-mail address, and only what no message
 * was queued for yet (by its dedup key, see each). */
struct store_mail_notice {
    int64_t ref_id;                     /* booking, qualification or member id */
    int64_t member_id;
    char name[96];
    char email[STORE_MAIL_ADDR_MAX];
    char what[32];                      /* machine or training name; "" for memberships */
    int64_t start, end;                 /* bookings; trainings and memberships: end only */
};
typedef int (*store_mail_notice_fn)(const struct store_mail_notice *n, void *userdata);
/* Bookings starting in [from, to), not cancelled, made at least lead seconds before their
 * start; dedup key "reminder:BOOKING". */
STORE_CHECK int store_mail_reminders_due(struct store *s, int64_t from, int64_t to, int64_t lead,
                                         store_mail_notice_fn fn, void *userdata);
/* Qualifications ending in [from, to) that no longer-lasting grant of the same training
 * covers; dedup key "training:QUALIFICATION". */
STORE_CHECK int store_mail_trainings_ending(struct store *s, int64_t from, int64_t to,
                                            store_mail_notice_fn fn, void *userdata);
/* Active members whose valid_until is in [from, to); dedup key "membership:MEMBER:UNTIL". */
STORE_CHECK int store_mail_memberships_ending(struct store *s, int64_t from, int64_t to,
                                              store_mail_notice_fn fn, void *userdata);

/* A step: writes between begin and end(keep = false) are undone, the batch goes on. */
STORE_CHECK int store_step_begin(struct store *s);
STORE_CHECK int store_step_end(struct store *s, bool keep);
/* The site id the database (and its ledger) belongs to: recorded on first use; -EXDEV if
 * the database belongs to another site id. */
STORE_CHECK int store_site_id(struct store *s, const char *site);

/* The database file's path (for a second, read-only connection). */
STORE_CHECK int store_path(struct store *s, char *buf, size_t n);

/* Increases with every change to bookings or machines (for caches of what they show). Any
 * thread may read it (the web thread's page cache does). */
uint64_t store_generation(const struct store *s);

/* ---- web accounts (store_accounts.c) ---- */
#define STORE_ACCOUNT_NAME_MAX 32
#define STORE_PASSWORD_HASH_MAX 128     /* crypto_pwhash_STRBYTES */
#define STORE_TOKEN_TEXT_MAX 44         /* 32 random bytes, base64url */

struct store_account {
    int64_t id;
    char name[STORE_ACCOUNT_NAME_MAX + 1];
    char role[12];                      /* "member", "manager", "custodian" */
    int64_t member_id;                  /* members: whose account; else 0 */
    char member[96];
    char password[STORE_PASSWORD_HASH_MAX];     /* argon2id string, "" until set */
    bool has_calendar;                  /* a private calendar address exists (kept hashed) */
    int64_t disabled_at, created_at;
    char created_by[64];
    int64_t login_failures;             /* failed logins since the last good one */
    int64_t login_failed_at;            /* UTC seconds of the last failure, 0: none */
    int64_t last_login_at;              /* 0: never */
    char language[4];                   /* "en", "fr"; "": no preference */
};
/* -EEXIST if the name is taken (names compare without case). */
STORE_CHECK int store_account_add(struct store *s, const char *name, const char *role, int64_t member_id,
                      const char *by, int64_t *ret_id);
STORE_CHECK int store_account_get(struct store *s, int64_t id, struct store_account *ret);
STORE_CHECK int store_account_find(struct store *s, const char *name, struct store_account *ret);
/* The account whose private calendar address has this token hash (account_token_hash()). */
STORE_CHECK int store_account_by_calendar(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                                          struct store_account *ret);
STORE_CHECK int store_account_set_password(struct store *s, int64_t id, const char *hash);
STORE_CHECK int store_account_set_disabled(struct store *s, int64_t id, int64_t disabled_at);
/* A login of the account failed (at), or succeeded (ok: the count starts again). */
STORE_CHECK int store_account_login_noted(struct store *s, int64_t id, bool ok, int64_t at);
/* The calendar address's token is kept as its hash only, as sessions are: the address is
 * shown once, when it is made. */
STORE_CHECK int store_account_set_calendar(struct store *s, int64_t id,
                                           const uint8_t hash[STORE_HASH_LEN]);
/* Databases of before 0.2 kept calendar tokens in clear: each one still in clear is replaced
 * by its hash (hash_fn, account_token_hash()), so old addresses go on working. Returns how
 * many were hashed. */
STORE_CHECK int store_accounts_hash_calendar_tokens(struct store *s,
                                                    bool (*hash_fn)(const char *text,
                                                                    uint8_t hash[STORE_HASH_LEN]));
/* language: "en", "fr" or "" (no preference). */
STORE_CHECK int store_account_set_language(struct store *s, int64_t id, const char *language);
typedef int (*store_account_fn)(const struct store_account *a, void *userdata);
STORE_CHECK int store_accounts_foreach(struct store *s, store_account_fn fn, void *userdata);

/* Web sessions, by the hash of their cookie. */
STORE_CHECK int store_websession_add(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t account_id,
                         const char *csrf, int64_t created_at, int64_t expires_at);
/* The live session's account and CSRF token (buf of STORE_TOKEN_TEXT_MAX + 1). -ENOENT. */
STORE_CHECK int store_websession_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now,
                         int64_t *ret_account, char *ret_csrf);
STORE_CHECK int store_websession_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN]);
/* Every session of an account (password changed, account disabled); and expired ones. */
STORE_CHECK int store_websessions_end(struct store *s, int64_t account_id, int64_t now);

/* One-time links ("invite", used once) and API tokens ("api"), by the hash of the token. */
STORE_CHECK int store_account_token_add(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                            int64_t account_id, const char *kind, const char *label,
                            int64_t created_at, int64_t expires_at);
/* The token's account if it is of kind, unexpired and (invites) unused. -ENOENT. */
STORE_CHECK int store_account_token_check(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                              const char *kind, int64_t now, int64_t *ret_account);
/* Mark an invite used. -ENOENT if it already was. */
STORE_CHECK int store_account_token_use(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now);

/* ---- the history of a member (store_privacy.c) ---- */
struct store_member_change {
    int64_t id, member_id, at;
    char by[64];
    char field[16];                 /* "name", "email", "plan", "valid_until", ... */
    char old[256], new[256];
};
STORE_CHECK int store_member_change_add(struct store *s, int64_t member_id, int64_t at,
                                        const char *by, const char *field, const char *old,
                                        const char *new);
typedef int (*store_member_change_fn)(const struct store_member_change *c, void *userdata);
/* Newest first; at most limit (0: all). */
STORE_CHECK int store_member_changes_foreach(struct store *s, int64_t member_id, int64_t limit,
                                             store_member_change_fn fn, void *userdata);
/* Plan changes whose date has come: applied (plan_id = next_plan_id), each recorded as a
 * change by "schedule"; fn (may be NULL) hears of each. Returns how many. */
typedef int (*store_plan_change_fn)(int64_t member_id, int64_t old_plan, int64_t new_plan,
                                    void *userdata);
STORE_CHECK int store_member_plan_changes_apply(struct store *s, int64_t now,
                                                store_plan_change_fn fn, void *userdata);

/* ---- leaving: removal and erasure (store_privacy.c) ---- */
/* Remove member id at now: access ends (valid_until at most now, cards disabled, web
 * accounts disabled and their sessions ended, future bookings cancelled by `by`, trainer
 * roles ended, no waiting plan change); every record stays. -ENOENT. */
STORE_CHECK int store_member_remove(struct store *s, int64_t id, int64_t now, const char *by);
/* The first billing day of id's usage that lies in no closed period ("" if none), for the
 * refusal to erase a member whose usage is not yet settled. */
STORE_CHECK int store_member_open_usage(struct store *s, int64_t id, char first_day[11]);
/* Erase member id (after store_member_remove()): the name becomes pseudonym, e-mail, note
 * and card labels are emptied, web accounts (their sessions, tokens and calendar address),
 * trainings, trainer roles and the e-mails written to them are deleted, and the history
 * keeps no old name, e-mail,
 * note or card label. Usage, ledger, bookings, passes and sessions stay, under the member's id. The
 * cards themselves are deleted by store_member_forget_cards() once the access log no
 * longer holds their hashes (store_erase_scrub_step()). -ENOENT. */
STORE_CHECK int store_member_erase(struct store *s, int64_t id, const char *pseudonym, int64_t now);
/* Erase the card hashes of member id's taps (and of taps of its cards) among the access
 * events with ids in [from, to]. Returns how many were erased. */
STORE_CHECK int store_erase_scrub_step(struct store *s, int64_t member_id, int64_t from, int64_t to);
/* Delete the cards of member id and their consortium hashes. Returns how many cards. */
STORE_CHECK int store_member_forget_cards(struct store *s, int64_t member_id);
/* Erased members whose cards are still there (an erasure interrupted by a restart). */
STORE_CHECK int store_erasures_pending(struct store *s, int64_t *ids, int n);

/* ---- retention (store_privacy.c) ---- */
enum store_retention_table {
    RETENTION_ACCESS_EVENTS,        /* by at */
    RETENTION_PRESENCE,             /* closed presences, by check-out */
    RETENTION_SESSIONS,             /* ended machine sessions, by end */
    RETENTION_BOOKINGS,             /* bookings, by end */
    RETENTION__MAX,
};
const char *store_retention_table_name(enum store_retention_table t);
/* Rows are walked in id order, limit at a time, from *cursor (start at 0). One step
 * deletes, among the next limit rows, those older than cutoff, and advances *cursor past
 * them. Returns the number deleted, with *ret_more false once the walk has reached rows at
 * or after cutoff (ids grow with time) or the end of the table. */
STORE_CHECK int store_retention_step(struct store *s, enum store_retention_table t, int64_t cutoff,
                                     int64_t limit, int64_t *cursor, bool *ret_more);
/* Delete member accounts (with their sessions and tokens) neither used nor created since
 * before. Returns how many. */
STORE_CHECK int store_accounts_prune_inactive(struct store *s, int64_t before);
/* Note a login (for account_inactive_days). */
STORE_CHECK int store_account_touch(struct store *s, int64_t id, int64_t at);
/* 2 for incremental, 1 for full, 0 for none (PRAGMA auto_vacuum), or -errno. */
STORE_CHECK int store_auto_vacuum(struct store *s);
/* Free pages in the file (PRAGMA freelist_count), or -errno. */
STORE_CHECK int64_t store_free_pages(struct store *s);
/* Give at most pages free pages back to the file system (PRAGMA incremental_vacuum, in the
 * open batch). Returns the free pages left, or -errno. */
STORE_CHECK int64_t store_vacuum_step(struct store *s, int pages);

/* ---- what a member's export reads (store_privacy.c): each member's own rows ---- */
STORE_CHECK int store_member_events_foreach(struct store *s, int64_t member_id,
                                            store_event_fn fn, void *userdata);
struct store_presence {
    int64_t id, member_id;
    char resource[32];
    int64_t check_in_at, check_out_at;
    char end_reason[24];
};
typedef int (*store_presence_row_fn)(const struct store_presence *p, void *userdata);
STORE_CHECK int store_member_presences_foreach(struct store *s, int64_t member_id,
                                               store_presence_row_fn fn, void *userdata);
STORE_CHECK int store_member_sessions_foreach(struct store *s, int64_t member_id,
                                              store_session_fn fn, void *userdata);
/* Member accounts: every account acting for member_id. */
STORE_CHECK int store_member_accounts_foreach(struct store *s, int64_t member_id,
                                              store_account_fn fn, void *userdata);
/* ---- entrance screens (store_kiosks.c): a secret address each, stored as its hash ---- */
struct store_kiosk {
    int64_t id;
    char label[64];
    int64_t created_at;
    char created_by[64];
};
STORE_CHECK int store_kiosk_add(struct store *s, const char *label, const uint8_t hash[STORE_HASH_LEN],
                    const char *by, int64_t *ret_id);
/* The screen whose token has this hash, unless removed. -ENOENT. */
STORE_CHECK int store_kiosk_check(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                      struct store_kiosk *ret);
/* -ENOENT if there is no such screen (or it was removed already). */
STORE_CHECK int store_kiosk_remove(struct store *s, int64_t id, int64_t at);
typedef int (*store_kiosk_fn)(const struct store_kiosk *k, void *userdata);
/* Screens not removed, oldest first. */
STORE_CHECK int store_kiosks_foreach(struct store *s, store_kiosk_fn fn, void *userdata);

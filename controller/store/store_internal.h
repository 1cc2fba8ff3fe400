/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_internal: what the store's files share, and nothing outside the store reads.
 *
 * store.c owns the connection, the migrations, the batches and their durability, and the
 * access events held from failed batches. Each aggregate has its file: store_members.c
 * (plans, members, cards, the subject of a card), store_events.c (access events, the outbox
 * that MQTT and webhooks read), store_mail.c (the e-mail outbox), store_fablab.c
 * (resources, trainings, qualifications, bookings, machine sessions), store_usage.c
 * (billing plans, rates, passes, usage, the ledger, presence, periods), store_trainers.c,
 * store_accounts.c, store_kiosks.c (entrance screens), store_consortium.c, store_privacy.c
 * (members' history, removal and erasure, retention, and what an export reads);
 * store_facts.c turns rows into policy facts.
 *
 * A file keeps its SQL in `static const char sql_...[]` strings next to the functions that
 * run them, with the column table of each row struct it reads (store_sql.h). A store
 * function then says only its SQL, its parameters and its columns, through the helpers
 * below: store_write() and its kin for writes (they join the batch), store_get() for one
 * row, store_each() or store_collect() for many. store_stmt() (the one registry) and the
 * statement helpers of store_sql.h are there for what these do not cover. */
#pragma once
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_sql.h"

struct store {
    sqlite3 *db;
    struct store_stmts *stmts;
    bool in_batch;
    bool outbox_on;
    int64_t outbox_max;
    int64_t outbox_count;
    uint64_t outbox_dropped;
    struct store_hooks hooks;
    uint64_t batch_no;                  /* the open batch, or the last one begun */
    uint64_t committed_no;              /* the last committed batch */
    bool deferred;                      /* commits do not sync: see store_defer_sync() */
    int wal_frames;
    int64_t outbox_last, ledger_last;   /* highest seq written (committed or not) */
    int64_t mail_last;                  /* highest e-mail id written (committed or not) */
    /* The outbox's consumers (store_events.c): with webhooks, messages stay until every
     * consumer's cursor passed them; MQTT's acknowledgements then move its own cursor. */
    bool outbox_cursors;                /* webhooks are configured */
    bool outbox_mqtt;                   /* MQTT reads the outbox */
    int64_t mqtt_floor;                 /* every message <= it is acknowledged; -1: unused */
    int64_t mqtt_acked[64];             /* acknowledged above the floor (out of order) */
    unsigned n_mqtt_acked;
    int64_t outbox_pruned;              /* messages <= it are deleted */
    struct store_marks committed, durable;
    /* Access events of the open batch (copies, to hold them if it fails), and those held
     * from failed batches. */
    struct store_event *batch_ev, *held;
    unsigned n_batch_ev, n_held;
    uint64_t batch_ev_overflow, held_dropped;
    uint64_t generation;                /* store_generation(); read by other threads */
};

/* What the web page shows may have changed: its caches are stale. */
static inline void store_generation_bump(struct store *s)
{
    __atomic_fetch_add(&s->generation, 1, __ATOMIC_RELAXED);
}

/* The statement for sql (a string with static storage), reset and unbound; NULL if it
 * cannot be prepared (the helpers of store_sql.h then return -EIO). */
sqlite3_stmt *store_stmt(struct store *s, const char *sql);

/* Writes join the open batch, starting one if needed. 0 or -errno. */
int store_batch_ensure(struct store *s);

/* ---- writes: each joins the open batch first (store_batch_ensure()) ---- */
/* Run sql with args. 0 or -errno. */
int store_write(struct store *s, const char *sql, struct store_args args);
/* The same; -ENOENT if it changed no row (an UPDATE or DELETE of one row by its key). */
int store_update(struct store *s, const char *sql, struct store_args args);
/* The same; returns how many rows it changed. */
int store_write_count(struct store *s, const char *sql, struct store_args args);
/* An INSERT: its rowid goes to *ret_id (may be NULL). 0 or -errno. */
int store_insert(struct store *s, const char *sql, struct store_args args, int64_t *ret_id);

/* ---- reads: store_sql.h's helpers on the statement for sql ---- */
int store_get(struct store *s, const char *sql, struct store_args args,
              const struct store_cols *cols, void *ret);
int store_get_int64(struct store *s, const char *sql, struct store_args args, int64_t *ret);
int64_t store_value(struct store *s, const char *sql, struct store_args args);
int store_get_text(struct store *s, const char *sql, struct store_args args, char *buf,
                   size_t n);
int store_exists(struct store *s, const char *sql, struct store_args args);
int store_each(struct store *s, const char *sql, struct store_args args,
               const struct store_cols *cols, store_row_fn each, void *ctx);
int store_collect(struct store *s, const char *sql, struct store_args args,
                  const struct store_cols *cols, void *out, size_t n);
/* store_collect() into out, then each(row, ctx) for each row read: for callbacks that write
 * (a write must not run under the statement's cursor). The number of rows, the first
 * negative return of each, or -errno. */
int store_collect_each(struct store *s, const char *sql, struct store_args args,
                       const struct store_cols *cols, void *out, size_t n, store_row_fn each,
                       void *ctx);

/* Keep ev to write it again later (its write, or its batch, failed). */
void store_hold_event(struct store *s, const struct store_event *ev);
/* ev joined the open batch: keep a copy, to hold it if the batch fails. */
void store_batch_note_event(struct store *s, const struct store_event *ev);

/* Delete a card's consortium hash, if the consortium's tables exist (store_members.c). */
int store_card_forget_consortium(struct store *s, int64_t card_id);

/* The outbox's row count, read from disk (the outbox is in store_events.c). */
int64_t store_outbox_count_rows(struct store *s);
/* A batch was rolled back: the outbox consumers' positions are read again from disk. */
void store_outbox_rolled_back(struct store *s);

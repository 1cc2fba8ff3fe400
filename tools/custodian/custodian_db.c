/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "custodian_db.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"          /* the SQLite helpers every database of Portier uses */

/* Migration N brings user_version from N-1 to N. Never edit a released migration. */
static const char *const migrations[CDB_SCHEMA_VERSION] = {
    /* 1: the registry, verified entries, problems. */
    "CREATE TABLE sites ("
    "  name TEXT PRIMARY KEY,"
    "  public_key BLOB NOT NULL CHECK (length(public_key) = 32),"
    "  timezone TEXT NOT NULL,"
    "  day_starts INTEGER NOT NULL,"
    "  added_at INTEGER NOT NULL,"
    "  verified_seq INTEGER NOT NULL DEFAULT 0,"
    "  verified_hash BLOB,"
    "  batch_first INTEGER NOT NULL DEFAULT 0,"
    "  batch_sig BLOB,"
    "  last_batch_at INTEGER NOT NULL DEFAULT 0,"
    "  replays INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE entries ("
    "  site TEXT NOT NULL REFERENCES sites(name),"
    "  seq INTEGER NOT NULL,"
    "  usage_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  member_id INTEGER NOT NULL,"
    "  resource TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER NOT NULL,"
    "  quantity INTEGER NOT NULL,"
    "  unit TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL,"
    "  allowance TEXT NOT NULL,"
    "  corrects_seq INTEGER NOT NULL,"
    "  recorded_at INTEGER NOT NULL,"
    "  prev_hash BLOB NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  signature BLOB,"
    "  billing_day TEXT NOT NULL,"
    "  home_site TEXT NOT NULL DEFAULT '',"     /* visits: the visitor's home site */
    "  received_at INTEGER NOT NULL,"
    "  PRIMARY KEY (site, seq)) WITHOUT ROWID;"
    "CREATE INDEX entries_day ON entries(billing_day, site);"
    "CREATE TABLE problems ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  site TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  first_seq INTEGER NOT NULL DEFAULT 0,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  detail TEXT NOT NULL,"
    "  resolved_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX problems_site ON problems(site, kind, resolved_at);"
    "CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries"
    "  BEGIN SELECT RAISE(ABORT, 'verified entries are append-only'); END;"
    "CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries"
    "  BEGIN SELECT RAISE(ABORT, 'verified entries are append-only'); END;"
    "CREATE TRIGGER problems_no_delete BEFORE DELETE ON problems"
    "  BEGIN SELECT RAISE(ABORT, 'problems are kept'); END;",

    /* 2: visits carry their visitor's pseudonym (home_site was there from the start). */
    "ALTER TABLE entries ADD COLUMN visitor TEXT NOT NULL DEFAULT '';",

    /* 3: the sites' period seals, as received and verified (text and signature kept byte
     * for byte: the export hands them to auditors). Only their state changes. */
    "CREATE TABLE seals ("
    "  site TEXT NOT NULL REFERENCES sites(name),"
    "  period TEXT NOT NULL,"
    "  first_day TEXT NOT NULL,"
    "  last_day TEXT NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  last_hash BLOB NOT NULL CHECK (length(last_hash) = 32),"
    "  archive_sha256 BLOB NOT NULL CHECK (length(archive_sha256) = 32),"
    "  closed_at INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  sig BLOB NOT NULL CHECK (length(sig) = 64),"
    "  received_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'verified', 'mismatch')),"
    "  checked_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (site, period)) WITHOUT ROWID;"
    "CREATE TRIGGER seals_no_delete BEFORE DELETE ON seals"
    "  BEGIN SELECT RAISE(ABORT, 'seals are kept'); END;"
    "CREATE TRIGGER seals_state_only BEFORE UPDATE OF site, period, first_day, last_day, "
    "  last_seq, last_hash, archive_sha256, closed_at, text, sig, received_at ON seals"
    "  BEGIN SELECT RAISE(ABORT, 'seals are kept as received'); END;",

    /* 4: what the open data says of each site (docs/opendata.md): its public name and
     * place, and the category each of its machines is published under. Entered by the
     * custodian's operator; the ledger carries neither. */
    "CREATE TABLE site_places ("
    "  site TEXT PRIMARY KEY REFERENCES sites(name),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  commune TEXT NOT NULL DEFAULT '',"
    "  insee_code TEXT NOT NULL DEFAULT '',"
    "  latitude TEXT NOT NULL DEFAULT '',"
    "  longitude TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
    "CREATE TABLE machine_categories ("
    "  site TEXT NOT NULL REFERENCES sites(name),"
    "  machine TEXT NOT NULL,"
    "  category TEXT NOT NULL,"
    "  PRIMARY KEY (site, machine)) WITHOUT ROWID;",

    /* 5: the energy of metered machine sessions (Wh), NULL for entries without it: the
     * entry's text (and so its hash) says energy_wh only when it has it. */
    "ALTER TABLE entries ADD COLUMN energy_wh INTEGER;",
};

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
    Q_SITE_ADD, Q_SITE_GET, Q_SITE_LIST, Q_SITE_ADVANCE, Q_SITE_REPLAY,
    Q_ENTRY_HASH, Q_ENTRY_ADD, Q_ENTRY_COUNT,
    Q_PROBLEM_ADD, Q_GAP_OPEN, Q_GAP_RESOLVE, Q_PROBLEM_LIST,
    Q_USAGE, Q_VISITS,
    Q_SEAL_ADD, Q_SEAL_GET, Q_SEAL_LIST, Q_SEAL_STATE, Q_SEAL_PREV, Q_ENTRY_RANGE,
    Q__MAX
};

#define SITE_COLUMNS \
    "s.name, s.public_key, s.timezone, s.day_starts, s.added_at, s.verified_seq, s.verified_hash, " \
    "s.batch_first, s.batch_sig, s.last_batch_at, s.replays, " \
    "(SELECT count(*) FROM problems p WHERE p.site = s.name AND p.kind NOT IN ('replay') " \
    "AND p.resolved_at = 0)"

static const char *const sql[Q__MAX] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SITE_ADD] = "INSERT INTO sites (name, public_key, timezone, day_starts, added_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_SITE_GET] = "SELECT " SITE_COLUMNS " FROM sites s WHERE s.name = ?1",
    [Q_SITE_LIST] = "SELECT " SITE_COLUMNS " FROM sites s ORDER BY s.name",
    [Q_SITE_ADVANCE] = "UPDATE sites SET verified_seq = ?2, verified_hash = ?3, batch_first = ?4, "
                       "batch_sig = ?5, last_batch_at = ?6 WHERE name = ?1 AND verified_seq < ?2",
    [Q_SITE_REPLAY] = "UPDATE sites SET replays = replays + 1 WHERE name = ?1",
    [Q_ENTRY_HASH] = "SELECT hash FROM entries WHERE site = ?1 AND seq = ?2",
    [Q_ENTRY_ADD] = "INSERT INTO entries (site, seq, usage_id, kind, member_id, resource, "
                    "started_at, ended_at, quantity, unit, amount_cents, allowance, corrects_seq, "
                    "recorded_at, prev_hash, hash, signature, billing_day, received_at, home_site, "
                    "visitor, energy_wh) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                    "?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
    [Q_ENTRY_COUNT] = "SELECT count(*) FROM entries WHERE ?1 IS NULL OR site = ?1",
    [Q_PROBLEM_ADD] = "INSERT INTO problems (at, site, kind, first_seq, last_seq, detail, "
                      "resolved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_GAP_OPEN] = "SELECT 1 FROM problems WHERE site = ?1 AND kind = 'gap' AND resolved_at = 0 "
                   "AND first_seq = ?2",
    [Q_GAP_RESOLVE] = "UPDATE problems SET resolved_at = ?3 WHERE site = ?1 AND kind = 'gap' AND "
                      "resolved_at = 0 AND first_seq <= ?2",
    [Q_PROBLEM_LIST] = "SELECT id, at, site, kind, first_seq, last_seq, detail, resolved_at "
                       "FROM problems WHERE (?1 IS NULL OR site = ?1) AND at >= ?2 "
                       "ORDER BY id DESC LIMIT ?3",
    [Q_USAGE] = "SELECT site, kind, count(*), sum(quantity), sum(amount_cents) FROM entries "
                "WHERE billing_day BETWEEN ?1 AND ?2 GROUP BY site, kind ORDER BY site, kind",
    [Q_VISITS] = "SELECT home_site, site, count(*), sum(amount_cents) FROM entries "
                 "WHERE kind = 'visit' AND home_site != '' AND billing_day BETWEEN ?1 AND ?2 "
                 "GROUP BY home_site, site ORDER BY home_site, site",
    [Q_SEAL_ADD] = "INSERT INTO seals (site, period, first_day, last_day, last_seq, last_hash, "
                   "archive_sha256, closed_at, text, sig, received_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
#define SEAL_COLUMNS "site, period, first_day, last_day, last_seq, last_hash, archive_sha256, " \
                     "closed_at, text, sig, received_at, state, checked_at"
    [Q_SEAL_GET] = "SELECT " SEAL_COLUMNS " FROM seals WHERE site = ?1 AND period = ?2",
    [Q_SEAL_LIST] = "SELECT " SEAL_COLUMNS " FROM seals WHERE (?1 IS NULL OR site = ?1) AND "
                    "(?2 IS NULL OR period = ?2) ORDER BY period, site",
    [Q_SEAL_STATE] = "UPDATE seals SET state = ?3, checked_at = ?4 WHERE site = ?1 AND period = ?2",
    [Q_SEAL_PREV] = "SELECT coalesce(max(last_seq), 0) FROM seals WHERE site = ?1 AND period < ?2",
    [Q_ENTRY_RANGE] = "SELECT seq, usage_id, kind, member_id, resource, started_at, ended_at, "
                      "quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, "
                      "prev_hash, hash, signature, home_site, visitor, energy_wh FROM entries "
                      "WHERE site = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
};

struct cdb {
    sqlite3 *db;
    struct store_stmts *stmts;      /* sql[], prepared at open */
};

static sqlite3_stmt *q(struct cdb *db, int id)
{
    return store_stmts_get(db->stmts, sql[id]);
}

/* A blob of n bytes, or zeros. */
static void blob_col(sqlite3_stmt *st, int col, uint8_t *buf, size_t n)
{
    if (!store_column_blob(st, col, buf, n))
        memset(buf, 0, n);
}

int cdb_open(const char *path, struct cdb **ret)
{
    struct cdb *db = calloc(1, sizeof(*db));
    int rc, r;

    if (!db)
        return -ENOMEM;
    rc = sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                         SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = store_errno(rc) < 0 ? store_errno(rc) : -EIO;
        goto fail;
    }
    sqlite3_extended_result_codes(db->db, 1);
    /* WAL: the web page and sqlite3 read while ingestion writes. synchronous=NORMAL: a
     * power cut may lose the last batches, but acknowledgements are republished from the
     * database at start, so their sites simply send them again. */
    rc = sqlite3_exec(db->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                              "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = store_errno(rc) < 0 ? store_errno(rc) : -EIO;
        goto fail;
    }
    r = store_migrate(db->db, migrations, CDB_SCHEMA_VERSION, CDB_SCHEMA_VERSION);
    if (r < 0)
        goto fail;
    r = store_stmts_new(db->db, &db->stmts);
    if (r < 0)
        goto fail;
    for (int i = 0; i < Q__MAX; i++) {
        if (!q(db, i)) {           /* every query prepares now, or the open fails */
            r = -EIO;
            goto fail;
        }
    }
    *ret = db;
    return 0;
fail:
    cdb_free(db);
    return r;
}

struct cdb *cdb_free(struct cdb *db)
{
    if (!db)
        return NULL;
    store_stmts_free(db->stmts);
    sqlite3_close(db->db);
    free(db);
    return NULL;
}

/* ---- sites ---- */

int cdb_site_add(struct cdb *db, const struct cdb_site *s)
{
    sqlite3_stmt *st = q(db, Q_SITE_ADD);
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, s->public_key, LEDGER_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->timezone, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, s->day_starts);
    sqlite3_bind_int64(st, 5, s->added_at);
    return store_stmt_exec(st);
}

static void site_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_site *s = ret;

    memset(s, 0, sizeof(*s));
    store_column_text(st, 0, s->name, sizeof(s->name));
    blob_col(st, 1, s->public_key, LEDGER_PK_LEN);
    store_column_text(st, 2, s->timezone, sizeof(s->timezone));
    s->day_starts = sqlite3_column_int64(st, 3);
    s->added_at = sqlite3_column_int64(st, 4);
    s->verified_seq = sqlite3_column_int64(st, 5);
    blob_col(st, 6, s->verified_hash, LEDGER_HASH_LEN);
    s->batch_first = sqlite3_column_int64(st, 7);
    blob_col(st, 8, s->batch_sig, LEDGER_SIG_LEN);
    s->last_batch_at = sqlite3_column_int64(st, 9);
    s->replays = sqlite3_column_int64(st, 10);
    s->open_problems = sqlite3_column_int64(st, 11);
}

int cdb_site_get(struct cdb *db, const char *name, struct cdb_site *ret)
{
    sqlite3_stmt *st = q(db, Q_SITE_GET);

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_get(st, site_from_row, ret);
}

STORE_ROWS_DELIVER(sites_row, struct cdb_site, site_from_row)

int cdb_sites_foreach(struct cdb *db, cdb_site_fn fn, void *userdata)
{
    return store_rows_each(q(db, Q_SITE_LIST), sites_row, STORE_ROWS(fn, userdata));
}

/* ---- entries ---- */

static void hash_from_row(sqlite3_stmt *st, void *ret)
{
    blob_col(st, 0, ret, LEDGER_HASH_LEN);
}

int cdb_entry_hash(struct cdb *db, const char *site, int64_t seq, uint8_t hash[LEDGER_HASH_LEN])
{
    sqlite3_stmt *st = q(db, Q_ENTRY_HASH);

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    return store_row_get(st, hash_from_row, hash);
}

int cdb_store_batch(struct cdb *db, const struct ledger_batch *b, unsigned from, int64_t now,
                    void (*billing_day)(const struct ledger_entry *e, char out[11], void *ud),
                    void *ud)
{
    const struct ledger_entry *last = &b->entries[b->n - 1];
    sqlite3_stmt *st;
    char day[11];
    int r;

    r = store_stmt_exec(q(db, Q_BEGIN));
    if (r < 0)
        return r;
    for (unsigned i = from; i < b->n; i++) {
        const struct ledger_entry *e = &b->entries[i];
        billing_day(e, day, ud);
        st = q(db, Q_ENTRY_ADD);
        sqlite3_bind_text(st, 1, b->site, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, e->seq);
        sqlite3_bind_int64(st, 3, e->usage_id);
        sqlite3_bind_text(st, 4, e->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, e->member_id);
        sqlite3_bind_text(st, 6, e->resource, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, e->started_at);
        sqlite3_bind_int64(st, 8, e->ended_at);
        sqlite3_bind_int64(st, 9, e->quantity);
        sqlite3_bind_text(st, 10, e->unit, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 11, e->amount_cents);
        sqlite3_bind_text(st, 12, e->allowance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 13, e->corrects_seq);
        sqlite3_bind_int64(st, 14, e->recorded_at);
        sqlite3_bind_blob(st, 15, e->prev_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 16, e->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
        if (e->has_signature)
            sqlite3_bind_blob(st, 17, e->signature, LEDGER_SIG_LEN, SQLITE_STATIC);
        sqlite3_bind_text(st, 18, day, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 19, now);
        sqlite3_bind_text(st, 20, e->home, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 21, e->visitor, -1, SQLITE_STATIC);
        if (e->has_energy)
            sqlite3_bind_int64(st, 22, e->energy_wh);
        if ((r = store_stmt_exec(st)) < 0)
            goto fail;
    }
    st = q(db, Q_SITE_ADVANCE);
    sqlite3_bind_text(st, 1, b->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->last);
    sqlite3_bind_blob(st, 3, last->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, b->first);
    sqlite3_bind_blob(st, 5, b->sig, LEDGER_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    if ((r = store_stmt_exec(st)) < 0)
        goto fail;
    if (sqlite3_changes(db->db) != 1) {
        r = -ESTALE;
        goto fail;
    }
    st = q(db, Q_GAP_RESOLVE);
    sqlite3_bind_text(st, 1, b->site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->last);
    sqlite3_bind_int64(st, 3, now);
    if ((r = store_stmt_exec(st)) < 0)
        goto fail;
    r = store_stmt_exec(q(db, Q_COMMIT));
    if (r == 0)
        return 0;
fail:
    store_stmt_exec(q(db, Q_ROLLBACK));
    return r;
}

int cdb_count_replay(struct cdb *db, const char *site)
{
    sqlite3_stmt *st = q(db, Q_SITE_REPLAY);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    return store_stmt_exec(st);
}

int64_t cdb_entry_count(struct cdb *db, const char *site)
{
    sqlite3_stmt *st = q(db, Q_ENTRY_COUNT);

    if (site)
        sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    return store_row_value(st);
}

/* ---- problems ---- */

int cdb_problem_add(struct cdb *db, const struct cdb_problem *p)
{
    sqlite3_stmt *st = q(db, Q_PROBLEM_ADD);
    sqlite3_bind_int64(st, 1, p->at);
    sqlite3_bind_text(st, 2, p->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->first_seq);
    sqlite3_bind_int64(st, 5, p->last_seq);
    sqlite3_bind_text(st, 6, p->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, p->resolved_at);
    return store_stmt_exec(st);
}

bool cdb_gap_open(struct cdb *db, const char *site, int64_t first_seq)
{
    sqlite3_stmt *st = q(db, Q_GAP_OPEN);

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, first_seq);
    return store_row_get(st, NULL, NULL) == 0;
}

static void problem_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_problem *p = ret;

    p->id = sqlite3_column_int64(st, 0);
    p->at = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, p->site, sizeof(p->site));
    store_column_text(st, 3, p->kind, sizeof(p->kind));
    p->first_seq = sqlite3_column_int64(st, 4);
    p->last_seq = sqlite3_column_int64(st, 5);
    store_column_text(st, 6, p->detail, sizeof(p->detail));
    p->resolved_at = sqlite3_column_int64(st, 7);
}

STORE_ROWS_DELIVER(problems_row, struct cdb_problem, problem_from_row)

int cdb_problems_foreach(struct cdb *db, const char *site, int64_t since, int64_t limit,
                         cdb_problem_fn fn, void *userdata)
{
    sqlite3_stmt *st = q(db, Q_PROBLEM_LIST);

    if (site)
        sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
    return store_rows_each(st, problems_row, STORE_ROWS(fn, userdata));
}

/* ---- reports ---- */

static void usage_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_usage_row *row = ret;

    store_column_text(st, 0, row->site, sizeof(row->site));
    store_column_text(st, 1, row->kind, sizeof(row->kind));
    row->records = sqlite3_column_int64(st, 2);
    row->quantity = sqlite3_column_int64(st, 3);
    row->amount_cents = sqlite3_column_int64(st, 4);
}

STORE_ROWS_DELIVER(usage_row, struct cdb_usage_row, usage_from_row)

int cdb_usage_foreach(struct cdb *db, const char *first_day, const char *last_day,
                      cdb_usage_fn fn, void *userdata)
{
    sqlite3_stmt *st = q(db, Q_USAGE);

    sqlite3_bind_text(st, 1, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, last_day, -1, SQLITE_STATIC);
    return store_rows_each(st, usage_row, STORE_ROWS(fn, userdata));
}

static void visit_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_visit_row *row = ret;

    store_column_text(st, 0, row->home, sizeof(row->home));
    store_column_text(st, 1, row->host, sizeof(row->host));
    row->visits = sqlite3_column_int64(st, 2);
    row->amount_cents = sqlite3_column_int64(st, 3);
}

STORE_ROWS_DELIVER(visits_row, struct cdb_visit_row, visit_from_row)

int cdb_visits_foreach(struct cdb *db, const char *first_day, const char *last_day,
                       cdb_visit_fn fn, void *userdata)
{
    sqlite3_stmt *st = q(db, Q_VISITS);

    sqlite3_bind_text(st, 1, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, last_day, -1, SQLITE_STATIC);
    return store_rows_each(st, visits_row, STORE_ROWS(fn, userdata));
}

/* ---- period seals ---- */

static void seal_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_seal *s = ret;

    memset(s, 0, sizeof(*s));
    store_column_text(st, 0, s->site, sizeof(s->site));
    store_column_text(st, 1, s->period, sizeof(s->period));
    store_column_text(st, 2, s->first_day, sizeof(s->first_day));
    store_column_text(st, 3, s->last_day, sizeof(s->last_day));
    s->last_seq = sqlite3_column_int64(st, 4);
    blob_col(st, 5, s->last_hash, sizeof(s->last_hash));
    blob_col(st, 6, s->archive_sha256, sizeof(s->archive_sha256));
    s->closed_at = sqlite3_column_int64(st, 7);
    store_column_text(st, 8, s->text, sizeof(s->text));
    blob_col(st, 9, s->sig, sizeof(s->sig));
    s->received_at = sqlite3_column_int64(st, 10);
    store_column_text(st, 11, s->state, sizeof(s->state));
    s->checked_at = sqlite3_column_int64(st, 12);
}

int cdb_seal_add(struct cdb *db, const struct cdb_seal *s)
{
    sqlite3_stmt *st = q(db, Q_SEAL_ADD);
    sqlite3_bind_text(st, 1, s->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, s->last_seq);
    sqlite3_bind_blob(st, 6, s->last_hash, sizeof(s->last_hash), SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, s->archive_sha256, sizeof(s->archive_sha256), SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, s->closed_at);
    sqlite3_bind_text(st, 9, s->text, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, s->sig, sizeof(s->sig), SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, s->received_at);
    return store_stmt_exec(st);
}

int cdb_seal_get(struct cdb *db, const char *site, const char *period, struct cdb_seal *ret)
{
    sqlite3_stmt *st = q(db, Q_SEAL_GET);

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    return store_row_get(st, seal_from_row, ret);
}

STORE_ROWS_DELIVER(seals_row, struct cdb_seal, seal_from_row)

int cdb_seals_foreach(struct cdb *db, const char *site, const char *period, cdb_seal_fn fn,
                      void *userdata)
{
    sqlite3_stmt *st = q(db, Q_SEAL_LIST);

    if (site)
        sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    if (period)
        sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    return store_rows_each(st, seals_row, STORE_ROWS(fn, userdata));
}

int cdb_seal_set_state(struct cdb *db, const char *site, const char *period, const char *state,
                       int64_t now)
{
    sqlite3_stmt *st = q(db, Q_SEAL_STATE);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    return store_stmt_exec(st);
}

int64_t cdb_seal_prev_last_seq(struct cdb *db, const char *site, const char *period)
{
    sqlite3_stmt *st = q(db, Q_SEAL_PREV);

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    return store_row_value(st);
}

struct entries_ctx {
    struct store_rows rows;
    const char *site;
};

static int entries_row(sqlite3_stmt *st, void *ctx)
{
    struct entries_ctx *x = ctx;
    struct ledger_entry e;

    memset(&e, 0, sizeof(e));
    snprintf(e.site, sizeof(e.site), "%s", x->site);
    e.seq = sqlite3_column_int64(st, 0);
    e.usage_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, e.kind, sizeof(e.kind));
    e.member_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, e.resource, sizeof(e.resource));
    e.started_at = sqlite3_column_int64(st, 5);
    e.ended_at = sqlite3_column_int64(st, 6);
    e.quantity = sqlite3_column_int64(st, 7);
    store_column_text(st, 8, e.unit, sizeof(e.unit));
    e.amount_cents = sqlite3_column_int64(st, 9);
    store_column_text(st, 10, e.allowance, sizeof(e.allowance));
    e.corrects_seq = sqlite3_column_int64(st, 11);
    e.recorded_at = sqlite3_column_int64(st, 12);
    blob_col(st, 13, e.prev_hash, LEDGER_HASH_LEN);
    blob_col(st, 14, e.hash, LEDGER_HASH_LEN);
    e.has_signature = sqlite3_column_bytes(st, 15) == LEDGER_SIG_LEN;
    blob_col(st, 15, e.signature, LEDGER_SIG_LEN);
    store_column_text(st, 16, e.home, sizeof(e.home));
    store_column_text(st, 17, e.visitor, sizeof(e.visitor));
    if (sqlite3_column_type(st, 18) != SQLITE_NULL) {
        e.has_energy = true;
        e.energy_wh = sqlite3_column_int64(st, 18);
    }
    return ((cdb_entry_fn)x->rows.fn)(&e, x->rows.userdata);
}

int cdb_entries_foreach(struct cdb *db, const char *site, int64_t from, int64_t to,
                        cdb_entry_fn fn, void *userdata)
{
    sqlite3_stmt *st = q(db, Q_ENTRY_RANGE);
    struct entries_ctx x = { { (store_rows_cb)fn, userdata }, site };

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    return store_rows_each(st, entries_row, &x);
}

/* ---- open data: places, machine categories, the entries of a period ----
 *
 * Statements of their own rather than rows of sql[] above: the registry prepares each on
 * first use (one command a month uses them). */

static const char sql_place_set[] =
    "INSERT OR REPLACE INTO site_places (site, label, commune, insee_code, latitude, "
    "longitude) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_place_get[] =
    "SELECT label, commune, insee_code, latitude, longitude FROM site_places WHERE site = ?1";
static const char sql_category_set[] =
    "INSERT OR REPLACE INTO machine_categories (site, machine, category) VALUES (?1, ?2, ?3)";
static const char sql_category_delete[] =
    "DELETE FROM machine_categories WHERE site = ?1 AND machine = ?2";
static const char sql_categories[] =
    "SELECT site, machine, category FROM machine_categories WHERE ?1 IS NULL OR site = ?1 "
    "ORDER BY site, machine";
/* entries_day is (billing_day, site): one range scan of the period's days. */
static const char sql_first_seq[] =
    "SELECT coalesce(min(seq), 0) FROM entries WHERE billing_day BETWEEN ?2 AND ?3 "
    "AND site = ?1 AND seq <= ?4";

static bool site_registered(struct cdb *db, const char *site)
{
    struct cdb_site s;
    return cdb_site_get(db, site, &s) == 0;
}

int cdb_place_set(struct cdb *db, const struct cdb_place *p)
{
    sqlite3_stmt *st;

    if (!site_registered(db, p->site))
        return -ENOENT;
    st = store_stmts_get(db->stmts, sql_place_set);
    sqlite3_bind_text(st, 1, p->site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->commune, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->insee_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->latitude, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->longitude, -1, SQLITE_STATIC);
    return store_stmt_exec(st);
}

/* Everything but the site, which the caller set. */
static void place_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_place *p = ret;
    store_column_text(st, 0, p->label, sizeof(p->label));
    store_column_text(st, 1, p->commune, sizeof(p->commune));
    store_column_text(st, 2, p->insee_code, sizeof(p->insee_code));
    store_column_text(st, 3, p->latitude, sizeof(p->latitude));
    store_column_text(st, 4, p->longitude, sizeof(p->longitude));
}

int cdb_place_get(struct cdb *db, const char *site, struct cdb_place *ret)
{
    sqlite3_stmt *st = store_stmts_get(db->stmts, sql_place_get);

    memset(ret, 0, sizeof(*ret));
    snprintf(ret->site, sizeof(ret->site), "%s", site);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    return store_row_get(st, place_from_row, ret);
}

int cdb_machine_category_set(struct cdb *db, const char *site, const char *machine,
                             const char *category)
{
    sqlite3_stmt *st;

    if (!site_registered(db, site))
        return -ENOENT;
    st = store_stmts_get(db->stmts, category[0] ? sql_category_set : sql_category_delete);
    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, machine, -1, SQLITE_STATIC);
    if (category[0])
        sqlite3_bind_text(st, 3, category, -1, SQLITE_STATIC);
    return store_stmt_exec(st);
}

static void category_from_row(sqlite3_stmt *st, void *ret)
{
    struct cdb_machine_category *c = ret;
    store_column_text(st, 0, c->site, sizeof(c->site));
    store_column_text(st, 1, c->machine, sizeof(c->machine));
    store_column_text(st, 2, c->category, sizeof(c->category));
}

STORE_ROWS_DELIVER(category_row, struct cdb_machine_category, category_from_row)

int cdb_machine_categories_foreach(struct cdb *db, const char *site, cdb_machine_category_fn fn,
                                   void *userdata)
{
    sqlite3_stmt *st = store_stmts_get(db->stmts, sql_categories);

    if (site)
        sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    return store_rows_each(st, category_row, STORE_ROWS(fn, userdata));
}

int64_t cdb_entries_first_seq(struct cdb *db, const char *site, const char *first_day,
                              const char *last_day, int64_t max_seq)
{
    sqlite3_stmt *st = store_stmts_get(db->stmts, sql_first_seq);

    sqlite3_bind_text(st, 1, site, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, max_seq);
    return store_row_value(st);
}

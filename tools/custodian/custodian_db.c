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
    /* A signature is there if it has its size; energy if it is not NULL. */
    [Q_ENTRY_RANGE] = "SELECT site, seq, usage_id, kind, member_id, resource, started_at, "
                      "ended_at, quantity, unit, amount_cents, allowance, corrects_seq, "
                      "recorded_at, prev_hash, hash, length(CAST(signature AS BLOB)) = 64, "
                      "signature, home_site, visitor, energy_wh IS NOT NULL, energy_wh "
                      "FROM entries WHERE site = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq",
};

struct cdb {
    sqlite3 *db;
    struct store_stmts *stmts;      /* sql[], prepared at open */
};

static sqlite3_stmt *q(struct cdb *db, int id)
{
    return store_stmts_get(db->stmts, sql[id]);
}

/* WAL: the web page and sqlite3 read while ingestion writes. synchronous=NORMAL: a power cut
 * may lose the last batches, but acknowledgements are republished from the database at
 * start, so their sites simply send them again. */
static const char db_pragmas[] =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

int cdb_open(const char *path, struct cdb **ret)
{
    struct cdb *db = calloc(1, sizeof(*db));
    int r;

    if (!db)
        return -ENOMEM;
    r = store_db_open(path, CDB_SCHEMA_VERSION, db_pragmas, &db->db);
    if (r < 0)
        goto fail;
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
    return store_stmt_run(q(db, Q_SITE_ADD),
                          STORE_ARGS(STORE_TEXT(s->name), STORE_BLOB(s->public_key, LEDGER_PK_LEN),
                                     STORE_TEXT(s->timezone), STORE_INT(s->day_starts),
                                     STORE_INT(s->added_at)));
}

#define COL(field) STORE_COL(struct cdb_site, field)
static const struct store_cols site_cols = STORE_COLS(struct cdb_site,
    COL(name), COL(public_key), COL(timezone), COL(day_starts), COL(added_at), COL(verified_seq),
    COL(verified_hash), COL(batch_first), COL(batch_sig), COL(last_batch_at), COL(replays),
    COL(open_problems));
#undef COL

int cdb_site_get(struct cdb *db, const char *name, struct cdb_site *ret)
{
    return store_stmt_get(q(db, Q_SITE_GET), STORE_ARGS(STORE_TEXT(name)), &site_cols, ret);
}

STORE_ROWS_TO(sites_row, cdb_site_fn)

int cdb_sites_foreach(struct cdb *db, cdb_site_fn fn, void *userdata)
{
    return store_stmt_each(q(db, Q_SITE_LIST), STORE_NO_ARGS, &site_cols, sites_row,
                           STORE_ROWS(fn, userdata));
}

/* ---- entries ---- */

struct hash_row {
    uint8_t hash[LEDGER_HASH_LEN];
};
static const struct store_cols hash_cols = STORE_COLS(struct hash_row,
    STORE_COL(struct hash_row, hash));

int cdb_entry_hash(struct cdb *db, const char *site, int64_t seq, uint8_t hash[LEDGER_HASH_LEN])
{
    return store_stmt_get(q(db, Q_ENTRY_HASH), STORE_ARGS(STORE_TEXT(site), STORE_INT(seq)),
                          &hash_cols, hash);
}

int cdb_store_batch(struct cdb *db, const struct ledger_batch *b, unsigned from, int64_t now,
                    void (*billing_day)(const struct ledger_entry *e, char out[11], void *ud),
                    void *ud)
{
    const struct ledger_entry *last = &b->entries[b->n - 1];
    char day[11];
    int r;

    r = store_stmt_exec(q(db, Q_BEGIN));
    if (r < 0)
        return r;
    for (unsigned i = from; i < b->n; i++) {
        const struct ledger_entry *e = &b->entries[i];
        billing_day(e, day, ud);
        r = store_stmt_run(q(db, Q_ENTRY_ADD),
                           STORE_ARGS(STORE_TEXT(b->site), STORE_INT(e->seq),
                                      STORE_INT(e->usage_id), STORE_TEXT(e->kind),
                                      STORE_INT(e->member_id), STORE_TEXT(e->resource),
                                      STORE_INT(e->started_at), STORE_INT(e->ended_at),
                                      STORE_INT(e->quantity), STORE_TEXT(e->unit),
                                      STORE_INT(e->amount_cents), STORE_TEXT(e->allowance),
                                      STORE_INT(e->corrects_seq), STORE_INT(e->recorded_at),
                                      STORE_BLOB(e->prev_hash, LEDGER_HASH_LEN),
                                      STORE_BLOB(e->hash, LEDGER_HASH_LEN),
                                      STORE_BLOB(e->has_signature ? e->signature : NULL,
                                                 LEDGER_SIG_LEN),
                                      STORE_TEXT(day), STORE_INT(now), STORE_TEXT(e->home),
                                      STORE_TEXT(e->visitor),
                                      STORE_INT_OR_NULL(e->has_energy, e->energy_wh)));
        if (r < 0)
            goto fail;
    }
    r = store_stmt_run(q(db, Q_SITE_ADVANCE),
                       STORE_ARGS(STORE_TEXT(b->site), STORE_INT(b->last),
                                  STORE_BLOB(last->hash, LEDGER_HASH_LEN), STORE_INT(b->first),
                                  STORE_BLOB(b->sig, LEDGER_SIG_LEN), STORE_INT(now)));
    if (r < 0)
        goto fail;
    if (sqlite3_changes(db->db) != 1) {
        r = -ESTALE;
        goto fail;
    }
    r = store_stmt_run(q(db, Q_GAP_RESOLVE),
                       STORE_ARGS(STORE_TEXT(b->site), STORE_INT(b->last), STORE_INT(now)));
    if (r < 0)
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
    return store_stmt_run(q(db, Q_SITE_REPLAY), STORE_ARGS(STORE_TEXT(site)));
}

int64_t cdb_entry_count(struct cdb *db, const char *site)
{
    return store_stmt_value(q(db, Q_ENTRY_COUNT), STORE_ARGS(STORE_TEXT(site)));
}

/* ---- problems ---- */

int cdb_problem_add(struct cdb *db, const struct cdb_problem *p)
{
    return store_stmt_run(q(db, Q_PROBLEM_ADD),
                          STORE_ARGS(STORE_INT(p->at), STORE_TEXT(p->site), STORE_TEXT(p->kind),
                                     STORE_INT(p->first_seq), STORE_INT(p->last_seq),
                                     STORE_TEXT(p->detail), STORE_INT(p->resolved_at)));
}

bool cdb_gap_open(struct cdb *db, const char *site, int64_t first_seq)
{
    return store_stmt_exists(q(db, Q_GAP_OPEN),
                             STORE_ARGS(STORE_TEXT(site), STORE_INT(first_seq))) == 1;
}

#define COL(field) STORE_COL(struct cdb_problem, field)
static const struct store_cols problem_cols = STORE_COLS(struct cdb_problem,
    COL(id), COL(at), COL(site), COL(kind), COL(first_seq), COL(last_seq), COL(detail),
    COL(resolved_at));
#undef COL

STORE_ROWS_TO(problems_row, cdb_problem_fn)

int cdb_problems_foreach(struct cdb *db, const char *site, int64_t since, int64_t limit,
                         cdb_problem_fn fn, void *userdata)
{
    return store_stmt_each(q(db, Q_PROBLEM_LIST),
                           STORE_ARGS(STORE_TEXT(site), STORE_INT(since),
                                      STORE_INT(limit > 0 ? limit : -1)),
                           &problem_cols, problems_row, STORE_ROWS(fn, userdata));
}

/* ---- reports ---- */

#define COL(field) STORE_COL(struct cdb_usage_row, field)
static const struct store_cols usage_cols = STORE_COLS(struct cdb_usage_row,
    COL(site), COL(kind), COL(records), COL(quantity), COL(amount_cents));
#undef COL

STORE_ROWS_TO(usage_row, cdb_usage_fn)

int cdb_usage_foreach(struct cdb *db, const char *first_day, const char *last_day,
                      cdb_usage_fn fn, void *userdata)
{
    return store_stmt_each(q(db, Q_USAGE), STORE_ARGS(STORE_TEXT(first_day), STORE_TEXT(last_day)),
                           &usage_cols, usage_row, STORE_ROWS(fn, userdata));
}

#define COL(field) STORE_COL(struct cdb_visit_row, field)
static const struct store_cols visit_cols = STORE_COLS(struct cdb_visit_row,
    COL(home), COL(host), COL(visits), COL(amount_cents));
#undef COL

STORE_ROWS_TO(visits_row, cdb_visit_fn)

int cdb_visits_foreach(struct cdb *db, const char *first_day, const char *last_day,
                       cdb_visit_fn fn, void *userdata)
{
    return store_stmt_each(q(db, Q_VISITS), STORE_ARGS(STORE_TEXT(first_day), STORE_TEXT(last_day)),
                           &visit_cols, visits_row, STORE_ROWS(fn, userdata));
}

/* ---- period seals ---- */

#define COL(field) STORE_COL(struct cdb_seal, field)
static const struct store_cols seal_cols = STORE_COLS(struct cdb_seal,
    COL(site), COL(period), COL(first_day), COL(last_day), COL(last_seq), COL(last_hash),
    COL(archive_sha256), COL(closed_at), COL(text), COL(sig), COL(received_at), COL(state),
    COL(checked_at));
#undef COL

int cdb_seal_add(struct cdb *db, const struct cdb_seal *s)
{
    return store_stmt_run(q(db, Q_SEAL_ADD),
                          STORE_ARGS(STORE_TEXT(s->site), STORE_TEXT(s->period),
                                     STORE_TEXT(s->first_day), STORE_TEXT(s->last_day),
                                     STORE_INT(s->last_seq),
                                     STORE_BLOB(s->last_hash, sizeof(s->last_hash)),
                                     STORE_BLOB(s->archive_sha256, sizeof(s->archive_sha256)),
                                     STORE_INT(s->closed_at), STORE_TEXT(s->text),
                                     STORE_BLOB(s->sig, sizeof(s->sig)),
                                     STORE_INT(s->received_at)));
}

int cdb_seal_get(struct cdb *db, const char *site, const char *period, struct cdb_seal *ret)
{
    return store_stmt_get(q(db, Q_SEAL_GET), STORE_ARGS(STORE_TEXT(site), STORE_TEXT(period)),
                          &seal_cols, ret);
}

STORE_ROWS_TO(seals_row, cdb_seal_fn)

int cdb_seals_foreach(struct cdb *db, const char *site, const char *period, cdb_seal_fn fn,
                      void *userdata)
{
    return store_stmt_each(q(db, Q_SEAL_LIST), STORE_ARGS(STORE_TEXT(site), STORE_TEXT(period)),
                           &seal_cols, seals_row, STORE_ROWS(fn, userdata));
}

int cdb_seal_set_state(struct cdb *db, const char *site, const char *period, const char *state,
                       int64_t now)
{
    return store_stmt_run(q(db, Q_SEAL_STATE),
                          STORE_ARGS(STORE_TEXT(site), STORE_TEXT(period), STORE_TEXT(state),
                                     STORE_INT(now)));
}

int64_t cdb_seal_prev_last_seq(struct cdb *db, const char *site, const char *period)
{
    return store_stmt_value(q(db, Q_SEAL_PREV), STORE_ARGS(STORE_TEXT(site), STORE_TEXT(period)));
}

#define COL(field) STORE_COL(struct ledger_entry, field)
static const struct store_cols entry_cols = STORE_COLS(struct ledger_entry,
    COL(site), COL(seq), COL(usage_id), COL(kind), COL(member_id), COL(resource),
    COL(started_at), COL(ended_at), COL(quantity), COL(unit), COL(amount_cents), COL(allowance),
    COL(corrects_seq), COL(recorded_at), COL(prev_hash), COL(hash), COL(has_signature),
    COL(signature), COL(home), COL(visitor), COL(has_energy), COL(energy_wh));
#undef COL

STORE_ROWS_TO(entries_row, cdb_entry_fn)

int cdb_entries_foreach(struct cdb *db, const char *site, int64_t from, int64_t to,
                        cdb_entry_fn fn, void *userdata)
{
    return store_stmt_each(q(db, Q_ENTRY_RANGE),
                           STORE_ARGS(STORE_TEXT(site), STORE_INT(from), STORE_INT(to)),
                           &entry_cols, entries_row, STORE_ROWS(fn, userdata));
}

/* ---- open data: places, machine categories, the entries of a period ----
 *
 * Statements of their own rather than rows of sql[] above: the registry prepares each on
 * first use (one command a month uses them). */

static const char sql_place_set[] =
    "INSERT OR REPLACE INTO site_places (site, label, commune, insee_code, latitude, "
    "longitude) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_place_get[] =
    "SELECT site, label, commune, insee_code, latitude, longitude FROM site_places "
    "WHERE site = ?1";
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
    if (!site_registered(db, p->site))
        return -ENOENT;
    return store_stmt_run(store_stmts_get(db->stmts, sql_place_set),
                          STORE_ARGS(STORE_TEXT(p->site), STORE_TEXT(p->label),
                                     STORE_TEXT(p->commune), STORE_TEXT(p->insee_code),
                                     STORE_TEXT(p->latitude), STORE_TEXT(p->longitude)));
}

#define COL(field) STORE_COL(struct cdb_place, field)
static const struct store_cols place_cols = STORE_COLS(struct cdb_place,
    COL(site), COL(label), COL(commune), COL(insee_code), COL(latitude), COL(longitude));
#undef COL

int cdb_place_get(struct cdb *db, const char *site, struct cdb_place *ret)
{
    memset(ret, 0, sizeof(*ret));                   /* what -ENOENT leaves */
    snprintf(ret->site, sizeof(ret->site), "%s", site);
    return store_stmt_get(store_stmts_get(db->stmts, sql_place_get),
                          STORE_ARGS(STORE_TEXT(site)), &place_cols, ret);
}

int cdb_machine_category_set(struct cdb *db, const char *site, const char *machine,
                             const char *category)
{
    if (!site_registered(db, site))
        return -ENOENT;
    if (!category[0])
        return store_stmt_run(store_stmts_get(db->stmts, sql_category_delete),
                              STORE_ARGS(STORE_TEXT(site), STORE_TEXT(machine)));
    return store_stmt_run(store_stmts_get(db->stmts, sql_category_set),
                          STORE_ARGS(STORE_TEXT(site), STORE_TEXT(machine), STORE_TEXT(category)));
}

#define COL(field) STORE_COL(struct cdb_machine_category, field)
static const struct store_cols category_cols = STORE_COLS(struct cdb_machine_category,
    COL(site), COL(machine), COL(category));
#undef COL

STORE_ROWS_TO(category_row, cdb_machine_category_fn)

int cdb_machine_categories_foreach(struct cdb *db, const char *site, cdb_machine_category_fn fn,
                                   void *userdata)
{
    return store_stmt_each(store_stmts_get(db->stmts, sql_categories), STORE_ARGS(STORE_TEXT(site)),
                           &category_cols, category_row, STORE_ROWS(fn, userdata));
}

int64_t cdb_entries_first_seq(struct cdb *db, const char *site, const char *first_day,
                              const char *last_day, int64_t max_seq)
{
    return store_stmt_value(store_stmts_get(db->stmts, sql_first_seq),
                            STORE_ARGS(STORE_TEXT(site), STORE_TEXT(first_day),
                                       STORE_TEXT(last_day), STORE_INT(max_seq)));
}

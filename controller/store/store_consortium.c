/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "store_consortium.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* Migration N brings the consortium's version from N-1 to N. Never edit a released one. */
static const char *const migrations[STORE_CONSORTIUM_SCHEMA_VERSION] = {
    /* 1: ledger transport — where the custodian's acknowledgements stand. */
    "CREATE TABLE consortium_transport ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  acked_seq INTEGER NOT NULL,"
    "  acked_at INTEGER NOT NULL);"
    "INSERT INTO consortium_transport (id, acked_seq, acked_at) VALUES (1, 0, 0);",

    /* 2: passports and visits. consortium_cards: this site's cards hashed under the
     * consortium's card key (computed when the UID is at hand: enrolment, or a tap).
     * passports_out: what this site last published for its members. passports and
     * passport_cards: other sites' members, as last received and verified. visits: visit
     * days recorded here (one per visitor and billing day, each with its ledger entry).
     * visits_heard: visit days other sites say this site's members made there. */
    "CREATE TABLE consortium_cards ("
    "  card_id INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL CHECK (length(hash) = 32));"
    "CREATE TABLE consortium_passports_out ("
    "  id TEXT PRIMARY KEY,"
    "  member_id INTEGER NOT NULL,"
    "  digest BLOB NOT NULL,"
    "  revoked INTEGER NOT NULL,"
    "  issued INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL);"
    "CREATE TABLE consortium_passports ("
    "  home TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  revoked INTEGER NOT NULL,"
    "  issued INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  visit_days INTEGER NOT NULL,"
    "  month TEXT NOT NULL,"
    "  used_elsewhere INTEGER NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  PRIMARY KEY (home, id)) WITHOUT ROWID;"
    "CREATE TABLE consortium_passport_cards ("
    "  hash BLOB NOT NULL,"
    "  home TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  PRIMARY KEY (hash, home, id)) WITHOUT ROWID;"
    "CREATE INDEX consortium_passport_cards_of ON consortium_passport_cards(home, id);"
    "CREATE TABLE consortium_visits ("
    "  id INTEGER PRIMARY KEY,"
    "  home TEXT NOT NULL,"
    "  visitor TEXT NOT NULL,"
    "  billing_day TEXT NOT NULL,"
    "  door TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  amount_cents INTEGER NOT NULL,"
    "  ledger_seq INTEGER NOT NULL,"
    "  UNIQUE (home, visitor, billing_day));"
    "CREATE TABLE consortium_visits_heard ("
    "  visitor TEXT NOT NULL,"
    "  host TEXT NOT NULL,"
    "  month TEXT NOT NULL,"
    "  days INTEGER NOT NULL,"
    "  heard_at INTEGER NOT NULL,"
    "  PRIMARY KEY (visitor, host, month)) WITHOUT ROWID;",

    /* 3: which of another site's members' cards are provisioned DESFire cards (their
     * passport says so): such a card must prove the consortium's key here. */
    "ALTER TABLE consortium_passport_cards ADD COLUMN desfire INTEGER NOT NULL DEFAULT 0;",
};

static const char sql_acked_get[] = "SELECT acked_seq FROM consortium_transport WHERE id = 1";
static const char sql_acked_put[] =
    "UPDATE consortium_transport SET acked_seq = ?1, acked_at = ?2 WHERE id = 1";

struct store_consortium {
    struct store *store;
    sqlite3 *db;
};

static int migrate(struct store *s)
{
    /* Our transactions, not the daemon's batch: commit what is pending first. */
    int r = store_commit(s);

    return r < 0 ? r : store_migrate_module(s->db, "consortium", migrations,
                                            STORE_CONSORTIUM_SCHEMA_VERSION,
                                            STORE_CONSORTIUM_SCHEMA_VERSION);
}

int store_consortium_open(struct store *s, struct store_consortium **ret)
{
    struct store_consortium *c = calloc(1, sizeof(*c));
    int r;

    if (!c)
        return -ENOMEM;
    c->store = s;
    c->db = s->db;
    r = migrate(s);
    if (r < 0) {
        store_consortium_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

struct store_consortium *store_consortium_free(struct store_consortium *c)
{
    free(c);
    return NULL;
}

int store_consortium_schema_version(struct store_consortium *c)
{
    int v = -1;
    store_module_version(c->db, "consortium", &v);
    return v;
}

int store_consortium_acked(struct store_consortium *c, int64_t *ret_seq)
{
    return store_get_int64(c->store, sql_acked_get, STORE_NO_ARGS, ret_seq);
}

int store_consortium_set_acked(struct store_consortium *c, int64_t seq, int64_t at)
{
    return store_write(c->store, sql_acked_put, STORE_ARGS(STORE_INT(seq), STORE_INT(at)));
}

/* ---- passports and visits ---- */

static const char sql_card_set[] =
    "INSERT INTO consortium_cards (card_id, hash) VALUES (?1, ?2) "
    "ON CONFLICT (card_id) DO UPDATE SET hash = excluded.hash WHERE hash != excluded.hash";
static const char sql_eligible[] =
    "SELECT m.id, p.visit_days, length(CAST(cc.hash AS BLOB)) = 32, cc.hash, c.desfire "
    "FROM members m JOIN plans p ON p.id = m.plan_id "
    "JOIN cards c ON c.member_id = m.id AND c.enabled = 1 "
    "JOIN consortium_cards cc ON cc.card_id = c.id "
    "WHERE m.status = 'active' AND p.visit_days > 0 AND (m.valid_from = 0 OR m.valid_from <= ?1) "
    "AND (m.valid_until = 0 OR m.valid_until > ?1) ORDER BY m.id, cc.hash";
static const char sql_out_get[] =
    "SELECT digest, revoked, issued, expires FROM consortium_passports_out WHERE id = ?1";
static const char sql_out_put[] =
    "INSERT INTO consortium_passports_out (id, member_id, digest, revoked, issued, expires) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET member_id = excluded.member_id, "
    "digest = excluded.digest, revoked = excluded.revoked, issued = excluded.issued, "
    "expires = excluded.expires";
static const char sql_out_list[] =
    "SELECT id, member_id, revoked, issued FROM consortium_passports_out ORDER BY id";
static const char sql_pp_get[] =
    "SELECT issued FROM consortium_passports WHERE home = ?1 AND id = ?2";
static const char sql_pp_count[] = "SELECT count(*) FROM consortium_passports";
static const char sql_pp_put[] =
    "INSERT INTO consortium_passports (home, id, revoked, issued, expires, visit_days, month, "
    "used_elsewhere, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (home, id) DO UPDATE SET revoked = excluded.revoked, issued = excluded.issued, "
    "expires = excluded.expires, visit_days = excluded.visit_days, month = excluded.month, "
    "used_elsewhere = excluded.used_elsewhere, received_at = excluded.received_at";
static const char sql_ppc_clear[] =
    "DELETE FROM consortium_passport_cards WHERE home = ?1 AND id = ?2";
static const char sql_ppc_add[] =
    "INSERT OR IGNORE INTO consortium_passport_cards (hash, home, id, desfire) "
    "VALUES (?1, ?2, ?3, ?4)";
static const char sql_pp_delete[] =
    "DELETE FROM consortium_passports WHERE home = ?1 AND id = ?2";
static const char sql_ppc_clear_upto[] =
    "DELETE FROM consortium_passport_cards WHERE home = ?1 AND id = ?2 AND EXISTS "
    "(SELECT 1 FROM consortium_passports p WHERE p.home = ?1 AND p.id = ?2 AND p.issued <= ?3)";
static const char sql_pp_delete_upto[] =
    "DELETE FROM consortium_passports WHERE home = ?1 AND id = ?2 AND issued <= ?3";
static const char sql_pp_expired_cards[] =
    "DELETE FROM consortium_passport_cards WHERE (home, id) IN "
    "(SELECT home, id FROM consortium_passports WHERE expires <= ?1)";
static const char sql_pp_expired[] = "DELETE FROM consortium_passports WHERE expires <= ?1";
/* A card in several passports (a member of two sites): an active one first, then the
 * newest. */
static const char sql_pp_find[] =
    "SELECT p.home, p.id, p.revoked, p.expires, p.visit_days, p.month, p.used_elsewhere, "
    "c.desfire FROM consortium_passport_cards c JOIN consortium_passports p ON p.home = c.home AND p.id = c.id "
    "WHERE c.hash = ?1 ORDER BY p.revoked, p.expires > ?2 DESC, p.issued DESC LIMIT 1";
static const char sql_visit_add[] =
    "INSERT INTO consortium_visits (home, visitor, billing_day, door, at, amount_cents, ledger_seq) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_visit_days[] =
    "SELECT count(*) FROM consortium_visits WHERE home = ?1 AND visitor = ?2 AND "
    "billing_day BETWEEN ?3 AND ?4";
static const char sql_heard_put[] =
    "INSERT INTO consortium_visits_heard (visitor, host, month, days, heard_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (visitor, host, month) DO UPDATE SET "
    "days = max(days, excluded.days), heard_at = excluded.heard_at";
static const char sql_heard_list[] =
    "SELECT host, days FROM consortium_visits_heard WHERE visitor = ?1 AND month = ?2 "
    "ORDER BY host LIMIT 16";

static const char sql_visits_month[] =
    "SELECT home, visitor, count(*) FROM consortium_visits WHERE billing_day BETWEEN ?1 AND ?2 "
    "GROUP BY home, visitor ORDER BY home, visitor";

int store_consortium_card_set(struct store_consortium *c, int64_t card_id,
                              const uint8_t hash[32])
{
    return store_write(c->store, sql_card_set, STORE_ARGS(STORE_INT(card_id), STORE_BLOB(hash, 32)));
}

struct eligible_row {
    int64_t member_id, visit_days;
    bool hashed;            /* a card hash of the right size: others are passed over */
    uint8_t hash[32];
    bool desfire;
};
#define COL(field) STORE_COL(struct eligible_row, field)
static const struct store_cols eligible_cols = STORE_COLS(struct eligible_row,
    COL(member_id), COL(visit_days), COL(hashed), COL(hash), COL(desfire));
#undef COL

static int eligible_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct eligible_row *e = row;

    if (!e->hashed)
        return 0;
    return ((store_consortium_eligible_fn)rows->fn)(e->member_id, e->visit_days, e->hash,
                                                    e->desfire, rows->userdata);
}

int store_consortium_eligible_foreach(struct store_consortium *c, int64_t now,
                                      store_consortium_eligible_fn fn, void *userdata)
{
    int r = store_each(c->store, sql_eligible, STORE_ARGS(STORE_INT(now)), &eligible_cols,
                       eligible_row, STORE_ROWS(fn, userdata));
    return r < 0 ? r : 0;
}

#define COL(field) STORE_COL(struct store_passport_out, field)
static const struct store_cols out_cols = STORE_COLS(struct store_passport_out,
    COL(digest), COL(revoked), COL(issued), COL(expires));
#undef COL

int store_consortium_out_get(struct store_consortium *c, const char *id,
                             struct store_passport_out *ret)
{
    return store_get(c->store, sql_out_get, STORE_ARGS(STORE_TEXT(id)), &out_cols, ret);
}

int store_consortium_out_put(struct store_consortium *c, const char *id, int64_t member_id,
                             const struct store_passport_out *o)
{
    return store_write(c->store, sql_out_put,
                       STORE_ARGS(STORE_TEXT(id), STORE_INT(member_id),
                                  STORE_BLOB(o->digest, sizeof(o->digest)), STORE_INT(o->revoked),
                                  STORE_INT(o->issued), STORE_INT(o->expires)));
}

struct out_row {
    char id[40];
    int64_t member_id;
    bool revoked;
    int64_t issued;
};
#define COL(field) STORE_COL(struct out_row, field)
static const struct store_cols out_list_cols = STORE_COLS(struct out_row,
    COL(id), COL(member_id), COL(revoked), COL(issued));
#undef COL

static int out_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct out_row *o = row;

    return ((store_consortium_out_fn)rows->fn)(o->id, o->member_id, o->revoked, o->issued,
                                               rows->userdata);
}

int store_consortium_out_foreach(struct store_consortium *c, store_consortium_out_fn fn,
                                 void *userdata)
{
    int r = store_each(c->store, sql_out_list, STORE_NO_ARGS, &out_list_cols, out_row,
                       STORE_ROWS(fn, userdata));
    return r < 0 ? r : 0;
}

int store_consortium_passport_put(struct store_consortium *c, const struct store_passport *p,
                                  const uint8_t (*cards)[32], const bool *desfire,
                                  unsigned n_cards, int64_t max, int64_t now)
{
    int64_t issued, count;
    int r = store_batch_ensure(c->store);

    if (r < 0)
        return r;
    /* Never go back: an old retained passport cannot undo a revocation or a newer one. */
    r = store_get_int64(c->store, sql_pp_get, STORE_ARGS(STORE_TEXT(p->home), STORE_TEXT(p->id)),
                        &issued);
    if (r == 0 && issued > p->issued)
        return -ESTALE;
    if (r == -ENOENT) {
        count = store_value(c->store, sql_pp_count, STORE_NO_ARGS);
        if (count < 0)
            return (int)count;
        if (count >= max)
            return -ENOSPC;
    } else if (r < 0) {
        return r;
    }
    r = store_write(c->store, sql_pp_put,
                    STORE_ARGS(STORE_TEXT(p->home), STORE_TEXT(p->id), STORE_INT(p->revoked),
                               STORE_INT(p->issued), STORE_INT(p->expires),
                               STORE_INT(p->visit_days), STORE_TEXT(p->month),
                               STORE_INT(p->used_elsewhere), STORE_INT(now)));
    /* A revocation carries no cards: keep the ones known, so their taps say "revoked". */
    if (r == 0 && !p->revoked)
        r = store_write(c->store, sql_ppc_clear,
                        STORE_ARGS(STORE_TEXT(p->home), STORE_TEXT(p->id)));
    for (unsigned i = 0; r == 0 && i < n_cards && !p->revoked; i++)
        r = store_write(c->store, sql_ppc_add,
                        STORE_ARGS(STORE_BLOB(cards[i], 32), STORE_TEXT(p->home),
                                   STORE_TEXT(p->id), STORE_INT(desfire && desfire[i])));
    return r;
}

int store_consortium_passport_delete(struct store_consortium *c, const char *home, const char *id)
{
    int r = store_write(c->store, sql_ppc_clear, STORE_ARGS(STORE_TEXT(home), STORE_TEXT(id)));

    if (r == 0)
        r = store_write(c->store, sql_pp_delete, STORE_ARGS(STORE_TEXT(home), STORE_TEXT(id)));
    return r;
}

int store_consortium_passport_expired(struct store_consortium *c, const char *home,
                                      const char *id, int64_t issued)
{
    static const char *const sql[] = { sql_ppc_clear_upto, sql_pp_delete_upto };
    int r = 0;

    for (size_t i = 0; r == 0 && i < sizeof(sql) / sizeof(sql[0]); i++)
        r = store_write(c->store, sql[i],
                        STORE_ARGS(STORE_TEXT(home), STORE_TEXT(id), STORE_INT(issued)));
    return r;
}

int store_consortium_passports_expire(struct store_consortium *c, int64_t now)
{
    int r = store_write(c->store, sql_pp_expired_cards, STORE_ARGS(STORE_INT(now)));

    return r < 0 ? r : store_write_count(c->store, sql_pp_expired, STORE_ARGS(STORE_INT(now)));
}

#define COL(field) STORE_COL(struct store_passport, field)
static const struct store_cols passport_cols = STORE_COLS(struct store_passport,
    COL(home), COL(id), COL(revoked), COL(expires), COL(visit_days), COL(month),
    COL(used_elsewhere), COL(card_desfire));
#undef COL

int store_consortium_passport_find(struct store_consortium *c, const uint8_t hash[32],
                                   int64_t now, struct store_passport *ret)
{
    return store_get(c->store, sql_pp_find, STORE_ARGS(STORE_BLOB(hash, 32), STORE_INT(now)),
                     &passport_cols, ret);
}

int store_consortium_visit_add(struct store_consortium *c, const struct store_visit *v,
                               int64_t *ret_id)
{
    return store_insert(c->store, sql_visit_add,
                        STORE_ARGS(STORE_TEXT(v->home), STORE_TEXT(v->visitor),
                                   STORE_TEXT(v->billing_day), STORE_TEXT(v->door),
                                   STORE_INT(v->at), STORE_INT(v->amount_cents),
                                   STORE_INT(v->ledger_seq)), ret_id);
}

int64_t store_consortium_visit_days(struct store_consortium *c, const char *home,
                                    const char *visitor, const char *first_day,
                                    const char *last_day)
{
    return store_value(c->store, sql_visit_days,
                       STORE_ARGS(STORE_TEXT(home), STORE_TEXT(visitor), STORE_TEXT(first_day),
                                  STORE_TEXT(last_day)));
}

int store_consortium_heard_put(struct store_consortium *c, const char *visitor, const char *host,
                               const char *month, int64_t days, int64_t now)
{
    return store_write(c->store, sql_heard_put,
                       STORE_ARGS(STORE_TEXT(visitor), STORE_TEXT(host), STORE_TEXT(month),
                                  STORE_INT(days), STORE_INT(now)));
}

struct heard_row {
    char host[32];
    int64_t days;
};
static const struct store_cols heard_cols = STORE_COLS(struct heard_row,
    STORE_COL(struct heard_row, host), STORE_COL(struct heard_row, days));

static int heard_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct heard_row *h = row;

    return ((store_consortium_heard_fn)rows->fn)(h->host, h->days, rows->userdata);
}

int store_consortium_heard_foreach(struct store_consortium *c, const char *visitor,
                                   const char *month, store_consortium_heard_fn fn,
                                   void *userdata)
{
    int r = store_each(c->store, sql_heard_list, STORE_ARGS(STORE_TEXT(visitor), STORE_TEXT(month)),
                       &heard_cols, heard_row, STORE_ROWS(fn, userdata));
    return r < 0 ? r : 0;
}

struct visits_row {
    char home[32], visitor[40];
    int64_t days;
};
static const struct store_cols visits_cols = STORE_COLS(struct visits_row,
    STORE_COL(struct visits_row, home), STORE_COL(struct visits_row, visitor),
    STORE_COL(struct visits_row, days));

static int visits_month_row(const void *row, void *ctx)
{
    const struct store_rows *rows = ctx;
    const struct visits_row *v = row;

    return ((store_consortium_visits_fn)rows->fn)(v->home, v->visitor, v->days, rows->userdata);
}

int store_consortium_visits_month_foreach(struct store_consortium *c, const char *first_day,
                                          const char *last_day, store_consortium_visits_fn fn,
                                          void *userdata)
{
    int r = store_each(c->store, sql_visits_month,
                       STORE_ARGS(STORE_TEXT(first_day), STORE_TEXT(last_day)), &visits_cols,
                       visits_month_row, STORE_ROWS(fn, userdata));
    return r < 0 ? r : 0;
}

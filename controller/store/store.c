/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store: the connection, its schema and migrations, batches and their durability, the access
 * events held from failed batches, site secrets and steps. The tables' own functions are in
 * the store_*.c file of their aggregate (store_internal.h). */
#include "store.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* Migration N brings user_version from N-1 to N. Never edit a released migration: add one. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 1: people, plans, cards, doors */
    "CREATE TABLE site_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE plans ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  zones TEXT NOT NULL DEFAULT '*',"
    "  hours TEXT NOT NULL DEFAULT 'always',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE members ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  email TEXT NOT NULL DEFAULT '',"
    "  plan_id INTEGER REFERENCES plans(id),"
    "  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),"
    "  valid_from INTEGER NOT NULL DEFAULT 0,"
    "  valid_until INTEGER NOT NULL DEFAULT 0,"
    "  home_site TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX members_name ON members(name);"
    "CREATE TABLE cards ("
    "  id INTEGER PRIMARY KEY,"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  uid_hash BLOB NOT NULL UNIQUE CHECK (length(uid_hash) = 32),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX cards_member ON cards(member_id);"
    "CREATE TABLE resources ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('door', 'machine')),"
    "  name TEXT NOT NULL UNIQUE,"
    "  zone TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);",

    /* 2: the access log. Append-only: rows are evidence, triggers refuse edits. No index on
     * `at`: ids grow with time, and every index would cost a page write per tap. */
    "CREATE TABLE access_events ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  resource_id INTEGER REFERENCES resources(id),"
    "  reader TEXT NOT NULL DEFAULT '',"
    "  member_id INTEGER,"
    "  card_id INTEGER,"
    "  card_hash BLOB,"
    "  kind TEXT NOT NULL,"
    "  granted INTEGER NOT NULL CHECK (granted IN (0, 1)),"
    "  reason TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '');"
    "CREATE TRIGGER access_events_no_update BEFORE UPDATE ON access_events"
    "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only'); END;"
    "CREATE TRIGGER access_events_no_delete BEFORE DELETE ON access_events"
    "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only'); END;",

    /* 3: fablab machines — trainings, qualifications, booking rules, bookings and the
     * sessions of the power interlock. */
    "ALTER TABLE resources ADD COLUMN out_of_order INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE resources ADD COLUMN out_of_order_reason TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE trainings ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE machine_rules ("
    "  resource_id INTEGER PRIMARY KEY REFERENCES resources(id),"
    "  training_id INTEGER REFERENCES trainings(id),"
    "  slot_minutes INTEGER NOT NULL DEFAULT 30,"
    "  min_minutes INTEGER NOT NULL DEFAULT 30,"
    "  max_minutes INTEGER NOT NULL DEFAULT 240,"
    "  window_days INTEGER NOT NULL DEFAULT 14,"
    "  quota_day_minutes INTEGER NOT NULL DEFAULT 0,"
    "  quota_week_minutes INTEGER NOT NULL DEFAULT 0,"
    "  cancel_deadline_minutes INTEGER NOT NULL DEFAULT 60,"
    "  hours TEXT NOT NULL DEFAULT 'always',"
    "  booking_required INTEGER NOT NULL DEFAULT 0,"
    "  walkup_free_minutes INTEGER NOT NULL DEFAULT 15);"
    "CREATE TABLE qualifications ("
    "  id INTEGER PRIMARY KEY,"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  training_id INTEGER NOT NULL REFERENCES trainings(id),"
    "  granted_at INTEGER NOT NULL,"
    "  granted_by TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_by TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX qualifications_member ON qualifications(member_id, training_id);"
    "CREATE TABLE bookings ("
    "  id INTEGER PRIMARY KEY,"
    "  resource_id INTEGER NOT NULL REFERENCES resources(id),"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  starts_at INTEGER NOT NULL,"
    "  ends_at INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  cancelled_at INTEGER NOT NULL DEFAULT 0,"
    "  cancelled_by TEXT NOT NULL DEFAULT '',"
    "  cancel_override INTEGER NOT NULL DEFAULT 0,"
    "  moved_to INTEGER,"
    "  CHECK (ends_at > starts_at));"
    "CREATE INDEX bookings_resource ON bookings(resource_id, starts_at) WHERE cancelled_at = 0;"
    "CREATE INDEX bookings_member ON bookings(member_id, starts_at) WHERE cancelled_at = 0;"
    "CREATE TABLE machine_sessions ("
    "  id INTEGER PRIMARY KEY,"
    "  resource_id INTEGER NOT NULL REFERENCES resources(id),"
    "  member_id INTEGER NOT NULL,"
    "  booking_id INTEGER,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER NOT NULL DEFAULT 0,"
    "  last_seen_at INTEGER NOT NULL,"
    "  running_seconds INTEGER NOT NULL DEFAULT 0,"
    "  end_reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX machine_sessions_open ON machine_sessions(resource_id) WHERE ended_at = 0;",

    /* 4: metering — plans' allowances, rates, passes, presence, usage, the signed ledger and
     * closed periods. usage and ledger are append-only; closed periods refuse new usage. */
    "ALTER TABLE plans ADD COLUMN monthly_days INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE plans ADD COLUMN day_rate_cents INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE plans ADD COLUMN allowance_order TEXT NOT NULL DEFAULT 'pass,plan,rate';"
    "ALTER TABLE resources ADD COLUMN category TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE rates ("
    "  id INTEGER PRIMARY KEY,"
    "  plan_id INTEGER NOT NULL REFERENCES plans(id),"
    "  target TEXT NOT NULL,"
    "  monthly_minutes INTEGER NOT NULL DEFAULT 0,"
    "  per_hour_cents INTEGER NOT NULL DEFAULT 0,"
    "  block_minutes INTEGER NOT NULL DEFAULT 1 CHECK (block_minutes >= 1),"
    "  min_charge_cents INTEGER NOT NULL DEFAULT 0,"
    "  free_minutes INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (plan_id, target));"
    "CREATE TABLE passes ("
    "  id INTEGER PRIMARY KEY,"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  kind TEXT NOT NULL CHECK (kind IN ('days', 'minutes')),"
    "  target TEXT NOT NULL DEFAULT '*',"
    "  quantity INTEGER NOT NULL CHECK (quantity > 0),"
    "  remaining INTEGER NOT NULL,"
    "  valid_from INTEGER NOT NULL DEFAULT 0,"
    "  valid_until INTEGER NOT NULL DEFAULT 0,"
    "  price_cents INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL);"
    "CREATE TABLE presence ("
    "  id INTEGER PRIMARY KEY,"
    "  member_id INTEGER NOT NULL,"
    "  resource_id INTEGER REFERENCES resources(id),"
    "  check_in_at INTEGER NOT NULL,"
    "  check_out_at INTEGER NOT NULL DEFAULT 0,"
    "  end_reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX presence_open ON presence(member_id) WHERE check_out_at = 0;"
    "CREATE TABLE usage ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('day', 'presence', 'machine', 'correction')),"
    "  member_id INTEGER NOT NULL,"
    "  resource TEXT NOT NULL DEFAULT '',"
    "  billing_day TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  ended_at INTEGER NOT NULL,"
    "  quantity INTEGER NOT NULL,"
    "  unit TEXT NOT NULL,"
    "  running_seconds INTEGER NOT NULL DEFAULT 0,"
    "  allowance TEXT NOT NULL,"
    "  pass_quantity INTEGER NOT NULL DEFAULT 0,"
    "  plan_quantity INTEGER NOT NULL DEFAULT 0,"
    "  charged_quantity INTEGER NOT NULL DEFAULT 0,"
    "  amount_cents INTEGER NOT NULL,"
    "  end_reason TEXT NOT NULL DEFAULT '',"
    "  corrects_seq INTEGER NOT NULL DEFAULT 0,"
    "  note TEXT NOT NULL DEFAULT '',"
    "  ledger_seq INTEGER NOT NULL,"
    "  recorded_at INTEGER NOT NULL);"
    "CREATE INDEX usage_day ON usage(billing_day, member_id);"
    "CREATE TABLE ledger ("
    "  seq INTEGER PRIMARY KEY,"
    "  site TEXT NOT NULL,"
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
    "  signature BLOB);"
    "CREATE TABLE ledger_head ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  signature BLOB NOT NULL);"
    "CREATE TABLE periods ("
    "  period TEXT PRIMARY KEY,"
    "  first_day TEXT NOT NULL,"
    "  last_day TEXT NOT NULL,"
    "  closed_at INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  last_hash BLOB,"
    "  totals TEXT NOT NULL,"
    "  archive TEXT NOT NULL);"
    "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger"
    "  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;"
    "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger"
    "  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;"
    "CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage"
    "  BEGIN SELECT RAISE(ABORT, 'usage records are append-only; add a correction'); END;"
    "CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage"
    "  BEGIN SELECT RAISE(ABORT, 'usage records are append-only; add a correction'); END;"
    "CREATE TRIGGER usage_closed_period BEFORE INSERT ON usage"
    "  WHEN EXISTS (SELECT 1 FROM periods WHERE NEW.billing_day BETWEEN first_day AND last_day)"
    "  BEGIN SELECT RAISE(ABORT, 'period closed'); END;"
    "CREATE TRIGGER periods_no_update BEFORE UPDATE ON periods"
    "  BEGIN SELECT RAISE(ABORT, 'closed periods are sealed'); END;"
    "CREATE TRIGGER periods_no_delete BEFORE DELETE ON periods"
    "  BEGIN SELECT RAISE(ABORT, 'closed periods are sealed'); END;",

    /* 5: the MQTT outbox. AUTOINCREMENT: a sequence number is never reused, even after the
     * newest message was delivered and deleted, so receivers can keep the last one seen. */
    "CREATE TABLE outbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);",

    /* 6: web accounts, their sessions, and their tokens (one-time links, API, calendar).
     * Session and link tokens are stored as BLAKE2b hashes: the database alone does not
     * let anyone in. */
    "CREATE TABLE accounts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  role TEXT NOT NULL CHECK (role IN ('member', 'manager', 'custodian')),"
    "  member_id INTEGER REFERENCES members(id),"
    "  password TEXT,"
    "  calendar_token TEXT UNIQUE,"
    "  disabled_at INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL);"
    "CREATE TABLE web_sessions ("
    "  token_hash BLOB PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  csrf TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE account_tokens ("
    "  token_hash BLOB PRIMARY KEY,"
    "  account_id INTEGER NOT NULL REFERENCES accounts(id),"
    "  kind TEXT NOT NULL CHECK (kind IN ('invite', 'api')),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER) WITHOUT ROWID;",

    /* 7: consortium visits — the visiting days a plan gives at other sites per month, and
     * the two fields a "visit" ledger entry carries (its visitor's home site and pseudonym;
     * empty for every other kind). Adding columns fires no UPDATE trigger. */
    "ALTER TABLE plans ADD COLUMN visit_days INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE ledger ADD COLUMN home TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE ledger ADD COLUMN visitor TEXT NOT NULL DEFAULT '';",

    /* 8: listing bookings of every machine over a range (the web page's week) must not scan
     * every booking ever made: an index on the start, used with the 7-day bound of
     * sql_booking_list (store_fablab.c). */
    "CREATE INDEX bookings_start ON bookings(starts_at);",

    /* 9: a closed period keeps the SHA-256 of the archive it wrote, so that its seal for the
     * custodian (period_seal.h) can be signed again at every connection without trusting
     * the file on disk. NULL for periods closed before. */
    "ALTER TABLE periods ADD COLUMN archive_sha256 BLOB;",

    /* 10: trainers — members a manager names for a training; they grant it (and revoke it)
     * and enrol trainees' cards at its machines' readers. */
    "CREATE TABLE trainers ("
    "  training_id INTEGER NOT NULL REFERENCES trainings(id),"
    "  member_id INTEGER NOT NULL REFERENCES members(id),"
    "  named_at INTEGER NOT NULL,"
    "  named_by TEXT NOT NULL,"
    "  PRIMARY KEY (training_id, member_id)) WITHOUT ROWID;"
    "CREATE INDEX trainers_member ON trainers(member_id);",

    /* 11: failed logins of an account, kept with it: a login limit that other traffic
     * cannot flush out of a table in memory, and that a restart does not reset. */
    ("ALTER TABLE accounts ADD COLUMN login_failures INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE accounts ADD COLUMN login_failed_at INTEGER NOT NULL DEFAULT 0;"),

    /* 12: a card provisioned as a MIFARE DESFire (its Portier application holds keys
     * diversified from the site's master key): wherever the door does not accept UIDs
     * alone, it must prove them, and a copy of its UID opens nothing. */
    "ALTER TABLE cards ADD COLUMN desfire INTEGER NOT NULL DEFAULT 0 CHECK (desfire IN (0, 1));",

    /* 13: members over their whole life, and privacy (docs/privacy.md).
     * - members: a manager's note; removal (access ended, history kept) and erasure (the
     *   right to erasure: personal fields replaced by a pseudonym); a plan change waiting
     *   for its date.
     * - member_changes: who changed what, when, old and new value.
     * - accounts.last_login_at: for [privacy] account_inactive_days.
     * - usage_member: a member's usage without reading everyone's (erasure's check for
     *   open periods, the export).
     * - retention_horizons and new access-log triggers: rows older than the horizon the
     *   retention job has set may be deleted, and a card hash may be erased; nothing else
     *   changes or goes. */
    ("ALTER TABLE members ADD COLUMN note TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE members ADD COLUMN removed_at INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE members ADD COLUMN erased_at INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE members ADD COLUMN next_plan_id INTEGER REFERENCES plans(id);"
     "ALTER TABLE members ADD COLUMN next_plan_at INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX members_next_plan ON members(next_plan_at) WHERE next_plan_at != 0;"
     "CREATE TABLE member_changes ("
     "  id INTEGER PRIMARY KEY,"
     "  member_id INTEGER NOT NULL REFERENCES members(id),"
     "  at INTEGER NOT NULL,"
     "  by TEXT NOT NULL,"
     "  field TEXT NOT NULL,"
     "  old TEXT NOT NULL DEFAULT '',"
     "  new TEXT NOT NULL DEFAULT '');"
     "CREATE INDEX member_changes_member ON member_changes(member_id, id);"
     "ALTER TABLE accounts ADD COLUMN last_login_at INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX usage_member ON usage(member_id, billing_day);"
     "CREATE TABLE retention_horizons ("
     "  name TEXT PRIMARY KEY,"
     "  horizon INTEGER NOT NULL) WITHOUT ROWID;"
     "DROP TRIGGER access_events_no_update;"
     "DROP TRIGGER access_events_no_delete;"
     "CREATE TRIGGER access_events_no_update BEFORE UPDATE ON access_events"
     "  WHEN NOT (NEW.card_hash IS NULL AND NEW.id = OLD.id AND NEW.at = OLD.at"
     "    AND NEW.resource_id IS OLD.resource_id AND NEW.reader = OLD.reader"
     "    AND NEW.member_id IS OLD.member_id AND NEW.card_id IS OLD.card_id"
     "    AND NEW.kind = OLD.kind AND NEW.granted = OLD.granted AND NEW.reason = OLD.reason"
     "    AND NEW.detail = OLD.detail)"
     "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only (only a card hash may be"
     " erased)'); END;"
     "CREATE TRIGGER access_events_no_delete BEFORE DELETE ON access_events"
     "  WHEN OLD.at >= coalesce((SELECT horizon FROM retention_horizons"
     "    WHERE name = 'access_events'), 0)"
     "  BEGIN SELECT RAISE(ABORT, 'access_events are append-only until their retention"
     " ends'); END;"),

    /* 14: energy — what a machine session used (from a network meter's cumulative counter,
     * integer Wh; NULL where no meter measured it) and the alarm it saw (a network relay
     * that did not confirm, a device offline); rates per kWh and energy included in plans;
     * the energy of a usage record and of its ledger entry (NULL: not metered, and the
     * entry's encoding does not mention it, so entries before keep their bytes and hashes). */
    ("ALTER TABLE machine_sessions ADD COLUMN energy_wh INTEGER;"
     "ALTER TABLE machine_sessions ADD COLUMN alarm TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE rates ADD COLUMN per_kwh_cents INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE rates ADD COLUMN monthly_wh INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE usage ADD COLUMN energy_wh INTEGER;"
     "ALTER TABLE usage ADD COLUMN plan_wh INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE usage ADD COLUMN energy_cents INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE ledger ADD COLUMN energy_wh INTEGER;"),

    /* 15: the web page — an account's language (empty: the browser's, else [site]
     * language); when each card was last presented, kept by a trigger at most every ten
     * minutes per card (an index on access_events would cost a page write per tap); and the
     * entrance screens, each reached by a secret address whose token is stored hashed. */
    ("ALTER TABLE accounts ADD COLUMN language TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cards ADD COLUMN last_used_at INTEGER;"
     "UPDATE cards SET last_used_at = (SELECT max(at) FROM access_events e WHERE e.card_id = cards.id);"
     "CREATE TRIGGER cards_last_used AFTER INSERT ON access_events"
     "  WHEN NEW.card_id > 0 BEGIN"
     "  UPDATE cards SET last_used_at = NEW.at"
     "    WHERE id = NEW.card_id AND coalesce(last_used_at, 0) < NEW.at - 600; END;"
     "CREATE TABLE kiosks ("
     "  id INTEGER PRIMARY KEY,"
     "  label TEXT NOT NULL,"
     "  token_hash BLOB NOT NULL UNIQUE,"
     "  created_at INTEGER NOT NULL,"
     "  created_by TEXT NOT NULL,"
     "  removed_at INTEGER);"),

    /* 16: nothing on the event loop may grow with the site.
     * - counters: how many members, cards and people in, kept by triggers (whoever writes:
     *   the daemon, benchgen, a retention job), so that the status behind /, /healthz,
     *   /metrics and /spaceapi.json reads three rows instead of counting 100,000.
     * - passes_member: a member's passes, looked for at every first tap of the day, without
     *   reading every pass ever sold. (A member's usage of a month has usage_member, 13.) */
    ("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
     "INSERT INTO counters (name, n) SELECT 'members', count(*) FROM members;"
     "INSERT INTO counters (name, n) SELECT 'cards', count(*) FROM cards;"
     "INSERT INTO counters (name, n) SELECT 'present', count(*) FROM presence "
     "  WHERE check_out_at = 0;"
     "CREATE TRIGGER members_counted AFTER INSERT ON members"
     "  BEGIN UPDATE counters SET n = n + 1 WHERE name = 'members'; END;"
     "CREATE TRIGGER members_uncounted AFTER DELETE ON members"
     "  BEGIN UPDATE counters SET n = n - 1 WHERE name = 'members'; END;"
     "CREATE TRIGGER cards_counted AFTER INSERT ON cards"
     "  BEGIN UPDATE counters SET n = n + 1 WHERE name = 'cards'; END;"
     "CREATE TRIGGER cards_uncounted AFTER DELETE ON cards"
     "  BEGIN UPDATE counters SET n = n - 1 WHERE name = 'cards'; END;"
     "CREATE TRIGGER presence_in AFTER INSERT ON presence WHEN NEW.check_out_at = 0"
     "  BEGIN UPDATE counters SET n = n + 1 WHERE name = 'present'; END;"
     "CREATE TRIGGER presence_changed AFTER UPDATE OF check_out_at ON presence"
     "  WHEN (OLD.check_out_at = 0) != (NEW.check_out_at = 0)"
     "  BEGIN UPDATE counters SET n = n + (CASE WHEN NEW.check_out_at = 0 THEN 1 ELSE -1 END)"
     "    WHERE name = 'present'; END;"
     "CREATE TRIGGER presence_gone AFTER DELETE ON presence WHEN OLD.check_out_at = 0"
     "  BEGIN UPDATE counters SET n = n - 1 WHERE name = 'present'; END;"
     "CREATE INDEX passes_member ON passes(member_id, kind);"),

    /* 17: deliveries. The e-mail outbox: each message written in the transaction of the
     * change it tells of, rendered in its reader's language, with its delivery state; sent
     * messages lose their bodies (an invitation's link). The outbox's consumers: each
     * webhook's cursor, and MQTT's while a webhook keeps messages it has acknowledged
     * (store_events.c). Indexes for the notices of trainings and memberships that end. */
    ("CREATE TABLE mail_outbox ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  kind TEXT NOT NULL,"
     "  member_id INTEGER,"
     "  to_addr TEXT NOT NULL,"
     "  to_name TEXT NOT NULL DEFAULT '',"
     "  lang TEXT NOT NULL DEFAULT 'en',"
     "  subject TEXT NOT NULL,"
     "  body_text TEXT NOT NULL,"
     "  body_html TEXT NOT NULL,"
     "  message_id TEXT NOT NULL,"
     "  dedup TEXT UNIQUE,"
     "  dedup_until INTEGER NOT NULL DEFAULT 0,"
     "  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  next_try_at INTEGER NOT NULL,"
     "  last_error TEXT NOT NULL DEFAULT '',"
     "  created_at INTEGER NOT NULL,"
     "  sent_at INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX mail_outbox_queued ON mail_outbox(next_try_at) WHERE state = 'queued';"
     "CREATE INDEX mail_outbox_sent ON mail_outbox(sent_at) WHERE sent_at > 0;"
     "CREATE TABLE outbox_cursors ("
     "  consumer TEXT PRIMARY KEY,"
     "  seq INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX members_valid_until ON members(valid_until) WHERE valid_until > 0;"
     "CREATE INDEX qualifications_expiry ON qualifications(expires_at) "
     "  WHERE expires_at > 0 AND revoked_at = 0;"),
    /* 18: the cards that still open by their UID, in the order they were enrolled, read a
     * page at a time (the managers' card page) however many DESFire cards the site has. */
    "CREATE INDEX cards_uid_only ON cards(id) WHERE desfire = 0 AND enabled = 1;",
};

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT step";
static const char sql_release[] = "RELEASE step";
static const char sql_rollback_to[] = "ROLLBACK TO step";
static const char sql_secret_get[] = "SELECT value FROM site_secrets WHERE name = ?1";
static const char sql_secret_put[] = "INSERT INTO site_secrets (name, value) VALUES (?1, ?2)";
static const char sql_site_id_get[] =
    "SELECT CAST(value AS TEXT) FROM site_secrets WHERE name = 'site_id'";
static const char sql_outbox_last[] = "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'";
static const char sql_ledger_last[] = "SELECT coalesce(max(seq), 0) FROM ledger";
static const char sql_mail_last[] = "SELECT seq FROM sqlite_sequence WHERE name = 'mail_outbox'";

/* Read by the web thread too (its page cache): an atomic load. */
uint64_t store_generation(const struct store *s)
{
    return __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
}

sqlite3_stmt *store_stmt(struct store *s, const char *sql)
{
    return store_stmts_get(s->stmts, sql);
}

/* ---- the helpers of store_internal.h ---- */

int store_write(struct store *s, const char *sql, struct store_args args)
{
    int r = store_batch_ensure(s);
    return r < 0 ? r : store_stmt_run(store_stmt(s, sql), args);
}

int store_update(struct store *s, const char *sql, struct store_args args)
{
    int r = store_write(s, sql, args);
    return r == 0 && sqlite3_changes(s->db) == 0 ? -ENOENT : r;
}

int store_write_count(struct store *s, const char *sql, struct store_args args)
{
    int r = store_write(s, sql, args);
    return r < 0 ? r : sqlite3_changes(s->db);
}

int store_insert(struct store *s, const char *sql, struct store_args args, int64_t *ret_id)
{
    int r = store_write(s, sql, args);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_get(struct store *s, const char *sql, struct store_args args,
              const struct store_cols *cols, void *ret)
{
    return store_stmt_get(store_stmt(s, sql), args, cols, ret);
}

int store_get_int64(struct store *s, const char *sql, struct store_args args, int64_t *ret)
{
    return store_stmt_get_int64(store_stmt(s, sql), args, ret);
}

int64_t store_value(struct store *s, const char *sql, struct store_args args)
{
    return store_stmt_value(store_stmt(s, sql), args);
}

int store_get_text(struct store *s, const char *sql, struct store_args args, char *buf,
                   size_t n)
{
    return store_stmt_get_text(store_stmt(s, sql), args, buf, n);
}

int store_exists(struct store *s, const char *sql, struct store_args args)
{
    return store_stmt_exists(store_stmt(s, sql), args);
}

int store_each(struct store *s, const char *sql, struct store_args args,
               const struct store_cols *cols, store_row_fn each, void *ctx)
{
    return store_stmt_each(store_stmt(s, sql), args, cols, each, ctx);
}

int store_collect(struct store *s, const char *sql, struct store_args args,
                  const struct store_cols *cols, void *out, size_t n)
{
    return store_stmt_collect(store_stmt(s, sql), args, cols, out, n);
}

int store_collect_each(struct store *s, const char *sql, struct store_args args,
                       const struct store_cols *cols, void *out, size_t n, store_row_fn each,
                       void *ctx)
{
    int count = store_collect(s, sql, args, cols, out, n), r = count;

    for (int i = 0; i < count && r >= 0; i++)
        r = each((const char *)out + (size_t)i * cols->size, ctx);
    return r < 0 ? r : count;
}

/* The first column of a one-row query, or 0 (an empty outbox or ledger). */
static int64_t first_int64(struct store *s, const char *sql)
{
    int64_t v = 0;
    int r = store_get_int64(s, sql, STORE_NO_ARGS, &v);

    return r < 0 ? 0 : v;
}

/* ---- batches and durability ---- */

/* The highest outbox seq, ledger seq and e-mail id written (committed or not), as they
 * are on disk: at open, and after a batch is rolled back. */
static void lasts_read(struct store *s)
{
    s->outbox_last = first_int64(s, sql_outbox_last);
    s->ledger_last = first_int64(s, sql_ledger_last);
    s->mail_last = first_int64(s, sql_mail_last);
}

/* Those highest numbers as marks (committed, once the batch that wrote them is). */
static struct store_marks lasts(const struct store *s)
{
    return (struct store_marks){
        .outbox_seq = s->outbox_last, .ledger_seq = s->ledger_last, .mail_id = s->mail_last,
    };
}

/* What a batch that is gone leaves behind: its events are held, the in-memory counters
 * are read again from what is on disk, and the owner hears of it. */
static void batch_failed(struct store *s, int error)
{
    uint64_t batch = s->batch_no;

    s->in_batch = false;
    for (unsigned i = 0; i < s->n_batch_ev; i++)
        store_hold_event(s, &s->batch_ev[i]);
    s->held_dropped += s->batch_ev_overflow;
    s->n_batch_ev = 0;
    s->batch_ev_overflow = 0;
    lasts_read(s);
    store_outbox_rolled_back(s);
    if (s->outbox_on)
        s->outbox_count = store_outbox_count_rows(s);
    store_generation_bump(s);        /* caches may show what was rolled back */
    if (s->hooks.failed)
        s->hooks.failed(batch, error, s->hooks.userdata);
}

/* Writes join the open batch, starting one if needed. */
int store_batch_ensure(struct store *s)
{
    int r;

    if (s->in_batch) {
        if (!sqlite3_get_autocommit(s->db))
            return 0;
        /* SQLite rolled the batch back by itself (a statement failed on a full disk). */
        batch_failed(s, -ENOSPC);
    }
    r = store_stmt_exec(store_stmt(s, sql_begin));
    if (r < 0)
        return r;
    s->in_batch = true;
    s->batch_no++;
    if (s->hooks.dirty)
        s->hooks.dirty(s->hooks.userdata);
    return 0;
}

int store_commit(struct store *s)
{
    int r;

    if (!s->in_batch)
        return 0;
    if (sqlite3_get_autocommit(s->db)) {
        batch_failed(s, -ENOSPC);
        return -ENOSPC;
    }
    r = store_stmt_exec(store_stmt(s, sql_commit));
    if (r < 0) {
        if (!sqlite3_get_autocommit(s->db))
            store_stmt_exec(store_stmt(s, sql_rollback));
        batch_failed(s, r);
        return r;
    }
    s->in_batch = false;
    s->committed_no = s->batch_no;
    s->n_batch_ev = 0;
    s->batch_ev_overflow = 0;
    s->committed = lasts(s);
    if (!s->deferred)
        s->durable = s->committed;
    return 0;
}

bool store_in_batch(struct store *s) { return s->in_batch; }

static const char sql_snapshot_begin[] = "BEGIN DEFERRED";

int store_snapshot_begin(struct store *s)
{
    if (s->in_batch)
        return -EBUSY;
    return store_stmt_exec(store_stmt(s, sql_snapshot_begin));
}

void store_snapshot_end(struct store *s)
{
    /* Nothing was written: ending it cannot fail in a way that loses anything. */
    if (!s->in_batch && !sqlite3_get_autocommit(s->db))
        (void)store_stmt_exec(store_stmt(s, sql_commit));
}

uint64_t store_ticket(const struct store *s)
{
    return s->in_batch ? s->batch_no : s->committed_no;
}

uint64_t store_committed(const struct store *s) { return s->committed_no; }

void store_set_hooks(struct store *s, const struct store_hooks *hooks)
{
    s->hooks = *hooks;
}

void store_marks_committed(const struct store *s, struct store_marks *ret)
{
    *ret = s->committed;
}

void store_marks_durable(const struct store *s, struct store_marks *ret)
{
    *ret = s->durable;
}

void store_set_durable(struct store *s, const struct store_marks *m)
{
    s->durable = *m;
}

static int wal_hook(void *userdata, sqlite3 *db, const char *name, int frames)
{
    ((struct store *)userdata)->wal_frames = frames;
    return SQLITE_OK;
}

int store_defer_sync(struct store *s)
{
    int r;

    if (s->in_batch)
        return -EBUSY;
    r = store_exec(s->db, "PRAGMA synchronous = NORMAL");
    if (r < 0)
        return r;
    sqlite3_wal_hook(s->db, wal_hook, s);       /* replaces the automatic checkpoints */
    s->deferred = true;
    return 0;
}

int store_wal_frames(const struct store *s) { return s->wal_frames; }

struct store_checkpointer {
    sqlite3 *db;
};

int store_checkpointer_open(const char *path, struct store_checkpointer **ret)
{
    struct store_checkpointer *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int r = store_errno(rc);
        store_checkpointer_close(c);
        return r < 0 ? r : -EIO;
    }
    *ret = c;
    return 0;
}

int store_checkpointer_run(struct store_checkpointer *c)
{
    int log_frames = 0, done_frames = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &done_frames);
    return rc == SQLITE_OK ? done_frames : store_errno(rc);
}

void store_checkpointer_close(struct store_checkpointer *c)
{
    if (c) {
        sqlite3_close(c->db);
        free(c);
    }
}

/* ---- access events held from failed batches ---- */

unsigned store_held_count(const struct store *s) { return s->n_held; }
uint64_t store_held_dropped(const struct store *s) { return s->held_dropped; }

/* Append a copy of ev to list (*n of STORE_HELD_MAX), without its id (written again, it
 * gets a new one); a full list counts it in *dropped instead. */
static void events_keep(struct store_event *list, unsigned *n, uint64_t *dropped,
                        const struct store_event *ev)
{
    if (*n < STORE_HELD_MAX) {
        list[*n] = *ev;
        list[(*n)++].id = 0;
    } else {
        (*dropped)++;
    }
}

void store_hold_event(struct store *s, const struct store_event *ev)
{
    events_keep(s->held, &s->n_held, &s->held_dropped, ev);
}

void store_batch_note_event(struct store *s, const struct store_event *ev)
{
    events_keep(s->batch_ev, &s->n_batch_ev, &s->batch_ev_overflow, ev);
}

int store_probe(struct store *s)
{
    char sql[48];
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    return store_exec(s->db, sql);
}

int store_held_flush(struct store *s)
{
    unsigned n = s->n_held, done = 0;
    struct store_event *todo;
    int r = 0;

    if (n == 0)
        return 0;
    todo = malloc(n * sizeof(*todo));
    if (!todo)
        return -ENOMEM;
    memcpy(todo, s->held, n * sizeof(*todo));
    s->n_held = 0;
    for (; done < n; done++) {
        r = store_event_add(s, &todo[done], NULL);
        if (r < 0)
            break;
    }
    /* What was not tried goes back, after anything a failure just held again (the one
     * that failed was held by store_event_add() itself). */
    for (unsigned i = done + 1; i < n; i++)
        store_hold_event(s, &todo[i]);
    free(todo);
    return r < 0 ? r : (int)done;
}

/* ---- opening ---- */

/* A database written by a newer Portier (a downgraded package) is refused before anything
 * below writes to it: even PRAGMA auto_vacuum rewrites its header (store_db_open()).
 * page_size (effective only when the file is created): a tap appends one row, and with WAL
 * each commit writes the changed page twice (WAL frame, then checkpoint). 1 KiB pages keep
 * that near 2 KiB per tap on an SD card instead of 8 KiB; lookups stay a few page reads deep
 * even with hundreds of thousands of cards.
 * WAL: readers (sqlite3 CLI, backups) never block the daemon. synchronous=FULL: a commit is
 * on disk when COMMIT returns, so a power cut never loses a committed event. */
static const char db_pragmas[] =
    "PRAGMA page_size = 1024;"
    /* A new file gives back the space the retention job frees (store_vacuum_step); see
     * store_auto_vacuum() for older ones. */
    "PRAGMA auto_vacuum = INCREMENTAL;"
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "PRAGMA foreign_keys = ON;"
    "PRAGMA busy_timeout = 2000;"
    /* 512 KiB of page cache: a tap reads a handful of pages, the kernel's page cache holds
     * the rest, and a Pi has other work to do. */
    "PRAGMA cache_size = -512;";

static int db_open(const char *path, sqlite3 **ret)
{
    return store_db_open(path, STORE_SCHEMA_VERSION, db_pragmas, ret);
}

int store_create_at_version(const char *path, int version)
{
    sqlite3 *db;
    int r;

    if (version < 0 || version > STORE_SCHEMA_VERSION)
        return -EINVAL;
    r = db_open(path, &db);
    if (r < 0)
        return r;
    r = store_migrate(db, migrations, STORE_SCHEMA_VERSION, version);
    sqlite3_close(db);
    return r;
}

int store_open(const char *path, struct store **ret)
{
    struct store *s;
    int r;

    if (sodium_init() < 0)
        return -EIO;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    r = db_open(path, &s->db);
    if (r < 0)
        goto fail;
    r = store_migrate(s->db, migrations, STORE_SCHEMA_VERSION, STORE_SCHEMA_VERSION);
    if (r < 0)
        goto fail;
    r = store_stmts_new(s->db, &s->stmts);
    if (r < 0)
        goto fail;
    s->batch_ev = calloc(STORE_HELD_MAX, sizeof(*s->batch_ev));
    s->held = calloc(STORE_HELD_MAX, sizeof(*s->held));
    if (!s->batch_ev || !s->held) {
        r = -ENOMEM;
        goto fail;
    }
    /* The statements a commit needs are prepared now: a batch must never fail to end for
     * want of memory to prepare COMMIT. */
    if (!store_stmt(s, sql_begin) || !store_stmt(s, sql_commit) || !store_stmt(s, sql_rollback)) {
        r = -ENOMEM;
        goto fail;
    }
    lasts_read(s);
    s->mqtt_floor = -1;
    s->committed = lasts(s);
    s->durable = s->committed;
    *ret = s;
    return 0;
fail:
    store_free(s);
    return r;
}

struct store *store_free(struct store *s)
{
    if (!s)
        return NULL;
    /* The owner has committed; whatever is left is committed now, and a failure is told to
     * the failed hook like any other (the batch is rolled back). */
    if (s->stmts && store_commit(s) < 0)
        s->in_batch = false;
    store_stmts_free(s->stmts);
    sqlite3_close(s->db);
    free(s->batch_ev);
    free(s->held);
    free(s);
    return NULL;
}

int store_schema_version(struct store *s)
{
    int v = -1;
    store_user_version(s->db, &v);
    return v;
}

int store_path(struct store *s, char *buf, size_t n)
{
    const char *path = sqlite3_db_filename(s->db, "main");
    if (!path || !*path || strlen(path) >= n)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    return 0;
}

/* ---- site secrets and id ---- */

struct secret_row {
    uint8_t *buf;
    size_t len;
    bool sized;
};

static void secret_fill(sqlite3_stmt *st, void *ret)
{
    struct secret_row *row = ret;
    row->sized = store_column_blob(st, 0, row->buf, row->len);
}

int store_secret(struct store *s, const char *name, uint8_t *buf, size_t len)
{
    struct secret_row row = { buf, len, false };
    sqlite3_stmt *st = store_stmt(s, sql_secret_get);
    int r = store_bind(st, STORE_ARGS(STORE_TEXT(name)));

    if (r == 0)
        r = store_row_get(st, secret_fill, &row);
    if (r == 0)
        return row.sized ? 0 : -EBADMSG;
    if (r != -ENOENT)
        return r;
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    randombytes_buf(buf, len);
    r = store_write(s, sql_secret_put, STORE_ARGS(STORE_TEXT(name), STORE_BLOB(buf, len)));
    if (r < 0)
        return r;
    /* A new secret must be durable before anything is hashed with it. */
    return store_commit(s);
}

int store_site_id(struct store *s, const char *site)
{
    char stored[64];
    int r = store_get_text(s, sql_site_id_get, STORE_NO_ARGS, stored, sizeof(stored));

    if (r == 0)
        return strcmp(stored, site) == 0 ? 0 : -EXDEV;
    if (r != -ENOENT)
        return r;
    return store_write(s, sql_secret_put,
                       STORE_ARGS(STORE_TEXT("site_id"), STORE_BLOB(site, strlen(site))));
}

/* ---- steps: a group of writes inside the batch that succeeds or leaves no trace ---- */

int store_step_begin(struct store *s)
{
    int r = store_batch_ensure(s);
    return r < 0 ? r : store_stmt_exec(store_stmt(s, sql_savepoint));
}

int store_step_end(struct store *s, bool keep)
{
    if (!keep) {
        int r = store_stmt_exec(store_stmt(s, sql_rollback_to));
        if (r < 0)
            return r;
    }
    return store_stmt_exec(store_stmt(s, sql_release));
}

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
     * ST_BOOKING_LIST. */
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

    /* 11: a card provisioned as a MIFARE DESFire (its Portier application holds keys
     * diversified from the site's master key): wherever the door does not accept UIDs
     * alone, it must prove them, and a copy of its UID opens nothing. */
    "ALTER TABLE cards ADD COLUMN desfire INTEGER NOT NULL DEFAULT 0 CHECK (desfire IN (0, 1));",
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SECRET_GET,
    ST_SECRET_PUT,
    ST_PLAN_ADD,
    ST_PLAN_FIND,
    ST_PLAN_LIST,
    ST_MEMBER_ADD,
    ST_MEMBER_GET,
    ST_MEMBER_BY_NAME,
    ST_MEMBER_STATUS,
    ST_MEMBER_LIST,
    ST_MEMBER_COUNT,
    ST_CARD_ADD,
    ST_CARD_REMOVE,
    ST_CARD_FIND,
    ST_CARD_LIST,
    ST_CARD_LIST_MEMBER,
    ST_CARD_COUNT,
    ST_CARD_SET_DESFIRE,
    ST_CARD_UID_ONLY,
    ST_SUBJECT,
    ST_RESOURCE_UPSERT,
    ST_EVENT_ADD,
    ST_EVENT_LIST,
    ST_RESOURCE_GET,
    ST_RESOURCE_LIST,
    ST_RESOURCE_OOO,
    ST_TRAINING_ADD,
    ST_TRAINING_FIND,
    ST_TRAINING_LIST,
    ST_RULES_PUT,
    ST_QUAL_GRANT,
    ST_QUAL_REVOKE,
    ST_QUAL_BEST,
    ST_QUAL_LIST,
    ST_BOOKING_ADD,
    ST_BOOKING_GET,
    ST_BOOKING_CANCEL,
    ST_BOOKING_OVERLAP,
    ST_BOOKING_MINUTES,
    ST_BOOKING_UPCOMING,
    ST_BOOKING_LIST,
    ST_SESSION_OPEN,
    ST_SESSION_TOUCH,
    ST_SESSION_CLOSE,
    ST_SESSION_INTERRUPTED,
    ST_SESSION_LIST,
    ST_SESSION_OPEN_LIST,
    ST_PLAN_OF_MEMBER,
    ST_PLAN_SET,
    ST_RATE_FIND,
    ST_RATE_PUT,
    ST_RATE_LIST,
    ST_PASS_ADD,
    ST_PASS_FIND,
    ST_PASS_USE,
    ST_PASS_LIST,
    ST_PLAN_DAYS_USED,
    ST_PLAN_MINUTES_USED,
    ST_DAY_CHARGED,
    ST_USAGE_ADD,
    ST_USAGE_RANGE,
    ST_USAGE_GET,
    ST_LEDGER_HEAD,
    ST_LEDGER_ADD,
    ST_LEDGER_HEAD_PUT,
    ST_LEDGER_LIST,
    ST_LEDGER_GET,
    ST_PRESENCE_OPEN,
    ST_PRESENCE_FIND,
    ST_PRESENCE_CLOSE,
    ST_PRESENCE_LIST,
    ST_PERIOD_ADD,
    ST_PERIOD_LIST,
    ST_RESOURCE_CATEGORY,
    ST_RESOURCE_SET_CATEGORY,
    ST_OUTBOX_EVENT,
    ST_OUTBOX_ADD,
    ST_OUTBOX_FETCH,
    ST_OUTBOX_DELETE,
    ST_OUTBOX_COUNT,
    ST_OUTBOX_DROP_OLDEST,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_SITE_ID_GET,
    ST__MAX
};

#define MEMBER_COLUMNS \
    "m.id, m.name, m.email, coalesce(m.plan_id, 0), coalesce(p.name, ''), m.status, " \
    "m.valid_from, m.valid_until, m.created_at, " \
    "(SELECT count(*) FROM cards c WHERE c.member_id = m.id) "
#define CARD_COLUMNS \
    "c.id, c.member_id, m.name, c.label, c.enabled, c.created_at, hex(substr(c.uid_hash, 1, 8)), " \
    "c.desfire "

static const char *const stmt_sql[ST__MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SECRET_GET] = "SELECT value FROM site_secrets WHERE name = ?1",
    [ST_SECRET_PUT] = "INSERT INTO site_secrets (name, value) VALUES (?1, ?2)",
    [ST_PLAN_ADD] = "INSERT INTO plans (name, zones, hours, created_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_PLAN_FIND] = "SELECT id, name, zones, hours, "
                     "(SELECT count(*) FROM members m WHERE m.plan_id = plans.id) "
                     "FROM plans WHERE name = ?1",
    [ST_PLAN_LIST] = "SELECT id, name, zones, hours, "
                     "(SELECT count(*) FROM members m WHERE m.plan_id = plans.id) "
                     "FROM plans ORDER BY name",
    [ST_MEMBER_ADD] = "INSERT INTO members (name, email, plan_id, valid_from, valid_until, "
                      "created_at) VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6)",
    [ST_MEMBER_GET] = "SELECT " MEMBER_COLUMNS
                      "FROM members m LEFT JOIN plans p ON p.id = m.plan_id WHERE m.id = ?1",
    [ST_MEMBER_BY_NAME] = "SELECT id FROM members WHERE name = ?1 LIMIT 2",
    [ST_MEMBER_STATUS] = "UPDATE members SET status = ?2 WHERE id = ?1",
    [ST_MEMBER_LIST] = "SELECT " MEMBER_COLUMNS
                       "FROM members m LEFT JOIN plans p ON p.id = m.plan_id ORDER BY m.id",
    [ST_MEMBER_COUNT] = "SELECT count(*) FROM members",
    [ST_CARD_ADD] = "INSERT INTO cards (member_id, uid_hash, label, created_at) "
                    "VALUES (?1, ?2, ?3, ?4)",
    [ST_CARD_REMOVE] = "DELETE FROM cards WHERE id = ?1",
    [ST_CARD_FIND] = "SELECT id FROM cards WHERE uid_hash = ?1",
    [ST_CARD_LIST] = "SELECT " CARD_COLUMNS
                     "FROM cards c JOIN members m ON m.id = c.member_id ORDER BY c.id",
    [ST_CARD_LIST_MEMBER] = "SELECT " CARD_COLUMNS
                            "FROM cards c JOIN members m ON m.id = c.member_id "
                            "WHERE c.member_id = ?1 ORDER BY c.id",
    [ST_CARD_COUNT] = "SELECT count(*) FROM cards",
    [ST_CARD_SET_DESFIRE] = "UPDATE cards SET desfire = ?2 WHERE id = ?1",
    /* Enabled cards of active members that still open by UID, with when each was last used
     * (one pass over the access log, grouped). */
    [ST_CARD_UID_ONLY] = "SELECT m.id, m.name, c.id, c.label, coalesce(l.last, 0) "
                         "FROM cards c JOIN members m ON m.id = c.member_id "
                         "LEFT JOIN (SELECT card_id, max(at) AS last FROM access_events "
                         "           WHERE card_id IS NOT NULL GROUP BY card_id) l "
                         "  ON l.card_id = c.id "
                         "WHERE c.desfire = 0 AND c.enabled = 1 AND m.status = 'active' "
                         "ORDER BY m.name, m.id, c.id",
    [ST_SUBJECT] = "SELECT c.id, c.enabled, m.id, m.status, m.valid_from, m.valid_until, "
                   "coalesce(p.id, 0), coalesce(p.zones, ''), coalesce(p.hours, 'never'), "
                   "c.desfire "
                   "FROM cards c JOIN members m ON m.id = c.member_id "
                   "LEFT JOIN plans p ON p.id = m.plan_id WHERE c.uid_hash = ?1",
    [ST_RESOURCE_UPSERT] = "INSERT INTO resources (kind, name, zone, created_at) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
                           "zone = excluded.zone, kind = excluded.kind RETURNING id",
    [ST_EVENT_ADD] = "INSERT INTO access_events (at, resource_id, reader, member_id, card_id, "
                     "card_hash, kind, granted, reason, detail) VALUES "
                     "(?1, nullif(?2, 0), ?3, nullif(?4, 0), nullif(?5, 0), ?6, ?7, ?8, ?9, ?10)",
    [ST_EVENT_LIST] = "SELECT * FROM (SELECT e.id, e.at, coalesce(e.resource_id, 0), "
                      "coalesce(r.name, ''), e.reader, coalesce(e.member_id, 0), "
                      "coalesce(e.card_id, 0), e.kind, e.granted, e.reason, e.detail "
                      "FROM access_events e LEFT JOIN resources r ON r.id = e.resource_id "
                      "WHERE e.at >= ?1 ORDER BY e.id DESC LIMIT ?2) ORDER BY 1",
    [ST_RESOURCE_GET] = "SELECT r.id, r.kind, r.name, r.zone, r.out_of_order, r.out_of_order_reason, "
                        "coalesce(t.id, 0), coalesce(t.name, ''), coalesce(m.slot_minutes, 30), "
                        "coalesce(m.min_minutes, 30), coalesce(m.max_minutes, 240), "
                        "coalesce(m.window_days, 14), coalesce(m.quota_day_minutes, 0), "
                        "coalesce(m.quota_week_minutes, 0), coalesce(m.cancel_deadline_minutes, 60), "
                        "coalesce(m.hours, 'always'), coalesce(m.booking_required, 0), "
                        "coalesce(m.walkup_free_minutes, 15), m.resource_id IS NOT NULL "
                        "FROM resources r LEFT JOIN machine_rules m ON m.resource_id = r.id "
                        "LEFT JOIN trainings t ON t.id = m.training_id WHERE r.name = ?1",
    [ST_RESOURCE_LIST] = "SELECT name FROM resources WHERE kind = ?1 ORDER BY name",
    [ST_RESOURCE_OOO] = "UPDATE resources SET out_of_order = ?2, out_of_order_reason = ?3 "
                        "WHERE id = ?1",
    [ST_TRAINING_ADD] = "INSERT INTO trainings (name, description, created_at) VALUES (?1, ?2, ?3)",
    [ST_TRAINING_FIND] = "SELECT id FROM trainings WHERE name = ?1",
    [ST_TRAINING_LIST] = "SELECT t.id, t.name, t.description, (SELECT count(DISTINCT q.member_id) "
                         "FROM qualifications q "
                         "WHERE q.training_id = t.id AND q.revoked_at = 0 AND (q.expires_at = 0 "
                         "OR q.expires_at > ?1)) FROM trainings t ORDER BY t.name",
    [ST_RULES_PUT] = "INSERT INTO machine_rules (resource_id, training_id, slot_minutes, min_minutes, "
                     "max_minutes, window_days, quota_day_minutes, quota_week_minutes, "
                     "cancel_deadline_minutes, hours, booking_required, walkup_free_minutes) "
                     "VALUES (?1, nullif(?2, 0), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
                     "ON CONFLICT (resource_id) DO UPDATE SET training_id = excluded.training_id, "
                     "slot_minutes = excluded.slot_minutes, min_minutes = excluded.min_minutes, "
                     "max_minutes = excluded.max_minutes, window_days = excluded.window_days, "
                     "quota_day_minutes = excluded.quota_day_minutes, "
                     "quota_week_minutes = excluded.quota_week_minutes, "
                     "cancel_deadline_minutes = excluded.cancel_deadline_minutes, "
                     "hours = excluded.hours, booking_required = excluded.booking_required, "
                     "walkup_free_minutes = excluded.walkup_free_minutes",
    [ST_QUAL_GRANT] = "INSERT INTO qualifications (member_id, training_id, granted_at, granted_by, "
                      "expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_QUAL_REVOKE] = "UPDATE qualifications SET revoked_at = ?3, revoked_by = ?4 "
                       "WHERE member_id = ?1 AND training_id = ?2 AND revoked_at = 0",
    /* The qualification that lasts longest: one without expiry beats any other. */
    [ST_QUAL_BEST] = "SELECT expires_at FROM qualifications WHERE member_id = ?1 AND "
                     "training_id = ?2 AND revoked_at = 0 "
                     "ORDER BY expires_at = 0 DESC, expires_at DESC LIMIT 1",
    [ST_QUAL_LIST] = "SELECT q.id, q.member_id, t.name, q.granted_at, q.granted_by, q.expires_at, "
                     "q.revoked_at FROM qualifications q JOIN trainings t ON t.id = q.training_id "
                     "WHERE q.member_id = ?1 ORDER BY q.id",
    [ST_BOOKING_ADD] = "INSERT INTO bookings (resource_id, member_id, starts_at, ends_at, created_at, "
                       "created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_BOOKING_GET] = "SELECT b.id, b.resource_id, r.name, b.member_id, m.name, b.starts_at, "
                       "b.ends_at, b.created_by, b.cancelled_at, b.cancelled_by, b.cancel_override "
                       "FROM bookings b JOIN resources r ON r.id = b.resource_id "
                       "JOIN members m ON m.id = b.member_id WHERE b.id = ?1",
    [ST_BOOKING_CANCEL] = "UPDATE bookings SET cancelled_at = ?2, cancelled_by = ?3, "
                          "cancel_override = ?4, moved_to = nullif(?5, 0) "
                          "WHERE id = ?1 AND cancelled_at = 0",
    /* Bookings last at most a week (machine rules cap max_minutes at 10080), so every range
     * query on starts_at is bounded below too: the index scan stays short however many
     * past bookings a machine has. */
    [ST_BOOKING_OVERLAP] = "SELECT b.id, b.member_id, m.name, b.starts_at, b.ends_at FROM bookings b "
                           "JOIN members m ON m.id = b.member_id WHERE b.resource_id = ?1 AND "
                           "b.cancelled_at = 0 AND b.starts_at < ?3 AND b.starts_at > ?2 - 604800 "
                           "AND b.ends_at > ?2 AND b.id != ?4 "
                           "ORDER BY b.starts_at LIMIT 8",
    [ST_BOOKING_MINUTES] = "SELECT coalesce(sum(min(ends_at, ?4) - max(starts_at, ?3)), 0) / 60 "
                           "FROM bookings WHERE member_id = ?1 AND resource_id = ?2 AND "
                           "cancelled_at = 0 AND starts_at < ?4 AND starts_at > ?3 - 604800 AND ends_at > ?3 "
                           "AND id != ?5",
    [ST_BOOKING_UPCOMING] = "SELECT id, member_id, starts_at, ends_at FROM bookings "
                            "WHERE resource_id = ?1 AND cancelled_at = 0 AND ends_at > ?2 "
                            "AND starts_at < ?3 AND starts_at > ?2 - 604800 "
                            "ORDER BY starts_at LIMIT ?4",
    [ST_BOOKING_LIST] = "SELECT b.id, b.resource_id, r.name, b.member_id, m.name, b.starts_at, "
                        "b.ends_at, b.created_by, b.cancelled_at, b.cancelled_by, b.cancel_override "
                        "FROM bookings b JOIN resources r ON r.id = b.resource_id "
                        "JOIN members m ON m.id = b.member_id WHERE (?1 = 0 OR b.resource_id = ?1) "
                        "AND (?2 = 0 OR b.member_id = ?2) AND b.ends_at > ?3 AND b.starts_at < ?4 "
                        /* no booking is longer than BOOKING_MAX_MINUTES (7 days): a bound the
                         * index on starts_at can use */
                        "AND b.starts_at > ?3 - 604800 "
                        "AND (?5 OR b.cancelled_at = 0) ORDER BY b.starts_at, b.id LIMIT ?6",
    [ST_SESSION_OPEN] = "INSERT INTO machine_sessions (resource_id, member_id, booking_id, started_at, "
                        "last_seen_at) VALUES (?1, ?2, nullif(?3, 0), ?4, ?4)",
    [ST_SESSION_TOUCH] = "UPDATE machine_sessions SET last_seen_at = ?2, running_seconds = ?3 "
                         "WHERE id = ?1 AND ended_at = 0",
    [ST_SESSION_CLOSE] = "UPDATE machine_sessions SET ended_at = ?2, last_seen_at = ?2, "
                         "running_seconds = ?3, end_reason = ?4 WHERE id = ?1 AND ended_at = 0",
    /* After a crash or power cut: close what was open at the last moment it was known. */
    [ST_SESSION_INTERRUPTED] = "UPDATE machine_sessions SET ended_at = last_seen_at, "
                               "end_reason = 'interrupted' WHERE ended_at = 0",
    [ST_SESSION_LIST] = "SELECT s.id, r.name, s.member_id, coalesce(s.booking_id, 0), s.started_at, "
                        "s.ended_at, s.last_seen_at, s.running_seconds, s.end_reason "
                        "FROM machine_sessions s JOIN resources r ON r.id = s.resource_id "
                        "WHERE s.started_at >= ?1 ORDER BY s.id",
    [ST_SESSION_OPEN_LIST] = "SELECT s.id, r.name, s.member_id, coalesce(s.booking_id, 0), s.started_at, "
                             "s.ended_at, s.last_seen_at, s.running_seconds, s.end_reason "
                             "FROM machine_sessions s JOIN resources r ON r.id = s.resource_id "
                             "WHERE s.ended_at = 0 ORDER BY s.id",
    [ST_PLAN_OF_MEMBER] = "SELECT p.id, p.name, p.monthly_days, p.day_rate_cents, p.allowance_order, "
                          "p.visit_days "
                          "FROM members m JOIN plans p ON p.id = m.plan_id WHERE m.id = ?1",
    [ST_PLAN_SET] = "UPDATE plans SET monthly_days = ?2, day_rate_cents = ?3, allowance_order = ?4, "
                    "visit_days = ?5 "
                    "WHERE id = ?1",
    /* The most specific rate: the machine itself, then its category, then every machine. */
    [ST_RATE_FIND] = "SELECT monthly_minutes, per_hour_cents, block_minutes, min_charge_cents, "
                     "free_minutes, target FROM rates WHERE plan_id = ?1 AND target IN "
                     "(?2, 'category:' || ?3, '*') ORDER BY target = ?2 DESC, target = '*' ASC LIMIT 1",
    [ST_RATE_PUT] = "INSERT INTO rates (plan_id, target, monthly_minutes, per_hour_cents, block_minutes, "
                    "min_charge_cents, free_minutes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                    "ON CONFLICT (plan_id, target) DO UPDATE SET monthly_minutes = excluded.monthly_minutes, "
                    "per_hour_cents = excluded.per_hour_cents, block_minutes = excluded.block_minutes, "
                    "min_charge_cents = excluded.min_charge_cents, free_minutes = excluded.free_minutes",
    [ST_RATE_LIST] = "SELECT p.name, r.target, r.monthly_minutes, r.per_hour_cents, r.block_minutes, "
                     "r.min_charge_cents, r.free_minutes FROM rates r JOIN plans p ON p.id = r.plan_id "
                     "ORDER BY p.name, r.target",
    [ST_PASS_ADD] = "INSERT INTO passes (member_id, kind, target, quantity, remaining, valid_from, "
                    "valid_until, price_cents, created_at, created_by) "
                    "VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* The pass that expires first is used first. */
    [ST_PASS_FIND] = "SELECT id, remaining FROM passes WHERE member_id = ?1 AND kind = ?2 AND "
                     "remaining > 0 AND (valid_from = 0 OR valid_from <= ?3) AND "
                     "(valid_until = 0 OR valid_until > ?3) AND target IN (?4, 'category:' || ?5, '*') "
                     "ORDER BY valid_until = 0, valid_until, id LIMIT 1",
    [ST_PASS_USE] = "UPDATE passes SET remaining = remaining - ?2 WHERE id = ?1 AND remaining >= ?2",
    [ST_PASS_LIST] = "SELECT id, member_id, kind, target, quantity, remaining, valid_from, valid_until, "
                     "price_cents FROM passes WHERE member_id = ?1 ORDER BY id",
    [ST_PLAN_DAYS_USED] = "SELECT count(*) FROM usage WHERE member_id = ?1 AND kind = 'day' AND "
                          "allowance = 'plan' AND billing_day BETWEEN ?2 AND ?3",
    /* Included minutes are shared by every machine the rate covers: one machine, a category
     * or all of them. */
    [ST_PLAN_MINUTES_USED] = "SELECT coalesce(sum(plan_quantity), 0) FROM usage WHERE member_id = ?1 "
                             "AND kind = 'machine' AND billing_day BETWEEN ?3 AND ?4 AND "
                             "(?2 = '*' OR resource = ?2 OR (substr(?2, 1, 9) = 'category:' AND "
                             "resource IN (SELECT name FROM resources WHERE category = substr(?2, 10))))",
    [ST_DAY_CHARGED] = "SELECT count(*) FROM usage WHERE member_id = ?1 AND kind = 'day' AND "
                       "billing_day = ?2",
    [ST_USAGE_ADD] = "INSERT INTO usage (kind, member_id, resource, billing_day, started_at, ended_at, "
                     "quantity, unit, running_seconds, allowance, pass_quantity, plan_quantity, "
                     "charged_quantity, amount_cents, end_reason, corrects_seq, note, ledger_seq, "
                     "recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                     "?14, ?15, ?16, ?17, ?18, ?19)",
    [ST_USAGE_RANGE] = "SELECT u.id, u.kind, u.member_id, coalesce(m.name, ''), u.resource, u.billing_day, "
                       "u.started_at, u.ended_at, u.quantity, u.unit, u.running_seconds, u.allowance, "
                       "u.pass_quantity, u.plan_quantity, u.charged_quantity, u.amount_cents, "
                       "u.end_reason, u.corrects_seq, u.note, u.ledger_seq FROM usage u "
                       "LEFT JOIN members m ON m.id = u.member_id WHERE u.billing_day BETWEEN ?1 AND ?2 "
                       "AND (?3 = 0 OR u.member_id = ?3) ORDER BY u.member_id, u.billing_day, u.id",
    [ST_USAGE_GET] = "SELECT u.id, u.kind, u.member_id, '', u.resource, u.billing_day, "
                     "u.started_at, u.ended_at, u.quantity, u.unit, u.running_seconds, u.allowance, "
                     "u.pass_quantity, u.plan_quantity, u.charged_quantity, u.amount_cents, "
                     "u.end_reason, u.corrects_seq, u.note, u.ledger_seq FROM usage u WHERE u.ledger_seq = ?1",
    [ST_LEDGER_HEAD] = "SELECT seq, hash, signature FROM ledger_head WHERE id = 1",
    [ST_LEDGER_ADD] = "INSERT INTO ledger (seq, site, usage_id, kind, member_id, resource, started_at, "
                      "ended_at, quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, "
                      "prev_hash, hash, signature, home, visitor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                      "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    [ST_LEDGER_HEAD_PUT] = "INSERT INTO ledger_head (id, seq, hash, signature) VALUES (1, ?1, ?2, ?3) "
                           "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                           "signature = excluded.signature",
    [ST_LEDGER_LIST] = "SELECT seq, site, usage_id, kind, member_id, resource, started_at, ended_at, "
                       "quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, prev_hash, "
                       "hash, signature, home, visitor FROM ledger WHERE seq >= ?1 ORDER BY seq",
    [ST_LEDGER_GET] = "SELECT seq, site, usage_id, kind, member_id, resource, started_at, ended_at, "
                      "quantity, unit, amount_cents, allowance, corrects_seq, recorded_at, prev_hash, "
                      "hash, signature, home, visitor FROM ledger WHERE seq = ?1",
    [ST_PRESENCE_OPEN] = "INSERT INTO presence (member_id, resource_id, check_in_at) VALUES (?1, nullif(?2, 0), ?3)",
    [ST_PRESENCE_FIND] = "SELECT id, check_in_at, coalesce(resource_id, 0) FROM presence "
                         "WHERE member_id = ?1 AND check_out_at = 0",
    [ST_PRESENCE_CLOSE] = "UPDATE presence SET check_out_at = ?2, end_reason = ?3 WHERE id = ?1 "
                          "AND check_out_at = 0",
    [ST_PRESENCE_LIST] = "SELECT p.id, p.member_id, m.name, p.check_in_at FROM presence p "
                         "JOIN members m ON m.id = p.member_id WHERE p.check_out_at = 0 ORDER BY p.check_in_at",
    [ST_PERIOD_ADD] = "INSERT INTO periods (period, first_day, last_day, closed_at, last_seq, last_hash, "
                      "totals, archive, archive_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_PERIOD_LIST] = "SELECT period, first_day, last_day, closed_at, last_seq, totals, archive, "
                       "last_hash, archive_sha256 FROM periods ORDER BY period",
    [ST_RESOURCE_CATEGORY] = "SELECT category FROM resources WHERE name = ?1",
    [ST_RESOURCE_SET_CATEGORY] = "UPDATE resources SET category = ?2 WHERE id = ?1",
    /* An access event as an MQTT message body: member ids, never names or card UIDs. */
    [ST_OUTBOX_EVENT] = "INSERT INTO outbox (kind, payload, created_at) VALUES (?1, json_object("
                        "'kind', ?1, 'at', strftime('%Y-%m-%dT%H:%M:%SZ', ?2, 'unixepoch'), "
                        "'resource', (SELECT name FROM resources WHERE id = ?3), "
                        "'reader', nullif(?4, ''), 'member_id', nullif(?5, 0), "
                        "'granted', json(CASE ?6 WHEN 1 THEN 'true' ELSE 'false' END), "
                        "'reason', ?7, 'detail', nullif(?8, ''), 'event_id', ?9), ?2)",
    [ST_OUTBOX_ADD] = "INSERT INTO outbox (kind, payload, created_at) VALUES (?1, ?2, ?3)",
    [ST_OUTBOX_FETCH] = "SELECT seq, kind, payload FROM outbox WHERE seq > ?1 AND seq <= ?3 "
                        "ORDER BY seq LIMIT ?2",
    [ST_OUTBOX_DELETE] = "DELETE FROM outbox WHERE seq = ?1",
    [ST_OUTBOX_COUNT] = "SELECT count(*) FROM outbox",
    [ST_OUTBOX_DROP_OLDEST] = "DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox)",
    [ST_SAVEPOINT] = "SAVEPOINT step",
    [ST_RELEASE] = "RELEASE step",
    [ST_ROLLBACK_TO] = "ROLLBACK TO step",
    [ST_SITE_ID_GET] = "SELECT CAST(value AS TEXT) FROM site_secrets WHERE name = 'site_id'",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST__MAX];
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
    struct store_marks committed, durable;
    /* Access events of the open batch (copies, to hold them if it fails), and those held
     * from failed batches. */
    struct store_event *batch_ev, *held;
    unsigned n_batch_ev, n_held;
    uint64_t batch_ev_overflow, held_dropped;
    /* Statements of the store_*.c domain files, prepared on first use (store_prepared). */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } extra[STORE_EXTRA_STMTS];
    unsigned n_extra;
    uint64_t generation;
};

/* Map SQLite result codes to -errno at the module boundary. */
static int sqlite_to_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:        return 0;
    case SQLITE_NOMEM:      return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:     return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:       return -EACCES;
    case SQLITE_FULL:       return -ENOSPC;
    case SQLITE_CANTOPEN:   return -ENOENT;
    case SQLITE_CONSTRAINT:
        return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? -EEXIST
                                                                                      : -EINVAL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:     return -EBADMSG;
    case SQLITE_TOOBIG:     return -E2BIG;
    default:                return -EIO;
    }
}

int store_errno(int sqlite_rc) { return sqlite_to_errno(sqlite_rc); }

uint64_t store_generation(const struct store *s) { return s->generation; }

sqlite3 *store_db(struct store *s) { return s->db; }

sqlite3_stmt *store_prepared(struct store *s, const char *sql)
{
    sqlite3_stmt *st;

    for (unsigned i = 0; i < s->n_extra; i++)
        if (s->extra[i].sql == sql) {
            sqlite3_reset(s->extra[i].st);
            sqlite3_clear_bindings(s->extra[i].st);
            return s->extra[i].st;
        }
    if (s->n_extra == STORE_EXTRA_STMTS ||
        sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    s->extra[s->n_extra].sql = sql;
    s->extra[s->n_extra++].st = st;
    return st;
}

static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->stmt[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Step a statement that returns no rows (or whose rows we ignore). */
int store_stmt_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);      /* extended result codes are on */
    int r = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
    sqlite3_reset(st);
    return r < 0 || rc == SQLITE_DONE || rc == SQLITE_ROW ? r : -EIO;
}

void store_column_text(sqlite3_stmt *st, int col, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, n, "%s", t ? (const char *)t : "");
}

/* Row loops: step a statement to its end, handing each row to a converter that calls the
 * caller's typed callback; the first negative return stops the loop and is returned.
 * Returns the number of rows seen or -errno. */

int store_rows_each(sqlite3_stmt *st, int (*each)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    int rc, n = 0, r = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        r = each(st, ctx);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

static int64_t count_of(struct store *s, enum stmt_id id);

static const char sql_outbox_last[] = "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'";
static const char sql_ledger_last[] = "SELECT coalesce(max(seq), 0) FROM ledger";

static int64_t first_int64(struct store *s, const char *sql)
{
    sqlite3_stmt *st = store_prepared(s, sql);
    int64_t v = 0;

    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);
    return v;
}

/* What a batch that is gone leaves behind: its events are held, the in-memory counters
 * are read again from what is on disk, and the owner hears of it. */
static void batch_failed(struct store *s, int error)
{
    uint64_t batch = s->batch_no;

    s->in_batch = false;
    for (unsigned i = 0; i < s->n_batch_ev; i++) {
        if (s->n_held < STORE_HELD_MAX)
            s->held[s->n_held++] = s->batch_ev[i];
        else
            s->held_dropped++;
    }
    s->held_dropped += s->batch_ev_overflow;
    s->n_batch_ev = 0;
    s->batch_ev_overflow = 0;
    s->outbox_last = first_int64(s, sql_outbox_last);
    s->ledger_last = first_int64(s, sql_ledger_last);
    if (s->outbox_on)
        s->outbox_count = count_of(s, ST_OUTBOX_COUNT);
    s->generation++;        /* caches may show what was rolled back */
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
    r = store_stmt_exec(stmt_get(s, ST_BEGIN));
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
    r = store_stmt_exec(stmt_get(s, ST_COMMIT));
    if (r < 0) {
        if (!sqlite3_get_autocommit(s->db))
            store_stmt_exec(stmt_get(s, ST_ROLLBACK));
        batch_failed(s, r);
        return r;
    }
    s->in_batch = false;
    s->committed_no = s->batch_no;
    s->n_batch_ev = 0;
    s->batch_ev_overflow = 0;
    s->committed.outbox_seq = s->outbox_last;
    s->committed.ledger_seq = s->ledger_last;
    if (!s->deferred)
        s->durable = s->committed;
    return 0;
}

bool store_in_batch(struct store *s) { return s->in_batch; }

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
    int rc;

    if (s->in_batch)
        return -EBUSY;
    rc = sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sqlite_to_errno(sqlite3_extended_errcode(s->db));
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
        int r = sqlite_to_errno(rc);
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
    return rc == SQLITE_OK ? done_frames : sqlite_to_errno(rc);
}

void store_checkpointer_close(struct store_checkpointer *c)
{
    if (c) {
        sqlite3_close(c->db);
        free(c);
    }
}

unsigned store_held_count(const struct store *s) { return s->n_held; }
uint64_t store_held_dropped(const struct store *s) { return s->held_dropped; }

int store_probe(struct store *s)
{
    char sql[48];
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0 : sqlite_to_errno(sqlite3_extended_errcode(s->db));
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
    for (unsigned i = done + 1; i < n; i++) {
        if (s->n_held < STORE_HELD_MAX)
            s->held[s->n_held++] = todo[i];
        else
            s->held_dropped++;
    }
    free(todo);
    return r < 0 ? r : (int)done;
}

static int user_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlite_to_errno(rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

/* Apply migrations up to target, each in its own transaction with its version bump. */
static int migrate(sqlite3 *db, int target)
{
    int version, r;

    r = user_version(db, &version);
    if (r < 0)
        return r;
    if (version > STORE_SCHEMA_VERSION)
        return -EPROTO;
    for (int v = version; v < target; v++) {
        char bump[48];
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, bump, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            r = sqlite_to_errno(sqlite3_extended_errcode(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return r < 0 ? r : -EIO;
        }
    }
    return 0;
}

static int db_open(const char *path, sqlite3 **ret)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int r = sqlite_to_errno(rc);
        sqlite3_close(db);
        return r < 0 ? r : -EIO;
    }
    sqlite3_extended_result_codes(db, 1);
    /* page_size (effective only when the file is created): a tap appends one row, and with
     * WAL each commit writes the changed page twice (WAL frame, then checkpoint). 1 KiB
     * pages keep that near 2 KiB per tap on an SD card instead of 8 KiB; lookups stay a
     * few page reads deep even with hundreds of thousands of cards.
     * WAL: readers (sqlite3 CLI, backups) never block the daemon. synchronous=FULL: a commit
     * is on disk when COMMIT returns, so a power cut never loses a committed event. */
    rc = sqlite3_exec(db,
                      "PRAGMA page_size = 1024;"
                      "PRAGMA journal_mode = WAL;"
                      "PRAGMA synchronous = FULL;"
                      "PRAGMA foreign_keys = ON;"
                      "PRAGMA busy_timeout = 2000;"
                      /* 512 KiB of page cache: a tap reads a handful of pages, the kernel's
                       * page cache holds the rest, and a Pi has other work to do. */
                      "PRAGMA cache_size = -512;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int r = sqlite_to_errno(sqlite3_extended_errcode(db));
        sqlite3_close(db);
        return r < 0 ? r : -EIO;
    }
    *ret = db;
    return 0;
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
    r = migrate(db, version);
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
    r = migrate(s->db, STORE_SCHEMA_VERSION);
    if (r < 0)
        goto fail;
    for (int i = 0; i < ST__MAX; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            r = sqlite_to_errno(rc);
            r = r < 0 ? r : -EIO;
            goto fail;
        }
    }
    s->batch_ev = calloc(STORE_HELD_MAX, sizeof(*s->batch_ev));
    s->held = calloc(STORE_HELD_MAX, sizeof(*s->held));
    if (!s->batch_ev || !s->held) {
        r = -ENOMEM;
        goto fail;
    }
    s->outbox_last = first_int64(s, sql_outbox_last);
    s->ledger_last = first_int64(s, sql_ledger_last);
    s->committed.outbox_seq = s->outbox_last;
    s->committed.ledger_seq = s->ledger_last;
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
    if (s->stmt[ST_COMMIT])
        store_commit(s);
    for (int i = 0; i < ST__MAX; i++)
        sqlite3_finalize(s->stmt[i]);
    for (unsigned i = 0; i < s->n_extra; i++)
        sqlite3_finalize(s->extra[i].st);
    sqlite3_close(s->db);
    free(s->batch_ev);
    free(s->held);
    free(s);
    return NULL;
}

int store_schema_version(struct store *s)
{
    int v = -1;
    user_version(s->db, &v);
    return v;
}

int store_secret(struct store *s, const char *name, uint8_t *buf, size_t len)
{
    sqlite3_stmt *st = stmt_get(s, ST_SECRET_GET);
    int rc, r;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        if ((size_t)n != len) {
            sqlite3_reset(st);
            return -EBADMSG;
        }
        memcpy(buf, sqlite3_column_blob(st, 0), len);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(rc);
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    randombytes_buf(buf, len);
    st = stmt_get(s, ST_SECRET_PUT);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r < 0)
        return r;
    /* A new secret must be durable before anything is hashed with it. */
    return store_commit(s);
}

/* ---- plans ---- */

static void plan_from_row(sqlite3_stmt *st, struct store_plan *p)
{
    p->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, p->name, sizeof(p->name));
    store_column_text(st, 2, p->zones, sizeof(p->zones));
    store_column_text(st, 3, p->hours, sizeof(p->hours));
    p->members = sqlite3_column_int64(st, 4);
}

int store_plan_add(struct store *s, const char *name, const char *zones, const char *hours,
                   int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PLAN_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zones, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hours, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = store_stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_plan_find(struct store *s, const char *name, struct store_plan *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_FIND);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        plan_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

static int plans_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_plan p;

    plan_from_row(st, &p);
    return ((store_plan_fn)cx->fn)(&p, cx->userdata);
}

int store_plans_foreach(struct store *s, store_plan_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_LIST);
    return store_rows_each(st, plans_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* ---- members ---- */

static void member_from_row(sqlite3_stmt *st, struct store_member *m)
{
    char status[16];
    m->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, m->name, sizeof(m->name));
    store_column_text(st, 2, m->email, sizeof(m->email));
    m->plan_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, m->plan, sizeof(m->plan));
    store_column_text(st, 5, status, sizeof(status));
    m->status = strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
    m->valid_from = sqlite3_column_int64(st, 6);
    m->valid_until = sqlite3_column_int64(st, 7);
    m->created_at = sqlite3_column_int64(st, 8);
    m->cards = sqlite3_column_int64(st, 9);
}

int store_member_add(struct store *s, const char *name, const char *email, int64_t plan_id,
                     int64_t valid_from, int64_t valid_until, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_MEMBER_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email ? email : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, plan_id);
    sqlite3_bind_int64(st, 4, valid_from);
    sqlite3_bind_int64(st, 5, valid_until);
    sqlite3_bind_int64(st, 6, now_utc());
    r = store_stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;    /* the only constraint that can fail here is the plan reference */
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_member_get(struct store *s, int64_t id, struct store_member *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_MEMBER_GET);
    int rc;

    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        member_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_member_resolve(struct store *s, const char *ref, int64_t *ret_id)
{
    struct store_member m;
    sqlite3_stmt *st;
    int64_t id, found = 0;
    int rc, n = 0;

    if (parse_int64(ref, 1, INT64_MAX, &id) == 0) {
        int r = store_member_get(s, id, &m);
        if (r == 0)
            *ret_id = id;
        return r;
    }
    st = stmt_get(s, ST_MEMBER_BY_NAME);
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        found = sqlite3_column_int64(st, 0);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(rc);
    if (n == 0)
        return -ENOENT;
    if (n > 1)
        return -ENOTUNIQ;
    *ret_id = found;
    return 0;
}

int store_member_set_status(struct store *s, int64_t id, enum member_status status)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_MEMBER_STATUS);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status == MEMBER_SUSPENDED ? "suspended" : "active", -1,
                      SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return r;
}

static int members_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_member m;

    member_from_row(st, &m);
    return ((store_member_fn)cx->fn)(&m, cx->userdata);
}

int store_members_foreach(struct store *s, store_member_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_MEMBER_LIST);
    return store_rows_each(st, members_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

static int64_t count_of(struct store *s, enum stmt_id id)
{
    sqlite3_stmt *st = stmt_get(s, id);
    int64_t n = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

int64_t store_member_count(struct store *s) { return count_of(s, ST_MEMBER_COUNT); }
int64_t store_card_count(struct store *s) { return count_of(s, ST_CARD_COUNT); }

/* ---- cards ---- */

int store_card_add(struct store *s, int64_t member_id, const uint8_t hash[STORE_HASH_LEN],
                   const char *label, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_CARD_ADD);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_blob(st, 2, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label ? label : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = store_stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;    /* foreign key: no such member */
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_card_remove(struct store *s, int64_t card_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_CARD_REMOVE);
    sqlite3_bind_int64(st, 1, card_id);
    r = store_stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return r;
}

int store_card_find(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t *ret_id)
{
    sqlite3_stmt *st = stmt_get(s, ST_CARD_FIND);
    int rc;

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

static int cards_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_card c;

    c.id = sqlite3_column_int64(st, 0);
    c.member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, c.member, sizeof(c.member));
    store_column_text(st, 3, c.label, sizeof(c.label));
    c.enabled = sqlite3_column_int(st, 4) != 0;
    c.created_at = sqlite3_column_int64(st, 5);
    store_column_text(st, 6, c.hash_prefix, sizeof(c.hash_prefix));
    c.desfire = sqlite3_column_int(st, 7) != 0;
    return ((store_card_fn)cx->fn)(&c, cx->userdata);
}

int store_card_set_desfire(struct store *s, int64_t card_id, bool desfire)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_CARD_SET_DESFIRE);
    sqlite3_bind_int64(st, 1, card_id);
    sqlite3_bind_int(st, 2, desfire);
    r = store_stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = -ENOENT;
    return r;
}

static int uid_only_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_uid_only_card c;

    c.member_id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, c.member, sizeof(c.member));
    c.card_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, c.label, sizeof(c.label));
    c.last_used = sqlite3_column_int64(st, 4);
    return ((store_uid_only_fn)cx->fn)(&c, cx->userdata);
}

int store_uid_only_cards_foreach(struct store *s, store_uid_only_fn fn, void *userdata)
{
    return store_rows_each(stmt_get(s, ST_CARD_UID_ONLY), uid_only_row,
                           &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_cards_foreach(struct store *s, int64_t member_id, store_card_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, member_id ? ST_CARD_LIST_MEMBER : ST_CARD_LIST);

    if (member_id)
        sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, cards_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_subject_lookup(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                         struct store_subject *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_SUBJECT);
    char status[16];
    int rc;

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->card_id = sqlite3_column_int64(st, 0);
        ret->card_enabled = sqlite3_column_int(st, 1) != 0;
        ret->member_id = sqlite3_column_int64(st, 2);
        store_column_text(st, 3, status, sizeof(status));
        ret->status = strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
        ret->valid_from = sqlite3_column_int64(st, 4);
        ret->valid_until = sqlite3_column_int64(st, 5);
        ret->plan_id = sqlite3_column_int64(st, 6);
        store_column_text(st, 7, ret->zones, sizeof(ret->zones));
        store_column_text(st, 8, ret->hours, sizeof(ret->hours));
        ret->card_desfire = sqlite3_column_int(st, 9) != 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

/* ---- resources ---- */

int store_resource_ensure(struct store *s, const char *kind, const char *name, const char *zone,
                          int64_t *ret_id)
{
    sqlite3_stmt *st;
    int rc, r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RESOURCE_UPSERT);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, zone ? zone : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && ret_id)
        *ret_id = sqlite3_column_int64(st, 0);
    r = rc == SQLITE_ROW ? 0 : sqlite_to_errno(sqlite3_extended_errcode(s->db));
    sqlite3_reset(st);
    return r < 0 ? r : 0;
}

/* ---- access events ---- */

/* Keep the outbox within its bound: the oldest message goes (and is counted). */
static int outbox_bound(struct store *s)
{
    if (++s->outbox_count <= s->outbox_max)
        return 0;
    s->outbox_dropped++;
    s->outbox_count--;
    return store_stmt_exec(stmt_get(s, ST_OUTBOX_DROP_OLDEST));
}

/* An access event that could not be written is kept to be written again later. */
static void hold_event(struct store *s, const struct store_event *ev)
{
    if (s->n_held < STORE_HELD_MAX) {
        s->held[s->n_held] = *ev;
        s->held[s->n_held++].id = 0;
    } else {
        s->held_dropped++;
    }
}

int store_event_add(struct store *s, const struct store_event *ev, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0) {
        hold_event(s, ev);
        return r;
    }
    st = stmt_get(s, ST_EVENT_ADD);
    sqlite3_bind_int64(st, 1, ev->at);
    sqlite3_bind_int64(st, 2, ev->resource_id);
    sqlite3_bind_text(st, 3, ev->reader, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ev->member_id);
    sqlite3_bind_int64(st, 5, ev->card_id);
    if (ev->has_card_hash)
        sqlite3_bind_blob(st, 6, ev->card_hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ev->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, ev->granted ? 1 : 0);
    sqlite3_bind_text(st, 9, ev->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, ev->detail, -1, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r < 0) {
        hold_event(s, ev);      /* like the events of a batch that fails */
        return r;
    }
    if (ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    if (s->n_batch_ev < STORE_HELD_MAX) {
        s->batch_ev[s->n_batch_ev] = *ev;
        s->batch_ev[s->n_batch_ev++].id = 0;
    } else {
        s->batch_ev_overflow++;
    }
    if (!s->outbox_on)
        return 0;
    /* Same transaction as the event: both are committed, or neither. */
    {
        int64_t event_id = sqlite3_last_insert_rowid(s->db);
        st = stmt_get(s, ST_OUTBOX_EVENT);
        sqlite3_bind_text(st, 1, ev->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ev->at);
        sqlite3_bind_int64(st, 3, ev->resource_id);
        sqlite3_bind_text(st, 4, ev->reader, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, ev->member_id);
        sqlite3_bind_int(st, 6, ev->granted ? 1 : 0);
        sqlite3_bind_text(st, 7, ev->reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, ev->detail, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, event_id);
        r = store_stmt_exec(st);
        if (r == 0) {
            s->outbox_last = sqlite3_last_insert_rowid(s->db);
            r = outbox_bound(s);
        }
    }
    return r;
}

static int events_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.id = sqlite3_column_int64(st, 0);
    ev.at = sqlite3_column_int64(st, 1);
    ev.resource_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, ev.resource, sizeof(ev.resource));
    store_column_text(st, 4, ev.reader, sizeof(ev.reader));
    ev.member_id = sqlite3_column_int64(st, 5);
    ev.card_id = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, ev.kind, sizeof(ev.kind));
    ev.granted = sqlite3_column_int(st, 8) != 0;
    store_column_text(st, 9, ev.reason, sizeof(ev.reason));
    store_column_text(st, 10, ev.detail, sizeof(ev.detail));
    return ((store_event_fn)cx->fn)(&ev, cx->userdata);
}

int store_events_foreach(struct store *s, int64_t since, int64_t limit, store_event_fn fn,
                         void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_EVENT_LIST);

    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    return store_rows_each(st, events_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* ---- machines ---- */

int store_resource_get(struct store *s, const char *name, struct store_resource *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_RESOURCE_GET);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(ret, 0, sizeof(*ret));
        ret->id = sqlite3_column_int64(st, 0);
        store_column_text(st, 1, ret->kind, sizeof(ret->kind));
        store_column_text(st, 2, ret->name, sizeof(ret->name));
        store_column_text(st, 3, ret->zone, sizeof(ret->zone));
        ret->out_of_order = sqlite3_column_int(st, 4) != 0;
        store_column_text(st, 5, ret->out_of_order_reason, sizeof(ret->out_of_order_reason));
        ret->training_id = sqlite3_column_int64(st, 6);
        store_column_text(st, 7, ret->training, sizeof(ret->training));
        ret->slot_minutes = sqlite3_column_int64(st, 8);
        ret->min_minutes = sqlite3_column_int64(st, 9);
        ret->max_minutes = sqlite3_column_int64(st, 10);
        ret->window_days = sqlite3_column_int64(st, 11);
        ret->quota_day_minutes = sqlite3_column_int64(st, 12);
        ret->quota_week_minutes = sqlite3_column_int64(st, 13);
        ret->cancel_deadline_minutes = sqlite3_column_int64(st, 14);
        store_column_text(st, 15, ret->hours, sizeof(ret->hours));
        ret->booking_required = sqlite3_column_int(st, 16) != 0;
        ret->walkup_free_minutes = sqlite3_column_int64(st, 17);
        ret->has_rules = sqlite3_column_int(st, 18) != 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

static int resources_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    char name[32];

    store_column_text(st, 0, name, sizeof(name));
    return ((store_name_fn)cx->fn)(name, cx->userdata);
}

int store_resources_foreach(struct store *s, const char *kind, store_name_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_RESOURCE_LIST);

    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    return store_rows_each(st, resources_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* Run a write statement whose parameters are already bound: joins the batch, maps errors,
 * and reports -ENOENT when nothing changed. */
static int write_changed(struct store *s, sqlite3_stmt *st)
{
    int r = store_stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        return -ENOENT;
    return r;
}

int store_resource_set_out_of_order(struct store *s, int64_t id, bool on, const char *reason)
{
    s->generation++;     /* what the web page shows may have changed */
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RESOURCE_OOO);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, on ? 1 : 0);
    sqlite3_bind_text(st, 3, on && reason ? reason : "", -1, SQLITE_STATIC);
    return write_changed(s, st);
}

int store_machine_rules_put(struct store *s, const struct store_resource *m)
{
    s->generation++;     /* what the web page shows may have changed */
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RULES_PUT);
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_int64(st, 2, m->training_id);
    sqlite3_bind_int64(st, 3, m->slot_minutes);
    sqlite3_bind_int64(st, 4, m->min_minutes);
    sqlite3_bind_int64(st, 5, m->max_minutes);
    sqlite3_bind_int64(st, 6, m->window_days);
    sqlite3_bind_int64(st, 7, m->quota_day_minutes);
    sqlite3_bind_int64(st, 8, m->quota_week_minutes);
    sqlite3_bind_int64(st, 9, m->cancel_deadline_minutes);
    sqlite3_bind_text(st, 10, m->hours, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 11, m->booking_required ? 1 : 0);
    sqlite3_bind_int64(st, 12, m->walkup_free_minutes);
    return store_stmt_exec(st);
}

int store_training_add(struct store *s, const char *name, const char *description, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_TRAINING_ADD);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, description ? description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_utc());
    r = store_stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

static int find_id(struct store *s, enum stmt_id id, const char *name, int64_t *ret_id)
{
    sqlite3_stmt *st = stmt_get(s, id);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_training_find(struct store *s, const char *name, int64_t *ret_id)
{
    return find_id(s, ST_TRAINING_FIND, name, ret_id);
}

static int trainings_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_training t;

    t.id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, t.name, sizeof(t.name));
    store_column_text(st, 2, t.description, sizeof(t.description));
    t.qualified_members = sqlite3_column_int64(st, 3);
    return ((store_training_fn)cx->fn)(&t, cx->userdata);
}

int store_trainings_foreach(struct store *s, int64_t now, store_training_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_TRAINING_LIST);

    sqlite3_bind_int64(st, 1, now);
    return store_rows_each(st, trainings_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_qualification_grant(struct store *s, int64_t member_id, int64_t training_id,
                              const char *by, int64_t expires_at, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_QUAL_GRANT);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, expires_at);
    r = store_stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_qualification_revoke(struct store *s, int64_t member_id, int64_t training_id,
                               const char *by)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_QUAL_REVOKE);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    sqlite3_bind_int64(st, 3, now_utc());
    sqlite3_bind_text(st, 4, by, -1, SQLITE_STATIC);
    return write_changed(s, st);
}

int store_qualification_best(struct store *s, int64_t member_id, int64_t training_id,
                             int64_t *ret_expires_at)
{
    sqlite3_stmt *st = stmt_get(s, ST_QUAL_BEST);
    int rc;

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, training_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_expires_at = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

static int qualifications_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_qualification q;

    q.id = sqlite3_column_int64(st, 0);
    q.member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, q.training, sizeof(q.training));
    q.granted_at = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, q.granted_by, sizeof(q.granted_by));
    q.expires_at = sqlite3_column_int64(st, 5);
    q.revoked_at = sqlite3_column_int64(st, 6);
    return ((store_qualification_fn)cx->fn)(&q, cx->userdata);
}

int store_qualifications_foreach(struct store *s, int64_t member_id, store_qualification_fn fn,
                                 void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_QUAL_LIST);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, qualifications_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* ---- bookings ---- */

static void booking_from_row(sqlite3_stmt *st, struct store_booking *b)
{
    b->id = sqlite3_column_int64(st, 0);
    b->resource_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, b->resource, sizeof(b->resource));
    b->member_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, b->member, sizeof(b->member));
    b->start = sqlite3_column_int64(st, 5);
    b->end = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, b->created_by, sizeof(b->created_by));
    b->cancelled_at = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, b->cancelled_by, sizeof(b->cancelled_by));
    b->cancel_override = sqlite3_column_int(st, 10) != 0;
}

int store_booking_add(struct store *s, int64_t resource_id, int64_t member_id, int64_t start,
                      int64_t end, const char *by, int64_t *ret_id)
{
    s->generation++;     /* what the web page shows may have changed */
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_BOOKING_ADD);
    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, member_id);
    sqlite3_bind_int64(st, 3, start);
    sqlite3_bind_int64(st, 4, end);
    sqlite3_bind_int64(st, 5, now_utc());
    sqlite3_bind_text(st, 6, by, -1, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_booking_get(struct store *s, int64_t id, struct store_booking *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_BOOKING_GET);
    int rc;

    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        booking_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_booking_cancel(struct store *s, int64_t id, int64_t at, const char *by, bool override,
                         int64_t moved_to)
{
    s->generation++;     /* what the web page shows may have changed */
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_BOOKING_CANCEL);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, override ? 1 : 0);
    sqlite3_bind_int64(st, 5, moved_to);
    return write_changed(s, st);
}

int store_bookings_overlapping(struct store *s, int64_t resource_id, int64_t start, int64_t end,
                               int64_t exclude_id, struct booking_ref *out, size_t n)
{
    sqlite3_stmt *st = stmt_get(s, ST_BOOKING_OVERLAP);
    size_t count = 0;
    int rc;

    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, start);
    sqlite3_bind_int64(st, 3, end);
    sqlite3_bind_int64(st, 4, exclude_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < n) {
        out[count].id = sqlite3_column_int64(st, 0);
        out[count].member_id = sqlite3_column_int64(st, 1);
        store_column_text(st, 2, out[count].member, sizeof(out[count].member));
        out[count].start = sqlite3_column_int64(st, 3);
        out[count].end = sqlite3_column_int64(st, 4);
        count++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? (int)count : sqlite_to_errno(rc);
}

int64_t store_booked_minutes(struct store *s, int64_t member_id, int64_t resource_id,
                             int64_t from, int64_t to, int64_t exclude_id)
{
    sqlite3_stmt *st = stmt_get(s, ST_BOOKING_MINUTES);
    int64_t minutes = 0;
    int rc;

    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, resource_id);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to);
    sqlite3_bind_int64(st, 5, exclude_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        minutes = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? minutes : sqlite_to_errno(rc);
}

int store_bookings_upcoming(struct store *s, int64_t resource_id, int64_t now, int64_t until,
                            struct policy_booking *out, size_t n)
{
    sqlite3_stmt *st = stmt_get(s, ST_BOOKING_UPCOMING);
    size_t count = 0;
    int rc;

    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, until);
    sqlite3_bind_int64(st, 4, (int64_t)n);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && count < n) {
        out[count].id = sqlite3_column_int64(st, 0);
        out[count].member_id = sqlite3_column_int64(st, 1);
        out[count].start = sqlite3_column_int64(st, 2);
        out[count].end = sqlite3_column_int64(st, 3);
        count++;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? (int)count : sqlite_to_errno(rc);
}

static int bookings_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_booking b;

    booking_from_row(st, &b);
    return ((store_booking_fn)cx->fn)(&b, cx->userdata);
}

int store_bookings_foreach(struct store *s, const struct store_booking_filter *f,
                           store_booking_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_BOOKING_LIST);

    sqlite3_bind_int64(st, 1, f->resource_id);
    sqlite3_bind_int64(st, 2, f->member_id);
    sqlite3_bind_int64(st, 3, f->from);
    sqlite3_bind_int64(st, 4, f->to ? f->to : INT64_MAX);
    sqlite3_bind_int(st, 5, f->include_cancelled ? 1 : 0);
    sqlite3_bind_int64(st, 6, f->limit > 0 ? f->limit : -1);
    return store_rows_each(st, bookings_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* ---- machine sessions ---- */

int store_session_open(struct store *s, int64_t resource_id, int64_t member_id,
                       int64_t booking_id, int64_t at, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_SESSION_OPEN);
    sqlite3_bind_int64(st, 1, resource_id);
    sqlite3_bind_int64(st, 2, member_id);
    sqlite3_bind_int64(st, 3, booking_id);
    sqlite3_bind_int64(st, 4, at);
    r = store_stmt_exec(st);
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_session_touch(struct store *s, int64_t id, int64_t at, int64_t running_seconds)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_SESSION_TOUCH);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, running_seconds);
    return write_changed(s, st);
}

int store_session_close(struct store *s, int64_t id, int64_t at, int64_t running_seconds,
                        const char *reason)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_SESSION_CLOSE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, running_seconds);
    sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
    return write_changed(s, st);
}

int store_sessions_close_interrupted(struct store *s)
{
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    r = store_stmt_exec(stmt_get(s, ST_SESSION_INTERRUPTED));
    return r < 0 ? r : sqlite3_changes(s->db);
}

static int sessions_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_session ss;

    ss.id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, ss.resource, sizeof(ss.resource));
    ss.member_id = sqlite3_column_int64(st, 2);
    ss.booking_id = sqlite3_column_int64(st, 3);
    ss.started_at = sqlite3_column_int64(st, 4);
    ss.ended_at = sqlite3_column_int64(st, 5);
    ss.last_seen_at = sqlite3_column_int64(st, 6);
    ss.running_seconds = sqlite3_column_int64(st, 7);
    store_column_text(st, 8, ss.end_reason, sizeof(ss.end_reason));
    return ((store_session_fn)cx->fn)(&ss, cx->userdata);
}

int store_sessions_foreach(struct store *s, int64_t since, store_session_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_SESSION_LIST);

    sqlite3_bind_int64(st, 1, since);
    return store_rows_each(st, sessions_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

/* ---- metering ---- */

int store_sessions_foreach_open(struct store *s, store_session_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_SESSION_OPEN_LIST);
    struct store_session ss[64];
    int rc, n = 0, r = 0;

    /* Collect first: the callback closes sessions, which must not run under this cursor. */
    while (n < 64 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ss[n].id = sqlite3_column_int64(st, 0);
        store_column_text(st, 1, ss[n].resource, sizeof(ss[n].resource));
        ss[n].member_id = sqlite3_column_int64(st, 2);
        ss[n].booking_id = sqlite3_column_int64(st, 3);
        ss[n].started_at = sqlite3_column_int64(st, 4);
        ss[n].ended_at = sqlite3_column_int64(st, 5);
        ss[n].last_seen_at = sqlite3_column_int64(st, 6);
        ss[n].running_seconds = sqlite3_column_int64(st, 7);
        store_column_text(st, 8, ss[n].end_reason, sizeof(ss[n].end_reason));
        n++;
    }
    sqlite3_reset(st);
    for (int i = 0; i < n && r >= 0; i++)
        r = fn(&ss[i], userdata);
    return r < 0 ? r : n;
}

int store_member_plan(struct store *s, int64_t member_id, struct store_member_plan *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_OF_MEMBER);
    int rc;

    sqlite3_bind_int64(st, 1, member_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->plan_id = sqlite3_column_int64(st, 0);
        store_column_text(st, 1, ret->name, sizeof(ret->name));
        ret->monthly_days = sqlite3_column_int64(st, 2);
        ret->day_rate_cents = sqlite3_column_int64(st, 3);
        store_column_text(st, 4, ret->allowance_order, sizeof(ret->allowance_order));
        ret->visit_days = sqlite3_column_int64(st, 5);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_plan_set_billing(struct store *s, int64_t plan_id, int64_t monthly_days,
                           int64_t day_rate_cents, const char *order, int64_t visit_days)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PLAN_SET);
    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_int64(st, 2, monthly_days);
    sqlite3_bind_int64(st, 3, day_rate_cents);
    sqlite3_bind_text(st, 4, order, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, visit_days);
    return write_changed(s, st);
}

int store_rate_find(struct store *s, int64_t plan_id, const char *resource, const char *category,
                    struct store_rate *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_RATE_FIND);
    int rc;

    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, category, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->monthly_minutes = sqlite3_column_int64(st, 0);
        ret->per_hour_cents = sqlite3_column_int64(st, 1);
        ret->block_minutes = sqlite3_column_int64(st, 2);
        ret->min_charge_cents = sqlite3_column_int64(st, 3);
        ret->free_minutes = sqlite3_column_int64(st, 4);
        store_column_text(st, 5, ret->target, sizeof(ret->target));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_rate_put(struct store *s, int64_t plan_id, const struct store_rate *rate)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RATE_PUT);
    sqlite3_bind_int64(st, 1, plan_id);
    sqlite3_bind_text(st, 2, rate->target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rate->monthly_minutes);
    sqlite3_bind_int64(st, 4, rate->per_hour_cents);
    sqlite3_bind_int64(st, 5, rate->block_minutes);
    sqlite3_bind_int64(st, 6, rate->min_charge_cents);
    sqlite3_bind_int64(st, 7, rate->free_minutes);
    return store_stmt_exec(st);
}

static int rates_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_rate rate;
    char plan[32];

    store_column_text(st, 0, plan, sizeof(plan));
    store_column_text(st, 1, rate.target, sizeof(rate.target));
    rate.monthly_minutes = sqlite3_column_int64(st, 2);
    rate.per_hour_cents = sqlite3_column_int64(st, 3);
    rate.block_minutes = sqlite3_column_int64(st, 4);
    rate.min_charge_cents = sqlite3_column_int64(st, 5);
    rate.free_minutes = sqlite3_column_int64(st, 6);
    return ((store_rate_fn)cx->fn)(plan, &rate, cx->userdata);
}

int store_rates_foreach(struct store *s, store_rate_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_RATE_LIST);
    return store_rows_each(st, rates_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_pass_add(struct store *s, const struct store_pass *p, const char *by, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PASS_ADD);
    sqlite3_bind_int64(st, 1, p->member_id);
    sqlite3_bind_text(st, 2, p->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->quantity);
    sqlite3_bind_int64(st, 5, p->valid_from);
    sqlite3_bind_int64(st, 6, p->valid_until);
    sqlite3_bind_int64(st, 7, p->price_cents);
    sqlite3_bind_int64(st, 8, now_utc());
    sqlite3_bind_text(st, 9, by, -1, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r == -EINVAL)
        r = -ENOENT;
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

int store_pass_take(struct store *s, int64_t member_id, const char *kind, const char *resource,
                    const char *category, int64_t at, int64_t wanted, int64_t *ret_taken)
{
    int64_t taken = 0;

    *ret_taken = 0;
    /* Several passes may be needed: the one expiring first is used up first. */
    while (taken < wanted) {
        sqlite3_stmt *st = stmt_get(s, ST_PASS_FIND);
        int64_t id = 0, remaining = 0, use;
        int rc, r;
        sqlite3_bind_int64(st, 1, member_id);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at);
        sqlite3_bind_text(st, 4, resource, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, category, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            id = sqlite3_column_int64(st, 0);
            remaining = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            break;
        use = remaining < wanted - taken ? remaining : wanted - taken;
        r = store_batch_ensure(s);
        if (r < 0)
            return r;
        st = stmt_get(s, ST_PASS_USE);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, use);
        r = write_changed(s, st);
        if (r < 0)
            return r;
        taken += use;
    }
    *ret_taken = taken;
    return 0;
}

static int passes_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_pass p;

    p.id = sqlite3_column_int64(st, 0);
    p.member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, p.kind, sizeof(p.kind));
    store_column_text(st, 3, p.target, sizeof(p.target));
    p.quantity = sqlite3_column_int64(st, 4);
    p.remaining = sqlite3_column_int64(st, 5);
    p.valid_from = sqlite3_column_int64(st, 6);
    p.valid_until = sqlite3_column_int64(st, 7);
    p.price_cents = sqlite3_column_int64(st, 8);
    return ((store_pass_fn)cx->fn)(&p, cx->userdata);
}

int store_passes_foreach(struct store *s, int64_t member_id, store_pass_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_PASS_LIST);

    sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, passes_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

static int64_t scalar(struct store *s, sqlite3_stmt *st)
{
    int64_t v = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

int64_t store_plan_days_used(struct store *s, int64_t member_id, const char *first_day,
                             const char *last_day)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_DAYS_USED);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, last_day, -1, SQLITE_STATIC);
    return scalar(s, st);
}

int64_t store_plan_minutes_used(struct store *s, int64_t member_id, const char *resource,
                                const char *first_day, const char *last_day)
{
    sqlite3_stmt *st = stmt_get(s, ST_PLAN_MINUTES_USED);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, last_day, -1, SQLITE_STATIC);
    return scalar(s, st);
}

bool store_day_charged(struct store *s, int64_t member_id, const char *billing_day)
{
    sqlite3_stmt *st = stmt_get(s, ST_DAY_CHARGED);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_text(st, 2, billing_day, -1, SQLITE_STATIC);
    return scalar(s, st) > 0;
}

int store_usage_add(struct store *s, const struct store_usage *u, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_USAGE_ADD);
    sqlite3_bind_text(st, 1, u->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, u->member_id);
    sqlite3_bind_text(st, 3, u->resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, u->billing_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, u->started_at);
    sqlite3_bind_int64(st, 6, u->ended_at);
    sqlite3_bind_int64(st, 7, u->quantity);
    sqlite3_bind_text(st, 8, u->unit, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, u->running_seconds);
    sqlite3_bind_text(st, 10, u->allowance, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, u->pass_quantity);
    sqlite3_bind_int64(st, 12, u->plan_quantity);
    sqlite3_bind_int64(st, 13, u->charged_quantity);
    sqlite3_bind_int64(st, 14, u->amount_cents);
    sqlite3_bind_text(st, 15, u->end_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 16, u->corrects_seq);
    sqlite3_bind_text(st, 17, u->note, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 18, u->ledger_seq);
    sqlite3_bind_int64(st, 19, u->recorded_at);
    r = store_stmt_exec(st);
    if (r == -EINVAL)
        r = -EPERM;     /* the trigger of a closed period */
    if (r == 0 && ret_id)
        *ret_id = sqlite3_last_insert_rowid(s->db);
    return r;
}

static void usage_from_row(sqlite3_stmt *st, struct store_usage *u)
{
    u->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, u->kind, sizeof(u->kind));
    u->member_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, u->member, sizeof(u->member));
    store_column_text(st, 4, u->resource, sizeof(u->resource));
    store_column_text(st, 5, u->billing_day, sizeof(u->billing_day));
    u->started_at = sqlite3_column_int64(st, 6);
    u->ended_at = sqlite3_column_int64(st, 7);
    u->quantity = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, u->unit, sizeof(u->unit));
    u->running_seconds = sqlite3_column_int64(st, 10);
    store_column_text(st, 11, u->allowance, sizeof(u->allowance));
    u->pass_quantity = sqlite3_column_int64(st, 12);
    u->plan_quantity = sqlite3_column_int64(st, 13);
    u->charged_quantity = sqlite3_column_int64(st, 14);
    u->amount_cents = sqlite3_column_int64(st, 15);
    store_column_text(st, 16, u->end_reason, sizeof(u->end_reason));
    u->corrects_seq = sqlite3_column_int64(st, 17);
    store_column_text(st, 18, u->note, sizeof(u->note));
    u->ledger_seq = sqlite3_column_int64(st, 19);
}

static int usage_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_usage u;

    usage_from_row(st, &u);
    return ((store_usage_fn)cx->fn)(&u, cx->userdata);
}

int store_usage_foreach(struct store *s, const char *first_day, const char *last_day,
                        int64_t member_id, store_usage_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_USAGE_RANGE);

    sqlite3_bind_text(st, 1, first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, member_id);
    return store_rows_each(st, usage_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_usage_by_seq(struct store *s, int64_t seq, struct store_usage *ret)
{
    sqlite3_stmt *st = stmt_get(s, ST_USAGE_GET);
    int rc;

    sqlite3_bind_int64(st, 1, seq);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        usage_from_row(st, ret);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_ledger_head(struct store *s, int64_t *ret_seq, uint8_t hash[32], uint8_t sig[64])
{
    sqlite3_stmt *st = stmt_get(s, ST_LEDGER_HEAD);
    int rc = sqlite3_step(st);

    *ret_seq = 0;
    memset(hash, 0, 32);
    memset(sig, 0, 64);
    if (rc == SQLITE_ROW) {
        *ret_seq = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == 32)
            memcpy(hash, sqlite3_column_blob(st, 1), 32);
        if (sqlite3_column_bytes(st, 2) == 64)
            memcpy(sig, sqlite3_column_blob(st, 2), 64);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int store_ledger_append(struct store *s, const struct ledger_entry *e,
                        const uint8_t head_sig[LEDGER_SIG_LEN])
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_LEDGER_ADD);
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_text(st, 2, e->site, -1, SQLITE_STATIC);
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
    sqlite3_bind_text(st, 18, e->home, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 19, e->visitor, -1, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r < 0)
        return r;
    st = stmt_get(s, ST_LEDGER_HEAD_PUT);
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_blob(st, 2, e->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, head_sig, LEDGER_SIG_LEN, SQLITE_STATIC);
    r = store_stmt_exec(st);
    if (r == 0 && e->seq > s->ledger_last)
        s->ledger_last = e->seq;
    return r;
}

static void ledger_from_row(sqlite3_stmt *st, struct ledger_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->seq = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, e->site, sizeof(e->site));
    e->usage_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, e->kind, sizeof(e->kind));
    e->member_id = sqlite3_column_int64(st, 4);
    store_column_text(st, 5, e->resource, sizeof(e->resource));
    e->started_at = sqlite3_column_int64(st, 6);
    e->ended_at = sqlite3_column_int64(st, 7);
    e->quantity = sqlite3_column_int64(st, 8);
    store_column_text(st, 9, e->unit, sizeof(e->unit));
    e->amount_cents = sqlite3_column_int64(st, 10);
    store_column_text(st, 11, e->allowance, sizeof(e->allowance));
    e->corrects_seq = sqlite3_column_int64(st, 12);
    e->recorded_at = sqlite3_column_int64(st, 13);
    /* A blob of the wrong size is copied as far as it goes: the verifier then reports it. */
    if (sqlite3_column_bytes(st, 14) == LEDGER_HASH_LEN)
        memcpy(e->prev_hash, sqlite3_column_blob(st, 14), LEDGER_HASH_LEN);
    else
        memset(e->prev_hash, 0xff, LEDGER_HASH_LEN);
    if (sqlite3_column_bytes(st, 15) == LEDGER_HASH_LEN)
        memcpy(e->hash, sqlite3_column_blob(st, 15), LEDGER_HASH_LEN);
    if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
        e->has_signature = true;
        if (sqlite3_column_bytes(st, 16) == LEDGER_SIG_LEN)
            memcpy(e->signature, sqlite3_column_blob(st, 16), LEDGER_SIG_LEN);
    }
    store_column_text(st, 17, e->home, sizeof(e->home));
    store_column_text(st, 18, e->visitor, sizeof(e->visitor));
}

static int ledger_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct ledger_entry e;

    ledger_from_row(st, &e);
    return ((store_ledger_fn)cx->fn)(&e, cx->userdata);
}

int store_ledger_foreach(struct store *s, int64_t from_seq, store_ledger_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_LEDGER_LIST);

    sqlite3_bind_int64(st, 1, from_seq);
    return store_rows_each(st, ledger_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_presence_open(struct store *s, int64_t member_id, int64_t resource_id, int64_t at)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PRESENCE_OPEN);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_int64(st, 2, resource_id);
    sqlite3_bind_int64(st, 3, at);
    return store_stmt_exec(st);
}

int store_presence_find(struct store *s, int64_t member_id, int64_t *ret_id, int64_t *ret_in)
{
    sqlite3_stmt *st = stmt_get(s, ST_PRESENCE_FIND);
    int rc;

    sqlite3_bind_int64(st, 1, member_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret_id = sqlite3_column_int64(st, 0);
        *ret_in = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_presence_close(struct store *s, int64_t id, int64_t at, const char *reason)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PRESENCE_CLOSE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    return write_changed(s, st);
}

int store_presence_foreach(struct store *s, store_presence_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_PRESENCE_LIST);
    struct { int64_t id, member_id, in; char name[96]; } rows[256];
    int rc, n = 0, r = 0;

    /* Collected first: callers close sessions as they go. */
    while (n < 256 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rows[n].id = sqlite3_column_int64(st, 0);
        rows[n].member_id = sqlite3_column_int64(st, 1);
        store_column_text(st, 2, rows[n].name, sizeof(rows[n].name));
        rows[n].in = sqlite3_column_int64(st, 3);
        n++;
    }
    sqlite3_reset(st);
    for (int i = 0; i < n && r >= 0; i++)
        r = fn(rows[i].id, rows[i].member_id, rows[i].name, rows[i].in, userdata);
    return r < 0 ? r : n;
}

int store_period_add(struct store *s, const struct store_period *p)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_PERIOD_ADD);
    sqlite3_bind_text(st, 1, p->period, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->first_day, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->last_day, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, p->closed_at);
    sqlite3_bind_int64(st, 5, p->last_seq);
    sqlite3_bind_blob(st, 6, p->last_hash, LEDGER_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, p->totals, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, p->archive, -1, SQLITE_STATIC);
    if (p->has_archive_sha256)
        sqlite3_bind_blob(st, 9, p->archive_sha256, sizeof(p->archive_sha256), SQLITE_STATIC);
    return store_stmt_exec(st);
}

static int periods_row(sqlite3_stmt *st, void *ctx)
{
    struct row_ctx *cx = ctx;
    struct store_period p;

    memset(&p, 0, sizeof(p));
    store_column_text(st, 0, p.period, sizeof(p.period));
    store_column_text(st, 1, p.first_day, sizeof(p.first_day));
    store_column_text(st, 2, p.last_day, sizeof(p.last_day));
    p.closed_at = sqlite3_column_int64(st, 3);
    p.last_seq = sqlite3_column_int64(st, 4);
    store_column_text(st, 5, p.totals, sizeof(p.totals));
    store_column_text(st, 6, p.archive, sizeof(p.archive));
    if (sqlite3_column_bytes(st, 7) == LEDGER_HASH_LEN)
        memcpy(p.last_hash, sqlite3_column_blob(st, 7), LEDGER_HASH_LEN);
    p.has_archive_sha256 = sqlite3_column_bytes(st, 8) == sizeof(p.archive_sha256);
    if (p.has_archive_sha256)
        memcpy(p.archive_sha256, sqlite3_column_blob(st, 8), sizeof(p.archive_sha256));
    return ((store_period_fn)cx->fn)(&p, cx->userdata);
}

int store_periods_foreach(struct store *s, store_period_fn fn, void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_PERIOD_LIST);
    return store_rows_each(st, periods_row, &(struct row_ctx){ (row_cb)fn, userdata });
}

int store_resource_category(struct store *s, const char *name, char *buf, size_t n)
{
    sqlite3_stmt *st = stmt_get(s, ST_RESOURCE_CATEGORY);
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    buf[0] = '\0';
    if (rc == SQLITE_ROW)
        store_column_text(st, 0, buf, n);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
}

int store_resource_set_category(struct store *s, int64_t id, const char *category)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_RESOURCE_SET_CATEGORY);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, category, -1, SQLITE_STATIC);
    return write_changed(s, st);
}

/* ---- MQTT outbox ---- */

int store_outbox_enable(struct store *s, bool on, int64_t max)
{
    int r = 0;

    s->outbox_on = on;
    s->outbox_max = max > 0 ? max : INT64_MAX;
    s->outbox_count = count_of(s, ST_OUTBOX_COUNT);
    if (s->outbox_count < 0)
        return (int)s->outbox_count;
    /* A smaller outbox_max than before applies to what is already queued. */
    while (r == 0 && s->outbox_count > s->outbox_max) {
        r = store_batch_ensure(s);
        if (r == 0)
            r = store_stmt_exec(stmt_get(s, ST_OUTBOX_DROP_OLDEST));
        s->outbox_count--;
        s->outbox_dropped++;
    }
    return r;
}

int store_outbox_add(struct store *s, const char *kind, const char *payload)
{
    sqlite3_stmt *st;
    int r;

    if (!s->outbox_on)
        return 0;
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = stmt_get(s, ST_OUTBOX_ADD);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_utc());
    r = store_stmt_exec(st);
    if (r < 0)
        return r;
    s->outbox_last = sqlite3_last_insert_rowid(s->db);
    return outbox_bound(s);
}

int store_outbox_fetch(struct store *s, int64_t after_seq, int n, store_outbox_fn fn,
                       void *userdata)
{
    sqlite3_stmt *st = stmt_get(s, ST_OUTBOX_FETCH);
    int rc, count = 0, r = 0;

    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int(st, 2, n);
    sqlite3_bind_int64(st, 3, s->durable.outbox_seq);   /* only what is on disk leaves */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        const char *payload = (const char *)sqlite3_column_text(st, 2);
        count++;
        r = fn(sqlite3_column_int64(st, 0), kind ? kind : "", payload ? payload : "{}", userdata);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r < 0)
        return r;
    return rc == SQLITE_DONE ? count : sqlite_to_errno(rc);
}

int store_outbox_delete(struct store *s, int64_t seq)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = stmt_get(s, ST_OUTBOX_DELETE);
    sqlite3_bind_int64(st, 1, seq);
    r = store_stmt_exec(st);
    if (r == 0 && sqlite3_changes(s->db) > 0 && s->outbox_count > 0)
        s->outbox_count--;
    return r;
}

int64_t store_outbox_count(struct store *s) { return s->outbox_count; }
uint64_t store_outbox_dropped(struct store *s) { return s->outbox_dropped; }

/* ---- steps: a group of writes inside the batch that succeeds or leaves no trace ---- */

int store_step_begin(struct store *s)
{
    int r = store_batch_ensure(s);
    return r < 0 ? r : store_stmt_exec(stmt_get(s, ST_SAVEPOINT));
}

int store_step_end(struct store *s, bool keep)
{
    if (!keep) {
        int r = store_stmt_exec(stmt_get(s, ST_ROLLBACK_TO));
        if (r < 0)
            return r;
    }
    return store_stmt_exec(stmt_get(s, ST_RELEASE));
}

int store_site_id(struct store *s, const char *site)
{
    sqlite3_stmt *st = stmt_get(s, ST_SITE_ID_GET);
    char stored[64] = "";
    int rc = sqlite3_step(st), r;

    if (rc == SQLITE_ROW)
        store_column_text(st, 0, stored, sizeof(stored));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return strcmp(stored, site) == 0 ? 0 : -EXDEV;
    if (rc != SQLITE_DONE)
        return sqlite_to_errno(rc);
    r = store_batch_ensure(s);
    if (r < 0)
        return r;
    st = stmt_get(s, ST_SECRET_PUT);
    sqlite3_bind_text(st, 1, "site_id", -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, site, (int)strlen(site), SQLITE_STATIC);
    return store_stmt_exec(st);
}

int store_path(struct store *s, char *buf, size_t n)
{
    const char *path = sqlite3_db_filename(s->db, "main");
    if (!path || !*path || strlen(path) >= n)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    return 0;
}

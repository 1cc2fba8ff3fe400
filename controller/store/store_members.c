/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_members: plans, members, their cards, and the subject of a card (what the policy
 * needs about whoever holds it, in one query). */
#include <errno.h>
#include <string.h>

#include "store_internal.h"
#include "util.h"

/* ---- plans ---- */

#define PLAN_COLUMNS \
    "id, name, zones, hours, (SELECT count(*) FROM members m WHERE m.plan_id = plans.id) "

static const char sql_plan_add[] =
    "INSERT INTO plans (name, zones, hours, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char sql_plan_find[] = "SELECT " PLAN_COLUMNS "FROM plans WHERE name = ?1";
static const char sql_plan_list[] = "SELECT " PLAN_COLUMNS "FROM plans ORDER BY name";

static void plan_fill(sqlite3_stmt *st, void *ret)
{
    struct store_plan *p = ret;

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
    st = store_stmt(s, sql_plan_add);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zones, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hours, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    return store_write_insert(s, st, ret_id);
}

int store_plan_find(struct store *s, const char *name, struct store_plan *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_plan_find);

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return store_row_get(st, plan_fill, ret);
}

STORE_ROWS_DELIVER(plans_row, struct store_plan, plan_fill)

int store_plans_foreach(struct store *s, store_plan_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_plan_list), plans_row, STORE_ROWS(fn, userdata));
}

/* ---- members ---- */

#define MEMBER_COLUMNS \
    "m.id, m.name, m.email, coalesce(m.plan_id, 0), coalesce(p.name, ''), m.status, " \
    "m.valid_from, m.valid_until, m.created_at, " \
    "(SELECT count(*) FROM cards c WHERE c.member_id = m.id), m.note, m.removed_at, " \
    "m.erased_at, coalesce(m.next_plan_id, 0), " \
    "coalesce((SELECT name FROM plans np WHERE np.id = m.next_plan_id), ''), m.next_plan_at "
#define MEMBER_FROM "FROM members m LEFT JOIN plans p ON p.id = m.plan_id "

static const char sql_member_add[] =
    "INSERT INTO members (name, email, plan_id, valid_from, valid_until, created_at) "
    "VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6)";
static const char sql_member_get[] = "SELECT " MEMBER_COLUMNS MEMBER_FROM "WHERE m.id = ?1";
static const char sql_member_by_name[] = "SELECT id FROM members WHERE name = ?1 LIMIT 2";
static const char sql_member_status[] = "UPDATE members SET status = ?2 WHERE id = ?1";
static const char sql_member_update[] =
    "UPDATE members SET name = ?2, email = ?3, note = ?4, plan_id = nullif(?5, 0), "
    "valid_from = ?6, valid_until = ?7, next_plan_id = nullif(?8, 0), next_plan_at = ?9 "
    "WHERE id = ?1";
static const char sql_member_list[] = "SELECT " MEMBER_COLUMNS MEMBER_FROM "ORDER BY m.id";
/* The filters of store_members_query(), in SQL: ?2 the filter, ?3 now, ?4 the horizon of
 * "expiring". "Active" is what store_member_state() calls active. */
#define MEMBER_ACTIVE_SQL \
    "(m.erased_at = 0 AND m.removed_at = 0 AND m.status = 'active' " \
    "AND (m.valid_until = 0 OR m.valid_until > ?3) AND (m.valid_from = 0 OR m.valid_from <= ?3))"
#define MEMBER_QUERY_WHERE \
    "WHERE (?1 = '' OR m.name LIKE ?1 ESCAPE '\\' OR m.email LIKE ?1 ESCAPE '\\' OR EXISTS " \
    "(SELECT 1 FROM cards c WHERE c.member_id = m.id AND c.label LIKE ?1 ESCAPE '\\')) AND " \
    "CASE ?2 WHEN 0 THEN 1 " \
    "WHEN 1 THEN " MEMBER_ACTIVE_SQL " " \
    "WHEN 2 THEN m.erased_at = 0 AND m.removed_at = 0 AND m.status = 'suspended' " \
    "WHEN 3 THEN m.erased_at = 0 AND m.removed_at = 0 AND m.status = 'active' " \
    "  AND m.valid_until != 0 AND m.valid_until <= ?3 " \
    "WHEN 4 THEN " MEMBER_ACTIVE_SQL " AND m.valid_until != 0 AND m.valid_until <= ?4 " \
    "WHEN 5 THEN m.removed_at != 0 AND m.erased_at = 0 " \
    "WHEN 6 THEN m.erased_at != 0 " \
    "ELSE 0 END "
static const char sql_member_query[] =
    "SELECT " MEMBER_COLUMNS MEMBER_FROM MEMBER_QUERY_WHERE
    "ORDER BY m.name COLLATE NOCASE, m.id LIMIT ?5 OFFSET ?6";
static const char sql_member_query_count[] =
    "SELECT count(*) FROM members m " MEMBER_QUERY_WHERE;
static const char sql_member_count[] = "SELECT count(*) FROM members";

static enum member_status status_of(sqlite3_stmt *st, int col)
{
    char status[16];

    store_column_text(st, col, status, sizeof(status));
    return strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
}

static void member_fill(sqlite3_stmt *st, void *ret)
{
    struct store_member *m = ret;

    m->id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, m->name, sizeof(m->name));
    store_column_text(st, 2, m->email, sizeof(m->email));
    m->plan_id = sqlite3_column_int64(st, 3);
    store_column_text(st, 4, m->plan, sizeof(m->plan));
    m->status = status_of(st, 5);
    m->valid_from = sqlite3_column_int64(st, 6);
    m->valid_until = sqlite3_column_int64(st, 7);
    m->created_at = sqlite3_column_int64(st, 8);
    m->cards = sqlite3_column_int64(st, 9);
    store_column_text(st, 10, m->note, sizeof(m->note));
    m->removed_at = sqlite3_column_int64(st, 11);
    m->erased_at = sqlite3_column_int64(st, 12);
    m->next_plan_id = sqlite3_column_int64(st, 13);
    store_column_text(st, 14, m->next_plan, sizeof(m->next_plan));
    m->next_plan_at = sqlite3_column_int64(st, 15);
}

enum store_member_state store_member_state(const struct store_member *m, int64_t now)
{
    if (m->erased_at)
        return MEMBER_STATE_ERASED;
    if (m->removed_at)
        return MEMBER_STATE_REMOVED;
    if (m->status == MEMBER_SUSPENDED)
        return MEMBER_STATE_SUSPENDED;
    if (m->valid_until && now >= m->valid_until)
        return MEMBER_STATE_EXPIRED;
    if (m->valid_from && now < m->valid_from)
        return MEMBER_STATE_NOT_YET_VALID;
    return MEMBER_STATE_ACTIVE;
}

const char *store_member_state_name(enum store_member_state state)
{
    static const char *const names[] = {
        [MEMBER_STATE_ACTIVE] = "active", [MEMBER_STATE_NOT_YET_VALID] = "not_yet_valid",
        [MEMBER_STATE_EXPIRED] = "expired", [MEMBER_STATE_SUSPENDED] = "suspended",
        [MEMBER_STATE_REMOVED] = "removed", [MEMBER_STATE_ERASED] = "erased",
    };
    return (unsigned)state < ARRAY_SIZE(names) ? names[state] : "unknown";
}

int store_member_add(struct store *s, const char *name, const char *email, int64_t plan_id,
                     int64_t valid_from, int64_t valid_until, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_member_add);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, email ? email : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, plan_id);
    sqlite3_bind_int64(st, 4, valid_from);
    sqlite3_bind_int64(st, 5, valid_until);
    sqlite3_bind_int64(st, 6, now_utc());
    r = store_write_insert(s, st, ret_id);
    /* the only constraint that can fail here is the plan reference */
    return r == -EINVAL ? -ENOENT : r;
}

int store_member_get(struct store *s, int64_t id, struct store_member *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_member_get);

    sqlite3_bind_int64(st, 1, id);
    return store_row_get(st, member_fill, ret);
}

struct name_match {
    int64_t id;
    int n;
};

static int name_matched(sqlite3_stmt *st, void *ctx)
{
    ((struct name_match *)ctx)->id = sqlite3_column_int64(st, 0);
    return 0;
}

int store_member_resolve(struct store *s, const char *ref, int64_t *ret_id)
{
    struct store_member m;
    struct name_match match = { 0, 0 };
    sqlite3_stmt *st;
    int64_t id;

    if (parse_int64(ref, 1, INT64_MAX, &id) == 0) {
        int r = store_member_get(s, id, &m);
        if (r == 0)
            *ret_id = id;
        return r;
    }
    st = store_stmt(s, sql_member_by_name);
    sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
    match.n = store_rows_each(st, name_matched, &match);
    if (match.n < 0)
        return match.n;
    if (match.n == 0)
        return -ENOENT;
    if (match.n > 1)
        return -ENOTUNIQ;
    *ret_id = match.id;
    return 0;
}

int store_member_set_status(struct store *s, int64_t id, enum member_status status)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_member_status);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, status == MEMBER_SUSPENDED ? "suspended" : "active", -1,
                      SQLITE_STATIC);
    return store_write_changed(s, st);
}

int store_member_update(struct store *s, const struct store_member *m)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_member_update);
    sqlite3_bind_int64(st, 1, m->id);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, m->email, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, m->note, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, m->plan_id);
    sqlite3_bind_int64(st, 6, m->valid_from);
    sqlite3_bind_int64(st, 7, m->valid_until);
    sqlite3_bind_int64(st, 8, m->next_plan_id);
    sqlite3_bind_int64(st, 9, m->next_plan_id ? m->next_plan_at : 0);
    return store_write_changed(s, st);
}

STORE_ROWS_DELIVER(members_row, struct store_member, member_fill)

int store_members_foreach(struct store *s, store_member_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_member_list), members_row, STORE_ROWS(fn, userdata));
}

/* "%text%" for LIKE, with the pattern characters of text taken literally. */
static void like_pattern(const char *text, char *buf, size_t n)
{
    size_t len = 0;

    buf[len++] = '%';
    for (; *text && len + 3 < n; text++) {
        if (*text == '%' || *text == '_' || *text == '\\')
            buf[len++] = '\\';
        buf[len++] = *text;
    }
    buf[len++] = '%';
    buf[len] = '\0';
}

static void query_bind(sqlite3_stmt *st, const struct store_member_query *q, const char *like)
{
    sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)q->filter);
    sqlite3_bind_int64(st, 3, q->now);
    sqlite3_bind_int64(st, 4, q->now + q->expiring_seconds);
}

int store_members_query(struct store *s, const struct store_member_query *q, store_member_fn fn,
                        void *userdata, int64_t *ret_total)
{
    char like[300] = "";
    sqlite3_stmt *st;

    if (q->text && *q->text)
        like_pattern(q->text, like, sizeof(like));
    if (ret_total) {
        st = store_stmt(s, sql_member_query_count);
        query_bind(st, q, like);
        *ret_total = store_row_value(st);
        if (*ret_total < 0)
            return (int)*ret_total;
    }
    st = store_stmt(s, sql_member_query);
    query_bind(st, q, like);
    sqlite3_bind_int64(st, 5, q->limit > 0 ? q->limit : -1);
    sqlite3_bind_int64(st, 6, q->offset > 0 ? q->offset : 0);
    return store_rows_each(st, members_row, STORE_ROWS(fn, userdata));
}

int64_t store_member_count(struct store *s)
{
    return store_row_value(store_stmt(s, sql_member_count));
}

/* ---- cards ---- */

#define CARD_COLUMNS \
    "c.id, c.member_id, m.name, c.label, c.enabled, c.created_at, hex(substr(c.uid_hash, 1, 8)), " \
    "c.desfire, coalesce(c.last_used_at, 0) "

static const char sql_card_add[] =
    "INSERT INTO cards (member_id, uid_hash, label, created_at) VALUES (?1, ?2, ?3, ?4)";
static const char sql_card_remove[] = "DELETE FROM cards WHERE id = ?1";
static const char sql_card_find[] = "SELECT id FROM cards WHERE uid_hash = ?1";
static const char sql_card_enable[] = "UPDATE cards SET enabled = ?2 WHERE id = ?1";
/* A card's consortium hash goes with it (its table exists once passports were used). */
static const char sql_card_forget_consortium[] =
    "DELETE FROM consortium_cards WHERE card_id = ?1";
static const char sql_has_consortium_cards[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'consortium_cards'";
static const char sql_card_list[] =
    "SELECT " CARD_COLUMNS "FROM cards c JOIN members m ON m.id = c.member_id ORDER BY c.id";
static const char sql_card_get[] =
    "SELECT " CARD_COLUMNS "FROM cards c JOIN members m ON m.id = c.member_id WHERE c.id = ?1";
static const char sql_card_list_member[] =
    "SELECT " CARD_COLUMNS "FROM cards c JOIN members m ON m.id = c.member_id "
    "WHERE c.member_id = ?1 ORDER BY c.id";
static const char sql_card_count[] = "SELECT count(*) FROM cards";
static const char sql_card_set_desfire[] = "UPDATE cards SET desfire = ?2 WHERE id = ?1";
/* Enabled cards of active members that still open by UID, with when each was last used
 * (one pass over the access log, grouped). */
static const char sql_card_uid_only[] =
    "SELECT m.id, m.name, c.id, c.label, coalesce(c.last_used_at, 0) "
    "FROM cards c JOIN members m ON m.id = c.member_id "
    "WHERE c.desfire = 0 AND c.enabled = 1 AND m.status = 'active' "
    "ORDER BY m.name, m.id, c.id";

static void card_fill(sqlite3_stmt *st, void *ret)
{
    struct store_card *c = ret;

    c->id = sqlite3_column_int64(st, 0);
    c->member_id = sqlite3_column_int64(st, 1);
    store_column_text(st, 2, c->member, sizeof(c->member));
    store_column_text(st, 3, c->label, sizeof(c->label));
    c->enabled = sqlite3_column_int(st, 4) != 0;
    c->created_at = sqlite3_column_int64(st, 5);
    store_column_text(st, 6, c->hash_prefix, sizeof(c->hash_prefix));
    c->desfire = sqlite3_column_int(st, 7) != 0;
    c->last_used_at = sqlite3_column_int64(st, 8);
}

int store_card_add(struct store *s, int64_t member_id, const uint8_t hash[STORE_HASH_LEN],
                   const char *label, int64_t *ret_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_card_add);
    sqlite3_bind_int64(st, 1, member_id);
    sqlite3_bind_blob(st, 2, hash, STORE_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label ? label : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_utc());
    r = store_write_insert(s, st, ret_id);
    return r == -EINVAL ? -ENOENT : r;      /* foreign key: no such member */
}

int store_card_remove(struct store *s, int64_t card_id)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    r = store_card_forget_consortium(s, card_id);
    if (r < 0)
        return r;
    st = store_stmt(s, sql_card_remove);
    sqlite3_bind_int64(st, 1, card_id);
    return store_write_changed(s, st);
}

int store_card_forget_consortium(struct store *s, int64_t card_id)
{
    sqlite3_stmt *st;
    int64_t has = store_row_value(store_stmt(s, sql_has_consortium_cards));

    if (has <= 0)
        return (int)has;
    st = store_stmt(s, sql_card_forget_consortium);
    sqlite3_bind_int64(st, 1, card_id);
    return store_stmt_exec(st);
}

int store_card_set_enabled(struct store *s, int64_t card_id, bool enabled)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_card_enable);
    sqlite3_bind_int64(st, 1, card_id);
    sqlite3_bind_int(st, 2, enabled ? 1 : 0);
    return store_write_changed(s, st);
}

int store_card_get(struct store *s, int64_t card_id, struct store_card *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_card_get);

    sqlite3_bind_int64(st, 1, card_id);
    return store_row_get(st, card_fill, ret);
}

int store_card_find(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t *ret_id)
{
    sqlite3_stmt *st = store_stmt(s, sql_card_find);

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return store_row_int64(st, ret_id);
}

STORE_ROWS_DELIVER(cards_row, struct store_card, card_fill)

int store_cards_foreach(struct store *s, int64_t member_id, store_card_fn fn, void *userdata)
{
    sqlite3_stmt *st = store_stmt(s, member_id ? sql_card_list_member : sql_card_list);

    if (member_id)
        sqlite3_bind_int64(st, 1, member_id);
    return store_rows_each(st, cards_row, STORE_ROWS(fn, userdata));
}

int64_t store_card_count(struct store *s)
{
    return store_row_value(store_stmt(s, sql_card_count));
}

int store_card_set_desfire(struct store *s, int64_t card_id, bool desfire)
{
    sqlite3_stmt *st;
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    st = store_stmt(s, sql_card_set_desfire);
    sqlite3_bind_int64(st, 1, card_id);
    sqlite3_bind_int(st, 2, desfire);
    return store_write_changed(s, st);
}

static void uid_only_fill(sqlite3_stmt *st, void *ret)
{
    struct store_uid_only_card *c = ret;

    c->member_id = sqlite3_column_int64(st, 0);
    store_column_text(st, 1, c->member, sizeof(c->member));
    c->card_id = sqlite3_column_int64(st, 2);
    store_column_text(st, 3, c->label, sizeof(c->label));
    c->last_used = sqlite3_column_int64(st, 4);
}

STORE_ROWS_DELIVER(uid_only_row, struct store_uid_only_card, uid_only_fill)

int store_uid_only_cards_foreach(struct store *s, store_uid_only_fn fn, void *userdata)
{
    return store_rows_each(store_stmt(s, sql_card_uid_only), uid_only_row,
                           STORE_ROWS(fn, userdata));
}

/* ---- the subject of a card ---- */

/* No plan reads as hours 'never': store_subject_facts() ignores them then (plan_id 0). A
 * removed or erased member reads as suspended, whatever its cards say. */
static const char sql_subject[] =
    "SELECT c.id, c.enabled, m.id, "
    "CASE WHEN m.removed_at != 0 OR m.erased_at != 0 THEN 'suspended' ELSE m.status END, "
    "m.valid_from, m.valid_until, "
    "coalesce(p.id, 0), coalesce(p.zones, ''), coalesce(p.hours, 'never'), c.desfire "
    "FROM cards c JOIN members m ON m.id = c.member_id "
    "LEFT JOIN plans p ON p.id = m.plan_id WHERE c.uid_hash = ?1";

static void subject_fill(sqlite3_stmt *st, void *ret)
{
    struct store_subject *subj = ret;

    subj->card_id = sqlite3_column_int64(st, 0);
    subj->card_enabled = sqlite3_column_int(st, 1) != 0;
    subj->member_id = sqlite3_column_int64(st, 2);
    subj->status = status_of(st, 3);
    subj->valid_from = sqlite3_column_int64(st, 4);
    subj->valid_until = sqlite3_column_int64(st, 5);
    subj->plan_id = sqlite3_column_int64(st, 6);
    store_column_text(st, 7, subj->zones, sizeof(subj->zones));
    store_column_text(st, 8, subj->hours, sizeof(subj->hours));
    subj->card_desfire = sqlite3_column_int(st, 9) != 0;
}

int store_subject_lookup(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                         struct store_subject *ret)
{
    sqlite3_stmt *st = store_stmt(s, sql_subject);

    sqlite3_bind_blob(st, 1, hash, STORE_HASH_LEN, SQLITE_STATIC);
    return store_row_get(st, subject_fill, ret);
}

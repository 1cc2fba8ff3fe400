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
static const char sql_plan_get[] = "SELECT id, name, zones, hours, -1 FROM plans WHERE id = ?1";
static const char sql_plan_list[] = "SELECT " PLAN_COLUMNS "FROM plans ORDER BY name";

#define COL(field) STORE_COL(struct store_plan, field)
static const struct store_cols plan_cols = STORE_COLS(struct store_plan,
    COL(id), COL(name), COL(zones), COL(hours), COL(members));
#undef COL

int store_plan_add(struct store *s, const char *name, const char *zones, const char *hours,
                   int64_t *ret_id)
{
    return store_insert(s, sql_plan_add, STORE_ARGS(STORE_TEXT(name), STORE_TEXT(zones),
                        STORE_TEXT(hours), STORE_INT(now_utc())), ret_id);
}

int store_plan_find(struct store *s, const char *name, struct store_plan *ret)
{
    return store_get(s, sql_plan_find, STORE_ARGS(STORE_TEXT(name)), &plan_cols, ret);
}

int store_plan_get(struct store *s, int64_t id, struct store_plan *ret)
{
    return store_get(s, sql_plan_get, STORE_ARGS(STORE_INT(id)), &plan_cols, ret);
}

STORE_ROWS_TO(plans_row, store_plan_fn)

int store_plans_foreach(struct store *s, store_plan_fn fn, void *userdata)
{
    return store_each(s, sql_plan_list, STORE_NO_ARGS, &plan_cols, plans_row,
                      STORE_ROWS(fn, userdata));
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
/* Counters kept by triggers (migration 16): one row read, however many members. */
static const char sql_member_count[] = "SELECT n FROM counters WHERE name = 'members'";

static enum member_status status_of(sqlite3_stmt *st, int col)
{
    char status[16];

    store_column_text(st, col, status, sizeof(status));
    return strcmp(status, "suspended") == 0 ? MEMBER_SUSPENDED : MEMBER_ACTIVE;
}

static void member_status_read(sqlite3_stmt *st, int col, void *row)
{
    ((struct store_member *)row)->status = status_of(st, col);
}

#define COL(field) STORE_COL(struct store_member, field)
static const struct store_cols member_cols = STORE_COLS(struct store_member,
    COL(id), COL(name), COL(email), COL(plan_id), COL(plan),
    STORE_COL_READ(member_status_read), COL(valid_from), COL(valid_until), COL(created_at),
    COL(cards), COL(note), COL(removed_at), COL(erased_at), COL(next_plan_id), COL(next_plan),
    COL(next_plan_at));
#undef COL

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
    int r = store_insert(s, sql_member_add,
                         STORE_ARGS(STORE_TEXT(name), STORE_TEXT(email ? email : ""),
                                    STORE_INT(plan_id), STORE_INT(valid_from),
                                    STORE_INT(valid_until), STORE_INT(now_utc())), ret_id);

    /* the only constraint that can fail here is the plan reference */
    return r == -EINVAL ? -ENOENT : r;
}

int store_member_get(struct store *s, int64_t id, struct store_member *ret)
{
    return store_get(s, sql_member_get, STORE_ARGS(STORE_INT(id)), &member_cols, ret);
}

struct id_row {
    int64_t id;
};
static const struct store_cols id_cols = STORE_COLS(struct id_row, STORE_COL(struct id_row, id));

int store_member_resolve(struct store *s, const char *ref, int64_t *ret_id)
{
    struct store_member m;
    struct id_row match[2];
    int64_t id;
    int n;

    if (parse_int64(ref, 1, INT64_MAX, &id) == 0) {
        int r = store_member_get(s, id, &m);
        if (r == 0)
            *ret_id = id;
        return r;
    }
    n = store_collect(s, sql_member_by_name, STORE_ARGS(STORE_TEXT(ref)), &id_cols, match, 2);
    if (n < 0)
        return n;
    if (n == 0)
        return -ENOENT;
    if (n > 1)
        return -ENOTUNIQ;
    *ret_id = match[0].id;
    return 0;
}

int store_member_set_status(struct store *s, int64_t id, enum member_status status)
{
    const char *text = status == MEMBER_SUSPENDED ? "suspended" : "active";

    return store_update(s, sql_member_status, STORE_ARGS(STORE_INT(id), STORE_TEXT(text)));
}

int store_member_update(struct store *s, const struct store_member *m)
{
    return store_update(s, sql_member_update,
                        STORE_ARGS(STORE_INT(m->id), STORE_TEXT(m->name), STORE_TEXT(m->email),
                                   STORE_TEXT(m->note), STORE_INT(m->plan_id),
                                   STORE_INT(m->valid_from), STORE_INT(m->valid_until),
                                   STORE_INT(m->next_plan_id),
                                   STORE_INT(m->next_plan_id ? m->next_plan_at : 0)));
}

STORE_ROWS_TO(members_row, store_member_fn)

int store_members_foreach(struct store *s, store_member_fn fn, void *userdata)
{
    return store_each(s, sql_member_list, STORE_NO_ARGS, &member_cols, members_row,
                      STORE_ROWS(fn, userdata));
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

int store_members_query(struct store *s, const struct store_member_query *q, store_member_fn fn,
                        void *userdata, int64_t *ret_total)
{
    char like[300] = "";
    /* ?1 to ?4 filter (the count's too), ?5 and ?6 are the page */
    const struct store_arg args[] = {
        STORE_TEXT(like), STORE_INT(q->filter), STORE_INT(q->now),
        STORE_INT(q->now + q->expiring_seconds), STORE_INT(q->limit > 0 ? q->limit : -1),
        STORE_INT(q->offset > 0 ? q->offset : 0),
    };

    if (q->text && *q->text)
        like_pattern(q->text, like, sizeof(like));
    if (ret_total) {
        *ret_total = store_value(s, sql_member_query_count, (struct store_args){ args, 4 });
        if (*ret_total < 0)
            return (int)*ret_total;
    }
    return store_each(s, sql_member_query, (struct store_args){ args, 6 }, &member_cols,
                      members_row, STORE_ROWS(fn, userdata));
}

int64_t store_member_count(struct store *s)
{
    return store_value(s, sql_member_count, STORE_NO_ARGS);
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
static const char sql_card_count[] = "SELECT n FROM counters WHERE name = 'cards'";
static const char sql_card_set_desfire[] = "UPDATE cards SET desfire = ?2 WHERE id = ?1";
/* Enabled cards of active members that still open by UID, with when each was last used
 * (one pass over the access log, grouped). */
static const char sql_card_uid_only[] =
    "SELECT m.id, m.name, c.id, c.label, coalesce(c.last_used_at, 0) "
    "FROM cards c JOIN members m ON m.id = c.member_id "
    "WHERE c.desfire = 0 AND c.enabled = 1 AND m.status = 'active' "
    "ORDER BY m.name, m.id, c.id";
static const char sql_card_uid_only_first[] =
    "SELECT m.id, m.name, c.id, c.label, coalesce(c.last_used_at, 0) "
    "FROM cards c INDEXED BY cards_uid_only JOIN members m ON m.id = c.member_id "
    "WHERE c.desfire = 0 AND c.enabled = 1 AND m.status = 'active' ORDER BY c.id LIMIT ?1";

#define COL(field) STORE_COL(struct store_card, field)
static const struct store_cols card_cols = STORE_COLS(struct store_card,
    COL(id), COL(member_id), COL(member), COL(label), COL(enabled), COL(created_at),
    COL(hash_prefix), COL(desfire), COL(last_used_at));
#undef COL

int store_card_add(struct store *s, int64_t member_id, const uint8_t hash[STORE_HASH_LEN],
                   const char *label, int64_t *ret_id)
{
    int r = store_insert(s, sql_card_add,
                         STORE_ARGS(STORE_INT(member_id), STORE_BLOB(hash, STORE_HASH_LEN),
                                    STORE_TEXT(label ? label : ""), STORE_INT(now_utc())),
                         ret_id);

    return r == -EINVAL ? -ENOENT : r;      /* foreign key: no such member */
}

int store_card_remove(struct store *s, int64_t card_id)
{
    int r = store_batch_ensure(s);

    if (r < 0)
        return r;
    r = store_card_forget_consortium(s, card_id);
    if (r < 0)
        return r;
    return store_update(s, sql_card_remove, STORE_ARGS(STORE_INT(card_id)));
}

int store_card_forget_consortium(struct store *s, int64_t card_id)
{
    int64_t has = store_value(s, sql_has_consortium_cards, STORE_NO_ARGS);

    if (has <= 0)
        return (int)has;
    return store_write(s, sql_card_forget_consortium, STORE_ARGS(STORE_INT(card_id)));
}

int store_card_set_enabled(struct store *s, int64_t card_id, bool enabled)
{
    return store_update(s, sql_card_enable, STORE_ARGS(STORE_INT(card_id), STORE_INT(enabled)));
}

int store_card_get(struct store *s, int64_t card_id, struct store_card *ret)
{
    return store_get(s, sql_card_get, STORE_ARGS(STORE_INT(card_id)), &card_cols, ret);
}

int store_card_find(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t *ret_id)
{
    return store_get_int64(s, sql_card_find, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN)), ret_id);
}

STORE_ROWS_TO(cards_row, store_card_fn)

int store_cards_foreach(struct store *s, int64_t member_id, store_card_fn fn, void *userdata)
{
    if (!member_id)
        return store_each(s, sql_card_list, STORE_NO_ARGS, &card_cols, cards_row,
                          STORE_ROWS(fn, userdata));
    return store_each(s, sql_card_list_member, STORE_ARGS(STORE_INT(member_id)), &card_cols,
                      cards_row, STORE_ROWS(fn, userdata));
}

int64_t store_card_count(struct store *s)
{
    return store_value(s, sql_card_count, STORE_NO_ARGS);
}

int store_card_set_desfire(struct store *s, int64_t card_id, bool desfire)
{
    return store_update(s, sql_card_set_desfire,
                        STORE_ARGS(STORE_INT(card_id), STORE_INT(desfire)));
}

#define COL(field) STORE_COL(struct store_uid_only_card, field)
static const struct store_cols uid_only_cols = STORE_COLS(struct store_uid_only_card,
    COL(member_id), COL(member), COL(card_id), COL(label), COL(last_used));
#undef COL

STORE_ROWS_TO(uid_only_row, store_uid_only_fn)

int store_uid_only_cards_foreach(struct store *s, int64_t limit, store_uid_only_fn fn,
                                 void *userdata)
{
    if (limit > 0)
        return store_each(s, sql_card_uid_only_first, STORE_ARGS(STORE_INT(limit)),
                          &uid_only_cols, uid_only_row, STORE_ROWS(fn, userdata));
    return store_each(s, sql_card_uid_only, STORE_NO_ARGS, &uid_only_cols, uid_only_row,
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

static void subject_status_read(sqlite3_stmt *st, int col, void *row)
{
    ((struct store_subject *)row)->status = status_of(st, col);
}

#define COL(field) STORE_COL(struct store_subject, field)
static const struct store_cols subject_cols = STORE_COLS(struct store_subject,
    COL(card_id), COL(card_enabled), COL(member_id), STORE_COL_READ(subject_status_read),
    COL(valid_from), COL(valid_until), COL(plan_id), COL(zones), COL(hours), COL(card_desfire));
#undef COL

int store_subject_lookup(struct store *s, const uint8_t hash[STORE_HASH_LEN],
                         struct store_subject *ret)
{
    return store_get(s, sql_subject, STORE_ARGS(STORE_BLOB(hash, STORE_HASH_LEN)), &subject_cols,
                     ret);
}

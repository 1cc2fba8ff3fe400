/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* store_fixture: see store_fixture.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_fixture.h"

/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

int fixture_setup(void **state)
{
    const char *tmp = getenv("PORTIER_TEST_TMP");
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (make_dirs(tmp) < 0) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "%s/store-XXXXXX", tmp);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/portier.db", f->dir);
    *state = f;
    return 0;
}

int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    char p[PATH_MAX + 32];

    for (size_t i = 0; i < N_ELEMS(suffixes); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- raw SQLite helpers ---- */

sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

void raw_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        print_error("%s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        fail();
    }
}

int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

void raw_text(sqlite3 *db, const char *sql, char *buf, size_t n)
{
    sqlite3_stmt *st;
    const unsigned char *t;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    t = sqlite3_column_text(st, 0);
    snprintf(buf, n, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
}

bool raw_table_exists(sqlite3 *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return raw_int(db, sql) == 1;
}

struct store *open_ok(const char *path)
{
    struct store *s = NULL;
    int r = store_open(path, &s);
    if (r != 0)
        fail_msg("store_open(%s) = %d", path, r);
    assert_non_null(s);
    return s;
}

void hash_of(uint8_t seed, uint8_t out[STORE_HASH_LEN])
{
    for (int i = 0; i < STORE_HASH_LEN; i++)
        out[i] = (uint8_t)(seed * 31 + i);
}

int collect_event(const struct store_event *ev, void *userdata)
{
    struct events_seen *seen = userdata;
    if (seen->n < 8)
        seen->ev[seen->n] = *ev;
    seen->n++;
    return 0;
}

bool raw_column_exists(sqlite3 *db, const char *table, const char *column)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
             table, column);
    return raw_int(db, sql) == 1;
}

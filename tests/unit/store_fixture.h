/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* What the store's unit tests share: a fresh directory per test holding a real SQLite file,
 * and raw sqlite3 access to that file where the store's own API cannot show an outcome
 * (schema version on disk, journal mode, triggers, what another connection sees). */
#pragma once
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
};

/* cmocka setup and teardown: *state is a struct fixture, path a database not yet created. */
int fixture_setup(void **state);
int fixture_teardown(void **state);
#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

sqlite3 *raw_open(const char *path);
void raw_exec(sqlite3 *db, const char *sql);
/* The single integer a query returns. */
int64_t raw_int(sqlite3 *db, const char *sql);
void raw_text(sqlite3 *db, const char *sql, char *buf, size_t n);
bool raw_table_exists(sqlite3 *db, const char *name);
bool raw_column_exists(sqlite3 *db, const char *table, const char *column);

struct store *open_ok(const char *path);
void hash_of(uint8_t seed, uint8_t out[STORE_HASH_LEN]);

/* Names seen by a listing (the first 8), with a count each. */
struct names {
    unsigned n;
    char name[8][96];
    int64_t count[8];
    int stop_after;     /* 0: never */
};

struct events_seen {
    unsigned n;
    struct store_event ev[8];
};
int collect_event(const struct store_event *ev, void *userdata);

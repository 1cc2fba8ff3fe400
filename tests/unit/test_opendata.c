/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The consortium's open data: complementary suppression (suppress.c) on random tables,
 * checked by linear algebra; and the dataset (opendata.c) on a real custodian database fed
 * through ingest_batch() and seals_receive(), as the custodian is: its figures, what it
 * withholds, a site with one regular member whose days cannot be recovered, the seals it
 * requires, the CSV formula guard, and the /opendata/ pages (opendata_web.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "custodian_db.h"
#include "ingest.h"
#include "ledger_batch.h"
#include "ledger_batch_json.h"
#include "opendata.h"
#include "opendata_web.h"
#include "period_seal.h"
#include "period_seal_json.h"
#include "seals.h"
#include "suppress.h"

/* ---- suppression ---- */

/* Is suppressed cell `target` determined by the totals of the lines of 2 cells or more
 * and the published cells? It is iff its unit vector lies in the row space of the lines'
 * equations over the suppressed cells: rank(A) == rank(A + e_target). */
static int rank_of(double *m, int rows, int cols)
{
    int rank = 0;
    for (int c = 0; c < cols && rank < rows; c++) {
        int best = rank;
        for (int r = rank + 1; r < rows; r++)
            if (fabs(m[r * cols + c]) > fabs(m[best * cols + c]))
                best = r;
        if (fabs(m[best * cols + c]) < 1e-9)
            continue;
        for (int k = 0; k < cols; k++) {
            double t = m[rank * cols + k];
            m[rank * cols + k] = m[best * cols + k];
            m[best * cols + k] = t;
        }
        for (int r = 0; r < rows; r++) {
            double f;
            if (r == rank)
                continue;
            f = m[r * cols + c] / m[rank * cols + c];
            for (int k = 0; k < cols; k++)
                m[r * cols + k] -= f * m[rank * cols + k];
        }
        rank++;
    }
    return rank;
}

/* hidden[i]: cell i is unknown to the attacker. */
static bool determined(const struct suppress_cell *cells, const bool *hidden, size_t n,
                       size_t target)
{
    int col_of[256], n_unknown = 0, lines, rows_used = 0, ra, rb;
    uint32_t max_row = 0, max_col = 0;
    double *a, *b;

    for (size_t i = 0; i < n; i++) {
        col_of[i] = hidden[i] ? n_unknown++ : -1;
        if (cells[i].row > max_row)
            max_row = cells[i].row;
        if (cells[i].col > max_col)
            max_col = cells[i].col;
    }
    lines = (int)(max_row + max_col + 2);
    a = calloc((size_t)(lines + 1) * (size_t)n_unknown, sizeof(double));
    b = calloc((size_t)(lines + 1) * (size_t)n_unknown, sizeof(double));
    /* One equation per line: the sum of its unknown cells is known. */
    for (int l = 0; l < lines; l++) {
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            bool on = l <= (int)max_row ? cells[i].row == (uint32_t)l
                                        : cells[i].col == (uint32_t)(l - (int)max_row - 1);
            if (on && col_of[i] >= 0) {
                a[rows_used * n_unknown + col_of[i]] = 1;
                any = true;
            }
        }
        rows_used += any;
    }
    memcpy(b, a, (size_t)rows_used * (size_t)n_unknown * sizeof(double));
    b[rows_used * n_unknown + col_of[target]] = 1;
    ra = rank_of(a, rows_used, n_unknown);
    rb = rank_of(b, rows_used + 1, n_unknown);
    free(a);
    free(b);
    return ra == rb;
}

static void check_protected(const struct suppress_cell *cells, size_t n, int64_t min_sum)
{
    uint32_t max_row = 0, max_col = 0;
    bool hidden[256], all[256];

    for (size_t i = 0; i < n; i++) {
        if (cells[i].primary)
            assert_true(cells[i].suppressed);
        if (cells[i].row > max_row)
            max_row = cells[i].row;
        if (cells[i].col > max_col)
            max_col = cells[i].col;
        hidden[i] = cells[i].suppressed;
        all[i] = true;
    }
    /* No suppressed cell can be worked out from the line totals, unless the table's shape
     * gives it away even with every cell hidden (a cell alone on its line). */
    for (size_t i = 0; i < n; i++)
        if (hidden[i] && determined(cells, hidden, n, i) && !determined(cells, all, n, i)) {
            for (size_t j = 0; j < n; j++)
                print_message("cell %zu (%u,%u) cost %lld primary %d suppressed %d\n", j,
                              cells[j].row, cells[j].col, (long long)cells[j].cost,
                              cells[j].primary, cells[j].suppressed);
            fail_msg("suppressed cell %zu is determined by the totals", i);
        }
    /* Every line of 2 cells or more: 0 or >= 2 suppressed; their sum 0 or >= min_sum
     * unless the whole line is hidden. */
    for (uint32_t l = 0; l <= max_row + max_col + 1; l++) {
        int size = 0, n_hidden = 0;
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            bool on = l <= max_row ? cells[i].row == l : cells[i].col == l - max_row - 1;
            if (!on)
                continue;
            size++;
            if (cells[i].suppressed) {
                n_hidden++;
                sum += cells[i].cost;
            }
        }
        if (size < 2)
            continue;
        assert_true(n_hidden != 1);
        if (n_hidden < size)
            assert_true(sum == 0 || sum >= min_sum);
    }
}

static void test_suppress_protects_a_single_cell(void **state)
{
    struct suppress_cell cells[9];
    int hidden = 0;

    (void)state;
    for (int i = 0; i < 9; i++)
        cells[i] = (struct suppress_cell){ .row = (uint32_t)(i / 3), .col = (uint32_t)(i % 3),
                                           .cost = 10 + i };
    cells[4].cost = 1;
    cells[4].primary = true;
    assert_int_equal(suppress_protect(cells, 9, 5), 3);     /* a rectangle: 3 complements */
    for (int i = 0; i < 9; i++)
        hidden += cells[i].suppressed;
    assert_int_equal(hidden, 4);
    check_protected(cells, 9, 5);
    /* The cheapest complements: row 1 and column 1 give up their smallest other cell. */
    assert_true(cells[3].suppressed);
    assert_true(cells[1].suppressed);
    assert_true(cells[0].suppressed);
}

/* The classical trap for "two per line" alone: two 2x2 blocks joined by one cell. Rows and
 * columns all hold two suppressed cells, yet the joining cell is determined. */
static void test_suppress_closes_bridges(void **state)
{
    /* rows 0-1 x cols 0-1 and rows 2-3 x cols 2-3 suppressed; (1,2) suppressed too, and
     * published cells elsewhere. */
    struct suppress_cell cells[16];
    static const int hide[][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 }, { 1, 1 }, { 2, 2 }, { 2, 3 },
                                   { 3, 2 }, { 3, 3 }, { 1, 2 } };

    (void)state;
    for (int i = 0; i < 16; i++)
        cells[i] = (struct suppress_cell){ .row = (uint32_t)(i / 4), .col = (uint32_t)(i % 4),
                                           .cost = 20 };
    for (size_t h = 0; h < sizeof(hide) / sizeof(hide[0]); h++)
        cells[hide[h][0] * 4 + hide[h][1]].primary = true;
    /* Without the bridge rule, (1,2) would stay determined: check the pattern is a trap. */
    {
        bool hidden[16];
        for (int i = 0; i < 16; i++)
            hidden[i] = cells[i].primary;
        assert_true(determined(cells, hidden, 16, 1 * 4 + 2));
    }
    assert_true(suppress_protect(cells, 16, 0) > 0);
    check_protected(cells, 16, 0);
}

static void test_suppress_random_tables(void **state)
{
    struct suppress_cell cells[64];
    unsigned seed = 12345;

    (void)state;
    for (int trial = 0; trial < 400; trial++) {
        uint32_t rows = 2 + (uint32_t)(rand_r(&seed) % 6), cols = 2 + (uint32_t)(rand_r(&seed) % 7);
        bool sparse = trial % 3 == 0, diagonal = trial % 5 == 0;
        int64_t min_sum = trial % 2 ? 5 : 0;
        size_t n = 0;

        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t c = 0; c < cols && n < 64; c++) {
                if ((sparse && rand_r(&seed) % 4 == 0) || (diagonal && r == c))
                    continue;
                cells[n] = (struct suppress_cell){ .row = r, .col = c };
                cells[n].cost = rand_r(&seed) % 3 == 0 ? rand_r(&seed) % 5 : rand_r(&seed) % 40;
                cells[n].primary = cells[n].cost < 5;
                n++;
            }
        assert_true(suppress_protect(cells, n, min_sum) >= 0);
        check_protected(cells, n, min_sum);
    }
}

/* ---- a consortium on a real custodian database ---- */

#define PERIOD "2026-10"

struct fixture {
    char dir[1024], db_path[1100];
    struct cdb *db;
    struct ingest *in;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("PORTIER_TEST_TMP");
    static int serial;

    if (tmp)
        mkdir(tmp, 0700);
    snprintf(f->dir, sizeof(f->dir), "%s/opendata-%d-%d", tmp ? tmp : "/tmp", (int)getpid(),
             serial++);
    mkdir(f->dir, 0700);
    snprintf(f->db_path, sizeof(f->db_path), "%s/custodian.db", f->dir);
    assert_int_equal(cdb_open(f->db_path, &f->db), 0);
    assert_int_equal(ingest_new(f->db, &f->in), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 32];

    ingest_free(f->in);
    cdb_free(f->db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A site's ledger, built entry by entry. */
struct site_b {
    char name[32];
    uint8_t pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
    struct ledger_entry *es;
    size_t n, cap;
};

static void sb_init(struct site_b *b, const char *name)
{
    uint8_t seed[crypto_sign_SEEDBYTES];

    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", name);
    crypto_generichash(seed, sizeof(seed), (const uint8_t *)name, strlen(name), NULL, 0);
    crypto_sign_seed_keypair(b->pk, b->sk, seed);
}

/* 2026-10-DAY HH:MM UTC */
static int64_t at(int day, int hour, int minute)
{
    struct tm tm = { .tm_year = 126, .tm_mon = 9, .tm_mday = day, .tm_hour = hour,
                     .tm_min = minute };
    return (int64_t)timegm(&tm);
}

static void sb_add(struct site_b *b, const char *kind, int64_t member, const char *resource,
                   int64_t start, int64_t end, const char *home, const char *visitor)
{
    struct ledger_entry *e;

    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->es = realloc(b->es, b->cap * sizeof(*b->es));
        assert_non_null(b->es);
    }
    e = &b->es[b->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->site, sizeof(e->site), "%s", b->name);
    e->seq = (int64_t)b->n;
    e->usage_id = e->seq;
    snprintf(e->kind, sizeof(e->kind), "%s", kind);
    e->member_id = member;
    snprintf(e->resource, sizeof(e->resource), "%s", resource);
    e->started_at = start;
    e->ended_at = end;
    e->recorded_at = end;
    if (strcmp(kind, "day") == 0 || strcmp(kind, "visit") == 0) {
        e->quantity = 1;
        snprintf(e->unit, sizeof(e->unit), "day");
        e->amount_cents = strcmp(kind, "visit") == 0 ? 1200 : 1500;
        snprintf(e->allowance, sizeof(e->allowance), "%s",
                 strcmp(kind, "visit") == 0 ? "visit" : "rate");
    } else {
        e->quantity = (end - start + 59) / 60;
        snprintf(e->unit, sizeof(e->unit), "minute");
        snprintf(e->allowance, sizeof(e->allowance), "%s",
                 strcmp(kind, "presence") == 0 ? "none" : "rate");
    }
    if (home) {
        snprintf(e->home, sizeof(e->home), "%s", home);
        snprintf(e->visitor, sizeof(e->visitor), "%s", visitor);
    }
}

/* A member's pseudonym as its home site would make it: 32 hex digits. */
static const char *pseudonym(const char *home, int member)
{
    static char out[33];
    uint8_t h[16];
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "%s/%d", home, member);

    crypto_generichash(h, sizeof(h), (const uint8_t *)msg, (size_t)n, NULL, 0);
    sodium_bin2hex(out, sizeof(out), h, sizeof(h));
    return out;
}

static void sb_register(struct fixture *f, struct site_b *b)
{
    struct cdb_site s = { .timezone = "Europe/Paris", .day_starts = 240 };

    snprintf(s.name, sizeof(s.name), "%s", b->name);
    memcpy(s.public_key, b->pk, LEDGER_PK_LEN);
    assert_int_equal(cdb_site_add(f->db, &s), 0);
}

/* Chain, sign, send in batches, then seal PERIOD (if seal). */
static void sb_send(struct fixture *f, struct site_b *b, bool seal)
{
    uint8_t prev[LEDGER_HASH_LEN] = { 0 };
    struct ledger_batch *batch = calloc(1, sizeof(*batch));
    struct ingest_result res;
    struct seal_result sres;

    for (size_t i = 0; i < b->n; i++) {
        struct ledger_entry *e = &b->es[i];
        memcpy(e->prev_hash, prev, LEDGER_HASH_LEN);
        ledger_hash(e);
        if (ledger_is_checkpoint(e->seq))
            ledger_sign(e, b->sk);
        memcpy(prev, e->hash, LEDGER_HASH_LEN);
    }
    for (size_t first = 0; first < b->n; first += LEDGER_BATCH_MAX) {
        size_t last = first + LEDGER_BATCH_MAX > b->n ? b->n : first + LEDGER_BATCH_MAX;
        uint8_t msg[160];
        size_t len;
        char *text;

        memset(batch, 0, sizeof(*batch));
        snprintf(batch->site, sizeof(batch->site), "%s", b->name);
        batch->first = (int64_t)first + 1;
        batch->last = (int64_t)last;
        batch->n = (unsigned)(last - first);
        memcpy(batch->entries, &b->es[first], batch->n * sizeof(*b->es));
        len = ledger_batch_message(b->name, batch->first, batch->last,
                                   batch->entries[batch->n - 1].hash, msg, sizeof(msg));
        crypto_sign_detached(batch->sig, NULL, msg, len, b->sk);
        text = ledger_batch_to_json(batch, &len);
        assert_non_null(text);
        ingest_batch(f->in, b->name, text, len, 1793700000, &res);
        free(text);
        assert_int_equal(res.outcome, INGEST_STORED);
    }
    free(batch);
    if (seal) {
        struct period_seal ps = { .first_day = PERIOD "-01", .last_day = PERIOD "-31",
                                  .last_seq = (int64_t)b->n, .closed_at = 1793700000 };
        char text[PERIOD_SEAL_TEXT_MAX + 1];
        uint8_t sig[LEDGER_SIG_LEN];
        size_t len;
        char *payload;
        int n;

        snprintf(ps.site, sizeof(ps.site), "%s", b->name);
        snprintf(ps.period, sizeof(ps.period), PERIOD);
        memcpy(ps.last_hash, prev, LEDGER_HASH_LEN);
        memset(ps.archive_sha256, 0xab, sizeof(ps.archive_sha256));
        n = period_seal_encode(&ps, text, sizeof(text));
        assert_true(n > 0);
        crypto_sign_detached(sig, NULL, (const uint8_t *)text, (size_t)n, b->sk);
        payload = period_seal_to_json(text, sig, &len);
        seals_receive(f->db, b->name, PERIOD, payload, len, 1793700001, &sres);
        free(payload);
        assert_int_equal(sres.outcome, SEAL_STORED);
        assert_string_equal(sres.state, "verified");
    }
}

/* alpha: 12 members every day, 09:00-17:00 (07:00-15:00 UTC); members 1-6 on the laser
 * every Monday for an hour, member 7 once on the cnc; 6 members of beta visit on the 6th
 * and the 7th. beta: 10 members every day, 1-5 in the morning, 6-10 in the afternoon. */
static void big_sites(struct fixture *f, struct site_b *alpha, struct site_b *beta, bool seal)
{
    sb_init(alpha, "alpha");
    sb_init(beta, "beta");
    for (int day = 1; day <= 31; day++) {
        struct tm tm = { .tm_year = 126, .tm_mon = 9, .tm_mday = day };
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        for (int m = 1; m <= 12; m++) {
            sb_add(alpha, "day", m, "front", at(day, 7, m), at(day, 7, m), NULL, NULL);
            sb_add(alpha, "presence", m, "front", at(day, 7, 0), at(day, 15, 0), NULL, NULL);
        }
        if (tm.tm_wday == 1)
            for (int m = 1; m <= 6; m++)
                sb_add(alpha, "machine", m, "laser", at(day, 9, 0), at(day, 10, 0), NULL, NULL);
        if (day == 20)
            sb_add(alpha, "machine", 7, "cnc", at(day, 9, 0), at(day, 9, 30), NULL, NULL);
        if (day == 6 || day == 7)
            for (int m = 101; m <= 106; m++)
                sb_add(alpha, "visit", 0, "front", at(day, 8, 0), at(day, 8, 0), "beta",
                       pseudonym("beta", m));
        for (int m = 1; m <= 10; m++) {
            sb_add(beta, "day", m, "door", at(day, 6, m), at(day, 6, m), NULL, NULL);
            sb_add(beta, "presence", m, "door", at(day, m <= 5 ? 6 : 10, 0),
                   at(day, m <= 5 ? 10 : 14, 0), NULL, NULL);
        }
    }
    /* A correction and an entry of the next period: counted nowhere. */
    sb_add(alpha, "correction", 3, "front", at(30, 12, 0), at(30, 12, 0), NULL, NULL);
    sb_add(beta, "day", 1, "door", at(31, 23, 0) + 86400 * 2, at(31, 23, 0) + 86400 * 2, NULL,
           NULL);
    sb_register(f, alpha);
    sb_register(f, beta);
    assert_int_equal(cdb_machine_category_set(f->db, "alpha", "laser", "laser-cutter"), 0);
    sb_send(f, alpha, seal);
    sb_send(f, beta, seal);
}

static char *slurp(const char *dir, const char *name)
{
    char path[PATH_MAX + 64];
    FILE *fp;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int generate(struct fixture *f, const char *sub, bool partial, char out_dir[PATH_MAX])
{
    struct opendata_options o = { .period = PERIOD, .producer = "Tiers-lieux du Rhône",
                                  .licence = &opendata_licences[0], .k = OPENDATA_K_DEFAULT,
                                  .partial = partial, .now = 1793800000 };
    FILE *null = fopen("/dev/null", "w");
    int r;

    snprintf(out_dir, PATH_MAX, "%s/%s", f->dir, sub);
    mkdir(out_dir, 0755);
    o.dir = out_dir;
    r = opendata_generate(f->db, &o, null, null);
    fclose(null);
    return r;
}

static void assert_contains(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing line: %s\nin:\n%s", line, text);
}

static void test_figures_and_what_is_withheld(void **state)
{
    struct fixture *f = *state;
    struct site_b alpha, beta;
    char dir[PATH_MAX];
    char *days, *machines, *pairs, *sites, *pkg;

    big_sites(f, &alpha, &beta, true);
    assert_int_equal(generate(f, "out", false, dir), 0);
    days = slurp(dir, "site_days.csv");
    machines = slurp(dir, "machine_use.csv");
    pairs = slurp(dir, "visits_between_sites.csv");
    sites = slurp(dir, "sites.csv");
    pkg = slurp(dir, "datapackage.json");
    assert_non_null(days);

    assert_true(strncmp(days, "site,grain,start_date,end_date,visits,visitor_days,"
                              "peak_occupancy,open_hours\r\n", 75) == 0);
    /* 12 people, all in from 09:00 to 17:00; no visitor (0: withheld). */
    assert_contains(days, "\r\nalpha,day,2026-10-14,2026-10-14,12,,12,8.00\r\n");
    /* The 6th: 6 visitors of beta among 18 visits. Their 6 visitor-days would be the only
     * figure of the column beside beta's withheld 0, so they are hidden too. */
    assert_contains(days, "\r\nalpha,day,2026-10-06,2026-10-06,18,,12,8.00\r\n");
    /* beta: 5 at a time, 8 hours in use (06:00-14:00 UTC) */
    assert_contains(days, "\r\nbeta,day,2026-10-14,2026-10-14,10,,5,8.00\r\n");
    /* Daylight saving ends on the 25th: still 8 hours, on the site's billing day. */
    assert_contains(days, "\r\nbeta,day,2026-10-26,2026-10-26,10,,5,8.00\r\n");
    /* The correction and the entry of November are in no figure; 31 days a site. */
    assert_null(strstr(days, "2026-11"));
    {
        int rows = 0;
        for (const char *p = days; (p = strstr(p, "\r\n")); p += 2)
            rows++;
        assert_int_equal(rows, 1 + 2 * 31);
    }

    /* Machines: the laser per week (Mondays; the first week has none, and its empty cell
     * is protected by hiding the next one); the cnc, used by one person, per month and
     * withheld, under "other" (no category registered). */
    assert_contains(machines, "\r\nalpha,laser-cutter,week,2026-10-12,2026-10-18,6.00,6,\r\n");
    assert_contains(machines, "\r\nalpha,laser-cutter,week,2026-10-26,2026-10-31,6.00,6,\r\n");
    assert_contains(machines, "\r\nalpha,laser-cutter,week,2026-10-01,2026-10-04,,,\r\n");
    assert_contains(machines, "\r\nalpha,other,month,2026-10-01,2026-10-31,,,\r\n");
    assert_null(strstr(machines, "cnc"));
    assert_null(strstr(machines, "laser,"));        /* the machine's own name: never */

    /* Between sites: 12 visit days by 6 people of beta at alpha. */
    assert_contains(pairs, "period,home_site,host_site,visits\r\n");
    assert_contains(pairs, "\r\n2026-10,beta,alpha,12\r\n");
    assert_contains(pairs, "\r\n2026-10,alpha,beta,\r\n");

    /* The seals: their text's SHA-256 and the sealed head, per site. */
    {
        struct cdb_seal seal;
        uint8_t h[crypto_hash_sha256_BYTES];
        char hex[2 * sizeof(h) + 1], line[200];
        assert_int_equal(cdb_seal_get(f->db, "alpha", PERIOD, &seal), 0);
        crypto_hash_sha256(h, (const uint8_t *)seal.text, strlen(seal.text));
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        snprintf(line, sizeof(line), ",%s,", hex);
        assert_contains(sites, line);
        sodium_bin2hex(hex, sizeof(hex), seal.last_hash, LEDGER_HASH_LEN);
        assert_contains(sites, hex);
    }
    assert_contains(sites, "\r\nalpha,alpha,,,,,Europe/Paris,04:00,");
    /* No visitor pseudonym anywhere. */
    assert_null(strstr(days, pseudonym("beta", 101)));
    assert_null(strstr(pairs, pseudonym("beta", 101)));

    /* The package: licence, publisher, period, k, each file's hash and schema. */
    assert_contains(pkg, "\"profile\": \"tabular-data-package\"");
    assert_contains(pkg, "\"name\": \"etalab-2.0\"");
    assert_contains(pkg, "\"title\": \"Tiers-lieux du Rhône\"");
    assert_contains(pkg, "\"created\": \"2026-11-04T");
    assert_contains(pkg, "\"k_threshold\": 5");
    assert_contains(pkg, "\"schema\": \"site_days.schema.json\"");
    assert_contains(pkg, "\"hash\": \"sha256:");
    free(days);
    free(machines);
    free(pairs);
    free(sites);
    free(pkg);
    free(alpha.es);
    free(beta.es);
}

/* A small place with one regular member, beside two busy ones: whatever days that member
 * came, on which they used the laser, the published files are the same bytes. */
static void one_member_world(struct fixture *f, const int *days, size_t n_days)
{
    struct site_b alpha, beta, hameau;

    big_sites(f, &alpha, &beta, true);
    sb_init(&hameau, "hameau");
    for (size_t i = 0; i < n_days; i++) {
        sb_add(&hameau, "day", 1, "porte", at(days[i], 8, 0), at(days[i], 8, 0), NULL, NULL);
        sb_add(&hameau, "presence", 1, "porte", at(days[i], 8, 0), at(days[i], 16, 30), NULL,
               NULL);
        if (i % 2 == 0)
            sb_add(&hameau, "machine", 1, "laser", at(days[i], 9, 0), at(days[i], 11, 0),
                   NULL, NULL);
    }
    sb_register(f, &hameau);
    assert_int_equal(cdb_machine_category_set(f->db, "hameau", "laser", "laser-cutter"), 0);
    sb_send(f, &hameau, true);
    free(alpha.es);
    free(beta.es);
    free(hameau.es);
}

static void test_one_regular_member_cannot_be_recovered(void **state)
{
    struct fixture *f = *state;
    static const int days_a[] = { 2, 5, 9, 12, 20 };
    static const int days_b[] = { 3, 4, 15, 16, 22, 28, 29, 30, 31 };
    static const char *const files[] = { "site_days.csv", "machine_use.csv",
                                         "visits_between_sites.csv" };
    char dir_a[PATH_MAX], dir_b[PATH_MAX];
    struct fixture *g;
    char *days;

    one_member_world(f, days_a, 5);
    assert_int_equal(generate(f, "a", false, dir_a), 0);
    assert_int_equal(setup((void **)&g), 0);
    one_member_world(g, days_b, 9);
    assert_int_equal(generate(g, "b", false, dir_b), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *a = slurp(dir_a, files[i]), *b = slurp(dir_b, files[i]);
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    /* What the files say of hameau: the month, and nothing else. */
    days = slurp(dir_a, "site_days.csv");
    assert_contains(days, "\r\nhameau,month,2026-10-01,2026-10-31,,,,\r\n");
    assert_null(strstr(days, "\r\nhameau,day,"));
    free(days);
    days = slurp(dir_a, "machine_use.csv");
    assert_contains(days, "\r\nhameau,laser-cutter,month,2026-10-01,2026-10-31,,,\r\n");
    free(days);
    teardown((void **)&g);
}

static void test_only_sites_with_verified_seals(void **state)
{
    struct fixture *f = *state;
    struct site_b alpha, beta, gamma;
    char dir[PATH_MAX], path[PATH_MAX + 32];
    char *pkg, *sites;

    big_sites(f, &alpha, &beta, true);
    sb_init(&gamma, "gamma");
    sb_add(&gamma, "day", 1, "door", at(5, 9, 0), at(5, 9, 0), NULL, NULL);
    sb_register(f, &gamma);
    sb_send(f, &gamma, false);          /* its entries, but no seal */
    assert_int_equal(generate(f, "refused", false, dir), 1);
    snprintf(path, sizeof(path), "%s/datapackage.json", dir);
    assert_int_equal(access(path, F_OK), -1);       /* nothing written */
    /* --partial: the others, and the package says who is missing. */
    assert_int_equal(generate(f, "partial", true, dir), 0);
    pkg = slurp(dir, "datapackage.json");
    assert_contains(pkg, "\"sites_without_verified_seal\": [\n    \"gamma\"\n  ]");
    sites = slurp(dir, "sites.csv");
    assert_null(strstr(sites, "gamma"));
    free(pkg);
    free(sites);
    /* A period nobody sealed. */
    {
        struct opendata_options o = { .period = "2026-09", .producer = "x", .dir = dir,
                                      .licence = &opendata_licences[0], .k = 5, .now = 1 };
        FILE *null = fopen("/dev/null", "w");
        assert_int_equal(opendata_generate(f->db, &o, null, null), 1);
        o.k = 1;
        assert_int_equal(opendata_generate(f->db, &o, null, null), -EINVAL);
        fclose(null);
    }
    free(alpha.es);
    free(beta.es);
    free(gamma.es);
}

static void test_text_cells_cannot_run_as_formulas(void **state)
{
    struct fixture *f = *state;
    struct site_b alpha, beta;
    struct cdb_place place = { .site = "alpha", .label = "=HYPERLINK(\"http://x\",\"y\")",
                               .commune = "Lyon, 1er", .insee_code = "69381",
                               .latitude = "45.7676", .longitude = "-4.8344" };
    char dir[PATH_MAX];
    char *sites;

    big_sites(f, &alpha, &beta, true);
    assert_int_equal(cdb_place_set(f->db, &place), 0);
    assert_int_equal(generate(f, "out", false, dir), 0);
    sites = slurp(dir, "sites.csv");
    assert_contains(sites, "\r\nalpha,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\"Lyon, 1er\","
                           "69381,45.7676,-4.8344,");
    free(sites);
    free(alpha.es);
    free(beta.es);
    /* What the registry accepts. */
    assert_true(opendata_insee_code_ok("2A004"));
    assert_false(opendata_insee_code_ok("2C004"));
    assert_false(opendata_insee_code_ok("6912"));
    assert_true(opendata_coordinate_ok("-179.1234567", 180));
    assert_false(opendata_coordinate_ok("91", 90));
    assert_false(opendata_coordinate_ok("4.", 90));
    assert_false(opendata_coordinate_ok("1e3", 180));
    assert_false(opendata_text_ok("a\x1b[31m", 100));
    assert_false(opendata_text_ok("\xff", 100));
    assert_true(opendata_text_ok("Saint-Étienne", 100));
    assert_false(opendata_category_ok("-laser"));
    assert_false(opendata_category_ok("Laser"));
}

static void test_opendata_pages(void **state)
{
    struct fixture *f = *state;
    struct site_b alpha, beta;
    struct opendata_web_reply r, again;
    char root[PATH_MAX], dir[PATH_MAX];
    char etag[72];

    big_sites(f, &alpha, &beta, true);
    snprintf(root, sizeof(root), "%s/published", f->dir);
    mkdir(root, 0755);
    assert_int_equal(generate(f, "published/" PERIOD, false, dir), 0);

    opendata_web_answer(root, "/opendata/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<a href=\"2026-10/site_days.csv\">"));
    assert_non_null(strstr(r.body, "Tiers-lieux du Rhône"));
    assert_true(r.etag[0] == '"');
    free(r.body);

    opendata_web_answer(root, "/opendata/feed.atom", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
    assert_non_null(strstr(r.body, "href=\"2026-10/datapackage.json\""));
    assert_non_null(strstr(r.body, "<updated>2026-11-04T"));
    free(r.body);

    opendata_web_answer(root, "/opendata/2026-10/site_days.csv", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/csv; charset=utf-8");
    assert_true(r.last_modified > 0);
    snprintf(etag, sizeof(etag), "%s", r.etag);
    free(r.body);
    opendata_web_answer(root, "/opendata/2026-10/site_days.csv", etag, NULL, &again);
    assert_int_equal(again.status, 304);
    assert_null(again.body);
    opendata_web_answer(root, "/opendata/2026-10/site_days.csv", "\"other\", W/" "\"x\"", NULL,
                        &again);
    assert_int_equal(again.status, 200);
    free(again.body);
    opendata_web_answer(root, "/opendata/2026-10/site_days.csv", NULL,
                        "Fri, 31 Dec 9999 23:59:59 GMT", &again);
    assert_int_equal(again.status, 304);

    /* Nothing but the periods' files. */
    static const char *const refused[] = {
        "/opendata/2026-10/../2026-10/site_days.csv", "/opendata/2026-10/.hidden",
        "/opendata/2026-13/site_days.csv", "/opendata/2026-10/site_days.csv.tmp",
        "/opendata/../custodian.db", "/opendata/2026-10/nothing.csv", "/opendata/x",
        "/opendata/2026-10/a/b" };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        opendata_web_answer(root, refused[i], NULL, NULL, &r);
        if (r.status != 404)
            fail_msg("%s: %u", refused[i], r.status);
        free(r.body);
    }
    opendata_web_answer(root, "/opendata/2026-10", NULL, NULL, &r);
    assert_int_equal(r.status, 301);
    assert_string_equal(r.location, "2026-10/");
    free(r.body);
    free(alpha.es);
    free(beta.es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suppress_protects_a_single_cell),
        cmocka_unit_test(test_suppress_closes_bridges),
        cmocka_unit_test(test_suppress_random_tables),
        cmocka_unit_test_setup_teardown(test_figures_and_what_is_withheld, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_regular_member_cannot_be_recovered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_only_sites_with_verified_seals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_cells_cannot_run_as_formulas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opendata_pages, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

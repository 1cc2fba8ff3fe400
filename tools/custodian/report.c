/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "buf.h"
#include "csv.h"
#include "jfield.h"
#include "util.h"

/* ---- the arithmetic ---- */

static int64_t owed(const struct report_visit *v, size_t n, const char *home, const char *host)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].home, home) == 0 && strcmp(v[i].host, host) == 0)
            sum += v[i].amount_cents;
    return sum;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The distinct site names of v, sorted: a malloc()ed array of char[32]. */
static size_t site_names(const struct report_visit *v, size_t n, char (**ret)[32])
{
    char (*names)[32] = calloc(2 * n + 1, sizeof(*names));
    size_t count = 0;

    for (size_t i = 0; names && i < 2 * n; i++) {
        const char *s = i % 2 ? v[i / 2].host : v[i / 2].home;
        size_t k;
        for (k = 0; k < count && strcmp(names[k], s) != 0; k++)
            ;
        if (k == count)
            snprintf(names[count++], sizeof(names[0]), "%s", s);
    }
    if (names)
        qsort(names, count, sizeof(names[0]), by_name);
    *ret = names;
    return names ? count : 0;
}

size_t report_net_balances(const struct report_visit *v, size_t n, struct report_balance *out,
                           size_t max)
{
    char (*names)[32];
    size_t count = site_names(v, n, &names), written = 0;

    for (size_t i = 0; i < count; i++)
        for (size_t j = i + 1; j < count; j++) {
            int64_t net = owed(v, n, names[i], names[j]) - owed(v, n, names[j], names[i]);
            if (net == 0)
                continue;
            if (written < max) {
                struct report_balance *b = &out[written];
                snprintf(b->from, sizeof(b->from), "%s", net > 0 ? names[i] : names[j]);
                snprintf(b->to, sizeof(b->to), "%s", net > 0 ? names[j] : names[i]);
                b->amount_cents = net > 0 ? net : -net;
            }
            written++;
        }
    free(names);
    return written;
}

size_t report_positions(const struct report_visit *v, size_t n, struct report_position *out,
                        size_t max)
{
    char (*names)[32];
    size_t count = site_names(v, n, &names);

    for (size_t i = 0; i < count && i < max; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].site, sizeof(out[i].site), "%s", names[i]);
        for (size_t k = 0; k < n; k++) {
            if (strcmp(v[k].home, v[k].host) == 0)
                continue;
            if (strcmp(v[k].host, names[i]) == 0)
                out[i].earned_cents += v[k].amount_cents;
            if (strcmp(v[k].home, names[i]) == 0)
                out[i].owed_cents += v[k].amount_cents;
        }
    }
    free(names);
    return count;
}

/* ---- building the report ---- */

struct build {
    json_t *sites;
    struct report_visit *visits;
    size_t n_visits, cap_visits;
};

static json_t *site_entry(json_t *sites, const char *name)
{
    size_t i;
    json_t *s;

    json_array_foreach(sites, i, s)
        if (strcmp(json_string_value(json_object_get(s, "site")), name) == 0)
            return s;
    return NULL;
}

static int add_site(const struct cdb_site *site, void *userdata)
{
    struct build *b = userdata;
    json_array_append_new(b->sites, json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:[]}", "site", site->name, "verified_seq",
        (json_int_t)site->verified_seq, "open_problems", (json_int_t)site->open_problems,
        "replays", (json_int_t)site->replays, "records", (json_int_t)0, "amount_cents",
        (json_int_t)0, "by_kind"));
    return 0;
}

static int add_usage(const struct cdb_usage_row *r, void *userdata)
{
    struct build *b = userdata;
    json_t *s = site_entry(b->sites, r->site);

    if (!s)
        return 0;
    json_array_append_new(json_object_get(s, "by_kind"), json_pack(
        "{s:s, s:I, s:I, s:I}", "kind", r->kind, "records", (json_int_t)r->records, "quantity",
        (json_int_t)r->quantity, "amount_cents", (json_int_t)r->amount_cents));
    json_object_set_new(s, "records", json_integer(
        json_integer_value(json_object_get(s, "records")) + r->records));
    json_object_set_new(s, "amount_cents", json_integer(
        json_integer_value(json_object_get(s, "amount_cents")) + r->amount_cents));
    return 0;
}

static int add_visit(const struct cdb_visit_row *r, void *userdata)
{
    struct build *b = userdata;

    if (ARRAY_RESERVE(b->visits, b->n_visits, b->cap_visits, 64) < 0)
        return -ENOMEM;
    memset(&b->visits[b->n_visits], 0, sizeof(b->visits[0]));
    snprintf(b->visits[b->n_visits].home, sizeof(b->visits[0].home), "%s", r->home);
    snprintf(b->visits[b->n_visits].host, sizeof(b->visits[0].host), "%s", r->host);
    b->visits[b->n_visits].visits = r->visits;
    b->visits[b->n_visits].amount_cents = r->amount_cents;
    b->n_visits++;
    return 0;
}

static int add_problem(const struct cdb_problem *p, void *userdata)
{
    char at[32];
    if (p->resolved_at || strcmp(p->kind, "replay") == 0)
        return 0;       /* open problems only; replays are counted per site */
    format_utc(p->at, at, sizeof(at));
    json_array_append_new(userdata, json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s}", "at", at, "site", p->site, "kind", p->kind, "first_seq",
        (json_int_t)p->first_seq, "last_seq", (json_int_t)p->last_seq, "detail", p->detail));
    return 0;
}

static int add_seal(const struct cdb_seal *seal, void *userdata)
{
    char sha[2 * sizeof(seal->archive_sha256) + 1], hash[2 * LEDGER_HASH_LEN + 1];

    sodium_bin2hex(sha, sizeof(sha), seal->archive_sha256, sizeof(seal->archive_sha256));
    sodium_bin2hex(hash, sizeof(hash), seal->last_hash, sizeof(seal->last_hash));
    json_array_append_new(userdata, json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:I}", "site", seal->site, "state", seal->state, "last_seq",
        (json_int_t)seal->last_seq, "last_hash", hash, "archive_sha256", sha, "closed_at",
        (json_int_t)seal->closed_at));
    return 0;
}

json_t *report_build(struct cdb *db, const char *period, int *ret_err)
{
    struct build b = { 0 };
    char first[11], last[11];
    json_t *visits = NULL, *balances = NULL, *positions = NULL, *problems = NULL, *out = NULL;
    json_t *seals = NULL;
    struct report_balance *bal = NULL;
    struct report_position *pos = NULL;
    size_t n_bal, n_pos;
    int r;

    *ret_err = 0;
    if (period_days(period, first, last) < 0) {
        *ret_err = -EINVAL;
        return NULL;
    }
    b.sites = json_array();
    visits = json_array();
    balances = json_array();
    positions = json_array();
    problems = json_array();
    seals = json_array();
    if ((r = cdb_sites_foreach(db, add_site, &b)) < 0 ||
        (r = cdb_seals_foreach(db, NULL, period, add_seal, seals)) < 0 ||
        (r = cdb_usage_foreach(db, first, last, add_usage, &b)) < 0 ||
        (r = cdb_visits_foreach(db, first, last, add_visit, &b)) < 0 ||
        (r = cdb_problems_foreach(db, NULL, 0, 1000, add_problem, problems)) < 0) {
        *ret_err = r;
        goto out;
    }
    for (size_t i = 0; i < b.n_visits; i++)
        json_array_append_new(visits, json_pack(
            "{s:s, s:s, s:I, s:I}", "home", b.visits[i].home, "host", b.visits[i].host, "visits",
            (json_int_t)b.visits[i].visits, "amount_cents", (json_int_t)b.visits[i].amount_cents));
    n_bal = report_net_balances(b.visits, b.n_visits, NULL, 0);
    n_pos = report_positions(b.visits, b.n_visits, NULL, 0);
    bal = calloc(n_bal + 1, sizeof(*bal));
    pos = calloc(n_pos + 1, sizeof(*pos));
    if (!bal || !pos) {
        *ret_err = -ENOMEM;
        goto out;
    }
    report_net_balances(b.visits, b.n_visits, bal, n_bal);
    report_positions(b.visits, b.n_visits, pos, n_pos);
    for (size_t i = 0; i < n_bal; i++)
        json_array_append_new(balances, json_pack("{s:s, s:s, s:I}", "from", bal[i].from, "to",
                                                  bal[i].to, "amount_cents",
                                                  (json_int_t)bal[i].amount_cents));
    for (size_t i = 0; i < n_pos; i++)
        json_array_append_new(positions, json_pack(
            "{s:s, s:I, s:I, s:I}", "site", pos[i].site, "earned_cents",
            (json_int_t)pos[i].earned_cents, "owed_cents", (json_int_t)pos[i].owed_cents,
            "net_cents", (json_int_t)(pos[i].earned_cents - pos[i].owed_cents)));
    out = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:O}", "period", period,
                    "first_day", first, "last_day", last, "currency", "EUR", "sites", b.sites,
                    "visits", visits, "balances", balances, "positions", positions, "problems",
                    problems, "seals", seals);
    if (!out)
        *ret_err = -ENOMEM;
out:
    json_decref(b.sites);
    json_decref(visits);
    json_decref(balances);
    json_decref(positions);
    json_decref(problems);
    json_decref(seals);
    free(b.visits);
    free(bal);
    free(pos);
    return out;
}

/* ---- rendering ---- */

static void csv_line(struct csv *c, const char *section, const char *site, const char *other,
                     const char *kind, json_int_t count, json_int_t quantity, json_int_t cents,
                     const char *detail)
{
    csv_text(c, section);
    csv_text(c, site);
    csv_text(c, other);
    csv_text(c, kind);
    csv_int(c, count);
    csv_int(c, quantity);
    csv_cents(c, cents);
    csv_text(c, detail);
    csv_end_row(c);
}

static char *report_csv(json_t *rep)
{
    static const char *const cols[] = { "section", "site", "other_site", "kind", "count",
                                        "quantity", "amount", "detail" };
    struct csv c;
    json_t *s, *k;
    size_t i, j;

    csv_init(&c, CSV_RFC4180);
    csv_row(&c, cols, sizeof(cols) / sizeof(cols[0]));
    json_array_foreach(json_object_get(rep, "sites"), i, s)
        json_array_foreach(json_object_get(s, "by_kind"), j, k)
            csv_line(&c, "usage", jstr(s, "site"), "", jstr(k, "kind"), jint(k, "records"),
                     jint(k, "quantity"), jint(k, "amount_cents"), "");
    json_array_foreach(json_object_get(rep, "visits"), i, s)
        csv_line(&c, "visits", jstr(s, "home"), jstr(s, "host"), "visit", jint(s, "visits"), 0,
                 jint(s, "amount_cents"), "");
    json_array_foreach(json_object_get(rep, "balances"), i, s)
        csv_line(&c, "balance", jstr(s, "from"), jstr(s, "to"), "pays", 0, 0,
                 jint(s, "amount_cents"), "");
    json_array_foreach(json_object_get(rep, "positions"), i, s)
        csv_line(&c, "position", jstr(s, "site"), "", "net", 0, 0, jint(s, "net_cents"), "");
    json_array_foreach(json_object_get(rep, "problems"), i, s)
        csv_line(&c, "problem", jstr(s, "site"), "", jstr(s, "kind"), jint(s, "first_seq"),
                 jint(s, "last_seq"), 0, jstr(s, "detail"));
    json_array_foreach(json_object_get(rep, "seals"), i, s)
        csv_line(&c, "seal", jstr(s, "site"), "", jstr(s, "state"), jint(s, "last_seq"), 0, 0,
                 jstr(s, "archive_sha256"));
    return csv_take(&c, NULL);
}

char *report_render(json_t *rep, const char *format)
{
    struct buf t = { 0 };
    json_t *s;
    size_t i;
    char m1[48], m2[48], m3[48];

    if (strcmp(format, "json") == 0)
        return json_dumps(rep, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (strcmp(format, "csv") == 0)
        return report_csv(rep);
    buf_printf(&t, "Consortium report %s (%s to %s), amounts in EUR\n\n", jstr(rep, "period"),
               jstr(rep, "first_day"), jstr(rep, "last_day"));
    buf_printf(&t, "%-20s %10s %10s %12s %8s %8s\n", "SITE", "VERIFIED", "RECORDS", "AMOUNT",
               "PROBLEMS", "REPLAYS");
    json_array_foreach(json_object_get(rep, "sites"), i, s)
        buf_printf(&t, "%-20s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %12s %8"
                   JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT "\n", jstr(s, "site"),
                   jint(s, "verified_seq"), jint(s, "records"),
                   format_cents(jint(s, "amount_cents"), '.', m1, sizeof(m1)),
                   jint(s, "open_problems"), jint(s, "replays"));
    buf_printf(&t, "\nVisits (home site -> host site)\n");
    json_array_foreach(json_object_get(rep, "visits"), i, s)
        buf_printf(&t, "  %-20s -> %-20s %6" JSON_INTEGER_FORMAT " visits %12s\n", jstr(s, "home"),
                   jstr(s, "host"), jint(s, "visits"),
                   format_cents(jint(s, "amount_cents"), '.', m1, sizeof(m1)));
    buf_printf(&t, "\nBalances (net, who pays whom)\n");
    json_array_foreach(json_object_get(rep, "balances"), i, s)
        buf_printf(&t, "  %-20s pays %-20s %12s\n", jstr(s, "from"), jstr(s, "to"),
                   format_cents(jint(s, "amount_cents"), '.', m1, sizeof(m1)));
    buf_printf(&t, "\nPositions (earned as host - owed as home)\n");
    json_array_foreach(json_object_get(rep, "positions"), i, s)
        buf_printf(&t, "  %-20s earned %12s owed %12s net %12s\n", jstr(s, "site"),
                   format_cents(jint(s, "earned_cents"), '.', m1, sizeof(m1)),
                   format_cents(jint(s, "owed_cents"), '.', m2, sizeof(m2)),
                   format_cents(jint(s, "net_cents"), '.', m3, sizeof(m3)));
    buf_printf(&t, "\nPeriod seals (closed at the sites)\n");
    if (json_array_size(json_object_get(rep, "seals")) == 0)
        buf_printf(&t, "  none received\n");
    json_array_foreach(json_object_get(rep, "seals"), i, s)
        buf_printf(&t, "  %-20s ledger up to %10" JSON_INTEGER_FORMAT "  %-8s archive sha256 %s\n",
                   jstr(s, "site"), jint(s, "last_seq"), jstr(s, "state"),
                   jstr(s, "archive_sha256"));
    buf_printf(&t, "\nOpen problems: %zu\n", json_array_size(json_object_get(rep, "problems")));
    json_array_foreach(json_object_get(rep, "problems"), i, s)
        buf_printf(&t, "  %s %s %s %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT ": %s\n",
                   jstr(s, "at"), jstr(s, "site"), jstr(s, "kind"), jint(s, "first_seq"),
                   jint(s, "last_seq"), jstr(s, "detail"));
    return buf_take(&t, NULL);
}

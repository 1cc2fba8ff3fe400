/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "opendata.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "ledger.h"
#include "period_seal.h"
#include "seals.h"
#include "suppress.h"
#include "util.h"

#define DAYS_MAX 31
#define WEEKS_MAX 6                 /* a month touches at most 6 ISO weeks */
#define NEAR_BOUNDARY 7200          /* seconds around a day's start ruled by the exact clock */
#define UNMAPPED_LISTED 32
#define VISITOR_BIT (UINT64_C(1) << 63)

const struct opendata_licence opendata_licences[] = {
    { "etalab-2.0", "Licence Ouverte / Open Licence version 2.0",
      "https://www.etalab.gouv.fr/licence-ouverte-open-licence/" },
    { "odc-odbl-1.0", "Open Data Commons Open Database License (ODbL) 1.0",
      "https://opendatacommons.org/licenses/odbl/1-0/" },
    { "cc-by-4.0", "Creative Commons Attribution 4.0 International",
      "https://creativecommons.org/licenses/by/4.0/" },
    { "cc0-1.0", "Creative Commons Zero 1.0 Universal",
      "https://creativecommons.org/publicdomain/zero/1.0/" },
    { NULL, NULL, NULL },
};

const struct opendata_licence *opendata_licence_find(const char *id)
{
    for (const struct opendata_licence *l = opendata_licences; l->id; l++)
        if (strcmp(l->id, id) == 0)
            return l;
    return NULL;
}

/* ---- checks of what the operator enters ---- */

bool opendata_insee_code_ok(const char *s)
{
    /* Code officiel géographique: département (2 digits, or 2A/2B for Corsica), then 3. */
    if (strlen(s) != 5)
        return false;
    if (!((s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9') ||
          (s[0] == '2' && (s[1] == 'A' || s[1] == 'B'))))
        return false;
    for (int i = 2; i < 5; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool opendata_coordinate_ok(const char *s, int max_degrees)
{
    const char *p = s;
    int whole = 0, frac = 0;
    char *end;
    double v;

    if (*p == '-')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        whole++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            frac++;
    if (*p || whole < 1 || whole > 3 || (p[-1] == '.') || frac > 7)
        return false;
    v = strtod(s, &end);
    return *end == '\0' && v >= -max_degrees && v <= max_degrees;
}

bool opendata_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    char *copy;
    bool ok;

    if (n == 0 || n >= max)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    copy = strdup(s);
    if (!copy)
        return false;
    utf8_sanitize(copy);
    ok = strcmp(copy, s) == 0;
    free(copy);
    return ok;
}

bool opendata_category_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 31 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* ---- the period's calendar: billing days, weeks clipped to the month ---- */

enum grain { GRAIN_DAY, GRAIN_WEEK, GRAIN_MONTH };
static const char *const grain_names[] = { "day", "week", "month" };

struct calendar {
    char period[8], first[11], last[11];
    unsigned ndays;
    unsigned offset;            /* weekday of the first day, Monday = 0 */
    unsigned nweeks;
};

static int calendar_init(struct calendar *c, const char *period)
{
    struct tm tm = { 0 };
    time_t t;

    if (strlen(period) != 7 || period_days(period, c->first, c->last) < 0)
        return -EINVAL;
    snprintf(c->period, sizeof(c->period), "%s", period);
    c->ndays = (unsigned)atoi(c->last + 8);
    tm.tm_year = atoi(period) - 1900;
    tm.tm_mon = atoi(period + 5) - 1;
    tm.tm_mday = 1;
    t = timegm(&tm);
    gmtime_r(&t, &tm);
    c->offset = (unsigned)(tm.tm_wday + 6) % 7;
    c->nweeks = (c->ndays - 1 + c->offset) / 7 + 1;
    return 0;
}

static unsigned slots_of(const struct calendar *c, enum grain g)
{
    return g == GRAIN_DAY ? c->ndays : g == GRAIN_WEEK ? c->nweeks : 1;
}

static unsigned slot_of(const struct calendar *c, enum grain g, unsigned day)
{
    return g == GRAIN_DAY ? day : g == GRAIN_WEEK ? (day + c->offset) / 7 : 0;
}

static void slot_days(const struct calendar *c, enum grain g, unsigned slot, unsigned *first,
                      unsigned *last)
{
    if (g == GRAIN_DAY) {
        *first = *last = slot;
    } else if (g == GRAIN_WEEK) {
        int a = (int)(slot * 7) - (int)c->offset, b = a + 6;
        *first = a < 0 ? 0 : (unsigned)a;
        *last = b >= (int)c->ndays ? c->ndays - 1 : (unsigned)b;
    } else {
        *first = 0;
        *last = c->ndays - 1;
    }
}

static void day_name(const struct calendar *c, unsigned day, char out[11])
{
    snprintf(out, 11, "%s-%02u", c->period, day + 1);
}

/* ---- what is collected per site ---- */

struct day_person {
    uint32_t day;
    uint64_t person;            /* a member id, or VISITOR_BIT | 63 bits of a pseudonym */
};

struct span {
    int64_t start, end;
    uint64_t member;
};

struct session {
    uint32_t cat, day;
    uint64_t member;
    int64_t minutes;
};

struct home_visit {
    uint32_t home;
    uint64_t person;
};

struct vec {
    void *v;
    size_t n, cap;
};

static void *vec_push(struct vec *x, size_t size)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 256;
        void *v = realloc(x->v, cap * size);
        if (!v)
            return NULL;
        x->v = v;
        x->cap = cap;
    }
    return (char *)x->v + size * x->n++;
}

struct site_data {
    struct cdb_site site;
    struct cdb_seal seal;
    struct cdb_place place;
    char seal_sha256[2 * crypto_hash_sha256_BYTES + 1];
    int64_t ws[DAYS_MAX + 1];               /* UTC start of each billing day, and the end */
    struct vec people, visitors, occupants, spans, sessions, home_visits;
    struct cdb_machine_category *mapping;   /* the registry's categories of its machines */
    size_t n_mapping, cap_mapping;
    char (*categories)[32];                 /* published categories, as met */
    size_t n_categories;
    char unmapped[UNMAPPED_LISTED][32];
    size_t n_unmapped;
    int64_t first_seq, counted;
    int64_t peak[DAYS_MAX], open_seconds[DAYS_MAX];
    enum grain day_grain;
    enum grain *cat_grain;                  /* per category: week, or month if too few */
    bool included;
};

static void site_data_free(struct site_data *s)
{
    free(s->people.v);
    free(s->visitors.v);
    free(s->occupants.v);
    free(s->spans.v);
    free(s->sessions.v);
    free(s->home_visits.v);
    free(s->mapping);
    free(s->categories);
    free(s->cat_grain);
}

/* ---- billing days on the site's clock ---- */

static int day_index(const struct calendar *c, const char *day)
{
    if (strncmp(day, c->period, 7) != 0 || day[7] != '-')
        return -1;
    return atoi(day + 8) - 1;
}

/* ws[d]: the first instant whose billing day is day d (the one after the period for d =
 * ndays), found with the very rule the custodian stores entries by (ingest_billing_day). */
static void day_windows(struct site_data *s, const struct calendar *c)
{
    struct tm tm = { 0 };
    char want[11], got[11];

    tm.tm_year = atoi(c->period) - 1900;
    tm.tm_mon = atoi(c->period + 5) - 1;
    for (unsigned d = 0; d <= c->ndays; d++) {
        int64_t lo, hi;
        tm.tm_mday = (int)d + 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        lo = (int64_t)timegm(&tm) - 2 * 86400;
        hi = lo + 4 * 86400;
        strftime(want, sizeof(want), "%Y-%m-%d", &tm);      /* timegm normalised it */
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            ingest_billing_day(s->site.timezone, s->site.day_starts, mid, got);
            if (strcmp(got, want) >= 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        s->ws[d] = lo;
    }
}

/* The billing day of t in the period, or -1. Away from a day's start the windows answer;
 * near one (a day start inside a repeated daylight-saving hour is not monotonic), the
 * clock does. */
static int billing_day_of(const struct site_data *s, const struct calendar *c, int64_t t)
{
    char day[11];
    unsigned lo = 0, hi = c->ndays + 1;

    if (t < s->ws[0] - NEAR_BOUNDARY || t >= s->ws[c->ndays] + NEAR_BOUNDARY)
        return -1;
    while (lo < hi) {           /* the number of day starts at or before t */
        unsigned mid = (lo + hi) / 2;
        if (s->ws[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if ((lo > 0 && t - s->ws[lo - 1] < NEAR_BOUNDARY) ||
        (lo <= c->ndays && s->ws[lo] - t <= NEAR_BOUNDARY)) {
        ingest_billing_day(s->site.timezone, s->site.day_starts, t, day);
        return day_index(c, day);
    }
    return lo >= 1 && lo <= c->ndays ? (int)lo - 1 : -1;
}

/* The day window holding t, for a t inside the period's windows. */
static unsigned window_of(const struct site_data *s, const struct calendar *c, int64_t t)
{
    unsigned lo = 0, hi = c->ndays;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (s->ws[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- reading a site's entries: checked against its seal, counted ---- */

struct collect {
    struct site_data *s;
    const struct calendar *c;
    const struct site_data *sites;          /* every site, sorted by name: visitors' homes */
    size_t n_sites;
    struct seals_chain chain;               /* from the period's first entry */
};

static int home_index(const struct collect *x, const char *home)
{
    size_t lo = 0, hi = x->n_sites;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(x->sites[mid].site.name, home);
        if (cmp == 0)
            return x->sites[mid].included ? (int)mid : -1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Machines are few at a site: linear searches are enough. */
static int category_of(struct collect *x, const char *machine, uint32_t *ret)
{
    struct site_data *s = x->s;
    const char *cat = OPENDATA_OTHER_CATEGORY;
    char tame[32];
    size_t i;

    for (i = 0; i < s->n_mapping; i++)
        if (strcmp(s->mapping[i].machine, machine) == 0) {
            cat = s->mapping[i].category;
            break;
        }
    if (i == s->n_mapping) {
        /* Listed to the operator's terminal: a name from the network, so only tame bytes. */
        snprintf(tame, sizeof(tame), "%s", machine);
        for (char *u = tame; *u; u++)
            if (!((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
                  (*u >= '0' && *u <= '9') || *u == '-' || *u == '_' || *u == '.'))
                *u = '?';
        for (i = 0; i < s->n_unmapped && strcmp(s->unmapped[i], tame) != 0; i++)
            ;
        if (i == s->n_unmapped && i < UNMAPPED_LISTED)
            memcpy(s->unmapped[s->n_unmapped++], tame, sizeof(tame));
    }
    for (i = 0; i < s->n_categories && strcmp(s->categories[i], cat) != 0; i++)
        ;
    if (i == s->n_categories) {
        char (*c)[32] = realloc(s->categories, (i + 1) * sizeof(*c));
        if (!c)
            return -ENOMEM;
        s->categories = c;
        snprintf(s->categories[s->n_categories++], sizeof(c[0]), "%s", cat);
    }
    *ret = (uint32_t)i;
    return 0;
}

static uint64_t visitor_person(const char *hex)
{
    uint64_t v = 0;
    for (int i = 0; i < 16 && hex[i]; i++) {
        char ch = hex[i];
        v = v << 4 | (uint64_t)(ch >= 'a' ? ch - 'a' + 10 : ch >= 'A' ? ch - 'A' + 10 : ch - '0');
    }
    return v | VISITOR_BIT;
}

static int push_day_person(struct vec *v, unsigned day, uint64_t person)
{
    struct day_person *p = vec_push(v, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->day = day;
    p->person = person;
    return 0;
}

static int collect_entry(const struct ledger_entry *e, void *userdata)
{
    struct collect *x = userdata;
    struct site_data *s = x->s;
    uint64_t member = (uint64_t)e->member_id & ~VISITOR_BIT;
    int day, r = 0;

    /* The chain, again: each entry hashes to what is stored and the next one names it, up
     * to the seal's last_hash (checked at the end). */
    if ((r = seals_chain_next(&x->chain, e)) < 0)
        return r;

    /* Corrections change amounts, which are not published; kinds of later versions are
     * not known here. */
    if (strcmp(e->kind, "day") != 0 && strcmp(e->kind, "presence") != 0 &&
        strcmp(e->kind, "machine") != 0 && strcmp(e->kind, "visit") != 0)
        return 0;
    day = billing_day_of(s, x->c, e->started_at);
    if (day < 0)
        return 0;
    s->counted++;
    if (strcmp(e->kind, "visit") == 0) {
        uint64_t person = visitor_person(e->visitor);
        int home = home_index(x, e->home);
        if ((r = push_day_person(&s->people, (unsigned)day, person)) < 0 ||
            (r = push_day_person(&s->visitors, (unsigned)day, person)) < 0)
            return r;
        if (home >= 0 && strcmp(e->home, s->site.name) != 0) {
            struct home_visit *h = vec_push(&s->home_visits, sizeof(*h));
            if (!h)
                return -ENOMEM;
            h->home = (uint32_t)home;
            h->person = person;
        }
        return 0;
    }
    if ((r = push_day_person(&s->people, (unsigned)day, member)) < 0)
        return r;
    if (strcmp(e->kind, "presence") == 0) {
        struct span *sp = vec_push(&s->spans, sizeof(*sp));
        if (!sp)
            return -ENOMEM;
        sp->start = e->started_at;
        sp->end = e->ended_at;
        sp->member = member;
    } else if (strcmp(e->kind, "machine") == 0) {
        struct session *ss = vec_push(&s->sessions, sizeof(*ss));
        uint32_t cat;
        if (!ss)
            return -ENOMEM;
        if ((r = category_of(x, e->resource, &cat)) < 0)
            return r;
        ss->cat = cat;
        ss->day = (uint32_t)day;
        ss->member = member;
        ss->minutes = e->quantity > 0 ? e->quantity : 0;
    }
    return 0;
}

static int cmp_day_person(const void *a, const void *b)
{
    const struct day_person *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return x->person < y->person ? -1 : x->person > y->person;
}

static void sort_unique(struct vec *v)
{
    struct day_person *p = v->v;
    size_t out = 0;

    if (!v->n)
        return;
    qsort(p, v->n, sizeof(*p), cmp_day_person);
    for (size_t i = 0; i < v->n; i++)
        if (out == 0 || cmp_day_person(&p[out - 1], &p[i]) != 0)
            p[out++] = p[i];
    v->n = out;
}

/* ---- occupancy: presence records swept over the day windows ---- */

struct event {
    int64_t t;
    int type;                   /* 0 a departure, 1 a day starts, 2 an arrival */
};

static int cmp_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->type - y->type;   /* half-open stays: who leaves at 10:00 meets no one coming */
}

static int occupancy(struct site_data *s, const struct calendar *c)
{
    const struct span *sp = s->spans.v;
    struct vec events = { 0 };
    int64_t level = 0, since = 0;
    unsigned day = 0;
    int r = 0;

    for (size_t i = 0; i < s->spans.n; i++) {
        int64_t a = sp[i].start < s->ws[0] ? s->ws[0] : sp[i].start;
        int64_t b = sp[i].end > s->ws[c->ndays] ? s->ws[c->ndays] : sp[i].end;
        struct event *e;
        if (b <= a)
            continue;
        if (!(e = vec_push(&events, sizeof(*e))))
            goto nomem;
        *e = (struct event){ a, 2 };
        if (!(e = vec_push(&events, sizeof(*e))))
            goto nomem;
        *e = (struct event){ b, 0 };
        for (unsigned d = window_of(s, c, a); d <= window_of(s, c, b - 1); d++)
            if ((r = push_day_person(&s->occupants, d, sp[i].member)) < 0)
                goto out;
    }
    for (unsigned d = 1; d < c->ndays; d++) {
        struct event *e = vec_push(&events, sizeof(*e));
        if (!e)
            goto nomem;
        *e = (struct event){ s->ws[d], 1 };
    }
    qsort(events.v, events.n, sizeof(struct event), cmp_event);
    for (size_t i = 0; i < events.n; i++) {
        const struct event *e = &((struct event *)events.v)[i];
        if (e->type == 1) {
            if (level > 0) {
                s->open_seconds[day] += e->t - since;
                since = e->t;
            }
            day++;
            if (level > s->peak[day])
                s->peak[day] = level;
        } else if (e->type == 2) {
            if (level++ == 0)
                since = e->t;
            if (level > s->peak[day])
                s->peak[day] = level;
        } else if (--level == 0) {
            s->open_seconds[day] += e->t - since;
        }
    }
    sort_unique(&s->occupants);
    goto out;
nomem:
    r = -ENOMEM;
out:
    free(events.v);
    return r;
}

/* ---- figures per row ---- */

struct day_figures {
    int64_t visits, people;             /* person-days; distinct people behind them */
    int64_t visitor_days, visitors;
    int64_t peak, open_seconds, occupants;
};

struct slot_person {
    uint32_t slot;
    uint64_t person;
};

static int cmp_slot_person(const void *a, const void *b)
{
    const struct slot_person *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->person < y->person ? -1 : x->person > y->person;
}

/* Pairs per slot (v sorted, unique by day and person) and distinct people per slot. */
static int per_slot(const struct vec *v, const struct calendar *c, enum grain g, int64_t *pairs,
                    int64_t *distinct)
{
    const struct day_person *p = v->v;
    struct slot_person *sp;
    size_t n = v->n;

    for (size_t i = 0; i < n; i++)
        pairs[slot_of(c, g, p[i].day)]++;
    if (g == GRAIN_DAY) {
        for (size_t i = 0; i < n; i++)
            distinct[p[i].day]++;
        return 0;
    }
    sp = malloc((n + 1) * sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        sp[i] = (struct slot_person){ slot_of(c, g, p[i].day), p[i].person };
    qsort(sp, n, sizeof(*sp), cmp_slot_person);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cmp_slot_person(&sp[i - 1], &sp[i]) != 0)
            distinct[sp[i].slot]++;
    free(sp);
    return 0;
}

static int day_figures(const struct site_data *s, const struct calendar *c, enum grain g,
                       struct day_figures *f)
{
    unsigned n = slots_of(c, g);
    int64_t a[DAYS_MAX] = { 0 }, b[DAYS_MAX] = { 0 };
    int r;

    memset(f, 0, n * sizeof(*f));
    if ((r = per_slot(&s->people, c, g, a, b)) < 0)
        return r;
    for (unsigned i = 0; i < n; i++) {
        f[i].visits = a[i];
        f[i].people = b[i];
    }
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    if ((r = per_slot(&s->visitors, c, g, a, b)) < 0)
        return r;
    for (unsigned i = 0; i < n; i++) {
        f[i].visitor_days = a[i];
        f[i].visitors = b[i];
    }
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    if ((r = per_slot(&s->occupants, c, g, a, b)) < 0)
        return r;
    for (unsigned i = 0; i < n; i++)
        f[i].occupants = b[i];
    for (unsigned d = 0; d < c->ndays; d++) {
        struct day_figures *x = &f[slot_of(c, g, d)];
        if (s->peak[d] > x->peak)
            x->peak = s->peak[d];
        x->open_seconds += s->open_seconds[d];
    }
    return 0;
}

struct machine_figures {
    int64_t minutes, sessions, people;
    int64_t energy_wh, metered;         /* no ledger entry carries energy yet: always 0 */
};

struct cat_slot_person {
    uint32_t cat, slot;
    uint64_t person;
};

static int cmp_csp(const void *a, const void *b)
{
    const struct cat_slot_person *x = a, *y = b;
    if (x->cat != y->cat)
        return x->cat < y->cat ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->person < y->person ? -1 : x->person > y->person;
}

/* f: n_categories x slots, by category then slot. */
static int machine_figures(const struct site_data *s, const struct calendar *c, enum grain g,
                           struct machine_figures *f)
{
    const struct session *ss = s->sessions.v;
    unsigned n = slots_of(c, g);
    struct cat_slot_person *k = malloc((s->sessions.n + 1) * sizeof(*k));

    if (!k)
        return -ENOMEM;
    memset(f, 0, s->n_categories * n * sizeof(*f));
    for (size_t i = 0; i < s->sessions.n; i++) {
        unsigned slot = slot_of(c, g, ss[i].day);
        struct machine_figures *x = &f[ss[i].cat * n + slot];
        x->minutes += ss[i].minutes;
        x->sessions++;
        k[i] = (struct cat_slot_person){ ss[i].cat, slot, ss[i].member };
    }
    qsort(k, s->sessions.n, sizeof(*k), cmp_csp);
    for (size_t i = 0; i < s->sessions.n; i++)
        if (i == 0 || cmp_csp(&k[i - 1], &k[i]) != 0)
            f[k[i].cat * n + k[i].slot].people++;
    free(k);
    return 0;
}

/* ---- the published tables ---- */

struct day_row {
    uint32_t site;
    enum grain grain;
    unsigned first, last;
    struct day_figures f;
    bool hide_visits, hide_visitor_days, hide_occupancy;
};

struct machine_row {
    uint32_t site, cat;
    enum grain grain;
    unsigned first, last;
    struct machine_figures f;
    bool hide;
};

struct pair_row {
    uint32_t home, host;
    int64_t visits, people;
    bool hide;
};

struct dataset {
    const struct opendata_options *o;
    struct calendar cal;
    struct site_data *sites;            /* every registered site, by name */
    size_t n_sites;
    struct day_row *days;
    size_t n_days;
    struct machine_row *machines;
    size_t n_machines;
    struct pair_row *pairs;
    size_t n_pairs;
    size_t hidden_primary, hidden_complement;
};

/* A site's grain, and each of its machine categories': the finest at which at most half of
 * the rows would have a primary cell. */
static int choose_grains(struct dataset *ds, struct site_data *s)
{
    const struct calendar *c = &ds->cal;
    struct day_figures f[DAYS_MAX];
    struct machine_figures *m;
    unsigned k = (unsigned)ds->o->k;
    int r;

    s->day_grain = GRAIN_MONTH;
    for (enum grain g = GRAIN_DAY; g < GRAIN_MONTH; g++) {
        unsigned n = slots_of(c, g), primary = 0;
        if ((r = day_figures(s, c, g, f)) < 0)
            return r;
        for (unsigned i = 0; i < n; i++)
            primary += f[i].people < k;
        if (2 * primary <= n) {
            s->day_grain = g;
            break;
        }
    }
    if (!s->n_categories)
        return 0;
    s->cat_grain = calloc(s->n_categories, sizeof(*s->cat_grain));
    m = malloc(s->n_categories * c->nweeks * sizeof(*m));
    if (!m || !s->cat_grain) {
        free(m);
        return -ENOMEM;
    }
    r = machine_figures(s, c, GRAIN_WEEK, m);
    for (size_t cat = 0; r == 0 && cat < s->n_categories; cat++) {
        unsigned primary = 0;
        for (unsigned w = 0; w < c->nweeks; w++)
            primary += m[cat * c->nweeks + w].people < k;
        s->cat_grain[cat] = 2 * primary <= c->nweeks ? GRAIN_WEEK : GRAIN_MONTH;
    }
    free(m);
    return r;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int build_tables(struct dataset *ds)
{
    const struct calendar *c = &ds->cal;
    size_t n_cells = 0;
    struct suppress_cell *cells = NULL;
    uint32_t row_id = 0;
    int r = 0;

    /* site_days */
    ds->days = calloc(ds->n_sites * DAYS_MAX + 1, sizeof(*ds->days));
    if (!ds->days)
        return -ENOMEM;
    for (size_t si = 0; si < ds->n_sites; si++) {
        struct site_data *s = &ds->sites[si];
        struct day_figures f[DAYS_MAX];
        unsigned n;
        if (!s->included)
            continue;
        if ((r = day_figures(s, c, s->day_grain, f)) < 0)
            return r;
        n = slots_of(c, s->day_grain);
        for (unsigned i = 0; i < n; i++) {
            struct day_row *d = &ds->days[ds->n_days++];
            d->site = (uint32_t)si;
            d->grain = s->day_grain;
            slot_days(c, s->day_grain, i, &d->first, &d->last);
            d->f = f[i];
        }
    }

    /* machine_use: categories in name order, each at its grain */
    for (size_t si = 0; si < ds->n_sites; si++) {
        struct site_data *s = &ds->sites[si];
        if (s->included)
            for (size_t cat = 0; cat < s->n_categories; cat++)
                n_cells += slots_of(c, s->cat_grain[cat]);
    }
    ds->machines = calloc(n_cells + 1, sizeof(*ds->machines));
    if (!ds->machines)
        return -ENOMEM;
    for (size_t si = 0; si < ds->n_sites; si++) {
        struct site_data *s = &ds->sites[si];
        struct machine_figures *week = NULL, *month = NULL;
        char (*sorted)[32] = NULL;
        if (!s->included || !s->n_categories)
            continue;
        week = malloc(s->n_categories * c->nweeks * sizeof(*week));
        month = malloc(s->n_categories * sizeof(*month));
        sorted = malloc(s->n_categories * sizeof(*sorted));
        if (!week || !month || !sorted || (r = machine_figures(s, c, GRAIN_WEEK, week)) < 0 ||
            (r = machine_figures(s, c, GRAIN_MONTH, month)) < 0) {
            free(week);
            free(month);
            free(sorted);
            return r < 0 ? r : -ENOMEM;
        }
        memcpy(sorted, s->categories, s->n_categories * sizeof(*sorted));
        qsort(sorted, s->n_categories, sizeof(*sorted), cmp_name);
        for (size_t k = 0; k < s->n_categories; k++) {
            uint32_t cat;
            enum grain g;
            unsigned n;
            for (cat = 0; strcmp(s->categories[cat], sorted[k]) != 0; cat++)
                ;
            g = s->cat_grain[cat];
            n = slots_of(c, g);
            for (unsigned i = 0; i < n; i++) {
                struct machine_row *x = &ds->machines[ds->n_machines++];
                x->site = (uint32_t)si;
                x->cat = cat;
                x->grain = g;
                slot_days(c, g, i, &x->first, &x->last);
                x->f = g == GRAIN_WEEK ? week[cat * n + i] : month[cat];
            }
        }
        free(week);
        free(month);
        free(sorted);
    }

    /* visits_between_sites: every ordered pair of published sites */
    ds->pairs = calloc(ds->n_sites * ds->n_sites + 1, sizeof(*ds->pairs));
    if (!ds->pairs)
        return -ENOMEM;
    for (size_t home = 0; home < ds->n_sites; home++)
        for (size_t host = 0; host < ds->n_sites; host++)
            if (home != host && ds->sites[home].included && ds->sites[host].included) {
                struct pair_row *p = &ds->pairs[ds->n_pairs++];
                p->home = (uint32_t)home;
                p->host = (uint32_t)host;
            }
    {
        /* per host: visits and distinct visitors of each home */
        int64_t *visits = calloc(ds->n_sites + 1, sizeof(*visits));
        int64_t *people = calloc(ds->n_sites + 1, sizeof(*people));
        size_t row = 0;
        if (!visits || !people) {
            free(visits);
            free(people);
            return -ENOMEM;
        }
        for (size_t host = 0; host < ds->n_sites; host++) {
            struct site_data *s = &ds->sites[host];
            struct home_visit *h = s->home_visits.v;
            struct vec tmp = { 0 };
            memset(visits, 0, ds->n_sites * sizeof(*visits));
            memset(people, 0, ds->n_sites * sizeof(*people));
            for (size_t i = 0; i < s->home_visits.n; i++) {
                visits[h[i].home]++;
                /* distinct visitors per home: (home, person) sorted through day_person */
                if ((r = push_day_person(&tmp, h[i].home, h[i].person)) < 0)
                    break;
            }
            sort_unique(&tmp);
            for (size_t j = 0; j < tmp.n; j++)
                people[((struct day_person *)tmp.v)[j].day]++;
            free(tmp.v);
            if (r < 0) {
                free(visits);
                free(people);
                return r;
            }
            /* this host's pairs */
            for (row = 0; row < ds->n_pairs; row++) {
                struct pair_row *p = &ds->pairs[row];
                if (p->host == host) {
                    p->visits = visits[p->home];
                    p->people = people[p->home];
                }
            }
        }
        free(visits);
        free(people);
    }

    /* Suppression, table by table and measure by measure. */
    n_cells = ds->n_days > ds->n_machines ? ds->n_days : ds->n_machines;
    if (ds->n_pairs > n_cells)
        n_cells = ds->n_pairs;
    cells = calloc(n_cells + 1, sizeof(*cells));
    if (!cells)
        return -ENOMEM;
    for (int measure = 0; measure < 3; measure++) {
        for (size_t i = 0; i < ds->n_days; i++) {
            const struct day_row *d = &ds->days[i];
            unsigned slot = slot_of(c, d->grain, d->first);
            cells[i].row = d->site;
            cells[i].col = d->grain == GRAIN_DAY ? slot : d->grain == GRAIN_WEEK
                               ? DAYS_MAX + slot : DAYS_MAX + WEEKS_MAX;
            cells[i].cost = measure == 0 ? d->f.visits : measure == 1 ? d->f.visitor_days
                                                                      : d->f.open_seconds;
            cells[i].primary = (measure == 0 ? d->f.people : measure == 1 ? d->f.visitors
                                                                         : d->f.occupants)
                               < ds->o->k;
        }
        r = suppress_protect(cells, ds->n_days, measure == 2 ? 0 : ds->o->k);
        if (r < 0)
            goto out;
        for (size_t i = 0; i < ds->n_days; i++) {
            bool *hide = measure == 0 ? &ds->days[i].hide_visits : measure == 1
                             ? &ds->days[i].hide_visitor_days : &ds->days[i].hide_occupancy;
            *hide = cells[i].suppressed;
            ds->hidden_primary += cells[i].primary;
            ds->hidden_complement += cells[i].suppressed && !cells[i].primary;
        }
    }
    /* Machines: within a site, categories are rows and weeks columns. */
    for (size_t i = 0; i < ds->n_machines; i++) {
        const struct machine_row *m = &ds->machines[i];
        if (i > 0 && (m->site != ds->machines[i - 1].site || m->cat != ds->machines[i - 1].cat))
            row_id++;
        cells[i].row = row_id;
        cells[i].col = m->site * (WEEKS_MAX + 1) + (m->grain == GRAIN_WEEK
                                                        ? slot_of(c, GRAIN_WEEK, m->first)
                                                        : WEEKS_MAX);
        cells[i].cost = m->f.sessions;
        cells[i].primary = m->f.people < ds->o->k;
    }
    if ((r = suppress_protect(cells, ds->n_machines, ds->o->k)) < 0)
        goto out;
    for (size_t i = 0; i < ds->n_machines; i++) {
        ds->machines[i].hide = cells[i].suppressed;
        ds->hidden_primary += cells[i].primary;
        ds->hidden_complement += cells[i].suppressed && !cells[i].primary;
    }
    for (size_t i = 0; i < ds->n_pairs; i++) {
        cells[i].row = ds->pairs[i].home;
        cells[i].col = ds->pairs[i].host;
        cells[i].cost = ds->pairs[i].visits;
        cells[i].primary = ds->pairs[i].people < ds->o->k;
    }
    if ((r = suppress_protect(cells, ds->n_pairs, ds->o->k)) < 0)
        goto out;
    for (size_t i = 0; i < ds->n_pairs; i++) {
        ds->pairs[i].hide = cells[i].suppressed;
        ds->hidden_primary += cells[i].primary;
        ds->hidden_complement += cells[i].suppressed && !cells[i].primary;
    }
    r = 0;
out:
    free(cells);
    return r;
}

/* ---- CSV (RFC 4180: UTF-8, comma, CRLF, one header line) ---- */

struct csv {
    FILE *f;
    unsigned col;
};

static void csv_sep(struct csv *c)
{
    if (c->col++)
        fputc(',', c->f);
}

/* Text from people (names, communes, categories): quoted when needed, and a cell a
 * spreadsheet would run as a formula is quoted and prefixed with ' (OWASP, CSV
 * injection). Numbers and dates are written by csv_raw(): they are ours. */
static void csv_text(struct csv *c, const char *s)
{
    bool formula = strchr("=+-@\t\r", s[0]) && s[0];
    bool quote = formula || strpbrk(s, ",\"\r\n");

    csv_sep(c);
    if (!quote) {
        fputs(s, c->f);
        return;
    }
    fputc('"', c->f);
    if (formula)
        fputc('\'', c->f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', c->f);
        fputc(*s, c->f);
    }
    fputc('"', c->f);
}

static void csv_raw(struct csv *c, const char *s)
{
    csv_sep(c);
    fputs(s, c->f);
}

static void csv_count(struct csv *c, int64_t v, bool hidden)
{
    csv_sep(c);
    if (!hidden)
        fprintf(c->f, "%" PRId64, v);
}

/* Hundredths, as a decimal with two places. */
static void csv_centi(struct csv *c, int64_t centi, bool hidden)
{
    csv_sep(c);
    if (!hidden)
        fprintf(c->f, "%" PRId64 ".%02" PRId64, centi / 100, centi % 100);
}

static void csv_end(struct csv *c)
{
    fputs("\r\n", c->f);
    c->col = 0;
}

/* ---- the columns of each file: its CSV header and its Table Schema ---- */

#define HIDDEN_NOTE " Empty when fewer than k people are behind the figure, or when it is " \
    "hidden so that such a figure cannot be computed from the others (docs/opendata.md)."

/* A column: its name in the CSV header, and what its Table Schema says of it. */
struct field {
    const char *name, *type, *title, *description;
};

static const struct field sites_fields[] = {
    { "site", "string", "Site", "Identifier of the site in the consortium (its [site] id)." },
    { "name", "string", "Name", "Public name of the site." },
    { "commune", "string", "Commune", "Commune where the site is; empty if not given." },
    { "insee_code", "string", "INSEE code",
      "INSEE code of the commune (Code officiel géographique); empty if not given." },
    { "latitude", "number", "Latitude", "Latitude of the site, WGS 84 decimal degrees." },
    { "longitude", "number", "Longitude", "Longitude of the site, WGS 84 decimal degrees." },
    { "timezone", "string", "Time zone",
      "Time zone (IANA name) of the site's clock: its billing days follow it." },
    { "day_starts", "string", "Day starts at",
      "Local time (HH:MM) at which the site's billing day starts: a day's figures run "
      "from this time to the same time the next day." },
    { "public_key", "string", "Public key",
      "The site's Ed25519 public key (hex): it signs the site's ledger and its period seals." },
    { "seal_sha256", "string", "Seal SHA-256",
      "SHA-256 (hex) of the text of the site's signed seal of the period. The seal closes "
      "the site's signed, hash-chained ledger, from which every figure of the site is "
      "computed (docs/opendata.md, 'Tying a figure to the ledgers')." },
    { "seal_last_hash", "string", "Last ledger hash",
      "BLAKE2b-256 (hex) of the last ledger entry the seal closes." },
    { "seal_verified_at", "datetime", "Seal verified at",
      "When the custodian verified the seal against the site's ledger (UTC)." },
};

static const struct field days_fields[] = {
    { "site", "string", "Site", "The site (sites.csv)." },
    { "grain", "string", "Time grain",
      "day; or week, or month, for a site with too few people to publish each day." },
    { "start_date", "date", "First day", "First billing day the row covers." },
    { "end_date", "date", "Last day", "Last billing day the row covers." },
    { "visits", "integer", "Visits",
      "People present on a billing day, each counted once a day (members of the site and "
      "visitors from other sites of the consortium), added up over the row's days." HIDDEN_NOTE },
    { "visitor_days", "integer", "Visitor-days",
      "Of the visits, those of members of other sites of the consortium." HIDDEN_NOTE },
    { "peak_occupancy", "integer", "Peak occupancy",
      "Most members of the site checked in at the same time (visitors from other sites do "
      "not check in and are not counted); for a week or a month, the highest day's."
      HIDDEN_NOTE " The people counted are the members checked in." },
    { "open_hours", "number", "Hours in use",
      "Hours during which at least one member of the site was checked in: the hours the "
      "place was actually in use, not its advertised opening hours." HIDDEN_NOTE
      " The people counted are the members checked in." },
};

static const struct field machines_fields[] = {
    { "site", "string", "Site", "The site (sites.csv)." },
    { "machine_category", "string", "Machine category",
      "The category the consortium registered for the machines counted; \"other\" for "
      "machines it gave none. Only categories used in the period appear." },
    { "grain", "string", "Time grain",
      "week (Monday to Sunday, cut at the month's ends); or month, for a site with too "
      "few people to publish each week." },
    { "start_date", "date", "First day", "First billing day the row covers." },
    { "end_date", "date", "Last day", "Last billing day the row covers." },
    { "machine_hours", "number", "Machine hours",
      "Hours of machine sessions (from the tap that powers a machine to power off, each "
      "to the started minute), on the days of the row." HIDDEN_NOTE },
    { "sessions", "integer", "Sessions", "Machine sessions started on the days of the row."
      HIDDEN_NOTE },
    { "energy_kwh", "number", "Energy (kWh)",
      "Energy the sessions used, when every session of the row was metered; empty "
      "otherwise (Portier does not record energy yet)." },
};

static const struct field pairs_fields[] = {
    { "period", "yearmonth", "Period", "The month (its billing days)." },
    { "home_site", "string", "Home site", "The site the visitors are members of." },
    { "host_site", "string", "Host site", "The site they visited." },
    { "visits", "integer", "Visits",
      "Days on which members of home_site were let in at host_site. Empty when fewer than "
      "k distinct visitors are behind the figure, or when it is hidden so that such a "
      "figure cannot be computed from the others (docs/opendata.md)." },
};

static void csv_header(struct csv *c, const struct field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        csv_raw(c, fields[i].name);
    csv_end(c);
}

static void write_sites(const struct dataset *ds, FILE *f)
{
    struct csv c = { f, 0 };
    char hex[2 * LEDGER_HASH_LEN + 1], at[32], hhmm[8];

    csv_header(&c, sites_fields, ARRAY_SIZE(sites_fields));
    for (size_t i = 0; i < ds->n_sites; i++) {
        const struct site_data *s = &ds->sites[i];
        if (!s->included)
            continue;
        csv_text(&c, s->site.name);
        csv_text(&c, s->place.label[0] ? s->place.label : s->site.name);
        csv_text(&c, s->place.commune);
        csv_text(&c, s->place.insee_code);
        csv_raw(&c, s->place.latitude);
        csv_raw(&c, s->place.longitude);
        csv_text(&c, s->site.timezone);
        snprintf(hhmm, sizeof(hhmm), "%02d:%02d", (int)(s->site.day_starts / 60) % 100,
                 (int)(s->site.day_starts % 60));
        csv_raw(&c, hhmm);
        sodium_bin2hex(hex, sizeof(hex), s->site.public_key, LEDGER_PK_LEN);
        csv_raw(&c, hex);
        csv_raw(&c, s->seal_sha256);
        sodium_bin2hex(hex, sizeof(hex), s->seal.last_hash, LEDGER_HASH_LEN);
        csv_raw(&c, hex);
        format_utc(s->seal.checked_at, at, sizeof(at));
        csv_raw(&c, at);
        csv_end(&c);
    }
}

static void write_days(const struct dataset *ds, FILE *f)
{
    struct csv c = { f, 0 };
    char first[11], last[11];

    csv_header(&c, days_fields, ARRAY_SIZE(days_fields));
    for (size_t i = 0; i < ds->n_days; i++) {
        const struct day_row *d = &ds->days[i];
        day_name(&ds->cal, d->first, first);
        day_name(&ds->cal, d->last, last);
        csv_text(&c, ds->sites[d->site].site.name);
        csv_raw(&c, grain_names[d->grain]);
        csv_raw(&c, first);
        csv_raw(&c, last);
        csv_count(&c, d->f.visits, d->hide_visits);
        csv_count(&c, d->f.visitor_days, d->hide_visitor_days);
        csv_count(&c, d->f.peak, d->hide_occupancy);
        csv_centi(&c, (d->f.open_seconds + 18) / 36, d->hide_occupancy);
        csv_end(&c);
    }
}

static void write_machines(const struct dataset *ds, FILE *f)
{
    struct csv c = { f, 0 };
    char first[11], last[11];

    csv_header(&c, machines_fields, ARRAY_SIZE(machines_fields));
    for (size_t i = 0; i < ds->n_machines; i++) {
        const struct machine_row *m = &ds->machines[i];
        const struct site_data *s = &ds->sites[m->site];
        day_name(&ds->cal, m->first, first);
        day_name(&ds->cal, m->last, last);
        csv_text(&c, s->site.name);
        csv_text(&c, s->categories[m->cat]);
        csv_raw(&c, grain_names[m->grain]);
        csv_raw(&c, first);
        csv_raw(&c, last);
        csv_centi(&c, (m->f.minutes * 100 + 30) / 60, m->hide);
        csv_count(&c, m->f.sessions, m->hide);
        /* Energy only when every session of the row was metered (none is, yet). */
        csv_centi(&c, (m->f.energy_wh + 5) / 10,
                  m->hide || m->f.sessions == 0 || m->f.metered != m->f.sessions);
        csv_end(&c);
    }
}

static void write_pairs(const struct dataset *ds, FILE *f)
{
    struct csv c = { f, 0 };

    csv_header(&c, pairs_fields, ARRAY_SIZE(pairs_fields));
    for (size_t i = 0; i < ds->n_pairs; i++) {
        const struct pair_row *p = &ds->pairs[i];
        csv_raw(&c, ds->cal.period);
        csv_text(&c, ds->sites[p->home].site.name);
        csv_text(&c, ds->sites[p->host].site.name);
        csv_count(&c, p->visits, p->hide);
        csv_end(&c);
    }
}

/* ---- Table Schemas and the Data Package ---- */

static json_t *field_json(const struct field *f)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "name", f->name, "type", f->type, "title",
                     f->title, "description", f->description);
}

static void constrain(json_t *fields, const char *name, json_t *constraints)
{
    size_t i;
    json_t *f;

    json_array_foreach(fields, i, f)
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0) {
            json_object_set_new(f, "constraints", constraints);
            return;
        }
    json_decref(constraints);
}

static json_t *site_key(const char *field)
{
    return json_pack("{s:s, s:{s:s, s:s}}", "fields", field, "reference", "resource", "sites",
                     "fields", "site");
}

static json_t *schema_of(const struct field *fields, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, field_json(&fields[i]));
    return json_pack("{s:o, s:[s]}", "fields", list, "missingValues", "");
}

static json_t *sites_schema(void)
{
    json_t *s = schema_of(sites_fields, ARRAY_SIZE(sites_fields)), *fields = json_object_get(s, "fields");

    constrain(fields, "site", json_pack("{s:b, s:b}", "required", 1, "unique", 1));
    constrain(fields, "name", json_pack("{s:b}", "required", 1));
    constrain(fields, "insee_code", json_pack("{s:s}", "pattern", "([0-9]{2}|2[AB])[0-9]{3}"));
    constrain(fields, "latitude", json_pack("{s:i, s:i}", "minimum", -90, "maximum", 90));
    constrain(fields, "longitude", json_pack("{s:i, s:i}", "minimum", -180, "maximum", 180));
    constrain(fields, "day_starts", json_pack("{s:s}", "pattern", "[0-2][0-9]:[0-5][0-9]"));
    constrain(fields, "public_key", json_pack("{s:b, s:s}", "required", 1, "pattern",
                                              "[0-9a-f]{64}"));
    constrain(fields, "seal_sha256", json_pack("{s:b, s:s}", "required", 1, "pattern",
                                               "[0-9a-f]{64}"));
    constrain(fields, "seal_last_hash", json_pack("{s:b, s:s}", "required", 1, "pattern",
                                                  "[0-9a-f]{64}"));
    json_object_set_new(s, "primaryKey", json_string("site"));
    return s;
}

static json_t *days_schema(void)
{
    json_t *s = schema_of(days_fields, ARRAY_SIZE(days_fields)), *fields = json_object_get(s, "fields");

    constrain(fields, "site", json_pack("{s:b}", "required", 1));
    constrain(fields, "grain", json_pack("{s:b, s:[s,s,s]}", "required", 1, "enum", "day",
                                         "week", "month"));
    constrain(fields, "start_date", json_pack("{s:b}", "required", 1));
    constrain(fields, "end_date", json_pack("{s:b}", "required", 1));
    constrain(fields, "visits", json_pack("{s:i}", "minimum", 0));
    constrain(fields, "visitor_days", json_pack("{s:i}", "minimum", 0));
    constrain(fields, "peak_occupancy", json_pack("{s:i}", "minimum", 0));
    constrain(fields, "open_hours", json_pack("{s:i}", "minimum", 0));
    json_object_set_new(s, "primaryKey", json_pack("[s, s]", "site", "start_date"));
    json_object_set_new(s, "foreignKeys", json_pack("[o]", site_key("site")));
    return s;
}

static json_t *machines_schema(void)
{
    json_t *s = schema_of(machines_fields, ARRAY_SIZE(machines_fields)), *fields = json_object_get(s, "fields");

    constrain(fields, "site", json_pack("{s:b}", "required", 1));
    constrain(fields, "machine_category", json_pack("{s:b}", "required", 1));
    constrain(fields, "grain", json_pack("{s:b, s:[s,s]}", "required", 1, "enum", "week",
                                         "month"));
    constrain(fields, "start_date", json_pack("{s:b}", "required", 1));
    constrain(fields, "end_date", json_pack("{s:b}", "required", 1));
    constrain(fields, "machine_hours", json_pack("{s:i}", "minimum", 0));
    constrain(fields, "sessions", json_pack("{s:i}", "minimum", 0));
    constrain(fields, "energy_kwh", json_pack("{s:i}", "minimum", 0));
    json_object_set_new(s, "primaryKey", json_pack("[s, s, s]", "site", "machine_category",
                                                   "start_date"));
    json_object_set_new(s, "foreignKeys", json_pack("[o]", site_key("site")));
    return s;
}

static json_t *pairs_schema(void)
{
    json_t *s = schema_of(pairs_fields, ARRAY_SIZE(pairs_fields)), *fields = json_object_get(s, "fields");

    constrain(fields, "period", json_pack("{s:b}", "required", 1));
    constrain(fields, "home_site", json_pack("{s:b}", "required", 1));
    constrain(fields, "host_site", json_pack("{s:b}", "required", 1));
    constrain(fields, "visits", json_pack("{s:i}", "minimum", 0));
    json_object_set_new(s, "primaryKey", json_pack("[s, s, s]", "period", "home_site",
                                                   "host_site"));
    json_object_set_new(s, "foreignKeys", json_pack("[o, o]", site_key("home_site"),
                                                    site_key("host_site")));
    return s;
}

/* ---- files ---- */

struct out_file {
    char name[48];
    char *buf;
    size_t len;
};

enum { F_SITES, F_DAYS, F_MACHINES, F_PAIRS, F_SITES_S, F_DAYS_S, F_MACHINES_S, F_PAIRS_S,
       F_PACKAGE, F__MAX };

static const struct {
    const char *name, *title, *description;
} resources[] = {
    { "sites", "Sites", "The sites of the consortium published for the period: name, place, "
      "and the seal of the signed ledger their figures come from." },
    { "site_days", "Sites per day",
      "Per site and billing day (per week or month for small sites): visits, visits from "
      "other sites of the consortium, peak occupancy and hours in use." },
    { "machine_use", "Machines per week",
      "Per site, machine category and week (or month for small sites): machine hours, "
      "sessions and energy." },
    { "visits_between_sites", "Visits between sites",
      "Per pair of sites: days on which members of one were let in at the other." },
};

static char *json_text(json_t *o, size_t *len)
{
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    size_t n;

    json_decref(o);
    if (!text)
        return NULL;
    n = strlen(text);
    /* a final newline, as text files have */
    char *t = realloc(text, n + 2);
    if (!t) {
        free(text);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *len = n + 1;
    return t;
}

static void sha256_hex(const char *buf, size_t len, char out[2 * crypto_hash_sha256_BYTES + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const uint8_t *)buf, len);
    sodium_bin2hex(out, 2 * crypto_hash_sha256_BYTES + 1, h, sizeof(h));
}

static json_t *package_json(const struct dataset *ds, struct out_file *files)
{
    const struct opendata_options *o = ds->o;
    char created[32], hash[2 * crypto_hash_sha256_BYTES + 8], name[48], title[300];
    json_t *res = json_array(), *missing = json_array(), *pkg;

    format_utc(o->now, created, sizeof(created));
    for (int i = 0; i < 4; i++) {
        snprintf(hash, sizeof(hash), "sha256:");
        sha256_hex(files[i].buf, files[i].len, hash + 7);
        json_array_append_new(res, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, "
            "s:{s:s, s:s, s:s, s:b, s:b}, s:s}",
            "name", resources[i].name, "path", files[i].name, "profile",
            "tabular-data-resource", "title", resources[i].title, "description",
            resources[i].description, "format", "csv", "mediatype", "text/csv", "encoding",
            "utf-8", "bytes", (json_int_t)files[i].len, "hash", hash, "dialect",
            "delimiter", ",", "lineTerminator", "\r\n", "quoteChar", "\"", "doubleQuote", 1,
            "header", 1, "schema", files[F_SITES_S + i].name));
    }
    for (size_t i = 0; i < ds->n_sites; i++)
        if (!ds->sites[i].included)
            json_array_append_new(missing, json_string(ds->sites[i].site.name));
    snprintf(name, sizeof(name), "portier-consortium-%s", ds->cal.period);
    snprintf(title, sizeof(title), "Shared places and machines of %.200s: use in %s",
             o->producer, ds->cal.period);
    pkg = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:s}], s:[{s:s, s:s}], s:[s, s, s, s, s], "
        "s:s, s:s, s:s, s:i, s:o, s:s, s:o}",
        "profile", "tabular-data-package", "name", name, "title", title, "description",
        "How the places and machines a consortium of tiers-lieux shares were used, per site: "
        "visits, visits between sites, occupancy, hours in use, machine hours. Computed only "
        "from the sites' signed ledgers whose period seal the custodian verified; no figure "
        "has fewer than k people behind it (see k_threshold and docs/opendata.md of Portier).",
        "created", created, "licenses", "name", o->licence->id, "path", o->licence->url,
        "title", o->licence->title, "contributors", "title", o->producer, "role", "publisher",
        "keywords", "tiers-lieux", "coworking", "fablab", "consortium", "open data",
        "period", ds->cal.period, "first_day", ds->cal.first, "last_day", ds->cal.last,
        "k_threshold", o->k, "sites_without_verified_seal", missing, "generator",
        "portier-custodian", "resources", res);
    return pkg;
}

static int write_all(const char *dir, struct out_file *files, size_t n)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    size_t written = 0;
    int r = 0, fd;

    for (; written < n; written++) {
        const struct out_file *f = &files[written];
        size_t off = 0;
        snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, f->name);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            r = -errno;
            break;
        }
        while (off < f->len) {
            ssize_t k = write(fd, f->buf + off, f->len - off);
            if (k < 0) {
                r = -errno;
                break;
            }
            off += (size_t)k;
        }
        if (r == 0 && fsync(fd) < 0)
            r = -errno;
        if (close(fd) < 0 && r == 0)
            r = -errno;
        if (r < 0) {
            written++;
            break;
        }
    }
    /* Renamed only once all are written, datapackage.json (the last) last. */
    for (size_t i = 0; i < written; i++) {
        snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, files[i].name);
        snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
        if (r == 0 && rename(tmp, path) < 0)
            r = -errno;
        if (r < 0)
            unlink(tmp);
    }
    if (r == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return r;
}

static int render(struct dataset *ds, struct out_file *files)
{
    static const char *const names[F__MAX] = {
        "sites.csv", "site_days.csv", "machine_use.csv", "visits_between_sites.csv",
        "sites.schema.json", "site_days.schema.json", "machine_use.schema.json",
        "visits_between_sites.schema.json", "datapackage.json" };
    void (*const writers[4])(const struct dataset *, FILE *) = {
        write_sites, write_days, write_machines, write_pairs };
    json_t *(*const schemas[4])(void) = {
        sites_schema, days_schema, machines_schema, pairs_schema };

    for (int i = 0; i < F__MAX; i++)
        snprintf(files[i].name, sizeof(files[i].name), "%s", names[i]);
    for (int i = 0; i < 4; i++) {
        FILE *f = open_memstream(&files[i].buf, &files[i].len);
        if (!f)
            return -ENOMEM;
        writers[i](ds, f);
        if (ferror(f)) {
            fclose(f);
            return -ENOMEM;
        }
        if (fclose(f) != 0)
            return -ENOMEM;
        files[F_SITES_S + i].buf = json_text(schemas[i](), &files[F_SITES_S + i].len);
        if (!files[F_SITES_S + i].buf)
            return -ENOMEM;
    }
    files[F_PACKAGE].buf = json_text(package_json(ds, files), &files[F_PACKAGE].len);
    return files[F_PACKAGE].buf ? 0 : -ENOMEM;
}

/* ---- the command ---- */

static int add_site(const struct cdb_site *site, void *userdata)
{
    struct dataset *ds = userdata;
    struct site_data *s = realloc(ds->sites, (ds->n_sites + 1) * sizeof(*s));

    if (!s)
        return -ENOMEM;
    ds->sites = s;
    s = &ds->sites[ds->n_sites++];
    memset(s, 0, sizeof(*s));
    s->site = *site;
    return 0;
}

static int add_mapping(const struct cdb_machine_category *m, void *userdata)
{
    struct site_data *s = userdata;

    if (s->n_mapping == s->cap_mapping) {
        size_t cap = s->cap_mapping ? 2 * s->cap_mapping : 16;
        struct cdb_machine_category *v = realloc(s->mapping, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->mapping = v;
        s->cap_mapping = cap;
    }
    s->mapping[s->n_mapping++] = *m;
    return 0;
}

/* Is site s's seal for the period verified, and does it verify again? */
static int check_seal(struct cdb *db, const struct calendar *c, struct site_data *s, FILE *err)
{
    struct period_seal ps;
    int r = cdb_seal_get(db, s->site.name, c->period, &s->seal);

    if (r == -ENOENT) {
        fprintf(err, "%s: no seal for %s (the site has not closed the period, or its seal has "
                "not reached the custodian)\n", s->site.name, c->period);
        return 0;
    }
    if (r < 0)
        return r;
    if (strcmp(s->seal.state, "verified") != 0) {
        fprintf(err, "%s: its seal for %s is %s%s\n", s->site.name, c->period, s->seal.state,
                strcmp(s->seal.state, "waiting") == 0
                    ? " (the custodian has not verified its entries up to last_seq yet)"
                    : " (its last_hash is not the verified chain's: see problems)");
        return 0;
    }
    /* Checked again: what is published must be what the site signed. */
    if (period_seal_parse(s->seal.text, strlen(s->seal.text), &ps) < 0 ||
        !period_seal_signature_ok(s->seal.text, strlen(s->seal.text), s->seal.sig,
                                  s->site.public_key)) {
        fprintf(err, "%s: its stored seal for %s no longer verifies\n", s->site.name,
                c->period);
        return 0;
    }
    sha256_hex(s->seal.text, strlen(s->seal.text), s->seal_sha256);
    s->included = true;
    return 0;
}

/* Read s's entries of the period: every one from the first of the period to the seal's
 * last, hashed again and chained to the seal's last_hash. On a failed check s is left out
 * (said on err). */
static int read_site(struct cdb *db, struct dataset *ds, struct site_data *s, FILE *err)
{
    const struct calendar *c = &ds->cal;
    struct collect x = { .s = s, .c = c, .sites = ds->sites, .n_sites = ds->n_sites };
    int64_t first;
    int r;

    r = cdb_place_get(db, s->site.name, &s->place);
    if (r < 0 && r != -ENOENT)
        return r;
    if ((r = cdb_machine_categories_foreach(db, s->site.name, add_mapping, s)) < 0)
        return r;
    day_windows(s, c);
    first = cdb_entries_first_seq(db, s->site.name, c->first, c->last, s->seal.last_seq);
    if (first < 0)
        return (int)first;
    s->first_seq = first;
    if (first > 0) {
        x.chain.expected = first;
        r = cdb_entries_foreach(db, s->site.name, first, s->seal.last_seq, collect_entry, &x);
        if (r == -EBADMSG ||
            (r >= 0 && (x.chain.expected != s->seal.last_seq + 1 ||
                        memcmp(x.chain.prev, s->seal.last_hash, LEDGER_HASH_LEN)))) {
            if (!x.chain.problem[0])
                snprintf(x.chain.problem, sizeof(x.chain.problem), "the entries end at %" PRId64
                         " or the last one's hash is not the seal's", x.chain.expected - 1);
            fprintf(err, "%s: left out: its entries do not verify against its seal: %s\n",
                    s->site.name, x.chain.problem);
            s->included = false;
            return 0;
        }
        if (r < 0)
            return r;
    }
    sort_unique(&s->people);
    sort_unique(&s->visitors);
    if ((r = occupancy(s, c)) < 0)
        return r;
    return choose_grains(ds, s);
}

int opendata_generate(struct cdb *db, const struct opendata_options *o, FILE *out, FILE *err)
{
    struct dataset ds = { .o = o };
    struct out_file files[F__MAX];
    size_t included = 0;
    int r;

    memset(files, 0, sizeof(files));
    if (calendar_init(&ds.cal, o->period) < 0 || o->k < 2 || o->k > OPENDATA_K_MAX ||
        !o->licence || !o->producer)
        return -EINVAL;
    if ((r = cdb_sites_foreach(db, add_site, &ds)) < 0)
        goto out;
    for (size_t i = 0; i < ds.n_sites; i++)
        if ((r = check_seal(db, &ds.cal, &ds.sites[i], err)) < 0)
            goto out;
    for (size_t i = 0; i < ds.n_sites; i++) {
        struct site_data *s = &ds.sites[i];
        if (!s->included)
            continue;
        if ((r = read_site(db, &ds, s, err)) < 0)
            goto out;
        if (!s->included)
            continue;
        included++;
        fprintf(out, "%s: %" PRId64 " entries of %s counted, entries %" PRId64 " to %" PRId64
                " checked against its seal; published per %s", s->site.name, s->counted,
                ds.cal.period, s->first_seq, s->first_seq ? s->seal.last_seq : 0,
                grain_names[s->day_grain]);
        for (size_t k = 0; k < s->n_categories; k++)
            fprintf(out, "%s%s per %s", k ? ", " : "; machines: ", s->categories[k],
                    grain_names[s->cat_grain[k]]);
        fputc('\n', out);
        if (s->n_unmapped) {
            fprintf(out, "%s: machines without a category, published as \"%s\":", s->site.name,
                    OPENDATA_OTHER_CATEGORY);
            for (size_t k = 0; k < s->n_unmapped; k++)
                fprintf(out, " %s", s->unmapped[k]);
            fprintf(out, " (portier-custodian site machine %s MACHINE --category NAME)\n",
                    s->site.name);
        }
    }
    if (included == 0) {
        fprintf(err, "nothing written: no site has a verified seal for %s\n", ds.cal.period);
        r = 1;
        goto out;
    }
    if (included < ds.n_sites && !o->partial) {
        fprintf(err, "nothing written: %zu of %zu sites cannot be published yet (--partial "
                "publishes the others, and says which are missing)\n", ds.n_sites - included,
                ds.n_sites);
        r = 1;
        goto out;
    }
    if ((r = build_tables(&ds)) < 0 || (r = render(&ds, files)) < 0 ||
        (r = write_all(o->dir, files, F__MAX)) < 0)
        goto out;
    fprintf(out, "open data for %s written to %s: %zu sites, %zu rows per site and day, %zu per "
            "machine category, %zu between sites; %zu figures withheld (fewer than %d people), "
            "%zu more hidden to protect them\n", ds.cal.period, o->dir, included, ds.n_days,
            ds.n_machines, ds.n_pairs, ds.hidden_primary, o->k, ds.hidden_complement);
    r = 0;
out:
    for (int i = 0; i < F__MAX; i++)
        free(files[i].buf);
    for (size_t i = 0; i < ds.n_sites; i++)
        site_data_free(&ds.sites[i]);
    free(ds.sites);
    free(ds.days);
    free(ds.machines);
    free(ds.pairs);
    return r;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portier-custodian: the consortium custodian's tool. It keeps a registry of the sites and
 * their public keys, receives every site's signed ledger over MQTT, verifies and stores
 * it, asks again for what is missing, and reports.
 *
 *   portier-custodian [--db FILE] site add NAME (--key HEX | --key-file FILE)
 *                                     [--timezone TZ] [--day-starts HH:MM] [PLACE]
 *   portier-custodian [--db FILE] site set NAME PLACE
 *   portier-custodian [--db FILE] site machine NAME MACHINE --category CATEGORY
 *   portier-custodian [--db FILE] site list [--json]
 *   portier-custodian [--db FILE] problems [--site NAME] [--json]
 *   portier-custodian [--db FILE] run --broker HOST:PORT [--prefix P] [--client-id ID]
 *                                     [--username U --password-file F]
 *                                     [--tls-ca F [--tls-cert F --tls-key F]] [--keepalive S]
 *   portier-custodian [--db FILE] report --period YYYY-MM [--format text|csv|json]
 *   portier-custodian [--db FILE] serve --listen ADDR:PORT [--opendata DIR]
 *   portier-custodian [--db FILE] export --period YYYY-MM --out DIR [--site NAME]
 *   portier-custodian [--db FILE] opendata --period YYYY-MM --out DIR --producer NAME
 *                                     [--k N] [--licence ID] [--partial] [--publish-cmd CMD]
 *
 * PLACE: [--label TEXT] [--commune NAME] [--insee CODE] [--latitude DEG] [--longitude DEG]
 *
 * See docs/consortium.md and docs/opendata.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "custodian_db.h"
#include "ingest.h"
#include "opendata.h"
#include "report.h"
#include "seals.h"
#include "web.h"
#include "fileio.h"
#include "log.h"
#include "util.h"

#define DEFAULT_DB "/var/lib/portier-custodian/custodian.db"
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define RESEND_QUIET_USEC 5000000u      /* the same gap is asked again at most this often */
#define RESEND_REMEMBERED 256

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: portier-custodian [--db FILE] COMMAND ...\n"
            "  site add NAME (--key HEX | --key-file FILE) [--timezone TZ] [--day-starts HH:MM]\n"
            "      [PLACE]\n"
            "  site set NAME PLACE\n"
            "  site machine NAME MACHINE --category CATEGORY   ('' removes it)\n"
            "  site list [--json]\n"
            "  problems [--site NAME] [--json]\n"
            "  run --broker HOST:PORT [--prefix P] [--client-id ID] [--username U]\n"
            "      [--password-file F] [--tls-ca F] [--tls-cert F] [--tls-key F] [--keepalive S]\n"
            "  report --period YYYY-MM [--format text|csv|json]\n"
            "  serve --listen ADDR:PORT [--opendata DIR]\n"
            "  export --period YYYY-MM --out DIR [--site NAME]\n"
            "  opendata --period YYYY-MM --out DIR --producer NAME [--k N] [--licence ID]\n"
            "      [--partial] [--publish-cmd CMD]\n"
            "PLACE: [--label TEXT] [--commune NAME] [--insee CODE] [--latitude DEG]\n"
            "       [--longitude DEG]   (what the open data says of the site; '' clears)\n"
            "Options: --db FILE (default " DEFAULT_DB "), -v/--verbose, -h/--help, --version\n");
    return status;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("portier-custodian: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* ---- registry ---- */

static bool key_from_hex(const char *hex, uint8_t pk[LEDGER_PK_LEN])
{
    return hex_decode(hex, strlen(hex), pk, LEDGER_PK_LEN);
}

/* A key file: the output of `portierctl site key` or just the hex key; the last line of
 * exactly 64 hex digits counts. */
static int key_from_file(const char *path, uint8_t pk[LEDGER_PK_LEN])
{
    char line[256];
    bool found = false;
    FILE *f = fopen(path, "re");

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (key_from_hex(line, pk))
            found = true;
    }
    fclose(f);
    return found ? 0 : -EINVAL;
}

static int parse_hhmm(const char *s, int64_t *ret)
{
    int h, m, n = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || s[n] || h < 0 || h > 23 || m < 0 ||
        m > 59)
        return -EINVAL;
    *ret = h * 60 + m;
    return 0;
}

/* ---- sub-command options ---- */

/* One option of a sub-command. One that takes a value keeps it in *value as given (the
 * command checks it once all are read; the last one given counts); one that takes none
 * sets *flag. */
struct opt {
    const char *name;
    const char **value;
    bool *flag;
};

#define OPTS_MAX 16

/* Read the options in argv[from..] (a table ending with { 0 }). As getopt_long does, they
 * may stand among the operands, which end up in argv[optind..]. 0, or the usage's exit
 * status for an unknown option or a missing value (getopt_long has said which). */
static int parse_opts(int argc, char **argv, int from, const struct opt *opts)
{
    struct option lo[OPTS_MAX + 1] = { { 0 } };
    int n, c;

    for (n = 0; opts[n].name && n < OPTS_MAX; n++)
        lo[n] = (struct option){ opts[n].name, opts[n].value ? required_argument : no_argument,
                                 NULL, n };
    optind = from;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c < 0 || c >= n)
            return usage(stderr, 2);
        if (opts[c].value)
            *opts[c].value = optarg;
        else
            *opts[c].flag = true;
    }
    return 0;
}

/* ---- what the open data says of a site: its place ---- */

struct place_args {
    const char *label, *commune, *insee, *latitude, *longitude;
};

#define PLACE_OPTS(a)                                                                       \
    { "label", &(a).label, NULL }, { "commune", &(a).commune, NULL },                       \
    { "insee", &(a).insee, NULL }, { "latitude", &(a).latitude, NULL },                     \
    { "longitude", &(a).longitude, NULL }

static bool place_given(const struct place_args *a)
{
    return a->label || a->commune || a->insee || a->latitude || a->longitude;
}

static void place_field_set(char *field, size_t size, const char *value)
{
    if (value)
        snprintf(field, size, "%s", value);
}

/* Apply the place options given to p: 0, or 1 after saying what is wrong (p unchanged).
 * An empty value clears the field. */
static int place_apply(const struct place_args *a, struct cdb_place *p)
{
    if (a->label && a->label[0] && !opendata_text_ok(a->label, sizeof(p->label)))
        return fail("--label is 1 to %zu bytes of printable UTF-8", sizeof(p->label) - 1);
    if (a->commune && a->commune[0] && !opendata_text_ok(a->commune, sizeof(p->commune)))
        return fail("--commune is 1 to %zu bytes of printable UTF-8", sizeof(p->commune) - 1);
    if (a->insee && a->insee[0] && !opendata_insee_code_ok(a->insee))
        return fail("--insee is the commune's INSEE code: 5 characters (69123, 2A004)");
    if (a->latitude && a->latitude[0] && !opendata_coordinate_ok(a->latitude, 90))
        return fail("--latitude is in decimal degrees, -90 to 90 (45.7640)");
    if (a->longitude && a->longitude[0] && !opendata_coordinate_ok(a->longitude, 180))
        return fail("--longitude is in decimal degrees, -180 to 180 (4.8357)");
    place_field_set(p->label, sizeof(p->label), a->label);
    place_field_set(p->commune, sizeof(p->commune), a->commune);
    place_field_set(p->insee_code, sizeof(p->insee_code), a->insee);
    place_field_set(p->latitude, sizeof(p->latitude), a->latitude);
    place_field_set(p->longitude, sizeof(p->longitude), a->longitude);
    return 0;
}

static int place_store(struct cdb *db, const struct cdb_place *p)
{
    int r;

    if (!p->latitude[0] != !p->longitude[0])
        return fail("give both --latitude and --longitude, or neither");
    r = cdb_place_set(db, p);
    if (r == -ENOENT)
        return fail("site %s is not registered", p->site);
    if (r < 0)
        return fail("cannot record the place of site %s: %s", p->site, strerror(-r));
    return 0;
}

/* site add NAME (--key HEX | --key-file FILE) [--timezone TZ] [--day-starts HH:MM] [PLACE] */
static int cmd_site_add(struct cdb *db, int argc, char **argv)
{
    const char *key = NULL, *key_file = NULL, *zone = NULL, *day_starts = NULL;
    struct place_args pa = { 0 };
    const struct opt opts[] = {
        { "key", &key, NULL }, { "key-file", &key_file, NULL }, { "timezone", &zone, NULL },
        { "day-starts", &day_starts, NULL }, PLACE_OPTS(pa), { 0 } };
    struct cdb_site s = { .timezone = "UTC", .day_starts = 240 };
    struct cdb_place place = { .site = "" };
    char zonefile[256];
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (optind != argc - 1 || !key == !key_file)
        return fail("usage: site add NAME (--key HEX | --key-file FILE) [--timezone TZ] "
                    "[--day-starts HH:MM] [PLACE]");
    if (key && !key_from_hex(key, s.public_key))
        return fail("--key must be the site's public key: 64 hex digits (portierctl site key)");
    if (key_file && (r = key_from_file(key_file, s.public_key)) < 0)
        return fail("%s: %s", key_file, r == -EINVAL ? "no line of 64 hex digits (a public key) "
                    "in it" : strerror(-r));
    if (zone) {
        snprintf(zonefile, sizeof(zonefile), "/usr/share/zoneinfo/%s", zone);
        if (strlen(zone) >= sizeof(s.timezone) || strstr(zone, "..") ||
            access(zonefile, R_OK) != 0)
            return fail("unknown time zone '%s'", zone);
        snprintf(s.timezone, sizeof(s.timezone), "%s", zone);
    }
    if (day_starts && parse_hhmm(day_starts, &s.day_starts) < 0)
        return fail("--day-starts must be HH:MM");
    if ((r = place_apply(&pa, &place)) != 0)
        return r;
    if (!name_is_valid(argv[optind]))
        return fail("a site name is 1 to 31 letters, digits, '-', '_' or '.' (its [site] id)");
    if (!place.latitude[0] != !place.longitude[0])
        return fail("give both --latitude and --longitude, or neither");
    snprintf(s.name, sizeof(s.name), "%s", argv[optind]);
    s.added_at = now_utc();
    r = cdb_site_add(db, &s);
    if (r == -EEXIST)
        return fail("site %s is already registered", s.name);
    if (r < 0)
        return fail("cannot register site %s: %s", s.name, strerror(-r));
    snprintf(place.site, sizeof(place.site), "%s", s.name);
    if (place_given(&pa) && (r = place_store(db, &place)) != 0)
        return r;
    printf("site %s registered\n", s.name);
    return 0;
}

/* site set NAME PLACE: only the options given change. */
static int cmd_site_set(struct cdb *db, int argc, char **argv)
{
    struct place_args pa = { 0 };
    const struct opt opts[] = { PLACE_OPTS(pa), { 0 } };
    struct cdb_place place;
    struct cdb_site site;
    int r;

    if (argc < 2 || argv[1][0] == '-')
        return fail("usage: site set NAME [--label TEXT] [--commune NAME] [--insee CODE] "
                    "[--latitude DEG --longitude DEG]");
    if (cdb_site_get(db, argv[1], &site) < 0)
        return fail("site %s is not registered", argv[1]);
    r = cdb_place_get(db, site.name, &place);
    if (r < 0 && r != -ENOENT)
        return fail("cannot read the place of site %s: %s", site.name, strerror(-r));
    if ((r = parse_opts(argc, argv, 2, opts)) != 0)
        return r;
    if (optind != argc)
        return usage(stderr, 2);
    if ((r = place_apply(&pa, &place)) != 0 || (r = place_store(db, &place)) != 0)
        return r;
    printf("site %s: place recorded\n", site.name);
    return 0;
}

/* site machine NAME MACHINE --category CATEGORY */
static int cmd_site_machine(struct cdb *db, int argc, char **argv)
{
    const char *category = NULL;
    const struct opt opts[] = { { "category", &category, NULL }, { 0 } };
    int r;

    if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return fail("usage: site machine NAME MACHINE --category CATEGORY ('' removes it)");
    if ((r = parse_opts(argc, argv, 3, opts)) != 0)
        return r;
    if (optind != argc || !category)
        return fail("usage: site machine NAME MACHINE --category CATEGORY ('' removes it)");
    if (!name_is_valid(argv[2]))
        return fail("a machine is named as in the site's ledger: 1 to 31 letters, digits, '-', "
                    "'_' or '.'");
    if (category[0] && !opendata_category_ok(category))
        return fail("a category is 1 to 31 lower-case letters, digits, '-', '_' or '.', "
                    "starting with a letter or digit (laser-cutter, 3d-printer)");
    r = cdb_machine_category_set(db, argv[1], argv[2], category);
    if (r == -ENOENT)
        return fail("site %s is not registered", argv[1]);
    if (r < 0)
        return fail("cannot record the category: %s", strerror(-r));
    if (category[0])
        printf("site %s: machine %s published as %s\n", argv[1], argv[2], category);
    else
        printf("site %s: machine %s published as %s\n", argv[1], argv[2],
               OPENDATA_OTHER_CATEGORY);
    return 0;
}

struct site_list {
    struct cdb *db;
    json_t *list;
};

static int machine_json(const struct cdb_machine_category *m, void *userdata)
{
    json_object_set_new(userdata, m->machine, json_string(m->category));
    return 0;
}

static int site_json(const struct cdb_site *s, void *userdata)
{
    struct site_list *sl = userdata;
    char pk[LEDGER_PK_LEN * 2 + 1], h[LEDGER_HASH_LEN * 2 + 1];
    struct cdb_place place;
    json_t *o, *machines = json_object();

    sodium_bin2hex(pk, sizeof(pk), s->public_key, LEDGER_PK_LEN);
    sodium_bin2hex(h, sizeof(h), s->verified_hash, LEDGER_HASH_LEN);
    cdb_place_get(sl->db, s->name, &place);
    cdb_machine_categories_foreach(sl->db, s->name, machine_json, machines);
    json_array_append_new(sl->list, o = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I}", "name", s->name, "public_key", pk,
        "timezone", s->timezone, "day_starts", (json_int_t)s->day_starts, "verified_seq",
        (json_int_t)s->verified_seq, "verified_hash", s->verified_seq ? h : "",
        "last_batch_at", (json_int_t)s->last_batch_at, "replays", (json_int_t)s->replays,
        "open_problems", (json_int_t)s->open_problems));
    json_object_set_new(o, "place", json_pack("{s:s, s:s, s:s, s:s, s:s}", "label", place.label,
                                              "commune", place.commune, "insee_code",
                                              place.insee_code, "latitude", place.latitude,
                                              "longitude", place.longitude));
    json_object_set_new(o, "machine_categories", machines);
    return 0;
}

static int print_json(json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    if (!text)
        return fail("out of memory");
    puts(text);
    free(text);
    return 0;
}

/* site list [--json] */
static int cmd_site_list(struct cdb *db, int argc, char **argv)
{
    bool as_json = false;
    const struct opt opts[] = { { "json", NULL, &as_json }, { 0 } };
    json_t *list, *s;
    struct site_list sl;
    size_t i;
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (optind != argc)
        return usage(stderr, 2);
    sl = (struct site_list){ db, list = json_array() };
    cdb_sites_foreach(db, site_json, &sl);
    if (as_json)
        return print_json(list);
    printf("%-20s %-12s %-10s %-8s %s\n", "SITE", "VERIFIED", "PROBLEMS", "REPLAYS", "PUBLIC KEY");
    json_array_foreach(list, i, s)
        printf("%-20s %-12" JSON_INTEGER_FORMAT " %-10" JSON_INTEGER_FORMAT " %-8"
               JSON_INTEGER_FORMAT " %s\n", json_string_value(json_object_get(s, "name")),
               json_integer_value(json_object_get(s, "verified_seq")),
               json_integer_value(json_object_get(s, "open_problems")),
               json_integer_value(json_object_get(s, "replays")),
               json_string_value(json_object_get(s, "public_key")));
    json_decref(list);
    return 0;
}

static int problem_json(const struct cdb_problem *p, void *userdata)
{
    char at[32];
    format_utc(p->at, at, sizeof(at));
    json_array_append_new(userdata, json_pack(
        "{s:I, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "id", (json_int_t)p->id, "at", at, "site",
        p->site, "kind", p->kind, "first_seq", (json_int_t)p->first_seq, "last_seq",
        (json_int_t)p->last_seq, "detail", p->detail, "resolved", p->resolved_at != 0));
    return 0;
}

static int cmd_problems(struct cdb *db, int argc, char **argv)
{
    const char *site = NULL;
    bool as_json = false;
    const struct opt opts[] = { { "site", &site, NULL }, { "json", NULL, &as_json }, { 0 } };
    json_t *list, *p;
    size_t i;
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    list = json_array();
    cdb_problems_foreach(db, site, 0, 0, problem_json, list);
    if (as_json)
        return print_json(list);
    json_array_foreach(list, i, p)
        printf("%s %-12s %-12s %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT " %s%s\n",
               json_string_value(json_object_get(p, "at")),
               json_string_value(json_object_get(p, "site")),
               json_string_value(json_object_get(p, "kind")),
               json_integer_value(json_object_get(p, "first_seq")),
               json_integer_value(json_object_get(p, "last_seq")),
               json_string_value(json_object_get(p, "detail")),
               json_is_true(json_object_get(p, "resolved")) ? " (resolved)" : "");
    json_decref(list);
    return 0;
}

/* ---- run: ingestion over MQTT ---- */

struct runner {
    struct cdb *db;
    struct ingest *ingest;
    struct mosquitto *mosq;
    char prefix[64];
    char host[128];
    int port, keepalive;
    bool connected;
    struct { char site[32]; int64_t from; uint64_t at; } resent[RESEND_REMEMBERED];
    unsigned n_resent;
    uint64_t batches, stored, problems;
};

static uint64_t mono_usec(void)
{
    return now_mono_usec();
}

static void publish_ack(struct runner *rn, const char *site, int64_t seq,
                        const uint8_t hash[LEDGER_HASH_LEN])
{
    char topic[192], hex[LEDGER_HASH_LEN * 2 + 1], *text;
    json_t *o;

    snprintf(topic, sizeof(topic), "%s/%s/ledger/ack", rn->prefix, site);
    o = json_pack("{s:i, s:s, s:I}", "v", 1, "site", site, "seq", (json_int_t)seq);
    if (seq > 0) {
        sodium_bin2hex(hex, sizeof(hex), hash, LEDGER_HASH_LEN);
        json_object_set_new(o, "hash", json_string(hex));
    }
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (text)
        mosquitto_publish(rn->mosq, NULL, topic, (int)strlen(text), text, 1, true);
    free(text);
}

static void ask_resend(struct runner *rn, const char *site, int64_t from, int64_t to)
{
    char topic[192], payload[128];
    uint64_t now = mono_usec();
    unsigned i;

    /* The same gap is asked for at most every few seconds: a site sending ahead keeps
     * delivering later batches until it has the request. */
    for (i = 0; i < rn->n_resent; i++)
        if (strcmp(rn->resent[i].site, site) == 0)
            break;
    if (i < rn->n_resent && rn->resent[i].from == from && now - rn->resent[i].at < RESEND_QUIET_USEC)
        return;
    if (i == rn->n_resent) {
        if (rn->n_resent == RESEND_REMEMBERED)
            i = 0;
        else
            rn->n_resent++;
    }
    snprintf(rn->resent[i].site, sizeof(rn->resent[i].site), "%s", site);
    rn->resent[i].from = from;
    rn->resent[i].at = now;
    snprintf(topic, sizeof(topic), "%s/%s/ledger/resend", rn->prefix, site);
    snprintf(payload, sizeof(payload), "{\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"v\":1}", from,
             to);
    mosquitto_publish(rn->mosq, NULL, topic, (int)strlen(payload), payload, 1, false);
    log_info("site %s: asked again for entries %" PRId64 "-%" PRId64, site, from, to);
}

static int ack_site(const struct cdb_site *s, void *userdata)
{
    publish_ack(userdata, s->name, s->verified_seq, s->verified_hash);
    return 0;
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc)
{
    struct runner *rn = userdata;
    char topic[128];

    if (rc != 0) {
        log_warning("broker refused the connection: %s", mosquitto_connack_string(rc));
        return;
    }
    rn->connected = true;
    log_info("connected to %s:%d", rn->host, rn->port);
    snprintf(topic, sizeof(topic), "%s/+/ledger/batch", rn->prefix);
    mosquitto_subscribe(mosq, NULL, topic, 1);
    snprintf(topic, sizeof(topic), "%s/+/ledger/period/+", rn->prefix);
    mosquitto_subscribe(mosq, NULL, topic, 1);
    /* Where every site stands, retained: a site (re)connecting resumes from there. */
    cdb_sites_foreach(rn->db, ack_site, rn);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc)
{
    struct runner *rn = userdata;
    if (rn->connected && !stopping)
        log_warning("disconnected from %s:%d: %s", rn->host, rn->port,
                    rc == 0 ? "closed" : mosquitto_strerror(rc));
    rn->connected = false;
}

static void on_seal(struct runner *rn, const char *site, const char *period,
                    const struct mosquitto_message *msg)
{
    struct seal_result res;

    if (msg->payloadlen <= 0 || strlen(period) != 7)
        return;         /* a cleared retained seal; or not a period's topic */
    seals_receive(rn->db, site, period, msg->payload, (size_t)msg->payloadlen, now_utc(), &res);
    utf8_sanitize(res.detail);
    switch (res.outcome) {
    case SEAL_STORED:
        if (strcmp(res.state, "mismatch") == 0)
            log_error("site %s: %s", res.site, res.detail);
        else
            log_info("site %s: %s", res.site, res.detail);
        break;
    case SEAL_SAME:
        log_debug("site %s: %s", res.site, res.detail);
        break;
    case SEAL_ERROR:
        log_error("site %s: %s", res.site, res.detail);
        break;
    default:
        rn->problems++;
        log_error("site %s: period seal %s rejected (%s): %s", res.site, res.period,
                  seals_outcome_name(res.outcome), res.detail);
        break;
    }
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg)
{
    struct runner *rn = userdata;
    struct ingest_result res;
    char site[40];
    size_t plen = strlen(rn->prefix);
    const char *p, *slash;

    /* PREFIX/SITE/ledger/batch or PREFIX/SITE/ledger/period/YYYY-MM */
    if (strncmp(msg->topic, rn->prefix, plen) != 0 || msg->topic[plen] != '/')
        return;
    p = msg->topic + plen + 1;
    slash = strchr(p, '/');
    if (!slash || (size_t)(slash - p) >= sizeof(site))
        return;
    snprintf(site, sizeof(site), "%.*s", (int)(slash - p), p);
    if (strncmp(slash, "/ledger/period/", 15) == 0) {
        on_seal(rn, site, slash + 15, msg);
        return;
    }
    if (strcmp(slash, "/ledger/batch") != 0)
        return;
    if (msg->payloadlen <= 0)
        return;         /* an empty retained message clearing the topic */
    rn->batches++;
    ingest_batch(rn->ingest, site, msg->payload, (size_t)msg->payloadlen, now_utc(), &res);
    switch (res.outcome) {
    case INGEST_STORED:
        rn->stored += (uint64_t)res.stored;
        log_debug("site %s: %s", res.site, res.detail);
        /* The chain grew: the site's waiting period seals may now be checked. */
        if (seals_check(rn->db, res.site, now_utc()) > 0)
            log_error("site %s: a period seal does not match the verified chain "
                      "(seal_mismatch)", res.site);
        publish_ack(rn, res.site, res.verified_seq, res.verified_hash);
        break;
    case INGEST_REPLAY:
        rn->problems++;
        log_notice("site %s: %s", res.site, res.detail);
        /* The site missed our acknowledgement, most likely: say it again. */
        publish_ack(rn, res.site, res.verified_seq, res.verified_hash);
        break;
    case INGEST_GAP:
        rn->problems++;
        log_warning("site %s: %s", res.site, res.detail);
        ask_resend(rn, res.site, res.resend_from, res.resend_to);
        break;
    case INGEST_UNKNOWN_SITE:
        rn->problems++;
        log_debug("%s", res.detail);
        break;
    case INGEST_ERROR:
        log_error("site %s: %s", res.site, res.detail);
        break;
    default:
        rn->problems++;
        utf8_sanitize(res.detail);
        log_error("site %s: batch %" PRId64 "-%" PRId64 " rejected (%s): %s",
                  res.site[0] ? res.site : "?", res.first, res.last,
                  ingest_outcome_name(res.outcome), res.detail);
        break;
    }
}

static void wait_ms(unsigned ms)
{
    for (unsigned waited = 0; waited < ms && !stopping; waited += 100)
        poll(NULL, 0, 100);
}

static int cmd_run(struct cdb *db, int argc, char **argv)
{
    struct runner rn = { .db = db, .prefix = "portier", .keepalive = 30 };
    const char *broker = NULL, *prefix = NULL, *client_id = "portier-custodian";
    const char *username = NULL, *password_file = NULL, *keepalive = NULL;
    const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    const struct opt opts[] = {
        { "broker", &broker, NULL }, { "prefix", &prefix, NULL },
        { "client-id", &client_id, NULL }, { "username", &username, NULL },
        { "password-file", &password_file, NULL }, { "tls-ca", &tls_ca, NULL },
        { "tls-cert", &tls_cert, NULL }, { "tls-key", &tls_key, NULL },
        { "keepalive", &keepalive, NULL }, { 0 } };
    char password[256] = "";
    unsigned backoff = BACKOFF_MIN_MS;
    struct sigaction sa = { .sa_handler = on_signal };
    int64_t v;
    int r, status = 0;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (prefix && !name_is_valid(prefix))
        return fail("--prefix is one topic level (letters, digits, '_', '.', '-')");
    if (prefix)
        snprintf(rn.prefix, sizeof(rn.prefix), "%s", prefix);
    if (keepalive && parse_int64(keepalive, 5, 3600, &v) < 0)
        return fail("--keepalive must be 5 to 3600 seconds");
    if (keepalive)
        rn.keepalive = (int)v;
    if (!broker || optind != argc) {
        fail("run needs --broker HOST:PORT");
        return usage(stderr, 2);
    }
    {
        const char *colon = strrchr(broker, ':');
        if (!colon || colon == broker || (size_t)(colon - broker) >= sizeof(rn.host) ||
            parse_int64(colon + 1, 1, 65535, &v) < 0)
            return fail("--broker must be HOST:PORT");
        snprintf(rn.host, sizeof(rn.host), "%.*s", (int)(colon - broker), broker);
        rn.port = (int)v;
    }
    if (password_file && !username)
        return fail("--password-file needs --username");
    if (!tls_cert != !tls_key)
        return fail("give both --tls-cert and --tls-key, or neither");
    if (password_file && (r = file_read_first_line(password_file, password, sizeof(password))) < 0)
        return fail("cannot read %s: %s", password_file, strerror(-r));

    r = ingest_new(db, &rn.ingest);
    if (r < 0)
        return fail("out of memory");
    mosquitto_lib_init();
    rn.mosq = mosquitto_new(client_id, true, &rn);
    if (!rn.mosq) {
        status = fail("cannot create the MQTT client");
        goto out;
    }
    mosquitto_int_option(rn.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(rn.mosq, 20);
    if (username)
        mosquitto_username_pw_set(rn.mosq, username, password[0] ? password : NULL);
    sodium_memzero(password, sizeof(password));
    if (tls_ca && mosquitto_tls_set(rn.mosq, tls_ca, NULL, tls_cert, tls_key, NULL) !=
                      MOSQ_ERR_SUCCESS) {
        status = fail("TLS settings refused");
        goto out;
    }
    mosquitto_connect_callback_set(rn.mosq, on_connect);
    mosquitto_disconnect_callback_set(rn.mosq, on_disconnect);
    mosquitto_message_callback_set(rn.mosq, on_message);

    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("portier-custodian: receiving ledgers from %s:%d (prefix %s)", rn.host, rn.port,
             rn.prefix);
    /* Non-blocking connect; keep-alives notice a dead broker; reconnect with back-off. */
    r = mosquitto_connect_async(rn.mosq, rn.host, rn.port, rn.keepalive);
    while (!stopping) {
        if (r == MOSQ_ERR_SUCCESS)
            r = mosquitto_loop(rn.mosq, 1000, 1);
        if (stopping)
            break;
        if (r != MOSQ_ERR_SUCCESS) {
            log_debug("broker %s:%d: %s; trying again in %u ms", rn.host, rn.port,
                      r == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(r), backoff);
            wait_ms(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            r = mosquitto_reconnect_async(rn.mosq);
        } else if (rn.connected) {
            backoff = BACKOFF_MIN_MS;
        }
    }
    log_info("portier-custodian: stopping; %" PRIu64 " batches received, %" PRIu64
             " entries stored, %" PRIu64 " problems", rn.batches, rn.stored, rn.problems);
    if (rn.connected) {
        mosquitto_disconnect(rn.mosq);
        mosquitto_loop(rn.mosq, 100, 1);
    }
out:
    mosquitto_destroy(rn.mosq);
    mosquitto_lib_cleanup();
    ingest_free(rn.ingest);
    return status;
}

/* ---- report and serve ---- */

static int cmd_report(struct cdb *db, int argc, char **argv)
{
    const char *period = NULL, *format = "text";
    bool as_json = false;
    const struct opt opts[] = {
        { "period", &period, NULL }, { "format", &format, NULL }, { "json", NULL, &as_json },
        { 0 } };
    json_t *rep;
    char *text;
    int err;

    if ((err = parse_opts(argc, argv, 1, opts)) != 0)
        return err;
    if (as_json)                /* --json: the same as --format json */
        format = "json";
    if (!period || optind != argc)
        return fail("usage: report --period YYYY-MM [--format text|csv|json]");
    if (strcmp(format, "text") != 0 && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
        return fail("--format is text, csv or json");
    rep = report_build(db, period, &err);
    if (!rep)
        return fail("%s", err == -EINVAL ? "period must be YYYY-MM" : strerror(-err));
    text = report_render(rep, format);
    json_decref(rep);
    if (!text)
        return fail("out of memory");
    fputs(text, stdout);
    if (strcmp(format, "json") == 0)
        fputc('\n', stdout);
    free(text);
    return 0;
}

static int cmd_serve(struct cdb *db, int argc, char **argv)
{
    const char *listen = NULL, *opendata = NULL;
    const struct opt opts[] = { { "listen", &listen, NULL }, { "opendata", &opendata, NULL },
                                { 0 } };
    struct sigaction sa = { .sa_handler = on_signal };
    struct stat st;
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (!listen || optind != argc)
        return fail("usage: serve --listen ADDR:PORT (an IPv4 address, e.g. 127.0.0.1:8090) "
                    "[--opendata DIR]");
    if (opendata && (stat(opendata, &st) < 0 || !S_ISDIR(st.st_mode)))
        return fail("--opendata %s: not a directory", opendata);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    r = web_serve(db, listen, opendata, &stopping);
    if (r == -EINVAL)
        return fail("--listen must be an IPv4 ADDR:PORT");
    if (r < 0)
        return fail("cannot listen on %s", listen);
    return 0;
}

static int cmd_export(struct cdb *db, int argc, char **argv)
{
    const char *period = NULL, *dir = NULL, *site = NULL;
    const struct opt opts[] = {
        { "period", &period, NULL }, { "out", &dir, NULL }, { "site", &site, NULL }, { 0 } };
    char first[11], last[11];
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (!period || !dir || optind != argc)
        return fail("usage: export --period YYYY-MM --out DIR [--site NAME]");
    if (period_days(period, first, last) < 0)
        return fail("period must be YYYY-MM");
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return fail("cannot create %s: %s", dir, strerror(errno));
    r = seals_export(db, period, site, dir, stdout, stderr);
    if (r < 0)
        return fail("export of %s failed: %s", period, strerror(-r));
    return r;
}

/* ---- open data ---- */

/* Run the operator's publishing hook: /bin/sh -c CMD with the directory and the period as
 * $1 and $2 (and in PORTIER_OPENDATA_DIR, PORTIER_OPENDATA_PERIOD). Its exit status, or
 * -errno. */
static int run_publish_cmd(const char *cmd, const char *dir, const char *period)
{
    pid_t pid;
    int status;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        fd_cloexec_all();           /* the database stays with us */
        setenv("PORTIER_OPENDATA_DIR", dir, 1);
        setenv("PORTIER_OPENDATA_PERIOD", period, 1);
        execl("/bin/sh", "sh", "-c", cmd, "portier-opendata-publish", dir, period, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return status;
}

static int cmd_opendata(struct cdb *db, int argc, char **argv)
{
    struct opendata_options o = { .k = OPENDATA_K_DEFAULT, .licence = &opendata_licences[0] };
    const char *publish = NULL, *k = NULL, *licence = NULL, *epoch;
    const struct opt opts[] = {
        { "period", &o.period, NULL }, { "out", &o.dir, NULL }, { "producer", &o.producer, NULL },
        { "k", &k, NULL }, { "licence", &licence, NULL }, { "license", &licence, NULL },
        { "partial", NULL, &o.partial }, { "publish-cmd", &publish, NULL }, { 0 } };
    char first[11], last[11];
    int64_t v;
    int r;

    if ((r = parse_opts(argc, argv, 1, opts)) != 0)
        return r;
    if (o.producer && !opendata_text_ok(o.producer, 200))
        return fail("--producer is 1 to 199 bytes of printable UTF-8");
    if (k && parse_int64(k, 2, OPENDATA_K_MAX, &v) < 0)
        return fail("--k is 2 to %d (people a published figure needs at least)", OPENDATA_K_MAX);
    if (k)
        o.k = (int)v;
    if (licence && !(o.licence = opendata_licence_find(licence))) {
        fprintf(stderr, "portier-custodian: --licence is one of:");
        for (const struct opendata_licence *l = opendata_licences; l->id; l++)
            fprintf(stderr, " %s", l->id);
        fputc('\n', stderr);
        return 1;
    }
    if (!o.period || !o.dir || !o.producer || optind != argc)
        return fail("usage: opendata --period YYYY-MM --out DIR --producer NAME [--k N] "
                    "[--licence ID] [--partial] [--publish-cmd CMD]");
    if (strlen(o.period) != 7 || period_days(o.period, first, last) < 0)
        return fail("period must be YYYY-MM");
    /* SOURCE_DATE_EPOCH: a reproducible generation time, for those who rebuild a dataset. */
    epoch = getenv("SOURCE_DATE_EPOCH");
    if (!epoch || parse_int64(epoch, 0, INT64_C(253402300799), &o.now) < 0)
        o.now = now_utc();
    if (mkdir(o.dir, 0755) < 0 && errno != EEXIST)
        return fail("cannot create %s: %s", o.dir, strerror(errno));
    r = opendata_generate(db, &o, stdout, stderr);
    if (r < 0)
        return fail("open data of %s not written: %s", o.period, strerror(-r));
    if (r > 0)
        return 1;
    if (publish) {
        r = run_publish_cmd(publish, o.dir, o.period);
        if (r < 0)
            return fail("cannot run the publish command: %s", strerror(-r));
        if (!WIFEXITED(r) || WEXITSTATUS(r) != 0)
            return fail("the dataset is written in %s, but the publish command failed (%s %d)",
                        o.dir, WIFEXITED(r) ? "exit status" : "signal",
                        WIFEXITED(r) ? WEXITSTATUS(r) : WTERMSIG(r));
        printf("published: %s\n", publish);
    }
    return 0;
}

/* ---- main ---- */

/* The sub-commands: NAME [SUB] ...; each runs with argv from its last word (argv[0]). */
static const struct command {
    const char *name, *sub;
    int (*run)(struct cdb *db, int argc, char **argv);
} commands[] = {
    { "site", "add", cmd_site_add },
    { "site", "set", cmd_site_set },
    { "site", "machine", cmd_site_machine },
    { "site", "list", cmd_site_list },
    { "problems", NULL, cmd_problems },
    { "run", NULL, cmd_run },
    { "report", NULL, cmd_report },
    { "serve", NULL, cmd_serve },
    { "export", NULL, cmd_export },
    { "opendata", NULL, cmd_opendata },
};

static const struct command *command_find(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[0], c->name) == 0 &&
            (!c->sub || (argc >= 2 && strcmp(argv[1], c->sub) == 0)))
            return c;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *db_path = DEFAULT_DB;
    const struct command *cmd;
    struct cdb *db;
    int first = 1, r, status;

    if (sodium_init() < 0)
        return fail("libsodium cannot start");
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "--db") == 0 && first + 1 < argc) {
            db_path = argv[first + 1];
            first += 2;
        } else if (strcmp(argv[first], "-v") == 0 || strcmp(argv[first], "--verbose") == 0) {
            log_set_level(LOG_DEBUG);
            first++;
        } else if (strcmp(argv[first], "-h") == 0 || strcmp(argv[first], "--help") == 0) {
            return usage(stdout, 0);
        } else if (strcmp(argv[first], "--version") == 0) {
            printf("portier-custodian %s\n", PORTIER_VERSION);
            return 0;
        } else {
            return usage(stderr, 2);
        }
    }
    argc -= first;
    argv += first;
    /* An unknown command is refused before the database is opened (or created). */
    if (argc < 1 || !(cmd = command_find(argc, argv)))
        return usage(stderr, 2);
    r = cdb_open(db_path, &db);
    if (r < 0)
        return fail("cannot open %s: %s", db_path,
                    r == -EPROTO ? "it was written by a newer portier-custodian" : strerror(-r));
    if (cmd->sub)
        status = cmd->run(db, argc - 1, argv + 1);
    else
        status = cmd->run(db, argc, argv);
    cdb_free(db);
    return status;
}

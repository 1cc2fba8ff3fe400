/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "util.h"

const char *const config_backends[] = { "sim", "gpiod", NULL };
const char *const config_reader_drivers[] = { "sim", "libnfc", NULL };
/* In the order of enum card_security (policy.h). */
const char *const config_card_securities[] = { "uid", "desfire", "desfire-or-uid", NULL };
static const char *const fail_modes[] = { "secure", "safe", NULL };
static const char *const biases[] = { "as-is", "disable", "pull-up", "pull-down", NULL };
static const char *const log_levels[] = { "debug", "info", "notice", "warning", "error", NULL };

enum config_type {
    CT_STRING,      /* free text */
    CT_NAME,        /* [A-Za-z0-9_.-]{1,31} */
    CT_PATH,        /* absolute path, or empty where the default is empty */
    CT_INT,
    CT_BOOL,
    CT_ENUM,        /* stored as the int index into choices */
    CT_SCHEDULE,    /* struct schedule at offset, text copy at aux */
    CT_LINE,        /* struct line_spec; chip filled from [hardware] chip later */
    CT_MODE,        /* octal file mode */
    CT_TIMEZONE,
    CT_LOGLEVEL,    /* stored as a syslog priority */
    CT_HHMM,        /* "HH:MM" as minutes after midnight (int64_t); "" as -1 where allowed */
    CT_LISTEN,      /* "HOST:PORT" or "[V6]:PORT" (or empty) */
    CT_DEGREES,     /* decimal degrees within [min, max], kept as text (or empty) */
    CT_DEVICE,      /* struct device_spec: "shelly:TOPIC[:N]", "tasmota:TOPIC[:N]" (or empty) */
};

struct config_key {
    const char *name;
    enum config_type type;
    size_t offset;
    size_t size;                    /* CT_STRING, CT_NAME, CT_PATH, CT_TIMEZONE: buffer size */
    int64_t min, max;               /* CT_INT */
    const char *def;                /* NULL: required */
    const char *const *choices;     /* CT_ENUM */
    size_t aux;                     /* CT_SCHEDULE: offset of the text copy */
    const char *help;
};

/* The order of enum lang (i18n.h). */
static const char *const languages[] = { "en", "fr", NULL };
static const char *const open_froms[] = { "presence", "doors", NULL };

struct section_kind {
    const char *name;
    bool named;
    const struct config_key *keys;
    size_t n_keys;
    const char *help;
};

/* The sections and their keys (SEC_*, sections[]), generated from config.schema. */
#include "config_schema.inc"

struct parse_state {
    FILE *f;
    const char *file;
    unsigned line;
    bool line_too_long;
    struct config *cfg;
    struct config_errors *errors;
    int kind;                       /* -1: before any section (keys there are errors) */
    void *obj;                      /* struct being filled, NULL after a bad header */
    uint64_t seen;                  /* keys of the current section already set */
    unsigned section_line;
    bool singleton_seen[SEC__MAX];
};

/* Where a named section's items live in struct config. Each item's struct has its name
 * (char[CONFIG_NAME_MAX]) and the line of its header. */
struct named_list {
    size_t items, count;            /* offsetof(struct config, the array / its count) */
    size_t size;                    /* of one item */
    unsigned max;                   /* items the array holds */
    size_t name, line;              /* offsetof(item, name / line) */
};

#define NAMED_LIST(type, array, n)                                                         \
    { offsetof(struct config, array), offsetof(struct config, n), sizeof(type),            \
      ARRAY_SIZE(((struct config *)0)->array), offsetof(type, name), offsetof(type, line) }
static const struct named_list named_lists[SEC__MAX] = {
    [SEC_READER]  = NAMED_LIST(struct reader_config, readers, n_readers),
    [SEC_DOOR]    = NAMED_LIST(struct door_config, doors, n_doors),
    [SEC_MACHINE] = NAMED_LIST(struct machine_config, machines, n_machines),
    [SEC_METER]   = NAMED_LIST(struct meter_config, meters, n_meters),
    [SEC_WEBHOOK] = NAMED_LIST(struct webhook_config, webhooks, n_webhooks),
};
#undef NAMED_LIST
/* What named_lists[] takes for granted of each item's struct, checked by the compiler. */
#define NAMED_ITEM_OK(type)                                                                \
    _Static_assert(sizeof(((type *)0)->name) == CONFIG_NAME_MAX &&                         \
                       _Generic(((type *)0)->line, unsigned: 1, default: 0),               \
                   #type ": a char name[CONFIG_NAME_MAX] and an unsigned line")
NAMED_ITEM_OK(struct reader_config);
NAMED_ITEM_OK(struct door_config);
NAMED_ITEM_OK(struct machine_config);
NAMED_ITEM_OK(struct meter_config);
NAMED_ITEM_OK(struct webhook_config);
#undef NAMED_ITEM_OK

static unsigned *named_count(const struct config *c, int kind)
{
    return (unsigned *)((const char *)c + named_lists[kind].count);
}

static char *named_item(const struct config *c, int kind, unsigned i)
{
    return (char *)c + named_lists[kind].items + i * named_lists[kind].size;
}

/* The item of a named section kind called name, or NULL. */
static const void *named_find(const struct config *c, int kind, const char *name)
{
    for (unsigned i = 0; i < *named_count(c, kind); i++) {
        const char *item = named_item(c, kind, i);
        if (strcmp(item + named_lists[kind].name, name) == 0)
            return item;
    }
    return NULL;
}

static void add_error(struct config_errors *errors, const char *file, unsigned line,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct config_errors *errors, const char *file, unsigned line,
                      const char *fmt, ...)
{
    char text[320];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (errors->count < CONFIG_MAX_ERRORS) {
        if (line > 0)
            snprintf(errors->msg[errors->count], sizeof(errors->msg[0]), "%s:%u: %s", file,
                     line, text);
        else
            snprintf(errors->msg[errors->count], sizeof(errors->msg[0]), "%s: %s", file, text);
    }
    errors->count++;
}

static bool timezone_is_valid(const char *tz)
{
    char path[128];
    struct stat st;

    if (strcmp(tz, "UTC") == 0)
        return true;
    if (!*tz || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 60)
        return false;
    for (const char *p = tz; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("/_+-", *p)))
            return false;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int enum_index(const char *const *choices, const char *value)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], value) == 0)
            return i;
    return -1;
}

static void choices_text(const char *const *choices, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; choices[i] && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", choices[i]);
}

/* Parse value for key into obj. Returns NULL or a message describing the problem. */
int listen_parse(const char *text, char *host, size_t host_n, int64_t *port)
{
    const char *colon;
    size_t hlen;
    int64_t p;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        colon = close + 1;
        text++;
        hlen = (size_t)(close - text);
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return -EINVAL;
        hlen = (size_t)(colon - text);
    }
    if (hlen == 0 || hlen >= 64 || parse_int64(colon + 1, 1, 65535, &p) < 0)
        return -EINVAL;
    for (size_t i = 0; i < hlen; i++)
        if (!(isalnum((unsigned char)text[i]) || text[i] == '.' || text[i] == ':' || text[i] == '-'))
            return -EINVAL;
    if (host) {
        if (hlen >= host_n)
            return -ENAMETOOLONG;
        memcpy(host, text, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = p;
    return 0;
}

/* Format why and return it: a key_set() refusal in one statement. */
static const char *why_set(char *why, size_t why_n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *why_set(char *why, size_t why_n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, why_n, fmt, ap);
    va_end(ap);
    return why;
}

static const char *key_set(const struct config_key *k, void *obj, const char *value,
                           char *why, size_t why_n)
{
    char *field = (char *)obj + k->offset;
    int64_t n;
    bool b;
    int idx;

    switch (k->type) {
    case CT_STRING:
        if (strlcpy_checked(field, value, k->size) < 0)
            return why_set(why, why_n, "value too long for %s (at most %zu characters)", k->name,
                           k->size - 1);
        /* Names reach JSON (status, SpaceAPI, MQTT), which must be UTF-8. */
        utf8_sanitize(field);
        if (strcmp(field, value) != 0)
            return why_set(why, why_n, "%s is not valid UTF-8 text (save the file as UTF-8)",
                           k->name);
        /* Nor terminal escapes: names are printed by portierctl and shown on pages. */
        for (const unsigned char *p = (const unsigned char *)value; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                return why_set(why, why_n, "%s has a control character", k->name);
        return NULL;
    case CT_NAME:
        if (!name_is_valid(value))
            return why_set(why, why_n, "%s must be 1 to 31 letters, digits, '-', '_' or '.'",
                           k->name);
        strlcpy_checked(field, value, k->size);
        return NULL;
    case CT_PATH:
        if (*value && value[0] != '/')
            return why_set(why, why_n, "%s must be an absolute path", k->name);
        if (strlcpy_checked(field, value, k->size) < 0)
            return why_set(why, why_n, "path too long for %s (at most %zu characters)", k->name,
                           k->size - 1);
        return NULL;
    case CT_INT:
        if (parse_int64(value, INT64_MIN, INT64_MAX, &n) < 0)
            return why_set(why, why_n, "%s must be an integer", k->name);
        if (n < k->min || n > k->max)
            return why_set(why, why_n, "%s = %" PRId64 " is out of range [%" PRId64 ", %" PRId64
                           "]", k->name, n, k->min, k->max);
        *(int64_t *)field = n;
        return NULL;
    case CT_BOOL:
        if (parse_bool(value, &b) < 0)
            return why_set(why, why_n, "%s must be true or false", k->name);
        *(bool *)field = b;
        return NULL;
    case CT_ENUM:
    case CT_LOGLEVEL: {
        char list[128];
        idx = enum_index(k->choices, value);
        if (idx < 0) {
            choices_text(k->choices, list, sizeof(list));
            return why_set(why, why_n, "%s must be one of: %s", k->name, list);
        }
        *(int *)field = k->type == CT_ENUM ? idx : log_level_from_string(value);
        return NULL;
    }
    case CT_SCHEDULE: {
        const char *err = "invalid schedule";
        if (schedule_parse(value, (struct schedule *)field, &err) < 0)
            return why_set(why, why_n, "%s: %s", k->name, err);
        strlcpy_checked((char *)obj + k->aux, value, SCHEDULE_MAX_TEXT);
        return NULL;
    }
    case CT_LINE: {
        struct line_spec *spec = (struct line_spec *)field;
        if (!*value) {
            memset(spec, 0, sizeof(*spec));
            return NULL;
        }
        /* The chip of a bare offset is filled in from [hardware] chip at the end. */
        if (strncmp(value, "shelly:", 7) == 0 || strncmp(value, "tasmota:", 8) == 0)
            return why_set(why, why_n, "%s must be a GPIO line: a network relay is a "
                           "machine's `power` (doors and outputs stay on GPIO: they must not "
                           "depend on Wi-Fi)", k->name);
        if (line_spec_parse(value, "", spec) < 0)
            return why_set(why, why_n, "%s must be a line as OFFSET or CHIP:OFFSET (0-511)",
                           k->name);
        if (!strchr(value, ':'))
            spec->chip[0] = '\0';
        return NULL;
    }
    case CT_MODE: {
        char *end;
        long m = strtol(value, &end, 8);
        if (!*value || *end || m < 0 || m > 0777)
            return why_set(why, why_n, "%s must be an octal mode such as 0660", k->name);
        *(unsigned *)field = (unsigned)m;
        return NULL;
    }
    case CT_HHMM: {
        int h, mi, used = 0;
        if (!*value && k->max == 1) {       /* max 1: empty allowed */
            *(int64_t *)field = -1;
            return NULL;
        }
        if (sscanf(value, "%2d:%2d%n", &h, &mi, &used) != 2 || value[used] || h < 0 || h > 23 ||
            mi < 0 || mi > 59) {
            return why_set(why, why_n, "%s must be a time of day as HH:MM%s", k->name,
                           k->max == 1 ? ", or empty" : "");
        }
        *(int64_t *)field = h * 60 + mi;
        return NULL;
    }
    case CT_LISTEN:
        if (*value && listen_parse(value, NULL, 0, NULL) < 0)
            return why_set(why, why_n, "%s must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
                           k->name);
        strlcpy_checked(field, value, k->size);
        return NULL;
    case CT_DEGREES: {
        char *end;
        double deg;
        if (!*value) {
            field[0] = '\0';
            return NULL;
        }
        errno = 0;
        deg = strtod(value, &end);
        if (errno || *end || end == value || deg < (double)k->min || deg > (double)k->max ||
            strlen(value) >= k->size) {
            return why_set(why, why_n, "%s must be a decimal number of degrees from %" PRId64
                           " to %" PRId64, k->name, k->min, k->max);
        }
        strlcpy_checked(field, value, k->size);
        return NULL;
    }
    case CT_DEVICE: {
        struct device_spec *dev = (struct device_spec *)field;
        if (!*value) {
            memset(dev, 0, sizeof(*dev));
            return NULL;
        }
        if (device_spec_parse(value, dev) < 0)
            return why_set(why, why_n, "%s must be shelly:TOPIC[:SWITCH] or "
                           "tasmota:TOPIC[:RELAY] (TOPIC: 1 to 63 letters, digits, '-', '_', "
                           "'.' or '/')", k->name);
        return NULL;
    }
    case CT_TIMEZONE:
        if (!timezone_is_valid(value))
            return why_set(why, why_n, "unknown time zone '%.60s' (expected a name such as "
                           "Europe/Paris from /usr/share/zoneinfo)", value);
        strlcpy_checked(field, value, k->size);
        return NULL;
    }
    return "internal error: unknown key type";
}

static void *section_object(struct config *cfg, int kind)
{
    switch (kind) {
    case SEC_SITE:     return &cfg->site;
    case SEC_DAEMON:   return &cfg->daemon;
    case SEC_HARDWARE: return &cfg->hardware;
    case SEC_METERING: return &cfg->metering;
    case SEC_MQTT:     return &cfg->mqtt;
    case SEC_HTTP:     return &cfg->http;
    case SEC_WEB:      return &cfg->web;
    case SEC_SPACEAPI: return &cfg->spaceapi;
    case SEC_CONSORTIUM: return &cfg->consortium;
    case SEC_PRIVACY:  return &cfg->privacy;
    case SEC_MAIL:     return &cfg->mail;
    }
    /* A named section: the item its header has just added. */
    return sections[kind].named ? named_item(cfg, kind, *named_count(cfg, kind) - 1) : NULL;
}

static void apply_defaults(int kind, void *obj)
{
    char why[200];
    for (size_t i = 0; i < sections[kind].n_keys; i++) {
        const struct config_key *k = &sections[kind].keys[i];
        if (k->def)
            (void)key_set(k, obj, k->def, why, sizeof(why));    /* checked by a unit test */
    }
}

static void section_end(struct parse_state *st)
{
    if (st->kind < 0 || !st->obj)
        return;
    for (size_t i = 0; i < sections[st->kind].n_keys; i++) {
        const struct config_key *k = &sections[st->kind].keys[i];
        if (!k->def && !(st->seen & (1ull << i)))
            add_error(st->errors, st->file, st->section_line, "[%s] is missing required key '%s'",
                      sections[st->kind].name, k->name);
    }
}

/* "[kind]" or "[kind NAME]" or "[kind \"NAME\"]". */
static void section_begin(struct parse_state *st, const char *header)
{
    char kind_name[32], name[64] = "";
    const char *p = header + 1, *close = strchr(header, ']');
    size_t n;
    int kind = -1;

    section_end(st);
    st->obj = NULL;
    st->kind = -1;
    st->seen = 0;
    st->section_line = st->line;

    if (!close) {
        add_error(st->errors, st->file, st->line, "section header is missing ']'");
        return;
    }
    for (const char *q = close + 1; *q; q++)
        if (!isspace((unsigned char)*q) && *q != ';' && *q != '#') {
            add_error(st->errors, st->file, st->line, "unexpected text after section header");
            return;
        } else if (*q == ';' || *q == '#') {
            break;
        }
    n = strcspn(p, " \t]");
    if (n == 0 || n >= sizeof(kind_name)) {
        add_error(st->errors, st->file, st->line, "empty or too long section name");
        return;
    }
    memcpy(kind_name, p, n);
    kind_name[n] = '\0';
    p += n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p < close) {
        n = (size_t)(close - p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
            p++;
            n -= 2;
        }
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, p, n);
        name[n] = '\0';
    }
    for (int i = 0; i < SEC__MAX; i++)
        if (strcmp(sections[i].name, kind_name) == 0)
            kind = i;
    if (kind < 0) {
        /* The sections the schema lists, in its order: "site, ..., meter NAME or webhook NAME". */
        char expected[512];
        size_t len = 0;
        expected[0] = '\0';
        for (int i = 0; i < SEC__MAX && len < sizeof(expected); i++)
            len += (size_t)snprintf(expected + len, sizeof(expected) - len, "%s%s%s",
                                    i == 0 ? "" : i == SEC__MAX - 1 ? " or " : ", ",
                                    sections[i].name, sections[i].named ? " NAME" : "");
        add_error(st->errors, st->file, st->line, "unknown section [%s] (expected %s)",
                  kind_name, expected);
        return;
    }
    if (!sections[kind].named) {
        if (*name) {
            add_error(st->errors, st->file, st->line, "section [%s] takes no name", kind_name);
            return;
        }
        if (st->singleton_seen[kind]) {
            add_error(st->errors, st->file, st->line, "duplicate section [%s]", kind_name);
            return;
        }
        st->singleton_seen[kind] = true;
    } else {
        if (!name_is_valid(name)) {
            add_error(st->errors, st->file, st->line,
                      "[%s NAME]: NAME must be 1 to 31 letters, digits, '-', '_' or '.'",
                      kind_name);
            return;
        }
        if (named_find(st->cfg, kind, name)) {
            add_error(st->errors, st->file, st->line, "duplicate section [%s %s]", kind_name,
                      name);
            return;
        }
        /* One more of this kind, within its limit. */
        unsigned *count = named_count(st->cfg, kind), max = named_lists[kind].max;
        if (*count == max) {
            add_error(st->errors, st->file, st->line, "too many %ss (at most %u)", kind_name, max);
            return;
        }
        (*count)++;
    }
    st->kind = kind;
    st->obj = section_object(st->cfg, kind);
    if (sections[kind].named) {
        const struct named_list *l = &named_lists[kind];
        char *item = st->obj;
        memset(item, 0, l->size);
        strlcpy_checked(item + l->name, name, CONFIG_NAME_MAX);
        *(unsigned *)(item + l->line) = st->line;
        apply_defaults(kind, st->obj);
    }
}

/* inih reads lines through this, so we know the line number of every key and see
 * section headers (inih does not report empty sections). */
static char *reader_fgets(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    char *line;
    size_t len;
    const char *p;

    if (st->line_too_long) {
        /* Skip the rest of an over-long line so its tail is not parsed as a line of its own. */
        int c;
        while ((c = fgetc(st->f)) != EOF && c != '\n')
            ;
        st->line_too_long = false;
    }
    line = fgets(str, num, st->f);
    if (!line)
        return NULL;
    st->line++;
    len = strlen(line);
    if (len == (size_t)num - 1 && line[len - 1] != '\n' && !feof(st->f)) {
        add_error(st->errors, st->file, st->line, "line too long (at most %d characters)",
                  num - 2);
        st->line_too_long = true;
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }
    /* Indentation means nothing to us: strip it, or inih would take an indented key for
     * the continuation of the previous value. */
    p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (p != line)
        memmove(line, p, strlen(p) + 1);
    if (*line == '[') {
        section_begin(st, line);
    } else if (*line && *line != '\n' && *line != '\r' && *line != ';' && *line != '#' &&
               !strpbrk(line, "=:")) {
        /* Reported here, with its line, so that every syntax error shows, not just inih's
         * first one; inih then sees a blank line. */
        add_error(st->errors, st->file, st->line, "syntax error (expected [section] or key = value)");
        line[0] = '\n';
        line[1] = '\0';
    }
    return line;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    const struct section_kind *sk;
    char why[200];
    const char *err;

    if (st->kind < 0 && !*section) {
        add_error(st->errors, st->file, st->line, "key '%s' outside any section", name);
        return 1;
    }
    if (!st->obj)
        return 1;   /* the bad header was reported; don't pile up errors for its keys */
    sk = &sections[st->kind];
    for (size_t i = 0; i < sk->n_keys; i++) {
        const struct config_key *k = &sk->keys[i];
        if (strcmp(k->name, name) != 0)
            continue;
        if (st->seen & (1ull << i)) {
            add_error(st->errors, st->file, st->line, "duplicate key '%s' in [%s]", name,
                      sk->name);
            return 1;
        }
        st->seen |= 1ull << i;
        if (!k->def && !*value) {
            add_error(st->errors, st->file, st->line, "%s needs a value", name);
            return 1;
        }
        err = key_set(k, st->obj, value, why, sizeof(why));
        if (err)
            add_error(st->errors, st->file, st->line, "%s", err);
        else if (st->kind == SEC_DOOR && strcmp(name, "reader") == 0)
            st->cfg->doors[st->cfg->n_doors - 1].reader_line = st->line;
        else if (st->kind == SEC_MACHINE && strcmp(name, "reader") == 0)
            st->cfg->machines[st->cfg->n_machines - 1].reader_line = st->line;
        return 1;
    }
    add_error(st->errors, st->file, st->line, "unknown key '%s' in [%s]", name, sk->name);
    return 1;
}

static void fill_chip(struct line_spec *spec, bool active_low, const char *chip)
{
    if (!spec->set)
        return;
    if (!spec->chip[0])
        strlcpy_checked(spec->chip, chip, sizeof(spec->chip));
    spec->active_low = active_low;
}

/* Checks that need the whole file: references between sections and lines used twice. */
static void check_whole(struct parse_state *st)
{
    struct config *c = st->cfg;
    enum { MAX_LINES = CONFIG_MAX_DOORS * 3 + CONFIG_MAX_READERS + CONFIG_MAX_MACHINES * 3 };
    const struct line_spec *lines[MAX_LINES];
    const char *owners[MAX_LINES];
    unsigned owner_lines[MAX_LINES];
    size_t n_lines = 0;

    for (unsigned i = 0; i < c->n_readers; i++) {
        struct reader_config *r = &c->readers[i];
        fill_chip(&r->reset_line, r->reset_line_active_low, c->hardware.chip);
        if (strcmp(config_reader_drivers[r->driver], "libnfc") == 0 && !r->connstring[0])
            add_error(st->errors, st->file, r->line,
                      "reader '%s' uses libnfc but has no connstring (e.g. pn532_uart:/dev/serial0)",
                      r->name);
        if (r->reset_line.set) {
            for (size_t o = 0; o < n_lines; o++)
                if (lines[o]->offset == r->reset_line.offset &&
                    strcmp(lines[o]->chip, r->reset_line.chip) == 0)
                    add_error(st->errors, st->file, r->line,
                              "reader '%s' uses line %s:%u, already used by %s (line %u)", r->name,
                              r->reset_line.chip, r->reset_line.offset, owners[o], owner_lines[o]);
            lines[n_lines] = &r->reset_line;
            owners[n_lines] = r->name;
            owner_lines[n_lines] = r->line;
            n_lines++;
        }
    }
    for (unsigned i = 0; i < c->n_doors; i++) {
        struct door_config *d = &c->doors[i];
        fill_chip(&d->relay, d->relay_active_low, c->hardware.chip);
        fill_chip(&d->contact, d->contact_active_low, c->hardware.chip);
        fill_chip(&d->exit_button, d->exit_button_active_low, c->hardware.chip);
        if (d->reader[0] && !config_find_reader(c, d->reader))
            add_error(st->errors, st->file, d->reader_line ? d->reader_line : d->line,
                      "door '%s' uses reader '%s', which has no [reader %s] section", d->name,
                      d->reader, d->reader);
        if (d->exit_reader[0] && !config_find_reader(c, d->exit_reader))
            add_error(st->errors, st->file, d->line,
                      "door '%s' uses exit_reader '%s', which has no [reader %s] section", d->name,
                      d->exit_reader, d->exit_reader);
        if (d->exit_reader[0] && strcmp(d->exit_reader, d->reader) == 0)
            add_error(st->errors, st->file, d->line, "door '%s': reader and exit_reader must differ",
                      d->name);
        for (unsigned j = 0; j < i; j++)
            if (d->exit_reader[0] && (strcmp(c->doors[j].reader, d->exit_reader) == 0 ||
                                      strcmp(c->doors[j].exit_reader, d->exit_reader) == 0))
                add_error(st->errors, st->file, d->line, "reader '%s' already serves door '%s'",
                          d->exit_reader, c->doors[j].name);
        for (unsigned j = 0; j < i; j++)
            if (d->reader[0] && strcmp(c->doors[j].reader, d->reader) == 0)
                add_error(st->errors, st->file, d->reader_line ? d->reader_line : d->line,
                          "reader '%s' already opens door '%s'", d->reader, c->doors[j].name);
        const struct line_spec *mine[3] = { &d->relay, &d->contact, &d->exit_button };
        for (unsigned m = 0; m < 3; m++) {
            if (!mine[m]->set)
                continue;
            for (size_t o = 0; o < n_lines; o++)
                if (lines[o]->offset == mine[m]->offset &&
                    strcmp(lines[o]->chip, mine[m]->chip) == 0)
                    add_error(st->errors, st->file, d->line,
                              "door '%s' uses line %s:%u, already used by %s (line %u)", d->name,
                              mine[m]->chip, mine[m]->offset, owners[o], owner_lines[o]);
            lines[n_lines] = mine[m];
            owners[n_lines] = d->name;
            owner_lines[n_lines] = d->line;
            n_lines++;
        }
    }
    for (unsigned i = 0; i < c->n_meters; i++)
        if (!c->mqtt.enabled)
            add_error(st->errors, st->file, c->meters[i].line, "meter '%s' is a network "
                      "device: it needs [mqtt] enabled = true", c->meters[i].name);
    for (unsigned i = 0; i < c->n_machines; i++) {
        struct machine_config *m = &c->machines[i];
        fill_chip(&m->relay, m->relay_active_low, c->hardware.chip);
        fill_chip(&m->running, m->running_active_low, c->hardware.chip);
        fill_chip(&m->warn, m->warn_active_low, c->hardware.chip);
        unsigned at = m->reader_line ? m->reader_line : m->line;
        if (m->reader[0] && !config_find_reader(c, m->reader))
            add_error(st->errors, st->file, at,
                      "machine '%s' uses reader '%s', which has no [reader %s] section", m->name,
                      m->reader, m->reader);
        for (unsigned j = 0; j < c->n_doors; j++)
            if (strcmp(c->doors[j].reader, m->reader) == 0)
                add_error(st->errors, st->file, at, "reader '%s' already opens door '%s'",
                          m->reader, c->doors[j].name);
        for (unsigned j = 0; j < i; j++)
            if (strcmp(c->machines[j].reader, m->reader) == 0)
                add_error(st->errors, st->file, at, "reader '%s' already serves machine '%s'",
                          m->reader, c->machines[j].name);
        if (m->relay.set == (m->power.kind != DEVICE_NONE))
            add_error(st->errors, st->file, m->line, "machine '%s' needs either relay (a GPIO "
                      "line) or power (a network relay), not %s", m->name,
                      m->relay.set ? "both" : "neither");
        if (m->meter[0] && !config_find_meter(c, m->meter))
            add_error(st->errors, st->file, m->line,
                      "machine '%s' uses meter '%s', which has no [meter %s] section", m->name,
                      m->meter, m->meter);
        if ((m->power.kind != DEVICE_NONE || m->meter[0]) && !c->mqtt.enabled)
            add_error(st->errors, st->file, m->line, "machine '%s' uses a network %s: it needs "
                      "[mqtt] enabled = true (the device is reached through the broker)",
                      m->name, m->power.kind != DEVICE_NONE ? "relay" : "meter");
        if (m->running_power_w > 0 && m->running.set)
            add_error(st->errors, st->file, m->line, "machine '%s': running (a line) and "
                      "running_power_w (from power readings) exclude each other", m->name);
        if (m->running_power_w > 0 && !config_machine_meter_device(c, m))
            add_error(st->errors, st->file, m->line, "machine '%s': running_power_w needs power "
                      "readings: a network power device or a meter", m->name);
        for (unsigned j = 0; j < i; j++)
            if (m->power.kind != DEVICE_NONE && device_spec_equal(&c->machines[j].power, &m->power))
                add_error(st->errors, st->file, m->line, "machine '%s' uses the power device of "
                          "machine '%s'", m->name, c->machines[j].name);
        const struct line_spec *mine[3] = { &m->relay, &m->running, &m->warn };
        for (unsigned k = 0; k < 3; k++) {
            if (!mine[k]->set)
                continue;
            for (size_t o = 0; o < n_lines; o++)
                if (lines[o]->offset == mine[k]->offset && strcmp(lines[o]->chip, mine[k]->chip) == 0)
                    add_error(st->errors, st->file, m->line,
                              "machine '%s' uses line %s:%u, already used by %s (line %u)",
                              m->name, mine[k]->chip, mine[k]->offset, owners[o], owner_lines[o]);
            lines[n_lines] = mine[k];
            owners[n_lines] = m->name;
            owner_lines[n_lines] = m->line;
            n_lines++;
        }
    }
}

/* A URL with one of the schemes and a host: "SCHEME://HOST[:PORT][/PATH]", no spaces or
 * control characters. */
static bool url_valid(const char *url, const char *const *schemes)
{
    const char *rest = NULL;

    for (unsigned i = 0; schemes[i] && !rest; i++)
        if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
            rest = url + strlen(schemes[i]);
    if (!rest || !*rest || *rest == '/' || *rest == ':')
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* The next word of an `events` list (separated by commas and spaces) at *p: its length, 0
 * at the end; *word is where it starts, and *p moves past it. */
static size_t events_word(const char **p, const char **word)
{
    size_t n;

    *p += strspn(*p, " ,");
    n = strcspn(*p, " ,");
    *word = *p;
    *p += n;
    return n;
}

static bool events_valid(const char *events)
{
    const char *p = events, *w;
    size_t n, words = 0;

    while ((n = events_word(&p, &w)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (!(isalnum((unsigned char)w[i]) || strchr("_.-*?", w[i])))
                return false;
        words++;
    }
    return words > 0;
}

/* [mail] and [webhook NAME]: what needs the whole section, and the web page's address. */
static void check_delivery(struct config *cfg, const char *name, struct config_errors *errors)
{
    static const char *const smtp_schemes[] = { "smtp://", "smtps://", NULL };
    static const char *const http_schemes[] = { "https://", "http://", NULL };
    const struct mail_config *m = &cfg->mail;

    if (m->enabled) {
        if (!url_valid(m->smtp_url, smtp_schemes))
            add_error(errors, name, 0, "[mail] smtp_url must be smtp://HOST[:PORT] or "
                                       "smtps://HOST[:PORT]");
        if (!mime_addr_valid(m->from))
            add_error(errors, name, 0, "[mail] from must be an e-mail address such as "
                                       "portier@example.org");
        if (m->reply_to[0] && !mime_addr_valid(m->reply_to))
            add_error(errors, name, 0, "[mail] reply_to must be an e-mail address");
        if (m->password_file[0] && !m->username[0])
            add_error(errors, name, 0, "[mail] password_file is set but username is empty");
        if (cfg->http.listen[0] && !cfg->http.base_url[0])
            add_error(errors, name, 0, "[mail] puts links to the web page in e-mails: set "
                                       "[http] base_url (e.g. https://portier.example.org)");
    }
    for (unsigned i = 0; i < cfg->n_webhooks; i++) {
        const struct webhook_config *w = &cfg->webhooks[i];
        if (!url_valid(w->url, http_schemes))
            add_error(errors, name, w->line, "webhook '%s': url must be https://HOST[:PORT]/PATH",
                      w->name);
        if (!events_valid(w->events))
            add_error(errors, name, w->line, "webhook '%s': events must be event kinds "
                      "separated by commas (letters, digits, _ . - and the wildcards * ?)",
                      w->name);
        if (!w->secret[0] == !w->secret_file[0])
            add_error(errors, name, w->line, "webhook '%s': set exactly one of secret and "
                      "secret_file (receivers check the signature with it)", w->name);
        else if (w->secret[0] && strlen(w->secret) < 16)
            add_error(errors, name, w->line, "webhook '%s': the secret must have at least 16 "
                      "characters", w->name);
    }
}

int config_load_stream(FILE *f, const char *name, struct config **ret,
                       struct config_errors *errors)
{
    struct parse_state st = { .f = f, .file = name, .errors = errors, .kind = -1 };
    struct config *cfg;
    int r;

    errors->count = 0;
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return -ENOMEM;
    strlcpy_checked(cfg->path, name, sizeof(cfg->path));
    st.cfg = cfg;
    apply_defaults(SEC_SITE, &cfg->site);
    apply_defaults(SEC_DAEMON, &cfg->daemon);
    apply_defaults(SEC_HARDWARE, &cfg->hardware);
    apply_defaults(SEC_METERING, &cfg->metering);
    apply_defaults(SEC_MQTT, &cfg->mqtt);
    apply_defaults(SEC_HTTP, &cfg->http);
    apply_defaults(SEC_WEB, &cfg->web);
    apply_defaults(SEC_SPACEAPI, &cfg->spaceapi);
    apply_defaults(SEC_CONSORTIUM, &cfg->consortium);
    apply_defaults(SEC_PRIVACY, &cfg->privacy);
    apply_defaults(SEC_MAIL, &cfg->mail);

    r = ini_parse_stream(reader_fgets, &st, handler, &st);
    section_end(&st);
    if (r > 0 && errors->count == 0)
        add_error(errors, name, (unsigned)r, "syntax error (expected [section] or key = value)");
    else if (r < 0)
        add_error(errors, name, 0, "cannot parse (out of memory)");
    if (errors->count == 0)
        check_whole(&st);
    if (errors->count == 0 && cfg->mqtt.password_file[0] && !cfg->mqtt.username[0])
        add_error(errors, name, 0, "[mqtt] password_file is set but username is empty");
    if (errors->count == 0 && !cfg->http.tls_cert[0] != !cfg->http.tls_key[0])
        add_error(errors, name, 0, "[http] tls_cert and tls_key go together: set both or neither");
    if (errors->count == 0 && cfg->http.listen[0])
        (void)listen_parse(cfg->http.listen, cfg->http.host, sizeof(cfg->http.host), &cfg->http.port);
    if (errors->count == 0 && !cfg->spaceapi.lat[0] != !cfg->spaceapi.lon[0])
        add_error(errors, name, 0, "[spaceapi] lat and lon go together: set both or neither");
    if (errors->count == 0 && cfg->consortium.enabled && !cfg->mqtt.enabled)
        add_error(errors, name, 0, "[consortium] enabled needs [mqtt] enabled: the ledger "
                                   "travels over MQTT");
    if (errors->count == 0)
        check_delivery(cfg, name, errors);
    if (errors->count > 0) {
        free(cfg);
        return -EINVAL;
    }
    *ret = cfg;
    return 0;
}

int config_load(const char *path, struct config **ret, struct config_errors *errors)
{
    FILE *f = fopen(path, "re");
    int r;

    if (!f) {
        r = -errno;
        errors->count = 0;
        add_error(errors, path, 0, "cannot open: %s", strerror(errno));
        return r;
    }
    r = config_load_stream(f, path, ret, errors);
    fclose(f);
    return r;
}

struct config *config_free(struct config *c)
{
    free(c);
    return NULL;
}

const struct door_config *config_find_door(const struct config *c, const char *name)
{
    return named_find(c, SEC_DOOR, name);
}

const struct machine_config *config_find_machine(const struct config *c, const char *name)
{
    return named_find(c, SEC_MACHINE, name);
}

const struct webhook_config *config_find_webhook(const struct config *c, const char *name)
{
    return named_find(c, SEC_WEBHOOK, name);
}

bool config_events_match(const char *events, const char *kind)
{
    const char *p = events, *w;
    char pattern[64];
    size_t n;

    while ((n = events_word(&p, &w)) > 0) {
        if (n >= sizeof(pattern))
            continue;
        memcpy(pattern, w, n);
        pattern[n] = '\0';
        if (fnmatch(pattern, kind, 0) == 0)
            return true;
    }
    return false;
}

const struct meter_config *config_find_meter(const struct config *c, const char *name)
{
    return named_find(c, SEC_METER, name);
}

const struct device_spec *config_machine_meter_device(const struct config *c,
                                                      const struct machine_config *m)
{
    const struct meter_config *mt = m->meter[0] ? config_find_meter(c, m->meter) : NULL;

    if (mt)
        return &mt->device;
    return m->power.kind != DEVICE_NONE ? &m->power : NULL;
}

const char *device_kind_to_string(int kind)
{
    switch (kind) {
    case DEVICE_SHELLY:  return "shelly";
    case DEVICE_TASMOTA: return "tasmota";
    }
    return "none";
}

static bool topic_char_ok(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '_' || ch == '.' || ch == '/';
}

int device_spec_parse(const char *text, struct device_spec *ret)
{
    struct device_spec d = { 0 };
    const char *id, *colon;
    size_t n;
    int64_t ch = -1;

    if (strncmp(text, "shelly:", 7) == 0) {
        d.kind = DEVICE_SHELLY;
        id = text + 7;
    } else if (strncmp(text, "tasmota:", 8) == 0) {
        d.kind = DEVICE_TASMOTA;
        id = text + 8;
    } else {
        return -EINVAL;
    }
    colon = strchr(id, ':');
    n = colon ? (size_t)(colon - id) : strlen(id);
    if (colon && parse_int64(colon + 1, 0, 31, &ch) < 0)
        return -EINVAL;
    if (n == 0 || n >= sizeof(d.id) || id[0] == '/' || id[n - 1] == '/')
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!topic_char_ok(id[i]) || (id[i] == '/' && id[i + 1] == '/'))
            return -EINVAL;
    memcpy(d.id, id, n);
    d.id[n] = '\0';
    if (d.kind == DEVICE_SHELLY)
        d.channel = ch < 0 ? 0 : (unsigned)ch;
    else if (ch == 0)
        return -EINVAL;     /* Tasmota counts relays from 1 */
    else
        d.channel = ch < 0 ? 1 : (unsigned)ch;
    *ret = d;
    return 0;
}

void device_spec_format(const struct device_spec *d, char *buf, size_t n)
{
    snprintf(buf, n, "%s:%s:%u", device_kind_to_string(d->kind), d->id, d->channel);
}

bool device_spec_equal(const struct device_spec *a, const struct device_spec *b)
{
    return a->kind == b->kind && a->channel == b->channel && strcmp(a->id, b->id) == 0;
}

const struct reader_config *config_find_reader(const struct config *c, const char *name)
{
    return named_find(c, SEC_READER, name);
}

void config_database_path(const struct config *c, char *buf, size_t n)
{
    if (c->daemon.database[0])
        snprintf(buf, n, "%s", c->daemon.database);
    else
        snprintf(buf, n, "%s/portier.db", c->daemon.state_dir);
}

void config_desfire_key_path(const struct config *c, char *buf, size_t n)
{
    if (c->daemon.desfire_key_file[0])
        snprintf(buf, n, "%s", c->daemon.desfire_key_file);
    else
        snprintf(buf, n, "%s/desfire-master.key", c->daemon.state_dir);
}

bool config_same_hardware(const struct config *a, const struct config *b, const char **ret_why)
{
    const char *why = NULL;

    if (strcmp(a->site.id, b->site.id) != 0)
        why = "the site id changed (the database and its ledger belong to one site id)";
    else if (a->hardware.backend != b->hardware.backend)
        why = "the hardware back-end changed";
    else if (a->hardware.input_bias != b->hardware.input_bias ||
             a->hardware.debounce_ms != b->hardware.debounce_ms ||
             strcmp(a->hardware.sim_state_dir, b->hardware.sim_state_dir) != 0)
        why = "[hardware] input_bias, debounce_ms or sim_state_dir changed";
    else if (a->n_doors != b->n_doors)
        why = "doors were added or removed";
    else if (a->n_readers != b->n_readers)
        why = "readers were added or removed";
    else if (a->n_machines != b->n_machines)
        why = "machines were added or removed";
    else if (a->n_meters != b->n_meters)
        why = "meters were added or removed";
    else if (strcmp(a->daemon.control_socket, b->daemon.control_socket) != 0)
        why = "the control socket path changed";
    else if (strcmp(a->daemon.reader_worker, b->daemon.reader_worker) != 0)
        why = "the reader worker program changed";
    else if (strcmp(a->daemon.desfire_key_file, b->daemon.desfire_key_file) != 0)
        why = "the DESFire key file changed (reader workers get their keys when they start)";
    else if (memcmp(&a->mqtt, &b->mqtt, sizeof(a->mqtt)) != 0)
        why = "the [mqtt] settings changed";
    else if (memcmp(&a->http, &b->http, sizeof(a->http)) != 0)
        why = "the [http] settings changed";
    else if (memcmp(&a->consortium, &b->consortium, sizeof(a->consortium)) != 0)
        why = "the [consortium] settings changed";
    else if (memcmp(&a->mail, &b->mail, sizeof(a->mail)) != 0)
        why = "the [mail] settings changed";
    else if (a->n_webhooks != b->n_webhooks ||
             memcmp(a->webhooks, b->webhooks, a->n_webhooks * sizeof(a->webhooks[0])) != 0)
        why = "the [webhook] sections changed";
    else if (strcmp(a->daemon.state_dir, b->daemon.state_dir) != 0 ||
             strcmp(a->daemon.database, b->daemon.database) != 0)
        why = "the database location changed";
    for (unsigned i = 0; !why && i < a->n_readers; i++)
        if (strcmp(a->readers[i].name, b->readers[i].name) != 0 ||
            a->readers[i].driver != b->readers[i].driver ||
            strcmp(a->readers[i].connstring, b->readers[i].connstring) != 0 ||
            !line_spec_equal(&a->readers[i].reset_line, &b->readers[i].reset_line) ||
            a->readers[i].poll_ms != b->readers[i].poll_ms ||
            a->readers[i].debounce_ms != b->readers[i].debounce_ms ||
            a->readers[i].heartbeat_timeout_ms != b->readers[i].heartbeat_timeout_ms ||
            a->readers[i].backoff_max_seconds != b->readers[i].backoff_max_seconds ||
            strcmp(a->readers[i].emulator, b->readers[i].emulator) != 0)
            why = "a reader's settings changed (readers are configured when they start)";
    for (unsigned i = 0; !why && i < a->n_doors; i++) {
        const struct door_config *x = &a->doors[i], *y = &b->doors[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->reader, y->reader) != 0 ||
            strcmp(x->exit_reader, y->exit_reader) != 0 ||
            !line_spec_equal(&x->relay, &y->relay) || !line_spec_equal(&x->contact, &y->contact) ||
            !line_spec_equal(&x->exit_button, &y->exit_button) || x->fail != y->fail)
            why = "a door's name, reader, lines or fail mode changed";
    }
    for (unsigned i = 0; !why && i < a->n_machines; i++) {
        const struct machine_config *x = &a->machines[i], *y = &b->machines[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->reader, y->reader) != 0 ||
            !line_spec_equal(&x->relay, &y->relay) || !line_spec_equal(&x->running, &y->running) ||
            !line_spec_equal(&x->warn, &y->warn) || !device_spec_equal(&x->power, &y->power) ||
            strcmp(x->meter, y->meter) != 0 || x->power_confirm_ms != y->power_confirm_ms ||
            (x->running_power_w > 0) != (y->running_power_w > 0))
            why = "a machine's name, reader, lines, power device or meter changed";
    }
    for (unsigned i = 0; !why && i < a->n_meters; i++)
        if (strcmp(a->meters[i].name, b->meters[i].name) != 0 ||
            !device_spec_equal(&a->meters[i].device, &b->meters[i].device))
            why = "a meter's name or device changed";
    if (why && ret_why)
        *ret_why = why;
    return why == NULL;
}

static const char *type_text(const struct config_key *k, char *buf, size_t n)
{
    switch (k->type) {
    case CT_STRING:   return "string";
    case CT_NAME:     return "name";
    case CT_PATH:     return "path";
    case CT_INT:      snprintf(buf, n, "integer %" PRId64 "–%" PRId64, k->min, k->max); return buf;
    case CT_BOOL:     return "boolean";
    case CT_ENUM:
    case CT_LOGLEVEL: {
        size_t used = 0;
        for (int i = 0; k->choices[i] && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s`%s`", i ? " \\| " : "",
                                     k->choices[i]);
        return buf;
    }
    case CT_SCHEDULE: return "schedule";
    case CT_LINE:     return "GPIO line";
    case CT_MODE:     return "octal mode";
    case CT_TIMEZONE: return "time zone";
    case CT_LISTEN:   return "HOST:PORT";
    case CT_DEGREES:  snprintf(buf, n, "degrees %" PRId64 "–%" PRId64, k->min, k->max); return buf;
    case CT_HHMM:     return "HH:MM";
    case CT_DEVICE:   return "network device";
    }
    return "?";
}

void config_print_reference(FILE *out)
{
    char buf[128];
    for (int s = 0; s < SEC__MAX; s++) {
        const struct section_kind *sk = &sections[s];
        fprintf(out, "### `[%s%s]`\n\n%s\n\n", sk->name, sk->named ? " NAME" : "", sk->help);
        fprintf(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
        for (size_t i = 0; i < sk->n_keys; i++) {
            const struct config_key *k = &sk->keys[i];
            fprintf(out, "| `%s` | %s | %s%s%s | %s |\n", k->name, type_text(k, buf, sizeof(buf)),
                    k->def ? "`" : "", k->def ? (*k->def ? k->def : "(empty)") : "required",
                    k->def ? "`" : "", k->help);
        }
        fputc('\n', out);
    }
}

/* Text for scdoc(5): `code` becomes *bold*; scdoc's own markup characters are escaped. */
static void scdoc_text(FILE *out, const char *text)
{
    bool code = false;

    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '`':
            fputc('*', out);
            code = !code;
            break;
        case '*': case '_': case '\\':
            fputc('\\', out);
            fputc(*p, out);
            break;
        default:
            fputc(*p, out);
        }
    }
    if (code)
        fputc('*', out);
}

void config_print_reference_scdoc(FILE *out)
{
    char buf[256];

    for (int s = 0; s < SEC__MAX; s++) {
        const struct section_kind *sk = &sections[s];
        fprintf(out, "## [%s%s]\n\n", sk->name, sk->named ? " NAME" : "");
        scdoc_text(out, sk->help);
        fputs("\n\n", out);
        for (size_t i = 0; i < sk->n_keys; i++) {
            const struct config_key *k = &sk->keys[i];
            const char *type = type_text(k, buf, sizeof(buf));

            fprintf(out, "*");
            scdoc_text(out, k->name);
            fprintf(out, "* (");
            /* type_text() writes choices as Markdown: `a` \\| `b`. */
            for (const char *p = type; *p; p++) {
                if (strncmp(p, " \\| ", 4) == 0) {
                    fputs(", ", out);
                    p += 3;
                } else if (*p == '`') {
                    fputc('*', out);
                } else if (*p == '_' || *p == '*' || *p == '\\') {
                    fputc('\\', out);
                    fputc(*p, out);
                } else {
                    fputc(*p, out);
                }
            }
            if (!k->def)
                fputs("; required)\n\t", out);
            else if (!*k->def)
                fputs("; default: empty)\n\t", out);
            else {
                fputs("; default: *", out);
                scdoc_text(out, k->def);
                fputs("*)\n\t", out);
            }
            scdoc_text(out, k->help);
            fputs("\n\n", out);
        }
    }
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portierctl: administer a running portierd over its control socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sodium.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "csv.h"
#include "jfield.h"
#include "password.h"
#include "util.h"

#define DEFAULT_CONFIG "/etc/portier/portier.conf"
#define DEFAULT_SOCKET "/run/portier/portierd.sock"
#define REPLY_MAX (256u << 20)

static bool opt_json;

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: portierctl [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Administer a running portierd.\n"
        "\n"
        "Options:\n"
        "  -s, --socket PATH    control socket (default: from the config, else " DEFAULT_SOCKET ")\n"
        "  -c, --config FILE    read control_socket from FILE (default " DEFAULT_CONFIG ")\n"
        "      --json           print replies as JSON\n"
        "  -h, --help           show this help\n"
        "      --version        show the version\n"
        "\n"
        "Commands:\n"
        "  status                                   doors, machines, readers, inputs, MQTT, last taps\n"
        "  member add NAME [--plan P] [--email E] [--from DATE] [--until DATE] [--note TEXT]\n"
        "  member list [--search TEXT] [--filter active|suspended|expired|expiring|removed|\n"
        "              erased|all] [--offset N] [--limit N]\n"
        "  member show MEMBER | suspend MEMBER | resume MEMBER\n"
        "  member set MEMBER [--name N] [--email E] [--plan P|none [--plan-from DATE]]\n"
        "                  [--from DATE|none] [--until DATE|none] [--note TEXT]\n"
        "  member renew MEMBER --until DATE | --for 1y|6m|2w|30d\n"
        "  member remove MEMBER                     cards disabled, access ends, history kept\n"
        "  member erase MEMBER [--force]            erase personal data (GDPR); billing keeps a\n"
        "                                           pseudonym\n"
        "  member export MEMBER [--out FILE.json]   everything held about the member (JSON)\n"
        "  card add MEMBER UID [--label L]          enrol a card by its UID (hex)\n"
        "  card enroll MEMBER --reader R [--label L] [--timeout S]\n"
        "                                           bind the next card tapped at reader R\n"
        "  card remove CARD_ID | card remove --uid UID\n"
        "  card list [MEMBER] | card enable CARD_ID | card disable CARD_ID\n"
        "  card provision MEMBER --reader R [--label L] [--timeout S] [--picc-key-file F]\n"
        "                                           make the next card at R a DESFire card\n"
        "                                           (keys diversified per card) and enrol it;\n"
        "                                           run it again if the card was taken away\n"
        "  card deprovision --reader R [--timeout S] [--picc-key-file F]\n"
        "                                           remove the Portier applications and the card\n"
        "      F: the card's PICC master key if not the factory default: default, des:HEX16,\n"
        "         2k3des:HEX32 or aes:HEX32 (--picc-key KEY also works, but shows in ps)\n"
        "  card report                              members whose cards still open by UID alone\n"
        "  plan add NAME [--zones Z1,Z2|*] [--hours SCHEDULE]\n"
        "  plan list | plan show NAME               zones, hours, billing settings and rates\n"
        "  door unlock DOOR [--for SECONDS]         manager unlock (default: unlock_seconds)\n"
        "  door lock DOOR                           end a manual or timed unlock\n"
        "  reader restart READER                    restart a libnfc reader's worker now\n"
        "  machine add NAME [RULES] | machine set NAME [RULES]\n"
        "  machine list | show NAME | sessions [--since DATE]\n"
        "  machine out-of-order NAME on|off [--reason TEXT] [--after-session]\n"
        "                                           on: power off now, or let the session under\n"
        "                                           way finish (--after-session)\n"
        "      RULES: --training T|none --zone Z --slot MIN --min MIN --max MIN --window-days N\n"
        "             --quota-day MIN --quota-week MIN --cancel-deadline MIN --hours SCHEDULE\n"
        "             --walk-up MIN (walk-up allowed when no booking starts within MIN)\n"
        "             --booking-required --category NAME (for rates and passes on category:NAME)\n"
        "  training add NAME [--description D] | training list | training show MEMBER\n"
        "  training grant MEMBER TRAINING [--expires DATE] | training revoke MEMBER TRAINING\n"
        "  training appoint MEMBER TRAINING | training dismiss MEMBER TRAINING (trainers)\n"
        "  booking add MACHINE START END --for MEMBER [--as-member]\n"
        "  booking list [--machine M] [--for MEMBER] [--from DATE] [--to DATE] [--all]\n"
        "  booking cancel ID [--override] [--as-member]\n"
        "  booking move ID START END [--override] [--as-member]\n"
        "  presence list | presence checkout MEMBER\n"
        "  pass add MEMBER (--days N | --minutes N) [--target MACHINE|*] [--from D] [--until D]\n"
        "                  [--price CENTS]\n"
        "  pass list MEMBER\n"
        "  plan billing PLAN [--monthly-days N] [--day-rate CENTS] [--order pass,plan,rate]\n"
        "                  [--visit-days N]      without options: the current settings\n"
        "  rate set PLAN MACHINE|* [--per-hour CENTS] [--block MIN] [--min-charge CENTS]\n"
        "                  [--free MIN] [--monthly-minutes MIN] [--per-kwh CENTS] [--monthly-wh WH]\n"
        "  rate list\n"
        "  statement --period YYYY-MM [--member M] [--format text|csv|csv-fr|json] [--summary]\n"
        "  usage correct SEQ --amount CENTS --note TEXT | usage add MEMBER --at DATE\n"
        "  period close YYYY-MM | period list\n"
        "  site key | ledger verify\n"
        "  account add NAME --role member|manager|custodian [--member MEMBER]\n"
        "  account list | show NAME | disable NAME | enable NAME\n"
        "  account passwd NAME [--password-stdin]  set a web password (hashed here, argon2id)\n"
        "  account invite NAME [--hours N]          one-time link to set the password (default 72 h)\n"
        "  account token NAME [--label L] [--days N]  API token for scripts (shown once)\n"
        "  account language NAME en|fr|auto         language of the account's pages\n"
        "  kiosk add LABEL | kiosk list | kiosk remove ID\n"
        "                                           entrance screens: a secret address each\n"
        "  events [--since DATE] [--limit N]        the access log, oldest first (default last 50)\n"
        "  mail list [--state queued|sent|failed] [--member M] [--limit N]\n"
        "                                           e-mails and their delivery state\n"
        "  mail retry ID | mail test ADDRESS        send again now | send a test and wait\n"
        "  webhook list | webhook test NAME         webhooks' state | POST a signed test event\n"
        "  privacy prune                            delete now what is past its retention\n"
        "  sim tap --reader R UID [--hold] [--desfire]  simulated or emulated reader: present a\n"
        "                                           card (--desfire: the emulator's DESFire card\n"
        "                                           of that 7-byte UID, as provisioned)\n"
        "  sim remove --reader R                    simulated reader: take a held card away\n"
        "  sim press INPUT | sim release INPUT      simulated input (DOOR.contact, DOOR.exit,\n"
        "                                           MACHINE.running)\n"
        "  sim open DOOR | sim close DOOR           simulated door contact\n"
        "  sim advance SECONDS                      simulated hardware: move the clock forward\n"
        "\n"
        "MEMBER is an id or an exact name. DATE, START and END are YYYY-MM-DD[THH:MM] on the\n"
        "site's clock ([site] timezone); a date alone as --until means the end of that day.\n"
        "Times are printed on the site's clock with its zone; --json gives epoch seconds and\n"
        "UTC (ISO 8601, Z). Managers assign with --for; --as-member applies a member's limits.\n"
        "SCHEDULE is like \"Mon-Fri 08:00-20:00, Sat 10:00-13:00\", \"always\" or \"never\".\n"
        "Exit status: 0 success, 1 error reported by the daemon or connection failure, 2 usage.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("portierctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'portierctl --help'.\n", stderr);
    return 2;
}

/* Where is the daemon? -s, $PORTIER_SOCKET, the config's control_socket, the default,
 * and finally the demo's socket (tools/demo) so the README's commands work as typed. */
static void find_socket(const char *opt_socket, const char *opt_config, char *buf, size_t n)
{
    const char *env = getenv("PORTIER_SOCKET");
    const char *cfg_path = opt_config ? opt_config : getenv("PORTIER_CONFIG");
    struct config_errors errors;
    struct config *cfg;
    struct stat st;

    if (opt_socket) {
        snprintf(buf, n, "%s", opt_socket);
        return;
    }
    if (env && *env) {
        snprintf(buf, n, "%s", env);
        return;
    }
    if (!cfg_path && access(DEFAULT_CONFIG, R_OK) == 0)
        cfg_path = DEFAULT_CONFIG;
    if (cfg_path && config_load(cfg_path, &cfg, &errors) == 0) {
        snprintf(buf, n, "%s", cfg->daemon.control_socket);
        config_free(cfg);
        return;
    }
    snprintf(buf, n, "%s", DEFAULT_SOCKET);
    if (stat(buf, &st) < 0) {
        char demo[108];
        snprintf(demo, sizeof(demo), "/tmp/portier-demo-%u/portierd.sock", (unsigned)getuid());
        if (stat(demo, &st) == 0)
            snprintf(buf, n, "%s", demo);
    }
}

/* Send one request, return the parsed reply (NULL after printing why). */
static json_t *call(const char *sock_path, json_t *req)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *text = json_dumps(req, JSON_COMPACT), *buf = NULL;
    size_t len = 0, cap = 0;
    json_error_t err;
    json_t *reply = NULL;
    int fd = -1;

    json_decref(req);
    if (!text)
        return NULL;
    if (strlcpy_checked(sa.sun_path, sock_path, sizeof(sa.sun_path)) < 0) {
        fprintf(stderr, "portierctl: socket path too long: %s\n", sock_path);
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "portierctl: cannot connect to %s: %s (is portierd running? see -s)\n",
                sock_path, strerror(errno));
        goto out;
    }
    size_t tlen = strlen(text);
    text[tlen] = '\n';      /* json_dumps leaves room: replace the terminator */
    if (send(fd, text, tlen + 1, MSG_NOSIGNAL) != (ssize_t)(tlen + 1)) {
        fprintf(stderr, "portierctl: cannot send request: %s\n", strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n;
        if (len == cap) {
            char *nb;
            cap = cap ? cap * 2 : 65536;
            if (cap > REPLY_MAX || !(nb = realloc(buf, cap))) {
                fprintf(stderr, "portierctl: reply too large\n");
                goto out;
            }
            buf = nb;
        }
        n = recv(fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "portierctl: cannot read reply: %s\n", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    reply = json_loadb(buf, len, 0, &err);
    if (!reply || !json_is_object(reply)) {
        fprintf(stderr, "portierctl: malformed reply from daemon%s%s\n", reply ? "" : ": ",
                reply ? "" : err.text);
        json_decref(reply);
        reply = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    free(text);
    free(buf);
    return reply;
}

/* Times are printed on the site's clock, labelled with its zone ("2026-12-09 14:00 CET"),
 * wherever portierctl runs: the zone comes from the daemon (site_zone()). --json keeps
 * the daemon's epoch seconds and UTC text. */
#define TIME_MINUTE "%Y-%m-%d %H:%M %Z"
#define TIME_SECOND "%Y-%m-%d %H:%M:%S %Z"      /* the access log */

/* t on the site's clock as strftime's fmt says, into buf; none instead if t is 0 (the
 * daemon's "no time"), unless none is NULL. Returns buf. */
__attribute__((format(strftime, 2, 0)))
static const char *fmt_local(json_int_t t, const char *fmt, const char *none, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t == 0 && none) {
        snprintf(buf, n, "%s", none);
        return buf;
    }
    localtime_r(&tt, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    strftime(buf, n, fmt, &tm);         /* fmt is checked where it is written (format attribute) */
#pragma GCC diagnostic pop
    return buf;
}

/* The end of a validity (exclusive): a local midnight is the end of the day before, as a
 * date given alone means ("2026-01-01 24:00 CET"). */
static const char *fmt_until(json_int_t t, const char *none, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;

    localtime_r(&tt, &tm);
    if (t == 0 || tm.tm_hour || tm.tm_min || tm.tm_sec)
        return fmt_local(t, TIME_MINUTE, none, buf, n);
    return fmt_local(t - 1, "%Y-%m-%d 24:00 %Z", NULL, buf, n);
}

/* A UTC text from the daemon ("2026-12-09T13:00:00Z") as epoch seconds; -EINVAL if it is
 * none. */
static int utc_text_parse(const char *utc, json_int_t *t)
{
    struct tm tm = { 0 };
    char z = 0;

    if (!utc || sscanf(utc, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 || z != 'Z')
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *t = (json_int_t)timegm(&tm);
    return 0;
}

/* A UTC text from the daemon on the site's clock; "-" if none. */
static const char *utc_text_local(const char *utc, char *buf, size_t n)
{
    json_int_t t;

    if (utc_text_parse(utc, &t) < 0)
        return "-";
    return fmt_local(t, TIME_MINUTE, "-", buf, n);
}

/* The process on the site's clock: TZ becomes the site's zone (as the daemon says it),
 * so that every time printed is the site's, wherever portierctl runs. */
static void site_zone(const char *tz)
{
    if (tz && *tz) {
        setenv("TZ", tz, 1);
        tzset();
    }
}

/* The same, for replies that do not carry the zone: asked of the daemon once. */
static json_t *call(const char *sock_path, json_t *req);
static void site_clock(const char *sock_path)
{
    json_t *st = call(sock_path, json_pack("{s:s}", "cmd", "status"));

    site_zone(json_string_value(json_object_get(json_object_get(st, "site"), "timezone")));
    json_decref(st);
}

/* The list commands' tables: a title row, then a row per element of the list, each column
 * one field of the element, shown as its kind says. */
enum column_kind {
    COL_TEXT,
    COL_INT,
    COL_BOOL,               /* text[1] if true, else text[0] */
    COL_TIME,               /* on the site's clock, to the minute */
    COL_UNTIL,              /* the end of a validity (fmt_until()) */
    COL_HASH,               /* its first 16 hex digits: enough to tell cards apart */
};

struct column {
    const char *title;
    int width;              /* the column's, padded with spaces; the last column pads its title only */
    const char *key;
    enum column_kind kind;
    const char *text[2];    /* text[0] stands for an empty text, a 0 or no time (NULL: the
                             * value as it is); COL_BOOL: the texts for false and true */
};

static const char *column_cell(json_t *row, const struct column *c, char *buf, size_t n)
{
    json_int_t v = jint(row, c->key);

    switch (c->kind) {
    case COL_INT:
        if (v == 0 && c->text[0])
            return c->text[0];
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, v);
        return buf;
    case COL_BOOL:
        return c->text[json_is_true(json_object_get(row, c->key))];
    case COL_TIME:
        return fmt_local(v, TIME_MINUTE, c->text[0], buf, n);
    case COL_UNTIL:
        return fmt_until(v, c->text[0], buf, n);
    case COL_HASH:
        snprintf(buf, n, "%.16s", jstr(row, c->key));
        return buf;
    case COL_TEXT:
        break;
    }
    return !*jstr(row, c->key) && c->text[0] ? c->text[0] : jstr(row, c->key);
}

static void print_table(json_t *list, const struct column *cols, size_t ncols)
{
    json_t *row;
    size_t i;

    for (size_t c = 0; c < ncols; c++)
        printf("%-*s%s", cols[c].width, cols[c].title, c + 1 < ncols ? " " : "\n");
    json_array_foreach(list, i, row) {
        for (size_t c = 0; c < ncols; c++) {
            char buf[64];
            printf("%-*s%s", c + 1 < ncols ? cols[c].width : 0,
                   column_cell(row, &cols[c], buf, sizeof(buf)), c + 1 < ncols ? " " : "\n");
        }
    }
}

static void print_status(json_t *r)
{
    json_t *site = json_object_get(r, "site"), *stats = json_object_get(r, "stats"), *v;
    size_t i;

    site_zone(jstr(site, "timezone"));
    printf("Site %s (%s), %s; portierd %s, up %" JSON_INTEGER_FORMAT " s, %s hardware\n",
           jstr(site, "id"), jstr(site, "name"), jstr(site, "timezone"), jstr(r, "version"),
           jint(r, "uptime"), jstr(r, "backend"));
    printf("%" JSON_INTEGER_FORMAT " members, %" JSON_INTEGER_FORMAT " cards; taps since start: %"
           JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " granted, %" JSON_INTEGER_FORMAT " denied)\n\n",
           jint(r, "members"), jint(r, "cards"), jint(stats, "taps"), jint(stats, "granted"),
           jint(stats, "denied"));
    if (json_is_object(json_object_get(r, "mqtt"))) {
        json_t *mq = json_object_get(r, "mqtt");
        printf("MQTT: %s; %" JSON_INTEGER_FORMAT " events waiting, %" JSON_INTEGER_FORMAT
               " dropped; last delivered event %" JSON_INTEGER_FORMAT "\n\n",
               json_is_true(json_object_get(mq, "connected")) ? "connected" : "NOT CONNECTED",
               jint(mq, "outbox"), jint(mq, "dropped"), jint(mq, "last_seq"));
        if (json_is_object(json_object_get(mq, "ledger"))) {
            json_t *lg = json_object_get(mq, "ledger");
            printf("Consortium: custodian has ledger entries up to %" JSON_INTEGER_FORMAT " of %"
                   JSON_INTEGER_FORMAT "\n\n", jint(lg, "acked_seq"), jint(lg, "head_seq"));
        }
    }
    if (json_is_object(json_object_get(r, "privacy"))) {
        json_t *pv = json_object_get(r, "privacy"), *last = json_object_get(pv, "last_pass");
        char when[40] = "none since start", next[40];
        if (json_is_object(last))
            fmt_local(jint(last, "at"), TIME_MINUTE, "-", when, sizeof(when));
        fmt_local(jint(pv, "next_pass_at"), TIME_MINUTE, "-", next, sizeof(next));
        printf("Privacy: access log %" JSON_INTEGER_FORMAT " days, presence %" JSON_INTEGER_FORMAT
               " days, idle accounts %" JSON_INTEGER_FORMAT " days (0: kept); last pass %s, next "
               "%s%s\n\n", jint(pv, "access_log_days"), jint(pv, "presence_days"),
               jint(pv, "account_inactive_days"), when, next,
               strcmp(jstr(pv, "auto_vacuum"), "incremental") == 0 ? ""
               : "; freed space is reused, not given back (see docs/privacy.md)");
    }
    if (json_is_true(json_object_get(json_object_get(r, "mail"), "enabled"))) {
        json_t *m = json_object_get(r, "mail");
        printf("E-mail: %" JSON_INTEGER_FORMAT " waiting, %" JSON_INTEGER_FORMAT " sent in the "
               "last hour (at most %" JSON_INTEGER_FORMAT "), %" JSON_INTEGER_FORMAT " not queued "
               "(queue full)\n\n", jint(m, "queued"), jint(m, "sent_last_hour"),
               jint(m, "per_hour"), jint(m, "dropped"));
    }
    json_array_foreach(json_object_get(r, "webhooks"), i, v)
        printf("Webhook %s: %" JSON_INTEGER_FORMAT " events behind%s%s\n%s", jstr(v, "name"),
               jint(v, "behind"), *jstr(v, "last_error") ? "; last error: " : "",
               jstr(v, "last_error"),
               i + 1 == json_array_size(json_object_get(r, "webhooks")) ? "\n" : "");
    printf("%-12s %-9s %-22s %-11s %-8s %-10s %s\n", "DOOR", "STATE", "RELAY", "ENERGISED",
           "CONTACT", "ALARM", "NOTE");
    json_array_foreach(json_object_get(r, "doors"), i, v) {
        json_t *relay = json_object_get(v, "relay");
        char note[96] = "";
        if (json_is_true(json_object_get(v, "free_entry")))
            snprintf(note, sizeof(note), "free-entry window");
        else if (strcmp(jstr(v, "state"), "unlocked") == 0)
            snprintf(note, sizeof(note), "%s, %" JSON_INTEGER_FORMAT " s left", jstr(v, "cause"),
                     jint(v, "unlock_remaining"));
        if (*jstr(relay, "error"))
            snprintf(note, sizeof(note), "RELAY FAULT: %s", jstr(relay, "error"));
        printf("%-12s %-9s %-22s %-11s %-8s %-10s %s\n", jstr(v, "name"), jstr(v, "state"),
               jstr(relay, "line"), json_is_true(json_object_get(relay, "energised")) ? "yes" : "no",
               jstr(v, "contact"), jstr(v, "alarm"), note);
    }
    if (json_array_size(json_object_get(r, "machines"))) {
        printf("\n%-12s %-9s %-8s %-9s %-8s %s\n", "MACHINE", "STATE", "MEMBER", "POWER",
               "RUNNING", "UNTIL");
        json_array_foreach(json_object_get(r, "machines"), i, v) {
            json_t *pw = json_object_get(v, "power");
            char member[16] = "-", power[24], extra[160] = "", until[40];
            size_t used = 0;
            if (jint(v, "member_id"))
                snprintf(member, sizeof(member), "%" JSON_INTEGER_FORMAT, jint(v, "member_id"));
            /* A network relay: on/off as confirmed, and what it is doing if not confirmed. */
            snprintf(power, sizeof(power), "%s%s%s",
                     json_is_true(json_object_get(v, "relay_energised")) ? "on" : "off",
                     json_is_object(pw) && *jstr(pw, "relay") && strcmp(jstr(pw, "relay"), "confirmed")
                         ? "/" : "", json_is_object(pw) && strcmp(jstr(pw, "relay"), "confirmed")
                         ? jstr(pw, "relay") : "");
            if (json_is_true(json_object_get(v, "out_of_order")))
                used += (size_t)snprintf(extra + used, sizeof(extra) - used, "  OUT OF ORDER");
            if (json_is_string(json_object_get(v, "alarm")))
                used += (size_t)snprintf(extra + used, sizeof(extra) - used, "  ALARM %s",
                                         jstr(v, "alarm"));
            if (json_is_object(pw) && json_is_integer(json_object_get(pw, "power_w")))
                used += (size_t)snprintf(extra + used, sizeof(extra) - used,
                                         "  %" JSON_INTEGER_FORMAT " W", jint(pw, "power_w"));
            if (json_is_object(pw) && json_is_integer(json_object_get(pw, "session_energy_wh")))
                snprintf(extra + used, sizeof(extra) - used, ", %" JSON_INTEGER_FORMAT
                         " Wh this session", jint(pw, "session_energy_wh"));
            printf("%-12s %-9s %-8s %-9s %-8s %s%s\n", jstr(v, "name"), jstr(v, "state"), member,
                   power,
                   !json_object_get(v, "running") || json_is_null(json_object_get(v, "running"))
                       ? "-" : json_is_true(json_object_get(v, "running")) ? "yes" : "no",
                   utc_text_local(jstr(v, "until"), until, sizeof(until)), extra);
        }
    }
    printf("\n%-12s %-8s %-11s %-12s %-6s %-9s %s\n", "READER", "DRIVER", "HEALTH", "DOOR",
           "TAPS", "RESTARTS", "NOTE");
    json_array_foreach(json_object_get(r, "readers"), i, v) {
        char note[160] = "";
        if (jint(v, "failed_since")) {
            char since[40];
            fmt_local(jint(v, "failed_since"), TIME_MINUTE, "-", since, sizeof(since));
            snprintf(note, sizeof(note), "failing since %s: %s", since, jstr(v, "last_error"));
        } else if (*jstr(v, "device")) {
            snprintf(note, sizeof(note), "%s", jstr(v, "device"));
        }
        printf("%-12s %-8s %-11s %-12s %-6" JSON_INTEGER_FORMAT " %-9" JSON_INTEGER_FORMAT " %s\n",
               jstr(v, "name"), jstr(v, "driver"), jstr(v, "health"),
               *jstr(v, "door") ? jstr(v, "door") : "-", jint(v, "taps"), jint(v, "restarts"), note);
    }
    if (json_array_size(json_object_get(r, "inputs"))) {
        static const struct column cols[] = {
            { "INPUT", 20, "name", COL_TEXT, { 0 } }, { "ACTIVE", 0, "active", COL_BOOL, { "no", "yes" } },
        };
        printf("\n");
        print_table(json_object_get(r, "inputs"), cols, ARRAY_SIZE(cols));
    }
    printf("\nLast taps:\n");
    if (json_array_size(json_object_get(r, "recent_taps")) == 0)
        printf("  (none since start)\n");
    json_array_foreach(json_object_get(r, "recent_taps"), i, v) {
        char when[40], who[128];
        fmt_local(jint(v, "at"), TIME_SECOND, "-", when, sizeof(when));
        if (jint(v, "member_id"))
            snprintf(who, sizeof(who), "%s (#%" JSON_INTEGER_FORMAT ")", jstr(v, "member"),
                     jint(v, "member_id"));
        else
            snprintf(who, sizeof(who), "unknown card %.8s", jstr(v, "card"));
        printf("  %s  %-10s %-28s %s%s%s\n", when, jstr(v, "door"), who,
               json_is_true(json_object_get(v, "granted")) ? "granted" : "denied",
               json_is_true(json_object_get(v, "granted")) ? "" : ": ",
               json_is_true(json_object_get(v, "granted")) ? "" : jstr(v, "reason"));
    }
}

static void print_members(json_t *r)
{
    static const struct column cols[] = {
        { "ID", 6, "id", COL_INT, { 0 } }, { "NAME", 28, "name", COL_TEXT, { 0 } },
        { "PLAN", 12, "plan", COL_TEXT, { "-" } }, { "STATUS", 14, "status", COL_TEXT, { 0 } },
        { "CARDS", 6, "cards", COL_INT, { 0 } }, { "VALID UNTIL", 0, "valid_until", COL_UNTIL, { "-" } },
    };
    json_t *list = json_object_get(r, "members");

    print_table(list, cols, ARRAY_SIZE(cols));
    if (jint(r, "limit") && (json_int_t)json_array_size(list) < jint(r, "total"))
        printf("(%zu of %" JSON_INTEGER_FORMAT " shown, from %" JSON_INTEGER_FORMAT
               "; see --offset)\n", json_array_size(list), jint(r, "total"), jint(r, "offset"));
}

static void print_cards(json_t *list)
{
    static const struct column cols[] = {
        { "ID", 6, "id", COL_INT, { 0 } }, { "MEMBER", 28, "member", COL_TEXT, { 0 } },
        { "LABEL", 20, "label", COL_TEXT, { "-" } },
        { "ENABLED", 8, "enabled", COL_BOOL, { "no", "yes" } },
        { "KIND", 8, "desfire", COL_BOOL, { "uid", "desfire" } }, { "HASH", 0, "hash", COL_HASH, { 0 } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_provisioned(json_t *r)
{
    printf("card %" JSON_INTEGER_FORMAT " of member %" JSON_INTEGER_FORMAT " is a DESFire card "
           "(%s%s)\n", jint(r, "card"), jint(r, "member"), jstr(r, "done"),
           json_is_true(json_object_get(r, "existed")) ? "; it was enrolled already" : "");
}

static void print_deprovisioned(json_t *r)
{
    if (json_is_integer(json_object_get(r, "card")))
        printf("%s; card %" JSON_INTEGER_FORMAT " removed\n", jstr(r, "done"), jint(r, "card"));
    else
        printf("%s; the card was not enrolled here\n", jstr(r, "done"));
}

static void print_uid_only(json_t *list)
{
    static const struct column cols[] = {
        { "MEMBER", 8, "member_id", COL_INT, { 0 } }, { "NAME", 28, "member", COL_TEXT, { 0 } },
        { "CARD", 6, "card", COL_INT, { 0 } }, { "LABEL", 20, "label", COL_TEXT, { "-" } },
        { "LAST USED", 0, "last_used", COL_TIME, { "never" } },
    };

    if (json_array_size(list) == 0) {
        printf("every enabled card of an active member is a DESFire card: `card_security = "
               "desfire` can be set everywhere\n");
        return;
    }
    print_table(list, cols, ARRAY_SIZE(cols));
    printf("%zu card(s) still open by UID alone: `portierctl card provision MEMBER --reader R`\n",
           json_array_size(list));
}

static void print_events(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-8s %-24s %-10s %-10s %-8s %-8s %-7s %s\n", "ID", "TIME", "WHERE", "KIND", "MEMBER",
           "CARD", "RESULT", "REASON");
    json_array_foreach(list, i, v) {
        char when[40], member[24] = "-", card[24] = "-";
        fmt_local(jint(v, "at"), TIME_SECOND, "-", when, sizeof(when));
        if (jint(v, "member_id"))
            snprintf(member, sizeof(member), "%" JSON_INTEGER_FORMAT, jint(v, "member_id"));
        if (jint(v, "card_id"))
            snprintf(card, sizeof(card), "%" JSON_INTEGER_FORMAT, jint(v, "card_id"));
        printf("%-8" JSON_INTEGER_FORMAT " %-24s %-10s %-10s %-8s %-8s %-7s %s%s%s\n",
               jint(v, "id"), when, jstr(v, "door"), jstr(v, "kind"), member, card,
               json_is_true(json_object_get(v, "granted")) ? "ok" : "denied", jstr(v, "reason"),
               *jstr(v, "detail") ? " " : "", jstr(v, "detail"));
    }
}

/* Options after the command words: --name VALUE pairs and flags, collected into req. */
struct optspec {
    const char *flag;       /* "--plan" */
    const char *key;        /* JSON key */
    enum { OPT_STR, OPT_INT, OPT_FLAG } type;
};

static int parse_opts(int argc, char **argv, const struct optspec *specs, json_t *req,
                      char **positional, int max_positional, int *ret_npos)
{
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        const struct optspec *s = NULL;
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            if (npos == max_positional)
                return usage_error("unexpected argument '%s'", argv[i]);
            positional[npos++] = argv[i];
            continue;
        }
        for (const struct optspec *p = specs; p && p->flag; p++)
            if (strcmp(p->flag, argv[i]) == 0)
                s = p;
        if (!s)
            return usage_error("unknown option '%s'", argv[i]);
        if (s->type == OPT_FLAG) {
            json_object_set_new(req, s->key, json_true());
            continue;
        }
        if (i + 1 >= argc)
            return usage_error("option %s needs a value", s->flag);
        i++;
        if (s->type == OPT_INT) {
            int64_t v;
            if (parse_int64(argv[i], 0, INT64_MAX, &v) < 0)
                return usage_error("option %s needs a whole number, not '%s'", s->flag, argv[i]);
            json_object_set_new(req, s->key, json_integer(v));
        } else {
            json_object_set_new(req, s->key, json_string(argv[i]));
        }
    }
    *ret_npos = npos;
    return 0;
}

struct command {
    const char *word1, *word2;
    const char *cmd;                    /* daemon command */
    int min_pos, max_pos;
    const char *pos_keys[3];            /* JSON keys of positional arguments */
    struct optspec opts[14];
    void (*print)(json_t *reply);
    const char *list_key;               /* reply field printed by print, if any */
};

static void print_account_line(json_t *a)
{
    printf("%-24s %-10s %-24s %s%s\n", jstr(a, "name"), jstr(a, "role"),
           *jstr(a, "member") ? jstr(a, "member") : "-",
           json_is_true(json_object_get(a, "password_set")) ? "password set" : "no password",
           json_is_true(json_object_get(a, "disabled")) ? ", disabled" : "");
}

static void print_accounts(json_t *r)
{
    json_t *a;
    size_t i;

    printf("%-24s %-10s %-24s %s\n", "NAME", "ROLE", "MEMBER", "STATE");
    json_array_foreach(r, i, a)     /* the "accounts" list */
        print_account_line(a);
}

static void print_account(json_t *r)
{
    print_account_line(r);          /* the "account" object */
}

static void print_invite(json_t *r)
{
    char until[40];
    fmt_local(jint(r, "expires_at"), TIME_MINUTE, "-", until, sizeof(until));
    json_t *mail = json_object_get(r, "mail");
    printf("One-time link for %s (valid until %s, once):\n  http://PORTIER-ADDRESS%s\n"
           "(Use the address members reach the web page at.)\n", jstr(r, "name"), until,
           jstr(r, "path"));
    if (json_is_true(json_object_get(mail, "queued")))
        printf("Also sent to the member by e-mail (message %" JSON_INTEGER_FORMAT ", see portierctl "
               "mail list).\n", jint(mail, "id"));
    else if (mail && *jstr(mail, "why"))
        printf("Not sent by e-mail: %s.\n", jstr(mail, "why"));
}

static void print_kiosk(json_t *r)
{
    printf("Entrance screen %" JSON_INTEGER_FORMAT " (%s): open this address on the screen "
           "(no login; keep it private):\n  http://PORTIER-ADDRESS%s\n"
           "(Use the address the screen reaches the web page at. It is not shown again.)\n",
           jint(r, "id"), jstr(r, "label"), jstr(r, "path"));
}

static void print_kiosks(json_t *list)
{
    static const struct column cols[] = {
        { "ID", 6, "id", COL_INT, { 0 } }, { "LABEL", 32, "label", COL_TEXT, { 0 } },
        { "CREATED", 20, "created_at", COL_TIME, { "-" } }, { "BY", 0, "created_by", COL_TEXT, { 0 } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_token(json_t *r)
{
    printf("%s\n", jstr(r, "token"));
    fprintf(stderr, "API token for %s: send it as 'Authorization: Bearer TOKEN'. It is not shown "
            "again.\n", jstr(r, "name"));
}

/* Read a new password (without echo on a terminal, else one line of stdin) and hash it
 * here, so the daemon never sees it. 0, or an exit status. */
static int password_to_hash(json_t *req)
{
    char pw[PASSWORD_MAX + 2], again[PASSWORD_MAX + 2], hash[crypto_pwhash_STRBYTES];
    bool tty = isatty(STDIN_FILENO) && !json_is_true(json_object_get(req, "password_stdin"));
    struct termios old, quiet;
    const char *weak;

    json_object_del(req, "password_stdin");
    if (sodium_init() < 0)
        return 1;
    if (tty) {
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("New password: ", stderr);
    }
    bool got = fgets(pw, sizeof(pw), stdin) != NULL;
    if (tty && got) {
        fputs("\nAgain: ", stderr);
        got = fgets(again, sizeof(again), stdin) != NULL;
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputs("\n", stderr);
    }
    if (!got) {
        fprintf(stderr, "portierctl: no password given\n");
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (tty) {
        again[strcspn(again, "\r\n")] = '\0';
        if (strcmp(pw, again) != 0) {
            fprintf(stderr, "portierctl: the two passwords differ\n");
            return 1;
        }
    }
    if ((weak = password_weakness(pw))) {
        fprintf(stderr, "portierctl: %s\n", weak);
        return 1;
    }
    if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        fprintf(stderr, "portierctl: cannot hash the password (out of memory?)\n");
        return 1;
    }
    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(again, sizeof(again));
    json_object_set_new(req, "hash", json_string(hash));
    return 0;
}

static void print_ok_id(json_t *r)
{
    if (jint(r, "new_id"))
        printf("ok (booking %" JSON_INTEGER_FORMAT " replaced by %" JSON_INTEGER_FORMAT ")\n",
               jint(r, "id"), jint(r, "new_id"));
    else if (json_object_get(r, "id"))
        printf("ok (id %" JSON_INTEGER_FORMAT ")\n", jint(r, "id"));
    else
        printf("ok\n");
}

static void print_tap(json_t *r)
{
    if (json_is_true(json_object_get(r, "enrolment")))
        printf("card went to the waiting enrolment\n");
    else if (json_object_get(r, "machine") && json_is_true(json_object_get(r, "granted")))
        printf("machine %s: %s (member %" JSON_INTEGER_FORMAT ")\n", jstr(r, "machine"),
               jstr(r, "outcome"), jint(r, "member_id"));
    else if (json_object_get(r, "machine"))
        printf("machine %s: refused: %s\n", jstr(r, "machine"), jstr(r, "outcome"));
    else if (json_is_null(json_object_get(r, "door")))
        printf("tap read, but no door uses this reader\n");
    else if (json_is_true(json_object_get(r, "granted")))
        printf("door %s: granted (member %" JSON_INTEGER_FORMAT ")\n", jstr(r, "door"),
               jint(r, "member_id"));
    else
        printf("door %s: denied: %s\n", jstr(r, "door"), jstr(r, "reason"));
}

static void print_enrolled(json_t *r)
{
    printf("card %" JSON_INTEGER_FORMAT " enrolled for member %" JSON_INTEGER_FORMAT "\n",
           jint(r, "card"), jint(r, "member"));
}

/* A history value: times are kept in UTC ("2026-01-01T23:00:00Z"), shown on the site's
 * clock like every other time; anything else as it is. */
static const char *change_value(const char *field, const char *v, char *buf, size_t n)
{
    json_int_t t;

    if (!*v)
        return "(none)";
    if ((strncmp(field, "valid_", 6) != 0 && strcmp(field, "next_plan_at") != 0) ||
        utc_text_parse(v, &t) < 0)
        return v;
    if (strcmp(field, "valid_until") == 0)
        return fmt_until(t, "-", buf, n);
    return fmt_local(t, TIME_MINUTE, "-", buf, n);
}

static void print_changes(json_t *list)
{
    json_t *v;
    size_t i;

    printf("%-22s %-20s %-14s %s\n", "WHEN", "BY", "WHAT", "OLD -> NEW");
    json_array_foreach(list, i, v) {
        char when[40], a[40], b[40];
        const char *field = jstr(v, "field");
        fmt_local(jint(v, "at"), TIME_MINUTE, "-", when, sizeof(when));
        printf("%-22s %-20s %-14s %s -> %s\n", when, jstr(v, "by"), field,
               change_value(field, jstr(v, "old"), a, sizeof(a)),
               change_value(field, jstr(v, "new"), b, sizeof(b)));
    }
}

static void print_member(json_t *r)
{
    json_t *m = json_object_get(r, "member");
    char from[40], until[40], next[40];
    fmt_local(jint(m, "valid_from"), TIME_MINUTE, "the start", from, sizeof(from));
    fmt_until(jint(m, "valid_until"), "no end", until, sizeof(until));
    printf("Member #%" JSON_INTEGER_FORMAT ": %s\n  email:  %s\n  plan:   %s\n  status: %s\n"
           "  valid:  from %s until %s\n", jint(m, "id"), jstr(m, "name"),
           *jstr(m, "email") ? jstr(m, "email") : "-", *jstr(m, "plan") ? jstr(m, "plan") : "-",
           jstr(m, "status"), from, until);
    if (*jstr(m, "next_plan")) {
        fmt_local(jint(m, "next_plan_at"), TIME_MINUTE, "-", next, sizeof(next));
        printf("  next:   plan %s from %s\n", jstr(m, "next_plan"), next);
    }
    if (*jstr(m, "note"))
        printf("  note:   %s\n", jstr(m, "note"));
    printf("\n");
    if (json_object_get(m, "card_list")) {
        print_cards(json_object_get(m, "card_list"));
        printf("\n");
    }
    if (json_object_get(m, "changes")) {
        printf("History (newest first):\n");
        print_changes(json_object_get(m, "changes"));
    }
}

static void print_member_changed(json_t *r)
{
    json_t *m = json_object_get(r, "member");
    char until[40];

    fmt_until(jint(m, "valid_until"), "no end", until, sizeof(until));
    if (json_object_get(r, "changed") && jint(r, "changed") == 0)
        printf("nothing changed\n");
    else
        printf("member %" JSON_INTEGER_FORMAT ": %s, plan %s, valid until %s\n", jint(m, "id"),
               jstr(m, "status"), *jstr(m, "plan") ? jstr(m, "plan") : "-", until);
}

static void print_erased(json_t *r)
{
    printf("member %" JSON_INTEGER_FORMAT " erased: now %s; %" JSON_INTEGER_FORMAT
           " card hash(es) erased from the access log, %" JSON_INTEGER_FORMAT " card(s) deleted%s\n",
           jint(r, "id"), jstr(r, "pseudonym"), jint(r, "scrubbed"), jint(r, "cards"),
           json_is_true(json_object_get(r, "forced")) ? " (its open period shows the pseudonym)" : "");
}

static void print_pruned(json_t *r)
{
    json_t *d = json_object_get(r, "deleted");
    printf("deleted %" JSON_INTEGER_FORMAT " access events, %" JSON_INTEGER_FORMAT " presences, %"
           JSON_INTEGER_FORMAT " machine sessions, %" JSON_INTEGER_FORMAT " bookings, %"
           JSON_INTEGER_FORMAT " idle accounts; %" JSON_INTEGER_FORMAT " pages given back (%.1f s)\n",
           jint(d, "access_events"), jint(d, "presence"), jint(d, "machine_sessions"),
           jint(d, "bookings"), jint(r, "accounts"), jint(r, "pages_freed"),
           json_number_value(json_object_get(r, "seconds")));
}

static void print_card_state(json_t *r)
{
    printf("card %" JSON_INTEGER_FORMAT " %s\n", jint(r, "id"),
           json_is_true(json_object_get(r, "enabled")) ? "enabled" : "disabled");
}

static void print_plan_billing(json_t *r)
{
    char rate[24];
    format_cents(jint(r, "day_rate_cents"), '.', rate, sizeof(rate));
    printf("plan %s%s: %" JSON_INTEGER_FORMAT " days included a month, day rate %s EUR, order %s, %"
           JSON_INTEGER_FORMAT " visit days a month at other sites\n", jstr(r, "plan"),
           json_is_true(json_object_get(r, "changed")) ? " (changed)" : "",
           jint(r, "monthly_days"), rate, jstr(r, "allowance_order"), jint(r, "visit_days"));
}

static void print_rates(json_t *list);

static void print_plan(json_t *p)
{
    json_t *rates = json_object_get(p, "rates"), *v;
    char rate[24];
    size_t i;

    format_cents(jint(p, "day_rate_cents"), '.', rate, sizeof(rate));
    printf("Plan %s (%" JSON_INTEGER_FORMAT " members)\n  zones:  %s\n  hours:  %s\n"
           "  days:   %" JSON_INTEGER_FORMAT " included a month, then %s EUR a day\n"
           "  order:  %s\n  visits: %" JSON_INTEGER_FORMAT " days a month at other sites\n\n",
           jstr(p, "name"), jint(p, "members"), jstr(p, "zones"), jstr(p, "hours"),
           jint(p, "monthly_days"), rate, jstr(p, "allowance_order"), jint(p, "visit_days"));
    if (!json_array_size(rates)) {
        printf("No machine rates (portierctl rate set %s MACHINE ...).\n", jstr(p, "name"));
        return;
    }
    json_array_foreach(rates, i, v)
        json_object_set_new(v, "plan", json_string(jstr(p, "name")));
    print_rates(rates);
}

static void print_plans(json_t *list)
{
    static const struct column cols[] = {
        { "PLAN", 16, "name", COL_TEXT, { 0 } }, { "ZONES", 20, "zones", COL_TEXT, { 0 } },
        { "MEMBERS", 8, "members", COL_INT, { 0 } }, { "HOURS", 0, "hours", COL_TEXT, { 0 } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_bookings(json_t *list);

static void print_machines(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-14s %-9s %-10s %-14s %-6s %-22s %s\n", "MACHINE", "STATE", "MEMBER", "TRAINING",
           "SLOT", "UNTIL", "NOTE");
    json_array_foreach(list, i, v) {
        char member[16] = "-", note[160] = "", until[40];
        if (jint(v, "member_id"))
            snprintf(member, sizeof(member), "%" JSON_INTEGER_FORMAT, jint(v, "member_id"));
        if (json_is_true(json_object_get(v, "out_of_order")))
            snprintf(note, sizeof(note), "OUT OF ORDER %s", jstr(v, "out_of_order_reason"));
        else if (!json_is_true(json_object_get(v, "interlock")))
            snprintf(note, sizeof(note), "no interlock (bookable only)");
        else if (json_is_true(json_object_get(v, "booking_required")))
            snprintf(note, sizeof(note), "booking required");
        else
            snprintf(note, sizeof(note), "walk-up if free for %" JSON_INTEGER_FORMAT " min",
                     jint(v, "walkup_free_minutes"));
        printf("%-14s %-9s %-10s %-14s %-6" JSON_INTEGER_FORMAT " %-22s %s\n", jstr(v, "name"),
               jstr(v, "state"), member, *jstr(v, "training") ? jstr(v, "training") : "-",
               jint(v, "slot_minutes"), utc_text_local(jstr(v, "until"), until, sizeof(until)),
               note);
    }
}

static void print_machine(json_t *r)
{
    json_t *m = json_object_get(r, "machine");
    json_t *one = json_array();
    json_array_append(one, m);
    print_machines(one);
    json_decref(one);
    printf("\nRules: slots of %" JSON_INTEGER_FORMAT " min, %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT
           " min per booking, up to %" JSON_INTEGER_FORMAT " days ahead; quota %" JSON_INTEGER_FORMAT
           " min/day, %" JSON_INTEGER_FORMAT " min/week (0: none); cancel until %" JSON_INTEGER_FORMAT
           " min before; open %s\n", jint(m, "slot_minutes"), jint(m, "min_minutes"),
           jint(m, "max_minutes"), jint(m, "window_days"), jint(m, "quota_day_minutes"),
           jint(m, "quota_week_minutes"), jint(m, "cancel_deadline_minutes"), jstr(m, "hours"));
    if (json_object_get(m, "bookings")) {
        printf("\nUpcoming bookings:\n");
        print_bookings(json_object_get(m, "bookings"));
    }
}

static void print_bookings(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-7s %-12s %-24s %-22s %-22s %s\n", "ID", "MACHINE", "MEMBER", "START", "END", "NOTE");
    json_array_foreach(list, i, v) {
        char a[40], b[40], who[64];
        fmt_local(jint(v, "start"), TIME_MINUTE, "-", a, sizeof(a));
        fmt_local(jint(v, "end"), TIME_MINUTE, "-", b, sizeof(b));
        snprintf(who, sizeof(who), "%s (#%" JSON_INTEGER_FORMAT ")", jstr(v, "member"), jint(v, "member_id"));
        printf("%-7" JSON_INTEGER_FORMAT " %-12s %-24s %-22s %-22s %s%s\n", jint(v, "id"),
               jstr(v, "machine"), who, a, b,
               json_is_true(json_object_get(v, "cancelled")) ? "cancelled by " : "by ",
               json_is_true(json_object_get(v, "cancelled")) ? jstr(v, "cancelled_by") : jstr(v, "created_by"));
    }
}

static void print_trainings(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-20s %-10s %-24s %s\n", "TRAINING", "QUALIFIED", "TRAINERS", "DESCRIPTION");
    json_array_foreach(list, i, v) {
        char trainers[128] = "";
        size_t k, len = 0;
        json_t *t;
        json_array_foreach(json_object_get(v, "trainers"), k, t)
            if (len < sizeof(trainers))
                len += (size_t)snprintf(trainers + len, sizeof(trainers) - len, "%s%s",
                                        k ? ", " : "", jstr(t, "member"));
        printf("%-20s %-10" JSON_INTEGER_FORMAT " %-24s %s\n", jstr(v, "name"),
               jint(v, "qualified_members"), trainers[0] ? trainers : "-", jstr(v, "description"));
    }
}

static void print_qualifications(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-20s %-20s %-20s %s\n", "TRAINING", "GRANTED", "EXPIRES", "STATUS");
    json_array_foreach(list, i, v) {
        char g[40], e[40];
        fmt_local(jint(v, "granted_at"), TIME_MINUTE, "-", g, sizeof(g));
        fmt_local(jint(v, "expires_at"), TIME_MINUTE, "never", e, sizeof(e));
        printf("%-20s %-20s %-20s %s\n", jstr(v, "training"), g, e,
               jint(v, "revoked_at") ? "revoked"
               : (jint(v, "expires_at") && jint(v, "expires_at") <= time(NULL)) ? "expired" : "valid");
    }
}

static void print_sessions(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-7s %-12s %-8s %-20s %-20s %-8s %-8s %s\n", "ID", "MACHINE", "MEMBER", "STARTED",
           "ENDED", "RUN (s)", "WH", "END");
    json_array_foreach(list, i, v) {
        char a[40], b[40], wh[24] = "-";
        fmt_local(jint(v, "started_at"), TIME_MINUTE, "-", a, sizeof(a));
        fmt_local(jint(v, "ended_at"), TIME_MINUTE, "(open)", b, sizeof(b));
        if (json_is_integer(json_object_get(v, "energy_wh")))
            snprintf(wh, sizeof(wh), "%" JSON_INTEGER_FORMAT, jint(v, "energy_wh"));
        printf("%-7" JSON_INTEGER_FORMAT " %-12s %-8" JSON_INTEGER_FORMAT " %-20s %-20s %-8"
               JSON_INTEGER_FORMAT " %-8s %s%s%s\n", jint(v, "id"), jstr(v, "machine"),
               jint(v, "member_id"), a, b,
               jint(v, "running_seconds"), wh, jstr(v, "end_reason"),
               json_is_string(json_object_get(v, "alarm")) ? "  ALARM " : "",
               json_is_string(json_object_get(v, "alarm")) ? jstr(v, "alarm") : "");
    }
}

#define RULE_OPTS \
    { "--training", "training", OPT_STR }, { "--zone", "zone", OPT_STR }, \
    { "--slot", "slot_minutes", OPT_INT }, { "--min", "min_minutes", OPT_INT }, \
    { "--max", "max_minutes", OPT_INT }, { "--window-days", "window_days", OPT_INT }, \
    { "--quota-day", "quota_day_minutes", OPT_INT }, { "--quota-week", "quota_week_minutes", OPT_INT }, \
    { "--cancel-deadline", "cancel_deadline_minutes", OPT_INT }, { "--hours", "hours", OPT_STR }, \
    { "--walk-up", "walkup_free_minutes", OPT_INT }, { "--booking-required", "booking_required", OPT_FLAG }, \
    { "--category", "category", OPT_STR }

static const char *opt_format = "text";
static bool opt_summary;

/* "+01:00": the offset from UTC of start and end, labelling them. */
static void local_offset(json_int_t t, char *buf, size_t n)
{
    struct tm tm;
    time_t tt = (time_t)t;
    long off;

    localtime_r(&tt, &tm);
    off = tm.tm_gmtoff;
    snprintf(buf, n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600, labs(off) % 3600 / 60);
}

/* A column of a statement's CSV: the field key of the statement, of the member, of the
 * member's totals or of the line, written as its kind says. */
enum stmt_of {
    OF_STATEMENT,
    OF_MEMBER,
    OF_TOTALS,
    OF_LINE,
    OF_METERED,             /* the line, or an empty field if no meter measured it */
};
enum stmt_kind {
    STMT_TEXT,
    STMT_INT,
    STMT_CENTS,
    STMT_EUR,               /* the currency (no field) */
    STMT_MINUTE,            /* on the site's clock, without the zone: utc_offset says it */
    STMT_UTC_OFFSET,
};

struct stmt_column {
    const char *title;
    enum stmt_of of;
    const char *key;
    enum stmt_kind kind;
};

static const struct stmt_column stmt_summary[] = {
    { "period", OF_STATEMENT, "period", STMT_TEXT },
    { "member_id", OF_MEMBER, "member_id", STMT_INT },
    { "member", OF_MEMBER, "member", STMT_TEXT },
    { "days", OF_TOTALS, "days", STMT_INT },
    { "presence_minutes", OF_TOTALS, "presence_minutes", STMT_INT },
    { "machine_minutes", OF_TOTALS, "machine_minutes", STMT_INT },
    { "amount", OF_TOTALS, "amount_cents", STMT_CENTS },
    { "currency", OF_TOTALS, NULL, STMT_EUR },
    { "energy_wh", OF_TOTALS, "energy_wh", STMT_INT },
};

static const struct stmt_column stmt_lines[] = {
    { "period", OF_STATEMENT, "period", STMT_TEXT },
    { "member_id", OF_MEMBER, "member_id", STMT_INT },
    { "member", OF_MEMBER, "member", STMT_TEXT },
    { "ledger_seq", OF_LINE, "ledger_seq", STMT_INT },
    { "usage_id", OF_LINE, "usage_id", STMT_INT },
    { "kind", OF_LINE, "kind", STMT_TEXT },
    { "resource", OF_LINE, "resource", STMT_TEXT },
    { "billing_day", OF_LINE, "billing_day", STMT_TEXT },
    { "start", OF_LINE, "started_at", STMT_MINUTE },
    { "end", OF_LINE, "ended_at", STMT_MINUTE },
    { "quantity", OF_LINE, "quantity", STMT_INT },
    { "unit", OF_LINE, "unit", STMT_TEXT },
    { "allowance", OF_LINE, "allowance", STMT_TEXT },
    { "pass_quantity", OF_LINE, "pass_quantity", STMT_INT },
    { "plan_quantity", OF_LINE, "plan_quantity", STMT_INT },
    { "charged_quantity", OF_LINE, "charged_quantity", STMT_INT },
    { "amount", OF_LINE, "amount_cents", STMT_CENTS },
    { "currency", OF_LINE, NULL, STMT_EUR },
    { "end_reason", OF_LINE, "end_reason", STMT_TEXT },
    { "corrects_seq", OF_LINE, "corrects_seq", STMT_INT },
    { "note", OF_LINE, "note", STMT_TEXT },
    { "utc_offset", OF_LINE, "started_at", STMT_UTC_OFFSET },
    { "energy_wh", OF_METERED, "energy_wh", STMT_INT },
    { "energy_plan_wh", OF_METERED, "plan_wh", STMT_INT },
    { "energy_amount", OF_METERED, "energy_cents", STMT_CENTS },
};

/* One row: of[] holds what the columns read (of[OF_METERED] is NULL on an unmetered line). */
static void stmt_csv_row(struct csv *c, const struct stmt_column *cols, size_t n,
                         json_t *const of[])
{
    for (size_t k = 0; k < n; k++) {
        json_t *o = of[cols[k].of];
        char text[32];

        if (cols[k].of == OF_METERED && !o) {
            csv_text(c, "");
            continue;
        }
        switch (cols[k].kind) {
        case STMT_TEXT:
            csv_text(c, jstr(o, cols[k].key));
            break;
        case STMT_INT:
            csv_int(c, jint(o, cols[k].key));
            break;
        case STMT_CENTS:
            csv_cents(c, jint(o, cols[k].key));
            break;
        case STMT_EUR:
            csv_text(c, "EUR");
            break;
        case STMT_MINUTE:
            csv_text(c, fmt_local(jint(o, cols[k].key), "%Y-%m-%d %H:%M", NULL, text,
                                  sizeof(text)));
            break;
        case STMT_UTC_OFFSET:
            local_offset(jint(o, cols[k].key), text, sizeof(text));
            csv_text(c, text);
            break;
        }
    }
    csv_end_row(c);
}

/* The statement as CSV: a row per member (summary) or per line of each member. */
static void stmt_csv(struct csv *c, json_t *st, bool summary)
{
    const struct stmt_column *cols = summary ? stmt_summary : stmt_lines;
    size_t n = summary ? ARRAY_SIZE(stmt_summary) : ARRAY_SIZE(stmt_lines), i, j;
    json_t *of[] = { [OF_STATEMENT] = st, [OF_METERED] = NULL }, *m, *l;

    for (size_t k = 0; k < n; k++)
        csv_text(c, cols[k].title);
    csv_end_row(c);
    json_array_foreach(json_object_get(st, "members"), i, m) {
        of[OF_MEMBER] = m;
        of[OF_TOTALS] = json_object_get(m, "totals");
        if (summary) {
            stmt_csv_row(c, cols, n, of);
            continue;
        }
        json_array_foreach(json_object_get(m, "lines"), j, l) {
            of[OF_LINE] = l;
            of[OF_METERED] = json_object_get(l, "energy_wh") ? l : NULL;
            stmt_csv_row(c, cols, n, of);
        }
    }
}

static void print_statement(json_t *st)
{
    json_t *m;

    site_zone(jstr(st, "timezone"));
    bool fr = strcmp(opt_format, "csv-fr") == 0, csv = fr || strcmp(opt_format, "csv") == 0;
    size_t i, len = 0;
    char amount[32], *text;
    struct csv c;

    if (!csv) {
        printf("Statement %s (%s to %s; times in %s)\n\n", jstr(st, "period"),
               jstr(st, "first_day"), jstr(st, "last_day"), jstr(st, "timezone"));
        printf("%-6s %-26s %6s %10s %10s %12s\n", "ID", "MEMBER", "DAYS", "PRESENCE", "MACHINE",
               "AMOUNT");
        json_array_foreach(json_object_get(st, "members"), i, m) {
            json_t *t = json_object_get(m, "totals");
            format_cents(jint(t, "amount_cents"), '.', amount, sizeof(amount));
            printf("%-6" JSON_INTEGER_FORMAT " %-26s %6" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT
                   " min %6" JSON_INTEGER_FORMAT " min %10s EUR\n", jint(m, "member_id"),
                   jstr(m, "member"), jint(t, "days"), jint(t, "presence_minutes"),
                   jint(t, "machine_minutes"), amount);
        }
        format_cents(jint(json_object_get(st, "totals"), "amount_cents"), '.', amount,
                     sizeof(amount));
        printf("\nTotal: %" JSON_INTEGER_FORMAT " records, %s EUR\n",
               jint(json_object_get(st, "totals"), "records"), amount);
        return;
    }
    csv_init(&c, fr ? CSV_FRENCH : CSV_RFC4180);
    stmt_csv(&c, st, opt_summary);
    text = csv_take(&c, &len);
    if (!text || fwrite(text, 1, len, stdout) != len)
        fprintf(stderr, "portierctl: cannot write the statement\n");
    free(text);
}

static void print_verify(json_t *r)
{
    if (json_is_true(json_object_get(r, "intact")))
        printf("ledger intact: %" JSON_INTEGER_FORMAT " entries, %" JSON_INTEGER_FORMAT
               " signatures checked\n", jint(r, "entries"), jint(r, "signatures_checked"));
    else
        printf("LEDGER BROKEN at entry %" JSON_INTEGER_FORMAT ": %s\n",
               jint(r, "first_broken_seq"), jstr(r, "problem"));
}

static void print_key(json_t *r)
{
    printf("site %s, %s public key:\n%s\n", jstr(r, "site"), jstr(r, "algorithm"),
           jstr(r, "public_key"));
}

static void print_presence(json_t *list)
{
    static const struct column cols[] = {
        { "MEMBER", 8, "member_id", COL_INT, { 0 } }, { "NAME", 28, "member", COL_TEXT, { 0 } },
        { "SINCE", 0, "since", COL_TIME, { "-" } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_passes(json_t *list)
{
    static const struct column cols[] = {
        { "ID", 6, "id", COL_INT, { 0 } }, { "KIND", 8, "kind", COL_TEXT, { 0 } },
        { "TARGET", 14, "target", COL_TEXT, { 0 } }, { "QUANTITY", 9, "quantity", COL_INT, { 0 } },
        { "REMAINING", 10, "remaining", COL_INT, { 0 } },
        { "VALID UNTIL", 20, "valid_until", COL_UNTIL, { "-" } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_rates(json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-14s %-14s %10s %7s %11s %6s %9s %8s %11s\n", "PLAN", "TARGET", "PER HOUR", "BLOCK",
           "MIN CHARGE", "FREE", "INCLUDED", "PER KWH", "INCLUDED");
    json_array_foreach(list, i, v) {
        char ph[24], mc[24], pk[24];
        format_cents(jint(v, "per_hour_cents"), '.', ph, sizeof(ph));
        format_cents(jint(v, "min_charge_cents"), '.', mc, sizeof(mc));
        format_cents(jint(v, "per_kwh_cents"), '.', pk, sizeof(pk));
        printf("%-14s %-14s %10s %4" JSON_INTEGER_FORMAT " min %11s %3" JSON_INTEGER_FORMAT
               " min %5" JSON_INTEGER_FORMAT " min %8s %8" JSON_INTEGER_FORMAT " Wh\n",
               jstr(v, "plan"), jstr(v, "target"), ph, jint(v, "block_minutes"), mc,
               jint(v, "free_minutes"), jint(v, "monthly_minutes"), pk, jint(v, "monthly_wh"));
    }
}

static void print_periods(json_t *list)
{
    static const struct column cols[] = {
        { "PERIOD", 8, "period", COL_TEXT, { 0 } }, { "CLOSED", 20, "closed_at", COL_TIME, { "-" } },
        { "LAST SEQ", 10, "last_seq", COL_INT, { 0 } }, { "ARCHIVE", 0, "archive", COL_TEXT, { 0 } },
    };
    print_table(list, cols, ARRAY_SIZE(cols));
}

static void print_closed(json_t *r)
{
    printf("period %s closed; archive %s (ledger up to entry %" JSON_INTEGER_FORMAT ")\n",
           jstr(r, "period"), jstr(r, "archive"), jint(r, "last_ledger_seq"));
}

static void print_mail(json_t *r)
{
    json_t *m = json_object_get(r, "mail"), *v;
    size_t i;

    if (!json_is_true(json_object_get(m, "enabled")))
        printf("E-mail is off ([mail] enabled = false).\n");
    else
        printf("%" JSON_INTEGER_FORMAT " waiting; %" JSON_INTEGER_FORMAT " sent in the last hour "
               "(at most %" JSON_INTEGER_FORMAT "); %" JSON_INTEGER_FORMAT " not queued since "
               "start (queue full)\n\n", jint(m, "queued"), jint(m, "sent_last_hour"),
               jint(m, "per_hour"), jint(m, "dropped"));
    printf("%-6s %-10s %-8s %-16s %-8s %-28s %s\n", "ID", "KIND", "STATE", "WHEN", "TRIES", "TO",
           "SUBJECT / LAST ERROR");
    json_array_foreach(json_object_get(r, "messages"), i, v) {
        char when[32];
        json_int_t at = jint(v, "sent_at") ? jint(v, "sent_at") : jint(v, "next_try_at")
                        ? jint(v, "next_try_at") : jint(v, "created_at");
        fmt_local(at, TIME_MINUTE, "-", when, sizeof(when));
        printf("%-6" JSON_INTEGER_FORMAT " %-10s %-8s %-16s %-8" JSON_INTEGER_FORMAT " %-28.28s %s\n",
               jint(v, "id"), jstr(v, "kind"), jstr(v, "state"), when, jint(v, "attempts"),
               jstr(v, "to"), *jstr(v, "last_error") && strcmp(jstr(v, "state"), "sent") != 0
                   ? jstr(v, "last_error") : jstr(v, "subject"));
    }
}

static void print_mail_test(json_t *r)
{
    if (!json_is_true(json_object_get(r, "sent")))
        printf("queued as message %" JSON_INTEGER_FORMAT ": the hourly limit ([mail] per_hour) "
               "holds it until %s\n", jint(r, "id"), jstr(r, "held_until"));
    else
        printf("sent: the SMTP server accepted it (%" JSON_INTEGER_FORMAT " ms)\n", jint(r, "ms"));
}

static void print_webhooks(json_t *list)
{
    json_t *v;
    size_t i;

    if (!json_array_size(list))
        printf("No [webhook NAME] sections.\n");
    json_array_foreach(list, i, v) {
        printf("%s -> %s (events: %s)\n  delivered %" JSON_INTEGER_FORMAT ", %" JSON_INTEGER_FORMAT
               " behind, %" JSON_INTEGER_FORMAT " failed attempts, %" JSON_INTEGER_FORMAT
               " refused; last HTTP status %" JSON_INTEGER_FORMAT "\n",
               jstr(v, "name"), jstr(v, "receiver"), jstr(v, "events"), jint(v, "delivered"),
               jint(v, "behind"), jint(v, "failed_attempts"), jint(v, "refused"),
               jint(v, "last_status"));
        if (jint(v, "failing_since")) {
            char since[32];
            fmt_local(jint(v, "failing_since"), TIME_MINUTE, "-", since, sizeof(since));
            printf("  FAILING since %s: %s; next attempt in %" JSON_INTEGER_FORMAT " s\n", since,
                   jstr(v, "last_error"), jint(v, "retry_in_ms") / 1000);
        }
    }
}

static void print_webhook_test(json_t *r)
{
    printf("delivered: HTTP %" JSON_INTEGER_FORMAT " in %" JSON_INTEGER_FORMAT " ms\n",
           jint(r, "status"), jint(r, "ms"));
}

static const struct command commands[] = {
    { "status", NULL, "status", 0, 0, { 0 }, { { 0 } }, print_status, NULL },
    { "member", "add", "member.add", 1, 1, { "name" },
      { { "--plan", "plan", OPT_STR }, { "--email", "email", OPT_STR },
        { "--from", "valid_from", OPT_STR }, { "--until", "valid_until", OPT_STR },
        { "--note", "note", OPT_STR } },
      print_ok_id, NULL },
    { "member", "list", "member.list", 0, 0, { 0 },
      { { "--search", "query", OPT_STR }, { "--filter", "filter", OPT_STR },
        { "--offset", "offset", OPT_INT }, { "--limit", "limit", OPT_INT } },
      print_members, "members" },
    { "member", "show", "member.show", 1, 1, { "member" }, { { 0 } }, print_member, NULL },
    { "member", "set", "member.set", 1, 1, { "member" },
      { { "--name", "name", OPT_STR }, { "--email", "email", OPT_STR },
        { "--plan", "plan", OPT_STR }, { "--plan-from", "plan_from", OPT_STR },
        { "--from", "valid_from", OPT_STR }, { "--until", "valid_until", OPT_STR },
        { "--note", "note", OPT_STR } },
      print_member_changed, NULL },
    { "member", "renew", "member.renew", 1, 1, { "member" },
      { { "--until", "until", OPT_STR }, { "--for", "for", OPT_STR } },
      print_member_changed, NULL },
    { "member", "remove", "member.remove", 1, 1, { "member" }, { { 0 } }, print_ok_id, NULL },
    { "member", "erase", "member.erase", 1, 1, { "member" }, { { "--force", "force", OPT_FLAG } },
      print_erased, NULL },
    { "member", "export", "member.export", 1, 1, { "member" }, { { "--out", "out", OPT_STR } },
      NULL, "export" },
    { "member", "suspend", "member.suspend", 1, 1, { "member" }, { { 0 } }, print_ok_id, NULL },
    { "member", "resume", "member.resume", 1, 1, { "member" }, { { 0 } }, print_ok_id, NULL },
    { "card", "add", "card.add", 2, 2, { "member", "uid" }, { { "--label", "label", OPT_STR } },
      print_ok_id, NULL },
    { "card", "enroll", "card.enroll", 1, 1, { "member" },
      { { "--reader", "reader", OPT_STR }, { "--label", "label", OPT_STR },
        { "--timeout", "timeout", OPT_INT } },
      print_enrolled, NULL },
    { "card", "remove", "card.remove", 0, 1, { "card" }, { { "--uid", "uid", OPT_STR } },
      print_ok_id, NULL },
    { "card", "list", "card.list", 0, 1, { "member" }, { { 0 } }, print_cards, "cards" },
    { "card", "enable", "card.enable", 1, 1, { "card" }, { { 0 } }, print_card_state, NULL },
    { "card", "disable", "card.disable", 1, 1, { "card" }, { { 0 } }, print_card_state, NULL },
    { "card", "provision", "card.provision", 1, 1, { "member" },
      { { "--reader", "reader", OPT_STR }, { "--label", "label", OPT_STR },
        { "--timeout", "timeout", OPT_INT }, { "--picc-key", "picc_key", OPT_STR },
        { "--picc-key-file", "picc_key_file", OPT_STR } },
      print_provisioned, NULL },
    { "card", "deprovision", "card.deprovision", 0, 0, { 0 },
      { { "--reader", "reader", OPT_STR }, { "--timeout", "timeout", OPT_INT },
        { "--picc-key", "picc_key", OPT_STR }, { "--picc-key-file", "picc_key_file", OPT_STR } },
      print_deprovisioned, NULL },
    { "card", "report", "card.report", 0, 0, { 0 }, { { 0 } }, print_uid_only, "uid_only" },
    { "plan", "add", "plan.add", 1, 1, { "name" },
      { { "--zones", "zones", OPT_STR }, { "--hours", "hours", OPT_STR } }, print_ok_id, NULL },
    { "plan", "list", "plan.list", 0, 0, { 0 }, { { 0 } }, print_plans, "plans" },
    { "plan", "show", "plan.show", 1, 1, { "plan" }, { { 0 } }, print_plan, "plan" },
    { "privacy", "prune", "privacy.prune", 0, 0, { 0 }, { { 0 } }, print_pruned, NULL },
    { "door", "unlock", "door.unlock", 1, 1, { "door" }, { { "--for", "seconds", OPT_INT } },
      print_ok_id, NULL },
    { "door", "lock", "door.lock", 1, 1, { "door" }, { { 0 } }, print_ok_id, NULL },
    { "reader", "restart", "reader.restart", 1, 1, { "reader" }, { { 0 } }, print_ok_id, NULL },
    { "machine", "add", "machine.add", 1, 1, { "machine" }, { RULE_OPTS }, print_machine, NULL },
    { "machine", "set", "machine.set", 1, 1, { "machine" }, { RULE_OPTS }, print_machine, NULL },
    { "machine", "list", "machine.list", 0, 0, { 0 }, { { 0 } }, print_machines, "machines" },
    { "machine", "show", "machine.show", 1, 1, { "machine" }, { { 0 } }, print_machine, NULL },
    { "machine", "sessions", "machine.sessions", 0, 0, { 0 }, { { "--since", "since", OPT_STR } },
      print_sessions, "sessions" },
    { "machine", "out-of-order", "machine.out_of_order", 2, 2, { "machine", "on" },
      { { "--reason", "reason", OPT_STR }, { "--after-session", "after_session", OPT_FLAG } },
      print_ok_id, NULL },
    { "training", "add", "training.add", 1, 1, { "name" },
      { { "--description", "description", OPT_STR } }, print_ok_id, NULL },
    { "training", "list", "training.list", 0, 0, { 0 }, { { 0 } }, print_trainings, "trainings" },
    { "training", "show", "training.show", 1, 1, { "member" }, { { 0 } }, print_qualifications,
      "qualifications" },
    { "training", "grant", "training.grant", 2, 2, { "member", "training" },
      { { "--expires", "expires", OPT_STR } }, print_ok_id, NULL },
    { "training", "revoke", "training.revoke", 2, 2, { "member", "training" }, { { 0 } },
      print_ok_id, NULL },
    { "training", "appoint", "training.appoint", 2, 2, { "member", "training" }, { { 0 } },
      print_ok_id, NULL },
    { "training", "dismiss", "training.dismiss", 2, 2, { "member", "training" }, { { 0 } },
      print_ok_id, NULL },
    { "booking", "add", "booking.add", 3, 3, { "machine", "start", "end" },
      { { "--for", "member", OPT_STR }, { "--as-member", "as_member", OPT_FLAG } }, print_ok_id, NULL },
    { "booking", "list", "booking.list", 0, 0, { 0 },
      { { "--machine", "machine", OPT_STR }, { "--for", "member", OPT_STR },
        { "--from", "from", OPT_STR }, { "--to", "to", OPT_STR }, { "--all", "all", OPT_FLAG } },
      print_bookings, "bookings" },
    { "booking", "cancel", "booking.cancel", 1, 1, { "booking" },
      { { "--override", "override", OPT_FLAG }, { "--as-member", "as_member", OPT_FLAG } },
      print_ok_id, NULL },
    { "booking", "move", "booking.move", 3, 3, { "booking", "start", "end" },
      { { "--override", "override", OPT_FLAG }, { "--as-member", "as_member", OPT_FLAG } },
      print_ok_id, NULL },
    { "events", NULL, "events", 0, 0, { 0 },
      { { "--since", "since", OPT_STR }, { "--limit", "limit", OPT_INT } }, print_events, "events" },
    { "sim", "tap", "sim.tap", 1, 1, { "uid" },
      { { "--reader", "reader", OPT_STR }, { "--hold", "hold", OPT_FLAG },
        { "--desfire", "desfire", OPT_FLAG } }, print_tap, NULL },
    { "sim", "remove", "sim.remove", 0, 0, { 0 }, { { "--reader", "reader", OPT_STR } },
      print_ok_id, NULL },
    { "sim", "press", "sim.press", 1, 1, { "input" }, { { 0 } }, print_ok_id, NULL },
    { "sim", "release", "sim.release", 1, 1, { "input" }, { { 0 } }, print_ok_id, NULL },
    { "sim", "open", "sim.press", 1, 1, { "door" }, { { 0 } }, print_ok_id, NULL },
    { "sim", "advance", "sim.advance", 1, 1, { "seconds" }, { { 0 } }, print_ok_id, NULL },
    { "presence", "list", "presence.list", 0, 0, { 0 }, { { 0 } }, print_presence, "present" },
    { "presence", "checkout", "presence.checkout", 1, 1, { "member" }, { { 0 } }, print_ok_id, NULL },
    { "pass", "add", "pass.add", 1, 1, { "member" },
      { { "--days", "days", OPT_INT }, { "--minutes", "minutes", OPT_INT },
        { "--target", "target", OPT_STR }, { "--from", "valid_from", OPT_STR },
        { "--until", "valid_until", OPT_STR }, { "--price", "price_cents", OPT_INT } },
      print_ok_id, NULL },
    { "pass", "list", "pass.list", 1, 1, { "member" }, { { 0 } }, print_passes, "passes" },
    { "plan", "billing", "plan.billing", 1, 1, { "plan" },
      { { "--monthly-days", "monthly_days", OPT_INT }, { "--day-rate", "day_rate_cents", OPT_INT },
        { "--order", "allowance_order", OPT_STR }, { "--visit-days", "visit_days", OPT_INT } },
      print_plan_billing, NULL },
    { "rate", "set", "rate.set", 2, 2, { "plan", "target" },
      { { "--per-hour", "per_hour_cents", OPT_INT }, { "--block", "block_minutes", OPT_INT },
        { "--min-charge", "min_charge_cents", OPT_INT }, { "--free", "free_minutes", OPT_INT },
        { "--monthly-minutes", "monthly_minutes", OPT_INT },
        { "--per-kwh", "per_kwh_cents", OPT_INT }, { "--monthly-wh", "monthly_wh", OPT_INT } },
      print_ok_id, NULL },
    { "rate", "list", "rate.list", 0, 0, { 0 }, { { 0 } }, print_rates, "rates" },
    { "statement", NULL, "statement", 0, 0, { 0 },
      { { "--period", "period", OPT_STR }, { "--member", "member", OPT_STR },
        { "--format", "format", OPT_STR }, { "--summary", "summary", OPT_FLAG } },
      print_statement, "statement" },
    { "usage", "correct", "usage.correct", 1, 1, { "seq" },
      { { "--amount", "amount_cents", OPT_STR }, { "--note", "note", OPT_STR } }, print_ok_id, NULL },
    { "usage", "add", "usage.add", 1, 1, { "member" }, { { "--at", "at", OPT_STR } },
      print_ok_id, NULL },
    { "period", "close", "period.close", 1, 1, { "period" }, { { 0 } }, print_closed, NULL },
    { "period", "list", "period.list", 0, 0, { 0 }, { { 0 } }, print_periods, "periods" },
    { "site", "key", "site.key", 0, 0, { 0 }, { { 0 } }, print_key, NULL },
    { "ledger", "verify", "ledger.verify", 0, 0, { 0 }, { { 0 } }, print_verify, NULL },
    { "sim", "close", "sim.release", 1, 1, { "door" }, { { 0 } }, print_ok_id, NULL },
    { "mail", "list", "mail.list", 0, 0, { 0 },
      { { "--state", "state", OPT_STR }, { "--member", "member", OPT_STR },
        { "--limit", "limit", OPT_INT } }, print_mail, NULL },
    { "mail", "retry", "mail.retry", 1, 1, { "id" }, { { 0 } }, print_ok_id, NULL },
    { "mail", "test", "mail.test", 1, 1, { "to" }, { { 0 } }, print_mail_test, NULL },
    { "webhook", "list", "webhook.list", 0, 0, { 0 }, { { 0 } }, print_webhooks, "webhooks" },
    { "webhook", "test", "webhook.test", 1, 1, { "name" }, { { 0 } }, print_webhook_test, NULL },
    { "account", "add", "account.add", 1, 1, { "name" },
      { { "--role", "role", OPT_STR }, { "--member", "member", OPT_STR } }, print_ok_id, NULL },
    { "account", "list", "account.list", 0, 0, { 0 }, { { 0 } }, print_accounts, "accounts" },
    { "account", "show", "account.show", 1, 1, { "name" }, { { 0 } }, print_account, "account" },
    { "account", "disable", "account.disable", 1, 1, { "name" }, { { 0 } }, print_ok_id, NULL },
    { "account", "enable", "account.enable", 1, 1, { "name" }, { { 0 } }, print_ok_id, NULL },
    { "account", "passwd", "account.passwd", 1, 1, { "name" },
      { { "--password-stdin", "password_stdin", OPT_FLAG } }, print_ok_id, NULL },
    { "account", "invite", "account.invite", 1, 1, { "name" }, { { "--hours", "hours", OPT_INT } },
      print_invite, NULL },
    { "account", "token", "account.token", 1, 1, { "name" },
      { { "--label", "label", OPT_STR }, { "--days", "days", OPT_INT } }, print_token, NULL },
    { "account", "language", "account.language", 2, 2, { "name", "language" }, { { 0 } },
      print_ok_id, NULL },
    { "kiosk", "add", "kiosk.add", 1, 1, { "label" }, { { 0 } }, print_kiosk, NULL },
    { "kiosk", "list", "kiosk.list", 0, 0, { 0 }, { { 0 } }, print_kiosks, "kiosks" },
    { "kiosk", "remove", "kiosk.remove", 1, 1, { "kiosk" }, { { 0 } }, print_ok_id, NULL },
};

/* For bash completion (--list-commands): one line per command, its words then its options. */
static void list_commands(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        printf("%s %s", commands[i].word1, commands[i].word2 ? commands[i].word2 : "-");
        for (const struct optspec *o = commands[i].opts; o->flag; o++)
            printf(" %s", o->flag);
        putchar('\n');
    }
}

/* For bash completion (--list-names doors|readers|machines): the running site's names, one
 * per line; nothing (and no message) when the daemon cannot be reached. */
static json_t *call(const char *sock_path, json_t *req);
static int print_names(const char *sock_path, const char *kind)
{
    json_t *reply, *v;
    size_t i;
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    if (strcmp(kind, "doors") != 0 && strcmp(kind, "readers") != 0 &&
        strcmp(kind, "machines") != 0)
        return usage_error("--list-names takes doors, readers or machines");
    if (null >= 0)
        dup2(null, STDERR_FILENO);          /* completion must not print connection errors */
    reply = call(sock_path, json_pack("{s:s}", "cmd", "status"));
    if (saved >= 0)
        dup2(saved, STDERR_FILENO);
    if (saved >= 0)
        close(saved);
    if (null >= 0)
        close(null);
    if (!reply)
        return 1;
    json_array_foreach(json_object_get(reply, kind), i, v)
        if (json_is_string(json_object_get(v, "name")))
            printf("%s\n", json_string_value(json_object_get(v, "name")));
    json_decref(reply);
    return 0;
}

static char export_path[PATH_MAX];

/* A member's export: to FILE (created 0600: it is personal data), or to stdout. */
static int write_export(json_t *doc, const char *path)
{
    FILE *f = stdout;
    int fd;

    if (!doc) {
        fprintf(stderr, "portierctl: the daemon sent no export\n");
        return 1;
    }
    if (*path) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
            fprintf(stderr, "portierctl: cannot write %s: %s\n", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return 1;
        }
    }
    json_dumpf(doc, f, JSON_INDENT(2));
    fputc('\n', f);
    if (f != stdout) {
        if (fclose(f) != 0) {
            fprintf(stderr, "portierctl: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        fprintf(stderr, "export of member %" JSON_INTEGER_FORMAT " written to %s\n",
                jint(json_object_get(doc, "member"), "id"), path);
    }
    return 0;
}

/* Text for a terminal: a control character in a string (a name stored before the daemon
 * refused them, say) is shown as '?' rather than sent to the terminal as an escape. */
static void printable(json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, key, item)
            printable(item);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            printable(item);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        bool clean = true;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
                clean = false;
        if (!clean) {
            char *copy = malloc(len + 1);
            if (!copy)
                return;
            for (size_t k = 0; k < len; k++)
                copy[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
            copy[len] = '\0';
            json_string_setn(v, copy, len);
            free(copy);
        }
    }
}

/* Send one line to a pn532-emu control socket; 0 if it answered "ok". */
static int emulator_command(const char *path, const char *line)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char reply[256];
    ssize_t n;
    int fd;

    if (strlcpy_checked(sa.sun_path, path, sizeof(sa.sun_path)) < 0)
        return -ENAMETOOLONG;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
        int r = -errno;
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "portierctl: cannot reach the reader emulator at %s: %s\n", path,
                strerror(-r));
        return r;
    }
    n = recv(fd, reply, sizeof(reply) - 1, 0);
    close(fd);
    reply[n > 0 ? n : 0] = '\0';
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "portierctl: emulator: %s", n > 0 ? reply : "no answer\n");
        return -EIO;
    }
    return 0;
}

static json_t *reader_status(const char *sock_path, const char *name)
{
    json_t *st = call(sock_path, json_pack("{s:s}", "cmd", "status")), *v, *found = NULL;
    size_t i;

    if (!st)
        return NULL;
    json_array_foreach(json_object_get(st, "readers"), i, v)
        if (strcmp(jstr(v, "name"), name) == 0)
            found = json_incref(v);
    json_decref(st);
    return found;
}

/* A libnfc reader with an emulator (demo, tests): the tap goes into pn532-emu and through
 * real libnfc. Without --hold the card is taken away once the daemon has read it.
 * Returns -ENOENT if the reader has no emulator (then the daemon's sim.tap applies). */
static int emulated_tap(const char *sock_path, json_t *req, bool remove_only)
{
    const char *name = json_string_value(json_object_get(req, "reader"));
    json_t *reader = reader_status(sock_path, name), *st;
    char line[128], emu[108];
    json_int_t before;
    int r = 0;

    if (!reader || !*jstr(reader, "emulator")) {
        json_decref(reader);
        return -ENOENT;
    }
    snprintf(emu, sizeof(emu), "%s", jstr(reader, "emulator"));
    before = jint(reader, "taps");
    json_decref(reader);
    if (remove_only)
        return emulator_command(emu, "remove") < 0 ? 1 : (printf("ok\n"), 0);
    snprintf(line, sizeof(line), "insert uid=%s%s", json_string_value(json_object_get(req, "uid")),
             json_is_true(json_object_get(req, "desfire")) ? " desfire" : "");
    if (emulator_command(emu, line) < 0)
        return 1;
    if (json_is_true(json_object_get(req, "hold"))) {
        printf("card placed on emulated reader %s (sim remove --reader %s takes it away)\n", name,
               name);
        return 0;
    }
    for (int i = 0; i < 250; i++) {         /* up to 5 s for the worker to read it */
        reader = reader_status(sock_path, name);
        json_int_t taps = reader ? jint(reader, "taps") : before;
        json_decref(reader);
        if (taps > before)
            break;
        usleep(20000);
    }
    emulator_command(emu, "remove");
    st = call(sock_path, json_pack("{s:s}", "cmd", "status"));
    json_t *tap = st ? json_array_get(json_object_get(st, "recent_taps"), 0) : NULL;
    if (!tap || strcmp(jstr(tap, "reader"), name) != 0) {
        printf("the reader did not report the card (see portierctl status)\n");
        r = 1;
    } else if (json_is_true(json_object_get(tap, "granted"))) {
        printf("door %s: granted (member %" JSON_INTEGER_FORMAT ")\n", jstr(tap, "door"),
               jint(tap, "member_id"));
    } else {
        printf("door %s: denied: %s\n", jstr(tap, "door"), jstr(tap, "reason"));
    }
    json_decref(st);
    return r;
}

/* --picc-key-file FILE: the key's first line becomes picc_key (a key on the command line
 * would show in ps). 0, or the exit status of a usage error. */
static int picc_key_from_file(json_t *req)
{
    const char *path = json_string_value(json_object_get(req, "picc_key_file"));
    char line[80] = "";
    FILE *f = path ? fopen(path, "re") : NULL;

    if (!f) {
        fprintf(stderr, "portierctl: --picc-key-file %s: %s\n", path ? path : "", strerror(errno));
        return 1;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    json_object_del(req, "picc_key_file");
    json_object_set_new(req, "picc_key", json_string(line));
    explicit_bzero(line, sizeof(line));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "list-commands", no_argument, NULL, 'L' },
        { "list-names", required_argument, NULL, 'N' },
        { 0 },
    };
    const char *opt_socket = NULL, *opt_config = NULL, *list_names = NULL;
    const struct command *cmd = NULL;
    char sock_path[PATH_MAX], *pos[3];
    json_t *req, *reply;
    int c, npos = 0, words, r;

    /* Stop at the first non-option so command options (--reader) are ours to parse. */
    while ((c = getopt_long(argc, argv, "+s:c:h", options, NULL)) != -1) {
        switch (c) {
        case 's': opt_socket = optarg; break;
        case 'c': opt_config = optarg; break;
        case 'j': opt_json = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("portierctl %s\n", PORTIER_VERSION); return 0;
        case 'L': list_commands(); return 0;
        case 'N': list_names = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (list_names) {
        find_socket(opt_socket, opt_config, sock_path, sizeof(sock_path));
        return print_names(sock_path, list_names);
    }
    if (optind >= argc)
        return usage_error("missing command");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].word1, argv[optind]) != 0)
            continue;
        if (!commands[i].word2 ||
            (optind + 1 < argc && strcmp(commands[i].word2, argv[optind + 1]) == 0)) {
            cmd = &commands[i];
            break;
        }
    }
    if (!cmd)
        return usage_error("unknown command '%s%s%s'", argv[optind],
                           optind + 1 < argc ? " " : "", optind + 1 < argc ? argv[optind + 1] : "");
    words = cmd->word2 ? 2 : 1;
    req = json_pack("{s:s}", "cmd", cmd->cmd);
    /* --json is accepted after the command too, as people type it there. */
    for (int i = optind + words; i < argc; i++)
        if (strcmp(argv[i], "--json") == 0) {
            opt_json = true;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i - 1) * sizeof(char *));
            argc--;
            i--;
        }
    r = parse_opts(argc - optind - words, argv + optind + words, cmd->opts, req, pos,
                   cmd->max_pos, &npos);
    if (r) {
        json_decref(req);
        return r;
    }
    if (npos < cmd->min_pos) {
        json_decref(req);
        return usage_error("'%s%s%s' needs %s", cmd->word1, cmd->word2 ? " " : "",
                           cmd->word2 ? cmd->word2 : "",
                           cmd->pos_keys[npos] ? cmd->pos_keys[npos] : "more arguments");
    }
    for (int i = 0; i < npos; i++) {
        if (strcmp(cmd->pos_keys[i], "card") == 0 || strcmp(cmd->pos_keys[i], "booking") == 0 ||
            strcmp(cmd->pos_keys[i], "seq") == 0 || strcmp(cmd->pos_keys[i], "id") == 0) {
            int64_t id;
            if (parse_int64(pos[i], 1, INT64_MAX, &id) < 0) {
                json_decref(req);
                return usage_error("%s must be a number", cmd->pos_keys[i][0] == 'c'
                                   ? "CARD_ID (or use --uid UID)" : cmd->pos_keys[i][0] == 'i'
                                   ? "ID" : "the booking ID");
            }
            json_object_set_new(req, cmd->pos_keys[i], json_integer(id));
        } else if (strcmp(cmd->pos_keys[i], "seconds") == 0) {
            int64_t secs;
            if (parse_int64(pos[i], 0, INT64_MAX, &secs) < 0) {
                json_decref(req);
                return usage_error("SECONDS must be a whole number");
            }
            json_object_set_new(req, "seconds", json_integer(secs));
        } else if (strcmp(cmd->pos_keys[i], "on") == 0) {
            if (strcmp(pos[i], "on") != 0 && strcmp(pos[i], "off") != 0) {
                json_decref(req);
                return usage_error("say 'on' or 'off'");
            }
            json_object_set_new(req, "on", json_boolean(strcmp(pos[i], "on") == 0));
        } else if (strcmp(cmd->pos_keys[i], "door") == 0 && strcmp(cmd->word1, "sim") == 0) {
            char input[64];
            snprintf(input, sizeof(input), "%s.contact", pos[i]);
            json_object_set_new(req, "input", json_string(input));
        } else {
            json_object_set_new(req, cmd->pos_keys[i], json_string(pos[i]));
        }
    }
    if ((strcmp(cmd->cmd, "sim.tap") == 0 || strcmp(cmd->cmd, "sim.remove") == 0 ||
         strcmp(cmd->cmd, "card.enroll") == 0 || strcmp(cmd->cmd, "card.provision") == 0 ||
         strcmp(cmd->cmd, "card.deprovision") == 0) && !json_object_get(req, "reader")) {
        json_decref(req);
        return usage_error("'%s %s' needs --reader READER", cmd->word1, cmd->word2);
    }
    /* pass add: --days N or --minutes N become kind + quantity. */
    if (strcmp(cmd->cmd, "pass.add") == 0) {
        json_t *days = json_object_get(req, "days"), *mins = json_object_get(req, "minutes");
        if (!days == !mins) {
            json_decref(req);
            return usage_error("'pass add' needs exactly one of --days N or --minutes N");
        }
        json_object_set_new(req, "kind", json_string(days ? "days" : "minutes"));
        json_object_set(req, "quantity", days ? days : mins);
        json_object_del(req, "days");
        json_object_del(req, "minutes");
    }
    /* machine out-of-order --after-session: the command's "when". */
    if (strcmp(cmd->cmd, "machine.out_of_order") == 0 && json_object_get(req, "after_session")) {
        json_object_del(req, "after_session");
        json_object_set_new(req, "when", json_string("after_session"));
    }
    /* usage correct: the amount may be negative, so it came as a string. */
    if (strcmp(cmd->cmd, "usage.correct") == 0) {
        const char *amount = json_string_value(json_object_get(req, "amount_cents"));
        int64_t cents;
        if (!amount || parse_int64(amount, -100000000, 100000000, &cents) < 0) {
            json_decref(req);
            return usage_error("'usage correct' needs --amount CENTS (a whole number, may be negative)");
        }
        json_object_set_new(req, "amount_cents", json_integer(cents));
    }
    if (strcmp(cmd->cmd, "statement") == 0) {
        const char *fmt = json_string_value(json_object_get(req, "format"));
        if (!json_object_get(req, "period")) {
            json_decref(req);
            return usage_error("'statement' needs --period YYYY-MM");
        }
        if (fmt && strcmp(fmt, "text") != 0 && strcmp(fmt, "csv") != 0 &&
            strcmp(fmt, "csv-fr") != 0 && strcmp(fmt, "json") != 0) {
            json_decref(req);
            return usage_error("--format is text, csv, csv-fr or json");
        }
        if (fmt && strcmp(fmt, "json") == 0)
            opt_json = true;
        else if (fmt)
            opt_format = strcmp(fmt, "csv") == 0 ? "csv" : strcmp(fmt, "csv-fr") == 0 ? "csv-fr" : "text";
        opt_summary = json_is_true(json_object_get(req, "summary"));
        json_object_del(req, "format");
        json_object_del(req, "summary");
    }
    /* Walk-up minutes given: walk-up is allowed (unless --booking-required says otherwise). */
    if (json_object_get(req, "walkup_free_minutes") && !json_object_get(req, "booking_required"))
        json_object_set_new(req, "booking_required", json_false());
    if (strcmp(cmd->cmd, "booking.add") == 0 && !json_object_get(req, "member")) {
        json_decref(req);
        return usage_error("'booking add' needs --for MEMBER");
    }
    if (strcmp(cmd->cmd, "card.remove") == 0 && !json_object_get(req, "card") &&
        !json_object_get(req, "uid")) {
        json_decref(req);
        return usage_error("'card remove' needs CARD_ID or --uid UID");
    }
    if (strcmp(cmd->cmd, "account.passwd") == 0 && (r = password_to_hash(req)) != 0) {
        json_decref(req);
        return r;
    }
    if (strcmp(cmd->cmd, "account.add") == 0 && !json_object_get(req, "role")) {
        json_decref(req);
        return usage_error("'account add' needs --role member|manager|custodian");
    }
    if (json_object_get(req, "picc_key_file") && (r = picc_key_from_file(req)) != 0) {
        json_decref(req);
        return r;
    }
    if ((strcmp(cmd->cmd, "card.enroll") == 0 || strcmp(cmd->cmd, "card.provision") == 0 ||
         strcmp(cmd->cmd, "card.deprovision") == 0) && !opt_json)
        fprintf(stderr, "%s the card on reader %s now%s...\n",
                strcmp(cmd->cmd, "card.enroll") == 0 ? "Tap" : "Place",
                json_string_value(json_object_get(req, "reader")),
                strcmp(cmd->cmd, "card.enroll") == 0 ? "" : ", and hold it there until this ends");
    /* Dates: "none" (or "never") takes a bound away. */
    for (const char *const *k = (const char *const[]){ "valid_from", "valid_until", NULL }; *k; k++) {
        const char *v = json_string_value(json_object_get(req, *k));
        if (v && (strcmp(v, "none") == 0 || strcmp(v, "never") == 0))
            json_object_set_new(req, *k, json_integer(0));
    }
    if (strcmp(cmd->cmd, "member.export") == 0) {
        const char *out = json_string_value(json_object_get(req, "out"));
        snprintf(export_path, sizeof(export_path), "%s", out ? out : "");
        json_object_del(req, "out");
    }

    find_socket(opt_socket, opt_config, sock_path, sizeof(sock_path));
    if (!opt_json && (strcmp(cmd->cmd, "sim.tap") == 0 || strcmp(cmd->cmd, "sim.remove") == 0)) {
        r = emulated_tap(sock_path, req, strcmp(cmd->cmd, "sim.remove") == 0);
        if (r != -ENOENT) {
            json_decref(req);
            return r;
        }
    }
    if (json_object_get(req, "desfire")) {
        json_decref(req);
        return usage_error("--desfire needs a libnfc reader with an emulator (a simulated reader "
                           "has no DESFire cards)");
    }
    reply = call(sock_path, req);
    if (!reply)
        return 1;
    if (!json_is_true(json_object_get(reply, "ok"))) {
        fprintf(stderr, "portierctl: %s\n", *jstr(reply, "error") ? jstr(reply, "error")
                                                                  : "the daemon reported an error");
        json_decref(reply);
        return 1;
    }
    /* A broken ledger is a failure for scripts too. */
    if (strcmp(cmd->cmd, "ledger.verify") == 0 && !json_is_true(json_object_get(reply, "intact")))
        r = 1;
    else
        r = 0;
    if (strcmp(cmd->cmd, "member.export") == 0) {
        r = write_export(json_object_get(reply, "export"), export_path);
    } else if (opt_json) {
        json_t *out = cmd->list_key ? json_object_get(reply, cmd->list_key) : reply;
        json_object_del(reply, "ok");
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printable(reply);
        /* Times on the site's clock (status and statements carry their zone). */
        if (strcmp(cmd->cmd, "status") != 0 && strcmp(cmd->cmd, "statement") != 0)
            site_clock(sock_path);
        /* member list: --json prints the list, its printer says how many there are. */
        bool whole = strcmp(cmd->cmd, "member.list") == 0;
        cmd->print(cmd->list_key && !whole ? json_object_get(reply, cmd->list_key) : reply);
    }
    json_decref(reply);
    return r;
}

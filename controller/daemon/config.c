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

#define STR(st, f) offsetof(struct st, f), sizeof(((struct st *)0)->f)
#define OFF(st, f) offsetof(struct st, f), 0

/* The order of enum lang (i18n.h). */
static const char *const languages[] = { "en", "fr", NULL };

static const struct config_key site_keys[] = {
    { "id", CT_NAME, STR(site_config, id), 0, 0, "site", NULL, 0,
      "Short identifier of this site in the consortium (letters, digits, `-`, `_`, `.`)." },
    { "name", CT_STRING, STR(site_config, name), 0, 0, "Portier", NULL, 0,
      "Human-readable name of the site, shown in status and on the web page." },
    { "timezone", CT_TIMEZONE, STR(site_config, timezone), 0, 0, "UTC", NULL, 0,
      "IANA time zone of the site (e.g. `Europe/Paris`). Schedules are local wall-clock "
      "times in this zone, so they follow daylight saving changes." },
    { "language", CT_ENUM, OFF(site_config, language), 0, 0, "en", languages, 0,
      "Language of the web page and e-mails when neither the account's preference nor the "
      "browser's asks for another: `en` or `fr`." },
    { "privacy_contact", CT_STRING, STR(site_config, privacy_contact), 0, 0, "", NULL, 0,
      "Who answers questions about personal data and requests to see, correct or erase it "
      "(an e-mail or postal address), shown on the public `/privacy` page." },
};

static const struct config_key daemon_keys[] = {
    { "state_dir", CT_PATH, STR(daemon_config, state_dir), 0, 0, "/var/lib/portier", NULL, 0,
      "Directory for the database and site secrets; created if missing (mode 0700)." },
    { "database", CT_PATH, STR(daemon_config, database), 0, 0, "", NULL, 0,
      "SQLite database file. Empty: `STATE_DIR/portier.db`." },
    { "control_socket", CT_PATH, STR(daemon_config, control_socket), 0, 0,
      "/run/portier/portierd.sock", NULL, 0,
      "Unix socket where `portierctl` talks to the daemon." },
    { "control_mode", CT_MODE, OFF(daemon_config, control_mode), 0, 0777, "0660", NULL, 0,
      "File mode of the control socket (octal). Whoever can write it administers the site." },
    { "control_group", CT_STRING, STR(daemon_config, control_group), 0, 0, "", NULL, 0,
      "Group owning the control socket. Empty: the daemon's group." },
    { "log_level", CT_LOGLEVEL, OFF(daemon_config, log_level), 0, 0, "info", log_levels, 0,
      "Least important messages logged: `debug`, `info`, `notice`, `warning` or `error`." },
    { "recent_taps", CT_INT, OFF(daemon_config, recent_taps), 1, 100, "10", NULL, 0,
      "How many recent taps `portierctl status` shows." },
    { "reader_worker", CT_PATH, STR(daemon_config, reader_worker), 0, 0, "", NULL, 0,
      "Program run for each `libnfc` reader. Empty: the path built into `portierd` "
      "(`/usr/libexec/portier/portier-reader` in the package), or `$PORTIER_READER_WORKER` "
      "when set." },
    { "desfire_key_file", CT_PATH, STR(daemon_config, desfire_key_file), 0, 0, "", NULL, 0,
      "The site's DESFire master key (32 hex digits): every card's keys are diversified from "
      "it, and only the reader workers ever see it. Created at first start (mode 0600) if "
      "missing. Empty: `STATE_DIR/desfire-master.key`. Back it up, encrypted, apart from the "
      "database: without it no provisioned card opens anything (docs/security.md)." },
};

static const struct config_key http_keys[] = {
    { "listen", CT_LISTEN, STR(http_config, listen), 0, 0, "", NULL, 0,
      "Address and port of the web page and API: `0.0.0.0:8080`, `127.0.0.1:8080` (behind a "
      "reverse proxy) or `[::]:8080`. Empty: no web server." },
    { "tls_cert", CT_PATH, STR(http_config, tls_cert), 0, 0, "", NULL, 0,
      "PEM certificate (chain) to serve HTTPS. Empty: plain HTTP (use it only on the site's "
      "own network or behind a TLS reverse proxy)." },
    { "tls_key", CT_PATH, STR(http_config, tls_key), 0, 0, "", NULL, 0,
      "PEM private key of `tls_cert`." },
    { "base_url", CT_STRING, STR(http_config, base_url), 0, 0, "", NULL, 0,
      "How people reach the page, e.g. `https://portier.example.org`: used in one-time links "
      "and calendar-feed addresses. Empty: the address the browser used." },
    { "session_hours", CT_INT, OFF(http_config, session_hours), 1, 720, "12", NULL, 0,
      "A login lasts this long." },
    { "max_connections", CT_INT, OFF(http_config, max_connections), 4, 1024, "64", NULL, 0,
      "Most connections served at once; more wait in the kernel's queue." },
    { "per_address_connections", CT_INT, OFF(http_config, per_address_connections), 1, 1024,
      "32", NULL, 0, "Most connections from one address at once." },
    { "header_timeout_seconds", CT_INT, OFF(http_config, header_timeout_seconds), 1, 120,
      "10", NULL, 0,
      "A request's headers must all arrive within this time; a client that sends them "
      "slower (a slowloris attack holding connections open) is cut off." },
    { "timeout_seconds", CT_INT, OFF(http_config, timeout_seconds), 5, 600, "30", NULL, 0,
      "An idle or slow connection is closed after this long." },
    { "max_body_kib", CT_INT, OFF(http_config, max_body_kib), 1, 1024, "64", NULL, 0,
      "Largest request body accepted (forms and JSON), in KiB; larger ones get 413." },
};

static const char *const open_froms[] = { "presence", "doors", NULL };

static const struct config_key spaceapi_keys[] = {
    { "enabled", CT_BOOL, OFF(spaceapi_config, enabled), 0, 0, "true", NULL, 0,
      "Serve `/spaceapi.json` (with the web server)." },
    { "url", CT_STRING, STR(spaceapi_config, url), 0, 0, "", NULL, 0,
      "The space's website. Empty: the web page's own address." },
    { "logo", CT_STRING, STR(spaceapi_config, logo), 0, 0, "", NULL, 0,
      "Address of the space's logo. Empty: the page's own icon." },
    { "email", CT_STRING, STR(spaceapi_config, email), 0, 0, "", NULL, 0,
      "Contact e-mail address published in the SpaceAPI document." },
    { "address", CT_STRING, STR(spaceapi_config, address), 0, 0, "", NULL, 0,
      "Postal address of the space." },
    { "lat", CT_DEGREES, STR(spaceapi_config, lat), -90, 90, "", NULL, 0,
      "Latitude in decimal degrees (north positive). Set both `lat` and `lon`, or neither." },
    { "lon", CT_DEGREES, STR(spaceapi_config, lon), -180, 180, "", NULL, 0,
      "Longitude in decimal degrees (east positive)." },
    { "open_from", CT_ENUM, OFF(spaceapi_config, open_from), 0, 0, "presence", open_froms, 0,
      "What `state.open` follows: `presence` (open while someone is checked in) or `doors` "
      "(open while a door's free-entry schedule lets anyone in)." },
    { "publish_people", CT_BOOL, OFF(spaceapi_config, publish_people), 0, 0, "false", NULL, 0,
      "Publish how many people are checked in (`sensors.people_now_present`). Off by "
      "default: a count of who is in says when a place is empty." },
};

static const struct config_key privacy_keys[] = {
    { "access_log_days", CT_INT, OFF(privacy_config, access_log_days), 0, 3650, "90", NULL, 0,
      "Days the access log (every tap, exit and door event) is kept; older rows are deleted "
      "every night, except those of a billing period not yet closed (the current one, and "
      "the previous one until it is closed). The CNIL's guidance for access control is "
      "three months. 0: kept forever." },
    { "presence_days", CT_INT, OFF(privacy_config, presence_days), 0, 3650, "365", NULL, 0,
      "Days check-ins and check-outs, machine sessions and past bookings are kept (billing "
      "keeps its own usage records, see docs/privacy.md). 0: kept forever." },
    { "account_inactive_days", CT_INT, OFF(privacy_config, account_inactive_days), 0, 3650,
      "730", NULL, 0,
      "A member's web account neither used nor created for this many days is deleted (staff "
      "accounts are not). 0: never." },
    { "prune_at", CT_HHMM, OFF(privacy_config, prune_at), 0, 0, "03:30", NULL, 0,
      "Local time of the nightly pass that deletes what is past its retention." },
};

static const struct config_key hardware_keys[] = {
    { "backend", CT_ENUM, OFF(hardware_config, backend), 0, 0, "gpiod", config_backends, 0,
      "Relay and input back-end: `gpiod` (kernel GPIO character device through libgpiod) "
      "or `sim` (simulated, driven by `portierctl sim`)." },
    { "chip", CT_STRING, STR(hardware_config, chip), 0, 0, "gpiochip0", NULL, 0,
      "GPIO chip used by lines given as a bare offset: a name (`gpiochip0`), a path, a "
      "number or a label (`pinctrl-bcm2711`)." },
    { "debounce_ms", CT_INT, OFF(hardware_config, debounce_ms), 0, 1000, "20", NULL, 0,
      "An input must be stable this long before a change counts (contacts bounce)." },
    { "input_bias", CT_ENUM, OFF(hardware_config, input_bias), 0, 0, "as-is", biases, 0,
      "Bias of input lines: `as-is`, `disable`, `pull-up` or `pull-down`." },
    { "sim_state_dir", CT_PATH, STR(hardware_config, sim_state_dir), 0, 0, "", NULL, 0,
      "`sim` back-end only: mirror each relay's state into a file `DIR/<door>.relay` "
      "(`1` energised, `0` not), for tests and the demo. Empty: off." },
};

static const struct config_key metering_keys[] = {
    { "day_starts", CT_HHMM, OFF(metering_config, day_starts), 0, 0, "04:00", NULL, 0,
      "Local time at which a billing day starts: a late evening belongs to the day it began "
      "(with 04:00, a tap at 02:30 on the 5th counts for the 4th)." },
    { "closing", CT_HHMM, OFF(metering_config, closing), 0, 1, "", NULL, 0,
      "Local time at which everyone still checked in is checked out (\"closing\"). Empty: "
      "never; members then check out at an exit reader." },
};

static const struct config_key mqtt_keys[] = {
    { "enabled", CT_BOOL, OFF(mqtt_config, enabled), 0, 0, "false", NULL, 0,
      "Publish events and take commands over MQTT." },
    { "host", CT_STRING, STR(mqtt_config, host), 0, 0, "127.0.0.1", NULL, 0,
      "Broker address. Prefer an IP address: a host name is resolved on the daemon's loop." },
    { "port", CT_INT, OFF(mqtt_config, port), 1, 65535, "1883", NULL, 0, "Broker port." },
    { "client_id", CT_STRING, STR(mqtt_config, client_id), 0, 0, "", NULL, 0,
      "MQTT client id. Empty: `portier-SITE`." },
    { "username", CT_STRING, STR(mqtt_config, username), 0, 0, "", NULL, 0,
      "User name for the broker. Empty: none." },
    { "password_file", CT_PATH, STR(mqtt_config, password_file), 0, 0, "", NULL, 0,
      "File holding the broker password (first line). Keep it mode 0640 root:portier." },
    { "tls_ca", CT_PATH, STR(mqtt_config, tls_ca), 0, 0, "", NULL, 0,
      "CA certificate file: enables TLS." },
    { "tls_cert", CT_PATH, STR(mqtt_config, tls_cert), 0, 0, "", NULL, 0,
      "Client certificate for TLS client authentication." },
    { "tls_key", CT_PATH, STR(mqtt_config, tls_key), 0, 0, "", NULL, 0,
      "Client key for TLS client authentication." },
    { "keepalive", CT_INT, OFF(mqtt_config, keepalive), 5, 3600, "30", NULL, 0,
      "Seconds between keep-alive pings; the broker declares us offline after 1.5 times this." },
    { "prefix", CT_NAME, STR(mqtt_config, prefix), 0, 0, "portier", NULL, 0,
      "First level of every topic: `PREFIX/SITE/...`." },
    { "outbox_max", CT_INT, OFF(mqtt_config, outbox_max), 100, 100000000, "1000000", NULL, 0,
      "Messages kept for the broker while it is unreachable, and for the webhooks (whether "
      "MQTT is on or not). When full, the oldest is dropped and the log says how many were." },
    { "command_clients", CT_STRING, STR(mqtt_config, command_clients), 0, 0, "", NULL, 0,
      "Comma-separated broker user names allowed to send commands on "
      "`PREFIX/SITE/cmd/USER`; the broker's ACL must let each user write only its own "
      "topic (`pattern write PREFIX/+/cmd/%u`), which portierd checks at each connection. "
      "Empty: none by name." },
    { "command_key_file", CT_PATH, STR(mqtt_config, command_key_file), 0, 0, "", NULL, 0,
      "File holding a shared command key; a command carrying it in `\"key\"` is accepted "
      "on any `cmd` topic. Empty: no key." },
    { "discovery", CT_BOOL, OFF(mqtt_config, discovery), 0, 0, "true", NULL, 0,
      "Publish Home Assistant discovery messages." },
    { "discovery_prefix", CT_NAME, STR(mqtt_config, discovery_prefix), 0, 0, "homeassistant",
      NULL, 0, "Home Assistant's discovery prefix." },
};

static const struct config_key consortium_keys[] = {
    { "enabled", CT_BOOL, OFF(consortium_config, enabled), 0, 0, "false", NULL, 0,
      "Send the signed ledger to the consortium's custodian over MQTT (needs `[mqtt] enabled`; "
      "see docs/consortium.md)." },
    { "batch_entries", CT_INT, OFF(consortium_config, batch_entries), 1, 256, "256", NULL, 0,
      "Ledger entries per batch published on `PREFIX/SITE/ledger/batch`." },
    { "window_entries", CT_INT, OFF(consortium_config, window_entries), 1, 65536, "1024", NULL,
      0, "Entries sent ahead of the custodian's acknowledgement; beyond it the site waits." },
    { "card_key_file", CT_PATH, STR(consortium_config, card_key_file), 0, 0, "", NULL, 0,
      "File holding the consortium's card key (32 bytes, the same at every site, e.g. from "
      "`head -c 32 /dev/urandom`). Set, it turns passports on: this site publishes its "
      "members' visiting rights and lets other sites' members in (docs/consortium.md section 7)." },
    { "desfire_key_file", CT_PATH, STR(consortium_config, desfire_key_file), 0, 0, "", NULL, 0,
      "The consortium's DESFire key, the same at every site: lines `GEN HEX` (a generation "
      "1..255 and 32 hex digits). The newest generation goes on cards provisioned here; the "
      "one before is still accepted at taps while cards are moved to the new one. Set, "
      "members' cards get the consortium application and other sites' members prove their "
      "cards here, even with their home site offline (docs/security.md). Empty: visitors by "
      "UID only." },
    { "sites_file", CT_PATH, STR(consortium_config, sites_file), 0, 0, "", NULL, 0,
      "The consortium's sites and public keys, one `NAME HEXKEY` line each (`portierctl site "
      "key` of each site); passports and visit notices of other sites are dropped." },
    { "visit_price_cents", CT_INT, OFF(consortium_config, visit_price_cents), 0, 10000000, "0",
      NULL, 0, "Price of a visiting day in cents, the same at every site: each visit recorded "
      "here is billed at it against the visitor's home site." },
    { "passport_days", CT_INT, OFF(consortium_config, passport_days), 1, 366, "7", NULL, 0,
      "Validity of the passports this site publishes; they are published again after half of "
      "it, so other sites keep admitting members while this site is offline this long." },
    { "passports_max", CT_INT, OFF(consortium_config, passports_max), 1, 1000000, "10000", NULL,
      0, "Other sites' passports kept at most (new ones beyond are dropped and logged)." },
    { "passport_scan_seconds", CT_INT, OFF(consortium_config, passport_scan_seconds), 1, 86400,
      "60", NULL, 0, "How often this site looks for changes of its members (suspension, cards, "
      "plans) to publish or revoke their passports." },
    { "resend_seconds", CT_INT, OFF(consortium_config, resend_seconds), 1, 86400, "30", NULL, 0,
      "Without a new acknowledgement for this long, entries sent but not acknowledged are sent "
      "again from the acknowledged one." },
};

static const struct config_key mail_keys[] = {
    { "enabled", CT_BOOL, OFF(mail_config, enabled), 0, 0, "false", NULL, 0,
      "Send e-mails: one-time links, bookings changed by a manager, reminders, trainings and "
      "memberships that end (see docs/mail.md)." },
    { "smtp_url", CT_STRING, STR(mail_config, smtp_url), 0, 0, "", NULL, 0,
      "The SMTP server: `smtp://HOST:587` (STARTTLS, see `starttls`), `smtps://HOST:465` "
      "(TLS from the start) or `smtp://127.0.0.1:25` (a local relay). Required when enabled." },
    { "starttls", CT_BOOL, OFF(mail_config, starttls), 0, 0, "true", NULL, 0,
      "With `smtp://`: send only after STARTTLS (the server's certificate checked). `false` "
      "for a relay on this machine or the site's own network that offers no TLS." },
    { "tls_ca", CT_PATH, STR(mail_config, tls_ca), 0, 0, "", NULL, 0,
      "CA certificate (PEM) that signed the server's certificate. Empty: the system's CAs." },
    { "username", CT_STRING, STR(mail_config, username), 0, 0, "", NULL, 0,
      "SMTP user name (AUTH). Empty: none." },
    { "password_file", CT_PATH, STR(mail_config, password_file), 0, 0, "", NULL, 0,
      "File whose first line is the SMTP password. Keep it mode 0640 root:portier." },
    { "from", CT_STRING, STR(mail_config, from), 0, 0, "", NULL, 0,
      "Sender address, e.g. `portier@example.org`; the display name is `[site] name`. "
      "Required when enabled." },
    { "reply_to", CT_STRING, STR(mail_config, reply_to), 0, 0, "", NULL, 0,
      "Address members' replies go to (the site's desk). Empty: `from`." },
    { "per_hour", CT_INT, OFF(mail_config, per_hour), 1, 10000, "100", NULL, 0,
      "Most messages sent in any hour; beyond it they wait (their state says so)." },
    { "queue_max", CT_INT, OFF(mail_config, queue_max), 10, 100000, "1000", NULL, 0,
      "Most messages waiting; when full, new messages are not queued and the log counts "
      "them." },
    { "max_attempts", CT_INT, OFF(mail_config, max_attempts), 1, 100, "20", NULL, 0,
      "Attempts before a message is marked failed (waits between attempts double from 30 s "
      "to 1 h; `portierctl mail retry ID` queues a failed one again)." },
    { "timeout_seconds", CT_INT, OFF(mail_config, timeout_seconds), 5, 600, "60", NULL, 0,
      "An attempt that has not finished after this long fails (and is tried again)." },
    { "reminder_minutes", CT_INT, OFF(mail_config, reminder_minutes), 0, 10080, "60", NULL, 0,
      "Remind members of a booking this long before it starts. 0: no reminders." },
    { "notice_days", CT_INT, OFF(mail_config, notice_days), 0, 90, "14", NULL, 0,
      "Tell members this long before a training or their membership ends. 0: never." },
    { "keep_days", CT_INT, OFF(mail_config, keep_days), 1, 3650, "30", NULL, 0,
      "Sent and failed messages are listed this long, then deleted." },
};

static const struct config_key webhook_keys[] = {
    { "url", CT_STRING, STR(webhook_config, url), 0, 0, NULL, NULL, 0,
      "Where events are POSTed: `https://HOST[:PORT]/PATH` (`http://` only on a network you "
      "trust). Required." },
    { "events", CT_STRING, STR(webhook_config, events), 0, 0, "*", NULL, 0,
      "Comma-separated event kinds to send, with `*` and `?` wildcards: `tap, alarm`, "
      "`door*`, `*` (every event; see docs/webhooks.md)." },
    { "secret", CT_STRING, STR(webhook_config, secret), 0, 0, "", NULL, 0,
      "Key of the HMAC-SHA256 signature, at least 16 characters. Set it or `secret_file`." },
    { "secret_file", CT_PATH, STR(webhook_config, secret_file), 0, 0, "", NULL, 0,
      "File whose first line is the secret (keep it mode 0640 root:portier)." },
    { "tls_ca", CT_PATH, STR(webhook_config, tls_ca), 0, 0, "", NULL, 0,
      "CA certificate (PEM) that signed the receiver's certificate. Empty: the system's CAs." },
    { "timeout_seconds", CT_INT, OFF(webhook_config, timeout_seconds), 1, 300, "10", NULL, 0,
      "A request without an answer after this long fails (and is tried again)." },
    { "in_flight", CT_INT, OFF(webhook_config, in_flight), 1, 32, "4", NULL, 0,
      "Requests sent at once to this receiver (events may then arrive out of order; each "
      "carries its sequence number)." },
};

static const struct config_key reader_keys[] = {
    { "driver", CT_ENUM, OFF(reader_config, driver), 0, 0, "sim", config_reader_drivers, 0,
      "`libnfc` (a PN532 or ACR122U, polled by a `portier-reader` worker process) or `sim` "
      "(fed by `portierctl sim tap`)." },
    { "connstring", CT_STRING, STR(reader_config, connstring), 0, 0, "", NULL, 0,
      "libnfc connection string, e.g. `pn532_uart:/dev/serial0`, `pn532_i2c:/dev/i2c-1`, "
      "`pn532_spi:/dev/spidev0.0`, `acr122_usb`. Required for `libnfc`." },
    { "poll_ms", CT_INT, OFF(reader_config, poll_ms), 5, 1000, "30", NULL, 0,
      "Pause between two polls of the reader. Detection latency is about this plus the "
      "reader's own few milliseconds." },
    { "debounce_ms", CT_INT, OFF(reader_config, debounce_ms), 0, 10000, "500", NULL, 0,
      "A card held on the reader taps once; the same card taps again only after it has "
      "been away this long." },
    { "heartbeat_timeout_ms", CT_INT, OFF(reader_config, heartbeat_timeout_ms), 1500, 60000,
      "5000", NULL, 0,
      "A worker silent this long is considered hung, killed and restarted (it reports "
      "every second)." },
    { "backoff_max_seconds", CT_INT, OFF(reader_config, backoff_max_seconds), 1, 3600, "30",
      NULL, 0,
      "Restarts of a failing reader back off exponentially from 0.25 s up to this." },
    { "reset_line", CT_LINE, OFF(reader_config, reset_line), 0, 0, "", NULL, 0,
      "Optional GPIO line wired to the reader's reset pin (PN532 RSTPDN), pulsed before each "
      "restart." },
    { "reset_line_active_low", CT_BOOL, OFF(reader_config, reset_line_active_low), 0, 0,
      "true", NULL, 0, "The reset pin resets when low (true for the PN532's RSTPDN)." },
    { "emulator", CT_PATH, STR(reader_config, emulator), 0, 0, "", NULL, 0,
      "Demo and tests: control socket of the `pn532-emu` standing in for this reader; "
      "`portierctl sim tap` then inserts the card into the emulator, so the tap goes through "
      "real libnfc. Empty on real sites." },
};

static const struct config_key door_keys[] = {
    { "reader", CT_NAME, STR(door_config, reader), 0, 0, NULL, NULL, 0,
      "Name of the `[reader NAME]` section whose taps open this door (and check members "
      "in). Required." },
    { "exit_reader", CT_STRING, STR(door_config, exit_reader), 0, 0, "", NULL, 0,
      "Optional `[reader NAME]` on the inside: its taps open the door too and check the "
      "member out." },
    { "relay", CT_LINE, OFF(door_config, relay), 0, 0, NULL, NULL, 0,
      "Line of the lock relay, `[CHIP:]OFFSET`. Required." },
    { "relay_active_low", CT_BOOL, OFF(door_config, relay_active_low), 0, 0, "false", NULL, 0,
      "The relay board energises its coil when the line is low." },
    { "contact", CT_LINE, OFF(door_config, contact), 0, 0, "", NULL, 0,
      "Line of the door contact (active = door open). Empty: no contact, no alarms." },
    { "contact_active_low", CT_BOOL, OFF(door_config, contact_active_low), 0, 0, "false",
      NULL, 0, "The contact line reads low when the door is open." },
    { "exit_button", CT_LINE, OFF(door_config, exit_button), 0, 0, "", NULL, 0,
      "Line of the request-to-exit button (active = pressed). Empty: none." },
    { "exit_button_active_low", CT_BOOL, OFF(door_config, exit_button_active_low), 0, 0,
      "false", NULL, 0, "The exit button line reads low when pressed (button to ground)." },
    { "unlock_seconds", CT_INT, OFF(door_config, unlock_seconds), 1, 600, "5", NULL, 0,
      "How long a granted tap or the exit button unlocks the door." },
    { "held_open_seconds", CT_INT, OFF(door_config, held_open_seconds), 0, 3600, "30", NULL,
      0, "Raise the held-open alarm when the door stays open this long. 0: never." },
    { "fail", CT_ENUM, OFF(door_config, fail), 0, 0, "secure", fail_modes, 0,
      "`secure`: the relay energises to unlock (a strike; locked without power). `safe`: the "
      "relay energises to lock (a maglock; open without power). On stop and crash the relay "
      "is de-energised." },
    { "zone", CT_NAME, STR(door_config, zone), 0, 0, "main", NULL, 0,
      "Access zone of the door; plans list the zones their members may enter." },
    { "card_security", CT_ENUM, OFF(door_config, card_security), 0, 0, "desfire-or-uid",
      config_card_securities, 0,
      "What a card must prove: `desfire` (its DESFire key: a copied UID opens nothing), "
      "`uid` (its UID alone, as any card or copy can show), or `desfire-or-uid` (migration: "
      "a card provisioned as DESFire must prove its key, a card enrolled by UID still opens; "
      "`portierctl card report` lists who still carries one). See docs/security.md." },
    { "free_entry", CT_SCHEDULE, OFF(door_config, free_entry), 0, 0, "never", NULL,
      offsetof(struct door_config, free_entry_text),
      "Weekly windows when the door stays unlocked for everyone, e.g. `Mon-Fri 09:00-12:00`." },
    { "relock_on_close", CT_BOOL, OFF(door_config, relock_on_close), 0, 0, "true", NULL, 0,
      "Lock as soon as the door closes after being opened, instead of waiting for the end "
      "of `unlock_seconds`." },
};

static const struct config_key machine_keys[] = {
    { "reader", CT_NAME, STR(machine_config, reader), 0, 0, NULL, NULL, 0,
      "Name of the `[reader NAME]` section at the machine. Required." },
    { "relay", CT_LINE, OFF(machine_config, relay), 0, 0, "", NULL, 0,
      "Line of the relay driving the machine's power contactor, `[CHIP:]OFFSET`. "
      "Energised = power on; de-energised at start, on stop and after a crash. Set `relay` "
      "or `power`, not both." },
    { "power", CT_DEVICE, OFF(machine_config, power), 0, 0, "", NULL, 0,
      "A network relay switching the machine instead of a GPIO relay, over MQTT (needs "
      "`[mqtt] enabled`): `shelly:TOPIC[:SWITCH]` (a Shelly Gen2+ device's MQTT topic "
      "prefix, switch 0 by default) or `tasmota:TOPIC[:RELAY]` (Tasmota's `%topic%`, "
      "relay 1 by default). See docs/machines.md, network relays." },
    { "power_confirm_ms", CT_INT, OFF(machine_config, power_confirm_ms), 100, 60000, "3000",
      NULL, 0, "A network relay must confirm a switch within this time, or it is a relay "
      "fault (an alarm; the request is repeated until the device answers)." },
    { "meter", CT_STRING, STR(machine_config, meter), 0, 0, "", NULL, 0,
      "Name of a `[meter NAME]` section measuring the machine's power and energy. Empty: "
      "the `power` device's own readings, if it has any." },
    { "running_power_w", CT_INT, OFF(machine_config, running_power_w), 0, 100000, "0", NULL, 0,
      "The machine counts as running while its power is at least this many watts (from the "
      "meter or the power device), instead of a `running` line. 0: not from power." },
    { "running_power_seconds", CT_INT, OFF(machine_config, running_power_seconds), 0, 3600,
      "10", NULL, 0, "How long the power must stay above (or below) `running_power_w` before "
      "the machine counts as running (or idle): a pause in a job is not idle." },
    { "trainer_window_seconds", CT_INT, OFF(machine_config, trainer_window_seconds), 0, 300,
      "20", NULL, 0, "Training at the machine: after a trainer's tap (with no session of "
      "theirs running), the next card tapped within this time is granted the machine's "
      "training. 0: off." },
    { "relay_active_low", CT_BOOL, OFF(machine_config, relay_active_low), 0, 0, "false", NULL, 0,
      "The relay board energises its coil when the line is low." },
    { "running", CT_LINE, OFF(machine_config, running), 0, 0, "", NULL, 0,
      "Line of the \"machine running\" sensor (a current sensor's output; active = running). "
      "Empty: none." },
    { "running_active_low", CT_BOOL, OFF(machine_config, running_active_low), 0, 0, "false",
      NULL, 0, "The running sensor reads low while the machine runs." },
    { "warn", CT_LINE, OFF(machine_config, warn), 0, 0, "", NULL, 0,
      "Line of a buzzer or lamp, energised while the session is about to end. Empty: none." },
    { "warn_active_low", CT_BOOL, OFF(machine_config, warn_active_low), 0, 0, "false", NULL, 0,
      "The warning output is active when low." },
    { "zone", CT_NAME, STR(machine_config, zone), 0, 0, "fablab", NULL, 0,
      "Access zone of the machine; the member's plan must include it." },
    { "card_security", CT_ENUM, OFF(machine_config, card_security), 0, 0, "desfire-or-uid",
      config_card_securities, 0,
      "What a card must prove at this machine: `desfire`, `uid` or `desfire-or-uid`, as for "
      "doors." },
    { "warn_minutes", CT_INT, OFF(machine_config, warn_minutes), 0, 60, "5", NULL, 0,
      "Warn this long before the session's end (booking end, next booking, closing time)." },
    { "grace_minutes", CT_INT, OFF(machine_config, grace_minutes), 0, 60, "5", NULL, 0,
      "Keep power this long after the end, so the member can finish or tap to extend." },
    { "handover_seconds", CT_INT, OFF(machine_config, handover_seconds), 0, 600, "60", NULL, 0,
      "After a member taps to finish, power stays on this long so another qualified member "
      "can take over with a tap. 0: power off at once." },
    { "idle_off_minutes", CT_INT, OFF(machine_config, idle_off_minutes), 0, 240, "0", NULL, 0,
      "With a running sensor: power off when the machine has been idle this long. 0: never." },
    { "never_cut_while_running", CT_BOOL, OFF(machine_config, never_cut_while_running), 0, 0,
      "false", NULL, 0,
      "Do not cut power while the running sensor says the machine runs (a print, a cut): "
      "wait until it stops, up to `hard_max_minutes`." },
    { "hard_max_minutes", CT_INT, OFF(machine_config, hard_max_minutes), 1, 10080, "720", NULL,
      0, "Absolute limit of one session, whatever the sensor says." },
};

static const struct config_key meter_keys[] = {
    { "device", CT_DEVICE, OFF(meter_config, device), 0, 0, NULL, NULL, 0,
      "The power meter: `shelly:TOPIC[:SWITCH]` or `tasmota:TOPIC[:RELAY]`, as a machine's "
      "`power`. Required. Only its readings are used: it is never switched." },
};

struct section_kind {
    const char *name;
    bool named;
    const struct config_key *keys;
    size_t n_keys;
    const char *help;
};

enum { SEC_SITE, SEC_DAEMON, SEC_HARDWARE, SEC_METERING, SEC_MQTT, SEC_HTTP, SEC_SPACEAPI,
       SEC_CONSORTIUM, SEC_PRIVACY, SEC_MAIL, SEC_READER, SEC_DOOR, SEC_MACHINE, SEC_METER,
       SEC_WEBHOOK, SEC__MAX };

static const struct section_kind sections[SEC__MAX] = {
    [SEC_SITE] = { "site", false, site_keys, ARRAY_SIZE(site_keys),
                   "Who and where this controller is." },
    [SEC_DAEMON] = { "daemon", false, daemon_keys, ARRAY_SIZE(daemon_keys),
                     "Files, control socket and logging of `portierd`." },
    [SEC_HARDWARE] = { "hardware", false, hardware_keys, ARRAY_SIZE(hardware_keys),
                       "How relays and inputs are driven." },
    [SEC_METERING] = { "metering", false, metering_keys, ARRAY_SIZE(metering_keys),
                       "Billing days and automatic check-out." },
    [SEC_MQTT] = { "mqtt", false, mqtt_keys, ARRAY_SIZE(mqtt_keys),
                   "Events out, commands in, Home Assistant discovery (see docs/mqtt.md)." },
    [SEC_HTTP] = { "http", false, http_keys, ARRAY_SIZE(http_keys),
                   "The web page, the JSON API and the feeds (see docs/http-api.md)." },
    [SEC_SPACEAPI] = { "spaceapi", false, spaceapi_keys, ARRAY_SIZE(spaceapi_keys),
                       "The public SpaceAPI v15 document at `/spaceapi.json`." },
    [SEC_CONSORTIUM] = { "consortium", false, consortium_keys, ARRAY_SIZE(consortium_keys),
                         "The site's part in a consortium: its ledger sent to the custodian "
                         "(see docs/consortium.md)." },
    [SEC_PRIVACY] = { "privacy", false, privacy_keys, ARRAY_SIZE(privacy_keys),
                      "How long personal data is kept (see docs/privacy.md)." },
    [SEC_MAIL] = { "mail", false, mail_keys, ARRAY_SIZE(mail_keys),
                   "E-mail to members through an SMTP server (see docs/mail.md)." },
    [SEC_READER] = { "reader", true, reader_keys, ARRAY_SIZE(reader_keys),
                     "One section per card reader, `[reader NAME]`." },
    [SEC_DOOR] = { "door", true, door_keys, ARRAY_SIZE(door_keys),
                   "One section per door, `[door NAME]`." },
    [SEC_MACHINE] = { "machine", true, machine_keys, ARRAY_SIZE(machine_keys),
                      "One section per machine with a power interlock, `[machine NAME]`: its "
                      "wiring and timings. Booking rules and the training it requires are set "
                      "by managers with `portierctl machine set`." },
    [SEC_METER] = { "meter", true, meter_keys, ARRAY_SIZE(meter_keys),
                    "One section per network power meter, `[meter NAME]`, that machines "
                    "name in their `meter` key (a device other than their `power` one)." },
    [SEC_WEBHOOK] = { "webhook", true, webhook_keys, ARRAY_SIZE(webhook_keys),
                      "One section per receiver of events over HTTPS, `[webhook NAME]`: each "
                      "event POSTed as signed JSON (see docs/webhooks.md)." },
};

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

static void add_error(struct config_errors *errors, const char *file, unsigned line,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct config_errors *errors, const char *file, unsigned line,
                      const char *fmt, ...)
{
    char text[200];
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

static const char *key_set(const struct config_key *k, void *obj, const char *value,
                           char *why, size_t why_n)
{
    char *field = (char *)obj + k->offset;
    int64_t n;
    bool b;
    int idx;

    switch (k->type) {
    case CT_STRING:
        if (strlcpy_checked(field, value, k->size) < 0) {
            snprintf(why, why_n, "value too long for %s (at most %zu characters)", k->name,
                     k->size - 1);
            return why;
        }
        /* Names reach JSON (status, SpaceAPI, MQTT), which must be UTF-8. */
        utf8_sanitize(field);
        if (strcmp(field, value) != 0) {
            snprintf(why, why_n, "%s is not valid UTF-8 text (save the file as UTF-8)", k->name);
            return why;
        }
        /* Nor terminal escapes: names are printed by portierctl and shown on pages. */
        for (const unsigned char *p = (const unsigned char *)value; *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(why, why_n, "%s has a control character", k->name);
                return why;
            }
        return NULL;
    case CT_NAME:
        if (!name_is_valid(value)) {
            snprintf(why, why_n, "%s must be 1 to 31 letters, digits, '-', '_' or '.'",
                     k->name);
            return why;
        }
        strlcpy_checked(field, value, k->size);
        return NULL;
    case CT_PATH:
        if (*value && value[0] != '/') {
            snprintf(why, why_n, "%s must be an absolute path", k->name);
            return why;
        }
        if (strlcpy_checked(field, value, k->size) < 0) {
            snprintf(why, why_n, "path too long for %s (at most %zu characters)", k->name,
                     k->size - 1);
            return why;
        }
        return NULL;
    case CT_INT:
        if (parse_int64(value, INT64_MIN, INT64_MAX, &n) < 0) {
            snprintf(why, why_n, "%s must be an integer", k->name);
            return why;
        }
        if (n < k->min || n > k->max) {
            snprintf(why, why_n, "%s = %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
                     k->name, n, k->min, k->max);
            return why;
        }
        *(int64_t *)field = n;
        return NULL;
    case CT_BOOL:
        if (parse_bool(value, &b) < 0) {
            snprintf(why, why_n, "%s must be true or false", k->name);
            return why;
        }
        *(bool *)field = b;
        return NULL;
    case CT_ENUM:
    case CT_LOGLEVEL: {
        char list[128];
        idx = enum_index(k->choices, value);
        if (idx < 0) {
            choices_text(k->choices, list, sizeof(list));
            snprintf(why, why_n, "%s must be one of: %s", k->name, list);
            return why;
        }
        *(int *)field = k->type == CT_ENUM ? idx : log_level_from_string(value);
        return NULL;
    }
    case CT_SCHEDULE: {
        const char *err = "invalid schedule";
        if (schedule_parse(value, (struct schedule *)field, &err) < 0) {
            snprintf(why, why_n, "%s: %s", k->name, err);
            return why;
        }
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
        if (strncmp(value, "shelly:", 7) == 0 || strncmp(value, "tasmota:", 8) == 0) {
            snprintf(why, why_n, "%s must be a GPIO line: a network relay is a machine's "
                     "`power` (doors and outputs stay on GPIO: they must not depend on Wi-Fi)",
                     k->name);
            return why;
        }
        if (line_spec_parse(value, "", spec) < 0) {
            snprintf(why, why_n, "%s must be a line as OFFSET or CHIP:OFFSET (0-511)", k->name);
            return why;
        }
        if (!strchr(value, ':'))
            spec->chip[0] = '\0';
        return NULL;
    }
    case CT_MODE: {
        char *end;
        long m = strtol(value, &end, 8);
        if (!*value || *end || m < 0 || m > 0777) {
            snprintf(why, why_n, "%s must be an octal mode such as 0660", k->name);
            return why;
        }
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
            snprintf(why, why_n, "%s must be a time of day as HH:MM%s", k->name,
                     k->max == 1 ? ", or empty" : "");
            return why;
        }
        *(int64_t *)field = h * 60 + mi;
        return NULL;
    }
    case CT_LISTEN:
        if (*value && listen_parse(value, NULL, 0, NULL) < 0) {
            snprintf(why, why_n, "%s must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080", k->name);
            return why;
        }
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
            snprintf(why, why_n, "%s must be a decimal number of degrees from %" PRId64 " to %" PRId64,
                     k->name, k->min, k->max);
            return why;
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
        if (device_spec_parse(value, dev) < 0) {
            snprintf(why, why_n, "%s must be shelly:TOPIC[:SWITCH] or tasmota:TOPIC[:RELAY] "
                     "(TOPIC: 1 to 63 letters, digits, '-', '_', '.' or '/')", k->name);
            return why;
        }
        return NULL;
    }
    case CT_TIMEZONE:
        if (!timezone_is_valid(value)) {
            snprintf(why, why_n, "unknown time zone '%.60s' (expected a name such as "
                     "Europe/Paris from /usr/share/zoneinfo)", value);
            return why;
        }
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
    case SEC_SPACEAPI: return &cfg->spaceapi;
    case SEC_CONSORTIUM: return &cfg->consortium;
    case SEC_PRIVACY:  return &cfg->privacy;
    case SEC_MAIL:     return &cfg->mail;
    case SEC_WEBHOOK:  return &cfg->webhooks[cfg->n_webhooks - 1];
    case SEC_READER:   return &cfg->readers[cfg->n_readers - 1];
    case SEC_DOOR:     return &cfg->doors[cfg->n_doors - 1];
    case SEC_MACHINE:  return &cfg->machines[cfg->n_machines - 1];
    case SEC_METER:    return &cfg->meters[cfg->n_meters - 1];
    }
    return NULL;
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
        add_error(st->errors, st->file, st->line,
                  "unknown section [%s] (expected site, daemon, hardware, metering, mqtt, http, "
                  "spaceapi, consortium, privacy, mail, reader NAME, door NAME, machine NAME, "
                  "meter NAME or webhook NAME)",
                  kind_name);
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
        if ((kind == SEC_DOOR && config_find_door(st->cfg, name)) ||
            (kind == SEC_READER && config_find_reader(st->cfg, name)) ||
            (kind == SEC_MACHINE && config_find_machine(st->cfg, name)) ||
            (kind == SEC_METER && config_find_meter(st->cfg, name)) ||
            (kind == SEC_WEBHOOK && config_find_webhook(st->cfg, name))) {
            add_error(st->errors, st->file, st->line, "duplicate section [%s %s]", kind_name,
                      name);
            return;
        }
        if (kind == SEC_DOOR) {
            if (st->cfg->n_doors == CONFIG_MAX_DOORS) {
                add_error(st->errors, st->file, st->line, "too many doors (at most %d)",
                          CONFIG_MAX_DOORS);
                return;
            }
            st->cfg->n_doors++;
        } else if (kind == SEC_MACHINE) {
            if (st->cfg->n_machines == CONFIG_MAX_MACHINES) {
                add_error(st->errors, st->file, st->line, "too many machines (at most %d)",
                          CONFIG_MAX_MACHINES);
                return;
            }
            st->cfg->n_machines++;
        } else if (kind == SEC_METER) {
            if (st->cfg->n_meters == CONFIG_MAX_METERS) {
                add_error(st->errors, st->file, st->line, "too many meters (at most %d)",
                          CONFIG_MAX_METERS);
                return;
            }
            st->cfg->n_meters++;
        } else if (kind == SEC_WEBHOOK) {
            if (st->cfg->n_webhooks == CONFIG_MAX_WEBHOOKS) {
                add_error(st->errors, st->file, st->line, "too many webhooks (at most %d)",
                          CONFIG_MAX_WEBHOOKS);
                return;
            }
            st->cfg->n_webhooks++;
        } else {
            if (st->cfg->n_readers == CONFIG_MAX_READERS) {
                add_error(st->errors, st->file, st->line, "too many readers (at most %d)",
                          CONFIG_MAX_READERS);
                return;
            }
            st->cfg->n_readers++;
        }
    }
    st->kind = kind;
    st->obj = section_object(st->cfg, kind);
    if (sections[kind].named) {
        /* name is the first member of both reader_config and door_config, line the second */
        if (kind == SEC_DOOR) {
            struct door_config *d = st->obj;
            memset(d, 0, sizeof(*d));
            strlcpy_checked(d->name, name, sizeof(d->name));
            d->line = st->line;
        } else if (kind == SEC_MACHINE) {
            struct machine_config *m = st->obj;
            memset(m, 0, sizeof(*m));
            strlcpy_checked(m->name, name, sizeof(m->name));
            m->line = st->line;
        } else if (kind == SEC_METER) {
            struct meter_config *mt = st->obj;
            memset(mt, 0, sizeof(*mt));
            strlcpy_checked(mt->name, name, sizeof(mt->name));
            mt->line = st->line;
        } else if (kind == SEC_WEBHOOK) {
            struct webhook_config *w = st->obj;
            memset(w, 0, sizeof(*w));
            strlcpy_checked(w->name, name, sizeof(w->name));
            w->line = st->line;
        } else {
            struct reader_config *r = st->obj;
            memset(r, 0, sizeof(*r));
            strlcpy_checked(r->name, name, sizeof(r->name));
            r->line = st->line;
        }
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

static bool events_valid(const char *events)
{
    const char *p = events;
    size_t words = 0;

    while (*p) {
        size_t n;
        p += strspn(p, " ,");
        n = strcspn(p, " ,");
        if (!n)
            break;
        for (size_t i = 0; i < n; i++)
            if (!(isalnum((unsigned char)p[i]) || strchr("_.-*?", p[i])))
                return false;
        words++;
        p += n;
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
    for (unsigned i = 0; i < c->n_doors; i++)
        if (strcmp(c->doors[i].name, name) == 0)
            return &c->doors[i];
    return NULL;
}

const struct machine_config *config_find_machine(const struct config *c, const char *name)
{
    for (unsigned i = 0; i < c->n_machines; i++)
        if (strcmp(c->machines[i].name, name) == 0)
            return &c->machines[i];
    return NULL;
}

const struct webhook_config *config_find_webhook(const struct config *c, const char *name)
{
    for (unsigned i = 0; i < c->n_webhooks; i++)
        if (strcmp(c->webhooks[i].name, name) == 0)
            return &c->webhooks[i];
    return NULL;
}

bool config_events_match(const char *events, const char *kind)
{
    const char *p = events;
    char pattern[64];

    while (*p) {
        size_t n;
        p += strspn(p, " ,");
        n = strcspn(p, " ,");
        if (!n)
            break;
        if (n < sizeof(pattern)) {
            memcpy(pattern, p, n);
            pattern[n] = '\0';
            if (fnmatch(pattern, kind, 0) == 0)
                return true;
        }
        p += n;
    }
    return false;
}

const struct meter_config *config_find_meter(const struct config *c, const char *name)
{
    for (unsigned i = 0; i < c->n_meters; i++)
        if (strcmp(c->meters[i].name, name) == 0)
            return &c->meters[i];
    return NULL;
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
    for (unsigned i = 0; i < c->n_readers; i++)
        if (strcmp(c->readers[i].name, name) == 0)
            return &c->readers[i];
    return NULL;
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

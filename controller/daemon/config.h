/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* config: portierd's INI configuration, described by declarative key tables.
 *
 * Each section kind ([site], [daemon], [mail], [reader NAME], [webhook NAME]...) has a table
 * of keys: name, type, bounds, default and help. The same tables parse files, apply
 * defaults, check values and print the reference in docs/configuration.md, so the docs
 * cannot drift from the code. Errors read "FILE:LINE: message"; unknown sections and keys,
 * duplicates and out-of-range values are errors. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gpio_line.h"
#include "input.h"
#include "schedule.h"

#define CONFIG_NAME_MAX 32
#define CONFIG_MAX_DOORS 32
#define CONFIG_MAX_READERS 128
#define CONFIG_MAX_MACHINES 64
#define CONFIG_MAX_METERS 64
#define CONFIG_DEVICE_ID_MAX 64
#define CONFIG_MAX_ERRORS 32
#define CONFIG_MAX_WEBHOOKS 8

enum door_fail_mode {
    DOOR_FAIL_SECURE,       /* strike: energised = unlocked; stays locked without power */
    DOOR_FAIL_SAFE,         /* maglock: energised = locked; opens without power */
};

struct site_config {
    char id[CONFIG_NAME_MAX];
    char name[96];
    char timezone[64];
    int language;               /* enum lang (i18n.h) */
    char privacy_contact[160];  /* who answers data subjects' requests (the /privacy page) */
};

struct daemon_config {
    char state_dir[256];
    char database[256];         /* empty: STATE_DIR/portier.db */
    char control_socket[108];
    unsigned control_mode;
    char control_group[CONFIG_NAME_MAX];
    int log_level;
    int64_t realtime_priority;  /* SCHED_FIFO priority of the loop and reader workers; 0: off */
    int64_t recent_taps;
    char reader_worker[256];    /* empty: portier-reader next to portierd */
    char desfire_key_file[256]; /* empty: STATE_DIR/desfire-master.key */
};

struct metering_config {
    int64_t day_starts;         /* minutes after midnight when a billing day starts */
    int64_t closing;            /* minutes after midnight of the automatic check-out; -1: none */
};

struct mqtt_config {
    bool enabled;
    char host[128];
    int64_t port;
    char client_id[64];         /* empty: portier-SITE */
    char username[64];
    char password_file[256];
    char tls_ca[256], tls_cert[256], tls_key[256];
    int64_t keepalive;
    char prefix[64];
    int64_t outbox_max;
    char command_clients[256];  /* comma-separated broker user names allowed to send commands */
    char command_key_file[256];
    bool discovery;
    char discovery_prefix[64];
};

struct http_config {
    char listen[80];            /* "HOST:PORT"; empty: no web server */
    char host[64];              /* parsed from listen */
    int64_t port;
    char tls_cert[256], tls_key[256];
    char base_url[128];
    int64_t session_hours;
    int64_t max_connections;
    int64_t per_address_connections;
    int64_t timeout_seconds;
    int64_t header_timeout_seconds;
    int64_t max_body_kib;
};

/* The web page's own choices ([web]); the server's are in [http]. */
struct web_config {
    bool kiosk_names;           /* entrance screens name who booked */
    int64_t kiosk_max_screens;  /* live entrance screens at once */
};

enum spaceapi_open_from { SPACEAPI_OPEN_PRESENCE, SPACEAPI_OPEN_DOORS };

struct spaceapi_config {
    bool enabled;
    char url[128];
    char logo[128];
    char email[96];
    char address[160];
    char lat[24], lon[24];      /* decimal degrees as written; empty: no coordinates */
    int open_from;              /* enum spaceapi_open_from */
    bool publish_people;        /* publish how many people are in (opt-in) */
};

struct privacy_config {
    int64_t access_log_days;        /* access log rows older than this are deleted; 0: kept */
    int64_t presence_days;          /* presences, machine sessions, bookings; 0: kept */
    int64_t account_inactive_days;  /* member accounts unused this long are deleted; 0: kept */
    int64_t prune_at;               /* minutes after local midnight of the daily pass */
};

struct mail_config {
    bool enabled;
    char smtp_url[160];         /* smtp://HOST[:PORT] or smtps://HOST[:PORT] */
    bool starttls;              /* smtp://: refuse to send unless STARTTLS succeeds */
    char tls_ca[256];           /* empty: the system's CAs */
    char username[96];
    char password_file[256];
    char from[128];
    char reply_to[128];
    int64_t per_hour;
    int64_t queue_max;
    int64_t max_attempts;
    int64_t timeout_seconds;
    int64_t reminder_minutes;   /* 0: no booking reminders */
    int64_t notice_days;        /* trainings and memberships ending: 0: no notices */
    int64_t keep_days;
};

struct webhook_config {
    char name[CONFIG_NAME_MAX];
    unsigned line;              /* of the section header */
    char url[256];
    char events[256];           /* comma-separated kinds, with * and ? wildcards */
    char secret[128];
    char secret_file[256];
    char tls_ca[256];
    int64_t timeout_seconds;
    int64_t in_flight;
};

struct consortium_config {
    bool enabled;
    int64_t batch_entries;      /* ledger entries per batch sent to the custodian */
    int64_t window_entries;     /* entries sent beyond the custodian's acknowledgement */
    int64_t resend_seconds;     /* no acknowledgement this long: send again from it */
    char card_key_file[256];    /* the consortium's card key: passports on when set */
    char desfire_key_file[256]; /* "GEN HEX" lines: the consortium DESFire key; empty: none */
    char sites_file[256];       /* "NAME HEXKEY" lines: the sites whose passports count */
    int64_t visit_price_cents;  /* a visiting day, billed against the visitor's home */
    int64_t passport_days;      /* validity of the passports this site publishes */
    int64_t passports_max;      /* other sites' passports cached at most */
    int64_t passport_scan_seconds;  /* how often to look for members' changes */
};

struct hardware_config {
    int backend;                /* index into config_backends: 0 sim, 1 gpiod */
    char chip[GPIO_CHIP_NAME_MAX];
    int64_t debounce_ms;
    int input_bias;             /* enum input_bias */
    char sim_state_dir[256];
};

struct reader_config {
    char name[CONFIG_NAME_MAX];
    unsigned line;              /* of the section header */
    int driver;                 /* index into config_reader_drivers */
    char connstring[128];
    int64_t poll_ms;
    int64_t debounce_ms;
    int64_t heartbeat_timeout_ms;
    int64_t backoff_max_seconds;
    struct line_spec reset_line;
    bool reset_line_active_low;
    char emulator[108];         /* control socket of a pn532-emu standing in for it */
};

struct door_config {
    char name[CONFIG_NAME_MAX];
    unsigned line;
    char reader[CONFIG_NAME_MAX];
    unsigned reader_line;
    char exit_reader[CONFIG_NAME_MAX];  /* empty: none; its taps check members out */
    struct line_spec relay;
    bool relay_active_low;
    struct line_spec contact;
    bool contact_active_low;
    struct line_spec exit_button;
    bool exit_button_active_low;
    int64_t unlock_seconds;
    int64_t held_open_seconds;
    int fail;                   /* enum door_fail_mode */
    char zone[CONFIG_NAME_MAX];
    int card_security;          /* enum card_security (policy.h) */
    struct schedule free_entry;
    char free_entry_text[SCHEDULE_MAX_TEXT];
    bool relock_on_close;
};

/* A network device on the MQTT broker: "shelly:TOPIC[:SWITCH]" (a Shelly Gen2+ device, its
 * MQTT topic prefix, switch id 0 by default) or "tasmota:TOPIC[:RELAY]" (Tasmota firmware,
 * its %topic%, relay 1 by default). */
enum device_kind { DEVICE_NONE, DEVICE_SHELLY, DEVICE_TASMOTA };

struct device_spec {
    int kind;                           /* enum device_kind */
    char id[CONFIG_DEVICE_ID_MAX];
    unsigned channel;
};

/* Parse a device as above. 0 or -EINVAL (*ret untouched). */
int device_spec_parse(const char *text, struct device_spec *ret);
/* "shelly:ID:N" back into buf. */
void device_spec_format(const struct device_spec *d, char *buf, size_t n);
bool device_spec_equal(const struct device_spec *a, const struct device_spec *b);
const char *device_kind_to_string(int kind);

struct meter_config {
    char name[CONFIG_NAME_MAX];
    unsigned line;
    struct device_spec device;
};

struct machine_config {
    char name[CONFIG_NAME_MAX];
    unsigned line;
    char reader[CONFIG_NAME_MAX];
    unsigned reader_line;
    struct line_spec relay;
    bool relay_active_low;
    struct line_spec running;
    bool running_active_low;
    struct line_spec warn;
    bool warn_active_low;
    char zone[CONFIG_NAME_MAX];
    int card_security;          /* enum card_security (policy.h) */
    int64_t warn_minutes;
    int64_t grace_minutes;
    int64_t handover_seconds;
    int64_t idle_off_minutes;
    bool never_cut_while_running;
    int64_t hard_max_minutes;
    struct device_spec power;           /* a network relay instead of the relay line */
    int64_t power_confirm_ms;           /* its confirmation deadline */
    char meter[CONFIG_NAME_MAX];        /* a [meter NAME] section; empty: the power device */
    int64_t running_power_w;            /* running above this power; 0: not from power */
    int64_t running_power_seconds;      /* ... for at least this long (and idle likewise) */
    int64_t trainer_window_seconds;     /* trainer's tap, then trainee's within; 0: off */
};

struct config {
    char path[PATH_MAX];
    struct site_config site;
    struct daemon_config daemon;
    struct hardware_config hardware;
    struct metering_config metering;
    struct mqtt_config mqtt;
    struct http_config http;
    struct web_config web;
    struct spaceapi_config spaceapi;
    struct consortium_config consortium;
    struct privacy_config privacy;
    struct mail_config mail;
    unsigned n_readers;
    struct reader_config readers[CONFIG_MAX_READERS];
    unsigned n_doors;
    struct door_config doors[CONFIG_MAX_DOORS];
    unsigned n_machines;
    struct machine_config machines[CONFIG_MAX_MACHINES];
    unsigned n_meters;
    struct meter_config meters[CONFIG_MAX_METERS];
    unsigned n_webhooks;
    struct webhook_config webhooks[CONFIG_MAX_WEBHOOKS];
};

/* Error messages collected while loading, one "FILE:LINE: message" each. Room for a long
 * path and the longest message (an unknown section lists every section: ~180 bytes); with
 * 256 bytes, a package build's path cut it. */
struct config_errors {
    unsigned count;
    char msg[CONFIG_MAX_ERRORS][640];
};

extern const char *const config_backends[];       /* "sim", "gpiod" */
extern const char *const config_reader_drivers[]; /* "sim", "libnfc" */
extern const char *const config_card_securities[]; /* "uid", "desfire", "desfire-or-uid" */
/* STATE_DIR/desfire-master.key, or [daemon] desfire_key_file. */
void config_desfire_key_path(const struct config *c, char *buf, size_t n);

/* Split "HOST:PORT" or "[V6]:PORT" (host may be NULL to only check). 0 or -EINVAL. */
int listen_parse(const char *text, char *host, size_t host_n, int64_t *port);

/* Load and check path. On success *ret is a new config (free with config_free()). On error
 * returns -EINVAL (or -errno if the file cannot be read), fills errors, *ret untouched. */
int config_load(const char *path, struct config **ret, struct config_errors *errors);
/* Same, from an open stream; name is used in messages. */
int config_load_stream(FILE *f, const char *name, struct config **ret,
                       struct config_errors *errors);
struct config *config_free(struct config *c);

const struct door_config *config_find_door(const struct config *c, const char *name);
const struct reader_config *config_find_reader(const struct config *c, const char *name);
const struct machine_config *config_find_machine(const struct config *c, const char *name);
const struct meter_config *config_find_meter(const struct config *c, const char *name);
/* Where a machine's power readings come from: its meter's device, else its power device if
 * it is a network device; NULL if it has none. */
const struct device_spec *config_machine_meter_device(const struct config *c,
                                                      const struct machine_config *m);
const struct webhook_config *config_find_webhook(const struct config *c, const char *name);
/* Does an event kind match a webhook's events list ("tap, door, machine*")? */
bool config_events_match(const char *events, const char *kind);
/* Database path: daemon.database or STATE_DIR/portier.db. */
void config_database_path(const struct config *c, char *buf, size_t n);

/* True if a and b wire the same hardware (readers, doors, lines, back-end): only then can
 * SIGHUP swap b in without a restart. If not, *ret_why says what differs. */
bool config_same_hardware(const struct config *a, const struct config *b, const char **ret_why);

/* Print the reference of every section and key as Markdown. */
void config_print_reference(FILE *out);
/* The same reference as scdoc(5) source, the KEYS section of portier.conf(5). */
void config_print_reference_scdoc(FILE *out);

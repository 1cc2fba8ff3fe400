/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* config: what good files produce (values, defaults, chips filled in), what bad files
 * report ("FILE:LINE: message", every error with its line), the printed reference, and
 * which changes config_same_hardware() lets SIGHUP apply. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "input.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

static void data_path(const char *name, char *buf, size_t n)
{
    const char *dir = getenv("PORTIER_TEST_DATA");
    char here[PATH_MAX];

    if (dir && *dir) {
        snprintf(buf, n, "%s/config/%s", dir, name);
        return;
    }
    /* Run by hand without ctest: tests/unit/../data */
    snprintf(here, sizeof(here), "%s", __FILE__);
    snprintf(buf, n, "%s/../data/config/%s", dirname(here), name);
}

static int load_text(const char *text, struct config **ret, struct config_errors *errors)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int r;

    assert_non_null(f);
    r = config_load_stream(f, "t.conf", ret, errors);
    fclose(f);
    return r;
}

static struct config *load_text_ok(const char *text)
{
    struct config *c = NULL;
    struct config_errors e = { 0 };
    int r = load_text(text, &c, &e);

    if (r != 0 || e.count != 0)
        fail_msg("expected the text to load, got %d with %u errors, first: %s", r, e.count,
                 e.count ? e.msg[0] : "-");
    assert_non_null(c);
    return c;
}

static struct config *load_file_ok(const char *name)
{
    char path[PATH_MAX];
    struct config *c = NULL;
    struct config_errors e = { 0 };
    int r;

    data_path(name, path, sizeof(path));
    r = config_load(path, &c, &e);
    if (r != 0 || e.count != 0)
        fail_msg("expected %s to load, got %d with %u errors, first: %s", path, r, e.count,
                 e.count ? e.msg[0] : "-");
    assert_non_null(c);
    assert_string_equal(c->path, path);
    return c;
}

static bool has_error(const struct config_errors *e, const char *msg)
{
    for (unsigned i = 0; i < e->count && i < CONFIG_MAX_ERRORS; i++)
        if (strcmp(e->msg[i], msg) == 0)
            return true;
    return false;
}

static void dump_errors(const struct config_errors *e)
{
    for (unsigned i = 0; i < e->count && i < CONFIG_MAX_ERRORS; i++)
        print_error("  got: %s\n", e->msg[i]);
}

/* The errors are exactly the expected ones (in any order), and *ret stays untouched. */
static void check_errors(const struct config_errors *e, int r, const struct config *c,
                         const char *const *expected, size_t n, int at_line)
{
    bool ok = r == -EINVAL && e->count == n && c == NULL;

    for (size_t i = 0; i < n; i++)
        if (!has_error(e, expected[i])) {
            print_error("missing: %s\n", expected[i]);
            ok = false;
        }
    if (!ok) {
        print_error("expectation at line %d: r = %d, %u errors (expected %zu)%s\n", at_line, r,
                    e->count, n, c ? ", and a config was returned" : "");
        dump_errors(e);
        fail();
    }
}

#define EXPECT_ERRORS(text, ...)                                                         \
    do {                                                                                 \
        static const char *const expected_[] = { __VA_ARGS__ };                          \
        struct config *c_ = NULL;                                                        \
        struct config_errors e_ = { 0 };                                                 \
        int r_ = load_text(text, &c_, &e_);                                              \
        check_errors(&e_, r_, c_, expected_, N_ELEMS(expected_), __LINE__);              \
        config_free(c_);                                                                 \
    } while (0)

/* Every field of two configs, except the file name. */
static void assert_config_equal(const struct config *a, const struct config *b)
{
    assert_string_equal(a->site.id, b->site.id);
    assert_string_equal(a->site.name, b->site.name);
    assert_string_equal(a->site.timezone, b->site.timezone);
    assert_string_equal(a->daemon.state_dir, b->daemon.state_dir);
    assert_string_equal(a->daemon.database, b->daemon.database);
    assert_string_equal(a->daemon.control_socket, b->daemon.control_socket);
    assert_int_equal(a->daemon.control_mode, b->daemon.control_mode);
    assert_string_equal(a->daemon.control_group, b->daemon.control_group);
    assert_int_equal(a->daemon.log_level, b->daemon.log_level);
    assert_int_equal(a->daemon.recent_taps, b->daemon.recent_taps);
    assert_int_equal(a->hardware.backend, b->hardware.backend);
    assert_string_equal(a->hardware.chip, b->hardware.chip);
    assert_int_equal(a->hardware.debounce_ms, b->hardware.debounce_ms);
    assert_int_equal(a->hardware.input_bias, b->hardware.input_bias);
    assert_int_equal(a->web.kiosk_names, b->web.kiosk_names);
    assert_int_equal(a->web.kiosk_max_screens, b->web.kiosk_max_screens);
    assert_int_equal(a->n_readers, b->n_readers);
    for (unsigned i = 0; i < a->n_readers; i++) {
        assert_string_equal(a->readers[i].name, b->readers[i].name);
        assert_int_equal(a->readers[i].driver, b->readers[i].driver);
        assert_string_equal(a->readers[i].connstring, b->readers[i].connstring);
    }
    assert_int_equal(a->n_doors, b->n_doors);
    for (unsigned i = 0; i < a->n_doors; i++) {
        const struct door_config *x = &a->doors[i], *y = &b->doors[i];
        const struct line_spec *lx[] = { &x->relay, &x->contact, &x->exit_button };
        const struct line_spec *ly[] = { &y->relay, &y->contact, &y->exit_button };
        assert_string_equal(x->name, y->name);
        assert_string_equal(x->reader, y->reader);
        for (unsigned l = 0; l < 3; l++) {
            assert_int_equal(lx[l]->set, ly[l]->set);
            assert_string_equal(lx[l]->chip, ly[l]->chip);
            assert_int_equal(lx[l]->offset, ly[l]->offset);
            assert_int_equal(lx[l]->active_low, ly[l]->active_low);
        }
        assert_int_equal(x->relay_active_low, y->relay_active_low);
        assert_int_equal(x->contact_active_low, y->contact_active_low);
        assert_int_equal(x->exit_button_active_low, y->exit_button_active_low);
        assert_int_equal(x->unlock_seconds, y->unlock_seconds);
        assert_int_equal(x->held_open_seconds, y->held_open_seconds);
        assert_int_equal(x->fail, y->fail);
        assert_string_equal(x->zone, y->zone);
        assert_int_equal(x->free_entry.always, y->free_entry.always);
        assert_int_equal(x->free_entry.n_rules, y->free_entry.n_rules);
        for (unsigned r = 0; r < x->free_entry.n_rules; r++) {
            assert_int_equal(x->free_entry.rules[r].days, y->free_entry.rules[r].days);
            assert_int_equal(x->free_entry.rules[r].start, y->free_entry.rules[r].start);
            assert_int_equal(x->free_entry.rules[r].end, y->free_entry.rules[r].end);
        }
        assert_string_equal(x->free_entry_text, y->free_entry_text);
        assert_int_equal(x->relock_on_close, y->relock_on_close);
    }
}

/* ---- good files ---- */

static void test_full_file(void **state)
{
    struct config *c = load_file_ok("full.conf");
    const struct door_config *front, *lab;
    const struct reader_config *r;
    char db[PATH_MAX];

    (void)state;
    assert_string_equal(c->site.id, "fablab-nord");
    assert_string_equal(c->site.name, "FabLab Nord, Lille");
    assert_string_equal(c->site.timezone, "Europe/Paris");

    assert_string_equal(c->daemon.state_dir, "/srv/portier");
    assert_string_equal(c->daemon.database, "/srv/portier/db/access.db");
    assert_string_equal(c->daemon.control_socket, "/run/portier-test/ctl.sock");
    assert_int_equal(c->daemon.control_mode, 0640);
    assert_string_equal(c->daemon.control_group, "portier");
    assert_int_equal(c->daemon.log_level, LOG_DEBUG);
    assert_int_equal(c->daemon.recent_taps, 25);
    config_database_path(c, db, sizeof(db));
    assert_string_equal(db, "/srv/portier/db/access.db");

    assert_string_equal(config_backends[c->hardware.backend], "sim");
    assert_string_equal(c->hardware.chip, "pinctrl-bcm2711");
    assert_int_equal(c->hardware.debounce_ms, 50);
    assert_int_equal(c->hardware.input_bias, INPUT_BIAS_PULL_UP);
    assert_string_equal(c->hardware.sim_state_dir, "/tmp/portier-sim");

    assert_int_equal(c->n_readers, 2);
    r = config_find_reader(c, "front-reader");
    assert_non_null(r);
    assert_string_equal(config_reader_drivers[r->driver], "sim");
    assert_string_equal(r->connstring, "pn532_uart:/dev/ttyS0");
    assert_int_equal(r->line, 25);
    r = config_find_reader(c, "lab.reader");        /* quoted name */
    assert_non_null(r);
    assert_string_equal(r->connstring, "sim");
    assert_null(config_find_reader(c, "nope"));

    assert_int_equal(c->n_doors, 2);
    front = config_find_door(c, "front");
    assert_non_null(front);
    assert_int_equal(front->line, 32);
    assert_string_equal(front->reader, "front-reader");
    /* bare offsets take [hardware] chip; explicit chips are kept; active_low reaches lines */
    assert_true(front->relay.set);
    assert_string_equal(front->relay.chip, "pinctrl-bcm2711");
    assert_int_equal(front->relay.offset, 17);
    assert_true(front->relay.active_low);
    assert_true(front->relay_active_low);
    assert_true(front->contact.set);
    assert_string_equal(front->contact.chip, "gpiochip1");
    assert_int_equal(front->contact.offset, 5);
    assert_true(front->contact.active_low);
    assert_true(front->exit_button.set);
    assert_string_equal(front->exit_button.chip, "pinctrl-bcm2711");
    assert_int_equal(front->exit_button.offset, 27);
    assert_true(front->exit_button.active_low);
    assert_int_equal(front->unlock_seconds, 7);     /* the inline comment is not the value */
    assert_int_equal(front->held_open_seconds, 0);
    assert_int_equal(front->fail, DOOR_FAIL_SAFE);
    assert_string_equal(front->zone, "entrance");
    assert_string_equal(front->free_entry_text, "Mon-Fri 09:00-12:00, Sat 10:00-13:00");
    assert_int_equal(front->free_entry.n_rules, 2);
    assert_int_equal(front->free_entry.rules[0].days, 0x3e);
    assert_int_equal(front->free_entry.rules[0].start, 9 * 60);
    assert_int_equal(front->free_entry.rules[1].end, 13 * 60);
    assert_false(front->relock_on_close);

    lab = config_find_door(c, "lab_1");
    assert_non_null(lab);
    assert_string_equal(lab->reader, "lab.reader");
    assert_string_equal(lab->relay.chip, "gpiochip2");
    assert_int_equal(lab->relay.offset, 3);
    assert_false(lab->relay.active_low);
    assert_false(lab->contact.set);
    assert_false(lab->exit_button.set);
    assert_string_equal(lab->zone, "fablab");
    assert_int_equal(lab->unlock_seconds, 5);
    assert_null(config_find_door(c, "back"));
    config_free(c);
}

static void test_minimal_file_defaults(void **state)
{
    struct config *c = load_file_ok("minimal.conf");
    const struct door_config *d;
    char db[PATH_MAX];

    (void)state;
    assert_string_equal(c->site.id, "site");
    assert_string_equal(c->site.name, "Portier");
    assert_string_equal(c->site.timezone, "UTC");
    assert_string_equal(c->daemon.state_dir, "/var/lib/portier");
    assert_string_equal(c->daemon.database, "");
    config_database_path(c, db, sizeof(db));
    assert_string_equal(db, "/var/lib/portier/portier.db");
    assert_string_equal(c->daemon.control_socket, "/run/portier/portierd.sock");
    assert_int_equal(c->daemon.control_mode, 0660);
    assert_string_equal(c->daemon.control_group, "");
    assert_int_equal(c->daemon.log_level, LOG_INFO);
    assert_int_equal(c->daemon.recent_taps, 10);
    assert_int_equal(c->daemon.realtime_priority, 10);
    assert_string_equal(config_backends[c->hardware.backend], "gpiod");
    assert_string_equal(c->hardware.chip, "gpiochip0");
    assert_int_equal(c->hardware.debounce_ms, 20);
    assert_int_equal(c->hardware.input_bias, INPUT_BIAS_AS_IS);
    assert_string_equal(c->hardware.sim_state_dir, "");

    assert_int_equal(c->n_readers, 1);
    assert_string_equal(c->readers[0].name, "r1");
    assert_string_equal(config_reader_drivers[c->readers[0].driver], "sim");
    assert_string_equal(c->readers[0].connstring, "");

    assert_int_equal(c->n_doors, 1);
    d = &c->doors[0];
    assert_string_equal(d->name, "front");
    assert_int_equal(d->line, 3);
    assert_string_equal(d->reader, "r1");
    assert_true(d->relay.set);
    assert_string_equal(d->relay.chip, "gpiochip0");     /* filled from [hardware] chip */
    assert_int_equal(d->relay.offset, 17);
    assert_false(d->relay.active_low);
    assert_false(d->relay_active_low);
    assert_false(d->contact.set);
    assert_false(d->exit_button.set);
    assert_int_equal(d->unlock_seconds, 5);
    assert_int_equal(d->held_open_seconds, 30);
    assert_int_equal(d->fail, DOOR_FAIL_SECURE);
    assert_string_equal(d->zone, "main");
    assert_false(d->free_entry.always);
    assert_int_equal(d->free_entry.n_rules, 0);
    assert_string_equal(d->free_entry_text, "never");
    assert_true(d->relock_on_close);
    config_free(c);
}

static void test_empty_file(void **state)
{
    struct config *c = load_file_ok("empty.conf");

    (void)state;
    assert_int_equal(c->n_doors, 0);
    assert_int_equal(c->n_readers, 0);
    assert_string_equal(c->site.timezone, "UTC");
    assert_int_equal(c->daemon.recent_taps, 10);
    assert_int_equal(c->hardware.debounce_ms, 20);
    config_free(c);
}

static void test_missing_file(void **state)
{
    struct config *c = NULL;
    struct config_errors e = { 0 };

    (void)state;
    assert_int_equal(config_load("/nonexistent/portier.conf", &c, &e), -ENOENT);
    assert_null(c);
    assert_int_equal(e.count, 1);
    assert_string_equal(e.msg[0], "/nonexistent/portier.conf: cannot open: No such file or directory");
}

static void test_chip_change_moves_bare_offsets(void **state)
{
    struct config *c = load_text_ok("[hardware]\nchip = gpiochip4\n"
                                    "[reader r]\n[door d]\nreader = r\nrelay = 2\n"
                                    "contact = gpiochip0:3\ncontact_active_low = true\n");

    (void)state;
    assert_string_equal(c->doors[0].relay.chip, "gpiochip4");
    assert_false(c->doors[0].relay.active_low);
    assert_string_equal(c->doors[0].contact.chip, "gpiochip0");
    assert_true(c->doors[0].contact.active_low);
    config_free(c);
}

static void test_forward_reader_reference(void **state)
{
    /* The reader may be declared after the door that uses it. */
    struct config *c = load_text_ok("[door d]\nreader = r\nrelay = 2\n[reader r]\n");

    (void)state;
    assert_string_equal(c->doors[0].reader, "r");
    config_free(c);
}

static void test_value_spellings(void **state)
{
    struct config *c = load_text_ok("[daemon]\nlog_level = warning\ncontrol_mode = 0777\n"
                                    "database =\n"
                                    "[site]\ntimezone = America/Argentina/Buenos_Aires\n"
                                    "[reader r]\n[door d]\nreader = r\nrelay = 511\n"
                                    "relay_active_low = Off\nrelock_on_close = 0\n"
                                    "unlock_seconds = 600\nheld_open_seconds = 3600\n"
                                    "free_entry = always\n");

    (void)state;
    assert_int_equal(c->daemon.log_level, LOG_WARNING);
    assert_int_equal(c->daemon.control_mode, 0777);
    assert_string_equal(c->daemon.database, "");
    assert_string_equal(c->site.timezone, "America/Argentina/Buenos_Aires");
    assert_int_equal(c->doors[0].relay.offset, 511);
    assert_false(c->doors[0].relay_active_low);
    assert_false(c->doors[0].relock_on_close);
    assert_int_equal(c->doors[0].unlock_seconds, 600);
    assert_int_equal(c->doors[0].held_open_seconds, 3600);
    assert_true(c->doors[0].free_entry.always);
    config_free(c);
}

/* ---- bad files: exact "FILE:LINE: message" ---- */

static void test_unknown_key_and_section(void **state)
{
    (void)state;
    EXPECT_ERRORS("[site]\nid = x\ncolour = blue\n", "t.conf:3: unknown key 'colour' in [site]");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock = 5\n",
                  "t.conf:5: unknown key 'unlock' in [door]");
    /* keys of an unknown section are not reported again */
    EXPECT_ERRORS("[site]\n\n[sight]\nid = x\nname = y\n",
                  "t.conf:3: unknown section [sight] (expected site, daemon, hardware, metering, "
                  "mqtt, http, web, spaceapi, consortium, privacy, mail, reader NAME, door NAME, machine NAME, meter NAME or webhook NAME)");
}

static void test_strings_must_be_utf8(void **state)
{
    (void)state;
    /* A Latin-1 name would make every JSON answer (status, SpaceAPI) unencodable. */
    EXPECT_ERRORS("[site]\nname = Caf\xe9 des possibles\n",
                  "t.conf:2: name is not valid UTF-8 text (save the file as UTF-8)");
    /* Nor a terminal escape that portierctl would print raw. */
    EXPECT_ERRORS("[site]\nname = Caf\x1b[31m\n", "t.conf:2: name has a control character");
}

static void test_http_and_spaceapi_values(void **state)
{
    (void)state;
    EXPECT_ERRORS("[http]\nlisten = 8080\n",
                  "t.conf:2: listen must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080");
    EXPECT_ERRORS("[http]\nlisten = 0.0.0.0:70000\n",
                  "t.conf:2: listen must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080");
    EXPECT_ERRORS("[http]\nlisten = [::1:8080\n",
                  "t.conf:2: listen must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080");
    EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:8080\ntls_cert = /etc/c.pem\n",
                  "t.conf: [http] tls_cert and tls_key go together: set both or neither");
    EXPECT_ERRORS("[spaceapi]\nlat = 91\nlon = 2\n",
                  "t.conf:2: lat must be a decimal number of degrees from -90 to 90");
    EXPECT_ERRORS("[spaceapi]\nlat = 48.8\n",
                  "t.conf: [spaceapi] lat and lon go together: set both or neither");
    EXPECT_ERRORS("[http]\nmax_body_kib = 0\n",
                  "t.conf:2: max_body_kib = 0 is out of range [1, 1024]");
}

static void test_mail_and_webhooks(void **state)
{
    struct config *c;

    (void)state;
    c = load_text_ok("[mail]\nenabled = true\nsmtp_url = smtp://127.0.0.1:2525\nstarttls = false\n"
                     "from = portier@example.org\nusername = u\npassword_file = /etc/p\n"
                     "[webhook crm]\nurl = https://crm.example.org/in\nevents = tap, door*\n"
                     "secret_file = /etc/portier/crm.secret\n"
                     "[webhook chat]\nurl = http://10.0.0.2:1880/x\nsecret = 0123456789abcdef\n");
    assert_true(c->mail.enabled);
    assert_false(c->mail.starttls);
    assert_int_equal(c->mail.per_hour, 100);
    assert_int_equal(c->mail.reminder_minutes, 60);
    assert_int_equal(c->n_webhooks, 2);
    assert_string_equal(config_find_webhook(c, "crm")->events, "tap, door*");
    assert_string_equal(config_find_webhook(c, "chat")->events, "*");
    assert_int_equal(config_find_webhook(c, "chat")->in_flight, 4);
    config_free(c);

    assert_true(config_events_match("tap, door*", "tap"));
    assert_true(config_events_match("tap, door*", "door"));
    assert_true(config_events_match("tap,door*", "door_forced"));
    assert_false(config_events_match("tap, door*", "alarm"));
    assert_false(config_events_match("tap", "taps"));
    assert_true(config_events_match("*", "out_of_order"));
    assert_true(config_events_match("?xit", "exit"));

    EXPECT_ERRORS("[mail]\nenabled = true\n",
                  "t.conf: [mail] smtp_url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]",
                  "t.conf: [mail] from must be an e-mail address such as portier@example.org");
    EXPECT_ERRORS("[mail]\nenabled = true\nsmtp_url = http://x\nfrom = a@b.c\nreply_to = x y\n"
                  "password_file = /p\n",
                  "t.conf: [mail] smtp_url must be smtp://HOST[:PORT] or smtps://HOST[:PORT]",
                  "t.conf: [mail] reply_to must be an e-mail address",
                  "t.conf: [mail] password_file is set but username is empty");
    EXPECT_ERRORS("[http]\nlisten = 127.0.0.1:8080\n[mail]\nenabled = true\n"
                  "smtp_url = smtps://mail.example.org\nfrom = a@example.org\n",
                  "t.conf: [mail] puts links to the web page in e-mails: set [http] base_url "
                  "(e.g. https://portier.example.org)");
    EXPECT_ERRORS("[mail]\nper_hour = 0\n", "t.conf:2: per_hour = 0 is out of range [1, 10000]");
    EXPECT_ERRORS("[webhook crm]\nevents = tap\nsecret = 0123456789abcdef\n",
                  "t.conf:1: [webhook] is missing required key 'url'");
    EXPECT_ERRORS("\n[webhook crm]\nurl = ftp://x\nevents = tap;door\n",
                  "t.conf:2: webhook 'crm': url must be https://HOST[:PORT]/PATH",
                  "t.conf:2: webhook 'crm': events must be event kinds separated by commas "
                  "(letters, digits, _ . - and the wildcards * ?)",
                  "t.conf:2: webhook 'crm': set exactly one of secret and secret_file "
                  "(receivers check the signature with it)");
    EXPECT_ERRORS("[webhook crm]\nurl = https://x/y\nsecret = short\n",
                  "t.conf:1: webhook 'crm': the secret must have at least 16 characters");
    EXPECT_ERRORS("[webhook crm]\nurl = https://x/y\nsecret = 0123456789abcdef\n"
                  "[webhook crm]\nurl = https://x/z\n",
                  "t.conf:4: duplicate section [webhook crm]");
}

static void test_out_of_range(void **state)
{
    (void)state;
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock_seconds = 0\n",
                  "t.conf:5: unlock_seconds = 0 is out of range [1, 600]");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock_seconds = 601\n",
                  "t.conf:5: unlock_seconds = 601 is out of range [1, 600]");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nheld_open_seconds = -1\n",
                  "t.conf:5: held_open_seconds = -1 is out of range [0, 3600]");
    EXPECT_ERRORS("[daemon]\nrecent_taps = 101\n",
                  "t.conf:2: recent_taps = 101 is out of range [1, 100]");
    /* 50 and up: the kernel's interrupt threads (base/realtime.h). */
    EXPECT_ERRORS("[daemon]\nrealtime_priority = 50\n",
                  "t.conf:2: realtime_priority = 50 is out of range [0, 49]");
    EXPECT_ERRORS("[hardware]\ndebounce_ms = 1001\n",
                  "t.conf:2: debounce_ms = 1001 is out of range [0, 1000]");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 512\n",
                  "t.conf:4: relay must be a line as OFFSET or CHIP:OFFSET (0-511)");
}

static void test_bad_values(void **state)
{
    (void)state;
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock_seconds = five\n",
                  "t.conf:5: unlock_seconds must be an integer");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock_seconds = 5s\n",
                  "t.conf:5: unlock_seconds must be an integer");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nunlock_seconds = 99999999999999999999\n",
                  "t.conf:5: unlock_seconds must be an integer");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nrelay_active_low = maybe\n",
                  "t.conf:5: relay_active_low must be true or false");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nfail = open\n",
                  "t.conf:5: fail must be one of: secure, safe");
    EXPECT_ERRORS("[hardware]\nbackend = gpio\n", "t.conf:2: backend must be one of: sim, gpiod");
    EXPECT_ERRORS("[hardware]\ninput_bias = up\n",
                  "t.conf:2: input_bias must be one of: as-is, disable, pull-up, pull-down");
    EXPECT_ERRORS("[daemon]\nlog_level = loud\n",
                  "t.conf:2: log_level must be one of: debug, info, notice, warning, error");
    EXPECT_ERRORS("[daemon]\ncontrol_mode = 0999\n",
                  "t.conf:2: control_mode must be an octal mode such as 0660");
    EXPECT_ERRORS("[daemon]\nstate_dir = var/lib/portier\n",
                  "t.conf:2: state_dir must be an absolute path");
    EXPECT_ERRORS("[site]\nid = la fabrique\n",
                  "t.conf:2: id must be 1 to 31 letters, digits, '-', '_' or '.'");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nzone = \n",
                  "t.conf:5: zone must be 1 to 31 letters, digits, '-', '_' or '.'");
}

static void test_bad_timezone(void **state)
{
    static const char *const zones[] = { "Mars/Olympus", "Europe", "../../etc/passwd",
                                         "/usr/share/zoneinfo/UTC", "Europe/Paris/" };
    (void)state;
    EXPECT_ERRORS("[site]\ntimezone = Mars/Olympus\n",
                  "t.conf:2: unknown time zone 'Mars/Olympus' (expected a name such as "
                  "Europe/Paris from /usr/share/zoneinfo)");
    for (size_t i = 0; i < N_ELEMS(zones); i++) {
        char text[128];
        struct config *c = NULL;
        struct config_errors e = { 0 };
        snprintf(text, sizeof(text), "[site]\ntimezone = %s\n", zones[i]);
        assert_int_equal(load_text(text, &c, &e), -EINVAL);
        assert_null(c);
        assert_int_equal(e.count, 1);
        assert_non_null(strstr(e.msg[0], "t.conf:2: unknown time zone"));
    }
}

static void test_bad_schedule(void **state)
{
    (void)state;
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nfree_entry = Mon 08:00-08:00\n",
                  "t.conf:5: free_entry: a window must not start and end at the same time");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nfree_entry = Mon 25:00-26:00\n",
                  "t.conf:5: free_entry: expected hours as HH:MM-HH:MM (00:00 to 24:00)");
}

static void test_duplicates(void **state)
{
    (void)state;
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = 1\nrelay = 2\n",
                  "t.conf:5: duplicate key 'relay' in [door]");
    EXPECT_ERRORS("[site]\nid = a\n[daemon]\n[site]\nname = b\n",
                  "t.conf:4: duplicate section [site]");
    EXPECT_ERRORS("[reader r]\n[reader s]\n[door d]\nreader = r\nrelay = 1\n"
                  "[door d]\nreader = s\nrelay = 2\n",
                  "t.conf:6: duplicate section [door d]");
    EXPECT_ERRORS("[reader r]\n[reader r]\n", "t.conf:2: duplicate section [reader r]");
}

/* Every named kind is found by its name, keeps the line of its header, and refuses a
 * second section of the same name (while another kind may share it). */
static void test_named_sections(void **state)
{
    static const char text[] =
        "[mqtt]\nenabled = true\n"                                      /* 1-2 */
        "[reader x]\n[reader y]\n"                                      /* 3-4 */
        "[door x]\nreader = x\nrelay = 1\n"                             /* 5-7 */
        "[meter x]\ndevice = tasmota:k\n"                               /* 8-9 */
        "[machine x]\nreader = y\nrelay = 2\nmeter = x\n"               /* 10-13 */
        "[webhook x]\nurl = https://example.org/\nsecret = 0123456789abcdef\n"; /* 14-16 */
    struct config *c;

    (void)state;
    c = load_text_ok(text);
    assert_int_equal(config_find_reader(c, "x")->line, 3);
    assert_int_equal(config_find_reader(c, "y")->line, 4);
    assert_null(config_find_reader(c, "z"));
    assert_int_equal(config_find_door(c, "x")->line, 5);
    assert_string_equal(config_find_door(c, "x")->reader, "x");
    assert_null(config_find_door(c, "y"));
    assert_int_equal(config_find_meter(c, "x")->line, 8);
    assert_null(config_find_meter(c, "y"));
    assert_int_equal(config_find_machine(c, "x")->line, 10);
    assert_string_equal(config_find_machine(c, "x")->reader, "y");
    assert_null(config_find_machine(c, "y"));
    assert_int_equal(config_find_webhook(c, "x")->line, 14);
    assert_string_equal(config_find_webhook(c, "x")->url, "https://example.org/");
    assert_null(config_find_webhook(c, "y"));
    config_free(c);

    EXPECT_ERRORS("[mqtt]\nenabled = true\n[meter k]\ndevice = tasmota:k\n[meter k]\n"
                  "device = tasmota:l\n",
                  "t.conf:5: duplicate section [meter k]");
    EXPECT_ERRORS("[reader r]\n[machine m]\nreader = r\nrelay = 1\n[machine m]\nreader = r\n"
                  "relay = 2\n",
                  "t.conf:5: duplicate section [machine m]");
}

static void test_too_many_readers(void **state)
{
    char text[4096];
    size_t used = 0;

    (void)state;
    for (int i = 0; i <= CONFIG_MAX_READERS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "[reader r%d]\n", i);
    assert_true(used < sizeof(text));
    EXPECT_ERRORS(text, "t.conf:129: too many readers (at most 128)");
}

static void test_missing_required(void **state)
{
    (void)state;
    /* reported at the section header, also when the section is not the last one */
    EXPECT_ERRORS("[reader r]\n\n[door front]\nreader = r\nzone = main\n\n[site]\nid = x\n",
                  "t.conf:3: [door] is missing required key 'relay'");
    EXPECT_ERRORS("[reader r]\n[door front]\nrelay = 1\n",
                  "t.conf:2: [door] is missing required key 'reader'");
    EXPECT_ERRORS("[door a]\n[door b]\n",
                  "t.conf:1: [door] is missing required key 'reader'",
                  "t.conf:1: [door] is missing required key 'relay'",
                  "t.conf:2: [door] is missing required key 'reader'",
                  "t.conf:2: [door] is missing required key 'relay'");
}

/* Network relays and meters: the syntax, what goes with what, and doors on GPIO only. */
static void test_network_devices(void **state)
{
    static const char mqtt_on[] = "[mqtt]\nenabled = true\n[reader r]\n";
    char text[1024];
    struct device_spec d;
    struct config *c;

    (void)state;
    assert_int_equal(device_spec_parse("shelly:shellyplus1pm-a8032ab12345", &d), 0);
    assert_int_equal(d.kind, DEVICE_SHELLY);
    assert_string_equal(d.id, "shellyplus1pm-a8032ab12345");
    assert_int_equal(d.channel, 0);
    assert_int_equal(device_spec_parse("shelly:lab/pro4pm:3", &d), 0);
    assert_string_equal(d.id, "lab/pro4pm");
    assert_int_equal(d.channel, 3);
    assert_int_equal(device_spec_parse("tasmota:kiln", &d), 0);
    assert_int_equal((int)d.kind * 10 + (int)d.channel, DEVICE_TASMOTA * 10 + 1);
    assert_int_equal(device_spec_parse("tasmota:kiln:2", &d), 0);
    assert_int_equal(d.channel, 2);
    static const char *const bad[] = { "shelly:", "shelly:a+b", "shelly:#", "shelly:/x",
                                       "shelly:x/", "shelly:a//b", "shelly:x:", "shelly:x:32",
                                       "shelly:x:-1", "tasmota:kiln:0", "zigbee:x", "shelly",
                                       "shelly:a b", "shelly:x:1:2" };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        if (device_spec_parse(bad[i], &d) == 0)
            fail_msg("%s parsed", bad[i]);

    snprintf(text, sizeof(text), "%s[machine m]\nreader = r\npower = shelly:plug1\n"
             "running_power_w = 20\n[reader s]\n[machine n]\nreader = s\nrelay = 4\n"
             "meter = kiln-meter\nrunning_power_w = 5\n[meter kiln-meter]\n"
             "device = tasmota:kilnpm\n", mqtt_on);
    c = load_text_ok(text);
    assert_int_equal(c->machines[0].power.kind, DEVICE_SHELLY);
    assert_false(c->machines[0].relay.set);
    assert_int_equal(c->machines[0].power_confirm_ms, 3000);
    assert_int_equal(c->machines[0].trainer_window_seconds, 20);
    assert_string_equal(config_machine_meter_device(c, &c->machines[0])->id, "plug1");
    assert_string_equal(config_machine_meter_device(c, &c->machines[1])->id, "kilnpm");
    config_free(c);

    EXPECT_ERRORS("[reader r]\n[machine m]\nreader = r\npower = shelly:plug1\n",
                  "t.conf:2: machine 'm' uses a network relay: it needs [mqtt] enabled = true "
                  "(the device is reached through the broker)");
    EXPECT_ERRORS("[mqtt]\nenabled = true\n[reader r]\n[machine m]\nreader = r\n"
                  "relay = 3\npower = shelly:plug1\n",
                  "t.conf:4: machine 'm' needs either relay (a GPIO line) or power (a network "
                  "relay), not both");
    EXPECT_ERRORS("[reader r]\n[machine m]\nreader = r\n",
                  "t.conf:2: machine 'm' needs either relay (a GPIO line) or power (a network "
                  "relay), not neither");
    EXPECT_ERRORS("[reader r]\n[door d]\nreader = r\nrelay = shelly:plug1\n",
                  "t.conf:4: relay must be a GPIO line: a network relay is a machine's `power` "
                  "(doors and outputs stay on GPIO: they must not depend on Wi-Fi)");
    EXPECT_ERRORS("[reader r]\n[machine m]\nreader = r\nrelay = 3\nrunning_power_w = 50\n",
                  "t.conf:2: machine 'm': running_power_w needs power readings: a network power "
                  "device or a meter");
    EXPECT_ERRORS("[mqtt]\nenabled = true\n[reader r]\n[machine m]\nreader = r\n"
                  "relay = 3\nmeter = nope\n",
                  "t.conf:4: machine 'm' uses meter 'nope', which has no [meter nope] section");
    EXPECT_ERRORS("[mqtt]\nenabled = true\n[reader r]\n[reader s]\n[machine m]\nreader = r\n"
                  "power = tasmota:t\n[machine n]\nreader = s\npower = tasmota:t:1\n",
                  "t.conf:8: machine 'n' uses the power device of machine 'm'");
    EXPECT_ERRORS("[meter k]\ndevice = tasmota:k\n",
                  "t.conf:1: meter 'k' is a network device: it needs [mqtt] enabled = true");
    EXPECT_ERRORS("[meter k]\n", "t.conf:1: [meter] is missing required key 'device'");
    EXPECT_ERRORS("[mqtt]\nenabled = true\n[reader r]\n[machine m]\nreader = r\n"
                  "power = plug1\n",
                  "t.conf:6: power must be shelly:TOPIC[:SWITCH] or tasmota:TOPIC[:RELAY] (TOPIC: "
                  "1 to 63 letters, digits, '-', '_', '.' or '/')");
}

static void test_references_and_shared_lines(void **state)
{
    (void)state;
    EXPECT_ERRORS("[reader r]\n[door front]\nrelay = 1\nreader = nope\n",
                  "t.conf:4: door 'front' uses reader 'nope', which has no [reader nope] section");
    /* two doors, one line: reported at the second door, naming the first */
    EXPECT_ERRORS("[reader r]\n[reader s]\n[door front]\nreader = r\nrelay = 17\n"
                  "[door back]\nreader = s\nrelay = gpiochip0:17\n",
                  "t.conf:6: door 'back' uses line gpiochip0:17, already used by front (line 3)");
    EXPECT_ERRORS("[reader r]\n[reader s]\n[door front]\nreader = r\nrelay = 4\n"
                  "[door back]\nreader = s\nrelay = 5\nexit_button = 4\n",
                  "t.conf:6: door 'back' uses line gpiochip0:4, already used by front (line 3)");
    /* one door, one line twice */
    EXPECT_ERRORS("[reader r]\n[door front]\nreader = r\nrelay = 4\ncontact = 4\n",
                  "t.conf:2: door 'front' uses line gpiochip0:4, already used by front (line 2)");
    /* the same offset on another chip is another line */
    config_free(load_text_ok("[reader r]\n[reader s]\n[door front]\nreader = r\nrelay = 17\n"
                             "[door back]\nreader = s\nrelay = gpiochip1:17\n"));
    /* one reader cannot open two doors */
    EXPECT_ERRORS("[reader r]\n[door front]\nreader = r\nrelay = 1\n[door back]\nreader = r\n"
                  "relay = 2\n",
                  "t.conf:6: reader 'r' already opens door 'front'");
}

static void test_section_headers(void **state)
{
    (void)state;
    EXPECT_ERRORS("id = x\n[site]\n", "t.conf:1: key 'id' outside any section");
    EXPECT_ERRORS("[site main]\n", "t.conf:1: section [site] takes no name");
    EXPECT_ERRORS("[door]\n", "t.conf:1: [door NAME]: NAME must be 1 to 31 letters, digits, "
                              "'-', '_' or '.'");
    EXPECT_ERRORS("[door front door]\n", "t.conf:1: [door NAME]: NAME must be 1 to 31 letters, "
                                         "digits, '-', '_' or '.'");
    EXPECT_ERRORS("[site] x\n", "t.conf:1: unexpected text after section header");
    EXPECT_ERRORS("[site]\n[daemon\n", "t.conf:2: section header is missing ']'");
}

static void test_too_many_doors(void **state)
{
    char text[8192];
    size_t used = 0;

    (void)state;
    for (int i = 0; i <= CONFIG_MAX_DOORS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "[reader r%d]\n[door d%d]\nreader = r%d\nrelay = %d\n", i, i, i, i);
    assert_true(used < sizeof(text));
    /* the 33rd door's header is line 32 * 4 + 2 */
    EXPECT_ERRORS(text, "t.conf:130: too many doors (at most 32)");
}

static void test_too_many_webhooks(void **state)
{
    char text[4096];
    size_t used = 0;

    (void)state;
    for (int i = 0; i <= CONFIG_MAX_WEBHOOKS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used,
                                 "[webhook w%d]\nurl = https://example.org/%d\n"
                                 "secret = 0123456789abcdef\n", i, i);
    assert_true(used < sizeof(text));
    /* the 9th webhook's header is line 8 * 3 + 1 */
    EXPECT_ERRORS(text, "t.conf:25: too many webhooks (at most 8)");
}

static void test_long_lines(void **state)
{
    char text[1024], line[300];
    struct config *c;

    (void)state;
    /* 198 characters: the longest line the message admits */
    memset(line, 'x', sizeof(line));
    line[0] = ';';
    line[198] = '\0';
    snprintf(text, sizeof(text), "[site]\n%s\nid = ok\n", line);
    c = load_text_ok(text);
    assert_string_equal(c->site.id, "ok");
    config_free(c);

    /* 199 characters */
    line[198] = 'x';
    line[199] = '\0';
    snprintf(text, sizeof(text), "[site]\n%s\nid = ok\n", line);
    EXPECT_ERRORS(text, "t.conf:2: line too long (at most 198 characters)");

    /* 250 characters of a key: refused, not truncated, and its tail is not a line of its own;
     * the next lines keep their numbers */
    snprintf(line, sizeof(line), "name = %0243d", 0);
    snprintf(text, sizeof(text), "[site]\n%s\ncolour = red\n[bogus]\n", line);
    EXPECT_ERRORS(text, "t.conf:2: line too long (at most 198 characters)",
                  "t.conf:3: unknown key 'colour' in [site]",
                  "t.conf:4: unknown section [bogus] (expected site, daemon, hardware, metering, "
                  "mqtt, http, web, spaceapi, consortium, privacy, mail, reader NAME, door NAME, machine NAME, meter NAME or webhook NAME)");
}

static void test_many_errors_in_one_file(void **state)
{
    char path[PATH_MAX];
    static char msg[CONFIG_MAX_ERRORS][PATH_MAX + 256];
    const char *expected[CONFIG_MAX_ERRORS];
    static const char *const tail[] = {
        "2: unknown key 'colour' in [site]",
        ("3: unknown time zone 'Mars/Olympus' (expected a name such as Europe/Paris from "
         "/usr/share/zoneinfo)"),
        "5: recent_taps = 0 is out of range [1, 100]",
        "6: log_level must be one of: debug, info, notice, warning, error",
        "7: unknown section [bogus] (expected site, daemon, hardware, metering, mqtt, http, web, spaceapi, consortium, privacy, mail, reader NAME, door NAME, machine NAME, meter NAME or webhook NAME)",
        "10: debounce_ms must be an integer",
        "12: [door] is missing required key 'relay'",
        "14: unlock_seconds = 601 is out of range [1, 600]",
        "15: relay_active_low must be true or false",
        "16: fail must be one of: secure, safe",
        "17: free_entry: a window must not start and end at the same time",
        "19: duplicate key 'zone' in [door]",
        "20: duplicate section [site]",
    };
    struct config *c = NULL;
    struct config_errors e = { 0 };
    int r;

    (void)state;
    data_path("errors.conf", path, sizeof(path));
    for (size_t i = 0; i < N_ELEMS(tail); i++) {
        snprintf(msg[i], sizeof(msg[i]), "%s:%s", path, tail[i]);
        expected[i] = msg[i];
    }
    r = config_load(path, &c, &e);
    check_errors(&e, r, c, expected, N_ELEMS(tail), __LINE__);
}

static void test_error_overflow_counted(void **state)
{
    /* More errors than fit: all are counted, the first CONFIG_MAX_ERRORS kept. */
    char text[4096];
    size_t used = snprintf(text, sizeof(text), "[site]\n");
    struct config *c = NULL;
    struct config_errors e = { 0 };

    (void)state;
    for (int i = 0; i < CONFIG_MAX_ERRORS + 8; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "k%d = v\n", i);
    assert_int_equal(load_text(text, &c, &e), -EINVAL);
    assert_null(c);
    assert_int_equal(e.count, CONFIG_MAX_ERRORS + 8);
    assert_string_equal(e.msg[0], "t.conf:2: unknown key 'k0' in [site]");
    assert_string_equal(e.msg[CONFIG_MAX_ERRORS - 1], "t.conf:33: unknown key 'k31' in [site]");
}

/* A line inih cannot read (no '=') is reported with its number even when the file has other
 * errors too: fixing one error must not reveal another that was already known. */
static void test_syntax_error_reported_with_other_errors(void **state)
{
    (void)state;
    EXPECT_ERRORS("[site]\nthis is not a key\n", "t.conf:2: syntax error (expected [section] or key = value)");
    EXPECT_ERRORS("[site]\ncolour = blue\n[reader r]\nthis is not a key\n",
                  "t.conf:2: unknown key 'colour' in [site]",
                  "t.conf:4: syntax error (expected [section] or key = value)");
}

/* Indented keys are ordinary keys: a key that follows another one with leading blanks must
 * be read as itself, not as a continuation of the previous value. */
static void test_indented_keys(void **state)
{
    struct config *c = load_text_ok("[reader r1]\n[door front]\n  reader = r1\n  relay = 17\n"
                                    "  unlock_seconds = 9\n");

    (void)state;
    assert_string_equal(c->doors[0].reader, "r1");
    assert_int_equal(c->doors[0].relay.offset, 17);
    assert_int_equal(c->doors[0].unlock_seconds, 9);
    config_free(c);
}

/* ---- the reference ---- */

static char *print_reference(void)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);

    assert_non_null(f);
    config_print_reference(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(buf);
    return buf;
}

static void test_reference_mentions_every_section(void **state)
{
    static const char *const needles[] = {
        "### `[site]`", "### `[daemon]`", "### `[hardware]`", "### `[reader NAME]`",
        "### `[door NAME]`", "| `unlock_seconds` | integer 1–600 | `5` |",
        "| `fail` | `secure` \\| `safe` | `secure` |", "| `relay` | GPIO line | required |",
        "| `reader` | name | required |", "| `timezone` | time zone | `UTC` |",
        "| `database` | path | `(empty)` |",
    };
    char *ref = print_reference();

    (void)state;
    for (size_t i = 0; i < N_ELEMS(needles); i++)
        if (!strstr(ref, needles[i]))
            fail_msg("reference lacks %s", needles[i]);
    free(ref);
}

/* Take the reference apart, write a file that sets every key to its documented default
 * (required keys get a value), and check it loads into exactly what the defaults give:
 * every default parses and the reference tells the truth about it. */
static void test_every_default_parses(void **state)
{
    char *ref = print_reference();
    char *text = NULL, *line, *save = NULL;
    size_t text_n = 0;
    FILE *out = open_memstream(&text, &text_n);
    struct config *explicit, *implicit;
    unsigned keys = 0, sections = 0;
    bool skip = false, machine = false;

    (void)state;
    assert_non_null(out);
    for (line = strtok_r(ref, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char cell[4][512];
        int n_cells = 0;
        const char *p;

        if (strncmp(line, "### `[", 6) == 0) {
            char kind[32];
            assert_int_equal(sscanf(line + 6, "%31[a-z]", kind), 1);
            /* A meter is a network device, which needs [mqtt] enabled: not a default. */
            skip = strcmp(kind, "meter") == 0;
            machine = strcmp(kind, "machine") == 0;
            if (skip)
                continue;
            if (strstr(line, " NAME]"))
                fprintf(out, "[%s x]\n", kind);
            else
                fprintf(out, "[%s]\n", kind);
            if (strcmp(kind, "door") == 0)
                fprintf(out, "reader = x\nrelay = 1\n");
            if (strcmp(kind, "machine") == 0)
                fprintf(out, "reader = y\nrelay = 2\n");
            if (strcmp(kind, "webhook") == 0)
                fprintf(out, "url = https://example.org/hook\n");
            sections++;
            continue;
        }
        if (strncmp(line, "| `", 3) != 0 || skip || (machine && strncmp(line, "| `relay` ", 10) == 0))
            continue;       /* a machine's relay (or power) is given above */
        /* cells are separated by '|' not preceded by a backslash */
        p = line + 1;
        while (n_cells < 4) {
            size_t len = 0;
            for (; *p && !(*p == '|' && p[-1] != '\\'); p++)
                if (len < sizeof(cell[0]) - 1)
                    cell[n_cells][len++] = *p;
            cell[n_cells][len] = '\0';
            n_cells++;
            if (!*p)
                break;
            p++;
        }
        assert_int_equal(n_cells, 4);
        {
            char key[64], def[256];
            if (sscanf(cell[0], " `%63[^`]`", key) != 1)
                fail_msg("cannot read a key in: %s", line);
            if (strcmp(cell[2], " required ") == 0)
                continue;
            if (sscanf(cell[2], " `%255[^`]`", def) != 1)
                fail_msg("cannot read the default in: %s", line);
            if (strcmp(def, "(empty)") == 0)
                def[0] = '\0';
            /* A webhook needs a secret: the one key whose default cannot stand alone. */
            if (strcmp(key, "secret") == 0)
                snprintf(def, sizeof(def), "0123456789abcdef");
            fprintf(out, "%s = %s\n", key, def);
            keys++;
        }
    }
    fprintf(out, "[reader y]\n");     /* the machine's reader */
    assert_int_equal(fclose(out), 0);
    assert_int_equal(sections, 15);
    assert_true(keys >= 25);

    explicit = load_text_ok(text);
    implicit = load_text_ok("[site]\n[daemon]\n[hardware]\n[metering]\n[mqtt]\n[consortium]\n[privacy]\n"
                            "[reader x]\n[door x]\n"
                            "reader = x\nrelay = 1\n[machine x]\nreader = y\nrelay = 2\n"
                            "[reader y]\n[mail]\n[webhook x]\nurl = https://example.org/hook\n"
                            "secret = 0123456789abcdef\n");
    assert_config_equal(explicit, implicit);
    assert_int_equal(memcmp(&explicit->mail, &implicit->mail, sizeof(explicit->mail)), 0);
    assert_int_equal(explicit->n_webhooks, 1);
    explicit->webhooks[0].line = implicit->webhooks[0].line;   /* where each file has it */
    assert_int_equal(memcmp(&explicit->webhooks[0], &implicit->webhooks[0],
                            sizeof(explicit->webhooks[0])), 0);
    assert_string_equal(explicit->hardware.sim_state_dir, implicit->hardware.sim_state_dir);
    config_free(explicit);
    config_free(implicit);
    free(text);
    free(ref);
}

/* ---- SIGHUP: what may change live ---- */

static const char base_conf[] =
    "[hardware]\nbackend = sim\n"
    "[reader r1]\n[reader r2]\n"
    "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n"
    "[door back]\nreader = r2\nrelay = 18\n";

static bool same_hardware_after(const char *text, const char **ret_why)
{
    struct config *a = load_text_ok(base_conf), *b = load_text_ok(text);
    bool same;

    *ret_why = NULL;
    same = config_same_hardware(a, b, ret_why);
    config_free(a);
    config_free(b);
    return same;
}

static void test_same_hardware(void **state)
{
    const char *why;

    (void)state;
    assert_true(same_hardware_after(base_conf, &why));
    assert_null(why);
    /* timings, zones, schedules, names and log level change live */
    assert_true(same_hardware_after("[site]\nname = Other\ntimezone = Europe/Paris\n"
                                    "[daemon]\nlog_level = debug\nrecent_taps = 50\n"
                                    "[hardware]\nbackend = sim\n"
                                    "[reader r1]\n[reader r2]\n"
                                    "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n"
                                    "unlock_seconds = 12\nheld_open_seconds = 90\n"
                                    "zone = fablab\nfree_entry = Mon 09:00-10:00\n"
                                    "relock_on_close = false\n"
                                    "[door back]\nreader = r2\nrelay = 18\n",
                                    &why));
    assert_null(why);
}

static void test_not_same_hardware(void **state)
{
    static const struct {
        const char *what, *text, *why;     /* why: a word the reason must contain */
    } changes[] = {
        { "relay line", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 19\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "relay chip", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = gpiochip1:17\ncontact = 22\n"
          "[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "[hardware] chip", "[hardware]\nbackend = sim\nchip = gpiochip3\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "relay polarity", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\nrelay_active_low = true\ncontact = 22\n"
          "[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "contact removed", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\n[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "fail mode", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\nfail = safe\n"
          "[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "door renamed", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door main]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "door" },
        { "door removed", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n",
          "doors" },
        { "reader added", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n[reader r3]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "readers" },
        { "reader connstring", "[hardware]\nbackend = sim\n[reader r1]\nconnstring = x\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "reader" },
        { "backend", "[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "back-end" },
        { "control socket", "[daemon]\ncontrol_socket = /run/other.sock\n[hardware]\nbackend = sim\n"
          "[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "control socket" },
        { "database", "[daemon]\ndatabase = /tmp/other.db\n[hardware]\nbackend = sim\n"
          "[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n",
          "database" },
        { "mail", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n"
          "[mail]\nreminder_minutes = 30\n",
          "[mail]" },
        { "webhook added", "[hardware]\nbackend = sim\n[reader r1]\n[reader r2]\n"
          "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n[door back]\nreader = r2\nrelay = 18\n"
          "[webhook w]\nurl = https://x/y\nsecret = 0123456789abcdef\n",
          "[webhook]" },
    };
    (void)state;
    for (size_t i = 0; i < N_ELEMS(changes); i++) {
        const char *why = NULL;
        if (same_hardware_after(changes[i].text, &why))
            fail_msg("%s: reported as the same hardware", changes[i].what);
        /* the reason names what changed */
        if (!why || !strstr(why, changes[i].why))
            fail_msg("%s: reason '%s' does not mention '%s'", changes[i].what, why ? why : "(null)",
                     changes[i].why);
    }
}

/* The input bias is set when the lines are requested (door_init); a reload only swaps the
 * door's config pointer, so a bias change accepted on SIGHUP would silently not apply. */
static void test_input_bias_change_is_hardware(void **state)
{
    const char *why = NULL;

    (void)state;
    assert_false(same_hardware_after("[hardware]\nbackend = sim\ninput_bias = pull-up\n"
                                     "[reader r1]\n[reader r2]\n"
                                     "[door front]\nreader = r1\nrelay = 17\ncontact = 22\n"
                                     "[door back]\nreader = r2\nrelay = 18\n",
                                     &why));
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_minimal_file_defaults),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_chip_change_moves_bare_offsets),
        cmocka_unit_test(test_forward_reader_reference),
        cmocka_unit_test(test_value_spellings),
        cmocka_unit_test(test_unknown_key_and_section),
        cmocka_unit_test(test_strings_must_be_utf8),
        cmocka_unit_test(test_http_and_spaceapi_values),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_mail_and_webhooks),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_timezone),
        cmocka_unit_test(test_bad_schedule),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_named_sections),
        cmocka_unit_test(test_too_many_readers),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_references_and_shared_lines),
        cmocka_unit_test(test_section_headers),
        cmocka_unit_test(test_too_many_doors),
        cmocka_unit_test(test_too_many_webhooks),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_many_errors_in_one_file),
        cmocka_unit_test(test_error_overflow_counted),
        cmocka_unit_test(test_syntax_error_reported_with_other_errors),
        cmocka_unit_test(test_indented_keys),
        cmocka_unit_test(test_reference_mentions_every_section),
        cmocka_unit_test(test_every_default_parses),
        cmocka_unit_test(test_same_hardware),
        cmocka_unit_test(test_not_same_hardware),
        cmocka_unit_test(test_input_bias_change_is_hardware),
        cmocka_unit_test(test_network_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_config: config_load_stream() on arbitrary bytes.
 *
 * The configuration is semi-trusted (root writes it, but it is edited by hand, copied from
 * forums and reloaded on SIGHUP), so the loader must never crash and must either reject a
 * file with at least one "FILE:LINE: message" or return a config that keeps every promise
 * of config.h: values in range, names valid and unique, references resolved (a door's or a
 * machine's reader exists and serves nothing else), required lines present, no GPIO line
 * used twice, free_entry text that parses back to the same schedule. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

/* A configuration file is a few KiB; nothing in the loader caps the file itself (lines
 * are capped at inih's 200 bytes, sections by CONFIG_MAX_*), so cap what we feed. */
#define FUZZ_CONFIG_MAX (64 * 1024)
#define FUZZ_NAME "fuzz.conf"

#define CHECK_STR(field) FUZZ_CHECK(fuzz_terminated((field), sizeof(field)))

static void check_path(const char *p, size_t n)
{
    FUZZ_CHECK(fuzz_terminated(p, n));
    FUZZ_CHECK(p[0] == '\0' || p[0] == '/');
}
#define CHECK_PATH(field) check_path((field), sizeof(field))

static void check_line(const struct line_spec *l)
{
    CHECK_STR(l->chip);
    if (l->set)
        FUZZ_CHECK(l->offset <= 511);
}

static int same_line(const struct line_spec *a, const struct line_spec *b)
{
    return a->set && b->set && a->offset == b->offset && strcmp(a->chip, b->chip) == 0;
}

static void check_config(const struct config *c)
{
    const struct line_spec *lines[CONFIG_MAX_DOORS * 3 + CONFIG_MAX_READERS +
                                  CONFIG_MAX_MACHINES * 3];
    size_t n_lines = 0;
    const char *why = NULL;
    char db[512];

    CHECK_STR(c->path);
    FUZZ_CHECK(strcmp(c->path, FUZZ_NAME) == 0);

    FUZZ_CHECK(name_is_valid(c->site.id));
    CHECK_STR(c->site.name);
    CHECK_STR(c->site.timezone);
    FUZZ_CHECK(c->site.timezone[0] != '\0');

    CHECK_PATH(c->daemon.state_dir);
    CHECK_PATH(c->daemon.database);
    CHECK_PATH(c->daemon.control_socket);
    CHECK_PATH(c->daemon.reader_worker);
    CHECK_STR(c->daemon.control_group);
    FUZZ_CHECK(c->daemon.control_mode <= 0777);
    FUZZ_CHECK(c->daemon.log_level >= LOG_ERR && c->daemon.log_level <= LOG_DEBUG);
    FUZZ_CHECK(c->daemon.recent_taps >= 1 && c->daemon.recent_taps <= 100);

    FUZZ_CHECK(c->hardware.backend == 0 || c->hardware.backend == 1);
    CHECK_STR(c->hardware.chip);
    FUZZ_CHECK(c->hardware.debounce_ms >= 0 && c->hardware.debounce_ms <= 1000);
    FUZZ_CHECK(c->hardware.input_bias >= 0 && c->hardware.input_bias <= 3);
    CHECK_PATH(c->hardware.sim_state_dir);

    FUZZ_CHECK(c->n_readers <= CONFIG_MAX_READERS);
    for (unsigned i = 0; i < c->n_readers; i++) {
        const struct reader_config *r = &c->readers[i];
        FUZZ_CHECK(name_is_valid(r->name));
        FUZZ_CHECK(config_find_reader(c, r->name) == r);      /* names are unique */
        FUZZ_CHECK(r->line >= 1);
        FUZZ_CHECK(r->driver == 0 || r->driver == 1);
        CHECK_STR(r->connstring);
        if (strcmp(config_reader_drivers[r->driver], "libnfc") == 0)
            FUZZ_CHECK(r->connstring[0] != '\0');
        FUZZ_CHECK(r->poll_ms >= 5 && r->poll_ms <= 1000);
        FUZZ_CHECK(r->debounce_ms >= 0 && r->debounce_ms <= 10000);
        FUZZ_CHECK(r->heartbeat_timeout_ms >= 1500 && r->heartbeat_timeout_ms <= 60000);
        FUZZ_CHECK(r->backoff_max_seconds >= 1 && r->backoff_max_seconds <= 3600);
        check_line(&r->reset_line);
        CHECK_PATH(r->emulator);
        if (r->reset_line.set)
            lines[n_lines++] = &r->reset_line;
    }

    FUZZ_CHECK(c->n_doors <= CONFIG_MAX_DOORS);
    for (unsigned i = 0; i < c->n_doors; i++) {
        const struct door_config *d = &c->doors[i];
        struct schedule again;
        FUZZ_CHECK(name_is_valid(d->name));
        FUZZ_CHECK(config_find_door(c, d->name) == d);
        FUZZ_CHECK(d->line >= 1);
        FUZZ_CHECK(name_is_valid(d->reader));                  /* required */
        FUZZ_CHECK(config_find_reader(c, d->reader) != NULL);
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->doors[j].reader, d->reader) != 0);
        FUZZ_CHECK_MSG(d->relay.set, "the door has no relay line, yet relay is required");
        check_line(&d->relay);
        check_line(&d->contact);
        check_line(&d->exit_button);
        FUZZ_CHECK(d->unlock_seconds >= 1 && d->unlock_seconds <= 600);
        FUZZ_CHECK(d->held_open_seconds >= 0 && d->held_open_seconds <= 3600);
        FUZZ_CHECK(d->fail == DOOR_FAIL_SECURE || d->fail == DOOR_FAIL_SAFE);
        FUZZ_CHECK(name_is_valid(d->zone));
        CHECK_STR(d->free_entry_text);
        fuzz_check_schedule(&d->free_entry);
        FUZZ_CHECK(schedule_parse(d->free_entry_text, &again, NULL) == 0);
        FUZZ_CHECK(fuzz_schedule_equal(&again, &d->free_entry));
        const struct line_spec *mine[3] = { &d->relay, &d->contact, &d->exit_button };
        for (unsigned m = 0; m < 3; m++)
            if (mine[m]->set)
                lines[n_lines++] = mine[m];
    }

    FUZZ_CHECK(c->n_machines <= CONFIG_MAX_MACHINES);
    for (unsigned i = 0; i < c->n_machines; i++) {
        const struct machine_config *m = &c->machines[i];
        FUZZ_CHECK(name_is_valid(m->name));
        FUZZ_CHECK(config_find_machine(c, m->name) == m);
        FUZZ_CHECK(m->line >= 1);
        FUZZ_CHECK(name_is_valid(m->reader));                  /* required */
        FUZZ_CHECK(config_find_reader(c, m->reader) != NULL);
        /* A reader serves one door or one machine. */
        for (unsigned j = 0; j < c->n_doors; j++)
            FUZZ_CHECK(strcmp(c->doors[j].reader, m->reader) != 0);
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->machines[j].reader, m->reader) != 0);
        FUZZ_CHECK_MSG(m->relay.set, "the machine has no relay line, yet relay is required");
        check_line(&m->relay);
        check_line(&m->running);
        check_line(&m->warn);
        FUZZ_CHECK(name_is_valid(m->zone));
        FUZZ_CHECK(m->warn_minutes >= 0 && m->warn_minutes <= 60);
        FUZZ_CHECK(m->grace_minutes >= 0 && m->grace_minutes <= 60);
        FUZZ_CHECK(m->handover_seconds >= 0 && m->handover_seconds <= 600);
        FUZZ_CHECK(m->idle_off_minutes >= 0 && m->idle_off_minutes <= 240);
        FUZZ_CHECK(m->hard_max_minutes >= 1 && m->hard_max_minutes <= 10080);
        const struct line_spec *mine[3] = { &m->relay, &m->running, &m->warn };
        for (unsigned k = 0; k < 3; k++)
            if (mine[k]->set)
                lines[n_lines++] = mine[k];
    }

    /* No two readers, doors or machines drive or read the same GPIO line. */
    for (size_t i = 0; i < n_lines; i++)
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(!same_line(lines[i], lines[j]));

    FUZZ_CHECK(config_same_hardware(c, c, &why));
    FUZZ_CHECK(why == NULL);
    config_database_path(c, db, sizeof(db));
    FUZZ_CHECK(db[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config_errors errors;     /* 20 KiB: not on the stack */
    struct config *sentinel = (struct config *)&errors;    /* any non-NULL address */
    struct config *cfg = sentinel;
    FILE *f;
    int r;

    if (size > FUZZ_CONFIG_MAX)
        return 0;
    /* glibc accepts size 0 (an empty file); data may then be any pointer. */
    f = fmemopen(size ? (void *)data : (void *)&errors, size, "r");
    if (!f)
        return 0;
    memset(&errors, 0xA5, sizeof(errors));
    r = config_load_stream(f, FUZZ_NAME, &cfg, &errors);
    fclose(f);

    if (r == 0) {
        FUZZ_CHECK(cfg != sentinel && cfg != NULL);
        FUZZ_CHECK(errors.count == 0);
        check_config(cfg);
        config_free(cfg);
        return 0;
    }
    FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
    FUZZ_CHECK(cfg == sentinel);            /* *ret untouched on error */
    if (r == -EINVAL) {
        FUZZ_CHECK(errors.count >= 1);
        for (unsigned i = 0; i < errors.count && i < CONFIG_MAX_ERRORS; i++) {
            CHECK_STR(errors.msg[i]);
            FUZZ_CHECK(strncmp(errors.msg[i], FUZZ_NAME ":", strlen(FUZZ_NAME ":")) == 0);
        }
    }
    return 0;
}

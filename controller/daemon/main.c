/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* portierd: the Portier access controller daemon. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/portier/portier.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: portierd [OPTIONS]\n"
            "\n"
            "Portier access-and-booking controller: reads member cards, opens doors, keeps\n"
            "the access log. Runs in the foreground; logs to stderr (journald under systemd).\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE        configuration file (default " DEFAULT_CONFIG ")\n"
            "  -n, --check              check the configuration and exit (0: valid, 1: errors)\n"
            "      --config-reference[=markdown|scdoc]\n"
            "                           print every configuration key and exit\n"
            "  -h, --help               show this help and exit\n"
            "      --version            show the version and exit\n"
            "\n"
            "The reader worker of each libnfc reader is " PORTIER_READER_PATH "\n"
            "(unless [daemon] reader_worker or $PORTIER_READER_WORKER names another).\n"
            "\n"
            "Signals: SIGHUP reloads the configuration (kept unchanged if the new one is\n"
            "invalid or rewires hardware); SIGTERM drives every relay to its safe state and\n"
            "exits. See portierd(8), portier.conf(5) and portierctl(1).\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "check", no_argument, NULL, 'n' },
        { "config-reference", optional_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    const char *config_path = DEFAULT_CONFIG;
    bool check = false;
    struct daemon *d;
    int c, r;

    /* One malloc arena: the daemon's few threads (the sync thread, a password child's
     * setup) allocate little, and each arena of their own would keep its pages. */
    mallopt(M_ARENA_MAX, 1);
    /* Pages of up to a megabyte (a busy week's bookings page is 230 KB) come from the heap,
     * which keeps up to 4 MiB free before it shrinks: not a mmap/munmap (nor a brk up and
     * down, and the page faults after it) for every page built. What a burst left is given
     * back once the web is quiet (http.c: malloc_trim). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    /* Internal: the daemon runs long reports in a fresh process of its own (billing.c). */
    if (argc > 1 && strcmp(argv[1], "--job") == 0)
        return billing_job_main(argc - 1, argv + 1);

    while ((c = getopt_long(argc, argv, "c:nh", options, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'n': check = true; break;
        case 'R':
            if (!optarg || strcmp(optarg, "markdown") == 0)
                config_print_reference(stdout);
            else if (strcmp(optarg, "scdoc") == 0)
                config_print_reference_scdoc(stdout);
            else {
                fprintf(stderr, "portierd: --config-reference is markdown or scdoc\n");
                return 2;
            }
            return 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("portierd %s\n", PORTIER_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "portierd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check) {
        struct config_errors errors;
        struct config *cfg;
        r = config_load(config_path, &cfg, &errors);
        if (r < 0) {
            unsigned shown = errors.count < CONFIG_MAX_ERRORS ? errors.count : CONFIG_MAX_ERRORS;
            for (unsigned i = 0; i < shown; i++)
                fprintf(stderr, "%s\n", errors.msg[i]);
            if (errors.count > shown)
                fprintf(stderr, "... and %u more errors\n", errors.count - shown);
            return 1;
        }
        printf("%s: OK (%u doors, %u machines, %u readers)\n", config_path, cfg->n_doors,
               cfg->n_machines, cfg->n_readers);
        config_free(cfg);
        return 0;
    }
    r = daemon_new(config_path, &d);
    if (r < 0) {
        log_error("cannot start: %s", strerror(-r));
        return 1;
    }
    r = daemon_run(d);
    daemon_free(d);
    log_info("stopped; relays are in their safe state");
    return r;
}

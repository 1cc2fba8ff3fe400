/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_level = LOG_INFO;
static int log_journal = -1;    /* -1: not yet known */

void log_set_level(int priority) { log_level = priority; }
int log_get_level(void) { return log_level; }

int log_level_from_string(const char *s)
{
    static const struct { const char *name; int prio; } levels[] = {
        { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
        { "warning", LOG_WARNING }, { "err", LOG_ERR }, { "error", LOG_ERR },
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(s, levels[i].name) == 0)
            return levels[i].prio;
    return -EINVAL;
}

void log_msg(int priority, const char *fmt, ...)
{
    static const char *const names[] = { "emerg", "alert", "crit", "error",
                                         "warning", "notice", "info", "debug" };
    char line[1024];
    va_list ap;

    if (priority > log_level)
        return;
    /* journald sets JOURNAL_STREAM for services whose stderr it reads; it then parses the
     * "<N>" prefix as the priority and adds its own timestamp. */
    if (log_journal < 0)
        log_journal = getenv("JOURNAL_STREAM") != NULL;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One line, and nothing a terminal obeys: messages quote what clients sent (a URL, an
     * MQTT client's name), and a control byte there could fake a line or an escape. */
    for (unsigned char *p = (unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';

    if (log_journal) {
        fprintf(stderr, "<%d>%s\n", priority, line);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s: %s\n", stamp, ts.tv_nsec / 1000000L,
                names[priority & 7], line);
    }
}

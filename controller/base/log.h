/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* log: one-line messages to stderr, with syslog priority prefixes when journald reads us.
 *
 * Log where you decide, once (STYLE.md): store, policy, hw and parsers return -errno;
 * main, the access engine and the control server log. Never pass a card UID here. */
#pragma once
#include <stdarg.h>
#include <syslog.h>

/* Messages with a priority above the threshold are dropped. Default LOG_INFO. */
void log_set_level(int priority);
int log_get_level(void);
/* Parse "debug", "info", "notice", "warning", "err"; returns the priority or -EINVAL. */
int log_level_from_string(const char *s);

/* The message is cut at 1023 bytes; control characters in it (a newline, an escape) become
 * '?', so that one message is one line whatever it quotes. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)

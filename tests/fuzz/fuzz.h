/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz: what the libFuzzer harnesses share with each other and with replay_main.c.
 *
 * Each harness defines LLVMFuzzerTestOneInput(). Built with clang and -fsanitize=fuzzer it
 * is a fuzzer (fuzz_NAME); built with replay_main.c it replays the committed corpus under
 * any compiler (replay_NAME, ctest fuzz.replay.NAME). A harness never exits on bad input:
 * it aborts only when a contract of the module under test does not hold (FUZZ_CHECK), so
 * that both the fuzzer and the replay test report it with the input that broke it. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* The same, saying what the broken contract means. */
#define FUZZ_CHECK_MSG(cond, msg)                                                         \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: contract broken: %s: %s\n", __FILE__, __LINE__, #cond, \
                    (msg));                                                               \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A NUL-terminated heap copy of the input (free() it): what a C string from a config
 * line or a JSON string looks like to the parsers. An embedded NUL ends the string. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True if the fixed-size field buf holds a NUL-terminated string. */
static inline int fuzz_terminated(const char *buf, size_t n)
{
    return memchr(buf, '\0', n) != NULL;
}

/* What schedule.h promises of a parsed schedule, checked on its fields and through
 * schedule_contains() at the edges of every window. */
static inline void fuzz_check_schedule(const struct schedule *s)
{
    struct local_time lt;

    if (s->always) {
        for (lt.wday = 0; lt.wday < 7; lt.wday++)
            for (lt.minute = 0; lt.minute < 1440; lt.minute += 239)
                FUZZ_CHECK(schedule_contains(s, &lt));
        return;
    }
    FUZZ_CHECK(s->n_rules <= SCHEDULE_MAX_RULES);
    if (s->n_rules == 0) {  /* "never" */
        for (lt.wday = 0; lt.wday < 7; lt.wday++)
            for (lt.minute = 0; lt.minute < 1440; lt.minute += 239)
                FUZZ_CHECK(!schedule_contains(s, &lt));
        return;
    }
    for (unsigned i = 0; i < s->n_rules; i++) {
        const struct schedule_rule *r = &s->rules[i];
        FUZZ_CHECK(r->days != 0 && r->days < 0x80);
        FUZZ_CHECK(r->start <= 1439);
        /* schedule.h says 1..1440, but an end written "00:00" is kept as 0: the same
         * midnight as 1440, reached through the overnight branch. */
        FUZZ_CHECK(r->end <= 1440);
        FUZZ_CHECK(r->start != r->end);
        for (int d = 0; d < 7; d++) {
            if (!(r->days & (1u << d)))
                continue;
            lt.wday = d;
            lt.minute = r->start;
            FUZZ_CHECK(schedule_contains(s, &lt));
            if (r->start < r->end) {
                lt.minute = r->end - 1;
                FUZZ_CHECK(schedule_contains(s, &lt));
            } else {
                /* Overnight: runs to midnight, then into the next day until end. */
                lt.minute = 1439;
                FUZZ_CHECK(schedule_contains(s, &lt));
                if (r->end > 0) {
                    lt.wday = (d + 1) % 7;
                    lt.minute = r->end - 1;
                    FUZZ_CHECK(schedule_contains(s, &lt));
                }
            }
        }
    }
}

/* Field-wise equality (struct schedule has padding, so no memcmp). */
static inline int fuzz_schedule_equal(const struct schedule *a, const struct schedule *b)
{
    if (a->always != b->always || a->n_rules != b->n_rules)
        return 0;
    for (unsigned i = 0; i < a->n_rules && i < SCHEDULE_MAX_RULES; i++)
        if (a->rules[i].days != b->rules[i].days || a->rules[i].start != b->rules[i].start ||
            a->rules[i].end != b->rules[i].end)
            return 0;
    return 1;
}

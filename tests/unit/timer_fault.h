/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* timer_fault: make the event loop refuse to set timers, to test what callers do then.
 *
 * The unit tests that include this are linked with --wrap for sd-event's time calls (see
 * tests/CMakeLists.txt): every module in the test program that creates or arms a timer goes
 * through the wrappers in timer_fault.c, which fail while a fault is set and otherwise call
 * libsystemd. The seam is below the timer helper, so the same tests also ran against the
 * hand-written timers that came before it. */
#pragma once
#include <stdint.h>
#include <time.h>
#include <systemd/sd-event.h>

/* From now on, creating or setting a timer fails with error (a -errno); 0 ends the fault. */
void timer_fault_set(int error);
/* How many timer calls failed since the last timer_fault_set(). */
unsigned timer_fault_count(void);

int __wrap_sd_event_add_time(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec,
                             uint64_t accuracy, sd_event_time_handler_t callback, void *userdata);
int __real_sd_event_add_time(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec,
                             uint64_t accuracy, sd_event_time_handler_t callback, void *userdata);
int __wrap_sd_event_add_time_relative(sd_event *e, sd_event_source **s, clockid_t clock,
                                      uint64_t usec, uint64_t accuracy,
                                      sd_event_time_handler_t callback, void *userdata);
int __real_sd_event_add_time_relative(sd_event *e, sd_event_source **s, clockid_t clock,
                                      uint64_t usec, uint64_t accuracy,
                                      sd_event_time_handler_t callback, void *userdata);
int __wrap_sd_event_source_set_time(sd_event_source *s, uint64_t usec);
int __real_sd_event_source_set_time(sd_event_source *s, uint64_t usec);
int __wrap_sd_event_source_set_time_relative(sd_event_source *s, uint64_t usec);
int __real_sd_event_source_set_time_relative(sd_event_source *s, uint64_t usec);

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "timer_fault.h"

static int fault;
static unsigned failed;

void timer_fault_set(int error)
{
    fault = error;
    failed = 0;
}

unsigned timer_fault_count(void)
{
    return failed;
}

static int fail(void)
{
    failed++;
    return fault;
}

int __wrap_sd_event_add_time(sd_event *e, sd_event_source **s, clockid_t clock, uint64_t usec,
                             uint64_t accuracy, sd_event_time_handler_t callback, void *userdata)
{
    if (fault)
        return fail();
    return __real_sd_event_add_time(e, s, clock, usec, accuracy, callback, userdata);
}

int __wrap_sd_event_add_time_relative(sd_event *e, sd_event_source **s, clockid_t clock,
                                      uint64_t usec, uint64_t accuracy,
                                      sd_event_time_handler_t callback, void *userdata)
{
    if (fault)
        return fail();
    return __real_sd_event_add_time_relative(e, s, clock, usec, accuracy, callback, userdata);
}

int __wrap_sd_event_source_set_time(sd_event_source *s, uint64_t usec)
{
    if (fault)
        return fail();
    return __real_sd_event_source_set_time(s, usec);
}

int __wrap_sd_event_source_set_time_relative(sd_event_source *s, uint64_t usec)
{
    if (fault)
        return fail();
    return __real_sd_event_source_set_time_relative(s, usec);
}

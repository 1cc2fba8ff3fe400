/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "realtime.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "log.h"

int realtime_enter(int priority)
{
    struct sched_param sp = { .sched_priority = priority > 0 ? priority : 0 };
    int policy = priority > 0 ? SCHED_FIFO | SCHED_RESET_ON_FORK : SCHED_OTHER;
    int r;

    if (sched_setscheduler(0, policy, &sp) == 0) {
        if (priority > 0)
            log_info("the door path runs at real-time priority %d (SCHED_FIFO)", priority);
        return 0;
    }
    r = -errno;
    if (r == -EPERM)
        log_notice("the door path runs at normal priority: real-time priority %d is not "
                   "permitted (the unit's LimitRTPRIO=, or CAP_SYS_NICE; [daemon] "
                   "realtime_priority = 0 turns this off)", priority);
    else
        log_warning("cannot set the door path's priority: %s", strerror(-r));
    return r;
}

int realtime_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);

    if (r == 0) {
        if (pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT) != 0 ||
            pthread_mutex_init(m, &a) != 0)
            r = pthread_mutex_init(m, NULL);
        pthread_mutexattr_destroy(&a);
    }
    return -r;
}

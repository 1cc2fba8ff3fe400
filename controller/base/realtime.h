/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* realtime: the door path ahead of everything else the machine runs.
 *
 * A tap travels from a reader worker (a process) to the event loop's thread, which decides
 * and writes the relay. Both wait for a CPU like any other task: behind the web thread
 * sending pages, a wrk flood, a backup, the kernel's own network work. On a busy 2-core
 * machine that wait, not the decision, was most of a tap's time (docs/performance.md).
 *
 * So the loop's thread runs under SCHED_FIFO at a low real-time priority ([daemon]
 * realtime_priority), with SCHED_RESET_ON_FORK: every thread and process made afterwards
 * (the web thread, the disk sync, jobs, password hashing, e-mail) starts at normal
 * priority, whatever it does. The reader workers take real-time priority back in the
 * child (hw/reader_nfc.c), one below the loop's: they are the door path too, and one
 * spinning never holds up the loop. The loop sleeps when idle and builds at most one page
 * at a time; the kernel's real-time throttling (95 % of each second,
 * /proc/sys/kernel/sched_rt_runtime_us) and the watchdog bound a loop gone wrong. */
#pragma once
#include <pthread.h>

/* Put the calling thread at SCHED_FIFO priority (1..99) with SCHED_RESET_ON_FORK, or back
 * to normal scheduling with 0. Without the permission (no CAP_SYS_NICE, RLIMIT_RTPRIO
 * below priority: the unit's LimitRTPRIO=), logs one notice and stays as it is. 0 or
 * -errno. */
int realtime_enter(int priority);

/* A mutex the loop shares with another thread (the web thread, the disk sync, the offload
 * and delivery threads): priority inheritance, so that a thread holding it while the loop
 * waits runs at the loop's priority instead of waiting for a CPU behind everything else.
 * (A plain mutex where the system has none.) 0 or -errno. */
int realtime_mutex_init(pthread_mutex_t *m);

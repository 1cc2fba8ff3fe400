/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* slow_sync: every fsync() and fdatasync() of a process made slower, for tools/bench.
 *
 *   LD_PRELOAD=build/lib/portier-bench/slow_sync.so PORTIER_SLOW_SYNC_MS=20 portierd ...
 *
 * An SD card takes tens of milliseconds to make a write durable, a virtual disk a fraction
 * of one. This sleeps PORTIER_SLOW_SYNC_MS (default 20) before each real call, in whichever
 * thread makes it, so the bench can show what a slow disk does to the doors: nothing, as
 * long as no sync runs on the event loop. It also counts the calls made on the process's
 * main thread (the event loop) and prints them at exit to stderr:
 *   "slow_sync: N syncs, M on the main thread". Not installed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_ulong calls, on_main;

static void slow_down(void)
{
    static long ms = -1;
    struct timespec ts;

    if (ms < 0) {
        const char *v = getenv("PORTIER_SLOW_SYNC_MS");
        ms = v ? atol(v) : 20;
    }
    atomic_fetch_add(&calls, 1);
    if ((pid_t)syscall(SYS_gettid) == getpid()) {
        atomic_fetch_add(&on_main, 1);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "slow_sync: main thread sync at %lld us\n",
                (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0)
        ;
}

typedef int (*sync_fn)(int fd);

/* Wait, then make the real call named name (looked up once, into *real). */
static int slow_sync(sync_fn *real, const char *name, int fd)
{
    if (!*real)
        *real = (sync_fn)dlsym(RTLD_NEXT, name);
    slow_down();
    return (*real)(fd);
}

int fsync(int fd)
{
    static sync_fn real;
    return slow_sync(&real, "fsync", fd);
}

int fdatasync(int fd)
{
    static sync_fn real;
    return slow_sync(&real, "fdatasync", fd);
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "slow_sync: %lu syncs, %lu on the main thread\n",
            (unsigned long)atomic_load(&calls), (unsigned long)atomic_load(&on_main));
}

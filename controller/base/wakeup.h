/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* wakeup: how a module's own thread has the event loop run a callback.
 *
 * The modules with a thread (base/offload.c, daemon/commit.c, delivery/transport.c) hand
 * their results to the loop the same way: the thread queues them under its lock and calls
 * wakeup_signal(); the loop then runs fn, which takes everything queued. Signals given
 * before the loop wakes are counted once: fn runs at least once after each signal, maybe
 * once for several, so it must take all that is ready.
 *
 * Behind it is an eventfd watched on the loop (so it is one descriptor, O_CLOEXEC). */
#pragma once
#include <stdint.h>
#include <systemd/sd-event.h>

struct wakeup;

/* Runs on the loop after wakeup_signal(). It may call wakeup_free() on its own wakeup. */
typedef void (*wakeup_fn)(void *userdata);

/* Create a wakeup on loop; priority as sd_event_source_set_priority() (lower runs first,
 * 0 is sd-event's default). 0 and *ret set, or -errno (-ENOMEM, -EMFILE) and *ret
 * untouched. fn and userdata must stay valid until wakeup_free(). */
int wakeup_new(sd_event *loop, int64_t priority, wakeup_fn fn, void *userdata,
               struct wakeup **ret);

/* From any thread (and from a signal handler: it only write()s): have fn run on the loop.
 * w must not be freed meanwhile — join the thread before wakeup_free(). */
void wakeup_signal(struct wakeup *w);

/* Stop watching and release; a pending signal is dropped. NULL is fine. Returns NULL. */
struct wakeup *wakeup_free(struct wakeup *w);

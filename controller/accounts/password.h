/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* password: argon2id hashing and checking, away from the event loop.
 *
 * One argon2id computation (libsodium's "interactive" limits: 64 MiB, 2 passes) takes
 * tenths of a second on a Raspberry Pi: on the loop, a login would hold every door that
 * long. Each computation runs in a forked child that only calls libsodium and exits; the
 * result comes back through a pipe, and the child's exit through sd-event. At most
 * PASSWORD_JOBS_MAX run at once (-EBUSY beyond), which also bounds the memory they take. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256
#define PASSWORD_JOBS_MAX 2

/* ok: the password matches. error: the check could not run (then ok is false). */
typedef void (*password_checked_fn)(bool ok, bool error, void *userdata);
/* hash: the argon2id string, or NULL on error; borrowed for the call. */
typedef void (*password_hashed_fn)(const char *hash, void *userdata);

/* Start checking password against hash; fn is called later, from the loop, exactly once
 * unless password_cancel(userdata) is called first. 0 or -errno (-EBUSY: too many jobs). */
int password_check_async(sd_event *loop, const char *hash, const char *password,
                         password_checked_fn fn, void *userdata);
int password_hash_async(sd_event *loop, const char *password, password_hashed_fn fn,
                        void *userdata);
/* Forget the pending jobs of userdata (its owner is going away); they finish unheard. */
void password_cancel(void *userdata);

/* What a password must be: NULL if acceptable, else why not (static text). */
const char *password_weakness(const char *password);
/* Whether text looks like a hash we can check (an argon2id string). */
bool password_hash_valid(const char *text);

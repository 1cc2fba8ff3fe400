/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* desfire: the reader worker's DESFire side (portier-reader only).
 *
 * With the keys the daemon sends at start (desfire_keys_take), every card that arrives is
 * asked to prove it holds its Portier key (desfire_tap): AES mutual authentication with a
 * key diversified from the master key and the card's UID (desfire_kdf.h), then the card's
 * real UID read under the session key. The daemon only hears the outcome: "card X
 * authenticated" or why not (reader_proto.h, enum reader_auth).
 *
 * Provisioning and deprovisioning (desfire_job_*) run when the daemon asks, on the next
 * card presented: they create or remove the Portier applications and set their keys, and
 * every step can be repeated, so a card taken away halfway is finished by running the
 * command again.
 *
 * libfreefare 0.4.0 trusts the lengths a card sends: a card answering "OK" with no data
 * passes its authentication, and long multi-frame answers overrun its callers' buffers.
 * The worker therefore checks every answer a card gives before libfreefare reads it
 * (the guard in desfire.c): any answer not of the length the command calls for ends the
 * exchange as a failed authentication.
 *
 * Keys live in locked memory, are wiped at exit, and never leave the worker. */
#pragma once
#include <nfc/nfc.h>
#include <stdbool.h>
#include <stdint.h>

#include "reader_proto.h"

/* Wait up to timeout_ms for the daemon's KEYS message on fd and keep the keys. 0 (keys or
 * none, as the daemon said), or -errno (nothing came, or a malformed message). */
int desfire_keys_take(int fd, int timeout_ms);
/* Whether the worker holds a master key (taps are authenticated, jobs can run). */
bool desfire_enabled(void);
/* Wipe the keys. */
void desfire_keys_forget(void);

struct desfire_tap {
    enum reader_auth auth;
    enum reader_app app;                    /* with READER_AUTH_OK */
    uint8_t key_version;                    /* with READER_AUTH_OK */
    uint8_t uid[READER_DESFIRE_UID_LEN];    /* with READER_AUTH_OK: the real UID */
    char why[64];                           /* for the worker's own log: which step failed */
};

/* Whether t answers as a DESFire (SAK 0x20, ATS from 75 77 81 02): only such a card is
 * worth an authentication; any other is READER_AUTH_NOT_DESFIRE at once. */
bool desfire_candidate(const nfc_target *t);

/* Authenticate the card t, which the chip has selected (not halted). Leaves it selected.
 * Never fails: the outcome is in *ret. */
void desfire_tap(nfc_device *dev, const nfc_target *t, struct desfire_tap *ret);

/* ---- jobs the daemon asks for ---- */

/* Take the commands waiting on fd, without waiting: each is checked (reader_cmd_check) and
 * handed to desfire_job_take(); a job it ends is answered through answer() (a DONE message,
 * for send). 0 once none is left; -EPIPE if the daemon is gone (end of stream); -EBADMSG
 * with *ret_why (static text) for a malformed command or KEYS sent again, the daemon's bug:
 * the worker says so and stops. */
int desfire_commands_take(int fd, uint64_t now_ms, void (*answer)(struct reader_msg *m),
                          const char **ret_why);

/* Take a PROVISION / DEPROVISION / CANCEL (already checked). A new job replaces a pending
 * one, which is answered CANCELLED in *ret_done (returns true then). */
bool desfire_job_take(const struct reader_cmd *cmd, uint64_t now_ms, struct reader_msg *ret_done);
bool desfire_job_pending(void);
/* The pending job has waited longer than its timeout: *ret_done says so. */
bool desfire_job_expired(uint64_t now_ms, struct reader_msg *ret_done);
/* Run the pending job on card t (selected), alone on the reader (targets cards answered).
 * Fills *ret_done (type DONE, request, status, uid, text). */
void desfire_job_run(nfc_device *dev, const nfc_target *t, int targets, struct reader_msg *ret_done);

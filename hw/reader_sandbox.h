/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_sandbox: least privilege for the reader worker (portier-reader).
 *
 * The worker runs libnfc, which parses whatever the reader and the card send. Once its
 * device is open, it keeps only what polling needs:
 *
 *   1. descriptors: stdin on /dev/null, stdout and stderr as given (the journal), fd 3 (its
 *      socket to portierd) and nothing else, closed before libnfc opens the device; the
 *      device's own descriptors come after (reader_sandbox_prepare_fds);
 *   2. PR_SET_NO_NEW_PRIVS, then a seccomp allow-list of system calls; anything else kills
 *      the process with SIGSYS (SCMP_ACT_KILL_PROCESS) (reader_sandbox_enter).
 *
 * The allow-list is what libnfc 1.8's drivers need in steady state, read from their source
 * and checked with strace against pn532-emu: read/write/ioctl on the device, select,
 * nanosleep, clock reads, memory for malloc (never executable), send on the socket, close
 * and exit, and what abort() needs to die of SIGABRT. It has no open, socket, fork, exec,
 * dup or pipe. Whatever the worker needs a new descriptor or a file for (libnfc's config,
 * the device, a library's initialisation) must happen before reader_sandbox_enter().
 * Card exchanges through the open device (libfreefare, say) use the same calls. */
#pragma once
#include <stdbool.h>

/* Make fds 0..2 safe and close every descriptor above parent_fd, which must be an open
 * SOCK_SEQPACKET socket. stdin is replaced by /dev/null; a closed stdout or stderr is
 * opened on /dev/null, so that a device libnfc opens later never lands on 0..2. Call
 * first thing in main(). 0, or -errno (-ENOTSOCK: parent_fd is not the parent's socket). */
int reader_sandbox_prepare_fds(int parent_fd);

/* Set PR_SET_NO_NEW_PRIVS and load the allow-list. From here on, a system call off the list
 * kills the process with SIGSYS. 0, or -errno (the kernel lacks seccomp filters, ...):
 * the caller must then not go on, as it would run unconfined. */
int reader_sandbox_enter(void);

/* Self-test of a sandboxed worker (`portier-reader --sandbox-selftest`): try a system call
 * the allow-list forbids (socket(2)). Inside the sandbox this never returns: the kernel
 * kills the process with SIGSYS. Returns only if the call was allowed, with the socket
 * already closed: the caller must report the sandbox as not enforced. Harmless either way:
 * it can only make the worker die. */
void reader_sandbox_selftest(void);

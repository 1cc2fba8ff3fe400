/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fileio: files that survive a power cut whole or not at all. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Write data to path atomically and durably: a temporary file beside it, written and
 * fsync'd, renamed over path, and the directory fsync'd, so after a power cut path holds
 * either its old content or the new one, never a part. mode: the new file's permissions.
 * 0 or -errno (the temporary file is removed). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* write() all len bytes of data to fd (again after EINTR or a short write). 0 or -errno. */
int file_write_full(int fd, const void *data, size_t len);

/* fsync the directory that holds path (its new or renamed entries become durable). */
int file_sync_dir(const char *path);

/* The whole of a small file into buf (n bytes): its length in *ret_len (bytes read so far,
 * on an error too) and a NUL after it, for a file read as text; *ret_mode (may be NULL): the
 * file's mode, to warn about keys others can read. 0, -EFBIG if it does not fit with the
 * NUL, or -errno. The caller wipes buf if the file held a secret. */
int file_read_small(const char *path, char *buf, size_t n, size_t *ret_len, mode_t *ret_mode);

/* The first line of the file at path, without its line end ("\n" or "\r\n"), into buf (n
 * bytes with the NUL): for files that hold one value, such as a password or a key. An empty
 * file gives "". 0, -EFBIG if the line does not fit (buf is then wiped: no part of a secret
 * stays in it), or -errno. Reads with read(2), so no stdio buffer keeps a copy. */
int file_read_first_line(const char *path, char *buf, size_t n);

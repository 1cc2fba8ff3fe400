/* fileio: files that survive a power cut whole or not at all. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Write data to path atomically and durably: a temporary file beside it, written and
 * fsync'd, renamed over path, and the directory fsync'd, so after a power cut path holds
 * either its old content or the new one, never a part. mode: the new file's permissions.
 * 0 or -errno (the temporary file is removed). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* fsync the directory that holds path (its new or renamed entries become durable). */
int file_sync_dir(const char *path);

/* Read a small file whole into buf (at most n - 1 bytes: a file that fills buf is -EFBIG).
 * *ret_len: bytes read; *ret_mode (may be NULL): the file's mode. 0 or -errno. */
int file_read_small(const char *path, void *buf, size_t n, size_t *ret_len, mode_t *ret_mode);

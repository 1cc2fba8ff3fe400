/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    char *slash;
    int fd, r = 0;

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
        return -ENAMETOOLONG;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

int file_write_full(int fd, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    int fd, r;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    r = file_write_full(fd, data, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    return file_sync_dir(path);
}

/* read() until count bytes, end of file or an error: the bytes read, or -errno. */
static ssize_t read_full(int fd, char *buf, size_t count)
{
    size_t done = 0;

    while (done < count) {
        ssize_t k = read(fd, buf + done, count - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        done += (size_t)k;
    }
    return (ssize_t)done;
}

int file_read_small(const char *path, char *buf, size_t n, size_t *ret_len, mode_t *ret_mode)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    ssize_t k;

    *ret_len = 0;
    if (fd < 0)
        return -errno;
    if (ret_mode)
        *ret_mode = fstat(fd, &st) == 0 ? st.st_mode : 0;
    if (n == 0) {
        close(fd);
        return -EFBIG;
    }
    k = read_full(fd, buf, n);
    close(fd);
    if (k < 0)
        return (int)k;
    *ret_len = (size_t)k;
    if ((size_t)k == n) {
        buf[n - 1] = '\0';
        return -EFBIG;
    }
    buf[k] = '\0';
    return 0;
}

int file_read_first_line(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r = 0;
    size_t len, line;
    ssize_t k;
    char after;

    if (fd < 0)
        return -errno;
    k = n > 0 ? read_full(fd, buf, n - 1) : -EFBIG;
    /* Full without a line end: the line fits only if the file or the line ends there. */
    if (k > 0 && (size_t)k == n - 1 && !memchr(buf, '\n', (size_t)k) &&
        (r = (int)read_full(fd, &after, 1)) > 0)
        r = after == '\n' || after == '\r' ? 0 : -EFBIG;
    close(fd);
    if (k < 0 || r < 0) {
        if (n > 0)
            explicit_bzero(buf, n);
        return k < 0 ? (int)k : r;
    }
    len = (size_t)k;
    buf[len] = '\0';
    /* The line, and nothing of the lines after it. */
    line = strcspn(buf, "\r\n");
    explicit_bzero(buf + line, len - line);
    return 0;
}

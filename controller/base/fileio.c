#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
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

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    const char *p = data;
    size_t done = 0;
    int fd, r = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)n;
    }
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

int file_read_small(const char *path, char *buf, size_t n, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    ssize_t k;

    *ret_len = 0;
    if (fd < 0)
        return -errno;
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
    size_t len = 0;
    char after;
    ssize_t k;

    if (fd < 0)
        return -errno;
    if (n == 0) {
        close(fd);
        return -EFBIG;
    }
    /* A chunk at a time until the line ends or buf is full: a key file's first line is
     * often all of it, and the rest (comments) is never read. */
    while (len < n - 1 && !memchr(buf, '\n', len)) {
        k = read(fd, buf + len, n - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            r = k < 0 ? -errno : 0;
            break;
        }
        len += (size_t)k;
    }
    /* Full without a line end: the line fits only if the file ends or the line does. */
    if (r == 0 && len == n - 1 && !memchr(buf, '\n', len) &&
        (k = read_full(fd, &after, 1)) != 0)
        r = k < 0 ? (int)k : after == '\n' || after == '\r' ? 0 : -EFBIG;
    close(fd);
    buf[len] = '\0';
    if (r == 0)
        buf[strcspn(buf, "\r\n")] = '\0';
    else
        explicit_bzero(buf, n);
    return r;
}

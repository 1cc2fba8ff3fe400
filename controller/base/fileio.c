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

int file_read_small(const char *path, void *buf, size_t n, size_t *ret_len, mode_t *ret_mode)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
    struct stat st;
    size_t len = 0;
    ssize_t k;

    if (fd < 0)
        return -errno;
    if (ret_mode && fstat(fd, &st) == 0)
        *ret_mode = st.st_mode;
    while (len < n && (k = read(fd, (char *)buf + len, n - len)) != 0) {
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        len += (size_t)k;
    }
    close(fd);
    if (r == 0 && len == n)
        r = -EFBIG;
    *ret_len = len;
    return r;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* powercut: an LD_PRELOAD layer that knows what a power cut would leave on disk.
 *
 * It watches the files below PORTIER_POWERCUT_DIR (the daemon's state directory) and keeps,
 * in PORTIER_POWERCUT_SHADOW, what a disk is sure to hold after a power cut. The model is
 * the strict POSIX one (stricter than ext4's ordered mode, so what passes here holds on any
 * file system that honours fsync):
 *   - a file's content is durable as of its last completed fsync() or fdatasync();
 *   - a directory's entries (creations, renames, removals, and the subdirectories in it)
 *     are durable as of the last fsync() of that directory;
 *   - everything else (a write not yet synced, a rename whose directory was not synced) is
 *     lost.
 * Content is kept per inode (SHADOW/inodes/N: what inode N held at its last sync), names per
 * directory (the listing at its last sync). At the cut, the layer writes the disk a power
 * cut would leave into SHADOW/disk: every durable name whose directories are all durable,
 * with the synced content of its inode (or empty, if the inode was never synced).
 *
 * Every write, truncation, sync, rename, removal and mkdir below the watched directory is an
 * event. With PORTIER_POWERCUT_AT=N the process dies (SIGKILL, "the power is cut") just
 * before the N-th; the disk is written first. PORTIER_POWERCUT_COUNT=FILE: the number of
 * events so far is written there at each one, so that a test can spread cut points over a
 * whole run; PORTIER_POWERCUT_TRACE=1 logs each event on stderr. A process that exits normally (or on SIGTERM) writes the disk as it would be
 * after a cut at that moment. The SQLite shared-memory file (-shm) is not watched: SQLite
 * rebuilds it. Only the process that loaded the layer counts (not its forked children), and
 * programs it starts do not inherit it. Only a test's build uses this; it is never
 * installed. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 4096
#define MAX_NAMES 1024

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static char watched[PATH_MAX], shadow[PATH_MAX], count_path[PATH_MAX];
static size_t watched_len;
static long long cut_at = -1, events;
static pid_t owner;
static char *fd_path[MAX_FDS];
static unsigned dead_inodes;
static bool trace;

/* The durable names: a path below the watched directory and what it names. */
static struct name {
    char path[PATH_MAX];
    bool dir;
    char content[64];       /* the file under SHADOW/inodes/ with its synced content */
} names[MAX_NAMES];
static int n_names;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate64)(int, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);
static int (*real_mkdir)(const char *, mode_t);

static void fail(const char *what)
{
    fprintf(stderr, "powercut: %s: %s\n", what, strerror(errno));
    abort();
}

/* A path (PATH_MAX bytes) made like snprintf; a path too long for it is a failure. */
__attribute__((format(printf, 2, 3))) static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX) {
        errno = ENAMETOOLONG;
        fail(fmt);
    }
}

static bool active(void)
{
    return watched_len && getpid() == owner;
}

static bool is_watched(const char *path)
{
    size_t n = strlen(path);
    if (!watched_len || strncmp(path, watched, watched_len) != 0 ||
        (path[watched_len] != '/' && path[watched_len] != '\0'))
        return false;
    return !(n > 4 && strcmp(path + n - 4, "-shm") == 0);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536], tmp[PATH_MAX];
    int in, out;
    ssize_t n;

    pathf(tmp, "%s~", to);
    in = real_open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        fail(from);
    out = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        fail(tmp);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (real_write(out, buf, (size_t)n) != n)
            fail(tmp);
    if (n < 0)
        fail(from);
    real_close(out);
    real_close(in);
    if (real_rename(tmp, to) < 0)
        fail(to);
}

static void inode_file(ino_t ino, char out[64])
{
    snprintf(out, 64, "%llu", (unsigned long long)ino);
}

static void inode_path(const char *content, char out[PATH_MAX])
{
    pathf(out, "%s/inodes/%s", shadow, content);
}

/* The content of the file at path (inode ino) as it is now becomes durable. */
static void content_synced(const char *path, ino_t ino)
{
    char content[64], dst[PATH_MAX];

    inode_file(ino, content);
    inode_path(content, dst);
    copy_file(path, dst);
}

/* A name in dir (a direct entry) as the directory's last sync left it. */
static void forget_entries_of(const char *dir)
{
    size_t dl = strlen(dir);
    int kept = 0;

    for (int i = 0; i < n_names; i++) {
        const char *p = names[i].path;
        bool direct = strncmp(p, dir, dl) == 0 && p[dl] == '/' && !strchr(p + dl + 1, '/');
        if (!direct)
            names[kept++] = names[i];
    }
    n_names = kept;
}

static void add_name(const char *path, bool dir, ino_t ino)
{
    if (n_names == MAX_NAMES) {
        errno = ENOSPC;
        fail("too many files");
    }
    pathf(names[n_names].path, "%s", path);
    names[n_names].dir = dir;
    if (!dir)
        inode_file(ino, names[n_names].content);
    n_names++;
}

/* The directory dir was synced: its entries as they are now are its durable entries. */
static void dir_synced(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        fail(dir);
    forget_entries_of(dir);
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        pathf(path, "%s/%s", dir, e->d_name);
        if (!is_watched(path) || lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))
            add_name(path, S_ISDIR(st.st_mode), st.st_ino);
    }
    closedir(d);
}

/* At start, whatever is there is on disk: its names and contents are durable. */
static void take_initial(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        fail(dir);
    while ((e = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        pathf(path, "%s/%s", dir, e->d_name);
        if (!is_watched(path) || lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            add_name(path, true, 0);
            take_initial(path);
        } else if (S_ISREG(st.st_mode)) {
            add_name(path, false, st.st_ino);
            content_synced(path, st.st_ino);
        }
    }
    closedir(d);
}

/* A new inode numbered ino: a dead file's inode number is being reused, so the synced
 * content of the dead one moves aside, with the durable names that still point to it. */
static void inode_born(ino_t ino)
{
    char content[64], from[PATH_MAX], to[PATH_MAX], dead[64];

    inode_file(ino, content);
    inode_path(content, from);
    if (access(from, F_OK) != 0)
        return;
    snprintf(dead, sizeof(dead), "dead-%u", ++dead_inodes);
    inode_path(dead, to);
    if (real_rename(from, to) < 0)
        fail(to);
    for (int i = 0; i < n_names; i++)
        if (!names[i].dir && strcmp(names[i].content, content) == 0)
            snprintf(names[i].content, sizeof(names[i].content), "%s", dead);
}

static bool name_durable_dir(const char *dir)
{
    if (strcmp(dir, watched) == 0)
        return true;
    for (int i = 0; i < n_names; i++)
        if (names[i].dir && strcmp(names[i].path, dir) == 0)
            return true;
    return false;
}

/* Whether every directory above path, up to the watched one, has a durable name. */
static bool reachable(const char *path)
{
    char dir[PATH_MAX], *slash;

    pathf(dir, "%s", path);
    while ((slash = strrchr(dir, '/')) && (size_t)(slash - dir) >= watched_len) {
        *slash = '\0';
        if (!name_durable_dir(dir))
            return false;
    }
    return true;
}

/* Write SHADOW/disk: what the disk holds after a power cut now. */
static void write_disk(void)
{
    char disk[PATH_MAX], tmp[PATH_MAX];

    pathf(disk, "%s/disk", shadow);
    pathf(tmp, "%s/disk.new", shadow);
    if (real_mkdir(tmp, 0700) < 0)
        fail(tmp);
    /* Directories first (names are kept in the order their directories were listed). */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n_names; i++) {
            char dst[PATH_MAX];
            if (names[i].dir != (pass == 0) || !reachable(names[i].path))
                continue;
            pathf(dst, "%s%s", tmp, names[i].path + watched_len);
            if (names[i].dir) {
                char *p = dst + strlen(tmp);
                /* parents may come later in the list: make them on the way */
                while ((p = strchr(p + 1, '/'))) {
                    *p = '\0';
                    real_mkdir(dst, 0700);
                    *p = '/';
                }
                if (real_mkdir(dst, 0700) < 0 && errno != EEXIST)
                    fail(dst);
            } else {
                char src[PATH_MAX];
                inode_path(names[i].content, src);
                if (access(src, F_OK) == 0) {
                    copy_file(src, dst);
                } else {
                    int fd = real_open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                    if (fd < 0)
                        fail(dst);      /* a name that never had content synced: empty */
                    real_close(fd);
                }
            }
        }
    if (real_rename(tmp, disk) < 0)
        fail(disk);
}

static void init(void) __attribute__((constructor));
static void init(void)
{
    const char *w = getenv("PORTIER_POWERCUT_DIR"), *s = getenv("PORTIER_POWERCUT_SHADOW");
    const char *at = getenv("PORTIER_POWERCUT_AT"), *c = getenv("PORTIER_POWERCUT_COUNT");
    char inodes[PATH_MAX];

    if (real_open)
        return;
#define REAL(name) real_##name = dlsym(RTLD_NEXT, #name)
    REAL(open); REAL(openat); REAL(close); REAL(write); REAL(writev); REAL(fsync);
    REAL(fdatasync); REAL(rename); REAL(unlink); REAL(mkdir);
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
#undef REAL
    /* The programs this one starts (reader workers, mail) run without the layer. */
    unsetenv("LD_PRELOAD");
    if (!w || !s || !realpath(w, watched) || !realpath(s, shadow))
        return;
    watched_len = strlen(watched);
    owner = getpid();
    cut_at = at ? atoll(at) : -1;
    trace = getenv("PORTIER_POWERCUT_TRACE") != NULL;
    if (c)
        snprintf(count_path, sizeof(count_path), "%s", c);
    pathf(inodes, "%s/inodes", shadow);
    if (real_mkdir(inodes, 0700) < 0)
        fail(inodes);
    take_initial(watched);
}

static void fini(void) __attribute__((destructor));
static void fini(void)
{
    if (!active())
        return;
    pthread_mutex_lock(&lock);
    write_disk();
    watched_len = 0;
    pthread_mutex_unlock(&lock);
}

/* The event about to happen (op on path): count it, and cut the power if it is the one. */
static void event(const char *op, const char *path)
{
    events++;
    if (trace)
        fprintf(stderr, "powercut: %lld %s %s\n", events, op, path);
    if (count_path[0]) {
        int fd = real_open(count_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char text[32];
            int n = snprintf(text, sizeof(text), "%lld\n", events);
            (void)!real_write(fd, text, (size_t)n);
            real_close(fd);
        }
    }
    if (cut_at > 0 && events >= cut_at) {
        write_disk();
        kill(getpid(), SIGKILL);    /* with the lock held: nothing else happens meanwhile */
    }
}

/* The absolute path of path as given to open() or mkdir(), its last part unresolved. */
static bool absolute(int dirfd, const char *path, char out[PATH_MAX])
{
    char dir[PATH_MAX], real[PATH_MAX], *slash;

    if (path[0] == '/') {
        pathf(dir, "%s", path);
    } else if (dirfd == AT_FDCWD) {
        if (!getcwd(dir, sizeof(dir)))
            return false;
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof(dir) - n, "/%s", path);
    } else {
        if (dirfd < 0 || dirfd >= MAX_FDS || !fd_path[dirfd])
            return false;
        pathf(dir, "%s/%s", fd_path[dirfd], path);
    }
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
        dir[strlen(dir) - 1] = '\0';
    slash = strrchr(dir, '/');
    *slash = '\0';
    if (!realpath(dir[0] ? dir : "/", real))
        return false;
    if (strcmp(slash + 1, ".") == 0)
        pathf(out, "%s", real);
    else
        pathf(out, "%s/%s", strcmp(real, "/") ? real : "", slash + 1);
    return true;
}

static void remember_fd(int fd, const char *path)
{
    if (fd < 0 || fd >= MAX_FDS)
        return;
    free(fd_path[fd]);
    fd_path[fd] = path ? strdup(path) : NULL;
}

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
    char abs[PATH_MAX];
    bool existed = true;
    int fd;

    if (!real_open)
        init();
    if (!active() || !absolute(dirfd, path, abs) ||
        strncmp(abs, watched, watched_len) != 0) {
        fd = real_openat(dirfd, path, flags, mode);
        if (fd >= 0 && fd < MAX_FDS && fd_path[fd]) {
            pthread_mutex_lock(&lock);
            remember_fd(fd, NULL);
            pthread_mutex_unlock(&lock);
        }
        return fd;
    }
    pthread_mutex_lock(&lock);
    if (flags & O_CREAT)
        existed = access(abs, F_OK) == 0;
    fd = real_openat(dirfd, path, flags, mode);
    if (fd >= 0) {
        struct stat st;
        remember_fd(fd, abs);
        if (!existed && is_watched(abs) && fstat(fd, &st) == 0)
            inode_born(st.st_ino);
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, mode);
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int close(int fd)
{
    if (!real_close)
        init();
    if (fd >= 0 && fd < MAX_FDS && fd_path[fd]) {
        pthread_mutex_lock(&lock);
        remember_fd(fd, NULL);
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

static bool watched_fd(int fd)
{
    return active() && fd >= 0 && fd < MAX_FDS && fd_path[fd] && is_watched(fd_path[fd]);
}

/* Runs call, an event on a watched descriptor, under the lock. */
#define EVENT_ON_FD(fd, call)                                                               \
    do {                                                                                      \
        if (!watched_fd(fd))                                                                  \
            return call;                                                                      \
        pthread_mutex_lock(&lock);                                                            \
        event(#call, fd_path[fd]);                                                            \
        __typeof__(call) r_ = call;                                                           \
        pthread_mutex_unlock(&lock);                                                          \
        return r_;                                                                            \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
    EVENT_ON_FD(fd, real_write(fd, buf, n));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    EVENT_ON_FD(fd, real_pwrite64(fd, buf, n, off));
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite64")));

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    EVENT_ON_FD(fd, real_writev(fd, iov, cnt));
}

int ftruncate64(int fd, off_t len)
{
    EVENT_ON_FD(fd, real_ftruncate64(fd, len));
}
int ftruncate(int fd, off_t len) __attribute__((alias("ftruncate64")));

static int synced(int fd, int (*real)(int))
{
    struct stat st;
    int r;

    if (!real)
        init();
    if (!(active() && fd >= 0 && fd < MAX_FDS && fd_path[fd] &&
          strncmp(fd_path[fd], watched, watched_len) == 0))
        return real(fd);
    pthread_mutex_lock(&lock);
    event(real == real_fsync ? "fsync" : "fdatasync", fd_path[fd]);
    r = real(fd);
    if (r == 0 && fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            dir_synced(fd_path[fd]);
        else if (is_watched(fd_path[fd]))
            content_synced(fd_path[fd], st.st_ino);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

int fsync(int fd) { return synced(fd, real_fsync); }
int fdatasync(int fd) { return synced(fd, real_fdatasync); }

/* A call on watched paths that changes only names: an event; durable at the directory's
 * sync, which lists the directory. */
static bool watched_path(const char *path)
{
    char abs[PATH_MAX];
    return active() && absolute(AT_FDCWD, path, abs) && is_watched(abs);
}

#define EVENT_ON_PATH(path, call)                                                             \
    do {                                                                                      \
        if (!real_open)                                                                       \
            init();                                                                           \
        if (!watched_path(path))                                                              \
            return call;                                                                      \
        pthread_mutex_lock(&lock);                                                            \
        event(#call, path);                                                                   \
        int r_ = call;                                                                        \
        pthread_mutex_unlock(&lock);                                                          \
        return r_;                                                                            \
    } while (0)

int rename(const char *from, const char *to)
{
    EVENT_ON_PATH(from, real_rename(from, to));
}

int unlink(const char *path)
{
    EVENT_ON_PATH(path, real_unlink(path));
}

int mkdir(const char *path, mode_t mode)
{
    EVENT_ON_PATH(path, real_mkdir(path, mode));
}

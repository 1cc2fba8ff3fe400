/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "password.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

struct password_job {
    bool used;
    bool hashing;
    pid_t pid;
    int fd;                         /* the read end of the child's pipe */
    sd_event_source *child;
    char out[crypto_pwhash_STRBYTES + 1];
    size_t out_len;
    password_checked_fn checked;
    password_hashed_fn hashed;
    void *userdata;                 /* NULL once cancelled */
};

static struct password_job jobs[PASSWORD_JOBS_MAX];

static void job_end(struct password_job *j)
{
    sd_event_source_disable_unref(j->child);
    if (j->fd >= 0)
        close(j->fd);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata)
{
    struct password_job *j = userdata;
    bool exited_ok = si->si_code == CLD_EXITED && si->si_status == 0;
    ssize_t n;

    /* The child wrote everything before exiting: the pipe holds it all. */
    while (j->out_len < sizeof(j->out) - 1 &&
           (n = read(j->fd, j->out + j->out_len, sizeof(j->out) - 1 - j->out_len)) > 0)
        j->out_len += (size_t)n;
    j->out[j->out_len] = '\0';
    if (j->userdata) {
        if (j->hashing) {
            bool good = exited_ok && password_hash_valid(j->out);
            j->hashed(good ? j->out : NULL, j->userdata);
        } else {
            bool checked = si->si_code == CLD_EXITED && (si->si_status == 0 || si->si_status == 1);
            j->checked(checked && si->si_status == 0, !checked, j->userdata);
        }
    }
    sodium_memzero(j->out, sizeof(j->out));
    job_end(j);
    return 0;
}

/* The child: compute, write the result, exit. Only libsodium and write(2) here. */
static void __attribute__((noreturn)) child_main(int fd, bool hashing, const char *hash,
                                                 const char *password)
{
    if (hashing) {
        char out[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
            _exit(2);
        size_t len = strlen(out);
        _exit(write(fd, out, len) == (ssize_t)len ? 0 : 2);
    }
    _exit(crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? 0 : 1);
}

static int job_start(sd_event *loop, bool hashing, const char *hash, const char *password,
                     password_checked_fn checked, password_hashed_fn hashed, void *userdata)
{
    struct password_job *j = NULL;
    int p[2], r;
    pid_t pid;

    for (unsigned i = 0; i < PASSWORD_JOBS_MAX; i++)
        if (!jobs[i].used) {
            j = &jobs[i];
            break;
        }
    if (!j)
        return -EBUSY;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        r = -errno;
        close(p[0]);
        close(p[1]);
        return r;
    }
    if (pid == 0) {
        /* The child runs no loop: it keeps its pipe as fd 3 and closes everything else of
         * the daemon's (sockets, lines, the database) while it hashes. */
        if (dup2(p[1], 3) < 0)
            _exit(2);
        close_range(4, ~0u, 0);
        child_main(3, hashing, hash, password);
    }
    close(p[1]);
    memset(j, 0, sizeof(*j));
    j->used = true;
    j->hashing = hashing;
    j->pid = pid;
    j->fd = p[0];
    j->checked = checked;
    j->hashed = hashed;
    j->userdata = userdata;
    r = sd_event_add_child(loop, &j->child, pid, WEXITED, on_child, j);
    if (r < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        job_end(j);
        return r;
    }
    return 0;
}

int password_check_async(sd_event *loop, const char *hash, const char *password,
                         password_checked_fn fn, void *userdata)
{
    if (!password_hash_valid(hash))
        return -EINVAL;
    return job_start(loop, false, hash, password, fn, NULL, userdata);
}

int password_hash_async(sd_event *loop, const char *password, password_hashed_fn fn,
                        void *userdata)
{
    return job_start(loop, true, NULL, password, NULL, fn, userdata);
}

void password_cancel(void *userdata)
{
    for (unsigned i = 0; i < PASSWORD_JOBS_MAX; i++)
        if (jobs[i].used && jobs[i].userdata == userdata)
            jobs[i].userdata = NULL;
}

const char *password_weakness(const char *password)
{
    size_t len = strlen(password);

    if (len < PASSWORD_MIN)
        return "a password needs at least 10 characters";
    if (len > PASSWORD_MAX)
        return "a password may have at most 256 characters";
    return NULL;
}

bool password_hash_valid(const char *text)
{
    size_t len = strnlen(text, crypto_pwhash_STRBYTES);

    /* needs_rehash() parses the string: -1 means it is not an argon2id hash at all. */
    return len > 0 && len < crypto_pwhash_STRBYTES &&
           strncmp(text, crypto_pwhash_argon2id_STRPREFIX,
                   strlen(crypto_pwhash_argon2id_STRPREFIX)) == 0 &&
           crypto_pwhash_str_needs_rehash(text, crypto_pwhash_OPSLIMIT_MIN,
                                          crypto_pwhash_MEMLIMIT_MIN) != -1;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* replay_main: run a fuzz harness over files, without libFuzzer.
 *
 * Usage: replay_NAME FILE|DIR...  Each FILE, and each regular file in each DIR (sorted,
 * dot files skipped), is read whole and passed once to LLVMFuzzerTestOneInput(), each in a
 * child process of its own, so that one failing input (a broken contract, a sanitizer
 * report, a leak found at the child's exit) does not hide the others: every failing file
 * is named, and the exit status is 1. Reading nothing at all is an error too, so a missing
 * corpus cannot pass as a green test. FUZZ_REPLAY_NO_FORK=1 runs everything in this
 * process instead (for a debugger). Works with gcc and clang, with or without sanitizers:
 * ctest runs it over tests/fuzz/corpus/NAME on every build. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

static int read_file(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    if (!f)
        return -errno;
    for (;;) {
        size_t n;
        if (len == cap) {
            uint8_t *bigger;
            cap = cap ? cap * 2 : 4096;
            bigger = realloc(buf, cap);
            if (!bigger) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = bigger;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}

static unsigned n_failed;

static int run_input(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r = read_file(path, &buf, &len);

    if (r < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(-r));
        return r;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int replay_one(const char *path, unsigned *count)
{
    const char *no_fork = getenv("FUZZ_REPLAY_NO_FORK");
    pid_t pid;
    int status;

    (*count)++;
    if (no_fork && *no_fork && strcmp(no_fork, "0") != 0)
        return run_input(path);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -errno;
    }
    if (pid == 0)
        exit(run_input(path) < 0 ? 2 : 0);     /* exit(), not _exit(): LSan checks here */
    if (waitpid(pid, &status, 0) < 0) {
        fprintf(stderr, "waitpid: %s\n", strerror(errno));
        return -errno;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    n_failed++;
    if (WIFSIGNALED(status))
        fprintf(stderr, "FAILED %s: killed by signal %d\n", path, WTERMSIG(status));
    else
        fprintf(stderr, "FAILED %s: exit status %d\n", path, WEXITSTATUS(status));
    return -EIO;
}

static int not_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int replay_dir(const char *dir, unsigned *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, not_dot, alphasort), r = 0;

    if (n < 0) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -errno;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && replay_one(path, count) < 0)
            r = -EIO;
        free(names[i]);
    }
    free(names);
    return r;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int failed = 0;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "Usage: %s FILE|DIR...\nPass each file (or each file in DIR) once "
                        "to the fuzz harness.\n", argv[0]);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            failed |= replay_dir(argv[i], &count) < 0;
        } else {
            failed |= replay_one(argv[i], &count) < 0;
        }
    }
    printf("%s: replayed %u inputs, %u failed\n", argv[0], count, n_failed);
    if (count == 0) {
        fprintf(stderr, "%s: no inputs found\n", argv[0]);
        return 1;
    }
    return failed;
}

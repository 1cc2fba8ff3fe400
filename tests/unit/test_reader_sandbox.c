/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_sandbox: what the reader worker may still do once confined, and what kills it.
 *
 * Each case runs in a forked child that enters the real sandbox (the filter cannot be
 * undone), does one thing and _exit()s; the parent reads how the child ended. The worker's
 * end-to-end behaviour (libnfc against pn532-emu, the supervisor's restart) is in
 * tests/integration/test_readers.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reader_sandbox.h"

/* Run fn in a sandboxed child; its wait status. */
static int run_sandboxed(void (*fn)(int sock), int sock)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (reader_sandbox_enter() < 0)
            _exit(99);
        fn(sock);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_exit_0(int status)
{
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void assert_killed_by(int status, int sig)
{
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), sig);
}

/* What polling does: I/O on an existing descriptor, select, sleep, clocks, malloc (small, large,
 * grown, freed), a message on the socket, stderr, close. */
static void steady_state(int sock)
{
    fd_set rfds;
    struct timeval tv = { 0, 1000 };
    struct timespec ts;
    char *small, *big;
    char buf[16];

    if (write(sock, "hello", 5) != 5)
        _exit(10);
    FD_ZERO(&rfds);
    FD_SET(sock, &rfds);
    if (select(sock + 1, &rfds, NULL, NULL, &tv) < 0)
        _exit(11);
    usleep(1000);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    small = malloc(64);
    big = malloc(4 << 20);                  /* mmap */
    if (!small || !big)
        _exit(12);
    memset(big, 1, 4 << 20);
    big = realloc(big, 8 << 20);            /* mremap */
    if (!big)
        _exit(13);
    free(big);
    free(small);
    fprintf(stderr, "sandboxed child: stderr still works\n");
    if (send(sock, "x", 1, MSG_NOSIGNAL) != 1)
        _exit(14);
    /* the DESFire side: commands without waiting, and fresh randomness for OpenSSL */
    if (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) != -1 || errno != EAGAIN)
        _exit(15);
    if (getrandom(buf, 16, 0) != 16)
        _exit(16);
    close(sock);
}

static void test_steady_state_is_allowed(void **state)
{
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_exit_0(run_sandboxed(steady_state, sv[1]));
    close(sv[0]);
    close(sv[1]);
}

static void do_socket(int sock)   { (void)sock; socket(AF_INET, SOCK_STREAM, 0); }
static void do_open(int sock)     { (void)sock; open("/etc/hostname", O_RDONLY); }
static void do_fork(int sock)     { (void)sock; fork(); }
static void do_exec(int sock)     { (void)sock; execl("/bin/true", "true", (char *)NULL); }
/* The result is kept: glibc's fortified headers (Debian's package builds) mark dup()
 * warn_unused_result, which -Werror would turn into a build failure. */
static void do_dup(int sock)      { int fd = dup(sock); (void)fd; }
static void do_kill_parent(int sock) { (void)sock; kill(getppid(), 0); }
static void do_selftest(int sock) { (void)sock; reader_sandbox_selftest(); }

static void do_mmap_exec(int sock)
{
    (void)sock;
    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void do_mprotect_exec(int sock)
{
    static char page[4096] __attribute__((aligned(4096)));
    (void)sock;
    mprotect(page, sizeof(page), PROT_READ | PROT_EXEC);
}

static void test_forbidden_calls_kill_with_sigsys(void **state)
{
    static void (*const forbidden[])(int) = {
        do_socket, do_open, do_fork, do_exec, do_dup, do_kill_parent, do_mmap_exec,
        do_mprotect_exec, do_selftest,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        int status = run_sandboxed(forbidden[i], 3);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
            fail_msg("forbidden call %zu: wait status 0x%x, not SIGSYS", i, status);
    }
}

/* abort() (libnfc calls it on a malformed frame) still dies of SIGABRT, not SIGSYS. */
static void do_abort(int sock) { (void)sock; abort(); }

static void test_abort_is_sigabrt(void **state)
{
    (void)state;
    assert_killed_by(run_sandboxed(do_abort, 3), SIGABRT);
}

/* prepare_fds, in a child with a stray descriptor and a closed stderr. */
static void test_prepare_fds_keeps_stdio_and_socket_only(void **state)
{
    int sv[2], status;
    pid_t pid;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int stray = open("/dev/zero", O_RDONLY);       /* not close-on-exec, say */
        char path[64], target[64];
        ssize_t n;

        if (dup2(sv[1], 3) != 3 || stray < 0 || dup2(stray, 9) != 9)
            _exit(20);
        close(2);
        if (reader_sandbox_prepare_fds(3) < 0)
            _exit(21);
        for (int fd = 4; fd < 64; fd++)
            if (fcntl(fd, F_GETFD) >= 0)
                _exit(22);                              /* still open */
        if (fcntl(2, F_GETFD) < 0 || fcntl(3, F_GETFD) < 0)
            _exit(23);
        snprintf(path, sizeof(path), "/proc/self/fd/0");
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
            _exit(24);
        target[n] = '\0';
        _exit(strcmp(target, "/dev/null") == 0 ? 0 : 25);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_exit_0(status);
    close(sv[0]);
    close(sv[1]);
}

static void test_prepare_fds_wants_a_seqpacket_socket(void **state)
{
    int status;
    pid_t pid;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int sv[2];

        close(3);
        if (reader_sandbox_prepare_fds(3) != -ENOTSOCK)             /* closed */
            _exit(30);
        if (open("/dev/null", O_RDONLY) != 3 || reader_sandbox_prepare_fds(3) != -ENOTSOCK)
            _exit(31);                                              /* a file */
        close(3);
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || dup2(sv[0], 3) != 3 ||
            reader_sandbox_prepare_fds(3) != -ENOTSOCK)
            _exit(32);                                              /* a stream */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_exit_0(status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_state_is_allowed),
        cmocka_unit_test(test_forbidden_calls_kill_with_sigsys),
        cmocka_unit_test(test_abort_is_sigabrt),
        cmocka_unit_test(test_prepare_fds_keeps_stdio_and_socket_only),
        cmocka_unit_test(test_prepare_fds_wants_a_seqpacket_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

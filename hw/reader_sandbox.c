/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* reader_sandbox: see reader_sandbox.h. Only portier-reader links this (and libseccomp). */
#include "reader_sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* AddressSanitizer builds (tests only, never shipped) need two things the sandbox would
 * kill them for: the runtime queries the signal stack before every noreturn call (exit,
 * abort), and its leak check at exit runs a ptrace thread. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_UNDER_ASAN 1
#endif
#endif
#ifdef SANDBOX_UNDER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

/* System calls the worker may make once its device is open, by name: libseccomp resolves
 * each for the architecture we run on, and a name that architecture does not have (the
 * *_time64 calls exist on 32-bit ARM only, select not on arm64) is skipped. Where a call is
 * here for one driver or one C library path, the comment says which. A new need goes here,
 * with its reason; never a call that creates a descriptor or a process. */
static const char *const allowed[] = {
    /* The device and the socket to portierd. read/write: the UART and I2C drivers; ioctl:
     * FIONREAD, TCFLSH, tcgetattr/tcsetattr (UART), SPI_IOC_MESSAGE (SPI), USBDEVFS_* bulk
     * transfers (ACR122U through libusb 0.1). Not narrowed by request: the worker holds
     * only its device, a pipe, its socket and stdio, and has no capability for the
     * dangerous tty ioctls. writev: glibc's fatal messages (malloc corruption, fortify). */
    "read", "readv", "write", "writev", "ioctl",
    "send", "sendto",
    /* Commands from portierd (DESFire provisioning jobs, hw/desfire.h): recv(MSG_DONTWAIT)
     * on the socket between polls; glibc makes it recvfrom on most architectures. */
    "recv", "recvfrom",
    /* OpenSSL's random generator, which libfreefare draws each authentication's challenge
     * from, reseeds from the kernel now and then (no descriptor: it was warmed up before
     * the sandbox, hw/desfire.c). */
    "getrandom",
    /* Waiting for the chip: select() in the UART bus and in libusb 0.1 (glibc implements it
     * with pselect6 on 64-bit, pselect6_time64 on 32-bit ARM); usleep/nanosleep between
     * polls and in the I2C/SPI drivers; clocks for timeouts (the vDSO, or these calls). */
    "select", "_newselect", "pselect6", "pselect6_time64",
    "nanosleep", "clock_nanosleep", "clock_nanosleep_time64",
    "clock_gettime", "clock_gettime64", "gettimeofday",
    "restart_syscall",
    /* malloc and free (libnfc allocates while draining a garbled UART, for instance).
     * mmap, mmap2 and mprotect never with PROT_EXEC: see the rules below. */
    "brk", "munmap", "mremap", "madvise",
    /* Closing the device on an error (nfc_close), then exit. */
    "close", "exit", "exit_group",
    /* abort(), which libnfc calls on a malformed frame: it blocks signals and raises SIGABRT
     * at itself (tgkill: our own process only, see below), so the death says SIGABRT. */
    "rt_sigprocmask", "getpid", "gettid",
    "rt_sigreturn", "sigreturn",
};

static int allow_all(scmp_filter_ctx ctx)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        int ret;

        if (nr == __NR_SCMP_ERROR)
            continue;               /* unknown to this libseccomp */
        ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        /* A negative nr is a call this architecture lacks: libseccomp may refuse it. */
        if (ret < 0 && nr >= 0)
            return ret;
    }
    return 0;
}

/* Memory may be mapped or re-protected, never executable: no code can be brought in. */
static int allow_memory(scmp_filter_ctx ctx)
{
    static const char *const calls[] = { "mmap", "mmap2", "mprotect" };

    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        int nr = seccomp_syscall_resolve_name(calls[i]);
        int ret;

        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue;
        ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (ret < 0)
            return ret;
    }
    return 0;
}

int reader_sandbox_enter(void)
{
    scmp_filter_ctx ctx;
    int ret;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
#ifdef PORTIER_EMULATED_TESTS
    /* tools/cross's test build, run under qemu-user, which cannot load a seccomp filter (it
     * would filter the emulator's own system calls). Such a build cannot be installed
     * (CMakeLists.txt); unit.reader_sandbox and the sandbox tests run natively. */
    return 0;
#endif
    /* Kill the whole process, not the thread: the parent sees the death at once. */
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return -EINVAL;     /* the kernel lacks seccomp filters or SECCOMP_RET_KILL_PROCESS */
    if ((ret = allow_all(ctx)) < 0 || (ret = allow_memory(ctx)) < 0)
        goto out;
    ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    if (ret < 0)
        goto out;
#ifdef SANDBOX_UNDER_ASAN
    /* The leak check runs now, and not at exit; the stack query stays allowed. */
    __lsan_do_leak_check();
    if ((ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 0)) < 0)
        goto out;
#endif
    ret = seccomp_load(ctx);
out:
    seccomp_release(ctx);
    return ret;
}

static int close_from(int first)
{
    struct rlimit rl;

    if (close_range((unsigned)first, ~0u, 0) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    /* Kernels before 5.9: one by one, up to the descriptor limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    for (rlim_t fd = (rlim_t)first; fd < rl.rlim_cur && fd < 65536; fd++)
        close((int)fd);
    return 0;
}

int reader_sandbox_prepare_fds(int parent_fd)
{
    int type, null, ret = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(parent_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return errno == EBADF ? -ENOTSOCK : -errno;
    if (type != SOCK_SEQPACKET)
        return -ENOTSOCK;
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        return -errno;
    /* stdin is never read: /dev/null, whatever was there. stdout and stderr stay where the
     * parent pointed them (the journal), unless closed. */
    for (int fd = 0; fd <= 2; fd++) {
        if (fd != null && (fd == 0 || fcntl(fd, F_GETFD) < 0) && dup2(null, fd) < 0) {
            ret = -errno;
            break;
        }
    }
    if (null > 2)
        close(null);
    if (ret < 0)
        return ret;
    if (parent_fd > 3 && close_range(3, (unsigned)parent_fd - 1, 0) < 0 && errno != ENOSYS)
        return -errno;
    return close_from(parent_fd + 1);
}

void reader_sandbox_selftest(void)
{
    /* A network socket: what a compromised worker would want first, and harmless if it
     * were ever allowed, as it is closed at once. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (fd >= 0)
        close(fd);
}

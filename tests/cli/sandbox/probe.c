/* Seccomp probe for tests/cli/sandbox.rs: makes system calls that Docker's default profile
 * denies (and a few it allows), each in a child process, and prints one line per call:
 * `name=ok`, `name=ERRNO` (its symbolic name) or `name=signal N`.
 *
 * Arguments are chosen so that, without a filter, the kernel answers something other than
 * EPERM where it can (a bad pointer, a missing directory): an EPERM then comes from the filter.
 * Build: cc -static -O1 -o probe probe.c (x86_64 or aarch64; the i386/x32 probes are x86_64).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AF_VSOCK_ 40
#define UFFD_USER_MODE_ONLY_ 1
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING (-3)

/* Each probe returns 0 on success or an errno. */
static int check(long ret) { return ret < 0 ? errno : 0; }

static int p_keyctl(void) {
    return check(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}
static int p_add_key(void) {
    return check(syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_SESSION_KEYRING));
}
static int p_bpf(void) { return check(syscall(SYS_bpf, 999, NULL, 0)); }
static int p_perf_event_open(void) {
    return check(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
}
static int p_userfaultfd(void) {
    return check(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY_));
}
static int p_io_uring_setup(void) { return check(syscall(SYS_io_uring_setup, 1, NULL)); }
static int p_unshare_userns(void) { return check(unshare(CLONE_NEWUSER)); }

static int reap(long pid) {
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    int st;
    waitpid((pid_t)pid, &st, 0);
    return 0;
}
static int p_clone_userns(void) {
    return reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
}
static int p_clone_plain(void) { return reap(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }
static int p_clone3_userns(void) {
    uint64_t args[11] = {0};
    args[0] = CLONE_NEWUSER; /* flags */
    args[4] = SIGCHLD;       /* exit_signal */
    return reap(syscall(SYS_clone3, args, sizeof args));
}
static int p_mount(void) {
    return check(mount("none", "/nonexistent-probe-dir", "tmpfs", 0, NULL));
}
static int p_kexec_load(void) { return check(syscall(SYS_kexec_load, 0, 0, NULL, 0)); }
static int p_personality_query(void) { return check(syscall(SYS_personality, 0xffffffffUL)); }
static int p_personality_exec(void) { return check(syscall(SYS_personality, 0x0400000UL)); }
static int p_socket_vsock(void) { return check(socket(AF_VSOCK_, SOCK_STREAM, 0)); }
static int p_socket_inet(void) { return check(socket(AF_INET, SOCK_DGRAM, 0)); }

#if defined(__x86_64__)
/* The i386 ABI from a 64-bit process: `int 0x80` with i386 numbers. */
static int int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    int r = (int)ret;
    return r < 0 && r > -4096 ? -r : 0;
}
static int p_i386_getpid(void) { return int80(20, 0, 0, 0); }
static int p_i386_keyctl(void) {
    return int80(288, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
}
static int p_i386_unshare_userns(void) { return int80(310, CLONE_NEWUSER, 0, 0); }
/* The x32 ABI: x86_64 numbers with bit 30 set. */
#define X32 0x40000000L
static int p_x32_getpid(void) { return check(syscall(X32 | 39)); }
static int p_x32_keyctl(void) {
    return check(syscall(X32 | 250, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}
#endif

struct probe { const char *name; int (*fn)(void); };

static const struct probe PROBES[] = {
    {"keyctl", p_keyctl},
    {"add_key", p_add_key},
    {"bpf", p_bpf},
    {"perf_event_open", p_perf_event_open},
    {"userfaultfd", p_userfaultfd},
    {"io_uring_setup", p_io_uring_setup},
    {"unshare_userns", p_unshare_userns},
    {"clone_userns", p_clone_userns},
    {"clone_plain", p_clone_plain},
    {"clone3_userns", p_clone3_userns},
    {"mount", p_mount},
    {"kexec_load", p_kexec_load},
    {"personality_query", p_personality_query},
    {"personality_exec", p_personality_exec},
    {"socket_vsock", p_socket_vsock},
    {"socket_inet", p_socket_inet},
#if defined(__x86_64__)
    {"i386_getpid", p_i386_getpid},
    {"i386_keyctl", p_i386_keyctl},
    {"i386_unshare_userns", p_i386_unshare_userns},
    {"x32_getpid", p_x32_getpid},
    {"x32_keyctl", p_x32_keyctl},
#endif
};

/* Runs one probe in a child; its exit code carries the errno. */
static void run(const struct probe *p) {
    pid_t pid = fork();
    if (pid == 0) _exit(p->fn());
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        printf("%s=probe-failed\n", p->name);
    } else if (WIFSIGNALED(st)) {
        printf("%s=signal %d\n", p->name, WTERMSIG(st));
    } else if (WEXITSTATUS(st) == 0) {
        printf("%s=ok\n", p->name);
    } else {
        const char *n = strerrorname_np(WEXITSTATUS(st));
        if (n) printf("%s=%s\n", p->name, n);
        else printf("%s=errno %d\n", p->name, WEXITSTATUS(st));
    }
    fflush(stdout);
}

int main(void) {
    for (size_t i = 0; i < sizeof PROBES / sizeof PROBES[0]; i++) run(&PROBES[i]);
    return 0;
}

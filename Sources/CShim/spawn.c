// See include/eci_spawn.h.
#define _GNU_SOURCE
#include "eci_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// In the child: async-signal-safe calls only. Returns 0 or an errno.
static int child_setup(const struct eci_spawn_attr *attr, pid_t parent) {
    if (attr->default_signal_actions) {
        // Only ignored signals: handled ones are reset by execve anyway.
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
            struct sigaction old;
            if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN) (void)sigaction(sig, &dfl, NULL);
        }
    }
    if (attr->reset_signal_mask) {
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) return errno;
    }
    // Copy the sources above 2 first, so that a source that is itself 0, 1 or 2 is not
    // overwritten before it is used; the copies are close-on-exec, dup2 clears it on 0..2.
    int sources[3] = {attr->stdin_fd, attr->stdout_fd, attr->stderr_fd};
    int copies[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++) {
        if (sources[i] < 0) continue;
        copies[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
        if (copies[i] < 0) return errno;
    }
    for (int i = 0; i < 3; i++) {
        if (copies[i] >= 0 && dup2(copies[i], i) < 0) return errno;
    }
    // The same for the passed descriptors: copies above every target first, so that no
    // source is overwritten by another's dup2 before it is used.
    enum { MAX_PASSED = 8 };
    if (attr->passed_count < 0 || attr->passed_count > MAX_PASSED) return EINVAL;
    int highest = 2;
    for (int i = 0; i < attr->passed_count; i++) {
        if (attr->passed_fd_targets[i] < 3) return EINVAL;
        if (attr->passed_fd_targets[i] > highest) highest = attr->passed_fd_targets[i];
    }
    int passed[MAX_PASSED];
    for (int i = 0; i < attr->passed_count; i++) {
        passed[i] = fcntl(attr->passed_fds[i], F_DUPFD_CLOEXEC, highest + 1);
        if (passed[i] < 0) return errno;
    }
    // Everything above 2 is now a copy (close-on-exec) or something inherited; mark it all
    // close-on-exec before placing the passed ones (dup2 clears the flag on its target).
    if (!attr->inherit_other_fds && syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) return errno;
    for (int i = 0; i < attr->passed_count; i++) {
        if (dup2(passed[i], attr->passed_fd_targets[i]) < 0) return errno;
    }
    if (attr->new_session && setsid() < 0) return errno;
    if (attr->new_process_group && !attr->new_session && setpgid(0, 0) < 0) return errno;
    if (attr->directory && chdir(attr->directory) < 0) return errno;
    if (attr->death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, attr->death_signal, 0, 0, 0) < 0) return errno;
        if (getppid() != parent) return ESRCH;  // the parent died before the prctl
    }
    if (attr->seccomp_filter) {
        // Last: the steps above run unfiltered, and nothing but execve runs under it here.
        int rc = eci_install_seccomp_filter(attr->seccomp_filter, attr->seccomp_filter_length);
        if (rc < 0) return -rc;
    }
    execve(attr->path, attr->argv, attr->envp);
    return errno;
}

int eci_install_seccomp_filter(const struct sock_filter *filter, unsigned short length) {
    if (filter == NULL || length == 0) return -EINVAL;
    struct sock_fprog program = {.len = length, .filter = (struct sock_filter *)filter};
    // Per thread (no SECCOMP_FILTER_FLAG_TSYNC): the caller is the thread that forks or execs.
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) return -errno;
    return 0;
}

pid_t eci_spawn(const struct eci_spawn_attr *attr) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(report[0]);
        close(report[1]);
        return err;
    }
    if (pid == 0) {
        close(report[0]);
        int err = child_setup(attr, parent);
        (void)!write(report[1], &err, sizeof(err));
        _exit(127);
    }
    close(report[1]);
    // EOF: the exec succeeded (the pipe was close-on-exec); an int: the child's errno.
    int err = 0;
    ssize_t n;
    do { n = read(report[0], &err, sizeof(err)); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == sizeof(err) && err != 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -err;
    }
    return pid;
}

static volatile pid_t forward_pid = 0;

static void forward_handler(int sig) {
    int saved = errno;
    if (forward_pid > 0) kill(forward_pid, sig);
    errno = saved;
}

int eci_forward_signals_to(pid_t pid) {
    forward_pid = pid;
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) < 0) return -errno;
    return 0;
}

// Spawning: the one fork+exec of ECI. The child runs only async-signal-safe C between fork and
// exec (never Swift); what it inherits is described by `struct eci_spawn_attr`, not by flags.
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_SPAWN_H
#define ECI_SPAWN_H

#include <linux/filter.h>
#include <sys/types.h>

/// What a child gets. Zero-initialise, then set what differs from "inherit everything".
struct eci_spawn_attr {
    /// The executable (a path: no PATH search) and its NULL-terminated argv (argv[0] included).
    const char *path;
    char *const *argv;
    /// The NULL-terminated environment.
    char *const *envp;
    /// The descriptors that become the child's 0, 1 and 2; -1 keeps this process's. The same
    /// descriptor may be given twice (stdout and stderr into one log).
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    /// The working directory, NULL to keep this process's.
    const char *directory;
    /// setpgid(0, 0): a terminal's Ctrl-C then reaches only the parent, which stops the child its own way.
    int new_process_group;
    /// setsid(): a session of its own, which outlives this process's terminal.
    int new_session;
    /// PR_SET_PDEATHSIG with this signal (0: none). It is bound to the calling *thread*: spawn
    /// from a thread that lives as long as the child should. A parent that died before the
    /// prctl is caught (the spawn fails with ESRCH).
    int death_signal;
    /// Whether the child starts with an empty signal mask (the caller may block signals).
    int reset_signal_mask;
    /// Whether ignored signals are set back to their default action (what a shell's children
    /// expect; a runtime's caller may have ignored SIGPIPE on purpose, so it is a choice).
    int default_signal_actions;
    /// More descriptors the child gets at numbers of the caller's choosing: `passed_fds[i]`
    /// becomes `passed_fd_targets[i]` (each >= 3, all different), without close-on-exec
    /// (runc's --preserve-fds). `passed_count` 0: none.
    const int *passed_fds;
    const int *passed_fd_targets;
    int passed_count;
    /// Whether the child keeps every other descriptor this process has without close-on-exec.
    /// 0 (the default): it gets only 0, 1, 2 and the passed ones; whatever a parent of ours
    /// leaked stays behind (close_range(CLOSE_RANGE_CLOEXEC), Linux 5.11; a kernel without it
    /// fails the spawn). eci-runc sets it: runc's caller hands runc descriptors that way.
    int inherit_other_fds;
    /// A classic-BPF seccomp filter the child installs as its last step before execve, so the
    /// program and all its descendants run under it (`eci_install_seccomp_filter`). NULL: none.
    const struct sock_filter *seccomp_filter;
    unsigned short seccomp_filter_length;
};

/// fork + execve as `attr` says. Returns the child's PID, or -errno (also when the exec itself
/// failed: the child reports its errno through a close-on-exec pipe and is reaped here).
pid_t eci_spawn(const struct eci_spawn_attr *attr);

/// Installs `filter` (classic BPF over `struct seccomp_data`) on the calling *thread*: it and
/// every process it forks or becomes by execve run under it, for good (a filter can be added
/// to, never removed). Without no_new_privs this needs CAP_SYS_ADMIN (EACCES otherwise).
/// Returns 0 or -errno.
int eci_install_seccomp_filter(const struct sock_filter *filter, unsigned short length);

/// Installs handlers that forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
/// SIGWINCH to `pid` (a child this process waits for). Returns 0 or -errno.
int eci_forward_signals_to(pid_t pid);

#endif

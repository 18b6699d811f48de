// Probes: facts about this process and this kernel.
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_PROBES_H
#define ECI_PROBES_H

/// Number of threads of the calling process (from /proc/self/stat), or -errno.
int eci_thread_count(void);

/// The file-system magic number (statfs f_type) of the file open at `fd`, or -errno.
long eci_fs_magic(int fd);

/// Whether this kernel hands out seccomp user-notification listeners: a forked child installs
/// a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and exits. Returns 0, or -errno of the failure.
int eci_probe_seccomp_listener(void);

#endif

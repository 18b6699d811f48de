// C shim for ECI: the Linux calls that Glibc's Swift module does not expose, and the few
// operations that must run as plain C (between fork and _exit, or with per-thread credentials).
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_SHIM_H
#define ECI_SHIM_H

#include <sys/types.h>

/// Flags for eci_open_tree, mirroring <linux/mount.h> so Swift does not need the kernel headers.
#define ECI_OPEN_TREE_CLONE 1
#define ECI_OPEN_TREE_RECURSIVE 2

/// Clones the mount tree at `path` (following symlinks, as mount(2) would) into a detached mount.
/// Returns an O_CLOEXEC fd for the detached tree, or -errno.
int eci_open_tree_clone(const char *path, int flags);

/// Like eci_open_tree_clone, for the file or directory already open at `fd` (O_PATH is
/// enough): the tree checked by policy is the tree cloned, whatever happens to its path.
int eci_open_tree_clone_fd(int fd, int flags);

/// open(path, O_PATH | O_CLOEXEC): a handle on what `path` resolves to (symlinks followed).
int eci_open_path(const char *path);

/// Applies MOUNT_ATTR_IDMAP with the user namespace `userns_fd` to the detached tree `tree_fd`
/// (recursively when `recursive` is non-zero). Returns 0 or -errno.
int eci_mount_setattr_idmap(int tree_fd, int userns_fd, int recursive);

/// Makes the detached tree `tree_fd` read-only (MOUNT_ATTR_RDONLY; recursively when
/// `recursive`). Done in the VM's user namespace, the flag is locked in every copy a container's
/// mount namespace gets: container root cannot remount it read-write. Returns 0 or -errno.
int eci_mount_setattr_rdonly(int tree_fd, int recursive);

/// MOUNT_ATTR_NOSYMFOLLOW (<linux/mount.h>): lookups through the mount never follow a symlink.
#define ECI_MOUNT_ATTR_NOSYMFOLLOW 0x00200000ULL
/// MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV.
#define ECI_MOUNT_ATTR_RDONLY 0x00000001ULL
#define ECI_MOUNT_ATTR_NOSUID 0x00000002ULL
#define ECI_MOUNT_ATTR_NODEV 0x00000004ULL

/// Sets and clears MOUNT_ATTR_* flags on the detached tree `tree_fd` (recursively when
/// `recursive`). Returns 0 or -errno.
int eci_mount_setattr_flags(int tree_fd, int recursive, unsigned long long set, unsigned long long clear);

/// Makes `path` and every mount below it `nosymfollow`: no lookup through them follows a
/// symlink, root's included; and `nosuid,nodev`: a setuid-root file or a device node a container
/// made there (as the VM's uid 0, through its idmapped bind) means nothing to the VM. With `is_mount_point` the mount at `path` is flagged in place;
/// otherwise a flagged recursive clone of `path` is bound over it. Returns 0 or -errno.
int eci_make_nosymfollow(const char *path, int is_mount_point);

/// Sets and clears MOUNT_ATTR_* flags on the mount at `path` (not recursively). Returns 0 or -errno.
int eci_mount_setattr_at(const char *path, unsigned long long set, unsigned long long clear);

/// Creates the mount point `path` (absolute in the container, cleaned) inside the root filesystem
/// mounted at `root`, as `mkdir -p` would, plus an empty file for the last component unless
/// `directory`. Every lookup is openat2(RESOLVE_IN_ROOT | RESOLVE_NO_XDEV): symlinks the image
/// planted resolve inside the root, never in the VM. Runs with fsuid/fsgid set to the
/// container's root (what the idmapped layers map to 0). Existing entries are kept. 0 or -errno.
int eci_make_mountpoint_as(unsigned int fsuid, unsigned int fsgid, const char *root, const char *path, int directory);

/// Attaches the detached tree `tree_fd` at `target`. Returns 0 or -errno.
int eci_move_mount_to(int tree_fd, const char *target);

/// Creates a user namespace whose uid_map and gid_map are both "0 base count" and returns an
/// O_CLOEXEC fd to it (or -errno). A child made with fork() unshares and waits, the parent
/// writes the maps; the child runs only async-signal-safe C and is reaped before returning.
int eci_userns_fd(unsigned int base, unsigned int count);

/// Mounts an overlay at `target` with credentials fsuid=`fsuid`, fsgid=`fsgid` and the
/// effective capability set raised to the permitted one, so that an overlay over idmapped
/// layers can write its upper and work dirs (see docs/architecture.md). `lowers` holds
/// `nlowers` paths, top-most first. Uses "lowerdir+" (kernel >= 6.8) when available, else a
/// joined "lowerdir". Credentials are restored before returning. Returns 0 or -errno.
int eci_mount_overlay_as(unsigned int fsuid, unsigned int fsgid, const char *target,
                         const char *const *lowers, int nlowers, const char *upper, const char *work);

/// unshare(2) of a new mount namespace and `mount --make-rslave /`. Single-threaded callers only.
int eci_unshare_mount_namespace(void);

/// Mounts a private tmpfs at `target` (mode 0711: traversable by container root, which runc is when it binds the rootfs). Returns 0 or -errno.
int eci_mount_private_tmpfs(const char *target);

/// fork + execve of `path` with `argv` and `envp` (NULL-terminated). The child runs only
/// async-signal-safe C: it asks to be SIGKILLed when this process dies (so a killed eci-runc
/// never leaves a runc finishing a create whose ID range was already reclaimed), then execs.
/// Returns the child's PID, or -errno (also when the exec itself failed).
pid_t eci_spawn_bound(const char *path, char *const argv[], char *const envp[]);

/// `eci_spawn_bound` with the child's stdin from `in_fd` and stdout and stderr to `out_fd`
/// (each kept as is when -1), in a process group of its own when `new_group` (so a terminal's
/// Ctrl-C reaches only the parent, which stops the child its own way). The death signal is
/// bound to the calling *thread*: call it from a thread that lives as long as the child should.
pid_t eci_spawn_bound_io(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int new_group);

/// Installs handlers that forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and
/// SIGWINCH to `pid` (a child this process waits for). Returns 0 or -errno.
int eci_forward_signals_to(pid_t pid);

/// Number of threads of the calling process (from /proc/self/stat), or -errno.
int eci_thread_count(void);

/// The file-system magic number (statfs f_type) of the file open at `fd`, or -errno.
long eci_fs_magic(int fd);

/// Whether this kernel hands out seccomp user-notification listeners: a forked child installs
/// a filter with SECCOMP_FILTER_FLAG_NEW_LISTENER and exits. Returns 0, or -errno of the failure.
int eci_probe_seccomp_listener(void);

#endif

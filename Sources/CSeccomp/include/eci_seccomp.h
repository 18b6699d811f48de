// Seccomp user notification for ecid: the ioctls on a notify fd, fd passing, bounded reads of a
// target's memory, and the few calls ecid's helper makes to act as the caller. Raw system
// calls, so no libseccomp is needed: runc builds the filter, ecid only answers it.
#ifndef ECI_SECCOMP_H
#define ECI_SECCOMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// One notification, as SECCOMP_IOCTL_NOTIF_RECV returned it.
struct eci_notif {
    uint64_t id;
    uint32_t pid;   // the calling thread, in ecid's pid namespace (0 if not visible)
    int32_t nr;
    uint32_t arch;  // AUDIT_ARCH_*
    uint64_t ip;
    uint64_t args[6];
};

// MARK: What survives a kill -9 of ecid (see InFlightSlot and AnswerRecord in ECISupervisor).

/// The in-flight slot of one notify fd, in a shared file mapping: the last notification ecid
/// received on it, whole. `id` is stored last (release) and read first (acquire), so a copy
/// whose own id differs from it is a half-written one and is not used.
///
/// `result_id`/`result_error`: the answer ecid got for a notification (0 or an errno), stored
/// before the container's next call can reach a helper. A helper's own record holds only its
/// last call, and a call from another notify fd of the container can follow on the same helper
/// before this one is answered.
struct eci_inflight_slot {
    uint64_t id;
    struct eci_notif notif;
    uint64_t result_id;
    int32_t result_error;
    int32_t reserved;
};
void eci_inflight_record(struct eci_inflight_slot *slot, const struct eci_notif *notif);
/// The last ID recorded (0: none); *out gets the notification and *whole is 1 when the copy is
/// that notification's.
uint64_t eci_inflight_read(const struct eci_inflight_slot *slot, struct eci_notif *out, int *whole);
/// Stores the answer for notification `id` (`error`: 0 or an errno).
void eci_inflight_result(struct eci_inflight_slot *slot, uint64_t id, int32_t error);
/// 1 and *error when the slot holds the answer for `id`, else 0.
int eci_inflight_read_result(const struct eci_inflight_slot *slot, uint64_t id, int32_t *error);

/// What a mount helper is doing or last did, in a shared file mapping ecid hands it: the call
/// (its fd's slot token and notification ID), `state` 1 while it performs it, 2 once `error`
/// (0 or an errno) is its answer. Written only by the helper; read by the next ecid after the
/// helper is gone.
struct eci_answer_record {
    uint64_t slot;
    uint64_t id;
    int32_t state;
    int32_t error;
};
void eci_answer_begin(struct eci_answer_record *record, uint64_t slot, uint64_t id);
void eci_answer_end(struct eci_answer_record *record, int32_t error);
void eci_answer_read(const struct eci_answer_record *record, struct eci_answer_record *out);

/// Blocks until a notification arrives. 0, or -errno (ENOENT: the caller went away).
int eci_notif_recv(int fd, struct eci_notif *out);
/// Answers `id`: `error` (a negative errno, or 0 with `val` as the return value).
int eci_notif_send(int fd, uint64_t id, int64_t val, int32_t error);
/// 0 while the caller still waits in the notified call, -ENOENT once it does not.
int eci_notif_id_valid(int fd, uint64_t id);
/// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6): the answered thread runs on the answering
/// CPU, which saves a wake-up on the round trip. 0 or -errno (-EINVAL on older kernels).
int eci_notif_set_sync_wakeup(int fd);
/// Waits for fd to become readable or hung up: 1 readable, 0 hung up (no task left), -errno.
int eci_wait_readable(int fd);

/// The most descriptors one message carries (a fresh procfs call: the caller's root, cwd,
/// /proc/TID, notify fd, pid and net namespaces, and the container's five emulated files).
#define ECI_MAX_PASSED_FDS 16

/// recvmsg with up to `max_fds` (at most ECI_MAX_PASSED_FDS) descriptors from SCM_RIGHTS (close-on-exec). Returns the byte
/// count (0 at EOF) or -errno; *nfds is set to how many fds arrived (extra ones are closed).
ssize_t eci_recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds);

/// Reads a NUL-terminated string at `addr` from the memory of thread `tid` (process_vm_readv:
/// no /proc/TID/mem to open per call; the caller checks NOTIF_ID_VALID afterwards, which proves
/// the thread, so its number, stayed the caller's throughout), at most `max` bytes including
/// the NUL, page by page so a string ending before an unmapped page reads fine. Returns its
/// length, -EFAULT (unreadable), -ENAMETOOLONG (no NUL in `max`), -ESRCH (no such thread).
ssize_t eci_read_string(pid_t tid, uint64_t addr, char *buf, size_t max);

/// setns(2).
int eci_setns(int fd, int nstype);
/// setgroups(0, NULL): no supplementary groups (before joining the caller's user namespace).
int eci_drop_groups(void);

/// statx of path relative to dirfd: the mount ID, whether it is a mount root, dev and inode.
struct eci_file_id {
    uint64_t mount_id;
    uint64_t ino;
    uint32_t dev_major, dev_minor;
    int mount_root;
};
int eci_statx_id(int dirfd, const char *path, int follow, struct eci_file_id *out);

/// openat2(AT_FDCWD, path, flags | O_CLOEXEC, RESOLVE_NO_SYMLINKS): `path` looked up from the
/// process's root and cwd without following any symlink or /proc magic link, so a name that
/// reaches something only through a link (or through a cwd outside the root) does not reach it.
/// Returns the fd or -errno.
int eci_open_no_symlinks(const char *path, int flags);

/// openat2(dirfd, path, flags | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): `path` looked
/// up from `dirfd` only, never above it, following no symlink or magic link. Within a procfs or
/// sysfs, where nothing can be renamed, what this reaches from a mount's root is fixed.
/// Returns the fd or -errno.
int eci_open_beneath(int dirfd, const char *path, int flags);

/// pivot_root(2) (glibc has no wrapper). Returns 0 or -errno.
int eci_pivot_root(const char *new_root, const char *put_old);

/// open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH[|AT_RECURSIVE]) then move_mount onto
/// `name` under `dirfd`: a bind from exactly the checked source to exactly the checked place.
int eci_bind_fd_at(int source_fd, int recursive, int dirfd, const char *name);
/// move_mount(fd, "", dirfd, name, MOVE_MOUNT_F_EMPTY_PATH): MS_MOVE of exactly that mount.
int eci_move_fd_at(int source_fd, int dirfd, const char *name);

/// posix_spawn of `path` with stdin/stdout from `in_fd`/`out_fd`, and `fds[i]` as fd 3+i, in a
/// process group of its own (kill `-pid` to reach what it forked).
/// Returns the pid or -errno.
pid_t eci_spawn_helper(const char *path, char *const argv[], int in_fd, int out_fd, const int *fds, int nfds);

/// Constants Glibc's Swift module hides behind _GNU_SOURCE.
enum {
    ECI_O_PATH = 010000000,
    ECI_CLONE_NEWNS = 0x00020000,
    ECI_CLONE_NEWUSER = 0x10000000,
};


#endif

// MARK: The long-lived mount helper (see Sources/ECISupervisor/HelperPool.swift).

/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): one message per request or answer, with
/// its boundaries kept, so a reader never sees half a request. 0 or -errno.
int eci_seqpacket_pair(int fds[2]);
/// sendmsg of one message with `nfds` descriptors in SCM_RIGHTS (MSG_NOSIGNAL: a dead peer is
/// -EPIPE, not a signal). Returns 0 or -errno (-EMSGSIZE: the message was too large).
int eci_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/// SO_RCVTIMEO and SO_SNDTIMEO of `seconds` on `sock` (and SO_SNDBUFFORCE of `sndbuf` bytes
/// when non-zero, so one message can carry a large table). 0 or -errno.
int eci_socket_timeouts(int sock, int seconds, int sndbuf);

/// pidfd_open(pid, 0) with O_CLOEXEC semantics. The fd or -errno.
int eci_pidfd_open(pid_t pid);
/// epoll_create1(EPOLL_CLOEXEC). The fd or -errno.
int eci_epoll_create(void);
/// Adds `fd` to `epfd` with `token`; `input` asks for EPOLLIN, else only hang-ups (EPOLLHUP and
/// EPOLLERR are always reported). 0 or -errno.
int eci_epoll_add(int epfd, int fd, uint64_t token, int input);
/// Waits (forever) for up to `max` events; their tokens in `tokens`. The count or -errno.
/// An eventfd that wakes an epoll wait: created (fd or -errno), signalled, drained.
int eci_wake_create(void);
void eci_wake_signal(int fd);
void eci_wake_drain(int fd);
/// Removes fd from the set (closing it is not enough while another fd shares its file).
int eci_epoll_del(int epfd, int fd);
int eci_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms);
/// waitpid(pid, WNOHANG): 1 reaped, 0 still running, -errno.
int eci_reap(pid_t pid);

/// PR_SET_DUMPABLE 0 (no ptrace, no /proc/PID/fd for the container's root) and
/// SECBIT_NO_SETUID_FIXUP (changing the effective uid keeps the capability sets, so the
/// helper can take a caller's uid for one call and come back). 0 or -errno.
int eci_helper_harden(void);
/// The helper's own credentials in the caller's user namespace: uid and gid 0 (real,
/// effective, saved), no supplementary groups, every capability it holds there effective.
/// Writes the permitted set to *permitted. 0 or -errno.
int eci_helper_base(uint64_t *permitted);
/// Takes a caller's credentials for one call, undoably: groups, then effective gid and uid
/// (real and saved stay 0) and the file-system gid and uid where they differ from those, then
/// the effective capabilities := `effective` ∩ `permitted` (permitted stays); each step only
/// where the caller differs from the helper's base. 0 or -errno (then eci_helper_restore must
/// still be called).
int eci_helper_assume(uint32_t uid, uint32_t gid, uint32_t fsuid, uint32_t fsgid, const uint32_t *groups, size_t ngroups, uint64_t effective, uint64_t permitted);
/// Undoes what eci_helper_assume changed and verifies the result: uids, gids and fsuid/fsgid
/// all 0, no groups, effective == permitted == `permitted`, inheritable empty. 0, or -errno
/// when anything differs (the helper must then exit). When eci_helper_assume changed nothing,
/// there is nothing to undo or verify.
int eci_helper_restore(uint64_t permitted);

/// A mount namespace owned by the user namespace `userns_fd` (the caller's), for building fresh
/// procfs and sysfs mounts in: its whole tree is a tmpfs with recursive copies of the VM's /proc
/// and /sys (the visible ones the kernel requires before it lets that user namespace mount a
/// fresh one: mount_too_revealing) and its /dev/null. Made by a child (C only) forked from the
/// single-threaded helper, before the helper enters the caller's namespaces. Pins no other VM
/// mount. An fd for setns, or -errno.
int eci_staging_namespace(int userns_fd);

/// Makes a fresh procfs or sysfs for a caller, with its masks, and attaches it atomically at
/// `name` in the directory `parent_fd` (in the caller's mount namespace, already checked).
/// A child process (C only, forked from the single-threaded helper) joins the caller's pid
/// namespace (`pidns_fd`, so procfs shows the caller's processes) and network namespace
/// (`netns_fd`, -1 to keep; sysfs shows the caller's devices), unshares a private copy of the
/// staging namespace (`staging_fd`, from eci_staging_namespace: not the caller's own, whose
/// mounts may be locked), mounts the file system there with the caller's effective
/// capabilities `caller_effective`, binds /dev/null (verified to be char 1:3) over every file
/// in `masked`, an empty read-only tmpfs over every directory, binds every path in `readonly`
/// read-only (all relative to the new mount; missing ones skipped), clones the whole tree,
/// enters the caller's mount namespace (`mntns_fd`) and moves the clone onto exactly the checked
/// `target_fd` (an O_PATH fd, never a name looked up again): no moment exists where the caller
/// sees it unmasked. After the masks, each of the `nemulated` detached trees in `emulated_fds`
/// (ecid's clones of the container's emulated files) is attached over `emulated_names[i]`, which
/// must be a regular file of the new mount when it shows one (skipped when not). 0 or -errno.
int eci_fresh_masked_mount(int target_fd, const char *source, const char *fstype, unsigned long flags,
                           const char *data, int mntns_fd, int staging_fd, int pidns_fd, int netns_fd,
                           const char *const *masked, int nmasked, const char *const *readonly, int nreadonly,
                           const int *emulated_fds, const char *const *emulated_names, int nemulated,
                           uint64_t caller_effective);

/// Whether the mount table behind an open /proc/PID/mountinfo changed since the last time this
/// said so (or since the open): poll(2) without waiting for POLLPRI, which the kernel raises on
/// every change of the mount namespace's tree. 1 changed, 0 unchanged, -errno.
int eci_mounts_changed(int fd);


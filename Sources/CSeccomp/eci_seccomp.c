#define _GNU_SOURCE
#include "eci_seccomp.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

int eci_notif_recv(int fd, struct eci_notif *out) {
    struct seccomp_notif req;
    // The kernel refuses a request buffer that is not zeroed.
    memset(&req, 0, sizeof req);
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) return -errno;
    out->id = req.id;
    out->pid = req.pid;
    out->nr = req.data.nr;
    out->arch = req.data.arch;
    out->ip = req.data.instruction_pointer;
    for (int i = 0; i < 6; i++) out->args[i] = req.data.args[i];
    return 0;
}

int eci_notif_send(int fd, uint64_t id, int64_t val, int32_t error) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.val = val;
    resp.error = error;
    resp.flags = 0;  // never SECCOMP_USER_NOTIF_FLAG_CONTINUE: ecid performs what it approves
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) return -errno;
    return 0;
}

int eci_notif_id_valid(int fd, uint64_t id) {
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) return -errno;
    return 0;
}

int eci_notif_set_sync_wakeup(int fd) {
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (__u64)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0) return -errno;
    return 0;
}

int eci_wait_readable(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    for (;;) {
        int n = poll(&p, 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (p.revents & POLLIN) return 1;
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return 0;
    }
}

ssize_t eci_recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * ECI_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    *nfds = 0;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *received = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < max_fds) fds[(*nfds)++] = received[i];
            else close(received[i]);
        }
    }
    return n;
}

ssize_t eci_read_string(pid_t tid, uint64_t addr, char *buf, size_t max) {
    if (addr == 0) return -EFAULT;
    size_t got = 0;
    const uint64_t page = 4096;
    while (got < max) {
        uint64_t at = addr + got;
        if (at < addr) return -EFAULT;  // wrapped around the address space
        size_t chunk = (size_t)(page - (at % page));
        if (chunk > max - got) chunk = max - got;
        struct iovec local = { .iov_base = buf + got, .iov_len = chunk };
        struct iovec remote = { .iov_base = (void *)(uintptr_t)at, .iov_len = chunk };
        ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == ESRCH) return -ESRCH;
        if (n <= 0) return -EFAULT;
        void *nul = memchr(buf + got, 0, (size_t)n);
        if (nul) return (ssize_t)((char *)nul - buf);
        got += (size_t)n;
    }
    return -ENAMETOOLONG;
}

int eci_setns(int fd, int nstype) {
    if (setns(fd, nstype) < 0) return -errno;
    return 0;
}




int eci_statx_id(int dirfd, const char *path, int follow, struct eci_file_id *out) {
    struct statx st;
    int flags = AT_NO_AUTOMOUNT | (follow ? 0 : AT_SYMLINK_NOFOLLOW);
    if (path[0] == 0) flags |= AT_EMPTY_PATH;
    if (syscall(SYS_statx, dirfd, path, flags, STATX_INO | STATX_MNT_ID, &st) < 0) return -errno;
    if (!(st.stx_mask & STATX_MNT_ID)) return -ENOSYS;
    out->mount_id = st.stx_mnt_id;
    out->ino = st.stx_ino;
    out->dev_major = st.stx_dev_major;
    out->dev_minor = st.stx_dev_minor;
    out->mount_root = (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (st.stx_attributes & STATX_ATTR_MOUNT_ROOT);
    return 0;
}

#ifndef __NR_openat2
#define __NR_openat2 437
#endif
struct eci_open_how_v0 {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

int eci_open_no_symlinks(const char *path, int flags) {
    struct eci_open_how_v0 how = {0};
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    how.resolve = 0x04; /* RESOLVE_NO_SYMLINKS (implies RESOLVE_NO_MAGICLINKS) */
    long fd = syscall(__NR_openat2, AT_FDCWD, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

int eci_open_beneath(int dirfd, const char *path, int flags) {
    struct eci_open_how_v0 how = {0};
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
    how.resolve = 0x08 | 0x04; /* RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS */
    long fd = syscall(__NR_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

int eci_pivot_root(const char *new_root, const char *put_old) {
    return syscall(SYS_pivot_root, new_root, put_old) < 0 ? -errno : 0;
}

int eci_bind_fd_at(int source_fd, int recursive, int dirfd, const char *name) {
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    int tree = (int)syscall(SYS_open_tree, source_fd, "", flags);
    if (tree < 0) return -errno;
    int rc = (int)syscall(SYS_move_mount, tree, "", dirfd, name, MOVE_MOUNT_F_EMPTY_PATH);
    int saved = errno;
    close(tree);
    return rc < 0 ? -saved : 0;
}

int eci_move_fd_at(int source_fd, int dirfd, const char *name) {
    if (syscall(SYS_move_mount, source_fd, "", dirfd, name, MOVE_MOUNT_F_EMPTY_PATH) < 0) return -errno;
    return 0;
}

extern char **environ;

pid_t eci_spawn_helper(const char *path, char *const argv[], int in_fd, int out_fd, const int *fds, int nfds) {
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0) return -ENOMEM;
    int rc = posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    for (int i = 0; rc == 0 && i < nfds; i++) rc = posix_spawn_file_actions_adddup2(&actions, fds[i], 3 + i);
    // The helper starts with no signal blocked and default dispositions (ecid ignores SIGPIPE;
    // its threads may block signals), so it can always be killed.
    posix_spawnattr_t attr;
    if (rc != 0 || posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc != 0 ? -rc : -ENOMEM;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    // A process group of its own: the children it forks for a fresh procfs or sysfs live in the
    // container's pid namespace, where the container can stop them; killing the group when the
    // helper is retired takes them too, so none attaches after its call was answered.
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    char *const empty[] = { NULL };
    if (rc == 0) rc = posix_spawn(&pid, path, &actions, &attr, argv, empty);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : -rc;
}


_Static_assert(ECI_O_PATH == O_PATH, "O_PATH");
_Static_assert(ECI_CLONE_NEWNS == CLONE_NEWNS, "CLONE_NEWNS");
_Static_assert(ECI_CLONE_NEWUSER == CLONE_NEWUSER, "CLONE_NEWUSER");

int eci_drop_groups(void) {
    if (syscall(SYS_setgroups, 0, NULL) < 0) return -errno;
    return 0;
}

// MARK: What survives a kill -9 of ecid

void eci_inflight_record(struct eci_inflight_slot *slot, const struct eci_notif *notif) {
    memcpy(&slot->notif, notif, sizeof *notif);
    __atomic_store_n(&slot->id, notif->id, __ATOMIC_RELEASE);
}

uint64_t eci_inflight_read(const struct eci_inflight_slot *slot, struct eci_notif *out, int *whole) {
    uint64_t id = __atomic_load_n(&slot->id, __ATOMIC_ACQUIRE);
    memcpy(out, &slot->notif, sizeof *out);
    *whole = id != 0 && out->id == id;
    return id;
}

void eci_inflight_result(struct eci_inflight_slot *slot, uint64_t id, int32_t error) {
    __atomic_store_n(&slot->result_id, 0, __ATOMIC_RELEASE);
    slot->result_error = error;
    __atomic_store_n(&slot->result_id, id, __ATOMIC_RELEASE);
}

int eci_inflight_read_result(const struct eci_inflight_slot *slot, uint64_t id, int32_t *error) {
    if (id == 0 || __atomic_load_n(&slot->result_id, __ATOMIC_ACQUIRE) != id) return 0;
    *error = slot->result_error;
    return 1;
}

void eci_answer_begin(struct eci_answer_record *record, uint64_t slot, uint64_t id) {
    __atomic_store_n(&record->state, 0, __ATOMIC_RELEASE);
    record->slot = slot;
    record->id = id;
    record->error = 0;
    __atomic_store_n(&record->state, 1, __ATOMIC_RELEASE);
}

void eci_answer_end(struct eci_answer_record *record, int32_t error) {
    record->error = error;
    __atomic_store_n(&record->state, 2, __ATOMIC_RELEASE);
}

void eci_answer_read(const struct eci_answer_record *record, struct eci_answer_record *out) {
    out->state = __atomic_load_n(&record->state, __ATOMIC_ACQUIRE);
    out->slot = record->slot;
    out->id = record->id;
    out->error = record->error;
}

// See include/eci_seccomp.h, "The long-lived mount helper". Everything here runs in ecid's
// helper (single-threaded) or in ecid for socket plumbing; the one fork is the helper's, and
// its child runs only the C below until _exit.
#define _GNU_SOURCE
#include "eci_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SECBIT_NO_SETUID_FIXUP
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#endif

int eci_seqpacket_pair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int eci_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    union {
        char bytes[CMSG_SPACE(sizeof(int) * ECI_MAX_PASSED_FDS)];
        struct cmsghdr align;
    } control;
    if (nfds < 0 || nfds > ECI_MAX_PASSED_FDS) return -EINVAL;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return (size_t)n == len ? 0 : -EMSGSIZE;
}

int eci_socket_timeouts(int sock, int seconds, int sndbuf) {
    struct timeval tv = { .tv_sec = seconds, .tv_usec = 0 };
    if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return -errno;
    if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) return -errno;
    if (sndbuf > 0 && setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0) return -errno;
    return 0;
}


int eci_pidfd_open(pid_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) return -errno;
    // pidfds are close-on-exec by default.
    return (int)fd;
}

int eci_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int eci_epoll_add(int epfd, int fd, uint64_t token, int input) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = input ? EPOLLIN : 0;
    ev.data.u64 = token;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int eci_wake_create(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

void eci_wake_signal(int fd) {
    eventfd_write(fd, 1);
}

void eci_wake_drain(int fd) {
    eventfd_t count;
    eventfd_read(fd, &count);
}

int eci_epoll_del(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int eci_epoll_wait(int epfd, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event events[16];
    if (max > 16) max = 16;
    int n;
    do {
        n = epoll_wait(epfd, events, max, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int eci_reap(pid_t pid) {
    pid_t r;
    do {
        r = waitpid(pid, NULL, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    return r == pid ? 1 : 0;
}

// MARK: Credentials

static int caps_set(uint64_t effective, uint64_t permitted);

static int caps_get(struct __user_cap_data_struct data[2]) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    memset(data, 0, sizeof(struct __user_cap_data_struct) * 2);
    return syscall(SYS_capget, &header, data) < 0 ? -errno : 0;
}

static int caps_set_effective(uint64_t effective) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    int rc = caps_get(data);
    if (rc < 0) return rc;
    uint64_t permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    effective &= permitted;
    data[0].effective = (uint32_t)effective;
    data[1].effective = (uint32_t)(effective >> 32);
    return syscall(SYS_capset, &header, data) < 0 ? -errno : 0;
}

int eci_helper_harden(void) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return -errno;
    return 0;
}

int eci_helper_base(uint64_t *permitted) {
    // Before any uid change: with SECBIT_NO_SETUID_FIXUP no uid change touches the capability
    // sets (setting securebits needs CAP_SETPCAP, which joining the namespace gave).
    if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0) return -errno;
    // Raw system calls: glibc's wrappers would broadcast to other threads (there are none).
    if (syscall(SYS_setgroups, 0, NULL) < 0 && errno != EPERM) return -errno;
    if (syscall(SYS_setresgid, 0, 0, 0) < 0) return -errno;
    if (syscall(SYS_setresuid, 0, 0, 0) < 0) return -errno;
    struct __user_cap_data_struct data[2];
    int rc = caps_get(data);
    if (rc < 0) return rc;
    *permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    return caps_set(*permitted, *permitted);
}

// What eci_helper_assume changed, so that eci_helper_restore undoes exactly that (the helper is
// single-threaded; a caller that is the namespace's root with every capability costs no change).
static int assumed_groups, assumed_gid, assumed_uid, assumed_caps;

static int caps_set(uint64_t effective, uint64_t permitted) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = (uint32_t)effective;
    data[1].effective = (uint32_t)(effective >> 32);
    data[0].permitted = (uint32_t)permitted;
    data[1].permitted = (uint32_t)(permitted >> 32);
    // Inheritable stays empty: the helper never execs.
    return syscall(SYS_capset, &header, data) < 0 ? -errno : 0;
}

int eci_helper_assume(uint32_t uid, uint32_t gid, uint32_t fsuid, uint32_t fsgid, const uint32_t *groups, size_t ngroups, uint64_t effective, uint64_t permitted) {
    gid_t list[256];
    if (ngroups > 256) return -E2BIG;
    for (size_t i = 0; i < ngroups; i++) list[i] = groups[i];
    if (ngroups > 0) {
        assumed_groups = 1;
        // A namespace whose setgroups is "deny" keeps the helper's empty list: fewer groups.
        if (syscall(SYS_setgroups, ngroups, list) < 0 && errno != EPERM) return -errno;
    }
    if (gid != 0 || fsgid != 0) {
        assumed_gid = 1;
        if (syscall(SYS_setresgid, -1, gid, -1) < 0) return -errno;
        // setresgid made the fsgid the egid; a caller whose differs (setfsgid) gets its own.
        // setfsgid reports no error: read back.
        if (fsgid != gid && ((void)setfsgid(fsgid), (uint32_t)setfsgid((gid_t)-1) != fsgid)) return -EPERM;
    }
    if (uid != 0 || fsuid != 0) {
        assumed_uid = 1;
        if (syscall(SYS_setresuid, -1, uid, -1) < 0) return -errno;
        if (fsuid != uid && ((void)setfsuid(fsuid), (uint32_t)setfsuid((uid_t)-1) != fsuid)) return -EPERM;
    }
    if ((effective & permitted) != permitted) {
        assumed_caps = 1;
        return caps_set(effective & permitted, permitted);
    }
    return 0;
}

int eci_helper_restore(uint64_t permitted) {
    // Nothing assumed (the caller is the namespace's root with every capability, the common
    // case): nothing to undo, and nothing the helper did since changes credentials. The check
    // below is for undoing, and costs seven system calls.
    if (!(assumed_caps | assumed_uid | assumed_gid | assumed_groups)) return 0;
    if (assumed_caps && caps_set(permitted, permitted) < 0) return -errno;
    if (assumed_uid && syscall(SYS_setresuid, -1, 0, -1) < 0) return -errno;
    if (assumed_gid && syscall(SYS_setresgid, -1, 0, -1) < 0) return -errno;
    if (assumed_groups && syscall(SYS_setgroups, 0, NULL) < 0 && errno != EPERM) return -errno;
    assumed_caps = assumed_uid = assumed_gid = assumed_groups = 0;
    // Verify, not trust: the next caller must meet exactly the base credentials.
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) < 0 || r != 0 || e != 0 || s != 0) return -EPERM;
    if (getresgid(&gr, &ge, &gs) < 0 || gr != 0 || ge != 0 || gs != 0) return -EPERM;
    if (setfsuid((uid_t)-1) != 0 || setfsgid((gid_t)-1) != 0) return -EPERM;
    if (getgroups(0, NULL) != 0) return -EPERM;
    struct __user_cap_data_struct data[2];
    if (caps_get(data) < 0) return -EPERM;
    uint64_t eff = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
    uint64_t prm = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    uint64_t inh = (uint64_t)data[0].inheritable | ((uint64_t)data[1].inheritable << 32);
    if (eff != permitted || prm != permitted || inh != 0) return -EPERM;
    return 0;
}

// MARK: Fresh procfs and sysfs

// In the child: one mask. Missing paths are skipped (the kernel may lack them).
static int mask_one(const char *path, int devnull) {
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (S_ISDIR(st.st_mode)) return mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0 ? -errno : 0;
    int tree = (int)syscall(SYS_open_tree, devnull, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (tree < 0) return -errno;
    int rc = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH);
    int err = rc < 0 ? -errno : 0;
    close(tree);
    return err;
}

static int readonly_one(const char *path) {
    struct {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
    } attr = { 1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0 };
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    if (tree < 0) return -errno;
    int err = 0;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) err = -errno;
    if (err == 0 && syscall(SYS_move_mount, tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) err = -errno;
    close(tree);
    return err;
}

// /dev/null as an O_PATH fd, only if it is the real one (char 1:3): what masks files. -1 otherwise.
static int open_dev_null(void) {
    int fd = open("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))) {
        close(fd);
        return -1;
    }
    return fd;
}

// A fresh tmpfs, detached (fsopen/fsmount): attached only where its fd is moved to. In a
// forked child (the fds are left to _exit). An fd, or -errno.
static int detached_tmpfs(void) {
    int fsfd = (int)syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
    if (fsfd < 0) return -errno;
    if (syscall(SYS_fsconfig, fsfd, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) return -errno;
    int mount = (int)syscall(SYS_fsmount, fsfd, 1 /* FSMOUNT_CLOEXEC */, 0);
    return mount < 0 ? -errno : mount;
}

// In the staging child (see eci_staging_namespace): a mount namespace owned by the caller's user
// namespace whose whole tree is a tmpfs holding recursive copies of the VM's /proc and /sys and
// its /dev/null. Returns 0 after reporting on `ready`, then waits for `release`.
static int staging_child(int userns_fd, int ready, int release) {
    if (setns(userns_fd, CLONE_NEWUSER) < 0) return errno;
    // Its root: a tmpfs made here is owned by the creator's fsuid, which must be mapped.
    if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0) return errno;
    // A copy of ecid's mount namespace, owned by the caller's user namespace: every mount in it
    // is locked. Nothing made here propagates back.
    if (unshare(CLONE_NEWNS) < 0) return errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) return errno;
    int devnull = open_dev_null();
    if (devnull < 0) return EPERM;
    int proc = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    int sys = (int)syscall(SYS_open_tree, AT_FDCWD, "/sys", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    int null = (int)syscall(SYS_open_tree, devnull, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (proc < 0 || sys < 0 || null < 0) return errno;
    int stage = detached_tmpfs();
    if (stage < 0) return -stage;
    if (syscall(SYS_move_mount, stage, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    if (fchdir(stage) < 0) return errno;
    if (mkdir("proc", 0555) < 0 || mkdir("sys", 0555) < 0 || mkdir("dev", 0755) < 0) return errno;
    int file = open("dev/null", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (file < 0) return errno;
    close(file);
    if (syscall(SYS_move_mount, proc, "", AT_FDCWD, "proc", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    if (syscall(SYS_move_mount, sys, "", AT_FDCWD, "sys", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    if (syscall(SYS_move_mount, null, "", AT_FDCWD, "dev/null", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    // The tmpfs becomes the root and the rest of the VM's tree goes: the namespace pins no VM
    // mount but these (a kept copy of, say, another container's overlay would keep it busy).
    if (syscall(SYS_pivot_root, ".", ".") < 0) return errno;
    if (umount2(".", MNT_DETACH) < 0) return errno;
    if (chdir("/") < 0) return errno;
    char c = 'x';
    if (write(ready, &c, 1) != 1) return EIO;
    while (read(release, &c, 1) < 0 && errno == EINTR) {}
    return 0;
}

int eci_staging_namespace(int userns_fd) {
    int ready[2], release[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -errno;
    if (pipe2(release, O_CLOEXEC) < 0) {
        int err = -errno;
        close(ready[0]);
        close(ready[1]);
        return err;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(ready[0]), close(ready[1]), close(release[0]), close(release[1]);
        return err;
    }
    if (pid == 0) {
        close(ready[0]);
        close(release[1]);
        _exit(staging_child(userns_fd, ready[1], release[0]));
    }
    close(ready[1]);
    close(release[0]);
    char c, path[64];
    int fd = -EIO;
    if (read(ready[0], &c, 1) == 1) {
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fd = -errno;
    }
    close(release[1]);
    close(ready[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) break;
    }
    if (fd < 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0) return -WEXITSTATUS(status);
    return fd;
}

// In the fresh child: a recursive clone of `path` whose submounts (the masks and read-only
// paths) are locked by the kernel, as eci-init's copy locks the runtime's: a grandchild enters a
// user namespace of its own with a copy of this mount namespace (every mount in it locked),
// clones the tree there and passes the clone back over a socket. The clone's root is not locked
// (the fresh mount can be unmounted whole); its submounts cannot be unmounted, moved, made
// writable or left behind by a bind without them, whatever ecid's traps decide. An fd, or -errno.
static int locked_clone(const char *path) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        close(pair[0]);
        int err = 0;
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) err = errno;
        int tree = err ? -1 : (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
        if (!err && tree < 0) err = errno;
        // One message: the errno (0) and, on success, the clone.
        _exit(eci_send_with_fds(pair[1], &err, sizeof err, err ? NULL : &tree, err ? 0 : 1) < 0 ? 1 : 0);
    }
    close(pair[1]);
    int err = EIO, tree = -1, nfds = 0;
    ssize_t n = eci_recv_with_fds(pair[0], &err, sizeof err, &tree, 1, &nfds);
    if (nfds != 1) tree = -1;
    close(pair[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof err) err = EIO;
    if (err == 0 && tree < 0) err = EIO;
    if (err != 0) {
        if (tree >= 0) close(tree);
        return -err;
    }
    return tree;
}

static int fresh_child(int target_fd, const char *source, const char *fstype, unsigned long flags,
                       const char *data, int mntns_fd, int staging_fd, int netns_fd, const char *const *masked, int nmasked,
                       const char *const *readonly, int nreadonly, const int *emulated_fds, const char *const *emulated_names,
                       int nemulated, uint64_t caller_effective, uint64_t permitted) {
    char path[4096];
    if (caps_set_effective(permitted) < 0) return EPERM;
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0) return errno;
    // A private copy of the staging namespace (eci_staging_namespace): nothing mounted here
    // propagates anywhere, so no one sees the fresh file system before its masks. Not a copy of
    // the caller's: when its mounts are locked (eci-init), the kernel refuses a fresh procfs or
    // sysfs there (mount_too_revealing), as it must for the caller itself.
    if (setns(staging_fd, CLONE_NEWNS) < 0) return errno;
    if (unshare(CLONE_NEWNS) < 0) return errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) return errno;
    int devnull = open_dev_null();
    if (nmasked > 0 && devnull < 0) return EPERM;
    // Built on a tmpfs of its own (attached over the staging root in this copy, named only
    // through its fd), never in a directory of the container's, whose entries a racing thread can
    // swap for a symlink between any two steps (the mount, each mask, the clone).
    int stage = detached_tmpfs();
    if (stage < 0) return -stage;
    if (syscall(SYS_move_mount, stage, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    // Rooted there too: the kernel refuses a new user namespace (the lock pass, locked_clone)
    // to a process whose root is not its namespace's topmost root mount.
    if (fchdir(stage) < 0 || chroot(".") < 0 || mkdir("x", 0700) < 0) return errno;
    const char *built = "x";
    if (caps_set_effective(caller_effective) < 0) return EPERM;
    if (mount(source, built, fstype, flags, data) < 0) return errno;
    if (caps_set_effective(permitted) < 0) return EPERM;
    // runc's order: read-only paths, then masks.
    for (int i = 0; i < nreadonly; i++) {
        if (snprintf(path, sizeof path, "%s/%s", built, readonly[i]) >= (int)sizeof path) return ENAMETOOLONG;
        int rc = readonly_one(path);
        if (rc < 0) return -rc;
    }
    for (int i = 0; i < nmasked; i++) {
        if (snprintf(path, sizeof path, "%s/%s", built, masked[i]) >= (int)sizeof path) return ENAMETOOLONG;
        int rc = mask_one(path, devnull);
        if (rc < 0) return -rc;
    }
    // The container's emulated files (detached clones ecid made of its FUSE files), over the
    // same names: after the masks, as runc's binds come after its procfs. Each must land on a
    // regular file of the new procfs (fstatat without following: the procfs is new and ours);
    // one the procfs does not show (`subset=pid`) has nothing to emulate, as a mask is skipped.
    for (int i = 0; i < nemulated; i++) {
        if (snprintf(path, sizeof path, "%s/%s", built, emulated_names[i]) >= (int)sizeof path) return ENAMETOOLONG;
        struct stat st;
        if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            return errno;
        }
        if (!S_ISREG(st.st_mode)) return EPERM;
        if (syscall(SYS_move_mount, emulated_fds[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) return errno;
    }
    int tree = locked_clone(built);
    if (tree < 0) return -tree;
    // Back in the caller's namespace, the masked tree lands on exactly the checked target: its
    // fd, not a name. A name would be looked up again (from a root setns reset to the
    // namespace's, and down to whatever mount tops the place then: attack round 9 had an
    // untrapped unmount swap the checked top of /proc for a shared one below it, and a caller
    // chrooted at /proc name "/"). On the fd, a target unmounted meanwhile is no place (ENOENT).
    if (setns(mntns_fd, CLONE_NEWNS) < 0) return errno;
    if (syscall(SYS_move_mount, tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) return errno;
    return 0;
}

int eci_fresh_masked_mount(int target_fd, const char *source, const char *fstype, unsigned long flags,
                           const char *data, int mntns_fd, int staging_fd, int pidns_fd, int netns_fd,
                           const char *const *masked, int nmasked, const char *const *readonly, int nreadonly,
                           const int *emulated_fds, const char *const *emulated_names, int nemulated,
                           uint64_t caller_effective) {
    struct __user_cap_data_struct data2[2];
    int rc = caps_get(data2);
    if (rc < 0) return rc;
    uint64_t permitted = (uint64_t)data2[0].permitted | ((uint64_t)data2[1].permitted << 32);
    uint64_t saved = (uint64_t)data2[0].effective | ((uint64_t)data2[1].effective << 32);
    // procfs shows the pid namespace its mounter is in: the child is born in the caller's.
    if (pidns_fd >= 0) {
        if ((rc = caps_set_effective(permitted)) < 0) return rc;
        int err = setns(pidns_fd, CLONE_NEWPID) < 0 ? -errno : 0;
        if ((rc = caps_set_effective(saved)) < 0) return rc;
        if (err < 0) return err;
    }
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        int status = fresh_child(target_fd, source, fstype, flags, data, mntns_fd, staging_fd, netns_fd, masked, nmasked,
                                 readonly, nreadonly, emulated_fds, emulated_names, nemulated, caller_effective, permitted);
        _exit(status > 0 && status < 256 ? status : (status == 0 ? 0 : EIO));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno;
    }
    if (!WIFEXITED(status)) return -EIO;  // killed (by the container's root, say): nothing attached
    return -WEXITSTATUS(status);
}

int eci_mounts_changed(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLPRI };
    int n;
    do {
        n = poll(&p, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (p.revents & POLLNVAL) return -EBADF;
    return (p.revents & (POLLERR | POLLPRI)) ? 1 : 0;
}

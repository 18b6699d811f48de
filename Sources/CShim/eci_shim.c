// See include/eci_shim.h. Kept tiny on purpose: every function is a thin, documented syscall
// wrapper or a sequence that must not run Swift code.
#define _GNU_SOURCE
#include "eci_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef FSCONFIG_SET_STRING
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif

static int set_effective_to_permitted(void);

struct eci_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

int eci_open_tree_clone(const char *path, int flags) {
    unsigned int f = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if (flags & ECI_OPEN_TREE_RECURSIVE) f |= AT_RECURSIVE;
    long fd = syscall(__NR_open_tree, AT_FDCWD, path, f);
    return fd < 0 ? -errno : (int)fd;
}

int eci_open_tree_clone_fd(int fd, int flags) {
    unsigned int f = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
    if (flags & ECI_OPEN_TREE_RECURSIVE) f |= AT_RECURSIVE;
    long tree = syscall(__NR_open_tree, fd, "", f);
    return tree < 0 ? -errno : (int)tree;
}

int eci_open_path(const char *path) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int eci_mount_setattr_idmap(int tree_fd, int userns_fd, int recursive) {
    struct eci_mount_attr attr = {0};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long rc = syscall(__NR_mount_setattr, tree_fd, "", flags, &attr, sizeof(attr));
    return rc < 0 ? -errno : 0;
}

int eci_mount_setattr_rdonly(int tree_fd, int recursive) {
    struct eci_mount_attr attr = {0};
    attr.attr_set = 0x00000001;  // MOUNT_ATTR_RDONLY
    unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long rc = syscall(__NR_mount_setattr, tree_fd, "", flags, &attr, sizeof(attr));
    return rc < 0 ? -errno : 0;
}

int eci_mount_setattr_flags(int tree_fd, int recursive, unsigned long long set, unsigned long long clear) {
    struct eci_mount_attr attr = {0};
    attr.attr_set = set;
    attr.attr_clr = clear;
    unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long rc = syscall(__NR_mount_setattr, tree_fd, "", flags, &attr, sizeof(attr));
    return rc < 0 ? -errno : 0;
}

int eci_make_nosymfollow(const char *path, int is_mount_point) {
    struct eci_mount_attr attr = {0};
    attr.attr_set = ECI_MOUNT_ATTR_NOSYMFOLLOW | ECI_MOUNT_ATTR_NOSUID | ECI_MOUNT_ATTR_NODEV;
    if (is_mount_point) {
        // Already a mount of its own: flag it and everything below it, in place (idempotent).
        long rc = syscall(__NR_mount_setattr, AT_FDCWD, path, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &attr, sizeof(attr));
        return rc < 0 ? -errno : 0;
    }
    // A directory of its parent's mount: bind a flagged clone over it, so that the flag never
    // reaches the parent (mount_setattr on a plain directory would flag the parent's whole mount)
    // and the directory is never visible unflagged once the clone is attached.
    long tree = syscall(__NR_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    if (tree < 0) return -errno;
    long rc = syscall(__NR_mount_setattr, (int)tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr));
    if (rc == 0) rc = syscall(__NR_move_mount, (int)tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH);
    int err = rc < 0 ? -errno : 0;
    close((int)tree);
    return err;
}

int eci_mount_setattr_at(const char *path, unsigned long long set, unsigned long long clear) {
    struct eci_mount_attr attr = {0};
    attr.attr_set = set;
    attr.attr_clr = clear;
    long rc = syscall(__NR_mount_setattr, AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, &attr, sizeof(attr));
    return rc < 0 ? -errno : 0;
}

#ifndef __NR_openat2
#define __NR_openat2 437
#endif
struct eci_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define ECI_RESOLVE_NO_XDEV 0x01
#define ECI_RESOLVE_NO_MAGICLINKS 0x02
#define ECI_RESOLVE_IN_ROOT 0x10

// `rel` resolved with `root` as "/" (symlinks, "..", absolute links all stay inside), never
// crossing into another mount and never through a /proc magic link.
static int open_in_root(int root, const char *rel, int flags) {
    struct eci_open_how how = {0};
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = ECI_RESOLVE_IN_ROOT | ECI_RESOLVE_NO_XDEV | ECI_RESOLVE_NO_MAGICLINKS;
    long fd = syscall(__NR_openat2, root, rel, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

static int make_mountpoint(int root, const char *path, int directory) {
    char buf[4096], prefix[4096];
    size_t len = strlen(path);
    if (len >= sizeof(buf)) return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    char *components[512];
    int n = 0;
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0) return -EINVAL;  // callers pass cleaned paths
        if (n == 512) return -ENAMETOOLONG;
        components[n++] = c;
    }
    int parent = open_in_root(root, ".", O_PATH | O_DIRECTORY);
    if (parent < 0) return parent;
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (i == n - 1 && !directory) {
            int fd = openat(parent, components[i], O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
            int err = (fd < 0 && errno != EEXIST) ? -errno : 0;
            if (fd >= 0) close(fd);
            close(parent);
            return err;
        }
        if (mkdirat(parent, components[i], 0755) < 0 && errno != EEXIST) {
            int err = -errno;
            close(parent);
            return err;
        }
        // Step into it by resolving the prefix inside the root: an existing symlink is followed
        // there, never in the VM.
        int w = snprintf(prefix + used, sizeof(prefix) - used, "%s%s", i ? "/" : "", components[i]);
        if (w < 0 || (size_t)w >= sizeof(prefix) - used) {
            close(parent);
            return -ENAMETOOLONG;
        }
        used += (size_t)w;
        int next = open_in_root(root, prefix, O_PATH | O_DIRECTORY);
        close(parent);
        if (next < 0) return next;
        parent = next;
    }
    close(parent);
    return 0;
}

int eci_make_mountpoint_as(unsigned int fsuid, unsigned int fsgid, const char *root, const char *path, int directory) {
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return -errno;
    int olduid = setfsuid(fsuid);
    int oldgid = setfsgid(fsgid);
    int err = set_effective_to_permitted();
    if (err == 0) err = make_mountpoint(rootfd, path, directory);
    setfsgid((gid_t)oldgid);
    setfsuid((uid_t)olduid);
    (void)set_effective_to_permitted();
    close(rootfd);
    return err;
}

int eci_move_mount_to(int tree_fd, const char *target) {
    long rc = syscall(__NR_move_mount, tree_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
    return rc < 0 ? -errno : 0;
}

static int write_all_path(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, data, len);
    int err = (n == (ssize_t)len) ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    return err;
}

int eci_userns_fd(unsigned int base, unsigned int count) {
    int ready[2], hold[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -errno;
    if (pipe2(hold, O_CLOEXEC) < 0) {
        int err = -errno;
        close(ready[0]); close(ready[1]);
        return err;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(ready[0]); close(ready[1]); close(hold[0]); close(hold[1]);
        return err;
    }
    if (pid == 0) {
        // Child: async-signal-safe calls only. Report unshare's errno, then wait for EOF.
        close(ready[0]);
        close(hold[1]);
        int status = 0;
        if (unshare(CLONE_NEWUSER) < 0) status = errno;
        (void)!write(ready[1], &status, sizeof(status));
        char c;
        while (read(hold[0], &c, 1) < 0 && errno == EINTR) {}
        _exit(0);
    }
    close(ready[1]);
    close(hold[0]);
    int status = 0, result = 0;
    ssize_t n;
    do { n = read(ready[0], &status, sizeof(status)); } while (n < 0 && errno == EINTR);
    if (n != sizeof(status)) result = -EIO;
    else if (status != 0) result = -status;
    if (result == 0) {
        char path[64], map[64];
        int len = snprintf(map, sizeof(map), "0 %u %u\n", base, count);
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
        result = write_all_path(path, map, (size_t)len);
        if (result == 0) {
            snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
            result = write_all_path(path, map, (size_t)len);
        }
        if (result == 0) {
            snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            result = fd < 0 ? -errno : fd;
        }
    }
    close(ready[0]);
    close(hold[1]);  // EOF lets the child exit
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return result;
}

static int set_effective_to_permitted(void) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) return -errno;
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &hdr, data) < 0) return -errno;
    return 0;
}

static int overlay_fsconfig(int fsfd, const char *key, const char *value) {
    long rc = syscall(__NR_fsconfig, fsfd, FSCONFIG_SET_STRING, key, value, 0);
    return rc < 0 ? -errno : 0;
}

static int mount_overlay_fsapi(const char *target, const char *const *lowers, int nlowers,
                               const char *upper, const char *work) {
    long fsfd = syscall(__NR_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
    if (fsfd < 0) return -errno;
    int err = 0;
    for (int i = 0; i < nlowers && err == 0; i++) err = overlay_fsconfig((int)fsfd, "lowerdir+", lowers[i]);
    if (err == 0) err = overlay_fsconfig((int)fsfd, "upperdir", upper);
    if (err == 0) err = overlay_fsconfig((int)fsfd, "workdir", work);
    if (err == 0) err = overlay_fsconfig((int)fsfd, "index", "off");
    if (err == 0 && syscall(__NR_fsconfig, fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) err = -errno;
    if (err == 0) {
        long mfd = syscall(__NR_fsmount, fsfd, FSMOUNT_CLOEXEC, 0);
        if (mfd < 0) err = -errno;
        else {
            err = eci_move_mount_to((int)mfd, target);
            close((int)mfd);
        }
    }
    close((int)fsfd);
    return err;
}

static int mount_overlay_legacy(const char *target, const char *const *lowers, int nlowers,
                                const char *upper, const char *work) {
    char data[4096];
    size_t used = 0;
    int n = snprintf(data, sizeof(data), "index=off,lowerdir=");
    if (n < 0 || (size_t)n >= sizeof(data)) return -E2BIG;
    used = (size_t)n;
    for (int i = 0; i < nlowers; i++) {
        n = snprintf(data + used, sizeof(data) - used, "%s%s", i ? ":" : "", lowers[i]);
        if (n < 0 || (size_t)n >= sizeof(data) - used) return -E2BIG;
        used += (size_t)n;
    }
    n = snprintf(data + used, sizeof(data) - used, ",upperdir=%s,workdir=%s", upper, work);
    if (n < 0 || (size_t)n >= sizeof(data) - used) return -E2BIG;
    return mount("overlay", target, "overlay", 0, data) < 0 ? -errno : 0;
}

int eci_mount_overlay_as(unsigned int fsuid, unsigned int fsgid, const char *target,
                         const char *const *lowers, int nlowers, const char *upper, const char *work) {
    // fsuid/fsgid are per-thread credentials; overlayfs records the mounter's credentials at
    // fsopen/mount time and uses them for every later access to upper and work dirs.
    int olduid = setfsuid(fsuid);
    int oldgid = setfsgid(fsgid);
    // Changing fsuid away from 0 clears the file-system capabilities from the effective set.
    int err = set_effective_to_permitted();
    if (err == 0) {
        err = mount_overlay_fsapi(target, lowers, nlowers, upper, work);
        // "lowerdir+" is new in 6.8: older kernels reject the key with EINVAL.
        if (err == -EINVAL) err = mount_overlay_legacy(target, lowers, nlowers, upper, work);
    }
    setfsgid((gid_t)oldgid);
    setfsuid((uid_t)olduid);
    (void)set_effective_to_permitted();
    return err;
}

int eci_unshare_mount_namespace(void) {
    if (unshare(CLONE_NEWNS) < 0) return -errno;
    // Mounts from the VM still propagate in; nothing made here propagates out.
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) return -errno;
    return 0;
}

int eci_mount_private_tmpfs(const char *target) {
    if (mount("eci-stage", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0711") < 0) return -errno;
    if (mount(NULL, target, NULL, MS_PRIVATE, NULL) < 0) return -errno;
    return 0;
}

pid_t eci_spawn_bound(const char *path, char *const argv[], char *const envp[]) {
    return eci_spawn_bound_io(path, argv, envp, -1, -1, 0);
}

pid_t eci_spawn_bound_io(const char *path, char *const argv[], char *const envp[], int in_fd, int out_fd, int new_group) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(report[0]); close(report[1]);
        return err;
    }
    if (pid == 0) {
        close(report[0]);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int err = 0;
        if (in_fd >= 0 && dup2(in_fd, 0) < 0) err = errno;
        else if (out_fd >= 0 && (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)) err = errno;
        else if (new_group && setpgid(0, 0) < 0) err = errno;
        else if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) err = errno;
        else if (getppid() != parent) err = ESRCH;  // the parent died before the prctl
        else {
            execve(path, argv, envp);
            err = errno;
        }
        (void)!write(report[1], &err, sizeof(err));
        _exit(127);
    }
    close(report[1]);
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

int eci_thread_count(void) {
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -EIO;
    buf[n] = 0;
    // Field 20 (num_threads) counts from after the ")" that closes the command name.
    char *p = strrchr(buf, ')');
    if (!p) return -EIO;
    int field = 2;
    for (; *p && field < 20; p++) if (*p == ' ') field++;
    int threads = 0;
    if (sscanf(p, "%d", &threads) != 1) return -EIO;
    return threads;
}

long eci_fs_magic(int fd) {
    struct statfs fs;
    if (fstatfs(fd, &fs) < 0) return -errno;
    return (long)fs.f_type;
}

// See include/eci_mounts.h. Thin, documented wrappers of the mount API, and the sequences that
// run under changed per-thread credentials (which Swift code must not do: it may switch threads).
#define _GNU_SOURCE
#include "eci_mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

static int set_effective_to_permitted(void) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) return -errno;
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &hdr, data) < 0) return -errno;
    return 0;
}


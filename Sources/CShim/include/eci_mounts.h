// Mounts: the new mount API (open_tree, move_mount, mount_setattr, fsopen), overlays under changed
// fsuid, mount points made inside a root, and the private mount namespace the runtime stages in.
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_MOUNTS_H
#define ECI_MOUNTS_H

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

#endif

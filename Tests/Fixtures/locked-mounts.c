// The kernel facts behind eci-init (docs/ecid.md, "Locked initial mounts"): mounts a runtime
// makes inside a container's user namespace are not locked (its root may unmount a mask), but a
// process that stays in that user namespace, joins a copy of its mount namespace made into a
// nested user namespace and copies that again into a mount namespace of its own user namespace
// finds every mount MNT_LOCKED, and the kernel itself then refuses every way of undoing them,
// while the process keeps its capabilities over the container's network and UTS namespaces
// (owned by the container's user namespace). The second copy matters: in the first, owned by
// the nested user namespace, root needs no capability at all to mount (the owner's rule). Run as root:
//   cc -static -O2 -o locked-mounts Tests/Fixtures/locked-mounts.c && ./locked-mounts DIR
// (DIR: an empty scratch directory). Everything happens in namespaces of its own; nothing is
// left mounted on the machine. One line per check: `ok` when the kernel answered as expected,
// `DIFF` otherwise; the exit status is the number of DIFFs (or 100 when set-up failed).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int differences;

static void die(const char *what) {
    fprintf(stderr, "locked-mounts: %s: %s\n", what, strerror(errno));
    exit(100);
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) die(path);
    close(fd);
}

// unshare(CLONE_NEWUSER | extra), mapped by a child still in the parent user namespace (only
// it holds CAP_SETUID there), then uid and gid 0 in the new one.
static void enter_user_namespace(const char *map, int extra) {
    int p[2];
    if (pipe(p) < 0) die("pipe");
    pid_t self = getpid();
    pid_t mapper = fork();
    if (mapper < 0) die("fork");
    if (mapper == 0) {
        char c, path[64];
        close(p[1]);
        if (read(p[0], &c, 1) != 1) _exit(1);
        snprintf(path, sizeof path, "/proc/%d/uid_map", self);
        write_file(path, map);
        snprintf(path, sizeof path, "/proc/%d/gid_map", self);
        write_file(path, map);
        _exit(0);
    }
    close(p[0]);
    if (unshare(CLONE_NEWUSER | extra) < 0) die("unshare");
    if (write(p[1], "x", 1) != 1) die("pipe write");
    close(p[1]);
    int status;
    if (waitpid(mapper, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) die("map the user namespace");
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("setres[ug]id");
}

static void expect(const char *name, long rc, int want) {
    int got = rc < 0 ? errno : 0;
    if (got != want) differences++;
    printf("%-44s %s %s\n", name, got == want ? "ok  " : "DIFF", got ? strerror(got) : "success");
}

// The copy owned by the nested user namespace, kept open for the owner's-rule facts.
static int copy_owned_by_u2 = -1;

// A child enters a new user namespace (nothing mapped: it only owns the copy) with a copy of
// the mount namespace; this process, still in U1, joins the copy (setns needs CAP_SYS_ADMIN
// over the copy's owner, which U1's root has over a child namespace it created), then copies it
// again into a mount namespace U1 owns: every lock stays.
static void join_locked_copy(void) {
    int ready[2], done[2];
    if (pipe(ready) < 0 || pipe(done) < 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        char c;
        close(ready[0]);
        close(done[1]);
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) _exit(1);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        if (read(done[0], &c, 1) < 0) _exit(1);
        _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    char c, path[64];
    if (read(ready[0], &c, 1) != 1) die("the copying child");
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", child);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) die("join the copy");
    copy_owned_by_u2 = fd;
    if (unshare(CLONE_NEWNS) < 0) die("copy the copy back into U1");
    close(done[1]);
    waitpid(child, NULL, 0);
}

// Root of U1 without CAP_SYS_ADMIN (a systemd unit's CapabilityBoundingSet): no bind in the
// copy U1 owns, as under runc; in the copy the nested user namespace owns, whose owner it is, it
// binds with no capability at all. Why eci-init copies the copy back.
static void drop_sys_admin(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) < 0) die("capget");
    data[0].effective &= ~(1u << CAP_SYS_ADMIN), data[0].permitted &= ~(1u << CAP_SYS_ADMIN), data[0].inheritable &= ~(1u << CAP_SYS_ADMIN);
    if (syscall(SYS_capset, &header, data) < 0) die("capset");
}

static void capless_bind(const char *name, int in_u2s_copy, int want) {
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        if (in_u2s_copy && setns(copy_owned_by_u2, CLONE_NEWNS) < 0) die("join the copy U2 owns");
        drop_sys_admin();
        expect(name, mount("/tmp", "/mnt", NULL, MS_BIND, NULL), want);
        _exit(differences);
    }
    int status;
    if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status)) die("the capability-less child");
    differences = WEXITSTATUS(status);
}

static void owner_rule_facts(void) {
    capless_bind("capless-root-binds-in-u1s-copy", 0, EPERM);
    capless_bind("capless-root-binds-in-u2s-copy", 1, 0);
}

// A container as runc makes it: in user namespace U1 (mapped to the VM's 1048576..) with its own
// mount and pid namespaces, a root file system, a procfs, masks over a procfs file and a procfs
// directory, a read-only bind, a masked directory; pivot_root and the old root detached.
static void make_container(const char *dir) {
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) die("rslave /");
    if (mount("root", dir, "tmpfs", 0, "size=8m") < 0) die("root tmpfs");
    if (chdir(dir) < 0) die("chdir");
    const char *dirs[] = { "proc", "ro", "mnt", "old", "masked", "dev", "data", "data/hidden", "tmp", "tmp/u", "tmp/w" };
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdir(dirs[i], 0755);
    close(open("dev/null", O_CREAT | O_WRONLY, 0600));
    close(open("data/hidden/file", O_CREAT | O_WRONLY, 0600));
    if (mount("/dev/null", "dev/null", NULL, MS_BIND, NULL) < 0) die("bind /dev/null");
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die("procfs");
    if (mount("/dev/null", "proc/cpuinfo", NULL, MS_BIND, NULL) < 0) die("mask proc/cpuinfo");  // as /proc/kcore
    if (mount("tmpfs", "proc/sys", "tmpfs", MS_RDONLY, NULL) < 0) die("mask proc/sys");          // as /proc/acpi
    if (mount("ro", "ro", NULL, MS_BIND, NULL) < 0 || mount(NULL, "ro", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) < 0)
        die("read-only bind");
    if (mount("tmpfs", "masked", "tmpfs", MS_RDONLY, NULL) < 0) die("mask a directory");
    if (mount("tmpfs", "data/hidden", "tmpfs", MS_RDONLY, NULL) < 0) die("mask data/hidden");
    if (mount("tmp", "tmp", "tmpfs", 0, NULL) < 0) die("tmp");
    mkdir("tmp/u", 0755);
    mkdir("tmp/w", 0755);
    if (syscall(SYS_pivot_root, ".", "old") < 0) die("pivot_root");
    if (chdir("/") < 0 || umount2("/old", MNT_DETACH) < 0) die("detach the old root");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "--in-container") == 0) {
        make_container(argv[2]);
        // Today: runc's own mounts are not locked, so the kernel lets the container's root
        // undo them (ecid's trapped calls are what stop it).
        expect("u1-fresh-procfs-allowed", mount("proc", "/mnt", "proc", 0, NULL), 0);
        expect("u1-umount-fresh-procfs", umount2("/mnt", MNT_DETACH), 0);
        expect("u1-umount-mask-allowed", umount2("/masked", 0), 0);
        if (mount("tmpfs", "/masked", "tmpfs", MS_RDONLY, NULL) < 0) die("mask again");

        // eci-init's way: a child enters a nested, unmapped user namespace with a copy of the
        // mount namespace; this process joins only the copy. Every mount arrives locked.
        if (unshare(CLONE_NEWNET | CLONE_NEWUTS) < 0) die("network and UTS namespaces of U1");
        join_locked_copy();
        expect("still-root-of-u1-uts", sethostname("locked", 6), 0);
        {
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            struct ifreq r;
            memset(&r, 0, sizeof r);
            strcpy(r.ifr_name, "lo");
            if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r) < 0) die("SIOCGIFFLAGS");
            r.ifr_flags |= IFF_UP;
            expect("still-admin-of-u1-netns", ioctl(s, SIOCSIFFLAGS, &r), 0);
            close(s);
        }
        {
            int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC), user = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
            int owner = mnt < 0 ? -1 : ioctl(mnt, 0xb701 /* NS_GET_USERNS */);
            struct stat o, u;
            int same = owner >= 0 && user >= 0 && fstat(owner, &o) == 0 && fstat(user, &u) == 0 && o.st_ino == u.st_ino && o.st_dev == u.st_dev;
            errno = EPERM;
            expect("copy-owned-by-u1", same ? 0 : -1, 0);
            close(mnt), close(user), close(owner);
        }
        owner_rule_facts();
        expect("umount-file-mask", umount2("/proc/cpuinfo", 0), EINVAL);
        expect("umount-dir-mask-detach", umount2("/masked", MNT_DETACH), EINVAL);
        expect("umount-proc", umount2("/proc", MNT_DETACH), EINVAL);
        expect("remount-ro-bind-rw", mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND, NULL), EPERM);
        expect("remount-ro-bind-drop-nosuid", mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), EPERM);
        expect("remount-ro-bind-add-noexec", mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL), 0);
        expect("remount-mask-superblock-rw", mount(NULL, "/proc/sys", NULL, MS_REMOUNT, NULL), EPERM);
        expect("move-mask", mount("/masked", "/mnt", NULL, MS_MOVE, NULL), EINVAL);
        expect("bind-proc-without-its-masks", mount("/proc", "/mnt", NULL, MS_BIND, NULL), EINVAL);
        expect("rbind-proc", mount("/proc", "/mnt", NULL, MS_BIND | MS_REC, NULL), 0);
        expect("  umount-mask-in-the-copy", umount2("/mnt/cpuinfo", MNT_DETACH), EINVAL);
        expect("  umount-the-copy", umount2("/mnt", MNT_DETACH), 0);
        expect("fresh-procfs", mount("proc", "/mnt", "proc", 0, NULL), EPERM);
        expect("fresh-sysfs", mount("sysfs", "/mnt", "sysfs", 0, NULL), EPERM);
        expect("overlay-over-a-masked-layer", mount("overlay", "/mnt", "overlay", 0, "lowerdir=/data,upperdir=/tmp/u,workdir=/tmp/w"), EINVAL);
        expect("pivot-root-into-a-mask", syscall(SYS_pivot_root, "/masked", "/masked"), EINVAL);
        expect("tmpfs-over-a-mask", mount("t", "/masked", "tmpfs", 0, NULL), 0);
        expect("  umount-it", umount2("/masked", 0), 0);
        expect("tmpfs", mount("t", "/mnt", "tmpfs", 0, "size=64k"), 0);
        expect("  remount-ro-with-options", mount("t", "/mnt", "tmpfs", MS_REMOUNT | MS_RDONLY, "size=128k"), 0);
        expect("  umount-it", umount2("/mnt", 0), 0);
        expect("make-rprivate-root", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        // Docker-in-Docker's runc: a further mount namespace, a root of its own, pivot_root.
        if (unshare(CLONE_NEWNS) < 0) die("unshare a further mount namespace");
        expect("nested-umount-mask", umount2("/proc/cpuinfo", MNT_DETACH), EINVAL);
        expect("nested-tmpfs-root", mount("r", "/mnt", "tmpfs", 0, NULL), 0);
        mkdir("/mnt/old", 0755);
        if (chdir("/mnt") < 0) die("chdir /mnt");
        expect("nested-pivot-root", syscall(SYS_pivot_root, ".", "old"), 0);
        if (chdir("/") < 0) die("chdir /");
        expect("nested-detach-old-root", umount2("/old", MNT_DETACH), 0);
        return differences;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: locked-mounts DIR\n");
        return 100;
    }
    // Re-executed as pid 1 of a new pid namespace inside U1 (a procfs needs one), from an
    // executable this process opened before: its memory then belongs to U1, as a container's does.
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0) die("open /proc/self/exe");
    enter_user_namespace("0 1048576 65536", CLONE_NEWNS | CLONE_NEWPID);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        char *args[] = { argv[0], "--in-container", argv[1], NULL };
        char *env[] = { NULL };
        fexecve(self, args, env);
        die("fexecve");
    }
    int status;
    if (waitpid(child, &status, 0) < 0) die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

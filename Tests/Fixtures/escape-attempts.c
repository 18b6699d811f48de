// escape-attempts: run inside a container, tries known breakouts from a (privileged) container
// to the machine it runs on and prints one line per attempt:
//     BLOCKED <name>: <why>      the attempt failed the way an isolated container should
//     ESCAPED <name>: <what>     the attempt got through (a breach, under ECI)
// then "summary: N blocked, M escaped". Every attempt is non-destructive: it stops at the
// point that proves access (a file opened for writing, a capability check passed, a disk
// sector read), so running it under plain runc on a development machine harms nothing.
//
// Built statically (cc -static) by the integration tests and copied into the test image.
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static int blocked = 0, escaped = 0;

static void report(int got_through, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(int got_through, const char *name, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    printf("%s %s: %s\n", got_through ? "ESCAPED" : "BLOCKED", name, detail);
    if (got_through) escaped++; else blocked++;
    fflush(stdout);
}

// Opening a VM-global knob for writing is the breach; nothing is written.
static void try_open_for_write(const char *name, const char *path) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        report(1, name, "%s is open for writing", path);
    } else {
        report(0, name, "open %s for writing: %s", path, strerror(errno));
    }
}

static void cgroup_release_agent(void) {
    // cgroup v1: any hierarchy's release_agent, through the container's cgroup mounts or a new mount.
    const char *candidates[] = {"/sys/fs/cgroup/memory/release_agent", "/sys/fs/cgroup/cpu/release_agent",
                                "/sys/fs/cgroup/systemd/release_agent", "/sys/fs/cgroup/release_agent", NULL};
    for (int i = 0; candidates[i]; i++) {
        int fd = open(candidates[i], O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            report(1, "cgroup-release-agent", "%s is open for writing", candidates[i]);
            return;
        }
    }
    mkdir("/tmp/eci-cg", 0700);
    if (mount("cgroup", "/tmp/eci-cg", "cgroup", 0, "memory") == 0) {
        int fd = open("/tmp/eci-cg/release_agent", O_WRONLY | O_CLOEXEC);
        int err = errno;
        if (fd >= 0) close(fd);
        umount2("/tmp/eci-cg", MNT_DETACH);
        if (fd >= 0) { report(1, "cgroup-release-agent", "a new cgroup v1 mount's release_agent is writable"); return; }
        report(0, "cgroup-release-agent", "new cgroup v1 mount, but release_agent: %s", strerror(err));
        return;
    }
    report(0, "cgroup-release-agent", "no writable release_agent; mounting cgroup v1: %s", strerror(errno));
}

static void read_block_device(const char *name, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { report(0, name, "open %s: %s", path, strerror(errno)); return; }
    char sector[512];
    ssize_t n = read(fd, sector, sizeof(sector));
    int err = errno;
    close(fd);
    if (n > 0) report(1, name, "read %zd bytes of %s", n, path);
    else report(0, name, "read %s: %s", path, n < 0 ? strerror(err) : "empty");
}

static void mknod_vm_disk(void) {
    // The VM's disk: the device behind "/" (st_dev of a file on the root file system).
    struct stat st;
    dev_t disk = makedev(254, 0);
    if (stat("/proc/1/root", &st) == 0 && major(st.st_dev) != 0) disk = st.st_dev;
    const char *node = "/tmp/eci-disk";
    unlink(node);
    if (mknod(node, S_IFBLK | 0600, disk) != 0) {
        report(0, "mknod-vm-disk", "mknod %u:%u: %s", major(disk), minor(disk), strerror(errno));
        return;
    }
    read_block_device("mknod-vm-disk", node);
    unlink(node);
}

static void visible_vm_disks(void) {
    const char *disks[] = {"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda", NULL};
    for (int i = 0; disks[i]; i++) {
        if (access(disks[i], F_OK) == 0) { read_block_device("vm-disk-node", disks[i]); return; }
    }
    report(0, "vm-disk-node", "no VM disk node in /dev");
}

static void dev_mem(void) {
    if (access("/dev/mem", F_OK) == 0) { read_block_device("dev-mem", "/dev/mem"); return; }
    unlink("/tmp/eci-mem");
    if (mknod("/tmp/eci-mem", S_IFCHR | 0600, makedev(1, 1)) != 0) {
        report(0, "dev-mem", "no /dev/mem, and mknod 1:1: %s", strerror(errno));
        return;
    }
    read_block_device("dev-mem", "/tmp/eci-mem");
    unlink("/tmp/eci-mem");
}

// fd -1: with the capability over the VM the kernel answers EBADF (it got past the check);
// without it EPERM. ENOSYS: this kernel has no such facility at all.
static void capability_probe(const char *name, const char *call, long rc) {
    if (rc == 0 || (errno != EPERM && errno != ENOSYS)) report(1, name, "%s passed the capability check (%s)", call, strerror(errno));
    else report(0, name, "%s: %s", call, strerror(errno));
}

static void module_load(void) {
    capability_probe("module-load", "finit_module", syscall(SYS_finit_module, -1, "", 0));
}

static void kexec(void) {
    capability_probe("kexec", "kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
}

static void bpf_on_vm(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
    if (fd >= 0) { close((int)fd); report(1, "bpf", "created a BPF map in the VM kernel"); }
    else report(0, "bpf", "bpf(BPF_MAP_CREATE): %s", strerror(errno));
}

static void open_by_handle(void) {
    // "Shocker": open the file system's root inode (2 on ext4) by handle, outside the container's root.
    struct { struct file_handle h; unsigned char bytes[8]; } handle;
    memset(&handle, 0, sizeof(handle));
    handle.h.handle_bytes = 8;
    handle.h.handle_type = 1;  // FILEID_INO32_GEN
    unsigned int ino = 2;
    memcpy(handle.h.f_handle, &ino, sizeof(ino));
    int mountfd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
    if (mountfd < 0) mountfd = open("/", O_RDONLY | O_CLOEXEC);
    int fd = open_by_handle_at(mountfd, &handle.h, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = errno;
    close(mountfd);
    if (fd >= 0) { close(fd); report(1, "open-by-handle", "opened the VM file system's root inode by handle"); }
    else report(0, "open-by-handle", "open_by_handle_at: %s", strerror(err));
}

static void remount_readonly_bind(const char *path) {
    if (!path) { report(0, "remount-ro-bind", "no read-only bind mount given"); return; }
    int rc = mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL);
    int err = errno;
    char file[512];
    snprintf(file, sizeof(file), "%s/eci-escape-probe", path);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        unlink(file);
        report(1, "remount-ro-bind", "%s became writable", path);
    } else {
        report(0, "remount-ro-bind", "remount rw: %s; write: %s", rc == 0 ? "allowed" : strerror(err), strerror(errno));
    }
}

// A mask is a bind of /dev/null (files) or an empty read-only tmpfs (directories): a regular
// file, or a directory with entries, at a masked path means the mask is gone.
static int shows_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int kcore_reads_elf(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char magic[4] = {0};
    ssize_t n = fd >= 0 ? read(fd, magic, 4) : -1;
    if (fd >= 0) close(fd);
    return n == 4 && memcmp(magic, "\177ELF", 4) == 0;
}

// Unmounting what masks a path: the unmount itself is the breach (the container's initial
// mounts are immutable), and so is seeing what the mask hid.
static void unmask(const char *name, const char *path, const char *revealed) {
    int rc = umount2(path, MNT_DETACH);
    int err = errno;
    int shown = revealed ? access(revealed, F_OK) == 0 : shows_file(path);
    if (rc == 0 || shown) report(1, name, "umount %s: %s; %s %s", path, rc == 0 ? "allowed" : strerror(err), revealed ? revealed : path, shown ? "is visible" : "stays masked");
    else report(0, name, "umount %s: %s", path, strerror(err));
}

// Without ECI's syscall supervisor a privileged container can unmount the mask; the kernel
// still refuses to read the VM's memory image (CAP_SYS_RAWIO over the VM): only that is a breach.
static void unmask_kcore(void) {
    int rc = umount2("/proc/kcore", MNT_DETACH);
    int err = errno;
    if (kcore_reads_elf("/proc/kcore")) report(1, "unmask-kcore", "/proc/kcore reads the VM's memory image");
    else report(0, "unmask-kcore", "umount /proc/kcore: %s; it reads no ELF image", rc == 0 ? "allowed" : strerror(err));
}

// A read-only path of every container (ProcfsPolicy.readonlyPaths) remounted read-write.
static void remount_readonly_path(const char *path) {
    struct statvfs before, after;
    if (statvfs(path, &before) != 0 || !(before.f_flag & ST_RDONLY)) {
        report(1, "remount-ro-path", "%s is not read-only to begin with", path);
        return;
    }
    int rc = mount(NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL);
    int err = errno;
    if (statvfs(path, &after) == 0 && !(after.f_flag & ST_RDONLY)) report(1, "remount-ro-path", "%s became read-write", path);
    else report(0, "remount-ro-path", "remount %s rw: %s", path, rc == 0 ? "allowed, still read-only" : strerror(err));
}

// A tmpfs over a read-only /proc/sys (an ordinary container's) would hide it behind a writable
// tree. A privileged container's /proc/sys is writable (its own namespaces' sysctls): not an attack there.
static void cover_proc_sys(void) {
    struct statvfs st;
    if (statvfs("/proc/sys", &st) != 0 || !(st.f_flag & ST_RDONLY)) {
        report(0, "cover-proc-sys", "/proc/sys is not read-only here: nothing to cover");
        return;
    }
    int rc = mount("none", "/proc/sys", "tmpfs", 0, NULL);
    int err = errno;
    if (rc == 0) { umount2("/proc/sys", MNT_DETACH); report(1, "cover-proc-sys", "a tmpfs covered the read-only /proc/sys"); }
    else report(0, "cover-proc-sys", "mount tmpfs on /proc/sys: %s", strerror(err));
}

// A bind of /proc without its submounts (not MS_REC) shows the files the masks cover.
static void bind_proc_without_masks(void) {
    mkdir("/tmp/eci-bindproc", 0700);
    int rc = mount("/proc", "/tmp/eci-bindproc", NULL, MS_BIND, NULL);
    int err = errno;
    if (rc != 0) { report(0, "bind-proc-without-masks", "bind /proc: %s", strerror(err)); return; }
    int shown = shows_file("/tmp/eci-bindproc/kcore") || shows_file("/tmp/eci-bindproc/keys") || shows_file("/tmp/eci-bindproc/timer_list");
    umount2("/tmp/eci-bindproc", MNT_DETACH);
    if (shown) report(1, "bind-proc-without-masks", "a bind of /proc without its submounts shows kcore/keys/timer_list");
    else report(0, "bind-proc-without-masks", "bound, and the masked files stay masked");
}

// A fresh procfs may be refused, or carry the same masks; never show the masked files.
static void fresh_procfs(void) {
    mkdir("/tmp/eci-proc", 0700);
    if (mount("proc", "/tmp/eci-proc", "proc", 0, NULL) != 0) { report(0, "fresh-procfs", "mount proc: %s", strerror(errno)); return; }
    char shown[256] = "";
    const char *files[] = {"kcore", "keys", "timer_list", "sched_debug", NULL};
    for (int i = 0; files[i]; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/tmp/eci-proc/%s", files[i]);
        if (shows_file(path)) { strncat(shown, " ", sizeof(shown) - strlen(shown) - 1); strncat(shown, files[i], sizeof(shown) - strlen(shown) - 1); }
    }
    umount2("/tmp/eci-proc", MNT_DETACH);
    if (shown[0]) report(1, "fresh-procfs", "a new procfs shows%s", shown);
    else report(0, "fresh-procfs", "a new procfs, with kcore, keys, timer_list and sched_debug masked");
}

// A fresh sysfs may be refused, or carry the same masks; never show /sys/firmware's contents.
static void fresh_sysfs(void) {
    mkdir("/tmp/eci-sys", 0700);
    if (mount("sysfs", "/tmp/eci-sys", "sysfs", 0, NULL) != 0) { report(0, "fresh-sysfs", "mount sysfs: %s", strerror(errno)); return; }
    int shown = access("/tmp/eci-sys/firmware/memmap", F_OK) == 0 || access("/tmp/eci-sys/firmware/acpi", F_OK) == 0;
    umount2("/tmp/eci-sys", MNT_DETACH);
    if (shown) report(1, "fresh-sysfs", "a new sysfs shows /sys/firmware (memmap or acpi)");
    else report(0, "fresh-sysfs", "a new sysfs, with /sys/firmware masked");
}

// /proc and /sys themselves: unmounted (with their masks) or moved away. Last: if one gets
// through, the attempts after it would see no /proc.
static void move_mount_away(const char *name, const char *path) {
    mkdir("/tmp/eci-moved", 0700);
    int rc = mount(path, "/tmp/eci-moved", NULL, MS_MOVE, NULL);
    if (rc == 0) report(1, name, "moved %s away", path);
    else report(0, name, "move %s: %s", path, strerror(errno));
}

static void unmount_whole(const char *name, const char *path) {
    int rc = umount2(path, MNT_DETACH);
    if (rc == 0) report(1, name, "unmounted %s", path);
    else report(0, name, "umount %s: %s", path, strerror(errno));
}

// A root process that dropped CAP_SYS_ADMIN (a systemd unit's CapabilityBoundingSet, `capsh
// --drop`) must not mount, unmount or remount in the container's mount namespace, as under
// runc alone. It would if that namespace were owned by a user namespace the container's root
// owns: the owner holds every capability in it, whatever its own sets (found in eci-init's
// first design). The parent (with CAP_SYS_ADMIN) mounts a tmpfs and a read-only bind for the
// child to attack, and takes them down after.
static void root_without_sys_admin(void) {
    const char *base = "/tmp/eci-capless";
    char own[64], ro[64], target[64];
    snprintf(own, sizeof own, "%s/own", base);
    snprintf(ro, sizeof ro, "%s/ro", base);
    snprintf(target, sizeof target, "%s/target", base);
    mkdir(base, 0755), mkdir(own, 0755), mkdir(ro, 0755), mkdir(target, 0755);
    if (mount("none", own, "tmpfs", 0, NULL) < 0 || mount(ro, ro, NULL, MS_BIND, NULL) < 0 || mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
        printf("INFO root-without-sys-admin: set-up: %s\n", strerror(errno));
        umount2(own, MNT_DETACH), umount2(ro, MNT_DETACH);
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_CAPBSET_DROP, 21 /* CAP_SYS_ADMIN */, 0, 0, 0);  // needs CAP_SETPCAP; the sets below suffice
        struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2];
        if (syscall(SYS_capget, &header, data) < 0) _exit(64);
        data[0].effective &= ~(1u << 21), data[0].permitted &= ~(1u << 21), data[0].inheritable &= ~(1u << 21);
        if (syscall(SYS_capset, &header, data) < 0) _exit(64);
        int got = 0;
        if (mount("none", target, "tmpfs", 0, NULL) == 0) got |= 1;
        if (mount(own, target, NULL, MS_BIND, NULL) == 0) got |= 2;
        if (umount2(own, MNT_DETACH) == 0) got |= 4;
        if (mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND, NULL) == 0) got |= 8;
        int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
        int owner = mnt < 0 ? -1 : ioctl(mnt, 0xb701 /* NS_GET_USERNS */);
        if (owner >= 0 && setns(owner, CLONE_NEWUSER) == 0 && mount(own, target, NULL, MS_BIND, NULL) == 0) got |= 16;
        _exit(got);
    }
    int status = 0;
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    int got = child > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 64;
    if (got == 64) printf("INFO root-without-sys-admin: the child could not drop CAP_SYS_ADMIN\n");
    else report(got != 0, "root-without-sys-admin", "tmpfs %s, bind %s, umount of root's tmpfs %s, rw remount of root's ro bind %s, bind from the owner's user namespace %s",
                got & 1 ? "MOUNTED" : "refused", got & 2 ? "MOUNTED" : "refused", got & 4 ? "DONE" : "refused", got & 8 ? "DONE" : "refused", got & 16 ? "MOUNTED" : "refused");
    umount2(target, MNT_DETACH), umount2(target, MNT_DETACH), umount2(own, MNT_DETACH), umount2(ro, MNT_DETACH);
}

static void leaked_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) { report(0, "leaked-fds", "no /proc/self/fd"); return; }
    int self = dirfd(dir);
    struct dirent *entry;
    char leaks[2048] = "";
    while ((entry = readdir(dir))) {
        int fd = atoi(entry->d_name);
        if (entry->d_name[0] == '.' || fd <= 2 || fd == self) continue;
        char link[64], target[200];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0) continue;
        target[n] = 0;
        size_t used = strlen(leaks);
        snprintf(leaks + used, sizeof(leaks) - used, "%s%d->%s", used ? ", " : "", fd, target);
    }
    closedir(dir);
    if (leaks[0]) report(1, "leaked-fds", "inherited %s", leaks);
    else report(0, "leaked-fds", "nothing beyond stdio is inherited");
}

// `escape-attempts --lock-status`: whether the kernel has locked the mounts of this process's
// mount namespace (eci-init's copy: every mount the runtime made is locked). A child unmounts
// /proc in a private copy of the namespace (the same user namespace, so the copy is locked
// exactly where the original is, and nothing the container sees changes): EINVAL is the
// kernel's lock; ecid's refusal of the same call (an unlocked container) is EPERM. Needs
// CAP_SYS_ADMIN. Prints "mounts locked: yes" or "mounts locked: no" (why on stderr).
static int lock_status(void) {
    pid_t child = fork();
    if (child < 0) {
        printf("mounts locked: unknown (fork: %s)\n", strerror(errno));
        return 2;
    }
    if (child == 0) {
        if (unshare(CLONE_NEWNS) < 0) _exit(100 + (errno < 150 ? errno : 0));
        if (umount2("/proc", MNT_DETACH) == 0) _exit(1);
        _exit(errno == EINVAL ? 0 : 100 + (errno < 150 ? errno : 0));
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 1) fprintf(stderr, "lock-status: umount /proc succeeded in a private copy\n");
    if (code >= 100) fprintf(stderr, "lock-status: %s\n", strerror(code - 100));
    printf("mounts locked: %s\n", code == 0 ? "yes" : "no");
    return 0;
}

// Usage: escape-attempts [--mount-attacks] [READ_ONLY_BIND] | --lock-status. --mount-attacks adds the attacks
// on the container's own mounts that only ECI's syscall supervisor (ecid) blocks: unmounting or
// moving masks, /proc and /sys, remounting read-only paths read-write, covering, fresh
// procfs/sysfs mounts.
int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--lock-status") == 0) return lock_status();
    int mount_attacks = argc > 1 && strcmp(argv[1], "--mount-attacks") == 0;
    const char *readonly_bind = argc > 1 + mount_attacks ? argv[1 + mount_attacks] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    leaked_fds();  // first, before this program opens anything
    cgroup_release_agent();
    mknod_vm_disk();
    visible_vm_disks();
    dev_mem();
    module_load();
    kexec();
    bpf_on_vm();
    open_by_handle();
    try_open_for_write("core-pattern", "/proc/sys/kernel/core_pattern");
    try_open_for_write("modprobe-path", "/proc/sys/kernel/modprobe");
    try_open_for_write("drop-caches", "/proc/sys/vm/drop_caches");
    try_open_for_write("sysrq-trigger", "/proc/sysrq-trigger");
    try_open_for_write("uevent-helper", "/sys/kernel/uevent_helper");
    try_open_for_write("binfmt-misc-register", "/proc/sys/fs/binfmt_misc/register");
    remount_readonly_bind(readonly_bind);
    if (!mount_attacks) {
        unmask_kcore();
        printf("summary: %d blocked, %d escaped\n", blocked, escaped);
        return escaped == 0 ? 0 : 1;
    }
    remount_readonly_path("/proc/bus");
    cover_proc_sys();
    bind_proc_without_masks();
    unmask("unmask-kcore", "/proc/kcore", NULL);
    if (kcore_reads_elf("/proc/kcore")) report(1, "read-kcore", "/proc/kcore reads the VM's memory image");
    unmask("unmask-keys", "/proc/keys", NULL);
    unmask("unmask-timer-list", "/proc/timer_list", NULL);
    unmask("unmask-sys-firmware", "/sys/firmware", "/sys/firmware/memmap");
    fresh_procfs();
    fresh_sysfs();
    unmount_whole("umount-sys", "/sys");
    unmount_whole("umount-proc", "/proc");
    move_mount_away("move-proc", "/proc");
    root_without_sys_admin();
    printf("summary: %d blocked, %d escaped\n", blocked, escaped);
    return escaped == 0 ? 0 : 1;
}

// Attacks on ecid's helper through a chroot, run as container root with CAP_SYS_ADMIN (and
// CAP_SYS_CHROOT) under ecid. A caller chrooted below its container's root sees only the mounts
// under its new root in /proc/self/mountinfo, yet can still name the container's /proc through a
// cwd left outside the root or through a /proc/PID/root magic link. ecid must judge what the
// names reach, not what the mount table of the jail shows. Each line: "BLOCKED|ESCAPED name: why".
//   usage: ecid-jail RO_BIND_PATH
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "attack-report.h"
#include "i386-abi.h"

// Runs `body` in a child chrooted to `jail` with its cwd at `cwd` (looked up before the chroot);
// returns the child's errno of the attempted call (0: it was performed).
static int in_jail(const char *jail, const char *cwd, int (*body)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(cwd) < 0 || chroot(jail) < 0) _exit(200);
        if (strcmp(cwd, jail) == 0 && chdir("/") < 0) _exit(201);
        _exit(body() == 0 ? 0 : (errno & 0xff));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

// cwd "/" of the container, root /tmp/j: "proc" names the container's /proc, which the jail's
// mountinfo does not list; a bind of it without submounts shows what the masks hide.
static int bind_proc_from_cwd(void) { return mount("proc", "/x", NULL, MS_BIND, NULL); }

static int umount_timer_list(void) { return umount2("/proc/timer_list", MNT_DETACH); }
static int umount_keys_nofollow(void) { return umount2("/proc/keys", MNT_DETACH | UMOUNT_NOFOLLOW); }
static int remount_ro_rw(void) { return mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND, NULL); }
static int cover_proc(void) { return mount("none", "/proc", "tmpfs", 0, NULL); }

// 3. The last component swapped for a symlink to /proc between the helper's check and its
//    mount(2), which follows a final symlink: a racing thread exchanges /tmp/r/t (a directory)
//    with /tmp/r/l (a symlink to /proc) as fast as it can.
static volatile int swapping = 1;
static const char *volatile swap_dir = "/tmp/r";
static void *swapper(void *arg) {
    (void)arg;
    char t[64], l[64];
    snprintf(t, sizeof t, "%s/t", swap_dir);
    snprintf(l, sizeof l, "%s/l", swap_dir);
    while (swapping) syscall(SYS_renameat2, AT_FDCWD, t, AT_FDCWD, l, 2 /* RENAME_EXCHANGE */);
    return NULL;
}

// Starts the swapper on DIR/t (a directory) and DIR/l (a symlink to `to`).
static pthread_t start_swapper(const char *dir, const char *to) {
    char t[64], l[64];
    snprintf(t, sizeof t, "%s/t", dir);
    snprintf(l, sizeof l, "%s/l", dir);
    mkdir(dir, 0755);
    mkdir(t, 0755);
    unlink(l);
    symlink(to, l);
    swap_dir = dir;
    swapping = 1;
    pthread_t th;
    pthread_create(&th, NULL, swapper, NULL);
    return th;
}

// 4. The same swap against a remount of a plain directory (not a mount root: the kernel's
//    EINVAL, were it not for the symlink) towards the read-only bind.
static void swap_race_remount(const char *ro) {
    pthread_t th = start_swapper("/tmp/r2", ro);
    int writable = 0, performed = 0, i;
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/.ecid-race-probe", ro);
    for (i = 0; i < 3000 && !writable; i++) {
        if (mount(NULL, "/tmp/r2/t", NULL, MS_REMOUNT | MS_BIND, NULL) == 0) performed++;
        int fd = open(probe, O_WRONLY | O_CREAT, 0644);
        if (fd >= 0) { writable = 1; close(fd); unlink(probe); }
    }
    swapping = 0;
    pthread_join(th, NULL);
    if (writable) mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
    char why[128];
    snprintf(why, sizeof why, "%d of %d remounts performed; %s %s", performed, i, ro, writable ? "became writable" : "stayed read-only");
    report(writable, "swap-race-remount-ro", why, 0);
}

// 5. The same swap against a fresh procfs: the helper mounts it by name in a private copy, puts
//    the masks on by name and clones it by name; a swap between those steps must not leave an
//    unmasked procfs attached anywhere.
static int unmasked_proc_at(const char *dir) {
    struct statfs sf;
    char path[128];
    if (statfs(dir, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) return 0;
    snprintf(path, sizeof path, "%s/keys", dir);
    if (content(path) > 0) return 1;
    snprintf(path, sizeof path, "%s/timer_list", dir);
    return content(path) > 0;
}

static void swap_race_fresh_proc(void) {
    ssize_t before = content("/proc/timer_list") + content("/proc/keys");
    pthread_t th = start_swapper("/tmp/r3", "/proc");
    int performed = 0, shown = 0, i;
    for (i = 0; i < 1500 && !shown; i++) {
        if (mount("proc", "/tmp/r3/t", "proc", 0, NULL) == 0) performed++;
        shown = unmasked_proc_at("/tmp/r3/t") || unmasked_proc_at("/tmp/r3/l") || content("/proc/timer_list") + content("/proc/keys") > before;
        while (umount2("/tmp/r3/t", MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || umount2("/tmp/r3/l", MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {}
    }
    swapping = 0;
    pthread_join(th, NULL);
    char why[128];
    snprintf(why, sizeof why, "%d of %d fresh procfs mounts performed; %s", performed, i, shown ? "one showed what the masks hide" : "all masked");
    report(shown, "swap-race-fresh-proc", why, 0);
}

static void swap_race(void) {
    pthread_t t = start_swapper("/tmp/r", "/proc");
    int mounted = 0, covered = 0, i;
    struct statfs sf;
    for (i = 0; i < 3000 && !covered; i++) {
        if (mount("none", "/tmp/r/t", "tmpfs", 0, "size=4k") == 0) mounted++;
        covered = statfs("/proc", &sf) == 0 && sf.f_type == TMPFS_MAGIC;
        while (umount2("/tmp/r/t", MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || umount2("/tmp/r/l", MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {}
    }
    swapping = 0;
    pthread_join(t, NULL);
    if (covered) umount2("/proc", MNT_DETACH);
    char why[128];
    snprintf(why, sizeof why, "%d of %d tmpfs mounts performed; /proc %s", mounted, i, covered ? "covered" : "never covered");
    report(covered, "swap-race-cover-proc", why, 0);
}

// 6. pivot_root(".", ".") from inside a directory mask (or a read-only path): the mask's mount
//    becomes the root, detached from where it masked, and the old root stacks on top of it, so
//    the masked directory shows what it hid. Done in a private copy of the mount namespace
//    (protected there as in the container's own).
static int entries_at(int at, const char *dir) {
    int fd = openat(at, dir, O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void pivot_into(const char *name, const char *dir, int readonly_path) {
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(200);
        // The old root, as the stacked tree shows it after the pivot.
        int old = open("/", O_PATH | O_DIRECTORY);
        int before = entries_at(AT_FDCWD, dir);
        struct statvfs sv;
        if (old < 0 || chdir(dir) < 0) _exit(201);
        if (syscall(SYS_pivot_root, ".", ".") < 0) _exit(errno & 0x7f);
        if (readonly_path) {
            int fd = openat(old, dir + 1, O_RDONLY | O_DIRECTORY);
            _exit(fd >= 0 && fstatvfs(fd, &sv) == 0 && !(sv.f_flag & ST_RDONLY) ? 255 : 254);
        }
        _exit(entries_at(old, dir + 1) > before ? 255 : 254);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 253;
    char why[128];
    snprintf(why, sizeof why, "pivot_root into %s: %s", dir,
             code == 255 ? (readonly_path ? "it became writable" : "it shows what it masked") : code == 254 ? "performed, nothing shown" : code < 128 ? strerror(code) : "setup failed");
    report(code == 255, name, why, 0);
}

// The neighbour: runc inside the container pivots into a mount of its own, in a new mount
// namespace, with put_old below new_root or as new_root itself.
static void pivot_own(const char *put_old) {
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) _exit(200);
        mkdir("/tmp/nr", 0755);
        if (mount("none", "/tmp/nr", "tmpfs", 0, "size=1m") < 0) _exit(errno & 0x7f);
        mkdir("/tmp/nr/old", 0755);
        if (chdir("/tmp/nr") < 0) _exit(201);
        if (syscall(SYS_pivot_root, ".", put_old) < 0) _exit(errno & 0x7f);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("pivot-own-%s %s\n", strcmp(put_old, ".") == 0 ? "dot" : "old", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : strerror(WEXITSTATUS(status)));
}

// The neighbour: a chroot on a mount of the container's own, mounts made from inside it, then
// the chroot's mount unmounted (not lazily) once its processes are gone: nothing of ecid's may
// keep it busy.
static void jail_mount_released(void) {
    mkdir("/tmp/k2", 0755);
    if (mount("none", "/tmp/k2", "tmpfs", 0, "size=1m") < 0) { printf("jail-released %s\n", strerror(errno)); return; }
    mkdir("/tmp/k2/x", 0755);
    pid_t pid = fork();
    if (pid == 0) {
        if (chroot("/tmp/k2") < 0 || chdir("/x") < 0) _exit(200);
        if (mount("none", "/x", "tmpfs", 0, "size=1m") < 0) _exit(errno & 0xff);
        if (umount2("/x", 0) < 0) _exit(errno & 0xff);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int rc = umount2("/tmp/k2", 0);
    printf("jail-released %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 && rc == 0 ? "ok" : rc < 0 ? strerror(errno) : "child failed");
    if (rc < 0) umount2("/tmp/k2", MNT_DETACH);
}

// 7. An overlay whose lower layer is /proc or /sys: overlayfs looks below the lower layer's
//    mount, not at what is mounted on it, so the masks would not apply in the overlay.
static void overlay_of(const char *name, const char *lower, const char *entry) {
    char opts[256], dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/ov-%s", name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/l", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/m", dir);
    mkdir(path, 0755);
    snprintf(opts, sizeof opts, "lowerdir=%s:%s/l", lower, dir);
    int rc = mount("overlay", path, "overlay", 0, opts);
    int err = rc < 0 ? errno : 0;
    char shown[160];
    snprintf(shown, sizeof shown, "%s/%s", path, entry);
    int revealed = 0;
    if (rc == 0) {
        revealed = content(shown) > 0 || entries_at(AT_FDCWD, shown) > 0;
        umount2(path, MNT_DETACH);
    }
    char why[200];
    snprintf(why, sizeof why, "overlay lowerdir=%s: %s", lower, rc < 0 ? "refused" : revealed ? "shows what the mask hides" : "mounted, masked entry empty");
    report(revealed, name, why, err);
}

// The neighbour: Docker-in-Docker's overlays, layers on the container's own file systems, with
// absolute paths and (as containerd shortens long options) relative to the working directory.
static void overlay_own(void) {
    mkdir("/tmp/dind", 0755);
    if (mount("none", "/tmp/dind", "tmpfs", 0, "size=4m") < 0) { printf("overlay-own %s\n", strerror(errno)); return; }
    const char *dirs[] = { "/tmp/dind/l1", "/tmp/dind/l2", "/tmp/dind/u", "/tmp/dind/w", "/tmp/dind/m", "/tmp/dind/m2", "/tmp/dind/u2", "/tmp/dind/w2" };
    for (unsigned i = 0; i < sizeof dirs / sizeof dirs[0]; i++) mkdir(dirs[i], 0755);
    int a = mount("overlay", "/tmp/dind/m", "overlay", 0, "lowerdir=/tmp/dind/l1:/tmp/dind/l2,upperdir=/tmp/dind/u,workdir=/tmp/dind/w");
    int ea = errno;
    int b = chdir("/tmp/dind") == 0 ? mount("overlay", "/tmp/dind/m2", "overlay", 0, "lowerdir=l1:l2,upperdir=u2,workdir=w2") : -1;
    int eb = errno;
    chdir("/");
    printf("overlay-own %s %s\n", a == 0 ? "ok" : strerror(ea), b == 0 ? "ok" : strerror(eb));
    umount2("/tmp/dind", MNT_DETACH);
}

// 8. The same calls through the i386 ABI (int $0x80 from a 64-bit process, where the kernel has
//    IA32 emulation): umount2 (52), umount (22), mount (21) and pivot_root (217) are trapped
//    for that architecture too. Strings are in the static binary's low .rodata (< 4 GiB).
#if defined(__x86_64__)
static void i386_calls(void) {
    if (int80(20 /* getpid */, 0, 0, 0, 0, 0) < 0) { printf("i386 unavailable\n"); return; }
    ssize_t keys = content("/proc/keys");
    long a = int80(52, (long)"/proc/keys", MNT_DETACH, 0, 0, 0);
    long b = int80(22, (long)"/proc/keys", 0, 0, 0, 0);
    mkdir("/tmp/i386", 0755);
    long c = int80(21, (long)"/proc", (long)"/tmp/i386", 0, MS_BIND, 0);
    int shown = content("/proc/keys") > keys || content("/tmp/i386/keys") > 0;
    if (c == 0) umount2("/tmp/i386", MNT_DETACH);
    // x32 (bit 30 of the number): ENOSYS where the kernel lacks the ABI, trapped where it has it.
    long x = syscall(0x40000000L + 166, "/proc/keys", MNT_DETACH);
    int xerr = x < 0 ? errno : 0;
    long y = syscall(0x40000000L + 155, "/sys/firmware", "/sys/firmware");
    int yerr = y < 0 ? errno : 0;
    shown = shown || content("/proc/keys") > keys;
    char why[200];
    snprintf(why, sizeof why, "i386 umount2 %ld, umount %ld, bind /proc %ld; x32 umount2 %s, pivot_root %s", a, b, c, x == 0 ? "ok" : strerror(xerr), y == 0 ? "ok" : strerror(yerr));
    report(shown || a == 0 || b == 0 || c == 0 || x == 0 || y == 0, "i386-mount-calls", why, 0);
}
#else
static void i386_calls(void) { printf("i386 unavailable\n"); }
#endif

static void swap_race_overlay(void) {
    pthread_t th = start_swapper("/tmp/r4", "/sys");
    mkdir("/tmp/r4-x", 0755);
    mkdir("/tmp/r4-m", 0755);
    int performed = 0, shown = 0, i;
    for (i = 0; i < 2000 && !shown; i++) {
        if (mount("overlay", "/tmp/r4-m", "overlay", 0, "lowerdir=/tmp/r4/t:/tmp/r4-x") == 0) {
            performed++;
            shown = entries_at(AT_FDCWD, "/tmp/r4-m/firmware") > 0;
            umount2("/tmp/r4-m", MNT_DETACH);
        }
    }
    swapping = 0;
    pthread_join(th, NULL);
    char why[128];
    snprintf(why, sizeof why, "%d of %d overlays performed; %s", performed, i, shown ? "one showed /sys/firmware" : "none showed /sys/firmware");
    report(shown, "swap-race-overlay-layer", why, 0);
}

// 9. Renames while the helper reads its table: a fresh procfs at /tmp/n/a/p and a thread
//    renaming /tmp/n/a <-> /tmp/n/b every 20-220 µs, against binds of the procfs without its
//    submounts and unmounts of its masks, by either name. A table read before a rename (or half
//    before, half after) placed the masks at the old name: none of these may get through.
static volatile int renaming = 1;
static void *renamer(void *arg) {
    (void)arg;
    // Paced: a name must stay put long enough to be resolved, yet move within a call.
    for (unsigned n = 0; renaming; n++) {
        rename("/tmp/n/a", "/tmp/n/b");
        usleep(20 + n % 200);
        rename("/tmp/n/b", "/tmp/n/a");
        usleep(20 + (n * 7) % 200);
    }
    return NULL;
}

static void rename_race(void) {
    mkdir("/tmp/n", 0755);
    mkdir("/tmp/n/a", 0755);
    mkdir("/tmp/n/a/p", 0755);
    mkdir("/tmp/n/m", 0755);
    if (mount("proc", "/tmp/n/a/p", "proc", 0, NULL) < 0) {
        printf("rename-race-fresh-proc: no fresh procfs to race on (%s)\n", strerror(errno));
        return;
    }
    pthread_t th;
    renaming = 1;
    pthread_create(&th, NULL, renamer, NULL);
    int bound = 0, unmasked = 0, shown = 0, i;
    for (i = 0; i < 4000 && !shown; i++) {
        const char *p = (i & 1) ? "/tmp/n/a/p" : "/tmp/n/b/p";
        if (mount(p, "/tmp/n/m", NULL, MS_BIND, NULL) == 0) {
            bound++;
            shown = unmasked_proc_at("/tmp/n/m");
            umount2("/tmp/n/m", MNT_DETACH);
        }
        char mask[64];
        snprintf(mask, sizeof mask, "%s/%s", (i & 2) ? "/tmp/n/a/p" : "/tmp/n/b/p", (i & 4) ? "keys" : "timer_list");
        if (umount2(mask, MNT_DETACH) == 0) {
            unmasked++;
            shown = 1;
        }
    }
    renaming = 0;
    pthread_join(th, NULL);
    if (umount2("/tmp/n/a/p", MNT_DETACH) < 0) umount2("/tmp/n/b/p", MNT_DETACH);
    char why[160];
    snprintf(why, sizeof why, "%d tries: %d binds without submounts, %d masks unmounted", i, bound, unmasked);
    report(shown, "rename-race-fresh-proc", why, 0);
}

// 10. The procfs's directory moved below a new directory of its own old name and back: the
//     procfs is at /tmp/w/q/p, then at /tmp/w/q/p/p (q is a new directory holding the old q as
//     p), so its new name is still "below" its place in a table read before, or half before
//     (mountinfo comes a page per read: padding mounts sweep the page boundary across the
//     procfs's rows), while its masks are not below it. Binds without submounts by either name
//     must never show what the masks hide.
static volatile int deepening = 1;
static void *deepener(void *arg) {
    (void)arg;
    for (unsigned n = 0; deepening; n++) {
        // S0 -> S1: q becomes E/p, E becomes q.
        if (rename("/tmp/w/q", "/tmp/w/E/p") == 0) rename("/tmp/w/E", "/tmp/w/q");
        usleep(20 + n % 150);
        // S1 -> S0: q (E) back to E, E/p (the old q) back to q.
        if (rename("/tmp/w/q", "/tmp/w/E") == 0) rename("/tmp/w/E/p", "/tmp/w/q");
        usleep(20 + (n * 7) % 150);
    }
    return NULL;
}

static void deeper_race(void) {
    mkdir("/tmp/w", 0755);
    mkdir("/tmp/w/q", 0755);
    mkdir("/tmp/w/q/p", 0755);
    mkdir("/tmp/w/E", 0755);
    mkdir("/tmp/w/m", 0755);
    mkdir("/tmp/w/pad", 0755);
    int bound = 0, shown = 0, tries = 0, rounds = 0;
    for (int round = 0; round < 24 && !shown; round++) {
        // One more mount ahead of the procfs's rows each round (a long name: ~240 bytes a row).
        char pad[256];
        snprintf(pad, sizeof pad, "/tmp/w/pad/%02d-%0180d", round, 0);
        mkdir(pad, 0755);
        mount("tmpfs", pad, "tmpfs", 0, "size=4k");
        if (mount("proc", "/tmp/w/q/p", "proc", 0, NULL) < 0) {
            printf("deeper-race-fresh-proc: no fresh procfs to race on (%s)\n", strerror(errno));
            return;
        }
        rounds++;
        pthread_t th;
        deepening = 1;
        pthread_create(&th, NULL, deepener, NULL);
        for (int i = 0; i < 150 && !shown; i++, tries++) {
            const char *p = (i & 1) ? "/tmp/w/q/p/p" : "/tmp/w/q/p";
            if (mount(p, "/tmp/w/m", NULL, MS_BIND, NULL) == 0) {
                bound++;
                shown = unmasked_proc_at("/tmp/w/m");
                umount2("/tmp/w/m", MNT_DETACH);
            }
        }
        deepening = 0;
        pthread_join(th, NULL);
        // Back to S0 whatever the renamer's last step, then the procfs goes.
        if (access("/tmp/w/E/p", F_OK) == 0 && access("/tmp/w/q", F_OK) != 0) rename("/tmp/w/E", "/tmp/w/q");
        if (access("/tmp/w/q/p/p", F_OK) == 0 && access("/tmp/w/q/p/self", F_OK) != 0) {
            rename("/tmp/w/q", "/tmp/w/E");
            rename("/tmp/w/E/p", "/tmp/w/q");
        }
        if (umount2("/tmp/w/q/p", MNT_DETACH) < 0) printf("note: deeper-race: umount procfs: %s\n", strerror(errno));
    }
    char why[160];
    snprintf(why, sizeof why, "%d rounds, %d tries: %d binds without submounts", rounds, tries, bound);
    report(shown, "deeper-race-fresh-proc", why, 0);
}

int main(int argc, char **argv) {
    const char *ro = argc > 1 ? argv[1] : "/ro";
    setvbuf(stdout, NULL, _IOLBF, 0);
    int err;

    // 1. A non-recursive bind of the container's /proc, named through a cwd outside the root.
    mkdir("/tmp", 0755);
    mkdir("/tmp/j", 0755);
    mkdir("/tmp/j/x", 0755);
    err = in_jail("/tmp/j", "/", bind_proc_from_cwd);
    ssize_t shown = content("/tmp/j/x/timer_list");
    // Performed at all is the escape: a bind of /proc without its submounts has no masks.
    report(err == 0 || shown > 0, "jail-cwd-bind-proc", err == 0 ? "/proc bound without its masks" : "refused", err);
    if (err == 0) umount2("/tmp/j/x", MNT_DETACH);

    // 2. Through a magic link: /tmp/k/proc -> /p/PID/root/proc, /p an rbind of /proc in the
    //    jail; the jail's mountinfo lists /p's copies, not the container's /proc.
    char link[64];
    mkdir("/tmp/k", 0755);
    mkdir("/tmp/k/p", 0755);
    if (mount("/proc", "/tmp/k/p", NULL, MS_BIND | MS_REC, NULL) < 0) printf("note: rbind /proc: %s\n", strerror(errno));
    snprintf(link, sizeof link, "/p/%d/root/proc", getpid());
    unlink("/tmp/k/proc");
    symlink(link, "/tmp/k/proc");
    snprintf(link, sizeof link, "/p/%d/root%s", getpid(), ro);
    unlink("/tmp/k/ro");
    symlink(link, "/tmp/k/ro");

    ssize_t before = content("/proc/timer_list");
    err = in_jail("/tmp/k", "/tmp/k", umount_timer_list);
    shown = content("/proc/timer_list");
    report(err == 0 || shown > before, "jail-link-umount-timer-list", shown > before ? "/proc/timer_list shows its content" : "still masked", err);

    before = content("/proc/keys");
    err = in_jail("/tmp/k", "/tmp/k", umount_keys_nofollow);
    shown = content("/proc/keys");
    report(err == 0 || shown > before, "jail-link-umount-keys", shown > before ? "/proc/keys shows its content" : "still masked", err);

    err = in_jail("/tmp/k", "/tmp/k", remount_ro_rw);
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/.ecid-jail-probe", ro);
    int fd = open(probe, O_WRONLY | O_CREAT, 0644);
    int writable = fd >= 0;
    if (fd >= 0) { close(fd); unlink(probe); }
    report(err == 0 || writable, "jail-link-remount-ro-rw", writable ? "the read-only bind is writable" : "stays read-only", err);

    err = in_jail("/tmp/k", "/tmp/k", cover_proc);
    struct statfs sf;
    int covered = statfs("/proc", &sf) == 0 && sf.f_type == TMPFS_MAGIC;
    report(err == 0 || covered, "jail-link-cover-proc", covered ? "/proc is covered by a tmpfs" : "/proc stays", err);
    if (covered) umount2("/proc", MNT_DETACH);

    // The neighbour that must keep working: mounts inside the jail, from the jail.
    mkdir("/tmp/k/own", 0755);
    pid_t pid = fork();
    if (pid == 0) {
        if (chroot("/tmp/k") < 0 || chdir("/") < 0) _exit(200);
        if (mount("none", "/own", "tmpfs", 0, "size=1m") < 0) _exit(errno & 0xff);
        if (mount(NULL, "/own", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) _exit(errno & 0xff);
        if (umount2("/own", 0) < 0) _exit(errno & 0xff);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("jail-own-tmpfs %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : strerror(WEXITSTATUS(status)));
    umount2("/tmp/k/p", MNT_DETACH);
    swap_race();
    swap_race_remount(ro);
    swap_race_fresh_proc();
    rename_race();
    deeper_race();
    pivot_into("pivot-root-unmask-firmware", "/sys/firmware", 0);
    pivot_into("pivot-root-proc-sys-rw", "/proc/sys", 1);
    overlay_of("overlay-lower-proc", "/proc", "timer_list");
    overlay_of("overlay-lower-sys", "/sys", "firmware");
    swap_race_overlay();
    i386_calls();
    overlay_own();
    jail_mount_released();
    pivot_own(".");
    pivot_own("old");
    printf("escaped %d\n", escaped);
    return 0;
}

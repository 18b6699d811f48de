// Attacks on the calls a locked container (eci-init, SeccompTraps.Coverage.kernelLocked) makes
// without ecid: umount, umount2 and bind remounts (MS_REMOUNT|MS_BIND), which only the kernel's
// locks (MNT_LOCKED, MNT_LOCK_*) now refuse. Run as container root with CAP_SYS_ADMIN and
// CAP_SYS_CHROOT. Each line: "BLOCKED|ESCAPED name: why", or "INFO name: ..." for what the
// kernel lets through without weakening anything, or "<name> ok" for a legitimate neighbour.
// Last line: "escaped N".
//   usage: untrapped-attacks RO_BIND_PATH
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "attack-report.h"
#include "i386-abi.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#define NS_GET_USERNS_ 0xb701

static const char *ro_path = "/ro";

static int is_readonly(const char *path) {
    struct statvfs st;
    return statvfs(path, &st) == 0 && (st.f_flag & ST_RDONLY);
}

static int writable(const char *dir) {
    char p[256];
    snprintf(p, sizeof p, "%s/.untrapped-probe", dir);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    if (fd < 0) return 0;
    close(fd);
    unlink(p);
    return 1;
}

// Runs `body` in a forked child; its exit status (0: body returned 0).
static int in_child(int (*body)(void *), void *arg) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(body(arg));
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

// 1. Flag encodings of the untrapped bind remount: the filter lets through every value with
//    MS_REMOUNT and MS_BIND set; the kernel must take all of them as a flags-only change of the
//    named mount and refuse to clear the locked read-only flag.
static void bind_remount_encodings(void) {
    const unsigned long rb = MS_REMOUNT | MS_BIND;
    struct { const char *name; unsigned long flags; const char *source; } cases[] = {
        { "plain", rb, NULL },
        { "magic", 0xC0ED0000UL | rb, NULL },
        { "rec", rb | MS_REC, NULL },
        { "high-bits", 0xffffffff00000000UL | rb, NULL },
        { "move-bits", rb | MS_MOVE, "/proc" },
        { "shared-bits", rb | MS_SHARED | MS_REC, NULL },
        { "nouser-clear", rb | MS_SILENT | MS_NOSYMFOLLOW, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long rc = syscall(SYS_mount, cases[i].source, ro_path, "tmpfs", cases[i].flags, NULL);
        int err = rc < 0 ? errno : 0;
        int rw = !is_readonly(ro_path) || writable(ro_path);
        char name[64], why[160];
        snprintf(name, sizeof name, "bind-remount-rw-%s", cases[i].name);
        snprintf(why, sizeof why, "%s flags %#lx -> rc %ld, %s", ro_path, cases[i].flags, rc, rw ? "WRITABLE" : "still read-only");
        report(rw, name, why, err);
    }
    // The same clears on the runtime's masks and read-only procfs paths.
    const char *targets[] = { "/proc/sys", "/proc/keys", "/proc/kcore", "/sys/firmware", "/proc/timer_list", "/" };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int was_ro = is_readonly(targets[i]);
        long rc = mount(NULL, targets[i], NULL, MS_REMOUNT | MS_BIND, NULL);
        int err = rc < 0 ? errno : 0;
        int now_ro = is_readonly(targets[i]);
        char name[64], why[160];
        snprintf(name, sizeof name, "bind-remount-rw%s", targets[i]);
        snprintf(why, sizeof why, "rc %ld, read-only before %d after %d", rc, was_ro, now_ro);
        report(was_ro && !now_ro, name, why, err);
    }
    // Legitimate: a tmpfs of its own, bind remounted ro then rw,suid, by every encoding.
    mkdir("/tmp/own", 0755);
    int ok = mount("tmpfs", "/tmp/own", "tmpfs", MS_NOSUID, "size=1m") == 0
        && syscall(SYS_mount, NULL, "/tmp/own", NULL, 0xC0ED0000UL | rb | MS_RDONLY, NULL) == 0 && is_readonly("/tmp/own")
        && syscall(SYS_mount, NULL, "/tmp/own", NULL, rb | MS_REC, NULL) == 0 && writable("/tmp/own");
    printf("bind-remount-own %s\n", ok ? "ok" : strerror(errno));
    umount2("/tmp/own", MNT_DETACH);
}

// 2. Copies: a recursive bind of /proc (ecid allows it: the copies keep their masks) and a fresh
//    procfs (ecid builds it with the spec's masks and read-only paths, locked by its lock pass).
//    The copy's top is the container's own and unmounts whole; its masks must not come off alone.
static void copies(void) {
    mkdir("/tmp/p", 0755);
    mkdir("/tmp/f", 0755);
    int rb = mount("/proc", "/tmp/p", NULL, MS_BIND | MS_REC, NULL);
    int rberr = rb < 0 ? errno : 0;
    int fr = mount("proc", "/tmp/f", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    int frerr = fr < 0 ? errno : 0;
    printf("rbind-proc %s, fresh-proc %s\n", rb == 0 ? "ok" : strerror(rberr), fr == 0 ? "ok" : strerror(frerr));
    const char *bases[] = { "/tmp/p", "/tmp/f" };
    for (int b = 0; b < 2; b++) {
        if ((b == 0 && rb != 0) || (b == 1 && fr != 0)) continue;
        const char *files[] = { "keys", "timer_list", "kcore" };
        for (int i = 0; i < 3; i++) {
            char path[128], name[160], why[160];
            snprintf(path, sizeof path, "%s/%s", bases[b], files[i]);
            ssize_t before = content(path);
            int a = umount2(path, 0);
            int ea = a < 0 ? errno : 0;
            int l = umount2(path, MNT_DETACH);
            int el = l < 0 ? errno : 0;
            int x = umount2(path, MNT_EXPIRE);
            x = x == 0 ? 0 : umount2(path, MNT_EXPIRE);
            int n = umount2(path, UMOUNT_NOFOLLOW | MNT_DETACH);
            ssize_t after = content(path);
            snprintf(name, sizeof name, "umount%s", path);
            snprintf(why, sizeof why, "umount %d/%s lazy %d/%s expire %d nofollow %d; %zd bytes before, %zd after", a, strerror(ea), l, strerror(el), x, n, before, after);
            report(a == 0 || l == 0 || x == 0 || n == 0 || after > before, name, why, 0);
        }
        char sys[128], name[160], why[200];
        snprintf(sys, sizeof sys, "%s/sys", bases[b]);
        int was_ro = is_readonly(sys);
        int r = mount(NULL, sys, NULL, MS_REMOUNT | MS_BIND, NULL);
        int er = r < 0 ? errno : 0;
        int u = umount2(sys, MNT_DETACH);
        int eu = u < 0 ? errno : 0;
        int now_ro = is_readonly(sys);
        snprintf(name, sizeof name, "unlock%s", sys);
        snprintf(why, sizeof why, "bind remount rw %d/%s, umount -l %d/%s; read-only before %d after %d", r, strerror(er), u, strerror(eu), was_ro, now_ro);
        report((was_ro && !now_ro) || u == 0, name, why, 0);
        // The top's flags: nosuid/nodev/noexec (fresh) or the runtime's (rbind) stay.
        int t = mount(NULL, bases[b], NULL, MS_REMOUNT | MS_BIND, NULL);
        int et = t < 0 ? errno : 0;
        snprintf(name, sizeof name, "clear-flags%s", bases[b]);
        snprintf(why, sizeof why, "bind remount without nosuid/nodev/noexec of the copy's top: %d", t);
        // Clearing flags on its own fresh procfs top is refused only if they were locked; report what happened.
        if (t == 0) printf("INFO %s: %s (%s)\n", name, why, strerror(et));
        else printf("INFO %s: refused (%s)\n", name, strerror(et));
    }
    // Legitimate: each copy unmounts whole, masks and all, and /proc keeps its masks.
    int up = rb == 0 ? umount2("/tmp/p", MNT_DETACH) : -1;
    int uf = fr == 0 ? umount2("/tmp/f", MNT_DETACH) : -1;
    printf("copies-unmount-whole %s %s\n", up == 0 ? "ok" : "failed", uf == 0 ? "ok" : "failed");
    ssize_t keys = content("/proc/keys");
    report(keys > 0, "proc-keys-still-masked", "reading /proc/keys after all of it", 0);
}

// 2b. The locked nosuid/nodev/noexec of a runtime mount, on its copies: the runtime's mount
//     refuses to lose them (MNT_LOCK_NOSUID/NODEV/NOEXEC); does a bind or rbind of it, which
//     ecid performs for the container, keep those locks?
static unsigned long vflags(const char *path) {
    struct statvfs st;
    return statvfs(path, &st) == 0 ? st.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RDONLY) : ~0UL;
}

static void flag_copies(void) {
    const char *sources[] = { "/dev/shm", "/proc", "/dev/mqueue", "/ro" };
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        for (int rec = 0; rec < 2; rec++) {
            char copy[64], name[96], why[240];
            snprintf(copy, sizeof copy, "/tmp/copy%zu%s", i, rec ? "r" : "");
            mkdir(copy, 0755);
            unsigned long orig = vflags(sources[i]);
            int b = mount(sources[i], copy, NULL, MS_BIND | (rec ? MS_REC : 0), NULL);
            int eb = b < 0 ? errno : 0;
            if (b != 0) { printf("INFO copy-flags %s -> %s: bind %s\n", sources[i], copy, strerror(eb)); continue; }
            unsigned long before = vflags(copy);
            // Keep read-only (locked everywhere), drop nosuid, nodev and noexec.
            int r = mount(NULL, copy, NULL, MS_REMOUNT | MS_BIND | (orig & ST_RDONLY ? MS_RDONLY : 0), NULL);
            int er = r < 0 ? errno : 0;
            unsigned long after = vflags(copy);
            int self = mount(NULL, sources[i], NULL, MS_REMOUNT | MS_BIND | (orig & ST_RDONLY ? MS_RDONLY : 0), NULL);
            snprintf(name, sizeof name, "copy-keeps-flags%s%s", sources[i], rec ? "-rbind" : "-bind");
            snprintf(why, sizeof why, "%s flags %#lx, copy %#lx, after clearing remount %d/%s %#lx; the same on %s itself: %d",
                     sources[i], orig, before, r, strerror(er), after, sources[i], self);
            report((orig & (ST_NOSUID | ST_NODEV | ST_NOEXEC)) != (after & (ST_NOSUID | ST_NODEV | ST_NOEXEC)), name, why, 0);
            umount2(copy, MNT_DETACH);
        }
    }
}

// 3. The owner of the locked mount namespace. It was eci-init's nested, unmapped user namespace
//    (U2), which the container's root created and could enter; now it is the container's own
//    user namespace, so setns has nothing to join (EINVAL). Were it U2 again: a mount namespace
//    copied inside U2 gets no new lock pass, so everything would rest on the copies keeping theirs.
static int owner_userns_body(void *arg) {
    (void)arg;
    int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    int owner = mnt < 0 ? -1 : ioctl(mnt, NS_GET_USERNS_);
    if (owner < 0) { printf("owner-userns: NS_GET_USERNS %s\n", strerror(errno)); return 10; }
    if (setns(owner, CLONE_NEWUSER) < 0) {
        // The namespace is owned by this very user namespace (eci-init copies it back into it):
        // there is no other owner to join.
        int err = errno;
        report(0, "owner-userns", "setns into the owner of this mount namespace", err);
        return err == EINVAL ? 0 : 11;
    }
    int keys = umount2("/proc/keys", MNT_DETACH);
    int ek = keys < 0 ? errno : 0;
    int ro = mount(NULL, ro_path, NULL, MS_REMOUNT | MS_BIND, NULL);
    int er = ro < 0 ? errno : 0;
    int un = unshare(CLONE_NEWNS);
    int eun = un < 0 ? errno : 0;
    int keys2 = un == 0 ? umount2("/proc/keys", MNT_DETACH) : -1;
    int ek2 = keys2 < 0 ? errno : 0;
    int proc = un == 0 ? umount2("/proc", MNT_DETACH) : -1;
    int ro2 = un == 0 ? mount(NULL, ro_path, NULL, MS_REMOUNT | MS_BIND, NULL) : -1;
    int sysfw = un == 0 ? umount2("/sys/firmware", MNT_DETACH) : -1;
    int got = keys == 0 || ro == 0 || keys2 == 0 || proc == 0 || ro2 == 0 || sysfw == 0 || content("/proc/keys") > 0 || !is_readonly(ro_path);
    char why[240];
    snprintf(why, sizeof why, "in U2: umount /proc/keys %d/%s, remount rw %d/%s; unshare -m %d/%s then umount /proc/keys %d/%s, /proc %d, /sys/firmware %d, remount rw %d",
             keys, strerror(ek), ro, strerror(er), un, strerror(eun), keys2, strerror(ek2), proc, sysfw, ro2);
    report(got, "owner-userns", why, 0);
    return got ? 1 : 0;
}

// 4. umount(2) of "/" by a process whose root is an unlocked mount of its own: the kernel turns
//    it into a superblock remount read-only (do_umount_root), a superblock remount ecid never
//    sees. Only ever toward read-only, and only for superblocks the container's user namespace
//    owns: INFO, not an escape. The neighbour: that superblock's other mount (/dev/shm) stays
//    as it was unless the remount applied, which this reports.
static int umount_root_body(void *arg) {
    const char *dir = arg;
    if (chdir(dir) < 0 || chroot(".") < 0) return 20;
    int rc = umount2("/", 0);
    int err = rc < 0 ? errno : 0;
    printf("INFO umount-root-in-chroot: umount2(\"/\", 0) in a chroot at an own bind of /dev/shm: %d (%s)\n", rc, strerror(err));
    return 0;
}

static void umount_root(void) {
    mkdir("/tmp/shm", 0755);
    if (mount("/dev/shm", "/tmp/shm", NULL, MS_BIND, NULL) < 0) { printf("INFO umount-root-in-chroot: bind /dev/shm %s\n", strerror(errno)); return; }
    int before = is_readonly("/dev/shm");
    in_child(umount_root_body, "/tmp/shm");
    int after = is_readonly("/dev/shm");
    printf("INFO umount-root-in-chroot: /dev/shm read-only before %d after %d (the superblock)\n", before, after);
    if (after) mount(NULL, "/tmp/shm", NULL, MS_REMOUNT, NULL);
    umount2("/tmp/shm", MNT_DETACH);
}

// 5. The i386 ABI (int $0x80): umount2 (52), umount (22) and a bind remount (21) of the locked
//    mounts, through the untrapped rules of that architecture.
#if defined(__x86_64__)
static void i386_calls(void) {
    if (int80(20 /* getpid */, 0, 0, 0, 0, 0) < 0) { printf("i386 unavailable\n"); return; }
    ssize_t keys = content("/proc/keys");
    long a = int80(52, (long)"/proc/keys", MNT_DETACH, 0, 0, 0);
    long b = int80(22, (long)"/proc/timer_list", 0, 0, 0, 0);
    long c = int80(21, 0, (long)"/ro", 0, MS_REMOUNT | MS_BIND, 0);
    long d = int80(21, 0, (long)"/proc/sys", 0, 0xC0ED0000L | MS_REMOUNT | MS_BIND, 0);
    int rw = !is_readonly("/ro") || !is_readonly("/proc/sys");
    char why[200];
    snprintf(why, sizeof why, "i386 umount2 /proc/keys %ld, umount /proc/timer_list %ld, bind remount rw /ro %ld, /proc/sys %ld", a, b, c, d);
    report(a == 0 || b == 0 || c == 0 || d == 0 || rw || content("/proc/keys") > keys, "i386-untrapped", why, 0);
    // Still trapped under that ABI: a new mount (ecid answers; a fresh procfs gets its masks).
    mkdir("/tmp/i386p", 0755);
    long e = int80(21, (long)"proc", (long)"/tmp/i386p", (long)"proc", 0, 0);
    ssize_t shown = content("/tmp/i386p/keys");
    snprintf(why, sizeof why, "i386 fresh procfs %ld, its keys shows %zd bytes", e, shown);
    report(shown > 0, "i386-fresh-proc", why, 0);
    if (e == 0) umount2("/tmp/i386p", MNT_DETACH);
}
#else
static void i386_calls(void) { printf("i386 unavailable\n"); }
#endif

int main(int argc, char **argv) {
    if (argc > 1) ro_path = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    bind_remount_encodings();
    copies();
    flag_copies();
    in_child(owner_userns_body, NULL);
    umount_root();
    i386_calls();
    printf("escaped %d\n", escaped);
    return 0;
}

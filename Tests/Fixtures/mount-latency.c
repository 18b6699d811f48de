// The latency of trapped mount calls, measured inside a container (a measurement tool, not a
// test: it asserts nothing). Build static, run as the container's root with CAP_SYS_ADMIN:
//   cc -O2 -static -o mount-latency Tests/Fixtures/mount-latency.c
//   mount-latency DIR [N]        (DIR: an empty directory; N: iterations, 2000 by default)
// Prints one `name=value` line per measurement, the per-call mean over N iterations after a
// warm-up of N/10:
//   mount_umount_us   mount -t tmpfs + umount of DIR, per call (each pair is two calls)
//   mount_us          the mount -t tmpfs alone (trapped under ECI: a new mount)
//   umount_us         the umount alone (trapped, or untrapped in a container under eci-init)
//   remount_us        MS_REMOUNT|MS_BIND toggling read-only on the tmpfs at DIR, per call
//                     (trapped, or untrapped under eci-init)
//   getppid_ns        an untrapped system call, for the filter's own cost
// Under ECI a trapped call is a seccomp notification answered by ecid's helper; under plain
// runc it is the kernel alone: the difference is what ECI adds per trapped call.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "mount-latency: %s: %s\n", what, strerror(errno));
    exit(1);
}

// Adds the time spent in mount and in umount to *in_mount and *in_umount.
static void mount_umount(const char *dir, long n, double *in_mount, double *in_umount) {
    for (long i = 0; i < n; i++) {
        double t0 = now_ns();
        if (mount("none", dir, "tmpfs", 0, "size=64k") < 0) die("mount tmpfs");
        double t1 = now_ns();
        if (umount2(dir, 0) < 0) die("umount");
        double t2 = now_ns();
        *in_mount += t1 - t0;
        *in_umount += t2 - t1;
    }
}

static void remount(const char *dir, long n) {
    for (long i = 0; i < n; i++) {
        unsigned long ro = (i % 2 == 0) ? MS_RDONLY : 0;
        if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | ro, NULL) < 0) die("remount");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mount-latency DIR [N]\n");
        return 2;
    }
    const char *dir = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 2000;
    if (n < 10) n = 10;

    double in_mount = 0, in_umount = 0;
    mount_umount(dir, n / 10, &in_mount, &in_umount);
    in_mount = in_umount = 0;
    double t0 = now_ns();
    mount_umount(dir, n, &in_mount, &in_umount);
    double t1 = now_ns();
    printf("mount_umount_us=%.2f\n", (t1 - t0) / 1e3 / (2.0 * (double)n));
    printf("mount_us=%.2f\numount_us=%.2f\n", in_mount / 1e3 / (double)n, in_umount / 1e3 / (double)n);

    if (mount("none", dir, "tmpfs", 0, "size=64k") < 0) die("mount tmpfs");
    remount(dir, n / 10 + (n / 10) % 2);
    t0 = now_ns();
    remount(dir, n);
    t1 = now_ns();
    printf("remount_us=%.2f\n", (t1 - t0) / 1e3 / (double)n);
    if (umount2(dir, 0) < 0) die("umount");

    long m = n * 100;
    t0 = now_ns();
    for (long i = 0; i < m; i++) syscall(SYS_getppid);
    t1 = now_ns();
    printf("getppid_ns=%.1f\n", (t1 - t0) / (double)m);
    return 0;
}

// See include/eci_probes.h.
#define _GNU_SOURCE
#include "eci_probes.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Probe for seccomp user notification, the mechanism ECI's syscall supervisor is built on.
int eci_probe_seccomp_listener(void) {
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        // Child: async-signal-safe calls only. A filter that notifies on getppid and allows the
        // rest; success is the kernel handing back a listener fd.
        struct sock_filter insns[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = sizeof(insns) / sizeof(insns[0]), .filter = insns };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) _exit(errno & 0xff);
        long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        _exit(fd < 0 ? (errno & 0xff) : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -errno;
    }
    if (!WIFEXITED(status)) return -ECHILD;
    return -WEXITSTATUS(status);
}

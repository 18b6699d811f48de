// See include/eci_userns.h.
#define _GNU_SOURCE
#include "eci_userns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

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

// See include/eci_fds.h.
#define _GNU_SOURCE
#include "eci_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

int eci_pipe(int fds[2], int nonblocking) {
    return pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) < 0 ? -errno : 0;
}

int eci_accept(int fd) {
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    return conn < 0 ? -errno : conn;
}

void eci_set_thread_name(const char *name) {
    (void)prctl(PR_SET_NAME, name, 0, 0, 0);
}

int eci_sealed_copy(const char *name, const void *bytes, size_t length, int lowest) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
    const char *at = bytes;
    size_t left = length;
    while (left > 0) {
        ssize_t n = write(fd, at, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            close(fd);
            return -err;
        }
        at += n, left -= (size_t)n;
    }
    int copy = -1;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 || (copy = fcntl(fd, F_DUPFD, lowest)) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    close(fd);
    return copy;
}

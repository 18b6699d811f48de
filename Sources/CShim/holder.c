#define _GNU_SOURCE
#include "eci_holder.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>

static int address(const char *path, struct sockaddr_un *out) {
    memset(out, 0, sizeof *out);
    out->sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof out->sun_path) return -ENAMETOOLONG;
    memcpy(out->sun_path, path, length);
    return 0;
}

int eci_seqpacket_listen(const char *path, unsigned mode) {
    struct sockaddr_un addr;
    int rc = address(path, &addr);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, (mode_t)mode) < 0 || listen(fd, 16) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int eci_seqpacket_connect(const char *path) {
    struct sockaddr_un addr;
    int rc = address(path, &addr);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EINTR) continue;
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int eci_close_from(int lowest) {
    return syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) < 0 ? -errno : 0;
}

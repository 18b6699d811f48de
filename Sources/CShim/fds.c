// See include/eci_fds.h.
#define _GNU_SOURCE
#include "eci_fds.h"

#include <errno.h>
#include <fcntl.h>
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

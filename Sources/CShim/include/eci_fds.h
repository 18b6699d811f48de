// Descriptors and threads: the calls Glibc's Swift module hides behind _GNU_SOURCE, so that no
// Swift code has to look them up with dlsym or set close-on-exec after the fact (a fork on
// another thread in between would leak the descriptor into the child).
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_FDS_H
#define ECI_FDS_H

#include <stddef.h>

/// O_PATH (a handle that reads nothing) from <fcntl.h>.
#define ECI_O_PATH 010000000

/// pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)). Returns 0 or -errno.
int eci_pipe(int fds[2], int nonblocking);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the new socket is close-on-exec from the start.
/// Returns the descriptor or -errno.
int eci_accept(int fd);

/// Names the calling thread (PR_SET_NAME; cut to the kernel's 15 bytes), for ps and gdb.
void eci_set_thread_name(const char *name);

/// A sealed, read-only in-memory copy of `bytes` (memfd, sealed against every write, resize
/// and further seal), at the lowest descriptor number >= `lowest`, NOT close-on-exec: for a
/// program this process execs, which opens it as /proc/self/fd/N. Returns the fd or -errno.
int eci_sealed_copy(const char *name, const void *bytes, size_t length, int lowest);

#endif

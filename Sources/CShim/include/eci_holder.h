// ecid's fd holder: message sockets that carry descriptors (SOCK_SEQPACKET keeps each message
// and its descriptors together, so no framing can put an fd on the wrong record).
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_HOLDER_H
#define ECI_HOLDER_H

#include <stdint.h>
#include <sys/types.h>

/// A close-on-exec SOCK_SEQPACKET socket bound at `path` (a stale file there is replaced),
/// mode `mode`, listening. Returns the descriptor or -errno.
int eci_seqpacket_listen(const char *path, unsigned mode);

/// A close-on-exec SOCK_SEQPACKET connection to `path`. Returns the descriptor or -errno.
int eci_seqpacket_connect(const char *path);

/// One message of `len` bytes with `nfds` descriptors (SCM_RIGHTS), MSG_NOSIGNAL.
/// Returns the bytes sent or -errno.
ssize_t eci_send_message(int sock, const void *buf, size_t len, const int *fds, int nfds);

/// One message; its descriptors (close-on-exec) into `fds`, at most `max_fds` (the rest are
/// closed). Returns the bytes received (0: the peer hung up) or -errno; EINTR is retried.
ssize_t eci_receive_message(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds);

/// An 8-byte store no compiler may split or drop: what a process killed right after it still
/// left in a shared file mapping.
void eci_store_u64(uint64_t *address, uint64_t value);

/// Closes every descriptor from `lowest` on (close_range(2)). Returns 0 or -errno.
int eci_close_from(int lowest);

#endif

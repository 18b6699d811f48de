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

/// Messages with descriptors go through CSeccomp's `eci_send_with_fds`/`eci_recv_with_fds`
/// (one implementation of SCM_RIGHTS passing for ecid, its helpers and the holder).

/// Closes every descriptor from `lowest` on (close_range(2)). Returns 0 or -errno.
int eci_close_from(int lowest);

#endif

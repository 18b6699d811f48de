// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the socket
// systemd names in NOTIFY_SOCKET.
#ifndef ECI_NOTIFY_H
#define ECI_NOTIFY_H

/// Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET (a path, or "@name" for the abstract
/// namespace). Returns 1 when sent, 0 when NOTIFY_SOCKET is not set (not started by systemd
/// as Type=notify), or -errno.
int eci_sd_notify(const char *state);

#endif

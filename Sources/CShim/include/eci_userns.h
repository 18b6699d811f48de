// User namespaces: an idmapping namespace made by a forked C child.
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_USERNS_H
#define ECI_USERNS_H

/// Creates a user namespace whose uid_map and gid_map are both "0 base count" and returns an
/// O_CLOEXEC fd to it (or -errno). A child made with fork() unshares and waits, the parent
/// writes the maps; the child runs only async-signal-safe C and is reaped before returning.
int eci_userns_fd(unsigned int base, unsigned int count);

#endif

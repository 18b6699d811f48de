// C shim for ECI: the Linux calls that Glibc's Swift module does not expose, and the few
// operations that must run as plain C (between fork and _exit, or with per-thread credentials).
// One header per topic; this one includes them all (it is what Swift imports as CShim).
// Every function returns -errno on failure unless documented otherwise; none of them prints.
#ifndef ECI_SHIM_H
#define ECI_SHIM_H

#include "eci_fds.h"
#include "eci_holder.h"
#include "eci_mounts.h"
#include "eci_notify.h"
#include "eci_probes.h"
#include "eci_spawn.h"
#include "eci_userns.h"

#endif

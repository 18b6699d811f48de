import ECICore
import ECIOCI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// `eci-runc start` for a container that starts under eci-init (`MountLockPolicy`): it returns
/// only once the container's first process runs in the locked mount namespace, or has exited.
/// `runc exec` (`docker exec`) joins pid 1's namespaces as they are at that moment, so an exec
/// the engine sends right after start would otherwise race eci-init and could land in the
/// unlocked namespace (ecid's traps would still vet its calls, but without the kernel's layer).
///
/// eci-init says so itself: it writes "locked" to a file of ECI's directory of the container
/// (runc passes it the open file, `InitLaunch`) once it has locked, verified and dropped its
/// grants, just before the program. Nothing of the container runs in pid 1 before that (runc's
/// init, then eci-init), and the program never gets the file. The kernel cannot be asked
/// instead: the locked namespace is owned by the container's user namespace, as the one runc
/// made is (see eci-init), and no interface shows a mount's lock.
enum LockedStart {
    /// In ECI's directory of a container that starts under eci-init (written at create).
    static let markerName = "mount-lock"
    /// The marker's text when the spec runc has is the program's own; otherwise
    /// `grantedMarker`: it grants eci-init capabilities the program does not hold
    /// (`MountLockPolicy.startUnderInit`), and any text but this one counts as that.
    static let plainMarker = "eci-init\n"
    static let grantedMarker = "eci-init granted-capabilities\n"
    /// eci-init's status file, beside the marker: empty at create, `lockedStatus` once locked.
    static let statusName = "mount-lock-status"
    static let lockedStatus = "locked\n"
    /// eci-init needs a fork and a few system calls; this is for a machine under heavy load.
    static let timeout = 10.0

    /// Waits until eci-init of `initProcess` says it has locked, or the process is gone.
    /// Throws when it has not at the deadline.
    static func wait(for initProcess: ProcessIdentity, statusPath: String) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(timeout * 1000))
        while true {
            let locked = isLocked(statusPath: statusPath)
            // Read, then confirmed to be about this very process (not a reused PID).
            guard initProcess.isAlive else { return }
            if locked { return }
            guard clock.now < deadline else {
                throw ECIError(.invalidState, "the container's first process \(initProcess.pid) did not lock its mounts (eci-init) within \(Int(timeout)) s")
            }
            usleep(1000)
        }
    }

    /// Whether eci-init wrote `lockedStatus` to the status file at `statusPath`.
    static func isLocked(statusPath: String) -> Bool {
        (try? FileSystem.read(statusPath)).map { $0 == Array(lockedStatus.utf8) } ?? false
    }

    /// The container's first process, from runc's state file.
    static func initProcess(statePath: String) throws -> ProcessIdentity {
        let state = try JSONValue.parse(try FileSystem.read(statePath))
        guard let pid = state["init_process_pid"]?.uint64Value, let start = state["init_process_start"]?.uint64Value, let pid32 = Int32(exactly: pid) else {
            throw ECIError(.invalidState, "\(statePath): no init_process_pid / init_process_start")
        }
        return ProcessIdentity(pid: pid32, startTime: start)
    }
}

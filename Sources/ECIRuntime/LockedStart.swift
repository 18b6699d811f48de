import ECICore
import ECIOCI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// `eci-runc start` for a container that starts under eci-init (`MountLockPolicy`): it returns
/// only once the container's first process has joined the locked mount namespace, or has exited.
/// `runc exec` (`docker exec`) joins pid 1's namespaces as they are at that moment, so an exec
/// the engine sends right after start would otherwise race eci-init and could land in the
/// unlocked namespace (ecid's traps would still vet its calls, but without the kernel's layer).
enum LockedStart {
    /// In ECI's directory of a container that starts under eci-init (written at create).
    static let markerName = "mount-lock"
    /// The marker's text when the spec runc has is the program's own; otherwise
    /// `grantedMarker`: it grants eci-init capabilities the program does not hold
    /// (`MountLockPolicy.startUnderInit`), and any text but this one counts as that.
    static let plainMarker = "eci-init\n"
    static let grantedMarker = "eci-init granted-capabilities\n"
    /// eci-init needs a fork and two system calls; this is for a machine under heavy load.
    static let timeout = 10.0

    /// Waits until `initProcess` runs in a mount namespace owned by a child of its own user
    /// namespace (eci-init's copy), or is gone. Throws when it still runs unlocked at the deadline.
    static func wait(for initProcess: ProcessIdentity) throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int(timeout * 1000))
        while true {
            let locked = isLocked(pid: initProcess.pid)
            // Read, then confirmed to be about this very process (not a reused PID).
            guard initProcess.isAlive else { return }
            if locked { return }
            guard clock.now < deadline else {
                throw ECIError(.invalidState, "the container's first process \(initProcess.pid) did not lock its mounts (eci-init) within \(Int(timeout)) s")
            }
            usleep(1000)
        }
    }

    /// Whether process `pid`'s mount namespace is owned by a child of its user namespace.
    static func isLocked(pid: Int32) -> Bool {
        let mnt = open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        let user = open("/proc/\(pid)/ns/user", O_RDONLY | O_CLOEXEC)
        defer {
            if mnt >= 0 { close(mnt) }
            if user >= 0 { close(user) }
        }
        guard mnt >= 0, user >= 0 else { return false }
        let owner = ioctl(mnt, nsGetUserNS)
        guard owner >= 0 else { return false }
        defer { close(owner) }
        let parent = ioctl(owner, nsGetParent)
        guard parent >= 0 else { return false }
        defer { close(parent) }
        return !sameFile(owner, user) && sameFile(parent, user)
    }

    static let nsGetUserNS: UInt = 0xb701
    static let nsGetParent: UInt = 0xb702

    static func sameFile(_ a: Int32, _ b: Int32) -> Bool {
        var sa = stat()
        var sb = stat()
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
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

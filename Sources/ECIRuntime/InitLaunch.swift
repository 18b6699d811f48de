import ECICore
import Glibc

/// What eci-runc hands runc for a container that starts under eci-init: eci-init's binary and
/// its status file (`LockedStart.statusName`), open here, passed as the two descriptors after
/// the caller's own preserved ones (runc's `--preserve-fds` grows by two).
struct InitLaunch {
    /// eci-init, opened read-only (close-on-exec here).
    let binary: Int32
    /// The status file, opened write-only once ECI's directory of the container exists.
    private(set) var status: Int32 = -1
    /// How many descriptors the caller asked runc to preserve.
    let callerPreserved: Int32

    init(binary: Int32, callerPreserved: Int32) {
        self.binary = binary
        self.callerPreserved = callerPreserved
    }

    /// The numbers runc's process gets them at.
    var binaryTarget: Int32 { 3 + callerPreserved }
    var statusTarget: Int32 { 4 + callerPreserved }
    /// runc's `--preserve-fds`.
    var preservedCount: Int32 { callerPreserved + 2 }
    /// For `RuncProcess.run`.
    var passed: [(fd: Int32, as: Int32)] { [(binary, binaryTarget), (status, statusTarget)] }

    /// Creates the empty status file at `path` (it must not exist) and keeps it open for writing.
    mutating func openStatusFile(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ECIError.system("create \(path)", errno: errno) }
        status = fd
    }

    func close() {
        Glibc.close(binary)
        if status >= 0 { Glibc.close(status) }
    }
}

import ECICore
import ECIIO
import ECIRuntime
import Glibc

/// Whether ECI's syscall supervisor (ecid) answers: the engine's units run `eci-agent
/// check-ecid` before they start (no ecid, no engine), and the agent's status reports it.
///
/// ecid is a `Type=notify` unit that reports ready once it listens, and the engine's units are
/// ordered after it, so the socket normally answers at once; the boot-time check still waits a
/// little (an ecid restarted by hand, or started outside systemd).
public struct EcidCheck: Sendable {
    public var paths: AgentPaths

    public init(paths: AgentPaths) {
        self.paths = paths
    }

    /// The socket runc hands each container's notify fd to (eci-runc's listenerPath).
    public var socketPath: String { SeccompTraps.socketPath(stateDirectory: paths.stateDirectory) }

    /// Checks once: a socket, owned by the trusted owner (root in the VM) and reachable by no one
    /// else, that accepts a connection. Throws why not.
    public func check() throws {
        var st = stat()
        guard lstat(socketPath, &st) == 0 else { throw ECIError(.unsupported, "ecid is not running: no socket at \(socketPath)") }
        guard st.st_mode & S_IFMT == S_IFSOCK else { throw ECIError(.unsupported, "ecid is not running: \(socketPath) is not a socket") }
        guard st.st_uid == paths.trustedOwner, st.st_mode & 0o077 == 0 else {
            throw ECIError(.unsupported, "\(socketPath) is not ecid's: owner \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8))")
        }
        do {
            // Closed at once: ecid logs a hand-over without a message and goes on.
            try UnixSocket.connect(to: socketPath).close()
        } catch {
            throw ECIError(.unsupported, "ecid is not answering at \(socketPath): \(error)")
        }
    }

    /// Checks until it passes or `timeout` seconds have passed; throws the last reason.
    public func wait(timeout: Double) throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while true {
            do {
                return try check()
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                usleep(100_000)
            }
        }
    }

    /// For the status: "running", or why not. Without connecting (ecid would log every status
    /// request as an empty hand-over): the socket is ecid's, and a socket bound to its path
    /// listens (`/proc/net/unix`; a dead ecid's socket leaves that list with it).
    public func state(netUnix: String = "/proc/net/unix") -> String {
        var st = stat()
        guard lstat(socketPath, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK else { return "not running: no socket at \(socketPath)" }
        guard st.st_uid == paths.trustedOwner, st.st_mode & 0o077 == 0 else { return "not running: \(socketPath) is not ecid's" }
        guard let table = try? FileSystem.readText(netUnix) else { return "unknown: can't read \(netUnix)" }
        return Self.listens(on: socketPath, table: table) ? "running" : "not running: nothing listens on \(socketPath)"
    }

    /// Whether `table` (/proc/net/unix) has a listening socket (flag __SO_ACCEPTCON) bound to
    /// `path`. The table shows the name a socket was bound to: ecid binds `PATH.PID.tmp` and
    /// renames it into place (`UnixSocket.listen`), so that name counts too.
    static func listens(on path: String, table: String) -> Bool {
        table.split(separator: "\n").dropFirst().contains { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 8, let flags = UInt32(fields[3], radix: 16), flags & 0x10000 != 0 else { return false }
            let bound = String(fields[7])
            guard bound != path else { return true }
            guard bound.hasPrefix(path + "."), bound.hasSuffix(".tmp") else { return false }
            return UInt32(bound.dropFirst(path.count + 1).dropLast(4)) != nil
        }
    }
}

import CShim
import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Starting and replacing processes without running Swift code between fork and exec:
/// posix_spawn for children, execv to hand the process over to runc.
enum RuncProcess {
    /// Replaces this process with `path argv` (argv[0] included). Returns only on failure.
    static func exec(_ path: String, _ argv: [String]) -> ECIError {
        let cArgs = argv.map { strdup($0) } + [nil]
        execv(path, cArgs)
        return ECIError.system("exec \(path)", errno: errno)
    }

    /// Starts `path argv` as a child bound to this process (it is killed if eci-runc dies),
    /// inheriting stdio and every non-CLOEXEC fd (runc's --preserve-fds). Returns its PID.
    static func spawn(_ path: String, _ argv: [String], environment: [String: String]) throws -> pid_t {
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        let pid = eci_spawn_bound(path, cArgs, cEnv)
        guard pid > 0 else { throw ECIError.system("start \(path)", errno: -pid) }
        return pid
    }

    /// Waits for `pid` and returns its exit code (128+signal when killed, as shells do).
    static func wait(_ pid: pid_t) throws -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno == EINTR { continue }
            throw ECIError.system("waitpid \(pid)", errno: errno)
        }
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// Spawns and waits, forwarding terminating signals to the child meanwhile.
    static func run(_ path: String, _ argv: [String], environment: [String: String]) throws -> Int32 {
        let pid = try spawn(path, argv, environment: environment)
        _ = eci_forward_signals_to(pid)
        return try wait(pid)
    }

    /// The canonical path of this executable.
    static func currentExecutable() throws -> String {
        try FileSystem.realPath("/proc/self/exe")
    }
}

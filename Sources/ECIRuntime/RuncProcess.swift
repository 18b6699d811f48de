import CShim
import ECICore
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Starting and replacing processes without running Swift code between fork and exec:
/// `ChildProcess` for children, execv to hand the process over to runc.
///
/// runc always starts under ECI's syscall floor (`SyscallFloorPolicy`): installed on the
/// exec'ing thread, or by the child just before its exec, so that runc, its hooks and every
/// process of every container it starts inherit it. The floor is part of the isolation ECI
/// promises: if it cannot be installed, runc does not run.
enum RuncProcess {
    /// Replaces this process with `path argv` (argv[0] included), under the floor. Returns
    /// only on failure.
    static func exec(_ path: String, _ argv: [String]) -> ECIError {
        do {
            // This thread is the one that execs: the filter it gets is the new program's.
            try SyscallFloorPolicy.filter().installOnThisThread()
        } catch {
            return ECIError(.unsupported, "cannot start runc under ECI's syscall floor", cause: error)
        }
        let cArgs = argv.map { strdup($0) } + [nil]
        execv(path, cArgs)
        return ECIError.system("exec \(path)", errno: errno)
    }

    /// Starts `path argv` as a child bound to this process (it is SIGKILLed if eci-runc dies,
    /// so a killed eci-runc never leaves a runc finishing a create whose ID range was already
    /// reclaimed), inheriting stdio and every non-CLOEXEC fd (runc's --preserve-fds).
    /// `passing` places more fds at the numbers given (eci-init's for --preserve-fds). The
    /// child installs the floor just before its exec.
    static func spawn(_ path: String, _ argv: [String], environment: [String: String], passing: [(fd: Int32, as: Int32)] = []) throws -> ChildProcess {
        var attributes = SpawnAttributes(argv, environment: environment)
        attributes.executable = path
        attributes.parentDeathSignal = SIGKILL
        attributes.passedFDs = passing
        attributes.inheritOtherFDs = true
        attributes.seccompFilter = try SyscallFloorPolicy.filter()
        return try ChildProcess.spawn(attributes)
    }

    /// Spawns and waits, forwarding terminating signals to the child meanwhile. Returns its
    /// exit code (128+signal when killed, as shells do).
    static func run(_ path: String, _ argv: [String], environment: [String: String], passing: [(fd: Int32, as: Int32)] = []) throws -> Int32 {
        let child = try spawn(path, argv, environment: environment, passing: passing)
        _ = eci_forward_signals_to(child.pid)
        return try child.wait()
    }

    /// The canonical path of this executable.
    static func currentExecutable() throws -> String {
        try FileSystem.realPath("/proc/self/exe")
    }
}

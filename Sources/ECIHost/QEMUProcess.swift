import ECICore
import ECIIO
import Foundation
import Glibc
import Logging

/// The VM's QEMU, a child of the supervisor: started bound to it (QEMU dies with the
/// supervisor), reaped by a thread of its own, waited for and killed without ever signalling
/// a reused pid.
final class QEMUProcess: Sendable {
    let pid: pid_t
    /// QEMU's wait status once it exited and was reaped; nil while it runs (or is a zombie not
    /// yet reaped, which is still ours to signal).
    private let exitStatus = WaitableState<Int32?>(nil)

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `launch`'s QEMU with its output appended to the supervisor log, and a reaper
    /// thread that calls `onExit` once QEMU is gone.
    static func start(_ launch: QEMULaunch, logger: Logger, onExit: @escaping @Sendable (Int32) -> Void) throws -> QEMUProcess {
        guard FileSystem.exists(launch.qemu) else {
            throw ECIError(.notFound, "\(launch.qemu) is not installed (Debian: apt-get install qemu-system-x86)")
        }
        let log = open(launch.vm.supervisorLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { if log >= 0 { close(log) } }
        let child = try ChildProcess.spawn(Spawn.bound([launch.qemu] + launch.arguments, environment: ProcessInfo.processInfo.environment, output: log))
        let pid = child.pid
        let process = QEMUProcess(pid: pid)
        logger.info("QEMU started", metadata: ["pid": "\(pid)", "accelerator": "\(launch.accelerator.rawValue)"])
        do {
            try DetachedThread.start("eci-qemu-reaper") { process.reap(logger: logger, onExit: onExit) }
        } catch {
            child.killAndReap()
            throw error
        }
        return process
    }

    private func reap(logger: Logger, onExit: @Sendable (Int32) -> Void) {
        // Wait without reaping first (WNOWAIT): while the zombie stands, the pid is still ours,
        // so `kill()` (which checks `exitStatus` under the lock) can never hit a reused pid.
        var info = siginfo_t()
        _ = try? Syscall.retrying("waitid \(pid)") { waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) }
        let status = exitStatus.withLock { exit -> Int32 in
            var status: Int32 = 0
            _ = try? Syscall.retrying("waitpid \(pid)") { waitpid(pid, &status, 0) }
            exit = status
            return status
        }
        logger.info("QEMU exited", metadata: ["status": "\(status)"])
        onExit(status)
    }

    var isRunning: Bool { exitStatus.withLock { $0 == nil } }

    /// Waits up to `timeout` (nil: for ever) for QEMU to exit; returns whether it did.
    @discardableResult
    func waitForExit(timeout: Duration?) -> Bool {
        exitStatus.wait(timeout: timeout) { $0.map { _ in true } } ?? false
    }

    /// SIGKILL, unless QEMU was already reaped.
    func kill() {
        exitStatus.withLock { exit in
            if exit == nil { _ = Glibc.kill(pid, SIGKILL) }
        }
    }
}

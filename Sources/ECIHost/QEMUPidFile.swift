import ECICore
import Foundation
import Glibc

/// The VM's QEMU found through the pid file QEMU writes (`-pidfile`), so that `ecibuild stop`
/// reaches a VM whose supervisor is gone and `ecibuild run` never starts a second QEMU on the
/// same disk.
///
/// A pid file can outlive its QEMU (SIGKILL leaves it) and the pid can be reused, so a pid
/// counts only while the process's command line names this very pid file (`-pidfile PATH`):
/// that is this VM directory's QEMU and nothing else.
public enum QEMUPidFile {
    /// The pid of this directory's QEMU, if it runs.
    public static func runningQEMU(_ vm: VMDirectory) -> pid_t? {
        guard let text = try? FileSystem.readText(vm.qemuPidFile),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
            let arguments = commandLine(of: pid), names(vm, arguments: arguments)
        else { return nil }
        return pid
    }

    /// Whether a command line is the QEMU of `vm`: it has `-pidfile` followed by `vm`'s pid file.
    static func names(_ vm: VMDirectory, arguments: [String]) -> Bool {
        zip(arguments, arguments.dropFirst()).contains { $0 == "-pidfile" && $1 == vm.qemuPidFile }
    }

    /// `/proc/PID/cmdline` split at its NULs; nil when the process is gone (or a zombie).
    static func commandLine(of pid: pid_t) -> [String]? {
        guard let bytes = try? FileSystem.read("/proc/\(pid)/cmdline"), !bytes.isEmpty else { return nil }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Refuses when this directory's QEMU runs (its supervisor gone, or not ours).
    public static func refuseIfRunning(_ vm: VMDirectory) throws {
        guard let pid = runningQEMU(vm) else { return }
        throw ECIError(.invalidState, "QEMU \(pid) still runs the VM of \(vm.path) without its supervisor; `ecibuild stop` first")
    }

    /// Stops this directory's QEMU: SIGTERM (QEMU exits at once, like pulling the plug), then
    /// SIGKILL after `grace`. Re-checks the command line before each signal.
    /// - Returns: whether a QEMU was found (and is now gone).
    @discardableResult
    public static func kill(_ vm: VMDirectory, grace: Duration = .seconds(10)) -> Bool {
        guard let pid = runningQEMU(vm) else { return false }
        _ = Glibc.kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while runningQEMU(vm) == pid, ContinuousClock.now < deadline { usleep(50_000) }
        if runningQEMU(vm) == pid { _ = Glibc.kill(pid, SIGKILL) }
        let killed = ContinuousClock.now + .seconds(5)
        while runningQEMU(vm) == pid, ContinuousClock.now < killed { usleep(20_000) }
        return true
    }
}

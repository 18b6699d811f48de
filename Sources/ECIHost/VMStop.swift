import ECIContract
import ECICore
import Glibc
import Logging

/// `ecibuild stop`: asks the VM's supervisor to stop it cleanly; when no supervisor answers,
/// finds the VM's QEMU through its pid file and stops it (powerdown, then kill), so a VM is
/// always reachable.
public struct VMStop: Sendable {
    public var vm: VMDirectory
    /// How long the VM gets to power off before QEMU is killed.
    public var timeout: Duration

    public init(vm: VMDirectory, timeout: Duration) {
        self.vm = vm
        self.timeout = timeout
    }

    /// - Throws: `.notFound` when no VM runs from the directory; `.delegateFailed` when it had
    ///   to be killed.
    public func run() throws {
        let supervisor = VMDirectoryLock.holder(of: vm)
        do {
            try AdminClient.stop(vm)
        } catch {
            return try stopWithoutSupervisor(supervisor: supervisor, adminError: error)
        }
        guard waitUntil(timeout, { VMDirectoryLock.holder(of: vm) == nil }) else {
            QEMUPidFile.kill(vm)
            killSupervisor(supervisor)
            throw ECIError(.delegateFailed, "the VM did not stop within \(timeout): killed")
        }
    }

    /// The supervisor does not answer (gone, hung, or another version): QEMU's pid file.
    private func stopWithoutSupervisor(supervisor: pid_t?, adminError: any Error) throws {
        guard QEMUPidFile.runningQEMU(vm) != nil else {
            guard let supervisor, supervisor > 0 else { throw adminError }
            // A supervisor that holds the directory and does not answer, with no QEMU left.
            killSupervisor(supervisor)
            removeLeftovers()
            return
        }
        // Ask the guest to power off (ACPI), as the supervisor would have; then pull the plug.
        QMP.send(socket: vm.qmp, command: "system_powerdown")
        let clean = waitUntil(timeout) { QEMUPidFile.runningQEMU(vm) == nil }
        if !clean { QEMUPidFile.kill(vm) }
        // A supervisor still holding the directory notices QEMU's end and exits by itself.
        if !waitUntil(.seconds(15), { VMDirectoryLock.holder(of: vm) == nil }) { killSupervisor(supervisor) }
        removeLeftovers()
        guard clean else { throw ECIError(.delegateFailed, "the VM did not power off within \(timeout): killed QEMU") }
    }

    /// SIGKILL to the process holding the directory's lock, if it still holds it.
    private func killSupervisor(_ pid: pid_t?) {
        guard let pid, pid > 0, VMDirectoryLock.holder(of: vm) == pid else { return }
        kill(pid, SIGKILL)
        _ = waitUntil(.seconds(5)) { VMDirectoryLock.holder(of: vm) == nil }
    }

    /// What a supervisor that did not exit cleanly left, once nothing holds the directory.
    private func removeLeftovers() {
        guard let lock = try? VMDirectoryLock.acquire(vm) else { return }
        defer { lock.release() }
        for path in [vm.dockerSocket, vm.adminSocket, vm.stateFile] { unlink(path) }
    }

    private func waitUntil(_ timeout: Duration, _ done: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !done() {
            guard ContinuousClock.now < deadline else { return false }
            usleep(100_000)
        }
        return true
    }
}

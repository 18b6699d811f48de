import ECIContract
import ECICore
import Foundation
import Glibc

extension Accelerator {
    /// KVM if /dev/kvm opens read-write, answers KVM_GET_API_VERSION, and QEMU can actually run
    /// a KVM guest here; else TCG. See `KVMProbe` for why the last check is a real guest run.
    public static func detect(qemu: String = "/usr/bin/qemu-system-x86_64", device: String = "/dev/kvm", timeout: Duration = .seconds(30)) -> (Accelerator, reason: String) {
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return (.tcg, "\(device): \(errnoDescription(errno)); using TCG") }
        defer { close(fd) }
        let kvmGetAPIVersion: UInt = 0xAE00
        let version = ioctl(fd, kvmGetAPIVersion, 0)
        guard version == 12 else { return (.tcg, "\(device) answers API version \(version), not 12; using TCG") }
        switch KVMProbe(qemu: qemu, timeout: timeout).run() {
        case .ran: return (.kvm, "\(device) runs guests")
        case .failed(let why): return (.tcg, "QEMU can't run a KVM guest here (\(why)); using TCG")
        }
    }
}

/// Whether QEMU can run a KVM guest on this machine, decided by an event, never by a clock.
///
/// Some nested setups hand out a working /dev/kvm, yet QEMU aborts when it first loads a vCPU's
/// registers (here: "failed to set MSR 0x10a", an assertion). The old probe started a paused
/// QEMU and took "still alive after 1.5 s" for success; on a loaded machine QEMU had not reached
/// the abort by then, so one run chose KVM and the next TCG. This probe starts the same machine
/// (`-cpu host`, q35), lets its vCPU run, and decides only on an outcome: the vCPU executed
/// guest code (its instruction pointer left the reset vector: KVM works), or QEMU died or
/// refused (it does not). The timeout is only for a QEMU that hangs, and reads as "no".
struct KVMProbe {
    var qemu: String
    var timeout: Duration

    enum Outcome: Equatable {
        case ran
        case failed(String)
    }

    func run() -> Outcome {
        guard FileSystem.exists(qemu) else { return .failed("\(qemu) is not installed") }
        var template = Array("/tmp/eci-kvm-probe.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return .failed("mkdtemp: \(errnoDescription(errno))") }
        let directory = String(cString: made)
        defer { try? FileSystem.removeTree(directory) }
        let socket = directory + "/qmp.sock"
        var attributes = Spawn.bound([qemu] + Self.arguments(qmp: socket), environment: ProcessInfo.processInfo.environment, output: -1)
        attributes.stdout = .null
        attributes.stderr = .null
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(attributes)
        } catch let error as ECIError {
            return .failed("can't start \(qemu): \(errnoDescription(error.errno ?? EIO))")
        } catch {
            return .failed("can't start \(qemu): \(error)")
        }
        var reaped = false
        defer { if !reaped { child.killAndReap() } }
        let deadline = ContinuousClock.now + timeout
        func exited() -> String? {
            guard let code = try? child.exited() else { return nil }
            reaped = true
            return code > 128 ? "signal \(code - 128)" : "status \(code)"
        }
        // QEMU makes its QMP socket while it starts.
        var session: QMPSession?
        while session == nil {
            if let status = exited() { return .failed("it exited with \(status) while starting") }
            guard ContinuousClock.now < deadline else { return .failed("QEMU did not open its monitor within \(timeout)") }
            if FileSystem.exists(socket) { session = try? QMPSession(socket: socket) }
            if session == nil { usleep(50_000) }
        }
        guard var qmp = session else { return .failed("no monitor") }
        defer { qmp.close() }
        do {
            _ = try qmp.execute("cont")
            while ContinuousClock.now < deadline {
                let registers = try qmp.execute("human-monitor-command", arguments: #"{"command-line":"info registers"}"#)
                if Self.leftResetVector(registers.stringValue ?? "") { return .ran }
                usleep(50_000)
            }
            return .failed("its vCPU did not run within \(timeout)")
        } catch {
            // QEMU aborted (the monitor closed under us) or refused a command.
            usleep(100_000)
            if let status = exited() { return .failed("it exited with \(status) once the vCPU started") }
            return .failed("\(error)")
        }
    }

    static func arguments(qmp socket: String) -> [String] {
        ["-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "64", "-display", "none", "-nodefaults", "-no-user-config", "-S",
         "-monitor", "none", "-serial", "none", "-qmp", "unix:\(socket),server=on,wait=off"]
    }

    /// Whether `info registers` shows a vCPU that executed: its instruction pointer (RIP= or,
    /// in real mode, EIP=) is no longer the reset vector (0xfff0 within the reset code segment).
    static func leftResetVector(_ registers: String) -> Bool {
        for marker in ["RIP=", "EIP="] {
            guard let range = registers.range(of: marker) else { continue }
            let hex = registers[range.upperBound...].prefix { $0.isHexDigit }
            guard let value = UInt64(hex, radix: 16) else { return false }
            return value != 0xfff0
        }
        return false
    }
}

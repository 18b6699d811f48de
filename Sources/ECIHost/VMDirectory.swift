import ECIContract
import ECICore
import Foundation

/// The files of one running (or stopped) VM: sockets, logs, the disk overlay, the state record.
/// One VM per directory; `ecibuild status` and `stop` find it there.
public struct VMDirectory: Sendable, Equatable {
    public var path: String

    public init(path: String) {
        self.path = path
    }

    /// `ECI_VM_DIR`, else `$XDG_STATE_HOME/eci/vm`, else `~/.local/state/eci/vm`.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> VMDirectory {
        if let dir = environment["ECI_VM_DIR"], !dir.isEmpty { return VMDirectory(path: dir) }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return VMDirectory(path: state + "/eci/vm") }
        return VMDirectory(path: (environment["HOME"] ?? "/root") + "/.local/state/eci/vm")
    }

    /// The engine API for the host's docker CLI (`DOCKER_HOST=unix://...`).
    public var dockerSocket: String { path + "/docker.sock" }
    /// The supervisor's own socket: `status` and `stop` requests.
    public var adminSocket: String { path + "/admin.sock" }
    public var controlPort: String { path + "/port-control.sock" }
    public var tunnelPort: String { path + "/port-tunnel.sock" }
    public var qmp: String { path + "/qmp.sock" }
    public var consoleLog: String { path + "/console.log" }
    public var supervisorLog: String { path + "/supervisor.log" }
    public var disk: String { path + "/disk.qcow2" }
    /// The manifest digest of the image the disk overlay was made from.
    public var diskOrigin: String { path + "/disk.origin" }
    public var qemuPidFile: String { path + "/qemu.pid" }
    public var stateFile: String { path + "/state.json" }
    /// Held (flock) by the VM's supervisor for the VM's whole life: one VM per directory.
    public var lockFile: String { path + "/vm.lock" }
    /// The KVM-or-TCG verdict for this machine, with what it was decided for.
    public var acceleratorRecord: String { path + "/accelerator.json" }

    /// The unix-socket paths must fit in sun_path (108 bytes).
    public func validate() throws {
        for socket in [dockerSocket, adminSocket, controlPort, tunnelPort, qmp] where socket.utf8.count >= 108 {
            throw ECIError(.invalidArgument, "the VM directory \(path) is too long for unix sockets (\(socket) has \(socket.utf8.count) bytes; the limit is 107): set ECI_VM_DIR to a shorter path")
        }
    }
}

/// What the supervisor records about the VM it runs.
public struct VMState: Sendable, Codable, Equatable {
    public typealias Phase = VMPhase

    public var phase: Phase
    public var supervisorPid: Int32
    public var qemuPid: Int32?
    public var accelerator: Accelerator
    public var image: String
    public var dockerHost: String
    public var consoleLog: String
    public var startedAt: Double
    /// Why the VM failed (phase failed).
    public var error: String?

    public static func read(_ path: String) throws -> VMState {
        do {
            return try JSONDecoder().decode(VMState.self, from: Data(try FileSystem.read(path)))
        } catch let error as ECIError {
            throw error
        } catch {
            throw ECIError(.invalidState, "\(path) is not a VM state record", cause: error)
        }
    }

    public func write(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.writeAtomically(path, Array(try encoder.encode(self)) + [0x0A], mode: 0o644)
    }
}

import ECIChannel
import ECIContract
import ECICore
import ECIIO
import Foundation
import Logging

/// The host ends of the VM's two virtio-serial ports, connected once QEMU made their sockets:
/// the engine API tunnel and the control port (as an `AgentClient`). Immutable once made; each
/// endpoint runs on a thread of its own until `stop()` or the VM's end.
final class GuestPorts: Sendable {
    let tunnel: TunnelEndpoint
    let control: ControlClient
    var agent: AgentClient { AgentClient(control: control) }

    private init(tunnel: TunnelEndpoint, control: ControlClient) {
        self.tunnel = tunnel
        self.control = control
    }

    /// Connects to QEMU's port sockets (QEMU creates them as it starts: waits up to 30 s, and
    /// gives up at once if `qemuRunning` turns false).
    static func connect(vm: VMDirectory, logger: Logger, qemuRunning: () -> Bool) throws -> GuestPorts {
        let deadline = ContinuousClock.now + .seconds(30)
        func connect(_ path: String) throws -> UnixSocket {
            while true {
                if let socket = try? UnixSocket.connect(to: path) { return socket }
                guard qemuRunning() else { throw ECIError(.delegateFailed, "QEMU exited while starting; see \(vm.supervisorLog)") }
                guard ContinuousClock.now < deadline else { throw ECIError(.delegateFailed, "QEMU did not open \(path) within 30 s; see \(vm.supervisorLog)") }
                usleep(100_000)
            }
        }
        let controlSocket = try connect(vm.controlPort)
        let tunnelSocket = try connect(vm.tunnelPort)
        let ports = GuestPorts(tunnel: TunnelEndpoint(role: .host, name: "ecibuild", logger: logger), control: ControlClient(name: "ecibuild", logger: logger))
        let tunnelFD = tunnelSocket.release()
        let controlFD = controlSocket.release()
        let tunnel = ports.tunnel
        let control = ports.control
        try DetachedThread.start {
            do { try tunnel.run(port: tunnelFD) } catch { logger.warning("tunnel ended", metadata: ["error": "\(error)"]) }
        }
        try DetachedThread.start {
            do { try control.run(port: controlFD) } catch { logger.warning("control port ended", metadata: ["error": "\(error)"]) }
        }
        return ports
    }

    func stop() {
        tunnel.stop()
        control.stop()
    }
}

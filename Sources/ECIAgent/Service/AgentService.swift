import ECIChannel
import ECICore
import ECIIO
import ECIPolicy
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// `eci-agent serve`: for the VM's life, the engine API filter (a socket for users, reached
/// through the host tunnel, and one for containers admitted to mount it), the control port and
/// the tunnel's guest end. When the boot step failed, only the control port is served, so the
/// host can learn why the engine is stopped.
public final class AgentService: Sendable {
    public let paths: AgentPaths
    private let logger: Logger

    public init(paths: AgentPaths, logger: Logger) {
        self.paths = paths
        self.logger = logger
    }

    /// Starts everything and blocks forever (systemd stops the agent with SIGTERM).
    public func run() throws -> Never {
        signal(SIGPIPE, SIG_IGN)
        let report = try? PrepareReport.read(paths.prepareReport)
        // Kept for the agent's life: the filters serve on their own threads.
        var filters: [APIProxy] = []
        if report?.ok == true {
            filters = try startFilters()
        } else {
            logger.error("the engine stays stopped: no filtered API", metadata: ["problems": "\(report?.problems ?? ["no prepare report"])"])
        }
        let control = AgentControl(paths: paths, logger: logger) {
            var poweroff = SpawnAttributes(["/usr/bin/systemctl", "poweroff"], environment: ProcessInfo.processInfo.environment)
            poweroff.defaultSignalActions = true
            // Waited for on this (the shutdown's own) thread, so it leaves no zombie.
            _ = try? ChildProcess.spawn(poweroff).wait()
        }
        let controlServer = ControlServer(name: "eci-agent", logger: logger) { control.handle($0) }
        let userSocket = paths.sockets.filtered[0]
        let tunnel = TunnelEndpoint(role: .guest, name: "eci-agent", logger: logger) { _ in
            (try? UnixSocket.connect(to: userSocket))?.release()
        }
        let controlPort = paths.controlPort
        let tunnelPort = paths.tunnelPort
        try DetachedThread.start { controlServer.serve { try Self.openPort(controlPort) } }
        try DetachedThread.start { tunnel.serve { try Self.openPort(tunnelPort) } }
        logger.info("agent serving", metadata: ["control": "\(controlPort)", "tunnel": "\(tunnelPort)", "filter": "\(report?.ok == true)"])
        while true { withExtendedLifetime(filters) { _ = sleep(3600) } }
    }

    /// The two filtered sockets in front of the engine's raw one.
    func startFilters() throws -> [APIProxy] {
        let settings = try AgentSettingsLoader.loadEffective(paths: paths)
        // The runtime's loader: the filter judges by the policy eci-runc enforces.
        let restricted = try RuntimeConfiguration.load(path: nil, environment: [:]).loadPolicy()
        // The run key prepare wrote for these settings: without it no admitted container could
        // start (eci-runc requires a stamp for the container socket), so it is required here.
        let admissionKey = try SocketAdmissionKeys.runKey(paths: paths)
        return try AgentFilters.start(
            sockets: paths.sockets, settings: settings, restricted: restricted, group: Self.dockerGroup, admissionKey: admissionKey, logger: logger)
    }

    static var dockerGroup: gid_t? {
        getgrnam("docker").map { $0.pointee.gr_gid }
    }

    /// The virtio-serial device; a missing one (not yet created by udev) is retried by `serve`.
    static func openPort(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw ECIError.system("open \(path)", errno: errno) }
        return fd
    }
}

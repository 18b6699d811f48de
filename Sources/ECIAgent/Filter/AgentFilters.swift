import ECICore
import ECIPolicy
import Glibc
import Logging

/// The engine API filter's wiring, in one place for the agent and its tests: two filtered
/// sockets in front of the engine's raw one, one for users (0660, the docker group) and one for
/// containers admitted to mount it (the command list applies there), both deciding with
/// `EngineAPIPolicy` and facts looked up over the raw socket.
///
/// The container socket is root's alone (0600, in a 0700 directory): an admitted container
/// reaches it through eci-runc's idmapped bind, where the file shows as owned by container
/// root; anything else (another container handed the path or a leaked descriptor's path, a
/// VM user) gets EACCES.
public enum AgentFilters {
    /// Serves the first of `sockets.filtered` for users and `sockets.forContainers` for
    /// containers; on failure, stops what was started.
    public static func start(
        sockets: EngineAPIPolicy.Sockets, settings: AdminSettings, restricted: RestrictedMountPolicy, runtime: String = "eci",
        group: gid_t? = nil, admissionKey: [UInt8]? = nil, logger: Logger
    ) throws -> [APIProxy] {
        let engine = EngineClient(socketPath: sockets.raw)
        let lookups = VMLookups.make(engine: engine, policy: SocketMountPolicy(settings: settings))
        let directory = parentDirectory(sockets.forContainers)
        try FileSystem.makeDirectories(directory, mode: 0o700)
        guard chown(directory, 0, 0) == 0, chmod(directory, 0o700) == 0 else { throw ECIError.system("restrict \(directory) to root", errno: errno) }
        guard let userSocket = sockets.filtered.first else { throw ECIError(.invalidArgument, "no filtered socket for users") }
        let filters: [(EngineAPIPolicy.Origin, String, mode_t, gid_t?)] = [(.user, userSocket, 0o660, group), (.container, sockets.forContainers, 0o600, nil)]
        var proxies: [APIProxy] = []
        do {
            for (origin, socket, mode, group) in filters {
                let policy = EngineAPIPolicy(origin: origin, settings: settings, restricted: restricted, sockets: sockets, runtime: runtime, admissionKey: admissionKey)
                let proxy = APIProxy(
                    // Create and volume bodies are small; a cap keeps parsed JSON trees from
                    // exhausting the agent's memory under many concurrent requests.
                    configuration: .init(listenPath: socket, mode: mode, group: group, upstreamPath: sockets.raw, maximumVettedBodySize: 2 << 20, maximumConnections: 256),
                    vetter: FilterVetter(policy: policy, lookups: lookups),
                    logger: logger)
                try proxy.start()
                proxies.append(proxy)
                logger.info("engine API filter listening", metadata: ["socket": "\(socket)", "origin": "\(origin.rawValue)"])
            }
        } catch {
            proxies.forEach { $0.stop() }
            throw error
        }
        return proxies
    }
}

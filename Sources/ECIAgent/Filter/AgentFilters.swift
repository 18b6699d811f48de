import ECICore
import ECIPolicy
import Glibc
import Logging

/// The engine API filter's wiring, in one place for the agent and its tests: two filtered
/// sockets in front of the engine's raw one, one for users (0660, the docker group) and one for
/// containers admitted to mount it (0666; the command list applies there), both deciding with
/// `EngineAPIPolicy` and facts looked up over the raw socket.
public enum AgentFilters {
    /// Serves the first of `sockets.filtered` for users and `sockets.forContainers` for
    /// containers; on failure, stops what was started.
    public static func start(
        sockets: EngineAPIPolicy.Sockets, settings: AdminSettings, restricted: RestrictedMountPolicy, runtime: String = "eci",
        group: gid_t? = nil, logger: Logger
    ) throws -> [APIProxy] {
        let engine = EngineClient(socketPath: sockets.raw)
        let lookups = VMLookups.make(engine: engine, policy: SocketMountPolicy(settings: settings))
        try FileSystem.makeDirectories(parentDirectory(sockets.forContainers), mode: 0o755)
        guard let userSocket = sockets.filtered.first else { throw ECIError(.invalidArgument, "no filtered socket for users") }
        let filters: [(EngineAPIPolicy.Origin, String, mode_t)] = [(.user, userSocket, 0o660), (.container, sockets.forContainers, 0o666)]
        var proxies: [APIProxy] = []
        do {
            for (origin, socket, mode) in filters {
                let policy = EngineAPIPolicy(origin: origin, settings: settings, restricted: restricted, sockets: sockets, runtime: runtime)
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

/// Every route the engine serves, as the API filter knows it: method, path shape, and the CLI
/// command names the command list matches (`CommandList`). One table for both, so a route the
/// filter can name is a route it knows, and nothing else passes.
///
/// Taken from moby's routers (`api/server/router/*/*.go`, `initRoutes`) at v26.1.5 (the VM's
/// docker.io, API 1.45) and v20.10.24 (API 1.41, the host tests' engine); the two differ only by
/// `POST /containers/{name}/copy` (20.10 only, refused) and `PUT /volumes/{name}` (26 only).
/// The engine matches routes in registration order (the checkpoint router before the container
/// router, `/containers/json` before `/containers/{name}/json`); so does `match`.
///
/// Shapes use the routers' variables: `{name*}` is moby's `{name:.*}` or `{id:.+}` (one or more
/// path segments: legacy link names such as `web/db` hold a slash), `{id}` is exactly one
/// segment. Left out on purpose: `OPTIONS /{anyroute}` (CORS preflight, no client sends it) and
/// the daemon's `/debug/*` (profiling, served without a version prefix): both are refused.
public struct EngineRoute: Sendable, Equatable {
    public let method: String
    public let shape: String
    /// The CLI names (`ps`, `container ls`) the command list matches.
    public let names: [String]

    enum Segment: Sendable, Equatable {
        case literal(String)
        /// Exactly one segment (`{id}`).
        case one
        /// One or more segments (`{name:.*}`, `{id:.+}`).
        case many
    }

    let segments: [Segment]

    init(_ method: String, _ shape: String, _ names: [String]) {
        self.method = method
        self.shape = shape
        self.names = names
        segments = shape.split(separator: "/").map { part in
            if part.hasPrefix("{"), part.hasSuffix("*}") { return .many }
            if part.hasPrefix("{") { return .one }
            return .literal(String(part))
        }
    }

    /// Whether `parts` (a path's segments, version prefix removed) fit this shape.
    func fits(_ parts: ArraySlice<String>, _ segments: ArraySlice<Segment>) -> Bool {
        guard let first = segments.first else { return parts.isEmpty }
        switch first {
        case let .literal(text):
            return parts.first == text && fits(parts.dropFirst(), segments.dropFirst())
        case .one:
            return !parts.isEmpty && fits(parts.dropFirst(), segments.dropFirst())
        case .many:
            // Shortest to longest, as few segments as the rest of the shape leaves.
            guard !parts.isEmpty else { return false }
            for taken in 1...parts.count where fits(parts.dropFirst(taken), segments.dropFirst()) { return true }
            return false
        }
    }
}

public enum KnownRoutes {
    /// The route a request names, as the engine would dispatch it; nil when the engine serves no
    /// such route (or one the filter refuses to know, see `EngineRoute`).
    public static func match(method: String, path: String) -> EngineRoute? {
        let route = Route(method: method, path: path)
        return all.first { $0.method == route.method && $0.fits(ArraySlice(route.parts), ArraySlice($0.segments)) }
    }

    /// The legacy copy route (served by engines up to 25, for requests at API < 1.24; 20.10's
    /// minimum API is 1.12): the engine copies out of the container's mounts itself, as root, and
    /// the filter re-checks mounts only for `archive`, which replaced it. Refused for everyone.
    public static let legacyCopy = EngineRoute("POST", "/containers/{name*}/copy", ["cp", "container cp"])

    static func container(_ method: String, _ action: String, _ short: String) -> EngineRoute {
        EngineRoute(method, "/containers/{name*}/\(action)", [short, "container \(short)"])
    }

    static let build = ["build", "builder build", "buildx build"]
    static let exec = ["exec", "container exec"]
    static let cp = ["cp", "container cp"]

    /// In the engine's registration order.
    public static let all: [EngineRoute] = [
        // system
        EngineRoute("GET", "/_ping", ["_ping"]),
        EngineRoute("HEAD", "/_ping", ["_ping"]),
        EngineRoute("GET", "/events", ["events", "system events"]),
        EngineRoute("GET", "/info", ["info", "system info"]),
        EngineRoute("GET", "/version", ["version"]),
        EngineRoute("GET", "/system/df", ["system df"]),
        EngineRoute("POST", "/auth", ["login"]),
        // build, BuildKit's session and control API (h2c upgrades)
        EngineRoute("POST", "/build", build),
        EngineRoute("POST", "/build/prune", ["builder prune", "build prune"]),
        EngineRoute("POST", "/build/cancel", build),
        EngineRoute("POST", "/session", build),
        EngineRoute("POST", "/grpc", build),
        // checkpoints (experimental; registered before the container router)
        EngineRoute("GET", "/containers/{name*}/checkpoints", ["checkpoint ls", "container checkpoint ls"]),
        EngineRoute("POST", "/containers/{name*}/checkpoints", ["checkpoint create", "container checkpoint create"]),
        EngineRoute("DELETE", "/containers/{name}/checkpoints/{checkpoint}", ["checkpoint rm", "container checkpoint rm"]),
        // containers
        EngineRoute("HEAD", "/containers/{name*}/archive", cp),
        EngineRoute("GET", "/containers/json", ["ps", "container ls"]),
        container("GET", "export", "export"),
        container("GET", "changes", "diff"),
        container("GET", "json", "inspect"),
        container("GET", "top", "top"),
        container("GET", "logs", "logs"),
        container("GET", "stats", "stats"),
        EngineRoute("GET", "/containers/{name*}/attach/ws", ["attach", "container attach"]),
        EngineRoute("GET", "/exec/{id*}/json", exec),
        EngineRoute("GET", "/containers/{name*}/archive", cp),
        EngineRoute("POST", "/containers/create", ["create", "run", "container create", "container run"]),
        container("POST", "kill", "kill"),
        container("POST", "pause", "pause"),
        container("POST", "unpause", "unpause"),
        container("POST", "restart", "restart"),
        container("POST", "start", "start"),
        container("POST", "stop", "stop"),
        container("POST", "wait", "wait"),
        container("POST", "resize", "attach"),
        container("POST", "attach", "attach"),
        EngineRoute("POST", "/containers/{name*}/exec", exec),
        EngineRoute("POST", "/exec/{name*}/start", exec),
        EngineRoute("POST", "/exec/{name*}/resize", exec),
        container("POST", "rename", "rename"),
        container("POST", "update", "update"),
        EngineRoute("POST", "/containers/prune", ["container prune"]),
        EngineRoute("POST", "/commit", ["commit", "container commit"]),
        legacyCopy,
        EngineRoute("PUT", "/containers/{name*}/archive", cp),
        EngineRoute("DELETE", "/containers/{name*}", ["rm", "container rm"]),
        // images
        EngineRoute("GET", "/images/json", ["images", "image ls"]),
        EngineRoute("GET", "/images/search", ["search"]),
        EngineRoute("GET", "/images/get", ["save", "image save"]),
        EngineRoute("GET", "/images/{name*}/get", ["save", "image save"]),
        EngineRoute("GET", "/images/{name*}/history", ["history", "image history"]),
        EngineRoute("GET", "/images/{name*}/json", ["inspect", "image inspect"]),
        EngineRoute("POST", "/images/load", ["load", "image load"]),
        EngineRoute("POST", "/images/create", ["pull", "image pull", "import", "image import"]),
        EngineRoute("POST", "/images/{name*}/push", ["push", "image push"]),
        EngineRoute("POST", "/images/{name*}/tag", ["tag", "image tag"]),
        EngineRoute("POST", "/images/prune", ["image prune"]),
        EngineRoute("DELETE", "/images/{name*}", ["rmi", "image rm"]),
        EngineRoute("GET", "/distribution/{name*}/json", ["distribution inspect"]),
        // networks
        EngineRoute("GET", "/networks", ["network ls"]),
        EngineRoute("GET", "/networks/{id*}", ["network inspect"]),
        EngineRoute("POST", "/networks/create", ["network create"]),
        EngineRoute("POST", "/networks/{id*}/connect", ["network connect"]),
        EngineRoute("POST", "/networks/{id*}/disconnect", ["network disconnect"]),
        EngineRoute("POST", "/networks/prune", ["network prune"]),
        EngineRoute("DELETE", "/networks/{id*}", ["network rm"]),
        // volumes
        EngineRoute("GET", "/volumes", ["volume ls"]),
        EngineRoute("GET", "/volumes/{name*}", ["volume inspect"]),
        EngineRoute("POST", "/volumes/create", ["volume create"]),
        EngineRoute("POST", "/volumes/prune", ["volume prune"]),
        EngineRoute("PUT", "/volumes/{name*}", ["volume update"]),
        EngineRoute("DELETE", "/volumes/{name*}", ["volume rm"]),
        // plugins (changes refused: plugins run outside the isolated runtime)
        EngineRoute("GET", "/plugins", ["plugin ls"]),
        EngineRoute("GET", "/plugins/{name*}/json", ["plugin inspect"]),
        EngineRoute("GET", "/plugins/privileges", ["plugin install"]),
        EngineRoute("DELETE", "/plugins/{name*}", ["plugin rm"]),
        EngineRoute("POST", "/plugins/{name*}/enable", ["plugin enable"]),
        EngineRoute("POST", "/plugins/{name*}/disable", ["plugin disable"]),
        EngineRoute("POST", "/plugins/pull", ["plugin install"]),
        EngineRoute("POST", "/plugins/{name*}/push", ["plugin push"]),
        EngineRoute("POST", "/plugins/{name*}/upgrade", ["plugin upgrade"]),
        EngineRoute("POST", "/plugins/{name*}/set", ["plugin set"]),
        EngineRoute("POST", "/plugins/create", ["plugin create"]),
        // swarm (changes refused: tasks would bypass the filter)
        EngineRoute("POST", "/swarm/init", ["swarm init"]),
        EngineRoute("POST", "/swarm/join", ["swarm join"]),
        EngineRoute("POST", "/swarm/leave", ["swarm leave"]),
        EngineRoute("GET", "/swarm", ["swarm inspect"]),
        EngineRoute("GET", "/swarm/unlockkey", ["swarm unlock-key"]),
        EngineRoute("POST", "/swarm/update", ["swarm update"]),
        EngineRoute("POST", "/swarm/unlock", ["swarm unlock"]),
        EngineRoute("GET", "/services", ["service ls"]),
        EngineRoute("GET", "/services/{id}", ["service inspect"]),
        EngineRoute("POST", "/services/create", ["service create"]),
        EngineRoute("POST", "/services/{id}/update", ["service update"]),
        EngineRoute("DELETE", "/services/{id}", ["service rm"]),
        EngineRoute("GET", "/services/{id}/logs", ["service logs"]),
        EngineRoute("GET", "/nodes", ["node ls"]),
        EngineRoute("GET", "/nodes/{id}", ["node inspect"]),
        EngineRoute("DELETE", "/nodes/{id}", ["node rm"]),
        EngineRoute("POST", "/nodes/{id}/update", ["node update"]),
        EngineRoute("GET", "/tasks", ["service ps", "node ps"]),
        EngineRoute("GET", "/tasks/{id}", ["service ps", "node ps"]),
        EngineRoute("GET", "/tasks/{id}/logs", ["service logs"]),
        EngineRoute("GET", "/secrets", ["secret ls"]),
        EngineRoute("POST", "/secrets/create", ["secret create"]),
        EngineRoute("DELETE", "/secrets/{id}", ["secret rm"]),
        EngineRoute("GET", "/secrets/{id}", ["secret inspect"]),
        EngineRoute("POST", "/secrets/{id}/update", ["secret update"]),
        EngineRoute("GET", "/configs", ["config ls"]),
        EngineRoute("POST", "/configs/create", ["config create"]),
        EngineRoute("DELETE", "/configs/{id}", ["config rm"]),
        EngineRoute("GET", "/configs/{id}", ["config inspect"]),
        EngineRoute("POST", "/configs/{id}/update", ["config update"]),
    ]
}

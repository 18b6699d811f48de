import ECICore

/// ECI's command list for containers that mount the engine socket: engine API requests are
/// named like the docker CLI commands that make them (`ps`, `push`, `image push`...), and an
/// allow or deny list of names (with trailing `*` wildcards such as `image*`) decides.
public struct CommandList: Sendable, Equatable {
    public enum ListType: String, Sendable {
        case allow
        case deny
    }

    public var type: ListType
    public var patterns: [String]

    public init(type: ListType, patterns: [String]) {
        self.type = type
        self.patterns = patterns
    }

    /// Nil when the request may pass, else the refusal in ECI's wording. `/_ping` and
    /// `/version` always pass: every client negotiates with them first.
    public func refusal(method: String, path: String) -> String? {
        let names = Self.commandNames(method: method, path: path)
        if names.contains("_ping") || names.contains("version") { return nil }
        let matched = names.contains { name in patterns.contains { Self.matches(name, $0) } }
        let allowed = type == .deny ? !matched : matched
        return allowed ? nil : "enhanced container isolation: docker command \"\(path)\" is blocked; if you wish to allow it, configure the docker socket command list in the admin settings"
    }

    static func matches(_ name: String, _ pattern: String) -> Bool {
        pattern.hasSuffix("*") ? name.hasPrefix(String(pattern.dropLast())) : name == pattern
    }

    /// The CLI names of an API request (`/v1.43/images/x/push?tag=1` → ["push", "image push"]).
    /// An unknown route is named by its method and path, so an allow list blocks it.
    public static func commandNames(method: String, path: String) -> [String] {
        let route = Route.unversioned(path)
        let p = route.split(separator: "/").map(String.init)
        let m = method.uppercased()
        func named(_ short: String, _ group: String, _ long: String) -> [String] { [short, "\(group) \(long)"] }
        switch (m, p.first ?? "", p.count) {
        case ("HEAD", "_ping", _), ("GET", "_ping", _): return ["_ping"]
        case ("GET", "version", _): return ["version"]
        case ("GET", "info", _): return ["info", "system info"]
        case ("GET", "events", _): return ["events", "system events"]
        case ("GET", "system", _): return ["system df"]
        case ("POST", "commit", _): return named("commit", "container", "commit")
        case ("POST", "build", 1), ("POST", "grpc", _), ("POST", "session", _): return ["build", "builder build", "buildx build"]
        case ("POST", "build", _): return ["builder prune", "build prune"]
        case (_, "containers", _): return containerNames(m, p)
        case (_, "exec", _): return named("exec", "container", "exec")
        case (_, "images", _): return imageNames(m, p)
        case (_, "volumes", _): return groupNames("volume", m, p)
        case (_, "networks", _): return groupNames("network", m, p)
        default: return ["\(m) \(route)"]
        }
    }

    static func containerNames(_ m: String, _ p: [String]) -> [String] {
        if p.count == 2 {
            switch (m, p[1]) {
            case ("GET", "json"): return ["ps", "container ls"]
            case ("POST", "create"): return ["create", "run", "container create", "container run"]
            case ("POST", "prune"): return ["container prune"]
            case ("DELETE", _): return ["rm", "container rm"]
            default: break
            }
        }
        // The action is the last segment: a legacy link name (`web/db`) holds a slash.
        let action = p.count > 2 ? (p.last ?? "") : ""
        let table: [String: String] = [
            "json": "inspect", "start": "start", "stop": "stop", "restart": "restart", "kill": "kill", "exec": "exec", "attach": "attach",
            "logs": "logs", "top": "top", "stats": "stats", "wait": "wait", "pause": "pause", "unpause": "unpause", "rename": "rename",
            "update": "update", "archive": "cp", "export": "export", "changes": "diff", "resize": "attach",
        ]
        let short = table[action] ?? action
        return [short, "container \(short)"]
    }

    static func imageNames(_ m: String, _ p: [String]) -> [String] {
        if p.count == 2 {
            switch (m, p[1]) {
            case ("GET", "json"): return ["images", "image ls"]
            case ("POST", "create"): return ["pull", "image pull", "import", "image import"]
            case ("GET", "search"): return ["search"]
            case ("GET", "get"): return ["save", "image save"]
            case ("POST", "load"): return ["load", "image load"]
            case ("POST", "prune"): return ["image prune"]
            default: break
            }
        }
        if m == "DELETE" { return ["rmi", "image rm"] }
        let action = p.last ?? ""
        let table: [String: String] = ["push": "push", "tag": "tag", "json": "inspect", "history": "history", "get": "save"]
        let short = table[action] ?? action
        return [short, "image \(short)"]
    }

    static func groupNames(_ group: String, _ m: String, _ p: [String]) -> [String] {
        switch (m, p.count) {
        case ("GET", 1): return ["\(group) ls"]
        case ("POST", 2) where p[1] == "create": return ["\(group) create"]
        case ("POST", 2) where p[1] == "prune": return ["\(group) prune"]
        case ("DELETE", _): return ["\(group) rm"]
        case ("GET", _): return ["\(group) inspect"]
        case ("POST", 3): return ["\(group) \(p[2])"]
        default: return ["\(group) \(m.lowercased())"]
        }
    }
}

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

    /// The CLI names of an API request (`/v1.43/images/x/push?tag=1` → ["push", "image push"]),
    /// from the table of known routes (`KnownRoutes`). An unknown route is named by its method
    /// and path, so an allow list blocks it (the filter refuses it anyway).
    public static func commandNames(method: String, path: String) -> [String] {
        if let route = KnownRoutes.match(method: method, path: path) { return route.names }
        return ["\(method.uppercased()) \(Route.unversioned(path))"]
    }
}

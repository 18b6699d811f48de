import ECICore

/// Where a process's cgroups are, as /proc/PID/cgroup names them: the cgroup v2 path ("0::/path")
/// and the cgroup v1 hierarchies ("4:memory:/path", "2:cpu,cpuacct:/path"). A hybrid host (v1
/// controllers plus an empty v2 hierarchy) has both; a pure v2 host only the first.
///
/// The paths are relative to the cgroup namespace of the process that read the file, so the
/// reader (ecid) must read it from the host's cgroup namespace: a target outside the reader's
/// namespace shows "/../.." paths, which `parse(_:)` refuses rather than resolving them.
public struct CgroupLocation: Sendable, Equatable {
    /// One cgroup v1 hierarchy: its controllers as the kernel lists them, and the cgroup's path in it.
    public struct Hierarchy: Sendable, Equatable {
        /// The controllers bound to this hierarchy, in the kernel's order ("cpu", "cpuacct").
        public let controllers: [String]
        /// The cgroup's absolute path inside the hierarchy ("/docker/abc").
        public let path: String

        /// The controllers joined with ",": the directory name under which systemd and the
        /// usual mount conventions mount the hierarchy ("/sys/fs/cgroup/cpu,cpuacct").
        public var directoryName: String { controllers.joined(separator: ",") }

        /// - Throws: `ECIError` `.invalidArgument` if `path` is not a safe absolute path.
        public init(controllers: [String], path: String) throws {
            try CgroupLocation.check(path)
            self.controllers = controllers
            self.path = path
        }
    }

    /// The cgroup v2 path ("0::/path"), or nil when the process has none (a v1-only host).
    public let unifiedPath: String?
    /// The cgroup v1 hierarchies with controllers; named hierarchies ("name=systemd") are left out.
    public let hierarchies: [Hierarchy]

    /// - Throws: `ECIError` `.invalidArgument` if `unifiedPath` is not a safe absolute path or
    ///   a controller appears in two hierarchies.
    public init(unifiedPath: String?, hierarchies: [Hierarchy] = []) throws {
        if let unifiedPath { try Self.check(unifiedPath) }
        var seen: Set<String> = []
        for controller in hierarchies.flatMap(\.controllers) {
            guard seen.insert(controller).inserted else {
                throw ECIError(.invalidArgument, "cgroup controller \(controller) appears twice")
            }
        }
        self.unifiedPath = unifiedPath
        self.hierarchies = hierarchies
    }

    /// Whether this is a pure cgroup v2 location (no v1 controller hierarchy): then the v2
    /// hierarchy is mounted at the cgroup root itself rather than at "<root>/unified".
    public var isPureV2: Bool { hierarchies.isEmpty }

    /// The v1 hierarchy the controller `name` ("memory", "cpuset", "cpuacct") is bound to.
    public func hierarchy(for name: String) -> Hierarchy? {
        hierarchies.first { $0.controllers.contains(name) }
    }

    /// Parses the text of /proc/PID/cgroup.
    ///
    /// Strict on purpose: the paths are cgroup names, which a container with a delegated cgroup
    /// chooses, and kernels before 5.19 print them unescaped (a name with a newline forges a line).
    /// So any malformed line, a second "0::" line or a controller listed twice fails the whole parse.
    /// - Throws: `ECIError` `.invalidArgument` for malformed text or an unsafe path ("..", NUL,
    ///   not absolute).
    public static func parse(_ text: String) throws -> CgroupLocation {
        var unified: String?
        var hierarchies: [Hierarchy] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            // The path may itself contain ':', so only the first two separate fields.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, ProcText.unsigned(parts[0]) != nil else {
                throw ECIError(.invalidArgument, "malformed cgroup line '\(line.prefix(64))'")
            }
            let path = String(parts[2])
            try check(path)
            if parts[1].isEmpty {
                guard parts[0] == "0", unified == nil else {
                    throw ECIError(.invalidArgument, "unexpected cgroup v2 line '\(line.prefix(64))'")
                }
                unified = path
                continue
            }
            let controllers = parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !controllers.contains(where: \.isEmpty) else {
                throw ECIError(.invalidArgument, "malformed cgroup controllers '\(parts[1].prefix(64))'")
            }
            // Named hierarchies (name=systemd) carry no resource numbers.
            if controllers.contains(where: { $0.hasPrefix("name=") }) { continue }
            hierarchies.append(try Hierarchy(controllers: controllers, path: path))
        }
        return try CgroupLocation(unifiedPath: unified, hierarchies: hierarchies)
    }

    /// Refuses a path that could name something outside the cgroup tree once joined to a root.
    static func check(_ path: String) throws {
        guard path.hasPrefix("/"), !path.utf8.contains(0),
            !path.split(separator: "/").contains("..")
        else { throw ECIError(.invalidArgument, "unsafe cgroup path '\(path.prefix(64))'") }
    }
}

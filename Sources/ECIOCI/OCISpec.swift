import ECICore

/// An OCI runtime spec (`config.json`) held as a JSON tree, with typed accessors for the
/// fields ECI reads and rewrites. Everything else is carried through untouched.
public struct OCISpec: Sendable, Equatable {
    /// The system calls a rule of `linux.seccomp.syscalls` names: its `names` and its `name`
    /// (the older spelling runc still reads).
    public static func syscallNames(of rule: JSONValue) -> [String] {
        var out = (rule["names"]?.arrayValue ?? []).compactMap(\.stringValue)
        if let single = rule["name"]?.stringValue { out.append(single) }
        return out
    }

    /// The whole document.
    public private(set) var document: JSONValue

    /// Wraps a parsed document; it must be a JSON object with an `ociVersion` string.
    public init(document: JSONValue) throws {
        guard document.isObject else { throw ECIError(.invalidArgument, "config.json is not a JSON object") }
        guard document["ociVersion"]?.stringValue != nil else {
            throw ECIError(.invalidArgument, "config.json has no ociVersion string")
        }
        if let root = document["root"], !root.isObject {
            throw ECIError(.invalidArgument, "config.json: root is not an object")
        }
        if let linux = document["linux"], !linux.isObject {
            throw ECIError(.invalidArgument, "config.json: linux is not an object")
        }
        if let mounts = document["mounts"], mounts.arrayValue == nil {
            throw ECIError(.invalidArgument, "config.json: mounts is not an array")
        }
        self.document = document
        try checkKeysAsRuncReadsThem()
        _ = try namespaces()
        _ = try mounts()
    }

    /// Refuses a spec with keys that runc would read otherwise than ECI (`GoFieldNames`):
    /// checked as it arrives and again on what eci-runc hands runc, after its own exact keys
    /// are in.
    public func checkKeysAsRuncReadsThem() throws {
        try GoFieldNames.checkUnambiguous(document, what: "config.json")
    }

    /// Parses `config.json` bytes.
    public init(bytes: [UInt8]) throws {
        do {
            try self.init(document: try JSONValue.parse(bytes))
        } catch let error as ECIError {
            throw error.message.hasPrefix("config.json") ? error : ECIError(error.code, "config.json: \(error.message)")
        }
    }

    /// `root.path` as written (may be relative to the bundle).
    public var rootPath: String? { document["root"]?["path"]?.stringValue }

    /// `linux.cgroupsPath`.
    public var cgroupsPath: String? { document["linux"]?["cgroupsPath"]?.stringValue }

    /// `root.readonly`.
    public var rootReadonly: Bool { document["root"]?["readonly"]?.boolValue ?? false }

    /// Sets `root.path`, keeping the rest of `root`.
    public mutating func setRootPath(_ path: String) {
        var root = document["root"] ?? .object([])
        root.set("path", .string(path))
        document.set("root", root)
    }

    // MARK: Namespaces

    /// One entry of `linux.namespaces`.
    public struct Namespace: Sendable, Equatable {
        public var type: String
        public var path: String?

        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    /// `linux.namespaces`; malformed entries are an error.
    public func namespaces() throws -> [Namespace] {
        guard let list = document["linux"]?["namespaces"] else { return [] }
        guard let items = list.arrayValue else { throw ECIError(.invalidArgument, "config.json: linux.namespaces is not an array") }
        return try items.map { item in
            guard let type = item["type"]?.stringValue else {
                throw ECIError(.invalidArgument, "config.json: a linux.namespaces entry has no type")
            }
            let path = item["path"]?.stringValue
            if let p = item["path"], path == nil, p != .null {
                throw ECIError(.invalidArgument, "config.json: namespace \(type) has a non-string path")
            }
            return Namespace(type: type, path: (path?.isEmpty ?? true) ? nil : path)
        }
    }

    /// Adds a namespace of `type` (without a path) unless one of that type is present.
    public mutating func ensureNamespace(_ type: String) {
        var linux = document["linux"] ?? .object([])
        var items = linux["namespaces"]?.arrayValue ?? []
        guard !items.contains(where: { $0["type"]?.stringValue == type }) else { return }
        items.append(.object([("type", .string(type))]))
        linux.set("namespaces", .array(items))
        document.set("linux", linux)
    }

    // MARK: ID mappings

    /// Sets `linux.uidMappings` and `linux.gidMappings` to one mapping each.
    public mutating func setIDMappings(containerID: UInt32, hostID: UInt32, size: UInt32) {
        let mapping = JSONValue.object([
            ("containerID", .integer(containerID)), ("hostID", .integer(hostID)), ("size", .integer(size)),
        ])
        var linux = document["linux"] ?? .object([])
        linux.set("uidMappings", .array([mapping]))
        linux.set("gidMappings", .array([mapping]))
        document.set("linux", linux)
    }

    /// `linux.uidMappings` as (containerID, hostID, size) triples.
    public var uidMappings: [(containerID: UInt32, hostID: UInt32, size: UInt32)] {
        (document["linux"]?["uidMappings"]?.arrayValue ?? []).compactMap { item in
            guard let c = item["containerID"]?.uint64Value, let h = item["hostID"]?.uint64Value, let s = item["size"]?.uint64Value,
                let c32 = UInt32(exactly: c), let h32 = UInt32(exactly: h), let s32 = UInt32(exactly: s)
            else { return nil }
            return (c32, h32, s32)
        }
    }

    /// Replaces the whole `process` object.
    public mutating func setProcess(_ process: JSONValue) {
        document.set("process", process)
    }

    /// Replaces the whole `linux` object (policy rewrites that touch several of its fields).
    public mutating func replaceLinux(_ linux: JSONValue) {
        document.set("linux", linux)
    }

    // MARK: Sysctls

    /// `linux.sysctl[key]`.
    public func sysctl(_ key: String) -> String? { document["linux"]?["sysctl"]?[key]?.stringValue }

    /// Sets `linux.sysctl[key]`.
    public mutating func setSysctl(_ key: String, _ value: String) {
        var linux = document["linux"] ?? .object([])
        var sysctls = linux["sysctl"] ?? .object([])
        sysctls.set(key, .string(value))
        linux.set("sysctl", sysctls)
        document.set("linux", linux)
    }

    // MARK: Mounts

    /// One entry of `mounts`.
    public struct Mount: Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]

        public init(destination: String, type: String?, source: String?, options: [String]) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }

        /// A bind mount: type "bind", or a "bind"/"rbind" option (runc's rule).
        public var isBind: Bool { type == "bind" || options.contains("bind") || options.contains("rbind") }

        /// A recursive bind ("rbind").
        public var isRecursiveBind: Bool { options.contains("rbind") }
    }

    /// `mounts`; malformed entries are an error.
    public func mounts() throws -> [Mount] {
        guard let items = document["mounts"]?.arrayValue else { return [] }
        return try items.enumerated().map { index, item in
            guard let destination = item["destination"]?.stringValue, !destination.isEmpty else {
                throw ECIError(.invalidArgument, "config.json: mounts[\(index)] has no destination")
            }
            let options = try (item["options"]?.arrayValue ?? []).map { option -> String in
                guard let text = option.stringValue else {
                    throw ECIError(.invalidArgument, "config.json: mounts[\(index)] has a non-string option")
                }
                return text
            }
            return Mount(destination: destination, type: item["type"]?.stringValue, source: item["source"]?.stringValue, options: options)
        }
    }

    /// Appends an entry to `mounts` (runc mounts them in order: after every one before it).
    public mutating func appendMount(_ mount: Mount) {
        var items = document["mounts"]?.arrayValue ?? []
        var entry: [(key: String, value: JSONValue)] = [("destination", .string(mount.destination))]
        if let type = mount.type { entry.append(("type", .string(type))) }
        if let source = mount.source { entry.append(("source", .string(source))) }
        entry.append(("options", .array(mount.options.map { .string($0) })))
        items.append(.object(entry))
        document.set("mounts", .array(items))
    }

    /// Replaces the `source` of `mounts[index]`, keeping every other field of that entry.
    public mutating func setMountSource(at index: Int, to source: String) {
        guard var items = document["mounts"]?.arrayValue, items.indices.contains(index) else { return }
        items[index].set("source", .string(source))
        document.set("mounts", .array(items))
    }

    /// The document as `config.json` bytes.
    public func serialized() -> [UInt8] { Array(document.serialized().utf8) }
}

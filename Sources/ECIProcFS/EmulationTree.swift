import ECICore
import ECIPolicy

/// The shape of ecid's emulation file system (pure): `/<key>/proc/<file>` for every container
/// key, where `<key>` is ECI's directory name of the container (`HandOver.key`). A file's
/// content is a function of the key in its path alone, never of who reads it: nothing a
/// process does (entering other namespaces, moving cgroups, passing the fd on) changes which
/// container's numbers it gets, and eci-runc binds each container's own files only.
///
/// Node IDs are computed from the key, not handed out: after ecid restarts, the kernel still
/// names the nodes the previous ecid looked up, and the new one must know them without a
/// table. A key's base is the first 8 bytes of its SHA-256 with the top bit set and the low
/// byte cleared (ID 1 is the root; a key's directory, its `proc` and its files are base,
/// base+1 and base+0x10+file). Two keys with one base (56 bits of hash) would share files, so
/// the second one is refused (`Resolver`).
public enum EmulationTree {
    /// A node of the tree.
    public enum Node: Sendable, Equatable {
        case root
        case container(String)
        case procDirectory(String)
        case file(String, EmulatedFile)
    }

    public static let rootID: UInt64 = 1

    /// Where ecid mounts the tree: beside its own directory in ECI's state directory (0711, so
    /// the root of the tree is all a container's UID could reach, and it is searchable only).
    public static func mountPoint(stateDirectory: String) -> String { join(stateDirectory, "emulation") }

    /// The file eci-runc binds over `file.containerPath` for the container `key`.
    public static func source(of file: EmulatedFile, key: String, stateDirectory: String) -> String {
        join(mountPoint(stateDirectory: stateDirectory), "\(key)/proc/\(file.rawValue)")
    }
    /// How long the kernel may cache names and attributes (seconds): nothing here ever changes shape.
    public static let cacheSeconds: UInt64 = 60

    /// The base node ID of `key`.
    public static func base(of key: String) -> UInt64 {
        let digest = SHA256.hash(Array(key.utf8))
        let high = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (high | 1 << 63) & ~0xff
    }

    /// The node ID of `node`.
    public static func id(of node: Node) -> UInt64 {
        switch node {
        case .root: rootID
        case .container(let key): base(of: key)
        case .procDirectory(let key): base(of: key) | 1
        case .file(let key, let file): base(of: key) | (0x10 + file.index)
        }
    }

    /// Whether `name` can be a container's key: runc's characters for IDs (the key is a hash,
    /// a dash and the ID), at most 255 bytes, not "." or "..".
    public static func isKey(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && name != "." && name != ".."
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || "_+.-".utf8.contains($0) }
    }

    /// LOOKUP: the child of `parent` named `name`, nil when there is none.
    public static func child(of parent: Node, named name: String) -> Node? {
        switch parent {
        case .root: isKey(name) ? .container(name) : nil
        case .container(let key): name == "proc" ? .procDirectory(key) : nil
        case .procDirectory(let key): EmulatedFile(rawValue: name).map { .file(key, $0) }
        case .file: nil
        }
    }

    /// READDIR: the entries of a directory (without "." and "..").
    public static func entries(of node: Node) -> [(name: String, node: Node)] {
        switch node {
        case .root, .file: []  // the root lists no keys: they are found by name only
        case .container(let key): [("proc", .procDirectory(key))]
        case .procDirectory(let key): EmulatedFile.allCases.map { ($0.rawValue, .file(key, $0)) }
        }
    }

    /// GETATTR. Files are 0444 (their size is the server's: `EmulationServer.attributes`);
    /// the root is searchable only.
    public static func attributes(of node: Node, time: UInt64) -> FuseWire.Attributes {
        let id = id(of: node)
        switch node {
        case .root: return .init(inode: id, mode: 0o040711, links: 2, time: time)
        case .container, .procDirectory: return .init(inode: id, mode: 0o040555, links: 2, time: time)
        case .file: return .init(inode: id, mode: 0o100444, links: 1, time: time)
        }
    }

    /// Node IDs back to nodes: the keys seen by LOOKUP, then (after a restart, for IDs the
    /// previous ecid handed out) the keys of the containers ecid knows.
    public struct Resolver: Sendable {
        private var keys: [UInt64: String] = [:]
        /// The most keys remembered; past it, keys no container has any more are forgotten.
        public static let capacity = 4096

        public init() {}

        /// Remembers `key`; false when another key has the same base (the lookup is refused).
        public mutating func remember(_ key: String, live: (String) -> Bool) -> Bool {
            let base = EmulationTree.base(of: key)
            if let known = keys[base] { return known == key }
            if keys.count >= Self.capacity { keys = keys.filter { live($0.value) } }
            keys[base] = key
            return true
        }

        /// The node `id` names; `known` lists the keys of the containers ecid supervises.
        public mutating func node(_ id: UInt64, known: () -> [String]) -> Node? {
            if id == EmulationTree.rootID { return .root }
            let base = id & ~0xff
            var key = keys[base]
            if key == nil, let found = known().first(where: { EmulationTree.base(of: $0) == base }) {
                keys[base] = found
                key = found
            }
            guard let key else { return nil }
            switch id & 0xff {
            case 0: return .container(key)
            case 1: return .procDirectory(key)
            case let low where low >= 0x10: return EmulatedFile.allCases.first { 0x10 + $0.index == low }.map { .file(key, $0) }
            default: return nil
            }
        }
    }
}

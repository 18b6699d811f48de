import ECICore
import Foundation
import Yams

/// The declarative description of the ECI VM image (`image/eci.yaml`), in the spirit of
/// LinuxKit's YAML: what goes into the root filesystem, how the disk is laid out, what is
/// produced. Unknown keys and wrong types are errors that name the field and the line.
public struct ImageSpec: Sendable, Equatable {
    /// Debian suite (trixie: kernel 6.12, docker.io 26).
    public var suite: String = "trixie"
    public var mirror: String = "http://deb.debian.org/debian"
    /// mmdebstrap variant.
    public var variant: String = "minbase"
    public var kernelPackage: String = "linux-image-cloud-amd64"
    /// Kernel command line; the root file system is found by label.
    public var cmdline: String = "console=ttyS0,115200 systemd.show_status=1"
    public var packages: [String] = []
    public var files: [File] = []
    public var enableServices: [String] = []
    /// Units that must never start (e.g. the engine's own socket, which would bypass the filter).
    public var maskServices: [String] = []
    public var diskSize: UInt64 = 4 << 30
    public var bootSize: UInt64 = 128 << 20
    public var outputs: [Output] = Output.allCases
    /// Executables from the build's bin directory installed into /usr/bin.
    public var eciBinaries: [String] = ["eci-runc"]
    /// The engine's default runtime (static configuration until the agent writes it at boot).
    public var defaultRuntime: String = "eci"

    /// One file installed into the root filesystem.
    public struct File: Sendable, Equatable {
        public var path: String
        /// A file beside the spec (relative to its directory), or inline contents.
        public var source: String?
        public var contents: String?
        public var mode: UInt32 = 0o644
    }

    public enum Output: String, Sendable, CaseIterable {
        case raw, qcow2, kernel, initrd, cmdline
    }

    /// The directory the spec was read from (file sources are relative to it).
    public var directory: String = "."

    public init() {}

    /// Parses and validates YAML text; `name` is used in error messages.
    public static func parse(_ text: String, name: String, directory: String) throws -> ImageSpec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ECIError(.invalidArgument, "\(name): not valid YAML: \(error)")
        }
        guard let root else { throw ECIError(.invalidArgument, "\(name): the spec is empty") }
        var spec = ImageSpec()
        spec.directory = directory
        let reader = SpecReader(file: name)
        let top = try reader.mapping(root, "the spec", allowed: ["suite", "mirror", "variant", "kernel", "packages", "files", "services", "disk", "outputs", "eci"])
        if let node = top["suite"] { spec.suite = try reader.string(node, "suite") }
        if let node = top["mirror"] { spec.mirror = try reader.string(node, "mirror") }
        if let node = top["variant"] { spec.variant = try reader.string(node, "variant") }
        if let node = top["kernel"] {
            let kernel = try reader.mapping(node, "kernel", allowed: ["package", "cmdline"])
            if let p = kernel["package"] { spec.kernelPackage = try reader.string(p, "kernel.package") }
            if let c = kernel["cmdline"] { spec.cmdline = try reader.string(c, "kernel.cmdline") }
        }
        if let node = top["packages"] { spec.packages = try reader.strings(node, "packages") }
        if let node = top["files"] {
            spec.files = try reader.sequence(node, "files").enumerated().map { index, item in
                let field = "files[\(index)]"
                let entry = try reader.mapping(item, field, allowed: ["path", "source", "contents", "mode"])
                guard let pathNode = entry["path"] else { throw reader.error(item, "\(field).path is required") }
                var file = File(path: try reader.string(pathNode, "\(field).path"))
                guard file.path.hasPrefix("/"), !file.path.split(separator: "/").contains("..") else {
                    throw reader.error(pathNode, "\(field).path must be an absolute path without \"..\"")
                }
                if let s = entry["source"] { file.source = try reader.string(s, "\(field).source") }
                if let c = entry["contents"] { file.contents = try reader.string(c, "\(field).contents") }
                guard (file.source == nil) != (file.contents == nil) else {
                    throw reader.error(item, "\(field) needs exactly one of source and contents")
                }
                if let m = entry["mode"] {
                    let text = try reader.string(m, "\(field).mode")
                    guard let mode = UInt32(text, radix: 8), mode <= 0o7777 else { throw reader.error(m, "\(field).mode must be octal, like \"0644\"") }
                    file.mode = mode
                }
                return file
            }
        }
        if let node = top["services"] {
            let services = try reader.mapping(node, "services", allowed: ["enable", "mask"])
            if let e = services["enable"] { spec.enableServices = try reader.strings(e, "services.enable") }
            if let m = services["mask"] { spec.maskServices = try reader.strings(m, "services.mask") }
        }
        if let node = top["disk"] {
            let disk = try reader.mapping(node, "disk", allowed: ["size", "bootSize"])
            if let s = disk["size"] { spec.diskSize = try reader.size(s, "disk.size") }
            if let b = disk["bootSize"] { spec.bootSize = try reader.size(b, "disk.bootSize") }
            guard spec.bootSize >= 32 << 20, spec.diskSize > spec.bootSize + (512 << 20) else {
                throw reader.error(node, "disk.size must leave at least 512M for the root file system, and disk.bootSize be at least 32M")
            }
        }
        if let node = top["outputs"] {
            spec.outputs = try reader.sequence(node, "outputs").enumerated().map { index, item in
                let text = try reader.string(item, "outputs[\(index)]")
                guard let output = Output(rawValue: text) else {
                    throw reader.error(item, "outputs[\(index)]: unknown output \"\(text)\" (one of \(Output.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return output
            }
        }
        if let node = top["eci"] {
            let eci = try reader.mapping(node, "eci", allowed: ["binaries", "defaultRuntime"])
            if let b = eci["binaries"] { spec.eciBinaries = try reader.strings(b, "eci.binaries") }
            if let r = eci["defaultRuntime"] { spec.defaultRuntime = try reader.string(r, "eci.defaultRuntime") }
        }
        for (field, value) in [("suite", spec.suite), ("variant", spec.variant), ("kernel.package", spec.kernelPackage)] + spec.packages.map({ ("packages", $0) }) {
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || "+-.:_".contains($0) }) else {
                throw ECIError(.invalidArgument, "\(name): \(field): \"\(value)\" is not a valid Debian name")
            }
        }
        return spec
    }

    /// Reads and parses a spec file.
    public static func load(_ path: String) throws -> ImageSpec {
        let text = try FileSystem.readText(path)
        let absolute = try FileSystem.realPath(path)
        return try parse(text, name: path, directory: parentDirectory(absolute))
    }
}

/// Typed, position-aware access to the YAML tree: every error says which field, which line.
struct SpecReader {
    let file: String

    func error(_ node: Node, _ message: String) -> ECIError {
        let line = node.mark.map { " (line \($0.line))" } ?? ""
        return ECIError(.invalidArgument, "\(file)\(line): \(message)")
    }

    func mapping(_ node: Node, _ field: String, allowed: Set<String>) throws -> [String: Node] {
        guard case let .mapping(mapping) = node else { throw error(node, "\(field) must be a mapping") }
        var out: [String: Node] = [:]
        for (key, value) in mapping {
            guard case let .scalar(scalar) = key else { throw error(key, "\(field) has a key that is not a string") }
            guard allowed.contains(scalar.string) else {
                let prefix = field == "the spec" ? "" : "\(field)."
                throw error(key, "unknown key \"\(prefix)\(scalar.string)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard out[scalar.string] == nil else { throw error(key, "duplicate key \"\(scalar.string)\"") }
            out[scalar.string] = value
        }
        return out
    }

    func sequence(_ node: Node, _ field: String) throws -> [Node] {
        guard case let .sequence(sequence) = node else { throw error(node, "\(field) must be a list") }
        return Array(sequence)
    }

    func string(_ node: Node, _ field: String) throws -> String {
        guard case let .scalar(scalar) = node else { throw error(node, "\(field) must be a string") }
        return scalar.string
    }

    func strings(_ node: Node, _ field: String) throws -> [String] {
        try sequence(node, field).enumerated().map { try string($1, "\(field)[\($0)]") }
    }

    /// "4G", "512M", "1048576": a size in bytes.
    func size(_ node: Node, _ field: String) throws -> UInt64 {
        let text = try string(node, field)
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.last, let unit = units[last], let number = UInt64(text.dropLast()) { return number * unit }
        guard let bytes = UInt64(text) else { throw error(node, "\(field) must be a size like 4G, 512M or a number of bytes") }
        return bytes
    }
}

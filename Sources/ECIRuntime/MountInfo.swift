import ECICore

/// One line of /proc/self/mountinfo.
public struct MountInfoEntry: Sendable, Equatable {
    public var mountID: Int
    public var parentID: Int
    /// "major:minor" of the file system.
    public var device: String
    public var root: String
    public var mountPoint: String
    public var mountOptions: [String]
    public var fsType: String
    public var source: String
    public var superOptions: [String]
}

/// Parses /proc/self/mountinfo (proc(5)), undoing the kernel's octal escapes.
public enum MountInfo {
    public static func parse(_ text: String) -> [MountInfoEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 4,
                let id = Int(fields[0]), let parent = Int(fields[1])
            else { return nil }
            return MountInfoEntry(
                mountID: id, parentID: parent, device: fields[2], root: unescape(fields[3]), mountPoint: unescape(fields[4]),
                mountOptions: fields[5].split(separator: ",").map(String.init), fsType: fields[dash + 1],
                source: unescape(fields[dash + 2]),
                superOptions: fields[dash + 3].split(separator: ",").map { unescape(String($0)) })
        }
    }

    /// The current process's mounts.
    public static func current() throws -> [MountInfoEntry] {
        parse(try FileSystem.readText("/proc/self/mountinfo"))
    }

    /// The top-most mount whose mount point is exactly `path`.
    public static func mount(at path: String, in entries: [MountInfoEntry]) -> MountInfoEntry? {
        entries.last { $0.mountPoint == path }
    }

    /// The mount that contains `path` (longest mount-point prefix; the last one wins on ties).
    public static func containingMount(of path: String, in entries: [MountInfoEntry]) -> MountInfoEntry? {
        var best: MountInfoEntry?
        for entry in entries where ECICore.isWithin(path, entry.mountPoint) {
            if best == nil || entry.mountPoint.count >= (best?.mountPoint.count ?? 0) { best = entry }
        }
        return best
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        let source = Array(text.utf8)
        var i = 0
        while i < source.count {
            if source[i] == UInt8(ascii: "\\"), i + 3 < source.count,
                let value = UInt8(String(decoding: source[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(source[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The layers of an overlay mount, read from its mount options.
public struct OverlayLayers: Sendable, Equatable {
    /// Lower directories, top-most first.
    public var lowers: [String]
    public var upper: String?
    public var work: String?

    /// Reads `lowerdir=a:b` (or repeated `lowerdir+=`), `upperdir=`, `workdir=` from super options.
    public init(superOptions: [String]) {
        var lowers: [String] = []
        var upper: String?
        var work: String?
        for option in superOptions {
            if option.hasPrefix("lowerdir=") {
                lowers += Self.splitLowerdir(String(option.dropFirst("lowerdir=".count)))
            } else if option.hasPrefix("lowerdir+=") {
                lowers.append(String(option.dropFirst("lowerdir+=".count)))
            } else if option.hasPrefix("upperdir=") {
                upper = String(option.dropFirst("upperdir=".count))
            } else if option.hasPrefix("workdir=") {
                work = String(option.dropFirst("workdir=".count))
            }
        }
        self.lowers = lowers
        self.upper = upper
        self.work = work
    }

    public init(lowers: [String], upper: String?, work: String?) {
        self.lowers = lowers
        self.upper = upper
        self.work = work
    }

    /// Splits on ":" except where overlayfs escaped it as "\:".
    static func splitLowerdir(_ text: String) -> [String] {
        (splitUnescaped(text, at: ":") ?? [text]).filter { !$0.isEmpty }
    }

    /// Every path made absolute. Relative paths (engines mount long layer lists relative to their
    /// storage home, e.g. dockerd's overlay2 driver) are resolved against the nearest ancestor of
    /// the overlay's mount point under which they all exist.
    public func resolved(mountPoint: String, exists: (String) -> Bool) throws -> OverlayLayers {
        let all = lowers + [upper, work].compactMap { $0 }
        let relative = all.filter { !$0.hasPrefix("/") }
        guard !relative.isEmpty else { return self }
        var ancestor = mountPoint
        while ancestor != "/" && !ancestor.isEmpty {
            ancestor = parentDirectory(ancestor)
            if relative.allSatisfy({ exists(join(ancestor, $0)) }) {
                func fix(_ p: String) -> String { p.hasPrefix("/") ? p : join(ancestor, p) }
                return OverlayLayers(lowers: lowers.map(fix), upper: upper.map(fix), work: work.map(fix))
            }
        }
        throw ECIError(.invalidState, "can't resolve the relative overlay layer paths of \(mountPoint)")
    }
}

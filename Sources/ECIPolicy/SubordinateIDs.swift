import ECICore

/// The contents of /etc/subuid or /etc/subgid: "name:start:count" lines.
public struct SubordinateIDFile: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var owner: String
        public var start: UInt32
        public var count: UInt32

        public init(owner: String, start: UInt32, count: UInt32) {
            self.owner = owner
            self.start = start
            self.count = count
        }

        public var range: IDRange { IDRange(base: start, size: count) }
    }

    public var entries: [Entry]
    /// Lines kept verbatim so that rewriting the file changes nothing but what ECI adds.
    public var lines: [String]

    /// Parses the file; comment, blank and malformed lines are kept but ignored (as shadow does).
    public init(text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        entries = lines.compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, !line.hasPrefix("#"), let start = UInt32(fields[1]), let count = UInt32(fields[2]) else { return nil }
            return Entry(owner: String(fields[0]), start: start, count: count)
        }
    }

    /// The first entry owned by `owner`.
    public func entry(for owner: String) -> Entry? { entries.first { $0.owner == owner } }

    /// The file with one more entry appended.
    public func appending(_ entry: Entry) -> SubordinateIDFile {
        var copy = self
        copy.lines.append("\(entry.owner):\(entry.start):\(entry.count)")
        copy.entries.append(entry)
        return copy
    }

    public var text: String { lines.map { $0 + "\n" }.joined() }
}

/// Where ECI's pool lives in /etc/subuid and /etc/subgid, and how a default one is chosen.
public enum SubordinateIDPolicy {
    /// The owner name of ECI's pool.
    public static let owner = "eci"
    /// Containers the default pool holds.
    public static let defaultContainers: UInt32 = 4096
    /// Where the search for a free default pool starts (above the usual per-user ranges).
    public static let defaultSearchStart: UInt32 = 1 << 20

    /// The pool declared for `owner` in both files. The uid and gid entries must agree, since
    /// each container's uid base equals its gid base, and must not overlap other owners' entries.
    public static func pool(subuid: SubordinateIDFile, subgid: SubordinateIDFile) throws -> IDPool? {
        let u = subuid.entry(for: owner)
        let g = subgid.entry(for: owner)
        guard let u, let g else {
            if u != nil || g != nil {
                throw ECIError(.invalidState, "user \(owner) has an entry in only one of /etc/subuid and /etc/subgid")
            }
            return nil
        }
        guard u.start == g.start, u.count == g.count else {
            throw ECIError(.invalidState, "the \(owner) entries of /etc/subuid (\(u.start):\(u.count)) and /etc/subgid (\(g.start):\(g.count)) differ")
        }
        let pool = try IDPool(start: u.start, count: u.count)
        for other in subuid.entries + subgid.entries where other.owner != owner && other.count > 0 {
            if other.range.overlaps(pool.asRange) {
                throw ECIError(.invalidState, "ECI's ID pool \(pool) overlaps the subordinate IDs of \(other.owner) (\(other.start):\(other.count))")
            }
        }
        return pool
    }

    /// The lowest slot-aligned pool of `containers` slots at or above `defaultSearchStart`
    /// that overlaps no entry of either file.
    public static func defaultPool(subuid: SubordinateIDFile, subgid: SubordinateIDFile, containers: UInt32 = defaultContainers) throws -> IDPool {
        let count = UInt64(containers) * UInt64(IDRange.containerSize)
        var start = UInt64(defaultSearchStart)
        let taken = (subuid.entries + subgid.entries).filter { $0.count > 0 }.map(\.range)
        while start + count <= UInt64(UInt32.max) {
            let candidate = IDRange(base: UInt32(start), size: UInt32(count))
            guard let blocker = taken.filter({ $0.overlaps(candidate) }).max(by: { $0.end < $1.end }) else {
                return try IDPool(start: UInt32(start), count: UInt32(count))
            }
            let size = UInt64(IDRange.containerSize)
            start = (blocker.end + size - 1) / size * size
        }
        throw ECIError(.exhausted, "no free block of \(count) subordinate IDs for ECI's pool")
    }
}

/// Path arithmetic on absolute paths, component-wise and without touching the file system.

/// The parent directory of an absolute path ("/" for "/x").
public func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// Joins two path pieces with one "/".
public func join(_ base: String, _ relative: String) -> String {
    if relative.isEmpty { return base }
    return base.hasSuffix("/") ? base + relative : base + "/" + relative
}

/// Whether `path` is `directory` or lies under it (component-wise, not string-prefix).
public func isWithin(_ path: String, _ directory: String) -> Bool {
    if directory == "/" { return path.hasPrefix("/") }
    return path == directory || path.hasPrefix(directory + "/")
}

/// `path` relative to `directory`, which must contain it ("" when they are the same).
public func relativePath(_ path: String, under directory: String) -> String {
    path == directory ? "" : String(path.dropFirst(directory == "/" ? 1 : directory.count + 1))
}

/// The shortest path naming the same file lexically, as Go's `path.Clean` computes it (the
/// engine cleans bind sources this way before using them): repeated slashes, `.` and `..`
/// (also `..` after a component that does not exist) are resolved on the text alone.
public func lexicallyClean(_ path: String) -> String {
    let rooted = path.hasPrefix("/")
    var parts: [Substring] = []
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        switch part {
        case ".": continue
        case "..":
            if let last = parts.last, last != ".." { parts.removeLast() } else if !rooted { parts.append(part) }
        default: parts.append(part)
        }
    }
    let joined = parts.joined(separator: "/")
    if rooted { return "/" + joined }
    return joined.isEmpty ? "." : joined
}

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

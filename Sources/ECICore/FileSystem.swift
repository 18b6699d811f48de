import Glibc

/// Small, crash-safe file helpers shared by every component.
public enum FileSystem {
    /// Reads a whole file, failing with `.notFound` when it does not exist.
    public static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw err == ENOENT ? ECIError(.notFound, "\(path) does not exist") : ECIError.system("open \(path)", errno: err)
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try Syscall.retrying("read \(path)") { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    /// Reads a whole file as UTF-8 text.
    public static func readText(_ path: String) throws -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Replaces `path` atomically: writes a temporary file beside it, fsyncs it, renames it
    /// over `path` and fsyncs the directory, so a crash leaves either the old or the new file.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let temp = "\(path).tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw ECIError.system("create \(temp)", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            defer { close(fd) }
            try Syscall.writeAll(fd, bytes, what: "write \(temp)")
            guard fsync(fd) == 0 else { throw ECIError.system("fsync \(temp)", errno: errno) }
        }
        guard rename(temp, path) == 0 else { throw ECIError.system("rename \(temp)", errno: errno) }
        ok = true
        syncDirectory(containing: path)
    }

    /// Writes a file in place (created 0600 if needed, truncated), without fsync: for files
    /// that are worthless after a crash (a bundle runc reads at once).
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw ECIError.system("create \(path)", errno: errno) }
        defer { close(fd) }
        try Syscall.writeAll(fd, bytes, what: "write \(path)")
    }

    /// Writes text atomically (see `writeAtomically(_:_:mode:)`).
    public static func writeAtomically(_ path: String, text: String, mode: mode_t = 0o600) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// Creates a directory and its parents with `mode`; succeeds when it already exists.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o700) throws {
        var current = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw ECIError.system("mkdir \(current)", errno: errno)
            }
        }
    }

    /// Whether something (file, directory, dangling symlink excluded) exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// Whether `path` is a directory (following symlinks).
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Removes a file or a directory tree without following symlinks. Missing is fine.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw ECIError.system("lstat \(path)", errno: errno)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 || errno == ENOENT else { throw ECIError.system("rmdir \(path)", errno: errno) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw ECIError.system("unlink \(path)", errno: errno) }
        }
    }

    /// The names in a directory (without "." and "..").
    public static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw ECIError.system("opendir \(path)", errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The current working directory.
    public static func currentDirectory() throws -> String {
        guard let cwd = getcwd(nil, 0) else { throw ECIError.system("getcwd", errno: errno) }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// The canonical absolute path (symlinks, `.` and `..` resolved), as the kernel would resolve it.
    public static func realPath(_ path: String) throws -> String {
        guard let resolved = realpath(path, nil) else {
            let err = errno
            throw err == ENOENT ? ECIError(.notFound, "\(path) does not exist") : ECIError.system("realpath \(path)", errno: err)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `path` (absolute) with symlinks and `..` resolved by the kernel as far as it exists, and
    /// the missing rest appended as written: where the path will be once its missing part is
    /// created (the engine creates a missing bind source as a directory). nil when nothing of
    /// it resolves. The one resolver of the runtime's policy paths (`MountSources`) and of the
    /// filter's bind sources (`VMLookups`), so both name a place the same way.
    public static func resolvingExistingPrefix(_ path: String) -> String? {
        var existing = path
        var rest: [String] = []
        while true {
            if let real = try? realPath(existing) {
                return rest.reversed().reduce(real) { join($0, $1) }
            }
            guard existing != "/", !existing.isEmpty else { return nil }
            rest.append(String(existing.split(separator: "/").last ?? ""))
            existing = parentDirectory(existing)
        }
    }

    private static func syncDirectory(containing path: String) {
        let fd = open(parentDirectory(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

/// An exclusive advisory lock on a file (flock), held until `unlock()` or deinit.
/// Serialises concurrent invocations: the engine creates containers in parallel.
public final class FileLock {
    private var fd: Int32

    /// Blocks until the lock on `path` (created if needed) is held.
    public init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ECIError.system("open lock \(path)", errno: errno) }
        do {
            try Syscall.retrying("lock \(path)") { flock(fd, LOCK_EX) }
        } catch {
            close(fd)
            throw error
        }
    }

    public func unlock() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}

/// A stable 64-bit FNV-1a hash, hex-encoded: short, deterministic names derived from paths.
public func stableHash(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

import CShim
import ECICore
import Glibc

/// A file's identity: device and inode, as stat(2) gives them.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

/// The unix sockets the engine's processes listen on, found by identity rather than by name:
/// the engine may listen anywhere (`dockerd -H unix:///some/dir/docker.sock`), and a container
/// that can connect to one of these sockets controls the engine, containerd or a shim, which
/// all act as the VM's root.
///
/// Found from the kernel's own records: processes of the VM's root (owner of /proc/PID) whose
/// command is an engine's; the socket inodes their descriptors hold (`socket:[INO]`); which of
/// those listen with a path in the process's network namespace (/proc/PID/net/unix); the file
/// that path names, opened through the process's root (/proc/PID/root), checked to be a socket,
/// and every directory above it, walked by `..` from the open directory (so no symlink or
/// alias in a path can hide one). Abstract sockets have no file and cannot be bound.
struct EngineListeners {
    /// Who listens on a socket file.
    struct Listener: Sendable, Equatable {
        var command: String
        var pid: Int32
        /// The path the process bound, as it named it.
        var path: String

        var description: String { "\(command) (pid \(pid)) listens on \(path)" }
    }

    /// Commands (as /proc/PID/comm shows them, at most 15 bytes) of the engine's processes.
    static let commands: Set<String> = ["dockerd", "containerd", "buildkitd", "eci-agent", "ecid"]
    /// Command prefixes: containerd's shims (`containerd-shim-runc-v2` shows as `containerd-shim`).
    static let commandPrefixes = ["containerd-shim"]

    /// O_PATH (a handle that reads nothing), which Glibc's Swift module hides behind _GNU_SOURCE.
    static let openPath: Int32 = ECI_O_PATH

    /// Socket files the engine listens on.
    private(set) var sockets: [FileIdentity: Listener] = [:]
    /// Every directory above one of those socket files, up to the root.
    private(set) var directories: [FileIdentity: Listener] = [:]

    /// One line of /proc/net/unix that listens on a path.
    struct UnixListenEntry: Sendable, Equatable {
        var inode: UInt64
        var path: String
    }

    /// Listening sockets with a file-system path in the text of /proc/PID/net/unix:
    /// `Num RefCount Protocol Flags Type St Inode Path`, where Flags has __SO_ACCEPTCON
    /// (0x10000) for a listening socket and an abstract path starts with `@`.
    static func parseUnixTable(_ text: String) -> [UnixListenEntry] {
        var entries: [UnixListenEntry] = []
        for line in text.split(separator: "\n") {
            // Seven fields, then the path, which may itself hold spaces.
            var fields: [Substring] = []
            var rest = line[...]
            while fields.count < 7 {
                rest = rest.drop { $0 == " " }
                guard let end = rest.firstIndex(of: " ") else {
                    if !rest.isEmpty { fields.append(rest) }
                    rest = rest[rest.endIndex...]
                    break
                }
                fields.append(rest[..<end])
                rest = rest[rest.index(after: end)...]
            }
            guard fields.count == 7, fields[0].hasSuffix(":"), let flags = UInt32(fields[3], radix: 16),
                flags & 0x10000 != 0, let inode = UInt64(fields[6])
            else { continue }
            let path = String(rest)
            guard !path.isEmpty, !path.hasPrefix("@") else { continue }
            entries.append(UnixListenEntry(inode: inode, path: path))
        }
        return entries
    }

    /// Whether a /proc/PID/comm value is an engine process's.
    static func isEngineCommand(_ command: String) -> Bool {
        commands.contains(command) || commandPrefixes.contains { command.hasPrefix($0) }
    }

    /// Scans `procRoot` (/proc) for the engine's listening sockets. Processes that exit during
    /// the scan, or whose files vanish, are skipped: what is found is what exists.
    static func scan(procRoot: String = "/proc") -> EngineListeners {
        var result = EngineListeners()
        guard let dir = opendir(procRoot) else { return result }
        var pids: [(Int32, String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), pid > 0 else { continue }
            guard let command = readSmall("\(procRoot)/\(pid)/comm"), isEngineCommand(command) else { continue }
            // Only the VM's root: a container's process (a high host ID) may call itself dockerd.
            var st = stat()
            guard stat("\(procRoot)/\(pid)", &st) == 0, st.st_uid == 0 else { continue }
            pids.append((pid, command))
        }
        closedir(dir)

        var tables: [String: [UInt64: String]] = [:]  // network namespace → listening inode → path
        for (pid, command) in pids {
            let inodes = socketInodes(procRoot: procRoot, pid: pid)
            guard !inodes.isEmpty, let netns = readLink("\(procRoot)/\(pid)/ns/net") else { continue }
            if tables[netns] == nil {
                let text = (try? FileSystem.readText("\(procRoot)/\(pid)/net/unix")) ?? ""
                var table: [UInt64: String] = [:]
                for entry in parseUnixTable(text) { table[entry.inode] = entry.path }
                tables[netns] = table
            }
            guard let table = tables[netns] else { continue }
            for inode in inodes {
                guard let path = table[inode] else { continue }
                result.add(Listener(command: command, pid: pid, path: path), procRoot: procRoot)
            }
        }
        return result
    }

    /// Records the socket file at `listener.path` (seen from the listener's root, or its working
    /// directory for a relative path) and every directory above it.
    private mutating func add(_ listener: Listener, procRoot: String) {
        let base = listener.path.hasPrefix("/") ? "\(procRoot)/\(listener.pid)/root" : "\(procRoot)/\(listener.pid)/cwd"
        let parent = parentDirectory(listener.path.hasPrefix("/") ? listener.path : "/" + listener.path)
        let name = String(listener.path.split(separator: "/").last ?? "")
        guard !name.isEmpty else { return }
        var current = open(base + parent, Self.openPath | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { return }
        var st = stat()
        guard fstatat(current, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFSOCK else {
            close(current)
            return
        }
        sockets[FileIdentity(st)] = listener
        // Up by "..", from the directory itself: its real ancestors, whatever the path said.
        for _ in 0..<4096 {
            guard fstat(current, &st) == 0 else { break }
            let identity = FileIdentity(st)
            if directories[identity] != nil { break }  // walked from here up already
            directories[identity] = listener
            let up = openat(current, "..", Self.openPath | O_DIRECTORY | O_CLOEXEC)
            guard up >= 0 else { break }
            var upStat = stat()
            guard fstat(up, &upStat) == 0, FileIdentity(upStat) != identity else {
                close(up)
                break
            }
            close(current)
            current = up
        }
        close(current)
    }

    /// Inodes of the sockets process `pid` holds open (`socket:[INO]` links in /proc/PID/fd).
    static func socketInodes(procRoot: String, pid: Int32) -> [UInt64] {
        let fdDirectory = "\(procRoot)/\(pid)/fd"
        guard let dir = opendir(fdDirectory) else { return [] }
        defer { closedir(dir) }
        var inodes: [UInt64] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.first != ".", let target = readLink("\(fdDirectory)/\(name)"), target.hasPrefix("socket:["), target.hasSuffix("]"),
                let inode = UInt64(target.dropFirst("socket:[".count).dropLast())
            else { continue }
            inodes.append(inode)
        }
        return inodes
    }

    /// The listener whose socket is `identity`, or (for a directory) one whose socket lies below it.
    func listener(for identity: FileIdentity, isDirectory: Bool) -> (Listener, contained: Bool)? {
        if let listener = sockets[identity] { return (listener, false) }
        if isDirectory, let listener = directories[identity] { return (listener, true) }
        return nil
    }

    /// A short proc file (comm) without its newline; nil when unreadable.
    static func readSmall(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        var bytes = buffer[0..<n]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// readlink(2) as a string; nil on failure.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import ECICore
import ECIPolicy
import ECIIO
import Glibc
import Logging
import Synchronization

/// Where the emulated files' content comes from: ecid's knowledge of its containers.
public protocol EmulationSource: Sendable {
    /// The content of `file` for the container `key`, nil while no such container is known.
    func content(of file: EmulatedFile, key: String) throws -> [UInt8]?
    /// The keys of every container known now.
    func knownKeys() -> [String]
}

/// ecid's FUSE server: serves `EmulationTree` on one /dev/fuse connection, read by a few
/// threads (each request is handed to one of them by the kernel).
///
/// No request ever sleeps on those threads: a READ for a container ecid does not know yet is
/// parked (`Parked`) and answered by a waiter thread of its own, so reads of a key that stays
/// unknown (a gone container's file, its fd handed to another container) cannot hold the
/// server threads every other container's reads, runc's lookups and ecid's own clones queue
/// behind (attack round 11).
///
/// Restart: the connection's fd is kept by the fd holder, so the mount and every container's
/// binds of it outlive ecid; a new ecid adopts the fd (no INIT comes again on it) and
/// answers what the kernel queued meanwhile. A request the previous ecid had read but not
/// answered stays unanswered: its reader waits until it is killed.
public final class EmulationServer: Sendable {
    let fd: Int32
    let source: any EmulationSource
    let log: Logger
    private let resolver = Mutex(EmulationTree.Resolver())
    /// The last content computed per container and file, and when (`recent`).
    private let lastContent = Mutex<[String: (content: [UInt8], at: ContinuousClock.Instant)]>([:])
    /// How long a computed content serves reads past offset 0.
    static let recentContent: Duration = .milliseconds(100)
    /// How long a READ waits (parked) for ecid to learn of a container whose process reads
    /// already (runc hands the notify fd over asynchronously, just before the program starts).
    static let registrationWait: Duration = .seconds(2)
    /// Reads parked for a container ecid does not know; past the bounds a read is refused (EIO)
    /// at once. Per key: one container's process has a handful of reads in flight while its
    /// notify fd is on its way; a key that never comes is bounded by it.
    static let parkedLimit = 1024
    static let parkedPerKey = 16
    private let parked = WaitableState<[Parked]>([])

    /// A READ waiting for its container to be known.
    struct Parked: Sendable {
        let unique: UInt64
        let file: EmulatedFile
        let key: String
        let offset: UInt64
        let size: UInt32
        let deadline: ContinuousClock.Instant
    }

    /// Serves `fd`, a /dev/fuse connection (new, or adopted from a previous ecid).
    public init(fd: Int32, source: any EmulationSource, log: Logger) {
        self.fd = fd
        self.source = source
        self.log = log
    }

    /// Opens /dev/fuse and mounts a new connection at `mountPoint` (an existing mount there, a
    /// dead predecessor's, is detached first). Returns the connection's fd (close-on-exec).
    public static func mount(at mountPoint: String) throws -> Int32 {
        try FileSystem.makeDirectories(mountPoint, mode: 0o711)
        // A stale mount (its server and the holder gone) answers ENOTCONN: replace it.
        while umount2(mountPoint, Int32(MNT_DETACH | UMOUNT_NOFOLLOW)) == 0 {}
        let fd = try Syscall.retrying("open /dev/fuse") { open("/dev/fuse", O_RDWR | O_CLOEXEC) }
        // allow_other: container processes (other UIDs) read the files; default_permissions:
        // the kernel checks the modes (0444 files), no access request reaches ecid.
        let options = "fd=\(fd),rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
        guard Glibc.mount("eci-emulation", mountPoint, MountCallPolicy.emulationFileSystemType, UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY), options) == 0 else {
            let error = errno
            close(fd)
            throw ECIError.system("mount the emulation file system at \(mountPoint)", errno: error)
        }
        return fd
    }

    /// Starts `threads` reader threads and the waiter of parked reads, and returns.
    public func start(threads: Int = 2) throws {
        try DetachedThread.start("emulation-wait") { [self] in waitLoop() }
        for index in 0..<max(1, threads) {
            try DetachedThread.start("emulation-\(index)") { [self] in loop() }
        }
    }

    /// Answers parked reads: each as soon as its container is known, or EIO at its deadline.
    /// Sleeps while none is parked; polls every 5 ms while some are.
    private func waitLoop() {
        while true {
            let snapshot = parked.wait { $0.isEmpty ? nil : $0 } ?? []
            var answered: Set<UInt64> = []
            var contents: [String: [UInt8]?] = [:]
            let now = ContinuousClock.now
            for read in snapshot {
                let slot = read.key + "/" + read.file.rawValue
                // A container that stays unknown (or whose init is gone) gets EIO at the deadline.
                if contents[slot] == nil { contents[slot] = .some((try? source.content(of: read.file, key: read.key)) ?? nil) }
                let reply: [UInt8]
                if let content = contents[slot] ?? nil {
                    reply = FuseWire.reply(to: read.unique, Self.slice(content, offset: read.offset, size: read.size))
                } else if now >= read.deadline {
                    log.warning("emulated file read for a container ecid does not know", metadata: ["file": "\(read.file.rawValue)", "key": "\(read.key)"])
                    reply = FuseWire.reply(to: read.unique, errno: EIO)
                } else {
                    continue
                }
                send(reply, opcode: FuseWire.Opcode.read.rawValue)
                answered.insert(read.unique)
            }
            if !answered.isEmpty { parked.withLock { $0.removeAll { answered.contains($0.unique) } } }
            usleep(5_000)
        }
    }

    /// The content last computed for `file` of `key`, when younger than `recentContent`.
    func recent(_ file: EmulatedFile, key: String) -> [UInt8]? {
        lastContent.withLock { last in
            guard let entry = last[key + "/" + file.rawValue], ContinuousClock.now - entry.at < Self.recentContent else { return nil }
            return entry.content
        }
    }

    private func remember(_ content: [UInt8], _ file: EmulatedFile, key: String) {
        lastContent.withLock { last in
            // Bounded: a few entries per container; stale ones are dropped when it grows.
            if last.count >= 4096 {
                let now = ContinuousClock.now
                last = last.filter { now - $0.value.at < Self.recentContent }
            }
            last[key + "/" + file.rawValue] = (content, ContinuousClock.now)
        }
    }

    /// Parks a READ for a key ecid does not know yet; false (refuse it: EIO) past the bounds.
    func park(_ request: FuseWire.Request, file: EmulatedFile, key: String, range: (offset: UInt64, size: UInt32)) -> Bool {
        let read = Parked(unique: request.unique, file: file, key: key, offset: range.offset, size: range.size, deadline: .now + Self.registrationWait)
        return parked.withLock { list in
            guard list.count < Self.parkedLimit, list.lazy.filter({ $0.key == key }).count < Self.parkedPerKey else { return false }
            list.append(read)
            return true
        }
    }

    private func send(_ reply: [UInt8], opcode: UInt32) {
        let written = reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // ENOENT: the caller was interrupted and the kernel dropped the request.
        if written < 0, errno != ENOENT { log.warning("FUSE reply not written", metadata: ["errno": "\(errno)", "opcode": "\(opcode)"]) }
    }

    /// `size` bytes of `content` from `offset` (fewer at its end, none past it).
    static func slice(_ content: [UInt8], offset: UInt64, size: UInt32) -> [UInt8] {
        let start = Int(min(offset, UInt64(content.count)))
        let end = min(content.count, start + Int(size))
        return Array(content[start..<end])
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: FuseWire.readBufferSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                switch errno {
                case EINTR, EAGAIN, ENOENT: continue  // ENOENT: the request was interrupted before we got it
                case ENODEV:
                    log.warning("emulation file system unmounted: its server stops")
                    return
                default:
                    log.error("reading /dev/fuse failed: the emulation server stops", metadata: ["errno": "\(errno)"])
                    return
                }
            }
            guard let request = try? FuseWire.Request(Array(buffer[..<count])) else {
                log.error("malformed FUSE request ignored", metadata: ["bytes": "\(count)"])
                continue
            }
            guard let reply = answer(request) else { continue }
            send(reply, opcode: request.opcode)
        }
    }

    /// The reply to `request`, nil for those that get none (FORGET, INTERRUPT) and for a READ
    /// parked until its container is known (the waiter answers it).
    func answer(_ request: FuseWire.Request) -> [UInt8]? {
        let now = UInt64(max(0, time(nil)))
        func error(_ code: Int32) -> [UInt8] { FuseWire.reply(to: request.unique, errno: code) }
        guard let opcode = FuseWire.Opcode(rawValue: request.opcode) else { return error(ENOSYS) }
        if opcode == .initialize {
            guard let arguments = request.initArguments, arguments.major == FuseWire.major else { return error(EPROTO) }
            log.info("emulation file system connected", metadata: ["kernel": "\(arguments.major).\(arguments.minor)"])
            return FuseWire.reply(to: request.unique, FuseWire.initReply(maxReadahead: arguments.maxReadahead))
        }
        switch opcode {
        case .forget, .batchForget, .interrupt: return nil
        case .destroy: return FuseWire.reply(to: request.unique)
        default: break
        }
        guard let node = resolver.withLock({ $0.node(request.nodeID, known: source.knownKeys) }) else { return error(ENOENT) }
        switch opcode {
        case .lookup:
            guard let name = request.name, let child = EmulationTree.child(of: node, named: name) else { return error(ENOENT) }
            if case .container(let key) = child {
                let known = Set(source.knownKeys())
                guard resolver.withLock({ $0.remember(key, live: { known.contains($0) }) }) else {
                    log.error("two container keys share an emulation node: the second is refused", metadata: ["key": "\(key)"])
                    return error(ENOENT)
                }
            }
            return FuseWire.reply(to: request.unique, FuseWire.entryReply(attributes(of: child, time: now), valid: EmulationTree.cacheSeconds, attributesValid: attributesValid(child)))
        case .getattr:
            return FuseWire.reply(to: request.unique, FuseWire.attributesReply(attributes(of: node, time: now), valid: attributesValid(node)))
        case .open:
            guard case .file = node else { return error(EISDIR) }
            return FuseWire.reply(to: request.unique, FuseWire.openReply(flags: FuseWire.directIO))
        case .opendir:
            if case .file = node { return error(ENOTDIR) }
            return FuseWire.reply(to: request.unique, FuseWire.openReply(flags: 0))
        case .read:
            guard case .file(let key, let file) = node else { return error(EISDIR) }
            guard let range = request.readRange else { return error(EINVAL) }
            // Computed afresh for every read at offset 0 (no state per open: a restart loses
            // nothing, and a container holding many fds costs ecid nothing). A read further on,
            // the rest of a file read in pieces or the read that finds its end, gets the last
            // content computed for the file when it is recent (`recentContent`): one
            // computation per open, and one snapshot for a reader reading in pieces.
            if range.offset > 0, let content = recent(file, key: key) {
                return FuseWire.reply(to: request.unique, Self.slice(content, offset: range.offset, size: range.size))
            }
            let content: [UInt8]?
            do {
                content = try source.content(of: file, key: key)
                if let content { remember(content, file, key: key) }
            } catch let failure {
                log.error("emulated file not computed", metadata: ["file": "\(file.rawValue)", "key": "\(key)", "error": "\(failure)"])
                return error(EIO)
            }
            guard let content else { return park(request, file: file, key: key, range: range) ? nil : error(EIO) }
            return FuseWire.reply(to: request.unique, Self.slice(content, offset: range.offset, size: range.size))
        case .readdir:
            guard let range = request.readRange else { return error(EINVAL) }
            let all = [(".", node), ("..", node)] + EmulationTree.entries(of: node)
            var out: [UInt8] = []
            var index = Int(min(range.offset, UInt64(all.count)))
            while index < all.count {
                let (name, child) = all[index]
                let entry = FuseWire.directoryEntry(
                    inode: EmulationTree.id(of: child), next: UInt64(index + 1), name: name, isDirectory: { if case .file = child { false } else { true } }())
                guard out.count + entry.count <= Int(range.size) else { break }
                out += entry
                index += 1
            }
            return FuseWire.reply(to: request.unique, out)
        // ENOSYS to FLUSH: the kernel stops sending it on every close (nothing here to flush).
        case .flush: return error(ENOSYS)
        case .release, .releasedir: return FuseWire.reply(to: request.unique)
        case .statfs: return FuseWire.reply(to: request.unique, FuseWire.statfsReply())
        case .access: return FuseWire.reply(to: request.unique)
        case .initialize, .forget, .batchForget, .interrupt, .destroy: return error(ENOSYS)
        }
    }

    /// A file's attributes carry a size above its content's. sendfile and splice (busybox cat
    /// uses them) read a FUSE file through the page cache up to its size even with direct I/O,
    /// so procfs's size 0 would read as empty; the kernel ends such a read at the first short
    /// answer (and takes that as the size until the next GETATTR). Files' attributes are never
    /// cached (`attributesValid` 0), so every open (its permission check) asks again.
    ///
    /// The size is a bound no content reaches (64 KiB, or 4 KiB per CPU of the VM for
    /// cpuinfo's blocks), not the content's: computing the content for every GETATTR doubled
    /// the cost of an open (`make bench`).
    func attributes(of node: EmulationTree.Node, time: UInt64) -> FuseWire.Attributes {
        var attributes = EmulationTree.attributes(of: node, time: time)
        guard case .file = node else { return attributes }
        attributes.size = Self.sizeBound
        return attributes
    }

    static let sizeBound = UInt64(max(64 * 1024, sysconf(Int32(_SC_NPROCESSORS_CONF)) * 4096))

    func attributesValid(_ node: EmulationTree.Node) -> UInt64 {
        if case .file = node { return 0 }
        return EmulationTree.cacheSeconds
    }
}

import ECICore

/// The FUSE kernel protocol (7.x, `<linux/fuse.h>`) for a read-only file system, decoded and
/// encoded by hand (pure). ECI speaks it itself instead of through libfuse so that a restarted
/// ecid can go on serving a connection the previous one initialized (libfuse answers every
/// request before an INIT of its own with EIO), the /dev/fuse fd having been kept by the fd
/// holder meanwhile.
public enum FuseWire {
    /// The opcodes this file system answers; everything else gets ENOSYS.
    public enum Opcode: UInt32, Sendable {
        case lookup = 1, forget = 2, getattr = 3, open = 14, read = 15, statfs = 17, release = 18
        case flush = 25, initialize = 26, opendir = 27, readdir = 28, releasedir = 29, access = 34
        case interrupt = 36, destroy = 38, batchForget = 42
    }

    /// The protocol version ECI answers INIT with: 7.31 (Linux 5.4+), whose `fuse_init_out` is
    /// the 64-byte one; the kernel accepts any server minor at or below its own.
    public static let major: UInt32 = 7
    public static let minor: UInt32 = 31
    /// Largest WRITE the kernel may send (none: read-only), and the read buffer that fits any request.
    public static let maxWrite: UInt32 = 4096
    public static let readBufferSize = 64 * 1024 + 4096
    /// FOPEN_DIRECT_IO: every read reaches ecid (no page cache: the files change every moment).
    public static let directIO: UInt32 = 1 << 0

    /// `struct fuse_in_header` and the bytes after it.
    public struct Request: Sendable, Equatable {
        public var opcode: UInt32
        public var unique: UInt64
        public var nodeID: UInt64
        public var uid: UInt32
        public var gid: UInt32
        public var pid: UInt32
        public var body: [UInt8]

        /// Decodes one request as read(2) from /dev/fuse returned it (one read, one request).
        public init(_ bytes: [UInt8]) throws {
            guard bytes.count >= 40 else { throw ECIError(.invalidArgument, "FUSE request of \(bytes.count) bytes: shorter than its header") }
            let length = Int(bytes.readLE32(at: 0))
            guard length == bytes.count else { throw ECIError(.invalidArgument, "FUSE request says \(length) bytes, read \(bytes.count)") }
            opcode = bytes.readLE32(at: 4)
            unique = bytes.readLE64(at: 8)
            nodeID = bytes.readLE64(at: 16)
            uid = bytes.readLE32(at: 24)
            gid = bytes.readLE32(at: 28)
            pid = bytes.readLE32(at: 32)
            body = Array(bytes[40...])
        }

        /// A name argument (LOOKUP): NUL-terminated in the body.
        public var name: String? {
            guard let end = body.firstIndex(of: 0) else { return nil }
            return String(validating: body[..<end], as: UTF8.self)
        }

        /// `fuse_read_in`'s offset and size (READ, READDIR).
        public var readRange: (offset: UInt64, size: UInt32)? {
            guard body.count >= 20 else { return nil }
            return (body.readLE64(at: 8), body.readLE32(at: 16))
        }

        /// `fuse_init_in`: the kernel's version and readahead.
        public var initArguments: (major: UInt32, minor: UInt32, maxReadahead: UInt32)? {
            guard body.count >= 12 else { return nil }
            return (body.readLE32(at: 0), body.readLE32(at: 4), body.readLE32(at: 8))
        }
    }

    /// `struct fuse_attr`: what GETATTR and LOOKUP report.
    public struct Attributes: Sendable, Equatable {
        public var inode: UInt64
        public var mode: UInt32
        public var links: UInt32
        public var size: UInt64 = 0
        /// Seconds since the epoch, for atime, mtime and ctime alike.
        public var time: UInt64 = 0

        public init(inode: UInt64, mode: UInt32, links: UInt32, size: UInt64 = 0, time: UInt64 = 0) {
            self.inode = inode
            self.mode = mode
            self.links = links
            self.size = size
            self.time = time
        }

        /// 88 bytes; uid and gid 0: the VM's root, which a container sees as nobody, as it sees
        /// the files of its own procfs.
        var encoded: [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(88)
            out.appendLE64(inode)
            out.appendLE64(size)
            out.appendLE64((size + 511) / 512)
            for _ in 0..<3 { out.appendLE64(time) }
            for _ in 0..<3 { out.appendLE32(0) }
            out.appendLE32(mode)
            out.appendLE32(links)
            out.appendLE32(0)  // uid
            out.appendLE32(0)  // gid
            out.appendLE32(0)  // rdev
            out.appendLE32(4096)  // blksize
            out.appendLE32(0)  // flags
            return out
        }
    }

    /// A reply: `fuse_out_header` then `payload`; `errno` > 0 is an error reply (no payload).
    public static func reply(to unique: UInt64, errno: Int32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let body = errno == 0 ? payload : []
        var out: [UInt8] = []
        out.reserveCapacity(16 + body.count)
        out.appendLE32(UInt32(16 + body.count))
        out.appendLE32(UInt32(bitPattern: -errno))
        out.appendLE64(unique)
        return out + body
    }

    /// `fuse_init_out` (64 bytes): no optional feature asked for.
    public static func initReply(maxReadahead: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE32(major)
        out.appendLE32(minor)
        out.appendLE32(maxReadahead)
        out.appendLE32(0)  // flags
        out.appendLE16(16)  // max_background
        out.appendLE16(12)  // congestion_threshold
        out.appendLE32(maxWrite)
        out.appendLE32(1)  // time_gran (ns)
        out.appendLE16(0)  // max_pages
        out.appendLE16(0)  // map_alignment
        out.appendLE32(0)  // flags2
        out += [UInt8](repeating: 0, count: 28)
        return out
    }

    /// `fuse_entry_out` (LOOKUP): the node, its generation (always 1: a node ID names the same
    /// file for the file system's whole life) and cache lifetimes in seconds (the name's, and
    /// the attributes' when they differ).
    public static func entryReply(_ attributes: Attributes, valid seconds: UInt64, attributesValid: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE64(attributes.inode)
        out.appendLE64(1)
        out.appendLE64(seconds)
        out.appendLE64(attributesValid ?? seconds)
        out.appendLE32(0)
        out.appendLE32(0)
        return out + attributes.encoded
    }

    /// `fuse_attr_out` (GETATTR).
    public static func attributesReply(_ attributes: Attributes, valid seconds: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE64(seconds)
        out.appendLE32(0)
        out.appendLE32(0)
        return out + attributes.encoded
    }

    /// `fuse_open_out` (OPEN, OPENDIR): no handle (every read names its node), `flags`.
    public static func openReply(flags: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE64(0)
        out.appendLE32(flags)
        out.appendLE32(0)
        return out
    }

    /// `fuse_statfs_out`: an empty file system.
    public static func statfsReply() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 40)
        out.appendLE32(4096)  // bsize
        out.appendLE32(255)  // namelen
        out.appendLE32(4096)  // frsize
        out.appendLE32(0)
        out += [UInt8](repeating: 0, count: 24)
        return out
    }

    /// One `fuse_dirent`, padded to 8 bytes. `next` is the offset of the entry after it.
    public static func directoryEntry(inode: UInt64, next: UInt64, name: String, isDirectory: Bool) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        var out: [UInt8] = []
        out.appendLE64(inode)
        out.appendLE64(next)
        out.appendLE32(UInt32(nameBytes.count))
        out.appendLE32(isDirectory ? 4 : 8)  // DT_DIR, DT_REG
        out += nameBytes
        while out.count % 8 != 0 { out.append(0) }
        return out
    }
}

extension Array where Element == UInt8 {
    /// Little-endian integers at byte `at` (the caller checked the length).
    func readLE32(at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[at + $1]) << (8 * $1) } }
    func readLE64(at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[at + $1]) << (8 * $1) } }
    mutating func appendLE16(_ value: UInt16) { append(contentsOf: [UInt8(value & 0xff), UInt8(value >> 8)]) }
    mutating func appendLE32(_ value: UInt32) { append(contentsOf: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
    mutating func appendLE64(_ value: UInt64) { append(contentsOf: (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
}

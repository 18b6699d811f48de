import CShim
import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// A unix stream socket file descriptor with one owner, for blocking I/O from threads.
///
/// `close()` releases the descriptor exactly once; `shutdown(_:)` (which wakes a thread blocked
/// reading or accepting on it) is a no-op after close, so another thread may call it at any
/// time without touching a reused descriptor number. Reads and writes must not overlap `close()`:
/// their owner closes only when it is done with them.
public final class UnixSocket: @unchecked Sendable {
    private let lock = PthreadMutex()
    private var fd: Int32

    /// Takes ownership of `fd`.
    public init(adopting fd: Int32) { self.fd = fd }

    deinit { close() }

    /// The descriptor, -1 once closed.
    public var descriptor: Int32 { lock.withLock { fd } }

    /// Gives the descriptor up to a new owner (who closes it); this object then holds none.
    public func release() -> Int32 {
        lock.withLock {
            let released = fd
            fd = -1
            return released
        }
    }

    /// Closes the descriptor (once).
    public func close() {
        lock.withLock {
            if fd >= 0 {
                _ = Glibc.close(fd)
                fd = -1
            }
        }
    }

    /// shutdown(2) with `how` (SHUT_RD, SHUT_WR, SHUT_RDWR); ignored once closed.
    public func shutdown(_ how: Int32) {
        lock.withLock {
            if fd >= 0 { _ = Glibc.shutdown(fd, how) }
        }
    }

    // MARK: Creating

    private static func address(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw ECIError(.invalidArgument, "unix socket path \(path) is empty or longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        return addr
    }

    private static func makeSocket() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ECIError.system("socket", errno: errno) }
        return fd
    }

    /// A new connection to the socket at `path`.
    public static func connect(to path: String) throws -> UnixSocket {
        var addr = try address(path)
        let fd = try makeSocket()
        let socket = UnixSocket(adopting: fd)
        try Syscall.retrying("connect to \(path)") {
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
        return socket
    }

    /// A listening socket at `path` with permissions `mode` (and group `group` when given).
    /// A stale socket at `path` is replaced; anything else there is refused. The socket is
    /// bound under a temporary name, given its mode, then renamed into place, so it is never
    /// reachable with looser permissions.
    public static func listen(at path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 128) throws -> UnixSocket {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw ECIError(.invalidArgument, "\(path) exists and is not a socket; refusing to replace it")
            }
        } else if errno != ENOENT {
            throw ECIError.system("lstat \(path)", errno: errno)
        }
        let temporary = "\(path).\(getpid()).tmp"
        var addr = try address(temporary)
        let fd = try makeSocket()
        let socket = UnixSocket(adopting: fd)
        if lstat(temporary, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK { unlink(temporary) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw ECIError.system("bind \(temporary)", errno: errno) }
        do {
            if let group, chown(temporary, uid_t.max, group) != 0 { throw ECIError.system("chown \(temporary)", errno: errno) }
            guard chmod(temporary, mode) == 0 else { throw ECIError.system("chmod \(temporary)", errno: errno) }
            guard Glibc.listen(fd, backlog) == 0 else { throw ECIError.system("listen on \(temporary)", errno: errno) }
            guard rename(temporary, path) == 0 else { throw ECIError.system("rename \(temporary) to \(path)", errno: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        return socket
    }

    /// The inode of the file at `path` (lstat), nil when there is none.
    public static func inode(at path: String) -> ino_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_ino : nil
    }

    /// Accepts one connection; nil for a transient failure (interrupted, aborted, out of
    /// descriptors: the caller retries). Throws when the socket is unusable.
    public func accept() throws -> UnixSocket? {
        do {
            // accept4(SOCK_CLOEXEC): a process spawned meanwhile cannot inherit the connection.
            return UnixSocket(adopting: try Syscall.shim("accept") { eci_accept(descriptor) })
        } catch let error as ECIError {
            switch error.errno {
            case ECONNABORTED, EAGAIN, EPROTO: return nil
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                usleep(50_000)
                return nil
            default: throw error
            }
        }
    }

    // MARK: I/O

    /// Sets SO_RCVTIMEO (nil or 0: block forever). A read that times out throws `.system`
    /// with EAGAIN.
    public func setReceiveTimeout(_ seconds: Double?) {
        setTimeout(SO_RCVTIMEO, seconds)
    }

    /// Sets SO_SNDTIMEO (nil or 0: block forever).
    public func setSendTimeout(_ seconds: Double?) {
        setTimeout(SO_SNDTIMEO, seconds)
    }

    private func setTimeout(_ option: Int32, _ seconds: Double?) {
        let value = max(0, seconds ?? 0)
        var tv = timeval(tv_sec: Int(value), tv_usec: Int((value - value.rounded(.down)) * 1_000_000))
        _ = setsockopt(descriptor, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads what is available into `buffer` (blocking until something is); 0 at end of
    /// stream. Throws on errors (ECONNRESET, a timeout's EAGAIN, ...).
    public func read(into buffer: inout [UInt8]) throws -> Int {
        let fd = descriptor
        do {
            return try Syscall.retrying("read") { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
        } catch let error as ECIError where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            throw ECIError(.timedOut, "read timed out", errno: error.errno)
        }
    }

    /// Writes every byte (never raising SIGPIPE: a peer that went away is an EPIPE error).
    public func write<C: Collection>(_ bytes: C) throws where C.Element == UInt8 {
        let fd = descriptor
        let done: Void? = try bytes.withContiguousStorageIfAvailable { try Self.send(fd, UnsafeRawBufferPointer($0)) }
        if done == nil {
            let copy = Array(bytes)
            try copy.withUnsafeBytes { try Self.send(fd, $0) }
        }
    }

    private static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws {
        do {
            try Syscall.writeAll(fd, buffer, socket: true, what: "write")
        } catch let error as ECIError where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            throw ECIError(.timedOut, "write timed out", errno: error.errno)
        }
    }
}

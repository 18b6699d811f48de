import ECICore
import ECIIO
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One end of a channel port (a connected unix socket on the host, the virtio-serial character
/// device in the guest), moving whole frames.
///
/// - Reading: one thread calls `receive()` in a loop; bytes go through a `FrameDecoder`, so
///   garbage is skipped, but a peer that sends more than `garbageLimit` bytes without a single
///   valid frame is treated as broken and the read fails (the caller drops the session).
/// - Writing: any thread may call `send`; a lock serialises whole frames so frames from
///   different threads never interleave on the wire. Partial writes and EINTR are retried.
/// - The fd is switched to non-blocking mode and every wait is a `poll` that also watches a
///   wake pipe, so `interrupt()` unblocks a reader or writer on any kind of fd (a socket or a
///   character device, where `shutdown` does not work). This also matters for virtio-serial:
///   a guest write blocks while the host is not connected; here it fails instead, because
///   `poll` reports POLLHUP without POLLOUT.
///
/// Locking: `writeLock` serialises writers and guards `fd` for them (`close()` takes it, so a
/// writer never uses a closed fd); `stateLock` guards `closed` and the wake pipe. The decoder
/// belongs to the single reader thread.
public final class PortConnection: @unchecked Sendable {
    /// Bytes of garbage in a row (no valid frame) after which the peer counts as broken.
    public static let defaultGarbageLimit = 1 << 20

    public let label: String
    private let fd: Int32
    private let isSocket: Bool
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let garbageLimit: Int
    private let logger: Logger

    private let writeLock = PthreadMutex()
    private let stateLock = PthreadMutex()
    private var closed = false
    private var interrupted = false

    // Reader-thread state.
    private var decoder = FrameDecoder()
    private var discardedAtLastFrame = 0
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Takes ownership of `fd` (closed by `close()`).
    /// - Parameters:
    ///   - garbageLimit: consecutive garbage bytes tolerated before `receive()` throws.
    public init(fd: Int32, label: String, garbageLimit: Int = PortConnection.defaultGarbageLimit, logger: Logger) throws {
        let pipeFDs: [Int32]
        do {
            let wake = try Syscall.pipe(nonblocking: true, what: "pipe for the \(label) port")
            pipeFDs = [wake.read, wake.write]
        } catch {
            Glibc.close(fd)
            throw error
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            let error = ECIError.system("making the \(label) port non-blocking", errno: errno)
            Glibc.close(fd)
            Glibc.close(pipeFDs[0])
            Glibc.close(pipeFDs[1])
            throw error
        }
        self.fd = fd
        self.isSocket = FDIO.isSocket(fd)
        self.wakeRead = pipeFDs[0]
        self.wakeWrite = pipeFDs[1]
        self.label = label
        self.garbageLimit = garbageLimit
        self.logger = logger
    }

    deinit { close() }

    /// Bytes skipped as garbage on this connection so far.
    public var discarded: Int { decoder.discarded }

    // MARK: Reading

    /// Blocks until at least one frame arrives and returns the frames decoded so far (never
    /// empty), or nil when the peer closed the port (read returned 0: for virtio-serial, the
    /// host is not connected) or `interrupt()` was called.
    ///
    /// Only one thread may call this.
    /// - Throws: `ECIError` `.channelProtocol` after `garbageLimit` garbage bytes in a row,
    ///   `.system` when reading fails.
    public func receive() throws -> [Frame]? {
        while true {
            guard try waitFor(Int16(POLLIN)) else { return nil }
            let count: Int
            do {
                count = try Syscall.retrying("reading the \(label) port") { readBuffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            } catch let error as ECIError where error.errno == EAGAIN || error.errno == ECONNRESET {
                if error.errno == EAGAIN { continue }
                return nil
            }
            if count == 0 { return nil }
            let frames = decoder.feed(readBuffer[0..<count])
            if !frames.isEmpty {
                if decoder.discarded > discardedAtLastFrame {
                    logger.debug("skipped garbage on the port", metadata: ["port": "\(label)", "bytes": "\(decoder.discarded - discardedAtLastFrame)"])
                }
                discardedAtLastFrame = decoder.discarded
                return frames
            }
            if decoder.discarded - discardedAtLastFrame > garbageLimit {
                throw ECIError(.channelProtocol, "\(decoder.discarded - discardedAtLastFrame) bytes on the \(label) port without a valid frame")
            }
        }
    }

    // MARK: Writing

    /// Writes one frame whole.
    /// - Throws: `.channelDisconnected` once the port is closed, interrupted or the peer went away.
    public func send(_ frame: Frame) throws {
        try send([frame])
    }

    /// Writes frames back to back, none interleaved with another writer's.
    public func send(_ frames: [Frame]) throws {
        guard !frames.isEmpty else { return }
        var bytes: [UInt8] = []
        for frame in frames {
            guard frame.payload.count <= Frame.maxPayload else {
                throw ECIError(.invalidArgument, "a \(frame.kind) frame of \(frame.payload.count) bytes exceeds the \(Frame.maxPayload)-byte limit")
            }
            bytes += frame.encoded()
        }
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !isClosedOrInterrupted else { throw disconnected("the \(label) port is closed") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw -> Int in
                let base = raw.baseAddress.map { $0 + offset }
                return isSocket ? Glibc.send(fd, base, raw.count - offset, Int32(MSG_NOSIGNAL)) : write(fd, base, raw.count - offset)
            }
            if written > 0 {
                offset += written
                continue
            }
            if written < 0 && errno == EINTR { continue }
            if written < 0 && errno == EAGAIN {
                guard try waitFor(Int16(POLLOUT)) else { throw disconnected("the \(label) port disconnected while writing") }
                continue
            }
            if written < 0 && [EPIPE, ECONNRESET, ENODEV].contains(errno) {
                throw disconnected("the \(label) port disconnected while writing")
            }
            throw ECIError.system("writing the \(label) port", errno: written < 0 ? errno : EIO)
        }
    }

    // MARK: Closing

    /// Wakes the reader and any writer; from now on `receive()` returns nil and `send` throws.
    /// Safe from any thread, any number of times.
    public func interrupt() {
        stateLock.lock()
        defer { stateLock.unlock() }
        guard !closed, !interrupted else { return }
        interrupted = true
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // level-triggered: the pipe stays readable, every poller wakes
    }

    /// Interrupts, then closes the fd and the wake pipe. Call it once the reader thread no
    /// longer reads (the thread that ran `receive()`, or after it finished); writers are excluded
    /// by the write lock.
    public func close() {
        interrupt()
        writeLock.lock()
        stateLock.lock()
        if !closed {
            closed = true
            Glibc.close(fd)
            Glibc.close(wakeRead)
            Glibc.close(wakeWrite)
        }
        stateLock.unlock()
        writeLock.unlock()
    }

    private var isClosedOrInterrupted: Bool {
        stateLock.lock()
        defer { stateLock.unlock() }
        return closed || interrupted
    }

    private func disconnected(_ message: String) -> ECIError {
        ECIError(.channelDisconnected, message)
    }

    /// Polls the port for `events` and the wake pipe. True when the port is ready; false when
    /// interrupted, or (for writes) when the peer hung up so the write could never complete.
    private func waitFor(_ events: Int16) throws -> Bool {
        while true {
            if isClosedOrInterrupted { return false }
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            try Syscall.retrying("poll on the \(label) port") { poll(&fds, 2, -1) }
            if fds[1].revents != 0 { return false }
            let revents = fds[0].revents
            if revents & events != 0 { return true }
            if revents & Int16(POLLNVAL) != 0 { throw ECIError(.channelDisconnected, "the \(label) port's fd is not open") }
            // POLLHUP/POLLERR without the event: a read will return 0 or an error (let read
            // report it), a write would block forever (virtio-serial with no host) or fail.
            if revents & Int16(POLLHUP | POLLERR) != 0 {
                if events == Int16(POLLIN) { return true }
                return false
            }
        }
    }
}

/// Blocking I/O on a local stream's fd (a connected unix socket).
enum FDIO {
    static func isSocket(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFSOCK
    }

    /// Clears O_NONBLOCK: stream threads rely on blocking reads and writes.
    static func makeBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0, flags & O_NONBLOCK != 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    }

    /// Reads up to `count` bytes: the bytes, [] at end of file, or the errno.
    static func read(_ fd: Int32, max count: Int) -> Result<[UInt8], ECIError> {
        var buffer = [UInt8](repeating: 0, count: count)
        do {
            let n = try Syscall.retrying("reading a tunnel stream's connection") { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, count) } }
            buffer.removeLast(count - n)
            return .success(buffer)
        } catch let error as ECIError {
            return .failure(error)
        } catch {
            return .failure(ECIError(.system, "reading a tunnel stream's connection", cause: error))
        }
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL on sockets, so a vanished reader is EPIPE, not SIGPIPE).
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], socket: Bool) -> ECIError? {
        do {
            try Syscall.writeAll(fd, bytes, socket: socket, what: "writing a tunnel stream's connection")
            return nil
        } catch let error as ECIError {
            return error
        } catch {
            return ECIError(.system, "writing a tunnel stream's connection", cause: error)
        }
    }
}

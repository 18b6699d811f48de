import ECICore
import Foundation
import Logging
import Testing

@testable import ECIChannel

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the endpoint tests: real socket pairs, threads, local services.
enum Sockets {
    /// A connected AF_UNIX stream pair.
    static func pair() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let result = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        precondition(result == 0, "socketpair: errno \(errno)")
        return (fds[0], fds[1])
    }

    /// Writes everything; false when the peer went away.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        FDIO.writeAll(fd, bytes, socket: true) == nil
    }

    /// Reads until end of file (or an error); returns what arrived.
    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        while case .success(let bytes) = FDIO.read(fd, max: 65536), !bytes.isEmpty { out += bytes }
        return out
    }

    /// Reads exactly `count` bytes unless end of file comes first.
    static func read(_ fd: Int32, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count, case .success(let bytes) = FDIO.read(fd, max: count - out.count), !bytes.isEmpty { out += bytes }
        return out
    }

    /// Sets a receive timeout so a test never blocks forever on a read.
    static func setReadTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// Runs `body` on a new thread; `wait` blocks until it finished (or the timeout passed).
final class Background: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ name: String = "test", _ body: @escaping @Sendable () -> Void) {
        let semaphore = done
        let thread = Thread {
            body()
            semaphore.signal()
        }
        thread.name = name
        thread.start()
    }

    /// True if the thread finished within `seconds`.
    @discardableResult
    func wait(seconds: Double = 10) -> Bool {
        done.wait(timeout: .now() + seconds) == .success
    }
}

/// A value shared between test threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Port fds handed to a guest's `serve` one session at a time.
final class PortQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var fds: [Int32] = []
    private(set) var opened = 0

    func push(_ fd: Int32) {
        condition.lock()
        fds.append(fd)
        condition.broadcast()
        condition.unlock()
    }

    /// Waits briefly for the next fd; throws when none comes (serve then backs off and retries,
    /// and notices `stop()`).
    func open() throws -> Int32 {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: 0.2)
        while fds.isEmpty {
            if !condition.wait(until: deadline) { throw ECIError(.notFound, "no port yet") }
        }
        opened += 1
        condition.broadcast()
        return fds.removeFirst()
    }

    /// Waits until `count` ports were opened in total.
    func waitOpened(_ count: Int, seconds: Double = 10) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while opened < count {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }
}

/// Local services a guest connector can hand a stream to.
enum Services {
    /// An echo server on one end of a new pair; returns the other end.
    static func echo() -> Int32 {
        let (service, client) = Sockets.pair()
        _ = Background("echo") {
            while case .success(let bytes) = FDIO.read(service, max: 65536), !bytes.isEmpty {
                guard Sockets.writeAll(service, bytes) else { break }
            }
            _ = shutdown(service, Int32(SHUT_WR))
            close(service)
        }
        return client
    }
}

func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["ECI_TEST_LOG"] != nil ? .debug : .critical
    return logger
}

/// Waits until `condition` holds, polling (test-only), up to `seconds`.
func eventually(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5000)
    }
    return condition()
}

/// Deterministic bytes for stream `n`.
func pattern(_ n: Int, count: Int) -> [UInt8] {
    var rng = SplitMix64(state: UInt64(n) &* 7919 &+ 1)
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        var word = rng.next()
        for _ in 0..<8 where i < count {
            out[i] = UInt8(word & 0xFF)
            word >>= 8
            i += 1
        }
    }
    return out
}

/// The far end of a port driven by hand: raw bytes and frames in, frames out.
final class RawPeer: @unchecked Sendable {
    let fd: Int32
    private var decoder = FrameDecoder()
    private var queue: [Frame] = []

    init(fd: Int32) {
        self.fd = fd
        Sockets.setReadTimeout(fd, seconds: 5)
    }

    func send(_ frames: [Frame]) { Sockets.writeAll(fd, frames.flatMap { $0.encoded() }) }
    func sendRaw(_ bytes: [UInt8]) { Sockets.writeAll(fd, bytes) }

    /// The next frame, or nil at end of file or after the read timeout.
    func next() -> Frame? {
        while queue.isEmpty {
            guard case .success(let bytes) = FDIO.read(fd, max: 65536), !bytes.isEmpty else { return nil }
            queue += decoder.feed(bytes)
        }
        return queue.removeFirst()
    }

    /// Skips frames until one matches; nil if the port ends first.
    func next(where match: (Frame) -> Bool) -> Frame? {
        while let frame = next() {
            if match(frame) { return frame }
        }
        return nil
    }

    /// Reads until end of file; true if it came (false on the read timeout). A reset counts
    /// as the end: a unix socket closed with unread data resets its peer.
    func waitForEOF() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { continue }
            if n == 0 { return true }
            if errno == EINTR { continue }
            return errno == ECONNRESET
        }
    }
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    pattern(Int(seed) + 1_000_000, count: count)
}

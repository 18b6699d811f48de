import ECICore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One side of the tunnel port: many byte streams (engine API connections) multiplexed over
/// one port, each with its own flow control and half-close (see `StreamTable`).
///
/// - Host: `run(port:)` on a thread with the port connected (QEMU's unix socket), then
///   `attach(_:)` each accepted client connection; when the port disconnects, `run` returns
///   and every client connection is closed. Call `run` again with a new connection to resume.
/// - Guest: `serve(openPort:)` on a thread; for every stream the host opens, the connector
///   returns a freshly connected local fd (the engine's socket) or nil to refuse it. The loop
///   survives disconnects, garbage and host restarts until `stop()`.
///
/// Each session starts with a `hello` announcement from both sides; a second announcement
/// within a session means the peer restarted, and every stream is reset.
///
/// Threads: per session, the caller's thread reads the port and one thread writes it; per
/// stream, one thread reads the local fd (within the peer's credit) and one writes it. Local
/// fds must be stream sockets: a reset unblocks their threads with `shutdown(2)`.
///
/// Locking: `lock` guards `session`, `nextStreamID` and `stopped`; a session has its own
/// mutex (see `TunnelSession`). The endpoint's lock is never held while taking the session's.
public final class TunnelEndpoint: @unchecked Sendable {
    /// Which side of the port this is.
    public enum Role: Sendable {
        /// Opens streams (one per attached client connection).
        case host
        /// Accepts streams, connecting each to a local service.
        case guest
    }

    /// Guest: returns a connected local stream socket for a new stream, or nil to refuse it.
    /// Runs on the stream's own thread, so it may block briefly (a `connect`).
    public typealias Connector = @Sendable (_ streamID: UInt32) -> Int32?

    public let role: Role
    /// The hello this side announces.
    public let hello: ChannelHello
    private let connector: Connector?
    private let window: UInt32
    private let garbageLimit: Int
    private let backoff: Duration
    private let logger: Logger

    private let lock = NSCondition()
    private var session: TunnelSession?
    private var nextStreamID: UInt32 = 1
    private var stopped = false

    /// - Parameters:
    ///   - role: host or guest.
    ///   - name: our name in the hello (e.g. "ecibuild", "eci-agent").
    ///   - window: bytes each side may send on a stream before the receiver grants more credit.
    ///   - garbageLimit: bytes without a valid frame after which the session is dropped.
    ///   - backoff: the guest's pause after a disconnect before it reopens the port.
    ///   - connector: the guest's way to connect a stream (required for `.guest`).
    public init(
        role: Role, name: String, window: UInt32 = 256 * 1024, garbageLimit: Int = PortConnection.defaultGarbageLimit,
        backoff: Duration = .milliseconds(200), logger: Logger, connector: Connector? = nil
    ) {
        self.role = role
        self.hello = ChannelHello(name: name)
        self.window = window
        self.garbageLimit = garbageLimit
        self.backoff = backoff
        self.logger = logger
        self.connector = connector
    }

    /// The peer's hello in the current session, once received.
    public var peer: ChannelHello? { currentSession?.currentPeer }

    /// Streams currently open (still using a local fd).
    public var streamCount: Int { currentSession?.streamCount ?? 0 }

    /// Per-stream state of the current session, for diagnosing a stuck stream.
    public var debugState: String { currentSession?.debugState ?? "no session" }

    /// Whether a session is running.
    public var isConnected: Bool { currentSession != nil }

    private var currentSession: TunnelSession? {
        lock.lock()
        defer { lock.unlock() }
        return session
    }

    // MARK: Sessions

    /// Runs one session over `fd` (a connected socket or the open port device), blocking until
    /// the peer disconnects, the port fails, the peer floods garbage, or `stop()`. Takes
    /// ownership of `fd`. On return every stream has been reset and its fd closed.
    /// - Throws: `ECIError` `.channelProtocol` (garbage flood), `.system` (read failure),
    ///   `.invalidState` if a session is already running. A plain disconnect returns normally.
    public func run(port fd: Int32) throws {
        try runSession(fd) { _ in }
    }

    /// Guest: opens the port, runs a session, and after every disconnect waits `backoff` and
    /// opens it again, until `stop()`. `openPort` returns a fresh fd each time (the endpoint
    /// closes it when the session ends); when it throws (no device yet), the wait grows up to
    /// ten times `backoff`.
    public func serve(openPort: () throws -> Int32) {
        var failures = 0
        var quietSessions = 0
        while !isStopped {
            let fd: Int32
            do {
                fd = try openPort()
                failures = 0
            } catch {
                failures += 1
                if failures == 1 { logger.warning("cannot open the tunnel port; retrying", metadata: ["error": "\(error)"]) }
                pause(backoff * min(failures, 10))
                continue
            }
            var hadFrames = false
            do {
                try runSession(fd) { hadFrames = $0 }
            } catch {
                logger.warning("tunnel session dropped", metadata: ["error": "\(error)"])
            }
            // A port with no host behind it (virtio-serial reads 0) ends a session at once,
            // every `backoff`: log only the first of those.
            if hadFrames || quietSessions == 0 {
                logger.info("tunnel session ended; reopening the port", metadata: ["backoff": "\(backoff)"])
            }
            quietSessions = hadFrames ? 0 : quietSessions + 1
            pause(backoff)
        }
    }

    /// Runs one session; `observe` learns whether any valid frame arrived.
    private func runSession(_ fd: Int32, _ observe: (Bool) -> Void) throws {
        let connection = try PortConnection(fd: fd, label: "tunnel", garbageLimit: garbageLimit, logger: logger)
        let newSession = TunnelSession(
            port: connection, isHost: role == .host, hello: hello, window: window, connector: connector, logger: logger)
        lock.lock()
        if stopped || session != nil {
            let running = session != nil
            lock.unlock()
            connection.close()
            if running { throw ECIError(.invalidState, "the tunnel endpoint already runs a session") }
            return
        }
        session = newSession
        lock.unlock()
        defer {
            observe(newSession.hadFrames)
            lock.lock()
            session = nil
            lock.broadcast()
            lock.unlock()
        }
        try newSession.run()
    }

    /// Ends the current session (its streams are reset) and makes `serve` and `run` return;
    /// the endpoint stays stopped.
    public func stop() {
        lock.lock()
        stopped = true
        let current = session
        lock.broadcast()
        lock.unlock()
        current?.port.interrupt()
    }

    /// Ends the current session without stopping the endpoint (the guest's `serve` reopens).
    public func disconnect() {
        currentSession?.port.interrupt()
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    /// Sleeps up to `duration`, returning early on `stop()`.
    private func pause(_ duration: Duration) {
        let deadline = Date(timeIntervalSinceNow: duration.seconds)
        lock.lock()
        while !stopped && lock.wait(until: deadline) {}
        lock.unlock()
    }

    // MARK: Streams

    /// Host: carries the connected client socket `fd` over a new stream and returns the
    /// stream's id (increasing, never reused by this endpoint). Takes ownership of `fd` even
    /// when it throws.
    /// - Throws: `.channelDisconnected` when no session runs, `.invalidArgument` on a guest.
    public func attach(_ fd: Int32) throws -> UInt32 {
        guard role == .host else {
            Glibc.close(fd)
            throw ECIError(.invalidArgument, "only the host attaches connections to the tunnel")
        }
        lock.lock()
        guard let current = session, !stopped else {
            lock.unlock()
            Glibc.close(fd)
            throw ECIError(.channelDisconnected, "the tunnel is not connected")
        }
        let id = nextStreamID
        nextStreamID = nextStreamID == UInt32.max ? 1 : nextStreamID + 1
        lock.unlock()
        try current.attach(fd, id: id)
        logger.debug("tunnel stream attached", metadata: ["stream": "\(id)"])
        return id
    }
}

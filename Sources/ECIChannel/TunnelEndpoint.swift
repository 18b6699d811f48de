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
/// Shared state is `shared` (the session slot and the next stream id), a `WaitableState`
/// because `serve` waits on it between sessions; a session has its own mutex (see
/// `TunnelSession`), never taken while `shared` is held.
public final class TunnelEndpoint: Sendable {
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

    private let shared = WaitableState(State())

    private struct State: PortEndpointState {
        var sessions = SessionSlot<TunnelSession>()
        var nextStreamID: UInt32 = 1
    }

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

    private var currentSession: TunnelSession? { shared.currentSession }

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
        var quietSessions = 0
        var hadFrames = false
        shared.serve(port: "tunnel", backoff: backoff, logger: logger, openPort: openPort) { fd in
            hadFrames = false
            try runSession(fd) { hadFrames = $0 }
        } ended: {
            // A port with no host behind it (virtio-serial reads 0) ends a session at once,
            // every `backoff`: log only the first of those.
            if hadFrames || quietSessions == 0 {
                logger.info("tunnel session ended; reopening the port", metadata: ["backoff": "\(backoff)"])
            }
            quietSessions = hadFrames ? 0 : quietSessions + 1
        }
    }

    /// Runs one session; `observe` learns whether any valid frame arrived.
    private func runSession(_ fd: Int32, _ observe: (Bool) -> Void) throws {
        let connection = try PortConnection(fd: fd, label: "tunnel", garbageLimit: garbageLimit, logger: logger)
        let newSession = TunnelSession(
            port: connection, isHost: role == .host, hello: hello, window: window, connector: connector, logger: logger)
        // The session closes the port when it ends; this closes it when no session ran.
        defer { connection.close() }
        // After the slot is given back: `shared` is never held while the session's mutex is taken.
        defer { observe(newSession.hadFrames) }
        try shared.runSession(newSession, endpoint: "tunnel endpoint") {
            try newSession.run()
        }
    }

    /// Ends the current session (its streams are reset) and makes `serve` and `run` return;
    /// the endpoint stays stopped.
    public func stop() {
        shared.stopSessions()?.port.interrupt()
    }

    /// Ends the current session without stopping the endpoint (the guest's `serve` reopens).
    public func disconnect() {
        currentSession?.port.interrupt()
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
        let claimed = shared.withLock { state -> (TunnelSession, UInt32)? in
            guard let current = state.sessions.current, !state.sessions.stopped else { return nil }
            let id = state.nextStreamID
            state.nextStreamID = state.nextStreamID == UInt32.max ? 1 : state.nextStreamID + 1
            return (current, id)
        }
        guard let (current, id) = claimed else {
            Glibc.close(fd)
            throw ECIError(.channelDisconnected, "the tunnel is not connected")
        }
        try current.attach(fd, id: id)
        logger.debug("tunnel stream attached", metadata: ["stream": "\(id)"])
        return id
    }
}

import ECICore
import ECIIO
import Logging

/// The session lifetime the control client, the control server and the tunnel endpoint share:
/// at most one session over a port at a time; `stop()` ends it and every later one, for good;
/// `disconnect()` ends only the current one; a guest's `serve` reopens the port after each.
struct SessionSlot<Session: Sendable>: Sendable {
    /// The running session, nil between sessions.
    private(set) var current: Session?
    /// Stopped for good: no session starts any more.
    private(set) var stopped = false

    enum Claim {
        case claimed
        case alreadyRunning
        case stopped
    }

    /// Takes the slot for `session`, unless one runs (which wins over `stopped`: the caller
    /// is told it made a mistake) or the endpoint is stopped.
    mutating func claim(_ session: Session) -> Claim {
        if current != nil { return .alreadyRunning }
        if stopped { return .stopped }
        current = session
        return .claimed
    }

    mutating func release() { current = nil }

    /// Stops for good; returns the session to interrupt.
    mutating func stop() -> Session? {
        stopped = true
        return current
    }
}

/// An endpoint's shared state, which holds its session slot.
protocol PortEndpointState: Sendable {
    associatedtype Session: Sendable
    var sessions: SessionSlot<Session> { get set }
}

extension WaitableState where State: PortEndpointState {
    /// Runs `body` as the endpoint's one session: claims the slot for `session` (running
    /// `begin` under the same lock), runs `body`, and gives the slot back (running `end` under
    /// the same lock) however `body` ends. The caller closes the port after this returns.
    /// - Throws: `.invalidState` if a session already runs; what `body` throws. When the
    ///   endpoint is stopped, `body` does not run and this returns normally.
    func runSession(
        _ session: State.Session, endpoint: String, begin: (inout State) -> Void = { _ in }, end: (inout State) -> Void = { _ in },
        _ body: () throws -> Void
    ) throws {
        let claim = withLock { state -> SessionSlot<State.Session>.Claim in
            let claim = state.sessions.claim(session)
            if claim == .claimed { begin(&state) }
            return claim
        }
        switch claim {
        case .claimed: break
        case .stopped: return
        case .alreadyRunning: throw ECIError(.invalidState, "the \(endpoint) already runs a session")
        }
        defer {
            withLock { state in
                state.sessions.release()
                end(&state)
            }
        }
        try body()
    }

    /// The running session, nil between sessions.
    var currentSession: State.Session? { withLock { $0.sessions.current } }

    /// Stops the endpoint for good; returns the session to interrupt.
    func stopSessions() -> State.Session? { withLock { $0.sessions.stop() } }

    var isStopped: Bool { withLock { $0.sessions.stopped } }

    /// Sleeps up to `duration`, returning early on a stop.
    func pause(_ duration: Duration) {
        wait(timeout: duration) { $0.sessions.stopped ? true : nil }
    }

    /// The guest's loop: opens the port, runs a session over it, and after every session
    /// waits `backoff` and opens it again, until stopped. `openPort` returns a fresh fd each
    /// time (the session owns it); when it throws (no device yet), the wait grows up to ten
    /// times `backoff`. `ended` runs after each session (for logging).
    func serve(
        port name: String, backoff: Duration, logger: Logger, openPort: () throws -> Int32, session: (Int32) throws -> Void,
        ended: () -> Void = {}
    ) {
        var failures = 0
        while !isStopped {
            let fd: Int32
            do {
                fd = try openPort()
                failures = 0
            } catch {
                failures += 1
                if failures == 1 { logger.warning("cannot open the \(name) port; retrying", metadata: ["error": "\(error)"]) }
                pause(backoff * min(failures, 10))
                continue
            }
            do {
                try session(fd)
            } catch {
                logger.warning("\(name) session dropped", metadata: ["error": "\(error)"])
            }
            ended()
            pause(backoff)
        }
    }
}

/// The state of a control-port endpoint (client or server): the session is the connection,
/// and the peer's hellos are counted per session.
protocol ControlEndpointState: PortEndpointState where Session == PortConnection {
    var hellos: HelloState { get set }
}

extension WaitableState where State: ControlEndpointState {
    /// A control-port session over `connection`: forgets the last session's hellos, announces
    /// `hello`, then hands every frame to `handle` until the port closes (see `runSession`).
    func runFrames(
        on connection: PortConnection, endpoint: String, hello: ChannelHello, end: (inout State) -> Void = { _ in },
        handle: (Frame) -> Void
    ) throws {
        try runSession(connection, endpoint: endpoint, begin: { $0.hellos = HelloState() }, end: end) {
            try? connection.send(hello.frame(answering: false))
            while let frames = try connection.receive() {
                for frame in frames { handle(frame) }
            }
        }
    }
}

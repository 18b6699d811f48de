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

/// The host's end of the control port: sends requests (opaque payloads; ECIContract's
/// requests, by the callers) and matches each response to its request by id.
///
/// `run(port:)` reads the port on the caller's thread; `hello(timeout:)` and
/// `request(_:timeout:)` may be called from any thread, concurrently. When the session ends
/// (disconnect, garbage flood, `stop()`) or the guest restarts (a second hello announcement),
/// every request in flight fails with `.channelDisconnected`; requests are never resent,
/// because the guest may already have acted on them. Call `run(port:)` again to reconnect.
///
/// Shared state is `shared`, a `WaitableState` rather than a `Mutex`: requesters wait on it for
/// a session and for their response. The port is written outside it (`PortConnection`
/// serialises writers).
public final class ControlClient: Sendable {
    /// The hello this side announces.
    public let hello: ChannelHello
    private let garbageLimit: Int
    private let logger: Logger
    private let shared = WaitableState(State())

    private enum Pending: Sendable {
        case waiting
        case done(Result<[UInt8], ECIError>)
    }

    private struct State: ControlEndpointState {
        var sessions = SessionSlot<PortConnection>()
        var port: PortConnection? { sessions.current }
        var stopped: Bool { sessions.stopped }
        var nextID: UInt32 = 1
        var pending: [UInt32: Pending] = [:]
        var hellos = HelloState()

        mutating func failPending(_ reason: String) {
            for (id, state) in pending {
                if case .waiting = state {
                    pending[id] = .done(.failure(ECIError(.channelDisconnected, "control request \(id) was not answered: \(reason)")))
                }
            }
        }
    }

    /// - Parameters:
    ///   - name: our name in the hello (e.g. "ecibuild").
    ///   - garbageLimit: bytes without a valid frame after which the session is dropped.
    public init(name: String, garbageLimit: Int = PortConnection.defaultGarbageLimit, logger: Logger) {
        self.hello = ChannelHello(name: name)
        self.garbageLimit = garbageLimit
        self.logger = logger
    }

    /// Whether a session is running.
    public var isConnected: Bool {
        shared.withLock { $0.port != nil }
    }

    /// Runs one session over `fd` (taking ownership of it), blocking until the peer
    /// disconnects, the port fails, the peer floods garbage, or `stop()`/`disconnect()`.
    /// - Throws: `.channelProtocol` (garbage flood), `.system` (read failure),
    ///   `.invalidState` if a session already runs. A plain disconnect returns normally.
    public func run(port fd: Int32) throws {
        let connection = try PortConnection(fd: fd, label: "control", garbageLimit: garbageLimit, logger: logger)
        defer { connection.close() }
        try shared.runFrames(on: connection, endpoint: "control client", hello: hello, end: { $0.failPending("the control port disconnected") }) {
            handle($0, on: connection)
        }
    }

    /// Ends the current session and makes `run` return at once from now on.
    public func stop() {
        shared.stopSessions()?.interrupt()
    }

    /// Ends the current session (in-flight requests fail); `run` may be called again.
    public func disconnect() {
        shared.currentSession?.interrupt()
    }

    /// The guest's hello in the current session, waiting up to `timeout` for a session and the
    /// hello (the guest announces itself when its session starts and answers ours).
    /// - Throws: `.channelTimeout` when none arrives in time.
    public func hello(timeout: Duration) throws -> ChannelHello {
        let outcome = shared.wait(timeout: timeout) { state -> Result<ChannelHello, ECIError>? in
            if state.port != nil, let peer = state.hellos.peer { return .success(peer) }
            if state.stopped { return .failure(ECIError(.channelDisconnected, "the control client is stopped")) }
            return nil
        }
        guard let outcome else { throw ECIError(.channelTimeout, "no hello from the guest within \(timeout)") }
        return try outcome.get()
    }

    /// Sends `payload` as a request and waits for its response. Waits up to `timeout` in all,
    /// including for a session if none runs yet.
    /// - Throws: `.invalidArgument` if the payload exceeds `Frame.maxPayload`,
    ///   `.channelTimeout`, `.channelDisconnected` (the session ended while waiting; the
    ///   request may or may not have run), `.channelRefused` (the guest refused it, with its reason).
    public func request(_ payload: [UInt8], timeout: Duration) throws -> [UInt8] {
        guard payload.count <= Frame.maxPayload else {
            throw ECIError(.invalidArgument, "a control request of \(payload.count) bytes exceeds the \(Frame.maxPayload)-byte limit")
        }
        let deadline = ContinuousClock.now + timeout
        // A session, and an id registered in it.
        let registered = shared.wait(timeout: timeout) { state -> Result<(UInt32, PortConnection), ECIError>? in
            if let connection = state.port {
                let id = state.nextID
                state.nextID = state.nextID == UInt32.max ? 1 : state.nextID + 1
                state.pending[id] = .waiting
                return .success((id, connection))
            }
            if state.stopped { return .failure(ECIError(.channelDisconnected, "the control port is not connected")) }
            return nil
        }
        guard let registered else { throw ECIError(.channelTimeout, "the control port is not connected") }
        let (id, connection) = try registered.get()

        do {
            try connection.send(Frame(kind: .request, stream: id, payload: payload))
        } catch {
            shared.withLock { $0.pending[id] = nil }
            throw ECIError(.channelDisconnected, "sending control request \(id) failed", cause: error)
        }

        let answered = shared.wait(timeout: max(deadline - ContinuousClock.now, .zero)) { state -> Result<[UInt8], ECIError>? in
            guard case .done(let result)? = state.pending[id] else { return nil }
            state.pending[id] = nil
            return result
        }
        guard let answered else {
            shared.withLock { $0.pending[id] = nil }  // a late response is dropped
            throw ECIError(.channelTimeout, "control request \(id) got no response within \(timeout)")
        }
        return try answered.get()
    }

    private func handle(_ frame: Frame, on connection: PortConnection) {
        switch frame.kind {
        case .hello:
            let outcome = shared.withLock { state -> HelloState.Outcome? in
                let outcome = state.hellos.receive(frame)
                // The guest restarted: what was in flight will never be answered.
                if let outcome, outcome.restarted { state.failPending("the guest restarted") }
                return outcome
            }
            guard let outcome else { return }
            if outcome.answer || outcome.restarted {
                logger.info("control peer \(outcome.restarted ? "restarted" : "connected")", metadata: ["peer": "\(outcome.hello)"])
            }
            if outcome.answer { try? connection.send(hello.frame(answering: true)) }
        case .response:
            shared.withLock { state in
                if case .waiting? = state.pending[frame.stream] { state.pending[frame.stream] = .done(.success(frame.payload)) }
            }
        case .reset:
            let reason = String(decoding: frame.payload, as: UTF8.self)
            shared.withLock { state in
                if case .waiting? = state.pending[frame.stream] {
                    state.pending[frame.stream] = .done(.failure(ECIError(.channelRefused, "the guest refused control request \(frame.stream): \(reason)")))
                }
            }
        default:
            logger.debug("ignoring a non-control frame on the control port", metadata: ["kind": "\(frame.kind)"])
        }
    }
}

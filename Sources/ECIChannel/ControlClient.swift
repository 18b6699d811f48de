import ECICore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The host's end of the control port: sends requests (opaque payloads, JSON by convention)
/// and matches each response to its request by id.
///
/// `run(port:)` reads the port on the caller's thread; `hello(timeout:)` and
/// `request(_:timeout:)` may be called from any thread, concurrently. When the session ends
/// (disconnect, garbage flood, `stop()`) or the guest restarts (a second hello announcement),
/// every request in flight fails with `.channelDisconnected`; requests are never resent,
/// because the guest may already have acted on them. Call `run(port:)` again to reconnect.
///
/// Locking: `lock` guards `port`, `stopped`, `nextID`, `pending` and `hellos`; it is released
/// while writing the port (`PortConnection` serialises writers).
public final class ControlClient: @unchecked Sendable {
    /// The hello this side announces.
    public let hello: ChannelHello
    private let garbageLimit: Int
    private let logger: Logger

    private enum Pending {
        case waiting
        case done(Result<[UInt8], ECIError>)
    }

    private let lock = NSCondition()
    private var port: PortConnection?
    private var stopped = false
    private var nextID: UInt32 = 1
    private var pending: [UInt32: Pending] = [:]
    private var hellos = HelloState()

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
        lock.lock()
        defer { lock.unlock() }
        return port != nil
    }

    /// Runs one session over `fd` (taking ownership of it), blocking until the peer
    /// disconnects, the port fails, the peer floods garbage, or `stop()`/`disconnect()`.
    /// - Throws: `.channelProtocol` (garbage flood), `.system` (read failure),
    ///   `.invalidState` if a session already runs. A plain disconnect returns normally.
    public func run(port fd: Int32) throws {
        let connection = try PortConnection(fd: fd, label: "control", garbageLimit: garbageLimit, logger: logger)
        lock.lock()
        if stopped || port != nil {
            let running = port != nil
            lock.unlock()
            connection.close()
            if running { throw ECIError(.invalidState, "the control client already runs a session") }
            return
        }
        port = connection
        hellos = HelloState()
        lock.broadcast()
        lock.unlock()
        defer {
            lock.lock()
            port = nil
            failPendingLocked("the control port disconnected")
            lock.unlock()
            connection.close()
        }
        try? connection.send(hello.frame(answering: false))
        while let frames = try connection.receive() {
            for frame in frames { handle(frame, on: connection) }
        }
    }

    /// Ends the current session and makes `run` return at once from now on.
    public func stop() {
        lock.lock()
        stopped = true
        let current = port
        lock.broadcast()
        lock.unlock()
        current?.interrupt()
    }

    /// Ends the current session (in-flight requests fail); `run` may be called again.
    public func disconnect() {
        lock.lock()
        let current = port
        lock.unlock()
        current?.interrupt()
    }

    /// The guest's hello in the current session, waiting up to `timeout` for a session and the
    /// hello (the guest announces itself when its session starts and answers ours).
    /// - Throws: `.channelTimeout` when none arrives in time.
    public func hello(timeout: Duration) throws -> ChannelHello {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        lock.lock()
        defer { lock.unlock() }
        while true {
            if port != nil, let peer = hellos.peer { return peer }
            if stopped { throw ECIError(.channelDisconnected, "the control client is stopped") }
            if !lock.wait(until: deadline) {
                throw ECIError(.channelTimeout, "no hello from the guest within \(timeout)")
            }
        }
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
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        lock.lock()
        while port == nil {
            if stopped || !lock.wait(until: deadline) {
                lock.unlock()
                throw ECIError(stopped ? .channelDisconnected : .channelTimeout, "the control port is not connected")
            }
        }
        guard let connection = port else {
            lock.unlock()
            throw ECIError(.channelDisconnected, "the control port is not connected")
        }
        let id = nextID
        nextID = nextID == UInt32.max ? 1 : nextID + 1
        pending[id] = .waiting
        lock.unlock()

        do {
            try connection.send(Frame(kind: .request, stream: id, payload: payload))
        } catch {
            lock.lock()
            pending[id] = nil
            lock.unlock()
            throw ECIError(.channelDisconnected, "sending control request \(id) failed", cause: error)
        }

        lock.lock()
        defer { lock.unlock() }
        while true {
            if case .done(let result)? = pending[id] {
                pending[id] = nil
                return try result.get()
            }
            if !lock.wait(until: deadline) {
                pending[id] = nil  // a late response is dropped
                throw ECIError(.channelTimeout, "control request \(id) got no response within \(timeout)")
            }
        }
    }

    private func handle(_ frame: Frame, on connection: PortConnection) {
        lock.lock()
        switch frame.kind {
        case .hello:
            let outcome = hellos.receive(frame)
            lock.broadcast()
            if let outcome, outcome.restarted {
                // The guest restarted: what was in flight will never be answered.
                failPendingLocked("the guest restarted")
            }
            lock.unlock()
            if let outcome {
                if outcome.answer || outcome.restarted {
                    logger.info("control peer \(outcome.restarted ? "restarted" : "connected")", metadata: ["peer": "\(outcome.hello)"])
                }
                if outcome.answer { try? connection.send(hello.frame(answering: true)) }
            }
            return
        case .response:
            if case .waiting? = pending[frame.stream] {
                pending[frame.stream] = .done(.success(frame.payload))
                lock.broadcast()
            }
        case .reset:
            if case .waiting? = pending[frame.stream] {
                let reason = String(decoding: frame.payload, as: UTF8.self)
                pending[frame.stream] = .done(.failure(ECIError(.channelRefused, "the guest refused control request \(frame.stream): \(reason)")))
                lock.broadcast()
            }
        default:
            logger.debug("ignoring a non-control frame on the control port", metadata: ["kind": "\(frame.kind)"])
        }
        lock.unlock()
    }

    private func failPendingLocked(_ reason: String) {
        for (id, state) in pending {
            if case .waiting = state {
                pending[id] = .done(.failure(ECIError(.channelDisconnected, "control request \(id) was not answered: \(reason)")))
            }
        }
        lock.broadcast()
    }
}

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

/// The guest's end of the control port: answers each `request` frame (the stream field is the
/// request id) with a `response` frame carrying the same id. Payloads are opaque bytes (JSON
/// chosen by the callers). A request that cannot be answered (the response exceeds
/// `Frame.maxPayload`, too many requests in flight) gets a `reset` frame with the same id and
/// the reason, which the client raises as `.channelRefused`.
///
/// Like the tunnel's guest side it survives disconnects, reconnects and garbage: `serve`
/// reopens the port after each session until `stop()`.
///
/// Threads: the caller's thread reads the port; up to `maxConcurrentRequests` worker threads
/// run the handler, so a slow request does not stall the others or the reading. Requests
/// beyond that wait in a queue (bounded: past `maxQueuedRequests` they are refused as busy).
/// Shared state is `shared`, a `WaitableState` rather than a `Mutex` because `serve` waits on it
/// between sessions (a pause that `stop()` cuts short); port writes happen outside it
/// (`PortConnection` serialises them).
public final class ControlServer: Sendable {
    /// Answers one request payload with a response payload. Runs on its own thread.
    public typealias Handler = @Sendable (_ request: [UInt8]) -> [UInt8]

    /// The hello this side announces.
    public let hello: ChannelHello
    private let handler: Handler
    private let garbageLimit: Int
    private let backoff: Duration
    private let maxConcurrentRequests: Int
    private let logger: Logger

    private let shared = WaitableState(State())
    private let maxQueuedRequests = 256

    private struct State: ControlEndpointState {
        var sessions = SessionSlot<PortConnection>()
        var port: PortConnection? { sessions.current }
        var workers = 0
        var queue: [Job] = []
        var hellos = HelloState()
    }

    /// A request waiting for a worker, with the session it came from.
    private struct Job: Sendable {
        var id: UInt32
        var payload: [UInt8]
        var connection: PortConnection
    }

    /// - Parameters:
    ///   - name: our name in the hello (e.g. "eci-agent").
    ///   - garbageLimit: bytes without a valid frame after which the session is dropped.
    ///   - backoff: the pause after a disconnect before `serve` reopens the port.
    ///   - maxConcurrentRequests: requests handled at once; more wait their turn.
    ///   - handler: turns a request payload into the response payload.
    public init(
        name: String, garbageLimit: Int = PortConnection.defaultGarbageLimit, backoff: Duration = .milliseconds(200),
        maxConcurrentRequests: Int = 8, logger: Logger, handler: @escaping Handler
    ) {
        self.hello = ChannelHello(name: name)
        self.handler = handler
        self.garbageLimit = garbageLimit
        self.backoff = backoff
        self.maxConcurrentRequests = maxConcurrentRequests
        self.logger = logger
    }

    /// The peer's hello in the current session, once received.
    public var peer: ChannelHello? {
        shared.withLock { $0.port == nil ? nil : $0.hellos.peer }
    }

    /// Opens the port, serves it, and after every disconnect waits `backoff` and opens it
    /// again, until `stop()`. `openPort` returns a fresh fd each time (closed when the session
    /// ends); when it throws, the wait grows up to ten times `backoff`.
    public func serve(openPort: () throws -> Int32) {
        shared.serve(port: "control", backoff: backoff, logger: logger, openPort: openPort) { try run(port: $0) }
    }

    /// Serves one session over `fd` (taking ownership of it) until the peer disconnects, the
    /// port fails, the peer floods garbage, or `stop()`.
    /// - Throws: `.channelProtocol` (garbage flood), `.system` (read failure),
    ///   `.invalidState` if a session already runs. A plain disconnect returns normally.
    public func run(port fd: Int32) throws {
        let connection = try PortConnection(fd: fd, label: "control", garbageLimit: garbageLimit, logger: logger)
        // Handlers still running find the port closed and drop their responses.
        defer { connection.close() }
        try shared.runFrames(on: connection, endpoint: "control server", hello: hello) { handle($0, on: connection) }
    }

    /// Ends the current session and makes `serve` and `run` return; stays stopped.
    public func stop() {
        shared.stopSessions()?.interrupt()
    }

    /// Ends the current session without stopping (`serve` reopens the port).
    public func disconnect() {
        shared.currentSession?.interrupt()
    }

    private func handle(_ frame: Frame, on connection: PortConnection) {
        switch frame.kind {
        case .hello:
            guard let outcome = shared.withLock({ $0.hellos.receive(frame) }) else { return }
            if outcome.restarted {
                logger.info("control peer restarted", metadata: ["peer": "\(outcome.hello)"])
            } else if outcome.answer {
                logger.info("control peer connected", metadata: ["peer": "\(outcome.hello)"])
            }
            if outcome.answer { try? connection.send(hello.frame(answering: true)) }
        case .request:
            let job = Job(id: frame.stream, payload: frame.payload, connection: connection)
            let admission = shared.withLock { state -> Admission in
                if state.workers < maxConcurrentRequests {
                    state.workers += 1
                    return .newWorker
                }
                guard state.queue.count < maxQueuedRequests else { return .busy }
                state.queue.append(job)
                return .queued
            }
            switch admission {
            case .newWorker:
                do {
                    try DetachedThread.start("eci-control", stackSize: nil) { [self] in work(job) }
                } catch {
                    shared.withLock { $0.workers -= 1 }
                    refuse(job.id, "the control server could not start a worker: \(error)", on: connection)
                }
            case .queued: break
            case .busy: refuse(job.id, "the control server is busy (\(maxQueuedRequests) requests queued)", on: connection)
            }
        default:
            logger.debug("ignoring a non-control frame on the control port", metadata: ["kind": "\(frame.kind)"])
        }
    }

    private enum Admission {
        case newWorker
        case queued
        case busy
    }

    /// A worker: answers `first`, then queued requests until none is left.
    private func work(_ first: Job) {
        var job = first
        while true {
            answer(job)
            let next = shared.withLock { state -> Job? in
                // Requests from a session that has ended are dropped unanswered.
                let port = state.port
                state.queue.removeAll { $0.connection !== port }
                guard !state.queue.isEmpty else {
                    state.workers -= 1
                    return nil
                }
                return state.queue.removeFirst()
            }
            guard let next else { return }
            job = next
        }
    }

    private func answer(_ job: Job) {
        let response = handler(job.payload)
        guard response.count <= Frame.maxPayload else {
            logger.error("control response too large", metadata: ["request": "\(job.id)", "bytes": "\(response.count)"])
            refuse(job.id, "the response has \(response.count) bytes, over the \(Frame.maxPayload)-byte frame limit", on: job.connection)
            return
        }
        do {
            try job.connection.send(Frame(kind: .response, stream: job.id, payload: response))
        } catch {
            logger.debug("control response dropped: the session ended", metadata: ["request": "\(job.id)"])
        }
    }

    private func refuse(_ id: UInt32, _ reason: String, on connection: PortConnection) {
        try? connection.send(Frame(kind: .reset, stream: id, payload: Array(reason.utf8)))
    }
}

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

/// One local connection carried as a tunnel stream. Every field is guarded by the session's
/// mutex; the two conditions let the session wake exactly this stream's threads.
final class TunnelStream: @unchecked Sendable {
    let id: UInt32
    /// The local connection; -1 while the guest's connector is still connecting.
    var fd: Int32 = -1
    var isSocket = true
    /// Received bytes not yet written to `fd` (bounded by the window the peer got).
    var inbound: [[UInt8]] = []
    /// The peer sent closeWrite: after `inbound` drains, shut our fd's write side.
    var remoteWriteClosed = false
    /// We sent closeWrite (the local side reached end of file).
    var localWriteClosed = false
    /// Reset (by either side, a local error or the session's end): threads stop, data is dropped.
    var aborted = false
    /// Threads still using `fd`; the last one closes it.
    var threads = 0
    /// Signalled when credit arrives (the uplink thread waits for it).
    let creditChanged = PthreadConditionVariable()
    /// Signalled when data or a half-close arrives (the downlink thread waits for it).
    let inboundChanged = PthreadConditionVariable()

    init(id: UInt32) { self.id = id }

    /// Both directions finished cleanly: the table forgetting the stream is not a reset.
    var closedBothWays: Bool { remoteWriteClosed && localWriteClosed }
}

/// One connection of a `TunnelEndpoint` to its port: the reader (the thread in `run()`), a
/// sender thread that alone writes the port, and two threads per stream.
///
/// Locking: `mutex` guards `table`, `streams`, `outbound`, `ended`, `senderDone`, `peer`,
/// `announcements` and every `TunnelStream`'s fields. Nobody writes to the port or to a local
/// fd while holding it, so a full socket (a peer or a local client that does not read) blocks
/// only the thread writing to it: the reader keeps draining the port, other streams go on.
/// Frames are queued under the mutex, so the wire order is the order of the table's state
/// changes (a stream's data never follows its reset). The queue is bounded by the windows.
final class TunnelSession: @unchecked Sendable {
    let port: PortConnection
    let isHost: Bool
    let hello: ChannelHello
    let connector: TunnelEndpoint.Connector?
    let logger: Logger

    let mutex = PthreadMutex()
    private let outboundChanged = PthreadConditionVariable()
    private let drained = PthreadConditionVariable()
    private var table: StreamTable
    private var streams: [UInt32: TunnelStream] = [:]
    private var outbound: [Frame] = []
    private var ended = false
    private var senderDone = false
    private var hellos = HelloState()
    /// Whether any valid frame arrived (to tell a real session from a port with no host).
    private var receivedFrames = false

    init(port: PortConnection, isHost: Bool, hello: ChannelHello, window: UInt32, connector: TunnelEndpoint.Connector?, logger: Logger) {
        self.port = port
        self.isHost = isHost
        self.hello = hello
        self.connector = connector
        self.logger = logger
        self.table = StreamTable(initialWindow: window)
    }

    var streamCount: Int { mutex.withLock { streams.count } }
    var currentPeer: ChannelHello? { mutex.withLock { hellos.peer } }
    var hadFrames: Bool { mutex.withLock { receivedFrames } }

    /// Per-stream state, for diagnosing a stuck stream.
    var debugState: String {
        mutex.withLock {
            streams.keys.sorted().map { id -> String in
                guard let s = streams[id] else { return "" }
                return "\(id): credit \(table.sendCredit(id)) inbound \(s.inbound.map(\.count).reduce(0, +)) rwc \(s.remoteWriteClosed) lwc \(s.localWriteClosed) aborted \(s.aborted) threads \(s.threads)"
            }.joined(separator: "\n") + "\noutbound \(outbound.count)"
        }
    }

    // MARK: The session

    /// Announces ourselves, then reads the port until it closes, fails or is interrupted. On
    /// return every stream is reset, its threads have ended and its fd is closed, and the port
    /// is closed.
    func run() throws {
        do {
            try DetachedThread.start("eci-tunnel-send") { [self] in sendLoop() }
        } catch {
            // No sender, no session: end it as if the port had closed.
            mutex.withLock { senderDone = true }
            tearDown()
            throw error
        }
        enqueue([hello.frame(answering: false)])
        defer { tearDown() }
        while let frames = try port.receive() {
            for frame in frames { handle(frame) }
        }
    }

    private func tearDown() {
        mutex.lock()
        ended = true
        _ = table.disconnect()
        for stream in streams.values { abortLocked(stream) }
        outboundChanged.broadcast()
        mutex.unlock()
        port.interrupt()
        mutex.lock()
        while !senderDone || !streams.isEmpty { drained.wait(mutex) }
        mutex.unlock()
        port.close()
    }

    private func sendLoop() {
        while true {
            mutex.lock()
            while outbound.isEmpty && !ended { outboundChanged.wait(mutex) }
            if ended {
                mutex.unlock()
                break
            }
            // Up to about 1 MiB per write: one syscall for many small frames, without
            // encoding every stream's whole window into one buffer.
            var count = 0
            var bytes = 0
            while count < outbound.count && (count == 0 || bytes < 1 << 20) {
                bytes += outbound[count].payload.count + Frame.headerSize + Frame.trailerSize
                count += 1
            }
            let batch = Array(outbound[0..<count])
            outbound.removeFirst(count)
            mutex.unlock()
            do {
                try port.send(batch)
            } catch {
                logger.info("tunnel port write failed; ending the session", metadata: ["port": "\(port.label)", "error": "\(error)"])
                port.interrupt()
                break
            }
        }
        mutex.withLock {
            senderDone = true
            drained.broadcast()
        }
    }

    /// Queues frames for the sender thread; the mutex must be held.
    private func enqueueLocked(_ frames: [Frame]) {
        guard !frames.isEmpty, !ended else { return }
        outbound += frames
        outboundChanged.signal()
    }

    private func enqueue(_ frames: [Frame]) {
        mutex.withLock { enqueueLocked(frames) }
    }

    // MARK: Received frames

    private func handle(_ frame: Frame) {
        mutex.lock()
        defer { mutex.unlock() }
        receivedFrames = true
        switch frame.kind {
        case .hello:
            receivedHelloLocked(frame)
        case .request, .response:
            logger.debug("ignoring a control frame on the tunnel port", metadata: ["kind": "\(frame.kind)"])
        case .open where isHost:
            // Only the host opens streams; a guest that tries gets a reset, and a stream it
            // names that we opened is torn down (the two sides disagree about it).
            if let stream = streams[frame.stream] { abortLocked(stream) }
            _ = table.reset(frame.stream, reason: "")
            enqueueLocked([Frame(kind: .reset, stream: frame.stream, payload: Array("only the host opens streams".utf8))])
        default:
            if frame.kind == .open, let old = streams[frame.stream], old.closedBothWays || old.aborted {
                // The peer reopened an id whose previous stream is still draining locally.
                enqueueLocked([Frame(kind: .reset, stream: frame.stream, payload: Array("stream \(frame.stream) is still in use".utf8))])
                return
            }
            let (events, replies) = table.receive(frame)
            enqueueLocked(replies)
            for event in events { applyLocked(event) }
            // The table reports no event for credit; wake the stream's uplink ourselves.
            if frame.kind == .window { streams[frame.stream]?.creditChanged.signal() }
        }
    }

    private func receivedHelloLocked(_ frame: Frame) {
        guard let outcome = hellos.receive(frame) else { return }
        if outcome.restarted {
            // The peer restarted and knows none of our streams.
            logger.info("tunnel peer restarted; resetting every stream", metadata: ["peer": "\(outcome.hello)", "streams": "\(streams.count)"])
            // Reset frames too: a stream we opened after the peer restarted but before its
            // announcement arrived is known to the new peer, which must drop it as well.
            for id in table.openStreams {
                if let reset = table.reset(id, reason: "the peer restarted") { enqueueLocked([reset]) }
            }
            for stream in streams.values { abortLocked(stream) }
        } else if outcome.answer {
            logger.info("tunnel peer connected", metadata: ["peer": "\(outcome.hello)", "port": "\(port.label)"])
        }
        if outcome.answer { enqueueLocked([hello.frame(answering: true)]) }
    }

    private func applyLocked(_ event: StreamTable.Event) {
        switch event {
        case .opened(let id):
            guard !isHost else { return }
            let stream = TunnelStream(id: id)
            stream.threads = 1
            streams[id] = stream
            startThreadLocked("eci-tunnel-\(id)-up", for: stream) { [self] in connectAndPump(stream) }
        case .data(let id, let bytes):
            guard let stream = streams[id], !stream.aborted else { return }
            stream.inbound.append(bytes)
            stream.inboundChanged.signal()
        case .readClosed(let id):
            guard let stream = streams[id] else { return }
            stream.remoteWriteClosed = true
            stream.inboundChanged.signal()
        case .reset(let id, let reason):
            guard let stream = streams[id], !stream.closedBothWays else { return }
            logger.debug("tunnel stream reset by the peer", metadata: ["stream": "\(id)", "reason": "\(reason)"])
            abortLocked(stream)
        }
    }

    // MARK: Streams

    /// Host: carries the connected client `fd` as stream `id`. Takes ownership of `fd`.
    func attach(_ fd: Int32, id: UInt32) throws {
        mutex.lock()
        defer { mutex.unlock() }
        guard !ended, let open = table.open(id) else {
            Glibc.close(fd)
            throw ECIError(.channelDisconnected, "the tunnel is not connected")
        }
        let stream = TunnelStream(id: id)
        stream.fd = fd
        stream.isSocket = FDIO.isSocket(fd)
        FDIO.makeBlocking(fd)
        stream.threads = 2
        streams[id] = stream
        enqueueLocked([open])
        startThreadLocked("eci-tunnel-\(id)-up", for: stream) { [self] in uplink(stream) }
        startThreadLocked("eci-tunnel-\(id)-down", for: stream) { [self] in downlink(stream) }
    }

    /// Guest: connects the stream's local side, then becomes its uplink thread.
    private func connectAndPump(_ stream: TunnelStream) {
        guard let connector, let fd = connector(stream.id) else {
            mutex.withLock {
                if let reset = table.reset(stream.id, reason: "the guest could not connect the stream") { enqueueLocked([reset]) }
                abortLocked(stream)
            }
            logger.info("tunnel stream refused: the connector failed", metadata: ["stream": "\(stream.id)"])
            finished(stream)
            return
        }
        FDIO.makeBlocking(fd)
        let go = mutex.withLock { () -> Bool in
            stream.fd = fd
            stream.isSocket = FDIO.isSocket(fd)
            // Reset while connecting: `finished` closes the fd.
            guard !stream.aborted else { return false }
            stream.threads += 1
            return true
        }
        guard go else {
            finished(stream)
            return
        }
        // Without its downlink the stream is reset, and the uplink below ends at once.
        mutex.withLock { startThreadLocked("eci-tunnel-\(stream.id)-down", for: stream) { [self] in downlink(stream) } }
        uplink(stream)
    }

    /// Local → tunnel: reads only as much as the peer's window allows, so a peer that stops
    /// reading this stream stops this thread and nothing else.
    private func uplink(_ stream: TunnelStream) {
        defer { finished(stream) }
        while true {
            mutex.lock()
            while !stream.aborted && table.sendCredit(stream.id) == 0 { stream.creditChanged.wait(mutex) }
            let credit = Int(table.sendCredit(stream.id))
            let fd = stream.fd
            let aborted = stream.aborted
            mutex.unlock()
            if aborted { return }
            switch FDIO.read(fd, max: min(credit, Frame.maxPayload)) {
            case .success(let bytes) where bytes.isEmpty:
                mutex.withLock {
                    guard !stream.aborted else { return }
                    stream.localWriteClosed = true
                    if let close = table.closeWrite(stream.id) { enqueueLocked([close]) }
                }
                return
            case .success(let bytes):
                let complete = mutex.withLock { () -> Bool in
                    guard !stream.aborted else { return false }
                    // Only this thread spends credit, so the whole read fits.
                    let (frames, sent) = table.send(stream.id, bytes)
                    enqueueLocked(frames)
                    return sent == bytes.count
                }
                if !complete {
                    localFailure(stream, "the stream lost its credit")
                    return
                }
            case .failure(let error):
                localFailure(stream, "\(error)")
                return
            }
        }
    }

    /// Tunnel → local: writes received bytes in order, granting the peer credit for each batch
    /// once it is written (so the peer's window bounds what we hold), then passes on the
    /// peer's half-close.
    private func downlink(_ stream: TunnelStream) {
        defer { finished(stream) }
        while true {
            mutex.lock()
            while stream.inbound.isEmpty && !stream.remoteWriteClosed && !stream.aborted { stream.inboundChanged.wait(mutex) }
            if stream.aborted {
                mutex.unlock()
                return
            }
            if stream.inbound.isEmpty {
                let fd = stream.fd
                mutex.unlock()
                _ = shutdown(fd, Int32(SHUT_WR))
                return
            }
            // Take everything queued at once: one write and one credit grant per batch, however
            // small the peer's frames were.
            let chunks = stream.inbound
            stream.inbound = []
            let fd = stream.fd
            let socket = stream.isSocket
            mutex.unlock()
            var written = 0
            for chunk in chunks {
                if let error = FDIO.writeAll(fd, chunk, socket: socket) {
                    localFailure(stream, "\(error)")
                    return
                }
                written += chunk.count
            }
            mutex.withLock {
                if let credit = table.consumed(stream.id, written) { enqueueLocked([credit]) }
            }
        }
    }

    /// A local read or write failed: reset the stream on both sides (unless it already was).
    private func localFailure(_ stream: TunnelStream, _ reason: String) {
        mutex.withLock {
            guard !stream.aborted else { return }
            logger.debug("tunnel stream failed locally", metadata: ["stream": "\(stream.id)", "reason": "\(reason)"])
            if let reset = table.reset(stream.id, reason: reason) { enqueueLocked([reset]) }
            abortLocked(stream)
        }
    }

    /// Marks the stream reset and unblocks its threads: `shutdown` makes a blocked read return
    /// 0 and a blocked write fail; the fd itself stays open until the last thread is done, so
    /// its number cannot be reused under a thread still using it.
    private func abortLocked(_ stream: TunnelStream) {
        guard !stream.aborted else { return }
        stream.aborted = true
        stream.inbound = []
        if stream.fd >= 0 { _ = shutdown(stream.fd, Int32(SHUT_RDWR)) }
        stream.creditChanged.broadcast()
        stream.inboundChanged.broadcast()
    }

    /// Starts one of `stream`'s threads (counted in `stream.threads` already). When no thread
    /// can be started, the stream is reset on both sides and the thread counted as finished.
    private func startThreadLocked(_ name: String, for stream: TunnelStream, _ body: @escaping @Sendable () -> Void) {
        do {
            try DetachedThread.start(name, body)
        } catch {
            logger.warning("tunnel stream reset: no thread for it", metadata: ["stream": "\(stream.id)", "error": "\(error)"])
            if !stream.aborted, let reset = table.reset(stream.id, reason: "no thread for the stream") { enqueueLocked([reset]) }
            abortLocked(stream)
            finishedLocked(stream)
        }
    }

    /// One of the stream's threads ended; the last one releases the stream.
    private func finished(_ stream: TunnelStream) {
        mutex.withLock { finishedLocked(stream) }
    }

    private func finishedLocked(_ stream: TunnelStream) {
        stream.threads -= 1
        guard stream.threads == 0 else { return }
        // Both directions done (or reset): forget it everywhere; a reset is a no-op if the
        // table already dropped it.
        if let reset = table.reset(stream.id, reason: "released") { enqueueLocked([reset]) }
        if stream.fd >= 0 { Glibc.close(stream.fd) }
        stream.fd = -1
        streams[stream.id] = nil
        if streams.isEmpty { drained.broadcast() }
    }
}

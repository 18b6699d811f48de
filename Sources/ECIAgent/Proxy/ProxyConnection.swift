import ECICore
import ECIIO
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// One client connection through `APIProxy`: exactly one request, read and vetted, then
/// forwarded to a fresh engine connection; the response (or, after `101`, the hijacked stream)
/// is piped back.
///
/// Two threads at most: the connection's own (client → engine) and the response pump
/// (engine → client). The sockets are closed when both are done; `abort()` (from any thread)
/// shuts both sockets down, which wakes and ends both threads.
final class ProxyConnection: Sendable {
    /// The proxy's limits and the engine's socket.
    struct Settings: Sendable {
        var upstreamPath: String
        var maximumVettedBodySize: Int
        var headTimeout: Double
        var lingerTimeout: Double
    }

    private static let bufferSize = 64 * 1024
    /// How much of the engine's answer to an upgrade request is searched for its status line.
    private static let statusLineLimit = 8 * 1024

    private let client: UnixSocket
    private let settings: Settings
    private let vetter: any RequestVetter
    private let baseLogger: Logger
    private let onFinish: @Sendable () -> Void
    /// The proxy's number for this connection (in its log metadata too).
    let id: Int

    /// What the connection's two threads and `abort()` share.
    private struct Shared: Sendable {
        var upstream: UnixSocket?
        /// Threads still running; the last one closes the sockets.
        var threads = 1
        var aborted = false
        /// For upgrade requests: nil until the engine's status line is seen, then whether it was 101.
        var upgraded: Bool?
    }

    private let state = WaitableState(Shared())

    init(client: UnixSocket, settings: Settings, vetter: any RequestVetter, logger: Logger, id: Int, onFinish: @escaping @Sendable () -> Void) {
        self.id = id
        self.client = client
        self.settings = settings
        self.vetter = vetter
        self.baseLogger = logger
        self.onFinish = onFinish
    }

    // MARK: Lifecycle

    /// Shuts both sockets down: every thread of this connection wakes up and ends.
    func abort() {
        let up = state.withLock { shared in
            shared.aborted = true
            if shared.upgraded == nil { shared.upgraded = false }
            return shared.upstream
        }
        client.shutdown(Int32(SHUT_RDWR))
        up?.shutdown(Int32(SHUT_RDWR))
    }

    /// Called by each thread as it ends; the last one closes the sockets.
    private func threadDone() {
        let (last, up) = state.withLock { shared in
            shared.threads -= 1
            return (shared.threads == 0, shared.upstream)
        }
        guard last else { return }
        client.close()
        up?.close()
        onFinish()
    }

    private func decideUpgrade(_ value: Bool) {
        state.withLock { shared in
            if shared.upgraded == nil { shared.upgraded = value }
        }
    }

    private func waitForUpgradeDecision() -> Bool {
        state.wait { shared in shared.upgraded.map { $0 && !shared.aborted } } ?? false
    }

    // MARK: The client side

    /// Serves the connection; runs on the connection's thread.
    func run() {
        defer { threadDone() }
        var logger = baseLogger
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        client.setReceiveTimeout(settings.headTimeout)

        // 1. The head.
        var head: HTTPRequestHead
        var leftover: [UInt8]
        do {
            var pending: [UInt8] = []
            let deadline = ContinuousClock.now + .seconds(settings.headTimeout)
            while true {
                // The timeout bounds the whole head, not just each read (a byte every few
                // seconds does not hold a connection forever).
                guard ContinuousClock.now < deadline else { throw ECIError(.timedOut, "request head not received within \(settings.headTimeout) s") }
                let n = try client.read(into: &buffer)
                if n == 0 {
                    if !pending.isEmpty { logger.debug("client closed the connection within the request head") }
                    return
                }
                pending.append(contentsOf: buffer[0..<n])
                if let end = try HTTPRequestHead.endOfHead(in: pending) {
                    head = try HTTPRequestHead(parsing: pending[0..<end])
                    leftover = Array(pending[end...])
                    break
                }
            }
        } catch let error as ECIError {
            failBeforeForwarding(error, logger: logger)
            return
        } catch {
            return
        }
        logger[metadataKey: "method"] = "\(head.method)"
        logger[metadataKey: "path"] = "\(head.path)"

        // 2. The body, when the vetter reads it, and the verdict.
        let framing: BodyFraming
        var decoder: BodyDecoder
        var vettedBody: [UInt8]?
        do {
            framing = try head.bodyFraming()
            decoder = BodyDecoder(framing)
            if vetter.wantsBody(head) {
                let limit = settings.maximumVettedBodySize
                if case .contentLength(let length) = framing, length > limit {
                    throw ECIError(.httpBodyTooLarge, "request body larger than \(limit) bytes")
                }
                if framing != .none, head.listContains("Expect", token: "100-continue") {
                    try client.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
                var body: [UInt8] = []
                let used = try decoder.decode(leftover, into: &body, limit: limit)
                leftover.removeFirst(used)
                while !decoder.isComplete {
                    let n = try client.read(into: &buffer)
                    if n == 0 {
                        logger.debug("client closed the connection within the request body")
                        return
                    }
                    let used = try decoder.decode(buffer[0..<n], into: &body, limit: limit)
                    leftover = Array(buffer[used..<n])
                }
                vettedBody = body
            }
        } catch let error as ECIError {
            failBeforeForwarding(error, logger: logger)
            return
        } catch {
            return
        }

        let verdict = vetter.vet(head, body: vettedBody)
        guard case .forward(let vettedHead, let replacementBody) = verdict else {
            if case .refuse(let status, let message) = verdict {
                logger.info("request refused", metadata: ["verdict": "refuse", "status": "\(status)", "reason": "\(message)"])
                respondAndClose(status: status, message: message)
            }
            return
        }

        // 3. The head to forward: the vetter's, with framing and Connection set by the proxy.
        var outgoing = vettedHead
        do {
            try outgoing.validate()
        } catch {
            logger.error("the API filter produced an invalid request; refused", metadata: ["verdict": "refuse", "error": "\(error)"])
            respondAndClose(status: 500, message: "the API filter produced an invalid request")
            return
        }
        let body = replacementBody ?? vettedBody
        outgoing.remove("Content-Length")
        outgoing.remove("Transfer-Encoding")
        outgoing.remove("Keep-Alive")
        if let body {
            outgoing.remove("Expect")
            if !body.isEmpty || framing != .none || head.contains("Content-Length") {
                outgoing.set("Content-Length", String(body.count))
            }
        } else {
            switch framing {
            case .none: if head.contains("Content-Length") { outgoing.set("Content-Length", "0") }
            case .contentLength(let length): outgoing.set("Content-Length", String(length))
            case .chunked: outgoing.set("Transfer-Encoding", "chunked")
            }
        }
        let upgrade = outgoing.isUpgrade
        outgoing.set("Connection", upgrade ? "Upgrade" : "close")
        logger.debug("request forwarded", metadata: ["verdict": "forward", "upgrade": "\(upgrade)"])

        // 4. The engine.
        let up: UnixSocket
        do {
            up = try UnixSocket.connect(to: settings.upstreamPath)
        } catch {
            logger.error("the engine is not reachable", metadata: ["error": "\(error)"])
            respondAndClose(status: 502, message: "the Docker engine is not reachable through the API proxy: \((error as? ECIError)?.message ?? "\(error)")")
            return
        }
        let wasAborted = state.withLock { shared in
            shared.upstream = up
            return shared.aborted
        }
        if wasAborted { return }
        client.setReceiveTimeout(nil)
        do {
            try up.write(outgoing.serialized())
        } catch {
            logger.warning("writing to the engine failed", metadata: ["error": "\(error)"])
            respondAndClose(status: 502, message: "the Docker engine closed the connection")
            return
        }
        // The response pump starts before the body is streamed: an engine answering early
        // (an error before reading a large body) is heard.
        state.withLock { $0.threads += 1 }
        do {
            let pumpLogger = logger
            try DetachedThread.start { [self] in pump(upgrade: upgrade, logger: pumpLogger) }
        } catch {
            state.withLock { $0.threads -= 1 }
            logger.error("cannot start the response thread", metadata: ["error": "\(error)"])
            abort()
            return
        }

        // 5. The body: the replacement, or the client's streamed with its original framing,
        // never a byte past its end.
        do {
            if let body, !body.isEmpty { try up.write(body) }
            // The client's own body, when not read for the vetter: streamed, or (when the
            // vetter replaced it unread) consumed and dropped, so that it can never pass for
            // the stream of an upgraded connection.
            if vettedBody == nil, framing != .none {
                let forwardOriginal = body == nil
                let used = try decoder.passThrough(leftover)
                if used > 0, forwardOriginal { try up.write(leftover[0..<used]) }
                leftover.removeFirst(used)
                while !decoder.isComplete {
                    let n = try client.read(into: &buffer)
                    if n == 0 {
                        logger.debug("client closed the connection within the request body")
                        abort()
                        return
                    }
                    let used = try decoder.passThrough(buffer[0..<n])
                    if used > 0, forwardOriginal { try up.write(buffer[0..<used]) }
                    leftover = Array(buffer[used..<n])
                }
            }
        } catch {
            // A malformed chunked body, or the client or the engine gone: the engine saw an
            // incomplete body and nothing more is forwarded.
            logger.info("request body not forwarded completely", metadata: ["error": "\(error)"])
            abort()
            return
        }

        // 6. After the body: a hijacked stream after 101, else nothing more from the client.
        if upgrade, waitForUpgradeDecision() {
            pipeClientToEngine(up, leftover: leftover, buffer: &buffer)
        } else {
            drainClient(up, buffer: &buffer)
        }
    }

    /// Raw bytes from the client to the engine after a 101, until the client's EOF, which is
    /// passed on as a half-close (docker's hijacked streams rely on it).
    private func pipeClientToEngine(_ up: UnixSocket, leftover: [UInt8], buffer: inout [UInt8]) {
        do {
            if !leftover.isEmpty { try up.write(leftover) }
        } catch {
            return
        }
        while true {
            let n: Int
            do {
                n = try client.read(into: &buffer)
            } catch {
                abort()
                return
            }
            if n == 0 {
                up.shutdown(Int32(SHUT_WR))
                return
            }
            do {
                try up.write(buffer[0..<n])
            } catch {
                // The engine stopped reading; its output still flows back until it closes.
                return
            }
        }
    }

    /// Reads and discards whatever the client sends after its request (never forwarded) until
    /// it closes; its EOF is passed on to the engine as a half-close, as a direct connection
    /// would (the engine then cancels a streaming request such as `logs -f`).
    private func drainClient(_ up: UnixSocket, buffer: inout [UInt8]) {
        while true {
            let n: Int
            do {
                n = try client.read(into: &buffer)
            } catch {
                abort()
                return
            }
            if n == 0 { break }
        }
        up.shutdown(Int32(SHUT_WR))
    }

    // MARK: The engine side

    /// Engine → client, unchanged, until the engine's EOF (then a half-close to the client).
    /// For upgrade requests it also reads the status line and publishes whether it is 101.
    private func pump(upgrade: Bool, logger: Logger) {
        defer { threadDone() }
        guard let up = state.withLock({ $0.upstream }) else { return }
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        var statusLine: [UInt8] = []
        var decided = !upgrade
        var switched = false
        while true {
            let n: Int
            do {
                n = try up.read(into: &buffer)
            } catch {
                logger.debug("reading from the engine failed", metadata: ["error": "\(error)"])
                decideUpgrade(false)
                abort()
                return
            }
            if n == 0 { break }
            if !decided {
                statusLine.append(contentsOf: buffer[0..<min(n, Self.statusLineLimit)])
                if let cr = statusLine.firstIndex(of: HTTPSyntax.cr) {
                    let status = HTTPResponseHead.status(ofStatusLine: statusLine[0..<cr])
                    switched = status == 101
                    decideUpgrade(switched)
                    decided = true
                    logger.debug("upgrade answered", metadata: ["status": "\(status.map(String.init) ?? "?")"])
                } else if statusLine.count >= Self.statusLineLimit {
                    decideUpgrade(false)
                    decided = true
                }
            }
            do {
                try client.write(buffer[0..<n])
            } catch {
                // The client went away: the engine's request is cancelled by closing.
                decideUpgrade(false)
                abort()
                return
            }
        }
        decideUpgrade(false)
        client.shutdown(Int32(SHUT_WR))
        // A finished response ends the connection; a hijacked stream goes on while the client
        // still sends.
        if !switched { client.shutdown(Int32(SHUT_RD)) }
    }

    // MARK: Answers from the proxy

    /// Answers a request that failed before anything was forwarded: a parse error (400, 413,
    /// 431, 501, 505), a timeout (408); a vanished client gets nothing.
    private func failBeforeForwarding(_ error: ECIError, logger: Logger) {
        if error.code == .system { return }
        let status = error.httpStatus
        logger.info("malformed request refused", metadata: ["verdict": "refuse", "status": "\(status)", "error": "\(error.message)"])
        respondAndClose(status: status, message: error.message)
    }

    /// Sends an error response, then half-closes and discards what the client still sends for
    /// a short while, so that a client still writing its body reads the answer rather than a reset.
    private func respondAndClose(status: Int, message: String) {
        client.setSendTimeout(settings.lingerTimeout)
        do {
            try client.write(HTTPResponseHead.errorResponse(status: status, message: message))
        } catch {
            return
        }
        client.shutdown(Int32(SHUT_WR))
        client.setReceiveTimeout(settings.lingerTimeout)
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        var discarded = 0
        let deadline = ContinuousClock.now + .seconds(settings.lingerTimeout * 2)
        while discarded < 64 * 1024 * 1024, ContinuousClock.now < deadline {
            guard let n = try? client.read(into: &buffer), n > 0 else { break }
            discarded += n
        }
    }
}

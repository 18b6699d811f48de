import ECICore
import ECIIO
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// The engine API filter's proxy: serves a unix socket and forwards each vetted request to the
/// engine's socket. Nothing reaches the engine unvetted.
///
/// Each client connection carries exactly one request. The proxy reads its head (and its body
/// when the vetter asks for it, up to `maximumVettedBodySize`), asks the `RequestVetter`, and
/// either answers with the refusal in the engine's error format or forwards the (possibly
/// rewritten) request to a fresh engine connection with `Connection: close` (`Connection:
/// Upgrade` for upgrade requests), the body re-framed with Content-Length when it was read or
/// replaced, else streamed with its original framing. Bytes after the body's end are never
/// forwarded. The response is piped back unchanged; after a `101` the connection becomes a raw
/// bidirectional stream with half-close passed on both ways (docker's attach, exec and
/// BuildKit sessions).
///
/// Blocking I/O, one thread per connection plus one for the response. `stop()` closes the
/// listener, removes the socket and ends every connection.
public final class APIProxy: @unchecked Sendable {
    /// Where the proxy listens, where the engine is, and the proxy's limits.
    public struct Configuration: Sendable {
        /// The socket the proxy serves.
        public var listenPath: String
        /// Its permissions (0660 for a group of users, 0666 for everyone in the VM).
        public var mode: mode_t
        /// Its group, when not the process's.
        public var group: gid_t?
        /// The engine's socket.
        public var upstreamPath: String
        /// The largest body read for the vetter (larger: 413).
        public var maximumVettedBodySize: Int
        /// How long a client may take between bytes of its head (and of a body read for the
        /// vetter) before it gets 408.
        public var headTimeout: Double
        /// How long, after refusing a request, the proxy keeps discarding what the client still
        /// sends (so that it reads the refusal rather than a reset).
        public var lingerTimeout: Double
        /// The most connections served at once; more get 503.
        public var maximumConnections: Int

        public init(
            listenPath: String, mode: mode_t = 0o660, group: gid_t? = nil, upstreamPath: String,
            maximumVettedBodySize: Int = 16 * 1024 * 1024, headTimeout: Double = 30, lingerTimeout: Double = 1,
            maximumConnections: Int = 1024
        ) {
            self.listenPath = listenPath
            self.mode = mode
            self.group = group
            self.upstreamPath = upstreamPath
            self.maximumVettedBodySize = maximumVettedBodySize
            self.headTimeout = headTimeout
            self.lingerTimeout = lingerTimeout
            self.maximumConnections = maximumConnections
        }
    }

    private enum Phase { case idle, running, stopping, stopped }

    public let configuration: Configuration
    private let vetter: any RequestVetter
    private let logger: Logger

    // Guarded by `state`.
    private let state = PthreadCondition()
    private var phase = Phase.idle
    private var listener: UnixSocket?
    private var socketInode: ino_t?
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    private var acceptLoopRunning = false
    private var connections: [Int: ProxyConnection] = [:]
    private var nextConnection = 0

    public init(configuration: Configuration, vetter: any RequestVetter, logger: Logger = Logger(label: "eci.agent.api-proxy")) {
        self.configuration = configuration
        self.vetter = vetter
        var logger = logger
        logger[metadataKey: "socket"] = "\(configuration.listenPath)"
        self.logger = logger
    }

    /// The number of client connections being served.
    public var activeConnections: Int {
        state.lock()
        defer { state.unlock() }
        return connections.count
    }

    /// Creates the socket (replacing a stale one; refusing to replace anything else) and starts
    /// accepting connections on a thread of its own.
    public func start() throws {
        state.lock()
        defer { state.unlock() }
        guard phase == .idle else { throw ECIError(.invalidState, "the API proxy was already started") }
        var fds: [Int32] = [-1, -1]
        // A socket pair (created close-on-exec, unlike pipe(2) in Glibc's module) wakes the accept loop.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw ECIError.system("socketpair", errno: errno)
        }
        let socket: UnixSocket
        do {
            socket = try UnixSocket.listen(at: configuration.listenPath, mode: configuration.mode, group: configuration.group)
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        socketInode = UnixSocket.inode(at: configuration.listenPath)
        listener = socket
        wakeRead = fds[0]
        wakeWrite = fds[1]
        acceptLoopRunning = true
        do {
            try DetachedThread.start { [self] in acceptLoop(socket) }
        } catch {
            acceptLoopRunning = false
            releaseListener()
            throw error
        }
        phase = .running
        logger.info("API proxy listening", metadata: ["upstream": "\(configuration.upstreamPath)"])
    }

    /// Stops accepting, removes the socket, ends every connection and waits (up to
    /// `timeout` seconds) for their threads to finish.
    public func stop(timeout: Double = 10) {
        state.lock()
        guard phase == .running else {
            state.unlock()
            return
        }
        phase = .stopping
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        while acceptLoopRunning { state.wait() }
        releaseListener()
        let live = Array(connections.values)
        state.unlock()
        for connection in live { connection.abort() }
        state.lock()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !connections.isEmpty {
            if !state.wait(until: deadline) { break }
        }
        let left = connections.count
        phase = .stopped
        state.unlock()
        if left > 0 { logger.warning("API proxy stopped with connections still closing", metadata: ["connections": "\(left)"]) }
        logger.info("API proxy stopped")
    }

    /// Closes the listener and the wake-up pipe and removes the socket file if it is still
    /// ours. Called with `state` locked, the accept loop finished.
    private func releaseListener() {
        listener?.close()
        listener = nil
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
        wakeRead = -1
        wakeWrite = -1
        if let inode = socketInode, UnixSocket.inode(at: configuration.listenPath) == inode {
            unlink(configuration.listenPath)
        }
        socketInode = nil
    }

    private func acceptLoop(_ socket: UnixSocket) {
        state.lock()
        let wake = wakeRead
        state.unlock()
        defer {
            state.lock()
            acceptLoopRunning = false
            state.broadcast()
            state.unlock()
        }
        let listening = socket.descriptor
        while true {
            var fds = [pollfd(fd: listening, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            do {
                try Syscall.retrying("poll on the API socket") { poll(&fds, 2, -1) }
            } catch {
                logger.error("poll on the API socket failed", metadata: ["error": "\(error)"])
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client: UnixSocket?
            do {
                client = try socket.accept()
            } catch {
                logger.error("accept on the API socket failed", metadata: ["error": "\(error)"])
                return
            }
            if let client { serve(client) }
        }
    }

    private func serve(_ client: UnixSocket) {
        state.lock()
        guard phase == .running || phase == .idle, connections.count < configuration.maximumConnections else {
            let busy = phase == .running || phase == .idle
            state.unlock()
            if busy {
                logger.warning("too many API connections; refused", metadata: ["status": "503"])
                client.setSendTimeout(1)
                try? client.write(HTTPResponseHead.errorResponse(status: 503, message: "too many connections to the Docker API proxy"))
            }
            client.close()
            return
        }
        let id = nextConnection
        nextConnection += 1
        let settings = ProxyConnection.Settings(
            upstreamPath: configuration.upstreamPath, maximumVettedBodySize: configuration.maximumVettedBodySize,
            headTimeout: configuration.headTimeout, lingerTimeout: configuration.lingerTimeout)
        var connectionLogger = logger
        connectionLogger[metadataKey: "connection"] = "\(id)"
        let connection = ProxyConnection(client: client, settings: settings, vetter: vetter, logger: connectionLogger) { [weak self] in
            self?.finished(id)
        }
        connections[id] = connection
        state.unlock()
        do {
            try DetachedThread.start { connection.run() }
        } catch {
            logger.error("cannot start a connection thread", metadata: ["error": "\(error)"])
            state.lock()
            connections[id] = nil
            state.broadcast()
            state.unlock()
            client.close()
        }
    }

    private func finished(_ id: Int) {
        state.lock()
        connections[id] = nil
        state.broadcast()
        state.unlock()
    }
}

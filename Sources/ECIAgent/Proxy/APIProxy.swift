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
public final class APIProxy: Sendable {
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

    private enum Phase: Sendable { case idle, running, stopping, stopped }

    public let configuration: Configuration
    private let vetter: any RequestVetter
    private let logger: Logger

    /// What the accept loop, the connections' threads and `start`/`stop` share.
    private struct Shared: Sendable {
        var phase = Phase.idle
        var listener: UnixSocket?
        var socketInode: ino_t?
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        var acceptLoopRunning = false
        var connections: [Int: ProxyConnection] = [:]
        var nextConnection = 0
    }

    private let state = WaitableState(Shared())

    public init(configuration: Configuration, vetter: any RequestVetter, logger: Logger = Logger(label: "eci.agent.api-proxy")) {
        self.configuration = configuration
        self.vetter = vetter
        var logger = logger
        logger[metadataKey: "socket"] = "\(configuration.listenPath)"
        self.logger = logger
    }

    /// The number of client connections being served.
    public var activeConnections: Int {
        state.withLock { $0.connections.count }
    }

    /// Creates the socket (replacing a stale one; refusing to replace anything else) and starts
    /// accepting connections on a thread of its own.
    public func start() throws {
        try state.withLock { try start(&$0) }
    }

    private func start(_ shared: inout Shared) throws {
        guard shared.phase == .idle else { throw ECIError(.invalidState, "the API proxy was already started") }
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
        shared.socketInode = UnixSocket.inode(at: configuration.listenPath)
        shared.listener = socket
        shared.wakeRead = fds[0]
        shared.wakeWrite = fds[1]
        shared.acceptLoopRunning = true
        let wake = fds[0]
        do {
            try DetachedThread.start { [self] in acceptLoop(socket, wake: wake) }
        } catch {
            shared.acceptLoopRunning = false
            releaseListener(&shared)
            throw error
        }
        shared.phase = .running
        logger.info("API proxy listening", metadata: ["upstream": "\(configuration.upstreamPath)"])
    }

    /// Stops accepting, removes the socket, ends every connection and waits (up to
    /// `timeout` seconds) for their threads to finish.
    public func stop(timeout: Double = 10) {
        let wake: Int32? = state.withLock { shared in
            guard shared.phase == .running else { return nil }
            shared.phase = .stopping
            return shared.wakeWrite
        }
        guard let wake else { return }
        var byte: UInt8 = 1
        _ = write(wake, &byte, 1)
        let live: [ProxyConnection] = state.wait { shared in
            guard !shared.acceptLoopRunning else { return nil }
            releaseListener(&shared)
            return Array(shared.connections.values)
        } ?? []
        for connection in live { connection.abort() }
        _ = state.wait(timeout: .seconds(timeout)) { $0.connections.isEmpty ? true : nil }
        let left = state.withLock { shared in
            shared.phase = .stopped
            return shared.connections.count
        }
        if left > 0 { logger.warning("API proxy stopped with connections still closing", metadata: ["connections": "\(left)"]) }
        logger.info("API proxy stopped")
    }

    /// Closes the listener and the wake-up pipe and removes the socket file if it is still
    /// ours. Called with `state` locked, the accept loop finished.
    private func releaseListener(_ shared: inout Shared) {
        shared.listener?.close()
        shared.listener = nil
        if shared.wakeRead >= 0 { close(shared.wakeRead) }
        if shared.wakeWrite >= 0 { close(shared.wakeWrite) }
        shared.wakeRead = -1
        shared.wakeWrite = -1
        if let inode = shared.socketInode, UnixSocket.inode(at: configuration.listenPath) == inode {
            unlink(configuration.listenPath)
        }
        shared.socketInode = nil
    }

    /// `wake` stays open until the loop has ended (`stop` waits for that before closing it).
    private func acceptLoop(_ socket: UnixSocket, wake: Int32) {
        defer { state.withLock { $0.acceptLoopRunning = false } }
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
        let settings = ProxyConnection.Settings(
            upstreamPath: configuration.upstreamPath, maximumVettedBodySize: configuration.maximumVettedBodySize,
            headTimeout: configuration.headTimeout, lingerTimeout: configuration.lingerTimeout)
        // Admitted (and numbered) under the lock, so `stop` sees every connection it must end.
        let admitted: ProxyConnection? = state.withLock { shared in
            guard shared.phase == .running || shared.phase == .idle, shared.connections.count < configuration.maximumConnections else { return nil }
            let id = shared.nextConnection
            shared.nextConnection += 1
            var connectionLogger = logger
            connectionLogger[metadataKey: "connection"] = "\(id)"
            let connection = ProxyConnection(client: client, settings: settings, vetter: vetter, logger: connectionLogger, id: id) { [weak self] in
                self?.finished(id)
            }
            shared.connections[id] = connection
            return connection
        }
        guard let connection = admitted else {
            let busy = state.withLock { $0.phase == .running || $0.phase == .idle }
            if busy {
                logger.warning("too many API connections; refused", metadata: ["status": "503"])
                client.setSendTimeout(1)
                try? client.write(HTTPResponseHead.errorResponse(status: 503, message: "too many connections to the Docker API proxy"))
            }
            client.close()
            return
        }
        do {
            try DetachedThread.start { connection.run() }
        } catch {
            logger.error("cannot start a connection thread", metadata: ["error": "\(error)"])
            finished(connection.id)
            client.close()
        }
    }

    private func finished(_ id: Int) {
        state.withLock { $0.connections[id] = nil }
    }
}

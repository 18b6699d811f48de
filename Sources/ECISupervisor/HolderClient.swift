import CSeccomp
import CShim
import ECICore
import ECIIO
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import Synchronization

/// ecid's side of the fd holder (`FDHolder`): connects to it (spawning it when its socket does
/// not answer), takes back what it holds at start, deposits every new notify fd, drops the ones
/// that hung up, and re-deposits everything into a new holder if the holder itself dies.
final class HolderClient: Sendable {
    struct State {
        var connection: Int32 = -1
        /// ecid's own descriptors, by key: what a new holder must be given again.
        var deposited: [String: Int32] = [:]
        /// The holder this ecid spawned (reaped when it exits).
        var child: pid_t = 0
    }

    let directory: String
    let executable: String
    let grace: Double
    let log: Logger
    private let state = Mutex(State())

    init(directory: String, executable: String, grace: Double, log: Logger) {
        self.directory = directory
        self.executable = executable
        self.grace = grace
        self.log = log
    }

    var socketPath: String { FDHolder.socketPath(directory: directory) }

    /// Connects (spawning the holder if needed) and returns the fds it held, by key: the notify
    /// fds of a previous ecid, now this process's. Then watches the connection.
    func start() throws -> [(key: String, fd: Int32)] {
        let (connection, held) = try connect()
        state.withLock { $0.connection = connection }
        try DetachedThread.start("ecid-holder", stackSize: 128 * 1024) { [self] in watch() }
        return held
    }

    /// Hands a dup of `fd` to the holder under `key`. A failure is logged: the container is
    /// still supervised, only not restart-safe until the holder is back (the watcher re-deposits).
    func deposit(_ key: String, fd: Int32) {
        state.withLock { state in
            state.deposited[key] = fd
            guard state.connection >= 0 else { return }
            if let error = Self.send(state.connection, "put \(key)", fd: fd) {
                log.error("fd holder: deposit failed", metadata: ["key": "\(key)", "error": "\(errnoDescription(error))"])
            }
        }
    }

    /// The fd of `key` hung up: the holder closes its copy. The caller closes its own after.
    func drop(_ key: String) {
        state.withLock { state in
            state.deposited[key] = nil
            guard state.connection >= 0 else { return }
            _ = Self.send(state.connection, "drop \(key)", fd: nil)
        }
    }

    /// A connection that said hello and read back what the holder held.
    private func connect() throws -> (Int32, [(key: String, fd: Int32)]) {
        var connection = eci_seqpacket_connect(socketPath)
        log.debug("fd holder: connect", metadata: ["result": "\(connection)"])
        if connection < 0 {
            try spawnHolder()
            for _ in 0..<200 {
                connection = eci_seqpacket_connect(socketPath)
                if connection >= 0 { break }
                usleep(10_000)
            }
        }
        guard connection >= 0 else { throw ECIError.system("connect \(socketPath)", errno: -connection) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let error = Self.send(connection, "hello", fd: nil) {
            close(connection)
            throw ECIError.system("hello to the fd holder", errno: error)
        }
        var held: [(key: String, fd: Int32)] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let (n, received) = FDMessage.receive(connection, into: &buffer)
            guard n > 0 else {
                received.forEach { close($0) }
                held.forEach { close($0.fd) }
                close(connection)
                throw ECIError(.system, "the fd holder hung up before `end` (\(n < 0 ? errnoDescription(Int32(-n)) : "EOF"))")
            }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            if text == "end" { break }
            guard text.hasPrefix("held "), received.count == 1 else {
                received.forEach { close($0) }
                continue
            }
            held.append((String(text.dropFirst(5)), received[0]))
        }
        return (connection, held)
    }

    private func spawnHolder() throws {
        var attributes = SpawnAttributes(
            [executable, "fd-holder", "--dir", directory, "--grace", "\(grace)"], environment: ProcessInfo.processInfo.environment)
        attributes.stdin = .null
        attributes.stdout = .null
        // A session of its own: a terminal's hang-up or a process-group signal aimed at ecid
        // does not reach the fds' keeper.
        attributes.newSession = true
        attributes.resetSignalMask = true
        attributes.defaultSignalActions = true
        let child = try ChildProcess.spawn(attributes)
        state.withLock { $0.child = child.pid }
        log.info("fd holder started", metadata: ["pid": "\(child.pid)", "grace": "\(grace)"])
    }

    /// Blocks until the holder hangs up (it died or was killed), then starts a new one and
    /// gives it every fd again. Never returns while ecid runs.
    private func watch() {
        while true {
            let connection = state.withLock { $0.connection }
            var polled = pollfd(fd: connection, events: 0, revents: 0)
            let rc = poll(&polled, 1, -1)
            if rc < 0 && errno == EINTR { continue }
            log.error("fd holder gone: starting a new one")
            state.withLock { state in
                close(state.connection)
                state.connection = -1
            }
            reapChild()
            while true {
                do {
                    let (connection, stale) = try connect()
                    // A holder that answers now never held this ecid's fds: whatever it has is not ours.
                    stale.forEach { close($0.fd) }
                    state.withLock { state in
                        state.connection = connection
                        for (key, fd) in state.deposited { _ = Self.send(connection, "put \(key)", fd: fd) }
                    }
                    break
                } catch {
                    log.error("fd holder: restart failed", metadata: ["error": "\(error)"])
                    // The holder it spawned died without listening (its directory gone, say):
                    // reaped before the next try, or every try would leave a zombie.
                    reapChild()
                    sleep(1)
                }
            }
        }
    }

    /// Waits (at most a second) for the holder this ecid spawned, which has exited or is about to.
    private func reapChild() {
        state.withLock { state in
            guard state.child > 0 else { return }
            var status: Int32 = 0
            for _ in 0..<100 where waitpid(state.child, &status, WNOHANG) == 0 { usleep(10_000) }
            state.child = 0
        }
    }

    /// nil or the errno.
    static func send(_ connection: Int32, _ text: String, fd: Int32?) -> Int32? {
        let bytes = Array(text.utf8)
        var fds = fd.map { [$0] } ?? []
        let n = bytes.withUnsafeBytes { raw in
            fds.withUnsafeMutableBufferPointer { eci_send_with_fds(connection, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count)) }
        }
        return n < 0 ? Int32(-n) : nil
    }
}

import ECIContract
import ECICore
import ECIIO
import Logging

/// The supervisor's admin socket (`ecibuild status` and `stop`): one `AdminRequest` line per
/// connection, answered with one reply line (`VMStatus` or `StopAccepted`, or a failure).
/// One accept thread, a thread per connection (status waits for the agent); `close()` ends it.
final class AdminServer: Sendable {
    /// What the supervisor does for each request.
    struct Handlers: Sendable {
        var status: @Sendable () -> VMStatus
        var stop: @Sendable () -> Void
        /// Relayed to the agent (a test hook).
        var killEcid: @Sendable () throws -> EcidKilled = { throw ECIError(.unsupported, "kill-ecid is not served here") }
    }

    private let listener: UnixSocket

    private init(listener: UnixSocket) {
        self.listener = listener
    }

    static func serve(at path: String, handlers: Handlers) throws -> AdminServer {
        let listener = try UnixSocket.listen(at: path, mode: 0o600, group: nil)
        try DetachedThread.start {
            while let client = try? listener.accept() {
                try? DetachedThread.start { serve(client, handlers: handlers) }
            }
        }
        return AdminServer(listener: listener)
    }

    func close() { listener.close() }

    private static func serve(_ client: UnixSocket, handlers: Handlers) {
        defer { client.close() }
        client.setReceiveTimeout(10)
        guard let line = AdminLine.read(client, limit: 4096) else { return }
        try? client.write(reply(to: line, handlers: handlers) + [0x0A])
    }

    /// The reply to one request line (pure but for the handlers it calls).
    static func reply(to line: [UInt8], handlers: Handlers) -> [UInt8] {
        do {
            switch try AdminRequest.decode(line, from: "this ecibuild", receiver: "the VM's supervisor").op {
            case .status: return try ContractReply.encode(handlers.status())
            case .stop:
                handlers.stop()
                return try ContractReply.encode(StopAccepted())
            case .killEcid: return try ContractReply.encode(handlers.killEcid())
            }
        } catch let error as ECIError {
            return ContractReply.encode(ContractFailure(error))
        } catch {
            return ContractReply.encode(ContractFailure(code: ECIError.Code.internalError.name, message: "\(error)"))
        }
    }
}

/// Lines on the admin socket: one request, one reply, each ending with a newline.
enum AdminLine {
    /// Reads up to the first newline (without it); nil when the peer sent nothing, or more than
    /// `limit` bytes without a newline.
    static func read(_ socket: UnixSocket, limit: Int) -> [UInt8]? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !received.contains(0x0A) {
            guard received.count <= limit, let n = try? socket.read(into: &buffer), n > 0 else { break }
            received += buffer[0..<n]
        }
        let line = Array(received.prefix { $0 != 0x0A })
        return line.isEmpty || line.count > limit ? nil : line
    }
}

/// `ecibuild status` and `stop`: one request to a running supervisor's admin socket.
public enum AdminClient {
    public static func status(_ vm: VMDirectory, timeout: Double = 30) throws -> VMStatus {
        try ContractReply.decode(VMStatus.self, from: try send(.status, vm: vm, timeout: timeout), peer: "the VM's supervisor", receiver: "this ecibuild")
    }

    public static func stop(_ vm: VMDirectory, timeout: Double = 30) throws {
        _ = try ContractReply.decode(StopAccepted.self, from: try send(.stop, vm: vm, timeout: timeout), peer: "the VM's supervisor", receiver: "this ecibuild")
    }

    /// A test hook: the VM's agent kills ecid with SIGKILL; returns the process it killed.
    public static func killEcid(_ vm: VMDirectory, timeout: Double = 30) throws -> EcidKilled {
        try ContractReply.decode(EcidKilled.self, from: try send(.killEcid, vm: vm, timeout: timeout), peer: "the VM's supervisor", receiver: "this ecibuild")
    }

    /// - Throws: `.notFound` when nothing listens on the admin socket.
    static func send(_ op: AdminOperation, vm: VMDirectory, timeout: Double) throws -> [UInt8] {
        let socket: UnixSocket
        do { socket = try UnixSocket.connect(to: vm.adminSocket) } catch {
            throw ECIError(.notFound, "no ECI VM runs from \(vm.path)", cause: error)
        }
        defer { socket.close() }
        socket.setReceiveTimeout(timeout)
        try socket.write(AdminRequest(op).encoded() + [0x0A])
        guard let line = AdminLine.read(socket, limit: 16 << 20) else {
            throw ECIError(.delegateFailed, "the VM's supervisor did not answer \(op.rawValue) within \(Int(timeout)) s")
        }
        return line
    }
}

import ECICore
import ECIIO
import ECIOCI

/// A session on QEMU's QMP socket: the greeting read, capabilities negotiated, then commands
/// answered one at a time (events QEMU interleaves are skipped).
struct QMPSession {
    private let socket: UnixSocket
    private var pending: [UInt8] = []

    /// Connects and negotiates; throws when QEMU does not answer like QMP within `timeout` seconds.
    init(socket path: String, timeout: Double = 5) throws {
        socket = try UnixSocket.connect(to: path)
        socket.setReceiveTimeout(timeout)
        socket.setSendTimeout(timeout)
        guard let greeting = try nextMessage(), greeting["QMP"] != nil else {
            socket.close()
            throw ECIError(.delegateFailed, "\(path) did not greet like QMP")
        }
        _ = try execute("qmp_capabilities")
    }

    func close() { socket.close() }

    /// Runs one command; returns its `return` member, or throws its `error`.
    mutating func execute(_ command: String, arguments: String? = nil) throws -> JSONValue {
        let request = arguments.map { #"{"execute":"\#(command)","arguments":\#($0)}"# } ?? #"{"execute":"\#(command)"}"#
        try socket.write(Array(request.utf8) + [0x0A])
        while let message = try nextMessage() {
            if let result = message["return"] { return result }
            if let error = message["error"] {
                throw ECIError(.delegateFailed, "QMP \(command): \(error["desc"]?.stringValue ?? error.serialized())")
            }
        }
        throw ECIError(.delegateFailed, "QEMU closed QMP during \(command)")
    }

    /// The next JSON line; nil at end of file.
    private mutating func nextMessage() throws -> JSONValue? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = Array(pending[..<newline])
                pending.removeFirst(newline + 1)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                return try JSONValue.parse(line)
            }
            let n = try socket.read(into: &buffer)
            guard n > 0 else { return nil }
            pending += buffer[0..<n]
        }
    }
}

/// One QMP command to QEMU, best effort (the fallback when the agent does not answer).
enum QMP {
    static func send(socket path: String, command: String) {
        guard var session = try? QMPSession(socket: path) else { return }
        defer { session.close() }
        _ = try? session.execute(command)
    }
}

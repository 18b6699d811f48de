import ECICore
import ECIIO
import Foundation
import Logging

/// Children of the supervisor, started without Swift code between fork and exec.
enum Spawn {
    /// `argv` bound to the calling thread (SIGKILLed if it ends), in its own process group
    /// (a terminal's Ctrl-C reaches only the supervisor, which stops the child its own way),
    /// stdin from /dev/null and stdout and stderr to `output` (ours when it is -1).
    static func bound(_ argv: [String], environment: [String: String], output: Int32) -> SpawnAttributes {
        var attributes = SpawnAttributes(argv, environment: environment)
        attributes.stdin = .null
        attributes.stdout = output >= 0 ? .fd(output) : .inherit
        attributes.stderr = attributes.stdout
        attributes.newProcessGroup = true
        attributes.parentDeathSignal = SIGKILL
        return attributes
    }
}

/// `GET /_ping` on the host docker socket: true when the engine answers 200 through the tunnel.
enum EnginePing {
    static func ping(socket path: String, timeout: Double = 5) -> Bool {
        guard let socket = try? UnixSocket.connect(to: path) else { return false }
        defer { socket.close() }
        socket.setReceiveTimeout(timeout)
        socket.setSendTimeout(timeout)
        guard (try? socket.write(Array("GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".utf8))) != nil else { return false }
        var buffer = [UInt8](repeating: 0, count: 512)
        var received: [UInt8] = []
        while received.count < 12, let n = try? socket.read(into: &buffer), n > 0 { received += buffer[0..<n] }
        return String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 200")
    }
}

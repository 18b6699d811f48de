import CShim
import ECICore
import ECIIO
import Foundation
import Logging

/// Children of the supervisor, started without Swift code between fork and exec.
enum Spawn {
    /// Starts `argv` bound to the calling thread (killed if it dies), in its own process group,
    /// stdin from /dev/null and output to `output`. Returns the PID or -errno.
    static func bound(_ argv: [String], environment: [String: String], output: Int32) -> pid_t {
        guard let path = argv.first else { return -EINVAL }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if null >= 0 { close(null) } }
        return eci_spawn_bound_io(path, cArgs, cEnv, null, output, 1)
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

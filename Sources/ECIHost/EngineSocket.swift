import ECIChannel
import ECICore
import ECIIO
import Logging

/// The engine API on the host: a unix socket (root-only) whose every connection becomes a
/// stream of the tunnel to the agent's filter. One accept thread; `close()` ends it.
final class EngineSocket: Sendable {
    private let listener: UnixSocket

    private init(listener: UnixSocket) {
        self.listener = listener
    }

    /// Listens at `path`; `tunnel` gives the tunnel of the moment (nil while there is none:
    /// the client is then closed at once).
    static func serve(at path: String, logger: Logger, tunnel: @escaping @Sendable () -> TunnelEndpoint?) throws -> EngineSocket {
        let listener = try UnixSocket.listen(at: path, mode: 0o600, group: nil)
        try DetachedThread.start {
            while let client = try? listener.accept() {
                guard let tunnel = tunnel() else {
                    client.close()
                    continue
                }
                do { _ = try tunnel.attach(client.release()) } catch {
                    logger.warning("engine connection refused: the tunnel is down", metadata: ["error": "\(error)"])
                }
            }
        }
        return EngineSocket(listener: listener)
    }

    func close() { listener.close() }
}

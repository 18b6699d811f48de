import ECICore
import Foundation
import Testing

@testable import ECIChannel

#if canImport(Glibc)
import Glibc
#endif

/// A host and a guest tunnel endpoint over socket pairs; the guest's `serve` takes a new pair
/// for every session.
final class TunnelHarness: @unchecked Sendable {
    let host: TunnelEndpoint
    let guest: TunnelEndpoint
    let ports = PortQueue()
    private let guestServe: Background
    private let hostRuns = Locked<[Background]>([])

    init(window: UInt32 = 256 * 1024, garbageLimit: Int = PortConnection.defaultGarbageLimit, connector: @escaping TunnelEndpoint.Connector = { _ in Services.echo() }) {
        host = TunnelEndpoint(role: .host, name: "test-host", window: window, logger: testLogger("host"))
        let guest = TunnelEndpoint(
            role: .guest, name: "test-guest", window: window, garbageLimit: garbageLimit, backoff: .milliseconds(20),
            logger: testLogger("guest"), connector: connector)
        self.guest = guest
        let ports = self.ports
        guestServe = Background("serve") { guest.serve(openPort: ports.open) }
    }

    /// Gives the guest a new port and runs the host's side of it; returns once the host runs.
    func connect() {
        let (hostEnd, guestEnd) = Sockets.pair()
        ports.push(guestEnd)
        let host = self.host
        hostRuns.withLock { $0.append(Background("host-run") { try? host.run(port: hostEnd) }) }
        #expect(eventually { host.isConnected })
    }

    /// A client connection carried over a new stream.
    func client() throws -> Int32 {
        let (client, hostSide) = Sockets.pair()
        Sockets.setReadTimeout(client, seconds: 20)
        _ = try host.attach(hostSide)
        return client
    }

    func tearDown() {
        host.stop()
        guest.stop()
        #expect(guestServe.wait(seconds: 10), "the guest's serve loop ends on stop")
        for run in hostRuns.current { #expect(run.wait(seconds: 10), "the host's run ends on stop") }
    }
}

/// Sends `data` on `fd` from another thread while reading the echo; returns what came back.
func echoRoundTrip(_ fd: Int32, _ data: [UInt8]) -> [UInt8] {
    let writer = Background("writer") {
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + 100_000)
            guard Sockets.writeAll(fd, Array(data[offset..<end])) else { return }
            offset = end
        }
        _ = shutdown(fd, Int32(SHUT_WR))
    }
    let back = Sockets.readToEnd(fd)
    writer.wait()
    return back
}

@Suite(.serialized) struct TunnelEndpointTests {
    @Test func manyConcurrentStreamsCarryDataIntactAndInOrder() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        harness.connect()
        let size = 2 << 20
        let results = Locked<[Int: Bool]>([:])
        var clients: [Background] = []
        for n in 0..<50 {
            let fd = try harness.client()
            clients.append(Background("client-\(n)") {
                let data = pattern(n, count: size)
                let back = echoRoundTrip(fd, data)
                close(fd)
                results.withLock { $0[n] = back.count == data.count && CRC32.checksum(back) == CRC32.checksum(data) }
            })
        }
        for client in clients { #expect(client.wait(seconds: 25)) }
        #expect(results.current.count == 50)
        #expect(results.current.values.allSatisfy { $0 }, "every stream's bytes came back intact and in order")
        #expect(eventually { harness.host.streamCount == 0 && harness.guest.streamCount == 0 }, "finished streams are released")
    }
}

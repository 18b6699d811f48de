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

    /// Local services by stream id (streams not listed get an echo server).
    let services = Locked<[UInt32: @Sendable () -> Int32?]>([:])

    init(window: UInt32 = 256 * 1024, garbageLimit: Int = PortConnection.defaultGarbageLimit) {
        let services = self.services
        let connector: TunnelEndpoint.Connector = { id in
            if let service = services.withLock({ $0[id] }) { return service() }
            return Services.echo()
        }
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
        try clientWithID().fd
    }

    func clientWithID() throws -> (fd: Int32, id: UInt32) {
        let (client, hostSide) = Sockets.pair()
        Sockets.setReadTimeout(client, seconds: 20)
        return (client, try host.attach(hostSide))
    }

    /// Runs a guest whose port the test drives by hand (no host endpoint).
    func connectRaw() -> RawPeer {
        let (hostEnd, guestEnd) = Sockets.pair()
        ports.push(guestEnd)
        return RawPeer(fd: hostEnd)
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
        for client in clients {
            let finished = client.wait(seconds: 25)
            #expect(finished)
            if !finished { print("HOST\n\(harness.host.debugState)\nGUEST\n\(harness.guest.debugState)") }
        }
        #expect(results.current.count == 50)
        #expect(results.current.values.allSatisfy { $0 }, "every stream's bytes came back intact and in order")
        #expect(eventually { harness.host.streamCount == 0 && harness.guest.streamCount == 0 }, "finished streams are released")
    }

    @Test func bothSidesLearnThePeersHello() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        harness.connect()
        #expect(eventually { harness.host.peer?.name == "test-guest" && harness.guest.peer?.name == "test-host" })
        #expect(harness.host.peer?.version == Frame.version)
    }

    /// A local reader that stops reading stalls only its own stream: the window stops its
    /// sender, the port keeps carrying everyone else, and the stalled bytes arrive intact later.
    @Test func aStalledReaderDoesNotBlockOtherStreams() throws {
        let harness = TunnelHarness(window: 64 * 1024)
        defer { harness.tearDown() }
        let (service, local) = Sockets.pair()
        harness.services.withLock { $0[1] = { local } }
        harness.connect()
        let (stalled, id) = try harness.clientWithID()
        #expect(id == 1)
        let big = pattern(99, count: 4 << 20)
        let writer = Background("stalled-writer") {
            Sockets.writeAll(stalled, big)
            _ = shutdown(stalled, Int32(SHUT_WR))
        }
        var others: [Background] = []
        let ok = Locked(0)
        for n in 0..<5 {
            let fd = try harness.client()
            others.append(Background("other-\(n)") {
                let data = pattern(n, count: 512 * 1024)
                if echoRoundTrip(fd, data) == data { ok.withLock { $0 += 1 } }
                close(fd)
            })
        }
        for other in others { #expect(other.wait(seconds: 15)) }
        #expect(ok.current == 5, "the other streams went on while one reader stalled")
        #expect(!writer.wait(seconds: 0.1), "the stalled stream's writer is held back by flow control")
        // Now the reader wakes up: everything arrives, in order.
        let received = Sockets.readToEnd(service)
        #expect(writer.wait(seconds: 10))
        #expect(received.count == big.count && CRC32.checksum(received) == CRC32.checksum(big))
        close(service)
        close(stalled)
    }

    /// Half-close both ways: each side still receives after the other stopped writing.
    @Test func halfCloseWorksInBothDirections() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        // Stream 1: the guest's service speaks first, shuts its write side, then listens.
        let greeting = pattern(1, count: 100_000)
        let heard = Locked<[UInt8]>([])
        let (greeter, greeterLocal) = Sockets.pair()
        let greeterDone = Background("greeter") {
            Sockets.writeAll(greeter, greeting)
            _ = shutdown(greeter, Int32(SHUT_WR))
            let got = Sockets.readToEnd(greeter)
            heard.withLock { $0 = got }
            close(greeter)
        }
        // Stream 2: the guest's service listens to the end, then answers and closes.
        let (collector, collectorLocal) = Sockets.pair()
        let collectorDone = Background("collector") {
            let got = Sockets.readToEnd(collector)
            Sockets.writeAll(collector, Array(got.reversed()))
            close(collector)
        }
        harness.services.withLock {
            $0[1] = { greeterLocal }
            $0[2] = { collectorLocal }
        }
        harness.connect()

        let first = try harness.client()
        #expect(Sockets.readToEnd(first) == greeting, "the client reads to the guest's half-close")
        let reply = pattern(2, count: 300_000)
        #expect(Sockets.writeAll(first, reply), "and can still write after it")
        _ = shutdown(first, Int32(SHUT_WR))
        #expect(greeterDone.wait())
        #expect(heard.current == reply)

        let second = try harness.client()
        let request = pattern(3, count: 300_000)
        Sockets.writeAll(second, request)
        _ = shutdown(second, Int32(SHUT_WR))
        #expect(Sockets.readToEnd(second) == Array(request.reversed()), "the client still receives after its half-close")
        #expect(collectorDone.wait())
        #expect(eventually { harness.host.streamCount == 0 && harness.guest.streamCount == 0 }, "both streams are released")
        close(first)
        close(second)
    }

    @Test func aConnectorFailureResetsOnlyThatStream() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        harness.services.withLock { $0[1] = { nil } }
        harness.connect()
        let refused = try harness.client()
        let start = Date()
        #expect(Sockets.readToEnd(refused).isEmpty, "the client's connection is closed")
        #expect(Date().timeIntervalSince(start) < 5)
        close(refused)
        let fine = try harness.client()
        let data = pattern(5, count: 100_000)
        #expect(echoRoundTrip(fine, data) == data)
        close(fine)
        #expect(eventually { harness.host.streamCount == 0 && harness.guest.streamCount == 0 })
    }

    /// The host's port goes away mid-transfer: every client connection is closed, the guest
    /// resets its streams and reopens its port; after the host reconnects, streams work again.
    @Test func hostDisconnectMidTransferThenReconnect() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        harness.connect()
        let complete = Locked(0)
        var clients: [Background] = []
        for n in 0..<5 {
            let fd = try harness.client()
            clients.append(Background("client-\(n)") {
                let data = pattern(n, count: 8 << 20)
                if echoRoundTrip(fd, data) == data { complete.withLock { $0 += 1 } }
                close(fd)
            })
        }
        usleep(100_000)
        harness.host.disconnect()
        for client in clients { #expect(client.wait(seconds: 10), "every client connection ends") }
        #expect(complete.current < 5, "the transfer was cut")
        #expect(eventually { !harness.host.isConnected && harness.host.streamCount == 0 })
        #expect(eventually { harness.guest.streamCount == 0 }, "the guest reset its streams")
        #expect(throws: ECIError.self) { _ = try harness.host.attach(Sockets.pair().0) }

        harness.connect()
        #expect(harness.ports.waitOpened(2), "the guest reopened its port")
        let fd = try harness.client()
        let data = pattern(7, count: 1 << 20)
        #expect(echoRoundTrip(fd, data) == data)
        close(fd)
    }

    /// Garbage of every kind on the port: the guest skips it, refuses what breaks the protocol,
    /// and serves the valid frames that follow; a flood beyond the limit drops the session and
    /// the next one works.
    @Test func garbageNeverBreaksTheGuest() throws {
        let harness = TunnelHarness(garbageLimit: 256 * 1024)
        defer { harness.tearDown() }
        // Stream 5's service connects slowly, so nothing of it is consumed (no credit comes back)
        // while the raw host overruns its window.
        harness.services.withLock {
            $0[5] = {
                usleep(300_000)
                return Services.echo()
            }
        }
        let peer = harness.connectRaw()
        #expect(peer.next()?.kind == .hello, "the guest announces itself")

        peer.sendRaw(randomBytes(20_000, seed: 1))
        let data = Frame(kind: .data, stream: 3, payload: Array(repeating: 7, count: 1000)).encoded()
        peer.sendRaw(Array(data.prefix(500)))  // truncated frame
        var header: [UInt8] = Frame.magic + [Frame.version, Frame.Kind.data.rawValue, 0, 0, 0, 3]
        header += Frame.bigEndianBytes(60_000)
        header += Frame.bigEndianBytes(CRC32.checksum(header))
        peer.sendRaw(header + randomBytes(61_000, seed: 2))  // a valid header, a payload that fails its CRC
        peer.sendRaw(Frame.magic + [9, 9] + randomBytes(100, seed: 3))  // a bogus version and kind
        peer.send([
            Frame(kind: .request, stream: 1, payload: [1]), Frame(kind: .response, stream: 1),
            Frame(kind: .data, stream: 99, payload: [1]), .window(stream: 98, credit: 5),
            Frame(kind: .closeWrite, stream: 97), Frame(kind: .reset, stream: 96), Frame(kind: .hello, stream: 0),
            Frame(kind: .window, stream: 98, payload: [1, 2]),
        ])
        // A stream whose peer overruns the window is reset.
        peer.send([Frame(kind: .open, stream: 5)] + (0..<5).map { _ in Frame(kind: .data, stream: 5, payload: Array(repeating: 1, count: 60_000)) })
        #expect(peer.next { $0.kind == .reset && $0.stream == 5 } != nil, "the overrun stream is reset")

        // The session still works.
        peer.send([Frame(kind: .open, stream: 7), Frame(kind: .data, stream: 7, payload: Array("ping".utf8)), Frame(kind: .closeWrite, stream: 7)])
        #expect(peer.next { $0.kind == .data && $0.stream == 7 }?.payload == Array("ping".utf8))
        #expect(peer.next { $0.stream == 7 && $0.kind != .window }?.kind == .closeWrite)

        // A flood beyond the limit drops the session: the guest closes its end.
        peer.sendRaw(randomBytes(600_000, seed: 4))
        #expect(peer.waitForEOF(), "the guest dropped the session")
        close(peer.fd)
        #expect(eventually { harness.guest.streamCount == 0 })

        harness.connect()
        #expect(harness.ports.waitOpened(2))
        let fd = try harness.client()
        let bytes = pattern(8, count: 1 << 20)
        #expect(echoRoundTrip(fd, bytes) == bytes, "the next session works")
        close(fd)
    }

    /// A second announcement means the host restarted: the guest resets every stream, answers
    /// with its hello, and serves new streams.
    @Test func aSecondHelloResetsEveryStream() throws {
        let harness = TunnelHarness()
        defer { harness.tearDown() }
        let (service, local) = Sockets.pair()
        harness.services.withLock { $0[1] = { local } }
        let peer = harness.connectRaw()
        let announce = Frame(kind: .hello, stream: 0, payload: ChannelHello(name: "raw-host").payload)
        peer.send([announce, Frame(kind: .open, stream: 1), Frame(kind: .data, stream: 1, payload: [1, 2, 3])])
        #expect(Sockets.read(service, count: 3) == [1, 2, 3])
        #expect(harness.guest.streamCount == 1)
        #expect(harness.guest.peer?.name == "raw-host")

        peer.send([Frame(kind: .hello, stream: 0, payload: ChannelHello(name: "raw-host-2").payload)])
        Sockets.setReadTimeout(service, seconds: 5)
        #expect(Sockets.readToEnd(service).isEmpty, "the local connection is shut down")
        close(service)
        #expect(eventually { harness.guest.streamCount == 0 })
        #expect(peer.next { $0.kind == .hello && $0.stream == 1 } != nil, "the guest answers the new announcement")
        #expect(harness.guest.peer?.name == "raw-host-2")

        peer.send([Frame(kind: .open, stream: 2), Frame(kind: .data, stream: 2, payload: [4, 5]), Frame(kind: .closeWrite, stream: 2)])
        #expect(peer.next { $0.kind == .data && $0.stream == 2 }?.payload == [4, 5])
        close(peer.fd)
    }

    /// The guest agent restarting behind a host port that stays connected: its new
    /// announcement makes the host close every client and reset the streams on the wire.
    @Test func aGuestRestartClosesTheHostsClients() throws {
        let host = TunnelEndpoint(role: .host, name: "test-host", logger: testLogger("host"))
        let (hostEnd, guestEnd) = Sockets.pair()
        let running = Background("host-run") { try? host.run(port: hostEnd) }
        defer {
            host.stop()
            #expect(running.wait())
            close(guestEnd)
        }
        let guest = RawPeer(fd: guestEnd)
        guest.send([Frame(kind: .hello, stream: 0, payload: ChannelHello(name: "agent-1").payload)])
        #expect(guest.next()?.kind == .hello)
        #expect(eventually { host.peer?.name == "agent-1" })
        let (client, hostSide) = Sockets.pair()
        Sockets.setReadTimeout(client, seconds: 5)
        let id = try host.attach(hostSide)
        #expect(guest.next { $0.kind == .open }?.stream == id)
        guest.send([Frame(kind: .data, stream: id, payload: [42])])
        #expect(Sockets.read(client, count: 1) == [42])

        guest.send([Frame(kind: .hello, stream: 0, payload: ChannelHello(name: "agent-2").payload)])
        #expect(Sockets.readToEnd(client).isEmpty, "the client's connection is closed")
        close(client)
        #expect(guest.next { $0.kind == .reset }?.stream == id, "the stream is reset on the wire too")
        #expect(eventually { host.streamCount == 0 && host.peer?.name == "agent-2" })
        // Opens from the guest are refused: only the host opens streams.
        guest.send([Frame(kind: .open, stream: 77)])
        #expect(guest.next { $0.stream == 77 }?.kind == .reset)
    }
}

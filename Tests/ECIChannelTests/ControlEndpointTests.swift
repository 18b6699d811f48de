import ECICore
import Foundation
import Testing

@testable import ECIChannel

#if canImport(Glibc)
import Glibc
#endif

/// A guest control server (serving one socket pair per session) and a host control client.
final class ControlHarness: @unchecked Sendable {
    let server: ControlServer
    let client: ControlClient
    let ports = PortQueue()
    private let serving: Background
    private let runs = Locked<[Background]>([])

    /// Requests are UTF-8 text: "echo:<text>" answers "<text>", "sleep:<ms>" answers after a
    /// pause, "big" answers more than a frame holds.
    init(garbageLimit: Int = PortConnection.defaultGarbageLimit) {
        let server = ControlServer(name: "test-agent", garbageLimit: garbageLimit, backoff: .milliseconds(20), logger: testLogger("control-server")) { request in
            let text = String(decoding: request, as: UTF8.self)
            if text.hasPrefix("sleep:"), let ms = UInt32(text.dropFirst(6)) {
                usleep(ms * 1000)
                return Array("slept \(ms)".utf8)
            }
            if text == "big" { return [UInt8](repeating: 1, count: Frame.maxPayload + 1) }
            return Array(text.replacingOccurrences(of: "echo:", with: "").utf8)
        }
        self.server = server
        client = ControlClient(name: "test-host", logger: testLogger("control-client"))
        let ports = self.ports
        serving = Background("control-serve") { server.serve(openPort: ports.open) }
    }

    func connect() {
        let (hostEnd, guestEnd) = Sockets.pair()
        ports.push(guestEnd)
        let client = self.client
        runs.withLock { $0.append(Background("control-run") { try? client.run(port: hostEnd) }) }
        #expect(eventually { client.isConnected })
    }

    func tearDown() {
        client.stop()
        server.stop()
        #expect(serving.wait(seconds: 10))
        for run in runs.current { #expect(run.wait(seconds: 10)) }
    }
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite(.serialized) struct ControlEndpointTests {
    @Test func helloAndRequestsMatchedById() throws {
        let harness = ControlHarness()
        defer { harness.tearDown() }
        harness.connect()
        let hello = try harness.client.hello(timeout: .seconds(5))
        #expect(hello == ChannelHello(version: Frame.version, name: "test-agent"))
        #expect(eventually { harness.server.peer?.name == "test-host" })
        // Concurrent requests whose answers come back out of order each get their own.
        let answers = Locked<[Int: String]>([:])
        var threads: [Background] = []
        for n in 0..<20 {
            threads.append(Background("request-\(n)") {
                let request = n % 3 == 0 ? "sleep:\(60 - n)" : "echo:\(n)"
                if let response = try? harness.client.request(Array(request.utf8), timeout: .seconds(5)) {
                    answers.withLock { $0[n] = text(response) }
                }
            })
        }
        for thread in threads { #expect(thread.wait()) }
        for n in 0..<20 {
            #expect(answers.current[n] == (n % 3 == 0 ? "slept \(60 - n)" : "\(n)"), "request \(n)")
        }
    }

    @Test func aRequestTimesOutAndALateResponseIsDropped() throws {
        let harness = ControlHarness()
        defer { harness.tearDown() }
        harness.connect()
        let start = Date()
        #expect {
            _ = try harness.client.request(Array("sleep:400".utf8), timeout: .milliseconds(100))
        } throws: { ($0 as? ECIError)?.code == .channelTimeout }
        #expect(Date().timeIntervalSince(start) < 0.35)
        // The late answer to the first request must not be taken for this one's.
        #expect(text(try harness.client.request(Array("sleep:500".utf8), timeout: .seconds(5))) == "slept 500")
        #expect(text(try harness.client.request(Array("echo:after".utf8), timeout: .seconds(5))) == "after")
    }

    @Test func anOversizedResponseIsRefusedClearly() throws {
        let harness = ControlHarness()
        defer { harness.tearDown() }
        harness.connect()
        #expect {
            _ = try harness.client.request(Array("big".utf8), timeout: .seconds(5))
        } throws: { error in
            guard let error = error as? ECIError else { return false }
            return error.code == .channelRefused && error.message.contains("frame limit")
        }
        #expect {
            _ = try harness.client.request([UInt8](repeating: 0, count: Frame.maxPayload + 1), timeout: .seconds(1))
        } throws: { ($0 as? ECIError)?.code == .invalidArgument }
        #expect(text(try harness.client.request(Array("echo:still".utf8), timeout: .seconds(5))) == "still")
    }

    /// A disconnect fails what is in flight at once; without a session requests time out; after
    /// a reconnect (the guest reopening its port) requests work again.
    @Test func requestsFailOnDisconnectAndWorkAfterReconnect() throws {
        let harness = ControlHarness()
        defer { harness.tearDown() }
        harness.connect()
        #expect(text(try harness.client.request(Array("echo:one".utf8), timeout: .seconds(5))) == "one")
        let failure = Locked<ECIError?>(nil)
        let inFlight = Background("in-flight") {
            do {
                _ = try harness.client.request(Array("sleep:2000".utf8), timeout: .seconds(10))
            } catch {
                failure.withLock { $0 = error as? ECIError }
            }
        }
        usleep(100_000)
        harness.client.disconnect()
        #expect(inFlight.wait(seconds: 1), "the request in flight fails at once")
        #expect(failure.current?.code == .channelDisconnected)
        #expect(eventually { !harness.client.isConnected })
        #expect {
            _ = try harness.client.request(Array("echo:none".utf8), timeout: .milliseconds(100))
        } throws: { ($0 as? ECIError)?.code == .channelTimeout }

        harness.connect()
        #expect(harness.ports.waitOpened(2), "the guest reopened its port")
        #expect(text(try harness.client.request(Array("echo:two".utf8), timeout: .seconds(5))) == "two")
        #expect(try harness.client.hello(timeout: .seconds(5)).name == "test-agent")
    }

    /// Garbage around requests is skipped; a flood drops the session; the next one works.
    @Test func theServerSurvivesGarbage() throws {
        let harness = ControlHarness(garbageLimit: 64 * 1024)
        defer { harness.tearDown() }
        let (hostEnd, guestEnd) = Sockets.pair()
        harness.ports.push(guestEnd)
        let peer = RawPeer(fd: hostEnd)
        #expect(peer.next()?.kind == .hello)
        peer.sendRaw(randomBytes(30_000, seed: 11))
        peer.send([Frame(kind: .data, stream: 1, payload: [1]), Frame(kind: .open, stream: 2), Frame(kind: .hello, stream: 0)])
        peer.sendRaw(Array(Frame(kind: .request, stream: 8, payload: Array("echo:lost".utf8)).encoded().prefix(20)))
        peer.send([Frame(kind: .request, stream: 9, payload: Array("echo:nine".utf8))])
        let response = peer.next { $0.kind == .response }
        #expect(response?.stream == 9 && response.map { text($0.payload) } == "nine")
        peer.sendRaw(randomBytes(200_000, seed: 12))
        #expect(peer.waitForEOF(), "the flood dropped the session")
        close(hostEnd)

        harness.connect()
        #expect(harness.ports.waitOpened(2))
        #expect(text(try harness.client.request(Array("echo:fine".utf8), timeout: .seconds(5))) == "fine")
    }
}

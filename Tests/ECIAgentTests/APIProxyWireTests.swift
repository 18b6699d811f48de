import ECICore
import ECIIO
import Foundation
import Glibc
import Testing

@testable import ECIAgent

/// What exactly reaches the engine: the proxy in front of a fake engine that records the bytes
/// of its one connection.
@Suite(.serialized) struct APIProxyWireTests {
    /// Forwards everything; for POST /rewrite reads the body and replaces it.
    struct Vetter: RequestVetter {
        func wantsBody(_ head: HTTPRequestHead) -> Bool { head.path == "/rewrite" }
        func vet(_ head: HTTPRequestHead, body: [UInt8]?) -> Verdict {
            if head.path == "/rewrite" { return .forward(head, body: Array("{\"new\":true}".utf8) + (body ?? [])) }
            if head.path == "/replace-unread" { return .forward(head, body: Array("replacement".utf8)) }
            return .forward(head, body: nil)
        }
    }

    final class Recorder: @unchecked Sendable {
        let lock = NSLock()
        var bytes: [UInt8] = []
        let done = DispatchSemaphore(value: 0)
    }

    /// Sends `request` through a proxy to a fake engine; returns what the engine received and
    /// what the client got back.
    static func roundTrip(_ request: String) throws -> (engine: String, client: String) {
        let directory = "/tmp"
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let enginePath = "\(directory)/eci-wire-engine-\(tag).sock"
        let proxyPath = "\(directory)/eci-wire-proxy-\(tag).sock"
        let engine = try UnixSocket.listen(at: enginePath, mode: 0o600, group: nil)
        defer {
            engine.close()
            unlink(enginePath)
        }
        let recorder = Recorder()
        try DetachedThread.start {
            defer { recorder.done.signal() }
            guard let connection = try? engine.accept() else { return }
            defer { connection.close() }
            connection.setReceiveTimeout(0.5)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while let n = try? connection.read(into: &buffer), n > 0 {
                recorder.lock.withLock { recorder.bytes.append(contentsOf: buffer[0..<n]) }
            }
            try? connection.write(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8))
        }
        let proxy = APIProxy(configuration: .init(listenPath: proxyPath, upstreamPath: enginePath), vetter: Vetter())
        try proxy.start()
        defer { proxy.stop() }
        let client = try UnixSocket.connect(to: proxyPath)
        defer { client.close() }
        client.setReceiveTimeout(10)
        try client.write(Array(request.utf8))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while let n = try? client.read(into: &buffer), n > 0 { answer.append(contentsOf: buffer[0..<n]) }
        recorder.done.wait()
        let received = recorder.lock.withLock { recorder.bytes }
        return (String(decoding: received, as: UTF8.self), String(decoding: answer, as: UTF8.self))
    }

    @Test func onlyTheFirstRequestIsForwardedWithConnectionClose() throws {
        let (engine, client) = try Self.roundTrip(
            "GET /a?x=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(engine == "GET /a?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(client.hasSuffix("\r\n\r\nok"))
    }

    @Test func contentLengthBodyStopsAtItsEnd() throws {
        let (engine, _) = try Self.roundTrip("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /smuggled HTTP/1.1\r\n\r\n")
        #expect(engine == "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    }

    @Test func chunkedBodyPassesThroughUnchanged() throws {
        let chunked = "5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
        let (engine, _) = try Self.roundTrip("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + "GET /smuggled HTTP/1.1\r\n\r\n")
        #expect(engine == "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)
    }

    @Test func rewrittenBodyIsReframedWithContentLength() throws {
        let (engine, _) = try Self.roundTrip(
            "POST /rewrite HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3\r\nold\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
        #expect(engine == "POST /rewrite HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"new\":true}old")
    }

    @Test func bodyReplacedUnreadIsDropped() throws {
        let (engine, _) = try Self.roundTrip("POST /replace-unread HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\noriginal")
        #expect(engine == "POST /replace-unread HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nreplacement")
    }

    @Test func upgradeRequestsKeepConnectionUpgrade() throws {
        let (engine, _) = try Self.roundTrip("POST /exec/1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}stdin")
        // Not answered with 101 by the fake engine: nothing after the body is forwarded.
        #expect(engine == "POST /exec/1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}")
    }
}

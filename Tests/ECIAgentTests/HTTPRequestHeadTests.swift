import ECICore
import Testing

@testable import ECIAgent

@Suite struct HTTPRequestHeadTests {
    static func head(_ lines: [String]) -> String { lines.joined(separator: "\r\n") + "\r\n\r\n" }

    static func refusal(_ text: String) -> ECIError? {
        do {
            _ = try HTTPRequestHead.parse(text)
            return nil
        } catch let error as ECIError {
            return error
        } catch {
            return ECIError(.internalError, "\(error)")
        }
    }

    @Test func parsesARequest() throws {
        let h = try HTTPRequestHead.parse(
            Self.head([
                "POST /v1.47/containers/create?name=web%20one&x=a+b HTTP/1.1", "Host: api.moby.localhost", "content-type: application/json",
                "Content-Length:  12 ", "X-Multi: a", "x-multi: b",
            ]))
        #expect(h.method == "POST")
        #expect(h.target == "/v1.47/containers/create?name=web%20one&x=a+b")
        #expect(h.path == "/v1.47/containers/create")
        #expect(h.version == .http11)
        #expect(h["Content-Type"] == "application/json")
        #expect(h["content-length"] == "12")
        #expect(h.values(for: "X-MULTI") == ["a", "b"])
        #expect(h.queryValue("name") == "web one")
        #expect(h.queryValue("x") == "a b")
        #expect(try h.bodyFraming() == .contentLength(12))
        #expect(h.headers.map(\.name) == ["Host", "content-type", "Content-Length", "X-Multi", "x-multi"])
    }

    @Test func serializesAndRoundTrips() throws {
        let text = Self.head(["GET /info HTTP/1.0", "Host: docker", "A: 1"])
        let h = try HTTPRequestHead.parse(text)
        #expect(h.version == .http10)
        #expect(String(decoding: h.serialized(), as: UTF8.self) == text)
        #expect(try HTTPRequestHead(parsing: h.serialized()) == h)
    }

    @Test func setAddRemove() throws {
        var h = try HTTPRequestHead.parse(Self.head(["GET / HTTP/1.1", "Connection: keep-alive", "A: 1", "connection: x", "B: 2"]))
        h.set("CONNECTION", "close")
        #expect(h.headers.map(\.name) == ["Connection", "A", "B"])
        #expect(h["connection"] == "close")
        h.add("A", "3")
        #expect(h.values(for: "a") == ["1", "3"])
        h.remove("a")
        #expect(h["A"] == nil)
        h.set("New", "v")
        #expect(h.headers.last == HTTPHeader(name: "New", value: "v"))
        try h.validate()
        h.set("Bad", "x\r\nInjected: 1")
        #expect(throws: ECIError.self) { try h.validate() }
    }

    @Test func upgradeDetection() throws {
        let up = try HTTPRequestHead.parse(Self.head(["POST /exec/1/start HTTP/1.1", "Connection: Upgrade", "Upgrade: tcp"]))
        #expect(up.isUpgrade)
        let list = try HTTPRequestHead.parse(Self.head(["POST /grpc HTTP/1.1", "Connection: keep-alive, upgrade", "Upgrade: h2c"]))
        #expect(list.isUpgrade)
        let no = try HTTPRequestHead.parse(Self.head(["POST /exec/1/start HTTP/1.1", "Upgrade: tcp"]))
        #expect(!no.isUpgrade)
    }

    @Test func percentDecodedPathAndQuery() throws {
        let h = try HTTPRequestHead.parse(Self.head(["POST /v1.47/containers/%63reate%2Fx?filters=%7B%22a%22%3A1%7D&flag&=v&&k=1&k=2 HTTP/1.1"]))
        #expect(h.path == "/v1.47/containers/create/x")
        #expect(h.rawPath == "/v1.47/containers/%63reate%2Fx")
        #expect(h.queryValue("filters") == "{\"a\":1}")
        #expect(h.queryValue("flag") == "")
        #expect(h.queryValue("") == "v")
        #expect(h.queryValues("k") == ["1", "2"])
        #expect(h.queryValue("missing") == nil)
        let plus = try HTTPRequestHead.parse(Self.head(["GET /a+b?c=d+e%2B HTTP/1.1"]))
        #expect(plus.path == "/a+b", "'+' is literal in a path")
        #expect(plus.queryValue("c") == "d e+")
    }

    @Test(arguments: [
        ("/a%zz", "bad escape in path"), ("/a%4", "truncated escape"), ("/a?b=%g1", "bad escape in query"), ("/a?x=1;y=2", "semicolon"),
        ("/a%00b", "NUL"), ("/a%0d%0a", "CRLF"), ("/a%ff", "not UTF-8"), ("/a#frag", "fragment"), ("*", "asterisk form"),
        ("http://evil/containers/create", "absolute form"), ("/a\u{7f}", "DEL"), ("/é", "non-ASCII"),
    ])
    func refusesBadTargets(target: String, why: String) {
        let error = Self.refusal(Self.head(["GET \(target) HTTP/1.1"]))
        #expect(error?.httpStatus == 400, "\(why)")
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n".replacingOccurrences(of: "\r\n", with: "\n"),
        "GET / HTTP/1.1\r\nHost: x\n\r\n",
        "GET / HTTP/1.1\rHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n X-Folded: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
        "GET / HTTP/1.1\r\n: x\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Bad: a\u{0}b\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Bad: a\u{1}b\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: x\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET /\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
        "GET / HTTP/1.1\r\n",
        "GET / FTP/1.1\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
    ])
    func refusesMalformedHeads(text: String) {
        #expect(Self.refusal(text)?.httpStatus == 400, "\(text.debugDescription)")
    }

    @Test func refusesOtherVersionsWith505() {
        #expect(Self.refusal("GET / HTTP/2.0\r\n\r\n")?.httpStatus == 505)
        #expect(Self.refusal("GET / HTTP/0.9\r\n\r\n")?.httpStatus == 505)
    }

    @Test func smugglingShapesAreRefused() {
        let base = "POST /containers/create HTTP/1.1\r\nHost: x\r\n"
        // CL + TE in either order.
        #expect(Self.refusal(base + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")?.httpStatus == 400)
        // Conflicting or malformed Content-Length.
        #expect(Self.refusal(base + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Content-Length: 5, 5\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Content-Length: +5\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Content-Length: 0x5\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Content-Length: \r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal(base + "Content-Length: 99999999999999999999\r\n\r\n")?.httpStatus == 400)
        // Transfer codings other than one chunked.
        #expect(Self.refusal(base + "Transfer-Encoding: gzip, chunked\r\n\r\n")?.httpStatus == 501)
        #expect(Self.refusal(base + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")?.httpStatus == 501)
        #expect(Self.refusal(base + "Transfer-Encoding: xchunked\r\n\r\n")?.httpStatus == 501)
        #expect(Self.refusal(base + "Transfer-Encoding: chunked \u{b}\r\n\r\n")?.httpStatus == 400)
        #expect(Self.refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")?.httpStatus == 400)
    }

    @Test func framing() throws {
        let base = "POST / HTTP/1.1\r\n"
        #expect(try HTTPRequestHead.parse(base + "\r\n").bodyFraming() == BodyFraming.none)
        #expect(try HTTPRequestHead.parse(base + "Content-Length: 0\r\n\r\n").bodyFraming() == BodyFraming.none)
        #expect(try HTTPRequestHead.parse(base + "Transfer-Encoding: Chunked\r\n\r\n").bodyFraming() == .chunked)
        let dup = try HTTPRequestHead.parse(base + "Content-Length: 7\r\nA: b\r\ncontent-length: 7\r\n\r\n")
        #expect(try dup.bodyFraming() == .contentLength(7))
        #expect(dup.values(for: "Content-Length") == ["7"], "identical duplicates are collapsed")
    }

    @Test func endOfHead() throws {
        let text = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY".utf8)
        #expect(try HTTPRequestHead.endOfHead(in: text) == text.count - 4)
        #expect(try HTTPRequestHead.endOfHead(in: Array(text.prefix(20))) == nil)
        #expect(throws: ECIError.self) { try HTTPRequestHead.endOfHead(in: Array("GET / HTTP/1.1\nHost: x".utf8)) }
        #expect(throws: ECIError.self) { try HTTPRequestHead.endOfHead(in: Array("GET / HTTP/1.1\rX".utf8)) }
    }

    @Test func hugeHeadsAreRefused() throws {
        let big = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 70_000)
        do {
            _ = try HTTPRequestHead.endOfHead(in: Array(big.utf8))
            Issue.record("expected a refusal")
        } catch let error as ECIError {
            #expect(error.httpStatus == 431)
        }
        #expect(Self.refusal(big + "\r\n\r\n")?.httpStatus == 431)
        // Just under the limit is fine.
        let fits = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPRequestHead.maximumSize - 40) + "\r\n\r\n"
        #expect(try HTTPRequestHead.endOfHead(in: Array(fits.utf8)) == fits.utf8.count)
        #expect(try HTTPRequestHead.parse(fits).method == "GET")
    }

    @Test func errorResponseFormat() {
        let text = String(decoding: HTTPResponseHead.errorResponse(status: 403, message: "no \"quotes\" \\ or\nnewlines\u{1}"), as: UTF8.self)
        let body = "{\"message\":\"no \\\"quotes\\\" \\\\ or\\nnewlines\\u0001\"}\n"
        #expect(
            text
                == "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body)
    }

    @Test func responseHeads() throws {
        let r = try HTTPResponseHead(parsing: Array("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".utf8))
        #expect(r.status == 101 && r.reason == "UPGRADED" && r["upgrade"] == "tcp")
        #expect(HTTPResponseHead.status(ofStatusLine: Array("HTTP/1.0 200".utf8)) == 200)
        #expect(HTTPResponseHead.status(ofStatusLine: Array("HTTP/1.1 2000 x".utf8)) == nil)
        #expect(HTTPResponseHead.status(ofStatusLine: Array("garbage".utf8)) == nil)
        let chunked = try HTTPResponseHead(parsing: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        #expect(try chunked.bodyFraming(requestMethod: "GET") == .chunked)
        #expect(try chunked.bodyFraming(requestMethod: "HEAD") == ResponseFraming.none)
        let plain = try HTTPResponseHead(parsing: Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        #expect(try plain.bodyFraming(requestMethod: "GET") == .untilClose)
    }
}

import ECICore
import Testing

@testable import ECIAgent

@Suite struct ChunkedDecoderTests {
    static let body = Array("5\r\nhello\r\n7;ext=1;q=\"x y\"\r\n, world\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n".utf8)
    static let decoded = Array("hello, world0123456789abcdef".utf8)
    static let after = Array("GET /smuggled HTTP/1.1\r\n\r\n".utf8)

    @Test func decodesInOnePiece() throws {
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        let used = try decoder.decode(Self.body + Self.after, into: &out, limit: 1000)
        #expect(used == Self.body.count, "nothing after the body is consumed")
        #expect(decoder.isComplete)
        #expect(out == Self.decoded)
    }

    @Test func splitAtEveryByteBoundary() throws {
        let input = Self.body + Self.after
        for split in 0...input.count {
            for mode in ["decode", "pass"] {
                var decoder = ChunkedDecoder()
                var out: [UInt8] = []
                var used = 0
                for piece in [input[0..<split], input[split...]] {
                    guard !decoder.isComplete else { break }
                    used += mode == "decode" ? try decoder.decode(piece, into: &out, limit: 1000) : try decoder.consume(piece)
                }
                #expect(decoder.isComplete, "split \(split)")
                #expect(used == Self.body.count, "split \(split) \(mode)")
                if mode == "decode" { #expect(out == Self.decoded, "split \(split)") }
            }
        }
    }

    @Test func byteAtATime() throws {
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        var used = 0
        for b in Self.body + Self.after where !decoder.isComplete {
            used += try decoder.decode([b], into: &out, limit: 1000)
        }
        #expect(used == Self.body.count && out == Self.decoded)
    }

    @Test func emptyBodyAndUppercaseHex() throws {
        var decoder = ChunkedDecoder()
        #expect(try decoder.consume(Array("0\r\n\r\n".utf8)) == 5)
        #expect(decoder.isComplete)
        var upper = ChunkedDecoder()
        var out: [UInt8] = []
        _ = try upper.decode(Array("A\r\n0123456789\r\n0\r\n\r\n".utf8), into: &out, limit: 100)
        #expect(upper.isComplete && out.count == 10)
    }

    @Test(arguments: [
        "\r\nhello\r\n0\r\n\r\n",  // no size
        "-5\r\nhello\r\n0\r\n\r\n",  // sign
        "+5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",  // prefix
        " 5\r\nhello\r\n0\r\n\r\n",  // whitespace
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",  // bare LF
        "5\rhello\r\n0\r\n\r\n",  // bare CR
        "5\r\nhelloX\r\n0\r\n\r\n",  // data longer than its size
        "5\r\nhello\n0\r\n\r\n",
        "g\r\n",  // not hex
        "1000000000000000\r\n",  // 16 hex digits: too large
        ";ext\r\n",  // extension without size
        "5;a\u{0}b\r\nhello\r\n0\r\n\r\n",  // control in extension
        "0\r\n X: folded\r\n\r\n",  // obs-fold trailer
        "0\r\nBad Name: x\r\n\r\n",
        "0\r\nX: a\u{1}\r\n\r\n",
        "0\r\nX: a\n\r\n",
        "0\r\n\r\r",
    ])
    func refusesMalformedInput(text: String) {
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        #expect(throws: ECIError.self, "\(text.debugDescription)") {
            _ = try decoder.decode(Array(text.utf8), into: &out, limit: 1 << 20)
        }
    }

    @Test func limits() throws {
        var decoder = ChunkedDecoder()
        var out: [UInt8] = []
        do {
            _ = try decoder.decode(Array("20\r\n".utf8) + [UInt8](repeating: 0x61, count: 32), into: &out, limit: 16)
            Issue.record("expected too large")
        } catch let error as ECIError {
            #expect(error.httpStatus == 413)
        }
        var longLine = ChunkedDecoder(maximumLineLength: 64)
        #expect(throws: ECIError.self) { _ = try longLine.consume(Array(("1;" + String(repeating: "x", count: 100)).utf8)) }
        var bigTrailers = ChunkedDecoder(maximumTrailerSize: 64)
        #expect(throws: ECIError.self) { _ = try bigTrailers.consume(Array(("0\r\nX: " + String(repeating: "y", count: 100)).utf8)) }
    }

    @Test func bodyDecoderWithContentLength() throws {
        var framing = BodyDecoder(.contentLength(5))
        #expect(try framing.passThrough(Array("hel".utf8)) == 3)
        #expect(!framing.isComplete)
        #expect(try framing.passThrough(Array("loGET /".utf8)) == 2)
        #expect(framing.isComplete)
        #expect(try framing.passThrough(Array("more".utf8)) == 0)
        var decoding = BodyDecoder(.contentLength(4))
        var out: [UInt8] = []
        #expect(try decoding.decode(Array("abcdef".utf8), into: &out, limit: 10) == 4)
        #expect(out == Array("abcd".utf8))
        var none = BodyDecoder(.none)
        #expect(none.isComplete)
        #expect(try none.passThrough([1, 2, 3]) == 0)
        var counter = ContentLengthCounter(length: 3)
        #expect(counter.consume(2) == 2 && counter.consume(5) == 1 && counter.isComplete)
    }
}

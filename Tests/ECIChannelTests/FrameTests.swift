import Testing

@testable import ECIChannel

/// A deterministic generator, so a fuzz failure can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct FrameTests {
    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func framesRoundTripWhateverTheChunking() {
        let frames = [
            Frame(kind: .hello, stream: 0, payload: Array("1 eci-agent".utf8)), Frame(kind: .open, stream: 7),
            Frame(kind: .data, stream: 7, payload: Array(repeating: 0xEC, count: 5000)), .window(stream: 7, credit: 5000),
            Frame(kind: .closeWrite, stream: 7), Frame(kind: .reset, stream: 9, payload: Array("bye".utf8)),
            Frame(kind: .data, stream: UInt32.max, payload: Array(repeating: 1, count: Frame.maxPayload)),
        ]
        let bytes = frames.flatMap { $0.encoded() }
        for chunk in [1, 3, 12, 16, 4096, bytes.count] {
            var decoder = FrameDecoder()
            var out: [Frame] = []
            var offset = 0
            while offset < bytes.count {
                out += decoder.feed(bytes[offset..<min(offset + chunk, bytes.count)])
                offset += chunk
            }
            #expect(out == frames, "chunk size \(chunk)")
            #expect(decoder.discarded == 0)
        }
        #expect(Frame.window(stream: 1, credit: 123_456).credit == 123_456)
    }

    @Test func garbageBetweenFramesIsSkippedAndCounted() {
        let a = Frame(kind: .open, stream: 1)
        let b = Frame(kind: .data, stream: 1, payload: [1, 2, 3])
        var decoder = FrameDecoder()
        let garbage: [UInt8] = [0x00, 0xEC, 0x1C, 0x07, 0xFF, 0xEC, 0xEC, 0x1C, 0x01, 0x63, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9]
        let frames = decoder.feed(garbage + a.encoded() + garbage + b.encoded())
        #expect(frames == [a, b])
        #expect(decoder.discarded == 2 * garbage.count)
    }

    @Test func aCorruptedFrameIsNeverDelivered() {
        var bytes = Frame(kind: .data, stream: 3, payload: Array("hello".utf8)).encoded()
        bytes[18] ^= 0x20  // a payload bit flips on the wire
        var decoder = FrameDecoder()
        let next = Frame(kind: .closeWrite, stream: 3)
        #expect(decoder.feed(bytes + next.encoded()) == [next])
    }

    @Test func anOversizedLengthDoesNotMakeTheDecoderWait() {
        var header: [UInt8] = Frame.magic + [Frame.version, Frame.Kind.data.rawValue, 0, 0, 0, 1]
        header += Frame.bigEndianBytes(UInt32(Frame.maxPayload + 1))
        header += Frame.bigEndianBytes(CRC32.checksum(header))
        var decoder = FrameDecoder()
        let next = Frame(kind: .open, stream: 2)
        #expect(decoder.feed(header + next.encoded()) == [next])
    }

    @Test func aFalseHeaderClaimingALongPayloadDoesNotStallDelivery() {
        var garbage: [UInt8] = Frame.magic + [Frame.version, Frame.Kind.data.rawValue, 0, 0, 0, 1]
        garbage += Frame.bigEndianBytes(60_000) + [1, 2, 3, 4]  // a wrong header checksum
        var decoder = FrameDecoder()
        let next = Frame(kind: .open, stream: 2)
        #expect(decoder.feed(garbage + next.encoded()) == [next], "the frame after the false header arrives at once")
    }

    @Test func resetDropsAPartialFrame() {
        var decoder = FrameDecoder()
        let bytes = Frame(kind: .data, stream: 1, payload: [1, 2, 3, 4]).encoded()
        #expect(decoder.feed(bytes.prefix(10)).isEmpty)
        decoder.reset()
        let next = Frame(kind: .open, stream: 5)
        #expect(decoder.feed(next.encoded()) == [next])
    }

    /// Random garbage interleaved with valid frames, cut at random points: every valid frame
    /// comes out, in order, and nothing else does.
    @Test(arguments: [1, 2, 3, 42, 1234, 99999])
    func fuzzedStreamsYieldExactlyTheValidFrames(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        var expected: [Frame] = []
        var wire: [UInt8] = []
        for _ in 0..<200 {
            if Bool.random(using: &rng) {
                var garbage = (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                // Sometimes make garbage look like the start of a frame.
                if Bool.random(using: &rng) { garbage.insert(contentsOf: Frame.magic + [Frame.version], at: 0) }
                wire += garbage
            }
            let kind = Frame.Kind.allCases.randomElement(using: &rng) ?? .data
            let payload = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let frame = Frame(kind: kind, stream: UInt32.random(in: 0...10, using: &rng), payload: payload)
            expected.append(frame)
            wire += frame.encoded()
        }
        var decoder = FrameDecoder()
        var out: [Frame] = []
        var offset = 0
        while offset < wire.count {
            let end = min(wire.count, offset + Int.random(in: 1...700, using: &rng))
            out += decoder.feed(wire[offset..<end])
            offset = end
        }
        // Garbage may swallow a frame that starts inside a false header only if the CRC matched
        // by chance (2^-32); the valid frames must all be there, in order.
        #expect(out == expected, "seed \(seed): \(out.count) of \(expected.count) frames")
    }

    @Test(arguments: [7, 8, 9])
    func pureGarbageYieldsNothing(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        for _ in 0..<100 {
            var chunk = (0..<512).map { _ in UInt8.random(in: 0...255, using: &rng) }
            chunk[Int.random(in: 0..<500, using: &rng)] = Frame.magic[0]
            frames += decoder.feed(chunk)
        }
        #expect(frames.isEmpty)
    }
}

@Suite struct StreamTableTests {
    @Test func aConnectionOpensCarriesDataHalfClosesAndEnds() {
        var host = StreamTable(initialWindow: 10)
        var guest = StreamTable(initialWindow: 10)
        let open = host.open(1)
        #expect(open == Frame(kind: .open, stream: 1))
        #expect(guest.receive(Frame(kind: .open, stream: 1)).events == [.opened(1)])
        let (frames, sent) = host.send(1, Array("hello world".utf8))
        #expect(sent == 10, "the window allows 10 bytes")
        #expect(host.sendCredit(1) == 0)
        var received: [UInt8] = []
        for frame in frames {
            for event in guest.receive(frame).events { if case let .data(_, bytes) = event { received += bytes } }
        }
        #expect(received == Array("hello worl".utf8))
        // The guest hands the bytes on: credit flows back, the rest can go.
        if let credit = guest.consumed(1, received.count) { _ = host.receive(credit) }
        #expect(host.sendCredit(1) == 10)
        let rest = host.send(1, Array("d".utf8))
        #expect(rest.sent == 1)
        // Half-close: the host writes no more but still reads what the guest sends.
        if let close = host.closeWrite(1) { #expect(guest.receive(close).events == [.readClosed(1)]) }
        #expect(host.send(1, [1]).sent == 0, "no writes after our half-close")
        let reply = guest.send(1, Array("response".utf8))
        #expect(reply.sent == 8)
        for frame in reply.frames { #expect(host.receive(frame).events == [.data(1, Array("response".utf8))]) }
        // The guest closes too: the stream ends on both sides.
        if let close = guest.closeWrite(1) { #expect(host.receive(close).events == [.readClosed(1), .reset(1, "closed")]) }
        #expect(host.openStreams.isEmpty && guest.openStreams.isEmpty)
    }

    @Test func sendsAreSplitIntoMaximalFrames() {
        var table = StreamTable(initialWindow: 200_000)
        _ = table.open(3)
        let (frames, sent) = table.send(3, Array(repeating: 7, count: 150_000))
        #expect(sent == 150_000)
        #expect(frames.map(\.payload.count) == [Frame.maxPayload, Frame.maxPayload, 150_000 - 2 * Frame.maxPayload])
    }

    @Test func aPeerBreakingFlowControlLosesOnlyThatStream() {
        var guest = StreamTable(initialWindow: 4)
        _ = guest.receive(Frame(kind: .open, stream: 1))
        _ = guest.receive(Frame(kind: .open, stream: 2))
        let (events, replies) = guest.receive(Frame(kind: .data, stream: 1, payload: [1, 2, 3, 4, 5]))
        #expect(events == [.reset(1, "data beyond the flow-control window")])
        #expect(replies.map(\.kind) == [.reset])
        #expect(guest.openStreams == [2])
        #expect(guest.receive(Frame(kind: .data, stream: 2, payload: [9])).events == [.data(2, [9])])
    }

    @Test func dataAfterHalfCloseOrOnUnknownStreamsIsRefused() {
        var guest = StreamTable()
        _ = guest.receive(Frame(kind: .open, stream: 1))
        _ = guest.receive(Frame(kind: .closeWrite, stream: 1))
        #expect(guest.receive(Frame(kind: .data, stream: 1, payload: [1])).events == [.reset(1, "data after the peer's half-close")])
        let unknown = guest.receive(Frame(kind: .data, stream: 77, payload: [1]))
        #expect(unknown.events.isEmpty && unknown.replies.map(\.kind) == [.reset])
        #expect(guest.receive(Frame(kind: .open, stream: 5)).events == [.opened(5)])
        #expect(guest.receive(Frame(kind: .open, stream: 5)).events == [.reset(5, "stream 5 opened twice")])
    }

    @Test func aDisconnectEndsEveryStream() {
        var guest = StreamTable()
        for id in [4, 2, 9] as [UInt32] { _ = guest.receive(Frame(kind: .open, stream: id)) }
        #expect(guest.disconnect() == [.reset(2, "the channel disconnected"), .reset(4, "the channel disconnected"), .reset(9, "the channel disconnected")])
        #expect(guest.openStreams.isEmpty)
    }

    @Test func windowCreditSaturates() {
        var table = StreamTable(initialWindow: 10)
        _ = table.open(1)
        _ = table.receive(.window(stream: 1, credit: UInt32.max))
        #expect(table.sendCredit(1) == UInt32.max)
    }
}

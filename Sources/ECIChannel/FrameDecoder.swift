/// Turns a byte stream into frames, resynchronising after garbage: bytes that do not start a
/// valid frame (wrong magic, version or kind, an oversized length, a bad checksum) are skipped
/// one at a time and counted, never delivered. Memory stays bounded by one maximal frame.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes discarded as garbage so far.
    public private(set) var discarded = 0

    public init() {}

    /// Adds received bytes and returns every complete frame they finish, in order.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Frame] where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        var frames: [Frame] = []
        while let next = nextFrame() { frames.append(next) }
        compact()
        return frames
    }

    /// Forgets a partial frame (the other side disconnected mid-frame).
    public mutating func reset() {
        discarded += buffer.count - start
        buffer = []
        start = 0
    }

    private var available: Int { buffer.count - start }

    private mutating func nextFrame() -> Frame? {
        while available >= Frame.headerSize {
            let h = start
            guard buffer[h] == Frame.magic[0], buffer[h + 1] == Frame.magic[1], buffer[h + 2] == Frame.version,
                let kind = Frame.Kind(rawValue: buffer[h + 3])
            else {
                skip()
                continue
            }
            let length = Int(read32(h + 8))
            guard length <= Frame.maxPayload, CRC32.checksum(buffer[h..<h + 12]) == read32(h + 12) else {
                skip()
                continue
            }
            let total = Frame.headerSize + length + Frame.trailerSize
            guard available >= total else { return nil }
            let crc = CRC32.checksum(buffer[h..<h + Frame.headerSize + length])
            guard crc == read32(h + Frame.headerSize + length) else {
                skip()
                continue
            }
            let frame = Frame(kind: kind, stream: read32(h + 4), payload: Array(buffer[h + Frame.headerSize..<h + Frame.headerSize + length]))
            start += total
            return frame
        }
        return nil
    }

    /// Drops one byte and looks for the next magic.
    private mutating func skip() {
        start += 1
        discarded += 1
        while start < buffer.count, buffer[start] != Frame.magic[0] {
            start += 1
            discarded += 1
        }
    }

    private func read32(_ offset: Int) -> UInt32 {
        buffer[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private mutating func compact() {
        if start > 0 && (start > 65536 || start == buffer.count) {
            buffer.removeFirst(start)
            start = 0
        }
    }
}

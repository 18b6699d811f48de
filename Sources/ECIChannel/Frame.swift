/// One message on a host↔guest channel (a virtio-serial port: a plain byte stream with no
/// message boundaries, which the host may close, reopen or fill with garbage at any time).
///
/// Wire format, big-endian:
///
///     magic 0xEC 0x1C | version 1 | kind 1 | stream 4 | length 4 | header crc32 4 | payload | crc32 4
///
/// The magic lets a reader find the next frame after garbage. The header's own CRC-32 (IEEE)
/// rejects a false header at once, so garbage claiming a long payload never makes the reader
/// wait for bytes that will not come; the trailing CRC-32 (over header and payload) makes sure
/// nothing corrupted is ever delivered.
public struct Frame: Sendable, Equatable {
    public enum Kind: UInt8, Sendable, CaseIterable {
        // Control port.
        /// Version negotiation: payload is the sender's protocol version and name (UTF-8).
        case hello = 1
        /// A request (JSON) on the control port; the stream field is the request id.
        case request = 2
        /// The answer to a request with the same id.
        case response = 3
        // Tunnel port: many engine API connections, each a stream.
        /// The host opens stream `stream` (a new client connection to the engine API).
        case open = 16
        /// Bytes of stream `stream`, within the receiver's window.
        case data = 17
        /// The receiver consumed bytes: the sender may send `UInt32(payload)` more.
        case window = 18
        /// The sender will send no more data on the stream (half-close); it still reads.
        case closeWrite = 19
        /// The stream is gone in both directions (payload: a reason, UTF-8).
        case reset = 20
    }

    public static let magic: [UInt8] = [0xEC, 0x1C]
    public static let version: UInt8 = 1
    public static let headerSize = 16
    public static let trailerSize = 4
    /// Largest payload: bounds a reader's memory whatever the other side sends.
    public static let maxPayload = 64 * 1024

    public var kind: Kind
    public var stream: UInt32
    public var payload: [UInt8]

    public init(kind: Kind, stream: UInt32, payload: [UInt8] = []) {
        self.kind = kind
        self.stream = stream
        self.payload = payload
    }

    /// A window frame granting `credit` more bytes.
    public static func window(stream: UInt32, credit: UInt32) -> Frame {
        Frame(kind: .window, stream: stream, payload: bigEndianBytes(credit))
    }

    /// The credit of a window frame.
    public var credit: UInt32? {
        guard kind == .window, payload.count == 4 else { return nil }
        return payload.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The frame's bytes on the wire.
    public func encoded() -> [UInt8] {
        precondition(payload.count <= Self.maxPayload, "frame payload over the limit")
        var out = Self.magic
        out.append(Self.version)
        out.append(kind.rawValue)
        out += Self.bigEndianBytes(stream)
        out += Self.bigEndianBytes(UInt32(payload.count))
        out += Self.bigEndianBytes(CRC32.checksum(out))
        out += payload
        out += Self.bigEndianBytes(CRC32.checksum(out))
        return out
    }

    static func bigEndianBytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}

/// CRC-32 (IEEE 802.3, as zlib), table-driven, slicing by 8.
///
/// Every byte on a port is checksummed twice (header and frame), on both sides, so this is
/// the hot loop of the channel; contiguous input goes through unsafe pointers and eight tables
/// so even unoptimised (debug, test) builds move tens of megabytes per second.
public enum CRC32 {
    /// `tables[k][n]`: the CRC of byte `n` followed by `k` zero bytes (slicing-by-8), flattened.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[n] = c
        }
        for k in 1..<8 {
            for n in 0..<256 {
                let previous = t[(k - 1) * 256 + n]
                t[k * 256 + n] = t[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return t
    }()

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        if let crc = bytes.withContiguousStorageIfAvailable({ update(0xFFFF_FFFF, $0) }) {
            return crc ^ 0xFFFF_FFFF
        }
        return update(0xFFFF_FFFF, Array(bytes)) ^ 0xFFFF_FFFF
    }

    private static func update(_ initial: UInt32, _ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { update(initial, $0) }
    }

    private static func update(_ initial: UInt32, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        tables.withUnsafeBufferPointer { t in
            var crc = initial
            var i = 0
            let count = bytes.count
            while i + 8 <= count {
                let one = crc ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                let two = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 24
                crc = t[7 * 256 + Int(one & 0xFF)] ^ t[6 * 256 + Int(one >> 8 & 0xFF)]
                    ^ t[5 * 256 + Int(one >> 16 & 0xFF)] ^ t[4 * 256 + Int(one >> 24)]
                    ^ t[3 * 256 + Int(two & 0xFF)] ^ t[2 * 256 + Int(two >> 8 & 0xFF)]
                    ^ t[256 + Int(two >> 16 & 0xFF)] ^ t[Int(two >> 24)]
                i += 8
            }
            while i < count {
                crc = t[Int((crc ^ UInt32(bytes[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
            return crc
        }
    }
}

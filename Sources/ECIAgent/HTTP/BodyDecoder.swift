import ECICore

/// One request body's framing as a state machine: tells which input bytes belong to the body
/// (to pass them through unchanged) or decodes them into a buffer (for a filter to read).
public struct BodyDecoder: Sendable {
    private enum Machine: Sendable {
        case none
        case length(ContentLengthCounter)
        case chunked(ChunkedDecoder)
    }

    private var machine: Machine

    public init(_ framing: BodyFraming) {
        switch framing {
        case .none: machine = .none
        case .contentLength(let length): machine = .length(ContentLengthCounter(length: length))
        case .chunked: machine = .chunked(ChunkedDecoder())
        }
    }

    /// Whether the body's end has been reached.
    public var isComplete: Bool {
        switch machine {
        case .none: return true
        case .length(let counter): return counter.isComplete
        case .chunked(let decoder): return decoder.isComplete
        }
    }

    /// How many leading bytes of `bytes` belong to the body (to forward unchanged).
    public mutating func passThrough<C: Collection>(_ bytes: C) throws -> Int where C.Element == UInt8 {
        switch machine {
        case .none:
            return 0
        case .length(var counter):
            let n = counter.consume(bytes.count)
            machine = .length(counter)
            return n
        case .chunked(var decoder):
            defer { machine = .chunked(decoder) }
            return try decoder.consume(bytes)
        }
    }

    /// Decodes the body's bytes among `bytes` into `buffer` (at most `limit` bytes in all,
    /// else `.httpBodyTooLarge`); returns how many leading bytes of `bytes` were body.
    public mutating func decode<C: Collection>(_ bytes: C, into buffer: inout [UInt8], limit: Int) throws -> Int where C.Element == UInt8 {
        switch machine {
        case .none:
            return 0
        case .length(var counter):
            let n = counter.consume(bytes.count)
            machine = .length(counter)
            guard buffer.count + n <= limit else { throw ECIError(.httpBodyTooLarge, "request body larger than \(limit) bytes") }
            buffer.append(contentsOf: bytes.prefix(n))
            return n
        case .chunked(var decoder):
            defer { machine = .chunked(decoder) }
            return try decoder.decode(bytes, into: &buffer, limit: limit)
        }
    }
}

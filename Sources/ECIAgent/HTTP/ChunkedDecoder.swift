import ECICore

/// A strict decoder of the chunked transfer coding (RFC 9112 §7.1), fed bytes as they arrive.
///
/// It finds exactly where the chunked body ends, so a proxy can pass the body through
/// unchanged (`consume` returns how many bytes of the input belong to the body) and never
/// forward a byte past it, or decode it to a buffer for a filter to read. Strict: chunk-size
/// lines, data and trailers must end in CRLF; sizes are hex without sign or whitespace (at
/// most 15 digits); extensions (`;name=value`) are allowed but bounded; trailer fields must be
/// well-formed (no obs-fold).
public struct ChunkedDecoder: Sendable {
    private enum State: Sendable, Equatable {
        case size(digits: Int)
        case sizeExtension
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerName(length: Int)
        case trailerValue
        case trailerLF
        case finalLF
        case done
    }

    private var state: State = .size(digits: 0)
    private var chunkSize = 0
    private var lineLength = 0
    private var trailerBytes = 0
    private let maximumLineLength: Int
    private let maximumTrailerSize: Int

    /// Whether the last chunk and the trailer section have been consumed.
    public var isComplete: Bool { state == .done }

    /// - Parameters:
    ///   - maximumLineLength: the longest chunk-size line (extensions included).
    ///   - maximumTrailerSize: the most bytes of trailer fields.
    public init(maximumLineLength: Int = 4096, maximumTrailerSize: Int = 64 * 1024) {
        self.maximumLineLength = maximumLineLength
        self.maximumTrailerSize = maximumTrailerSize
    }

    private static func malformed(_ what: String) -> ECIError {
        ECIError.badRequest("malformed chunked body: \(what)")
    }

    /// Consumes `bytes` up to the end of the body. Returns how many leading bytes of `bytes`
    /// belong to the body (all of them until the end is reached; bytes after it are not
    /// consumed). Chunk data is handed to `data` as it is decoded. Throws on malformed input;
    /// the decoder must not be used after an error.
    public mutating func consume<C: Collection>(_ bytes: C, data: (C.SubSequence) throws -> Void = { _ in }) throws -> Int
    where C.Element == UInt8 {
        var i = bytes.startIndex
        var consumed = 0
        while i < bytes.endIndex {
            if case .data(let remaining) = state {
                let available = bytes.distance(from: i, to: bytes.endIndex)
                let take = min(remaining, available)
                let end = bytes.index(i, offsetBy: take)
                try data(bytes[i..<end])
                i = end
                consumed += take
                state = remaining == take ? .dataCR : .data(remaining: remaining - take)
                continue
            }
            if state == .done { break }
            try step(bytes[i])
            i = bytes.index(after: i)
            consumed += 1
        }
        return consumed
    }

    /// Decodes `bytes` appending chunk data to `buffer`, refusing (`.httpBodyTooLarge`) to
    /// let `buffer` grow past `limit`. Returns how many bytes of `bytes` belong to the body.
    public mutating func decode<C: Collection>(_ bytes: C, into buffer: inout [UInt8], limit: Int) throws -> Int where C.Element == UInt8 {
        var out: [UInt8] = []
        swap(&out, &buffer)
        defer { swap(&out, &buffer) }
        return try consume(bytes) { chunk in
            guard out.count + chunk.count <= limit else { throw ECIError(.httpBodyTooLarge, "request body larger than \(limit) bytes") }
            out.append(contentsOf: chunk)
        }
    }

    private mutating func countLineByte() throws {
        lineLength += 1
        guard lineLength <= maximumLineLength else { throw Self.malformed("chunk-size line too long") }
    }

    private mutating func countTrailerByte() throws {
        trailerBytes += 1
        guard trailerBytes <= maximumTrailerSize else { throw Self.malformed("trailer section too large") }
    }

    private mutating func step(_ b: UInt8) throws {
        switch state {
        case .size(let digits):
            try countLineByte()
            if let value = HTTPSyntax.hexValue(b) {
                guard digits < 15 else { throw Self.malformed("chunk size too large") }
                chunkSize = chunkSize << 4 | Int(value)
                state = .size(digits: digits + 1)
            } else if b == UInt8(ascii: ";") {
                guard digits > 0 else { throw Self.malformed("missing chunk size") }
                state = .sizeExtension
            } else if b == HTTPSyntax.cr {
                guard digits > 0 else { throw Self.malformed("missing chunk size") }
                state = .sizeLF
            } else {
                throw Self.malformed("invalid character in chunk size")
            }
        case .sizeExtension:
            try countLineByte()
            if b == HTTPSyntax.cr {
                state = .sizeLF
            } else if !(b == HTTPSyntax.htab || (b >= 0x20 && b < 0x7F)) {
                throw Self.malformed("invalid character in chunk extension")
            }
        case .sizeLF:
            guard b == HTTPSyntax.lf else { throw Self.malformed("chunk-size line must end in CRLF") }
            lineLength = 0
            if chunkSize == 0 {
                state = .trailerLineStart
            } else {
                state = .data(remaining: chunkSize)
            }
            chunkSize = 0
        case .data:
            // Handled in bulk by `consume`.
            break
        case .dataCR:
            guard b == HTTPSyntax.cr else { throw Self.malformed("chunk data must be followed by CRLF") }
            state = .dataLF
        case .dataLF:
            guard b == HTTPSyntax.lf else { throw Self.malformed("chunk data must be followed by CRLF") }
            state = .size(digits: 0)
        case .trailerLineStart:
            try countTrailerByte()
            if b == HTTPSyntax.cr {
                state = .finalLF
            } else if HTTPSyntax.isTokenByte(b) {
                state = .trailerName(length: 1)
            } else {
                throw Self.malformed("invalid trailer field")
            }
        case .trailerName(let length):
            try countTrailerByte()
            if b == HTTPSyntax.colon {
                state = .trailerValue
            } else if HTTPSyntax.isTokenByte(b) {
                state = .trailerName(length: length + 1)
            } else {
                throw Self.malformed("invalid trailer field name")
            }
        case .trailerValue:
            try countTrailerByte()
            if b == HTTPSyntax.cr {
                state = .trailerLF
            } else if !HTTPSyntax.isFieldValueByte(b) {
                throw Self.malformed("invalid trailer field value")
            }
        case .trailerLF:
            try countTrailerByte()
            guard b == HTTPSyntax.lf else { throw Self.malformed("trailer field must end in CRLF") }
            state = .trailerLineStart
        case .finalLF:
            guard b == HTTPSyntax.lf else { throw Self.malformed("chunked body must end in CRLF") }
            state = .done
        case .done:
            break
        }
    }
}

import ECICore

/// How a request's body is delimited on the wire.
public enum BodyFraming: Sendable, Equatable {
    /// No body.
    case none
    /// Exactly this many bytes follow the head.
    case contentLength(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
}

extension HTTPRequestHead {
    /// The request's body framing, refusing the ambiguous cases request smuggling relies on:
    /// both Content-Length and Transfer-Encoding, Content-Length fields that disagree or are not
    /// plain decimal, a Transfer-Encoding other than one `chunked` (501), Transfer-Encoding in
    /// HTTP/1.0.
    public func bodyFraming() throws -> BodyFraming {
        let lengths = values(for: "Content-Length")
        let encodings = values(for: "Transfer-Encoding")
        if !encodings.isEmpty {
            guard lengths.isEmpty else {
                throw ECIError.badRequest("malformed request: both Content-Length and Transfer-Encoding (refused to avoid request smuggling)")
            }
            guard version == .http11 else { throw ECIError.badRequest("malformed request: Transfer-Encoding in an HTTP/1.0 request") }
            guard encodings.count == 1, HTTPSyntax.equalsIgnoringCase(encodings[0], "chunked") else {
                throw ECIError(.httpNotImplemented, "unsupported Transfer-Encoding \"\(encodings.joined(separator: ", "))\" (only a single chunked is accepted)")
            }
            return .chunked
        }
        guard let first = lengths.first else { return .none }
        guard lengths.allSatisfy({ $0 == first }) else {
            throw ECIError.badRequest("malformed request: Content-Length fields with different values (refused to avoid request smuggling)")
        }
        guard let length = Self.parseContentLength(first) else { throw ECIError.badRequest("malformed request: invalid Content-Length \"\(first.prefix(32))\"") }
        return length == 0 ? .none : .contentLength(length)
    }

    /// 1*DIGIT, at most 18 digits (no sign, no list, no whitespace).
    static func parseContentLength(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }
}

import ECICore

/// An HTTP/1.x response head (status line and fields), for reading the engine's answers.
public struct HTTPResponseHead: Sendable, Equatable {
    /// The largest response head accepted.
    public static let maximumSize = 64 * 1024

    public var status: Int
    public var reason: String
    /// "HTTP/1.1" or "HTTP/1.0".
    public var version: String
    public var headers: [HTTPHeader]

    public init(status: Int, reason: String, version: String = "HTTP/1.1", headers: [HTTPHeader] = []) {
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
    }

    /// Parses a complete response head (up to and including the empty line).
    public init<C: Collection>(parsing bytes: C) throws where C.Element == UInt8 {
        let bytes = Array(bytes)
        guard bytes.count <= Self.maximumSize else { throw ECIError(.httpHeadTooLarge, "response head larger than \(Self.maximumSize) bytes") }
        let lines = try HTTPSyntax.lines(ofHead: bytes)
        guard let statusLine = lines.first, let status = Self.status(ofStatusLine: statusLine) else {
            throw ECIError.badRequest("malformed response status line")
        }
        self.status = status
        version = String(decoding: statusLine.prefix(8), as: UTF8.self)
        reason = String(decoding: statusLine.dropFirst(13), as: UTF8.self)
        headers = try HTTPSyntax.headerFields(lines.dropFirst())
    }

    /// The status code of a status line (`HTTP/1.x SSS[ reason]`, without CRLF), nil when it is
    /// not one.
    public static func status<C: Collection>(ofStatusLine line: C) -> Int? where C.Element == UInt8 {
        let bytes = Array(line)
        guard bytes.count >= 12, bytes.starts(with: Array("HTTP/1.".utf8)), bytes[8] == HTTPSyntax.sp else { return nil }
        guard bytes[7] == UInt8(ascii: "0") || bytes[7] == UInt8(ascii: "1") else { return nil }
        let digits = bytes[9..<12]
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        guard bytes.count == 12 || bytes[12] == HTTPSyntax.sp else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    /// The first value of the field `name` (case-insensitive).
    public subscript(name: String) -> String? {
        headers.first { HTTPSyntax.equalsIgnoringCase($0.name, name) }?.value
    }

    /// How the body after this head is delimited (RFC 9112 §6.3), given the request's method.
    public func bodyFraming(requestMethod: String) throws -> ResponseFraming {
        if requestMethod == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 { return .none }
        let encodings = headers.filter { HTTPSyntax.equalsIgnoringCase($0.name, "Transfer-Encoding") }.flatMap { HTTPSyntax.listElements($0.value) }
        if let last = encodings.last {
            return HTTPSyntax.equalsIgnoringCase(last, "chunked") ? .chunked : .untilClose
        }
        let lengths = headers.filter { HTTPSyntax.equalsIgnoringCase($0.name, "Content-Length") }.map(\.value)
        guard let first = lengths.first else { return .untilClose }
        guard lengths.allSatisfy({ $0 == first }), let length = HTTPRequestHead.parseContentLength(first) else {
            throw ECIError.badRequest("malformed response: invalid Content-Length")
        }
        return .contentLength(length)
    }

    /// The response head on the wire.
    public func serialized() -> [UInt8] {
        var text = "\(version) \(status) \(reason)\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }
}

/// How a response body is delimited.
public enum ResponseFraming: Sendable, Equatable {
    case none
    case contentLength(Int)
    case chunked
    /// Until the server closes the connection.
    case untilClose
}

extension HTTPResponseHead {
    /// The standard reason phrase of `status` ("Error" for unknown codes).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// A complete error response in the engine's own format, which the docker CLI prints as
    /// `Error response from daemon: <message>`: JSON `{"message": ...}`, Content-Length,
    /// `Connection: close`. A status outside 100...599 becomes 500.
    public static func errorResponse(status: Int, message: String) -> [UInt8] {
        let code = (100...599).contains(status) ? status : 500
        let body = Array("{\"message\":\(LogDestination.jsonString(message))}\n".utf8)
        let head = HTTPResponseHead(
            status: code, reason: reasonPhrase(code),
            headers: [
                HTTPHeader(name: "Content-Type", value: "application/json"),
                HTTPHeader(name: "Content-Length", value: String(body.count)),
                HTTPHeader(name: "Connection", value: "close"),
            ])
        return head.serialized() + body
    }
}

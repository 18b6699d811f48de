import ECICore

/// One header field, as received (name case preserved, value without surrounding whitespace).
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One query parameter, percent-decoded ('+' as space), as Go's `url.ParseQuery` (and so the
/// engine) reads it. A parameter without '=' has an empty value.
public struct HTTPQueryItem: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The HTTP versions a request may use.
public enum HTTPVersion: String, Sendable, Equatable {
    case http10 = "HTTP/1.0"
    case http11 = "HTTP/1.1"
}

/// An HTTP/1.x request head: request line and header fields.
///
/// Parsing is strict, so that the filter and the engine can never disagree on what a request
/// is: lines must end in CRLF (a bare CR or LF is refused), obs-fold and invalid field names or
/// values are refused, the request-target must be origin-form with valid percent-encoding, a
/// request may not carry both Content-Length and Transfer-Encoding, Content-Length values must
/// agree, and the only transfer coding accepted is a single `chunked`.
///
/// `path` and `queryItems` are percent-decoded the way the engine's router decodes them, so
/// `/containers/%63reate` is `/containers/create` to a vetter as it is to the engine.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The largest head accepted, terminating empty line included.
    public static let maximumSize = 64 * 1024

    /// The method, a token (`GET`, `POST`, ...), case-sensitive.
    public var method: String
    /// The request-target in origin-form as sent: the raw (still percent-encoded) path and
    /// optional `?query`.
    public var target: String
    public var version: HTTPVersion
    /// The header fields in order, names as received.
    public private(set) var headers: [HTTPHeader]

    /// A head built in code; `validate()` checks it (the proxy does before forwarding).
    public init(method: String, target: String, version: HTTPVersion = .http11, headers: [HTTPHeader] = []) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    // MARK: Parsing

    /// The index just past the head's terminating empty line in `buffer`, or nil when more
    /// bytes are needed. Throws as soon as a bare CR or LF appears (lines end in CRLF only), and
    /// when no end was found within `limit` bytes (`.httpHeadTooLarge`).
    public static func endOfHead<C: Collection>(in buffer: C, limit: Int = maximumSize) throws -> Int? where C.Element == UInt8, C.Index == Int {
        // The three bytes before the current one, oldest first.
        var p0: UInt8 = 0, p1: UInt8 = 0, p2: UInt8 = 0
        var i = buffer.startIndex
        while i < buffer.endIndex {
            let b = buffer[i]
            let offset = i - buffer.startIndex
            if b == HTTPSyntax.lf {
                guard p2 == HTTPSyntax.cr else { throw ECIError.badRequest("malformed request head: bare LF (lines must end in CRLF)") }
                if p1 == HTTPSyntax.lf && p0 == HTTPSyntax.cr {
                    guard offset + 1 <= limit else { throw tooLarge(limit) }
                    return offset + 1
                }
            } else if p2 == HTTPSyntax.cr {
                throw ECIError.badRequest("malformed request head: bare CR")
            }
            (p0, p1, p2) = (p1, p2, b)
            i += 1
        }
        if buffer.count >= limit { throw tooLarge(limit) }
        return nil
    }

    private static func tooLarge(_ limit: Int) -> ECIError {
        ECIError(.httpHeadTooLarge, "request head larger than \(limit) bytes")
    }

    /// Parses a complete head: the request line, the header lines and the terminating empty
    /// line (exactly the bytes up to `endOfHead`). Normalises duplicate identical
    /// Content-Length fields to one.
    public init<C: Collection>(parsing bytes: C) throws where C.Element == UInt8 {
        let bytes = Array(bytes)
        guard bytes.count <= Self.maximumSize else { throw Self.tooLarge(Self.maximumSize) }
        let lines = try HTTPSyntax.lines(ofHead: bytes)
        guard let requestLine = lines.first, !requestLine.isEmpty else { throw ECIError.badRequest("malformed request line: empty") }
        let parts = requestLine.split(separator: HTTPSyntax.sp, omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw ECIError.badRequest("malformed request line: expected METHOD SP TARGET SP VERSION")
        }
        guard HTTPSyntax.isToken(parts[0]) else { throw ECIError.badRequest("malformed request line: invalid method") }
        let versionText = String(decoding: parts[2], as: UTF8.self)
        guard let version = HTTPVersion(rawValue: versionText) else {
            if versionText.hasPrefix("HTTP/"), versionText.utf8.count == 8 {
                throw ECIError(.httpVersionNotSupported, "HTTP version \(versionText) is not supported")
            }
            throw ECIError.badRequest("malformed request line: invalid HTTP version")
        }
        method = String(decoding: parts[0], as: UTF8.self)
        target = String(decoding: parts[1], as: UTF8.self)
        self.version = version
        headers = []
        try Self.validateTarget(Array(parts[1]))
        headers = try HTTPSyntax.headerFields(lines.dropFirst())
        if values(for: "Host").count > 1 { throw ECIError.badRequest("malformed request: more than one Host field") }
        // Validates framing (smuggling rules) and keeps a single Content-Length.
        if case .contentLength(let length) = try bodyFraming(), values(for: "Content-Length").count > 1 {
            set("Content-Length", String(length))
        }
    }

    /// Parses a head from text (tests, tools); same rules as `init(parsing:)`.
    public static func parse(_ text: String) throws -> HTTPRequestHead {
        try HTTPRequestHead(parsing: Array(text.utf8))
    }

    static func quoted<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let printable = bytes.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "?" }
        return "\"" + String(printable) + "\""
    }

    /// Checks an origin-form request-target: starts with '/', visible ASCII only, no fragment,
    /// valid percent-encoding in path and query, no ';' separators in the query (the engine's
    /// Go refuses them), decoded text UTF-8 without controls.
    static func validateTarget(_ bytes: [UInt8]) throws {
        guard bytes.first == UInt8(ascii: "/") else {
            throw ECIError.badRequest("malformed request line: the target must be a path starting with '/'")
        }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }) else {
            throw ECIError.badRequest("malformed request line: invalid character in the target")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let (rawPath, rawQuery) = split(target: text)
        guard HTTPSyntax.percentDecode(rawPath, plusAsSpace: false) != nil else {
            throw ECIError.badRequest("malformed request line: invalid percent-encoding in the path")
        }
        guard let rawQuery else { return }
        guard !rawQuery.contains(";") else { throw ECIError.badRequest("malformed query: ';' is not a separator") }
        for part in rawQuery.split(separator: "&") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.allSatisfy({ HTTPSyntax.percentDecode($0, plusAsSpace: true) != nil }) else {
                throw ECIError.badRequest("malformed query: invalid percent-encoding")
            }
        }
    }

    private static func split(target: String) -> (path: Substring, query: Substring?) {
        guard let mark = target.firstIndex(of: "?") else { return (target[...], nil) }
        return (target[..<mark], target[target.index(after: mark)...])
    }

    /// Checks what `init(parsing:)` checks, for heads built or rewritten in code: method token,
    /// target, field names and values, framing. The proxy refuses to forward a head that fails.
    public func validate() throws {
        guard HTTPSyntax.isToken(method.utf8) else { throw ECIError.badRequest("invalid method \(Self.quoted(method.utf8))") }
        try Self.validateTarget(Array(target.utf8))
        for header in headers {
            guard HTTPSyntax.isToken(header.name.utf8) else { throw ECIError.badRequest("invalid header name \(Self.quoted(header.name.utf8))") }
            guard HTTPSyntax.isFieldValue(header.value) else { throw ECIError.badRequest("invalid value for header \(header.name)") }
        }
        _ = try bodyFraming()
    }

    // MARK: Target

    /// The path, percent-decoded (as the engine's router matches it); the raw target when the
    /// target is invalid (`validate()` refuses such a head).
    public var path: String {
        let raw = Self.split(target: target).path
        return HTTPSyntax.percentDecode(raw, plusAsSpace: false) ?? String(raw)
    }

    /// The path as sent, still percent-encoded.
    public var rawPath: String { String(Self.split(target: target).path) }

    /// The query as sent (after '?', still encoded), nil when the target has no '?'.
    public var rawQuery: String? { Self.split(target: target).query.map(String.init) }

    /// The query parameters in order, decoded as Go's `url.ParseQuery` does (empty segments
    /// skipped, '+' as space). Parameters that fail to decode are left out (a parsed or
    /// validated head has none).
    public var queryItems: [HTTPQueryItem] {
        guard let rawQuery = Self.split(target: target).query else { return [] }
        return rawQuery.split(separator: "&").compactMap { part in
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = HTTPSyntax.percentDecode(pair[0], plusAsSpace: true) else { return nil }
            let value = pair.count > 1 ? HTTPSyntax.percentDecode(pair[1], plusAsSpace: true) : ""
            return value.map { HTTPQueryItem(name: name, value: $0) }
        }
    }

    /// Every value of the query parameter `name` (case-sensitive, as in Go), in order.
    public func queryValues(_ name: String) -> [String] {
        queryItems.filter { $0.name == name }.map(\.value)
    }

    /// The first value of the query parameter `name` (Go's `Form.Get`), nil when absent.
    public func queryValue(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    // MARK: Headers

    /// The first value of the field `name` (case-insensitive), nil when absent.
    public subscript(name: String) -> String? {
        headers.first { HTTPSyntax.equalsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of the field `name` (case-insensitive), in order.
    public func values(for name: String) -> [String] {
        headers.filter { HTTPSyntax.equalsIgnoringCase($0.name, name) }.map(\.value)
    }

    /// Whether the field `name` is present.
    public func contains(_ name: String) -> Bool { self[name] != nil }

    /// Whether the comma-separated list field `name` (e.g. Connection) has `token` among its
    /// elements, case-insensitively.
    public func listContains(_ name: String, token: String) -> Bool {
        values(for: name).contains { value in HTTPSyntax.listElements(value).contains { HTTPSyntax.equalsIgnoringCase($0, token) } }
    }

    /// Sets the field `name` to the single value `value`: replaces the first occurrence in
    /// place and removes the others, or appends when absent.
    public mutating func set(_ name: String, _ value: String) {
        if let first = headers.firstIndex(where: { HTTPSyntax.equalsIgnoringCase($0.name, name) }) {
            headers[first].value = value
            var index = headers.index(after: first)
            while index < headers.endIndex {
                if HTTPSyntax.equalsIgnoringCase(headers[index].name, name) { headers.remove(at: index) } else { index += 1 }
            }
        } else {
            headers.append(HTTPHeader(name: name, value: value))
        }
    }

    /// Appends a field (keeps any existing ones with the same name).
    public mutating func add(_ name: String, _ value: String) {
        headers.append(HTTPHeader(name: name, value: value))
    }

    /// Removes every occurrence of the field `name`.
    public mutating func remove(_ name: String) {
        headers.removeAll { HTTPSyntax.equalsIgnoringCase($0.name, name) }
    }

    /// Whether this request asks to switch protocols (Connection lists `upgrade` and an
    /// Upgrade field is present): the engine's hijacked streams (attach, exec, BuildKit).
    public var isUpgrade: Bool {
        contains("Upgrade") && listContains("Connection", token: "upgrade")
    }

    // MARK: Serialisation

    /// The head on the wire: request line, fields in order, empty line, CRLF throughout.
    public func serialized() -> [UInt8] {
        var text = "\(method) \(target) \(version.rawValue)\r\n"
        for header in headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }
}

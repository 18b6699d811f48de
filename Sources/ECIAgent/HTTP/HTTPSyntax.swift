import ECICore

/// Byte-level HTTP/1.1 grammar (RFC 9110, RFC 9112) shared by the parsers: token and field
/// characters, ASCII case folding, percent-decoding.
enum HTTPSyntax {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// tchar: "!#$%&'*+-.^_`|~", digits and letters.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// field-content bytes: visible ASCII, obs-text, space and horizontal tab (no CR, LF, NUL or other controls).
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == htab || (b >= 0x20 && b != 0x7F)
    }

    /// Whether `text` is a non-empty token.
    static func isToken<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
        var any = false
        for b in bytes {
            guard isTokenByte(b) else { return false }
            any = true
        }
        return any
    }

    /// Whether `text` is a valid field value: field bytes only, no leading or trailing whitespace.
    static func isFieldValue(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy(isFieldValueByte) else { return false }
        if let first = bytes.first, first == sp || first == htab { return false }
        if let last = bytes.last, last == sp || last == htab { return false }
        return true
    }

    /// ASCII-only lowercasing (header names and tokens are ASCII; no locale involved).
    static func lowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// ASCII case-insensitive equality.
    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) {
            let lp = p >= 0x41 && p <= 0x5A ? p + 0x20 : p
            let lq = q >= 0x41 && q <= 0x5A ? q + 0x20 : q
            if lp != lq { return false }
        }
        return true
    }

    /// The comma-separated elements of a list header value, trimmed, empty ones dropped.
    static func listElements(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Percent-decodes `text` (and '+' to space when `plusAsSpace`, as in a query). Nil when
    /// an escape is malformed, or the result is not UTF-8 or contains a control character.
    static func percentDecode<S: StringProtocol>(_ text: S, plusAsSpace: Bool) -> String? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else if b == UInt8(ascii: "+") && plusAsSpace {
                out.append(sp)
                i += 1
            } else {
                out.append(b)
                i += 1
            }
        }
        guard !out.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return String(validating: out, as: UTF8.self)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's OWS).
    func trimmingSpaces() -> String {
        var bytes = Substring(self).utf8[...]
        while let f = bytes.first, f == HTTPSyntax.sp || f == HTTPSyntax.htab { bytes = bytes.dropFirst() }
        while let l = bytes.last, l == HTTPSyntax.sp || l == HTTPSyntax.htab { bytes = bytes.dropLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension HTTPSyntax {
    /// The lines of a complete head (which must end with CRLF CRLF), without their CRLF and
    /// without the terminating empty line. A CR or LF anywhere but in a CRLF pair is refused.
    static func lines(ofHead bytes: [UInt8]) throws -> [ArraySlice<UInt8>] {
        guard bytes.count >= 4, Array(bytes.suffix(4)) == [cr, lf, cr, lf] else {
            throw ECIError.badRequest("malformed head: it must end with an empty line (CRLF CRLF)")
        }
        var lines: [ArraySlice<UInt8>] = []
        let content = bytes[0..<(bytes.count - 2)]  // each line keeps its own CRLF
        var start = content.startIndex
        var i = content.startIndex
        while i < content.endIndex {
            let b = content[i]
            if b == cr {
                guard i + 1 < content.endIndex, content[i + 1] == lf else { throw ECIError.badRequest("malformed head: bare CR") }
                lines.append(content[start..<i])
                i += 2
                start = i
            } else if b == lf {
                throw ECIError.badRequest("malformed head: bare LF (lines must end in CRLF)")
            } else {
                i += 1
            }
        }
        return lines
    }

    /// Parses header lines: `name ":" OWS value OWS`, name a token (so no whitespace before the
    /// colon), value field bytes in UTF-8; obs-fold (a line starting with whitespace) is refused.
    static func headerFields<S: Sequence>(_ lines: S) throws -> [HTTPHeader] where S.Element == ArraySlice<UInt8> {
        var headers: [HTTPHeader] = []
        for line in lines {
            guard let first = line.first else { throw ECIError.badRequest("malformed head: empty header line") }
            guard first != sp && first != htab else {
                throw ECIError.badRequest("malformed header: line folding (obs-fold) is not accepted")
            }
            guard let colon = line.firstIndex(of: colon) else { throw ECIError.badRequest("malformed header: no colon") }
            let name = line[line.startIndex..<colon]
            guard isToken(name) else {
                throw ECIError.badRequest("malformed header: invalid field name \(HTTPRequestHead.quoted(name))")
            }
            var value = line[(colon + 1)...]
            while let f = value.first, f == sp || f == htab { value = value.dropFirst() }
            while let l = value.last, l == sp || l == htab { value = value.dropLast() }
            guard value.allSatisfy(isFieldValueByte), let text = String(validating: value, as: UTF8.self) else {
                throw ECIError.badRequest("malformed header: invalid value for \(HTTPRequestHead.quoted(name))")
            }
            headers.append(HTTPHeader(name: String(decoding: name, as: UTF8.self), value: text))
        }
        return headers
    }
}

import ECICore
import ECIIO
import ECIOCI
import Glibc

/// A small blocking HTTP/1.1 client for the engine's unix socket, for the filter's own lookups
/// (`GET /images/{name}/json`, ...): one request per connection, the whole response read
/// (Content-Length, chunked or until close) within `timeout`.
public struct EngineClient: Sendable {
    /// One complete response.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [HTTPHeader]
        public var body: [UInt8]

        /// The first value of the header `name` (case-insensitive).
        public subscript(header name: String) -> String? {
            headers.first { HTTPSyntax.equalsIgnoringCase($0.name, name) }?.value
        }

        /// The body parsed as JSON, nil when it is not JSON.
        public var json: JSONValue? { try? JSONValue.parse(body) }

        /// Whether the status is 2xx.
        public var isSuccess: Bool { (200..<300).contains(status) }
    }

    /// The engine's socket.
    public var socketPath: String
    /// The most seconds one request may take in all.
    public var timeout: Double
    /// The largest response body accepted.
    public var maximumResponseSize: Int

    public init(socketPath: String, timeout: Double = 10, maximumResponseSize: Int = 64 * 1024 * 1024) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.maximumResponseSize = maximumResponseSize
    }

    /// GET `target` (origin-form, e.g. "/images/busybox/json").
    public func get(_ target: String, headers: [HTTPHeader] = []) throws -> Response {
        try request(method: "GET", target: target, headers: headers, body: nil)
    }

    /// POST `target` with an optional body of type `contentType`.
    public func post(_ target: String, body: [UInt8]? = nil, contentType: String = "application/json", headers: [HTTPHeader] = []) throws -> Response {
        var all = headers
        if body != nil { all.append(HTTPHeader(name: "Content-Type", value: contentType)) }
        return try request(method: "POST", target: target, headers: all, body: body)
    }

    /// Sends one request (with `Host`, `Connection: close` and the body's Content-Length set)
    /// and reads the whole response. Throws `.timedOut` past `timeout`, `.system` when the
    /// engine cannot be reached, `.invalidArgument` for a malformed request or response.
    public func request(method: String, target: String, headers: [HTTPHeader] = [], body: [UInt8]?) throws -> Response {
        var head = HTTPRequestHead(method: method, target: target, headers: headers)
        if !head.contains("Host") { head.set("Host", "docker") }
        head.set("Connection", "close")
        head.remove("Transfer-Encoding")
        if let body { head.set("Content-Length", String(body.count)) } else { head.remove("Content-Length") }
        try head.validate()

        let deadline = ContinuousClock.now + .seconds(timeout)
        let socket = try UnixSocket.connect(to: socketPath)
        defer { socket.close() }
        socket.setSendTimeout(timeout)
        try socket.write(head.serialized() + (body ?? []))

        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        func readMore() throws -> ArraySlice<UInt8> {
            let left = (deadline - ContinuousClock.now).seconds
            guard left > 0 else { throw ECIError(.timedOut, "the engine did not answer \(method) \(target) within \(timeout) s") }
            socket.setReceiveTimeout(max(left, 0.001))
            do {
                let n = try socket.read(into: &buffer)
                return buffer[0..<n]
            } catch let error as ECIError where error.code == .timedOut {
                throw ECIError(.timedOut, "the engine did not answer \(method) \(target) within \(timeout) s")
            }
        }

        // The head (skipping interim 1xx responses).
        var pending: [UInt8] = []
        var response: HTTPResponseHead
        while true {
            if let end = try HTTPRequestHead.endOfHead(in: pending, limit: HTTPResponseHead.maximumSize) {
                response = try HTTPResponseHead(parsing: pending[0..<end])
                pending.removeFirst(end)
                if (100..<200).contains(response.status) && response.status != 101 { continue }
                break
            }
            let more = try readMore()
            guard !more.isEmpty else { throw ECIError(.invalidArgument, "the engine closed the connection before answering \(method) \(target)") }
            pending.append(contentsOf: more)
        }

        // The body.
        var result: [UInt8] = []
        let limit = maximumResponseSize
        let tooLarge = ECIError(.httpBodyTooLarge, "the engine's answer to \(method) \(target) is larger than \(limit) bytes")
        switch try response.bodyFraming(requestMethod: method) {
        case .none:
            break
        case .contentLength(let length):
            guard length <= limit else { throw tooLarge }
            result = Array(pending.prefix(length))
            while result.count < length {
                let more = try readMore()
                guard !more.isEmpty else { throw ECIError(.invalidArgument, "the engine's answer to \(method) \(target) was cut short") }
                result.append(contentsOf: more.prefix(length - result.count))
            }
        case .chunked:
            var decoder = ChunkedDecoder()
            _ = try decoder.decode(pending, into: &result, limit: limit)
            while !decoder.isComplete {
                let more = try readMore()
                guard !more.isEmpty else { throw ECIError(.invalidArgument, "the engine's answer to \(method) \(target) was cut short") }
                _ = try decoder.decode(more, into: &result, limit: limit)
            }
        case .untilClose:
            result = pending
            while true {
                let more = try readMore()
                if more.isEmpty { break }
                guard result.count + more.count <= limit else { throw tooLarge }
                result.append(contentsOf: more)
            }
        }
        return Response(status: response.status, headers: response.headers, body: result)
    }
}

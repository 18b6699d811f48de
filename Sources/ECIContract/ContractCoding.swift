import ECICore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON for the contract: compact, keys sorted (replies are byte-for-byte reproducible), and
/// slashes unescaped (`"name":"/watched"`, which scripts and the e2e tests search for).
public enum ContractJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// Decodes `bytes`; a failure is `.malformedMessage` naming `what` was being read.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as ECIError {
            throw error
        } catch {
            throw ECIError(.malformedMessage, "\(what) does not follow the control contract", cause: error)
        }
    }
}

/// A coding key made at run time (a reply's payload sits under its operation's name).
struct DynamicKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A request: `{"op":"status","version":1}`. The control port's operations and the admin
/// socket's are each an enum of strings.
public struct ContractRequest<Operation: RawRepresentable & Sendable & Equatable>: Sendable, Equatable where Operation.RawValue == String {
    public var version: Int
    public var op: Operation

    public init(_ op: Operation, version: Int = ControlProtocol.version) {
        self.op = op
        self.version = version
    }

    private struct Wire: Codable {
        var version: Int?
        var op: String?
    }

    public func encoded() -> [UInt8] {
        // Two optional fields of plain types: encoding cannot fail.
        (try? ContractJSON.encode(Wire(version: version, op: op.rawValue))) ?? []
    }

    /// Parses a request, checking its version first: a request of another version is refused
    /// with `.protocolVersion` whatever else it says, since its fields may mean other things.
    /// - Parameter peer: who sent it, for the message ("the host").
    public static func decode(_ bytes: [UInt8], from peer: String, receiver: String) throws -> Self {
        let wire = try ContractJSON.decode(Wire.self, from: bytes, what: "a request from \(peer)")
        guard let version = wire.version else {
            throw ECIError(.protocolVersion, "\(peer) sent a request without a protocol version; \(receiver) speaks control protocol \(ControlProtocol.version): use an ecibuild and an image built from the same ECI")
        }
        guard version == ControlProtocol.version else {
            throw ECIError(.protocolVersion, "\(peer) speaks control protocol \(version); \(receiver) speaks \(ControlProtocol.version): use an ecibuild and an image built from the same ECI")
        }
        guard let name = wire.op else { throw ECIError(.malformedMessage, "a request from \(peer) has no \"op\"") }
        guard let op = Operation(rawValue: name) else { throw ECIError(.malformedMessage, "unknown op \"\(name.prefix(40))\"") }
        return Self(op, version: version)
    }
}

/// Why a peer could not answer a request; sent as `{"error":{"code":...,"message":...}}`.
public struct ContractFailure: Codable, Sendable, Equatable, Error {
    /// `ECIError.Code` names: `protocol-version`, `malformed-message`, or the handler's own.
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public init(_ error: ECIError) {
        self.init(code: error.code.name, message: error.message)
    }

    /// The failure as the error the requester throws (a version mismatch keeps its code).
    public var error: ECIError {
        ECIError(code == ECIError.Code.protocolVersion.name ? .protocolVersion : .peerError, message)
    }
}

/// What a reply carries: each payload type sits under a key of its own (its operation's name),
/// so the reply's type says which request it answers.
public protocol ContractPayload: Codable, Sendable {
    /// The reply's key: `{"version":1,"<replyKey>":<payload>}`.
    static var replyKey: String { get }
}

/// A reply: `{"version":1,"<key>":<payload>}`, or `{"version":1,"error":{...}}`.
public enum ContractReply {
    private struct Body<Payload: Encodable>: Encodable {
        var key: String
        var payload: Payload

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: DynamicKey.self)
            try container.encode(ControlProtocol.version, forKey: DynamicKey("version"))
            try container.encode(payload, forKey: DynamicKey(key))
        }
    }

    private struct Header: Decodable {
        var version: Int?
        var error: ContractFailure?
    }

    private struct Payload<Value: ContractPayload>: Decodable {
        var value: Value

        init(from decoder: any Decoder) throws {
            value = try decoder.container(keyedBy: DynamicKey.self).decode(Value.self, forKey: DynamicKey(Value.replyKey))
        }
    }

    /// A successful reply.
    public static func encode<Value: ContractPayload>(_ value: Value) throws -> [UInt8] {
        try ContractJSON.encode(Body(key: Value.replyKey, payload: value))
    }

    /// A failure reply (to any request).
    public static func encode(_ failure: ContractFailure) -> [UInt8] {
        // Two strings and an integer: encoding cannot fail.
        (try? ContractJSON.encode(Body(key: "error", payload: failure))) ?? []
    }

    /// Reads a reply: checks the version, raises a failure reply as its error, and decodes the
    /// payload.
    /// - Parameters:
    ///   - peer: who answered ("the agent"), and `receiver` who reads it ("ecibuild"), for messages.
    /// - Throws: `.protocolVersion` (the peer speaks another version, or refused ours),
    ///   `.peerError` (the peer answered with an error), `.malformedMessage`.
    public static func decode<Value: ContractPayload>(_ type: Value.Type, from bytes: [UInt8], peer: String, receiver: String) throws -> Value {
        let what = "the reply of \(peer) (\(Value.replyKey))"
        let header = try ContractJSON.decode(Header.self, from: bytes, what: what)
        guard let version = header.version else {
            throw ECIError(.protocolVersion, "\(peer) answered without a protocol version (an older ECI); \(receiver) speaks control protocol \(ControlProtocol.version): use an ecibuild and an image built from the same ECI")
        }
        guard version == ControlProtocol.version else {
            throw ECIError(.protocolVersion, "\(peer) speaks control protocol \(version); \(receiver) speaks \(ControlProtocol.version): use an ecibuild and an image built from the same ECI")
        }
        if let failure = header.error { throw failure.error }
        return try ContractJSON.decode(Payload<Value>.self, from: bytes, what: what).value
    }
}

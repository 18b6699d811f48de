/// The payload of a `hello` frame: the sender's protocol version and name.
///
/// Each side sends one *announcement* (stream field 0) when its session starts, and answers
/// every announcement it receives with an *answer* (stream field 1). Answers never trigger
/// anything but recording the peer, so two sides can never ping-pong hellos; a second
/// announcement within one session means the peer restarted (a new agent process behind the
/// same port, or a host that reconnected without us seeing the disconnect).
///
/// Its version is the *framing* version (`Frame.version`: how bytes become frames), for logs;
/// what the frames of the control port say is versioned by the contract
/// (`ControlProtocol.version` in ECIContract, carried by every request and reply), so the
/// channel stays a transport that knows nothing of the agent.
public struct ChannelHello: Sendable, Equatable, CustomStringConvertible {
    /// The protocol version the peer speaks (today `Frame.version`).
    public var version: UInt8
    /// The peer's name (e.g. "eci-agent", "ecibuild"), for logs.
    public var name: String

    public init(version: UInt8 = Frame.version, name: String) {
        self.version = version
        self.name = name
    }

    /// Stream field of a hello sent when a session starts.
    static let announcement: UInt32 = 0
    /// Stream field of a hello sent in reply to an announcement.
    static let answer: UInt32 = 1

    /// Payload: the version byte, then the name in UTF-8 (cut to fit a frame).
    var payload: [UInt8] { [version] + Array(name.utf8.prefix(Frame.maxPayload - 1)) }

    /// Parses a hello payload; nil if it is empty.
    init?(payload: [UInt8]) {
        guard let first = payload.first else { return nil }
        version = first
        name = String(decoding: payload.dropFirst(), as: UTF8.self)
    }

    func frame(answering: Bool) -> Frame {
        Frame(kind: .hello, stream: answering ? Self.answer : Self.announcement, payload: payload)
    }

    public var description: String { "\(name) (protocol \(version))" }
}

/// What a session knows of the peer's hellos (see `ChannelHello` for announcement/answer).
struct HelloState: Sendable {
    /// The peer's latest hello in this session.
    private(set) var peer: ChannelHello?
    private var announcements = 0

    /// What a received hello means.
    struct Outcome {
        var hello: ChannelHello
        /// A second announcement: the peer restarted and knows nothing of this session.
        var restarted: Bool
        /// An announcement gets our answer (answers get nothing, so hellos never ping-pong).
        var answer: Bool
    }

    /// Records a received `hello` frame; nil if its payload is empty.
    mutating func receive(_ frame: Frame) -> Outcome? {
        guard frame.kind == .hello, let hello = ChannelHello(payload: frame.payload) else { return nil }
        peer = hello
        guard frame.stream == ChannelHello.announcement else { return Outcome(hello: hello, restarted: false, answer: false) }
        announcements += 1
        let restarted = announcements > 1
        // Count the restart's announcement as the new session's first.
        if restarted { announcements = 1 }
        return Outcome(hello: hello, restarted: restarted, answer: true)
    }
}

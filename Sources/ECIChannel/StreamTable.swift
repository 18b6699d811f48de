/// The state of every stream on a tunnel port, for one side (host or guest): which streams are
/// open, who may still write, and how many bytes each side may send (credit-based flow control,
/// so one slow connection never blocks the others on the shared port).
///
/// Pure: it turns received frames into events and replies, and sends into frames; the caller
/// moves bytes. A peer that breaks the protocol on a stream (data beyond its window, data after
/// its half-close, an unknown stream) gets that stream reset, and nothing else is affected.
public struct StreamTable: Sendable {
    /// What a received frame means for the caller.
    public enum Event: Sendable, Equatable {
        /// The peer opened a stream.
        case opened(UInt32)
        case data(UInt32, [UInt8])
        /// The peer will write no more on the stream (it may still read).
        case readClosed(UInt32)
        /// The stream is gone; its resources can be released.
        case reset(UInt32, String)
    }

    struct Stream: Sendable {
        /// Bytes we may still send.
        var sendCredit: UInt32
        /// Bytes the peer may still send us.
        var receiveCredit: UInt32
        var localWriteClosed = false
        var remoteWriteClosed = false
    }

    public let initialWindow: UInt32
    private var streams: [UInt32: Stream] = [:]

    /// - Parameter initialWindow: the bytes each side may send on a new stream before credit.
    public init(initialWindow: UInt32 = 256 * 1024) {
        self.initialWindow = initialWindow
    }

    public var openStreams: [UInt32] { streams.keys.sorted() }

    /// Bytes we may send on `id` right now.
    public func sendCredit(_ id: UInt32) -> UInt32 { streams[id]?.sendCredit ?? 0 }

    // MARK: Receiving

    /// Applies a received frame. Returns what happened and the frames to send back.
    public mutating func receive(_ frame: Frame) -> (events: [Event], replies: [Frame]) {
        let id = frame.stream
        switch frame.kind {
        case .open:
            guard streams[id] == nil else { return violation(id, "stream \(id) opened twice") }
            streams[id] = Stream(sendCredit: initialWindow, receiveCredit: initialWindow)
            return ([.opened(id)], [])
        case .data:
            guard var stream = streams[id] else { return ([], [Frame(kind: .reset, stream: id, payload: Array("unknown stream".utf8))]) }
            guard !stream.remoteWriteClosed else { return violation(id, "data after the peer's half-close") }
            guard frame.payload.count <= Int(stream.receiveCredit) else { return violation(id, "data beyond the flow-control window") }
            stream.receiveCredit -= UInt32(frame.payload.count)
            streams[id] = stream
            return frame.payload.isEmpty ? ([], []) : ([.data(id, frame.payload)], [])
        case .window:
            guard var stream = streams[id], let credit = frame.credit else { return ([], []) }
            stream.sendCredit = UInt32(min(UInt64(stream.sendCredit) + UInt64(credit), UInt64(UInt32.max)))
            streams[id] = stream
            return ([], [])
        case .closeWrite:
            guard var stream = streams[id] else { return ([], []) }
            stream.remoteWriteClosed = true
            if stream.localWriteClosed {
                streams[id] = nil
                return ([.readClosed(id), .reset(id, "closed")], [])
            }
            streams[id] = stream
            return ([.readClosed(id)], [])
        case .reset:
            guard streams.removeValue(forKey: id) != nil else { return ([], []) }
            return ([.reset(id, String(decoding: frame.payload, as: UTF8.self))], [])
        case .hello, .request, .response:
            return ([], [])
        }
    }

    private mutating func violation(_ id: UInt32, _ reason: String) -> (events: [Event], replies: [Frame]) {
        streams[id] = nil
        return ([.reset(id, reason)], [Frame(kind: .reset, stream: id, payload: Array(reason.utf8))])
    }

    // MARK: Sending

    /// Opens stream `id` (the host side, for a new client connection).
    public mutating func open(_ id: UInt32) -> Frame? {
        guard streams[id] == nil else { return nil }
        streams[id] = Stream(sendCredit: initialWindow, receiveCredit: initialWindow)
        return Frame(kind: .open, stream: id)
    }

    /// Frames for as much of `bytes` as the window allows, in payloads of at most
    /// `Frame.maxPayload`. Returns the frames and how many bytes they carry; the caller keeps
    /// the rest until credit arrives.
    public mutating func send(_ id: UInt32, _ bytes: [UInt8]) -> (frames: [Frame], sent: Int) {
        guard var stream = streams[id], !stream.localWriteClosed else { return ([], 0) }
        let count = min(bytes.count, Int(stream.sendCredit))
        var frames: [Frame] = []
        var offset = 0
        while offset < count {
            let end = min(offset + Frame.maxPayload, count)
            frames.append(Frame(kind: .data, stream: id, payload: Array(bytes[offset..<end])))
            offset = end
        }
        stream.sendCredit -= UInt32(count)
        streams[id] = stream
        return (frames, count)
    }

    /// The caller handed `count` received bytes on; grants the peer that much more credit.
    public mutating func consumed(_ id: UInt32, _ count: Int) -> Frame? {
        guard count > 0, var stream = streams[id] else { return nil }
        stream.receiveCredit = UInt32(min(UInt64(stream.receiveCredit) + UInt64(count), UInt64(UInt32.max)))
        streams[id] = stream
        return .window(stream: id, credit: UInt32(count))
    }

    /// Half-closes our side of `id`: we write no more, we still read.
    public mutating func closeWrite(_ id: UInt32) -> Frame? {
        guard var stream = streams[id], !stream.localWriteClosed else { return nil }
        stream.localWriteClosed = true
        streams[id] = stream.remoteWriteClosed ? nil : stream
        return Frame(kind: .closeWrite, stream: id)
    }

    /// Tears `id` down in both directions.
    public mutating func reset(_ id: UInt32, reason: String) -> Frame? {
        guard streams.removeValue(forKey: id) != nil else { return nil }
        return Frame(kind: .reset, stream: id, payload: Array(reason.utf8))
    }

    /// The port went away (host disconnected): every stream is gone.
    public mutating func disconnect() -> [Event] {
        let ids = openStreams
        streams = [:]
        return ids.map { .reset($0, "the channel disconnected") }
    }
}

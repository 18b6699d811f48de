/// Counts a Content-Length body through: how much of each piece of input still belongs to the
/// body, so nothing past its end is forwarded.
public struct ContentLengthCounter: Sendable, Equatable {
    /// Bytes of the body not yet seen.
    public private(set) var remaining: Int

    public init(length: Int) { remaining = max(0, length) }

    /// Whether the whole body has been seen.
    public var isComplete: Bool { remaining == 0 }

    /// Accounts for `available` new bytes; returns how many of them belong to the body.
    public mutating func consume(_ available: Int) -> Int {
        let take = min(remaining, max(0, available))
        remaining -= take
        return take
    }
}

import ECICore

/// A contiguous block of host IDs given to one container: container ID 0...size-1 maps to
/// host ID base...base+size-1, for uids and gids alike.
public struct IDRange: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The number of IDs each container gets: the full 16-bit space images expect.
    public static let containerSize: UInt32 = 65536

    public let base: UInt32
    public let size: UInt32

    public init(base: UInt32, size: UInt32 = IDRange.containerSize) {
        self.base = base
        self.size = size
    }

    /// One past the last host ID (as 64-bit, so a range ending at 2^32 is representable).
    public var end: UInt64 { UInt64(base) + UInt64(size) }

    public func overlaps(_ other: IDRange) -> Bool {
        UInt64(base) < other.end && UInt64(other.base) < end
    }

    /// The host ID of container ID `id`, or nil when `id` is outside the range.
    public func hostID(forContainerID id: UInt32) -> UInt32? {
        guard id < size else { return nil }
        return base + id
    }

    /// The `uid_map` line for this range: "0 base size".
    public var mapLine: String { "0 \(base) \(size)" }

    public var description: String { "\(base)-\(end - 1)" }
}

/// The pool containers' ranges are carved from: `count` host IDs from `start`, split into
/// slots of `IDRange.containerSize`.
public struct IDPool: Sendable, Hashable, Codable, CustomStringConvertible {
    public let start: UInt32
    public let count: UInt32

    /// A valid pool: never includes ID 0, leaves out 2^32-1 (the "invalid" ID), holds at least one slot.
    public init(start: UInt32, count: UInt32) throws {
        guard start > 0 else { throw ECIError(.invalidArgument, "the ID pool must not include ID 0") }
        guard UInt64(start) + UInt64(count) <= UInt64(UInt32.max) else {
            throw ECIError(.invalidArgument, "the ID pool \(start)+\(count) runs past the largest valid ID")
        }
        guard count >= IDRange.containerSize else {
            throw ECIError(.invalidArgument, "the ID pool holds \(count) IDs, fewer than one container's \(IDRange.containerSize)")
        }
        self.start = start
        self.count = count
    }

    /// How many containers fit.
    public var slotCount: Int { Int(count / IDRange.containerSize) }

    /// The range of slot `slot` (0 ..< slotCount).
    public func range(slot: Int) -> IDRange {
        IDRange(base: start + UInt32(slot) * IDRange.containerSize)
    }

    /// The slot whose range starts at `base`, or nil when `base` is not a slot boundary of this pool.
    public func slot(ofBase base: UInt32) -> Int? {
        guard base >= start else { return nil }
        let offset = base - start
        guard offset % IDRange.containerSize == 0 else { return nil }
        let slot = Int(offset / IDRange.containerSize)
        return slot < slotCount ? slot : nil
    }

    public var asRange: IDRange { IDRange(base: start, size: count) }

    public var description: String { "\(start)+\(count)" }
}

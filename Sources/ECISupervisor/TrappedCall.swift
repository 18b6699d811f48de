import ECIPolicy

/// Which trapped call a notification is, by architecture and number: runc's filter covers the
/// compat ABIs too (i386 and x32 on x86_64, arm on arm64), each with its own numbers.
public enum TrappedCall: Sendable, Equatable {
    case mount
    case umount2
    /// i386/arm's oldumount: umount2 with no flags.
    case umount
    /// pivot_root(new_root, put_old): it detaches new_root's mount from where it was, so a
    /// pivot into a mask or read-only path would undo it (untrapped, it did).
    case pivotRoot

    static let x86_64: UInt32 = 0xC000_003E
    static let i386: UInt32 = 0x4000_0003
    static let aarch64: UInt32 = 0xC000_00B7
    static let arm: UInt32 = 0x4000_0028
    static let x32Bit: Int32 = 0x4000_0000

    /// nil: a call ecid does not handle (it answers ENOSYS).
    public init?(arch: UInt32, nr: Int32) {
        switch (arch, nr) {
        case (Self.x86_64, 165), (Self.x86_64, 165 | Self.x32Bit): self = .mount
        case (Self.x86_64, 166), (Self.x86_64, 166 | Self.x32Bit): self = .umount2
        case (Self.i386, 21), (Self.arm, 21): self = .mount
        case (Self.i386, 52), (Self.arm, 52): self = .umount2
        case (Self.i386, 22): self = .umount
        case (Self.aarch64, 40): self = .mount
        case (Self.aarch64, 39): self = .umount2
        case (Self.x86_64, 155), (Self.x86_64, 155 | Self.x32Bit): self = .pivotRoot
        case (Self.i386, 217), (Self.arm, 218), (Self.aarch64, 41): self = .pivotRoot
        default: return nil
        }
    }

    /// 32-bit ABIs pass 32-bit words: the upper halves of the registers are not the caller's.
    static func is32Bit(arch: UInt32, nr: Int32) -> Bool {
        arch == i386 || arch == arm || (arch == x86_64 && nr & x32Bit != 0)
    }
}

/// A call for a helper, with the notification it answers (see `AnswerFiles`).
public struct HelperRequest: Sendable, Equatable {
    public var call: MountCallPolicy.Call
    /// The token of the notify fd's `InFlightSlot`.
    public var slot: UInt64
    /// The notification's ID.
    public var id: UInt64
    public init(call: MountCallPolicy.Call, slot: UInt64, id: UInt64) {
        self.call = call
        self.slot = slot
        self.id = id
    }
}

public struct HelperResponse: Sendable, Equatable {
    /// 0 for success, else the errno the caller gets.
    public var errno: Int32
    /// Why, for ecid's log (a policy refusal, or the step that failed).
    public var reason: String?
    public init(errno: Int32, reason: String?) {
        self.errno = errno
        self.reason = reason
    }
}

/// The messages between ecid and a mount helper, one SOCK_SEQPACKET message each: a compact
/// binary form (no Foundation coding on the hot path). A call travels with the caller's root,
/// cwd and /proc/TID directory (and for a fresh procfs or sysfs its pid and net namespaces) in
/// SCM_RIGHTS; the container's initial mounts went once, when the helper started.
///
/// Call: kind (1 mount, 2 umount, 3 pivot_root), presence bits (1 source, 2 fsType, 4 data),
/// 2 zero bytes, flags (u64), the slot token and notification ID it came with (u64 each, for the
/// helper's answer record), the lengths of target, source, fsType, data (u32 each), then their
/// bytes. All integers little-endian. Response: errno (i32), then the reason's bytes.
public enum HelperWire {
    /// The largest call: three paths of PATH_MAX, a file system type, a page of options.
    public static let maximumCall = headerSize + 3 * 4096 + 256
    static let headerSize = 44

    public static func encode(_ request: HelperRequest) -> [UInt8] {
        let call = request.call
        var out: [UInt8] = []
        out.reserveCapacity(96)
        let kind: UInt8
        let flags: UInt64
        let strings: [String?]
        switch call {
        case let .mount(source, target, fsType, f, data):
            kind = 1
            flags = f
            strings = [target, source, fsType, data]
        case let .umount(target, f):
            kind = 2
            flags = f
            strings = [target, nil, nil, nil]
        case let .pivotRoot(newRoot, putOld):
            kind = 3
            flags = 0
            strings = [newRoot, putOld, nil, nil]
        }
        let presence: UInt8 = (strings[1] != nil ? 1 : 0) | (strings[2] != nil ? 2 : 0) | (strings[3] != nil ? 4 : 0)
        out += [kind, presence, 0, 0]
        append(&out, flags)
        append(&out, request.slot)
        append(&out, request.id)
        for s in strings { append(&out, UInt32(s?.utf8.count ?? 0)) }
        for s in strings { if let s { out += s.utf8 } }
        return out
    }

    /// nil for a malformed message.
    public static func decodeRequest(_ bytes: [UInt8]) -> HelperRequest? {
        guard bytes.count >= headerSize, bytes[2] == 0, bytes[3] == 0 else { return nil }
        let kind = bytes[0]
        let presence = bytes[1]
        guard presence & ~7 == 0 else { return nil }
        let flags = read64(bytes, 4)
        let slot = read64(bytes, 12)
        let id = read64(bytes, 20)
        var lengths: [Int] = []
        for i in 0..<4 { lengths.append(Int(read32(bytes, 28 + 4 * i))) }
        guard lengths.reduce(0, +) == bytes.count - headerSize else { return nil }
        var offset = headerSize
        var strings: [String?] = []
        for (i, length) in lengths.enumerated() {
            let slice = Array(bytes[offset..<offset + length])
            offset += length
            let present = i == 0 || presence & (1 << (i - 1)) != 0
            guard present || length == 0 else { return nil }
            // ecid sends only valid UTF-8 without NUL (it refuses anything else first).
            let text = String(decoding: slice, as: UTF8.self)
            guard Array(text.utf8) == slice, !slice.contains(0) else { return nil }
            strings.append(present ? text : nil)
        }
        let call: MountCallPolicy.Call
        switch kind {
        case 1: call = .mount(source: strings[1], target: strings[0] ?? "", fsType: strings[2], flags: flags, data: strings[3])
        case 2 where presence == 0: call = .umount(target: strings[0] ?? "", flags: flags)
        case 3 where presence == 1 && flags == 0: call = .pivotRoot(newRoot: strings[0] ?? "", putOld: strings[1] ?? "")
        default: return nil
        }
        return HelperRequest(call: call, slot: slot, id: id)
    }

    public static func encode(_ response: HelperResponse) -> [UInt8] {
        var out: [UInt8] = []
        append(&out, UInt32(bitPattern: response.errno))
        out += (response.reason ?? "").utf8.prefix(4000)
        return out
    }

    public static func decodeResponse(_ bytes: [UInt8]) -> HelperResponse? {
        guard bytes.count >= 4 else { return nil }
        let errno = Int32(bitPattern: read32(bytes, 0))
        guard errno >= 0, errno < 4096 else { return nil }
        let reason = bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : nil
        return HelperResponse(errno: errno, reason: reason)
    }

    static func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    static func read32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    static func read64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
    }
}

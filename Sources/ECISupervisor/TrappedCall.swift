import ECIPolicy

/// Which trapped call a notification is, by architecture and number: runc's filter covers the
/// compat ABIs too (i386 and x32 on x86_64, arm on arm64), each with its own numbers.
public enum TrappedCall: Sendable, Equatable {
    case mount
    case umount2
    /// i386/arm's oldumount: umount2 with no flags.
    case umount

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
        default: return nil
        }
    }

    /// 32-bit ABIs pass 32-bit words: the upper halves of the registers are not the caller's.
    static func is32Bit(arch: UInt32, nr: Int32) -> Bool {
        arch == i386 || arch == arm || (arch == x86_64 && nr & x32Bit != 0)
    }
}

/// What ecid hands its helper for one call, and what it gets back.
public struct HelperRequest: Sendable, Codable {
    public var call: MountCallPolicy.Call
    public var initial: MountCallPolicy.InitialMounts
    public init(call: MountCallPolicy.Call, initial: MountCallPolicy.InitialMounts) {
        self.call = call
        self.initial = initial
    }
}

public struct HelperResponse: Sendable, Codable {
    /// 0 for success, else the errno the caller gets.
    public var errno: Int32
    /// Why, for ecid's log (a policy refusal, or the step that failed).
    public var reason: String?
    public init(errno: Int32, reason: String?) {
        self.errno = errno
        self.reason = reason
    }
}

/// The fds ecid passes to its helper, in order from fd 3, all of the calling thread and all
/// opened before ecid confirmed the call was still pending (so they are that thread's).
public enum HelperFD {
    public static let mountNamespace: Int32 = 3
    public static let userNamespace: Int32 = 4
    public static let root: Int32 = 5
    public static let cwd: Int32 = 6
    /// /proc/TID of the caller: its status and mountinfo, with no PID reuse possible.
    public static let procDirectory: Int32 = 7
    public static let count = 5
}

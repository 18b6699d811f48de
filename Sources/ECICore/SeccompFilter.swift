import CShim
import Glibc

/// A classic-BPF seccomp program (over `struct seccomp_data`), as the kernel takes it: what a
/// process and every descendant of it run under once installed. ECI builds the program from a
/// pure policy (`SyscallFloorPolicy`) and installs it here, or in a spawned child just before
/// its exec (`SpawnAttributes.seccompFilter`).
public struct SeccompFilter: Sendable, Equatable {
    /// One instruction (`struct sock_filter`).
    public struct Instruction: Sendable, Equatable {
        public var code: UInt16
        public var jt: UInt8
        public var jf: UInt8
        public var k: UInt32

        public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32) {
            self.code = code
            self.jt = jt
            self.jf = jf
            self.k = k
        }
    }

    /// The opcodes ECI's programs use (linux/filter.h, linux/bpf_common.h).
    public enum Opcode {
        /// A := the 32-bit word at offset k of `struct seccomp_data`.
        public static let loadWord: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
        /// A &= k.
        public static let andK: UInt16 = 0x54  // BPF_ALU | BPF_AND | BPF_K
        /// Jump jt if A == k, else jf.
        public static let jumpEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
        /// Jump jt if A > k (unsigned), else jf.
        public static let jumpGreater: UInt16 = 0x25  // BPF_JMP | BPF_JGT | BPF_K
        /// Jump jt if A >= k (unsigned), else jf.
        public static let jumpGreaterOrEqual: UInt16 = 0x35  // BPF_JMP | BPF_JGE | BPF_K
        /// Jump jt if A & k != 0, else jf.
        public static let jumpSet: UInt16 = 0x45  // BPF_JMP | BPF_JSET | BPF_K
        /// Return k (a SECCOMP_RET_* action with its data).
        public static let returnK: UInt16 = 0x06  // BPF_RET | BPF_K
    }

    /// Offsets in `struct seccomp_data`.
    public enum Field {
        public static let number: UInt32 = 0
        public static let architecture: UInt32 = 4
    }

    /// The actions ECI's programs return.
    public enum Action {
        public static let allow: UInt32 = 0x7fff_0000  // SECCOMP_RET_ALLOW
        /// SECCOMP_RET_ERRNO with `errno` as the call's error.
        public static func errno(_ errno: Int32) -> UInt32 { 0x0005_0000 | (UInt32(errno) & 0xffff) }
    }

    /// The kernel's limit on one program (BPF_MAXINSNS).
    public static let maximumLength = 4096

    public var instructions: [Instruction]

    public init(_ instructions: [Instruction]) { self.instructions = instructions }

    /// The program as the kernel's `struct sock_filter` array, once its length is one the
    /// kernel takes.
    /// - Throws: `ECIError(.invalidArgument)` for an empty or too long program.
    public func kernelInstructions() throws -> [sock_filter] {
        guard !instructions.isEmpty, instructions.count <= Self.maximumLength else {
            throw ECIError(.invalidArgument, "a seccomp filter of \(instructions.count) instructions (1 to \(Self.maximumLength))")
        }
        return instructions.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
    }

    /// Installs the program on the calling thread: it, and every process it forks or becomes
    /// by exec, runs under it for good. Needs CAP_SYS_ADMIN (ECI runs as root) rather than
    /// no_new_privs, which would also reach the setuid and file-capability programs of every
    /// container started below it.
    /// - Throws: `ECIError.system("install a seccomp filter", errno:)`.
    public func installOnThisThread() throws {
        _ = try kernelInstructions().withUnsafeBufferPointer { buffer in
            try Syscall.shim("install a seccomp filter") { eci_install_seccomp_filter(buffer.baseAddress, UInt16(buffer.count)) }
        }
    }
}

import ECICore
import Glibc

/// The system calls no process of an ECI container may make, whatever seccomp profile its
/// spec brings or lacks: the calls ECI has not reviewed, and the reviewed ones it must vet but
/// cannot ask runc to trap by name. They fail with ENOSYS, what a kernel says of a call it
/// lacks, so programs fall back as they do on an older kernel.
///
/// Why a floor of ECI's own: ECI's traps reach the kernel through the spec's seccomp profile,
/// which runc compiles with its libseccomp, and runc drops every name that library does not
/// know. The profile's default action then covers the call: ALLOW under `--privileged` and
/// `seccomp=unconfined`. So open_tree_attr (Linux 6.15, open_tree(2) with mount_setattr(2)'s
/// changes; neither libseccomp 2.5 nor 2.6 names it) reached the kernel untrapped: an unlocked
/// container with CAP_SYS_ADMIN cloned /proc without its masks (attack round 7). The next
/// kernel's mount call would have done the same. A class, so it is closed by construction:
///
/// - **By number, not by name.** The program is plain BPF over `struct seccomp_data`, built
///   here and needing no library that could be older than the kernel.
/// - **Below every profile.** eci-runc installs it on runc before runc starts
///   (`RuncProcess`), so runc, its hooks and every process of every container inherit it.
///   Filters stack and are never removed, and the kernel takes the strictest action of all of
///   them: no profile can lift the floor, and a profile's own refusal of a call still stands.
/// - **Above the highest number reviewed, nothing.** A call a later kernel adds is refused
///   until someone has read it and raised `reviewedThrough`; the review is the edit of this
///   file, with the table below.
///
/// Architectures: a process may enter the kernel through any ABI its CPU has (i386 and x32
/// on x86_64, arm on arm64), each with its own numbers. Since Linux 5.1 (424,
/// pidfd_send_signal) every architecture ECI knows numbers new calls alike, so one table
/// serves; x32's own entry points (512 to 547) and arm's private calls (from 0x0f0000) sit
/// above it and are kept. Any other architecture is refused whole: ECI cannot read its
/// numbers.
public enum SyscallFloorPolicy {
    /// The highest call number ECI has reviewed, the same on every architecture below: Linux
    /// 6.18's last, file_setattr (469). Calls 424 to 469 were read for what a container could
    /// do with them past ECI's rules; only those in `vettedByNumber` need ECI's vetting.
    public static let reviewedThrough: UInt32 = 469

    /// Reviewed calls that change mounts (what ecid vets) but that the profile path cannot
    /// reach, because runc's libseccomp has no name for them. Refused like unreviewed ones:
    /// ENOSYS is what `SeccompTraps.newMountAPI` gives the rest of the new mount API.
    public static let vettedByNumber: [UInt32: String] = [467: "open_tree_attr"]

    /// AUDIT_ARCH_* of the architectures whose numbers ECI knows.
    public enum Architecture {
        public static let x86_64: UInt32 = 0xC000_003E
        public static let i386: UInt32 = 0x4000_0003
        public static let aarch64: UInt32 = 0xC000_00B7
        public static let arm: UInt32 = 0x4000_0028
    }

    /// The bit an x32 process's call numbers carry on x86_64 (__X32_SYSCALL_BIT).
    public static let x32Bit: UInt32 = 0x4000_0000
    /// x32's own entry points (the calls whose x32 arguments differ from x86_64's).
    public static let x32Own: ClosedRange<UInt32> = 512...547
    /// arm's private calls (__ARM_NR_BASE: breakpoint, cacheflush, set_tls, get_tls, ...).
    public static let armPrivate: ClosedRange<UInt32> = 0x0F_0000...0x0F_07FF

    /// The error the floor returns.
    public static let refusalErrno = ENOSYS

    /// Whether the floor refuses call `number` entered through `architecture` (AUDIT_ARCH_*).
    public static func refuses(architecture: UInt32, number: UInt32) -> Bool {
        var number = number
        switch architecture {
        case Architecture.x86_64:
            if number & x32Bit != 0 {
                number &= ~x32Bit
                if x32Own.contains(number) { return false }
            }
        case Architecture.arm:
            if armPrivate.contains(number) { return false }
        case Architecture.i386, Architecture.aarch64:
            break
        default:
            return true
        }
        return vettedByNumber[number] != nil || number > reviewedThrough
    }

    /// The floor as a seccomp program: `refuses` compiled (unit tests run the program over
    /// every number and compare).
    /// - Throws: `ECIError(.internalError)` if the program cannot be assembled (a jump too
    ///   far), which no table above makes.
    public static func filter() throws -> SeccompFilter {
        var program = BPFAssembler()
        let refuse = SeccompFilter.Action.errno(refusalErrno)
        program.load(SeccompFilter.Field.architecture)
        program.jump(SeccompFilter.Opcode.jumpEqual, Architecture.x86_64, then: "x86_64")
        program.jump(SeccompFilter.Opcode.jumpEqual, Architecture.i386, then: "common")
        program.jump(SeccompFilter.Opcode.jumpEqual, Architecture.aarch64, then: "common")
        program.jump(SeccompFilter.Opcode.jumpEqual, Architecture.arm, then: "arm")
        program.ret(refuse)

        program.label("x86_64")
        program.load(SeccompFilter.Field.number)
        program.jump(SeccompFilter.Opcode.jumpSet, x32Bit, then: nil, else: "number")
        program.and(~x32Bit)
        program.jump(SeccompFilter.Opcode.jumpGreaterOrEqual, x32Own.lowerBound, then: nil, else: "number")
        program.jump(SeccompFilter.Opcode.jumpGreater, x32Own.upperBound, then: "refuse", else: "allow")

        program.label("arm")
        program.load(SeccompFilter.Field.number)
        program.jump(SeccompFilter.Opcode.jumpGreaterOrEqual, armPrivate.lowerBound, then: nil, else: "number")
        program.jump(SeccompFilter.Opcode.jumpGreater, armPrivate.upperBound, then: "refuse", else: "allow")

        program.label("common")
        program.load(SeccompFilter.Field.number)
        program.label("number")
        for number in vettedByNumber.keys.sorted() {
            program.jump(SeccompFilter.Opcode.jumpEqual, number, then: "refuse")
        }
        program.jump(SeccompFilter.Opcode.jumpGreater, reviewedThrough, then: "refuse", else: "allow")
        program.label("allow")
        program.ret(SeccompFilter.Action.allow)
        program.label("refuse")
        program.ret(refuse)
        return SeccompFilter(try program.assemble())
    }
}

/// Classic BPF with named forward jumps, resolved at the end (the kernel's jumps are relative
/// and forward only, at most 255 instructions).
struct BPFAssembler {
    private var steps: [(instruction: SeccompFilter.Instruction, then: String?, else: String?)] = []
    private var labels: [String: Int] = [:]

    mutating func label(_ name: String) { labels[name] = steps.count }
    mutating func load(_ offset: UInt32) { steps.append((.init(code: SeccompFilter.Opcode.loadWord, k: offset), nil, nil)) }
    mutating func and(_ mask: UInt32) { steps.append((.init(code: SeccompFilter.Opcode.andK, k: mask), nil, nil)) }
    mutating func ret(_ action: UInt32) { steps.append((.init(code: SeccompFilter.Opcode.returnK, k: action), nil, nil)) }
    /// A conditional jump; nil goes on with the next instruction.
    mutating func jump(_ code: UInt16, _ k: UInt32, then: String?, else otherwise: String? = nil) {
        steps.append((.init(code: code, k: k), then, otherwise))
    }

    func assemble() throws -> [SeccompFilter.Instruction] {
        try steps.enumerated().map { index, step in
            var instruction = step.instruction
            func offset(_ label: String?) throws -> UInt8 {
                guard let label else { return 0 }
                guard let target = labels[label] else { throw ECIError(.internalError, "BPF: no label \(label)") }
                let distance = target - index - 1
                guard (0...255).contains(distance) else { throw ECIError(.internalError, "BPF: a jump to \(label) of \(distance)") }
                return UInt8(distance)
            }
            instruction.jt = try offset(step.then)
            instruction.jf = try offset(step.else)
            return instruction
        }
    }
}

import ECICore
import Glibc
import Testing

@testable import ECIPolicy

/// ECI's syscall floor: which numbers it refuses on which architecture, and the BPF program
/// that says so, run here by a small interpreter of the instructions it uses over every number
/// (the kernel runs it for real in the integration suites' `SyscallFloor` tests).
@Suite struct SyscallFloorPolicyTests {
    typealias Arch = SyscallFloorPolicy.Architecture

    /// Runs `program` on (architecture, number) as the kernel would; nil for an instruction
    /// outside the ones the floor uses, or a jump out of the program.
    static func run(_ program: [SeccompFilter.Instruction], architecture: UInt32, number: UInt32) -> UInt32? {
        var a: UInt32 = 0
        var pc = 0
        while pc < program.count {
            let i = program[pc]
            switch i.code {
            case SeccompFilter.Opcode.loadWord:
                switch i.k {
                case SeccompFilter.Field.number: a = number
                case SeccompFilter.Field.architecture: a = architecture
                default: return nil
                }
                pc += 1
            case SeccompFilter.Opcode.andK:
                a &= i.k
                pc += 1
            case SeccompFilter.Opcode.jumpEqual: pc += 1 + Int(a == i.k ? i.jt : i.jf)
            case SeccompFilter.Opcode.jumpGreater: pc += 1 + Int(a > i.k ? i.jt : i.jf)
            case SeccompFilter.Opcode.jumpGreaterOrEqual: pc += 1 + Int(a >= i.k ? i.jt : i.jf)
            case SeccompFilter.Opcode.jumpSet: pc += 1 + Int(a & i.k != 0 ? i.jt : i.jf)
            case SeccompFilter.Opcode.returnK: return i.k
            default: return nil
            }
        }
        return nil
    }

    static let allArchitectures = [Arch.x86_64, Arch.i386, Arch.aarch64, Arch.arm, 0xC000_00F3 /* riscv64 */, 0]

    @Test func theProgramIsThePolicyForEveryNumber() throws {
        let program = try SyscallFloorPolicy.filter().instructions
        #expect(program.count < 40)
        let refused = SeccompFilter.Action.errno(ENOSYS)
        var numbers = Array(UInt32(0)...1100) + [0x0F_0000, 0x0F_0005, 0x0F_07FF, 0x0F_0800, 0x7FFF_FFFF, 0xFFFF_FFFF]
        numbers += numbers.map { $0 | SyscallFloorPolicy.x32Bit }
        for architecture in Self.allArchitectures {
            for number in numbers {
                let expected = SyscallFloorPolicy.refuses(architecture: architecture, number: number) ? refused : SeccompFilter.Action.allow
                let got = Self.run(program, architecture: architecture, number: number)
                guard got == expected else {
                    Issue.record("arch \(String(architecture, radix: 16)) number \(number): the program returns \(got.map { String($0, radix: 16) } ?? "nothing"), the policy \(String(expected, radix: 16))")
                    return
                }
            }
        }
    }

    @Test func openTreeAttrIsRefusedOnEveryArchitecture() {
        for architecture in [Arch.x86_64, Arch.i386, Arch.aarch64, Arch.arm] {
            #expect(SyscallFloorPolicy.refuses(architecture: architecture, number: 467))
        }
        #expect(SyscallFloorPolicy.refuses(architecture: Arch.x86_64, number: 467 | SyscallFloorPolicy.x32Bit))
    }

    /// The neighbours: the reviewed calls around it, the mount API ECI traps by name, and the
    /// everyday calls, on every ABI.
    @Test func reviewedCallsPass() {
        let reviewed: [UInt32] = [0, 1, 39, 165, 166, 428, 429, 430, 431, 432, 433, 435, 437, 442, 457, 458, 466, 468, 469]
        for architecture in [Arch.x86_64, Arch.i386, Arch.aarch64, Arch.arm] {
            for number in reviewed {
                #expect(!SyscallFloorPolicy.refuses(architecture: architecture, number: number), "\(number)")
            }
        }
        for number in reviewed + Array(SyscallFloorPolicy.x32Own) {
            #expect(!SyscallFloorPolicy.refuses(architecture: Arch.x86_64, number: number | SyscallFloorPolicy.x32Bit), "x32 \(number)")
        }
        for number in [0x0F_0002, 0x0F_0005, 0x0F_0006] as [UInt32] {
            #expect(!SyscallFloorPolicy.refuses(architecture: Arch.arm, number: number), "arm private \(number)")
        }
    }

    @Test func unreviewedNumbersAndArchitecturesAreRefused() {
        for architecture in [Arch.x86_64, Arch.i386, Arch.aarch64, Arch.arm] {
            for number: UInt32 in [470, 471, 500, 1000, 0xFFFF_FFFF] {
                #expect(SyscallFloorPolicy.refuses(architecture: architecture, number: number), "\(number)")
            }
        }
        // x32's own entry points are x32's only; arm's private calls are arm's only.
        #expect(SyscallFloorPolicy.refuses(architecture: Arch.x86_64, number: 520))
        #expect(SyscallFloorPolicy.refuses(architecture: Arch.x86_64, number: 548 | SyscallFloorPolicy.x32Bit))
        #expect(SyscallFloorPolicy.refuses(architecture: Arch.aarch64, number: 0x0F_0005))
        #expect(SyscallFloorPolicy.refuses(architecture: Arch.arm, number: 0x0F_0800))
        // An architecture whose numbers ECI does not know: every call.
        #expect(SyscallFloorPolicy.refuses(architecture: 0xC000_00F3, number: 39))
    }
}

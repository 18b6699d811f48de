import ECICore
import ECIOCI
import Testing

@testable import ECIRuntime

/// The pure side of `Integration.Ecid.FinalAttacks.wrappedErrnoRetDoesNotForgeTheGrantDrop`:
/// runc 1.1 passes errnoRet and defaultErrnoRet to libseccomp as `int16(value)`, and the kernel
/// keeps 16 bits of SECCOMP_RET_DATA, so every multiple of 65536 is errno 0 (a forged success)
/// to runc. A locked container's profile must be refused for each, as for a literal 0.
@Suite struct FinalAttackSeccompTests {
    static let socket = "/run/eci/ecid.sock"

    static func rule(_ errno: String) throws -> JSONValue {
        try JSONValue.parse(#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["capset"],"action":"SCMP_ACT_ERRNO","errnoRet":\#(errno)}]}"#)
    }

    @Test func errnoRetThatWrapsToZeroIsRefused() throws {
        // The neighbour: a real errno keeps working.
        _ = try SeccompTraps.merge(try Self.rule("1"), listenerPath: Self.socket, coverage: .kernelLocked)
        for errno in ["65536", "131072", "4294967296"] {
            #expect(throws: ECIError.self, "errnoRet \(errno) is errno 0 to runc") {
                _ = try SeccompTraps.merge(try Self.rule(errno), listenerPath: Self.socket, coverage: .kernelLocked)
            }
        }
    }

    @Test func defaultErrnoRetThatWrapsToZeroIsRefused() throws {
        let profile = try JSONValue.parse(#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65536,"syscalls":[]}"#)
        #expect(throws: ECIError.self, "defaultErrnoRet 65536 is errno 0 to runc") {
            _ = try SeccompTraps.merge(profile, listenerPath: Self.socket, coverage: .kernelLocked)
        }
    }
}

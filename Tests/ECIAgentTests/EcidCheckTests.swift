import ECICore
import ECIIO
import Foundation
import Glibc
import Testing

@testable import ECIAgent

/// The engine's gate on ECI's syscall supervisor: a root-only socket at ecid's path that accepts
/// a connection, or no engine. A socket file nobody listens on (ecid died) fails too.
struct EcidCheckTests {
    @Test func aListeningOwnSocketPassesAndAStaleOneFails() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-ecid-check-\(UUID().uuidString)"
        defer { try? FileSystem.removeTree(dir) }
        var paths = AgentPaths()
        paths.stateDirectory = dir
        paths.trustedOwner = getuid()
        let check = EcidCheck(paths: paths)
        #expect(throws: ECIError.self) { try check.check() }
        #expect(check.state().hasPrefix("not running: no socket"))

        try FileSystem.makeDirectories(dir + "/ecid", mode: 0o700)
        let listener = try UnixSocket.listen(at: check.socketPath, mode: 0o600, group: nil)
        try check.check()
        try check.wait(timeout: 1)
        #expect(check.state() == "running")

        // Another owner's socket is not ecid's.
        var other = paths
        other.trustedOwner = getuid() + 1
        #expect(throws: ECIError.self) { try EcidCheck(paths: other).check() }

        // ecid gone, its socket file left behind: refused, quickly.
        listener.close()
        let started = ContinuousClock.now
        #expect(throws: ECIError.self) { try check.wait(timeout: 0.3) }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(check.state() == "not running: nothing listens on \(check.socketPath)")
    }

    @Test func procNetUnixListeningFlag() {
        let table = """
            Num       RefCount Protocol Flags    Type St Inode Path
            0000000000000000: 00000002 00000000 00010000 0001 01 2144 /run/eci/ecid/ecid.sock
            0000000000000000: 00000003 00000000 00000000 0001 03 2150 /run/other.sock
            0000000000000000: 00000002 00000000 00010000 0001 01 2160 /run/renamed.sock.412.tmp
            0000000000000000: 00000002 00000000 00010000 0001 01 2170 /run/renamed.sockx.412.tmp
            """
        #expect(EcidCheck.listens(on: "/run/eci/ecid/ecid.sock", table: table))
        #expect(!EcidCheck.listens(on: "/run/other.sock", table: table))
        #expect(!EcidCheck.listens(on: "/run/none.sock", table: table))
        // Bound under ecid's temporary name, renamed into place.
        #expect(EcidCheck.listens(on: "/run/renamed.sock", table: table))
        #expect(!EcidCheck.listens(on: "/run/renamed.so", table: table))
    }
}

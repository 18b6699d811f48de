import ECICore
import ECIIO
import Glibc
import Testing

/// The host tools ECI drives start with stdio only. CI once ran `ecibuild image` under a test
/// runner that leaked pipes into it; mmdebstrap then got a descriptor above 9 for its
/// `sh -c 'cat >&N'` hook, which dash cannot name, and every image build failed.
@Suite struct ExternalCommandTests {
    /// Opens /dev/null without close-on-exec until a descriptor above `above` exists, as a
    /// leaking parent would leave them.
    func leak(above: Int32) throws -> [Int32] {
        var leaked: [Int32] = []
        while (leaked.last ?? 0) <= above {
            let fd = open("/dev/null", O_RDONLY)
            guard fd >= 0 else { throw ECIError.system("open /dev/null", errno: errno) }
            leaked.append(fd)
        }
        return leaked
    }

    @Test func toolsGetStdioOnlyWhateverTheirParentLeaked() throws {
        let leaked = try leak(above: 20)
        defer { leaked.forEach { close($0) } }
        // /proc/$$/fd: the shell's own table, not ls's (which holds the directory open).
        let listed = try ExternalCommand.run(["sh", "-c", "ls /proc/$$/fd"], what: "list descriptors")
        let fds = Set(listed.split(separator: "\n").compactMap { Int($0) })
        #expect(fds == [0, 1, 2], "a tool inherited descriptors: \(fds.sorted())")
    }

    @Test func aChildAskedToInheritKeepsTheDescriptors() throws {
        let leaked = try leak(above: 3)
        defer { leaked.forEach { close($0) } }
        var attributes = SpawnAttributes(["/bin/sh", "-c", "ls /proc/$$/fd"], environment: ["PATH": "/usr/bin:/bin"])
        attributes.inheritOtherFDs = true
        let listed = try ChildProcess.run(attributes)
        let fds = Set(String(decoding: listed.stdout, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) })
        #expect(Set(leaked).isSubset(of: fds), "runc's caller's descriptors must reach runc: \(fds.sorted())")

        // Passed ones arrive at their numbers in either mode; the rest do not.
        attributes.inheritOtherFDs = false
        attributes.passedFDs = [(fd: leaked[0], as: 7)]
        let passed = try ChildProcess.run(attributes)
        let only = Set(String(decoding: passed.stdout, as: UTF8.self).split(separator: "\n").compactMap { Int32($0) })
        #expect(only == [0, 1, 2, 7], "stdio and the passed descriptor only: \(only.sorted())")
    }
}

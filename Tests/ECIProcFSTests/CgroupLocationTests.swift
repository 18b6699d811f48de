import ECICore
import Testing

@testable import ECIProcFS

@Suite struct CgroupLocationTests {
    /// This development machine: v1 controllers, a named systemd hierarchy, an empty v2 one.
    @Test func parsesTheHybridHost() throws {
        let location = try CgroupLocation.parse(Fixtures.hybridCgroup)
        #expect(location.unifiedPath == "/")
        #expect(!location.isPureV2)
        #expect(location.hierarchy(for: "memory")?.path.hasPrefix("/process_api/") == true)
        #expect(location.hierarchy(for: "cpuset")?.path == "/")
        #expect(location.hierarchy(for: "cpuacct")?.directoryName == "cpuacct")
        #expect(location.hierarchy(for: "systemd") == nil)
        #expect(!location.hierarchies.contains { $0.controllers.contains { $0.hasPrefix("name=") } })
    }

    @Test func parsesPureV2() throws {
        let location = try CgroupLocation.parse(Fixtures.v2Cgroup)
        #expect(location.unifiedPath == "/system.slice/docker-4c1d2e3f.scope")
        #expect(location.isPureV2)
        #expect(location.hierarchy(for: "memory") == nil)
    }

    /// Docker on a v1 host: cpu and cpuacct share a hierarchy, whose directory is "cpu,cpuacct".
    @Test func parsesSharedV1Hierarchies() throws {
        let text = """
            12:cpuset:/docker/abc
            11:memory:/docker/abc
            4:cpu,cpuacct:/docker/abc
            1:name=systemd:/docker/abc
            0::/system.slice/containerd.service

            """
        let location = try CgroupLocation.parse(text)
        #expect(location.hierarchy(for: "cpu")?.directoryName == "cpu,cpuacct")
        #expect(location.hierarchy(for: "cpuacct")?.path == "/docker/abc")
        #expect(location.hierarchies.count == 3)
        #expect(location.unifiedPath == "/system.slice/containerd.service")
    }

    /// A colon is a legal character in a cgroup name; only the first two separate fields.
    @Test func keepsColonsInThePath() throws {
        #expect(try CgroupLocation.parse("0::/a:b/c\n").unifiedPath == "/a:b/c")
    }

    @Test(arguments: [
        "0::/../../outside\n",  // a target outside the reader's cgroup namespace
        "0::/a/..\n",
        "0::relative\n",
        "0::\n",
        "0::/a\u{0}b\n",
        "4:memory:/docker/../x\n",
        "memory:/x\n",
        "x:memory:/x\n",
        "4:memory,:/x\n",
        "0::/a\n0::/b\n",  // a forged second v2 line (a cgroup name with a newline, kernels < 5.19)
        "4:memory:/a\n5:memory:/b\n",
        "3::/a\n",
    ])
    func rejectsUnsafeOrMalformedText(_ text: String) {
        #expect(throws: ECIError.self) { try CgroupLocation.parse(text) }
    }

    @Test func emptyTextHasNoCgroup() throws {
        let location = try CgroupLocation.parse("")
        #expect(location.unifiedPath == nil)
        #expect(location.hierarchies.isEmpty)
    }
}

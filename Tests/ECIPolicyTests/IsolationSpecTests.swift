import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

@Suite struct IsolationSpecTests {
    func spec(_ linux: String) throws -> OCISpec {
        try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","x-unknown":{"a":[1]},"linux":\#(linux)}"#.utf8))
    }

    @Test func addsUserAndCgroupNamespacesAndMappings() throws {
        var s = try spec(#"{"namespaces":[{"type":"pid"},{"type":"mount"}],"x-l":true}"#)
        try IsolationSpec.applyUserNamespace(to: &s, range: IDRange(base: 1_114_112))
        let types = try s.namespaces().map(\.type)
        #expect(types == ["pid", "mount", "user", "cgroup"])
        #expect(s.uidMappings.count == 1)
        #expect(s.uidMappings.first?.hostID == 1_114_112 && s.uidMappings.first?.size == 65536)
        #expect(s.document["x-unknown"] != nil && s.document["linux"]?["x-l"] == .bool(true))
    }

    @Test func userNamespaceRequestsAreOverriddenNotHonoured() throws {
        var s = try spec(#"{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":0,"size":4294967295}]}"#)
        try IsolationSpec.applyUserNamespace(to: &s, range: IDRange(base: 2_000_000 - 2_000_000 % 65536))
        #expect(s.uidMappings.first?.hostID != 0)
        #expect(try s.namespaces().filter { $0.type == "user" }.count == 1)
    }

    @Test func joiningAUserNamespaceIsRefused() throws {
        var s = try spec(#"{"namespaces":[{"type":"user","path":"/proc/1/ns/user"}]}"#)
        #expect(throws: ECIError.self) { try IsolationSpec.applyUserNamespace(to: &s, range: IDRange(base: 1 << 20)) }
    }

    @Test func pingGroupRangeIsClampedToTheContainersGroups() throws {
        var s = try spec(#"{"sysctl":{"net.ipv4.ping_group_range":"0 2147483647","net.core.somaxconn":"1024"}}"#)
        try IsolationSpec.applyUserNamespace(to: &s, range: IDRange(base: 1 << 20))
        #expect(s.sysctl("net.ipv4.ping_group_range") == "0 65535")
        #expect(s.sysctl("net.core.somaxconn") == "1024")
    }
}

@Suite struct BindSourcePolicyTests {
    @Test func regularFileSystemsAreIdmapped() {
        #expect(BindSourcePolicy.handling(magic: 0xEF53, fileType: 0o040000) == .idmap)  // ext4 dir
        #expect(BindSourcePolicy.handling(magic: 0x0102_1994, fileType: 0o100000) == .idmap)  // tmpfs file
    }

    @Test(arguments: [
        BindSourcePolicy.Magic.proc, BindSourcePolicy.Magic.sysfs, BindSourcePolicy.Magic.fuse, BindSourcePolicy.Magic.overlay,
        BindSourcePolicy.Magic.devpts, BindSourcePolicy.Magic.cgroup2,
    ])
    func pseudoAndUnsupportedFileSystemsPassThrough(_ magic: Int) {
        #expect(BindSourcePolicy.handling(magic: magic, fileType: 0o040000) != .idmap)
    }

    @Test func deviceNodesPassThrough() {
        #expect(BindSourcePolicy.handling(magic: 0xEF53, fileType: 0o020000) != .idmap)
        #expect(BindSourcePolicy.handling(magic: 0xEF53, fileType: 0o060000) != .idmap)
    }
}

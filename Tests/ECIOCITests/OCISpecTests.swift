import ECICore
import Testing

@testable import ECIOCI

@Suite struct OCISpecTests {
    static let sample = #"""
    {"ociVersion":"1.0.2","x-vendor":{"keep":[1,2,{"deep":"yes"}]},
     "process":{"args":["sh"],"user":{"uid":0,"gid":0}},
     "root":{"path":"rootfs","readonly":true,"x-root-extra":7},
     "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
               {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro"],"x-mount":1}],
     "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/x"}],
              "resources":{"memory":{"limit":9223372036854775807}},"x-linux":"kept"}}
    """#

    @Test func accessorsReadTheSpec() throws {
        let spec = try OCISpec(bytes: Array(Self.sample.utf8))
        #expect(spec.rootPath == "rootfs")
        #expect(spec.rootReadonly)
        #expect(try spec.namespaces() == [.init(type: "pid"), .init(type: "network", path: "/var/run/netns/x")])
        let mounts = try spec.mounts()
        #expect(mounts.count == 2)
        #expect(!mounts[0].isBind)
        #expect(mounts[1].isBind && mounts[1].isRecursiveBind)
    }

    @Test func rewritesKeepEveryUnknownField() throws {
        var spec = try OCISpec(bytes: Array(Self.sample.utf8))
        spec.setRootPath("/staged/rootfs")
        spec.setMountSource(at: 1, to: "/staged/mounts/1")
        spec.ensureNamespace("user")
        spec.setIDMappings(containerID: 0, hostID: 1_048_576, size: 65536)
        let out = try JSONValue.parse(spec.serialized())
        #expect(out["x-vendor"] == (try JSONValue.parse(#"{"keep":[1,2,{"deep":"yes"}]}"#)))
        #expect(out["root"]?["x-root-extra"] == .number("7"))
        #expect(out["root"]?["readonly"] == .bool(true))
        #expect(out["mounts"]?.arrayValue?[1]["x-mount"] == .number("1"))
        #expect(out["mounts"]?.arrayValue?[1]["source"]?.stringValue == "/staged/mounts/1")
        #expect(out["linux"]?["x-linux"]?.stringValue == "kept")
        #expect(out["linux"]?["resources"]?["memory"]?["limit"] == .number("9223372036854775807"))
        #expect(out["linux"]?["uidMappings"]?.arrayValue?.first?["hostID"] == .number("1048576"))
        #expect(out["linux"]?["namespaces"]?.arrayValue?.count == 3)
    }

    @Test(arguments: [
        #"[]"#, #"{"root":{"path":"r"}}"#, #"{"ociVersion":"1","root":"x"}"#, #"{"ociVersion":"1","mounts":{}}"#,
        #"{"ociVersion":"1","linux":{"namespaces":[{"path":"/x"}]}}"#, #"{"ociVersion":"1","mounts":[{"type":"bind"}]}"#,
        #"{"ociVersion":"1","mounts":[{"destination":"/x","options":[1]}]}"#, "not json",
    ])
    func malformedSpecsAreRefused(_ text: String) {
        #expect(throws: ECIError.self) { try OCISpec(bytes: Array(text.utf8)) }
    }
}

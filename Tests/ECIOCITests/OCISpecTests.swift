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

    /// runc reads keys whatever their ASCII case ("ſ" as "s", "K" as "k"), the last winning: a
    /// spec with two keys runc reads as one field is refused, where ECI and runc would act on
    /// different ones (an attack round: "Args" next to the "args" eci-runc rewrote ran as is).
    /// Map keys (annotations, sysctls) are data, matched exactly, and stay allowed.
    @Test func keysRuncWouldReadAsOneAreRefused() throws {
        func spec(_ process: String, extra: String = "") throws -> OCISpec {
            try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","process":\#(process)\#(extra)}"#.utf8))
        }
        _ = try spec(#"{"args":["sh"]}"#)
        #expect(throws: ECIError.self) { try spec(#"{"args":["sh"],"Args":["evil"]}"#) }
        #expect(throws: ECIError.self) { try spec(#"{"args":["sh"],"user":{"uid":0,"UID":5}}"#) }
        #expect(throws: ECIError.self) { try spec("{\"args\":[\"sh\"],\"noNewPrivilege\u{17F}\":true,\"noNewPrivileges\":false}") }
        #expect(throws: ECIError.self) { try spec(#"{"args":["sh"]}"#, extra: #","mounts":[{"destination":"/x","Destination":"/y"}]"#) }
        _ = try spec(#"{"args":["sh"]}"#, extra: #","annotations":{"a":"1","A":"2"},"linux":{"sysctl":{"net.x":"1","NET.X":"2"}}"#)
        // A lone key runc reads as a field ECI reads by its exact name (a third attack round's
        // note: "Mounts" would be mounted by runc and never checked by ECI's mount policy).
        #expect(throws: ECIError.self) { try spec(#"{"args":["sh"]}"#, extra: #","Mounts":[{"destination":"/x","type":"bind","source":"/"}]"#) }
        #expect(throws: ECIError.self) { try spec(#"{"Args":["sh"]}"#) }
        #expect(throws: ECIError.self) { try spec(#"{"args":["sh"],"capabilitie\#u{17F}":{}}"#) }
        // Unknown keys (extensions) and map keys that look like fields stay allowed.
        _ = try spec(#"{"args":["sh"],"x-vendor":{"Mounts":1}}"#, extra: #","annotations":{"Mounts":"1"},"linux":{"netDevices":{"Type":{"name":"eth1"}}}"#)
        #expect(GoFieldNames.fold("Capabilitie\u{17F}") == "capabilities")
        #expect(GoFieldNames.fold("\u{212A}ERNEL") == "kernel")
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

import ECICore
import Testing

@testable import ECIPolicy

/// A container's cgroup stays under the engine's parents, whatever a build's LLB asked for.
@Suite struct CgroupPathPolicyTests {
    let parents = ["/docker", "system.slice:docker"]

    @Test(arguments: [
        "/docker/0123abcd", "/docker/buildkit/x1y2", "docker/ignored-relative-is-not-this-form", "system.slice:docker:0123abcd",
    ])
    func theEnginesOwnPathsPass(path: String) throws {
        if path.hasPrefix("docker/") {
            #expect(throws: ECIError.self) { try CgroupPathPolicy.check(path, parents: parents) }
        } else {
            try CgroupPathPolicy.check(path, parents: parents)
        }
    }

    @Test(arguments: [
        "/", "/docker", "/docker/..", "/docker/../system.slice/x", "/docker/./x/../../y", "/system.slice/containerd.service/x",
        "/evil/buildkit/x", "/dockerx/1", "user.slice:docker:x", "system.slice:evil:x", "system.slice:docker:a/b", "system.slice:docker:",
        "system.slice:docker:x:y", "/docker:x/1",
    ])
    func anythingElseIsRefused(path: String) {
        #expect(throws: ECIError.self, "\(path)") { try CgroupPathPolicy.check(path, parents: parents) }
    }

    @Test func absentPathIsRuncsDefaultAndTheKeyParses() throws {
        try CgroupPathPolicy.check(nil, parents: parents)
        let parsed = try RestrictedMountPolicy.parse(
            Array(#"{"restrictedPaths":[],"engineDataRoot":"/var/lib/docker","cgroupParents":["/docker","system.slice:docker"]}"#.utf8), source: "p")
        #expect(parsed.cgroupParents == parents)
        #expect(RestrictedMountPolicy.defaults.cgroupParents == nil, "a plain host checks nothing")
        for bad in [#"["/"]"#, #"["system.slice"]"#, #"["a:b:c"]"#, #""/docker""#] {
            #expect(throws: ECIError.self, "\(bad)") {
                try RestrictedMountPolicy.parse(Array(#"{"restrictedPaths":[],"engineDataRoot":"/d","cgroupParents":\#(bad)}"#.utf8), source: "p")
            }
        }
    }
}

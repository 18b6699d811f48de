import ECICore
import ECIOCI
import Testing

@testable import ECIPolicy

/// Mounts the engine makes of its own files for a container it runs: excepted by the runtime
/// only, never by the API filter, and as narrow as what the engine does.
@Suite struct EngineOwnedMountsTests {
    var policy: RestrictedMountPolicy {
        var policy = RestrictedMountPolicy.defaults
        policy.allowedBindRoots = ["/srv"]
        return policy
    }

    func runtimeCheck(_ source: String, _ names: [String]) throws {
        try policy.check(source: source, names: names, restricted: policy.restrictedPaths, containerID: "c1", destination: "/x")
    }

    @Test func buildKitExecutorFilesForTheRuntimeOnly() throws {
        try runtimeCheck("/var/lib/docker/buildkit/executor/resolv.conf", ["/var/lib/docker/buildkit/executor/resolv.conf"])
        try runtimeCheck("/var/lib/docker/buildkit/executor/hosts123", ["/var/lib/docker/buildkit/executor/hosts123"])
        #expect(throws: ECIError.self) { try runtimeCheck("/var/lib/docker/buildkit/executor", ["/var/lib/docker/buildkit/executor"]) }
        #expect(throws: ECIError.self) { try runtimeCheck("/var/lib/docker/buildkit/executor/x/resolv.conf", ["/var/lib/docker/buildkit/executor/x/resolv.conf"]) }
        #expect(throws: ECIError.self) { try runtimeCheck("/var/lib/docker/buildkit/content", ["/var/lib/docker/buildkit/content"]) }
        #expect(throws: ECIError.self) {
            try policy.check(source: "/var/lib/docker/buildkit/executor/resolv.conf", names: ["/var/lib/docker/buildkit/executor/resolv.conf"], restricted: policy.restrictedPaths, containerID: "")
        }
        let spec = try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","root":{"path":"r"},"mounts":[{"destination":"/etc/resolv.conf","type":"bind","source":"/var/lib/docker/buildkit/executor/resolv.conf","options":["rbind"]}]}"#.utf8))
        #expect(try ReadOnlyMounts.lockedIndices(in: spec, policy: policy) == [0], "BuildKit's files are locked read-only")
    }

    @Test func volumeSubpathMountsAreJudgedByTheVolumeTheyShow() throws {
        let safe = "/var/lib/docker/tmp/safe-mount1577143616"
        try runtimeCheck(safe, [safe, "/var/lib/docker/volumes/v/_data/sub"])
        // Not backed by a volume's data: refused; nor any other name under the engine's tmp.
        #expect(throws: ECIError.self) { try runtimeCheck(safe, [safe, "/var/lib/docker/overlay2/abc/diff"]) }
        #expect(throws: ECIError.self) { try runtimeCheck(safe, [safe]) }
        #expect(throws: ECIError.self) { try runtimeCheck("/var/lib/docker/tmp/other", ["/var/lib/docker/tmp/other", "/var/lib/docker/volumes/v/_data"]) }
        #expect(throws: ECIError.self) {
            try policy.check(source: safe, names: [safe, "/var/lib/docker/volumes/v/_data/sub"], restricted: policy.restrictedPaths, containerID: "")
        }
    }
}

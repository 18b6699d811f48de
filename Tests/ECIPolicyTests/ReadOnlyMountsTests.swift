import ECIOCI
import Testing

@testable import ECIPolicy

/// Which bind mounts the runtime locks read-only: both spellings of read-only, and the engine's helper.
@Suite struct ReadOnlyMountsTests {
    @Test func bothSpellingsAndTheEngineHelperAreLocked() throws {
        let spec = try OCISpec(bytes: Array("""
            {"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[
              {"destination":"/proc","type":"proc","source":"proc","options":["ro"]},
              {"destination":"/a","type":"bind","source":"/srv/a","options":["rbind","ro"]},
              {"destination":"/b","type":"bind","source":"/srv/b","options":["rbind","rro","rprivate"]},
              {"destination":"/c","type":"bind","source":"/srv/c","options":["rbind","rw"]},
              {"destination":"/sbin/docker-init","type":"bind","source":"/usr/bin/docker-init","options":["bind","rw"]},
              {"destination":"/x","type":"bind","source":"/usr/bin/docker-init","options":["bind"]}
            ]}
            """.utf8))
        let locked = try ReadOnlyMounts.lockedIndices(in: spec, policy: .defaults)
        #expect(locked == [1, 2, 4], "ro, rro and the engine's helper; not rw binds, not typed mounts: \(locked)")
    }

    @Test func theHelperExceptionIsByNameAndDestination() {
        let policy = RestrictedMountPolicy.defaults
        #expect(policy.isEngineHelperMount(source: "/usr/bin/docker-init", destination: "/sbin/docker-init"))
        #expect(policy.isEngineHelperMount(source: "/usr/libexec/docker/docker-init", destination: "/sbin//docker-init/"))
        #expect(!policy.isEngineHelperMount(source: "/usr/bin/docker-init", destination: "/x"))
        #expect(!policy.isEngineHelperMount(source: "/usr/bin/tini", destination: "/sbin/docker-init"))
        #expect(!policy.isEngineHelperMount(source: "/srv/docker-init", destination: "/sbin/docker-init"))
    }
}

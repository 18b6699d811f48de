import ECICore
import ECIPolicy
import Testing

@testable import ECIRuntime

/// The pure half of the symlink-blind bind roots: which mounts still follow symlinks, and when
/// a bind source is refused for it.
@Suite struct SymlinkBlindRootsTests {
    static let mounts = MountInfo.parse("""
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
        40 22 8:1 /srv /srv rw,nosymfollow,relatime shared:1 - ext4 /dev/vda rw
        41 40 0:50 / /srv/disk rw,relatime - ext4 /dev/vdb rw
        42 22 8:1 /home /home rw,nosymfollow,relatime - ext4 /dev/vda rw
        43 42 0:51 / /home/u rw,nosymfollow,relatime - tmpfs tmpfs rw
        """)

    var policy: RestrictedMountPolicy {
        var policy = RestrictedMountPolicy.defaults
        policy.allowedBindRoots = ["/srv", "/home", "/mnt"]
        return policy
    }

    @Test func reportsEveryMountThatStillFollowsSymlinks() {
        let left = SymlinkBlindRoots.unprotectedMounts(roots: ["/srv", "/home", "/mnt"], mounts: Self.mounts)
        #expect(left == ["/srv/disk", "/mnt"], "a later mount under a root, and a root never made blind: \(left)")
        #expect(SymlinkBlindRoots.unprotectedMounts(roots: ["/home"], mounts: Self.mounts).isEmpty)
    }

    @Test func bindSourcesMustSitOnBlindMounts() throws {
        try SymlinkBlindRoots.requireBlind(source: "/srv/app", resolved: "/srv/app", recursive: true, policy: policy, mounts: Self.mounts)
        try SymlinkBlindRoots.requireBlind(source: "/home/u/src", resolved: "/home/u/src", recursive: true, policy: policy, mounts: Self.mounts)
        // The whole of /srv with a recursive bind carries /srv/disk, which follows symlinks.
        #expect(throws: ECIError.self) { try SymlinkBlindRoots.requireBlind(source: "/srv", resolved: "/srv", recursive: true, policy: policy, mounts: Self.mounts) }
        try SymlinkBlindRoots.requireBlind(source: "/srv", resolved: "/srv", recursive: false, policy: policy, mounts: Self.mounts)
        #expect(throws: ECIError.self) { try SymlinkBlindRoots.requireBlind(source: "/srv/disk/x", resolved: "/srv/disk/x", recursive: false, policy: policy, mounts: Self.mounts) }
        #expect(throws: ECIError.self) { try SymlinkBlindRoots.requireBlind(source: "/mnt/x", resolved: "/mnt/x", recursive: false, policy: policy, mounts: Self.mounts) }
        // Outside the allowed roots (named volumes, the engine's files) this rule does not apply,
        // nor on a plain host without allowed roots.
        try SymlinkBlindRoots.requireBlind(source: "/var/lib/docker/volumes/v/_data", resolved: "/var/lib/docker/volumes/v/_data", recursive: true, policy: policy, mounts: Self.mounts)
        try SymlinkBlindRoots.requireBlind(source: "/mnt/x", resolved: "/mnt/x", recursive: true, policy: .defaults, mounts: Self.mounts)
    }
}

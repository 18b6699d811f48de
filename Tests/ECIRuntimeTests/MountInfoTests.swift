import ECICore
import Testing

@testable import ECIRuntime

@Suite struct MountInfoTests {
    static let sample = """
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
        30 22 0:40 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/AAA:/var/lib/docker/overlay2/l/BBB,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work,index=off
        31 22 0:41 / /mnt/with\\040space rw - tmpfs tmpfs rw
        32 22 0:42 / /var/lib/docker/overlay2/def/merged rw - overlay overlay rw,lowerdir+=/x/l1,lowerdir+=/x/l2,upperdir=/x/u,workdir=/x/w
        """

    @Test func parsesFieldsAndEscapes() {
        let entries = MountInfo.parse(Self.sample)
        #expect(entries.count == 4)
        #expect(entries[2].mountPoint == "/mnt/with space")
        #expect(entries[1].fsType == "overlay")
        #expect(entries[0].mountOptions.contains("relatime"))
    }

    @Test func findsMountsByPath() {
        let entries = MountInfo.parse(Self.sample)
        #expect(MountInfo.mount(at: "/var/lib/docker/overlay2/abc/merged", in: entries)?.mountID == 30)
        #expect(MountInfo.containingMount(of: "/var/lib/docker/overlay2/abc/diff", in: entries)?.mountID == 22)
        #expect(MountInfo.containingMount(of: "/mnt/with space/x", in: entries)?.mountID == 31)
        #expect(MountInfo.containingMount(of: "/mnt/with spacex", in: entries)?.mountID == 22)
    }

    @Test func readsOverlayLayersInBothSyntaxes() {
        let entries = MountInfo.parse(Self.sample)
        let legacy = OverlayLayers(superOptions: entries[1].superOptions)
        #expect(legacy.lowers == ["/var/lib/docker/overlay2/l/AAA", "/var/lib/docker/overlay2/l/BBB"])
        #expect(legacy.upper == "/var/lib/docker/overlay2/abc/diff")
        let plus = OverlayLayers(superOptions: entries[3].superOptions)
        #expect(plus.lowers == ["/x/l1", "/x/l2"] && plus.work == "/x/w")
        #expect(OverlayLayers.splitLowerdir(#"/a\:b:/c"#) == ["/a:b", "/c"])
    }

    @Test func resolvesRelativeLayersAgainstTheEngineHome() throws {
        let layers = OverlayLayers(lowers: ["l/AAA", "l/BBB"], upper: "abc/diff", work: "abc/work")
        let existing: Set<String> = ["/d/overlay2/l/AAA", "/d/overlay2/l/BBB", "/d/overlay2/abc/diff", "/d/overlay2/abc/work"]
        let resolved = try layers.resolved(mountPoint: "/d/overlay2/abc/merged") { existing.contains($0) }
        #expect(resolved.lowers == ["/d/overlay2/l/AAA", "/d/overlay2/l/BBB"])
        #expect(resolved.upper == "/d/overlay2/abc/diff")
        #expect(throws: ECIError.self) { try layers.resolved(mountPoint: "/d/overlay2/abc/merged") { _ in false } }
    }

    @Test func groupsLayersUnderOneIdmapRootPerMount() throws {
        let entries = MountInfo.parse(Self.sample)
        let paths = ["/var/lib/docker/overlay2/aaa/diff", "/var/lib/docker/overlay2/bbb/diff", "/var/lib/docker/overlay2/abc/diff",
                     "/var/lib/docker/overlay2/abc/eci-work", "/mnt/with space/layer"]
        let (roots, refs) = try RootfsPlanner.groupUnderIdmapRoots(paths, mounts: entries)
        #expect(roots == ["/var/lib/docker/overlay2", "/mnt/with space"])
        #expect(refs[0] == .init(root: 0, relative: "aaa/diff"))
        #expect(refs[3] == .init(root: 0, relative: "abc/eci-work"))
        #expect(refs[4] == .init(root: 1, relative: "layer"))
    }

    @Test func commonDirectoryIsComponentWise() {
        #expect(RootfsPlanner.commonDirectory("/a/bc/d", "/a/b/d") == "/a")
        #expect(RootfsPlanner.commonDirectory("/a/b", "/a/b/c") == "/a/b")
        #expect(RootfsPlanner.commonDirectory("/x", "/y") == "/")
    }
}

import ECICore
import Glibc
import Testing

@testable import ECIProcFS

/// A cgroup fixture tree in a temporary directory, removed on deinit.
final class CgroupTree {
    let root: String

    init() throws {
        var template = Array("/tmp/eci-procfs-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw ECIError.system("mkdtemp", errno: errno) }
        root = String(cString: made)
    }

    /// Writes `text` at `relative` (starting with "/"), creating the directories above it.
    func write(_ relative: String, _ text: String) throws {
        let full = root + relative
        if let slash = full.lastIndex(of: "/") { try FileSystem.makeDirectories(String(full[..<slash])) }
        try FileSystem.write(full, Array(text.utf8))
    }

    func makeDirectory(_ relative: String) throws { try FileSystem.makeDirectories(root + relative) }

    deinit { try? FileSystem.removeTree(root) }
}

@Suite struct CgroupReaderTests {
    static let gib: UInt64 = 1 << 30
    static let mib: UInt64 = 1 << 20
    static let v2Scope = "/system.slice/docker-4c1d2e3f.scope"

    /// A pure v2 tree like the VM's: the slice limits memory below the scope's own limit.
    static func v2Tree() throws -> CgroupTree {
        let tree = try CgroupTree()
        try tree.write("/cpuset.cpus.effective", "0-3\n")
        try tree.write("/cpu.stat", "usage_usec 999999999\n")
        try tree.write("/system.slice/memory.max", "2147483648\n")
        try tree.write("/system.slice/memory.swap.max", "max\n")
        try tree.write("/system.slice/cpuset.cpus.effective", "1,3\n")
        try tree.write(v2Scope + "/memory.max", "4294967296\n")
        try tree.write(v2Scope + "/memory.current", "536870912\n")
        try tree.write(v2Scope + "/memory.swap.max", "1073741824\n")
        try tree.write(v2Scope + "/memory.swap.current", "104857600\n")
        try tree.write(v2Scope + "/memory.stat", Fixtures.memoryStatV2)
        try tree.write(v2Scope + "/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
        return tree
    }

    static func v2Reader(_ tree: CgroupTree) throws -> CgroupReader {
        CgroupReader(location: try CgroupLocation.parse(Fixtures.v2Cgroup), root: tree.root)
    }

    @Test func v2MemoryTakesTheSmallestLimitUpToTheRoot() throws {
        let tree = try Self.v2Tree()
        let memory = try Self.v2Reader(tree).memory()
        #expect(memory.limit == 2 * Self.gib)
        #expect(memory.usage == 512 * Self.mib)
        #expect(memory.swapLimit == Self.gib)
        #expect(memory.swapUsage == 100 * Self.mib)
        #expect(memory.stat["file"] == 104_857_600)
        #expect(memory.stat["slab_reclaimable"] == 3_145_728)
        #expect(memory.stat["pgmajfault"] == 12)
    }

    @Test func v2ChildLimitBelowTheParentWins() throws {
        let tree = try Self.v2Tree()
        try tree.write(Self.v2Scope + "/memory.max", "268435456\n")
        #expect(try Self.v2Reader(tree).memory().limit == 256 * Self.mib)
    }

    @Test func v2MaxEverywhereIsNoLimit() throws {
        let tree = try Self.v2Tree()
        try tree.write("/system.slice/memory.max", "max\n")
        try tree.write(Self.v2Scope + "/memory.max", "max\n")
        try tree.write(Self.v2Scope + "/memory.swap.max", "max\n")
        let memory = try Self.v2Reader(tree).memory()
        #expect(memory.limit == nil)
        #expect(memory.swapLimit == nil)
        #expect(memory.usage == 512 * Self.mib)
    }

    /// Without swap accounting the swap files do not exist: the swap is unknown, not unlimited.
    @Test func v2WithoutSwapAccounting() throws {
        let tree = try Self.v2Tree()
        try FileSystem.removeTree(tree.root + Self.v2Scope + "/memory.swap.current")
        let memory = try Self.v2Reader(tree).memory()
        #expect(memory.swapUsage == nil)
        #expect(memory.swapLimit == nil)
    }

    @Test func v2CPUsWalkUpToTheNearestNonEmptySet() throws {
        let tree = try Self.v2Tree()
        #expect(try Self.v2Reader(tree).cpus() == [1, 3])
        try tree.write(Self.v2Scope + "/cpuset.cpus.effective", "\n")
        #expect(try Self.v2Reader(tree).cpus() == [1, 3])
        try tree.write(Self.v2Scope + "/cpuset.cpus.effective", "2\n")
        #expect(try Self.v2Reader(tree).cpus() == [2])
        // Garbage is skipped like an empty set: the ancestor's set is still a real bound.
        try tree.write(Self.v2Scope + "/cpuset.cpus.effective", "2-x\n")
        #expect(try Self.v2Reader(tree).cpus() == [1, 3])
    }

    @Test func v2CPUUsage() throws {
        let tree = try Self.v2Tree()
        #expect(try Self.v2Reader(tree).cpuUsageSeconds() == 2.5)
    }

    /// The container's cgroup is gone (it exited while a reader had the file open).
    @Test func missingCgroupIsUnknown() throws {
        let tree = try CgroupTree()
        let reader = try Self.v2Reader(tree)
        #expect(reader.memory() == MemoryUsage())
        #expect(reader.cpus() == [])
        #expect(reader.cpuUsageSeconds() == nil)
    }

    /// A symlink in place of a cgroup file is not followed (cgroupfs has none; a planted one
    /// must not make the server read another file).
    @Test func symlinksAreNotFollowed() throws {
        let tree = try Self.v2Tree()
        try tree.write("/elsewhere/current", "1\n")
        let current = tree.root + Self.v2Scope + "/memory.current"
        try FileSystem.removeTree(current)
        #expect(symlink(tree.root + "/elsewhere/current", current) == 0)
        let limit = tree.root + Self.v2Scope + "/memory.max"
        try FileSystem.removeTree(limit)
        #expect(symlink(tree.root + "/elsewhere/current", limit) == 0)
        let memory = try Self.v2Reader(tree).memory()
        #expect(memory.usage == nil)
        #expect(memory.limit == 2 * Self.gib)
    }

    /// A FIFO would block a plain open; the reader returns at once with "unknown".
    @Test func fifoIsNotRead() throws {
        let tree = try Self.v2Tree()
        let current = tree.root + Self.v2Scope + "/memory.current"
        try FileSystem.removeTree(current)
        #expect(mkfifo(current, 0o600) == 0)
        #expect(try Self.v2Reader(tree).memory().usage == nil)
    }

    // MARK: - cgroup v1 (hybrid)

    static let v1Cgroup = """
        11:memory:/docker/abc
        4:cpu,cpuacct:/docker/abc
        3:cpuset:/docker/abc
        1:name=systemd:/docker/abc
        0::/

        """

    static func v1Tree() throws -> CgroupTree {
        let tree = try CgroupTree()
        let unlimited = "9223372036854771712\n"
        try tree.write("/memory/memory.limit_in_bytes", unlimited)
        try tree.write("/memory/memory.memsw.limit_in_bytes", unlimited)
        try tree.write("/memory/docker/memory.limit_in_bytes", "1073741824\n")
        try tree.write("/memory/docker/memory.memsw.limit_in_bytes", "1610612736\n")
        try tree.write("/memory/docker/abc/memory.limit_in_bytes", unlimited)
        try tree.write("/memory/docker/abc/memory.memsw.limit_in_bytes", unlimited)
        try tree.write("/memory/docker/abc/memory.usage_in_bytes", "314572800\n")
        try tree.write("/memory/docker/abc/memory.memsw.usage_in_bytes", "367001600\n")
        try tree.write("/memory/docker/abc/memory.stat", Fixtures.memoryStatV1)
        try tree.write("/cpuset/cpuset.effective_cpus", "0-3\n")
        try tree.write("/cpuset/cpuset.cpus", "0-3\n")
        try tree.write("/cpuset/docker/abc/cpuset.effective_cpus", "2-3\n")
        try tree.write("/cpuset/docker/abc/cpuset.cpus", "2-3\n")
        try tree.write("/cpu,cpuacct/docker/abc/cpuacct.usage", "1500000000\n")
        try tree.makeDirectory("/unified")
        return tree
    }

    static func v1Reader(_ tree: CgroupTree) throws -> CgroupReader {
        CgroupReader(location: try CgroupLocation.parse(v1Cgroup), root: tree.root)
    }

    @Test func v1MemoryFromTheMemoryHierarchy() throws {
        let tree = try Self.v1Tree()
        let memory = try Self.v1Reader(tree).memory()
        #expect(memory.limit == Self.gib)
        #expect(memory.usage == 300 * Self.mib)
        // memsw is memory + swap: 1.5 GiB - 1 GiB of swap allowed, 350 - 300 MiB used.
        #expect(memory.swapLimit == 512 * Self.mib)
        #expect(memory.swapUsage == 50 * Self.mib)
        // total_* renamed to the v2 names.
        #expect(memory.stat["file"] == 43_823_104)
        #expect(memory.stat["anon"] == 9_166_848)
        #expect(memory.stat["inactive_file"] == 23_977_984)
        #expect(memory.stat["file_dirty"] == 24_940_544)
        #expect(memory.stat["hierarchical_memory_limit"] == nil)
    }

    /// v1 "unlimited" is a page-rounded LONG_MAX everywhere: no limit.
    @Test func v1HugeValuesAreNoLimit() throws {
        let tree = try Self.v1Tree()
        try tree.write("/memory/docker/memory.limit_in_bytes", "9223372036854771712\n")
        try tree.write("/memory/docker/memory.memsw.limit_in_bytes", "9223372036854771712\n")
        let memory = try Self.v1Reader(tree).memory()
        #expect(memory.limit == nil)
        #expect(memory.swapLimit == nil)
        #expect(memory.swapUsage == 50 * Self.mib)
    }

    /// swapaccount=0: no memsw files.
    @Test func v1WithoutSwapAccounting() throws {
        let tree = try Self.v1Tree()
        try FileSystem.removeTree(tree.root + "/memory/docker/abc/memory.memsw.usage_in_bytes")
        #expect(try Self.v1Reader(tree).memory().swapUsage == nil)
    }

    @Test func v1CPUs() throws {
        let tree = try Self.v1Tree()
        #expect(try Self.v1Reader(tree).cpus() == [2, 3])
        // Older kernels have only cpuset.cpus.
        try FileSystem.removeTree(tree.root + "/cpuset/docker/abc/cpuset.effective_cpus")
        try tree.write("/cpuset/docker/abc/cpuset.cpus", "1\n")
        #expect(try Self.v1Reader(tree).cpus() == [1])
    }

    @Test func v1CPUUsageFromCpuacct() throws {
        let tree = try Self.v1Tree()
        #expect(try Self.v1Reader(tree).cpuUsageSeconds() == 1.5)
    }

    /// This development machine mounts cpuacct on its own ("/sys/fs/cgroup/cpuacct"); systemd
    /// hosts link "cpuacct" to "cpu,cpuacct". Either directory name is found.
    @Test func v1HierarchyUnderTheControllerName() throws {
        let tree = try Self.v1Tree()
        #expect(rename(tree.root + "/cpu,cpuacct", tree.root + "/cpuacct") == 0)
        #expect(try Self.v1Reader(tree).cpuUsageSeconds() == 1.5)
    }

    /// On a hybrid host a controller absent from v1 is looked up in "<root>/unified".
    @Test func hybridFallsBackToTheUnifiedMount() throws {
        let tree = try Self.v1Tree()
        try tree.write("/unified/docker/abc/cpu.stat", "usage_usec 750000\n")
        let location = try CgroupLocation.parse("11:memory:/docker/abc\n0::/docker/abc\n")
        #expect(CgroupReader(location: location, root: tree.root).cpuUsageSeconds() == 0.75)
    }

    @Test func ancestors() {
        #expect(CgroupReader.ancestors(of: "/a/b") == ["/a/b", "/a", "/"])
        #expect(CgroupReader.ancestors(of: "/") == ["/"])
    }

    /// The reader on the real /sys/fs/cgroup of whatever machine runs the tests (v1 hybrid here,
    /// v2 in CI): the numbers vary, so this only shows that real files parse and nothing traps.
    @Test func readsTheRealHierarchy() throws {
        let text = try FileSystem.readText("/proc/self/cgroup")
        let reader = CgroupReader(location: try CgroupLocation.parse(text))
        _ = reader.memory()
        _ = reader.cpuUsageSeconds()
        #expect(reader.cpus().allSatisfy { $0 >= 0 && $0 < CPUList.maxCPUs })
    }
}

import ECICore
import Glibc

/// Reads one container's numbers from the cgroup filesystem: memory, allowed CPUs, CPU time.
///
/// Never throws: a missing or unreadable file is "unknown" (nil or empty), and the views then
/// show the host's value, so a cgroup removed while a reader has the file open cannot crash
/// the server. Files are opened without following a final symlink and must be regular files
/// (a FIFO planted in a test tree would block the open); cgroupfs itself has neither.
public struct CgroupReader: Sendable {
    /// Where the host mounts its cgroup hierarchies.
    public static let defaultRoot = "/sys/fs/cgroup"
    /// v1 reports "no limit" as a page-rounded LONG_MAX (9223372036854771712); anything this large
    /// is no limit on any real machine.
    static let unlimited: UInt64 = 1 << 62
    /// The most read from one cgroup file: memory.stat is a few KB; bounds a corrupt tree.
    static let maxFileSize = 1 << 20

    /// The cgroup paths of the container (from its init's /proc/PID/cgroup).
    public let location: CgroupLocation
    /// The directory the hierarchies are mounted under: pure v2 at `root` itself; on a hybrid host
    /// v1 controllers at "<root>/<controllers>" and v2 at "<root>/unified".
    public let root: String

    public init(location: CgroupLocation, root: String = CgroupReader.defaultRoot) {
        self.location = location
        self.root = root
    }

    /// The container's memory limit, use, swap and memory.stat counters. The limits are the
    /// smallest over the cgroup and its ancestors up to the root ("max", absent or a v1
    /// "unlimited" value mean no limit at that level), as the kernel enforces them.
    public func memory() -> MemoryUsage {
        if let hierarchy = location.hierarchy(for: "memory") {
            guard let base = v1Directory(hierarchy, controller: "memory") else { return MemoryUsage() }
            return memoryV1(base: base, path: hierarchy.path)
        }
        guard let path = location.unifiedPath else { return MemoryUsage() }
        return memoryV2(base: v2Root, path: path)
    }

    /// The CPUs the container may run on (v2 cpuset.cpus.effective; v1 cpuset.effective_cpus,
    /// else cpuset.cpus), from the nearest ancestor that names some: a cgroup without the cpuset
    /// controller enabled has no file or an empty one and runs on its parent's set.
    /// Empty when unknown; the views then show every host CPU.
    public func cpus() -> [Int] {
        let base: String
        let path: String
        let files: [String]
        if let hierarchy = location.hierarchy(for: "cpuset") {
            guard let directory = v1Directory(hierarchy, controller: "cpuset") else { return [] }
            (base, path, files) = (directory, hierarchy.path, ["cpuset.effective_cpus", "cpuset.cpus"])
        } else if let unified = location.unifiedPath {
            (base, path, files) = (v2Root, unified, ["cpuset.cpus.effective"])
        } else {
            return []
        }
        for level in levels(base, path, files).reversed() {
            for file in files {
                guard let text = level[file] ?? nil, let cpus = try? CPUList.parse(text), !cpus.isEmpty else { continue }
                return cpus
            }
        }
        return []
    }

    /// The CPU time the container has used since its cgroup was created, in seconds
    /// (v2 cpu.stat usage_usec; v1 cpuacct.usage in ns); nil when unknown.
    public func cpuUsageSeconds() -> Double? {
        if let hierarchy = location.hierarchy(for: "cpuacct") {
            guard let base = v1Directory(hierarchy, controller: "cpuacct"),
                let text = Self.deepest(levels(base, hierarchy.path, ["cpuacct.usage"]), "cpuacct.usage"),
                let nanoseconds = ProcText.unsigned(text.trimmingWhitespace)
            else { return nil }
            return Double(nanoseconds) / 1e9
        }
        guard let path = location.unifiedPath, let text = Self.deepest(levels(v2Root, path, ["cpu.stat"]), "cpu.stat"),
            let microseconds = Self.keyedCounters(text)["usage_usec"]
        else { return nil }
        return Double(microseconds) / 1e6
    }

    // MARK: - Memory per version

    /// The usage and counters are those of the deepest level that has the usage file at all:
    /// the cgroup itself, or, when the process sits in a child cgroup without the memory
    /// controller (cgroup v2: a delegated container's init moved to `/init.scope`, as systemd
    /// does), the nearest ancestor that accounts it. Never "unknown" for that: unknown shows
    /// the VM's meminfo (attack round 11). The limits are the smallest over every level.
    private func memoryV2(base: String, path: String) -> MemoryUsage {
        let levels = levels(base, path, ["memory.max", "memory.current", "memory.swap.max", "memory.swap.current", "memory.stat"])
        let accounted = levels.last { $0.keys.contains("memory.current") } ?? [:]
        let swapUsage = Self.number(accounted["memory.swap.current"] ?? nil)
        return MemoryUsage(
            limit: Self.smallestLimit(levels, "memory.max"),
            usage: Self.number(accounted["memory.current"] ?? nil),
            swapLimit: swapUsage == nil ? nil : Self.smallestLimit(levels, "memory.swap.max"),
            swapUsage: swapUsage,
            stat: (accounted["memory.stat"] ?? nil).map(Self.keyedCounters) ?? [:])
    }

    private func memoryV1(base: String, path: String) -> MemoryUsage {
        let levels = levels(
            base, path, ["memory.limit_in_bytes", "memory.usage_in_bytes", "memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes", "memory.stat"])
        let accounted = levels.last { $0.keys.contains("memory.usage_in_bytes") } ?? [:]
        let limit = Self.smallestLimit(levels, "memory.limit_in_bytes")
        let usage = Self.number(accounted["memory.usage_in_bytes"] ?? nil)
        // v1 accounts memory+swap together (memsw); the swap part is the difference.
        let memswLimit = Self.smallestLimit(levels, "memory.memsw.limit_in_bytes")
        let memswUsage = Self.number(accounted["memory.memsw.usage_in_bytes"] ?? nil)
        var swapUsage: UInt64?
        if let memswUsage, let usage { swapUsage = ProcText.minus(memswUsage, usage) }
        var swapLimit: UInt64?
        if let memswLimit, let limit { swapLimit = ProcText.minus(memswLimit, limit) }
        return MemoryUsage(
            limit: limit, usage: usage, swapLimit: swapLimit, swapUsage: swapUsage,
            stat: (accounted["memory.stat"] ?? nil).map { Self.v2Names(Self.keyedCounters($0)) } ?? [:])
    }

    /// v1 memory.stat counters under the v2 names the views use. The hierarchical "total_*"
    /// counters are preferred: a container's cgroup has children (e.g. systemd's) whose pages count too.
    static func v2Names(_ v1: [String: UInt64]) -> [String: UInt64] {
        let names = [
            "cache": "file", "rss": "anon", "rss_huge": "anon_thp", "shmem": "shmem",
            "mapped_file": "file_mapped", "dirty": "file_dirty", "writeback": "file_writeback",
            "swapcached": "swapcached", "active_anon": "active_anon", "inactive_anon": "inactive_anon",
            "active_file": "active_file", "inactive_file": "inactive_file", "unevictable": "unevictable",
        ]
        var result: [String: UInt64] = [:]
        for (v1Name, v2Name) in names {
            if let value = v1["total_" + v1Name] ?? v1[v1Name] { result[v2Name] = value }
        }
        return result
    }

    // MARK: - Files

    /// The smallest numeric value of `file` over the levels; nil = no limit anywhere.
    private static func smallestLimit(_ levels: [[String: String?]], _ file: String) -> UInt64? {
        var smallest: UInt64?
        for level in levels {
            guard let value = number(level[file] ?? nil), value < unlimited else { continue }
            smallest = min(smallest ?? value, value)
        }
        return smallest
    }

    /// The text of `file` at the deepest level that has it.
    private static func deepest(_ levels: [[String: String?]], _ file: String) -> String? {
        levels.last { $0.keys.contains(file) }.flatMap { $0[file] ?? nil }
    }

    /// A file holding one decimal number; nil if absent, "max" or garbage.
    private static func number(_ text: String?) -> UInt64? {
        text.flatMap { ProcText.unsigned($0.trimmingWhitespace) }
    }

    /// "key value" lines (memory.stat, cpu.stat) as a dictionary; lines that do not parse are skipped.
    static func keyedCounters(_ text: String) -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = ProcText.fields(line)
            guard fields.count == 2, let value = ProcText.unsigned(fields[1]) else { continue }
            result[String(fields[0])] = value
        }
        return result
    }

    /// `path` and each of its ancestors, deepest first, ending with "/".
    static func ancestors(of path: String) -> [String] {
        let components = path.split(separator: "/")
        return (0...components.count).reversed().map { "/" + components.prefix($0).joined(separator: "/") }
    }

    private var v2Root: String { location.isPureV2 ? root : root + "/unified" }

    /// Where a v1 hierarchy is mounted: "<root>/cpu,cpuacct" by convention, else "<root>/cpuacct"
    /// (systemd adds per-controller symlinks; some hosts mount each controller on its own).
    private func v1Directory(_ hierarchy: CgroupLocation.Hierarchy, controller: String) -> String? {
        [hierarchy.directoryName, controller].map { root + "/" + $0 }.first { FileSystem.isDirectory($0) }
    }

    /// The most levels below a hierarchy's root that are read: a cgroup nested deeper (a
    /// delegated container's own tree) is read at the levels above it, which hold its limits
    /// and the usage of its container.
    static let maxDepth = 64

    /// `files` at each level of `path`, from the hierarchy's root down (at most `maxDepth`
    /// below it): present with its text, present with nil when it is no regular file (a
    /// symlink, a FIFO: planted, never cgroupfs's), absent when there is no entry of that name.
    /// Walked one directory at a time through fds (openat, no symlinks), so no name is longer
    /// than a component and the cost is linear in the depth: the container chooses the depth
    /// and the names of a delegated cgroup, and an absolute path near PATH_MAX made every read
    /// fail (ENAMETOOLONG: "unknown", which shows the VM's meminfo), and a deep one made
    /// every ancestor's path walk again (attack round 11). A level that cannot be opened (a
    /// cgroup removed meanwhile) ends the walk there.
    private func levels(_ base: String, _ path: String, _ files: [String]) -> [[String: String?]] {
        // The hierarchy's mount point is the VM's (systemd's cpu -> cpu,cpuacct links followed).
        var directory = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return [] }
        defer { close(directory) }
        let components = path.split(separator: "/").prefix(Self.maxDepth)
        var result: [[String: String?]] = []
        var index = components.startIndex
        while true {
            var level: [String: String?] = [:]
            for file in files {
                var info = stat()
                guard fstatat(directory, file, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                level[file] = .some(Self.read(at: directory, file))
            }
            result.append(level)
            guard index < components.endIndex else { return result }
            let next = openat(directory, String(components[index]), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return result }
            close(directory)
            directory = next
            index = components.index(after: index)
        }
    }

    /// The text of `file` in `directory`, or nil when it cannot be read as a regular file.
    private static func read(at directory: Int32, _ file: String) -> String? {
        let fd = openat(directory, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while bytes.count < Self.maxFileSize {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes.prefix(Self.maxFileSize), as: UTF8.self)
    }
}

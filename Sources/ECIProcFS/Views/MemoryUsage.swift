/// A container's memory numbers as read from its cgroup, in bytes; nil where unknown.
/// Filled by `CgroupReader.memory()` (or by hand in tests), consumed by `MeminfoView` and `SwapsView`.
public struct MemoryUsage: Sendable, Equatable {
    /// The effective memory limit: the smallest over the cgroup and its ancestors; nil = no limit.
    public var limit: UInt64?
    /// The memory charged to the cgroup now (memory.current / memory.usage_in_bytes); nil = unknown,
    /// in which case the views fall back to the host's file.
    public var usage: UInt64?
    /// The effective swap allowance (swap only, not memory+swap); nil = no limit.
    public var swapLimit: UInt64?
    /// The swap used by the cgroup; nil = swap accounting unavailable, which the views show as
    /// no swap at all, since neither a size nor a use can be computed for the container.
    public var swapUsage: UInt64?
    /// memory.stat counters in bytes, under their cgroup v2 names ("file", "anon", "shmem",
    /// "file_mapped", "active_file", "slab_reclaimable", ...): v1's "total_*" are renamed on reading.
    public var stat: [String: UInt64]

    public init(
        limit: UInt64? = nil, usage: UInt64? = nil, swapLimit: UInt64? = nil, swapUsage: UInt64? = nil,
        stat: [String: UInt64] = [:]
    ) {
        self.limit = limit
        self.usage = usage
        self.swapLimit = swapLimit
        self.swapUsage = swapUsage
        self.stat = stat
    }

    /// The swap the container is shown, in kB: size = the allowance capped at the host's swap
    /// (a limit above it is not usable), used = the cgroup's use capped at that size. Zero when
    /// accounting is unavailable. Shared by /proc/meminfo and /proc/swaps so `free` and `swapon`
    /// agree.
    func swapShown(hostSwapTotalKB: UInt64) -> (totalKB: UInt64, usedKB: UInt64) {
        guard let used = swapUsage else { return (0, 0) }
        let total = min(swapLimit.map { $0 / 1024 } ?? hostSwapTotalKB, hostSwapTotalKB)
        return (total, min(used / 1024, total))
    }
}

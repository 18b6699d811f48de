/// The files ECI computes per container instead of letting it read the VM's (pure: which files,
/// where): each is bound by eci-runc over the same path in the container's /proc, from ecid's
/// FUSE file system (`ECIProcFS`), and ecid's helper puts the same on every fresh procfs. All are
/// in runc's list of files a non-procfs mount may cover in /proc (the LXCFS ones), so runc
/// itself accepts the binds.
public enum EmulatedFile: String, CaseIterable, Sendable {
    /// Since the container's init started; idle time from its cgroup's CPU use.
    case uptime
    /// The memory limit and usage of the container's cgroup.
    case meminfo
    /// Only the CPUs of the container's cpuset.
    case cpuinfo
    /// Only the CPUs of the container's cpuset.
    case stat
    /// The container's swap allowance.
    case swaps

    /// Where the container sees it.
    public var containerPath: String { "/proc/" + rawValue }

    /// Its name in a procfs ("uptime").
    public var procfsName: String { rawValue }

    /// Its place in the emulation file system's node IDs (stable: node IDs outlive an ecid restart).
    public var index: UInt64 {
        switch self {
        case .uptime: 0
        case .meminfo: 1
        case .cpuinfo: 2
        case .stat: 3
        case .swaps: 4
        }
    }
}

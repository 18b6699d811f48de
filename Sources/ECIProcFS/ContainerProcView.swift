import ECICore
import ECIPolicy
import Glibc

/// The emulated files of one container, computed now from the VM's own /proc and the
/// container's cgroup (the views in `Views/` are pure; this reads what they are fed).
public struct ContainerProcView: Sendable {
    /// The container's init and its start (field 22 of /proc/PID/stat), as ecid recorded them.
    public let initPID: Int32
    public let initStart: UInt64

    public init(initPID: Int32, initStart: UInt64) {
        self.initPID = initPID
        self.initStart = initStart
    }

    /// The content of `file`. Throws when the init is gone or was replaced by another process
    /// with its PID: a reused PID must never lend its cgroup to another container's view.
    public func content(of file: EmulatedFile) throws -> [UInt8] {
        let stat = try FileSystem.readText("/proc/\(initPID)/stat")
        guard ProcessStart.startTicks(statLine: stat) == initStart else {
            throw ECIError(.notFound, "the container's init \(initPID) is gone")
        }
        // The init's cgroup, not the reader's: a process that moved to a child cgroup or another
        // namespace still reads its container's numbers (the file is chosen by its path alone).
        let cgroup = CgroupReader(location: try CgroupLocation.parse(try FileSystem.readText("/proc/\(initPID)/cgroup")))
        let text: String
        switch file {
        case .uptime:
            let boot = Double(try FileSystem.readText("/proc/uptime").split(separator: " ").first ?? "") ?? 0
            let uptime = UptimeView.containerUptime(bootTimeNow: boot, initStartTicks: initStart, ticksPerSecond: sysconf(Int32(_SC_CLK_TCK)))
            let cpus = cgroup.cpus()
            let online = cpus.isEmpty ? sysconf(Int32(_SC_NPROCESSORS_ONLN)) : cpus.count
            text = UptimeView.render(uptime: uptime, idle: UptimeView.containerIdle(uptime: uptime, cpuUsageSeconds: cgroup.cpuUsageSeconds(), cpuCount: online))
        case .meminfo:
            text = MeminfoView.render(host: try FileSystem.readText("/proc/meminfo"), memory: cgroup.memory())
        case .swaps:
            text = SwapsView.render(hostMeminfo: try FileSystem.readText("/proc/meminfo"), memory: cgroup.memory())
        case .cpuinfo:
            text = CpuinfoView.render(host: try FileSystem.readText("/proc/cpuinfo"), cpus: cgroup.cpus())
        case .stat:
            text = StatView.render(host: try FileSystem.readText("/proc/stat"), cpus: cgroup.cpus())
        }
        return Array(text.utf8)
    }
}

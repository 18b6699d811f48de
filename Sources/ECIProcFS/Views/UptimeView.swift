/// The container's /proc/uptime: the age of its init process, and an idle time derived from
/// the cgroup's CPU use.
///
/// Known consequence (LXCFS #189, #444): tools that combine /proc/uptime with a process's
/// start time from /proc/PID/stat (ps STIME, %CPU) see times relative to the host's boot; the
/// server decides whether to serve this file at all.
public enum UptimeView {
    /// "uptime idle\n" with two decimals, as fs/proc/uptime.c prints it: the kernel truncates to
    /// hundredths ("%lu.%02lu" of seconds and nanoseconds / 10^7), it does not round. Negative or
    /// non-finite values print as 0.00.
    public static func render(uptime: Double, idle: Double) -> String {
        "\(hundredths(uptime)) \(hundredths(idle))\n"
    }

    /// The container's uptime in seconds: now on CLOCK_BOOTTIME minus its init's start time.
    /// - Parameters:
    ///   - bootTimeNow: seconds since boot now (CLOCK_BOOTTIME, the clock of the start time).
    ///   - initStartTicks: field 22 of the init's /proc/PID/stat (`ProcessStart.startTicks`).
    ///   - ticksPerSecond: sysconf(_SC_CLK_TCK), the unit of that field (100 on Linux).
    /// - Returns: at least 0; `bootTimeNow` (the host's uptime) when `ticksPerSecond` is not positive.
    public static func containerUptime(bootTimeNow: Double, initStartTicks: UInt64, ticksPerSecond: Int) -> Double {
        guard bootTimeNow.isFinite, bootTimeNow > 0 else { return 0 }
        guard ticksPerSecond > 0 else { return bootTimeNow }
        return max(0, bootTimeNow - Double(initStartTicks) / Double(ticksPerSecond))
    }

    /// The container's idle time in seconds: its CPUs' time since it started minus the CPU time
    /// its cgroup used. The kernel's idle figure is summed over CPUs, hence `uptime * cpuCount`.
    /// - Parameters:
    ///   - cpuUsageSeconds: the cgroup's CPU time (`CgroupReader.cpuUsageSeconds()`); nil counts as 0.
    ///   - cpuCount: the container's CPU count; values below 1 count as 1.
    public static func containerIdle(uptime: Double, cpuUsageSeconds: Double?, cpuCount: Int) -> Double {
        let capacity = max(0, uptime.isFinite ? uptime : 0) * Double(max(1, cpuCount))
        let used = cpuUsageSeconds.flatMap { $0.isFinite ? max(0, $0) : nil } ?? 0
        return max(0, capacity - used)
    }

    /// `value` truncated to hundredths, "12.05"; the small epsilon keeps 0.29 from printing as
    /// 0.28 through binary rounding of value * 100.
    private static func hundredths(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return "0.00" }
        // Above ~1.8e17 s the centisecond count would not fit; no machine has been up that long.
        guard value < 1e15 else { return "0.00" }
        let centis = UInt64((value * 100 + 1e-6).rounded(.down))
        let fraction = centis % 100
        return "\(centis / 100)." + (fraction < 10 ? "0" : "") + String(fraction)
    }
}

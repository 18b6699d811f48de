/// The container's /proc/stat: the "cpuN" lines of its cpuset only, renumbered from 0, and the
/// aggregate "cpu" line recomputed as their sum, so that tools computing utilisation from the
/// aggregate (top, mpstat) and tools counting cpuN lines (nproc fallbacks, JVMs) agree.
///
/// The counters are the host's for those CPUs (cgroup v2 has no per-CPU usage, as LXCFS notes);
/// every other line (intr, ctxt, btime, processes, procs_running, procs_blocked, softirq) is copied.
public enum StatView {
    /// - Parameters:
    ///   - host: the text of the host's /proc/stat.
    ///   - cpus: the container's CPUs (host numbering); empty = unknown, and the host text is
    ///     returned unchanged, as it is when none of them has a line.
    /// - Returns: the container's /proc/stat. The host's aggregate line is kept when every host
    ///   CPU is kept, or when a kept line's counters do not parse (rather than a wrong sum).
    public static func render(host: String, cpus: [Int]) -> String {
        guard !cpus.isEmpty else { return host }
        let allowed = Set(cpus)
        let lines = host.split(separator: "\n", omittingEmptySubsequences: false)

        var output: [String] = []
        var aggregateIndex: Int?
        var sums: [UInt64] = []
        var sumsValid = true
        var kept = 0
        var hostCPUs = 0
        for line in lines {
            let label = line.prefix { $0 != " " && $0 != "\t" }
            if label == "cpu" {
                aggregateIndex = output.count
                output.append(String(line))
                continue
            }
            guard label.hasPrefix("cpu"), let number = ProcText.unsigned(label.dropFirst(3)) else {
                output.append(String(line))
                continue
            }
            hostCPUs += 1
            guard number <= UInt64(CPUList.maxCPUs), allowed.contains(Int(number)) else { continue }
            let rest = line[label.endIndex...]
            output.append("cpu\(kept)" + rest)
            kept += 1
            let counters = ProcText.fields(rest).map { ProcText.unsigned($0) }
            guard !counters.isEmpty, counters.allSatisfy({ $0 != nil }) else {
                sumsValid = false
                continue
            }
            for (column, value) in counters.compactMap({ $0 }).enumerated() {
                if column == sums.count { sums.append(0) }
                sums[column] = ProcText.plus(sums[column], value)
            }
        }
        guard kept > 0 else { return host }
        // The kernel rounds its aggregate and each cpuN line separately (they differ by a tick
        // here and there), so with every CPU kept its own aggregate is the better figure.
        let keptAll = kept == hostCPUs
        // The kernel's format: "cpu" then two spaces, then the counters separated by one space.
        if let aggregateIndex, sumsValid, !keptAll {
            output[aggregateIndex] = "cpu  " + sums.map(String.init).joined(separator: " ")
        }
        return output.joined(separator: "\n")
    }
}

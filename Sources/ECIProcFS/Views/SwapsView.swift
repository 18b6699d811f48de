/// The container's /proc/swaps: the kernel's header, plus one virtual device sized to the
/// container's swap allowance when it has one (as LXCFS shows it), so `swapon --show` and
/// `free` agree with the container's /proc/meminfo.
public enum SwapsView {
    /// The header exactly as mm/swapfile.c prints it.
    public static let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

    /// - Parameters:
    ///   - hostMeminfo: the host's /proc/meminfo, for SwapTotal (a limit above it is not usable).
    ///   - memory: the container's numbers (`swapLimit`, `swapUsage`).
    /// - Returns: the header alone when the container has no swap (no host swap, a limit of 0,
    ///   or no swap accounting), else the header and a "none ... virtual" line in kB.
    public static func render(hostMeminfo: String, memory: MemoryUsage) -> String {
        var hostSwapTotal: UInt64 = 0
        for line in hostMeminfo.split(separator: "\n") {
            if let entry = MeminfoView.parse(line), entry.label == "SwapTotal" { hostSwapTotal = entry.kilobytes }
        }
        let swap = memory.swapShown(hostSwapTotalKB: hostSwapTotal)
        guard swap.totalKB > 0 else { return header }
        // The kernel's "%*s%s\t%lu\t%s%lu\t%s%d\n": the name padded to 40 columns, the type (a
        // 7-letter type takes a tab, like "file\t"), then a second tab after numbers below 10^7
        // so that the columns stay under the header's.
        let name = "none"
        let size = String(swap.totalKB) + (swap.totalKB < 10_000_000 ? "\t" : "")
        let used = String(swap.usedKB) + (swap.usedKB < 10_000_000 ? "\t" : "")
        return header + name + String(repeating: " ", count: 40 - name.count) + "virtual\t" + "\t" + size + "\t"
            + used + "\t" + "0\n"
    }
}

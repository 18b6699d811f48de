/// The container's /proc/meminfo: the host's file with the lines that describe memory use
/// recomputed from the container's cgroup, as LXCFS does.
///
/// The formulas (all in kB): MemTotal = min(limit, host MemTotal); MemFree = MemTotal - usage;
/// MemAvailable = MemFree + active_file + inactive_file + slab_reclaimable (at most MemTotal);
/// Cached = file; Buffers = SwapCached = 0 (v1 has no such counter, and LXCFS shows 0 on both);
/// AnonPages = active_anon + inactive_anon - shmem; Active/Inactive = anon + file;
/// Swap from `MemoryUsage.swapShown`; Active(*)/Inactive(*), Unevictable, Dirty, Writeback,
/// Mapped, Shmem, Slab, SReclaimable, SUnreclaim from memory.stat, a missing counter counting 0
/// (the cgroup charges no such pages, or v1 does not report them: host values there would exceed
/// the container's MemTotal). A few more lines are taken from memory.stat only where the counter
/// exists (KernelStack, PageTables, Percpu, AnonHugePages, FileHugePages, Zswap, Zswapped).
/// Every other line is the host's, in the host's order.
public enum MeminfoView {
    /// - Parameters:
    ///   - host: the text of the host's /proc/meminfo.
    ///   - memory: the container's numbers; when `usage` is unknown the host text is returned
    ///     unchanged (as LXCFS falls back to the host file when the cgroup cannot be read).
    /// - Returns: the container's /proc/meminfo. Lines whose number does not parse are copied.
    public static func render(host: String, memory: MemoryUsage) -> String {
        guard let usage = memory.usage else { return host }
        var hostValues: [Substring: UInt64] = [:]
        for line in host.split(separator: "\n") {
            if let entry = parse(line) { hostValues[entry.label] = entry.kilobytes }
        }
        let limitKB = memory.limit.map { $0 / 1024 }
        guard let hostTotal = hostValues["MemTotal"] ?? limitKB else { return host }
        let computed = values(
            memory: memory, usageKB: usage / 1024, totalKB: min(limitKB ?? hostTotal, hostTotal),
            hostSwapTotalKB: hostValues["SwapTotal"] ?? 0)
        return host.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard let entry = parse(line), let value = computed[String(entry.label)] else { return String(line) }
            return formatLine(entry.label, value)
        }.joined(separator: "\n")
    }

    /// The recomputed lines, label -> kB.
    private static func values(memory: MemoryUsage, usageKB: UInt64, totalKB: UInt64, hostSwapTotalKB: UInt64)
        -> [String: UInt64]
    {
        let stat = memory.stat
        func kb(_ key: String) -> UInt64 { (stat[key] ?? 0) / 1024 }
        let free = ProcText.minus(totalKB, usageKB)
        let reclaimable = ProcText.plus(
            ProcText.plus(kb("active_file"), kb("inactive_file")), kb("slab_reclaimable"))
        let slab = stat["slab"].map { $0 / 1024 } ?? ProcText.plus(kb("slab_reclaimable"), kb("slab_unreclaimable"))
        let swap = memory.swapShown(hostSwapTotalKB: hostSwapTotalKB)
        var result: [String: UInt64] = [
            "MemTotal": totalKB,
            "MemFree": free,
            "MemAvailable": min(totalKB, ProcText.plus(free, reclaimable)),
            "Buffers": 0,
            "Cached": kb("file"),
            "SwapCached": 0,
            "Active": ProcText.plus(kb("active_anon"), kb("active_file")),
            "Inactive": ProcText.plus(kb("inactive_anon"), kb("inactive_file")),
            "Active(anon)": kb("active_anon"),
            "Inactive(anon)": kb("inactive_anon"),
            "Active(file)": kb("active_file"),
            "Inactive(file)": kb("inactive_file"),
            "Unevictable": kb("unevictable"),
            "SwapTotal": swap.totalKB,
            "SwapFree": ProcText.minus(swap.totalKB, swap.usedKB),
            "Dirty": kb("file_dirty"),
            "Writeback": kb("file_writeback"),
            "AnonPages": ProcText.minus(ProcText.plus(kb("active_anon"), kb("inactive_anon")), kb("shmem")),
            "Mapped": kb("file_mapped"),
            "Shmem": kb("shmem"),
            // The kernel's KReclaimable includes SReclaimable; the host's would dwarf a small container.
            "KReclaimable": kb("slab_reclaimable"),
            "Slab": slab,
            "SReclaimable": kb("slab_reclaimable"),
            "SUnreclaim": kb("slab_unreclaimable"),
            "ShmemHugePages": kb("shmem_thp"),
            "ShmemPmdMapped": 0,
        ]
        let optional = [
            "KernelStack": "kernel_stack", "PageTables": "pagetables", "SecPageTables": "sec_pagetables",
            "Percpu": "percpu", "AnonHugePages": "anon_thp", "FileHugePages": "file_thp",
            "Zswap": "zswap", "Zswapped": "zswapped",
        ]
        for (label, key) in optional where stat[key] != nil { result[label] = kb(key) }
        return result
    }

    /// One "Label:   1234 kB" line; nil for any other shape (HugePages_Total has no unit and is
    /// never recomputed, so it need not parse).
    static func parse(_ line: Substring) -> (label: Substring, kilobytes: UInt64)? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let fields = ProcText.fields(line[line.index(after: colon)...])
        guard fields.count == 2, fields[1] == "kB", let value = ProcText.unsigned(fields[0]) else { return nil }
        return (line[..<colon], value)
    }

    /// The kernel's format (fs/proc/meminfo.c show_val_kb): the label and colon padded to 16
    /// columns, the number right-aligned in 8 (wider numbers push the unit right), " kB".
    static func formatLine(_ label: Substring, _ kilobytes: UInt64) -> String {
        ProcText.padRight(label + ":", 16) + ProcText.padLeft(String(kilobytes), 8) + " kB"
    }
}

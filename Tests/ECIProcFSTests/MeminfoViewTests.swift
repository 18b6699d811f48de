import Testing

@testable import ECIProcFS

/// The kB values of a meminfo text, by label.
func meminfoValues(_ text: String) -> [String: UInt64] {
    var result: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
        if let entry = MeminfoView.parse(line) { result[String(entry.label)] = entry.kilobytes }
    }
    return result
}

/// The labels of a meminfo text, in order.
func meminfoLabels(_ text: String) -> [Substring] {
    text.split(separator: "\n").map { $0.prefix { $0 != ":" } }
}

/// The host's meminfo with swap (the development machine has none).
let hostWithSwap = Fixtures.meminfo
    .replacingOccurrences("SwapTotal:             0 kB", with: "SwapTotal:       4194300 kB")
    .replacingOccurrences("SwapFree:              0 kB", with: "SwapFree:        4000000 kB")

extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

@Suite struct MeminfoViewTests {
    static let mib: UInt64 = 1 << 20
    static let hostTotal: UInt64 = 24_684_084

    static func v2Memory(limit: UInt64? = 2048 * mib, usage: UInt64 = 512 * mib) -> MemoryUsage {
        var stat: [String: UInt64] = [:]
        for line in Fixtures.memoryStatV2.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = UInt64(fields[1]) { stat[String(fields[0])] = value }
        }
        return MemoryUsage(limit: limit, usage: usage, swapLimit: 1024 * mib, swapUsage: 100 * mib, stat: stat)
    }

    /// The kernel's column format, checked against every kB line of the real file: formatting
    /// a host line's own label and number gives back the host's exact line.
    @Test func formatMatchesTheKernel() {
        var checked = 0
        for line in Fixtures.meminfo.split(separator: "\n") {
            guard let entry = MeminfoView.parse(line) else { continue }
            #expect(MeminfoView.formatLine(entry.label, entry.kilobytes) == line)
            checked += 1
        }
        #expect(checked > 40)
        #expect(MeminfoView.formatLine("MemTotal", 2_097_152) == "MemTotal:        2097152 kB")
    }

    @Test func limitBelowTheHost() {
        let text = MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory())
        let values = meminfoValues(text)
        #expect(values["MemTotal"] == 2_097_152)
        #expect(values["MemFree"] == 2_097_152 - 524_288)
        // free + active_file + inactive_file + slab_reclaimable
        #expect(values["MemAvailable"] == 1_572_864 + 36_864 + 61_440 + 3_072)
        #expect(values["Buffers"] == 0)
        #expect(values["Cached"] == 102_400)
        #expect(values["SwapCached"] == 0)
        #expect(values["Active"] == 6_144 + 36_864)
        #expect(values["Inactive"] == 49_152 + 61_440)
        #expect(values["Active(anon)"] == 6_144)
        #expect(values["Inactive(file)"] == 61_440)
        #expect(values["AnonPages"] == 6_144 + 49_152 - 4_096)
        #expect(values["Shmem"] == 4_096)
        #expect(values["Mapped"] == 20_480)
        #expect(values["Dirty"] == 1_024)
        #expect(values["Slab"] == 4_096)
        #expect(values["SReclaimable"] == 3_072)
        #expect(values["SUnreclaim"] == 1_024)
        #expect(values["KReclaimable"] == 3_072)
        #expect(values["KernelStack"] == 1_024)
        #expect(values["PageTables"] == 2_048)
        #expect(values["ShmemPmdMapped"] == 0)
        #expect(text.contains("MemTotal:        2097152 kB\n"))
    }

    /// Every line the views do not compute is the host's, byte for byte, in the host's order.
    @Test func otherLinesAreTheHosts() {
        let text = MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory())
        #expect(meminfoLabels(text) == meminfoLabels(Fixtures.meminfo))
        #expect(text.hasSuffix("kB\n"))
        let hostLines = Set(Fixtures.meminfo.split(separator: "\n"))
        for line in ["CommitLimit:    12342040 kB", "VmallocTotal:   34359738367 kB", "HugePages_Total:       0",
            "Hugepagesize:       2048 kB", "DirectMap1G:    25165824 kB"]
        {
            #expect(hostLines.contains(Substring(line)))
            #expect(text.contains(line + "\n"))
        }
    }

    /// A limit above the host's memory is not memory the container can have.
    @Test func limitAboveTheHost() {
        let values = meminfoValues(
            MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory(limit: 64 << 30)))
        #expect(values["MemTotal"] == Self.hostTotal)
        #expect(values["MemFree"] == Self.hostTotal - 524_288)
    }

    @Test func noLimitShowsTheHostTotal() {
        let values = meminfoValues(MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory(limit: nil)))
        #expect(values["MemTotal"] == Self.hostTotal)
        #expect(values["MemFree"] == Self.hostTotal - 524_288)
        #expect((values["MemAvailable"] ?? 0) <= Self.hostTotal)
    }

    /// Usage above the limit (the limit was just lowered): nothing underflows, nothing exceeds MemTotal.
    @Test func usageAboveTheLimitClampsToZero() {
        let values = meminfoValues(
            MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory(limit: 256 * Self.mib, usage: 512 * Self.mib)))
        #expect(values["MemTotal"] == 262_144)
        #expect(values["MemFree"] == 0)
        #expect((values["MemAvailable"] ?? .max) <= 262_144)
        var memory = Self.v2Memory()
        memory.stat["shmem"] = 1 << 40
        #expect(meminfoValues(MeminfoView.render(host: Fixtures.meminfo, memory: memory))["AnonPages"] == 0)
    }

    @Test func swapAllowance() {
        let values = meminfoValues(MeminfoView.render(host: hostWithSwap, memory: Self.v2Memory()))
        #expect(values["SwapTotal"] == 1_048_576)
        #expect(values["SwapFree"] == 1_048_576 - 102_400)
    }

    @Test func swapLimitAboveTheHostIsCapped() {
        var memory = Self.v2Memory()
        memory.swapLimit = 64 << 30
        var values = meminfoValues(MeminfoView.render(host: hostWithSwap, memory: memory))
        #expect(values["SwapTotal"] == 4_194_300)
        memory.swapLimit = nil
        values = meminfoValues(MeminfoView.render(host: hostWithSwap, memory: memory))
        #expect(values["SwapTotal"] == 4_194_300)
        #expect(values["SwapFree"] == 4_194_300 - 102_400)
    }

    @Test func swapZeroAndNoAccounting() {
        var memory = Self.v2Memory()
        memory.swapLimit = 0
        memory.swapUsage = 0
        var values = meminfoValues(MeminfoView.render(host: hostWithSwap, memory: memory))
        #expect(values["SwapTotal"] == 0)
        #expect(values["SwapFree"] == 0)
        memory.swapLimit = nil
        memory.swapUsage = nil
        values = meminfoValues(MeminfoView.render(host: hostWithSwap, memory: memory))
        #expect(values["SwapTotal"] == 0)
        // A host without swap shows none whatever the allowance.
        values = meminfoValues(MeminfoView.render(host: Fixtures.meminfo, memory: Self.v2Memory()))
        #expect(values["SwapTotal"] == 0)
    }

    /// v1's memory.stat has no slab counters: Slab lines are 0, and lines without a counter
    /// (KernelStack) stay the host's.
    @Test func v1CountersFromTheRealStat() {
        var stat: [String: UInt64] = [:]
        for line in Fixtures.memoryStatV1.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = UInt64(fields[1]) { stat[String(fields[0])] = value }
        }
        let memory = MemoryUsage(limit: nil, usage: 6_795_264, stat: CgroupReader.v2Names(stat))
        let values = meminfoValues(MeminfoView.render(host: Fixtures.meminfo, memory: memory))
        let host = meminfoValues(Fixtures.meminfo)
        #expect(values["Cached"] == 43_823_104 / 1024)
        #expect(values["Slab"] == 0)
        #expect(values["KernelStack"] == host["KernelStack"])
        #expect(values["MemFree"] == Self.hostTotal - 6_795_264 / 1024)
    }

    @Test func unknownUsageReturnsTheHostFile() {
        #expect(MeminfoView.render(host: Fixtures.meminfo, memory: MemoryUsage(limit: Self.mib)) == Fixtures.meminfo)
    }

    /// Malformed host text: lines that do not parse are copied, a missing MemTotal uses the limit.
    @Test func malformedHostText() {
        let host = "MemTotal: lots kB\nMemFree:\n\u{0}garbage\nCached:      12 MB\nActive: 1 2 kB\n"
        #expect(MeminfoView.render(host: host, memory: Self.v2Memory()) == host)
        let noTotal = "MemFree:       1 kB\nstrange line\n"
        #expect(
            MeminfoView.render(host: noTotal, memory: Self.v2Memory())
                == "MemFree:         1572864 kB\nstrange line\n")
        #expect(MeminfoView.render(host: noTotal, memory: Self.v2Memory(limit: nil)) == noTotal)
        #expect(MeminfoView.render(host: "", memory: Self.v2Memory()) == "")
        let huge = "MemTotal:       99999999999999999999999 kB\n"
        #expect(MeminfoView.render(host: huge, memory: Self.v2Memory()) == huge)
    }
}

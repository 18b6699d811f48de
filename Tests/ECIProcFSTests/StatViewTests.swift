import Testing

@testable import ECIProcFS

@Suite struct StatViewTests {
    static func counters(_ line: Substring) -> [UInt64] {
        line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
    }

    @Test func keepsTheAllowedCPUsAndSumsThem() {
        let text = StatView.render(host: Fixtures.stat4, cpus: [1, 3])
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let host = Fixtures.stat4.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == host.count - 2)
        #expect(lines[1] == "cpu0" + host[2].dropFirst(4))
        #expect(lines[2] == "cpu1" + host[4].dropFirst(4))
        let sum = zip(Self.counters(host[2]), Self.counters(host[4])).map { $0 + $1 }
        #expect(lines[0] == "cpu  " + sum.map(String.init).joined(separator: " "))
        #expect(Self.counters(lines[0]).count == 10)
        // intr, ctxt, btime, processes, procs_running, procs_blocked, softirq: the host's.
        #expect(Array(lines[3...]) == Array(host[5...]))
        #expect(text.hasSuffix("\n"))
    }

    /// All CPUs kept: the host's text. The kernel's aggregate is not exactly the sum of its cpuN
    /// lines (each is rounded on its own: this machine's irq column is 14710 against 3244 + 11465),
    /// so the host's aggregate is kept rather than a sum one tick off.
    @Test func allCPUsReproduceTheHost() {
        #expect(StatView.render(host: Fixtures.stat2, cpus: [0, 1]) == Fixtures.stat2)
        #expect(StatView.render(host: Fixtures.stat4, cpus: [0, 1, 2, 3]) == Fixtures.stat4)
    }

    @Test func singleCPU() {
        let text = StatView.render(host: Fixtures.stat2, cpus: [1])
        let lines = text.split(separator: "\n")
        let host = Fixtures.stat2.split(separator: "\n")
        #expect(lines[0] == "cpu  " + host[2].dropFirst(5))
        #expect(lines[1] == "cpu0" + host[2].dropFirst(4))
        #expect(!lines.contains { $0.hasPrefix("cpu1") })
    }

    @Test func emptyOrAbsentCPUs() {
        #expect(StatView.render(host: Fixtures.stat4, cpus: []) == Fixtures.stat4)
        #expect(StatView.render(host: Fixtures.stat4, cpus: [9]) == Fixtures.stat4)
    }

    /// A kept line whose counters do not parse is renumbered but the aggregate stays the host's.
    @Test func malformedCounters() {
        let host = "cpu  9 9\ncpu0 1 x\ncpu1 4 4\ncpu2 4 4\ncpuX 1\ncpu99999999999999999999999 1\nctxt 9\n"
        let text = StatView.render(host: host, cpus: [0, 1])
        #expect(text == "cpu  9 9\ncpu0 1 x\ncpu1 4 4\ncpuX 1\ncpu99999999999999999999999 1\nctxt 9\n")
        #expect(StatView.render(host: "cpu  2\ncpu0 1\ncpu1 1\n", cpus: [1]) == "cpu  1\ncpu0 1\n")
        #expect(StatView.render(host: "cpu0 1\ncpu1 1\n", cpus: [1]) == "cpu0 1\n")
        #expect(StatView.render(host: "", cpus: [0]) == "")
        #expect(StatView.render(host: "\u{0}\n\n", cpus: [0]) == "\u{0}\n\n")
        // Lines of different lengths (a kernel adding a column): missing columns count 0.
        #expect(
            StatView.render(host: "cpu  9 9 9\ncpu0 1 1\ncpu1 2 2 3\ncpu2 6 6 6\n", cpus: [0, 1])
                == "cpu  3 3 3\ncpu0 1 1\ncpu1 2 2 3\n")
    }
}

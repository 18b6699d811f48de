import Testing

@testable import ECIProcFS

@Suite struct SwapsViewTests {
    static let mib: UInt64 = 1 << 20

    /// The header of this machine's real /proc/swaps (which has no swap).
    @Test func headerIsTheKernels() {
        #expect(SwapsView.header == "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        #expect(SwapsView.render(hostMeminfo: Fixtures.meminfo, memory: MemoryUsage()) == SwapsView.header)
    }

    @Test func allowanceShowsOneVirtualDevice() {
        let memory = MemoryUsage(usage: 0, swapLimit: 1024 * Self.mib, swapUsage: 100 * Self.mib)
        let text = SwapsView.render(hostMeminfo: hostWithSwap, memory: memory)
        #expect(
            text == SwapsView.header + "none" + String(repeating: " ", count: 36) + "virtual\t\t1048576\t\t102400\t\t0\n")
        // Columns line up under the header's tab stops: Size at column 56, as the kernel's.
        let line = text.split(separator: "\n")[1]
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        #expect(fields == ["none", "virtual", "1048576", "102400", "0"])
    }

    /// Numbers of 8 digits take one tab, as the kernel prints them.
    @Test func wideNumbersTakeOneTab() {
        let host = "SwapTotal:      67108864 kB\n"
        let memory = MemoryUsage(usage: 0, swapLimit: nil, swapUsage: 20_000_000 * 1024)
        let text = SwapsView.render(hostMeminfo: host, memory: memory)
        #expect(text.hasSuffix("virtual\t\t67108864\t20000000\t0\n"))
    }

    @Test func cappedAtTheHostSwap() {
        let memory = MemoryUsage(usage: 0, swapLimit: 64 << 30, swapUsage: 0)
        #expect(SwapsView.render(hostMeminfo: hostWithSwap, memory: memory).contains("\t4194300\t\t0\t\t0\n"))
    }

    @Test func noAllowanceIsHeaderOnly() {
        let zero = MemoryUsage(usage: 0, swapLimit: 0, swapUsage: 0)
        #expect(SwapsView.render(hostMeminfo: hostWithSwap, memory: zero) == SwapsView.header)
        let noAccounting = MemoryUsage(usage: 0, swapLimit: nil, swapUsage: nil)
        #expect(SwapsView.render(hostMeminfo: hostWithSwap, memory: noAccounting) == SwapsView.header)
        let noHostSwap = MemoryUsage(usage: 0, swapLimit: 1 << 30, swapUsage: 0)
        #expect(SwapsView.render(hostMeminfo: Fixtures.meminfo, memory: noHostSwap) == SwapsView.header)
        #expect(SwapsView.render(hostMeminfo: "garbage\n\u{0}", memory: noHostSwap) == SwapsView.header)
    }
}

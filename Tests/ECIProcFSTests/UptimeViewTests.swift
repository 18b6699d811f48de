import Testing

@testable import ECIProcFS

@Suite struct UptimeViewTests {
    /// fs/proc/uptime.c truncates to hundredths.
    @Test func formatsLikeTheKernel() {
        #expect(UptimeView.render(uptime: 70749.65, idle: 69758.04) == "70749.65 69758.04\n")
        #expect(UptimeView.render(uptime: 12.999, idle: 0.29) == "12.99 0.29\n")
        #expect(UptimeView.render(uptime: 5.05, idle: 0.001) == "5.05 0.00\n")
        #expect(UptimeView.render(uptime: 0, idle: -3) == "0.00 0.00\n")
        #expect(UptimeView.render(uptime: .nan, idle: .infinity) == "0.00 0.00\n")
        #expect(UptimeView.render(uptime: 1e300, idle: 100) == "0.00 100.00\n")
    }

    @Test func containerUptimeFromTheInitsStartTime() {
        #expect(UptimeView.containerUptime(bootTimeNow: 1000.5, initStartTicks: 90_000, ticksPerSecond: 100) == 100.5)
        // An init that (by the clocks' granularity) started after now: 0, never negative.
        #expect(UptimeView.containerUptime(bootTimeNow: 10, initStartTicks: 2_000, ticksPerSecond: 100) == 0)
        #expect(UptimeView.containerUptime(bootTimeNow: 10, initStartTicks: 500, ticksPerSecond: 0) == 10)
        #expect(UptimeView.containerUptime(bootTimeNow: .nan, initStartTicks: 0, ticksPerSecond: 100) == 0)
    }

    @Test func containerIdle() {
        #expect(UptimeView.containerIdle(uptime: 100, cpuUsageSeconds: 30, cpuCount: 2) == 170)
        #expect(UptimeView.containerIdle(uptime: 100, cpuUsageSeconds: nil, cpuCount: 0) == 100)
        #expect(UptimeView.containerIdle(uptime: 10, cpuUsageSeconds: 50, cpuCount: 1) == 0)
        #expect(UptimeView.containerIdle(uptime: 10, cpuUsageSeconds: .nan, cpuCount: 1) == 10)
    }
}

@Suite struct ProcessStartTests {
    static let tail = "S 1 1 1 0 -1 4194560 1585 1000 0 0 12 9 3 2 20 0 1 0 1234567 12345678 2000 18446744073709551615\n"

    @Test func parsesField22() {
        #expect(ProcessStart.startTicks(statLine: "1 (sh) " + Self.tail) == 1_234_567)
    }

    /// The comm is the process's choice: spaces and parentheses in it must not shift the fields.
    @Test func survivesAHostileComm() {
        #expect(ProcessStart.startTicks(statLine: "42 (a) b (c) " + Self.tail) == 1_234_567)
        #expect(ProcessStart.startTicks(statLine: "42 () 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20) " + Self.tail) == 1_234_567)
        #expect(ProcessStart.startTicks(statLine: "42 ()) " + Self.tail) == 1_234_567)
    }

    @Test func rejectsMalformedLines() {
        #expect(ProcessStart.startTicks(statLine: "") == nil)
        #expect(ProcessStart.startTicks(statLine: "1 sh S 1 1 1") == nil)
        #expect(ProcessStart.startTicks(statLine: "1 (sh) S 1 1") == nil)
        #expect(ProcessStart.startTicks(statLine: "1 (sh) S 1 1 1 0 -1 4194560 1585 1000 0 0 12 9 3 2 20 0 1 0 -5 1") == nil)
        // A comm ending the line with ')' and nothing after it.
        #expect(ProcessStart.startTicks(statLine: "1 (x " + Self.tail.dropLast() + ")") == nil)
    }
}

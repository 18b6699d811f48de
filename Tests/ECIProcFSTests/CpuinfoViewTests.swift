import Testing

@testable import ECIProcFS

/// The blocks of a cpuinfo text (blank-line separated), without empty ones.
func cpuinfoBlocks(_ text: String) -> [String] {
    text.split(separator: "\n\n", omittingEmptySubsequences: true).map(String.init).filter { !$0.isEmpty }
}

/// The value after "key\t: " in each line of `text` with that key.
func cpuinfoField(_ text: String, _ key: String) -> [String] {
    text.split(separator: "\n").compactMap { line in
        guard let colon = line.firstIndex(of: ":"),
            line[..<colon].trimmingCharacters() == key
        else { return nil }
        return line[line.index(after: colon)...].trimmingCharacters()
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

@Suite struct CpuinfoViewTests {
    @Test func keepsTheAllowedCPUsRenumbered() {
        let text = CpuinfoView.render(host: Fixtures.cpuinfo4, cpus: [1, 3])
        #expect(cpuinfoField(text, "processor") == ["0", "1"])
        #expect(cpuinfoField(text, "siblings") == ["2", "2"])
        #expect(cpuinfoField(text, "cpu cores") == ["2", "2"])
        // The rest of each block is the host's CPU's (core id 1 and 3 kept as they were).
        #expect(cpuinfoField(text, "core id") == ["1", "3"])
        #expect(cpuinfoBlocks(text).count == 2)
        // The kernel's layout: "processor\t: N", a blank line after every block.
        #expect(text.hasPrefix("processor\t: 0\nvendor_id\t: AuthenticAMD\n"))
        #expect(text.contains("power management:\n\nprocessor\t: 1\n"))
        #expect(text.hasSuffix("power management:\n\n"))
    }

    @Test func allCPUsGiveTheHostText() {
        #expect(CpuinfoView.render(host: Fixtures.cpuinfo2, cpus: [0, 1]) == Fixtures.cpuinfo2)
        #expect(CpuinfoView.render(host: Fixtures.cpuinfo4, cpus: [0, 1, 2, 3]) == Fixtures.cpuinfo4)
    }

    @Test func singleCPU() {
        let text = CpuinfoView.render(host: Fixtures.cpuinfo2, cpus: [1])
        #expect(cpuinfoField(text, "processor") == ["0"])
        #expect(cpuinfoField(text, "siblings") == ["1"])
        #expect(cpuinfoField(text, "apicid") == ["1"])
        #expect(cpuinfoBlocks(text).count == 1)
    }

    /// Unknown (empty) or absent CPUs leave the host's text.
    @Test func emptyOrAbsentCPUs() {
        #expect(CpuinfoView.render(host: Fixtures.cpuinfo4, cpus: []) == Fixtures.cpuinfo4)
        #expect(CpuinfoView.render(host: Fixtures.cpuinfo4, cpus: [17]) == Fixtures.cpuinfo4)
        let text = CpuinfoView.render(host: Fixtures.cpuinfo4, cpus: [2, 17])
        #expect(cpuinfoField(text, "processor") == ["0"])
    }

    /// arm64: no siblings lines, and a trailing block without "processor" that stays.
    @Test func arm64KeepsTheTrailingBlock() {
        let text = CpuinfoView.render(host: Fixtures.cpuinfoArm64, cpus: [0, 2])
        #expect(cpuinfoField(text, "processor") == ["0", "1"])
        #expect(cpuinfoField(text, "Hardware") == ["BCM2835"])
        #expect(cpuinfoField(text, "Model") == ["Raspberry Pi 4 Model B Rev 1.1"])
        #expect(cpuinfoBlocks(text).count == 3)
        #expect(text.hasSuffix("Model\t\t: Raspberry Pi 4 Model B Rev 1.1\n"))
    }

    @Test func malformedTextDoesNotCrash() {
        let garbage = "processor\t: x\nfoo\n\n\n\nprocessor : 99999999999999999999999\n:\n::\n\u{0}\nprocessor\t: 1\nsiblings\t: many\n"
        let text = CpuinfoView.render(host: garbage, cpus: [1])
        #expect(text.contains("processor\t: 0\nsiblings\t: many\n"))
        #expect(text.contains("processor\t: x\nfoo\n"))
        #expect(CpuinfoView.render(host: "", cpus: [0]) == "")
        #expect(CpuinfoView.render(host: "\n\n\n", cpus: [0]) == "\n\n\n")
        #expect(CpuinfoView.render(host: "processor: 0", cpus: [0]) == "processor: 0")
    }

    /// s390's layout: one header block with "processor N: ..." lines; kept whole.
    @Test func s390LayoutIsCopied() {
        let host = "vendor_id       : IBM/S390\n# processors    : 2\nprocessor 0: version = FF\nprocessor 1: version = FF\n\n"
        #expect(CpuinfoView.render(host: host, cpus: [0]) == host)
    }
}

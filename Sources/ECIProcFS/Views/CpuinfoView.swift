/// The container's /proc/cpuinfo: only the blocks of the CPUs in its cpuset, renumbered from 0
/// (programs size thread pools from the count, and index per-CPU tables with the number).
///
/// The text is taken as blank-line separated blocks. A block with a "processor : N" line is a
/// CPU's; any other block (arm's trailing "Hardware"/"Serial" block, s390's header and its
/// "processor 0: ..." lines) is copied as it is, in place.
public enum CpuinfoView {
    /// - Parameters:
    ///   - host: the text of the host's /proc/cpuinfo.
    ///   - cpus: the container's CPUs (host numbering); empty = unknown, and the host text is
    ///     returned unchanged, as it is when none of them has a block.
    /// - Returns: the kept CPU blocks with "processor" renumbered 0..n-1 and "siblings" and
    ///   "cpu cores" set to n (the container sees one package holding its n CPUs).
    public static func render(host: String, cpus: [Int]) -> String {
        guard !cpus.isEmpty else { return host }
        let allowed = Set(cpus)
        var lines = host.split(separator: "\n", omittingEmptySubsequences: false)
        let endsWithNewline = lines.last == ""
        if endsWithNewline { lines.removeLast() }

        // Each block: its lines followed by the blank lines after it, so that dropping a
        // block drops its separator and the spacing of the rest stays the host's.
        var blocks: [[Substring]] = []
        for line in lines {
            let afterBlank = blocks.last?.last.map(isBlank) ?? true
            if blocks.isEmpty || (afterBlank && !isBlank(line)) {
                blocks.append([line])
            } else {
                blocks[blocks.count - 1].append(line)
            }
        }

        var kept: [(lines: [Substring], isCPU: Bool)] = []
        for block in blocks {
            guard let number = block.lazy.compactMap(processorNumber).first else {
                kept.append((block, false))
                continue
            }
            if allowed.contains(number) { kept.append((block, true)) }
        }
        let count = kept.filter(\.isCPU).count
        guard count > 0 else { return host }

        var output: [String] = []
        var index = 0
        for block in kept {
            guard block.isCPU else {
                output.append(contentsOf: block.lines.map(String.init))
                continue
            }
            for line in block.lines {
                switch key(line) {
                case "processor" where processorNumber(line) != nil: output.append(replacingValue(line, with: index))
                case "siblings", "cpu cores": output.append(replacingValue(line, with: count))
                default: output.append(String(line))
                }
            }
            index += 1
        }
        return output.joined(separator: "\n") + (endsWithNewline ? "\n" : "")
    }

    private static func isBlank(_ line: Substring) -> Bool { line.utf8.allSatisfy(ProcText.isSpace) }

    /// The text before the first colon, trimmed ("processor", "cpu cores").
    private static func key(_ line: Substring) -> Substring? {
        line.firstIndex(of: ":").map { line[..<$0].trimmingWhitespace }
    }

    /// N of a "processor\t: N" line.
    private static func processorNumber(_ line: Substring) -> Int? {
        guard key(line) == "processor", let colon = line.firstIndex(of: ":"),
            let value = ProcText.unsigned(line[line.index(after: colon)...].trimmingWhitespace),
            value <= UInt64(CPUList.maxCPUs)
        else { return nil }
        return Int(value)
    }

    /// `line` with its number after the colon replaced (the host's key and spacing kept);
    /// a line whose value is not a number is kept as it is.
    private static func replacingValue(_ line: Substring, with value: Int) -> String {
        guard let colon = line.firstIndex(of: ":") else { return String(line) }
        let rest = line[line.index(after: colon)...]
        guard ProcText.unsigned(rest.trimmingWhitespace) != nil else { return String(line) }
        let spacing = rest.prefix { $0 == " " || $0 == "\t" }
        return String(line[...colon]) + spacing + String(value)
    }
}

import ECICore

/// The kernel's CPU list syntax ("0-3,5"), as in cpuset.cpus and /sys/devices/system/cpu/online.
public enum CPUList {
    /// The largest CPU count accepted: bounds what a corrupt or hostile file can make us allocate
    /// (the kernel's own NR_CPUS tops out at 8192 on the configurations we run).
    public static let maxCPUs = 8192

    /// The CPU numbers of `text`, sorted and without duplicates. Surrounding whitespace (the
    /// trailing newline of a cgroup file) is ignored; an empty list is valid (an empty cpuset).
    /// - Throws: `ECIError` `.invalidArgument` for anything else than comma-separated decimal
    ///   numbers and ascending ranges below `maxCPUs`.
    public static func parse(_ text: String) throws -> [Int] {
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { return [] }
        var present = [Bool](repeating: false, count: maxCPUs)
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                let first = cpuNumber(bounds[0]),
                let last = bounds.count == 2 ? cpuNumber(bounds[1]) : first,
                first <= last
            else { throw ECIError(.invalidArgument, "malformed CPU list item '\(item.prefix(32))'") }
            for cpu in first...last { present[cpu] = true }
        }
        return present.indices.filter { present[$0] }
    }

    /// The shortest list text for `cpus` ("0-3,5"), as the kernel prints it; numbers outside
    /// 0..<maxCPUs are dropped, duplicates and order do not matter.
    public static func format(_ cpus: [Int]) -> String {
        let sorted = Set(cpus.filter { (0..<maxCPUs).contains($0) }).sorted()
        var ranges: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            ranges.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return ranges.joined(separator: ",")
    }

    /// One CPU number: ASCII digits only (Int() would accept "+1"), below `maxCPUs`.
    private static func cpuNumber(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = Int(text), value < maxCPUs
        else { return nil }
        return value
    }
}

/// Small text helpers shared by the renderers and the cgroup reader. Written without
/// Foundation: every read of an emulated file runs them, and they must never trap on input.
enum ProcText {
    /// Whether `byte` is a space, tab, newline, carriage return, vertical tab or form feed.
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0d)
    }

    /// The decimal digits only (no sign, no spaces) as a UInt64; nil on overflow or garbage.
    static func unsigned<S: StringProtocol>(_ text: S) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }

    /// The whitespace-separated fields of `text`.
    static func fields<S: StringProtocol>(_ text: S) -> [Substring] {
        Substring(text).split(whereSeparator: { $0.isWhitespace })
    }

    /// `text` right-aligned in `width` columns (longer text is kept whole, like printf).
    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// `text` left-aligned in `width` columns (longer text is kept whole, like printf).
    static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    /// `a - b`, or 0 where the kernel's counters are momentarily inconsistent (usage read after
    /// a limit shrank, stat counters read at different moments): a view never shows a wrapped value.
    static func minus(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : 0 }

    /// `a + b`, saturating: counters come from files, and a corrupt one must not trap.
    static func plus(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? UInt64.max : sum
    }
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (the newline ending every proc/cgroup file).
    /// Works on the UTF-8 view without copying: the renderers call it on every line.
    var trimmingWhitespace: Substring {
        let whole = Substring(self)
        guard let first = whole.utf8.firstIndex(where: { !ProcText.isSpace($0) }),
            let last = whole.utf8.lastIndex(where: { !ProcText.isSpace($0) })
        else { return whole[whole.endIndex...] }
        return whole[first...last]
    }
}

/// The start time of a process, from its /proc/PID/stat line.
public enum ProcessStart {
    /// Field 22 (starttime) of a /proc/PID/stat line: clock ticks after boot.
    ///
    /// Fields are counted after the LAST ')': field 2 is the comm in parentheses, which the
    /// process chooses (prctl PR_SET_NAME) and may contain spaces and ')' ("a) b (c").
    /// - Returns: nil for a line without ')' or too few or non-numeric fields.
    public static func startTicks(statLine: String) -> UInt64? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        // After ')' come field 3 (state) onwards, so field 22 is the 20th.
        let fields = ProcText.fields(statLine[statLine.index(after: close)...])
        guard fields.count >= 20 else { return nil }
        return ProcText.unsigned(fields[19])
    }
}

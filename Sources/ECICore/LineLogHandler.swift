import Glibc
import Logging

/// Where and how log lines are written: runc's convention, which containerd reads back
/// (`--log FILE --log-format json|text`), so ECI's messages appear next to runc's own.
public struct LogDestination: Sendable {
    public enum Format: String, Sendable {
        case text
        case json
    }

    /// A file path, or nil for standard error.
    public var path: String?
    public var format: Format

    public init(path: String?, format: Format) {
        self.path = path
        self.format = format
    }

    /// One rendered line (without the newline) in this destination's format.
    public func render(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        let time = Self.timestamp()
        let sorted = metadata.sorted { $0.key < $1.key }
        switch format {
        case .json:
            var fields = ["\"level\":\(Self.jsonString(Self.levelName(level)))", "\"msg\":\(Self.jsonString(message))"]
            for (key, value) in sorted where key != "level" && key != "msg" && key != "time" {
                fields.append("\(Self.jsonString(key)):\(Self.jsonString("\(value)"))")
            }
            fields.append("\"time\":\(Self.jsonString(time))")
            return "{" + fields.joined(separator: ",") + "}"
        case .text:
            let extra = sorted.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "time=\"\(time)\" level=\(Self.levelName(level)) msg=\(Self.jsonString(message))" + (extra.isEmpty ? "" : " " + extra)
        }
    }

    /// Appends one line; best effort (logging never turns a success into a failure).
    public func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        guard let path else {
            _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            return
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warning"
        case .error: return "error"
        case .critical: return "fatal"
        }
    }

    /// The current UTC time as RFC 3339 with milliseconds, e.g. 2026-11-28T23:51:28.828Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let date = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
        let time = "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(now.tv_nsec / 1_000_000), 3))"
        return date + "T" + time + "Z"
    }

    /// A JSON string literal with the escapes RFC 8259 requires.
    public static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A swift-log handler that writes one line per message to a `LogDestination`.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let destination: LogDestination
    private let label: String

    public init(label: String, destination: LogDestination, level: Logger.Level) {
        self.label = label
        self.destination = destination
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        merged["component"] = .string(label)
        destination.append(destination.render(level: event.level, message: "\(event.message)", metadata: merged))
    }
}

import ECICore
import ECIIO
import Foundation

/// Progress on standard error: one line per stage with its duration; on a terminal, a live
/// line with the elapsed time while a long step runs. `--quiet` silences all of it.
///
/// Not `Sendable`: the image builder drives it from one thread. The ticker's timer runs on a
/// Dispatch queue but touches nothing of the reporter (it captures its label and start time
/// and writes to standard error itself), so nothing here is shared between threads.
final class ProgressReporter {
    private let quiet: Bool
    private let terminal: Bool
    private var timer: DispatchSourceTimer?
    private let total: Int
    private var index = 0
    private(set) var timings: [(stage: String, seconds: Double)] = []

    init(quiet: Bool, stages: Int) {
        self.quiet = quiet
        self.terminal = isatty(STDERR_FILENO) == 1
        self.total = stages
    }

    /// Runs `body` as a stage named `name`; `detail` adds a note to the closing line.
    func stage<T>(_ name: String, _ body: () throws -> (T, String)) rethrows -> T {
        index += 1
        let label = "[\(index)/\(total)] \(name)"
        let start = Date()
        if !quiet {
            if terminal {
                startTicker(label, start)
            } else {
                write("\(label) ...")
            }
        }
        defer { stopTicker() }
        let (value, detail) = try body()
        let seconds = Date().timeIntervalSince(start)
        timings.append((name, seconds))
        if !quiet {
            stopTicker()
            write("\(terminal ? "\r\u{1B}[K" : "")\(label) done in \(String(format: "%.1f", seconds))s\(detail.isEmpty ? "" : " (\(detail))")")
        }
        return value
    }

    private func startTicker(_ label: String, _ start: Date) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        let frames = ["|", "/", "-", "\\"]
        var tick = 0
        timer.schedule(deadline: .now(), repeating: .milliseconds(250))
        timer.setEventHandler {
            tick += 1
            let seconds = Int(Date().timeIntervalSince(start))
            Self.raw("\r\u{1B}[K\(label) \(frames[tick % 4]) \(seconds)s")
        }
        self.timer = timer
        timer.resume()
    }

    private func stopTicker() {
        timer?.cancel()
        timer = nil
    }

    private func write(_ line: String) { Self.raw(line + "\n") }

    private static func raw(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

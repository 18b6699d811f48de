import ECICore
import Foundation

/// Runs the host tools the image builder drives (mmdebstrap, tar, mkfs.ext4, mtools, syslinux,
/// qemu-img, sha256sum). A failure is an error naming the tool, its exit status and the last
/// lines it printed, which carry the cause ("Unable to locate package", "No space left").
enum ExternalCommand {
    /// Runs `arguments` and returns its standard output. Standard error is kept for errors.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:], what: String) throws -> String {
        guard let tool = arguments.first, let path = which(tool) else {
            throw ECIError(.notFound, "\(what): \(arguments.first ?? "?") is not installed (run `make deps`)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(arguments.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("ecibuild-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err").path
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let outPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ECIError(.system, "\(what): can't start \(tool)", cause: error)
        }
        try errHandle.close()
        let output = outPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            let tail = err.split(separator: "\n").suffix(6).joined(separator: "\n  ")
            throw ECIError(.delegateFailed, "\(what): \(tool) exited with status \(process.terminationStatus)\(tail.isEmpty ? "" : ":\n  " + tail)")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The absolute path of `tool` on PATH (plus the sbin directories root tools live in).
    static func which(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// sha256 of a file, hex. OpenSSL's implementation uses the CPU's SHA extensions (about four
    /// times coreutils' speed on a multi-gigabyte disk); sha256sum is the fallback.
    static func sha256(_ path: String) throws -> String {
        let command = which("openssl") != nil ? ["openssl", "dgst", "-sha256", "-r", path] : ["sha256sum", path]
        let out = try run(command, what: "hash \(path)")
        guard let hash = out.split(separator: " ").first, hash.count == 64 else { throw ECIError(.system, "sha256sum printed \(out)") }
        return String(hash)
    }
}

/// Progress on standard error: one line per stage with its duration; on a terminal, a live
/// line with the elapsed time while a long step runs. `--quiet` silences all of it.
final class ProgressReporter: @unchecked Sendable {
    private let quiet: Bool
    private let terminal: Bool
    private let lock = NSLock()
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
        timer.setEventHandler { [weak self] in
            tick += 1
            let seconds = Int(Date().timeIntervalSince(start))
            self?.raw("\r\u{1B}[K\(label) \(frames[tick % 4]) \(seconds)s")
        }
        lock.withLock { self.timer = timer }
        timer.resume()
    }

    private func stopTicker() {
        lock.withLock {
            timer?.cancel()
            timer = nil
        }
    }

    private func write(_ line: String) { raw(line + "\n") }

    private func raw(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

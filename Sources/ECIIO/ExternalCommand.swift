import ECICore
import Foundation

/// Runs the host tools ECI drives (the image builder's mmdebstrap, tar, mkfs.ext4, mtools,
/// syslinux, sha256sum; `ecibuild run`'s qemu-img). A failure is an error naming the tool, its
/// exit status and the last lines it printed, which carry the cause ("Unable to locate
/// package", "No space left").
public enum ExternalCommand {
    /// Runs `arguments` and returns its standard output. Standard error is kept for errors.
    @discardableResult
    public static func run(_ arguments: [String], environment: [String: String] = [:], what: String) throws -> String {
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
    public static func which(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: tool) ? tool : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    /// sha256 of a file, hex. OpenSSL's implementation uses the CPU's SHA extensions (about four
    /// times coreutils' speed on a multi-gigabyte disk); sha256sum is the fallback.
    public static func sha256(_ path: String) throws -> String {
        let command = which("openssl") != nil ? ["openssl", "dgst", "-sha256", "-r", path] : ["sha256sum", path]
        let out = try run(command, what: "hash \(path)")
        guard let hash = out.split(separator: " ").first, hash.count == 64 else { throw ECIError(.system, "sha256sum printed \(out)") }
        return String(hash)
    }
}

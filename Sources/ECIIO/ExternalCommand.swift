import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

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
        var attributes = SpawnAttributes([path] + arguments.dropFirst(), environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        attributes.stdin = .null
        attributes.defaultSignalActions = true
        let result: ChildProcess.Output
        do {
            // The cause is in the last lines of standard error; a tool may print megabytes there.
            result = try ChildProcess.run(attributes, stderrLimit: 64 * 1024)
        } catch {
            throw ECIError(.system, "\(what): can't start \(tool)", cause: error)
        }
        guard result.status == 0 else {
            let err = String(decoding: result.stderr, as: UTF8.self)
            let tail = err.split(separator: "\n").suffix(6).joined(separator: "\n  ")
            throw ECIError(.delegateFailed, "\(what): \(tool) exited with status \(result.status)\(tail.isEmpty ? "" : ":\n  " + tail)")
        }
        return String(decoding: result.stdout, as: UTF8.self)
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

import ECICore
import ECIIO
import Foundation

/// The mmdebstrap result, cached by every input that determines it (suite, mirror, variant,
/// kernel package, packages, SOURCE_DATE_EPOCH), unpacked: a rebuild that changes only ECI's
/// binaries or files hard-links it into its work tree and takes seconds.
///
/// The cached tree is never written through: the customiser only adds files by atomic replace
/// (a new inode) and symlinks, so the hard links it shares with a build stay untouched.
struct RootfsCache {
    let directory: String
    let spec: ImageSpec
    let sourceDateEpoch: UInt64?

    /// The cache key: a hash of the inputs, in a fixed order.
    var key: String {
        let inputs = [
            "eci-rootfs-v1", spec.suite, spec.mirror, spec.variant, spec.kernelPackage, spec.packages.sorted().joined(separator: ","),
            sourceDateEpoch.map(String.init) ?? "-",
        ].joined(separator: "\n")
        return stableHash(inputs) + stableHash("salt\n" + inputs)
    }

    var path: String { join(directory, "rootfs-\(key)") }

    /// The cached tree, building it first on a miss. Returns the path and whether it was a hit.
    func tree() throws -> (String, Bool) {
        if FileManager.default.fileExists(atPath: path) { return (path, true) }
        try FileSystem.makeDirectories(directory, mode: 0o755)
        let partial = path + ".partial-\(getpid())"
        let tarball = partial + ".tar"
        defer { _ = try? ExternalCommand.run(["rm", "-rf", partial, tarball], what: "clean up") }
        var environment: [String: String] = [:]
        if let sourceDateEpoch { environment["SOURCE_DATE_EPOCH"] = String(sourceDateEpoch) }
        let include = ([spec.kernelPackage] + spec.packages).joined(separator: ",")
        try ExternalCommand.run(
            ["mmdebstrap", "--mode=root", "--variant=\(spec.variant)", "--include=\(include)", "--format=tar", spec.suite, tarball, spec.mirror],
            environment: environment, what: "build the root filesystem from \(spec.mirror) (\(spec.suite))")
        try FileSystem.makeDirectories(partial, mode: 0o755)
        try ExternalCommand.run(["tar", "-C", partial, "--numeric-owner", "-xpf", tarball], what: "unpack the root filesystem")
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return (path, false)
    }
}

import ECICore
import Foundation

/// The mmdebstrap result, cached by every input that determines it (suite, mirror, variant,
/// kernel package, packages, SOURCE_DATE_EPOCH): a rebuild that changes only ECI's binaries or
/// files reuses it and takes seconds.
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

    var path: String { join(directory, "rootfs-\(key).tar") }

    /// The cached tarball, building it first on a miss. Returns the path and whether it was a hit.
    func tarball() throws -> (String, Bool) {
        if FileManager.default.fileExists(atPath: path) { return (path, true) }
        try FileSystem.makeDirectories(directory, mode: 0o755)
        let partial = path + ".partial-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: partial) }
        var environment: [String: String] = [:]
        if let sourceDateEpoch { environment["SOURCE_DATE_EPOCH"] = String(sourceDateEpoch) }
        let include = ([spec.kernelPackage] + spec.packages).joined(separator: ",")
        try ExternalCommand.run(
            ["mmdebstrap", "--mode=root", "--variant=\(spec.variant)", "--include=\(include)", "--format=tar", spec.suite, partial, spec.mirror],
            environment: environment, what: "build the root filesystem from \(spec.mirror) (\(spec.suite))")
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return (path, false)
    }
}

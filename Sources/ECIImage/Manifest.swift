import ECICore
import ECIIO
import Foundation
import Synchronization

/// `manifest.json`: what went into the image and what came out, so a build can be audited and
/// compared: the spec's hash, the suite, every package with its version, the kernel and its
/// check, and the sha256 of every ECI binary and every output.
public struct Manifest: Sendable, Codable {
    public struct Package: Sendable, Codable { public var name: String; public var version: String }
    public struct Hashed: Sendable, Codable { public var file: String; public var sha256: String; public var bytes: UInt64 }
    public struct KernelOption: Sendable, Codable { public var option: String; public var required: Bool; public var status: String; public var note: String }
    public struct Kernel: Sendable, Codable {
        public var release: String
        public var package: String
        public var minimumVersion: String
        public var checkPassed: Bool
        public var options: [KernelOption]
        /// Every module loaded at boot (modules-load.d, initramfs-tools' list).
        public var modulesLoadedAtBoot: [String]
        /// Every module the image carries.
        public var modulesAvailable: [String]
    }
    public struct Reproducibility: Sendable, Codable {
        public var sourceDateEpoch: UInt64?
        /// Outputs whose bytes depend only on the inputs.
        public var reproducible: [String]
        /// Output → why its bytes may still differ between two builds of the same inputs.
        public var notYetReproducible: [String: String]
    }

    public var formatVersion = 1
    public var specSha256: String
    public var suite: String
    public var mirror: String
    public var rootfsCache: String
    public var rootfsCacheHit: Bool
    public var packages: [Package]
    public var kernel: Kernel
    public var eciBinaries: [Hashed]
    public var outputs: [Hashed]
    public var reproducibility: Reproducibility

    /// Pretty, key-sorted JSON.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func make(specHash: String, spec: ImageSpec, rootfs: String, kernel: InstalledKernel, report: KernelCheckReport, binaries: [(String, String)],
                     staging: String, cacheKey: String, cacheHit: Bool, sourceDateEpoch: UInt64?, keepRaw: Bool) throws -> Manifest {
        let status = try FileSystem.readText(join(rootfs, "var/lib/dpkg/status"))
        let outputs = ["eci.raw", "eci.qcow2", "eci-kernel", "eci-initrd.img", "eci-cmdline", "eci-kernel.config"].filter {
            ($0 != "eci.raw" || keepRaw) && FileSystem.exists(join(staging, $0))
        }
        return Manifest(
            specSha256: specHash, suite: spec.suite, mirror: spec.mirror, rootfsCache: cacheKey, rootfsCacheHit: cacheHit,
            packages: parsePackages(status),
            kernel: Kernel(
                release: kernel.release, package: spec.kernelPackage, minimumVersion: report.minimumVersion.description, checkPassed: report.passed,
                options: report.lines.map {
                    KernelOption(option: $0.requirement.option, required: !$0.requirement.optional, status: $0.status.rawValue, note: $0.note)
                },
                modulesLoadedAtBoot: kernel.modules.loadedAtBoot.sorted(), modulesAvailable: kernel.modules.available.sorted()),
            eciBinaries: try hashedConcurrently(binaries.map { ($1, $0) }),
            outputs: try hashedConcurrently(outputs.map { (join(staging, $0), $0) }),
            reproducibility: Reproducibility(
                sourceDateEpoch: sourceDateEpoch,
                reproducible: sourceDateEpoch == nil ? [] : ["eci-kernel", "eci-cmdline"],
                notYetReproducible: notReproducible(sourceDateEpoch: sourceDateEpoch)))
    }

    static func notReproducible(sourceDateEpoch: UInt64?) -> [String: String] {
        guard sourceDateEpoch != nil else {
            let reason = "SOURCE_DATE_EPOCH was not set: timestamps are the build's"
            return ["eci-kernel": reason, "eci-initrd.img": reason, "eci.raw": reason, "eci.qcow2": reason, "eci-cmdline": reason]
        }
        return [
            "eci-initrd.img": "built by initramfs-tools inside mmdebstrap; mmdebstrap and initramfs-tools honour SOURCE_DATE_EPOCH, but two cold builds are not compared by a test yet",
            "eci.raw": "the ext4 root has a fixed UUID, hash seed and creation time, but mke2fs 1.47.0 copies each inode's change time (ctime) from the build tree, which no tool can set (1.47.1 and later clamp it to SOURCE_DATE_EPOCH); syslinux stamps ldlinux.sys in the FAT partition with the build time",
            "eci.qcow2": "derived from eci.raw",
        ]
    }

    /// Package names and versions from dpkg's status file (installed packages only), sorted.
    static func parsePackages(_ status: String) -> [Package] {
        var out: [Package] = []
        for stanza in status.components(separatedBy: "\n\n") {
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix(" ") {
                if let colon = line.firstIndex(of: ":") {
                    fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            if let name = fields["Package"], let version = fields["Version"], fields["Status"]?.hasSuffix(" installed") == true {
                out.append(Package(name: name, version: version))
            }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Hashes (path, name) pairs on all cores: the raw disk alone is gigabytes.
    static func hashedConcurrently(_ files: [(String, String)]) throws -> [Hashed] {
        let results = HashResults(count: files.count)
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            results.set(index, Result { try hashed(files[index].0, as: files[index].1) })
        }
        return try results.values()
    }

    static func hashed(_ path: String, as name: String) throws -> Hashed {
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
        return Hashed(file: name, sha256: try ExternalCommand.sha256(path), bytes: size)
    }
}

/// Results filled in by concurrent workers, read once all are done.
private final class HashResults: Sendable {
    private let results: Mutex<[Result<Manifest.Hashed, any Error>?]>

    init(count: Int) { results = Mutex(Array(repeating: nil, count: count)) }

    func set(_ index: Int, _ result: Result<Manifest.Hashed, any Error>) { results.withLock { $0[index] = result } }

    func values() throws -> [Manifest.Hashed] {
        try results.withLock { $0 }.map { result in
            guard let result else { throw ECIError(.internalError, "a hash was not computed") }
            return try result.get()
        }
    }
}

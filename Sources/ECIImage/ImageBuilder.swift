import ECICore
import ECIIO
import Foundation

/// `ecibuild image`: the ECI VM disk from a spec. Stages:
///
/// 1. root filesystem: mmdebstrap from Debian's registry, unpacked and cached by its inputs
/// 2. unpack and customise: files, ECI binaries, engine configuration, modules loaded at boot,
///    services
/// 3. kernel check against `kernel-config/` (a missing feature fails the build)
/// 4. disk: MBR + FAT boot partition (syslinux, kernel, initrd) + ext4 root written with
///    `mkfs.ext4 -d` at its offset, all into one file: no loop device, no mount
/// 5. outputs (raw, qcow2, kernel, initrd, cmdline)
/// 6. `manifest.json`
///
/// Everything is built in a sibling directory and swapped in at the end, so a failed build
/// never leaves half-written outputs where finished ones were expected.
public struct ImageBuilder {
    public struct Options {
        public var specPath: String
        public var outputDirectory: String
        public var binDirectory: String
        public var kernelConfigDirectory: String
        public var cacheDirectory: String
        public var quiet: Bool
        /// SOURCE_DATE_EPOCH: clamps every timestamp ECI writes, passed to mmdebstrap.
        public var sourceDateEpoch: UInt64?

        public init(specPath: String, outputDirectory: String, binDirectory: String, kernelConfigDirectory: String,
                    cacheDirectory: String, quiet: Bool, sourceDateEpoch: UInt64?) {
            self.specPath = specPath
            self.outputDirectory = outputDirectory
            self.binDirectory = binDirectory
            self.kernelConfigDirectory = kernelConfigDirectory
            self.cacheDirectory = cacheDirectory
            self.quiet = quiet
            self.sourceDateEpoch = sourceDateEpoch
        }
    }

    /// The label of the root file system (the kernel finds it with root=LABEL=...).
    public static let rootLabel = "eci-root"
    public static let bootLabel = "ECIBOOT"

    let options: Options

    public init(options: Options) {
        self.options = options
    }

    /// Builds the image and returns its manifest.
    public func build() throws -> Manifest {
        guard getuid() == 0 else {
            throw ECIError(.invalidArgument, "ecibuild image must run as root (mmdebstrap and the root file system's ownership need it)")
        }
        let spec = try ImageSpec.load(options.specPath)
        let fragments = try KernelFragments.load(directory: options.kernelConfigDirectory)
        let binaries = try spec.eciBinaries.map { name -> (String, String) in
            let path = join(options.binDirectory, name)
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ECIError(.notFound, "ECI binary \(path) is missing: run `make` first")
            }
            return (name, path)
        }
        let output = try absolute(options.outputDirectory)
        let staging = output + ".partial-\(getpid())"
        let work = staging + "/.work"
        try? FileManager.default.removeItem(atPath: staging)
        try FileSystem.makeDirectories(work, mode: 0o755)
        var succeeded = false
        defer {
            if !succeeded { _ = try? ExternalCommand.run(["rm", "-rf", staging], what: "remove the partial build") }
        }
        let progress = ProgressReporter(quiet: options.quiet, stages: 6)
        let specHash = try ExternalCommand.sha256(options.specPath)

        // 1. Root filesystem (cached by everything that determines its contents).
        let cache = RootfsCache(directory: options.cacheDirectory, spec: spec, sourceDateEpoch: options.sourceDateEpoch)
        let (cached, cacheHit) = try progress.stage("root filesystem (mmdebstrap \(spec.suite))") { () -> ((String, Bool), String) in
            let result = try cache.tree()
            return (result, result.1 ? "cache hit \(cache.key.prefix(12))" : "cached as \(cache.key.prefix(12))")
        }

        // 2. Unpack and customise.
        let rootfs = work + "/rootfs"
        let customizer = RootfsCustomizer(root: rootfs, spec: spec, sourceDateEpoch: options.sourceDateEpoch)
        let kernel = try progress.stage("customise root filesystem") { () -> (InstalledKernel, String) in
            // A hard-linked copy when the cache and the output share a file system: instant, and
            // the cache is never written through (see RootfsCache). A full copy otherwise.
            let cacheDevice = deviceID(cached)
            let sameFileSystem = cacheDevice != nil && cacheDevice == deviceID(work)
            try ExternalCommand.run(["cp", sameFileSystem ? "-al" : "-a", cached, rootfs], what: "copy the cached root filesystem")
            let kernel = try customizer.customize(binaries: binaries, fragments: fragments)
            return (kernel, "kernel \(kernel.release)")
        }

        // 3. Kernel check.
        let report = try progress.stage("kernel check") { () -> (KernelCheckReport, String) in
            let report = KernelCheckReport.check(kernel.config, fragments: fragments, version: KernelVersion(kernel.release), modules: kernel.modules)
            guard report.passed else {
                throw ECIError(.unsupported, "the image's kernel \(kernel.release) lacks what ECI needs:\n\(report.text)")
            }
            return (report, "\(report.lines.filter { $0.status != .missing }.count)/\(report.lines.count) options")
        }

        // 4. Disk.
        let raw = staging + "/eci.raw"
        let cmdline = "root=LABEL=\(Self.rootLabel) rw \(spec.cmdline)"
        try progress.stage("disk (\(spec.diskSize >> 20)M)") { () -> ((), String) in
            try DiskWriter(spec: spec, sourceDateEpoch: options.sourceDateEpoch, seed: specHash)
                .write(to: raw, rootfs: rootfs, kernel: kernel.kernelPath, initrd: kernel.initrdPath, cmdline: cmdline, work: work)
            return ((), "")
        }

        // 5. The other outputs.
        try progress.stage("outputs") { () -> ((), String) in
            if spec.outputs.contains(.qcow2) {
                try ExternalCommand.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, staging + "/eci.qcow2"], what: "convert the disk to qcow2")
            }
            if spec.outputs.contains(.kernel) { try FileManager.default.copyItem(atPath: kernel.kernelPath, toPath: staging + "/eci-kernel") }
            if spec.outputs.contains(.initrd) { try FileManager.default.copyItem(atPath: kernel.initrdPath, toPath: staging + "/eci-initrd.img") }
            if spec.outputs.contains(.cmdline) { try FileSystem.writeAtomically(staging + "/eci-cmdline", text: cmdline + "\n", mode: 0o644) }
            // The kernel's configuration, for `ecibuild kernel check --image`.
            try FileManager.default.copyItem(atPath: kernel.configPath, toPath: staging + "/" + ImageKernel.configFile)
            return ((), "")
        }

        // 6. Manifest, then swap the finished directory in.
        let manifest = try progress.stage("manifest") { () -> (Manifest, String) in
            let manifest = try Manifest.make(
                specHash: specHash, spec: spec, rootfs: rootfs, kernel: kernel, report: report, binaries: binaries, staging: staging,
                cacheKey: cache.key, cacheHit: cacheHit, sourceDateEpoch: options.sourceDateEpoch, keepRaw: spec.outputs.contains(.raw))
            try FileSystem.writeAtomically(staging + "/manifest.json", text: manifest.json + "\n", mode: 0o644)
            return (manifest, "")
        }
        try ExternalCommand.run(["rm", "-rf", work], what: "remove the work tree")
        if !spec.outputs.contains(.raw) { try FileManager.default.removeItem(atPath: raw) }
        try swapIn(staging, for: output)
        succeeded = true
        return manifest
    }

    /// Replaces `output` with `staging`: the old directory is moved aside, then removed.
    func swapIn(_ staging: String, for output: String) throws {
        let old = output + ".old-\(getpid())"
        if FileManager.default.fileExists(atPath: output) {
            try FileManager.default.moveItem(atPath: output, toPath: old)
        }
        try FileManager.default.moveItem(atPath: staging, toPath: output)
        try? FileManager.default.removeItem(atPath: old)
    }

    func deviceID(_ path: String) -> UInt64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_dev)
    }

    func absolute(_ path: String) throws -> String {
        path.hasPrefix("/") ? path : join(try FileSystem.currentDirectory(), path)
    }
}

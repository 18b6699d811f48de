import ECICore
import ECIIO
import Foundation

/// The kernel a root filesystem carries, as ECI needs to know it.
public struct InstalledKernel: Sendable {
    public var release: String
    public var kernelPath: String
    public var initrdPath: String
    public var configPath: String
    public var config: KernelConfigFile
    public var modules: KernelModules
}

/// Turns the unpacked Debian root filesystem into the ECI VM's: the spec's files, ECI's
/// binaries, the engine configured for the isolated runtime, modules loaded at boot,
/// services enabled, fstab and hostname.
struct RootfsCustomizer {
    let root: String
    let spec: ImageSpec
    let sourceDateEpoch: UInt64?

    /// Applies the customisation and returns the kernel it found.
    func customize(binaries: [(String, String)], fragments: KernelFragments) throws -> InstalledKernel {
        var kernel = try findKernel()
        try install("/etc/fstab", contents: "LABEL=\(ImageBuilder.rootLabel) / ext4 defaults 0 1\n")
        try install("/etc/hostname", contents: "eci\n")
        // The admin's engine settings. With the agent, it is only the base that eci-agent prepare
        // overrides at boot (runtime, sockets, entitlements); without it, it configures the runtime.
        if !spec.files.contains(where: { $0.path == "/etc/docker/daemon.json" }) {
            let defaultRuntime = spec.eciBinaries.contains("eci-agent") ? "" : ",\n  \"default-runtime\": \"\(spec.defaultRuntime)\""
            let daemon = "{\n  \"runtimes\": { \"eci\": { \"path\": \"/usr/bin/eci-runc\" } }\(defaultRuntime)\n}\n"
            try install("/etc/docker/daemon.json", contents: daemon)
        }
        for (name, path) in binaries {
            try install("/usr/bin/\(name)", bytes: try FileSystem.read(path), mode: 0o755)
        }
        for file in spec.files {
            if let contents = file.contents {
                try install(file.path, contents: contents, mode: file.mode)
            } else if let source = file.source {
                let path = source.hasPrefix("/") ? source : join(spec.directory, source)
                try install(file.path, bytes: try FileSystem.read(path), mode: file.mode)
            }
        }
        // Options the kernel builds as modules count only if loaded at boot: load them.
        let modules = KernelCheckReport.modulesToLoad(kernel.config, fragments: fragments)
        try install("/etc/modules-load.d/eci.conf", contents: "# Kernel features ECI needs (kernel-config/), built as modules by this kernel.\n" + modules.map { $0 + "\n" }.joined())
        if !spec.enableServices.isEmpty {
            try ExternalCommand.run(["systemctl", "--root=\(root)", "enable"] + spec.enableServices, what: "enable services")
        }
        if !spec.maskServices.isEmpty {
            try ExternalCommand.run(["systemctl", "--root=\(root)", "mask"] + spec.maskServices, what: "mask services")
        }
        kernel.modules = try readModules(release: kernel.release)
        return kernel
    }

    func findKernel() throws -> InstalledKernel {
        let boot = join(root, "boot")
        let kernels = try FileSystem.listDirectory(boot).filter { $0.hasPrefix("vmlinuz-") }
        guard kernels.count == 1, let name = kernels.first else {
            throw ECIError(.invalidState, "expected one kernel in the root filesystem's /boot, found \(kernels.count) (is \(spec.kernelPackage) a kernel package?)")
        }
        let release = String(name.dropFirst("vmlinuz-".count))
        let initrd = join(boot, "initrd.img-\(release)")
        guard FileSystem.exists(initrd) else { throw ECIError(.invalidState, "the kernel \(release) has no initramfs (is initramfs-tools in packages?)") }
        let configPath = join(boot, "config-\(release)")
        let config = KernelConfigFile(text: try FileSystem.readText(configPath))
        return InstalledKernel(
            release: release, kernelPath: join(boot, name), initrdPath: initrd, configPath: configPath, config: config,
            modules: KernelModules(available: [], loadedAtBoot: []))
    }

    /// Modules present under /lib/modules/RELEASE and those the image loads at boot.
    func readModules(release: String) throws -> KernelModules {
        var available: Set<String> = []
        let base = join(root, "lib/modules/\(release)")
        if let walker = FileManager.default.enumerator(atPath: base) {
            while let path = walker.nextObject() as? String {
                let name = (path as NSString).lastPathComponent
                for suffix in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] where name.hasSuffix(suffix) {
                    available.insert(String(name.dropLast(suffix.count)))
                }
            }
        }
        var loaded: Set<String> = []
        let lists = ((try? FileSystem.listDirectory(join(root, "etc/modules-load.d"))) ?? []).map { join(root, "etc/modules-load.d/\($0)") }
            + [join(root, "etc/initramfs-tools/modules"), join(root, "etc/modules")]
        for list in lists {
            guard let text = try? FileSystem.readText(list) else { continue }
            for line in text.split(separator: "\n") {
                let name = line.split(separator: " ").first.map(String.init) ?? ""
                if !name.isEmpty && !name.hasPrefix("#") { loaded.insert(name) }
            }
        }
        return KernelModules(available: available, loadedAtBoot: loaded)
    }

    func install(_ path: String, contents: String, mode: UInt32 = 0o644) throws {
        try install(path, bytes: Array(contents.utf8), mode: mode)
    }

    /// Writes a root-owned file into the image, with its mtime clamped to SOURCE_DATE_EPOCH.
    func install(_ path: String, bytes: [UInt8], mode: UInt32) throws {
        let target = root + path
        try FileSystem.makeDirectories(parentDirectory(target), mode: 0o755)
        try FileSystem.writeAtomically(target, bytes, mode: mode_t(mode))
        guard chmod(target, mode_t(mode)) == 0, chown(target, 0, 0) == 0 else { throw ECIError.system("set owner and mode of \(path)", errno: errno) }
        if let sourceDateEpoch {
            var times = [timespec(tv_sec: Int(sourceDateEpoch), tv_nsec: 0), timespec(tv_sec: Int(sourceDateEpoch), tv_nsec: 0)]
            utimensat(AT_FDCWD, target, &times, AT_SYMLINK_NOFOLLOW)
        }
    }
}

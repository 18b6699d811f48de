import CShim
import ECICore
import ECIContract
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

// `ProbeResult` (one kernel feature and whether this kernel has it) is the control
// contract's (ECIContract): the agent reports the probes to the host.

/// Tries, on the running kernel, every feature the isolated runtime relies on, the way the
/// runtime uses it: a user namespace with a 65536-ID map, an idmapped mount on the file system
/// of the engine's data root, an overlay over idmapped layers there, a seccomp user-notification
/// listener, and FUSE. The agent keeps the engine stopped unless every probe passes.
///
/// `run` enters a private mount namespace: call it only in a fresh, single-threaded process
/// made for it (`eci-agent probe`), never in a process that goes on serving.
public enum KernelProbes {
    /// ECI's minimum kernel: idmapped overlay layers (6.3's semantics); the same floor as
    /// `kernel-config/minimum-version`.
    public static let minimumKernel = (6, 3)

    public static func run(dataRoot: String, idBase: UInt32) -> [ProbeResult] {
        var results = [kernelVersion(), userNamespaces(idBase: idBase)]
        results.append(contentsOf: filesystems(dataRoot: dataRoot, idBase: idBase))
        results.append(seccompNotify())
        results.append(fuse())
        return results
    }

    static func kernelVersion() -> ProbeResult {
        var info = utsname()
        uname(&info)
        let release = withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        let ok = numbers.count == 2 && (numbers[0], numbers[1]) >= minimumKernel
        return ProbeResult(name: "kernel-version", ok: ok, detail: "kernel \(release); ECI needs \(minimumKernel.0).\(minimumKernel.1) or later")
    }

    static func userNamespaces(idBase: UInt32) -> ProbeResult {
        let fd = eci_userns_fd(idBase, 65536)
        guard fd >= 0 else {
            return ProbeResult(name: "user-namespaces", ok: false, detail: "can't create a user namespace mapping 0-65535 to \(idBase): \(errnoDescription(-fd))")
        }
        close(fd)
        return ProbeResult(name: "user-namespaces", ok: true, detail: "a user namespace maps 0-65535 to \(idBase)-\(idBase + 65535)")
    }

    /// The idmapped mount and the overlay over idmapped layers, in a scratch directory on the
    /// data root's file system, staged in a private mount namespace that dies with the process.
    static func filesystems(dataRoot: String, idBase: UInt32) -> [ProbeResult] {
        let idmapName = "idmapped-mount"
        let overlayName = "overlay-over-idmapped-layers"
        func failBoth(_ why: String) -> [ProbeResult] {
            [ProbeResult(name: idmapName, ok: false, detail: why), ProbeResult(name: overlayName, ok: false, detail: "not tried: \(why)")]
        }
        let scratch = join(dataRoot, ".eci-probe-\(getpid())")
        defer { try? FileSystem.removeTree(scratch) }
        do {
            try FileSystem.makeDirectories(dataRoot, mode: 0o710)
            for dir in ["lower", "upper", "work", "stage"] { try FileSystem.makeDirectories(join(scratch, dir), mode: 0o755) }
            try FileSystem.write(join(scratch, "lower/file"), Array("probe\n".utf8), mode: 0o644)
        } catch {
            return failBoth("can't make a scratch directory on \(dataRoot): \(error)")
        }
        let userns = eci_userns_fd(idBase, 65536)
        guard userns >= 0 else { return failBoth("no user namespace: \(errnoDescription(-userns))") }
        defer { close(userns) }

        let tree: Int32
        do { tree = try KernelMounts.cloneTree(scratch, recursive: false) } catch { return failBoth("open_tree on \(dataRoot): \(error)") }
        do {
            try KernelMounts.idmap(tree: tree, userns: userns, recursive: false, name: dataRoot)
        } catch {
            close(tree)
            return failBoth("the file system of \(dataRoot) refuses idmapped mounts: \(errnoDescription((error as? ECIError)?.errno ?? EIO))")
        }
        let idmap = ProbeResult(name: idmapName, ok: true, detail: "idmapped mount on the file system of \(dataRoot)")

        let stage = join(scratch, "stage")
        do {
            try KernelMounts.enterPrivateMountNamespace(stage: stage)
        } catch {
            close(tree)
            return [idmap, ProbeResult(name: overlayName, ok: false, detail: "\(error)")]
        }
        // Detach the staged mounts (lazily, with everything below) before the scratch goes.
        defer { umount2(stage, Int32(MNT_DETACH)) }
        do {
            try FileSystem.makeDirectories(join(stage, "layers"), mode: 0o711)
            try FileSystem.makeDirectories(join(stage, "merged"), mode: 0o711)
            try KernelMounts.attach(tree: tree, at: join(stage, "layers"))
            let layers = join(stage, "layers")
            try KernelMounts.mountOverlay(
                at: join(stage, "merged"), lowers: [join(layers, "lower")], upper: join(layers, "upper"), work: join(layers, "work"), asHostID: idBase)
            var st = stat()
            guard stat(join(stage, "merged/file"), &st) == 0 else { throw ECIError.system("stat a file through the overlay", errno: errno) }
            guard st.st_uid == idBase else {
                throw ECIError(.unsupported, "a root-owned file shows as uid \(st.st_uid) through the overlay, not the container's root \(idBase)")
            }
            return [idmap, ProbeResult(name: overlayName, ok: true, detail: "overlay over idmapped layers on the file system of \(dataRoot), mounted as the container's root")]
        } catch {
            return [idmap, ProbeResult(name: overlayName, ok: false, detail: "\(error)")]
        }
    }

    static func seccompNotify() -> ProbeResult {
        let rc = eci_probe_seccomp_listener()
        guard rc == 0 else {
            return ProbeResult(name: "seccomp-user-notification", ok: false, detail: "no seccomp listener: \(errnoDescription(-rc))")
        }
        return ProbeResult(name: "seccomp-user-notification", ok: true, detail: "seccomp filters hand out user-notification listeners")
    }

    static func fuse() -> ProbeResult {
        let listed = ((try? FileSystem.read("/proc/filesystems")).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").contains { $0.split(whereSeparator: \.isWhitespace).last == "fuse" }
        let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        let openErrno = errno
        if fd >= 0 { close(fd) }
        guard listed, fd >= 0 else {
            let why = !listed ? "the kernel has no fuse file system" : "can't open /dev/fuse: \(errnoDescription(openErrno))"
            return ProbeResult(name: "fuse", ok: false, detail: why)
        }
        return ProbeResult(name: "fuse", ok: true, detail: "fuse is available and /dev/fuse opens")
    }
}

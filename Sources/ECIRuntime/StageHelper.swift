import CShim
import ECICore
import ECIOCI
import ECIPolicy
import Foundation

/// The staging helper: a freshly exec'd, single-threaded eci-runc that enters a private mount
/// namespace, makes the container's idmapped filesystems there, writes the final spec and execs
/// runc. Nothing it mounts is ever visible in the VM's mount namespace, and all of it disappears
/// with the namespace if anything fails: mount rollback is the kernel's, not ours.
public enum StageHelper {
    /// The hidden argv[1] that selects helper mode.
    public static let command = "__eci-stage"
    /// Environment variable holding the error-report fd (written on failure, closed on exec).
    public static let errorFDVariable = "ECI_STAGE_ERROR_FD"
    /// Environment variable holding the parent's PID (the helper dies with its parent).
    public static let parentVariable = "ECI_STAGE_PARENT"

    /// Runs the helper; returns only on failure, with the exit code to use.
    public static func main(planPath: String, environment: [String: String]) -> Int32 {
        let errorFD = Int32(environment[errorFDVariable] ?? "") ?? -1
        if errorFD >= 0 { _ = fcntl(errorFD, F_SETFD, FD_CLOEXEC) }
        do {
            try prepareAndExec(planPath: planPath, environment: environment)
            return 0
        } catch {
            let message = "\(error)"
            if errorFD >= 0 {
                let bytes = Array(message.utf8)
                _ = bytes.withUnsafeBytes { write(errorFD, $0.baseAddress, $0.count) }
            } else {
                FileHandle.standardError.write(Data((message + "\n").utf8))
            }
            return 125
        }
    }

    static func prepareAndExec(planPath: String, environment: [String: String]) throws {
        guard eci_set_parent_death_kill() == 0, let parent = Int32(environment[parentVariable] ?? ""), getppid() == parent else {
            throw ECIError(.internalError, "the staging helper must be started by eci-runc")
        }
        let plan = try JSONDecoder().decode(StagePlan.self, from: Data(try FileSystem.read(planPath)))
        let threads = eci_thread_count()
        guard threads == 1 else {
            throw ECIError(.internalError, "the staging helper has \(threads) threads; namespace work needs exactly one")
        }
        let rc = eci_unshare_mount_namespace()
        guard rc == 0 else { throw ECIError.system("create a private mount namespace", errno: -rc) }
        let tmpfs = eci_mount_private_tmpfs(plan.stageRoot)
        guard tmpfs == 0 else { throw ECIError.system("mount the staging tmpfs at \(plan.stageRoot)", errno: -tmpfs) }

        let userns = try KernelMounts.userNamespace(base: plan.rangeBase, count: IDRange.containerSize)
        defer { close(userns) }
        var spec = try OCISpec(bytes: Array(plan.spec.utf8))
        let rootfs = join(plan.stageRoot, "rootfs")
        try makeDirectory(rootfs)
        try stageRootfs(plan, at: rootfs, userns: userns)
        spec.setRootPath(rootfs)
        try stageBindMounts(&spec, plan: plan, userns: userns)
        try FileSystem.writeAtomically(join(plan.bundleDirectory, "config.json"), spec.serialized(), mode: 0o600)

        let argv = plan.runcArguments.map { strdup($0) } + [nil]
        execv(plan.runcPath, argv)
        throw ECIError.system("exec \(plan.runcPath)", errno: errno)
    }

    static func stageRootfs(_ plan: StagePlan, at rootfs: String, userns: Int32) throws {
        switch plan.rootfs {
        case let .directory(path):
            let tree = try KernelMounts.cloneTree(path, recursive: false)
            let err = KernelMounts.idmap(tree: tree, userns: userns, recursive: false)
            guard err == 0 else {
                close(tree)
                throw ECIError(
                    .unsupported,
                    "can't idmap the container's root filesystem \(path): \(errnoDescription(err)); ECI never starts a container on unshifted files")
            }
            try KernelMounts.attach(tree: tree, at: rootfs)
        case let .overlay(roots, lowers, upper, work):
            var staged: [String] = []
            for (index, root) in roots.enumerated() {
                let target = join(plan.stageRoot, "layers/\(index)")
                try makeDirectory(target)
                let tree = try KernelMounts.cloneTree(root, recursive: false)
                let err = KernelMounts.idmap(tree: tree, userns: userns, recursive: false)
                guard err == 0 else {
                    close(tree)
                    throw ECIError(
                        .unsupported, "can't idmap the image layers under \(root): \(errnoDescription(err)); ECI never starts a container on unshifted files")
                }
                try KernelMounts.attach(tree: tree, at: target)
                staged.append(target)
            }
            func path(_ layer: StagePlan.LayerPath) -> String { join(staged[layer.root], layer.relative) }
            try KernelMounts.mountOverlay(
                at: rootfs, lowers: lowers.map(path), upper: path(upper), work: path(work), asHostID: plan.rangeBase)
        }
    }

    static func stageBindMounts(_ spec: inout OCISpec, plan: StagePlan, userns: Int32) throws {
        let destination = LogDestination(path: plan.logPath, format: LogDestination.Format(rawValue: plan.logFormat) ?? .text)
        for (index, mount) in try spec.mounts().enumerated() where mount.isBind {
            guard let source = mount.source else {
                throw ECIError(.invalidArgument, "config.json: bind mount at \(mount.destination) has no source")
            }
            let tree = try KernelMounts.cloneTree(source, recursive: mount.isRecursiveBind)
            let (magic, fileType) = try KernelMounts.describe(tree: tree)
            var handling = BindSourcePolicy.handling(magic: magic, fileType: UInt32(fileType))
            if handling == .idmap {
                let err = KernelMounts.idmap(tree: tree, userns: userns, recursive: mount.isRecursiveBind)
                if err == EINVAL {
                    handling = .passThrough(reason: BindSourcePolicy.unsupportedReason)
                } else if err != 0 {
                    close(tree)
                    throw ECIError.system("idmap the bind mount source \(source)", errno: err)
                }
            }
            if case let .passThrough(reason) = handling {
                close(tree)
                destination.append(
                    destination.render(
                        level: .warning, message: "bind mount not idmapped",
                        metadata: ["source": "\(source)", "destination": "\(mount.destination)", "reason": "\(reason)"]))
                continue
            }
            let target = join(plan.stageRoot, "mounts/\(index)")
            if fileType == S_IFDIR {
                try makeDirectory(target)
            } else {
                try makeDirectory(join(plan.stageRoot, "mounts"))
                let fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw ECIError.system("create \(target)", errno: errno) }
                close(fd)
            }
            try KernelMounts.attach(tree: tree, at: target)
            spec.setMountSource(at: index, to: target)
        }
    }

    static func makeDirectory(_ path: String) throws {
        try FileSystem.makeDirectories(path, mode: 0o711)
    }
}

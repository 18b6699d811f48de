import CShim
import ECICore
import ECIOCI
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// Builds a container's idmapped filesystems inside a private mount namespace of the calling
/// (single-threaded) eci-runc process, which then starts runc there. Nothing it mounts is ever
/// visible in the VM's mount namespace, and all of it disappears with the namespace once runc
/// has made the container's own copies: mount rollback is the kernel's, not ours.
struct FilesystemStager {
    let log: Logger

    /// Leaves the VM's mount namespace for a private one (mounts still propagate in, none out)
    /// and mounts the staging tmpfs. The kernel refuses this in a multithreaded process, and so
    /// does ECI, with a clear error, before trying.
    static func enterPrivateMountNamespace(stageRoot: String) throws {
        let threads = eci_thread_count()
        guard threads == 1 else {
            throw ECIError(.internalError, "eci-runc has \(threads) threads; it must be single-threaded to enter a private mount namespace")
        }
        let rc = eci_unshare_mount_namespace()
        guard rc == 0 else { throw ECIError.system("create a private mount namespace", errno: -rc) }
        let tmpfs = eci_mount_private_tmpfs(stageRoot)
        guard tmpfs == 0 else { throw ECIError.system("mount the staging tmpfs at \(stageRoot)", errno: -tmpfs) }
    }

    /// Stages the root filesystem and every bind mount of `spec` per `plan`, and returns the
    /// spec pointing at the staged paths.
    func stage(_ plan: StagePlan, spec original: OCISpec) throws -> OCISpec {
        let userns = try KernelMounts.userNamespace(base: plan.rangeBase, count: IDRange.containerSize)
        defer { close(userns) }
        var spec = original
        let rootfs = join(plan.stageRoot, "rootfs")
        try makeDirectory(rootfs)
        try stageRootfs(plan, at: rootfs, userns: userns)
        spec.setRootPath(rootfs)
        try stageBindMounts(&spec, plan: plan, userns: userns)
        return spec
    }

    func stageRootfs(_ plan: StagePlan, at rootfs: String, userns: Int32) throws {
        switch plan.rootfs {
        case let .directory(path):
            try idmapTree(path, at: rootfs, userns: userns, what: "the container's root filesystem")
        case let .overlay(roots, lowers, upper, work):
            var staged: [String] = []
            for (index, root) in roots.enumerated() {
                let target = join(plan.stageRoot, "layers/\(index)")
                try makeDirectory(target)
                try idmapTree(root, at: target, userns: userns, what: "the image layers under")
                staged.append(target)
            }
            func path(_ layer: StagePlan.LayerPath) -> String { join(staged[layer.root], layer.relative) }
            try KernelMounts.mountOverlay(
                at: rootfs, lowers: lowers.map(path), upper: path(upper), work: path(work), asHostID: plan.rangeBase)
        }
    }

    /// Clones `source`, idmaps it and attaches it at `target`; any failure is fatal: the root
    /// filesystem is never given to a container unshifted.
    func idmapTree(_ source: String, at target: String, userns: Int32, what: String) throws {
        let tree = try KernelMounts.cloneTree(source, recursive: false)
        let err = KernelMounts.idmap(tree: tree, userns: userns, recursive: false)
        guard err == 0 else {
            close(tree)
            throw ECIError(.unsupported, "can't idmap \(what) \(source): \(errnoDescription(err)); ECI never starts a container on unshifted files")
        }
        try KernelMounts.attach(tree: tree, at: target)
    }

    func stageBindMounts(_ spec: inout OCISpec, plan: StagePlan, userns: Int32) throws {
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
                log.warning("bind mount not idmapped", metadata: ["source": "\(source)", "destination": "\(mount.destination)", "reason": "\(reason)"])
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

    /// Staging directories are 0711: runc binds them from inside the container's user
    /// namespace, as container root, which must be able to traverse them.
    func makeDirectory(_ path: String) throws {
        try FileSystem.makeDirectories(path, mode: 0o711)
    }
}

import CShim
import ECICore
import ECIOCI
import ECIPolicy
import Logging
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Builds a container's idmapped filesystems in two steps around eci-runc's move into a private
/// mount namespace:
///
/// 1. `prepare` (in the VM's namespace): clones every tree the container needs (rootfs or image
///    layers, every bind source, from the fds the policy checked) into detached mounts and
///    idmaps them. Detached trees belong to no namespace, so nothing is visible anywhere yet.
/// 2. `attach` (in the private namespace): mounts a private tmpfs, attaches the trees under it,
///    mounts the overlay, and rewrites the spec to the staged paths.
///
/// runc then copies those mounts into the container's own namespace; the private namespace, and
/// every staged mount with it, ends with eci-runc. Mount rollback is the kernel's, not ours.
final class FilesystemStager {
    let plan: StagePlan
    let log: Logger
    private var layerTrees: [Int32] = []
    private var rootTree: Int32 = -1
    /// Mount index → detached tree of its source (idmapped unless its file system can't be).
    private var bindTrees: [Int: Int32] = [:]
    private var bindIsDirectory: [Int: Bool] = [:]

    init(plan: StagePlan, log: Logger) {
        self.plan = plan
        self.log = log
    }

    deinit {
        for fd in layerTrees + Array(bindTrees.values) + (rootTree >= 0 ? [rootTree] : []) { close(fd) }
    }

    /// Step 1: detached, idmapped clones of everything the container mounts.
    /// `readOnly`: indices of the bind mounts to lock read-only (`ReadOnlyMounts`).
    func prepare(spec: OCISpec, sources: MountSources, readOnly: Set<Int>) throws {
        let userns = try KernelMounts.userNamespace(base: plan.rangeBase, count: IDRange.containerSize)
        defer { close(userns) }
        switch plan.rootfs {
        case let .directory(path):
            rootTree = try idmappedClone(path, userns: userns, what: "the container's root filesystem")
        case let .overlay(roots, _, _, _):
            for root in roots {
                layerTrees.append(try idmappedClone(root, userns: userns, what: "the image layers under"))
            }
        }
        for (index, mount) in try spec.mounts().enumerated() where mount.isBind {
            guard let source = mount.source, let fd = sources.fds[index] else {
                throw ECIError(.invalidArgument, "config.json: bind mount at \(mount.destination) has no checked source")
            }
            let tree = try KernelMounts.cloneTree(fd: fd, recursive: mount.isRecursiveBind, name: source)
            bindTrees[index] = tree
            // The VM's view of an allowed root is nosymfollow (SymlinkBlindRoots); the
            // container's own view of the same directory follows its symlinks as usual.
            try KernelMounts.followSymlinks(tree: tree, recursive: mount.isRecursiveBind, name: source)
            let (magic, fileType) = try KernelMounts.describe(tree: tree)
            var handling = BindSourcePolicy.handling(magic: magic, fileType: UInt32(fileType))
            if handling == .idmap {
                do {
                    try KernelMounts.idmap(tree: tree, userns: userns, recursive: mount.isRecursiveBind, name: "the bind mount source \(source)")
                } catch let error as ECIError where error.errno == EINVAL {
                    handling = .passThrough(reason: BindSourcePolicy.unsupportedReason)
                }
            }
            if case let .passThrough(reason) = handling {
                log.warning("bind mount not idmapped", metadata: ["source": "\(source)", "destination": "\(mount.destination)", "reason": "\(reason)"])
            }
            // Read-only here, in the VM's user namespace, means read-only for good: the kernel
            // locks the flag in the container's copies, so even container root with
            // CAP_SYS_ADMIN cannot remount it read-write (runc alone would only set it inside
            // the container's namespace, where the container may undo it).
            if readOnly.contains(index) {
                try KernelMounts.makeReadOnly(tree: tree, recursive: true, name: source)
            }
            bindIsDirectory[index] = fileType == S_IFDIR
        }
    }

    /// Step 2, in the private mount namespace: attaches the trees and returns the spec pointing
    /// at them.
    func attach(spec original: OCISpec) throws -> OCISpec {
        var spec = original
        let rootfs = join(plan.stageRoot, "rootfs")
        try makeDirectory(rootfs)
        switch plan.rootfs {
        case .directory:
            try KernelMounts.attach(tree: take(&rootTree), at: rootfs)
        case let .overlay(_, lowers, upper, work):
            var staged: [String] = []
            for (index, tree) in layerTrees.enumerated() {
                let target = join(plan.stageRoot, "layers/\(index)")
                try makeDirectory(target)
                layerTrees[index] = -1
                try KernelMounts.attach(tree: tree, at: target)
                staged.append(target)
            }
            layerTrees = []
            func path(_ layer: StagePlan.LayerPath) -> String { join(staged[layer.root], layer.relative) }
            try KernelMounts.mountOverlay(at: rootfs, lowers: lowers.map(path), upper: path(upper), work: path(work), asHostID: plan.rangeBase)
        }
        spec.setRootPath(rootfs)
        for index in bindTrees.keys.sorted() {
            guard let tree = bindTrees.removeValue(forKey: index) else { continue }
            let target = join(plan.stageRoot, "mounts/\(index)")
            if bindIsDirectory[index] == true {
                try makeDirectory(target)
            } else {
                try makeDirectory(join(plan.stageRoot, "mounts"))
                let fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    close(tree)
                    throw ECIError.system("create \(target)", errno: errno)
                }
                close(fd)
            }
            try KernelMounts.attach(tree: tree, at: target)
            spec.setMountSource(at: index, to: target)
        }
        if spec.rootReadonly { try lockRootReadOnly(spec: spec, rootfs: rootfs) }
        return spec
    }

    /// `--read-only`, locked: the staged root filesystem is made read-only here, in the VM's user
    /// namespace, so container root cannot remount it read-write (runc alone would only set the
    /// flag inside the container's namespace). runc must still create the mount points its
    /// mounts need in the root before they are mounted; they are made first, inside the root
    /// (openat2 RESOLVE_IN_ROOT, so the image's symlinks never lead into the VM), as the
    /// container's root. Mount points inside an earlier mount (`/dev/pts` in `/dev`'s tmpfs)
    /// are runc's to make there.
    func lockRootReadOnly(spec: OCISpec, rootfs: String) throws {
        let mounts = try spec.mounts()
        for (index, mount) in mounts.enumerated() {
            let destination = lexicallyClean(mount.destination)
            guard destination.hasPrefix("/"), destination != "/" else { continue }
            let insideEarlier = mounts[..<index].contains { earlier in
                let outer = lexicallyClean(earlier.destination)
                return outer != "/" && outer != destination && isWithin(destination, outer)
            }
            if insideEarlier { continue }
            let directory = !mount.isBind || bindIsDirectory[index] != false
            let rc = eci_make_mountpoint_as(plan.rangeBase, plan.rangeBase, rootfs, destination, directory ? 1 : 0)
            guard rc == 0 else {
                throw ECIError.system("create the mount point \(destination) in the read-only root filesystem", errno: -rc)
            }
        }
        let rc = eci_mount_setattr_at(rootfs, ECI_MOUNT_ATTR_RDONLY, 0)
        guard rc == 0 else { throw ECIError.system("make the root filesystem read-only", errno: -rc) }
    }

    /// Leaves the VM's mount namespace for a private one (mounts still propagate in, none out)
    /// and mounts the staging tmpfs. The kernel refuses this in a multithreaded process, and so
    /// does ECI, with a clear error, before trying.
    static func enterPrivateMountNamespace(stageRoot: String) throws {
        try KernelMounts.enterPrivateMountNamespace(stage: stageRoot)
    }

    /// A detached, idmapped clone of `source`; any failure is fatal: the root filesystem is
    /// never given to a container unshifted.
    func idmappedClone(_ source: String, userns: Int32, what: String) throws -> Int32 {
        let tree = try KernelMounts.cloneTree(source, recursive: false)
        do {
            try KernelMounts.idmap(tree: tree, userns: userns, recursive: false, name: source)
        } catch let error as ECIError {
            close(tree)
            throw ECIError(
                .unsupported, "can't idmap \(what) \(source): \(errnoDescription(error.errno ?? EIO)); ECI never starts a container on unshifted files",
                errno: error.errno)
        }
        return tree
    }

    /// Hands an fd over to a consumer that closes it, so deinit does not close it twice.
    private func take(_ fd: inout Int32) -> Int32 {
        let value = fd
        fd = -1
        return value
    }

    /// Staging directories are 0711: runc binds them from inside the container's user
    /// namespace, as container root, which must be able to traverse them.
    func makeDirectory(_ path: String) throws {
        try FileSystem.makeDirectories(path, mode: 0o711)
    }
}

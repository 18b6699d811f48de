import CShim
import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Swift face of the mount calls in CShim: detached mount trees, idmapping, overlay mounts.
/// Mechanism only; what to mount where is decided by `StagePlan` and the policy module.
enum KernelMounts {
    /// A detached clone of the mount tree at `path` (symlinks followed, as mount(2) would).
    static func cloneTree(_ path: String, recursive: Bool) throws -> Int32 {
        do {
            return try Syscall.shim("open_tree \(path)") { eci_open_tree_clone(path, recursive ? ECI_OPEN_TREE_RECURSIVE : 0) }
        } catch let error as ECIError where error.errno == ENOENT {
            throw ECIError(.notFound, "mount source \(path) does not exist", errno: ENOENT)
        }
    }

    /// A detached clone of the mount tree of an open file or directory.
    static func cloneTree(fd: Int32, recursive: Bool, name: String) throws -> Int32 {
        try Syscall.shim("open_tree \(name)") { eci_open_tree_clone_fd(fd, recursive ? ECI_OPEN_TREE_RECURSIVE : 0) }
    }

    /// Idmaps a detached tree with the user namespace `userns`. The error keeps the errno
    /// (EINVAL: the file system cannot be idmapped), so callers decide what that means.
    static func idmap(tree: Int32, userns: Int32, recursive: Bool, name: String) throws {
        try Syscall.shim("idmap \(name)") { eci_mount_setattr_idmap(tree, userns, recursive ? 1 : 0) }
    }

    /// Makes a detached tree read-only, a flag its copies in a container's namespace cannot drop.
    static func makeReadOnly(tree: Int32, recursive: Bool, name: String) throws {
        try Syscall.shim("make \(name) read-only") { eci_mount_setattr_rdonly(tree, recursive ? 1 : 0) }
    }

    /// Lets a detached tree follow symlinks again. The VM's own view of the allowed bind roots is
    /// `nosymfollow` (see `SymlinkBlindRoots`); a container's clone of a directory there must
    /// behave like an ordinary directory inside the container.
    static func followSymlinks(tree: Int32, recursive: Bool, name: String) throws {
        // nosuid and nodev too (the VM's view has them): inside the container a setuid file of
        // its own means container root, as on any bind, and its device cgroup decides devices.
        // A flag left set here would also be locked in the container's copy, where runc's
        // read-only remount (MS_BIND|MS_REMOUNT|MS_RDONLY, no nodev) would then fail with EPERM.
        try Syscall.shim("let the clone of \(name) follow symlinks") {
            eci_mount_setattr_flags(tree, recursive ? 1 : 0, 0, ECI_MOUNT_ATTR_NOSYMFOLLOW | ECI_MOUNT_ATTR_NOSUID | ECI_MOUNT_ATTR_NODEV)
        }
    }

    /// Attaches a detached tree at `target` and closes the tree fd.
    static func attach(tree: Int32, at target: String) throws {
        defer { close(tree) }
        try Syscall.shim("move_mount to \(target)") { eci_move_mount_to(tree, target) }
    }

    /// A user namespace fd mapping 0..count-1 to base..base+count-1, for idmapped mounts.
    static func userNamespace(base: UInt32, count: UInt32) throws -> Int32 {
        try Syscall.shim("create the idmapping user namespace") { eci_userns_fd(base, count) }
    }

    /// Mounts an overlay whose mounter is the container's root (see `eci_mount_overlay_as`).
    static func mountOverlay(at target: String, lowers: [String], upper: String, work: String, asHostID id: UInt32) throws {
        let cStrings = lowers.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = cStrings.map { $0.map { UnsafePointer($0) } }
        try Syscall.shim("mount the container's overlay at \(target)") {
            pointers.withUnsafeBufferPointer { buffer in
                eci_mount_overlay_as(id, id, target, buffer.baseAddress, Int32(lowers.count), upper, work)
            }
        }
    }

    /// The file-system magic (statfs f_type) and file type of an open mount tree.
    static func describe(tree: Int32) throws -> (magic: Int, mode: mode_t) {
        let magic = try Syscall.shim("fstatfs") { eci_fs_magic(tree) }
        var st = stat()
        try Syscall.retrying("fstat") { fstat(tree, &st) }
        return (Int(magic), st.st_mode & S_IFMT)
    }

    /// The one way into a private mount namespace (eci-runc's staging, the agent's probe):
    /// leaves the VM's mount namespace for one of its own (mounts still propagate in, none
    /// out) and mounts a private tmpfs at `stage`. The kernel refuses the unshare in a
    /// multithreaded process, and so does ECI, with a clear error, before trying.
    static func enterPrivateMountNamespace(stage: String) throws {
        let threads = eci_thread_count()
        guard threads == 1 else {
            throw ECIError(.internalError, "\(processName) has \(threads) threads; it must be single-threaded to enter a private mount namespace")
        }
        try Syscall.shim("create a private mount namespace") { eci_unshare_mount_namespace() }
        try Syscall.shim("mount the staging tmpfs at \(stage)") { eci_mount_private_tmpfs(stage) }
    }

    /// This program's name, for errors (eci-runc, eci-agent).
    private static var processName: String {
        (try? FileSystem.realPath("/proc/self/exe")).flatMap { $0.split(separator: "/").last.map(String.init) } ?? "this process"
    }

    /// The path the kernel resolved for an open fd (/proc/self/fd readlink).
    static func resolvedPath(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

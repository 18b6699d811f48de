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
        let fd = eci_open_tree_clone(path, recursive ? ECI_OPEN_TREE_RECURSIVE : 0)
        guard fd >= 0 else {
            if -fd == ENOENT { throw ECIError(.notFound, "mount source \(path) does not exist") }
            throw ECIError.system("open_tree \(path)", errno: -fd)
        }
        return fd
    }

    /// A detached clone of the mount tree of an open file or directory.
    static func cloneTree(fd: Int32, recursive: Bool, name: String) throws -> Int32 {
        let tree = eci_open_tree_clone_fd(fd, recursive ? ECI_OPEN_TREE_RECURSIVE : 0)
        guard tree >= 0 else { throw ECIError.system("open_tree \(name)", errno: -tree) }
        return tree
    }

    /// Idmaps a detached tree with the user namespace `userns`. Returns the errno on failure
    /// (EINVAL: the file system cannot be idmapped), so callers decide what that means.
    static func idmap(tree: Int32, userns: Int32, recursive: Bool) -> Int32 {
        let rc = eci_mount_setattr_idmap(tree, userns, recursive ? 1 : 0)
        return rc < 0 ? -rc : 0
    }

    /// Makes a detached tree read-only, a flag its copies in a container's namespace cannot drop.
    static func makeReadOnly(tree: Int32, recursive: Bool, name: String) throws {
        let rc = eci_mount_setattr_rdonly(tree, recursive ? 1 : 0)
        guard rc == 0 else { throw ECIError.system("make \(name) read-only", errno: -rc) }
    }

    /// Lets a detached tree follow symlinks again. The VM's own view of the allowed bind roots is
    /// `nosymfollow` (see `SymlinkBlindRoots`); a container's clone of a directory there must
    /// behave like an ordinary directory inside the container.
    static func followSymlinks(tree: Int32, recursive: Bool, name: String) throws {
        // nosuid too: inside the container a setuid file of its own means container root, as
        // on any bind; nodev stays (containers never get devices).
        let rc = eci_mount_setattr_flags(tree, recursive ? 1 : 0, 0, ECI_MOUNT_ATTR_NOSYMFOLLOW | ECI_MOUNT_ATTR_NOSUID)
        guard rc == 0 else { throw ECIError.system("let the clone of \(name) follow symlinks", errno: -rc) }
    }

    /// Attaches a detached tree at `target` and closes the tree fd.
    static func attach(tree: Int32, at target: String) throws {
        defer { close(tree) }
        let rc = eci_move_mount_to(tree, target)
        guard rc == 0 else { throw ECIError.system("move_mount to \(target)", errno: -rc) }
    }

    /// A user namespace fd mapping 0..count-1 to base..base+count-1, for idmapped mounts.
    static func userNamespace(base: UInt32, count: UInt32) throws -> Int32 {
        let fd = eci_userns_fd(base, count)
        guard fd >= 0 else { throw ECIError.system("create the idmapping user namespace", errno: -fd) }
        return fd
    }

    /// Mounts an overlay whose mounter is the container's root (see `eci_mount_overlay_as`).
    static func mountOverlay(at target: String, lowers: [String], upper: String, work: String, asHostID id: UInt32) throws {
        let cStrings = lowers.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = cStrings.map { $0.map { UnsafePointer($0) } }
        let rc = pointers.withUnsafeBufferPointer { buffer in
            eci_mount_overlay_as(id, id, target, buffer.baseAddress, Int32(lowers.count), upper, work)
        }
        guard rc == 0 else { throw ECIError.system("mount the container's overlay at \(target)", errno: -rc) }
    }

    /// The file-system magic (statfs f_type) and file type of an open mount tree.
    static func describe(tree: Int32) throws -> (magic: Int, mode: mode_t) {
        let magic = eci_fs_magic(tree)
        guard magic >= 0 else { throw ECIError.system("fstatfs", errno: Int32(-magic)) }
        var st = stat()
        guard fstat(tree, &st) == 0 else { throw ECIError.system("fstat", errno: errno) }
        return (Int(magic), st.st_mode & S_IFMT)
    }

    /// The path the kernel resolved for an open fd (/proc/self/fd readlink).
    static func resolvedPath(of fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import CSeccomp
import ECICore
import ECIPolicy
import Glibc

/// The mounts the policy judges, as the kernel lists them: listmount(2) for the IDs of the
/// mounts reachable from this process's root, statmount(2) for one mount's device, attributes,
/// file system type, root and mount point (relative to this process's root). Both Linux 6.8.
///
/// Why not mountinfo: it is text the kernel renders whole (a container's overlay line alone is
/// kilobytes of layer options the policy never reads), with escapes to undo; statmount answers
/// with the fields, one mount at a time.
///
/// The helper calls these chrooted to its caller's root: the list and the mount points are
/// what the caller's /proc/TID/mountinfo would show.
enum MountTable {
    struct Row: Equatable {
        /// The ID statx(STATX_MNT_ID) and mountinfo show.
        var mountID: Int
        /// The mount it is mounted on (itself for a namespace's first mount).
        var parentID: Int
        var mount: MountCallPolicy.Mount
    }

    /// The unique IDs of the mounts reachable from this process's root, in ID order (the order
    /// mountinfo lists them in since Linux 6.8).
    static func ids() throws -> [UInt64] {
        var all: [UInt64] = []
        var chunk = [UInt64](repeating: 0, count: 256)
        while true {
            let n = chunk.withUnsafeMutableBufferPointer { eci_listmount($0.baseAddress, $0.count, all.last ?? 0) }
            guard n >= 0 else { throw MountHelper.Failure(errno: -n, reason: "listmount: \(errnoDescription(-n))") }
            all += chunk.prefix(Int(n))
            if Int(n) < chunk.count { return all }
        }
    }

    /// Whether `rows` and the names of `objects` (a path and the ID of the mount it is in)
    /// describe one layout of the tree: every mount's point lies at or below its parent mount's,
    /// and every name at or below its mount's point. A directory renamed while they were read
    /// breaks that (a procfs read at /a/p, its masks at /b/p/...), and a policy judging a mix of
    /// before and after would misplace the masks. Within a procfs or sysfs nothing can be
    /// renamed, so once this holds, every path's position relative to its mount is the true one.
    static func consistent(_ rows: [Row], objects: [(path: String, mountID: Int)]) -> Bool {
        var points: [Int: String] = [:]
        for row in rows { points[row.mountID] = row.mount.mountPoint }
        for row in rows where row.parentID != row.mountID {
            guard let parent = points[row.parentID] else { continue }  // outside the caller's root
            guard MountCallPolicy.isAtOrBelow(row.mount.mountPoint, parent) else { return false }
        }
        for object in objects {
            guard let point = points[object.mountID] else { continue }  // refused by the policy
            guard MountCallPolicy.isAtOrBelow(object.path, point) else { return false }
        }
        return true
    }

    /// One mount by its unique ID; nil when it is gone (unmounted since it was listed).
    /// `buffer` is grown when a mount's strings do not fit.
    static func row(_ id: UInt64, buffer: inout [UInt64]) throws -> Row? {
        while true {
            var row = eci_mount_row()
            let rc = buffer.withUnsafeMutableBytes { raw in
                eci_statmount(id, &row, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
            }
            if rc == -EOVERFLOW, buffer.count < 1 << 16 {
                buffer = [UInt64](repeating: 0, count: buffer.count * 4)
                continue
            }
            if rc == -ENOENT { return nil }
            guard rc == 0 else { throw MountHelper.Failure(errno: -rc, reason: "statmount: \(errnoDescription(-rc))") }
            return buffer.withUnsafeBytes { raw in
                // eci_statmount checked that each offset is inside the answer, which ends in NUL.
                func text(_ offset: UInt32) -> String {
                    guard let base = raw.baseAddress else { return "" }
                    return String(cString: base.advanced(by: Int(offset)).assumingMemoryBound(to: CChar.self))
                }
                let attributes = row.attributes
                let mount = MountCallPolicy.Mount(
                    device: "\(row.dev_major):\(row.dev_minor)", root: text(row.root), mountPoint: text(row.point), fsType: text(row.fs_type),
                    readOnly: attributes & 0x1 != 0, noSuid: attributes & 0x2 != 0, noDev: attributes & 0x4 != 0, noExec: attributes & 0x8 != 0)
                return Row(mountID: Int(row.old_id), parentID: Int(row.parent_old_id), mount: mount)
            }
        }
    }
}

/// The helper's view of the caller's mounts: read afresh on every call, never a table kept from
/// an earlier one. A kept table goes stale without any mount event: renaming a directory moves
/// every mount below it (a fresh procfs at /a/p is at /b/p after `mv /a /b`), and a policy that
/// compared the caller's paths with old mount points missed the masks below /b/p (a bind of it
/// without submounts showed them). Renames during the reading are caught by
/// `MountTable.consistent`. Used only by the single-threaded helper.
final class MountTableCache {
    /// statmount's answer: 8-byte aligned, grown for long paths.
    private var buffer = [UInt64](repeating: 0, count: 1024)

    /// The mounts reachable from this process's root (the caller's, for the call).
    func rows() throws -> [MountTable.Row] {
        try MountTable.ids().compactMap { try MountTable.row($0, buffer: &buffer) }
    }
}

import CSeccomp
import ECICore
import ECIPolicy
import Glibc

/// The mounts the policy judges, as the kernel lists them: listmount(2) for the IDs of the
/// mounts reachable from this process's root, statmount(2) for one mount's device, attributes,
/// file system type, root and mount point (relative to this process's root). Both Linux 6.8.
///
/// Why not mountinfo: the kernel renders the whole table as text on every read (a container's
/// overlay line alone is kilobytes of layer options), and a mount call changes the table, so
/// every trapped call paid for a fresh rendering and its parsing (measured: 30-45 µs of the
/// call's CPU). statmount answers for one mount, so only mounts not seen before are asked.
///
/// The helper calls these chrooted to its caller's root: the list and the mount points are
/// what the caller's /proc/TID/mountinfo would show.
enum MountTable {
    struct Row: Equatable {
        /// The ID statx(STATX_MNT_ID) and mountinfo show.
        var mountID: Int
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
                return Row(mountID: Int(row.old_id), mount: mount)
            }
        }
    }
}

/// The helper's tables, one per caller root (mount points are relative to it), kept between
/// calls: each call lists the IDs again (cheap) and asks statmount only for mounts it has not
/// seen. Unique mount IDs are never reused, and a mount's row changes only when it is remounted
/// or moved; in the namespaces a helper serves, those are trapped calls this helper performs
/// itself (ecid serializes a container's calls), and it forgets what they touched
/// (`forget(after:)`). Mounts that propagate in from elsewhere arrive with new IDs.
/// Used only by the single-threaded helper.
final class MountTableCache {
    struct Entry {
        var root: eci_file_id
        var rows: [UInt64: MountTable.Row]
    }

    static let capacity = 4
    private var entries: [Entry] = []
    /// statmount's answer: 8-byte aligned, grown for long paths.
    private var buffer = [UInt64](repeating: 0, count: 1024)

    /// The rows for the caller whose root is `id`; this process's root must be that root.
    func rows(root id: eci_file_id) throws -> [MountTable.Row] {
        var entry = entries.firstIndex { Self.same($0.root, id) }.map { entries.remove(at: $0) } ?? Entry(root: id, rows: [:])
        let listed = try MountTable.ids()
        var rows: [MountTable.Row] = []
        rows.reserveCapacity(listed.count)
        var current: [UInt64: MountTable.Row] = [:]
        for unique in listed {
            if let known = entry.rows[unique] {
                current[unique] = known
                rows.append(known)
            } else if let row = try MountTable.row(unique, buffer: &buffer) {
                current[unique] = row
                rows.append(row)
            }
        }
        entry.rows = current
        entries.append(entry)
        if entries.count > Self.capacity { entries.removeFirst() }
        return rows
    }

    /// Drops what `call`, performed (or attempted) by this helper, may have changed: a remount
    /// or propagation change the target mount's row, a move or pivot_root every mount point.
    /// New mounts and unmounts change only the list, which is read on every call.
    func forget(after call: MountCallPolicy.Call, targetMountID: UInt64) {
        switch call {
        case .umount: return
        case .pivotRoot:
            entries = []
        case let .mount(_, _, _, flags, _):
            switch MountCallPolicy.kind(ofMountFlags: flags) {
            case .new, .bind: return
            case .move: entries = []
            case .remount, .propagation:
                for i in entries.indices { entries[i].rows = entries[i].rows.filter { $0.value.mountID != Int(targetMountID) } }
            }
        }
    }

    static func same(_ a: eci_file_id, _ b: eci_file_id) -> Bool {
        a.mount_id == b.mount_id && a.ino == b.ino && a.dev_major == b.dev_major && a.dev_minor == b.dev_minor
    }
}

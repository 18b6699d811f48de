import CSeccomp
import ECICore
import ECIPolicy
import Glibc

/// The caller's mountinfo as the policy needs it, parsed from its bytes on every trapped call
/// (the helper's hottest path: a container's table holds overlay lines of kilobytes of layer
/// options, which the policy never reads). Same reading as `ECIRuntime.MountInfo.parse` for the
/// fields it keeps (unit-tested against it): octal escapes undone in root and mount point;
/// source and super options skipped.
enum MountTable {
    struct Row: Equatable {
        var mountID: Int
        /// The mount it is mounted on.
        var parentID: Int
        var mount: MountCallPolicy.Mount
    }

    /// Whether `rows` and the names of `objects` (a path and the ID of the mount it is in)
    /// describe one layout of the tree: every mount's point lies at or below its parent mount's,
    /// and every name at or below its mount's point. A directory renamed while they were read
    /// breaks that (a procfs read at /a/p, its masks at /b/p/...), and a policy judging a mix of
    /// before and after would misplace the masks. Within a procfs or sysfs nothing can be
    /// renamed, so once this holds, every path's position relative to its mount is the true one.
    /// A name that is its mount's root (`isMountRoot`) must be that mount's point exactly: "at or
    /// below" alone let a directory moved below a new directory of its own old name pass (a
    /// procfs at /q/p, moved to /q/p/p, still "below" its old point).
    static func consistent(_ rows: [Row], objects: [(path: String, mountID: Int, isMountRoot: Bool)]) -> Bool {
        var points: [Int: String] = [:]
        for row in rows { points[row.mountID] = row.mount.mountPoint }
        for row in rows where row.parentID != row.mountID {
            guard let parent = points[row.parentID] else { continue }  // outside the caller's root
            guard MountCallPolicy.isAtOrBelow(row.mount.mountPoint, parent) else { return false }
        }
        for object in objects {
            guard let point = points[object.mountID] else { continue }  // refused by the policy
            guard object.isMountRoot ? object.path == point : MountCallPolicy.isAtOrBelow(object.path, point) else { return false }
        }
        return true
    }

    static func parse(_ bytes: [UInt8]) -> [Row] {
        var rows: [Row] = []
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            while start < buffer.count {
                var end = start
                while end < buffer.count && buffer[end] != 0x0A { end += 1 }
                if let row = line(buffer, start, end) { rows.append(row) }
                start = end + 1
            }
        }
        return rows
    }

    /// One line: `id parent major:minor root point options [optional...] - type source super`.
    static func line(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Row? {
        var fields: [Range<Int>] = []
        fields.reserveCapacity(12)
        var i = start
        var fieldStart = start
        var dash = -1
        while i <= end {
            if i == end || b[i] == 0x20 {
                let range = fieldStart..<i
                if fields.count >= 6, dash < 0, range.count == 1, b[range.lowerBound] == UInt8(ascii: "-") { dash = fields.count }
                fields.append(range)
                // Nothing after the file system type is needed.
                if dash >= 0 && fields.count > dash + 1 { break }
                fieldStart = i + 1
            }
            i += 1
        }
        guard dash >= 6, fields.count >= dash + 2, let id = number(b, fields[0]), let parent = number(b, fields[1]) else { return nil }
        var readOnly = false, noSuid = false, noDev = false, noExec = false
        var optionStart = fields[5].lowerBound
        for j in fields[5].lowerBound...fields[5].upperBound where j == fields[5].upperBound || b[j] == UInt8(ascii: ",") {
            switch text(b, optionStart..<j) {
            case "ro": readOnly = true
            case "nosuid": noSuid = true
            case "nodev": noDev = true
            case "noexec": noExec = true
            default: break
            }
            optionStart = j + 1
        }
        // The optional fields between the options and the dash: `shared:N` is a peer group
        // (what a mount attached on this one propagates to); `master:N` alone receives only.
        var shared = false
        for field in fields[6..<dash] where field.count > 7 && text(b, field.lowerBound..<field.lowerBound + 7) == "shared:" { shared = true }
        let mount = MountCallPolicy.Mount(
            device: text(b, fields[2]), root: unescaped(b, fields[3]), mountPoint: unescaped(b, fields[4]), fsType: text(b, fields[dash + 1]),
            readOnly: readOnly, noSuid: noSuid, noDev: noDev, noExec: noExec, id: id, parentID: parent, shared: shared)
        return Row(mountID: id, parentID: parent, mount: mount)
    }

    static func number(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count < 19 else { return nil }
        var value = 0
        for i in range {
            guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
            value = value * 10 + Int(b[i] - 0x30)
        }
        return value
    }

    static func text(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self)
    }

    /// The kernel writes space, tab, newline and backslash as `\ooo`.
    static func unescaped(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        guard b[range].contains(UInt8(ascii: "\\")) else { return text(b, range) }
        var out: [UInt8] = []
        var i = range.lowerBound
        while i < range.upperBound {
            if b[i] == UInt8(ascii: "\\"), i + 3 < range.upperBound, b[i + 1] >= 0x30 && b[i + 1] <= 0x33,
                (2...3).allSatisfy({ b[i + $0] >= 0x30 && b[i + $0] <= 0x37 }) {
                out.append((b[i + 1] - 0x30) << 6 | (b[i + 2] - 0x30) << 3 | (b[i + 3] - 0x30))
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The helper's parsed mount tables, one per caller root, re-read only when the kernel says the
/// namespace's tree changed (`eci_mounts_changed`): reading and parsing mountinfo was most of a
/// call's cost. A mount ID the table lacks makes the caller re-read it (`refresh`).
///
/// Always the helper's *own* mountinfo (`self/mountinfo` of the VM's /proc), opened while the
/// helper stands in the caller's mount namespace at the caller's root (taken from the fd ecid
/// opened): the kernel renders a mountinfo from the namespace and the root of the task that
/// opens it, *at the open*, and keeps both for the file's life. The caller's own
/// `/proc/TID/mountinfo` was rendered from whatever root the caller's task had when the helper
/// opened it, and threads share their root (CLONE_FS): a second thread that chrooted to an
/// empty directory in between made the helper judge against no mounts at all, and the kept
/// table stayed that way for the namespace (attack round 10: a bind of /proc without its
/// submounts showed the real /proc/keys). The helper's own view is, by construction, the one
/// its lookups use, and no process of the container can change the helper's root.
///
/// A kept table can be stale without any mount event: renaming a directory moves every mount
/// below it (a fresh procfs at /a/p is at /b/p after `mv /a /b`). It is always one whole
/// reading, so its rows agree with each other; what the helper checks before judging is that
/// the call's own names agree with it (`MountTable.consistent`), and it reads the table again
/// (`refresh`) until they do. Used only by the single-threaded helper.
final class MountTableCache {
    struct Entry {
        var root: eci_file_id
        var fd: Int32
        var rows: [MountTable.Row]
    }

    static let capacity = 4
    private var entries: [Entry] = []

    /// The root whose table is kept open between calls (the mount namespace's): an open
    /// mountinfo holds its reader's root, and a chroot's mount held so could not be unmounted.
    var keptRoot: eci_file_id?

    /// The rows as the helper sees them now, from its current root, which must be the caller's
    /// (the helper has taken it: `MountHelper.serve`); `root` is that root's identity (statx),
    /// which keys the kept table.
    func rows(root id: eci_file_id, refresh: Bool = false) throws -> [MountTable.Row] {
        guard let keptRoot, keptRoot.isSameObject(as: id) else {
            let fd = try Self.openOwn()
            defer { close(fd) }
            return MountTable.parse(try MountHelper.readAll(fd))
        }
        if let index = entries.firstIndex(where: { $0.root.isSameObject(as: id) }) {
            var entry = entries.remove(at: index)
            let changed = eci_mounts_changed(entry.fd)
            if changed != 0 || refresh {
                guard changed >= 0, lseek(entry.fd, 0, SEEK_SET) == 0 else {
                    close(entry.fd)
                    return try rows(root: id)
                }
                entry.rows = MountTable.parse(try MountHelper.readAll(entry.fd))
            }
            entries.append(entry)
            return entry.rows
        }
        let fd = try Self.openOwn()
        let rows: [MountTable.Row]
        do {
            rows = MountTable.parse(try MountHelper.readAll(fd))
        } catch {
            close(fd)
            throw error
        }
        entries.append(Entry(root: id, fd: fd, rows: rows))
        if entries.count > Self.capacity { close(entries.removeFirst().fd) }
        return rows
    }

    /// The helper's own mountinfo: its mount namespace (the caller's, joined at start) seen
    /// from its root now.
    static func openOwn() throws -> Int32 {
        let fd = openat(MountHelper.vmProc, "self/mountinfo", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MountHelper.Failure(errno: EIO, reason: "the helper's own mountinfo: \(errnoDescription(errno))") }
        return fd
    }
}

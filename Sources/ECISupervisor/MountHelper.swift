import CSeccomp
import ECICore
import ECIPolicy
import ECIRuntime
import Foundation
import Glibc

/// `ecid mount-helper`: performs one vetted call as the caller would, from a fresh,
/// single-threaded process (joining a user namespace requires one; ecid itself is threaded).
///
/// It enters the caller's mount namespace, root and working directory, then its user namespace,
/// takes its IDs and capabilities, so every permission check the kernel makes is the caller's
/// own. There it resolves the call's paths once to file descriptors, gathers the facts the
/// policy needs (which mount each path is in, from the caller's mountinfo), asks
/// `MountCallPolicy`, and performs an approved call on exactly what it checked: the target's
/// parent stays open and only its last component is named (no symlink followed), binds and
/// moves go from the checked source fd (`open_tree`, `move_mount`). ecid serializes calls per
/// container, so no other mount can change what was checked meanwhile.
public enum MountHelper {
    /// Reads the request on stdin, writes the response on stdout; the exit status is 0 when a
    /// response was written.
    public static func main() -> Int32 {
        let response: HelperResponse
        do {
            let input = try readAll(0)
            let request = try JSONDecoder().decode(HelperRequest.self, from: Data(input))
            response = perform(request)
        } catch {
            response = HelperResponse(errno: EINVAL, reason: "helper: \(error)")
        }
        guard let out = try? JSONEncoder().encode(response) else { return 1 }
        let bytes = [UInt8](out)
        return bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) } == bytes.count ? 0 : 1
    }

    struct Failure: Error {
        let errno: Int32
        let reason: String
    }

    static func perform(_ request: HelperRequest) -> HelperResponse {
        do {
            try enterCallerContext()
            let facts = try gather(request.call)
            switch MountCallPolicy.decide(request.call, initial: request.initial, facts: facts.policyFacts) {
            case let .deny(errno, reason): return HelperResponse(errno: errno, reason: reason)
            case .perform:
                try act(request.call, facts)
                return HelperResponse(errno: 0, reason: nil)
            }
        } catch let failure as Failure {
            return HelperResponse(errno: failure.errno, reason: failure.reason)
        } catch {
            return HelperResponse(errno: EINVAL, reason: "\(error)")
        }
    }

    /// The VM's /proc, opened before leaving the VM's mount namespace: `self/fd/N` names what
    /// an fd resolved to, relative to the root this process then has (the caller's).
    nonisolated(unsafe) static var vmProc: Int32 = -1
    nonisolated(unsafe) static var uidMap: [MountCallPolicy.IDMapping] = []
    nonisolated(unsafe) static var gidMap: [MountCallPolicy.IDMapping] = []

    static func enterCallerContext() throws {
        vmProc = open("/proc", Int32(ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard vmProc >= 0 else { throw Failure(errno: EINVAL, reason: "open /proc: \(errnoDescription(errno))") }
        try check(eci_setns(HelperFD.mountNamespace, Int32(ECI_CLONE_NEWNS)), "setns mnt")
        guard fchdir(HelperFD.root) == 0, chroot(".") == 0 else { throw Failure(errno: EINVAL, reason: "chroot to the caller's root: \(errnoDescription(errno))") }
        guard fchdir(HelperFD.cwd) == 0 else { throw Failure(errno: EINVAL, reason: "chdir to the caller's cwd: \(errnoDescription(errno))") }
        // The caller's ID maps as the VM sees them (read from the VM's user namespace, so the
        // outside column is in the VM's IDs even for a nested namespace).
        uidMap = MountCallPolicy.IDMapping.parse(try readText(at: HelperFD.procDirectory, "uid_map"))
        gidMap = MountCallPolicy.IDMapping.parse(try readText(at: HelperFD.procDirectory, "gid_map"))
        try check(eci_drop_groups(), "drop supplementary groups")
        try check(eci_setns(HelperFD.userNamespace, Int32(ECI_CLONE_NEWUSER)), "setns user")
        for fd in [HelperFD.mountNamespace, HelperFD.userNamespace, HelperFD.root, HelperFD.cwd] { close(fd) }
        // The caller's IDs and capabilities, read now: /proc renders them in the reader's
        // user namespace, which is the caller's.
        let status = try readText(at: HelperFD.procDirectory, "status")
        let creds = try Credentials(status: status)
        try check(eci_keep_capabilities(1), "keep capabilities")
        let groups = creds.groups
        try check(groups.withUnsafeBufferPointer { eci_set_ids(creds.uid, creds.gid, $0.baseAddress, $0.count) }, "set the caller's IDs")
        try check(eci_set_capabilities(creds.effective, creds.permitted, creds.inheritable), "set the caller's capabilities")
    }

    /// What the helper found out, with the fds it acts on.
    struct Gathered {
        var policyFacts: MountCallPolicy.Facts
        var targetFD: Int32
        var targetID: eci_file_id
        var sourceFD: Int32?
    }

    static func gather(_ call: MountCallPolicy.Call) throws -> Gathered {
        let mounts = MountInfo.parse(try readText(at: HelperFD.procDirectory, "mountinfo"))
        let byID = Dictionary(mounts.map { ($0.mountID, $0) }, uniquingKeysWith: { $1 })
        let visible = mounts.map(policyMount)
        let target: String
        var followTarget = true
        var sourcePath: String?
        switch call {
        case let .umount(path, flags):
            target = path
            followTarget = flags & 8 == 0  // UMOUNT_NOFOLLOW
        case let .mount(source, path, _, flags, _):
            target = path
            let kind = MountCallPolicy.kind(ofMountFlags: flags)
            if kind == .move || kind == .bind(recursive: true) || kind == .bind(recursive: false) { sourcePath = source }
        }
        let (targetFD, targetPath, targetID) = try resolve(target, follow: followTarget)
        var facts = MountCallPolicy.Facts(
            targetPath: targetPath, targetMount: byID[Int(targetID.mount_id)].map(policyMount), targetIsMountRoot: targetID.mount_root != 0,
            visible: visible)
        var sourceFD: Int32?
        if let sourcePath {
            let (fd, path, id) = try resolve(sourcePath, follow: true)
            sourceFD = fd
            facts.sourcePath = path
            facts.sourceMount = byID[Int(id.mount_id)].map(policyMount)
            facts.sourceIsMountRoot = id.mount_root != 0
        }
        return Gathered(policyFacts: facts, targetFD: targetFD, targetID: targetID, sourceFD: sourceFD)
    }

    static func policyMount(_ entry: MountInfoEntry) -> MountCallPolicy.Mount {
        MountCallPolicy.Mount(device: entry.device, root: entry.root, mountPoint: entry.mountPoint, fsType: entry.fsType, options: entry.mountOptions)
    }

    /// Opens `path` as the caller would resolve it; returns the fd, its path relative to the
    /// caller's root, and its identity.
    static func resolve(_ path: String, follow: Bool) throws -> (Int32, String, eci_file_id) {
        guard !path.isEmpty else { throw Failure(errno: ENOENT, reason: "empty path") }
        let fd = open(path, Int32(ECI_O_PATH) | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw Failure(errno: errno, reason: "\(path): \(errnoDescription(errno))") }
        var id = eci_file_id()
        let rc = eci_statx_id(fd, "", 1, &id)
        guard rc == 0 else { throw Failure(errno: -rc, reason: "statx \(path): \(errnoDescription(-rc))") }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(vmProc, "self/fd/\(fd)", &buffer, Int(PATH_MAX))
        guard n > 0 else { throw Failure(errno: EINVAL, reason: "cannot name \(path): \(errnoDescription(errno))") }
        let resolved = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Outside the caller's root (a path the kernel can only name from elsewhere) or deleted:
        // nothing the policy can place, so nothing is done.
        guard resolved.hasPrefix("/"), !resolved.hasSuffix(" (deleted)") else {
            throw Failure(errno: EPERM, reason: "\(path) resolves outside the caller's root (\(resolved))")
        }
        return (fd, resolved, id)
    }

    /// Performs the approved call on the checked objects.
    static func act(_ call: MountCallPolicy.Call, _ gathered: Gathered) throws {
        let path = gathered.policyFacts.targetPath
        // The target's parent stays open; its last component is looked up once more, without
        // following a symlink, and must still be what was checked.
        let parentPath = path == "/" ? "/" : String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let name = path == "/" ? "/" : String(path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...])
        let parent = open(parentPath.isEmpty ? "/" : parentPath, Int32(ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw Failure(errno: errno, reason: "open \(parentPath): \(errnoDescription(errno))") }
        var again = eci_file_id()
        try check(eci_statx_id(parent, name, 0, &again), "statx \(path)")
        guard again.mount_id == gathered.targetID.mount_id, again.ino == gathered.targetID.ino,
            again.dev_major == gathered.targetID.dev_major, again.dev_minor == gathered.targetID.dev_minor
        else { throw Failure(errno: EAGAIN, reason: "\(path) changed while it was checked") }
        // The checked fd pins the target mount: an unmount would find it busy.
        close(gathered.targetFD)
        guard fchdir(parent) == 0 else { throw Failure(errno: EINVAL, reason: "chdir \(parentPath): \(errnoDescription(errno))") }
        switch call {
        case let .umount(_, flags):
            guard umount2(name, Int32(truncatingIfNeeded: flags) | 8) == 0 else { throw Failure(errno: errno, reason: "umount2: \(errnoDescription(errno))") }
        case let .mount(source, _, fsType, flags, data):
            switch MountCallPolicy.kind(ofMountFlags: flags) {
            case let .bind(recursive):
                guard let fd = gathered.sourceFD else { throw Failure(errno: EINVAL, reason: "bind without a source") }
                try check(eci_bind_fd_at(fd, recursive ? 1 : 0, parent, name), "bind")
            case .move:
                guard let fd = gathered.sourceFD else { throw Failure(errno: EINVAL, reason: "move without a source") }
                try check(eci_move_fd_at(fd, parent, name), "move")
            case .remount, .propagation, .new:
                var data = data
                if case .remount(bind: false) = MountCallPolicy.kind(ofMountFlags: flags), let given = data {
                    data = MountCallPolicy.translatingIDOptions(given, uids: uidMap, gids: gidMap)
                }
                let rc: Int32 = withOptionalCString(source) { s in
                    withOptionalCString(fsType) { t in
                        withOptionalCString(data) { d in Glibc.mount(s, name, t, UInt(truncatingIfNeeded: flags), d) }
                    }
                }
                guard rc == 0 else { throw Failure(errno: errno, reason: "mount: \(errnoDescription(errno))") }
            }
        }
    }

    static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }

    static func check(_ rc: Int32, _ what: String) throws {
        guard rc >= 0 else { throw Failure(errno: -rc, reason: "\(what): \(errnoDescription(-rc))") }
    }

    static func readText(at dirfd: Int32, _ name: String) throws -> String {
        let fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: ESRCH, reason: "the caller went away (\(name): \(errnoDescription(errno)))") }
        defer { close(fd) }
        return String(decoding: try readAll(fd), as: UTF8.self)
    }

    static func readAll(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure(errno: EIO, reason: "read: \(errnoDescription(errno))") }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
            guard out.count <= 16 << 20 else { throw Failure(errno: E2BIG, reason: "input too large") }
        }
    }
}

/// The caller's IDs and capabilities, from /proc/TID/status.
struct Credentials: Equatable {
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]
    var effective: UInt64
    var permitted: UInt64
    var inheritable: UInt64

    init(status: String) throws {
        var fields: [String: [Substring]] = [:]
        for line in status.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
        }
        func id(_ key: String) throws -> UInt32 {
            // The effective ID (second column) is what permission checks use.
            guard let values = fields[key], values.count >= 2, let v = UInt32(values[1]) else {
                throw MountHelper.Failure(errno: EINVAL, reason: "status: no \(key)")
            }
            return v
        }
        func caps(_ key: String) throws -> UInt64 {
            guard let v = fields[key]?.first.flatMap({ UInt64($0, radix: 16) }) else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no \(key)") }
            return v
        }
        uid = try id("Uid")
        gid = try id("Gid")
        groups = (fields["Groups"] ?? []).compactMap { UInt32($0) }
        effective = try caps("CapEff")
        permitted = try caps("CapPrm")
        inheritable = try caps("CapInh")
    }
}

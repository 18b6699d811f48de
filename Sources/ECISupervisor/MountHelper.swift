import CSeccomp
import ECICore
import ECIPolicy
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// `ecid mount-helper`: performs vetted calls as their callers would, from a long-lived,
/// single-threaded process (joining a user namespace requires one; ecid itself is threaded).
/// ecid starts one per (container, mount namespace, user namespace) on the first call from
/// there and keeps it while the notify fd it was started for is open (`HelperPool`).
///
/// At start (once): it reads the caller's ID maps as the VM sees them, enters the caller's
/// mount namespace, then its user namespace, and becomes that namespace's root with every
/// capability there, with SECBIT_NO_SETUID_FIXUP so that uid changes keep them.
///
/// Per call: it chroots to the caller's root and changes to its cwd (both fds from ecid),
/// takes the caller's IDs, groups and effective capabilities (read from /proc/TID/status, in
/// its namespace) undoably, resolves the call's paths once to file descriptors, gathers the
/// facts the policy needs (which mount each path is in, from the mounts its root reaches), asks
/// `MountCallPolicy`, and performs an approved call on exactly what it checked: the target's
/// parent stays open and only its last component is named (no symlink followed), binds and
/// moves go from the checked source fd (`open_tree`, `move_mount`), a fresh procfs or sysfs
/// gets its masks before it is attached. Then it restores its own credentials and verifies
/// them (it exits when they differ). ecid serializes calls per container, so no other mount
/// can change what was checked meanwhile.
public enum MountHelper {
    /// The socket to ecid (SOCK_SEQPACKET), the only fd the helper starts with besides 0-2.
    static let socket: Int32 = 3
    /// The largest first message: the container's initial mounts, JSON.
    static let maximumInitialMessage = 4 << 20

    /// Serves until ecid closes the socket; the exit status is 0 then.
    public static func main() -> Int32 {
        guard eci_helper_harden() == 0 else { return 1 }
        let initial: MountCallPolicy.InitialMounts
        do {
            initial = try start()
            guard send(HelperResponse(errno: 0, reason: nil)) else { return 1 }
        } catch let failure as Failure {
            _ = send(HelperResponse(errno: failure.errno, reason: failure.reason))
            return 1
        } catch {
            _ = send(HelperResponse(errno: EINVAL, reason: "helper: \(error)"))
            return 1
        }
        guard let answerRecord else { return 1 }
        var buffer = [UInt8](repeating: 0, count: HelperWire.maximumCall + 1)
        while true {
            let (n, received) = FDMessage.receive(socket, into: &buffer, maxFDs: Int(ECI_MAX_PASSED_FDS))
            if n == 0 { return 0 }
            if n < 0 {
                received.forEach { close($0) }
                if n == -Int(EINTR) { continue }
                return 1
            }
            let message = Array(buffer[0..<n])
            guard let request = HelperWire.decodeRequest(message) else {
                received.forEach { close($0) }
                guard send(HelperResponse(errno: EINVAL, reason: "malformed request (\(message.count) bytes)")) else { return 1 }
                continue
            }
            // Recorded before anything is done and after everything is, so that an ecid that
            // was killed meanwhile is succeeded by one that knows what became of the call.
            eci_answer_begin(answerRecord, request.slot, request.id)
            let response = serve(request.call, id: request.id, fds: received, initial: initial)
            eci_answer_end(answerRecord, response.errno)
            guard send(response) else { return 1 }
        }
    }

    static func send(_ response: HelperResponse) -> Bool {
        let bytes = HelperWire.encode(response)
        return bytes.withUnsafeBytes { eci_send_with_fds(socket, $0.baseAddress, $0.count, nil, 0) } == 0
    }

    struct Failure: Error {
        let errno: Int32
        let reason: String
    }

    /// This helper's answer record (`AnswerFiles`), mapped from the file ecid handed over; the
    /// file stays open and locked for the helper's life.
    nonisolated(unsafe) static var answerRecord: UnsafeMutablePointer<eci_answer_record>?
    /// The VM's /proc, opened before leaving the VM's mount namespace: `self/fd/N` names what
    /// an fd resolved to, relative to the root this process then has (the caller's).
    nonisolated(unsafe) static var vmProc: Int32 = -1
    /// The caller's mount namespace, kept for returning to it after a fresh mount's masks.
    nonisolated(unsafe) static var mountNamespace: Int32 = -1
    /// Where fresh procfs and sysfs mounts are built (`eci_staging_namespace`).
    nonisolated(unsafe) static var stagingNamespace: Int32 = -1
    /// The root of the caller's mount namespace, where the helper's root and cwd return after
    /// every call: left in the caller's chroot or at a target's parent, they would keep the
    /// caller's own mounts busy (a later umount of its chroot's mount: EBUSY).
    nonisolated(unsafe) static var namespaceRoot: Int32 = -1
    /// Its identity: a caller whose root it is needs no chroot.
    nonisolated(unsafe) static var namespaceRootID = eci_file_id()
    nonisolated(unsafe) static var uidMap: [MountCallPolicy.IDMapping] = []
    nonisolated(unsafe) static var gidMap: [MountCallPolicy.IDMapping] = []
    /// Every capability the helper holds in the caller's user namespace: what it returns to.
    nonisolated(unsafe) static var permitted: UInt64 = 0
    /// Parsed mount tables, re-read when the kernel reports a change or a call's names disagree.
    nonisolated(unsafe) static var mountTables = MountTableCache()

    /// The first message: the initial mounts, with the mount namespace, user namespace and
    /// /proc/TID directory of the caller the helper was started for. Enters the namespaces.
    static func start() throws -> MountCallPolicy.InitialMounts {
        var buffer = [UInt8](repeating: 0, count: maximumInitialMessage)
        let (n, fds) = FDMessage.receive(socket, into: &buffer, maxFDs: 5)
        guard n > 0, fds.count == 4 else {
            fds.forEach { close($0) }
            throw Failure(errno: EINVAL, reason: "no start message (\(n) bytes, \(fds.count) fds)")
        }
        let initial = try JSONDecoder().decode(MountCallPolicy.InitialMounts.self, from: Data(buffer[0..<n]))
        let (mnt, user, procDirectory, answers) = (fds[0], fds[1], fds[2], fds[3])
        // Locked for this process's life: the next ecid takes the lock only once it is gone.
        // A lock already taken means that ecid has given up on this helper: it must not serve.
        guard flock(answers, LOCK_EX | LOCK_NB) == 0 else { throw Failure(errno: EBUSY, reason: "the answer record is locked") }
        do {
            answerRecord = try SharedMapping(fd: answers, size: MemoryLayout<eci_answer_record>.size).address.assumingMemoryBound(to: eci_answer_record.self)
        } catch {
            throw Failure(errno: EINVAL, reason: "map the answer record: \(error)")
        }
        vmProc = open("/proc", Int32(ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard vmProc >= 0 else { throw Failure(errno: EINVAL, reason: "open /proc: \(errnoDescription(errno))") }
        // The caller's ID maps as the VM sees them (read from the VM's user namespace, so the
        // outside column is in the VM's IDs even for a nested namespace).
        uidMap = MountCallPolicy.IDMapping.parse(try readText(at: procDirectory, "uid_map"))
        gidMap = MountCallPolicy.IDMapping.parse(try readText(at: procDirectory, "gid_map"))
        // Made now, while the helper is still in ecid's mount namespace: from the caller's, whose
        // mounts may be locked (eci-init), the kernel refuses a fresh procfs or sysfs.
        stagingNamespace = eci_staging_namespace(user)
        guard stagingNamespace >= 0 else { throw Failure(errno: -stagingNamespace, reason: "make the staging mount namespace: \(errnoDescription(-stagingNamespace))") }
        try check(eci_setns(mnt, Int32(ECI_CLONE_NEWNS)), "setns mnt")
        namespaceRoot = open("/", Int32(ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard namespaceRoot >= 0 else { throw Failure(errno: EINVAL, reason: "open the namespace's root: \(errnoDescription(errno))") }
        let statted = eci_statx_id(namespaceRoot, "", 1, &namespaceRootID)
        guard statted == 0 else { throw Failure(errno: -statted, reason: "statx of the namespace's root: \(errnoDescription(-statted))") }
        mountTables.keptRoot = namespaceRootID
        try check(eci_drop_groups(), "drop supplementary groups")
        try check(eci_setns(user, Int32(ECI_CLONE_NEWUSER)), "setns user")
        close(user)
        close(procDirectory)
        mountNamespace = mnt
        try check(eci_helper_base(&permitted), "become root of the caller's user namespace")
        return initial
    }

    /// One call (notification `id`): the fds are the caller's root, cwd, /proc/TID, the notify
    /// fd the call came on (and the caller's pid and net namespaces for a fresh procfs or
    /// sysfs); all are closed before returning.
    static func serve(_ call: MountCallPolicy.Call, id: UInt64, fds: [Int32], initial: MountCallPolicy.InitialMounts) -> HelperResponse {
        defer { fds.forEach { close($0) } }
        let emulatedCount = EmulatedFile.allCases.count
        guard fds.count == 4 || fds.count == 6 || fds.count == 6 + emulatedCount else {
            return HelperResponse(errno: EINVAL, reason: "malformed request (\(fds.count) fds)")
        }
        let context = CallContext(
            root: fds[0], cwd: fds[1], procDirectory: fds[2], notify: fds[3], pidNamespace: fds.count >= 6 ? fds[4] : -1, netNamespace: fds.count >= 6 ? fds[5] : -1,
            emulated: fds.count == 6 + emulatedCount ? Array(fds[6...]) : [])
        var rootID = eci_file_id()
        let statted = eci_statx_id(context.root, "", 1, &rootID)
        guard statted == 0 else { return HelperResponse(errno: -statted, reason: "statx of the caller's root: \(errnoDescription(-statted))") }
        // Most callers' root is their mount namespace's, which is this process's between calls:
        // only a chrooted caller costs a chroot there and back.
        let chrooted = !rootID.isSameObject(as: namespaceRootID)
        // pivot_root moves the root of every task whose root was the old one (chroot_fs_refs),
        // this helper's included: it goes back to `namespaceRoot` whatever its root became, so
        // that between calls its root is always the one `namespaceRootID` names (the mount
        // table it keeps is rendered from there).
        var pivots = false
        if case .pivotRoot = call { pivots = true }
        var assumed = false
        // Runs after the credentials are back (defers run last-declared first).
        defer {
            if fchdir(namespaceRoot) != 0 || ((chrooted || pivots) && chroot(".") != 0) { exit(3) }
        }
        defer {
            // A helper that cannot become itself again must not serve another call.
            if assumed, eci_helper_restore(permitted) != 0 { exit(3) }
        }
        do {
            // Read as the namespace's root: /proc renders IDs in the reader's user namespace,
            // which is the caller's.
            let creds = try Credentials(status: try readBytes(at: context.procDirectory, "status"))
            // /proc/TID follows the thread ID, not the task: a thread that execs takes its
            // leader's ID once the leader is dead, so a status read after that is another
            // program's (an attack round exec'd a setuid-root program from a second thread
            // while the leader's mount waited, and the mount was performed as root). The
            // leader dies out of its call first: if the call is still pending after the read,
            // the read was the caller's.
            guard eci_notif_id_valid(context.notify, id) == 0 else { throw Failure(errno: ESRCH, reason: "the caller went away before its credentials were read") }
            if chrooted {
                guard fchdir(context.root) == 0, chroot(".") == 0 else { throw Failure(errno: EINVAL, reason: "chroot to the caller's root: \(errnoDescription(errno))") }
            }
            guard fchdir(context.cwd) == 0 else { throw Failure(errno: EINVAL, reason: "chdir to the caller's cwd: \(errnoDescription(errno))") }
            assumed = true
            let rc = creds.groups.withUnsafeBufferPointer { eci_helper_assume(creds.uid, creds.gid, creds.fsuid, creds.fsgid, $0.baseAddress, $0.count, creds.effective, permitted) }
            try check(rc, "take the caller's credentials")
            // The caller's mount table, kept between calls until the kernel reports a change, and
            // read again when the call's names disagree with it. The helper's own mountinfo, from
            // the root it now stands at (the caller's, from ecid's fd): never the caller's
            // /proc/TID/mountinfo, rendered from whatever root the caller's threads have set
            // when it is opened (`MountTableCache`).
            let table = { (refresh: Bool) in try mountTables.rows(root: rootID, refresh: refresh) }
            let gathered = try gather(call, table: table, protected: { initial.protected.contains($0.key) })
            defer { gathered.close() }
            switch MountCallPolicy.decide(call, initial: initial, facts: gathered.policyFacts) {
            case let .deny(errno, reason): return HelperResponse(errno: errno, reason: reason)
            case .perform:
                try act(call, gathered, context: context, creds: creds, initial: initial)
                return HelperResponse(errno: 0, reason: nil)
            }
        } catch let failure as Failure {
            return HelperResponse(errno: failure.errno, reason: failure.reason)
        } catch {
            return HelperResponse(errno: EINVAL, reason: "\(error)")
        }
    }

    /// The caller's fds for one call.
    struct CallContext {
        var root: Int32
        var cwd: Int32
        var procDirectory: Int32
        /// The notify fd the call came on, for NOTIF_ID_VALID.
        var notify: Int32
        var pidNamespace: Int32
        var netNamespace: Int32
        /// For a fresh procfs of a container with emulated files: ecid's detached clones of them,
        /// in `EmulatedFile.allCases` order.
        var emulated: [Int32]
    }

    /// What the helper found out, with the fds it acts on.
    /// A class: its fds are closed once, whichever path the call takes.
    final class Gathered {
        let policyFacts: MountCallPolicy.Facts
        private(set) var targetFD: Int32
        let targetID: eci_file_id
        private(set) var sourceFD: Int32?
        /// An overlay's checked layer directories, in the order `MountCallPolicy.overlayLayers`
        /// lists them: the kernel is given these, never the caller's strings again.
        private(set) var layerFDs: [Int32]

        init(policyFacts: MountCallPolicy.Facts, targetFD: Int32, targetID: eci_file_id, sourceFD: Int32?, layerFDs: [Int32] = []) {
            self.policyFacts = policyFacts
            self.targetFD = targetFD
            self.targetID = targetID
            self.sourceFD = sourceFD
            self.layerFDs = layerFDs
        }

        func closeTarget() {
            if targetFD >= 0 { Glibc.close(targetFD) }
            targetFD = -1
        }

        func close() {
            closeTarget()
            if let sourceFD { Glibc.close(sourceFD) }
            sourceFD = nil
            layerFDs.forEach { Glibc.close($0) }
            layerFDs = []
        }
    }

    /// `table(refresh)`: the caller's mount table (kept, or read again). It is taken after the
    /// paths are resolved and read again, with the paths' names, until both describe one layout
    /// (`MountTable.consistent`: a directory renamed, before or during the call, moves mounts and
    /// names) and every mount the call names is in it (one mounted meanwhile, by propagation);
    /// a caller whose directories keep moving gets EAGAIN.
    /// `protected(mount)`: one of the container's initial protected mounts (by identity).
    static func gather(_ call: MountCallPolicy.Call, table: (Bool) throws -> [MountTable.Row], protected: (MountCallPolicy.Mount) -> Bool = { _ in false }) throws -> Gathered {
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
        case let .pivotRoot(newRoot, putOld):
            target = newRoot
            sourcePath = putOld
        }
        let (targetFD, resolvedTarget, targetID) = try resolve(target, follow: followTarget)
        var sourceResolved: (Int32, String, eci_file_id)?
        if let sourcePath {
            do {
                sourceResolved = try resolve(sourcePath, follow: true)
            } catch {
                close(targetFD)
                throw error
            }
        }
        // An overlay's layers, resolved as the caller would (from its cwd and root) and checked
        // like a bind's source; a layer that does not resolve is the kernel's error.
        var layers: [(String, eci_file_id)] = []
        var layerFDs: [Int32] = []
        if case let .mount(_, _, fsType, flags, data) = call, fsType == "overlay", MountCallPolicy.kind(ofMountFlags: flags) == .new {
            for layer in MountCallPolicy.overlayLayers(data) {
                do {
                    let (fd, path, id) = try resolve(layer, follow: true)
                    layerFDs.append(fd)
                    layers.append((path, id))
                } catch {
                    close(targetFD)
                    if let sourceResolved { close(sourceResolved.0) }
                    layerFDs.forEach { close($0) }
                    throw error
                }
            }
        }
        var rows: [MountTable.Row] = []
        // A fresh procfs or sysfs may replace a whole one whose mount is in no peer group
        // (`MountCallPolicy.freshReplacesWhole`), and a propagation change makes no mount event
        // that would tell a kept table it is stale: read for this call.
        let readAfresh = call.isFreshMaskedMount
        var targetPath = resolvedTarget
        // What the policy's revealing checks read about each object's mount (`Anchor`).
        var targetAnchor = Anchor.none
        var sourceAnchor = Anchor.none
        switch call {
        case .umount, .pivotRoot: targetAnchor = .parent
        case let .mount(_, _, _, flags, _):
            switch MountCallPolicy.kind(ofMountFlags: flags) {
            case .move: sourceAnchor = .parent
            case .bind(recursive: false): sourceAnchor = .children
            default: break
            }
        }
        do {
            var objects: [(fd: Int32, id: eci_file_id, name: String, given: String, anchor: Anchor)] = [(targetFD, targetID, resolvedTarget, target, targetAnchor)]
            if let (fd, name, id) = sourceResolved { objects.append((fd, id, name, sourcePath ?? "", sourceAnchor)) }
            // A layer shows its file system below whatever is mounted on it, as a bind without
            // submounts does.
            for (fd, (name, id)) in zip(layerFDs, layers) { objects.append((fd, id, name, name, .children)) }
            for attempt in 1...8 {
                if attempt > 1 {
                    for i in objects.indices { objects[i].name = try currentName(objects[i].fd, objects[i].id, for: objects[i].given) }
                }
                rows = try table(attempt > 1 || readAfresh)
                let named = objects.map { (path: $0.name, mountID: Int($0.id.mount_id), isMountRoot: $0.id.mount_root != 0) }
                let listed = Set(rows.map(\.mountID))
                if MountTable.consistent(rows, objects: named), named.allSatisfy({ listed.contains($0.mountID) }) {
                    let byID = Dictionary(rows.map { ($0.mountID, $0) }, uniquingKeysWith: { _, last in last })
                    if objects.allSatisfy({ anchored($0.id, name: $0.name, $0.anchor, rows: rows, byID: byID, protected: protected) }) { break }
                    guard attempt < 8 else {
                        throw Failure(errno: EAGAIN, reason: "the caller's mount table and its tree kept disagreeing while the call was checked")
                    }
                    continue
                }
                if attempt == 8 {
                    // Still missing after all: the policy refuses a mount it cannot place.
                    guard MountTable.consistent(rows, objects: named) else {
                        throw Failure(errno: EAGAIN, reason: "the caller's directories kept moving while the call was checked")
                    }
                }
            }
            targetPath = objects[0].name
            if sourceResolved != nil { sourceResolved?.1 = objects[1].name }
            let layerStart = sourceResolved == nil ? 1 : 2
            for i in layers.indices { layers[i].0 = objects[layerStart + i].name }
        } catch {
            close(targetFD)
            if let sourceResolved { close(sourceResolved.0) }
            layerFDs.forEach { close($0) }
            throw error
        }
        let visible = rows.map(\.mount)
        func byID(_ id: Int) -> MountCallPolicy.Mount? { rows.last { $0.mountID == id }?.mount }
        var facts = MountCallPolicy.Facts(
            targetPath: targetPath, targetMount: byID(Int(targetID.mount_id)), targetIsMountRoot: targetID.mount_root != 0,
            visible: visible)
        facts.layers = layers.map { MountCallPolicy.Layer(path: $0.0, mount: byID(Int($0.1.mount_id))) }
        var sourceFD: Int32?
        if let (fd, path, id) = sourceResolved {
            sourceFD = fd
            facts.sourcePath = path
            facts.sourceMount = byID(Int(id.mount_id))
            facts.sourceIsMountRoot = id.mount_root != 0
        }
        return Gathered(policyFacts: facts, targetFD: targetFD, targetID: targetID, sourceFD: sourceFD, layerFDs: layerFDs)
    }

    /// Which rows besides its own mount's the policy reads about an object in a way that could
    /// reveal something, and so must be the tree as it is (`anchored`). The rest of the table
    /// may be stale after a rename only where the policy's answer hides (a cover check).
    enum Anchor {
        case none
        /// Whether the object's mount is a mask (umount, move, pivot_root): the mount it sits
        /// on, and that nothing else lies between the two.
        case parent
        /// What the object's mount hides below it (a bind without submounts): every mount on
        /// it, when it is a procfs or sysfs.
        case children
    }

    /// Whether the table's rows for `anchor` describe the tree now, confirmed from the mounts'
    /// own roots, not from names: "at or below" (`MountTable.consistent`) holds for a table that
    /// is stale or read across a rename (mountinfo comes a page per read, each at its own
    /// moment) whenever a directory was moved below its own old name. The object's mount's
    /// point must reach that mount's root from the caller's root; within a procfs or sysfs,
    /// where nothing can be renamed, a position looked up from a mount's root (RESOLVE_BENEATH)
    /// is fixed whenever it is looked up, so the object's and its masks' places relative to
    /// their file system, as the policy compares them, are the true ones.
    static func anchored(
        _ id: eci_file_id, name: String, _ anchor: Anchor, rows: [MountTable.Row], byID: [Int: MountTable.Row],
        protected: (MountCallPolicy.Mount) -> Bool
    ) -> Bool {
        guard anchor != .none, let row = byID[Int(id.mount_id)] else { return true }
        let point = row.mount.mountPoint
        switch anchor {
        case .none:
            return true
        case .parent:
            // A mount root named exactly as its point (`consistent`), and the mount its point
            // reaches now. Below it, the stack at that point down to its bottom mount, and the
            // mount that one sits on: from that mount's root the point is reached with no mount
            // crossed on the way, and no procfs or sysfs row lies between the two (the policy
            // would take it for the file system the object sits on: `MountCallPolicy.isMask`).
            guard id.mount_root != 0 else { return true }
            guard let top = mountRoot(row) else { return false }
            close(top)
            var bottom = row
            for _ in 0..<rows.count {
                guard let below = byID[bottom.parentID], below.mountID != bottom.mountID, below.mount.mountPoint == point else { break }
                bottom = below
            }
            guard let parent = byID[bottom.parentID], parent.mountID != bottom.mountID else { return true }
            let base = parent.mount.mountPoint
            guard MountCallPolicy.isAtOrBelow(point, base), point != base else { return false }
            guard let parentRoot = mountRoot(parent) else { return false }
            defer { close(parentRoot) }
            guard reaches(parentRoot, relative(point, to: base), mountID: bottom.mountID, rows: byID) else { return false }
            return !rows.contains { other in
                let at = other.mount.mountPoint
                return MountCallPolicy.needsMasks(fsType: other.mount.fsType) && at != base && at != point
                    && MountCallPolicy.isAtOrBelow(at, base) && MountCallPolicy.isAtOrBelow(point, at)
            }
        case .children:
            // On a procfs or sysfs every mount on it may be a mask; on any other file system
            // only the container's protected mounts hide something (a spec-masked /srv/s/secret:
            // its parent renamed, a kept table still had it at the old name, and an overlay or
            // a bind without submounts of the new name showed the directory it hides). There,
            // names can be renamed: each is confirmed as it is now.
            let masked = MountCallPolicy.needsMasks(fsType: row.mount.fsType)
            let watched = rows.filter { $0.parentID == row.mountID && $0.mountID != row.mountID && (masked || protected($0.mount)) }
            guard !watched.isEmpty else { return true }
            guard let root = mountRoot(row) else { return false }
            defer { close(root) }
            // The object itself, from its mount's root: its name's part below the point is its
            // place in the file system.
            let own = relative(name, to: point)
            if own == "." {
                var here = eci_file_id()
                guard eci_statx_id(root, "", 1, &here) == 0, here.isSameObject(as: id) else { return false }
            } else {
                let again = eci_open_beneath(root, own, Int32(ECI_O_PATH) | O_NOFOLLOW)
                guard again >= 0 else { return false }
                defer { close(again) }
                var here = eci_file_id()
                guard eci_statx_id(again, "", 1, &here) == 0, here.isSameObject(as: id) else { return false }
            }
            // Every such mount on it, at the place its row gives, relative to the same root.
            for child in watched {
                guard MountCallPolicy.isAtOrBelow(child.mount.mountPoint, point), child.mount.mountPoint != point else { return false }
                guard reaches(root, relative(child.mount.mountPoint, to: point), mountID: child.mountID, rows: byID) else { return false }
            }
            // Nor may a procfs or sysfs row lie between it and a mount on it: the policy would
            // count that mount's place from the wrong file system (`MountCallPolicy.isMask`).
            return !rows.contains { other in
                let at = other.mount.mountPoint
                return MountCallPolicy.needsMasks(fsType: other.mount.fsType) && at != point && MountCallPolicy.isAtOrBelow(at, point)
                    && watched.contains { $0.mount.mountPoint != at && MountCallPolicy.isAtOrBelow($0.mount.mountPoint, at) }
            }
        }
    }

    /// `path` below `point`, relative ("." for the point itself).
    static func relative(_ path: String, to point: String) -> String {
        guard path != point else { return "." }
        return String(path.dropFirst(point == "/" ? 1 : point.count + 1))
    }

    /// An fd of `row`'s mount's root, reached by its point from the caller's root without
    /// symlinks; nil unless the point is that mount's root now. The caller's root itself may lie
    /// inside its mount (a chroot): positions are then counted from there, as its names are.
    static func mountRoot(_ row: MountTable.Row) -> Int32? {
        let fd = eci_open_no_symlinks(row.mount.mountPoint, Int32(ECI_O_PATH))
        guard fd >= 0 else { return nil }
        var id = eci_file_id()
        guard eci_statx_id(fd, "", 1, &id) == 0, id.mount_root != 0 || row.mount.mountPoint == "/", Int(id.mount_id) == row.mountID else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Whether `path`, looked up beneath `root`, is the root of mount `mountID` or of a mount
    /// stacked on it at the same point (what a lookup reaches there is the topmost).
    static func reaches(_ root: Int32, _ path: String, mountID: Int, rows: [Int: MountTable.Row]) -> Bool {
        let fd = eci_open_beneath(root, path, Int32(ECI_O_PATH) | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var id = eci_file_id()
        guard eci_statx_id(fd, "", 1, &id) == 0, id.mount_root != 0, let wanted = rows[mountID] else { return false }
        var current = Int(id.mount_id)
        for _ in 0...rows.count {
            if current == mountID { return true }
            guard let row = rows[current], row.mount.mountPoint == wanted.mount.mountPoint, row.parentID != current else { return false }
            current = row.parentID
        }
        return false
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
        var handedOut = false
        defer { if !handedOut { close(fd) } }
        var id = eci_file_id()
        let rc = eci_statx_id(fd, "", 1, &id)
        guard rc == 0 else { throw Failure(errno: -rc, reason: "statx \(path): \(errnoDescription(-rc))") }
        let resolved = try currentName(fd, id, for: path)
        handedOut = true
        return (fd, resolved, id)
    }

    /// The name the object behind `fd` (identity `id`) has now, from the caller's root.
    static func currentName(_ fd: Int32, _ id: eci_file_id, for path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(vmProc, "self/fd/\(fd)", &buffer, Int(PATH_MAX))
        guard n > 0 else { throw Failure(errno: EINVAL, reason: "cannot name \(path): \(errnoDescription(errno))") }
        let resolved = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Outside the caller's root (a path the kernel can only name from elsewhere) or deleted:
        // nothing the policy can place, so nothing is done.
        guard resolved.hasPrefix("/"), !resolved.hasSuffix(" (deleted)") else {
            throw Failure(errno: EPERM, reason: "\(path) resolves outside the caller's root (\(resolved))")
        }
        // That name, looked up again from the caller's root without following any link, must
        // reach the same object. d_path names an object the root cannot reach (through a cwd left
        // outside a chroot, a /proc/PID/root or /proc/PID/cwd magic link) from its mount
        // namespace's root, and the caller's mountinfo lists no mount outside its root: such a
        // name would be judged against a table that does not hold it.
        let again = eci_open_no_symlinks(resolved, Int32(ECI_O_PATH) | O_NOFOLLOW)
        guard again >= 0 else { throw Failure(errno: EPERM, reason: "\(path) is not reachable from the caller's root as \(resolved)") }
        defer { close(again) }
        var same = eci_file_id()
        guard eci_statx_id(again, "", 1, &same) == 0, same.isSameObject(as: id) else { throw Failure(errno: EPERM, reason: "\(path) is not reachable from the caller's root as \(resolved)") }
        return resolved
    }

    /// Performs the approved call on the checked objects.
    static func act(_ call: MountCallPolicy.Call, _ gathered: Gathered, context: CallContext, creds: Credentials, initial: MountCallPolicy.InitialMounts) throws {
        let path = gathered.policyFacts.targetPath
        // The target's parent stays open; its last component is looked up once more, without
        // following a symlink, and must still be what was checked.
        let parentPath = path == "/" ? "/" : String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let name = path == "/" ? "/" : String(path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...])
        // No link followed: the checked name reaches the target without one.
        let parent = eci_open_no_symlinks(parentPath.isEmpty ? "/" : parentPath, Int32(ECI_O_PATH) | O_DIRECTORY)
        guard parent >= 0 else { throw Failure(errno: -parent, reason: "open \(parentPath): \(errnoDescription(-parent))") }
        defer { close(parent) }
        var again = eci_file_id()
        try check(eci_statx_id(parent, name, 0, &again), "statx \(path)")
        guard again.isSameObject(as: gathered.targetID) else { throw Failure(errno: EAGAIN, reason: "\(path) changed while it was checked") }
        // A directory target of mount(2) is named "." from itself (below): mount(2) follows a
        // final symlink, and the caller's threads can swap one in for the checked name between
        // the statx above and the call.
        var st = stat()
        var isUmount = false
        if case .umount = call { isUmount = true }
        let targetIsDirectory = !isUmount && fstat(gathered.targetFD, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
        let hereFD = targetIsDirectory ? dup(gathered.targetFD) : -1
        defer { if hereFD >= 0 { close(hereFD) } }
        // Any other target (a file's mount root, for a remount) is named through this process's
        // fd of it, `self/fd/N` from the VM's /proc, for the same reason.
        let pinnedFD = !isUmount ? dup(gathered.targetFD) : -1
        defer { if pinnedFD >= 0 { close(pinnedFD) } }
        // The checked fd pins the target mount: an unmount would find it busy.
        gathered.closeTarget()
        guard fchdir(parent) == 0 else { throw Failure(errno: EINVAL, reason: "chdir \(parentPath): \(errnoDescription(errno))") }
        switch call {
        case .pivotRoot:
            // From new_root itself ("."); put_old by its checked name (where the old root is
            // stacked: at worst elsewhere below new_root, which the kernel requires).
            // Both from their checked fds, as this process's magic links relative to the VM's
            // /proc: no name the caller's threads can swap is looked up again.
            guard hereFD >= 0 else { throw Failure(errno: ENOTDIR, reason: "pivot_root: \(path) is not a directory") }
            let putOldFD = gathered.sourceFD ?? hereFD
            guard fchdir(vmProc) == 0 else { throw Failure(errno: EINVAL, reason: "chdir /proc: \(errnoDescription(errno))") }
            let rc = eci_pivot_root("self/fd/\(hereFD)", "self/fd/\(putOldFD)")
            _ = fchdir(parent)
            try check(rc, "pivot_root")
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
            case .new where fsType == "overlay":
                // The kernel resolves an overlay's layer strings again at mount time: a thread
                // swapping a checked layer for a symlink to /sys would win. So the kernel gets
                // the checked fds instead, as magic links of this process relative to the VM's
                // /proc (its cwd for the call): `self/fd/N` resolves to exactly the checked
                // directory, whatever the caller's threads rename. The target likewise.
                guard hereFD >= 0 else { throw Failure(errno: ENOTDIR, reason: "overlay: \(path) is not a directory") }
                let layerPaths = gathered.layerFDs.map { "self/fd/\($0)" }
                guard let options = MountCallPolicy.overlayOptions(data, layers: layerPaths) else {
                    throw Failure(errno: EINVAL, reason: "overlay options with escapes or layers the helper cannot pin")
                }
                guard fchdir(vmProc) == 0 else { throw Failure(errno: EINVAL, reason: "chdir /proc: \(errnoDescription(errno))") }
                let rc: Int32 = withOptionalCString(source) { s in
                    options.withCString { d in Glibc.mount(s, "self/fd/\(hereFD)", "overlay", UInt(truncatingIfNeeded: flags), d) }
                }
                let saved = errno
                _ = fchdir(parent)
                guard rc == 0 else { throw Failure(errno: saved, reason: "mount overlay: \(errnoDescription(saved))") }
            case .new where MountCallPolicy.needsMasks(fsType: fsType):
                guard pinnedFD >= 0 else { throw Failure(errno: EINVAL, reason: "a fresh \(fsType ?? "") without its checked target") }
                try freshMasked(source: source, target: pinnedFD, fsType: fsType ?? "", flags: flags, data: data, context: context, creds: creds, initial: initial)
            case .remount, .propagation, .new:
                var data = data
                if case .remount(bind: false) = MountCallPolicy.kind(ofMountFlags: flags), let given = data {
                    data = MountCallPolicy.translatingIDOptions(given, uids: uidMap, gids: gidMap)
                }
                // On the checked directory itself, unless relative paths need the caller's cwd
                // (then by name from the parent, as before: a race left to a rare case).
                var on = name
                if pinnedFD >= 0, !(MountCallPolicy.kind(ofMountFlags: flags) == .new && MountCallPolicy.namesRelativePaths(source: source, data: data)) {
                    guard fchdir(vmProc) == 0 else { throw Failure(errno: EINVAL, reason: "chdir /proc: \(errnoDescription(errno))") }
                    on = "self/fd/\(pinnedFD)"
                } else if MountCallPolicy.kind(ofMountFlags: flags) == .new {
                    guard fchdir(context.cwd) == 0 else { throw Failure(errno: EINVAL, reason: "chdir to the caller's cwd: \(errnoDescription(errno))") }
                    on = path
                }
                let rc: Int32 = withOptionalCString(source) { s in
                    withOptionalCString(fsType) { t in
                        withOptionalCString(data) { d in Glibc.mount(s, on, t, UInt(truncatingIfNeeded: flags), d) }
                    }
                }
                let saved = errno
                // The helper's cwd must not pin what it just mounted on (an unmount would be EBUSY).
                _ = fchdir(parent)
                guard rc == 0 else { throw Failure(errno: saved, reason: "mount: \(errnoDescription(saved))") }
            }
        }
    }

    /// A fresh procfs or sysfs, made with the container's masks and read-only paths in a
    /// private copy of the staging namespace and attached only when complete, on exactly the
    /// checked `target` (its fd).
    static func freshMasked(
        source: String?, target: Int32, fsType: String, flags: UInt64, data: String?, context: CallContext, creds: Credentials,
        initial: MountCallPolicy.InitialMounts
    ) throws {
        guard context.pidNamespace >= 0, context.netNamespace >= 0 else { throw Failure(errno: EPERM, reason: "no namespaces for a fresh \(fsType)") }
        let (masked, readonly) = MountCallPolicy.freshMasks(fsType: fsType, initial: initial)
        let maskedC = masked.map { strdup($0) }
        let readonlyC = readonly.map { strdup($0) }
        // A procfs gets the container's emulated files too (ecid sent their clones); a sysfs none.
        let emulated = fsType == "proc" ? context.emulated : []
        let emulatedC = emulated.isEmpty ? [] : EmulatedFile.allCases.map { strdup($0.procfsName) }
        defer { (maskedC + readonlyC + emulatedC).forEach { free($0) } }
        let rc: Int32 = maskedC.map { UnsafePointer($0) }.withUnsafeBufferPointer { m in
            readonlyC.map { UnsafePointer($0) }.withUnsafeBufferPointer { r in
                emulatedC.map { UnsafePointer($0) }.withUnsafeBufferPointer { names in
                    emulated.withUnsafeBufferPointer { trees in
                        withOptionalCString(source) { s in
                            withOptionalCString(data) { d in
                                eci_fresh_masked_mount(
                                    target, s, fsType, UInt(truncatingIfNeeded: flags), d, mountNamespace, stagingNamespace, context.pidNamespace,
                                    fsType == "sysfs" ? context.netNamespace : -1, m.baseAddress, Int32(m.count), r.baseAddress, Int32(r.count),
                                    trees.baseAddress, names.baseAddress, Int32(emulated.count), creds.effective)
                            }
                        }
                    }
                }
            }
        }
        try check(rc, "fresh \(fsType) with its masks")
    }

    static func withOptionalCString<R>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let text else { return body(nil) }
        return text.withCString { body($0) }
    }

    static func check(_ rc: Int32, _ what: String) throws {
        guard rc >= 0 else { throw Failure(errno: -rc, reason: "\(what): \(errnoDescription(-rc))") }
    }

    static func readBytes(at dirfd: Int32, _ name: String) throws -> [UInt8] {
        let fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: ESRCH, reason: "the caller went away (\(name): \(errnoDescription(errno)))") }
        defer { close(fd) }
        return try readAll(fd)
    }

    static func readText(at dirfd: Int32, _ name: String) throws -> String {
        let fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: ESRCH, reason: "the caller went away (\(name): \(errnoDescription(errno)))") }
        defer { close(fd) }
        return String(decoding: try readAll(fd), as: UTF8.self)
    }

    static func readAll(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
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
    /// The file-system IDs (the fourth column), which path lookups and file creation use.
    var fsuid: UInt32
    var fsgid: UInt32
    var groups: [UInt32]
    var effective: UInt64
    var permitted: UInt64
    var inheritable: UInt64

    init(status: String) throws {
        try self.init(status: Array(status.utf8))
    }

    /// The lines used, by their key.
    private enum Line: CaseIterable {
        case uid, gid, groups, effective, permitted, inheritable
        var key: [UInt8] {
            switch self {
            case .uid: Array("Uid".utf8)
            case .gid: Array("Gid".utf8)
            case .groups: Array("Groups".utf8)
            case .effective: Array("CapEff".utf8)
            case .permitted: Array("CapPrm".utf8)
            case .inheritable: Array("CapInh".utf8)
            }
        }
        static let keys = allCases.map { ($0, $0.key) }
    }

    /// From the bytes of /proc/TID/status: only the six lines used, found by their key; the
    /// other fifty are skipped without making anything of them (the helper parses this on
    /// every call: splitting every line cost more than the kernel's rendering of the file).
    init(status bytes: [UInt8]) throws {
        var uid: UInt32?, gid: UInt32?, fsuid: UInt32?, fsgid: UInt32?, groups: [UInt32] = [], effective: UInt64?, permitted: UInt64?, inheritable: UInt64?
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let line = bytes[start..<end]
            start = end + 1
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")),
                let kind = Line.keys.first(where: { $0.1.elementsEqual(line[line.startIndex..<colon]) })?.0
            else { continue }
            let values = line[(colon + 1)...].split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
            func decimal(_ i: Int) -> UInt32? { i < values.count ? Self.number(values[i], radix: 10).flatMap { UInt32(exactly: $0) } : nil }
            switch kind {
            case .uid:
                uid = decimal(1)  // the effective ID (second column) is what capability checks use
                fsuid = decimal(3)  // and the file-system ID (fourth) what lookups use
            case .gid:
                gid = decimal(1)
                fsgid = decimal(3)
            case .groups: groups = values.compactMap { Self.number($0, radix: 10).flatMap { UInt32(exactly: $0) } }
            case .effective: effective = values.first.flatMap { Self.number($0, radix: 16) }
            case .permitted: permitted = values.first.flatMap { Self.number($0, radix: 16) }
            case .inheritable: inheritable = values.first.flatMap { Self.number($0, radix: 16) }
            }
        }
        guard let uid, let fsuid else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no Uid") }
        guard let gid, let fsgid else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no Gid") }
        guard let effective else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no CapEff") }
        guard let permitted else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no CapPrm") }
        guard let inheritable else { throw MountHelper.Failure(errno: EINVAL, reason: "status: no CapInh") }
        self.uid = uid
        self.gid = gid
        self.fsuid = fsuid
        self.fsgid = fsgid
        self.groups = groups
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
    }

    static func number(_ digits: ArraySlice<UInt8>, radix: UInt64) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        var value: UInt64 = 0
        for d in digits {
            let v: UInt64
            switch d {
            case 0x30...0x39: v = UInt64(d - 0x30)
            case 0x61...0x66 where radix == 16: v = UInt64(d - 0x61 + 10)
            case 0x41...0x46 where radix == 16: v = UInt64(d - 0x41 + 10)
            default: return nil
            }
            value = value * radix + v
        }
        return value
    }
}

extension eci_file_id {
    /// The same file in the same mount (statx's mount ID, device and inode).
    func isSameObject(as other: eci_file_id) -> Bool {
        mount_id == other.mount_id && ino == other.ino && dev_major == other.dev_major && dev_minor == other.dev_minor
    }
}

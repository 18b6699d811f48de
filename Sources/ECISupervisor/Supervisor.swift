import CSeccomp
import CShim
import ECICore
import ECIIO
import ECIOCI
import ECIPolicy
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import Synchronization

/// ecid's syscall supervisor: receives each container process's notify fd from runc (at
/// create, and at every exec), records the container's initial mounts, and answers every
/// trapped call: an errno, or the result of performing it (via `MountHelper`).
///
/// One thread per notify fd, blocked in poll(2): nothing runs while containers are idle, and
/// a slow call in one container never delays another. The thread ends when the fd hangs up
/// (every process under that filter has exited).
///
/// Restart-safe: every notify fd is also held by `FDHolder`, and every container's record is
/// on disk (`ContainerRecords`); a new ecid takes both back, answers what the old one left
/// received but unanswered, exactly where it can (`InFlightCalls.swift`), and goes on where it
/// stopped.
public final class Supervisor: Sendable {
    public struct Options: Sendable {
        /// ecid's directory (0700): the sockets, the records, the in-flight slots live in it.
        public var directory: String
        /// The executable run as `<helper> mount-helper` for each call ecid performs, and as
        /// `<helper> fd-holder` for the holder.
        public var helperPath: String
        /// How long the holder keeps the fds while no ecid is attached.
        public var holderGrace: Double
        public init(directory: String, helperPath: String, holderGrace: Double = FDHolder.defaultGrace) {
            self.directory = directory
            self.helperPath = helperPath
            self.holderGrace = holderGrace
        }
        public var socketPath: String { join(directory, "ecid.sock") }
        var inFlightDirectory: String { join(directory, "inflight") }
    }

    let options: Options
    let log: Logger
    /// A test hook (`ECI_ECID_CRASH_FOR_TEST`): ecid exits as a kill -9 would at this point of
    /// the first trapped call that reaches it, so the restart tests can hit it every time.
    let crashPoint: CrashPoint?
    enum CrashPoint: String {
        /// After the notification is received and recorded, before any helper sees it.
        case afterReceive = "after-receive"
        /// After the helper performed the call and answered, before the caller is answered.
        case afterHelper = "after-helper"
        /// As `after-helper`, 4 s later: the container's other calls (another notify fd, a
        /// `runc exec`) go on meanwhile, on the same helper.
        case afterHelperLate = "after-helper-late"
    }
    /// `after-helper-late` waits in the first call only; the others are answered meanwhile.
    let lateCrashArmed = Mutex(true)
    var launch: HelperPool.Launch {
        HelperPool.Launch(executable: options.helperPath, answerDirectory: options.inFlightDirectory, emulationStateDirectory: parentDirectory(options.directory))
    }
    let registry: Registry
    let holder: HolderClient
    /// Whether SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP took on the last fd (nil: none seen yet).
    private let lastSyncWakeUp = Mutex<Bool?>(nil)
    public var syncWakeUp: Bool? { lastSyncWakeUp.withLock { $0 } }

    public init(options: Options, log: Logger) {
        self.options = options
        self.log = log
        registry = Registry(ecidDirectory: options.directory)
        crashPoint = getenv("ECI_ECID_CRASH_FOR_TEST").flatMap { CrashPoint(rawValue: String(cString: $0)) }
        holder = HolderClient(directory: options.directory, executable: options.helperPath, grace: options.holderGrace, log: log)
    }

    /// Takes back what a previous ecid left (records, the holder's fds), binds the socket
    /// (replacing a stale one) and serves until the process ends.
    public func serve() throws {
        // ECI's state directory must stay searchable by containers (eci-runc stages their
        // roots below it): made 0711 if ecid is first; ecid's own directory is 0700.
        try FileSystem.makeDirectories(parentDirectory(options.directory), mode: 0o711)
        try FileSystem.makeDirectories(options.directory, mode: 0o700)
        guard chmod(options.directory, 0o700) == 0 else { throw ECIError.system("chmod \(options.directory)", errno: errno) }
        let heldEmulation = try restore()
        // The emulated /proc files before any container can be created: eci-runc binds them.
        try startEmulation(adopting: heldEmulation)
        // Listening only now: a container created before its predecessors are re-attached
        // would wait for nothing, but one refused (no socket yet) is retried by its engine.
        let socket = try UnixSocket.listen(at: options.socketPath, mode: 0o600, group: nil)
        log.info("listening", metadata: ["socket": "\(options.socketPath)"])
        // Under systemd (Type=notify) the engine's units start only now: ecid listens, and its
        // predecessor's containers are re-attached.
        let notified = eci_sd_notify("READY=1")
        if notified < 0 { log.warning("cannot tell systemd ecid is ready", metadata: ["error": "\(errnoDescription(-notified))"]) }
        while true {
            guard let connection = try socket.accept() else { continue }
            // The hand-over is one short message; a thread keeps a stuck peer from blocking accept.
            try DetachedThread.start { [self] in
                defer { connection.close() }
                do {
                    try receive(on: connection)
                } catch {
                    log.error("hand-over failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The records a previous ecid saved, the fds the holder kept for it (re-attached, their
    /// orphaned notifications answered first), then reconciliation: a record with no fd whose
    /// container is gone is removed, an fd with no record is dropped (fail closed: ENOSYS).
    /// Returns the emulation file system's connection when the holder kept it.
    func restore() throws -> Int32? {
        for record in registry.records.loadAll() { registry.restore(record) }
        var held = try holder.start()
        let emulation = held.first { $0.key == EmulationHost.holderKey }?.fd
        held.removeAll { $0.key == EmulationHost.holderKey }
        // The previous ecid's helpers: gone once their answer records can be locked (they
        // exit when they find ecid's end of their socket closed, after the call in hand).
        let previous = AnswerFiles.collect(directory: options.inFlightDirectory, within: Double(HelperPool.timeout))
        var slots: Set<String> = []
        for (key, fd) in held {
            guard let slash = key.lastIndex(of: "/") else {
                close(fd)
                continue
            }
            let id = String(key[..<slash])
            let slotName = String(key[key.index(after: slash)...])
            guard let container = registry.reattach(id) else {
                log.error("notify fd without a record: dropped (its calls now fail with ENOSYS)", metadata: ["container": "\(id)"])
                holder.drop(key)
                close(fd)
                continue
            }
            do {
                let slot = try InFlightSlot(directory: options.inFlightDirectory, slot: slotName)
                answerOrphans(fd, slot: slot, container: container, previous: previous)
                slots.insert(slotName)
                try startSupervising(fd, key: key, slot: slot, container: container)
                log.info("re-attached", metadata: ["container": "\(id)", "key": "\(key)"])
            } catch {
                log.error("re-attach failed: fd dropped", metadata: ["container": "\(id)", "error": "\(error)"])
                holder.drop(key)
                close(fd)
                registry.detach(container)
            }
        }
        for id in registry.reconcile() { log.info("reconciled away: no notify fd, container gone", metadata: ["container": "\(id)"]) }
        // Slots of fds that are gone (answer records are the live helpers' now).
        for name in (try? FileSystem.listDirectory(options.inFlightDirectory)) ?? [] where !slots.contains(name) && !name.hasPrefix(AnswerFiles.prefix) {
            unlink(join(options.inFlightDirectory, name))
        }
        return emulation
    }

    /// Notifications the previous ecid received and never answered: still "sent" in the
    /// kernel, given to no one else, so their callers would wait forever. This ecid has
    /// received nothing yet on `fd`; the previous one handled one notification at a time, so
    /// the one left is the last it recorded, and it gets its exact answer:
    /// - its helper finished it: the result the helper recorded;
    /// - no helper started it (and none of the container's is still alive): performed now;
    /// - a helper started it and died in it: EINTR, since whether it took effect is unknown.
    /// IDs after the recorded one that are still valid were received but never recorded (a
    /// kill in between): EINTR too, their arguments being lost.
    func answerOrphans(_ fd: Int32, slot: InFlightSlot, container: Registry.Container, previous: AnswerFiles.Previous) {
        let (last, notification) = slot.lastNotification
        guard last != 0 else { return }
        if eci_notif_id_valid(fd, last) == 0 {
            let call = AnswerFiles.Previous.Call(slot: slot.token, id: last)
            let (val, error): (Int64, Int32)
            let how: String
            if let stored = slot.result(for: last) {
                (val, error) = (0, stored == 0 ? 0 : -stored)
                how = "the result its helper recorded"
            } else if let recorded = previous.finished[call] {
                (val, error) = (0, recorded == 0 ? 0 : -recorded)
                how = "the result its helper recorded"
            } else if previous.unfinished.contains(call) {
                (val, error) = (0, -EINTR)
                how = "EINTR: its helper did not finish it"
            } else if previous.unsettled.contains(container.id) {
                (val, error) = (0, -EINTR)
                how = "EINTR: a helper of the previous ecid did not exit in time"
            } else if let notification {
                (val, error) = answer(notification, fd: fd, container: container, slot: slot)
                how = "performed now: no helper had started it"
            } else {
                (val, error) = (0, -EINTR)
                how = "EINTR: its arguments were not recorded"
            }
            let sent = eci_notif_send(fd, last, val, error)
            log.notice("answered a call left unanswered by the previous ecid", metadata: [
                "container": "\(container.id)", "id": "\(last)", "answer": "\(error == 0 ? "0" : errnoDescription(-error))", "how": "\(how)",
                "sent": "\(sent == 0 ? "ok" : errnoDescription(-sent))",
            ])
        }
        var id = last &+ 1
        for _ in 0..<256 {
            if eci_notif_id_valid(fd, id) == 0 {
                let sent = eci_notif_send(fd, id, 0, -EINTR)
                log.notice("answered a call left unanswered and unrecorded by the previous ecid with EINTR", metadata: [
                    "container": "\(container.id)", "id": "\(id)", "sent": "\(sent == 0 ? "ok" : errnoDescription(-sent))",
                ])
            }
            id &+= 1
        }
    }

    /// runc's message: the container process state as JSON, the notify fd in SCM_RIGHTS.
    func receive(on connection: UnixSocket) throws {
        connection.setReceiveTimeout(10)
        var bytes: [UInt8] = []
        var fds: [Int32] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while bytes.count < 1 << 20 {
            let (n, received) = FDMessage.receive(connection.descriptor, into: &buffer, maxFDs: 4)
            fds += received
            guard n > 0 else {
                if n < 0 { fds.forEach { close($0) }; throw ECIError.system("recvmsg", errno: Int32(-n)) }
                break
            }
            bytes += buffer[0..<n]
            // runc 1.1 keeps the connection open until it exits (runc 1.3 closes it): the
            // message ends where its JSON does, not at EOF.
            if (try? JSONValue.parse(bytes)) != nil { break }
        }
        // `eci-agent check-ecid` connects and closes: a liveness probe, not a failed hand-over.
        guard !bytes.isEmpty || !fds.isEmpty else {
            log.debug("a connection closed without a hand-over (a liveness probe)")
            return
        }
        let message: HandOver
        do {
            message = try HandOver(json: bytes)
        } catch {
            fds.forEach { close($0) }
            throw error
        }
        log.debug("hand-over", metadata: ["json": "\(String(decoding: bytes, as: UTF8.self))"])
        guard let index = message.fds.firstIndex(of: "seccompFd"), index < fds.count else {
            fds.forEach { close($0) }
            throw ECIError(.invalidArgument, "runc's message carries no seccompFd (fds \(message.fds), \(fds.count) received)")
        }
        for (i, fd) in fds.enumerated() where i != index { close(fd) }
        let notifyFD = fds[index]
        let container: Registry.Container
        do {
            container = try registry.attach(message, log: log)
        } catch {
            close(notifyFD)
            throw error
        }
        let rc = eci_notif_set_sync_wakeup(notifyFD)
        lastSyncWakeUp.withLock { $0 = rc == 0 }
        // A slot name no other fd ever had: the holder's key must not collide across restarts.
        let slotName = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        let key = "\(message.key)/\(slotName)"
        do {
            let slot = try InFlightSlot(directory: options.inFlightDirectory, slot: slotName)
            // Deposited before the first notification is received: from here on a crash of
            // ecid loses nothing.
            holder.deposit(key, fd: notifyFD)
            try startSupervising(notifyFD, key: key, slot: slot, container: container)
        } catch {
            holder.drop(key)
            close(notifyFD)
            registry.detach(container)
            throw error
        }
        log.info("supervising", metadata: [
            "container": "\(message.key)", "pid": "\(message.pid)", "status": "\(message.status)",
            "sync-wake-up": "\(rc == 0 ? "on" : errnoDescription(-rc))",
        ])
    }

    /// The thread of one notify fd; when the fd hangs up, the holder's copy, the slot and (with
    /// the container's last fd) its record go.
    func startSupervising(_ fd: Int32, key: String, slot: InFlightSlot, container: Registry.Container) throws {
        try DetachedThread.start(stackSize: 256 * 1024) { [self] in
            supervise(fd, container: container, slot: slot)
            holder.drop(key)
            slot.remove()
            close(fd)
            registry.detach(container)
            log.debug("notify fd closed", metadata: ["container": "\(container.id)"])
        }
    }

    /// The loop of one notify fd.
    func supervise(_ fd: Int32, container: Registry.Container, slot: InFlightSlot) {
        while true {
            let ready = eci_wait_readable(fd)
            guard ready > 0 else { return }
            var notif = eci_notif()
            let rc = eci_notif_recv(fd, &notif)
            if rc == -ENOENT || rc == -EINTR { continue }  // the caller left before we looked
            guard rc == 0 else {
                log.error("NOTIF_RECV failed", metadata: ["error": "\(errnoDescription(-rc))"])
                return
            }
            slot.record(notif)
            if crashPoint == .afterReceive { _exit(99) }
            let (val, error) = answer(notif, fd: fd, container: container, slot: slot)
            let sent = eci_notif_send(fd, notif.id, val, error)
            if sent != 0 && sent != -ENOENT {
                log.error("NOTIF_SEND failed", metadata: ["error": "\(errnoDescription(-sent))"])
            }
        }
    }

    /// (return value, -errno) for one notification. Every read of the caller's memory or /proc
    /// is followed by NOTIF_ID_VALID before its result is used: only then is it the caller's.
    func answer(_ notif: eci_notif, fd: Int32, container: Registry.Container, slot: InFlightSlot) -> (Int64, Int32) {
        let args = [notif.args.0, notif.args.1, notif.args.2, notif.args.3, notif.args.4, notif.args.5]
        guard let kind = TrappedCall(arch: notif.arch, nr: notif.nr) else {
            log.info("unexpected call", metadata: ["container": "\(container.id)", "arch": "\(String(notif.arch, radix: 16))", "nr": "\(notif.nr)"])
            return (0, -ENOSYS)
        }
        let narrow = TrappedCall.is32Bit(arch: notif.arch, nr: notif.nr)
        let arg = { (i: Int) -> UInt64 in narrow ? args[i] & 0xffff_ffff : args[i] }
        let tid = notif.pid
        guard tid != 0 else { return (0, -EPERM) }

        let opened = OpenedCaller(tid: tid)
        defer { opened.close() }
        guard opened.complete else { return (0, -ESRCH) }
        guard eci_notif_id_valid(fd, notif.id) == 0 else { return (0, -ESRCH) }
        // The LSM's own mediation of mount (AppArmor's docker-default denies it) cannot be
        // reproduced by the helper: a confined caller gets what its profile would say.
        if let label = opened.lsmLabel, label != "unconfined", !label.isEmpty {
            return (0, -EPERM)
        }

        let call: MountCallPolicy.Call
        do {
            switch kind {
            case .mount:
                let flags = arg(3)
                let kindOfMount = MountCallPolicy.kind(ofMountFlags: flags)
                let source = try opened.string(at: arg(0), optional: true, max: Int(PATH_MAX))
                let target = try opened.string(at: arg(1), optional: false, max: Int(PATH_MAX)) ?? ""
                let fsType = kindOfMount == .new ? try opened.string(at: arg(2), optional: true, max: 256) : nil
                // The data page is a string of options for every file system the policy lets
                // through; it is read only where the kernel uses it.
                let usesData = kindOfMount == .new || kindOfMount == .remount(bind: false)
                let data = usesData ? try opened.string(at: arg(4), optional: true, max: 4096) : nil
                call = .mount(source: source, target: target, fsType: fsType, flags: flags, data: data)
            case .umount2:
                call = .umount(target: try opened.string(at: arg(0), optional: false, max: Int(PATH_MAX)) ?? "", flags: arg(1))
            case .umount:
                call = .umount(target: try opened.string(at: arg(0), optional: false, max: Int(PATH_MAX)) ?? "", flags: 0)
            case .pivotRoot:
                let newRoot = try opened.string(at: arg(0), optional: false, max: Int(PATH_MAX)) ?? ""
                let putOld = try opened.string(at: arg(1), optional: false, max: Int(PATH_MAX)) ?? ""
                call = .pivotRoot(newRoot: newRoot, putOld: putOld)
            }
        } catch let error as ReadFailure {
            return (0, -error.errno)
        } catch {
            return (0, -EFAULT)
        }
        guard eci_notif_id_valid(fd, notif.id) == 0 else { return (0, -ESRCH) }

        // One call at a time per container: what the helper checked stays true until it acts.
        let request = HelperRequest(call: call, slot: slot.token, id: notif.id)
        let response = container.serialized {
            let response = HelperPool.shared.perform(request, container: container, opened: opened, notifyFD: fd, launch: launch, log: log)
            // Stored while the container's lock is held: once released, a call from another of
            // its notify fds may go to the same helper and overwrite the helper's record.
            slot.recordResult(id: notif.id, errno: response.errno)
            return response
        }
        if crashPoint == .afterHelper { _exit(99) }
        if crashPoint == .afterHelperLate, lateCrashArmed.withLock({ armed in defer { armed = false }; return armed }) {
            sleep(4)
            _exit(99)
        }
        if response.errno != 0 {
            log.info("refused", metadata: ["container": "\(container.id)", "call": "\(call)", "errno": "\(response.errno)", "reason": "\(response.reason ?? "")"])
        } else {
            log.debug("performed", metadata: ["container": "\(container.id)", "call": "\(call)"])
        }
        return (0, response.errno == 0 ? 0 : -response.errno)
    }
}

struct ReadFailure: Error {
    let errno: Int32
}

/// The calling thread's /proc entries, opened before NOTIF_ID_VALID confirms they are its own.
/// Only what travels to the helper on every call is opened (its /proc directory, root, cwd);
/// its namespaces are known by identity (a helper is picked by them) and opened only to start
/// a helper (`openNamespaces`); its memory is read by thread ID (`eci_read_string`). Each open
/// of a /proc entry costs a few microseconds of a trapped call.
final class OpenedCaller {
    let tid: pid_t
    var procDirectory: Int32 = -1
    var root: Int32 = -1
    var cwd: Int32 = -1
    /// The identities (nsfs device, inode) of the thread's mount and user namespaces.
    var mountNamespace: (device: UInt64, inode: UInt64)?
    var userNamespace: (device: UInt64, inode: UInt64)?
    var lsmLabel: String?

    init(tid: UInt32) {
        self.tid = pid_t(bitPattern: tid)
        procDirectory = open("/proc/\(tid)", Int32(CSeccomp.ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        guard procDirectory >= 0 else { return }
        mountNamespace = Self.identity(procDirectory, "ns/mnt")
        userNamespace = Self.identity(procDirectory, "ns/user")
        root = openat(procDirectory, "root", Int32(CSeccomp.ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        cwd = openat(procDirectory, "cwd", Int32(CSeccomp.ECI_O_PATH) | O_DIRECTORY | O_CLOEXEC)
        let attr = openat(procDirectory, "attr/current", O_RDONLY | O_CLOEXEC)
        if attr >= 0 {
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = buffer.withUnsafeMutableBytes { read(attr, $0.baseAddress, $0.count) }
            if n > 0 {
                // "docker-default (enforce)\n", "unconfined\n": the label without the trailing newline or NUL.
                var label = buffer[0..<n]
                while let last = label.last, last == 0 || last == 0x0a || last == 0x20 { label = label.dropLast() }
                lsmLabel = String(decoding: label, as: UTF8.self)
            }
            Glibc.close(attr)
        }
    }

    var complete: Bool { [procDirectory, root, cwd].allSatisfy { $0 >= 0 } && mountNamespace != nil && userNamespace != nil }

    static func identity(_ directory: Int32, _ name: String) -> (device: UInt64, inode: UInt64)? {
        var st = stat()
        guard fstatat(directory, name, &st, 0) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// The thread's mount and user namespaces, for starting a helper in them: nil unless they
    /// are still the ones its identity was taken from.
    func openNamespaces() -> (mount: Int32, user: Int32)? {
        let mount = openat(procDirectory, "ns/mnt", O_RDONLY | O_CLOEXEC)
        let user = openat(procDirectory, "ns/user", O_RDONLY | O_CLOEXEC)
        var m = stat()
        var u = stat()
        guard mount >= 0, user >= 0, fstat(mount, &m) == 0, fstat(user, &u) == 0,
            mountNamespace.map({ $0 == (UInt64(m.st_dev), UInt64(m.st_ino)) }) == true,
            userNamespace.map({ $0 == (UInt64(u.st_dev), UInt64(u.st_ino)) }) == true
        else {
            if mount >= 0 { Glibc.close(mount) }
            if user >= 0 { Glibc.close(user) }
            return nil
        }
        return (mount, user)
    }

    /// A NUL-terminated string from the caller's memory; nil for a NULL pointer when allowed.
    func string(at address: UInt64, optional: Bool, max: Int) throws -> String? {
        if address == 0 {
            if optional { return nil }
            throw ReadFailure(errno: EFAULT)
        }
        var buffer = [CChar](repeating: 0, count: max + 1)
        let n = eci_read_string(tid, address, &buffer, max + 1)
        guard n >= 0 else { throw ReadFailure(errno: n == -Int(ENAMETOOLONG) ? ENAMETOOLONG : (n == -Int(ESRCH) ? ESRCH : EFAULT)) }
        let bytes = buffer[0..<n].map { UInt8(bitPattern: $0) }
        let text = String(decoding: bytes, as: UTF8.self)
        // A path that is not UTF-8 would change on the way to the helper: refused, not altered.
        guard Array(text.utf8) == bytes else { throw ReadFailure(errno: EINVAL) }
        return text
    }

    func close() {
        for fd in [procDirectory, root, cwd] where fd >= 0 { Glibc.close(fd) }
    }
}

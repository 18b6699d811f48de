import CSeccomp
import CShim
import ECICore
import ECIIO
import ECIPolicy
import ECIProcFS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import Synchronization

/// ecid's long-lived mount helpers (`ecid mount-helper`, see `MountHelper`): one per
/// (container, caller's mount namespace, caller's user namespace), started on the first
/// trapped call from there and kept while the notify fd of that call is open.
///
/// Why per namespace pair: the helper enters both once (a single-threaded exec'd process; ecid
/// itself never joins a user or mount namespace and runs no Swift between fork and exec), so
/// each call costs one SOCK_SEQPACKET round trip instead of an exec. A caller that unshared its
/// own mount namespace gets a helper of its own. At most `perContainer` per container (least
/// recently used closed first), so memory stays bounded whatever a container unshares.
///
/// Lifetimes: a watcher thread waits (epoll) on a dup of the notify fd each helper was started
/// for and on the helper's pidfd. The notify fd hangs up when every process under that filter
/// has exited: the helper is dropped, its socket closed when the last call using it returns,
/// and the helper exits at EOF; its pidfd then reports the exit and the watcher reaps it.
/// A helper idle for `idleLifetime` is retired the same way (the watcher sweeps while it
/// waits), so a container that mounted once and then only runs costs no helper: memory is
/// spent on containers that are mounting, and the next call starts a helper again (~ms).
/// Retiring only drops the table's reference: a call that already holds the helper finishes
/// on it, and the socket closes after it, so no call ever meets a helper that left.
/// A helper that dies, answers garbage or does not answer within `timeout` is killed and
/// replaced; that call is refused (EPERM), never left hanging.
///
/// Shared state is one `Mutex<State>`. A `Helper`'s `socket` is used by one call at a time
/// (ecid serializes calls per container, and a helper belongs to one container) and closed only
/// in `deinit`, when no call holds it any more, so its number is never reused under a call.
/// `kill` of a helper's pid happens inside the lock while its exit watch is registered, i.e.
/// before the watcher reaped it (the pid is still the helper's, never a recycled one).
final class HelperPool: Sendable {
    /// How helpers are started: `<executable> mount-helper`, each with an answer record in
    /// `answerDirectory` (`AnswerFiles`).
    struct Launch: Sendable {
        var executable: String
        var answerDirectory: String
        /// ECI's state directory, where ecid serves the emulated files (`EmulationTree`).
        var emulationStateDirectory: String? = nil
    }

    static let shared = HelperPool(idleLifetime: .seconds(
        getenv("ECI_ECID_HELPER_IDLE").flatMap { Double(String(cString: $0)) }.map { max(0.1, $0) } ?? 30))
    static let perContainer = 8
    /// How long a helper may stay unused before it is retired.
    let idleLifetime: Duration

    init(idleLifetime: Duration) {
        self.idleLifetime = idleLifetime
    }
    /// Seconds a helper may take to start or to answer one call.
    static let timeout: Int32 = 10

    struct Key: Hashable {
        var container: String
        var mountNamespace: UInt64
        var userNamespace: UInt64
        var device: UInt64
    }

    /// One helper process.
    final class Helper: Sendable {
        let pid: pid_t
        let socket: Int32
        let key: Key
        /// Its answer record, removed once the helper has exited and been reaped.
        let answers: String

        init(pid: pid_t, socket: Int32, key: Key, answers: String) {
            self.pid = pid
            self.socket = socket
            self.key = key
            self.answers = answers
        }

        deinit { close(socket) }
    }

    enum Watch {
        /// The helper's pidfd: readable once it exited (then its answer record goes).
        case exit(pid: pid_t, pidfd: Int32, key: Key, answers: String)
        /// A dup of the notify fd the helper was started for: hangs up with its last process.
        case hangUp(notify: Int32, pid: pid_t, key: Key)
    }

    struct State {
        var helpers: [Key: (helper: Helper, lastUsed: UInt64, usedAt: ContinuousClock.Instant)] = [:]
        var watches: [UInt64: Watch] = [:]
        var clock: UInt64 = 0
        var nextToken: UInt64 = 1
        var epoll: Int32 = -1
        /// In the epoll set as token 0: written when a helper is added, so a watcher asleep
        /// without a timeout (no helper to retire) starts counting its idle time.
        var wake: Int32 = -1

        /// Drops every helper unused since `cutoff`, with the watch on its notify fd (the exit
        /// watch stays: it reaps the helper once it has read EOF and left).
        mutating func retireIdle(olderThan cutoff: ContinuousClock.Instant) -> [Helper] {
            let idle = helpers.values.filter { $0.usedAt < cutoff }.map(\.helper)
            for helper in idle {
                helpers[helper.key] = nil
                for (token, watch) in watches {
                    guard case let .hangUp(notify, pid, _) = watch, pid == helper.pid else { continue }
                    // The container's own notify fd shares this dup's file: closing the dup
                    // alone would leave it in the set (and its number taken for a later dup).
                    _ = eci_epoll_del(epoll, notify)
                    close(notify)
                    watches[token] = nil
                }
            }
            return idle
        }

        /// Drops `helper` from the table; with `kill`, SIGKILL while its pid is surely unreaped.
        mutating func retire(_ helper: Helper, kill: Bool) {
            if helpers[helper.key]?.helper === helper { helpers[helper.key] = nil }
            let exitWatched = watches.values.contains { if case let .exit(pid, _, _, _) = $0 { return pid == helper.pid } else { return false } }
            if kill, exitWatched { HelperPool.killGroup(helper.pid) }
        }
    }

    private let state = Mutex(State())

    /// SIGKILL to a helper and everything it forked: its process group (`eci_spawn_helper`), so
    /// that a child making a fresh procfs or sysfs, which lives in the container's pid
    /// namespace where the container can stop it, cannot attach after its call was answered
    /// (attack round 9). Only while the helper's pid is surely unreaped: the group's ID is it.
    static func killGroup(_ pid: pid_t) {
        Glibc.kill(-pid, SIGKILL)
        Glibc.kill(pid, SIGKILL)
    }

    /// How many helpers run (for tests and logs).
    var count: Int { state.withLock { $0.helpers.count } }

    /// Performs `call` for the caller whose fds are in `opened`, in its container's helper for
    /// its namespaces (started if needed). The caller of this method holds the container's
    /// call lock.
    func perform(
        _ request: HelperRequest, container: Registry.Container, opened: OpenedCaller, notifyFD: Int32, launch: Launch, log: Logger
    ) -> HelperResponse {
        let call = request.call
        guard let key = Self.key(container.id, opened) else { return HelperResponse(errno: ESRCH, reason: "the caller's namespaces are gone") }
        // The notify fd goes along: the helper confirms the call is still pending after it has
        // read the caller's credentials (`MountHelper.serve`).
        var fds = [opened.root, opened.cwd, opened.procDirectory, notifyFD]
        var extra: [Int32] = []
        defer { extra.forEach { close($0) } }
        if call.isFreshMaskedMount {
            // A fresh procfs shows its mounter's pid namespace, a sysfs its net namespace: the
            // helper's child joins the caller's. Opened through the pinned /proc/TID directory,
            // so they are that thread's or the open fails.
            for name in ["ns/pid", "ns/net"] {
                let fd = openat(opened.procDirectory, name, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { return HelperResponse(errno: ESRCH, reason: "the caller went away (\(name))") }
                extra.append(fd)
            }
            fds += extra
            // A fresh procfs of a container whose /proc has ECI's emulated files gets them too:
            // detached clones of its own files, made here in the VM's namespace (a clone of a
            // mount is made where the mount is; the helper's child attaches them).
            if call.isFreshProcfs, let emulation = launch.emulationStateDirectory, container.initial.hasEmulatedFiles {
                for file in EmulatedFile.allCases {
                    let path = EmulationTree.source(of: file, key: container.id, stateDirectory: emulation)
                    let tree = eci_open_tree_clone(path, 0)
                    guard tree >= 0 else { return HelperResponse(errno: EPERM, reason: "clone the emulated \(file.containerPath): \(errnoDescription(-tree))") }
                    extra.append(tree)
                    fds.append(tree)
                }
            }
        }
        let message = HelperWire.encode(request)
        for attempt in 0..<2 {
            let helper: Helper
            do {
                helper = try self.helper(for: key, container: container, opened: opened, notifyFD: notifyFD, launch: launch, log: log)
            } catch {
                return HelperResponse(errno: EPERM, reason: "helper: \(error)")
            }
            let sent = message.withUnsafeBytes { raw in fds.withUnsafeBufferPointer { eci_send_with_fds(helper.socket, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count)) } }
            if sent == -EPIPE || sent == -ECONNRESET, attempt == 0 {
                // Never delivered (the helper was already gone): a new one gets the call.
                retire(helper, kill: true)
                continue
            }
            guard sent == 0 else {
                retire(helper, kill: true)
                return HelperResponse(errno: EPERM, reason: "helper: send: \(errnoDescription(-sent))")
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let (n, _) = FDMessage.receive(helper.socket, into: &buffer, maxFDs: 0)
            guard n > 0, let response = HelperWire.decodeResponse(Array(buffer[0..<n])) else {
                retire(helper, kill: true)
                let why = n < 0 ? errnoDescription(Int32(-n)) : (n == 0 ? "it exited" : "a malformed answer")
                return HelperResponse(errno: EPERM, reason: "helper gave no answer (\(why)); replaced")
            }
            return response
        }
        return HelperResponse(errno: EPERM, reason: "helper: could not deliver the call")
    }

    static func key(_ container: String, _ opened: OpenedCaller) -> Key? {
        guard let mnt = opened.mountNamespace, let user = opened.userNamespace, mnt.device == user.device else { return nil }
        // Both live on nsfs: one device. A helper keeps its namespaces alive, so no other
        // namespace can take their inode numbers while it is in the table.
        return Key(container: container, mountNamespace: mnt.inode, userNamespace: user.inode, device: mnt.device)
    }

    /// The live helper for `key`, or a new one.
    func helper(for key: Key, container: Registry.Container, opened: OpenedCaller, notifyFD: Int32, launch: Launch, log: Logger) throws -> Helper {
        let existing: Helper? = state.withLock { state in
            guard let helper = state.helpers[key]?.helper else { return nil }
            state.clock += 1
            state.helpers[key] = (helper, state.clock, .now)
            return helper
        }
        // A helper already gone shows at the send (EPIPE), which retries with a new one.
        if let existing { return existing }
        let helper = try spawn(key: key, initial: container.initial, opened: opened, launch: launch)
        let evicted: [Helper] = state.withLock { state in
            state.clock += 1
            state.helpers[key] = (helper, state.clock, .now)
            let mine = state.helpers.values.filter { $0.helper.key.container == key.container }.sorted { $0.lastUsed < $1.lastUsed }
            let excess = mine.prefix(max(0, mine.count - Self.perContainer)).map(\.helper)
            for old in excess { state.helpers[old.key] = nil }
            return excess
        }
        _ = evicted  // closed (and so ended) when released here
        try watch(helper, notifyFD: notifyFD)
        log.debug("mount helper started", metadata: ["container": "\(key.container)", "pid": "\(helper.pid)", "mnt": "\(key.mountNamespace)", "user": "\(key.userNamespace)"])
        return helper
    }

    /// Drops `helper` from the table (its socket closes when the last user lets go, and it
    /// exits at EOF); with `kill`, SIGKILL first, for a helper that misbehaved.
    func retire(_ helper: Helper, kill: Bool) {
        state.withLock { $0.retire(helper, kill: kill) }
    }

    /// Starts a helper and hands it the container's initial mounts, the caller's mount
    /// namespace, user namespace and /proc/TID directory, and its answer record; waits for it
    /// to report ready.
    func spawn(key: Key, initial: MountCallPolicy.InitialMounts, opened: OpenedCaller, launch: Launch) throws -> Helper {
        let helperPath = launch.executable
        let answers = try AnswerFiles.create(directory: launch.answerDirectory, container: key.container)
        // Only the helper keeps it open (and locked); a helper that never starts leaves no record.
        var started = false
        defer {
            close(answers.fd)
            if !started { unlink(answers.path) }
        }
        var pair: [Int32] = [-1, -1]
        try check(eci_seqpacket_pair(&pair), "socketpair")
        let mine = pair[0]
        // Placed above the range posix_spawn dup2s into, so dup2 never meets its own number
        // (which would keep close-on-exec set).
        let theirs = fcntl(pair[1], F_DUPFD_CLOEXEC, 64)
        close(pair[1])
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        let nullHigh = null >= 0 ? fcntl(null, F_DUPFD_CLOEXEC, 64) : -1
        if null >= 0 { close(null) }
        defer {
            if theirs >= 0 { close(theirs) }
            if nullHigh >= 0 { close(nullHigh) }
        }
        guard theirs >= 0, nullHigh >= 0 else {
            close(mine)
            throw ECIError.system("dup", errno: errno)
        }
        // Larger send buffer: the first message carries the whole mount table.
        _ = eci_socket_timeouts(mine, Self.timeout, Int32(MountHelper.maximumInitialMessage))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(helperPath), strdup("mount-helper"), nil]
        defer { argv.forEach { free($0) } }
        var placed = [theirs]
        let pid = argv.withUnsafeBufferPointer { eci_spawn_helper(helperPath, $0.baseAddress, nullHigh, nullHigh, &placed, 1) }
        guard pid > 0 else {
            close(mine)
            throw ECIError.system("spawn \(helperPath)", errno: -pid)
        }
        let helper = Helper(pid: pid, socket: mine, key: key, answers: answers.path)
        // From here the helper is only ever closed by releasing `helper`; a failure kills it
        // and reaps it at once (it was never watched).
        func fail(_ why: String) -> ECIError {
            HelperPool.killGroup(pid)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return ECIError(.invalidState, "mount helper: \(why)")
        }
        let payload: [UInt8]
        do {
            payload = [UInt8](try JSONEncoder().encode(initial))
        } catch {
            throw fail("encode the initial mounts: \(error)")
        }
        guard payload.count < MountHelper.maximumInitialMessage else { throw fail("the mount table is too large (\(payload.count) bytes)") }
        guard let namespaces = opened.openNamespaces() else { throw fail("the caller's namespaces changed or are gone") }
        defer {
            close(namespaces.mount)
            close(namespaces.user)
        }
        var nsFDs = [namespaces.mount, namespaces.user, opened.procDirectory, answers.fd]
        let sent = payload.withUnsafeBytes { eci_send_with_fds(mine, $0.baseAddress, $0.count, &nsFDs, 4) }
        guard sent == 0 else { throw fail("send the start message: \(errnoDescription(-sent))") }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let (n, _) = FDMessage.receive(mine, into: &buffer, maxFDs: 0)
        guard n > 0, let ready = HelperWire.decodeResponse(Array(buffer[0..<n])) else {
            throw fail("no start answer (\(n < 0 ? errnoDescription(Int32(-n)) : "EOF"))")
        }
        guard ready.errno == 0 else { throw fail(ready.reason ?? errnoDescription(ready.errno)) }
        started = true
        return helper
    }

    /// Registers the helper's pidfd and a dup of `notifyFD` with the watcher thread.
    func watch(_ helper: Helper, notifyFD: Int32) throws {
        let pidfd = eci_pidfd_open(helper.pid)
        let notify = fcntl(notifyFD, F_DUPFD_CLOEXEC, 0)
        var tokens: [UInt64] = []
        let failure: Int32? = state.withLock { state in
            if state.epoll < 0 {
                let fd = eci_epoll_create()
                guard fd >= 0 else { return -fd }
                let wake = eci_wake_create()
                let added = wake >= 0 ? eci_epoll_add(fd, wake, 0, 1) : wake
                guard added == 0 else {
                    if wake >= 0 { close(wake) }
                    close(fd)
                    return -added
                }
                state.epoll = fd
                state.wake = wake
                do {
                    try DetachedThread.start("ecid-helpers", stackSize: 128 * 1024) { [self] in watcher(fd) }
                } catch {
                    close(fd)
                    close(wake)
                    state.epoll = -1
                    state.wake = -1
                    return EAGAIN
                }
            }
            guard pidfd >= 0, notify >= 0 else { return pidfd < 0 ? -pidfd : EMFILE }
            let exitToken = state.nextToken
            let hangUpToken = state.nextToken + 1
            state.nextToken += 2
            tokens = [exitToken, hangUpToken]
            state.watches[exitToken] = .exit(pid: helper.pid, pidfd: pidfd, key: helper.key, answers: helper.answers)
            state.watches[hangUpToken] = .hangUp(notify: notify, pid: helper.pid, key: helper.key)
            let a = eci_epoll_add(state.epoll, pidfd, exitToken, 1)
            let b = eci_epoll_add(state.epoll, notify, hangUpToken, 0)
            eci_wake_signal(state.wake)
            return a < 0 ? -a : (b < 0 ? -b : nil)
        }
        guard let failure else { return }
        // Unwatched, the helper could outlive its container: it is not used. Its watches are
        // withdrawn first (the watcher ignores tokens it does not know), so the pid stays
        // unreaped, and ours to kill, until the waitpid here.
        state.withLock { state in
            tokens.forEach { state.watches[$0] = nil }
            if state.helpers[helper.key]?.helper === helper { state.helpers[helper.key] = nil }
        }
        if pidfd >= 0 { close(pidfd) }
        if notify >= 0 { close(notify) }
        HelperPool.killGroup(helper.pid)
        var status: Int32 = 0
        while waitpid(helper.pid, &status, 0) < 0 && errno == EINTR {}
        unlink(helper.answers)
        throw ECIError.system("watch the mount helper", errno: failure)
    }

    /// The watcher thread: reaps exited helpers, drops those whose notify fd hung up.
    func watcher(_ epfd: Int32) {
        var tokens = [UInt64](repeating: 0, count: 16)
        while true {
            // With helpers: woken at least every third of the idle lifetime to retire idle ones.
            // Without: asleep until one is added (no CPU while no container is mounting).
            let sweepEvery = Int32(clamping: max(100, Int((idleLifetime / 3).seconds * 1000)))
            let (timeout, wake) = state.withLock { ($0.helpers.isEmpty ? -1 : sweepEvery, $0.wake) }
            let n = tokens.withUnsafeMutableBufferPointer { eci_epoll_wait(epfd, $0.baseAddress, 16, timeout) }
            guard n >= 0 else { return }
            if tokens.prefix(Int(n)).contains(0) {
                eci_wake_drain(wake)
            }
            // Helpers dropped here are released after the lock (their deinit closes a socket).
            let batch = Array(tokens.prefix(Int(n)))
            let dropped: [Helper] = state.withLock { state in
                var dropped: [Helper] = []
                for token in batch {
                    guard let watch = state.watches[token] else { continue }
                    switch watch {
                    case let .exit(pid, pidfd, key, answers):
                        guard eci_reap(pid) != 0 else { continue }
                        state.watches[token] = nil
                        close(pidfd)
                        unlink(answers)
                        if let helper = state.helpers[key]?.helper, helper.pid == pid {
                            dropped.append(helper)
                            state.helpers[key] = nil
                        }
                    case let .hangUp(notify, pid, key):
                        state.watches[token] = nil
                        // Out of the set first: the holder's and the supervising thread's fds
                        // share this file, so closing the dup alone would keep it (hung up,
                        // level-triggered) waking this thread.
                        _ = eci_epoll_del(epfd, notify)
                        close(notify)
                        if let helper = state.helpers[key]?.helper, helper.pid == pid {
                            dropped.append(helper)
                            state.helpers[key] = nil
                        }
                    }
                }
                dropped += state.retireIdle(olderThan: .now - idleLifetime)
                return dropped
            }
            _ = dropped  // released here, outside the lock (their deinit closes a socket)
        }
    }

    func check(_ rc: Int32, _ what: String) throws {
        guard rc >= 0 else { throw ECIError.system(what, errno: -rc) }
    }
}

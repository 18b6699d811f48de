import ECICore
import Foundation
import Glibc
import Synchronization

/// One VM per directory: the supervisor holds an exclusive flock on `vm.lock` for the VM's
/// whole life, taken before it touches anything in the directory (sockets, state, disk). The
/// kernel drops the lock when the supervisor exits, however it exits, so a stale lock cannot
/// outlive it. The file holds the holder's pid, for messages only.
public final class VMDirectoryLock: Sendable {
    public let vm: VMDirectory
    /// The locked descriptor; -1 once released.
    private let descriptor: Mutex<Int32>

    private init(vm: VMDirectory, fd: Int32) {
        self.vm = vm
        descriptor = Mutex(fd)
    }

    deinit { release() }

    /// Takes the directory (creating it), or refuses at once when another process holds it.
    /// - Throws: `.invalidState` naming the holder when a VM already runs from `vm`.
    public static func acquire(_ vm: VMDirectory) throws -> VMDirectoryLock {
        try FileSystem.makeDirectories(vm.path, mode: 0o700)
        let fd = open(vm.lockFile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw ECIError.system("open \(vm.lockFile)", errno: errno) }
        guard lock(fd, exclusive: true) else {
            let err = errno
            close(fd)
            guard err == EWOULDBLOCK else { throw ECIError.system("lock \(vm.lockFile)", errno: err) }
            throw busy(vm, holder: recordedHolder(vm))
        }
        let record = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, record, record.count, 0) == record.count else {
            let err = errno
            close(fd)
            throw ECIError.system("write \(vm.lockFile)", errno: err)
        }
        return VMDirectoryLock(vm: vm, fd: fd)
    }

    /// The pid of the process holding `vm`'s lock (0 when it recorded none); nil when free.
    public static func holder(of vm: VMDirectory) -> pid_t? {
        let fd = open(vm.lockFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A shared probe: it conflicts with the holder's exclusive lock, not with other probes.
        guard !lock(fd, exclusive: false) else { return nil }
        return recordedHolder(vm) ?? 0
    }

    /// Refuses (as `acquire` would) when a VM runs from `vm`, without taking the lock: for a
    /// parent that starts the supervisor, which must hold the lock itself.
    public static func refuseIfHeld(_ vm: VMDirectory) throws {
        guard let pid = holder(of: vm) else { return }
        throw busy(vm, holder: pid)
    }

    /// Gives the directory up (also done by deinit and by the process's exit).
    public func release() {
        let fd = descriptor.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { close(fd) }
    }

    private static func lock(_ fd: Int32, exclusive: Bool) -> Bool {
        (try? Syscall.retrying("flock") { flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) }) != nil
    }

    private static func recordedHolder(_ vm: VMDirectory) -> pid_t? {
        (try? FileSystem.readText(vm.lockFile)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private static func busy(_ vm: VMDirectory, holder: pid_t?) -> ECIError {
        let who = holder.map { $0 > 0 ? "supervisor \($0)" : "held by another process" } ?? "held by another process"
        return ECIError(.invalidState, "a VM already runs from \(vm.path) (\(who)); `ecibuild stop` first")
    }
}

import CSeccomp
import ECICore
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

// What a kill -9 of ecid must not lose: the call it had received but not answered. The kernel
// gives a received notification to no one else, so the next ecid must answer it, and it can
// answer it exactly:
// - `InFlightSlot` (per notify fd, written by ecid): the last notification received, whole;
// - `AnswerFiles` (per helper, written by the helper): the call it is performing or performed
//   last, and its result.
// After a restart the next ecid waits for the previous ecid's helpers to be gone, then answers
// each unanswered call with the result its helper recorded, or, when no helper ever started
// it, performs it now. Only a call a helper started and did not finish (the helper died in it)
// gets EINTR: whether it took effect cannot be known.

/// A file mapped shared: stores to it outlive a kill -9 of the process that made them. Each
/// mapping has one writer (a notify fd's thread, or a helper), read by the next ecid once that
/// writer is gone.
struct SharedMapping: Sendable {
    // A raw address is Sendable only as a bit pattern, so it is kept as one.
    private let bits: UInt
    let size: Int
    /// Never nil: mmap succeeded.
    var address: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: bits).unsafelyUnwrapped }

    /// Maps `size` bytes of `fd` (grown to `size` when shorter).
    init(fd: Int32, size: Int) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ECIError.system("fstat", errno: errno) }
        if Int(st.st_size) < size, ftruncate(fd, off_t(size)) != 0 { throw ECIError.system("ftruncate", errno: errno) }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw ECIError.system("mmap", errno: errno)
        }
        bits = UInt(bitPattern: mapped)
        self.size = size
    }

    func unmap() { munmap(address, size) }
}

/// Per notify fd, the last notification ecid received (`inflight/SLOT`, an `eci_inflight_slot`),
/// recorded after each NOTIF_RECV and before anything is done with it.
final class InFlightSlot: Sendable {
    let path: String
    /// The slot's name as a number: how a helper's answer record names the fd a call came on.
    let token: UInt64
    private let mapping: SharedMapping

    init(directory: String, slot: String) throws {
        try FileSystem.makeDirectories(directory, mode: 0o700)
        path = join(directory, slot)
        token = UInt64(slot, radix: 16) ?? 0
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ECIError.system("open \(path)", errno: errno) }
        defer { close(fd) }
        mapping = try SharedMapping(fd: fd, size: MemoryLayout<eci_inflight_slot>.size)
    }

    private var slot: UnsafeMutablePointer<eci_inflight_slot> { mapping.address.assumingMemoryBound(to: eci_inflight_slot.self) }

    /// The last notification, and whether the slot holds it whole (a slot written by an older
    /// ecid holds only its ID).
    var lastNotification: (id: UInt64, notification: eci_notif?) {
        var notif = eci_notif()
        var whole: Int32 = 0
        let id = eci_inflight_read(slot, &notif, &whole)
        return (id, whole != 0 ? notif : nil)
    }

    /// The answer a helper gave for notification `id` (0 or an errno), stored before the
    /// container's next call can reach a helper.
    func recordResult(id: UInt64, errno: Int32) {
        eci_inflight_result(slot, id, errno)
    }

    /// The answer stored for `id`, if any.
    func result(for id: UInt64) -> Int32? {
        var error: Int32 = 0
        return eci_inflight_read_result(slot, id, &error) != 0 ? error : nil
    }

    func record(_ notif: eci_notif) {
        var copy = notif
        eci_inflight_record(slot, &copy)
    }

    /// Unmaps and deletes the file (the fd hung up).
    func remove() {
        mapping.unmap()
        unlink(path)
    }
}

/// The answer records of mount helpers (`inflight/answers-CONTAINER-RANDOM`, an
/// `eci_answer_record` each). ecid creates one per helper and hands it over with the helper's
/// start message; the helper locks it (flock) for its whole life, so a lock the next ecid can
/// take means that helper is gone and its record final.
enum AnswerFiles {
    static let prefix = "answers-"

    /// A new, empty record file for a helper of `container`: its path and an fd to hand over.
    static func create(directory: String, container: String) throws -> (path: String, fd: Int32) {
        try FileSystem.makeDirectories(directory, mode: 0o700)
        let path = join(directory, prefix + container + "-" + String(UInt64.random(in: 1...UInt64.max), radix: 16))
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ECIError.system("create \(path)", errno: errno) }
        guard ftruncate(fd, off_t(MemoryLayout<eci_answer_record>.size)) == 0 else {
            let saved = errno
            close(fd)
            unlink(path)
            throw ECIError.system("ftruncate \(path)", errno: saved)
        }
        return (path, fd)
    }

    /// What the previous ecid's helpers left.
    struct Previous {
        struct Call: Hashable {
            var slot: UInt64
            var id: UInt64
        }
        /// Finished calls and their errno (0: performed).
        var finished: [Call: Int32] = [:]
        /// Calls a helper started and did not finish.
        var unfinished: Set<Call> = []
        /// Containers with a helper still alive at the deadline: their unrecorded calls may
        /// still be in its hands, so none is performed again.
        var unsettled: Set<String> = []
    }

    /// Reads every record file in `directory` once its helper is gone (its lock taken), or at
    /// the deadline; removes them.
    static func collect(directory: String, within seconds: Double) -> Previous {
        var previous = Previous()
        let names = ((try? FileSystem.listDirectory(directory)) ?? []).filter { $0.hasPrefix(prefix) }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        for name in names {
            let path = join(directory, name)
            defer { unlink(path) }
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var locked = false
            while true {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                    locked = true
                    break
                }
                guard errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else { break }
                usleep(10_000)
            }
            let rest = name.dropFirst(prefix.count)
            let container = rest.lastIndex(of: "-").map { String(rest[..<$0]) } ?? String(rest)
            if !locked { previous.unsettled.insert(container) }
            guard let mapping = try? SharedMapping(fd: fd, size: MemoryLayout<eci_answer_record>.size) else {
                previous.unsettled.insert(container)
                continue
            }
            defer { mapping.unmap() }
            var record = eci_answer_record()
            eci_answer_read(mapping.address.assumingMemoryBound(to: eci_answer_record.self), &record)
            let call = Previous.Call(slot: record.slot, id: record.id)
            switch record.state {
            case 2 where locked: previous.finished[call] = record.error
            case 1, 2: previous.unfinished.insert(call)
            default: break
            }
        }
        return previous
    }
}

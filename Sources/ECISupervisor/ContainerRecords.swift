import CShim
import ECICore
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// What ecid must know of a container to vet its calls, persisted so a restarted ecid vets
/// them as the first one did: one file per container in ecid's 0700 directory
/// (`containers/ID.json`), written atomically before the container's first fd is deposited
/// with the holder, removed when its last notify fd hangs up.
///
/// The initial mounts are never rebuilt from a running container's mountinfo: the container
/// may have changed its mounts since (that is what ecid vets); a notify fd without its record
/// is dropped (its calls then fail with ENOSYS), never trusted.
struct ContainerRecord: Codable, Sendable, Equatable {
    var id: String
    /// The container's init and its start time (field 22 of /proc/PID/stat): a PID alone
    /// could be reused by another process after the container is gone.
    var initPID: Int32
    var initStart: UInt64
    var initial: MountCallPolicy.InitialMounts
}

struct ContainerRecords: Sendable {
    let directory: String

    init(ecidDirectory: String) { directory = join(ecidDirectory, "containers") }

    func path(_ id: String) -> String { join(directory, id + ".json") }

    func save(_ record: ContainerRecord) throws {
        try FileSystem.makeDirectories(directory, mode: 0o700)
        try FileSystem.writeAtomically(path(record.id), Array(try JSONEncoder().encode(record)))
    }

    func remove(_ id: String) { unlink(path(id)) }

    /// Every readable record; an unreadable one (a write cut short cannot leave one: writes are
    /// atomic) is removed, since nothing could vet with it.
    func loadAll() -> [ContainerRecord] {
        guard let names = try? FileSystem.listDirectory(directory) else { return [] }
        var records: [ContainerRecord] = []
        for name in names {
            let file = join(directory, name)
            guard name.hasSuffix(".json") else {
                unlink(file)  // a temporary file of a write that was killed
                continue
            }
            guard let bytes = try? FileSystem.read(file), let record = try? JSONDecoder().decode(ContainerRecord.self, from: Data(bytes)) else {
                unlink(file)
                continue
            }
            records.append(record)
        }
        return records
    }

    /// Field 22 of /proc/PID/stat (after the parenthesised command, which may hold spaces).
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? FileSystem.readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the container's init still runs (the same process, not a reused PID).
    static func isAlive(_ record: ContainerRecord) -> Bool {
        startTime(of: record.initPID) == record.initStart
    }
}

/// Per notify fd, the ID of the last notification ecid received, in a shared file mapping
/// (`inflight/SLOT`): written with one store after each NOTIF_RECV, so it survives a kill -9.
/// A notification received but not answered when ecid died would otherwise wait forever (the
/// holder keeps the fd open and the kernel gives a received notification to no one else). The
/// next ecid answers every notification still in that state, from the recorded ID on, with
/// EINTR before it receives anything: whether the call was performed is unknown, and EINTR is
/// the one error that says "interrupted".
final class InFlightSlot: Sendable {
    let path: String
    // The mapping is written by one thread (the fd's) and read before that thread starts;
    // a raw address is Sendable only as a bit pattern, so it is kept as one.
    private let address: UInt

    init(directory: String, slot: String) throws {
        try FileSystem.makeDirectories(directory, mode: 0o700)
        path = join(directory, slot)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ECIError.system("open \(path)", errno: errno) }
        defer { close(fd) }
        guard ftruncate(fd, 8) == 0 else { throw ECIError.system("ftruncate \(path)", errno: errno) }
        guard let mapped = mmap(nil, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw ECIError.system("mmap \(path)", errno: errno)
        }
        address = UInt(bitPattern: mapped)
    }

    private var pointer: UnsafeMutablePointer<UInt64> {
        // The mapping lives until `remove`; the address is never nil (mmap succeeded).
        UnsafeMutablePointer<UInt64>(bitPattern: address).unsafelyUnwrapped
    }

    /// The last ID recorded (0: none yet).
    var last: UInt64 { pointer.pointee }

    func record(_ id: UInt64) { eci_store_u64(pointer, id) }

    /// Unmaps and deletes the file (the fd hung up).
    func remove() {
        munmap(UnsafeMutableRawPointer(bitPattern: address), 8)
        unlink(path)
    }
}

import ECICore
import ECIPolicy
import ECIProcFS
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
    /// The container's key (`HandOver.key`: ECI's directory name of it, unique across runc roots).
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

    /// Field 22 of /proc/PID/stat (`ProcessStart`).
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? FileSystem.readText("/proc/\(pid)/stat") else { return nil }
        return ProcessStart.startTicks(statLine: text)
    }

    /// Whether the container's init still runs (the same process, not a reused PID).
    static func isAlive(_ record: ContainerRecord) -> Bool {
        startTime(of: record.initPID) == record.initStart
    }
}

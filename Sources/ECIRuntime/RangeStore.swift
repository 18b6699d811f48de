import ECICore
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

/// Identifies a container across runc roots: the engine's runc root plus the container ID.
public struct ContainerKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var runcRoot: String
    public var id: String

    public init(runcRoot: String, id: String) {
        self.runcRoot = runcRoot
        self.id = id
    }

    /// A file-name-safe name, unique per (root, id): ECI's per-container directory.
    public var directoryName: String { "\(stableHash(runcRoot).prefix(12))-\(id)" }

    /// runc's state file for this container; it exists from a successful create to delete.
    public var runcStatePath: String { join(join(runcRoot, id), "state.json") }

    public var description: String { "\(id) (root \(runcRoot))" }
}

/// One allocated range, persisted in the range table. It stands while its creator (the
/// eci-runc process creating the container) runs or while runc has state for the container;
/// after that it is stale, whatever ended it (delete, crash, reboot, kill -9).
public struct RangeRecord: Sendable, Codable, Equatable {
    public var key: ContainerKey
    public var base: UInt32
    public var creator: ProcessIdentity
    /// An overlay work directory ECI made in the engine's storage, removed with the record.
    public var workDirectory: String?

    public var range: IDRange { IDRange(base: base) }
}

/// A process, identified robustly against PID reuse by its start time.
public struct ProcessIdentity: Sendable, Codable, Equatable {
    public var pid: Int32
    public var startTime: UInt64

    /// The calling process.
    public static func current() -> ProcessIdentity {
        let pid = getpid()
        return ProcessIdentity(pid: pid, startTime: startTime(of: pid) ?? 0)
    }

    /// Whether this exact process still runs (a zombie counts as gone).
    public var isAlive: Bool {
        guard let text = try? FileSystem.readText("/proc/\(pid)/stat") else { return false }
        guard let fields = Self.fieldsAfterCommand(text), fields.count > 19 else { return false }
        return fields[0] != "Z" && fields[0] != "X" && UInt64(fields[19]) == startTime
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? FileSystem.readText("/proc/\(pid)/stat"), let fields = fieldsAfterCommand(text), fields.count > 19 else {
            return nil
        }
        return UInt64(fields[19])
    }

    /// /proc/PID/stat fields from field 3 (state) on; the command name may contain spaces.
    static func fieldsAfterCommand(_ text: String) -> [Substring]? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}

/// The persisted table of allocations.
struct RangeTable: Codable {
    var version = 1
    /// Where the next search for a free slot starts: ranges rotate, so a just-released range
    /// is the last to be handed out again.
    var cursor = 0
    var records: [RangeRecord] = []
}

/// Exclusive ID ranges for containers: allocation, release and reconciliation with runc's state,
/// persisted crash-safely under a lock shared by every eci-runc invocation.
public struct RangeStore: Sendable {
    public let configuration: RuntimeConfiguration
    private let log: Logger

    public init(configuration: RuntimeConfiguration, log: Logger) {
        self.configuration = configuration
        self.log = log
    }

    var tablePath: String { join(configuration.stateDirectory, "ranges.json") }
    var lockPath: String { join(configuration.stateDirectory, "ranges.lock") }

    /// ECI's per-container directory (the rewritten bundle lives there).
    public func containerDirectory(_ key: ContainerKey) -> String {
        join(join(configuration.stateDirectory, "containers"), key.directoryName)
    }

    /// Allocates a free range for `key`, recording the calling process as its creator and the
    /// overlay work directory it will make (removed with the record). Stale records (their
    /// container gone, their creator dead) are reclaimed first.
    public func allocate(_ key: ContainerKey, workDirectory: String? = nil) throws -> RangeRecord {
        try withLockedTable { table in
            let pool = try ensurePool()
            if let existing = table.records.first(where: { $0.key == key }) {
                throw ECIError(.invalidArgument, "container \(key.id) already has ID range \(existing.range) (it exists, or is being created)")
            }
            let taken = table.records.map(\.range)
            let slots = pool.slotCount
            for step in 0..<slots {
                let slot = (table.cursor + step) % slots
                let range = pool.range(slot: slot)
                if taken.contains(where: { $0.overlaps(range) }) { continue }
                let record = RangeRecord(key: key, base: range.base, creator: .current(), workDirectory: workDirectory)
                table.records.append(record)
                table.cursor = (slot + 1) % slots
                log.debug("allocated ID range", metadata: ["container": "\(key.id)", "range": "\(range)"])
                return record
            }
            throw ECIError(
                .exhausted,
                "no free ID range: all \(slots) ranges of ECI's pool (\(pool), from \(configuration.subuidPath)) are in use")
        }
    }

    /// Changes the record of `key`; an error when it is gone.
    public func update(_ key: ContainerKey, _ change: @Sendable (inout RangeRecord) -> Void) throws {
        try withLockedTable { table in
            guard let index = table.records.firstIndex(where: { $0.key == key }) else {
                throw ECIError(.notFound, "no ID range recorded for container \(key.id)")
            }
            change(&table.records[index])
        }
    }

    /// The record of `key`, if any.
    public func record(_ key: ContainerKey) throws -> RangeRecord? {
        try withLockedTable(reconcile: false) { table in table.records.first { $0.key == key } }
    }

    /// The first process of the container whose ECI directory is named `directoryName`, from
    /// runc's state file under the root its range was recorded with; nil when no range or no
    /// state is recorded for it. Reads only (no reconciliation): ecid's emulated files for a
    /// container it was not handed (one whose seccomp profile leaves no call for it to vet).
    public func initProcess(directoryName: String) throws -> ProcessIdentity? {
        let key = try withLockedTable(reconcile: false) { table in table.records.first { $0.key.directoryName == directoryName }?.key }
        guard let key, FileSystem.exists(key.runcStatePath) else { return nil }
        return try LockedStart.initProcess(statePath: key.runcStatePath)
    }

    /// The directory names of every container a range is recorded for (no reconciliation).
    public func directoryNames() throws -> [String] {
        try withLockedTable(reconcile: false) { table in table.records.map(\.key.directoryName) }
    }

    /// All records (after reconciliation).
    public func records() throws -> [RangeRecord] {
        try withLockedTable { table in table.records }
    }

    /// Releases the range of `key` and removes what was made for it. Returns whether there was one.
    @discardableResult
    public func release(_ key: ContainerKey) throws -> Bool {
        try withLockedTable(reconcile: false) { table in
            guard let index = table.records.firstIndex(where: { $0.key == key }) else { return false }
            let record = table.records.remove(at: index)
            try removeResources(of: record)
            log.debug("released ID range", metadata: ["container": "\(key.id)", "range": "\(record.range)"])
            return true
        }
    }

    /// Whether a record still stands for a live or in-progress container.
    func isLive(_ record: RangeRecord) -> Bool {
        FileSystem.exists(record.key.runcStatePath) || record.creator.isAlive
    }

    /// Removes ECI's directory for the container and the overlay work directory it made.
    func removeResources(of record: RangeRecord) throws {
        if let work = record.workDirectory {
            try FileSystem.removeTree(work)
        }
        try FileSystem.removeTree(containerDirectory(record.key))
    }

    private func withLockedTable<T>(reconcile: Bool = true, _ body: (inout RangeTable) throws -> T) throws -> T {
        try FileSystem.makeDirectories(configuration.stateDirectory, mode: 0o711)
        let lock = try FileLock(path: lockPath)
        defer { lock.unlock() }
        removeInterruptedWrites()
        var table = try loadTable()
        let before = try JSONEncoder().encode(table)
        if reconcile {
            var kept: [RangeRecord] = []
            for record in table.records {
                if isLive(record) {
                    kept.append(record)
                    continue
                }
                log.info("reclaiming stale ID range", metadata: ["container": "\(record.key.id)", "range": "\(record.range)"])
                try removeResources(of: record)
            }
            table.records = kept
        }
        let result = try body(&table)
        let after = try JSONEncoder().encode(table)
        if after != before {
            try FileSystem.writeAtomically(tablePath, Array(after))
        }
        return result
    }

    /// Temporary files of a writer killed mid-write. Writers hold the lock, so under the lock
    /// every such file is an orphan.
    private func removeInterruptedWrites() {
        let prefix = "ranges.json.tmp."
        guard let names = try? FileSystem.listDirectory(configuration.stateDirectory) else { return }
        for name in names where name.hasPrefix(prefix) {
            unlink(join(configuration.stateDirectory, name))
        }
    }

    private func loadTable() throws -> RangeTable {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(tablePath)
        } catch let error as ECIError where error.code == .notFound {
            return RangeTable()
        }
        do {
            return try JSONDecoder().decode(RangeTable.self, from: Data(bytes))
        } catch {
            throw ECIError(.invalidState, "the ID range table \(tablePath) is corrupt; remove it only when no container runs", cause: error)
        }
    }

    /// The pool from /etc/subuid and /etc/subgid, declaring a default one for ECI when absent.
    func ensurePool() throws -> IDPool {
        let subuid = SubordinateIDFile(text: (try? FileSystem.readText(configuration.subuidPath)) ?? "")
        let subgid = SubordinateIDFile(text: (try? FileSystem.readText(configuration.subgidPath)) ?? "")
        if let pool = try SubordinateIDPolicy.pool(subuid: subuid, subgid: subgid) { return pool }
        let pool = try SubordinateIDPolicy.defaultPool(subuid: subuid, subgid: subgid, containers: configuration.defaultPoolContainers)
        let entry = SubordinateIDFile.Entry(owner: SubordinateIDPolicy.owner, start: pool.start, count: pool.count)
        try FileSystem.writeAtomically(configuration.subuidPath, text: subuid.appending(entry).text, mode: 0o644)
        try FileSystem.writeAtomically(configuration.subgidPath, text: subgid.appending(entry).text, mode: 0o644)
        log.notice("declared ECI's ID pool", metadata: ["pool": "\(pool)", "subuid": "\(configuration.subuidPath)"])
        return pool
    }
}

import ECICore
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

/// runc's message with a notify fd (runtime-spec "container process state").
public struct HandOver: Sendable, Equatable {
    public var fds: [String]
    /// The process the fd's filter belongs to (init at create, the new process at exec).
    public var pid: Int32
    public var metadata: String?
    public var containerID: String
    /// What ecid knows the container by: ECI's directory of it (`STATE/containers/HASH-ID`, the
    /// runc root's hash and the ID: `ContainerKey.directoryName`), which runc reports as the
    /// bundle at create and at every exec. Container IDs are unique only within one runc root,
    /// and several engines (dockerd, containerd's namespaces, Podman) use several roots: keyed
    /// by ID alone, a second container with a neighbour's ID replaced its record, and the
    /// neighbour's execs were judged by the other's initial mounts. The ID alone only when the
    /// bundle is not such a directory (a runc started without eci-runc).
    public var key: String
    public var status: String
    /// The container's init.
    public var initPID: Int32
    public var bundle: String?

    public init(json: [UInt8]) throws {
        let doc = try JSONValue.parse(json)
        guard let state = doc["state"], let id = state["id"]?.stringValue, !id.isEmpty,
            let pid = doc["pid"]?.int64Value, let pid32 = Int32(exactly: pid), pid32 > 0
        else { throw ECIError(.invalidArgument, "runc's message lacks pid or state.id") }
        // runc's own rule for IDs: the ID names files in ecid's directory (its record, its
        // helpers' answer records), so nothing else gets that far.
        guard id.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || "_+.-".utf8.contains($0)) }), id != ".", id != ".." else {
            throw ECIError(.invalidArgument, "runc's message names an invalid container ID")
        }
        fds = (doc["fds"]?.arrayValue ?? []).compactMap(\.stringValue)
        self.pid = pid32
        metadata = doc["metadata"]?.stringValue
        containerID = id
        status = state["status"]?.stringValue ?? ""
        initPID = state["pid"]?.int64Value.flatMap { Int32(exactly: $0) } ?? pid32
        bundle = state["bundle"]?.stringValue
        key = Self.key(bundle: bundle, id: id)
    }

    /// The bundle's last component when it is ECI's directory name for this ID (12 hex digits,
    /// a dash, the ID), else the ID.
    static func key(bundle: String?, id: String) -> String {
        guard let bundle, let name = bundle.split(separator: "/").last.map(String.init), name.hasSuffix("-" + id),
            name.utf8.count == 13 + id.utf8.count, name.utf8.prefix(12).allSatisfy({ isxdigit(Int32($0)) != 0 })
        else { return id }
        return name
    }
}

/// The containers ecid supervises, each with its initial mounts and the number of notify fds
/// (init's, and one per exec) still open; persisted in `ContainerRecords` so a restarted ecid
/// knows them again.
final class Registry: Sendable {
    final class Container: Sendable {
        let id: String
        let initial: MountCallPolicy.InitialMounts
        private let callLock = Mutex(())

        init(id: String, initial: MountCallPolicy.InitialMounts) {
            self.id = id
            self.initial = initial
        }

        func serialized<T: Sendable>(_ body: () -> T) -> T { callLock.withLock { _ in body() } }
    }

    struct Entry {
        let container: Container
        let record: ContainerRecord
        var fds = 0
    }

    let records: ContainerRecords
    private let entries = Mutex<[String: Entry]>([:])

    init(ecidDirectory: String) { records = ContainerRecords(ecidDirectory: ecidDirectory) }

    var count: Int { entries.withLock { $0.count } }

    /// The record of the container `key`, when ecid knows it.
    func record(_ key: String) -> ContainerRecord? { entries.withLock { $0[key]?.record } }

    /// The keys of every container ecid knows.
    var keys: [String] { entries.withLock { Array($0.keys) } }

    /// The container for a hand-over: the known one (an exec), or, at create only, a new
    /// record whose initial mounts are read now, before any of its trapped calls is answered,
    /// and saved before its fd goes to the holder. An exec into a container ecid has no record
    /// of is refused: its mounts now are not its initial mounts.
    func attach(_ message: HandOver, log: Logger) throws -> Container {
        // At create the container is new by definition: a record under its ID (a container of
        // the same name that is gone, restored but not yet reconciled) is replaced, never reused.
        if message.status != "creating" {
            guard let known = entries.withLock({ entries -> Container? in
                entries[message.key]?.fds += 1
                return entries[message.key]?.container
            }) else {
                throw ECIError(.refused, "container \(message.containerID) (\(message.status)) has no record of its initial mounts: not supervised")
            }
            return known
        }
        guard let start = ContainerRecords.startTime(of: message.initPID) else {
            throw ECIError(.notFound, "container \(message.containerID): its init \(message.initPID) is gone")
        }
        let record = ContainerRecord(id: message.key, initPID: message.initPID, initStart: start, initial: try Self.initialMounts(of: message, log: log))
        try records.save(record)
        return entries.withLock { entries in
            let entry = Entry(container: Container(id: record.id, initial: record.initial), record: record, fds: 1)
            entries[record.id] = entry
            return entry.container
        }
    }

    /// A record saved by a previous ecid, known again (no fd yet).
    func restore(_ record: ContainerRecord) {
        entries.withLock { entries in
            guard entries[record.id] == nil else { return }
            entries[record.id] = Entry(container: Container(id: record.id, initial: record.initial), record: record)
        }
    }

    /// A notify fd given back by the holder: its container, when ecid has its record.
    func reattach(_ id: String) -> Container? {
        entries.withLock { entries in
            entries[id]?.fds += 1
            return entries[id]?.container
        }
    }

    func detach(_ container: Container) {
        let gone = entries.withLock { entries -> Bool in
            guard var entry = entries[container.id], entry.container === container else { return false }
            entry.fds -= 1
            entries[container.id] = entry.fds <= 0 ? nil : entry
            return entry.fds <= 0
        }
        if gone { records.remove(container.id) }
    }

    /// As the range store reconciles with runc: a record with no notify fd whose container's
    /// init is gone stands for nothing and is removed. Returns the IDs removed.
    @discardableResult
    func reconcile() -> [String] {
        let stale = entries.withLock { entries -> [String] in
            let stale = entries.values.filter { $0.fds == 0 && !ContainerRecords.isAlive($0.record) }.map(\.record.id)
            stale.forEach { entries[$0] = nil }
            return stale
        }
        stale.forEach(records.remove)
        return stale
    }

    /// The container's mounts as its init sees them (runc sends the fd after the masks and
    /// read-only paths are in place, before the container's own program runs), plus the spec's
    /// masked and read-only paths from the bundle runc ran.
    static func initialMounts(of message: HandOver, log: Logger) throws -> MountCallPolicy.InitialMounts {
        let text = try FileSystem.readText("/proc/\(message.initPID)/mountinfo")
        let mounts = MountInfo.parse(text).map(MountHelper.policyMount)
        var masked: [String] = []
        var readonly: [String] = []
        if let bundle = message.bundle, let bytes = try? FileSystem.read(join(bundle, "config.json")), let spec = try? JSONValue.parse(bytes) {
            masked = (spec["linux"]?["maskedPaths"]?.arrayValue ?? []).compactMap(\.stringValue)
            readonly = (spec["linux"]?["readonlyPaths"]?.arrayValue ?? []).compactMap(\.stringValue)
        } else {
            log.warning("bundle unreadable: masks protected by their place under /proc and /sys only", metadata: ["container": "\(message.containerID)"])
        }
        guard !mounts.isEmpty else { throw ECIError(.invalidState, "container \(message.containerID): no mounts in /proc/\(message.initPID)/mountinfo") }
        return MountCallPolicy.InitialMounts(mounts: mounts, maskedPaths: masked, readonlyPaths: readonly)
    }
}

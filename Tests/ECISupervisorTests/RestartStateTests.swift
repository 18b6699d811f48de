import ECIPolicy
import Foundation
import Glibc
import Testing

@testable import ECISupervisor

/// What lets a restarted ecid go on: container records (saved, reloaded, reconciled) and the
/// in-flight slots, without a container.
@Suite struct RestartStateTests {
    static func scratch() throws -> String {
        var template = Array("/tmp/eci-restart-state-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    static let initial = MountCallPolicy.InitialMounts(
        mounts: [
            MountCallPolicy.Mount(device: "0:1", root: "/", mountPoint: "/", fsType: "overlay", options: ["rw"]),
            MountCallPolicy.Mount(device: "0:2", root: "/", mountPoint: "/proc", fsType: "proc", options: ["rw", "nosuid"]),
        ],
        maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"])

    @Test func recordsRoundTripAndUnreadableOnesGo() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let records = ContainerRecords(ecidDirectory: directory)
        let record = ContainerRecord(id: "c1", initPID: getpid(), initStart: ContainerRecords.startTime(of: getpid()) ?? 0, initial: Self.initial)
        try records.save(record)
        #expect(records.loadAll() == [record])
        // A corrupt record (nothing could vet with it) and a killed writer's temporary file go.
        FileManager.default.createFile(atPath: records.directory + "/bad.json", contents: Data("{".utf8))
        FileManager.default.createFile(atPath: records.directory + "/c2.json.tmp.1", contents: Data())
        #expect(records.loadAll() == [record])
        #expect(try FileManager.default.contentsOfDirectory(atPath: records.directory) == ["c1.json"])
        records.remove("c1")
        #expect(records.loadAll().isEmpty)
    }

    @Test func liveMeansTheSameProcessNotTheSamePID() throws {
        let start = try #require(ContainerRecords.startTime(of: getpid()))
        let me = ContainerRecord(id: "me", initPID: getpid(), initStart: start, initial: Self.initial)
        #expect(ContainerRecords.isAlive(me))
        var reused = me
        reused.initStart = start &+ 1
        #expect(!ContainerRecords.isAlive(reused), "a reused PID counts as the container")
        var gone = me
        gone.initPID = Int32.max - 1
        #expect(!ContainerRecords.isAlive(gone))
    }

    @Test func registryReconcilesRecordsWithoutFdOrContainer() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let registry = Registry(ecidDirectory: directory)
        let start = try #require(ContainerRecords.startTime(of: getpid()))
        let live = ContainerRecord(id: "live", initPID: getpid(), initStart: start, initial: Self.initial)
        let held = ContainerRecord(id: "held", initPID: Int32.max - 1, initStart: 1, initial: Self.initial)
        let gone = ContainerRecord(id: "gone", initPID: Int32.max - 1, initStart: 1, initial: Self.initial)
        for record in [live, held, gone] {
            try registry.records.save(record)
            registry.restore(record)
        }
        let container = try #require(registry.reattach("held"))
        #expect(container.initial == Self.initial, "the saved initial mounts, not rebuilt")
        #expect(registry.reattach("unknown") == nil)
        #expect(registry.reconcile() == ["gone"])
        #expect(Set(registry.records.loadAll().map(\.id)) == ["live", "held"])
        registry.detach(container)
        #expect(!FileManager.default.fileExists(atPath: registry.records.path("held")), "the last fd's hang-up removes the record")
    }

    @Test func inFlightSlotSurvivesItsMapping() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let slot = try InFlightSlot(directory: directory, slot: "ab")
        #expect(slot.last == 0)
        slot.record(0x1234_5678_9abc)
        // What a new ecid maps after the old one died.
        let again = try InFlightSlot(directory: directory, slot: "ab")
        #expect(again.last == 0x1234_5678_9abc)
        again.remove()
        #expect(!FileManager.default.fileExists(atPath: directory + "/ab"))
    }
}

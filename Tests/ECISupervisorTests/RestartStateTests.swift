import CSeccomp
import ECICore
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
        #expect(slot.lastNotification.id == 0 && slot.token == 0xab)
        var notif = eci_notif()
        notif.id = 0x1234_5678_9abc
        notif.pid = 42
        notif.nr = 165
        notif.args.1 = 0xdead_beef
        slot.record(notif)
        // What a new ecid maps after the old one died.
        let again = try InFlightSlot(directory: directory, slot: "ab")
        let (last, whole) = again.lastNotification
        #expect(last == 0x1234_5678_9abc)
        #expect(whole?.pid == 42 && whole?.nr == 165 && whole?.args.1 == 0xdead_beef, "the whole notification")
        again.remove()
        #expect(!FileManager.default.fileExists(atPath: directory + "/ab"))
        // A slot an older ecid wrote holds only the ID: known, but no arguments to act on.
        try FileSystem.write(directory + "/cd", withUnsafeBytes(of: UInt64(77).littleEndian) { Array($0) }, mode: 0o600)
        let old = try InFlightSlot(directory: directory, slot: "cd")
        #expect(old.lastNotification.id == 77 && old.lastNotification.notification == nil)
    }

    /// A helper's answer record: final once its lock can be taken (the helper gone); while a
    /// helper holds it past the deadline, its container's unrecorded calls are not performed.
    @Test func answerRecordsAreReadOnceTheirHelperIsGone() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Two helpers of container "c1": one finished a call, one died in one; "c2" still runs.
        func helper(_ container: String, slot: UInt64, id: UInt64, error: Int32?) throws -> Int32 {
            let (_, fd) = try AnswerFiles.create(directory: directory, container: container)
            #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
            let mapping = try SharedMapping(fd: fd, size: MemoryLayout<eci_answer_record>.size)
            let record = mapping.address.assumingMemoryBound(to: eci_answer_record.self)
            eci_answer_begin(record, slot, id)
            if let error { eci_answer_end(record, error) }
            mapping.unmap()
            return fd
        }
        close(try helper("c1", slot: 1, id: 10, error: 16))
        close(try helper("c1", slot: 2, id: 20, error: nil))
        let running = try helper("c2-with-dashes", slot: 3, id: 30, error: 0)
        let previous = AnswerFiles.collect(directory: directory, within: 0.2)
        #expect(previous.finished == [AnswerFiles.Previous.Call(slot: 1, id: 10): 16])
        #expect(previous.unfinished == [AnswerFiles.Previous.Call(slot: 2, id: 20), AnswerFiles.Previous.Call(slot: 3, id: 30)])
        #expect(previous.unsettled == ["c2-with-dashes"], "a record still locked is not final")
        #expect(try FileSystem.listDirectory(directory).isEmpty, "the records are consumed")
        close(running)
    }
}

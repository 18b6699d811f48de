import ECICore
import ECITestSupport
import Foundation
import Logging
import Testing

@testable import ECIRuntime

/// The ID-range store, in this process and across many real processes (eci-test-helper),
/// including processes killed with SIGKILL at random points.
@Suite(.serialized) struct RangeStoreTests {
    struct Fixture {
        let directory: String
        let configuration: RuntimeConfiguration
        let runcRoot: String

        init(slots: Int? = nil) throws {
            directory = try TestSupport.temporaryDirectory("ranges")
            var configuration = RuntimeConfiguration()
            configuration.stateDirectory = directory + "/state"
            configuration.subuidPath = directory + "/subuid"
            configuration.subgidPath = directory + "/subgid"
            configuration.defaultPoolContainers = 64
            if let slots {
                let line = "eci:1048576:\(slots * 65536)\n"
                try line.write(toFile: configuration.subuidPath, atomically: true, encoding: .utf8)
                try line.write(toFile: configuration.subgidPath, atomically: true, encoding: .utf8)
            }
            self.configuration = configuration
            runcRoot = directory + "/runc"
        }

        var store: RangeStore { RangeStore(configuration: configuration, log: Logger(label: "test")) }
        func key(_ id: String) -> ContainerKey { ContainerKey(runcRoot: runcRoot, id: id) }
        func helper(_ args: [String]) throws -> [String] {
            [try TestSupport.binary("eci-test-helper")] + [args[0], configuration.stateDirectory, configuration.subuidPath, configuration.subgidPath]
                + args.dropFirst()
        }
        func cleanup() { try? FileManager.default.removeItem(atPath: directory) }
    }

    @Test func declaresADefaultPoolOnce() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        _ = try f.store.allocate(f.key("a"))
        _ = try f.store.allocate(f.key("b"))
        let subuid = try String(contentsOfFile: f.configuration.subuidPath, encoding: .utf8)
        #expect(subuid == "eci:1048576:4194304\n")
        #expect(try String(contentsOfFile: f.configuration.subgidPath, encoding: .utf8) == subuid)
    }

    @Test func exhaustedPoolIsAClearErrorAndReleaseFreesASlot() throws {
        let f = try Fixture(slots: 2)
        defer { f.cleanup() }
        let a = try f.store.allocate(f.key("a"))
        let b = try f.store.allocate(f.key("b"))
        #expect(!a.range.overlaps(b.range))
        #expect(a.base != 0 && b.base != 0)
        do {
            _ = try f.store.allocate(f.key("c"))
            Issue.record("a third container got a range from a two-slot pool")
        } catch let error as ECIError {
            #expect(error.code == .exhausted)
            #expect(error.message.contains("no free ID range"))
        }
        #expect(try f.store.release(f.key("a")))
        let c = try f.store.allocate(f.key("c"))
        #expect(c.base == a.base)
    }

    @Test func sameContainerTwiceIsRefused() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        _ = try f.store.allocate(f.key("a"))
        #expect(throws: ECIError.self) { try f.store.allocate(f.key("a")) }
    }

    @Test func reconcilesWithRuncState() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        // "live": runc knows it. "gone": its creator finished, but runc's state is gone (crash, reboot).
        try FileManager.default.createDirectory(atPath: f.runcRoot + "/live", withIntermediateDirectories: true)
        try "{}".write(toFile: f.runcRoot + "/live/state.json", atomically: true, encoding: .utf8)
        for id in ["live", "gone"] {
            _ = try f.store.allocate(f.key(id))
        }
        // Their creator (this process) finished long ago, as far as the store can tell.
        for id in ["live", "gone"] {
            try f.store.update(f.key(id)) { $0.creator = ProcessIdentity(pid: 999_998, startTime: 1) }
        }
        // "orphan": being created by a process that no longer exists.
        _ = try f.store.allocate(f.key("orphan"))
        let workDir = f.directory + "/eci-work"
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        try f.store.update(f.key("orphan")) {
            $0.creator = ProcessIdentity(pid: 999_999, startTime: 1)
            $0.workDirectory = workDir
        }

        let ids = try f.store.records().map(\.key.id)
        #expect(ids == ["live"])
        #expect(!FileManager.default.fileExists(atPath: workDir))
    }

    /// Starts a helper process with its output to `outputPath` (no shell in between).
    func launch(_ arguments: [String], outputPath: String) throws -> Process {
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        try output.close()
        return process
    }

    @Test func concurrentProcessesGetExclusiveRanges() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let count = 32
        let processes = try (0..<count).map { i in
            try launch(f.helper(["allocate", "c\(i)", "3"]), outputPath: "\(f.directory)/out\(i)")
        }
        processes.forEach { $0.waitUntilExit() }
        var bases: [UInt32] = []
        for i in 0..<count {
            let text = try String(contentsOfFile: "\(f.directory)/out\(i)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let base = UInt32(text) else {
                Issue.record("allocator process \(i) failed: \(text)")
                continue
            }
            bases.append(base)
        }
        #expect(bases.count == count)
        #expect(Set(bases).count == count, "two processes got the same range: \(bases.sorted())")
        #expect(bases.allSatisfy { $0 >= 1_048_576 && ($0 - 1_048_576) % 65536 == 0 })
        // All holders have exited: their "creating" records are reclaimed.
        #expect(try f.store.records().isEmpty)
    }

    @Test func killNineAtRandomPointsLeavesRepairableState() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        for round in 0..<4 {
            let processes = try (0..<6).map { p in
                try launch(f.helper(["churn", "r\(round)p\(p)", "100000"]), outputPath: "\(f.directory)/churn\(p)")
            }
            // Let them run, then SIGKILL each at a different random moment.
            usleep(300_000)
            for process in processes {
                usleep(UInt32.random(in: 1_000...90_000))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal, "a churn process ended before it was killed")
            }
            // The table always parses, and the next invocation reclaims every dead process's range.
            let records = try f.store.records()
            #expect(records.isEmpty, "round \(round): stale records survived: \(records.map(\.key.id))")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.configuration.stateDirectory).filter { $0.contains(".tmp.") }
            #expect(leftovers.isEmpty)
        }
        // And the store still works.
        let record = try f.store.allocate(f.key("after"))
        #expect(record.base >= 1_048_576)
    }
}

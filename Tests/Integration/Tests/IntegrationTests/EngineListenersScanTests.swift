import ECICore
import ECIPolicy
import ECITestSupport
import Foundation
import Testing

@testable import ECIRuntime


/// The scan against real processes: a listener whose command is an engine's, next to the same
/// listener under another command.
@Suite(.serialized) struct EngineListenersScanTests {
    func identity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(st)
    }

    @Test func findsTheEnginesSocketAndItsDirectoriesByIdentity() throws {
        try TestSupport.requireRoot()
        let dir = try TestSupport.temporaryDirectory("listeners")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/engine/api", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/app", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/alias", withDestinationPath: dir + "/engine")
        // The engine names its socket through a symlink; the walk up must still find the real directories.
        let engine = try FakeListener.start(as: "dockerd", on: dir + "/alias/api/docker.sock", in: dir)
        let other = try FakeListener.start(as: "nginx", on: dir + "/app/app.sock", in: dir)
        defer {
            // SIGKILL: the test runner's children may inherit an ignored SIGTERM.
            kill(engine.processIdentifier, SIGKILL)
            kill(other.processIdentifier, SIGKILL)
            engine.waitUntilExit()
            other.waitUntilExit()
        }
        // Thirty shims, as with thirty running containers, for the cost of a scan.
        try FileManager.default.createDirectory(atPath: dir + "/s", withIntermediateDirectories: true)
        var shims: [Process] = []
        defer {
            for shim in shims { kill(shim.processIdentifier, SIGKILL) }
            for shim in shims { shim.waitUntilExit() }
        }
        for i in 0..<30 { shims.append(try FakeListener.start(as: "containerd-shim", on: dir + "/s/\(i)", in: dir + "/s", link: "shim\(i)/containerd-shim")) }
        let start = ContinuousClock.now
        let rounds = 20
        var listeners = EngineListeners.scan()
        for _ in 1..<rounds { listeners = EngineListeners.scan() }
        let each = (ContinuousClock.now - start) / rounds
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil }.count ?? 0
        print("EngineListeners.scan: \(each) per scan, \(processes) processes, \(listeners.sockets.count) engine sockets")

        let socket = try #require(identity(dir + "/engine/api/docker.sock"))
        let found = try #require(listeners.listener(for: socket, isDirectory: false), "the engine's socket is found")
        // Engines other tests (or the machine) run at the same time are found too: count ours.
        let ours = listeners.sockets.values.filter { $0.path.hasPrefix(dir + "/") }
        #expect(ours.count == 31, "the engine's socket and thirty shims': \(ours.map(\.path))")
        #expect(found.0.command == "dockerd" && found.0.path == dir + "/alias/api/docker.sock" && !found.contained)
        for parent in [dir + "/engine/api", dir + "/engine", dir, "/"] {
            let id = try #require(identity(parent))
            #expect(listeners.listener(for: id, isDirectory: true)?.contained == true, "\(parent) holds the engine's socket")
        }
        // The neighbours: another program's socket and its directory.
        #expect(listeners.listener(for: try #require(identity(dir + "/app/app.sock")), isDirectory: false) == nil)
        #expect(listeners.listener(for: try #require(identity(dir + "/app")), isDirectory: true) == nil)
    }
}

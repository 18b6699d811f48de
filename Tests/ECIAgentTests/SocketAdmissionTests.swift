import ECICore
import ECIOCI
import ECIPolicy
import ECIRuntime
import Foundation
import Logging
import Testing

@testable import ECIAgent

/// Socket-admission keys end to end without an engine: prepare writes the run key, the filter
/// stamps with it, eci-runc's check accepts that stamp and refuses a missing one, a forged one
/// and one made under other settings.
struct SocketAdmissionTests {
    func scratch() throws -> (AgentPaths, String) {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-admission-\(UUID().uuidString)"
        try FileSystem.makeDirectories(dir + "/etc", mode: 0o755)
        var paths = AgentPaths()
        paths.dataRoot = dir + "/data"
        paths.stateDirectory = dir + "/run"
        paths.engineDirectory = dir + "/run/engine"
        paths.persistentDirectory = dir + "/var/lib/eci"
        // Files the test writes are its own user's: trust that owner, so these tests need no root.
        paths.trustedOwner = getuid()
        paths.baseDaemonConfig = dir + "/etc/daemon.json"
        paths.imageSettings = dir + "/etc/admin-settings.json"
        paths.hostSettings = dir + "/fw_cfg/raw"
        return (paths, dir)
    }

    static let settingsA = Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli"]}}}}"#.utf8)
    static let settingsB = Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["*"]}}}}"#.utf8)

    var vmPolicy: RestrictedMountPolicy {
        var policy = RestrictedMountPolicy.defaults
        policy.exactSources = ["/run/eci-api/docker.sock"]
        return policy
    }

    func spec(stamp: String?, source: String = "/run/eci-api/docker.sock") throws -> OCISpec {
        let annotations = stamp.map { #","annotations":{"\#(SocketAdmissionStamp.annotation)":"\#($0)","x":"y"}"# } ?? ""
        return try OCISpec(bytes: Array(#"{"ociVersion":"1.0.2","mounts":[{"destination":"/var/run/docker.sock","type":"bind","source":"\#(source)","options":["rbind"]}]\#(annotations)}"#.utf8))
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    @Test func prepareWritesARunKeyThatFollowsTheSettings() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsA)
        #expect(mode(paths.socketAdmissionMasterKey) == 0o600 && mode(paths.persistentDirectory) == 0o700)
        #expect(mode(paths.socketAdmissionRunKey) == 0o600)
        let first = try SocketAdmissionKeys.runKey(paths: paths)
        let master = try FileSystem.read(paths.socketAdmissionMasterKey)
        // Next boot, same settings: same master, same run key (admitted containers keep working).
        try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsA)
        #expect(try FileSystem.read(paths.socketAdmissionMasterKey) == master)
        #expect(try SocketAdmissionKeys.runKey(paths: paths) == first)
        // Other settings: another run key.
        try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsB)
        #expect(try SocketAdmissionKeys.runKey(paths: paths) != first)
        // Another VM (another master key), same settings: another run key.
        let (other, otherDir) = try scratch()
        defer { try? FileSystem.removeTree(otherDir) }
        try SocketAdmissionKeys.install(paths: other, settingsFile: Self.settingsA)
        #expect(try SocketAdmissionKeys.runKey(paths: other) != first)

        // A master key others could read, or a malformed one, is an error (the engine stays stopped).
        chmod(paths.socketAdmissionMasterKey, 0o644)
        #expect(throws: ECIError.self) { try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsA) }
        try FileSystem.writeAtomically(paths.socketAdmissionMasterKey, Array("short\n".utf8), mode: 0o600)
        #expect(throws: ECIError.self) { try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsA) }
        #expect(throws: ECIError.self) { try SocketAdmissionKeys.runKey(paths: try scratch().0) }
    }

    @Test func prepareInstallsTheRunKeyWithTheEngineConfiguration() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.write(paths.imageSettings, Self.settingsA, mode: 0o644)
        var logger = Logger(label: "eci.test.prepare")
        logger.logLevel = .critical
        let report = Preparation(paths: paths, logger: logger).run(probes: [ProbeResult(name: "user-namespaces", ok: true, detail: "fine")])
        #expect(report.ok, "\(report.problems)")
        let installed = try SocketAdmissionKeys.runKey(paths: paths)
        let expected = SocketAdmissionStamp.runKey(
            masterKey: try SocketAdmissionStamp.decodeKey(try FileSystem.read(paths.socketAdmissionMasterKey), source: "m"),
            settingsDigest: try SocketAdmissionStamp.settingsDigest(Self.settingsA))
        #expect(installed == expected)
    }

    @Test func theRuntimeAcceptsOnlyTheFiltersStampUnderTheKeyInForce() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsA)
        let runKey = try SocketAdmissionKeys.runKey(paths: paths)
        let good = SocketAdmissionStamp.stamp(runKey: runKey)
        let state = paths.stateDirectory

        // What the filter wrote at create: accepted.
        try SocketAdmissionCheck.verify(try spec(stamp: good), policy: vmPolicy, stateDirectory: state)
        // No stamp (created before, or around, the filter), a forged one, one from other settings.
        for (stamp, words) in [(nil, "no admission stamp"), ("00", "does not hold"), (SocketAdmissionStamp.stamp(runKey: [UInt8](repeating: 0, count: 32)), "does not hold")] as [(String?, String)] {
            #expect(throws: ECIError.self) { try SocketAdmissionCheck.verify(try spec(stamp: stamp), policy: vmPolicy, stateDirectory: state) }
            do {
                try SocketAdmissionCheck.verify(try spec(stamp: stamp), policy: vmPolicy, stateDirectory: state)
            } catch let error as ECIError {
                #expect(error.message.contains(words) && error.code == .refused, "\(error.message)")
            }
        }
        // The settings change (a reboot with others): the old stamp fails the next create.
        try SocketAdmissionKeys.install(paths: paths, settingsFile: Self.settingsB)
        #expect(throws: ECIError.self) { try SocketAdmissionCheck.verify(try spec(stamp: good), policy: vmPolicy, stateDirectory: state) }
        // The key file gone (the VM's policy names the socket): refused, not skipped.
        unlink(paths.socketAdmissionRunKey)
        #expect(throws: ECIError.self) { try SocketAdmissionCheck.verify(try spec(stamp: good), policy: vmPolicy, stateDirectory: state) }
        // Neighbours: a spec without the socket needs no stamp; a plain host's policy (no exact
        // sources) checks nothing, key or not.
        try SocketAdmissionCheck.verify(try spec(stamp: nil, source: "/srv/data"), policy: vmPolicy, stateDirectory: state)
        try SocketAdmissionCheck.verify(try spec(stamp: nil), policy: .defaults, stateDirectory: state)
        // The socket named through `..` is still the socket.
        #expect(throws: ECIError.self) {
            try SocketAdmissionCheck.verify(try spec(stamp: nil, source: "/run/eci-api/../eci-api/docker.sock"), policy: vmPolicy, stateDirectory: state)
        }
    }
}

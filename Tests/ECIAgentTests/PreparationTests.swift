import ECICore
import ECIOCI
import ECIRuntime
import Foundation
import Logging
import Testing

@testable import ECIAgent

/// The boot step's decisions: what the engine is configured with, where settings come from,
/// and that any failure leaves no engine configuration behind.
struct PreparationTests {
    func scratch() throws -> (AgentPaths, String) {
        let dir = FileManager.default.temporaryDirectory.path + "/eci-prepare-\(UUID().uuidString)"
        try FileSystem.makeDirectories(dir + "/etc", mode: 0o755)
        var paths = AgentPaths()
        paths.dataRoot = dir + "/data"
        paths.stateDirectory = dir + "/run"
        paths.engineDirectory = dir + "/run/engine"
        paths.baseDaemonConfig = dir + "/etc/daemon.json"
        paths.imageSettings = dir + "/etc/admin-settings.json"
        paths.hostSettings = dir + "/fw_cfg/raw"
        paths.persistentDirectory = dir + "/var/lib/eci"
        // Files the test writes are its own user's: trust that owner, so these tests need no root.
        paths.trustedOwner = getuid()
        return (paths, dir)
    }

    let okProbes = [ProbeResult(name: "user-namespaces", ok: true, detail: "fine")]

    @Test func daemonConfigKeepsTheAdminsKeysButNotThoseIsolationNeeds() throws {
        let base = try JSONValue.parse(#"{"log-level":"debug","hosts":["tcp://0.0.0.0:2375"],"default-runtime":"runc","userns-remap":"default","runtimes":{"other":{"path":"/x"}},"builder":{"gc":{"enabled":true}}}"#)
        let (config, dropped) = try EngineConfiguration.daemonConfig(base: base, paths: AgentPaths())
        #expect(config["log-level"]?.stringValue == "debug")
        #expect(config["hosts"] == .array([.string("unix:///run/eci/engine/docker.sock")]))
        #expect(config["default-runtime"]?.stringValue == "eci")
        #expect(config["userns-remap"] == nil)
        #expect(config["runtimes"]?["other"]?["path"]?.stringValue == "/x")
        #expect(config["runtimes"]?["eci"]?["path"]?.stringValue == "/usr/bin/eci-runc")
        #expect(config["builder"]?["gc"]?["enabled"]?.boolValue == true)
        #expect(config["builder"]?["entitlements"]?["network-host"]?.boolValue == false)
        #expect(config["builder"]?["entitlements"]?["security-insecure"]?.boolValue == false)
        #expect(Set(dropped) == ["hosts", "default-runtime", "userns-remap"])
        #expect(throws: ECIError.self) { try EngineConfiguration.daemonConfig(base: .array([]), paths: AgentPaths()) }
        #expect(throws: ECIError.self) { try EngineConfiguration.parseBase(Array("{".utf8), source: "x") }
    }

    @Test func settingsComeFromTheHostThenTheImageThenDefaults() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        #expect(try AgentSettingsLoader.load(paths: paths).origin == .defaults)
        let image = #"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["docker:cli"]}}}}"#
        try FileSystem.write(paths.imageSettings, Array(image.utf8), mode: 0o644)
        let fromImage = try AgentSettingsLoader.load(paths: paths)
        #expect(fromImage.origin == .image && fromImage.settings.socketMountImages.count == 1)
        try FileSystem.makeDirectories(dir + "/fw_cfg", mode: 0o755)
        try FileSystem.write(paths.hostSettings, Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"imageList":{"images":["*"]}}}}"#.utf8), mode: 0o644)
        let fromHost = try AgentSettingsLoader.load(paths: paths)
        #expect(fromHost.origin == .host && fromHost.settings.socketMountAnyImage)
    }

    @Test func aWritableOrMalformedSettingsFileKeepsTheEngineStopped() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        let preparation = Preparation(paths: paths, logger: Logger(label: "test"))
        try FileSystem.write(paths.imageSettings, Array("{}".utf8), mode: 0o666)
        chmod(paths.imageSettings, 0o666)
        var report = preparation.run(probes: okProbes)
        #expect(!report.ok && report.problems.first?.contains("writable by root only") == true)
        #expect(!FileSystem.exists(paths.daemonConfig))
        try FileSystem.write(paths.imageSettings, Array(#"{"enhancedContainerIsolation":{"dockerSocketMount":{"commandList":{"type":"maybe"}}}}"#.utf8), mode: 0o644)
        chmod(paths.imageSettings, 0o644)
        report = preparation.run(probes: okProbes)
        #expect(!report.ok && report.problems.first?.contains("commandList.type") == true)
        #expect(!FileSystem.exists(paths.daemonConfig))
        #expect(try PrepareReport.read(paths.prepareReport) == report)
    }

    @Test func aFailedProbeKeepsTheEngineStoppedAndRemovesAnEarlierConfiguration() throws {
        let (paths, dir) = try scratch()
        defer { try? FileSystem.removeTree(dir) }
        let preparation = Preparation(paths: paths, logger: Logger(label: "test"))
        let good = preparation.run(probes: okProbes)
        #expect(good.ok && good.settingsOrigin == .defaults)
        #expect(FileSystem.exists(paths.daemonConfig))
        #expect(readlink(paths.engineBinDirectory + "/runc") == paths.runtimeBinary)
        let bad = preparation.run(probes: okProbes + [ProbeResult(name: "fuse", ok: false, detail: "no /dev/fuse")])
        #expect(!bad.ok && bad.problems == ["kernel probe fuse failed: no /dev/fuse"])
        #expect(!FileSystem.exists(paths.daemonConfig) && !FileSystem.exists(paths.effectiveSettings))
        #expect(!preparation.run(probes: []).ok)
    }

    func readlink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = Foundation.readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

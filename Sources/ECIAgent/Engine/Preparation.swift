import ECICore
import ECIContract
import ECIOCI
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

// `PrepareReport` (with `ProbeResult` and `SettingsOrigin`) is the control contract's
// (ECIContract): the host reads it inside the agent's status.

/// The boot step that runs before containerd and the engine (`eci-prepare.service`): probe
/// the kernel, read the settings, write the engine's configuration. Any failure leaves no
/// engine configuration behind, so the engine cannot start (its unit also requires this one).
public struct Preparation: Sendable {
    public var paths: AgentPaths
    public var logger: Logger

    public init(paths: AgentPaths, logger: Logger) {
        self.paths = paths
        self.logger = logger
    }

    /// Runs the step with `probes` (from `eci-agent probe`, run in a process of its own).
    public func run(probes: [ProbeResult]) -> PrepareReport {
        var report = PrepareReport(ok: false, probes: probes, settingsOrigin: nil, problems: [], overriddenEngineKeys: [])
        for probe in probes where !probe.ok {
            report.problems.append("kernel probe \(probe.name) failed: \(probe.detail)")
        }
        if probes.isEmpty { report.problems.append("no kernel probe ran") }
        var loaded: AgentSettingsLoader.Loaded?
        do {
            loaded = try AgentSettingsLoader.load(paths: paths)
            report.settingsOrigin = loaded?.origin
        } catch {
            report.problems.append("settings: \(error)")
        }
        if report.problems.isEmpty {
            do {
                try protectBindRoots()
            } catch {
                report.problems.append("bind roots: \(error)")
            }
        }
        if report.problems.isEmpty, let loaded {
            do {
                report.overriddenEngineKeys = try writeEngineConfiguration(settings: loaded)
            } catch {
                report.problems.append("engine configuration: \(error)")
            }
        }
        report.ok = report.problems.isEmpty
        if !report.ok { removeEngineConfiguration() }
        do {
            try FileSystem.makeDirectories(paths.stateDirectory, mode: 0o711)
            try FileSystem.writeAtomically(paths.prepareReport, report.encoded(), mode: 0o644)
        } catch {
            logger.error("can't write the prepare report", metadata: ["error": "\(error)"])
        }
        return report
    }

    /// Writes daemon.json, the engine's `runc`, the effective settings. Returns the admin keys ECI overrode.
    func writeEngineConfiguration(settings: AgentSettingsLoader.Loaded) throws -> [String] {
        let base = FileSystem.exists(paths.baseDaemonConfig)
            ? try EngineConfiguration.parseBase(try FileSystem.read(paths.baseDaemonConfig), source: paths.baseDaemonConfig) : nil
        let (config, dropped) = try EngineConfiguration.daemonConfig(base: base, paths: paths)
        for key in dropped {
            logger.warning("engine setting overridden", metadata: ["key": "\(key)", "why": "\(EngineConfiguration.overridden[key] ?? "")"])
        }
        try FileSystem.makeDirectories(paths.stateDirectory, mode: 0o711)
        try FileSystem.makeDirectories(paths.engineDirectory, mode: 0o700)
        guard chmod(paths.engineDirectory, 0o700) == 0 else { throw ECIError.system("chmod \(paths.engineDirectory)", errno: errno) }
        try FileSystem.writeAtomically(paths.daemonConfig, Array((config.serialized() + "\n").utf8), mode: 0o600)
        try FileSystem.makeDirectories(paths.engineBinDirectory, mode: 0o755)
        let runc = paths.engineBinDirectory + "/runc"
        unlink(runc)
        guard symlink(paths.runtimeBinary, runc) == 0 else { throw ECIError.system("link \(runc) to \(paths.runtimeBinary)", errno: errno) }
        try FileSystem.writeAtomically(paths.effectiveSettings, settings.bytes, mode: 0o600)
        try SocketAdmissionKeys.install(paths: paths, settingsFile: settings.bytes)
        logger.info("engine configured", metadata: ["config": "\(paths.daemonConfig)", "settings": "\(settings.origin.rawValue)"])
        return dropped
    }

    /// Makes the directories containers may bind symlink-blind for the VM before the engine
    /// starts (`SymlinkBlindRoots`), then checks that nothing under them still follows symlinks.
    func protectBindRoots() throws {
        let policy = try RuntimeConfiguration.load(path: nil, environment: [:]).loadPolicy()
        guard let roots = policy.allowedBindRoots, !roots.isEmpty else { return }
        try SymlinkBlindRoots.apply(roots: roots, mounts: try MountInfo.current())
        let left = SymlinkBlindRoots.unprotectedMounts(roots: roots, mounts: try MountInfo.current())
        guard left.isEmpty else { throw ECIError(.unsupported, "still following symlinks after nosymfollow: \(left.joined(separator: ", "))") }
        logger.info("bind roots are nosymfollow", metadata: ["roots": "\(roots.joined(separator: ","))"])
    }

    func removeEngineConfiguration() {
        for path in [paths.daemonConfig, paths.engineBinDirectory + "/runc", paths.effectiveSettings] { unlink(path) }
    }

    /// Runs `executable probe` (a fresh single-threaded process: the probes enter a private mount
    /// namespace) and decodes its results; a probe process that fails yields one failed probe.
    public func runProbeProcess(executable: String) -> [ProbeResult] {
        var attributes = SpawnAttributes([executable, "probe", "--data-root", paths.dataRoot], environment: ProcessInfo.processInfo.environment)
        attributes.stdin = .null
        attributes.defaultSignalActions = true
        let result: ChildProcess.Output
        do {
            // Its log lines go where ours go (stderr inherited); only the results are read.
            result = try ChildProcess.run(attributes, captureStderr: false)
        } catch {
            return [ProbeResult(name: "probe-process", ok: false, detail: "can't run \(executable) probe: \(error)")]
        }
        guard let results = try? JSONDecoder().decode([ProbeResult].self, from: Data(result.stdout)) else {
            return [ProbeResult(name: "probe-process", ok: false, detail: "\(executable) probe exited with \(result.status) and no results")]
        }
        return results
    }
}

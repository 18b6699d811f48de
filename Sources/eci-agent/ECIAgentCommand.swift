// eci-agent: the ECI guest agent. `prepare` runs before the engine (probes, settings, engine
// configuration); `serve` runs for the VM's life (the engine API filter, the host channel);
// `check-ecid` runs before containerd and the engine start (no syscall supervisor, no engine).
import ArgumentParser
import ECIAgent
import ECICore
import ECIRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging

@main
struct ECIAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eci-agent",
        abstract: "ECI's guest agent: kernel probes, engine configuration, the engine API filter and the host channel.",
        subcommands: [Prepare.self, Probe.self, Serve.self, CheckEcid.self])
}

func makeLogger(_ label: String) -> Logger {
    let destination = LogDestination(path: nil, format: .text)
    return Logger(label: label) { label in LineLogHandler(label: label, destination: destination, level: .info) }
}

/// The VM's paths by default; every one can be moved (tests run the agent on a host).
struct PathOptions: ParsableArguments {
    @Option(help: "The engine's data root.") var dataRoot: String?
    @Option(help: "ECI's state directory (the engine's configuration goes in its engine/).") var stateDir: String?
    @Option(help: "The admin's engine settings (daemon.json) ECI's keys override.") var baseConfig: String?
    @Option(help: "The settings file baked into the image.") var imageSettings: String?
    @Option(help: "The settings file the host passes at boot.") var hostSettings: String?
    @Option(help: "The isolated runtime's executable.") var runtime: String?
    @Option(help: "ECI's persistent state (the socket-admission master key).") var persistentDir: String?

    var paths: AgentPaths {
        var paths = AgentPaths()
        if let dataRoot { paths.dataRoot = dataRoot }
        if let baseConfig { paths.baseDaemonConfig = baseConfig }
        if let imageSettings { paths.imageSettings = imageSettings }
        if let hostSettings { paths.hostSettings = hostSettings }
        if let runtime { paths.runtimeBinary = runtime }
        if let persistentDir { paths.persistentDirectory = persistentDir }
        if let stateDir {
            paths.stateDirectory = stateDir
            paths.engineDirectory = stateDir + "/engine"
        }
        return paths
    }
}

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Probe the kernel, read the settings and write the engine's configuration; fail (and keep the engine stopped) if isolation can't be guaranteed.")

    @OptionGroup var options: PathOptions

    func run() throws {
        let logger = makeLogger("eci-agent")
        let preparation = Preparation(paths: options.paths, logger: logger)
        let executable = (try? FileSystem.realPath("/proc/self/exe")) ?? CommandLine.arguments[0]
        let report = preparation.run(probes: preparation.runProbeProcess(executable: executable))
        for probe in report.probes {
            print("eci-agent: probe \(probe.name): \(probe.ok ? "ok" : "FAILED"): \(probe.detail)")
        }
        guard report.ok else {
            for problem in report.problems { print("eci-agent: the engine stays stopped: \(problem)") }
            throw ExitCode(1)
        }
        print("eci-agent: engine configured (settings from \(report.settingsOrigin?.rawValue ?? "?"))")
    }
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Try every kernel feature isolation needs; print the results as JSON (runs in a private mount namespace).")

    @Option(help: "The engine's data root.") var dataRoot: String = "/var/lib/docker"
    @Option(help: "The first ID of the range the probes map.") var idBase: UInt32 = 1 << 20

    func run() throws {
        let results = KernelProbes.run(dataRoot: dataRoot, idBase: idBase)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try Syscall.writeAll(STDOUT_FILENO, Array(try encoder.encode(results)) + Array("\n".utf8), what: "probe results to stdout")
        if results.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the filtered engine API and the host channel.")

    @OptionGroup var options: PathOptions

    func run() throws {
        try AgentService(paths: options.paths, logger: makeLogger("eci-agent")).run()
    }
}

struct CheckEcid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-ecid",
        abstract: "Check that ECI's syscall supervisor (ecid) answers on its socket; fail (and keep the engine stopped) if it does not.")

    @OptionGroup var options: PathOptions
    @Option(help: "Seconds to wait for ecid's socket (ecid may still be starting).") var timeout: Double = 10

    func run() throws {
        let check = EcidCheck(paths: options.paths)
        do {
            try check.wait(timeout: timeout)
        } catch {
            print("eci-agent: the engine stays stopped: \(error)")
            throw ExitCode(1)
        }
        print("eci-agent: ecid answers at \(check.socketPath)")
    }
}

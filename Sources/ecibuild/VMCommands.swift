// ecibuild run / status / stop: the ECI VM on this machine.
import ArgumentParser
import ECICore
import ECIIO
import ECIHost
import ECIOCI
import Foundation
import Logging

/// Where `ecibuild image` records its last output, which `ecibuild run` boots by default.
enum LastImage {
    static var recordPath: String {
        let env = ProcessInfo.processInfo.environment
        let state = env["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((env["HOME"] ?? "/root") + "/.local/state")
        return state + "/eci/last-image"
    }

    static func record(_ directory: String) {
        guard let absolute = try? FileSystem.realPath(directory) else { return }
        try? FileSystem.makeDirectories(parentDirectory(recordPath), mode: 0o755)
        try? FileSystem.writeAtomically(recordPath, text: absolute + "\n", mode: 0o644)
    }

    static func load() -> String? {
        (try? FileSystem.readText(recordPath))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct VMDirectoryOption: ParsableArguments {
    @Option(name: .customLong("vm-dir"), help: "The VM's directory: sockets, logs, disk overlay (default: $ECI_VM_DIR or ~/.local/state/eci/vm).")
    var path: String?

    var directory: VMDirectory { path.map { VMDirectory(path: $0) } ?? .standard() }
}

func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("ecibuild: \(error)\n".utf8))
    return ExitCode(1)
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot the ECI image under QEMU and serve its engine API on a host socket.",
        discussion: """
            Prints DOCKER_HOST=unix://... on a line of its own once the engine answers. Without \
            --detach, runs until interrupted (Ctrl-C stops the VM cleanly). The console log is \
            in the VM directory (console.log).
            """)

    @Argument(help: "An `ecibuild image` output directory (default: the last one built).")
    var image: String?

    @OptionGroup var vmDirectory: VMDirectoryOption

    @Flag(help: "Return once the engine answers and leave the VM running (`ecibuild stop` stops it).")
    var detach = false

    @Option(help: "kvm, tcg, or auto (KVM when /dev/kvm works).")
    var accel: String = "auto"

    @Option(help: "Virtual CPUs.") var cpus: Int = 2
    @Option(help: "Memory in MiB.") var memory: Int = 2048

    @Option(help: "An admin-settings.json for the agent (passed through QEMU fw_cfg; default: the image's).")
    var settings: String?

    @Option(help: "Seconds to wait for the engine.") var bootTimeout: Int = 900

    @Flag(help: .hidden) var supervise = false

    func resolvedImage() throws -> ImageFiles {
        guard let directory = image ?? LastImage.load() ?? (FileSystem.exists("out/manifest.json") ? "out" : nil) else {
            throw ECIError(.notFound, "no image given and none built yet: run `ecibuild image` first, or pass its output directory")
        }
        let files = ImageFiles(directory: (try? FileSystem.realPath(directory)) ?? directory)
        try files.validate()
        return files
    }

    func run() throws {
        if !detach || supervise { VMSupervisor.blockStopSignals() }
        do {
            guard ["auto", "kvm", "tcg"].contains(accel) else { throw ValidationError("--accel must be kvm, tcg or auto") }
            let files = try resolvedImage()
            if let settings, !FileSystem.exists(settings) { throw ECIError(.notFound, "settings file \(settings) does not exist") }
            let vm = vmDirectory.directory
            if detach && !supervise { return try startDetached(vm: vm) }
            let accelerator: Accelerator
            switch accel {
            case "kvm": accelerator = .kvm
            case "tcg": accelerator = .tcg
            default:
                let (detected, reason) = Accelerator.detect()
                accelerator = detected
                if !supervise { FileHandle.standardError.write(Data("ecibuild: \(reason)\n".utf8)) }
            }
            let cmdline = try FileSystem.readText(files.cmdline).trimmingCharacters(in: .whitespacesAndNewlines)
            var launch = QEMULaunch(
                accelerator: accelerator, image: files, vm: vm, cmdline: cmdline, settingsFile: try settings.map { try FileSystem.realPath($0) })
            launch.cpus = cpus
            launch.memoryMiB = memory
            let destination = LogDestination(path: supervise ? nil : vm.supervisorLog, format: .text)
            let logger = Logger(label: "ecibuild-run") { LineLogHandler(label: $0, destination: destination, level: .info) }
            if !supervise { FileHandle.standardError.write(Data("ecibuild: booting \(files.directory) (\(accelerator.rawValue)); console log: \(vm.consoleLog)\n".utf8)) }
            let supervisor = VMSupervisor(launch: launch, logger: logger)
            supervisor.bootTimeout = .seconds(bootTimeout)
            try supervisor.run { state in
                // Unbuffered: a script reading our stdout sees the line at once.
                FileHandle.standardOutput.write(Data("DOCKER_HOST=\(state.dockerHost)\n".utf8))
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw fail(error)
        }
    }

    /// Starts this command again as a supervisor in a session of its own, then waits for it to
    /// report the engine ready (or fail) through the VM's state record.
    func startDetached(vm: VMDirectory) throws {
        try vm.validate()
        try FileSystem.makeDirectories(vm.path, mode: 0o700)
        unlink(vm.stateFile)
        let executable = try FileSystem.realPath("/proc/self/exe")
        var arguments = [executable, "run", "--supervise", "--vm-dir", vm.path, "--accel", accel, "--cpus", "\(cpus)", "--memory", "\(memory)",
                         "--boot-timeout", "\(bootTimeout)"]
        if let settings { arguments += ["--settings", try FileSystem.realPath(settings)] }
        arguments.append(try resolvedImage().directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = arguments
        // O_APPEND: QEMU writes to the same log, and neither may overwrite the other.
        let logFD = open(vm.supervisorLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard logFD >= 0 else { throw ECIError.system("open \(vm.supervisorLog)", errno: errno) }
        let log = FileHandle(fileDescriptor: logFD, closeOnDealloc: true)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try log.close()
        FileHandle.standardError.write(Data("ecibuild: booting in the background; console log: \(vm.consoleLog)\n".utf8))
        let deadline = Date().addingTimeInterval(Double(bootTimeout + 120))
        while Date() < deadline {
            if let state = try? VMState.read(vm.stateFile) {
                switch state.phase {
                case .ready:
                    print("DOCKER_HOST=\(state.dockerHost)")
                    return
                case .failed:
                    // The supervisor is shutting the VM down: return once it is gone, so the
                    // caller can fix the cause and run again straight away.
                    let gone = Date().addingTimeInterval(150)
                    while process.isRunning, Date() < gone { Thread.sleep(forTimeInterval: 0.25) }
                    throw ECIError(.delegateFailed, state.error ?? "the VM failed to start; see \(vm.supervisorLog)")
                default: break
                }
            }
            if !process.isRunning {
                let tail = (try? FileSystem.readText(vm.supervisorLog)).map { String($0.suffix(1500)) } ?? ""
                throw ECIError(.delegateFailed, "the VM supervisor exited before the engine was ready:\n\(tail)")
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw ECIError(.delegateFailed, "the engine did not answer in time; see \(vm.consoleLog)")
    }
}

/// One request to a running supervisor's admin socket.
enum AdminRequest {
    static func send(_ request: String, vm: VMDirectory, timeout: Double = 30) throws -> JSONValue {
        let socket: UnixSocket
        do { socket = try UnixSocket.connect(to: vm.adminSocket) } catch {
            throw ECIError(.notFound, "no ECI VM runs from \(vm.path)", cause: error)
        }
        defer { socket.close() }
        socket.setReceiveTimeout(timeout)
        try socket.write(Array((request + "\n").utf8))
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !reply.contains(0x0A), let n = try? socket.read(into: &buffer), n > 0 { reply += buffer[0..<n] }
        return try JSONValue.parse(Array(reply.prefix { $0 != 0x0A }))
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the ECI VM's state, its agent's probes and containers.")

    @OptionGroup var vmDirectory: VMDirectoryOption
    @Option(help: "text or json.") var format: String = "text"

    func run() throws {
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json") }
        let status: JSONValue
        do { status = try AdminRequest.send("status", vm: vmDirectory.directory) } catch { throw fail(error) }
        if format == "json" {
            print(status.serialized())
            return
        }
        print(StatusText.render(status))
    }
}

/// `ecibuild status` for people.
enum StatusText {
    static func render(_ status: JSONValue) -> String {
        var lines = [
            "VM:          \(status["phase"]?.stringValue ?? "?") (\(status["accelerator"]?.stringValue ?? "?"), up \(status["uptimeSeconds"]?.int64Value ?? 0) s)",
            "image:       \(status["image"]?.stringValue ?? "?")",
            "DOCKER_HOST: \(status["dockerHost"]?.stringValue ?? "?")",
            "console:     \(status["consoleLog"]?.stringValue ?? "?")",
        ]
        if let error = status["error"]?.stringValue { lines.append("error:       \(error)") }
        guard let agent = status["agent"], agent.isObject else {
            lines.append("agent:       not answering")
            return lines.joined(separator: "\n")
        }
        lines.append("agent:       \(agent["agent"]?.stringValue ?? "?"), engine \(agent["engine"]?["state"]?.stringValue ?? "?")")
        if let settings = status["settings"], settings["origin"] != nil {
            let images = settings["socketMountImages"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let commands = settings["commandList"]?["commands"]?.arrayValue?.compactMap(\.stringValue) ?? []
            lines.append("settings:    from \(settings["origin"]?.stringValue ?? "?"); socket mounts: \(images.isEmpty ? "none" : images.joined(separator: ", ")); command list: \(settings["commandList"]?["type"]?.stringValue ?? "deny") [\(commands.joined(separator: ", "))]")
        }
        for probe in agent["prepare"]?["probes"]?.arrayValue ?? [] {
            lines.append("  probe \(probe["name"]?.stringValue ?? "?"): \(probe["ok"]?.boolValue == true ? "ok" : "FAILED: " + (probe["detail"]?.stringValue ?? ""))")
        }
        for problem in agent["prepare"]?["problems"]?.arrayValue ?? [] { lines.append("  problem: \(problem.stringValue ?? "")") }
        let containers = agent["containers"]?.arrayValue ?? []
        lines.append("containers:  \(containers.count)")
        for container in containers {
            let range = container["idRange"]?.stringValue ?? "-"
            lines.append("  \(container["id"]?.stringValue?.prefix(12) ?? "?")  \(container["image"]?.stringValue ?? "?")  \(container["state"]?.stringValue ?? "?")  ids \(range)")
        }
        return lines.joined(separator: "\n")
    }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Shut the ECI VM down cleanly (QEMU is killed if it does not power off in time).")

    @OptionGroup var vmDirectory: VMDirectoryOption
    @Option(help: "Seconds to wait for the VM to stop.") var timeout: Int = 120

    func run() throws {
        let vm = vmDirectory.directory
        do {
            let state = try? VMState.read(vm.stateFile)
            do {
                _ = try AdminRequest.send("stop", vm: vm)
            } catch {
                // No supervisor answers: kill what it left, if anything.
                guard let qemu = state?.qemuPid, kill(qemu, 0) == 0 else { throw error }
                kill(qemu, SIGKILL)
            }
            guard let pid = state?.supervisorPid else { return }
            let deadline = Date().addingTimeInterval(Double(timeout))
            while kill(pid, 0) == 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.25) }
            if kill(pid, 0) == 0 {
                if let qemu = state?.qemuPid { kill(qemu, SIGKILL) }
                kill(pid, SIGKILL)
                throw ECIError(.delegateFailed, "the VM did not stop within \(timeout) s: killed")
            }
            print("stopped")
        } catch {
            throw fail(error)
        }
    }
}

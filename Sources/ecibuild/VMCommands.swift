// ecibuild run / status / stop: the ECI VM on this machine.
import ArgumentParser
import ECIContract
import ECICore
import ECIHost
import ECIIO
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
        if !detach || supervise { StopSignals.block() }
        do {
            guard ["auto", "kvm", "tcg"].contains(accel) else { throw ValidationError("--accel must be kvm, tcg or auto") }
            let files = try resolvedImage()
            if let settings, !FileSystem.exists(settings) { throw ECIError(.notFound, "settings file \(settings) does not exist") }
            let vm = vmDirectory.directory
            try vm.validate()
            if detach && !supervise { return try startDetached(vm: vm) }
            // The process that supervises the VM takes its directory first, before it probes
            // KVM or touches a file there: a VM already running from it is left alone.
            let lock = try VMDirectoryLock.acquire(vm)
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
            let supervisor = VMSupervisor(launch: launch, lock: lock, bootTimeout: .seconds(bootTimeout), logger: logger)
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
    ///
    /// A VM already running from the directory is refused here, before anything starts or any
    /// file of it is touched; the supervisor then takes the directory's lock itself (this
    /// process exits once the engine answers, the lock must outlive it).
    func startDetached(vm: VMDirectory) throws {
        try VMDirectoryLock.refuseIfHeld(vm)
        try FileSystem.makeDirectories(vm.path, mode: 0o700)
        unlink(vm.stateFile)
        let executable = try FileSystem.realPath("/proc/self/exe")
        var arguments = [executable, "run", "--supervise", "--vm-dir", vm.path, "--accel", accel, "--cpus", "\(cpus)", "--memory", "\(memory)",
                         "--boot-timeout", "\(bootTimeout)"]
        if let settings { arguments += ["--settings", try FileSystem.realPath(settings)] }
        arguments.append(try resolvedImage().directory)
        // O_APPEND: QEMU writes to the same log, and neither may overwrite the other.
        let logFD = open(vm.supervisorLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard logFD >= 0 else { throw ECIError.system("open \(vm.supervisorLog)", errno: errno) }
        defer { close(logFD) }
        var attributes = SpawnAttributes(arguments, environment: ProcessInfo.processInfo.environment)
        attributes.stdin = .null
        attributes.stdout = .fd(logFD)
        attributes.stderr = .fd(logFD)
        // A session of its own: the supervisor outlives this command and its terminal.
        attributes.newSession = true
        attributes.defaultSignalActions = true
        let supervisor = try ChildProcess.spawn(attributes)
        var exitCode: Int32?
        /// Whether the supervisor still runs (it is reaped, once, when it has exited).
        func supervisorRuns() -> Bool {
            if exitCode == nil {
                do { exitCode = try supervisor.exited() } catch { exitCode = -1 }  // not ours to wait for: gone
            }
            return exitCode == nil
        }
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
                    while supervisorRuns(), Date() < gone { Thread.sleep(forTimeInterval: 0.25) }
                    throw ECIError(.delegateFailed, state.error ?? "the VM failed to start; see \(vm.supervisorLog)")
                default: break
                }
            }
            if !supervisorRuns() {
                let tail = (try? FileSystem.readText(vm.supervisorLog)).map { String($0.suffix(1500)) } ?? ""
                throw ECIError(.delegateFailed, "the VM supervisor exited before the engine was ready:\n\(tail)")
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw ECIError(.delegateFailed, "the engine did not answer in time; see \(vm.consoleLog)")
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the ECI VM's state, its agent's probes and containers.")

    @OptionGroup var vmDirectory: VMDirectoryOption
    @Option(help: "text or json.") var format: String = "text"

    func run() throws {
        guard format == "text" || format == "json" else { throw ValidationError("--format must be text or json") }
        do {
            let status = try AdminClient.status(vmDirectory.directory)
            print(format == "json" ? String(decoding: try ContractJSON.encode(status), as: UTF8.self) : VMStatusText.render(status))
        } catch {
            throw fail(error)
        }
    }
}

struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Shut the ECI VM down cleanly (QEMU is killed if it does not power off in time).")

    @OptionGroup var vmDirectory: VMDirectoryOption
    @Option(help: "Seconds to wait for the VM to stop.") var timeout: Int = 120

    func run() throws {
        do {
            try VMStop(vm: vmDirectory.directory, timeout: .seconds(timeout)).run()
            print("stopped")
        } catch {
            throw fail(error)
        }
    }
}

/// Test hooks against a running VM (the VM end-to-end tests use them).
struct DebugCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug", abstract: "Test hooks against a running ECI VM.", subcommands: [KillEcidCommand.self])
}

struct KillEcidCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill-ecid", abstract: "Kill the VM's syscall supervisor (ecid) with SIGKILL, as a crash would; systemd restarts it.")

    @OptionGroup var vmDirectory: VMDirectoryOption

    func run() throws {
        do {
            let killed = try AdminClient.killEcid(vmDirectory.directory)
            print("killed ecid (pid \(killed.pid) in the VM)")
        } catch {
            throw fail(error)
        }
    }
}

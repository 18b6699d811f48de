import CShim
import ECICore
import ECIOCI
import ECIPolicy
import Foundation
import Logging

/// eci-runc: an OCI runtime with runc's command line. `create` and `run` give the container an
/// exclusive user namespace and idmapped filesystems, then delegate to the real runc;
/// `delete` releases what create took; every other command is runc's own.
public struct IsolatedRuntime: Sendable {
    public let commandLine: RuncCommandLine
    public let configuration: RuntimeConfiguration
    public let environment: [String: String]
    let log: Logger

    public init(commandLine: RuncCommandLine, configuration: RuntimeConfiguration, environment: [String: String], log: Logger) {
        self.commandLine = commandLine
        self.configuration = configuration
        self.environment = environment
        self.log = log
    }

    /// runc's default state root when `--root` is not given (as root).
    static let defaultRuncRoot = "/run/runc"

    var runcRoot: String { commandLine.globalValue("root") ?? Self.defaultRuncRoot }
    var store: RangeStore { RangeStore(configuration: configuration, log: log) }

    /// Runs the command; returns the process exit code.
    public func run() throws -> Int32 {
        try checkRuncPath()
        switch commandLine.command {
        case "create": return try create(command: "create")
        case "run": return try create(command: "run")
        case "delete": return try delete()
        case "restore":
            throw ECIError(.refused, "restore is not supported by ECI: a restored container would bypass the isolation set up at create")
        default:
            throw RuncProcess.exec(configuration.runcPath, [configuration.runcPath] + commandLine.runcArguments)
        }
    }

    /// The real runc must exist and must not be eci-runc itself (a PATH wrapper loop).
    func checkRuncPath() throws {
        let real: String
        do {
            real = try FileSystem.realPath(configuration.runcPath)
        } catch {
            throw ECIError(.notFound, "the real runc \(configuration.runcPath) was not found; set \"runc\" in \(RuntimeConfiguration.defaultPath) or ECI_RUNC")
        }
        if let me = try? RuncProcess.currentExecutable(), me == real {
            throw ECIError(.invalidArgument, "the configured runc \(configuration.runcPath) is eci-runc itself; point it at the real runc")
        }
    }

    // MARK: create / run

    func create(command: String) throws -> Int32 {
        let options = try commandLine.commandOptions()
        guard options.positionals.count == 1, let id = options.positionals.first else {
            throw ECIError(.invalidArgument, "\(command): expected exactly one container id, got \(options.positionals.count) arguments")
        }
        try ContainerID.validate(id)
        let key = ContainerKey(runcRoot: runcRoot, id: id)
        let bundle = try resolveBundle(options.value("bundle", "b"))
        var spec = try OCISpec(bytes: try FileSystem.read(join(bundle, "config.json")))
        let rootPath = try resolveRoot(spec: spec, bundle: bundle)
        try makeBindSourcesAbsolute(&spec, bundle: bundle)

        let record = try store.allocate(key)
        var metadata: Logger.Metadata = ["container": "\(id)", "range": "\(record.range)"]
        do {
            let planned = try RootfsPlanner.plan(rootPath: rootPath, mounts: try MountInfo.current())
            if let work = planned.workDirectory {
                try store.update(key) { $0.workDirectory = work }
                try FileSystem.removeTree(work)
                guard mkdir(work, 0o700) == 0 else { throw ECIError.system("mkdir \(work)", errno: errno) }
            }
            try IsolationSpec.applyUserNamespace(to: &spec, range: record.range)

            let containerDirectory = store.containerDirectory(key)
            try FileSystem.makeDirectories(join(configuration.stateDirectory, "containers"), mode: 0o711)
            try FileSystem.removeTree(containerDirectory)
            try FileSystem.makeDirectories(containerDirectory, mode: 0o711)
            let stageRoot = join(configuration.stateDirectory, "stage")
            try FileSystem.makeDirectories(stageRoot, mode: 0o711)
            let plan = StagePlan(
                rangeBase: record.base, stageRoot: stageRoot, bundleDirectory: containerDirectory, spec: spec.document.serialized(),
                rootfs: planned.rootfs, runcPath: configuration.runcPath,
                runcArguments: [configuration.runcPath] + replacingBundle(with: containerDirectory),
                logPath: commandLine.globalValue("log"), logFormat: commandLine.globalValue("log-format") ?? "text")
            let planPath = join(containerDirectory, "plan.json")
            try FileSystem.writeAtomically(planPath, Array(try JSONEncoder().encode(plan)))
            metadata["bundle"] = "\(containerDirectory)"
            log.debug("staging container", metadata: metadata)

            let status = try runHelper(planPath: planPath)
            if status != 0 {
                log.debug("runc failed; rolling back", metadata: metadata.merging(["status": "\(status)"]) { $1 })
                try store.release(key)
                return status
            }
            let detached = command == "create" || options.bool("detach", "d")
            if detached || (options.bool("keep") && FileSystem.exists(key.runcStatePath)) {
                try store.update(key) { $0.status = .created }
            } else {
                try store.release(key)
            }
            return 0
        } catch {
            do {
                try store.release(key)
            } catch let cleanup {
                log.error("rollback failed", metadata: metadata.merging(["error": "\(cleanup)"]) { $1 })
            }
            throw error
        }
    }

    /// Spawns the staging helper and waits for it (and, after its exec, for runc).
    func runHelper(planPath: String) throws -> Int32 {
        var pipeFDs: [Int32] = [-1, -1]
        let piped = pipeFDs.withUnsafeMutableBufferPointer { eci_pipe_cloexec($0.baseAddress) }
        guard piped == 0 else { throw ECIError.system("pipe", errno: -piped) }
        var env = environment
        env[StageHelper.errorFDVariable] = "\(pipeFDs[1])"
        env[StageHelper.parentVariable] = "\(getpid())"
        let me = try RuncProcess.currentExecutable()
        let pid: pid_t
        do {
            pid = try RuncProcess.spawn(me, ["eci-runc", StageHelper.command, planPath], environment: env, keepFD: pipeFDs[1])
        } catch {
            close(pipeFDs[0])
            close(pipeFDs[1])
            throw error
        }
        close(pipeFDs[1])
        _ = eci_forward_signals_to(pid)
        // The pipe closes without data when the helper execs runc (CLOEXEC); an error message otherwise.
        var message: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            message.append(contentsOf: buffer[0..<n])
        }
        close(pipeFDs[0])
        let status = try RuncProcess.wait(pid)
        if !message.isEmpty {
            throw ECIError(.system, String(decoding: message, as: UTF8.self))
        }
        return status
    }

    func resolveBundle(_ flag: String?) throws -> String {
        let path = flag ?? FileManager.default.currentDirectoryPath
        guard FileSystem.isDirectory(path) else { throw ECIError(.invalidArgument, "bundle \(path) is not a directory") }
        return try FileSystem.realPath(path)
    }

    /// `root.path`, resolved against the bundle as runc does; it must be an existing directory.
    func resolveRoot(spec: OCISpec, bundle: String) throws -> String {
        guard let root = spec.rootPath, !root.isEmpty else { throw ECIError(.invalidArgument, "config.json: root.path is missing") }
        let path = root.hasPrefix("/") ? root : join(bundle, root)
        guard FileSystem.isDirectory(path) else { throw ECIError(.invalidArgument, "config.json: root.path \(root) is not a directory") }
        return try FileSystem.realPath(path)
    }

    /// runc resolves relative bind sources against the bundle (it runs there); the helper
    /// does not, so they are made absolute first.
    func makeBindSourcesAbsolute(_ spec: inout OCISpec, bundle: String) throws {
        for (index, mount) in try spec.mounts().enumerated() where mount.isBind {
            guard let source = mount.source, !source.isEmpty else {
                throw ECIError(.invalidArgument, "config.json: bind mount at \(mount.destination) has no source")
            }
            if !source.hasPrefix("/") { spec.setMountSource(at: index, to: join(bundle, source)) }
        }
    }

    /// runc's arguments with the bundle flag pointing at ECI's rewritten bundle.
    func replacingBundle(with bundle: String) -> [String] {
        let all = commandLine.runcArguments
        guard let commandIndex = all.firstIndex(of: commandLine.command ?? "") else { return all }
        var out = Array(all[...commandIndex])
        out += ["--bundle", bundle]
        var index = commandIndex + 1
        var flagsDone = false
        while index < all.count {
            let arg = all[index]
            if !flagsDone, arg.hasPrefix("-"), arg != "-" {
                if arg == "--" {
                    flagsDone = true
                    out.append(arg)
                    index += 1
                    continue
                }
                let (name, inline) = RuncCommandLine.splitFlag(arg)
                if name == "bundle" || name == "b" {
                    index += inline == nil ? 2 : 1
                    continue
                }
                out.append(arg)
                if RuncCommandLine.commandFlagTables[commandLine.command ?? ""]?[name] == true, inline == nil, index + 1 < all.count {
                    out.append(all[index + 1])
                    index += 1
                }
            } else {
                flagsDone = true
                out.append(arg)
            }
            index += 1
        }
        return out
    }

    // MARK: delete

    func delete() throws -> Int32 {
        let options = try commandLine.commandOptions()
        guard options.positionals.count == 1, let id = options.positionals.first else {
            throw ECIError(.invalidArgument, "delete: expected exactly one container id, got \(options.positionals.count) arguments")
        }
        try ContainerID.validate(id)
        let key = ContainerKey(runcRoot: runcRoot, id: id)
        let status = try RuncProcess.run(configuration.runcPath, [configuration.runcPath] + commandLine.runcArguments, environment: environment)
        guard !FileSystem.exists(key.runcStatePath) else { return status }
        let released = try store.release(key)
        if released {
            log.debug("released container", metadata: ["container": "\(id)"])
        }
        // A half-created container runc never knew of is gone once its range is released.
        return status != 0 && released && options.bool("force", "f") ? 0 : status
    }
}

import CShim
import ECICore
import ECIOCI
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
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

    /// runc's state root as runc itself finds it: made absolute and cleaned (runc's
    /// filepath.Abs), with symlinks resolved as far as it exists, so every spelling of one root
    /// (`R/`, `R/.`, a symlink to R) names one ECI record, directory and eci-init marker. An
    /// attack round passed an exec before start through `--root R/`: the marker, kept under a
    /// hash of the root as typed, was not found.
    var runcRoot: String {
        let given = commandLine.globalValue("root") ?? Self.defaultRuncRoot
        let absolute = lexicallyClean(given.hasPrefix("/") ? given : join((try? FileSystem.currentDirectory()) ?? "/", given))
        return FileSystem.resolvingExistingPrefix(absolute) ?? absolute
    }
    var store: RangeStore { RangeStore(configuration: configuration, log: log) }

    /// Runs the command; returns the process exit code.
    public func run() throws -> Int32 {
        try checkRuncPath()
        switch commandLine.command {
        case "create": return try create(command: "create")
        case "run": return try create(command: "run")
        case "delete": return try delete()
        case "start": return try start()
        case "exec":
            throw RuncProcess.exec(configuration.runcPath, [configuration.runcPath] + (try checkExec()))
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

        // Policy first: a refusal leaves nothing behind (no range, no mount).
        // Annotations runc would read as its own configuration (systemd unit properties of the
        // container's scope, CRIU's configuration file): the engine copies a request's into the spec.
        if case let .object(annotations)? = spec.document["annotations"] { try RuntimeAnnotationPolicy.check(annotations.map(\.key)) }
        let namespaces = try spec.namespaces()
        try NamespacePolicy.check(namespaces, isVMNamespace: try NamespaceIdentity.vmNamespaceTest(for: namespaces))
        try DevicePolicy.apply(to: &spec)
        ProcfsPolicy.apply(to: &spec)
        // A container that may unmount starts under eci-init, which has the kernel lock the
        // mounts runc makes (a second layer under ecid's traps, and the reason the calls it
        // refuses by itself need no trap). runc passes the open binary and the status file on
        // as the two fds after the caller's own preserved ones.
        var initLaunch = try launchUnderInit(spec: spec, options: options)
        defer { initLaunch?.close() }
        if initLaunch != nil { try MountLockPolicy.checkProfile(spec) }
        let supervised = try SeccompTraps.apply(
            to: &spec, stateDirectory: configuration.stateDirectory, configured: configuration.ecidMode,
            coverage: SeccompTraps.coverage(startsUnderInit: initLaunch != nil, spec: spec), environment: environment)
        let mounts = try MountInfo.current()
        var policy = try configuration.loadPolicy()
        // runc's state (state.json names the process an exec joins, and the config it runs
        // with): this command's root and every root a container of ECI's lives under (an
        // attack round bound another root's directory from a container under a second one).
        policy.restrictedPaths.append(runcRoot)
        for root in Set(try store.records().map(\.key.runcRoot)) where !policy.restrictedPaths.contains(root) { policy.restrictedPaths.append(root) }
        let sources = try MountSources(spec: spec, policy: policy, containerID: id, mounts: mounts)
        try SocketAdmissionCheck.verify(spec, policy: policy, stateDirectory: configuration.stateDirectory)
        if let parents = policy.cgroupParents { try CgroupPathPolicy.check(spec.cgroupsPath, parents: parents) }
        let readOnly = try ReadOnlyMounts.lockedIndices(in: spec, policy: policy)
        let grantedForInit = try initLaunch.map { try MountLockPolicy.startUnderInit(&spec, initFD: $0.binaryTarget, statusFD: $0.statusTarget) } ?? false

        let planned = try RootfsPlanner.plan(rootPath: rootPath, mounts: mounts)
        let stageRoot = join(configuration.stateDirectory, "stage")
        try prepareStateDirectories(stageRoot: stageRoot)

        let record = try store.allocate(key, workDirectory: planned.workDirectory)
        let metadata: Logger.Metadata = ["container": "\(id)", "range": "\(record.range)"]
        do {
            if let work = planned.workDirectory {
                try FileSystem.removeTree(work)
                guard mkdir(work, 0o700) == 0 else { throw ECIError.system("mkdir \(work)", errno: errno) }
            }
            try IsolationSpec.applyUserNamespace(to: &spec, range: record.range)
            let containerDirectory = store.containerDirectory(key)
            try FileSystem.removeTree(containerDirectory)
            try FileSystem.makeDirectories(containerDirectory, mode: 0o711)

            let stager = FilesystemStager(plan: StagePlan(rangeBase: record.base, stageRoot: stageRoot, rootfs: planned.rootfs), log: log)
            try stager.prepare(spec: spec, sources: sources, readOnly: readOnly)
            // From here on this process lives in its own mount namespace: what it stages
            // never reaches the VM's, and vanishes with runc's exit.
            try FilesystemStager.enterPrivateMountNamespace(stageRoot: stageRoot)
            var staged = try stager.attach(spec: spec)
            // Last, past every check of the spec's own bind sources: ECI's state directory,
            // where ecid serves the files, is restricted for them.
            if supervised { try EmulationMounts.apply(to: &staged, key: key.directoryName, stateDirectory: configuration.stateDirectory, mounts: mounts) }
            try staged.checkKeysAsRuncReadsThem()
            try FileSystem.write(join(containerDirectory, "config.json"), staged.serialized())
            if initLaunch != nil {
                let marker = grantedForInit ? LockedStart.grantedMarker : LockedStart.plainMarker
                try FileSystem.write(join(containerDirectory, LockedStart.markerName), Array(marker.utf8))
                try initLaunch?.openStatusFile(join(containerDirectory, LockedStart.statusName))
            }
            log.debug("starting runc", metadata: metadata.merging(["bundle": "\(containerDirectory)"]) { $1 })

            let status = try RuncProcess.run(
                configuration.runcPath,
                [configuration.runcPath] + commandLine.replacingBundle(with: containerDirectory, preserveFDs: initLaunch.map { Int($0.preservedCount) }),
                environment: environment, passing: initLaunch?.passed ?? [])
            // The range stays while runc has the container (created, or run detached or --keep).
            if status != 0 || !FileSystem.exists(key.runcStatePath) {
                try store.release(key)
            } else if command == "run", initLaunch != nil, options.bool("detach", "d") {
                // `run --detach` has started it: as `start` does, return once it runs locked.
                try waitUntilLocked(key)
            }
            return status
        } catch {
            do {
                try store.release(key)
            } catch let cleanup {
                log.error("rollback failed", metadata: metadata.merging(["error": "\(cleanup)"]) { $1 })
            }
            throw error
        }
    }

    /// eci-init opened (close-on-exec here), when `MountLockPolicy` says the container starts
    /// under it; nil otherwise.
    func launchUnderInit(spec: OCISpec, options: RuncCommandLine.CommandOptions) throws -> InitLaunch? {
        switch try MountLockPolicy.decide(spec) {
        case .unlocked(let why):
            log.debug("mounts not locked by eci-init", metadata: ["why": "\(why)"])
            return nil
        case .lock:
            break
        }
        let callerFDs = options.value("preserve-fds") ?? "0"
        guard let preserved = Int32(callerFDs), preserved >= 0, preserved < 1000 else {
            throw ECIError(.invalidArgument, "--preserve-fds \(callerFDs): not a count of descriptors")
        }
        let path = try configuration.initPath ?? join(parentDirectory(try RuncProcess.currentExecutable()), "eci-init")
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ECIError.system("open eci-init at \(path) (it locks the mounts of containers with CAP_SYS_ADMIN; set \"init\" in \(RuntimeConfiguration.defaultPath) or ECI_INIT)", errno: errno)
        }
        return InitLaunch(binary: fd, callerPreserved: preserved)
    }

    /// ECI's state directories. The staging mount point must be traversable by container root
    /// (runc binds the rootfs from inside the container's user namespace), so every ancestor
    /// must let others search it: a 0700 parent is a clear error here, not EACCES from runc.
    func prepareStateDirectories(stageRoot: String) throws {
        try FileSystem.makeDirectories(join(configuration.stateDirectory, "containers"), mode: 0o711)
        try FileSystem.makeDirectories(stageRoot, mode: 0o711)
        // runc records the rootfs path (the staged one, under our private tmpfs) in its state,
        // and later commands (`exec`, from the VM's mount namespace) chdir to it before joining
        // the container: an empty directory of that name must exist on the VM side too.
        try FileSystem.makeDirectories(join(stageRoot, "rootfs"), mode: 0o711)
        var path = stageRoot
        while path != "/" {
            var st = stat()
            guard stat(path, &st) == 0 else { throw ECIError.system("stat \(path)", errno: errno) }
            guard st.st_mode & S_IXOTH != 0 else {
                throw ECIError(
                    .invalidArgument,
                    "ECI's state directory \(configuration.stateDirectory) is not reachable by containers: \(path) lacks search permission for others (chmod o+x)")
            }
            path = parentDirectory(path)
        }
    }

    func resolveBundle(_ flag: String?) throws -> String {
        let path = try flag ?? FileSystem.currentDirectory()
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

    // MARK: start

    /// runc's start; for a container under eci-init, returns once its first process runs locked
    /// (`LockedStart`), so no exec the engine sends next can join the unlocked namespace.
    func start() throws -> Int32 {
        let status = try RuncProcess.run(configuration.runcPath, [configuration.runcPath] + commandLine.runcArguments, environment: environment)
        let positionals = commandLine.commandArguments.filter { !$0.hasPrefix("-") }
        guard status == 0, positionals.count == 1, let id = positionals.first, (try? ContainerID.validate(id)) != nil else { return status }
        let key = ContainerKey(runcRoot: runcRoot, id: id)
        guard startsUnderInit(key) else { return status }
        try waitUntilLocked(key)
        return status
    }

    /// Whether create started the container of `key` under eci-init (its marker in ECI's directory).
    func startsUnderInit(_ key: ContainerKey) -> Bool { initMarker(key) != nil }

    /// The text of that marker (`LockedStart.plainMarker` or `grantedMarker`), nil without one.
    func initMarker(_ key: ContainerKey) -> String? {
        (try? FileSystem.read(join(store.containerDirectory(key), LockedStart.markerName))).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Where eci-init of the container of `key` says it has locked (`LockedStart.statusName`).
    func lockStatusPath(_ key: ContainerKey) -> String { join(store.containerDirectory(key), LockedStart.statusName) }

    /// `LockedStart.wait` for the container of `key`; fail closed: a container whose first
    /// process still runs unlocked at the deadline is killed.
    func waitUntilLocked(_ key: ContainerKey) throws {
        let initProcess = try LockedStart.initProcess(statePath: key.runcStatePath)
        do {
            try LockedStart.wait(for: initProcess, statusPath: lockStatusPath(key))
        } catch {
            if initProcess.isAlive { _ = Glibc.kill(initProcess.pid, SIGKILL) }
            throw error
        }
    }

    // MARK: exec

    /// An exec into a container that starts under eci-init must find its first process locked:
    /// runc exec joins pid 1's namespaces as they are, so an exec between create and start
    /// (runc and containerd allow it) would run, and stay, in the unlocked one. Found by an
    /// attack round. Refused until `start` has returned (which waits for the lock). Returns
    /// runc's arguments.
    func checkExec() throws -> [String] {
        let options = try commandLine.commandOptions()
        guard let id = options.positionals.first else { return commandLine.runcArguments }  // runc's own usage error
        try ContainerID.validate(id)
        let key = ContainerKey(runcRoot: runcRoot, id: id)
        guard let marker = initMarker(key) else { return commandLine.runcArguments }
        let initProcess = try LockedStart.initProcess(statePath: key.runcStatePath)
        guard LockedStart.isLocked(statusPath: lockStatusPath(key)) || !initProcess.isAlive else {
            throw ECIError(
                .refused,
                "exec into \(id) before it has started: ECI locks a container's mounts when its first program starts (eci-init), and an exec now would run without that lock")
        }
        // runc takes an exec's capabilities from the staged spec when the exec names none
        // (no --process, or a process without "capabilities"), and that spec grants eci-init
        // capabilities its program does not hold. The engines (Docker, containerd's CRI,
        // Podman) send every exec's capabilities.
        guard marker != LockedStart.plainMarker else { return commandLine.runcArguments }
        let path = options.value("process", "p")
        let bytes = try path.map { try FileSystem.read($0) }
        let process = try bytes.map { try JSONValue.parse($0) }
        if let process { try GoFieldNames.checkUnambiguous(process, what: "--process", path: ["process"]) }
        guard let bytes, let process, Self.namesItsCapabilities(process) else {
            throw ECIError(
                .refused,
                "exec into \(id) names no capabilities: runc would take them from the staged spec, which grants eci-init capabilities its program does not hold; pass a process with \"capabilities\" in --process")
        }
        // runc reads exactly what was checked: a sealed copy only it gets (the named file may be
        // a FIFO, or change after this read: found by an attack round), above the descriptors
        // runc passes into the container.
        let preserved = options.value("preserve-fds") ?? "0"
        guard let count = Int32(preserved), count >= 0, count < 1000 else {
            throw ECIError(.invalidArgument, "--preserve-fds \(preserved): not a count of descriptors")
        }
        let copy = bytes.withUnsafeBytes { eci_sealed_copy("eci-exec-process", $0.baseAddress, $0.count, 3 + count) }
        guard copy >= 0 else { throw ECIError.system("copy the exec's --process", errno: -copy) }
        return commandLine.replacingCommandFlags(["process", "p"], with: ["--process", "/proc/self/fd/\(copy)"])
    }

    /// Whether runc, decoding `process` with Go's encoding/json, finds capabilities of its own
    /// in it: Go matches a key to a field whatever its case (and folds "ſ" to "s", "K" to
    /// "k"), and the last match wins, so `{"capabilities":{...},"Capabilities":null}` names
    /// none (found by an attack round). Exactly one key that runc would read as the field,
    /// spelled exactly, holding an object.
    static func namesItsCapabilities(_ process: JSONValue) -> Bool {
        guard case .object(let members) = process else { return false }
        let matching = members.filter { GoFieldNames.matches($0.key, field: "capabilities") }
        return matching.count == 1 && matching[0].key == "capabilities" && matching[0].value.isObject
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

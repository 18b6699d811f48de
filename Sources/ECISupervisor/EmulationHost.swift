import ECICore
import ECIPolicy
import ECIProcFS
import ECIRuntime
import Glibc
import Logging
import Synchronization

/// ecid's side of the procfs emulation: the FUSE file system mounted (or adopted from the fd
/// holder after a restart) beside ecid's directory, its files computed from each container's
/// init and that init's start: what the registry knows of the containers handed to ecid, else
/// runc's state under the root eci-runc recorded the container's range with. Not every
/// container is handed over: runc passes the listener only when the profile has a rule for
/// it, and Docker's default profile without CAP_SYS_ADMIN leaves none (the e2e case found it).
final class EmulationHost: EmulationSource {
    /// The holder's key for the /dev/fuse connection (containers' keys have a slash; this one none).
    static let holderKey = "emulation"
    let registry: Registry
    let ranges: RangeStore
    /// Inits found through the range store, checked again by every read (`ContainerProcView`).
    private let found = Mutex<[String: ProcessIdentity]>([:])

    init(registry: Registry, stateDirectory: String, log: Logger) {
        self.registry = registry
        var configuration = RuntimeConfiguration()
        configuration.stateDirectory = stateDirectory
        ranges = RangeStore(configuration: configuration, log: log)
    }

    func content(of file: EmulatedFile, key: String) throws -> [UInt8]? {
        if let record = registry.record(key) {
            return try ContainerProcView(initPID: record.initPID, initStart: record.initStart).content(of: file)
        }
        // A cached init that is gone (the container, or a new one with its key, re-created) is
        // looked up once more.
        for attempt in 0..<2 {
            guard let process = attempt == 0 ? (found.withLock { $0[key] } ?? lookUp(key)) : lookUp(key) else { return nil }
            do {
                return try ContainerProcView(initPID: process.pid, initStart: process.startTime).content(of: file)
            } catch let error as ECIError where error.code == .notFound && attempt == 0 {
                found.withLock { $0[key] = nil }
            }
        }
        return nil
    }

    private func lookUp(_ key: String) -> ProcessIdentity? {
        guard let process = try? ranges.initProcess(directoryName: key) else { return nil }
        found.withLock { found in
            if found.count >= 4096 { found.removeAll() }
            found[key] = process
        }
        return process
    }

    func knownKeys() -> [String] { registry.keys + ((try? ranges.directoryNames()) ?? []) }
}

extension Supervisor {
    /// Where the emulated files are served: `EmulationTree.mountPoint` of ECI's state directory.
    var emulationMountPoint: String { EmulationTree.mountPoint(stateDirectory: parentDirectory(options.directory)) }

    /// Serves the emulation file system: the connection a previous ecid left with the holder
    /// when it is still mounted (every container's binds go on working), else a new mount whose
    /// connection is deposited with the holder.
    func startEmulation(adopting held: Int32?) throws {
        var fd: Int32 = -1
        if let held {
            if EmulationMounts.isServed(at: emulationMountPoint, in: (try? MountInfo.current()) ?? []) {
                fd = held
                log.info("emulation file system adopted from the previous ecid", metadata: ["mount": "\(emulationMountPoint)"])
            } else {
                close(held)
                holder.drop(EmulationHost.holderKey)
            }
        }
        let adopted = fd >= 0
        if !adopted {
            fd = try EmulationServer.mount(at: emulationMountPoint)
            holder.deposit(EmulationHost.holderKey, fd: fd)
        }
        let source = EmulationHost(registry: registry, stateDirectory: parentDirectory(options.directory), log: log)
        try EmulationServer(fd: fd, source: source, log: log).start()
    }
}

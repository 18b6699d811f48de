import ECICore
import ECIPolicy
import ECIProcFS
import Glibc

/// ecid's side of the procfs emulation: the FUSE file system mounted (or adopted from the fd
/// holder after a restart) beside ecid's directory, its files computed from what the registry
/// knows of each container (its init and that init's start).
struct EmulationHost: EmulationSource {
    /// The holder's key for the /dev/fuse connection (no container key has no slash and this name).
    static let holderKey = "emulation"
    let registry: Registry

    func content(of file: EmulatedFile, key: String) throws -> [UInt8]? {
        guard let record = registry.record(key) else { return nil }
        return try ContainerProcView(initPID: record.initPID, initStart: record.initStart).content(of: file)
    }

    func knownKeys() -> [String] { registry.keys }
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
            if EmulationServer.isServed(at: emulationMountPoint) {
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
        try EmulationServer(fd: fd, initialized: adopted, source: EmulationHost(registry: registry), log: log).start()
    }
}

import ECICore
import ECIPolicy
import ECIOCI
import ECIProcFS

/// The binds of ecid's emulated files (`EmulatedFile`) over the container's /proc, added to
/// the spec of every container ecid supervises. ecid serves them from its FUSE file system;
/// each container gets its own key's files, whose content depends on nothing else.
///
/// Fail closed: a container ecid supervises never starts with the VM's own uptime or memory
/// in its /proc. When the file system is not mounted (ecid is not running, or an old one),
/// the create is refused.
public enum EmulationMounts {
    /// Appends the binds (after the spec's own /proc, which they cover) when the spec mounts a
    /// procfs at /proc; a spec without one has nothing to emulate.
    /// `mounts`: the VM's mount table.
    static func apply(to spec: inout OCISpec, key: String, stateDirectory: String, mounts: [MountInfoEntry]) throws {
        guard try spec.mounts().contains(where: { $0.destination == "/proc" && $0.type == "proc" }) else { return }
        let mountPoint = EmulationTree.mountPoint(stateDirectory: stateDirectory)
        guard isServed(at: mountPoint, in: mounts) else {
            throw ECIError(.unsupported, "ECI's emulated /proc files are not served at \(mountPoint): start ecid first")
        }
        for file in EmulatedFile.allCases {
            spec.appendMount(
                .init(
                    destination: file.containerPath, type: "bind", source: EmulationTree.source(of: file, key: key, stateDirectory: stateDirectory),
                    options: ["bind", "ro", "nosuid", "nodev", "noexec"]))
        }
    }

    /// Whether ECI's emulation file system tops `mountPoint` in `mounts` (a dead connection's
    /// mount still does, and answers ENOTCONN).
    public static func isServed(at mountPoint: String, in mounts: [MountInfoEntry]) -> Bool {
        MountInfo.mount(at: mountPoint, in: mounts)?.fsType == MountCallPolicy.emulationFileSystemType
    }
}

import ECICore
import ECIOCI

/// Which bind mounts the runtime locks read-only before the container exists.
///
/// runc applies a mount's read-only flag inside the container's user namespace, where container
/// root holds CAP_SYS_ADMIN and may remount it read-write (`mount -o remount,bind,rw`). A flag
/// set on the staged tree in the VM's user namespace is locked by the kernel in every copy a
/// less privileged mount namespace gets. So every mount that asks to be read-only is made so by
/// the runtime, recursively (a writable submount under a read-only bind is not read-only).
public enum ReadOnlyMounts {
    /// Whether a mount asks to be read-only: "ro", or "rro", the recursive form Docker 25 and
    /// later send for `:ro`, `readonly` and read-only volumes when the runtime's `features` list
    /// it (runc 1.1 does). Missing "rro" is how read-only binds became writable under
    /// `--privileged` with the VM's engine (26.1) while the host's 20.10 (plain "ro") was fine.
    public static func isRequested(_ mount: OCISpec.Mount) -> Bool {
        mount.options.contains("ro") || mount.options.contains("rro")
    }

    /// Indices (in `spec.mounts`) of the bind mounts to lock read-only: those that ask for it,
    /// the engine's helper, which the engine always binds read-only, and BuildKit's executor files.
    public static func lockedIndices(in spec: OCISpec, policy: RestrictedMountPolicy) throws -> Set<Int> {
        var out: Set<Int> = []
        for (index, mount) in try spec.mounts().enumerated() where mount.isBind {
            let source = lexicallyClean(mount.source ?? "")
            if isRequested(mount) || policy.isEngineHelperMount(source: source, destination: mount.destination) || policy.isBuildKitExecutorFile(source) {
                out.insert(index)
            }
        }
        return out
    }
}

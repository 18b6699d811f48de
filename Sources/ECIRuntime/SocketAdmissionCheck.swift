import ECICore
import ECIOCI
import ECIPolicy
import Glibc

/// eci-runc's half of socket admission (`SocketAdmissionStamp`): a spec that binds one of the
/// policy's `exactSources` (the container-facing engine socket) must carry the stamp the API
/// filter wrote when it admitted the container, valid under this boot's run key. Checked at
/// every create, so a container the engine restarts by itself (restart policy, daemon restart)
/// is held to the settings in force exactly like one a user starts.
///
/// The run key's path is ECI's state directory (the runtime's `stateDir`, `/run/eci` in the VM)
/// plus a file name the agent and the runtime share as a constant: the runtime needs no new
/// key in its policy file (whose parser and format are the restricted-mount policy's), and the
/// state directory is already the one place both agree on. The policy's `exactSources` is what
/// turns the check on: only the agent's layout has them, so a plain host changes nothing; in
/// the VM a missing key file refuses the mount (fail closed) rather than skipping the check.
public enum SocketAdmissionCheck {
    /// Refuses `spec` when it binds an exact source without a valid stamp.
    public static func verify(_ spec: OCISpec, policy: RestrictedMountPolicy, stateDirectory: String) throws {
        guard !policy.exactSources.isEmpty else { return }
        let bound = try spec.mounts().filter(\.isBind).compactMap { mount -> String? in
            guard let source = mount.source else { return nil }
            let clean = lexicallyClean(source)
            if policy.exactSources.contains(clean) { return clean }
            // The policy check already refused any other name for it; resolve anyway, so this
            // check holds on its own.
            if let real = try? FileSystem.realPath(source), policy.exactSources.contains(real) { return real }
            return nil
        }
        guard let socket = bound.first else { return }
        let keyPath = join(stateDirectory, SocketAdmissionStamp.runKeyFileName)
        let runKey: [UInt8]
        do {
            runKey = try SocketAdmissionStamp.decodeKey(try FileSystem.read(keyPath), source: keyPath)
        } catch {
            throw ECIError(
                .refused, "enhanced container isolation: this container mounts the engine socket \(socket) but no socket admission key is in force (\(keyPath): \(error))")
        }
        let stamp = spec.document["annotations"]?[SocketAdmissionStamp.annotation]?.stringValue
        try SocketAdmissionStamp.verify(stamp, runKey: runKey, socket: socket)
    }
}

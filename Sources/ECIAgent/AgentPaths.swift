import ECIContract
import ECIPolicy
import Glibc

/// Every path the agent reads or writes, in one place. The defaults are the VM's layout (the
/// image installs the units that name them); tests point them at a scratch directory.
public struct AgentPaths: Sendable, Equatable {
    /// The engine's data root, where the probes try idmapped mounts and overlays.
    public var dataRoot = "/var/lib/docker"
    /// The agent's and the runtime's state (the runtime's ID ranges live here too).
    public var stateDirectory = "/run/eci"
    /// ECI's persistent state (the socket-admission master key); root-only, restricted for containers.
    public var persistentDirectory = "/var/lib/eci"
    /// Engine configuration written at boot; root-only, restricted for containers.
    public var engineDirectory = "/run/eci/engine"
    /// The admin's engine settings, the base the agent's own keys override.
    public var baseDaemonConfig = "/etc/docker/daemon.json"
    /// Settings baked into the image.
    public var imageSettings = "/etc/eci/admin-settings.json"
    /// Settings the host passes at boot (QEMU `-fw_cfg name=opt/eci/admin-settings.json,file=...`).
    public var hostSettings = ControlProtocol.settingsFirmwarePath
    /// The isolated runtime.
    public var runtimeBinary = "/usr/bin/eci-runc"
    /// The virtio-serial ports (named by `ecibuild run`'s QEMU command line).
    public var controlPort = ControlProtocol.guestPortPath(ControlProtocol.controlPortName)
    public var tunnelPort = ControlProtocol.guestPortPath(ControlProtocol.tunnelPortName)
    /// Engine sockets: the raw one (root-only) and the filtered ones.
    public var sockets = EngineAPIPolicy.Sockets.vm

    /// The owner trusted files must have (the image's settings, the socket-admission keys):
    /// root in the VM. Unit tests that run unprivileged set their own uid.
    public var trustedOwner: uid_t = 0

    public init() {}

    /// The daemon.json the engine is started with.
    public var daemonConfig: String { engineDirectory + "/daemon.json" }
    /// A directory first in the engine's PATH whose `runc` is the isolated runtime, so that the
    /// engine's built-in `runc` runtime (`--runtime=runc`) is isolated too.
    public var engineBinDirectory: String { engineDirectory + "/bin" }
    /// The settings in force (a copy of the file they came from).
    public var effectiveSettings: String { stateDirectory + "/admin-settings.json" }
    /// The result of `eci-agent prepare`: probes, settings source, whether the engine may start.
    public var prepareReport: String { stateDirectory + "/prepare.json" }
}

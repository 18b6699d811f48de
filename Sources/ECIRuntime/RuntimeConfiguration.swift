import ECICore
import ECIOCI
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// How the isolated runtime is set up on this machine: where the real runc is, where ECI keeps
/// its state, and where the subordinate-ID pool is declared.
///
/// Read from a JSON file (`/etc/eci/runtime.json`, or the file named by `--eci-config` or
/// `ECI_CONFIG`), then overridden by `ECI_RUNC`, `ECI_STATE_DIR`, `ECI_SUBUID_FILE`,
/// `ECI_SUBGID_FILE`, `ECI_INIT`. The file's `ecid` (must ecid supervise every container) is not overridden
/// by `ECI_ECID` (see `SeccompTraps.mode`). Unknown keys in the file are an error, so a typo never silently weakens setup.
public struct RuntimeConfiguration: Sendable, Equatable {
    /// Absolute path of the real runc.
    public var runcPath: String = "/usr/sbin/runc"
    /// ECI's state: the ID-range table, per-container bundles, the staging mount point.
    public var stateDirectory: String = "/run/eci"
    public var subuidPath: String = "/etc/subuid"
    public var subgidPath: String = "/etc/subgid"
    /// Size, in containers, of the pool ECI declares for itself when none is declared.
    public var defaultPoolContainers: UInt32 = 4096
    /// The restricted-mount policy file; when it is the default path and absent, the built-in
    /// default policy applies. A file named explicitly must exist.
    public var policyPath: String = RuntimeConfiguration.defaultPolicyPath
    var policyPathIsExplicit = false
    /// Whether ecid must supervise every container (`"ecid": "off" | "auto" | "required"`);
    /// nil when the file does not say (then `ECI_ECID` decides). The VM image says `required`.
    public var ecidMode: SeccompTraps.Mode?
    /// eci-init (`MountLockPolicy`); nil: the one next to this executable.
    public var initPath: String?

    public static let defaultPolicyPath = "/etc/eci/policy.json"

    public static let defaultPath = "/etc/eci/runtime.json"

    public init() {}

    /// Loads the configuration: `path` (or the default file when it exists), then the environment.
    public static func load(path explicitPath: String?, environment: [String: String]) throws -> RuntimeConfiguration {
        var config = RuntimeConfiguration()
        let path = explicitPath ?? environment["ECI_CONFIG"] ?? (FileSystem.exists(defaultPath) ? defaultPath : nil)
        if let path {
            let document = try JSONValue.parse(try FileSystem.read(path))
            guard case let .object(members) = document else { throw ECIError(.invalidArgument, "\(path): not a JSON object") }
            for (key, value) in members {
                switch key {
                case "runc": config.runcPath = try string(value, key, path)
                case "stateDir": config.stateDirectory = try string(value, key, path)
                case "subuidFile": config.subuidPath = try string(value, key, path)
                case "subgidFile": config.subgidPath = try string(value, key, path)
                case "policyFile":
                    config.policyPath = try string(value, key, path)
                    config.policyPathIsExplicit = true
                case "init": config.initPath = try string(value, key, path)
                case "ecid": config.ecidMode = try SeccompTraps.Mode.parse(try string(value, key, path), "\(path): ecid")
                case "defaultPoolContainers":
                    guard let n = value.uint64Value, let n32 = UInt32(exactly: n), n32 > 0 else {
                        throw ECIError(.invalidArgument, "\(path): defaultPoolContainers must be a positive integer")
                    }
                    config.defaultPoolContainers = n32
                default: throw ECIError(.invalidArgument, "\(path): unknown key \"\(key)\"")
                }
            }
        }
        if let v = environment["ECI_RUNC"] { config.runcPath = v }
        if let v = environment["ECI_STATE_DIR"] { config.stateDirectory = v }
        if let v = environment["ECI_SUBUID_FILE"] { config.subuidPath = v }
        if let v = environment["ECI_SUBGID_FILE"] { config.subgidPath = v }
        if let v = environment["ECI_INIT"] { config.initPath = v }
        if let v = environment["ECI_POLICY_FILE"] {
            config.policyPath = v
            config.policyPathIsExplicit = true
        }
        try config.validate()
        return config
    }

    /// Every path must be absolute: ECI is called from containerd with an arbitrary cwd.
    public func validate() throws {
        for (name, value) in [("runc", runcPath), ("stateDir", stateDirectory), ("subuidFile", subuidPath), ("subgidFile", subgidPath), ("policyFile", policyPath), ("init", initPath ?? "/")] {
            guard value.hasPrefix("/") else { throw ECIError(.invalidArgument, "configuration \(name) must be an absolute path, not \"\(value)\"") }
        }
    }

    /// The restricted-mount policy in force: the policy file's (or the defaults), and ECI's own state
    /// directory whatever it says.
    public func loadPolicy() throws -> RestrictedMountPolicy {
        var policy = RestrictedMountPolicy.defaults
        if policyPathIsExplicit || FileSystem.exists(policyPath) {
            policy = try RestrictedMountPolicy.parse(try FileSystem.read(policyPath), source: policyPath)
        }
        // ECI's own state (ranges, eci-init's markers and status files, ecid's socket), wherever
        // it is configured: an attack round bound a state directory the policy did not name
        // and wrote "locked" for a neighbour that had not started.
        policy.restrictedPaths.append(stateDirectory)
        return policy
    }

    private static func string(_ value: JSONValue, _ key: String, _ path: String) throws -> String {
        guard let text = value.stringValue else { throw ECIError(.invalidArgument, "\(path): \(key) must be a string") }
        return text
    }
}

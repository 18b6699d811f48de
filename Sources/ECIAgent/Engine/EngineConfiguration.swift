import ECICore
import ECIOCI

/// The engine's daemon.json under ECI: the admin's settings, with the keys isolation depends
/// on set by ECI whatever the admin wrote.
///
/// - the isolated runtime is the default, registered under its name;
/// - the engine listens only on its raw socket (no TCP: CVE-2025-9074), which only root reaches;
/// - BuildKit may not grant `network.host` or `security.insecure` (the engine allows
///   network.host by default);
/// - `userns-remap` is dropped: every container already gets its own user namespace, and a
///   remapped engine would hand ECI IDs it does not own.
public enum EngineConfiguration {
    /// The keys the admin may not set, and why (reported when dropped).
    public static let overridden: [String: String] = [
        "hosts": "the engine listens only on ECI's raw socket",
        "tls": "the engine has no TCP listener", "tlsverify": "the engine has no TCP listener",
        "default-runtime": "the isolated runtime is the default",
        "userns-remap": "every container has its own user namespace",
        "data-root": "set from the probed data root",
        "cgroup-parent": "containers' cgroups stay under the engine's default parent, the one the runtime's policy admits",
    ]

    /// The daemon.json to start the engine with. `base` is the admin's file (nil if absent).
    public static func daemonConfig(base: JSONValue?, paths: AgentPaths, runtimeName: String = "eci") throws -> (config: JSONValue, dropped: [String]) {
        var config = base ?? .object([])
        guard config.isObject else { throw ECIError(.invalidArgument, "\(paths.baseDaemonConfig): not a JSON object") }
        var dropped: [String] = []
        for key in overridden.keys.sorted() where config[key] != nil {
            dropped.append(key)
            config.set(key, nil)
        }
        config.set("hosts", .array([.string("unix://" + paths.sockets.raw)]))
        config.set("data-root", .string(paths.dataRoot))
        config.set("default-runtime", .string(runtimeName))
        var runtimes = config["runtimes"] ?? .object([])
        guard runtimes.isObject else { throw ECIError(.invalidArgument, "\(paths.baseDaemonConfig): runtimes must be an object") }
        runtimes.set(runtimeName, .object([("path", .string(paths.runtimeBinary))]))
        config.set("runtimes", runtimes)
        // The containerd image store gives every local tag a registry-style digest (socket-mount
        // admission relies on digests only a pull records); CDI injects OCI hooks from host files.
        var features = config["features"] ?? .object([])
        guard features.isObject else { throw ECIError(.invalidArgument, "\(paths.baseDaemonConfig): features must be an object") }
        features.set("containerd-snapshotter", .bool(false))
        features.set("cdi", .bool(false))
        config.set("features", features)
        var builder = config["builder"] ?? .object([])
        guard builder.isObject else { throw ECIError(.invalidArgument, "\(paths.baseDaemonConfig): builder must be an object") }
        builder.set("entitlements", .object([("network-host", .bool(false)), ("security-insecure", .bool(false))]))
        config.set("builder", builder)
        return (config, dropped)
    }

    /// Parses the admin's daemon.json.
    public static func parseBase(_ bytes: [UInt8], source: String) throws -> JSONValue {
        do {
            let value = try JSONValue.parse(bytes)
            guard value.isObject else { throw ECIError(.invalidArgument, "\(source): not a JSON object") }
            return value
        } catch let error as ECIError {
            throw error
        } catch {
            throw ECIError(.invalidArgument, "\(source): malformed JSON", cause: error)
        }
    }
}

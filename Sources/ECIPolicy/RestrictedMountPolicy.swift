import ECICore
import ECIOCI

/// The VM paths no container may mount: the engine's sockets and state, containerd's, ECI's
/// own state, configuration and binaries, the kernel's files, and procfs/sysfs/devices.
///
/// A bind source is refused when any of its names (the path the kernel resolved, and the path
/// of the same directory through every other mount of its file system) is a restricted path,
/// lies inside one, or contains one. The engine's own files for the container being created
/// and named volumes' data directories live under the engine's data root and stay allowed.
public struct RestrictedMountPolicy: Sendable, Equatable {
    /// Absolute paths, each restricted with everything below it.
    public var restrictedPaths: [String]
    /// The engine's data root (dockerd's `--data-root`), itself restricted but for the exceptions.
    public var engineDataRoot: String
    /// When set, the only places bind sources may come from (besides the engine's own files and
    /// named volumes): an allow-list. Bind mounts are idmapped, so container root writes to
    /// them as the VM's root; in the VM, any system directory (`/usr/local/bin`, `/etc/systemd`)
    /// would be a way out, and a deny-list can't name them all. Nil: the deny-list alone (a
    /// plain host running eci-runc, where the admin decides what is shared).
    public var allowedBindRoots: [String]?
    /// Paths a bind may name only literally, never through a symlink or a parent directory: the
    /// container-facing engine socket, which the API filter puts in the specs of admitted
    /// containers itself (a symlink swapped in later must not hand it to another container).
    public var exactSources: [String] = []
    /// When set, the only cgroup parents a container's `linux.cgroupsPath` may lie below
    /// (`CgroupPathPolicy`): `/docker` (cgroupfs) and `system.slice:docker` (systemd) in the VM.
    /// Nil: not checked (a plain host, whose engines choose their own parents).
    public var cgroupParents: [String]?
    /// Single files the engine itself binds into containers (`docker run --init`), by the names
    /// the engine uses for them.
    public var engineHelpers: [String] = ["/usr/bin/docker-init", "/usr/libexec/docker/docker-init"]
    /// Where the engine binds its helper: the only destination the exception covers.
    public static let engineHelperDestination = "/sbin/docker-init"

    public init(restrictedPaths: [String], engineDataRoot: String, allowedBindRoots: [String]? = nil) {
        self.restrictedPaths = restrictedPaths
        self.engineDataRoot = engineDataRoot
        self.allowedBindRoots = allowedBindRoots
    }

    /// The policy for a VM running Docker's engine with default paths, and ECI installed as the
    /// image installs it. Usable on any host: paths that do not exist restrict nothing.
    public static let defaults = RestrictedMountPolicy(
        restrictedPaths: [
            "/var/run/docker.sock", "/run/docker.sock", "/run/docker", "/var/run/docker", "/var/lib/docker", "/etc/docker",
            "/var/lib/containerd", "/run/containerd", "/var/run/containerd", "/etc/containerd", "/run/runc", "/var/run/runc",
            "/run/eci", "/var/lib/eci", "/etc/eci", "/usr/bin/eci-runc", "/usr/bin/ecid", "/usr/bin/eci-agent", "/usr/bin/eci-init", "/usr/lib/eci",
            "/boot", "/lib/modules", "/usr/lib/modules", "/proc", "/sys", "/dev",
        ],
        engineDataRoot: "/var/lib/docker")

    /// Reads a policy file: `{"restrictedPaths": [...], "engineDataRoot": "...",
    /// "allowedBindRoots": [...]}` (the last optional). Unknown keys and relative paths are
    /// errors: a typo must never weaken the policy.
    public static func parse(_ bytes: [UInt8], source: String) throws -> RestrictedMountPolicy {
        let document = try JSONValue.parse(bytes)
        guard case let .object(members) = document else { throw ECIError(.invalidArgument, "\(source): not a JSON object") }
        var paths: [String]?
        var dataRoot: String?
        var allowed: [String]?
        var exact: [String] = []
        var cgroupParents: [String]?
        for (key, value) in members {
            switch key {
            case "cgroupParents":
                guard let items = value.arrayValue else { throw ECIError(.invalidArgument, "\(source): cgroupParents must be an array") }
                cgroupParents = try items.map { item in
                    guard let parent = item.stringValue, parent.hasPrefix("/") ? parent != "/" : parent.split(separator: ":").count == 2 else {
                        throw ECIError(.invalidArgument, "\(source): cgroupParents holds \(item.serialized()), not an absolute path below / or a systemd slice:prefix")
                    }
                    return parent
                }
            case "exactSources": exact = try pathsBelowRoot(value, key, source)
            case "allowedBindRoots": allowed = try pathsBelowRoot(value, key, source)
            case "restrictedPaths":
                guard let items = value.arrayValue else { throw ECIError(.invalidArgument, "\(source): restrictedPaths must be an array") }
                paths = try items.map { item in
                    guard let path = item.stringValue, path.hasPrefix("/") else {
                        throw ECIError(.invalidArgument, "\(source): restrictedPaths holds \(item.serialized()), not an absolute path")
                    }
                    return path
                }
            case "engineDataRoot":
                guard let path = value.stringValue, path.hasPrefix("/") else {
                    throw ECIError(.invalidArgument, "\(source): engineDataRoot must be an absolute path")
                }
                dataRoot = path
            default: throw ECIError(.invalidArgument, "\(source): unknown key \"\(key)\"")
            }
        }
        guard let paths, let dataRoot else { throw ECIError(.invalidArgument, "\(source): restrictedPaths and engineDataRoot are required") }
        var policy = RestrictedMountPolicy(restrictedPaths: paths + [dataRoot], engineDataRoot: dataRoot, allowedBindRoots: allowed)
        policy.exactSources = exact
        policy.cgroupParents = cgroupParents
        return policy
    }

    /// A list of absolute paths other than `/` itself (which would allow, or pin, everything), cleaned.
    static func pathsBelowRoot(_ value: JSONValue, _ key: String, _ source: String) throws -> [String] {
        guard let items = value.arrayValue else { throw ECIError(.invalidArgument, "\(source): \(key) must be an array") }
        return try items.map { item in
            guard let path = item.stringValue, path.hasPrefix("/"), path != "/" else {
                throw ECIError(.invalidArgument, "\(source): \(key) holds \(item.serialized()), not an absolute path below /")
            }
            return lexicallyClean(path)
        }
    }

    /// The engine's own files for container `id`: what dockerd binds into it.
    public func engineFiles(containerID id: String) -> [String] {
        let base = join(join(engineDataRoot, "containers"), id)
        return ["resolv.conf", "hostname", "hosts", "mounts/shm"].map { join(base, $0) }
    }

    /// Whether `path` is a named volume's data directory, or inside one.
    func isVolumeData(_ path: String) -> Bool {
        let volumes = join(engineDataRoot, "volumes") + "/"
        guard path.hasPrefix(volumes) else { return false }
        let rest = path.dropFirst(volumes.count).split(separator: "/", omittingEmptySubsequences: false)
        return rest.count >= 2 && !rest[0].isEmpty && rest[1] == "_data"
    }

    /// Whether `path` lies strictly inside a named volume's data directory (not `_data` itself):
    /// a place containers write, symlinks included, and that no mount makes `nosymfollow`.
    func isInsideVolumeData(_ path: String) -> Bool {
        let volumes = join(engineDataRoot, "volumes") + "/"
        guard path.hasPrefix(volumes) else { return false }
        let rest = path.dropFirst(volumes.count).split(separator: "/", omittingEmptySubsequences: true)
        return rest.count >= 3 && rest[1] == "_data"
    }

    /// The runtime's and the filter's one refusal of a bind source in an allowed root whose
    /// mounts (`followers`) still follow symlinks (see `SymlinkBlindRoots` in the runtime).
    public static func symlinkFollowingRefusal(source: String, followers: [String]) -> ECIError {
        ECIError(
            .refused,
            "can't mount \(source): \(followers.joined(separator: ", ")) is not mounted nosymfollow; directories containers may bind must be (eci-agent does this at boot; remount with `mount -o remount,bind,nosymfollow`)")
    }

    /// The files BuildKit's executor binds into every build step: its `resolv.conf`
    /// (`resolv-host.conf` for host networking, which the engine refuses under ECI) and `hosts`
    /// files, directly in `DATAROOT/buildkit/executor`. Excepted by the runtime only (the API
    /// filter never), as regular files, locked read-only (`ReadOnlyMounts`).
    public func isBuildKitExecutorFile(_ path: String) -> Bool {
        guard parentDirectory(path) == join(engineDataRoot, "buildkit/executor") else { return false }
        let name = String(path.split(separator: "/").last ?? "")
        return name == "resolv.conf" || name == "resolv-host.conf" || name.hasPrefix("hosts")
    }

    /// A mount point moby's safepath makes for a volume subpath (`DATAROOT/tmp/safe-mountN`).
    func isEngineSafeMount(_ path: String) -> Bool {
        parentDirectory(path) == join(engineDataRoot, "tmp") && (path.split(separator: "/").last ?? "").hasPrefix("safe-mount")
    }

    /// Whether a bind is the engine's own helper mount, exactly as the engine makes it for
    /// `docker run --init`: one of the helper names, at `/sbin/docker-init`. Nothing else about
    /// the helper is excepted: any other destination, or the helper named through another path,
    /// is an ordinary bind source (outside the allowed roots, so refused in the VM). The runtime
    /// locks the mount read-only and requires a regular file, so even a request that forges
    /// this shape gets only a read-only view of a root-owned binary the engine already shows.
    public func isEngineHelperMount(source: String, destination: String) -> Bool {
        engineHelpers.contains(lexicallyClean(source)) && lexicallyClean(destination) == Self.engineHelperDestination
    }

    /// Refuses the bind source `source` (as the spec names it) when one of `names` (canonical
    /// absolute paths of what it resolves to) is restricted. `restricted` may hold resolved
    /// variants of the policy's paths (see `restrictedPaths`). `destination` is where the bind
    /// goes in the container: given only by the runtime, which alone may except the engine's
    /// helper mount (`isEngineHelperMount`); the API filter passes nil, so a user's bind of the
    /// helper is judged like any other path.
    public func check(source: String, names: [String], restricted: [String], containerID: String, destination: String? = nil) throws {
        let exceptions = engineFiles(containerID: containerID)
        // A mount the engine made of part of a named volume (API 1.45's volume subpath, bound
        // through moby's safepath under its data root): judged by the volume data it shows.
        let volumeBacked = names.contains(where: isVolumeData)
        for name in names {
            if let exact = exactSources.first(where: { isWithin(name, $0) || isWithin($0, name) }) {
                guard name == exact, lexicallyClean(source) == exact else {
                    throw ECIError(.refused, "can't mount \(source) because it's configured as a restricted host mount (\(exact) may only be named as it is)")
                }
                continue
            }
            let runtimeOnly = destination != nil && (isBuildKitExecutorFile(name) || (volumeBacked && isEngineSafeMount(name)))
            let excepted = isVolumeData(name) || exceptions.contains { isWithin(name, $0) } || runtimeOnly
            // The engine's helper is named by the engine (`/usr/bin/docker-init`, a symlink to
            // tini in Debian): judged by the name and destination in the spec.
            let helper = destination.map { isEngineHelperMount(source: source, destination: $0) } ?? false
            if let allowedBindRoots, !excepted, !helper, !allowedBindRoots.contains(where: { isWithin(name, $0) }) {
                throw ECIError(.refused, "can't mount \(source) because it's configured as a restricted host mount (bind mounts may come only from \(allowedBindRoots.joined(separator: ", ")))")
            }
            for path in restricted {
                let inside = isWithin(name, path)
                let contains = isWithin(path, name) && path != name
                if contains || (inside && !excepted) {
                    throw ECIError(.refused, "can't mount \(source) because it's configured as a restricted host mount")
                }
            }
        }
    }
}

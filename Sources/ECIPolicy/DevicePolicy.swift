import ECICore
import ECIOCI

/// Which devices a container may have: never a VM device. Only the pseudo devices every
/// container gets, and FUSE, are passed in; `--device` for anything else is refused, and a
/// privileged container's "all host devices" is cut down to the same set.
public enum DevicePolicy {
    /// Device nodes a container may receive, with their (type, major, minor).
    public static let allowed: [(path: String, type: String, major: Int64, minor: Int64)] = [
        ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7), ("/dev/random", "c", 1, 8),
        ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0), ("/dev/console", "c", 5, 1), ("/dev/ptmx", "c", 5, 2),
        ("/dev/fuse", "c", 10, 229),
    ]

    static func isAllowed(path: String?, type: String?, major: Int64?, minor: Int64?) -> Bool {
        allowed.contains { $0.path == path && ($0.type == type || type == nil) && ($0.major == major || major == nil) && ($0.minor == minor || minor == nil) }
    }

    /// Whether the spec is "privileged": its device cgroup allows every device.
    public static func allowsAllDevices(_ spec: OCISpec) -> Bool {
        let rules = spec.document["linux"]?["resources"]?["devices"]?.arrayValue ?? []
        return rules.contains { rule in
            rule["allow"]?.boolValue == true && (rule["type"]?.stringValue ?? "a") == "a" && rule["major"] == nil && rule["minor"] == nil
        }
    }

    /// Refuses VM devices requested one by one; cuts a privileged container's device list down
    /// to the allowed set; sets every container's device cgroup to deny all but the allowed set.
    public static func apply(to spec: inout OCISpec) throws {
        let devices = spec.document["linux"]?["devices"]?.arrayValue ?? []
        let privileged = allowsAllDevices(spec)
        var kept: [JSONValue] = []
        for device in devices {
            let path = device["path"]?.stringValue
            if isAllowed(path: path, type: device["type"]?.stringValue, major: device["major"]?.int64Value, minor: device["minor"]?.int64Value) {
                kept.append(device)
            } else if !privileged {
                throw ECIError(.refused, "can't give the container the device \(path ?? "(no path)"): containers never get VM devices under ECI")
            }
        }
        // Every container's device cgroup is ECI's, whatever the spec asked: an image can carry
        // device nodes (the engine unpacks them as root), and a rule such as `b *:* rwm`
        // (--device-cgroup-rule) would open the VM's disks through them.
        var linux = spec.document["linux"] ?? .object([])
        if privileged || !devices.isEmpty { linux.set("devices", .array(kept)) }
        var resources = linux["resources"] ?? .object([])
        resources.set("devices", .array(deviceRules()))
        linux.set("resources", resources)
        spec.replaceLinux(linux)
    }

    /// Device cgroup rules: deny everything, then allow the allowed nodes and pseudo-terminals.
    static func deviceRules() -> [JSONValue] {
        var rules: [JSONValue] = [.object([("allow", .bool(false)), ("access", .string("rwm"))])]
        for device in allowed {
            rules.append(.object([
                ("allow", .bool(true)), ("type", .string(device.type)), ("major", .integer(device.major)), ("minor", .integer(device.minor)),
                ("access", .string("rwm")),
            ]))
        }
        rules.append(.object([("allow", .bool(true)), ("type", .string("c")), ("major", .integer(136)), ("access", .string("rwm"))]))
        return rules
    }
}

/// What `--privileged` keeps under ECI: all capabilities (namespaced now), mounts, sysctls of
/// its own namespaces, nested user namespaces. What it never gets back: the procfs and sysfs
/// masks and read-only paths that hide VM information and VM-global knobs.
public enum ProcfsPolicy {
    /// Masked for every container (Docker's defaults, which `--privileged` would drop).
    public static let maskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    /// Read-only for every container. `/proc/sys` is not here: it stays read-only for ordinary
    /// containers (the engine asks for it) and writable for privileged ones, whose writes reach
    /// only their own namespaces' sysctls (the VM-global ones belong to the VM's user namespace).
    public static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"]

    /// Adds the masks and read-only paths the spec lacks, keeping its own.
    public static func apply(to spec: inout OCISpec) {
        var linux = spec.document["linux"] ?? .object([])
        for (key, required) in [("maskedPaths", maskedPaths), ("readonlyPaths", readonlyPaths)] {
            var list = (linux[key]?.arrayValue ?? []).compactMap(\.stringValue)
            for path in required where !list.contains(path) { list.append(path) }
            linux.set(key, .array(list.map { .string($0) }))
        }
        spec.replaceLinux(linux)
    }
}

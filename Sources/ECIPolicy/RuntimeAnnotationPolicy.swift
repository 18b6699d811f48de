import ECICore

/// Annotations runc reads as its own configuration, which no request may set.
///
/// The engine copies `HostConfig.Annotations` into the OCI spec (API 1.43 and later), and runc
/// lists these in its `features` as potentially unsafe: every `org.systemd.property.NAME`
/// becomes a property of the container's systemd scope (the VM's engine uses the systemd cgroup
/// driver on cgroup v2), which reaches far past the container: `Conflicts=['docker.service']`
/// stops the engine, `Wants=['poweroff.target']` powers the VM off, `Wants=['modprobe@X.service']`
/// loads any kernel module, `Slice=` moves the cgroup out of the engine's parents;
/// `org.criu.config` names a file CRIU reads as the VM's root; `bundle` replaces the bundle path
/// runc records. Neither the engine nor containerd sets any of them for a container.
public enum RuntimeAnnotationPolicy {
    /// Whether runc would read `key` as configuration. Matched case-insensitively: the cost of a
    /// refused odd spelling is nothing, and runc's own matching is not ours to rely on.
    public static func isRefused(_ key: String) -> Bool {
        let folded = key.lowercased()
        return folded.hasPrefix("org.systemd.property.") || folded == "org.criu.config" || folded == "bundle"
    }

    /// Refuses the first annotation key runc would read as configuration.
    public static func check(_ keys: [String]) throws {
        guard let key = keys.first(where: isRefused) else { return }
        throw ECIError(
            .refused,
            "enhanced container isolation: the annotation \"\(key)\" is not allowed (runc reads it as its own configuration, e.g. properties of the container's systemd unit)")
    }
}

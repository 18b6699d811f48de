import ECICore
import ECIOCI

/// The pure rewrite that gives a container its own user namespace: what the spec must say so
/// that container root is an unprivileged, exclusive range of VM IDs.
public enum IsolationSpec {
    /// Adds the user and cgroup namespaces and the container's ID mappings.
    ///
    /// A request for no user namespace (`--userns=host`) is simply overridden: every container
    /// gets its own. Joining an existing user namespace by path is refused, since it would
    /// share another namespace's IDs instead of an exclusive range.
    public static func applyUserNamespace(to spec: inout OCISpec, range: IDRange) throws {
        for ns in try spec.namespaces() where ns.type == "user" {
            if let path = ns.path {
                throw ECIError(.refused, "containers can't join an existing user namespace (\(path)): each one gets its own with an exclusive ID range")
            }
        }
        spec.ensureNamespace("user")
        spec.ensureNamespace("cgroup")
        spec.setIDMappings(containerID: 0, hostID: range.base, size: range.size)
        clampPingGroupRange(&spec, size: range.size)
    }

    /// `net.ipv4.ping_group_range` names group IDs; inside a user namespace the kernel accepts
    /// only mapped ones, and engines ask for "0 2147483647" (all groups may ping). The range is
    /// clamped to the container's own groups, which is what "all groups" means there.
    static func clampPingGroupRange(_ spec: inout OCISpec, size: UInt32) {
        let key = "net.ipv4.ping_group_range"
        guard let value = spec.sysctl(key) else { return }
        let parts = value.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2, let low = UInt64(parts[0]), let high = UInt64(parts[1]) else { return }
        let last = UInt64(size) - 1
        spec.setSysctl(key, "\(min(low, last)) \(min(high, last))")
    }
}

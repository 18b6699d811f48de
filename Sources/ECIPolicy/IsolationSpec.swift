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
    }
}

import ECICore
import ECIOCI

/// Which namespaces a container may share. ECI's isolation rests on the user namespace, and a
/// namespace shared with the VM (its pid, network, ipc, uts or cgroup namespace) would hand
/// the container VM resources that the user namespace cannot fence off.
public enum NamespacePolicy {
    /// Namespaces every container must have of its own (absent from the spec = shared with the VM).
    public static let required = ["pid", "network", "ipc", "uts"]
    /// Namespaces that may be joined by path, but never the VM's own.
    public static let checkedPaths = ["pid", "network", "ipc", "uts", "cgroup"]

    /// Refuses sharing the VM's namespaces, by omission or by a path to one of them.
    /// `isVMNamespace` tells whether a namespace path names one of the VM's own namespaces.
    public static func check(_ namespaces: [OCISpec.Namespace], isVMNamespace: (OCISpec.Namespace) -> Bool) throws {
        let present = Set(namespaces.map(\.type))
        let shared = required.filter { !present.contains($0) }
            + namespaces.filter { $0.path != nil && checkedPaths.contains($0.type) && isVMNamespace($0) }.map(\.type)
        guard let first = shared.first else { return }
        throw refusal(for: Array(Set(shared)).sorted(), first: first)
    }

    /// ECI's wording (Docker's ECI users know it).
    static func refusal(for types: [String], first: String) -> ECIError {
        if types == ["network"] {
            return ECIError(.refused, "containers can't share a network namespace with the host (because they use the linux user-namespace for isolation)")
        }
        let names = types.map { $0 == "network" ? "net" : $0 }.joined(separator: " ")
        return ECIError(.refused, "containers can't share namespaces [\(names)] with the host (because they use the linux user-namespace for isolation)")
    }
}

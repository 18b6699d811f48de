import ECICore
import ECIOCI
import Glibc

/// Tells whether a namespace path names one of the VM's own namespaces: the same nsfs inode
/// as this process's (the engine's) or PID 1's namespace of that type.
enum NamespaceIdentity {
    /// OCI namespace type → /proc/PID/ns entry.
    static let procNames = ["pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "mount": "mnt", "user": "user", "time": "time"]

    /// Checks that every namespace path exists and returns the test the policy applies.
    static func vmNamespaceTest(for namespaces: [OCISpec.Namespace]) throws -> (OCISpec.Namespace) -> Bool {
        var vm: Set<String> = []
        for ns in namespaces {
            guard let path = ns.path else { continue }
            guard let target = identity(path) else {
                throw ECIError(.invalidArgument, "config.json: the \(ns.type) namespace path \(path) does not exist")
            }
            guard let name = procNames[ns.type] else { continue }
            if ["self", "1"].contains(where: { identity("/proc/\($0)/ns/\(name)") == target }) {
                vm.insert(ns.type + "\u{0}" + path)
            }
        }
        return { vm.contains($0.type + "\u{0}" + ($0.path ?? "")) }
    }

    static func identity(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return "\(st.st_dev):\(st.st_ino)"
    }
}

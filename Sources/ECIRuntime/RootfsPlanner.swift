import ECICore
import ECIOCI

/// Decides how a container's root filesystem is rebuilt on idmapped mounts, from what the
/// engine mounted at `root.path`: an overlay (dockerd's overlay2, containerd's snapshotter) or
/// a plain directory (an OCI bundle's rootfs).
enum RootfsPlanner {
    /// The name of the overlay work directory ECI makes beside the engine's upper dir: the
    /// engine's own overlay keeps its work dir, so the two mounts never clean each other's.
    static let workDirectoryName = "eci-work"

    struct Plan {
        var rootfs: StagePlan.Rootfs
        /// The work directory to create now and remove at delete, for an overlay.
        var workDirectory: String?
    }

    static func plan(rootPath: String, mounts: [MountInfoEntry]) throws -> Plan {
        guard let top = MountInfo.mount(at: rootPath, in: mounts), top.fsType == "overlay" else {
            return Plan(rootfs: .directory(rootPath), workDirectory: nil)
        }
        let layers = try OverlayLayers(superOptions: top.superOptions).resolved(mountPoint: rootPath, exists: FileSystem.exists)
        guard let upper = layers.upper, !layers.lowers.isEmpty else {
            throw ECIError(.unsupported, "the overlay at \(rootPath) has no upper dir; read-only root filesystems from an engine are not supported yet")
        }
        let work = join(parentDirectory(upper), workDirectoryName)
        let paths = try (layers.lowers + [upper]).map { try FileSystem.realPath($0) } + [work]
        let (roots, refs) = try groupUnderIdmapRoots(paths, mounts: mounts)
        return Plan(
            rootfs: .overlay(roots: roots, lowers: Array(refs.prefix(layers.lowers.count)), upper: refs[refs.count - 2], work: refs[refs.count - 1]),
            workDirectory: work)
    }

    /// Groups paths by the mount that holds them and finds, per mount, the deepest common
    /// directory: one idmapped clone of it covers all of that mount's layers (one mount instead
    /// of one per layer; an image can have a hundred).
    static func groupUnderIdmapRoots(_ paths: [String], mounts: [MountInfoEntry]) throws -> ([String], [StagePlan.LayerPath]) {
        var roots: [String] = []
        var mountOfRoot: [Int] = []
        var members: [[Int]] = []
        for (index, path) in paths.enumerated() {
            guard let mount = MountInfo.containingMount(of: path, in: mounts) else {
                throw ECIError(.invalidState, "no mount holds \(path)")
            }
            if let group = mountOfRoot.firstIndex(of: mount.mountID) {
                roots[group] = commonDirectory(roots[group], path)
                members[group].append(index)
            } else {
                mountOfRoot.append(mount.mountID)
                roots.append(path)
                members.append([index])
            }
        }
        // A lone path is its own root only if it is a directory that exists; the work dir
        // joins its upper dir's group, so each group's root is a real directory.
        for (group, root) in roots.enumerated() where members[group].count == 1 {
            roots[group] = parentDirectory(root)
        }
        var refs = [StagePlan.LayerPath](repeating: StagePlan.LayerPath(root: 0, relative: ""), count: paths.count)
        for (group, indices) in members.enumerated() {
            for index in indices {
                refs[index] = StagePlan.LayerPath(root: group, relative: relativePath(paths[index], under: roots[group]))
            }
        }
        return (roots, refs)
    }

    /// The deepest directory containing both absolute paths.
    static func commonDirectory(_ a: String, _ b: String) -> String {
        let pa = a.split(separator: "/")
        let pb = b.split(separator: "/")
        var shared: [Substring] = []
        for (i, x) in pa.enumerated() {
            guard i < pb.count, pb[i] == x else { break }
            shared.append(x)
        }
        return "/" + shared.joined(separator: "/")
    }
}

import CShim
import ECICore
import ECIOCI
import ECIPolicy
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Bind-mount sources opened once and checked against the restricted-mount policy: the open
/// fd is what gets cloned later, so a path swapped after the check (symlink race) changes
/// nothing. The names checked are every path under which the VM reaches the same directory;
/// then what the kernel says the source is (`SourceIdentityJudge`): no kernel pseudo file
/// system at or below it, no stacked layer that is restricted, no engine socket in it.
final class MountSources {
    /// Mount index in the spec → O_PATH fd of its source.
    private(set) var fds: [Int: Int32] = [:]

    /// Opens and checks every bind source of `spec`. Throws the policy's refusal, or a clear
    /// error for a missing source; the fds opened so far are closed either way.
    init(spec: OCISpec, policy: RestrictedMountPolicy, containerID: String, mounts: [MountInfoEntry]) throws {
        let restricted = Self.resolvedVariants(of: policy.restrictedPaths)
        var judge = SourceIdentityJudge(policy: policy, restricted: restricted, containerID: containerID, mounts: mounts)
        do {
            for mount in try spec.mounts() where !mount.isBind && mount.type.map({ StackedSourcePolicy.overlayTypes.contains($0) }) == true {
                try judge.checkStackedMount(destination: mount.destination, options: mount.options)
            }
            for (index, mount) in try spec.mounts().enumerated() where mount.isBind {
                guard let source = mount.source, !source.isEmpty else {
                    throw ECIError(.invalidArgument, "config.json: bind mount at \(mount.destination) has no source")
                }
                // O_PATH follows symlinks in every component, as the kernel will for the mount.
                let fd = eci_open_path(source)
                guard fd >= 0 else {
                    let err = -fd
                    if err == ENOENT { throw ECIError(.notFound, "bind mount source \(source) does not exist") }
                    throw ECIError.system("open bind mount source \(source)", errno: err)
                }
                fds[index] = fd
                guard let resolved = KernelMounts.resolvedPath(of: fd) else { throw ECIError(.system, "can't resolve bind mount source \(source)") }
                let names = Self.aliases(of: resolved, mounts: mounts)
                try policy.check(source: source, names: names, restricted: restricted, containerID: containerID, destination: mount.destination)
                // Then what the kernel says the source is, whatever its names.
                try judge.check(source: source, fd: fd, resolved: resolved, names: names, recursive: mount.isRecursiveBind)
                // In an allowed root, only from mounts the engine's own lookups can't follow symlinks through.
                try SymlinkBlindRoots.requireBlind(source: source, resolved: resolved, recursive: mount.isRecursiveBind, policy: policy, mounts: mounts)
                if policy.isEngineHelperMount(source: source, destination: mount.destination) || names.contains(where: policy.isBuildKitExecutorFile) {
                    // The engine's helper and BuildKit's files are files: a directory of that name
                    // was made by a bind request, not by the engine.
                    var st = stat()
                    guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
                        throw ECIError(.refused, "can't mount \(source) because it's configured as a restricted host mount (the engine's helper must be a regular file)")
                    }
                }
            }
        } catch {
            closeAll()
            throw error
        }
    }

    deinit { closeAll() }

    private func closeAll() {
        for fd in fds.values { close(fd) }
        fds = [:]
    }

    /// Every path under which the VM reaches the directory at `path`: itself, and, for a mount
    /// that binds a subtree of its file system (a volume made with `o=bind,device=...`), the
    /// same place through each other mount of that file system.
    static func aliases(of path: String, mounts: [MountInfoEntry]) -> [String] {
        var names = [path]
        guard let mount = MountInfo.containingMount(of: path, in: mounts) else { return names }
        let fsPath = join(mount.root, relativePath(path, under: mount.mountPoint))
        for other in mounts where other.device == mount.device && isWithin(fsPath, other.root) {
            let alias = join(other.mountPoint, relativePath(fsPath, under: other.root))
            if !names.contains(alias) { names.append(alias) }
        }
        return names
    }

    /// Each policy path and, where its existing part resolves elsewhere (/var/run → /run),
    /// the resolved form too (`FileSystem.resolvingExistingPrefix`, as the filter resolves a
    /// request's sources). Unlike the filter, which judges a request's source by its one resolved
    /// name, the runtime keeps the written form as well (defence in depth: the names a source is
    /// checked under, its aliases through other mounts included, are refused if they match either).
    static func resolvedVariants(of paths: [String]) -> [String] {
        var out: [String] = []
        for path in paths {
            if !out.contains(path) { out.append(path) }
            if let resolved = FileSystem.resolvingExistingPrefix(path), !out.contains(resolved) { out.append(resolved) }
        }
        return out
    }
}

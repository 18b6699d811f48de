import CShim
import ECICore
import ECIPolicy
import Glibc

/// The VM's view of the directories containers may bind (the policy's `allowedBindRoots`) never
/// follows a symlink: each root, and every mount below it, is `nosymfollow` (and `nosuid,nodev`:
/// container root writes there as the VM's uid 0, so a setuid file it plants must not work for
/// the VM's users).
///
/// A container that binds `/srv/app` read-write can plant symlinks there as it likes. The engine
/// and containerd later act on paths under those roots as VM root, on their own, outside the
/// runtime and after the API filter: `mkdir -p` of a missing bind source at start, the local
/// volume driver's bind of `device=`, the mounts `docker cp` makes. Re-checking paths at more
/// moments narrows those races; it cannot close them. A `nosymfollow` mount closes them: every
/// lookup that meets a symlink fails (ELOOP), whoever makes it, whenever. eci-runc clears the
/// flag on its own idmapped clones (`KernelMounts.followSymlinks`), so inside the container a
/// bound directory's symlinks work as usual, resolved in the container's root.
public enum SymlinkBlindRoots {
    /// ST_NOSYMFOLLOW in statfs f_flags (Linux 5.10).
    static let statfsNoSymFollow = 0x2000

    /// Makes every root `nosymfollow` (creating a missing root as a root-owned 0755 directory,
    /// so a later mount of it by the admin is judged too). Idempotent.
    public static func apply(roots: [String], mounts: [MountInfoEntry]) throws {
        for root in roots {
            if !FileSystem.exists(root) { try FileSystem.makeDirectories(root, mode: 0o755) }
            let isMountPoint = MountInfo.mount(at: root, in: mounts) != nil
            let rc = eci_make_nosymfollow(root, isMountPoint ? 1 : 0)
            guard rc == 0 else { throw ECIError.system("make \(root) nosymfollow", errno: -rc) }
        }
    }

    /// The mounts under the allowed roots that still follow symlinks (none after `apply`, unless
    /// something was mounted there since).
    public static func unprotectedMounts(roots: [String], mounts: [MountInfoEntry]) -> [String] {
        var out: [String] = []
        for root in roots {
            if MountInfo.containingMount(of: root, in: mounts)?.mountOptions.contains("nosymfollow") != true { out.append(root) }
            for entry in mounts where isWithin(entry.mountPoint, root) && entry.mountPoint != root && !entry.mountOptions.contains("nosymfollow") {
                if !out.contains(entry.mountPoint) { out.append(entry.mountPoint) }
            }
        }
        return out
    }

    /// Fails closed when a bind source in an allowed root sits on a mount that follows symlinks
    /// (or, for a recursive bind, has such a mount below it): the engine's own lookups there
    /// would not be symlink-blind. `resolved` is the path the kernel resolved for the source.
    public static func requireBlind(source: String, resolved: String, recursive: Bool, policy: RestrictedMountPolicy, mounts: [MountInfoEntry]) throws {
        guard let roots = policy.allowedBindRoots, roots.contains(where: { isWithin(resolved, $0) }) else { return }
        let followers = followingMounts(of: resolved, recursive: recursive, mounts: mounts)
        guard followers.isEmpty else { throw RestrictedMountPolicy.symlinkFollowingRefusal(source: source, followers: followers) }
    }

    /// The mounts through which a lookup of `path` (and, for a recursive bind, of anything below
    /// it) would still follow symlinks: the mount that contains it, and the mounts below it.
    public static func followingMounts(of path: String, recursive: Bool, mounts: [MountInfoEntry]) -> [String] {
        var followers: [String] = []
        if let mount = MountInfo.containingMount(of: path, in: mounts), !mount.mountOptions.contains("nosymfollow") {
            followers.append(mount.mountPoint)
        }
        if recursive {
            for entry in mounts where isWithin(entry.mountPoint, path) && entry.mountPoint != path && !entry.mountOptions.contains("nosymfollow") {
                followers.append(entry.mountPoint)
            }
        }
        return followers
    }
}

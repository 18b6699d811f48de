import ECICore
import ECIOCI

/// Which containers start under eci-init, which has the kernel lock every mount the runtime
/// made (docs/ecid.md, "Locked initial mounts"), and how their spec says so.
///
/// A container whose process starts as root with CAP_SYS_ADMIN in its bounding set (or as another
/// user with it in its ambient set) holds CAP_SYS_ADMIN in its user namespace, and with it the
/// power to unmount, move or remount the runtime's mounts: runc makes them inside that
/// namespace, so they are not locked. ecid's traps
/// refuse those calls; eci-init adds the kernel's refusal under them (a second layer that no race
/// in a check can get past). Without CAP_SYS_ADMIN there is little to lock against: no mount
/// call is allowed, and a nested user namespace gets locked copies from the kernel anyway (an
/// exec that adds CAP_SYS_ADMIN is the exception, docs/ecid.md "Not covered").
///
/// A container confined by an AppArmor profile or an SELinux label is not locked: the LSM denies
/// its mount calls, and ecid refuses them too.
///
/// Not covered (ecid's traps alone): a process that starts as another user without CAP_SYS_ADMIN
/// but with it in its bounding set and becomes root later (a setuid program), and a set without
/// CAP_SYS_CHROOT. eci-init would have to start as root with both and switch users and drop
/// capabilities itself, as runc does.
public enum MountLockPolicy {
    public enum Decision: Sendable, Equatable {
        /// Start the program under eci-init.
        case lock
        /// Nothing to lock against, or not covered; why, for the log.
        case unlocked(String)
    }

    /// What `spec` needs. eci-init joins a mount namespace, which the kernel allows only with
    /// CAP_SYS_CHROOT next to CAP_SYS_ADMIN: without it the mounts stay unlocked (ecid's traps,
    /// which are the promise, still hold; the lock is the layer under them).
    public static func decide(_ spec: OCISpec) throws -> Decision {
        let process = spec.document["process"]
        let uid = process?["user"]?["uid"]?.uint64Value ?? 0
        func capabilities(_ set: String) -> Set<String> {
            Set((process?["capabilities"]?[set]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        // What the program holds once exec'd: root gets its bounding set; another user its
        // ambient set (found by an attack round: uid 1000 with ambient CAP_SYS_ADMIN ran unlocked).
        let held = uid == 0 ? capabilities("bounding") : capabilities("ambient")
        guard held.contains("CAP_SYS_ADMIN") else {
            return capabilities("bounding").contains("CAP_SYS_ADMIN")
                ? .unlocked("the process starts as uid \(uid) without CAP_SYS_ADMIN (a setuid program could regain it: not covered)")
                : .unlocked("no CAP_SYS_ADMIN")
        }
        // An AppArmor profile or SELinux label confines its mount calls already: Docker's
        // docker-default denies mount and umount (and ecid refuses every mount call of a
        // confined caller: it cannot reproduce the LSM's mediation), and it denies the user
        // namespace eci-init needs (userns_create), so eci-init could not run there anyway.
        if let profile = process?["apparmorProfile"]?.stringValue, !profile.isEmpty, profile != "unconfined" {
            return .unlocked("AppArmor profile \(profile) confines its mount calls")
        }
        if let label = process?["selinuxLabel"]?.stringValue, !label.isEmpty {
            return .unlocked("SELinux label \(label) confines its mount calls")
        }
        guard held.contains("CAP_SYS_CHROOT") else { return .unlocked("no CAP_SYS_CHROOT (eci-init's setns needs it)") }
        guard let args = process?["args"]?.arrayValue, !args.isEmpty else {
            throw ECIError(.invalidArgument, "config.json: process.args is empty")
        }
        return .lock
    }

    /// The program becomes eci-init's arguments: `/proc/self/fd/FD [--nproc=SOFT:HARD] --
    /// PROGRAM ARGS...` (runc keeps fd `initFD` open through --preserve-fds; PROGRAM is found on
    /// the container's PATH by eci-init, as runc would). A soft RLIMIT_NPROC below 2 moves from
    /// runc to eci-init, which sets it after its one fork: `--ulimit nproc=1` failed that fork,
    /// where runc's own start needs none (found by an attack round). Only then: `runc exec`
    /// without `--process` takes its limits from this spec, and a limit moved away would be lost
    /// there (the next attack round); with 2 or more the fork fits (eci-init is the container's
    /// only process, and exec before start is refused).
    public static func startUnderInit(_ spec: inout OCISpec, initFD: Int32) throws {
        guard initFD >= 3, var process = spec.document["process"], let args = process["args"]?.arrayValue, !args.isEmpty else {
            throw ECIError(.invalidArgument, "config.json: process.args is empty")
        }
        var options: [JSONValue] = []
        if let rlimits = process["rlimits"]?.arrayValue, let nproc = rlimits.last(where: { $0["type"]?.stringValue == "RLIMIT_NPROC" }) {
            guard let soft = nproc["soft"]?.uint64Value, let hard = nproc["hard"]?.uint64Value else {
                throw ECIError(.invalidArgument, "config.json: RLIMIT_NPROC needs numeric soft and hard limits")
            }
            if soft < minimumProcessesForInit {
                options.append(.string("--nproc=\(soft):\(hard)"))
                process.set("rlimits", .array(rlimits.filter { $0["type"]?.stringValue != "RLIMIT_NPROC" }))
            }
        }
        process.set("args", .array([.string("/proc/self/fd/\(initFD)")] + options + [.string("--")] + args))
        spec.setProcess(process)
    }

    /// eci-init and the child it forks.
    static let minimumProcessesForInit: UInt64 = 2
}

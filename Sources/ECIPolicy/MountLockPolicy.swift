import ECICore
import ECIOCI

/// Which containers start under eci-init, which has the kernel lock every mount the runtime
/// made (docs/ecid.md, "Locked initial mounts"), and how their spec says so.
///
/// A container whose program holds CAP_SYS_ADMIN in its user namespace, or may gain it, has
/// the power to unmount, move or remount the runtime's mounts: runc makes them inside that
/// namespace, so they are not locked. ecid's traps refuse those calls; eci-init adds the
/// kernel's refusal under them (a second layer that no race in a check can get past), and
/// with it a locked container's unmounts and bind remounts leave the traps (`SeccompTraps`).
///
/// "May gain it": any process keeps its ambient set across exec; root gets its bounding and
/// inheritable sets, and so does another user through a setuid-root program or a file
/// capability of its image (an attack round regained root through a setuid program).
/// no-new-privileges ignores setuid bits and keeps what an exec gains within the permitted set
/// runc gave the process, but a file capability still grants up to that (the next attack
/// round: `cap_sys_admin+ep` under no-new-privileges). Without CAP_SYS_ADMIN in any of those
/// there is nothing to lock against: no mount call is allowed, and a nested user namespace
/// gets locked copies from the kernel anyway.
///
/// eci-init needs CAP_SYS_ADMIN and CAP_SYS_CHROOT itself (setns into a mount namespace, and
/// unshare of a new one). When the program would not hold them from its first instruction, the
/// spec grants them to eci-init (and CAP_SETPCAP, to drop a bounding capability again), and
/// eci-init takes exactly those grants back after locking (`--drop-caps`), so the program
/// starts with the sets runc alone would have given it.
///
/// A container confined by an AppArmor profile or an SELinux label is not locked: the LSM denies
/// its mount calls, and ecid refuses them too.
public enum MountLockPolicy {
    public enum Decision: Sendable, Equatable {
        /// Start the program under eci-init.
        case lock
        /// Nothing to lock against, or not covered; why, for the log.
        case unlocked(String)
    }

    /// The capability sets of a spec's process, by name.
    struct CapabilitySets: Equatable {
        /// The sets whose contents decide (runc sets the effective one before exec, which
        /// recomputes it).
        static let names = ["bounding", "inheritable", "permitted", "ambient"]
        var sets: [String: [String]]

        init(_ process: JSONValue?) {
            var sets: [String: [String]] = [:]
            for name in Self.names { sets[name] = (process?["capabilities"]?[name]?.arrayValue ?? []).compactMap(\.stringValue) }
            self.sets = sets
        }

        func contains(_ set: String, _ capability: String) -> Bool { sets[set]?.contains(capability) ?? false }

        /// Whether some exec may leave a process of these sets holding `capability` (above).
        func mayHold(_ capability: String, noNewPrivileges: Bool) -> Bool {
            let grantable = contains("bounding", capability) || contains("inheritable", capability)
            return contains("ambient", capability) || (grantable && (!noNewPrivileges || contains("permitted", capability)))
        }
    }

    /// What `spec` needs.
    public static func decide(_ spec: OCISpec) throws -> Decision {
        let process = spec.document["process"]
        let caps = CapabilitySets(process)
        let noNewPrivileges = process?["noNewPrivileges"]?.boolValue ?? false
        guard caps.mayHold("CAP_SYS_ADMIN", noNewPrivileges: noNewPrivileges) else { return .unlocked("no CAP_SYS_ADMIN, held or to be gained") }
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
        guard let args = process?["args"]?.arrayValue, !args.isEmpty else {
            throw ECIError(.invalidArgument, "config.json: process.args is empty")
        }
        return .lock
    }

    /// eci-init runs under the container's seccomp profile, which the user may choose
    /// (`--security-opt seccomp=FILE`), and its steps and checks are system calls: an errno of
    /// 0 makes a call report success without happening (an attack round had prctl, capget and
    /// capset pretend eci-init dropped its grants), and runc hands libseccomp the errno as a
    /// 16-bit number, so 65536 is 0 too (the next round). So every errno the profile gives must
    /// be a real one, 1...4095 (the kernel's MAX_ERRNO; absent means runc's EPERM). Checked for
    /// every container that starts under eci-init, whatever else applies to it: a fifth round
    /// got past the check while it sat with the traps, which a container hook or a host without
    /// ecid skips.
    public static func checkProfile(_ spec: OCISpec) throws {
        guard let profile = spec.document["linux"]?["seccomp"], profile != .null else { return }
        func realErrno(_ value: JSONValue?) -> Bool {
            guard let value else { return true }
            guard let errno = value.int64Value else { return false }
            return (1...4095).contains(errno)
        }
        let why = "(errno 0, or a number runc truncates to 0, answers success without the call); eci-init, which locks this container's mounts, cannot run under it"
        if profile["defaultAction"]?.stringValue == "SCMP_ACT_ERRNO", !realErrno(profile["defaultErrnoRet"]) {
            throw ECIError(.refused, "the seccomp profile's defaultErrnoRet is not an errno from 1 to 4095 \(why)")
        }
        for rule in profile["syscalls"]?.arrayValue ?? [] where rule["action"]?.stringValue == "SCMP_ACT_ERRNO" && !realErrno(rule["errnoRet"]) {
            throw ECIError(.refused, "the seccomp profile answers \(OCISpec.syscallNames(of: rule).joined(separator: ", ")) with an errnoRet that is not an errno from 1 to 4095 \(why)")
        }
    }

    /// The program becomes eci-init's arguments: `/proc/self/fd/FD --status-fd=S
    /// [--nproc=SOFT:HARD] [--drop-caps=...] -- PROGRAM ARGS...` (runc keeps fds `initFD` and
    /// `statusFD` open through --preserve-fds; PROGRAM is found on the container's PATH by
    /// eci-init, as runc would).
    ///
    /// A soft RLIMIT_NPROC below 2 moves from runc to eci-init, which sets it after its one
    /// fork: `--ulimit nproc=1` failed that fork, where runc's own start needs none (found by an
    /// attack round). Only then: `runc exec` without `--process` takes its limits from this
    /// spec, and a limit moved away would be lost there (the next attack round); with 2 or more
    /// the fork fits (eci-init is the container's only process, and exec before start is
    /// refused).
    ///
    /// Capabilities eci-init needs and the program would not hold are granted in the spec and
    /// listed in `--drop-caps` (`grantForInit`). Returns whether any were granted: then this spec
    /// no longer describes the program's own sets, and an exec that would take its process from
    /// it (`runc exec` without `--process`) must be refused.
    @discardableResult
    public static func startUnderInit(_ spec: inout OCISpec, initFD: Int32, statusFD: Int32) throws -> Bool {
        guard initFD >= 3, statusFD >= 3, statusFD != initFD, var process = spec.document["process"], let args = process["args"]?.arrayValue, !args.isEmpty else {
            throw ECIError(.invalidArgument, "config.json: process.args is empty")
        }
        var options: [JSONValue] = [.string("--status-fd=\(statusFD)")]
        if let rlimits = process["rlimits"]?.arrayValue, let nproc = rlimits.last(where: { $0["type"]?.stringValue == "RLIMIT_NPROC" }) {
            guard let soft = nproc["soft"]?.uint64Value, let hard = nproc["hard"]?.uint64Value else {
                throw ECIError(.invalidArgument, "config.json: RLIMIT_NPROC needs numeric soft and hard limits")
            }
            if soft < minimumProcessesForInit {
                options.append(.string("--nproc=\(soft):\(hard)"))
                process.set("rlimits", .array(rlimits.filter { $0["type"]?.stringValue != "RLIMIT_NPROC" }))
            }
        }
        let grant = grantForInit(process)
        if !grant.isEmpty {
            var capabilities = process["capabilities"] ?? .object([])
            for (set, added) in grant {
                let current = (capabilities[set]?.arrayValue ?? []).compactMap(\.stringValue)
                capabilities.set(set, .array((current + added).map { .string($0) }))
            }
            process.set("capabilities", capabilities)
            options.append(.string("--drop-caps=" + dropCapsArgument(grant)))
        }
        process.set("args", .array([.string("/proc/self/fd/\(initFD)")] + options + [.string("--")] + args))
        spec.setProcess(process)
        return !grant.isEmpty
    }

    /// What each set must gain for eci-init, by set name; empty when the program's own sets
    /// suffice. eci-init needs CAP_SYS_ADMIN and CAP_SYS_CHROOT effective (setns into a mount
    /// namespace, unshare of a new one), and CAP_SETPCAP when a capability it needs was added
    /// to the bounding set (to drop it again). Who owns the nested user namespace eci-init's
    /// child makes does not matter: it dies before the program starts, and the namespace the
    /// program runs in is owned by the container's.
    ///
    /// Root gets its bounding set at exec, within its permitted set under no-new-privileges: the
    /// bounding and permitted sets grow. Another user gets its ambient set, where a capability
    /// is raised only when it is also in the inheritable, permitted and bounding sets: all four
    /// grow.
    static func grantForInit(_ process: JSONValue) -> [(set: String, added: [String])] {
        let uid = process["user"]?["uid"]?.uint64Value ?? 0
        let noNewPrivileges = process["noNewPrivileges"]?.boolValue ?? false
        let caps = CapabilitySets(process)
        let sets = uid == 0 ? ["bounding", "permitted"] : ["bounding", "inheritable", "permitted", "ambient"]
        func held(_ capability: String) -> Bool {
            guard uid == 0 else { return sets.allSatisfy { caps.contains($0, capability) } }
            return (caps.contains("bounding", capability) || caps.contains("inheritable", capability)) && (!noNewPrivileges || caps.contains("permitted", capability))
        }
        var wanted = ["CAP_SYS_ADMIN", "CAP_SYS_CHROOT"].filter { !held($0) }
        if wanted.contains(where: { !caps.contains("bounding", $0) }), !held("CAP_SETPCAP") { wanted.append("CAP_SETPCAP") }
        return sets.compactMap { set in
            let added = wanted.filter { !caps.contains(set, $0) }
            return added.isEmpty ? nil : (set, added)
        }
    }

    /// `SET:CAP+CAP,...` with the kernel's capability numbers, for eci-init's `--drop-caps`.
    static func dropCapsArgument(_ grant: [(set: String, added: [String])]) -> String {
        grant.map { set, added in set + ":" + added.compactMap { capabilityNumbers[$0].map(String.init) }.joined(separator: "+") }.joined(separator: ",")
    }

    /// The only capabilities eci-init is ever granted.
    static let capabilityNumbers: [String: Int] = ["CAP_SETPCAP": 8, "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21]

    /// eci-init and the child it forks.
    static let minimumProcessesForInit: UInt64 = 2
}

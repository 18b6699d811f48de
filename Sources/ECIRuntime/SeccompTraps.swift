import ECICore
import ECIOCI
import Glibc

/// The seccomp rules that hand a container's mount calls to `ecid`, merged into whatever
/// `linux.seccomp` the engine sent.
///
/// `mount`, `umount` and `umount2` become `SCMP_ACT_NOTIFY` wherever the engine's profile would
/// let them through (its default action or a rule that allows them), so ecid vets exactly the
/// calls the kernel would otherwise have performed; where the profile already refuses them
/// (Docker's default profile without CAP_SYS_ADMIN), its answer stands. The new mount API
/// answers ENOSYS where it would have been allowed: its calls act on file descriptors
/// (fs contexts, detached trees) whose state a supervisor cannot see from one notification,
/// so they could not be vetted safely; ENOSYS (not EPERM) is the answer that makes util-linux,
/// busybox and runc fall back to mount(2), which is vetted.
///
/// runc (1.1.x) requires libseccomp >= 2.5 for notify rules, at least one `SCMP_ACT_NOTIFY`
/// rule for `listenerPath` to be used, and refuses NOTIFY as the default action or on `write`;
/// a profile with no rules gets default ALLOW plus these rules.
///
/// A container whose mounts the kernel locks (it starts under eci-init, `MountLockPolicy`)
/// keeps fewer traps (`Coverage.kernelLocked`): the calls the kernel itself refuses for every
/// locked mount run at the kernel's own cost (docs/ecid.md, "Untrapped under the kernel's locks").
public enum SeccompTraps {
    /// Calls ecid receives and answers.
    public static let notifiedSyscalls = ["mount", "umount", "umount2", "pivot_root"]

    /// Which of a container's mount calls ecid takes over.
    public enum Coverage: Sendable, Equatable {
        /// Every mount, umount and pivot_root call: the runtime's mounts are not locked.
        case every
        /// The container runs under eci-init, every mount the runtime made is MNT_LOCKED and
        /// the kernel refuses, whoever asks and however a race turns out, to unmount one
        /// (`umount`, `umount2`: untrapped) and to clear a flag it had (a remount with
        /// MS_REMOUNT|MS_BIND changes nothing but flags: untrapped). Everything that can create
        /// or reveal a view stays trapped: new mounts (a fresh procfs needs its masks, which
        /// only ecid gives it), superblock remounts (busybox's uid=/gid= compatibility), binds,
        /// moves, propagation changes and pivot_root (ecid's rules refuse covering `/`, `/proc`
        /// or a mask, which the kernel allows).
        case kernelLocked
    }

    /// The coverage for a container: `.kernelLocked` only when it starts under eci-init and no
    /// code runs under its filter before eci-init has locked the mounts. runc runs a spec's
    /// `startContainer` hooks inside the container, filter loaded, before the program (an
    /// attack round: such a hook unmounted the mask of /proc/keys with umount untrapped, and
    /// eci-init then locked the unmasked tree); with a hook every call stays trapped. Pure.
    public static func coverage(startsUnderInit: Bool, spec: OCISpec) -> Coverage {
        guard startsUnderInit else { return .every }
        let hooks = (spec.document["hooks"]?["startContainer"]?.arrayValue ?? []) + (spec.document["hooks"]?["createContainer"]?.arrayValue ?? [])
        return hooks.isEmpty ? .kernelLocked : .every
    }

    /// The mount(2) flags the narrowed rules test (argument 3 on every architecture).
    static let msRemount: UInt64 = 0x20
    static let msBind: UInt64 = 0x1000

    /// The calls `coverage` sends to ecid unconditionally.
    static func notified(_ coverage: Coverage) -> [String] {
        switch coverage {
        case .every: notifiedSyscalls
        case .kernelLocked: ["mount", "pivot_root"]
        }
    }
    /// The new mount API, answered with ENOSYS so callers fall back to mount(2).
    /// open_tree_attr (Linux 6.15) is named for the day runc's libseccomp knows it: until then
    /// runc drops the name, and the call is not covered (docs/ecid.md, "Not covered").
    public static let newMountAPI = ["open_tree", "move_mount", "mount_setattr", "fsopen", "fsconfig", "fsmount", "fspick", "open_tree_attr"]
    /// ENOSYS.
    public static let enosys = 38
    /// The metadata runc passes back to ecid with each notify fd (`listenerMetadata`).
    public static let listenerMetadata = "eci"

    /// Actions under which the kernel would perform the call: those are what ecid takes over.
    static let permitting: Set<String> = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]

    /// Architectures for a profile ECI builds from nothing: the native one and the compat ABIs
    /// that reach the same kernel, so an i386 or x32 binary meets the same traps.
    public static var nativeArchitectures: [String] {
        #if arch(x86_64)
        return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        #elseif arch(arm64)
        return ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        #else
        return []
        #endif
    }

    /// The engine's `linux.seccomp` (or nil: none, as for `--privileged` and
    /// `seccomp=unconfined`) with the traps merged in and `listenerPath` set. Pure.
    ///
    /// Under `.kernelLocked`, `mount` is trapped unless it is a bind remount (MS_REMOUNT and
    /// MS_BIND both set: the kernel takes that path before any other, reconfigure_mnt, and
    /// changes only the mount's flags), which keeps the action the profile gave mount; umount
    /// and umount2 keep the profile's rules. Only where the profile treats mount as one whole
    /// (allowed or refused without conditions): runc ORs conditions on one argument, so a
    /// profile's own conditions on mount cannot be combined with ours, and such a mount is
    /// trapped whole, as under `.every`.
    public static func merge(
        _ profile: JSONValue?, listenerPath: String, coverage: Coverage = .every, architectures: [String] = nativeArchitectures
    ) throws -> JSONValue {
        var out: JSONValue
        if let profile, profile != .null {
            guard profile.isObject else { throw ECIError(.invalidArgument, "config.json: linux.seccomp is not an object") }
            out = profile
        } else {
            out = .object([("defaultAction", .string("SCMP_ACT_ALLOW")), ("architectures", .array(architectures.map { .string($0) })), ("syscalls", .array([]))])
        }
        if let existing = out["listenerPath"]?.stringValue, !existing.isEmpty {
            throw ECIError(.refused, "the seccomp profile names its own listener (\(existing)); ECI's syscall supervisor must be the container's only listener")
        }
        guard let defaultAction = out["defaultAction"]?.stringValue else {
            throw ECIError(.invalidArgument, "config.json: linux.seccomp.defaultAction is missing")
        }
        let rules = try (out["syscalls"] ?? .array([])).arrayValue.orThrow("config.json: linux.seccomp.syscalls is not an array")
        for rule in rules where rule["action"]?.stringValue == "SCMP_ACT_NOTIFY" {
            throw ECIError(.refused, "the seccomp profile has its own SCMP_ACT_NOTIFY rules (\(OCISpec.syscallNames(of: rule).joined(separator: ", "))); ECI's syscall supervisor must be the container's only listener")
        }

        let notified = notified(coverage)
        // Narrow mount's trap only where every rule of the profile's that names mount is
        // unconditional: then one action of the profile's (a rule's, else the default) covers
        // every mount call, and the bind remounts keep exactly that action.
        let mountRules = rules.filter { OCISpec.syscallNames(of: $0).contains("mount") }
        let narrowMount = coverage == .kernelLocked && mountRules.allSatisfy { ($0["args"]?.arrayValue ?? []).isEmpty }
        var kept: [JSONValue] = []
        var added: [JSONValue] = []
        var unconditional: Set<String> = []
        var mountAdded = false
        let taken = Set(notified + newMountAPI)
        // Our rules for `name` in place of the profile's permitting `rule` (nil: its default
        // action): `ourRule`, or mount's narrowed rules, whose bind remounts keep the rule's
        // action (under the default action, they fall to it: only the traps to add).
        func ourRules(for name: String, like rule: JSONValue?) -> [JSONValue] {
            guard name == "mount", narrowMount else { return [ourRule(for: name, like: rule)] }
            return narrowedMountRules(bindRemountAction: rule?["action"]?.stringValue)
        }
        for rule in rules {
            let ruleNames = OCISpec.syscallNames(of: rule)
            let ours = ruleNames.filter { taken.contains($0) }
            guard !ours.isEmpty else {
                kept.append(rule)
                continue
            }
            let action = rule["action"]?.stringValue ?? ""
            let hasArgs = !(rule["args"]?.arrayValue ?? []).isEmpty
            if !hasArgs { unconditional.formUnion(ours) }
            guard permitting.contains(action) else {
                // A refusal of the engine's stands as written (EPERM for mount without
                // CAP_SYS_ADMIN in Docker's default profile).
                kept.append(rule)
                continue
            }
            let rest = ruleNames.filter { !taken.contains($0) }
            if !rest.isEmpty { kept.append(withNames(rule, rest)) }
            // Each of our names keeps the rule's conditions (if any) with our action.
            for name in ours {
                if name == "mount", narrowMount {
                    guard !mountAdded else { continue }
                    mountAdded = true
                }
                added += ourRules(for: name, like: rule)
            }
        }
        if permitting.contains(defaultAction) {
            for name in notified + newMountAPI where !unconditional.contains(name) {
                added += ourRules(for: name, like: nil)
            }
        }
        out.set("syscalls", .array(kept + added))
        out.set("listenerPath", .string(listenerPath))
        out.set("listenerMetadata", .string(listenerMetadata))
        return out
    }

    static func withNames(_ rule: JSONValue, _ names: [String]) -> JSONValue {
        var copy = rule
        copy.set("name", nil)
        copy.set("names", .array(names.map { .string($0) }))
        return copy
    }

    /// mount under `.kernelLocked`: NOTIFY when MS_BIND is clear, NOTIFY when MS_REMOUNT is
    /// clear (two rules: runc ORs them, and libseccomp would too), and `bindRemountAction`
    /// (the profile's, when its default would refuse) when both are set. The three cover every
    /// value of the flags exactly once, whatever else they hold: the kernel discards only the
    /// high 16 bits' magic (MS_MGC_VAL) and tests MS_REMOUNT and MS_BIND first.
    static func narrowedMountRules(bindRemountAction: String?) -> [JSONValue] {
        func masked(_ mask: UInt64, equals value: UInt64) -> JSONValue {
            .array([.object([("index", .integer(3)), ("value", .integer(mask)), ("valueTwo", .integer(value)), ("op", .string("SCMP_CMP_MASKED_EQ"))])])
        }
        var out: [JSONValue] = [
            .object([("names", .array([.string("mount")])), ("action", .string("SCMP_ACT_NOTIFY")), ("args", masked(msBind, equals: 0))]),
            .object([("names", .array([.string("mount")])), ("action", .string("SCMP_ACT_NOTIFY")), ("args", masked(msRemount, equals: 0))]),
        ]
        if let bindRemountAction {
            let both = msRemount | msBind
            out.append(.object([("names", .array([.string("mount")])), ("action", .string(bindRemountAction)), ("args", masked(both, equals: both))]))
        }
        return out
    }

    /// NOTIFY for the vetted calls, ERRNO(ENOSYS) for the new mount API, with `like`'s conditions.
    static func ourRule(for name: String, like rule: JSONValue?) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [("names", .array([.string(name)]))]
        if notifiedSyscalls.contains(name) {
            members.append(("action", .string("SCMP_ACT_NOTIFY")))
        } else {
            members.append(("action", .string("SCMP_ACT_ERRNO")))
            members.append(("errnoRet", .integer(enosys)))
        }
        if let args = rule?["args"], !(args.arrayValue ?? []).isEmpty { members.append(("args", args)) }
        return .object(members)
    }

    // MARK: Mechanism

    /// How eci-runc decides whether ecid supervises containers on this machine.
    public enum Mode: String, Sendable, Equatable {
        /// Never add the traps (tests of the runtime alone, a host without ecid by choice).
        case off
        /// Add them when ecid has run on this boot (its directory exists); fail closed if it
        /// has but its socket is gone.
        case auto
        /// Always add them; no socket, no container.
        case required

        /// How much it demands: `off` < `auto` < `required`.
        var strictness: Int {
            switch self {
            case .off: 0
            case .auto: 1
            case .required: 2
            }
        }

        /// Parses `text` (from `what`: an environment variable, a configuration key).
        public static func parse(_ text: String, _ what: String) throws -> Mode {
            guard let mode = Mode(rawValue: text) else { throw ECIError(.invalidArgument, "\(what) must be off, auto or required, not \"\(text)\"") }
            return mode
        }
    }

    /// ecid's directory under ECI's state directory: made by ecid at start, 0700.
    public static func directory(stateDirectory: String) -> String { join(stateDirectory, "ecid") }
    /// The socket runc sends each notify fd to.
    public static func socketPath(stateDirectory: String) -> String { join(directory(stateDirectory: stateDirectory), "ecid.sock") }

    /// The mode in force: the machine's configuration (`ecid` in runtime.json; the VM image says
    /// `required`) when it has one, else `ECI_ECID` (`off`, `auto`, `required`; default `auto`).
    /// The environment may make a configured mode stricter, never weaker: it is whatever reached
    /// eci-runc through the engine, containerd and the shim, not the machine's trusted setup.
    public static func mode(configured: Mode?, environment: [String: String]) throws -> Mode {
        let fromEnvironment = try environment["ECI_ECID"].map { try Mode.parse($0, "ECI_ECID") }
        guard let configured else { return fromEnvironment ?? .auto }
        guard let fromEnvironment, fromEnvironment.strictness > configured.strictness else { return configured }
        return fromEnvironment
    }

    /// Merges the traps into `spec` when ecid supervises this machine (`mode(configured:environment:)`).
    /// In `auto`, ecid's directory is the boot's record that ecid runs here (`/run` is a tmpfs):
    /// once it exists, a missing socket refuses the create instead of starting a container no
    /// one supervises. Returns whether ecid supervises the container.
    @discardableResult
    public static func apply(
        to spec: inout OCISpec, stateDirectory: String, configured: Mode? = nil, coverage: Coverage = .every, environment: [String: String]
    ) throws -> Bool {
        let mode = try Self.mode(configured: configured, environment: environment)
        let socket = socketPath(stateDirectory: stateDirectory)
        switch mode {
        case .off: return false
        case .auto: guard FileSystem.exists(directory(stateDirectory: stateDirectory)) else { return false }
        case .required: break
        }
        var st = stat()
        guard lstat(socket, &st) == 0, st.st_mode & S_IFMT == S_IFSOCK else {
            throw ECIError(.unsupported, "ECI's syscall supervisor is not running (no socket at \(socket)): start ecid first")
        }
        var linux = spec.document["linux"] ?? .object([])
        linux.set("seccomp", try merge(linux["seccomp"], listenerPath: socket, coverage: coverage))
        spec.replaceLinux(linux)
        return true
    }
}

extension Optional {
    fileprivate func orThrow(_ message: String) throws -> Wrapped {
        guard let self else { throw ECIError(.invalidArgument, message) }
        return self
    }
}
